//! From one run's event stream to that run's evidence, and so to its profile.
use std::collections::HashSet;

use super::learn::Evidence;
use super::{NetDir, PortPat, Profile, RunInfo, Vars};
use crate::event::{Access, Event, FileOp, FlagKind, Kind, NetOp, Proto};

/// Builds the profile of one run from its event stream.
#[derive(Default)]
pub struct Builder {
    ev: Evidence,
    vars: Vars,
    /// Every pid that was part of the tree, to tell a ptrace inside it from one outside.
    tree: HashSet<u32>,
    pub processes: u64,
    pub failures: u64,
}

impl Builder {
    /// Paths under `vars` are written with ${HOME} and ${CWD}.
    pub fn new(vars: Vars) -> Builder {
        Builder {
            vars,
            ..Default::default()
        }
    }

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
            Kind::Exec(x) if x.error.is_none() => {
                let p = self.vars.abstract_path(&x.path);
                self.ev.add_exec(&p, 0, 1);
                if x.via_fd || x.unlinked {
                    let what = if x.unlinked {
                        "a file with no name (memfd or deleted)"
                    } else {
                        "an fd"
                    };
                    self.flag(FlagKind::ExecFd, format!("exec through {what}"));
                }
            }
            // Only what succeeded is behaviour a profile admits; failures stay in the
            // event log (a profile of every ENOENT a Python import probes would be noise).
            Kind::File(f) if f.error.is_none() => {
                let p = self.vars.abstract_path(&f.path);
                self.ev.add_file(&p, f.access.iter().copied(), 0, 1);
                if let (FileOp::Rename | FileOp::Link, Some(t)) = (f.op, &f.target) {
                    let t = self.vars.abstract_path(t);
                    self.ev.add_file(&t, [Access::Create], 0, 1);
                }
            }
            Kind::Net(n) => {
                let dir = match n.op {
                    NetOp::Connect | NetOp::Sendto | NetOp::Sendmsg => NetDir::Connect,
                    NetOp::Bind => NetDir::Bind,
                    NetOp::Listen => NetDir::Listen,
                };
                let addr = match n.family.as_str() {
                    "inet" | "inet6" => n.addr.clone(),
                    // An unnamed unix socket (autobind) gets an abstract name.
                    "unix" if n.addr.is_empty() => "@".to_string(),
                    "unix" => n.addr.clone(),
                    // AF_UNSPEC (a UDP disconnect) and other families stay in the event log.
                    _ => return,
                };
                let port = if n.port == 0 {
                    PortPat::default()
                } else {
                    PortPat::one(n.port)
                };
                self.ev
                    .add_net((dir, n.proto, addr, port), 0, 1, u64::from(ev.failed()));
            }
            Kind::Dns(d) => {
                for name in &d.names {
                    self.ev.add_dns(name, 0, 1);
                }
                let (addr, port) = split_host_port(&d.server);
                self.ev.add_net(
                    (NetDir::Resolve, Proto::Udp, addr, PortPat::one(port)),
                    0,
                    1,
                    u64::from(ev.failed()),
                );
            }
            Kind::Flag(f) => {
                let detail = match f.flag {
                    // The target pid differs every run; whether it is ours does not.
                    FlagKind::Ptrace => {
                        let (req, pid) = f.detail.rsplit_once(" pid ").unwrap_or((&f.detail, ""));
                        match pid.parse::<u32>() {
                            Ok(p) if p == 0 || self.tree.contains(&p) => {
                                format!("{req} (a process of the tree)")
                            }
                            _ => format!("{req} (a process outside the tree)"),
                        }
                    }
                    FlagKind::Capset => "capset".to_string(),
                    _ => f.detail.clone(),
                };
                self.flag(f.flag, detail);
            }
            Kind::Exec(_) | Kind::File(_) | Kind::Exit { .. } | Kind::Lost { .. } => {}
        }
    }

    fn flag(&mut self, k: FlagKind, detail: String) {
        self.ev.add_flag((k, detail), 0, 1);
    }

    pub fn files(&self) -> usize {
        self.ev.file.len()
    }
    pub fn execs(&self) -> u64 {
        self.ev.exec.values().map(|l| l.count).sum()
    }
    pub fn connections(&self) -> usize {
        self.ev
            .net
            .keys()
            .filter(|k| k.0 == NetDir::Connect)
            .count()
    }
    pub fn dns_names(&self) -> usize {
        self.ev.dns.len()
    }
    pub fn flags(&self) -> usize {
        self.ev.flag.len()
    }

    /// The run's profile: its evidence, generalised.
    pub fn finish(&self, run: RunInfo) -> Profile {
        let mut ev = self.ev.clone();
        ev.runs = vec![run];
        ev.into_profile()
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
