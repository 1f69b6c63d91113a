//! A profile compiled into the rules the kernel checks (src/bpf/policy.h): path globs as a
//! literal directory plus segments, network rules as address prefixes and port ranges.
//! What the kernel cannot express exactly is refused, naming the rule: enforcement never
//! quietly widens or narrows a profile.
use std::collections::BTreeSet;

use anyhow::{bail, Context, Result};

use crate::abi::{ag_access, ag_net_rule, ag_rule_flags};
use crate::event::{Access, Proto};
use crate::profile::pattern::{AddrPat, Vars};
use crate::profile::protected::{self, Guard};
use crate::profile::{NetDir, Profile};

pub const SEGS: usize = 4;
pub const SEG_LIT: usize = 30;
pub const PATHBUF: usize = 4096;

// The kernel's access bits and rule flags (policy.h), by their short names here.
pub const READ: u32 = ag_access::AG_ACC_READ.0;
#[cfg(test)]
pub const WRITE: u32 = ag_access::AG_ACC_WRITE.0;
pub const CREATE: u32 = ag_access::AG_ACC_CREATE.0;
pub const LIST: u32 = ag_access::AG_ACC_LIST.0;
pub const EXEC: u32 = ag_access::AG_ACC_EXEC.0;
pub const DELETE: u32 = ag_access::AG_ACC_DELETE.0;
pub const RENAME: u32 = ag_access::AG_ACC_RENAME.0;
pub const LINK: u32 = ag_access::AG_ACC_LINK.0;
pub const SYMLINK: u32 = ag_access::AG_ACC_SYMLINK.0;
pub const TIMES: u32 = ag_access::AG_ACC_TIMES.0;

pub const HAND: u32 = ag_rule_flags::AG_RULE_HAND.0;
pub const TAIL_ANY: u32 = ag_rule_flags::AG_RULE_TAIL_ANY.0;
pub const PROTECTED_RULE: u32 = ag_rule_flags::AG_RULE_PROTECTED.0;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Seg {
    pub star: bool,
    pub pre: Vec<u8>,
    pub suf: Vec<u8>,
}

/// Where a rule hangs: under a literal directory, anchored on a literal component (rules
/// that start with "**"), or in the short unanchored list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Anchor {
    Dir(String),
    Component(Vec<u8>),
    Unanchored,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: u32,
    pub anchor: Anchor,
    pub segs: Vec<Seg>,
    pub flags: u32,
    pub grant: u32,
    /// The profile text it came from, for denial reports.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRule {
    pub id: u32,
    /// 10 (IPv6; IPv4 as v4-mapped) or 1 (unix).
    pub family: u16,
    pub sotype: u16,
    pub addr: [u8; 16],
    pub prefixlen: u32,
    pub port_lo: u16,
    pub port_hi: u16,
    pub unix: Option<String>,
    pub source: String,
}

impl NetRule {
    /// The rule as the kernel's maps hold it (BPF LSM's and the cgroup programs' alike),
    /// its unix socket name hashed with that object's key.
    pub fn value(&self, key: u64) -> ag_net_rule {
        ag_net_rule {
            family: self.family,
            sotype: self.sotype,
            port_lo: self.port_lo,
            port_hi: self.port_hi,
            prefixlen: self.prefixlen,
            id: self.id,
            addr: self.addr,
            unix_hash: self.unix.as_deref().map_or(0, |u| hash(key, &unix_name(u))),
        }
    }
}

#[derive(Debug, Default)]
pub struct Compiled {
    pub rules: Vec<Rule>,
    pub net: Vec<NetRule>,
    /// Destinations by name: allowed at the addresses DNS answers for them gave the tree.
    pub names: Vec<NameRule>,
}

impl Compiled {
    /// A rule the session adds for a socket of its own the tree may send datagrams to (the
    /// hook's): by exact name, as a profile's unix rule.
    pub fn admit_unix_dgram(&mut self, name: &str, source: &str) -> Result<()> {
        if self.net.len() >= NET_MAX {
            bail!("the profile has {NET_MAX} network rules, the most the kernel side holds, and {source} needs one more");
        }
        let id = self.net.len() as u32;
        self.net.push(net_rule(
            id,
            &AddrPat(name.to_string()),
            Proto::Dgram,
            0,
            u16::MAX,
            source.to_string(),
        )?);
        Ok(())
    }
}

/// The network rules the kernel side holds (policy.h, AG_NET_RULES).
const NET_MAX: usize = 256;

/// A `host` rule: connections to addresses the tree resolved from a matching name.
#[derive(Debug, Clone, PartialEq)]
pub struct NameRule {
    /// Its bit in the kernel's bitmaps.
    pub id: u32,
    pub sotype: u16,
    pub name: crate::profile::DomainPat,
    pub proto: Proto,
    pub lo: u16,
    pub hi: u16,
    /// Loopback, link-local and cloud-metadata answers allowed too.
    pub private: bool,
    pub source: String,
}

pub fn access_bits(a: &BTreeSet<Access>) -> u32 {
    a.iter().fold(0, |bits, x| bits | crate::abi::bit(*x))
}

/// What a rule granting `a` grants in the kernel: its accesses and what they imply
/// (`Access::implies`).
pub fn grant_bits(a: &BTreeSet<Access>) -> u32 {
    let all: BTreeSet<Access> = a
        .iter()
        .flat_map(|x| std::iter::once(*x).chain(x.implies().iter().copied()))
        .collect();
    access_bits(&all)
}

/// `{a,b}` alternatives multiplied out: the profile's one expansion (pattern.rs).
pub fn expand_braces(p: &str) -> Result<Vec<String>> {
    crate::profile::pattern::expand_braces(p).map_err(anyhow::Error::msg)
}

/// A segment's text with globset's escapes ("[*]") resolved; None if it has a class or '?'.
pub fn literal(seg: &str) -> Option<Vec<u8>> {
    let b = seg.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'[' if i + 2 < b.len() && b[i + 2] == b']' => {
                out.push(b[i + 1]);
                i += 3;
            }
            b'[' | b']' | b'?' | b'*' | b'{' | b'}' => return None,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

fn segment(seg: &str, whole: &str) -> Result<Seg> {
    if let Some(l) = literal(seg) {
        if l.len() > SEG_LIT {
            bail!("{whole:?}: the segment {seg:?} after the first pattern is longer than {SEG_LIT} bytes");
        }
        return Ok(Seg {
            star: false,
            pre: l,
            suf: Vec::new(),
        });
    }
    let parts: Vec<&str> = seg.split('*').collect();
    let ok = parts.len() == 2 && literal(parts[0]).is_some() && literal(parts[1]).is_some();
    if !ok {
        bail!("{whole:?}: the kernel matches one '*' per segment and no '?' or [classes]; {seg:?} has more");
    }
    let (pre, suf) = (
        literal(parts[0]).unwrap_or_default(),
        literal(parts[1]).unwrap_or_default(),
    );
    if pre.len() > SEG_LIT || suf.len() > SEG_LIT {
        bail!("{whole:?}: the literal parts of {seg:?} are longer than {SEG_LIT} bytes");
    }
    Ok(Seg {
        star: true,
        pre,
        suf,
    })
}

/// One expanded glob (no braces) as a kernel rule.
pub fn glob_rule(p: &str) -> Result<(Anchor, Vec<Seg>, bool)> {
    let comps: Vec<&str> = p.split('/').collect();
    let anywhere = comps.first() == Some(&"**");
    if !anywhere && !p.starts_with('/') {
        bail!("{p:?} is not absolute");
    }
    // Both "/a/b" and "**/a/b" split into a first element ("" or "**") and the segments.
    let body: &[&str] = &comps[1..];
    let tail_any = body.last() == Some(&"**");
    let body = if tail_any {
        &body[..body.len() - 1]
    } else {
        body
    };
    if body.contains(&"**") {
        bail!("{p:?}: the kernel matches \"**\" only at the start or the end of a pattern");
    }
    if body.iter().any(|s| s.is_empty()) {
        bail!("{p:?} has an empty segment");
    }
    let mut dir = String::new();
    let mut i = 0;
    if !anywhere {
        while i < body.len() {
            match literal(body[i]) {
                Some(l) => {
                    dir.push('/');
                    dir.push_str(&String::from_utf8_lossy(&l));
                    i += 1;
                }
                _ => break,
            }
        }
    }
    let segs = body[i..]
        .iter()
        .map(|s| segment(s, p))
        .collect::<Result<Vec<_>>>()?;
    if segs.len() > SEGS {
        bail!("{p:?}: more than {SEGS} segments after its literal directory");
    }
    if dir.len() >= PATHBUF / 2 {
        bail!("{p:?} is too long for the kernel to check");
    }
    let anchor = if !anywhere {
        Anchor::Dir(dir)
    } else {
        match segs.first() {
            Some(s) if !s.star => Anchor::Component(s.pre.clone()),
            _ => Anchor::Unanchored,
        }
    };
    Ok((anchor, segs, tail_any))
}

/// Where each glob already is in `Compiled::rules`, while compiling: a repeated one merges.
type Index = std::collections::HashMap<(Anchor, Vec<Seg>, u32), usize>;

fn add_path_rules(
    out: &mut Compiled,
    index: &mut Index,
    pattern: &str,
    vars: &Vars,
    grant: u32,
    flags: u32,
    source: String,
) -> Result<()> {
    let expanded = vars
        .expand(pattern)
        .map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
    for p in expand_braces(&expanded)? {
        let (anchor, segs, tail) = glob_rule(&p).map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
        let flags = flags | if tail { TAIL_ANY } else { 0 };
        // The same glob twice (a rule and what --deny-at adds to it): one kernel rule
        // granting both, since a directory holds few. Protected rules stay apart: their
        // grant is what they leave, not what they give.
        let key = (anchor.clone(), segs.clone(), flags);
        if flags & PROTECTED_RULE == 0 {
            if let Some(&i) = index.get(&key) {
                out.rules[i].grant |= grant;
                continue;
            }
            index.insert(key, out.rules.len());
        }
        let id = out.rules.len() as u32;
        out.rules.push(Rule {
            id,
            anchor,
            segs,
            flags,
            grant,
            source: source.clone(),
        });
    }
    Ok(())
}

/// Drops learned rules that a learned `dir/*` of the same directory covers (`dir/*.so`
/// read beside `dir/*` read): the kernel holds AG_DIR_RULES per directory, and
/// --deny-at adds a `dir/*` to every directory the baseline reads.
fn drop_subsumed(out: &mut Compiled) {
    let any = Seg {
        star: true,
        pre: Vec::new(),
        suf: Vec::new(),
    };
    let learned = |r: &Rule| r.flags & (HAND | PROTECTED_RULE | TAIL_ANY) == 0;
    let wide: std::collections::HashMap<Anchor, u32> = out
        .rules
        .iter()
        .filter(|r| learned(r) && r.segs.len() == 1 && r.segs[0] == any)
        .map(|r| (r.anchor.clone(), r.grant))
        .collect();
    if wide.is_empty() {
        return;
    }
    out.rules.retain(|r| {
        let covered = learned(r)
            && r.segs.len() == 1
            && r.segs[0] != any
            && wide.get(&r.anchor).is_some_and(|g| r.grant & !g == 0);
        !covered
    });
    for (i, r) in out.rules.iter_mut().enumerate() {
        r.id = i as u32;
    }
}

fn sotype(p: Proto) -> u16 {
    match p {
        Proto::Tcp | Proto::Stream => 1,
        Proto::Udp | Proto::Dgram => 2,
        Proto::Raw => 3,
        Proto::Seqpacket => 5,
        Proto::Other => 0,
    }
}

fn net_rule(
    id: u32,
    addr: &AddrPat,
    proto: Proto,
    lo: u16,
    hi: u16,
    source: String,
) -> Result<NetRule> {
    let mut r = NetRule {
        id,
        family: 10,
        sotype: sotype(proto),
        addr: [0; 16],
        prefixlen: 0,
        port_lo: lo,
        port_hi: hi,
        unix: None,
        source,
    };
    if addr.0 == "*" {
        return Ok(r);
    }
    if addr.0.starts_with('/') || addr.0.starts_with('@') {
        r.family = 1;
        r.unix = Some(addr.0.clone());
        return Ok(r);
    }
    match addr
        .net()
        .ok_or_else(|| anyhow::anyhow!("{}: bad address", r.source))?
    {
        ipnet::IpNet::V4(n) => {
            r.addr = n.network().to_ipv6_mapped().octets();
            r.prefixlen = 96 + u32::from(n.prefix_len());
        }
        ipnet::IpNet::V6(n) => {
            r.addr = n.network().octets();
            r.prefixlen = u32::from(n.prefix_len());
        }
    }
    Ok(r)
}

/// The profile (includes resolved) as kernel rules, with the protected set.
pub fn compile(p: &Profile, vars: &Vars) -> Result<Compiled> {
    let mut out = Compiled::default();
    let mut index = Index::new();
    for (pat, cat, guard) in protected::rules() {
        // A protected rule's grant is what it leaves to learned rules: nothing for a
        // secret, all but writes for a persistence point, all but moving, removing and
        // replacing for a directory above them (protected.rs, Guard).
        let keep = match guard {
            Guard::All => 0,
            Guard::Writes => READ | LIST | EXEC,
            Guard::Entry => !(DELETE | RENAME | CREATE | LINK | SYMLINK | TIMES),
        };
        add_path_rules(
            &mut out,
            &mut index,
            pat,
            vars,
            keep,
            PROTECTED_RULE,
            format!("protected set: {pat} ({cat})"),
        )?;
    }
    for e in p.file.iter().filter(|e| !e.protected) {
        let grant = grant_bits(&e.access);
        let flags = if e.learned || e.allowed.as_ref().is_some_and(|a| !a.protected) {
            // Learned, or allowed without --protected: the protected set wins over it.
            0
        } else {
            HAND
        };
        add_path_rules(
            &mut out,
            &mut index,
            &e.path.0,
            vars,
            grant,
            flags,
            format!("[[file]] {}", e.path),
        )?;
    }
    for e in p.exec.iter().filter(|e| !e.protected) {
        let flags = if e.learned || e.allowed.as_ref().is_some_and(|a| !a.protected) {
            // Learned, or allowed without --protected: the protected set wins over it.
            0
        } else {
            HAND
        };
        add_path_rules(
            &mut out,
            &mut index,
            &e.path.0,
            vars,
            EXEC,
            flags,
            format!("[[exec]] {}", e.path),
        )?;
    }
    drop_subsumed(&mut out);
    add_net_rules(&mut out, p)?;
    Ok(out)
}

/// Only the network rules: what the Landlock backend's cgroup programs check (its file
/// rules are Landlock's, see landlock.rs).
pub fn compile_net(p: &Profile) -> Result<Compiled> {
    let mut out = Compiled::default();
    add_net_rules(&mut out, p)?;
    Ok(out)
}

fn add_net_rules(out: &mut Compiled, p: &Profile) -> Result<()> {
    for e in &p.net {
        if !matches!(e.op, NetDir::Connect | NetDir::Resolve) {
            continue; // bind and listen are not checked yet (README, "What enforce covers")
        }
        let (lo, hi) = if e.port.is_any() {
            (0, u16::MAX)
        } else {
            (e.port.lo, e.port.hi)
        };
        let Some(addr) = &e.addr else {
            out.names.push(NameRule {
                id: out.names.len() as u32,
                sotype: sotype(e.proto),
                name: e.host.clone().expect("validated: addr or host"),
                proto: e.proto,
                lo,
                hi,
                private: e.private,
                source: format!("[[net]] connect {}", e.describe()),
            });
            continue;
        };
        let id = out.net.len() as u32;
        out.net.push(net_rule(
            id,
            addr,
            e.proto,
            lo,
            hi,
            format!("[[net]] {:?} {}", e.op, e.describe()),
        )?);
    }
    if out.names.len() > 64 {
        bail!(
            "the profile has {} `host` rules; the kernel side holds 64 (use *.example.com wildcards)",
            out.names.len()
        );
    }
    if out.net.len() > NET_MAX {
        bail!(
            "the profile has {} network rules; the kernel side holds {NET_MAX}",
            out.net.len()
        );
    }
    Ok(())
}

/// A profile's unix socket name as the kernel compares it (policy.h, ag_unix_hash): '@'
/// is the abstract name's leading NUL, and `\xNN` escapes (how a recording writes a NUL
/// or control byte in a name) are that byte again.
pub fn unix_name(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let rest = match s.strip_prefix('@') {
        Some(r) => {
            out.push(0);
            r
        }
        None => s,
    };
    out.extend(crate::paths::unescape(rest));
    out.truncate(108);
    if out.first() != Some(&0) {
        // A path ends at its first NUL, as the kernel reads it.
        if let Some(end) = out.iter().position(|&b| b == 0) {
            out.truncate(end);
        }
    }
    out
}

/// A key per session for that hash: the tree cannot precompute names that collide with
/// a rule's.
pub fn random_key() -> Result<u64> {
    let mut b = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .context("reading /dev/urandom for the rule hash key")?;
    Ok(u64::from_ne_bytes(b))
}

/// The kernel's keyed hash (policy.h, ag_mix()), byte by byte.
pub fn hash(key: u64, bytes: &[u8]) -> u64 {
    let mut h = key;
    for &c in bytes {
        h = (h ^ u64::from(c)).wrapping_mul(0x100000001b3);
        h ^= h >> 29;
    }
    h
}

/// What the kernel decides for a path, computed the way enforce.bpf.c computes it: the
/// model the property test holds against the user-space matcher.
#[cfg(test)]
pub fn kernel_model(c: &Compiled, path: &str, want: u32) -> bool {
    let comps: Vec<&[u8]> = path.split('/').skip(1).map(str::as_bytes).collect();
    let comps: Vec<&[u8]> = if path == "/" { Vec::new() } else { comps };
    let n = comps.len();
    let seg_match = |s: &Seg, c: &[u8]| {
        if s.star {
            c.len() >= s.pre.len() + s.suf.len() && c.starts_with(&s.pre) && c.ends_with(&s.suf)
        } else {
            c == s.pre.as_slice()
        }
    };
    let glob_match = |r: &Rule, j: usize| {
        let rest = n - j;
        let ok = if r.flags & TAIL_ANY != 0 {
            rest > r.segs.len()
        } else {
            rest == r.segs.len()
        };
        ok && r
            .segs
            .iter()
            .enumerate()
            .all(|(i, s)| seg_match(s, comps[j + i]))
    };
    let (mut hand, mut learned, mut keep) = (0u32, 0u32, u32::MAX);
    let mut apply = |r: &Rule| {
        if r.flags & PROTECTED_RULE != 0 {
            keep &= r.grant;
        } else if r.flags & HAND != 0 {
            hand |= r.grant;
        } else {
            learned |= r.grant;
        }
    };
    for r in &c.rules {
        match &r.anchor {
            Anchor::Dir(d) => {
                let dc: Vec<&[u8]> = if d.is_empty() {
                    Vec::new()
                } else {
                    d.split('/').skip(1).map(str::as_bytes).collect()
                };
                if dc.len() <= n && comps[..dc.len()] == dc[..] && glob_match(r, dc.len()) {
                    apply(r);
                }
            }
            Anchor::Component(_) => {
                if (0..n).any(|j| glob_match(r, j)) {
                    apply(r);
                }
            }
            Anchor::Unanchored => {
                if (0..=n).any(|j| glob_match(r, j)) {
                    apply(r);
                }
            }
        }
    }
    let granted = hand | (learned & keep);
    if want == EXEC | READ {
        want & granted != 0 // the kernel's own opens for an exec (enforce_file_open)
    } else {
        want & granted == want
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::matcher::{Matcher, Verdict};

    fn vars() -> Vars {
        Vars {
            home: Some("/home/ann".into()),
            cwd: Some("/home/ann/work".into()),
        }
    }

    #[test]
    fn globs_become_a_directory_and_segments() {
        let (a, s, t) = glob_rule("/tmp/tmp*/out.txt").unwrap();
        assert_eq!(a, Anchor::Dir("/tmp".into()));
        assert_eq!(
            s,
            vec![
                Seg {
                    star: true,
                    pre: b"tmp".to_vec(),
                    suf: vec![]
                },
                Seg {
                    star: false,
                    pre: b"out.txt".to_vec(),
                    suf: vec![]
                }
            ]
        );
        assert!(!t);
        let (a, s, t) = glob_rule("/srv/data/**").unwrap();
        assert_eq!((a, s.len(), t), (Anchor::Dir("/srv/data".into()), 0, true));
        let (a, _, t) = glob_rule("**/.ssh/**").unwrap();
        assert_eq!((a, t), (Anchor::Component(b".ssh".to_vec()), true));
        assert_eq!(glob_rule("**/.env.*").unwrap().0, Anchor::Unanchored);
        assert_eq!(
            glob_rule("/a/b[*]c").unwrap().0,
            Anchor::Dir("/a/b*c".into())
        );
        for bad in ["/a/**/b", "/a/*x*y", "/a/b?c", "/a/[ab]"] {
            assert!(glob_rule(bad).is_err(), "{bad}");
        }
        assert_eq!(expand_braces("/a/{b,c}/{d,e}").unwrap().len(), 4);
    }

    /// Small deterministic generator: no dependency for a test's inputs.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    /// The kernel's decision equals the user-space matcher's, on generated profiles and
    /// paths, the protected set included.
    #[test]
    fn the_kernel_model_agrees_with_the_matcher() {
        let words = [
            "a",
            "b",
            "etc",
            "tmp",
            "x.py",
            "y.pyc",
            ".ssh",
            ".env",
            "home",
            "ann",
            "work",
            "__pycache__",
            "lib.so.3",
            ".bashrc",
        ];
        let mut rng = Lcg(7);
        let mut checked = 0;
        for round in 0..200 {
            let mut text = String::from("version = 1\n");
            for i in 0..6 {
                let depth = 1 + rng.next(3) as usize;
                let mut p = String::new();
                for d in 0..depth {
                    let w = words[rng.next(words.len() as u64) as usize];
                    let seg = match rng.next(6) {
                        0 if d == depth - 1 => "*".to_string(),
                        1 => format!("{}*", &w[..1]),
                        _ => w.to_string(),
                    };
                    p.push('/');
                    p.push_str(&seg);
                }
                if rng.next(4) == 0 {
                    p.push_str("/**");
                }
                if rng.next(8) == 0 {
                    p = format!("**{p}");
                }
                let access = ["read", "write", "list"][rng.next(3) as usize];
                let learned = if (round + i) % 2 == 0 {
                    "learned = true\nseen = []\n"
                } else {
                    ""
                };
                text.push_str(&format!(
                    "[[file]]\npath = \"{p}\"\naccess = [\"{access}\"]\n{learned}"
                ));
            }
            let Ok(profile) = Profile::parse(&text, std::path::Path::new("gen.toml")) else {
                continue;
            };
            let compiled = compile(&profile, &vars()).unwrap();
            let m = Matcher::new(&profile, &vars()).unwrap();
            for _ in 0..50 {
                let depth = 1 + rng.next(5) as usize;
                let path: String = (0..depth)
                    .map(|_| format!("/{}", words[rng.next(words.len() as u64) as usize]))
                    .collect();
                for (bit, acc) in [
                    (READ, Access::Read),
                    (WRITE, Access::Write),
                    (LIST, Access::List),
                ] {
                    let user = m.file(&path, &BTreeSet::from([acc])) == Verdict::Covered;
                    let kernel = kernel_model(&compiled, &path, bit);
                    assert_eq!(kernel, user, "{path} {acc:?} in\n{text}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    /// What --deny-at adds to a directory (`dir/*`) takes in the learned rules it covers,
    /// so a directory the baseline reads many files of stays within the kernel's limit.
    #[test]
    fn a_directory_wide_rule_takes_in_the_narrower_ones_it_covers() {
        let mut text = String::from("version = 1\n");
        for i in 0..40 {
            text.push_str(&format!(
                "[[file]]\npath = \"/usr/lib/x/lib{i}*.so\"\naccess = [\"read\"]\nlearned = true\n"
            ));
        }
        text.push_str(
            "[[file]]\npath = \"/usr/lib/x/lib7*.so\"\naccess = [\"write\"]\nlearned = true\n",
        );
        text.push_str(
            "[[file]]\npath = \"/usr/lib/x/*\"\naccess = [\"read\", \"list\"]\nlearned = true\n",
        );
        text.push_str("[[file]]\npath = \"/usr/lib/x/*\"\naccess = [\"list\"]\nlearned = true\n");
        let p = Profile::parse(&text, std::path::Path::new("w.toml")).unwrap();
        let c = compile(&p, &vars()).unwrap();
        let here: Vec<&Rule> = c
            .rules
            .iter()
            .filter(|r| r.anchor == Anchor::Dir("/usr/lib/x".into()))
            .collect();
        // dir/* (its two entries merged), and lib7*.so for its write.
        assert_eq!(here.len(), 2, "{here:#?}");
        assert!(c.rules.iter().enumerate().all(|(i, r)| r.id == i as u32));
        assert!(kernel_model(&c, "/usr/lib/x/lib7a.so", WRITE));
        assert!(kernel_model(&c, "/usr/lib/x/lib39b.so", READ));
        assert!(!kernel_model(&c, "/usr/lib/x/lib39b.so", WRITE));
    }

    /// That it equals the kernel's mix() is checked where it can be: in the VM, where rules
    /// are found only when both sides hash a path alike (tests/vm/*.sh).
    #[test]
    fn the_hash_is_keyed_and_sees_every_byte() {
        assert_eq!(
            hash(7, b""),
            7,
            "the empty path (the root) hashes to the key"
        );
        assert_ne!(hash(1, b"/etc"), hash(2, b"/etc"));
        assert_ne!(hash(1, b"/etc"), hash(1, b"/etd"));
        assert_ne!(hash(1, b"/ab"), hash(1, b"/ba"));
    }

    /// The session's hook rule is one exact unix datagram name; a full table refuses it
    /// (the session then runs without hooks) rather than dropping a rule of the profile.
    #[test]
    fn the_hook_rule_is_an_exact_name_and_never_displaces_the_profiles() {
        let mut c = Compiled::default();
        c.admit_unix_dgram("@agentguard-hook-rec-1-ab", "hook")
            .unwrap();
        let r = &c.net[0];
        assert_eq!((r.family, r.sotype), (1, 2));
        assert_eq!(r.unix.as_deref(), Some("@agentguard-hook-rec-1-ab"));
        while c.net.len() < NET_MAX {
            c.admit_unix_dgram("@x", "filler").unwrap();
        }
        let e = c.admit_unix_dgram("@y", "hook").unwrap_err();
        assert!(format!("{e}").contains("256"), "{e}");
        assert_eq!(c.net.len(), NET_MAX);
    }
}
