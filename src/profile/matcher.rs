//! Does a profile cover this behaviour? The one user-space matcher: diff uses it, and the
//! kernel's enforcement must agree with it. Protected paths are covered only by rules
//! written by hand. Each answer also says how strong the evidence is: the number of runs
//! the strongest covering entry was seen in (`HAND` for a rule written by hand).
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use anyhow::{bail, Result};
use globset::GlobMatcher;
use ipnet::IpNet;

use super::pattern::{expand_braces, glob, is_glob, subject, DomainPat, PortPat, Vars};
use super::protected;
use super::{NetDir, Profile};
use crate::event::{Access, FlagKind, Proto};

/// Path rules: exact paths in a map; patterns indexed by the directory their literal
/// prefix names, so a path is tested only against the patterns of its ancestors (a few
/// hash lookups) instead of against every pattern. Each rule carries its payload and
/// whether it was written by hand.
struct PathRules<T> {
    exact: HashMap<String, Vec<(T, u32)>>,
    by_dir: HashMap<String, Vec<usize>>,
    globs: Vec<(GlobMatcher, T, u32)>,
}

/// Strength of a rule written by hand: stronger than any number of runs.
pub const HAND: u32 = u32::MAX;

/// The directory named by a pattern's literal prefix: "/srv/d/*.py" -> "/srv/d",
/// "/usr/lib/python3.*/**" -> "/usr/lib", "**/x" -> "".
fn literal_dir(p: &str) -> &str {
    let lit = &p[..p.find(['*', '?', '[', '{']).unwrap_or(p.len())];
    lit.rfind('/').map(|i| &lit[..i]).unwrap_or("")
}

impl<T: Clone> PathRules<T> {
    fn build(rules: Vec<(String, T, u32)>) -> Result<Self> {
        let mut exact: HashMap<String, Vec<(T, u32)>> = HashMap::new();
        let mut by_dir: HashMap<String, Vec<usize>> = HashMap::new();
        let mut globs = Vec::new();
        let rules = rules.into_iter().flat_map(|(p, t, hand)| {
            let alts = expand_braces(&p).unwrap_or_else(|_| vec![p]);
            alts.into_iter().map(move |a| (a, t.clone(), hand))
        });
        for (p, t, hand) in rules {
            if is_glob(&p) {
                by_dir
                    .entry(literal_dir(&p).to_string())
                    .or_default()
                    .push(globs.len());
                globs.push((
                    glob(&p).map_err(anyhow::Error::msg)?.compile_matcher(),
                    t,
                    hand,
                ));
            } else {
                exact.entry(p).or_default().push((t, hand));
            }
        }
        Ok(PathRules {
            exact,
            by_dir,
            globs,
        })
    }

    /// Every rule matching `path`, with its strength.
    fn each(&self, path: &str, mut f: impl FnMut(&T, u32)) {
        if let Some(v) = self.exact.get(path) {
            for (t, hand) in v {
                f(t, *hand);
            }
        }
        if self.globs.is_empty() {
            return;
        }
        let mut dir = path;
        loop {
            dir = match dir.rfind('/') {
                Some(i) => &dir[..i],
                None => break,
            };
            if let Some(idx) = self.by_dir.get(dir) {
                for &i in idx {
                    let (g, t, hand) = &self.globs[i];
                    if g.is_match(subject(path)) {
                        f(t, *hand);
                    }
                }
            }
            if dir.is_empty() {
                break;
            }
        }
    }
}

/// What the profile says of one behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub verdict: Verdict,
    /// Runs the strongest entry granting it was seen in; HAND for a hand-written rule; 0
    /// when nothing grants it.
    pub strength: u32,
    /// Files: the accesses the profile grants this path (empty when the path is unknown).
    pub known: BTreeSet<Access>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Covered,
    /// Protected, and no hand-written rule admits it.
    Protected,
    /// What the profile does not allow of it (for a file: the accesses).
    Uncovered(BTreeSet<Access>),
}

enum AddrRule {
    Any,
    Net(IpNet),
    Unix(String),
}

struct NetRule {
    op: NetDir,
    proto: Proto,
    addr: AddrRule,
    port: PortPat,
    strength: u32,
}

struct HostRule {
    proto: Proto,
    name: DomainPat,
    port: PortPat,
    strength: u32,
}

pub struct Matcher {
    files: PathRules<BTreeSet<Access>>,
    execs: PathRules<()>,
    net: Vec<NetRule>,
    hosts: Vec<HostRule>,
    dns_exact: HashMap<String, u32>,
    dns_wild: Vec<(DomainPat, u32)>,
    flags: HashMap<(FlagKind, String), u32>,
    tools: HashMap<String, u32>,
    /// By host (lower case); the API is detail.
    llm_hosts: HashMap<String, u32>,
    /// HTTP endpoints by (service, method, path template).
    http: HashMap<(String, String, String), u32>,
    /// HTTP services, and whether a rule admits a write method there.
    http_services: HashMap<String, bool>,
    /// HTTP endpoints a rule says switch protocols (HttpEntry::switches).
    http_switches: HashSet<(String, String, String)>,
}

/// A rule `agentguard allow` wrote without --protected: as strong as a hand-written one (it
/// is never rare), but the protected set wins over it as over a learned one, so that
/// allowing a directory never admits the credentials in it.
pub const ALLOWED: u32 = u32::MAX - 1;

fn strength(learned: bool, seen: &[u32], allowed: &Option<super::Allowed>) -> u32 {
    match allowed {
        _ if learned => (seen.len() as u32).max(1),
        // A learned entry with its evidence edited away still stands for one run.
        Some(a) if !a.protected => ALLOWED,
        _ => HAND,
    }
}

impl Matcher {
    /// Compiles a profile whose includes are resolved (include::resolve). Learned entries
    /// marked protected admit nothing.
    pub fn new(p: &Profile, vars: &Vars) -> Result<Matcher> {
        let expand = |section: &str, path: &str| -> Result<String> {
            vars.expand(path)
                .or_else(|e| bail!("[[{section}]] {path}: {e}"))
        };
        let mut files = Vec::new();
        for e in p.file.iter().filter(|e| !e.protected) {
            files.push((
                expand("file", &e.path.0)?,
                e.access.clone(),
                strength(e.learned, &e.seen, &e.allowed),
            ));
        }
        let mut execs = Vec::new();
        for e in p.exec.iter().filter(|e| !e.protected) {
            execs.push((
                expand("exec", &e.path.0)?,
                (),
                strength(e.learned, &e.seen, &e.allowed),
            ));
        }
        let net = p
            .net
            .iter()
            .filter_map(|e| {
                let a = e.addr.as_ref()?;
                Some(NetRule {
                    op: e.op,
                    proto: e.proto,
                    addr: if a.0 == "*" {
                        AddrRule::Any
                    } else if let Some(n) = a.net() {
                        AddrRule::Net(n)
                    } else {
                        AddrRule::Unix(a.0.clone())
                    },
                    port: e.port,
                    strength: strength(e.learned, &e.seen, &e.allowed),
                })
            })
            .collect();
        let hosts = p
            .net
            .iter()
            .filter_map(|e| {
                Some(HostRule {
                    proto: e.proto,
                    name: e.host.clone()?,
                    port: e.port,
                    strength: strength(e.learned, &e.seen, &e.allowed),
                })
            })
            .collect();
        let mut dns_exact = HashMap::new();
        let mut dns_wild = Vec::new();
        for e in &p.dns {
            let st = strength(e.learned, &e.seen, &e.allowed);
            if e.name.0.starts_with("*.") {
                dns_wild.push((e.name.clone(), st));
            } else {
                let v = dns_exact.entry(e.name.0.to_ascii_lowercase()).or_insert(0);
                *v = (*v).max(st);
            }
        }
        let mut flags: HashMap<(FlagKind, String), u32> = HashMap::new();
        for f in &p.flag {
            let v = flags.entry((f.flag, f.detail.clone())).or_insert(0);
            *v = (*v).max(strength(f.learned, &f.seen, &f.allowed));
        }
        let mut tools: HashMap<String, u32> = HashMap::new();
        for t in &p.tool {
            let v = tools.entry(t.name.clone()).or_insert(0);
            *v = (*v).max(strength(t.learned, &t.seen, &t.allowed));
        }
        let mut llm_hosts: HashMap<String, u32> = HashMap::new();
        for l in &p.llm {
            let v = llm_hosts.entry(l.host.to_ascii_lowercase()).or_insert(0);
            *v = (*v).max(strength(l.learned, &l.seen, &l.allowed));
        }
        let mut http: HashMap<(String, String, String), u32> = HashMap::new();
        let mut http_services: HashMap<String, bool> = HashMap::new();
        let mut http_switches = HashSet::new();
        for h in &p.http {
            let v = http
                .entry((h.service.clone(), h.method.clone(), h.path.clone()))
                .or_insert(0);
            *v = (*v).max(strength(h.learned, &h.seen, &h.allowed));
            if h.switches {
                http_switches.insert((h.service.clone(), h.method.clone(), h.path.clone()));
            }
            *http_services.entry(h.service.clone()).or_default() |=
                super::http::is_write(&h.method);
        }
        Ok(Matcher {
            hosts,
            tools,
            llm_hosts,
            http,
            http_services,
            http_switches,
            files: PathRules::build(files)?,
            execs: PathRules::build(execs)?,
            net,
            dns_exact,
            dns_wild,
            flags,
        })
    }

    pub fn file(&self, path: &str, access: &BTreeSet<Access>) -> Verdict {
        self.file_hit(path, access).verdict
    }

    pub fn file_hit(&self, path: &str, access: &BTreeSet<Access>) -> Hit {
        // Learned rules grant a protected path only what its guard leaves (a read of
        // .git/config); hand-written rules grant everything they say.
        let guard = protected::guard(path);
        let guarded = |a: &Access| guard.is_some_and(|g| g.covers(Some(*a)));
        let mut known = BTreeSet::new();
        let mut strength = 0;
        self.files.each(path, |a, st| {
            let usable: Vec<Access> = a
                .iter()
                .flat_map(|x| std::iter::once(*x).chain(x.implies().iter().copied()))
                .filter(|x| st == HAND || !guarded(x))
                .collect();
            known.extend(usable.iter().copied());
            if usable.iter().any(|x| access.contains(x)) {
                strength = strength.max(st);
            }
        });
        let missing: BTreeSet<Access> = access.difference(&known).copied().collect();
        let verdict = if missing.is_empty() {
            Verdict::Covered
        } else if missing.iter().any(guarded) {
            Verdict::Protected
        } else {
            Verdict::Uncovered(missing)
        };
        Hit {
            verdict,
            strength,
            known,
        }
    }

    #[cfg(test)]
    pub fn exec(&self, path: &str) -> Verdict {
        self.exec_hit(path).verdict
    }

    pub fn exec_hit(&self, path: &str) -> Hit {
        let protected = protected::protects(path, None);
        let mut strength = 0;
        self.execs.each(path, |_, st| {
            if st == HAND || !protected {
                strength = strength.max(st);
            }
        });
        let verdict = match (strength > 0, protected) {
            (true, _) => Verdict::Covered,
            (false, true) => Verdict::Protected,
            (false, false) => Verdict::Uncovered(BTreeSet::new()),
        };
        Hit {
            verdict,
            strength,
            known: BTreeSet::new(),
        }
    }

    /// `addr` is an IP address or a unix socket path (abstract: '@' first).
    #[cfg(test)]
    pub fn net(&self, op: NetDir, proto: Proto, addr: &str, port: u16) -> bool {
        self.net_strength(op, proto, addr, port) > 0
    }

    pub fn net_strength(&self, op: NetDir, proto: Proto, addr: &str, port: u16) -> u32 {
        let ip = addr.parse::<IpAddr>().ok();
        self.net
            .iter()
            .filter(|r| {
                r.op == op
                    && r.proto == proto
                    && r.port.contains(port)
                    && match &r.addr {
                        // As the kernel compiles it: any IP address, no unix socket.
                        AddrRule::Any => ip.is_some(),
                        AddrRule::Net(n) => ip.is_some_and(|ip| n.contains(&ip)),
                        AddrRule::Unix(p) => p == addr,
                    }
            })
            .map(|r| r.strength)
            .max()
            .unwrap_or(0)
    }

    /// A connection to `addr`, resolved from `name`: covered by a rule for the name or for
    /// the address.
    pub fn host_strength(&self, proto: Proto, name: &str, port: u16, addr: &str) -> u32 {
        let by_name = self
            .hosts
            .iter()
            .filter(|r| r.proto == proto && r.port.contains(port) && r.name.matches(name))
            .map(|r| r.strength)
            .max()
            .unwrap_or(0);
        by_name.max(self.net_strength(NetDir::Connect, proto, addr, port))
    }

    /// Whether any rule names the host, whatever the port.
    pub fn host_known(&self, name: &str) -> bool {
        self.hosts.iter().any(|r| r.name.matches(name))
    }

    /// Whether any rule of this direction names the address, whatever the port.
    pub fn net_host_known(&self, op: NetDir, addr: &str) -> bool {
        let ip = addr.parse::<IpAddr>().ok();
        self.net.iter().any(|r| {
            r.op == op
                && match &r.addr {
                    AddrRule::Any => false,
                    AddrRule::Net(n) => ip.is_some_and(|ip| n.contains(&ip)),
                    AddrRule::Unix(p) => p == addr,
                }
        })
    }

    #[cfg(test)]
    pub fn dns(&self, name: &str) -> bool {
        self.dns_strength(name) > 0
    }

    pub fn dns_strength(&self, name: &str) -> u32 {
        let name = name.to_ascii_lowercase();
        let exact = self.dns_exact.get(&name).copied().unwrap_or(0);
        let wild = self
            .dns_wild
            .iter()
            .filter(|(w, _)| w.matches(&name))
            .map(|(_, s)| *s)
            .max()
            .unwrap_or(0);
        exact.max(wild)
    }

    #[cfg(test)]
    pub fn flag(&self, flag: FlagKind, detail: &str) -> bool {
        self.flag_strength(flag, detail) > 0
    }

    pub fn tool_strength(&self, name: &str) -> u32 {
        self.tools.get(name).copied().unwrap_or(0)
    }

    pub fn llm_strength(&self, host: &str) -> u32 {
        self.llm_hosts
            .get(&host.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    pub fn http_strength(&self, service: &str, method: &str, path: &str) -> u32 {
        self.http
            .get(&(service.to_string(), method.to_string(), path.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Whether a rule says the endpoint switches protocols.
    pub fn http_switches(&self, service: &str, method: &str, path: &str) -> bool {
        self.http_switches
            .contains(&(service.to_string(), method.to_string(), path.to_string()))
    }

    /// None: a service no rule names; else whether one admits a write method there.
    pub fn http_service(&self, service: &str) -> Option<bool> {
        self.http_services.get(service).copied()
    }

    pub fn flag_strength(&self, flag: FlagKind, detail: &str) -> u32 {
        self.flags
            .get(&(flag, detail.to_string()))
            .copied()
            .unwrap_or(0)
    }
}
