//! Does a profile cover this behaviour? The one user-space matcher: diff uses it, and the
//! kernel's enforcement must agree with it. Protected paths are covered only by rules
//! written by hand.
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use anyhow::{bail, Result};
use globset::GlobMatcher;
use ipnet::IpNet;

use super::pattern::{glob, is_glob, DomainPat, PortPat, Vars};
use super::protected::is_protected;
use super::{NetDir, Profile};
use crate::event::{Access, FlagKind, Proto};

/// Path rules: exact paths in a map; patterns indexed by the directory their literal
/// prefix names, so a path is tested only against the patterns of its ancestors (a few
/// hash lookups) instead of against every pattern. Each rule carries its payload and
/// whether it was written by hand.
struct PathRules<T> {
    exact: HashMap<String, Vec<(T, bool)>>,
    by_dir: HashMap<String, Vec<usize>>,
    globs: Vec<(GlobMatcher, T, bool)>,
}

/// The directory named by a pattern's literal prefix: "/srv/d/*.py" -> "/srv/d",
/// "/usr/lib/python3.*/**" -> "/usr/lib", "**/x" -> "".
fn literal_dir(p: &str) -> &str {
    let lit = &p[..p.find(['*', '?', '[', '{']).unwrap_or(p.len())];
    lit.rfind('/').map(|i| &lit[..i]).unwrap_or("")
}

impl<T: Clone> PathRules<T> {
    fn build(rules: Vec<(String, T, bool)>) -> Result<Self> {
        let mut exact: HashMap<String, Vec<(T, bool)>> = HashMap::new();
        let mut by_dir: HashMap<String, Vec<usize>> = HashMap::new();
        let mut globs = Vec::new();
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

    /// Every rule matching `path`, with its hand flag.
    fn each(&self, path: &str, mut f: impl FnMut(&T, bool)) {
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
                    if g.is_match(path) {
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Covered,
    /// Protected, and no hand-written rule admits it.
    Protected,
    /// What the profile does not allow of it (for a file: the accesses).
    Uncovered(BTreeSet<Access>),
}

#[cfg_attr(not(test), allow(dead_code))]
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
}

// exec, net, dns and flag checks serve diff (issue 4); today tests and the bench use them.
#[cfg_attr(not(test), allow(dead_code))]
pub struct Matcher {
    files: PathRules<BTreeSet<Access>>,
    execs: PathRules<()>,
    net: Vec<NetRule>,
    dns_exact: HashMap<String, ()>,
    dns_wild: Vec<DomainPat>,
    flags: BTreeSet<(FlagKind, String)>,
}

#[cfg_attr(not(test), allow(dead_code))]
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
            files.push((expand("file", &e.path.0)?, e.access.clone(), !e.learned));
        }
        let mut execs = Vec::new();
        for e in p.exec.iter().filter(|e| !e.protected) {
            execs.push((expand("exec", &e.path.0)?, (), !e.learned));
        }
        let net = p
            .net
            .iter()
            .map(|e| NetRule {
                op: e.op,
                proto: e.proto,
                addr: if e.addr.0 == "*" {
                    AddrRule::Any
                } else if let Some(n) = e.addr.net() {
                    AddrRule::Net(n)
                } else {
                    AddrRule::Unix(e.addr.0.clone())
                },
                port: e.port,
            })
            .collect();
        let mut dns_exact = HashMap::new();
        let mut dns_wild = Vec::new();
        for e in &p.dns {
            if e.name.0.starts_with("*.") {
                dns_wild.push(e.name.clone());
            } else {
                dns_exact.insert(e.name.0.to_ascii_lowercase(), ());
            }
        }
        Ok(Matcher {
            files: PathRules::build(files)?,
            execs: PathRules::build(execs)?,
            net,
            dns_exact,
            dns_wild,
            flags: p.flag.iter().map(|f| (f.flag, f.detail.clone())).collect(),
        })
    }

    pub fn file(&self, path: &str, access: &BTreeSet<Access>) -> Verdict {
        let protected = is_protected(path);
        let mut have = BTreeSet::new();
        self.files.each(path, |a, hand| {
            if hand || !protected {
                have.extend(a.iter().copied());
            }
        });
        let missing: BTreeSet<Access> = access.difference(&have).copied().collect();
        match (missing.is_empty(), protected) {
            (true, _) => Verdict::Covered,
            (false, true) => Verdict::Protected,
            (false, false) => Verdict::Uncovered(missing),
        }
    }

    pub fn exec(&self, path: &str) -> Verdict {
        let protected = is_protected(path);
        let mut ok = false;
        self.execs.each(path, |_, hand| ok |= hand || !protected);
        match (ok, protected) {
            (true, _) => Verdict::Covered,
            (false, true) => Verdict::Protected,
            (false, false) => Verdict::Uncovered(BTreeSet::new()),
        }
    }

    /// `addr` is an IP address or a unix socket path (abstract: '@' first).
    pub fn net(&self, op: NetDir, proto: Proto, addr: &str, port: u16) -> bool {
        let ip = addr.parse::<IpAddr>().ok();
        self.net.iter().any(|r| {
            r.op == op
                && r.proto == proto
                && r.port.contains(port)
                && match &r.addr {
                    AddrRule::Any => true,
                    AddrRule::Net(n) => ip.is_some_and(|ip| n.contains(&ip)),
                    AddrRule::Unix(p) => p == addr,
                }
        })
    }

    pub fn dns(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.dns_exact.contains_key(&name) || self.dns_wild.iter().any(|w| w.matches(&name))
    }

    pub fn flag(&self, flag: FlagKind, detail: &str) -> bool {
        self.flags.contains(&(flag, detail.to_string()))
    }
}
