//! What one run moved through files and sockets, as the kernel counted it (io events),
//! against what its baseline's runs moved: a [[file]] entry's bytes read, a [[net]]
//! destination's bytes sent or received, beyond the learned range (profile::volume).
//!
//! Only learned entries with volumes are held to a range, and only in a baseline that
//! learned volumes at all: a profile from before the kernel counted bytes has none, and
//! holding its entries to the bare margin would flood it with findings.
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use globset::GlobMatcher;

use super::rules::{self, Rule};
use crate::event::Io;
use crate::profile::http::bytes;
use crate::profile::pattern::{glob, is_glob, subject};
use crate::profile::volume::{limit, FILE_MARGIN, NET_MARGIN};
use crate::profile::{NetDir, Profile, Vars, What};

/// A volume beyond its range: the finding's parts, and what it is about (its key among
/// the run's findings, with the direction).
pub struct Over {
    pub rule: &'static Rule,
    pub kind: &'static str,
    pub object: String,
    pub detail: String,
    pub reason: String,
    pub about: What,
    pub dir: &'static str,
}

enum PathMatch {
    Exact(String),
    Glob(GlobMatcher),
}

struct FileLimit {
    pattern: String,
    path: PathMatch,
    read: u64,
}

struct NetLimit {
    describe: String,
    entry: crate::profile::NetEntry,
    /// (sent, received)
    limits: (u64, u64),
}

#[derive(Default)]
pub struct Bytes {
    files: Vec<FileLimit>,
    nets: Vec<NetLimit>,
    /// This run's bytes per entry: read per file entry; (sent, received) per net entry.
    read: HashMap<usize, u64>,
    moved: HashMap<usize, (u64, u64)>,
    said: HashSet<(bool, usize, bool)>,
}

impl Bytes {
    /// `p` with its includes resolved; paths expanded with `vars`.
    pub fn new(p: &Profile, vars: &Vars) -> Bytes {
        let mut b = Bytes::default();
        let learned_files = p.file.iter().any(|e| !e.read.is_empty());
        for e in p
            .file
            .iter()
            .filter(|e| learned_files && e.learned && !e.protected)
        {
            let Ok(path) = vars.expand(&e.path.0) else {
                continue;
            };
            let m = if is_glob(&path) {
                match glob(&path) {
                    Ok(g) => PathMatch::Glob(g.compile_matcher()),
                    Err(_) => continue,
                }
            } else {
                PathMatch::Exact(path)
            };
            b.files.push(FileLimit {
                pattern: e.path.0.clone(),
                path: m,
                read: limit(&e.read, FILE_MARGIN).unwrap_or(FILE_MARGIN),
            });
        }
        let learned_nets = p
            .net
            .iter()
            .any(|e| !e.sent.is_empty() || !e.received.is_empty());
        for e in p
            .net
            .iter()
            .filter(|e| learned_nets && e.learned && e.op == NetDir::Connect)
        {
            let of = |v: &[u64]| limit(v, NET_MARGIN).unwrap_or(NET_MARGIN);
            b.nets.push(NetLimit {
                describe: e.describe(),
                entry: e.clone(),
                limits: (of(&e.sent), of(&e.received)),
            });
        }
        b
    }

    /// One io event's bytes: the findings it completes, each with its rule, kind, object,
    /// detail and reason.
    pub fn io(&mut self, io: &Io) -> Vec<Over> {
        let mut out = Vec::new();
        if let Some(path) = &io.path {
            if io.read == 0 {
                return out;
            }
            // A file with an entry of its own is charged to that entry alone: learning
            // put its bytes there, not in the patterns that also cover it, whose ranges
            // it would otherwise break. Else to every pattern that covers it: none can
            // be told more specific by the tree's choice of name.
            let own = self
                .files
                .iter()
                .position(|f| matches!(&f.path, PathMatch::Exact(p) if p == path));
            let hits: Vec<usize> = match own {
                Some(i) => vec![i],
                None => (0..self.files.len())
                    .filter(|&i| {
                        matches!(&self.files[i].path, PathMatch::Glob(g) if g.is_match(subject(path)))
                    })
                    .collect(),
            };
            for i in hits {
                let f = &self.files[i];
                let total = self.read.entry(i).or_default();
                *total = total.saturating_add(io.read);
                if *total > f.read && self.said.insert((false, i, false)) {
                    out.push(Over {
                        rule: &rules::FILE_VOLUME,
                        kind: "file",
                        object: f.pattern.clone(),
                        detail: format!("read {}", bytes(*total)),
                        reason: format!(
                            "read {} from the files of {} in this run; the baseline's runs read at most {} (a run may read {})",
                            bytes(*total),
                            f.pattern,
                            bytes(largest(f.read, FILE_MARGIN)),
                            bytes(f.read)
                        ),
                        about: What::File {
                            path: f.pattern.clone(),
                            access: [crate::event::Access::Read].into(),
                        },
                        dir: "read",
                    });
                }
            }
            return out;
        }
        let Some(proto) = io.proto else { return out };
        let ip = io.addr.parse::<IpAddr>().ok();
        // Every entry that covers the destination: the name comes from answers the tree
        // may have served itself, so a name's entry never stands in for an address's.
        for (i, n) in self.nets.iter().enumerate() {
            let e = &n.entry;
            if e.proto != proto || !e.port.contains(io.port) {
                continue;
            }
            let hit = match (&e.host, &e.addr, &io.name) {
                (Some(h), _, Some(name)) => h.matches(name),
                (None, Some(a), _) => {
                    a.0 == "*" || a.net().zip(ip).is_some_and(|(net, ip)| net.contains(&ip))
                }
                _ => false,
            };
            if !hit {
                continue;
            }
            let m = self.moved.entry(i).or_default();
            *m = (m.0.saturating_add(io.written), m.1.saturating_add(io.read));
            let m = *m;
            for (sent, now, lim) in [(true, m.0, n.limits.0), (false, m.1, n.limits.1)] {
                if now > lim && self.said.insert((true, i, sent)) {
                    let (verb, dir) = if sent {
                        ("sent", "to")
                    } else {
                        ("received", "from")
                    };
                    out.push(Over {
                        rule: &rules::NET_VOLUME,
                        kind: "net",
                        object: n.describe.clone(),
                        detail: format!("{verb} {}", bytes(now)),
                        about: What::Net {
                            op: NetDir::Connect,
                            proto: e.proto,
                            addr: n.describe.clone(),
                            port: 0,
                        },
                        dir: verb,
                        reason: format!(
                            "{verb} {} {dir} {} in this run (all protocols, as the kernel counted it); the baseline's runs moved at most {} (a run may move {})",
                            bytes(now),
                            n.describe,
                            bytes(largest(lim, NET_MARGIN)),
                            bytes(lim)
                        ),
                    });
                }
            }
        }
        out
    }
}

/// The largest baseline run behind a limit (profile::volume::limit's inverse).
fn largest(limit: u64, margin: u64) -> u64 {
    limit.saturating_sub(margin) / 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Proto;

    const PROFILE: &str = r#"
version = 1
runs = 2
[[run]]
id = "a"
command = "agent"
started = "2026-12-01T00:00:00Z"
seconds = 1.0
[[run]]
id = "b"
command = "agent"
started = "2026-12-01T00:00:00Z"
seconds = 1.0

[[file]]
path = "${CWD}/data/*.csv"
access = ["read"]
learned = true
seen = [0, 1]
count = 2
read = [100000, 300000]

[[file]]
path = "${CWD}/notes.md"
access = ["read"]
learned = true
seen = [0, 1]
count = 2

[[net]]
op = "connect"
proto = "tcp"
host = "api.example.com"
port = 443
learned = true
seen = [0, 1]
count = 2
sent = [4000, 9000]
received = [100, 200]

[[net]]
op = "connect"
proto = "tcp"
addr = "10.0.0.0/8"
port = 5432
"#;

    fn bytes_of(text: &str) -> Bytes {
        let p = Profile::parse(text, std::path::Path::new("p.toml")).unwrap();
        let vars = Vars {
            home: Some("/home/u".into()),
            cwd: Some("/w".into()),
        };
        Bytes::new(&p, &vars)
    }

    fn file(path: &str, read: u64) -> Io {
        Io {
            path: Some(path.into()),
            read,
            ..Io::default()
        }
    }

    fn sock(addr: &str, name: Option<&str>, port: u16, written: u64) -> Io {
        Io {
            path: None,
            proto: Some(Proto::Tcp),
            addr: addr.into(),
            port,
            name: name.map(String::from),
            read: 10,
            written,
        }
    }

    #[test]
    fn a_file_class_is_summed_over_its_files_and_found_once() {
        let mut b = bytes_of(PROFILE);
        // Limit: 2 x 300000 + 256 KiB = 862144, summed over the class's files.
        assert!(b.io(&file("/w/data/a.csv", 500_000)).is_empty());
        let o = b.io(&file("/w/data/b.csv", 400_000));
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].rule.id, "file-volume");
        assert_eq!(o[0].object, "${CWD}/data/*.csv");
        assert!(o[0].reason.contains("at most 293.0 KiB"), "{}", o[0].reason);
        assert!(b.io(&file("/w/data/c.csv", 400_000)).is_empty(), "once");
        // A learned entry that never read is held to the margin alone.
        assert!(b.io(&file("/w/notes.md", 200_000)).is_empty());
        assert_eq!(b.io(&file("/w/notes.md", 100_000)).len(), 1);
        // Not a learned entry's file: the new-file rules speak for it.
        assert!(b.io(&file("/w/other", 10 << 20)).is_empty());
    }

    #[test]
    fn a_destination_is_matched_by_name_or_address_and_each_direction_found() {
        let mut b = bytes_of(PROFILE);
        // Limit: 2 x 9000 + 16 KiB = 34384 sent.
        assert!(b
            .io(&sock("1.2.3.4", Some("api.example.com"), 443, 30_000))
            .is_empty());
        // By address only, or to another port: not this entry.
        assert!(b.io(&sock("1.2.3.4", None, 443, 50_000)).is_empty());
        assert!(b
            .io(&sock("1.2.3.4", Some("api.example.com"), 80, 50_000))
            .is_empty());
        let o = b.io(&sock("1.2.3.5", Some("api.example.com"), 443, 5_000));
        assert_eq!(o.len(), 1, "summed over connections");
        assert_eq!((o[0].rule.id, o[0].dir), ("net-volume", "sent"));
        assert_eq!(o[0].object, "api.example.com:443");
        // The hand-written rule has no volume.
        assert!(b.io(&sock("10.1.2.3", None, 5432, 10 << 20)).is_empty());
    }

    #[test]
    fn a_file_is_charged_to_its_own_entry_and_a_destination_to_every_entry() {
        let text = format!(
            "{PROFILE}
[[file]]
path = \"${{CWD}}/data/big.csv\"
access = [\"read\"]
learned = true
seen = [0, 1]
count = 2
read = [5000000, 6000000]

[[net]]
op = \"connect\"
proto = \"tcp\"
addr = \"0.0.0.0/0\"
port = 443
learned = true
seen = [0, 1]
count = 2
sent = [10, 10]
"
        );
        let mut b = bytes_of(&text);
        // The file its own entry learned reading megabytes: not the *.csv class's bytes.
        assert!(b.io(&file("/w/data/big.csv", 5_000_000)).is_empty());
        assert!(b.io(&file("/w/data/a.csv", 500_000)).is_empty());
        // A destination is charged to every entry that covers it: a name (which the
        // tree's own resolver may have given) and the address range alike.
        let o = b.io(&sock("1.2.3.4", Some("api.example.com"), 443, 30_000));
        assert_eq!(o.len(), 1, "the range's limit, 2 x 10 + 16 KiB");
        assert_eq!(o[0].object, "0.0.0.0/0:443");
    }

    #[test]
    fn a_baseline_that_learned_no_volume_holds_nothing_to_one() {
        let old = PROFILE
            .replace("read = [100000, 300000]\n", "")
            .replace("sent = [4000, 9000]\nreceived = [100, 200]\n", "");
        let mut b = bytes_of(&old);
        assert!(b.io(&file("/w/data/a.csv", 10 << 20)).is_empty());
        assert!(b
            .io(&sock("1.2.3.4", Some("api.example.com"), 443, 10 << 20))
            .is_empty());
    }
}
