//! Which TLS library a mapped file is, and which processes agentguard can see the TLS
//! plaintext of: the ones that mapped a library it probes. The rest are said, not skipped.
use std::collections::{HashMap, HashSet};

use crate::event::{Event, Kind, Proto, Timestamp, Tls, TlsStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lib {
    /// OpenSSL's libssl (and forks keeping its ABI): probed.
    OpenSsl,
    /// Another TLS library: named, not probed.
    Other(&'static str),
}

/// By file name: the dynamic loader opens libraries by these names.
pub fn classify(path: &str) -> Option<Lib> {
    let base = path.rsplit('/').next().unwrap_or(path);
    if base.starts_with("libssl.so") {
        return Some(Lib::OpenSsl);
    }
    const OTHERS: [(&str, &str); 7] = [
        ("libgnutls.so", "GnuTLS"),
        ("libnss3.so", "NSS"),
        ("libssl3.so", "NSS"),
        ("libmbedtls.so", "Mbed TLS"),
        ("libwolfssl.so", "wolfSSL"),
        ("libbotan-", "Botan"),
        ("libs2n.so", "s2n-tls"),
    ];
    OTHERS
        .iter()
        .find(|(p, _)| base.starts_with(p))
        .map(|(_, n)| Lib::Other(n))
}

/// The libssl files of this host's library directories, to probe before the command runs
/// (so the first TLS write of the tree is seen, not only those after its open is read).
pub fn system_libssl() -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for dir in [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/usr/lib",
        "/lib",
        "/usr/local/lib",
    ] {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if classify(&name) != Some(Lib::OpenSsl) {
                continue;
            }
            if let Ok(real) = std::fs::canonicalize(&p) {
                if seen.insert(real.clone()) {
                    out.push(real.display().to_string());
                }
            }
        }
    }
    out.sort();
    out
}

/// Per process: did it map a probed library (or run a binary that exports OpenSSL)?
#[derive(Debug, Default)]
pub struct Coverage {
    /// Files the probes are on (or were tried on), by path.
    probed: HashSet<String>,
    tried: HashSet<String>,
    covered: HashMap<u32, bool>,
    said: HashSet<(u32, String)>,
    /// Notes of another TLS library mapped by a process not (yet) covered, held until its
    /// image ends: curl maps GnuTLS for LDAP yet speaks HTTPS through OpenSSL, so a
    /// process that maps a probed library too is not said to be unreadable.
    held: HashMap<u32, Vec<Event>>,
    /// Probes put without symbols, checked by the first answer they read (llm::verify),
    /// and the processes running a file that has them: covered once they have read an
    /// HTTP answer. A file that only claims a known build's id is never covered by that.
    pub verify: super::verify::Verify,
    unverified: HashMap<u32, String>,
    /// Processes that sent a TLS ClientHello before any probe of theirs went on.
    early: HashSet<u32>,
    /// When probes went on each process's image, and on which file: a ClientHello read
    /// later may still have been sent before.
    probed_at: HashMap<u32, (Timestamp, String)>,
    /// Files to put the probes on, for the record loop (which owns the sensor).
    pub to_attach: Vec<(String, u32, bool)>,
}

impl Coverage {
    /// Notes for the tree's processes that this event says something about.
    pub fn observe(&mut self, ev: &Event) -> Vec<Event> {
        let mut out = Vec::new();
        let note = |ev: &Event, status: TlsStatus, library: &str, detail: String| Event {
            kind: Kind::Tls(Tls {
                status,
                library: library.into(),
                detail,
            }),
            cause: None,
            ..ev.clone()
        };
        match &ev.kind {
            Kind::Fork { child } => {
                let c = self.covered.get(&ev.pid).copied().unwrap_or(false);
                self.covered.insert(*child, c);
                if let Some(p) = self.unverified.get(&ev.pid).cloned() {
                    self.unverified.insert(*child, p);
                }
            }
            Kind::Exec(x) if x.error.is_none() => {
                // The old image's notes, if nothing it mapped was probed.
                out.extend(self.release(ev.pid));
                self.unverified.remove(&ev.pid);
                self.covered.insert(ev.pid, self.probed.contains(&x.path));
                if self.verify.pending(&x.path) {
                    self.unverified.insert(ev.pid, x.path.clone());
                }
                // A binary with OpenSSL linked in exports its functions: try once.
                if self.tried.insert(x.path.clone()) {
                    self.to_attach.push((x.path.clone(), ev.pid, false));
                }
            }
            Kind::File(f) if f.error.is_none() && f.resolved => match classify(&f.path) {
                Some(Lib::OpenSsl) => {
                    self.covered.insert(ev.pid, true);
                    self.held.remove(&ev.pid);
                    if self.tried.insert(f.path.clone()) {
                        self.to_attach.push((f.path.clone(), ev.pid, true));
                    }
                }
                Some(Lib::Other(name)) => {
                    let covered = self.covered.get(&ev.pid).copied().unwrap_or(false);
                    if !covered && self.said.insert((ev.pid, name.to_string())) {
                        self.held.entry(ev.pid).or_default().push(note(
                            ev,
                            TlsStatus::Uncovered,
                            &f.path,
                            format!("uses {name}, which agentguard does not probe: its TLS plaintext is not visible"),
                        ));
                    }
                }
                None => {}
            },
            Kind::Net(n)
                if n.proto == Proto::Tcp
                    && n.op != crate::event::NetOp::Socket
                    && n.family.is_ip()
                    && !self.covered.get(&ev.pid).copied().unwrap_or(false)
                    && self.said.insert((ev.pid, "unseen".into())) =>
            {
                out.push(note(
                    ev,
                    TlsStatus::Unseen,
                    "",
                    format!(
                        "connects to {}:{} but maps no TLS library agentguard probes: if it speaks TLS (linked in statically, or another library), its plaintext is not visible",
                        n.addr, n.port
                    ),
                ));
            }
            Kind::Exit { .. } => {
                out.extend(self.release(ev.pid));
                self.covered.remove(&ev.pid);
                self.unverified.remove(&ev.pid);
                self.early.remove(&ev.pid);
                self.probed_at.remove(&ev.pid);
            }
            _ => {}
        }
        out
    }

    /// A TLS ClientHello the process sent on a socket (`note` says so): unless a probe on
    /// its image works, its TLS is its own, linked in. Held like another library's note,
    /// since the probes on the executable itself may still be going on.
    /// Returns the note to say now when the hello was sent before the probes on the
    /// process went on (`late`).
    pub fn hello(&mut self, note: Event) -> Option<Event> {
        let pid = note.pid;
        if self.covered.get(&pid).copied().unwrap_or(false)
            || !self.said.insert((pid, "hello".into()))
        {
            return None;
        }
        let late = match self.probed_at.get(&pid) {
            Some((at, path)) if note.ts < *at => Some(Event {
                kind: Kind::Tls(Tls {
                    status: TlsStatus::Uncovered,
                    library: path.clone(),
                    detail: late(path),
                }),
                cause: None,
                ..note.clone()
            }),
            Some(_) => None,
            None => {
                self.early.insert(pid);
                None
            }
        };
        self.held.entry(pid).or_default().push(note);
        late
    }

    /// Probes went on `path` for `pid` at `at`: if it had begun speaking TLS before (its
    /// first exec of a file found by a search: the search takes a moment, the agent does
    /// not wait), what it said until then is not visible, which is to be said (the detail
    /// of a note).
    pub fn late(&mut self, pid: u32, path: &str, at: Timestamp) -> Option<String> {
        self.probed_at.insert(pid, (at, path.to_string()));
        self.early.remove(&pid).then(|| late(path))
    }

    /// A file whose probes could not be tried (its process was gone): the next exec of it
    /// tries again.
    pub fn untried(&mut self, path: &str) {
        self.tried.remove(path);
    }

    /// Whether a file the probes were tried on took them.
    pub fn result(&mut self, path: &str, ok: bool) {
        self.tried.insert(path.to_string());
        if ok {
            self.probed.insert(path.to_string());
        }
    }

    /// Probes were put on `path`, run by `pid`, without symbols: its processes are covered
    /// once the probes read an HTTP answer (`verified`).
    pub fn cover_when_verified(&mut self, pid: u32, path: &str) {
        self.verify.probed(path);
        self.unverified.insert(pid, path.to_string());
    }

    /// The probes on `path` read an HTTP answer (llm::verify says so once): its
    /// processes are covered.
    pub fn verified(&mut self, path: &str) {
        self.probed.insert(path.to_string());
        let pids: Vec<u32> = self
            .unverified
            .iter()
            .filter(|(_, p)| *p == path)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in pids {
            self.unverified.remove(&pid);
            self.cover(pid);
        }
    }

    /// Marks a process covered once a probe on its binary worked.
    pub fn cover(&mut self, pid: u32) {
        self.covered.insert(pid, true);
        self.held.remove(&pid);
    }

    /// A process image ended: its held notes go out unless it was covered after all.
    fn release(&mut self, pid: u32) -> Vec<Event> {
        let notes = self.held.remove(&pid).unwrap_or_default();
        if self.covered.get(&pid).copied().unwrap_or(false) {
            return Vec::new();
        }
        notes
    }

    /// The recording ends: the notes of processes still running that never mapped a
    /// probed library.
    pub fn finish(&mut self) -> Vec<Event> {
        let mut pids: Vec<u32> = self.held.keys().copied().collect();
        pids.sort();
        pids.into_iter().flat_map(|p| self.release(p)).collect()
    }
}

/// What a process that spoke TLS before its probes went on (on `path`) is told.
fn late(path: &str) -> String {
    format!("began speaking TLS before the probes on {path} were on: what it sent and read until then is not visible (a later run of the same file is probed at its start)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Access, File};

    fn ev(pid: u32, kind: Kind) -> Event {
        Event::of(pid, "/usr/bin/curl", kind)
    }

    fn maps(pid: u32, path: &str) -> Event {
        ev(pid, Kind::File(File::opened(path, vec![Access::Read])))
    }

    /// The note of a ClientHello `pid` sent, its TLS in `library`.
    fn hello(pid: u32, library: &str) -> Event {
        ev(
            pid,
            Kind::Tls(crate::event::Tls {
                status: TlsStatus::Uncovered,
                library: library.into(),
                detail: "speaks TLS".into(),
            }),
        )
    }

    fn uncovered(evs: &[Event]) -> Vec<u32> {
        evs.iter()
            .filter(|e| matches!(&e.kind, Kind::Tls(t) if t.status == TlsStatus::Uncovered))
            .map(|e| e.pid)
            .collect()
    }

    #[test]
    fn another_library_is_said_only_of_a_process_that_maps_no_probed_one() {
        let gnutls = "/usr/lib/x86_64-linux-gnu/libgnutls.so.30";
        let mut c = Coverage::default();
        let exit = |pid| {
            ev(
                pid,
                Kind::Exit {
                    code: Some(0),
                    signal: None,
                },
            )
        };
        // curl: GnuTLS (for LDAP) before libssl: nothing to say.
        assert!(c.observe(&maps(7, gnutls)).is_empty());
        c.observe(&maps(7, "/usr/lib/x86_64-linux-gnu/libssl.so.3"));
        assert!(uncovered(&c.observe(&exit(7))).is_empty());
        // GnuTLS alone: said when the process ends, or when the recording does.
        assert!(c.observe(&maps(8, gnutls)).is_empty());
        assert_eq!(uncovered(&c.observe(&exit(8))), [8]);
        c.observe(&maps(9, gnutls));
        assert_eq!(uncovered(&c.finish()), [9]);
        assert!(c.finish().is_empty(), "once");
    }

    #[test]
    fn a_hello_is_said_of_an_image_no_probe_covered_when_it_ends() {
        let mut c = Coverage::default();
        // Its own TLS: said when the image ends (here, at an exec), once.
        c.hello(hello(7, "/usr/bin/curl"));
        c.hello(hello(7, "/usr/bin/curl"));
        let exec = ev(
            7,
            Kind::Exec(crate::event::Exec {
                path: "/usr/bin/true".into(),
                ..Default::default()
            }),
        );
        assert_eq!(uncovered(&c.observe(&exec)), [7]);
        // A process that maps libssl first: its hello is OpenSSL's, which is read.
        c.observe(&maps(8, "/usr/lib/x86_64-linux-gnu/libssl.so.3"));
        c.hello(hello(8, "/usr/bin/curl"));
        // A probe on the executable that takes after the hello (node, probed as it
        // starts): covered after all.
        c.hello(hello(9, "/usr/bin/curl"));
        c.cover(9);
        assert!(uncovered(&c.finish()).is_empty());
    }

    #[test]
    fn probes_put_without_symbols_cover_a_process_only_once_they_read_an_answer() {
        let mut c = Coverage::default();
        // A file claiming a known build's id takes the probes, which never read anything:
        // its TLS is still said to be unread.
        c.cover_when_verified(7, "/opt/forged");
        c.hello(hello(7, "/opt/bun"));
        // Probes that read an HTTP answer cover the process, and its children.
        c.cover_when_verified(8, "/opt/bun");
        c.observe(&ev(8, Kind::Fork { child: 9 }));
        c.hello(hello(8, "/opt/bun"));
        c.hello(hello(9, "/opt/bun"));
        c.verified("/opt/bun");
        assert_eq!(uncovered(&c.finish()), [7]);
    }

    #[test]
    fn a_hello_sent_before_the_probes_went_on_is_said() {
        let mut c = Coverage::default();
        let t = |s| Timestamp::new(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s));
        let at = |pid, s| Event {
            ts: t(s),
            ..hello(pid, "/opt/codex")
        };
        // Read before the probes went on: said when they do.
        assert!(c.hello(at(7, 5)).is_none());
        assert!(c.late(7, "/opt/codex", t(10)).is_some());
        // Read after they went on, but sent before: said at once, once.
        assert!(c.late(8, "/opt/codex", t(10)).is_none());
        let note = c.hello(at(8, 5)).expect("said");
        assert!(
            matches!(&note.kind, Kind::Tls(t) if t.status == TlsStatus::Uncovered && t.detail.starts_with("began speaking TLS before the probes on /opt/codex")),
            "{note:?}"
        );
        assert!(c.hello(at(8, 6)).is_none());
        // Sent after: nothing to say.
        assert!(c.late(9, "/opt/codex", t(10)).is_none());
        assert!(c.hello(at(9, 20)).is_none());
    }

    #[test]
    fn libraries_by_name() {
        assert_eq!(
            classify("/usr/lib/x86_64-linux-gnu/libssl.so.3"),
            Some(Lib::OpenSsl)
        );
        assert_eq!(classify("/opt/x/libssl.so.1.1"), Some(Lib::OpenSsl));
        assert_eq!(
            classify("/usr/lib/x86_64-linux-gnu/libssl3.so"),
            Some(Lib::Other("NSS"))
        );
        assert_eq!(
            classify("/usr/lib/x86_64-linux-gnu/libgnutls.so.30"),
            Some(Lib::Other("GnuTLS"))
        );
        assert_eq!(classify("/usr/lib/libcrypto.so.3"), None);
    }
}
