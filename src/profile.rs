//! The profile: the one artifact. A recorded run is a profile of one run; a baseline is
//! profiles merged (each entry says in how many runs it was seen); enforcement compiles
//! one. Versioned, sorted TOML, so profiles diff cleanly in git.
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::event::{Access, Event, FileOp, FlagKind, Kind, NetOp, Proto};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Format version; a reader refuses versions it does not know.
    pub version: u32,
    /// How many runs this profile learned from.
    pub runs: u32,
    /// Which runs: what was run, when, how it ended.
    #[serde(default, rename = "run", skip_serializing_if = "Vec::is_empty")]
    pub run_info: Vec<RunInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<ExecEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file: Vec<FileEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub net: Vec<NetEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<DnsEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flag: Vec<FlagEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInfo {
    /// The command line, or "--pid N (exe)" for an attached recording.
    pub command: String,
    /// Start, RFC 3339.
    pub started: String,
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    /// Events the sensor could not deliver: a run with losses is an incomplete sample.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lost_events: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecEntry {
    pub path: String,
    /// In how many of the profile's runs this was seen.
    pub runs: u32,
    /// How many times, over all runs.
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub access: BTreeSet<Access>,
    pub runs: u32,
    pub count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetDir {
    /// connect, or a datagram sent to an address
    Connect,
    /// a query to a DNS resolver
    Resolve,
    Bind,
    Listen,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetEntry {
    pub op: NetDir,
    pub proto: Proto,
    pub addr: String,
    #[serde(default, skip_serializing_if = "is_zero_u16")]
    pub port: u16,
    pub runs: u32,
    pub count: u64,
    /// Attempts that failed (refused, unreachable): intent is behaviour too.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsEntry {
    pub name: String,
    pub runs: u32,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagEntry {
    pub flag: FlagKind,
    pub detail: String,
    pub runs: u32,
    pub count: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}
fn is_zero_u16(v: &u16) -> bool {
    *v == 0
}

impl Profile {
    pub fn to_toml(&self) -> Result<String> {
        let body = toml::to_string(self).context("serialising the profile")?;
        Ok(format!(
            "# agentguard profile (format {VERSION}): what a process tree did.\n\
             # `runs` on an entry counts the runs it was seen in; `count` its occurrences.\n\n{body}"
        ))
    }

    pub fn parse(text: &str, origin: &Path) -> Result<Profile> {
        let p: Profile = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{}: {}", origin.display(), e.to_string().trim_end()))?;
        if p.version != VERSION {
            bail!(
                "{}: field `version`: this agentguard reads profile format {VERSION}, not {}",
                origin.display(),
                p.version
            );
        }
        Ok(p)
    }

    pub fn load(path: &Path) -> Result<Profile> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text, path)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let text = self.to_toml()?;
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
    }
}

/// Builds the profile of one run from its event stream.
#[derive(Default)]
pub struct Builder {
    exec: BTreeMap<String, u64>,
    file: BTreeMap<String, (BTreeSet<Access>, u64)>,
    net: BTreeMap<(NetDir, Proto, String, u16), (u64, u64)>,
    dns: BTreeMap<String, u64>,
    flag: BTreeMap<(FlagKind, String), u64>,
    /// Every pid that was part of the tree, to tell a ptrace inside it from one outside.
    tree: HashSet<u32>,
    pub processes: u64,
    pub failures: u64,
}

impl Builder {
    pub fn add_root(&mut self, pid: u32) {
        self.tree.insert(pid);
        self.processes += 1;
    }

    pub fn add(&mut self, ev: &Event) {
        self.tree.insert(ev.pid);
        if ev.failed() {
            self.failures += 1;
        }
        match &ev.kind {
            Kind::Fork { child } => {
                self.tree.insert(*child);
                self.processes += 1;
            }
            Kind::Exec(x) => {
                if x.error.is_none() {
                    *self.exec.entry(x.path.clone()).or_default() += 1;
                    if x.via_fd || x.unlinked {
                        let what = if x.unlinked {
                            "a file with no name (memfd or deleted)"
                        } else {
                            "an fd"
                        };
                        self.flag(FlagKind::ExecFd, format!("exec through {what}: {}", x.path));
                    }
                }
            }
            // Only what succeeded is behaviour a profile admits; failures stay in the
            // event log (a profile of every ENOENT a Python import probes would be noise).
            Kind::File(f) if f.error.is_none() => {
                self.file_access(&f.path, f.access.iter().copied());
                if let (FileOp::Rename | FileOp::Link, Some(t)) = (f.op, &f.target) {
                    self.file_access(t, [Access::Create]);
                }
            }
            Kind::File(_) => {}
            Kind::Net(n) => {
                let dir = match n.op {
                    NetOp::Connect | NetOp::Sendto | NetOp::Sendmsg => NetDir::Connect,
                    NetOp::Bind => NetDir::Bind,
                    NetOp::Listen => NetDir::Listen,
                };
                let e = self
                    .net
                    .entry((dir, n.proto, n.addr.clone(), n.port))
                    .or_default();
                e.0 += 1;
                if n.error.is_some() {
                    e.1 += 1;
                }
            }
            Kind::Dns(d) => {
                for name in &d.names {
                    *self.dns.entry(name.clone()).or_default() += 1;
                }
                let (addr, port) = split_host_port(&d.server);
                let e = self
                    .net
                    .entry((NetDir::Resolve, Proto::Udp, addr, port))
                    .or_default();
                e.0 += 1;
                if d.error.is_some() {
                    e.1 += 1;
                }
            }
            Kind::Flag(f) => {
                let detail = match f.flag {
                    // The target pid differs every run; whether it is ours does not.
                    FlagKind::Ptrace => {
                        let (req, pid) = f.detail.rsplit_once(" pid ").unwrap_or((&f.detail, ""));
                        let inside = pid.parse::<u32>().map(|p| self.tree.contains(&p) || p == 0);
                        match inside {
                            Ok(true) => format!("{req} (a process of the tree)"),
                            _ => format!("{req} (a process outside the tree)"),
                        }
                    }
                    FlagKind::Capset => "capset".to_string(),
                    _ => f.detail.clone(),
                };
                self.flag(f.flag, detail);
            }
            Kind::Exit { .. } | Kind::Lost { .. } => {}
        }
    }

    fn flag(&mut self, k: FlagKind, detail: String) {
        *self.flag.entry((k, detail)).or_default() += 1;
    }

    fn file_access(&mut self, path: &str, access: impl IntoIterator<Item = Access>) {
        let e = self.file.entry(path.to_string()).or_default();
        e.0.extend(access);
        e.1 += 1;
    }

    pub fn files(&self) -> usize {
        self.file.len()
    }
    pub fn execs(&self) -> u64 {
        self.exec.values().sum()
    }
    pub fn connections(&self) -> usize {
        self.net.keys().filter(|k| k.0 == NetDir::Connect).count()
    }
    pub fn dns_names(&self) -> usize {
        self.dns.len()
    }
    pub fn flags(&self) -> usize {
        self.flag.len()
    }

    pub fn finish(&self, run: RunInfo) -> Profile {
        Profile {
            version: VERSION,
            runs: 1,
            run_info: vec![run],
            exec: self
                .exec
                .iter()
                .map(|(path, &count)| ExecEntry {
                    path: path.clone(),
                    runs: 1,
                    count,
                })
                .collect(),
            file: self
                .file
                .iter()
                .map(|(path, (access, count))| FileEntry {
                    path: path.clone(),
                    access: access.clone(),
                    runs: 1,
                    count: *count,
                })
                .collect(),
            net: self
                .net
                .iter()
                .map(|((op, proto, addr, port), (count, failed))| NetEntry {
                    op: *op,
                    proto: *proto,
                    addr: addr.clone(),
                    port: *port,
                    runs: 1,
                    count: *count,
                    failed: *failed,
                })
                .collect(),
            dns: self
                .dns
                .iter()
                .map(|(name, &count)| DnsEntry {
                    name: name.clone(),
                    runs: 1,
                    count,
                })
                .collect(),
            flag: self
                .flag
                .iter()
                .map(|((flag, detail), &count)| FlagEntry {
                    flag: *flag,
                    detail: detail.clone(),
                    runs: 1,
                    count,
                })
                .collect(),
        }
    }
}

/// "1.2.3.4:53" or "[::1]:53" -> (addr, port)
fn split_host_port(s: &str) -> (String, u16) {
    match s.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.parse().unwrap_or(0),
        ),
        None => (s.to_string(), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{self, Dns, Exec, File, Flag, Net};

    fn ev(pid: u32, kind: Kind) -> Event {
        Event {
            ts: "2026-11-26T12:00:00Z".into(),
            pid,
            tid: pid,
            ppid: 1,
            exe: "/bin/sh".into(),
            kind,
        }
    }

    fn open(path: &str, access: Vec<Access>, error: Option<&str>) -> Kind {
        Kind::File(File {
            op: FileOp::Open,
            path: path.into(),
            resolved: error.is_none(),
            target: None,
            access,
            flags: 0,
            mode: None,
            truncated: false,
            error: error.map(String::from),
        })
    }

    fn run() -> RunInfo {
        RunInfo {
            command: "sh demo.sh".into(),
            started: "2026-11-26T12:00:00Z".into(),
            seconds: 0.5,
            exit: Some(0),
            lost_events: 0,
        }
    }

    /// A replayed stream: what a small shell script does.
    fn stream() -> Vec<Event> {
        vec![
            ev(10, Kind::Fork { child: 11 }),
            ev(
                11,
                Kind::Exec(Exec {
                    path: "/usr/bin/cat".into(),
                    argv: vec!["cat".into()],
                    argv_truncated: false,
                    cwd: "/".into(),
                    invoked_as: None,
                    via_fd: false,
                    unlinked: false,
                    error: None,
                }),
            ),
            ev(11, open("/etc/hosts", vec![Access::Read], None)),
            ev(11, open("/etc/hosts", vec![Access::Read], None)),
            ev(
                11,
                open("/tmp/out", vec![Access::Write, Access::Create], None),
            ),
            ev(11, open("/tmp/out", vec![Access::Read], None)),
            ev(11, open("/nonexistent", vec![Access::Read], Some("ENOENT"))),
            ev(
                11,
                Kind::Net(Net {
                    op: NetOp::Connect,
                    family: "inet".into(),
                    proto: Proto::Tcp,
                    addr: "127.0.0.1".into(),
                    port: 80,
                    mapped: false,
                    error: Some("ECONNREFUSED".into()),
                }),
            ),
            ev(
                11,
                Kind::Dns(Dns {
                    names: vec!["example.com".into()],
                    qtypes: vec!["A".into()],
                    server: "127.0.0.53:53".into(),
                    error: None,
                }),
            ),
            ev(
                11,
                Kind::Flag(Flag {
                    flag: event::FlagKind::Ptrace,
                    detail: "PTRACE_ATTACH pid 4242".into(),
                    error: None,
                }),
            ),
            ev(
                11,
                Kind::Flag(Flag {
                    flag: event::FlagKind::Ptrace,
                    detail: "PTRACE_ATTACH pid 10".into(),
                    error: None,
                }),
            ),
            ev(
                11,
                Kind::Exit {
                    code: Some(0),
                    signal: None,
                },
            ),
        ]
    }

    #[test]
    fn builder_aggregates_a_replayed_stream() {
        let mut b = Builder::default();
        b.add_root(10);
        for e in stream() {
            b.add(&e);
        }
        let p = b.finish(run());
        assert_eq!(
            p.exec,
            vec![ExecEntry {
                path: "/usr/bin/cat".into(),
                runs: 1,
                count: 1
            }]
        );
        let paths: Vec<_> = p.file.iter().map(|f| (f.path.as_str(), f.count)).collect();
        assert_eq!(
            paths,
            vec![("/etc/hosts", 2), ("/tmp/out", 2)],
            "failed opens stay out"
        );
        assert_eq!(
            p.file[1].access,
            BTreeSet::from([Access::Read, Access::Write, Access::Create])
        );
        assert_eq!(p.net.len(), 2);
        assert_eq!((p.net[0].op, p.net[0].failed), (NetDir::Connect, 1));
        assert_eq!(
            (p.net[1].op, p.net[1].addr.as_str(), p.net[1].port),
            (NetDir::Resolve, "127.0.0.53", 53)
        );
        assert_eq!(p.dns[0].name, "example.com");
        let flags: Vec<_> = p.flag.iter().map(|f| f.detail.as_str()).collect();
        assert_eq!(
            flags,
            vec![
                "PTRACE_ATTACH (a process of the tree)",
                "PTRACE_ATTACH (a process outside the tree)"
            ]
        );
        assert_eq!((b.processes, b.failures), (2, 2));
    }

    #[test]
    fn toml_round_trip_is_stable_and_sorted() {
        let mut b = Builder::default();
        for e in stream().into_iter().rev() {
            b.add(&e);
        }
        let p = b.finish(run());
        let text = p.to_toml().unwrap();
        let back = Profile::parse(&text, Path::new("x.toml")).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.to_toml().unwrap(), text);
        assert!(text.find("/etc/hosts").unwrap() < text.find("/tmp/out").unwrap());
        assert!(text.starts_with("# agentguard profile"));
        assert!(text.contains("version = 1\nruns = 1\n"), "{text}");
    }

    #[test]
    fn bad_profiles_name_file_line_and_field() {
        let e = Profile::parse("version = 2\nruns = 1\n", Path::new("p.toml")).unwrap_err();
        assert!(
            format!("{e:#}").contains("p.toml: field `version`"),
            "{e:#}"
        );
        let e = Profile::parse("version = 1\nruns = 1\n[[file]]\npath = \"/x\"\naccess = [\"fly\"]\nruns = 1\ncount = 1\n", Path::new("p.toml"))
            .unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("p.toml") && msg.contains("line 5") && msg.contains("fly"),
            "{msg}"
        );
        let e =
            Profile::parse("version = 1\nruns = 1\nbogus = 3\n", Path::new("p.toml")).unwrap_err();
        assert!(format!("{e:#}").contains("bogus"), "{e:#}");
    }
}
