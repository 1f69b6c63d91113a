//! From one run's event stream to the behaviour it shows (`What`, shared with diff), and so
//! to that run's evidence and profile.
use std::collections::BTreeSet;

use super::learn::Evidence;
use super::{NetDir, PortPat, Profile, RunInfo, Vars};
use crate::event::{Access, Event, Family, FileOp, FlagKind, Kind, NetOp, Proto};
use crate::tree::Tree;

/// One piece of behaviour, in the terms a profile uses; paths are absolute.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum What {
    Exec {
        path: String,
    },
    File {
        path: String,
        access: BTreeSet<Access>,
    },
    Net {
        op: NetDir,
        proto: Proto,
        addr: String,
        port: u16,
    },
    /// A connection to an address the tree resolved from `name`.
    Host {
        proto: Proto,
        name: String,
        port: u16,
        addr: String,
    },
    Dns {
        name: String,
    },
    Flag {
        flag: FlagKind,
        detail: String,
    },
    /// A tool call the model asked for, by tool name.
    Tool {
        name: String,
    },
    /// An LLM API called, by host.
    Llm {
        host: String,
        api: String,
    },
    /// An HTTP endpoint other than an LLM API: service (`host:port`), method, path template.
    Http {
        service: String,
        method: String,
        path: String,
    },
}

impl What {
    /// Every name escaped for a person and for the profile's text (paths::printable): a
    /// name the tree or the model chose never brings a control character along.
    fn printable(self) -> What {
        let p = |s: String| match crate::paths::printable(&s) {
            std::borrow::Cow::Borrowed(_) => s,
            std::borrow::Cow::Owned(o) => o,
        };
        match self {
            What::Exec { path } => What::Exec { path: p(path) },
            What::File { path, access } => What::File {
                path: p(path),
                access,
            },
            What::Net {
                op,
                proto,
                addr,
                port,
            } => What::Net {
                op,
                proto,
                addr: p(addr),
                port,
            },
            What::Host {
                proto,
                name,
                port,
                addr,
            } => What::Host {
                proto,
                name: p(name),
                port,
                addr: p(addr),
            },
            What::Dns { name } => What::Dns { name: p(name) },
            What::Flag { flag, detail } => What::Flag {
                flag,
                detail: p(detail),
            },
            What::Tool { name } => What::Tool { name: p(name) },
            What::Llm { host, api } => What::Llm {
                host: p(host),
                api: p(api),
            },
            What::Http {
                service,
                method,
                path,
            } => What::Http {
                service: p(service),
                method: p(method),
                path: p(path),
            },
        }
    }
}

/// The behaviour one event shows, its names escaped (What::printable); the run's process
/// tree says whether a ptrace target is one of the tree's.
pub fn observe(ev: &Event, tree: &Tree) -> Vec<What> {
    observe_raw(ev, tree)
        .into_iter()
        .map(What::printable)
        .collect()
}

/// The behaviour one event shows. Failures show none: only what succeeded is behaviour
/// a profile admits (failed network attempts count, as intent); the rest stays in the
/// event log.
fn observe_raw(ev: &Event, tree: &Tree) -> Vec<What> {
    match &ev.kind {
        Kind::Exec(x) if x.error.is_none() => {
            let mut v = vec![What::Exec {
                path: x.path.clone(),
            }];
            // A script is opened for execution as well as its interpreter.
            if let Some(script) = &x.script {
                v.push(What::Exec {
                    path: script.clone(),
                });
            }
            if x.via_fd || x.unlinked {
                let what = if x.unlinked {
                    "a file with no name (memfd or deleted)"
                } else {
                    "an fd"
                };
                v.push(What::Flag {
                    flag: FlagKind::ExecFd,
                    detail: format!("exec through {what}"),
                });
            }
            v
        }
        Kind::File(f) if f.error.is_none() => {
            let mut v = vec![What::File {
                path: f.path.clone(),
                access: f.access.iter().copied().collect(),
            }];
            if let (FileOp::Rename | FileOp::Link, Some(t)) = (f.op, &f.target) {
                v.push(What::File {
                    path: t.clone(),
                    access: BTreeSet::from([Access::Create]),
                });
            }
            v
        }
        Kind::Net(n) => {
            let op = match n.op {
                NetOp::Connect | NetOp::Sendto | NetOp::Sendmsg => NetDir::Connect,
                NetOp::Bind => NetDir::Bind,
                NetOp::Listen => NetDir::Listen,
                // No destination to learn: the event log keeps the refusal.
                NetOp::Socket => return Vec::new(),
            };
            if let (NetDir::Connect, Some(name)) = (op, &n.name) {
                return vec![What::Host {
                    proto: n.proto,
                    name: name.clone(),
                    port: n.port,
                    addr: n.addr.clone(),
                }];
            }
            let addr = match n.family {
                Family::Inet | Family::Inet6 => n.addr.clone(),
                // An unnamed unix socket (autobind) gets an abstract name.
                Family::Unix if n.addr.is_empty() => "@".to_string(),
                // A name bound relative to another process's directory says nothing
                // a rule can hold (the kernel side compares bound names): the event
                // log keeps it; enforce denies it.
                Family::Unix if n.addr.starts_with("./") => return Vec::new(),
                Family::Unix => n.addr.clone(),
                // AF_UNSPEC (a UDP disconnect) and other families stay in the event log.
                _ => return Vec::new(),
            };
            let mut v = vec![What::Net {
                op,
                proto: n.proto,
                addr,
                port: n.port,
            }];
            // Binding a unix socket to a path makes a file there, which enforce checks
            // as a creation (path_mknod; Landlock's make-socket right).
            if n.op == NetOp::Bind && n.error.is_none() && n.addr.starts_with('/') {
                v.push(What::File {
                    path: n.addr.clone(),
                    access: BTreeSet::from([Access::Create]),
                });
            }
            v
        }
        // The query said what was asked; the answer names connections (names.rs).
        Kind::Dns(d) if d.answer => Vec::new(),
        Kind::Dns(d) => {
            let mut v: Vec<What> = d
                .names
                .iter()
                .map(|n| What::Dns { name: n.clone() })
                .collect();
            let (addr, port) = split_host_port(&d.server);
            v.push(What::Net {
                op: NetDir::Resolve,
                proto: Proto::Udp,
                addr,
                port,
            });
            v
        }
        Kind::Flag(f) => {
            let detail = match f.flag {
                // The target pid differs every run; whether it is ours does not.
                FlagKind::Ptrace => {
                    let (req, pid) = f.detail.rsplit_once(" pid ").unwrap_or((&f.detail, ""));
                    match pid.parse::<u32>() {
                        Ok(p) if p == 0 || tree.is_live(p) => {
                            format!("{req} (a process of the tree)")
                        }
                        _ => format!("{req} (a process outside the tree)"),
                    }
                }
                FlagKind::Capset => "capset".to_string(),
                _ => f.detail.clone(),
            };
            vec![What::Flag {
                flag: f.flag,
                detail,
            }]
        }
        // A call the agent's hook reported is the tree's word: it teaches no tool.
        Kind::ToolCall(t) if t.reported => Vec::new(),
        Kind::ToolCall(t) => vec![What::Tool {
            name: t.name.clone(),
        }],
        Kind::LlmRequest(r) => vec![What::Llm {
            host: r.host.to_ascii_lowercase(),
            api: r.api.clone(),
        }],
        // LLM calls are the [[llm]] section's; their volume is the conversation's.
        Kind::Http(h) if h.api.is_none() => vec![What::Http {
            service: super::http::service(&h.host, h.transport == "tls"),
            method: super::http::method(&h.method),
            path: super::http::template(&h.path),
        }],
        _ => Vec::new(),
    }
}

/// A cause this sure or surer ties an effect to a tool's own baseline: lineage or the
/// call's arguments naming what was done. Timing alone (the agent's own process busy
/// during a call: its imports, its caches) is not its tool's behaviour.
pub const EFFECT_CONFIDENCE: f32 = 0.6;

/// The kinds of effect (super::EFFECTS) behaviour shows, for per-tool baselines.
pub fn effects(whats: &[What]) -> BTreeSet<&'static str> {
    let reads = |a: &BTreeSet<Access>| {
        a.iter()
            .all(|a| matches!(a, Access::Read | Access::List | Access::Path))
    };
    whats
        .iter()
        .filter_map(|w| match w {
            What::Exec { .. } => Some("exec"),
            What::File { access, .. } if reads(access) => Some("read"),
            What::File { .. } => Some("write"),
            What::Net {
                op: NetDir::Connect,
                ..
            }
            | What::Host { .. }
            | What::Http { .. } => Some("connect"),
            _ => None,
        })
        .collect()
}

/// Builds the profile of one run from its event stream.
#[derive(Default)]
pub struct Builder {
    ev: Evidence,
    vars: Vars,
    sight: super::sight::Sight,
    /// The recording's hook socket, from its start event.
    hook: Option<String>,
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

    /// Counts a root of the tree (the pipeline's tree holds it).
    pub fn add_root(&mut self) {
        self.processes += 1;
    }

    /// Adds an event, read with the run's process tree (which already holds it); returns
    /// the behaviour it showed.
    pub fn add(&mut self, ev: &Event, tree: &Tree) -> Vec<What> {
        self.sight.observe(ev);
        if ev.failed() {
            self.failures += 1;
        }
        if let Kind::Fork { .. } = ev.kind {
            self.processes += 1;
        }
        if let Kind::Io(io) = &ev.kind {
            self.add_volume(io);
            return Vec::new();
        }
        if let Kind::Start { hook, .. } = &ev.kind {
            // Only a name a recording gives its hook socket: an edited log cannot hide
            // another socket (a daemon's) this way.
            self.hook = hook.clone().filter(|h| crate::hook::is_listener_name(h));
        }
        // Datagrams to the recording's own hook socket (the start event names it): new in
        // every run. Anything else done to that name is the tree's, and learned.
        if let Kind::Net(n) = &ev.kind {
            if n.family == Family::Unix
                && n.proto == Proto::Dgram
                && matches!(n.op, NetOp::Connect | NetOp::Sendto | NetOp::Sendmsg)
                && self.hook.as_ref() == Some(&n.addr)
            {
                return Vec::new();
            }
        }
        let whats = observe(ev, tree);
        let failed = u64::from(ev.failed());
        // A connection refused by a policy (enforce's, or the host's own) is reported, and
        // rated by a live check, but never learned: merging an enforced run into its
        // baseline must not turn what was denied into what is allowed.
        if ev.denied() {
            return whats;
        }
        // A link to a call the agent's hook reported is the tree's word: no effect learned.
        if let Some(c) = ev
            .cause
            .as_ref()
            .filter(|c| c.confidence >= EFFECT_CONFIDENCE && !c.reported)
        {
            if !ev.failed() {
                // Under the name the tool is learned by (What::printable).
                let tool = crate::paths::printable(&c.tool);
                for kind in effects(&whats) {
                    self.ev.add_tool_effect(&tool, kind, 0);
                }
            }
        }
        for w in &whats {
            match w {
                What::Exec { path } => self.ev.add_exec(&self.vars.abstract_path(path), 0, 1),
                What::File { path, access } => {
                    self.ev
                        .add_file(&self.vars.abstract_path(path), access.iter().copied(), 0, 1)
                }
                What::Net {
                    op,
                    proto,
                    addr,
                    port,
                } => {
                    let port = if *port == 0 {
                        PortPat::default()
                    } else {
                        PortPat::one(*port)
                    };
                    self.ev
                        .add_net((*op, *proto, addr.clone(), port), 0, 1, failed);
                }
                What::Host {
                    proto,
                    name,
                    port,
                    addr,
                } => self.ev.add_host(
                    (*proto, name.clone(), PortPat::one(*port)),
                    addr,
                    0,
                    1,
                    failed,
                ),
                What::Dns { name } => self.ev.add_dns(name, 0, 1),
                What::Flag { flag, detail } => self.ev.add_flag((*flag, detail.clone()), 0, 1),
                What::Tool { name } => self.ev.add_tool(name, 0, 1),
                What::Llm { host, api } => self.ev.add_llm(host, api, 0, 1),
                What::Http {
                    service,
                    method,
                    path,
                } => {
                    let (sent, received, switched) = match &ev.kind {
                        Kind::Http(h) => (h.sent, h.received, h.switched()),
                        _ => (0, 0, false),
                    };
                    self.ev.add_http(
                        (service.clone(), method.clone(), path.clone()),
                        0,
                        sent,
                        received,
                        switched,
                    )
                }
            }
        }
        whats
    }

    /// Bytes the kernel counted on one open file, joined to what the run did with it: the
    /// file it opened, the destination it connected to (by the name the tree resolved).
    fn add_volume(&mut self, io: &crate::event::Io) {
        if let Some(path) = &io.path {
            let path = self.vars.abstract_path(&crate::paths::printable(path));
            return self.ev.add_file_volume(&path, 0, io.written, io.read);
        }
        let (Some(proto), false) = (io.proto, io.addr.is_empty()) else {
            return;
        };
        let port = PortPat::one(io.port);
        let p = |s: &str| crate::paths::printable(s).into_owned();
        match &io.name {
            Some(name) => self
                .ev
                .add_host_volume((proto, p(name), port), 0, io.written, io.read),
            None => self.ev.add_net_volume(
                (NetDir::Connect, proto, p(&io.addr), port),
                0,
                io.written,
                io.read,
            ),
        }
    }

    /// What ${CWD} and ${HOME} stand for in this run.
    pub fn vars(&self) -> &Vars {
        &self.vars
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
            + self.ev.host.len()
    }
    pub fn dns_names(&self) -> usize {
        self.ev.dns.len()
    }
    pub fn flags(&self) -> usize {
        self.ev.flag.len()
    }
    pub fn tools(&self) -> usize {
        self.ev.tool.len()
    }

    /// The run's profile: its evidence, generalised.
    pub fn finish(&self, mut run: RunInfo) -> Profile {
        self.sight.fill(&mut run);
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
