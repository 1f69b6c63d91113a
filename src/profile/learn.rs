//! Learning: a profile's learned entries are a deterministic function of its evidence, the
//! literal observations and the runs they were seen in. Merging unions evidence and learns
//! again, so the result does not depend on the order of the inputs.
//!
//! Generalisation, each step explainable and each keeping the literals it replaced:
//! 1. a segment that looks random (temp names, hex and uuids, pids under /proc), a
//!    versioned shared library or a Python bytecode cache becomes a pattern, whatever the
//!    number of runs: its shape is the evidence;
//! 2. a directory whose files varied across runs becomes `dir/*` when at least two runs saw
//!    it, it has at least three children, and at least half of them were missing from some
//!    run that saw it; a directory with three or more subdirectories collapsed that way
//!    becomes `dir/**`. Never a top-level directory, never ${HOME} itself;
//! 3. the protected set is never generalised and never admitted: a protected path that was
//!    seen becomes an entry marked `protected`, for review.
use std::collections::{BTreeMap, BTreeSet};

use super::compact::{self, Folded};
use super::pattern::PathPat;
use super::protected;
use super::volume;
use super::{
    AddrPat, DnsEntry, DomainPat, ExecEntry, FileEntry, FlagEntry, HttpEntry, LlmEntry, NetDir,
    NetEntry, PortPat, Profile, RunInfo, ToolEntry,
};
use crate::event::{Access, FlagKind, Proto};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lit {
    pub access: BTreeSet<Access>,
    pub seen: BTreeSet<u32>,
    pub count: u64,
    pub failed: u64,
    /// A host's addresses (evidence).
    pub addrs: BTreeSet<String>,
    /// A pattern learned before: literals it stood for, a sample, and how many in all (at
    /// least: a sample hides which literals two inputs shared).
    pub examples: BTreeSet<String>,
    pub literals: u64,
    /// Bytes (out, in) per run: an HTTP endpoint's sent and received; a file's written
    /// and read, a destination's sent and received, as the kernel counted them.
    pub vol: BTreeMap<u32, (u64, u64)>,
    /// A tool's effects by kind, and the runs they were seen in.
    pub effects: BTreeMap<String, BTreeSet<u32>>,
}

impl Lit {
    pub(super) fn join(&mut self, o: &Lit, sum: bool) {
        self.access.extend(o.access.iter().copied());
        self.addrs.extend(o.addrs.iter().cloned());
        self.examples.extend(o.examples.iter().cloned());
        self.seen.extend(o.seen.iter().copied());
        for (k, runs) in &o.effects {
            self.effects.entry(k.clone()).or_default().extend(runs);
        }
        for (run, (s, r)) in &o.vol {
            let v = self.vol.entry(*run).or_default();
            *v = if sum {
                (v.0.saturating_add(*s), v.1.saturating_add(*r))
            } else {
                (v.0.max(*s), v.1.max(*r))
            };
        }
        if sum {
            self.count += o.count;
            self.failed += o.failed;
        } else {
            self.count = self.count.max(o.count);
            self.failed = self.failed.max(o.failed);
        }
        // The same pattern from two inputs most likely stood for the same literals (the
        // same library files, run after run): the larger count is a lower bound. Distinct
        // patterns joining into one add theirs up (`Unit::gather`).
        self.literals = self.literals.max(o.literals);
    }
    pub(super) fn remapped(&self, map: &[u32]) -> Lit {
        Lit {
            seen: self.seen.iter().map(|i| map[*i as usize]).collect(),
            vol: self
                .vol
                .iter()
                .map(|(i, v)| (map[*i as usize], *v))
                .collect(),
            effects: self
                .effects
                .iter()
                .map(|(k, runs)| (k.clone(), runs.iter().map(|i| map[*i as usize]).collect()))
                .collect(),
            ..self.clone()
        }
    }
}

pub type NetKey = (NetDir, Proto, String, PortPat);
/// (proto, name, port) of a connection by name.
pub type HostKey = (Proto, String, PortPat);
/// (service, method, path template) of an HTTP endpoint.
pub type HttpKey = (String, String, String);

/// What learning knows: runs, literal observations, and the hand-written rules it keeps.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub runs: Vec<RunInfo>,
    pub exec: BTreeMap<String, Lit>,
    pub file: BTreeMap<String, Lit>,
    pub net: BTreeMap<NetKey, Lit>,
    pub host: BTreeMap<HostKey, Lit>,
    pub dns: BTreeMap<String, Lit>,
    pub flag: BTreeMap<(FlagKind, String), Lit>,
    pub tool: BTreeMap<String, Lit>,
    /// (host, api)
    pub llm: BTreeMap<(String, String), Lit>,
    pub http: BTreeMap<HttpKey, Lit>,
    /// Endpoints after whose requests the connection switched protocols (HttpEntry::switches).
    pub http_switches: BTreeSet<HttpKey>,
    /// Patterns learned before whose literals were kept only as a sample: they stay.
    pub exec_pat: BTreeMap<String, Lit>,
    pub file_pat: BTreeMap<String, Lit>,
    /// By include: the learned entries it absorbed.
    pub absorbed: BTreeMap<String, Folded>,
    /// Hand-written entries and includes, carried through untouched.
    pub hand: Option<Box<Profile>>,
}

fn add_vol(l: &mut Lit, run: u32, out: u64, inn: u64) {
    let v = l.vol.entry(run).or_default();
    *v = (v.0.saturating_add(out), v.1.saturating_add(inn));
}

/// A literal seen in these runs, this many times.
fn seen(runs: &[u32], count: u64) -> Lit {
    Lit {
        seen: runs.iter().copied().collect(),
        count,
        ..Default::default()
    }
}

/// `l` joined into the literal `key` has (a new one if none).
fn join<K: Ord>(m: &mut BTreeMap<K, Lit>, key: K, l: Lit) {
    m.entry(key).or_default().join(&l, true);
}

/// Per-run volumes (out, in) from an entry's fields, aligned with `seen`; an absent field
/// is nothing moved.
fn vols(seen: &[u32], out: &[u64], inn: &[u64]) -> BTreeMap<u32, (u64, u64)> {
    seen.iter()
        .enumerate()
        .map(|(i, run)| {
            let at = |v: &[u64]| v.get(i).copied().unwrap_or(0);
            (*run, (at(out), at(inn)))
        })
        .filter(|(_, v)| *v != (0, 0))
        .collect()
}

/// A profile's hand-written entries, without its runs.
fn hand_written(p: &Profile) -> Profile {
    let mut hand = Profile {
        run_info: Vec::new(),
        runs: 0,
        ..p.clone()
    };
    hand.exec.retain(|e| !e.learned);
    hand.file.retain(|e| !e.learned);
    hand.net.retain(|e| !e.learned);
    hand.dns.retain(|e| !e.learned);
    hand.flag.retain(|e| !e.learned);
    hand.tool.retain(|e| !e.learned);
    hand.llm.retain(|e| !e.learned);
    hand.http.retain(|e| !e.learned);
    hand.absorbed.clear();
    hand
}

fn lit(run: u32, count: u64) -> Lit {
    Lit {
        seen: BTreeSet::from([run]),
        count,
        ..Default::default()
    }
}

impl Evidence {
    pub fn add_exec(&mut self, path: &str, run: u32, count: u64) {
        self.exec
            .entry(path.to_string())
            .or_default()
            .join(&lit(run, count), true);
    }
    pub fn add_file(
        &mut self,
        path: &str,
        access: impl IntoIterator<Item = Access>,
        run: u32,
        count: u64,
    ) {
        let mut l = lit(run, count);
        l.access.extend(access);
        self.file
            .entry(path.to_string())
            .or_default()
            .join(&l, true);
    }
    pub fn add_net(&mut self, key: NetKey, run: u32, count: u64, failed: u64) {
        let l = Lit {
            failed,
            ..lit(run, count)
        };
        self.net.entry(key).or_default().join(&l, true);
    }
    pub fn add_host(&mut self, key: HostKey, addr: &str, run: u32, count: u64, failed: u64) {
        // A name with '*' cannot be written as itself (`*.com` is a wildcard rule): never
        // learned, so it stays a finding, and is connected to by address in the profile.
        if key.1.contains('*') {
            return self.add_net(
                (NetDir::Connect, key.0, addr.to_string(), key.2),
                run,
                count,
                failed,
            );
        }
        let mut l = Lit {
            failed,
            ..lit(run, count)
        };
        l.addrs.insert(addr.to_string());
        self.host.entry(key).or_default().join(&l, true);
    }
    pub fn add_dns(&mut self, name: &str, run: u32, count: u64) {
        // As for hosts: a queried `*.com` is no rule for every name under com.
        if name.contains('*') {
            return;
        }
        self.dns
            .entry(name.to_string())
            .or_default()
            .join(&lit(run, count), true);
    }
    pub fn add_tool(&mut self, name: &str, run: u32, count: u64) {
        self.tool
            .entry(name.to_string())
            .or_default()
            .join(&lit(run, count), true);
    }
    /// A call of a known tool caused this kind of effect.
    pub fn add_tool_effect(&mut self, name: &str, kind: &str, run: u32) {
        if let Some(l) = self.tool.get_mut(name) {
            l.effects.entry(kind.to_string()).or_default().insert(run);
        }
    }
    pub fn add_llm(&mut self, host: &str, api: &str, run: u32, count: u64) {
        self.llm
            .entry((host.to_string(), api.to_string()))
            .or_default()
            .join(&lit(run, count), true);
    }
    /// One request to an endpoint (its key already a template) and the bytes it moved.
    pub fn add_http(&mut self, key: HttpKey, run: u32, sent: u64, received: u64, switched: bool) {
        let l = Lit {
            vol: BTreeMap::from([(run, (sent, received))]),
            ..lit(run, 1)
        };
        if switched {
            self.http_switches.insert(key.clone());
        }
        self.http.entry(key).or_default().join(&l, true);
    }
    /// Bytes the kernel counted on a file this run opened (out: written, in: read).
    /// Volume only joins evidence: a file the run was not seen opening (inherited) adds
    /// none.
    pub fn add_file_volume(&mut self, path: &str, run: u32, out: u64, inn: u64) {
        if let Some(l) = self.file.get_mut(path) {
            add_vol(l, run, out, inn);
        }
    }
    /// Bytes the kernel counted on a socket to a destination this run connected to.
    pub fn add_net_volume(&mut self, key: NetKey, run: u32, out: u64, inn: u64) {
        if let Some(l) = self.net.get_mut(&key) {
            add_vol(l, run, out, inn);
        }
    }
    pub fn add_host_volume(&mut self, key: HostKey, run: u32, out: u64, inn: u64) {
        if let Some(l) = self.host.get_mut(&key) {
            add_vol(l, run, out, inn);
        }
    }
    pub fn add_flag(&mut self, key: (FlagKind, String), run: u32, count: u64) {
        self.flag
            .entry(key)
            .or_default()
            .join(&lit(run, count), true);
    }

    /// A profile's learned entries taken back to literals (patterns give back what they
    /// replaced); its hand-written entries kept aside.
    pub fn from_profile(p: &Profile) -> Evidence {
        let mut ev = Evidence {
            runs: p.run_info.clone(),
            ..Default::default()
        };
        for e in p.exec.iter().filter(|e| e.learned) {
            if e.replaced.is_empty() && !is_literal(&e.path.0) && !e.protected {
                let l = Lit {
                    examples: e.examples.iter().cloned().collect(),
                    literals: e.literals.max(e.examples.len() as u64),
                    ..seen(&e.seen, e.count)
                };
                join(&mut ev.exec_pat, e.path.0.clone(), l);
            } else if e.replaced.is_empty() {
                join(&mut ev.exec, unescape(&e.path.0), seen(&e.seen, e.count));
            }
            for r in &e.replaced {
                join(&mut ev.exec, r.path.clone(), seen(&r.seen, r.count));
            }
        }
        for e in p.file.iter().filter(|e| e.learned) {
            let read = vols(&e.seen, &[], &e.read);
            if e.replaced.is_empty() && !is_literal(&e.path.0) && !e.protected {
                let l = Lit {
                    access: e.access.clone(),
                    examples: e.examples.iter().cloned().collect(),
                    literals: e.literals.max(e.examples.len() as u64),
                    vol: read,
                    ..seen(&e.seen, e.count)
                };
                join(&mut ev.file_pat, e.path.0.clone(), l);
            } else if e.replaced.is_empty() {
                let l = Lit {
                    access: e.access.clone(),
                    vol: read,
                    ..seen(&e.seen, e.count)
                };
                join(&mut ev.file, unescape(&e.path.0), l);
            }
            for r in &e.replaced {
                let l = Lit {
                    access: r.access.clone(),
                    ..seen(&r.seen, r.count)
                };
                join(&mut ev.file, r.path.clone(), l);
            }
        }
        for e in p.net.iter().filter(|e| e.learned) {
            let l = Lit {
                failed: e.failed,
                addrs: e.addresses.iter().cloned().collect(),
                vol: vols(&e.seen, &e.sent, &e.received),
                ..seen(&e.seen, e.count)
            };
            match (&e.host, &e.addr) {
                (Some(h), _) => join(&mut ev.host, (e.proto, h.0.clone(), e.port), l),
                (None, Some(a)) => join(&mut ev.net, (e.op, e.proto, a.0.clone(), e.port), l),
                (None, None) => continue,
            }
        }
        for e in p.dns.iter().filter(|e| e.learned) {
            join(&mut ev.dns, e.name.0.clone(), seen(&e.seen, e.count));
        }
        for e in p.flag.iter().filter(|e| e.learned) {
            join(
                &mut ev.flag,
                (e.flag, e.detail.clone()),
                seen(&e.seen, e.count),
            );
        }
        for e in p.tool.iter().filter(|e| e.learned) {
            let l = Lit {
                effects: e
                    .effects
                    .iter()
                    .map(|(k, runs)| (k.clone(), runs.iter().copied().collect()))
                    .collect(),
                ..seen(&e.seen, e.count)
            };
            join(&mut ev.tool, e.name.clone(), l);
        }
        for e in p.llm.iter().filter(|e| e.learned) {
            join(
                &mut ev.llm,
                (e.host.clone(), e.api.clone()),
                seen(&e.seen, e.count),
            );
        }
        for e in p.http.iter().filter(|e| e.learned) {
            let l = Lit {
                vol: vols(&e.seen, &e.sent, &e.received),
                ..seen(&e.seen, e.count)
            };
            let key = (e.service.clone(), e.method.clone(), e.path.clone());
            if e.switches {
                ev.http_switches.insert(key.clone());
            }
            join(&mut ev.http, key, l);
        }
        for a in &p.absorbed {
            let f = Folded::from_absorbed(a);
            ev.absorbed
                .entry(a.include.clone())
                .or_default()
                .join(&f, true);
        }
        ev.hand = Some(Box::new(hand_written(p)));
        ev
    }

    /// Joins another body of evidence whose run indices are mapped through `map`.
    /// `sum` adds counts (disjoint runs); otherwise the larger is kept (the same runs).
    pub fn absorb(&mut self, o: &Evidence, map: &[u32], sum: bool) {
        fn each<K: Ord + Clone>(
            dst: &mut BTreeMap<K, Lit>,
            src: &BTreeMap<K, Lit>,
            map: &[u32],
            sum: bool,
        ) {
            for (k, l) in src {
                dst.entry(k.clone())
                    .or_default()
                    .join(&l.remapped(map), sum);
            }
        }
        each(&mut self.exec, &o.exec, map, sum);
        each(&mut self.file, &o.file, map, sum);
        each(&mut self.net, &o.net, map, sum);
        each(&mut self.host, &o.host, map, sum);
        each(&mut self.dns, &o.dns, map, sum);
        each(&mut self.flag, &o.flag, map, sum);
        each(&mut self.tool, &o.tool, map, sum);
        each(&mut self.llm, &o.llm, map, sum);
        each(&mut self.http, &o.http, map, sum);
        self.http_switches.extend(o.http_switches.iter().cloned());
        each(&mut self.exec_pat, &o.exec_pat, map, sum);
        each(&mut self.file_pat, &o.file_pat, map, sum);
        for (k, f) in &o.absorbed {
            self.absorbed
                .entry(k.clone())
                .or_default()
                .join(&f.remapped(map), sum);
        }
    }

    /// Learns: the profile these observations support, with the hand-written rules.
    pub fn into_profile(self) -> Profile {
        let mut p = match self.hand {
            Some(h) => *h,
            None => Profile::empty(),
        };
        p.runs = self.runs.len() as u32;
        p.run_info = self.runs;
        let seen = |l: &Lit| l.seen.iter().copied().collect::<Vec<u32>>();
        // Kernel-counted volumes per run of `seen`: (out, in) in Lit::vol.
        let vol_out = |l: &Lit| volume::per_run(&seen(l), |r| l.vol.get(&r).map_or(0, |v| v.0));
        let vol_in = |l: &Lit| volume::per_run(&seen(l), |r| l.vol.get(&r).map_or(0, |v| v.1));
        p.exec.extend(
            learn_paths(&self.exec, &self.exec_pat, false)
                .into_iter()
                .map(|u| {
                    let (examples, literals) = u.sample();
                    ExecEntry {
                        allowed: None,
                        path: PathPat(u.path),
                        learned: true,
                        protected: u.protected,
                        seen: seen(&u.lit),
                        count: u.lit.count,
                        replaced: Vec::new(),
                        examples,
                        literals,
                    }
                }),
        );
        p.file.extend(
            learn_paths(&self.file, &self.file_pat, true)
                .into_iter()
                .map(|u| {
                    let (examples, literals) = u.sample();
                    FileEntry {
                        allowed: None,
                        path: PathPat(u.path),
                        access: u.lit.access.clone(),
                        learned: true,
                        protected: u.protected,
                        seen: seen(&u.lit),
                        count: u.lit.count,
                        replaced: Vec::new(),
                        examples,
                        literals,
                        read: vol_in(&u.lit),
                    }
                }),
        );
        p.net.extend(
            self.net
                .iter()
                .map(|((op, proto, addr, port), l)| NetEntry {
                    allowed: None,
                    op: *op,
                    proto: *proto,
                    addr: Some(AddrPat(addr.clone())),
                    host: None,
                    port: *port,
                    private: false,
                    addresses: Vec::new(),
                    learned: true,
                    seen: seen(l),
                    count: l.count,
                    failed: l.failed,
                    sent: vol_out(l),
                    received: vol_in(l),
                }),
        );
        p.net
            .extend(self.host.iter().map(|((proto, name, port), l)| NetEntry {
                allowed: None,
                op: NetDir::Connect,
                proto: *proto,
                addr: None,
                host: Some(DomainPat(name.clone())),
                port: *port,
                private: false,
                addresses: l.addrs.iter().cloned().collect(),
                learned: true,
                seen: seen(l),
                count: l.count,
                failed: l.failed,
                sent: vol_out(l),
                received: vol_in(l),
            }));
        p.dns.extend(self.dns.iter().map(|(name, l)| DnsEntry {
            allowed: None,
            name: DomainPat(name.clone()),
            learned: true,
            seen: seen(l),
            count: l.count,
        }));
        p.flag
            .extend(self.flag.iter().map(|((flag, detail), l)| FlagEntry {
                allowed: None,
                flag: *flag,
                detail: detail.clone(),
                learned: true,
                seen: seen(l),
                count: l.count,
            }));
        p.tool.extend(self.tool.iter().map(|(name, l)| {
            ToolEntry {
                allowed: None,
                name: name.clone(),
                learned: true,
                seen: seen(l),
                count: l.count,
                effects: l
                    .effects
                    .iter()
                    .map(|(k, runs)| (k.clone(), runs.iter().copied().collect()))
                    .collect(),
            }
        }));
        p.llm
            .extend(self.llm.iter().map(|((host, api), l)| LlmEntry {
                allowed: None,
                host: host.clone(),
                api: api.clone(),
                learned: true,
                seen: seen(l),
                count: l.count,
            }));
        p.http.extend(self.http.iter().map(|(key, l)| {
            let (service, method, path) = key;
            HttpEntry {
                allowed: None,
                service: service.clone(),
                method: method.clone(),
                path: path.clone(),
                learned: true,
                seen: seen(l),
                count: l.count,
                sent: l
                    .seen
                    .iter()
                    .map(|r| l.vol.get(r).map_or(0, |v| v.0))
                    .collect(),
                received: l
                    .seen
                    .iter()
                    .map(|r| l.vol.get(r).map_or(0, |v| v.1))
                    .collect(),
                switches: self.http_switches.contains(key),
            }
        }));
        let mut absorbed = self.absorbed;
        compact::absorb_includes(&mut p, &mut absorbed);
        p.absorbed = absorbed
            .into_iter()
            .map(|(name, f)| f.into_absorbed(name))
            .collect();
        sort(&mut p);
        p
    }
}

/// Sorted and without repeats, so equal profiles print equal.
pub fn sort(p: &mut Profile) {
    p.include.sort();
    p.include.dedup();
    use sort_key::Key;
    p.exec.sort_by_key(Key::key);
    p.exec.dedup();
    p.file.sort_by_key(Key::key);
    p.file.dedup();
    p.net.sort_by_key(Key::key);
    p.net.dedup();
    p.dns.sort_by_key(Key::key);
    p.dns.dedup();
    p.flag.sort_by_key(Key::key);
    p.flag.dedup();
    p.tool.sort_by_key(Key::key);
    p.tool.dedup();
    p.llm.sort_by_key(Key::key);
    p.llm.dedup();
    p.http.sort_by_key(Key::key);
    p.http.dedup();
}

mod sort_key {
    /// Sort key of an entry: what it is about, then hand-written before learned.
    pub trait Key {
        fn key(&self) -> String;
    }
    impl Key for super::ExecEntry {
        fn key(&self) -> String {
            format!("{}\0{}", self.path, self.learned)
        }
    }
    impl Key for super::FileEntry {
        fn key(&self) -> String {
            format!("{}\0{}\0{:?}", self.path, self.learned, self.access)
        }
    }
    impl Key for super::NetEntry {
        fn key(&self) -> String {
            format!(
                "{:?}\0{:?}\0{}\0{:05}-{:05}\0{}",
                self.op,
                self.proto,
                self.describe(),
                self.port.lo,
                self.port.hi,
                self.learned
            )
        }
    }
    impl Key for super::DnsEntry {
        fn key(&self) -> String {
            format!("{}\0{}", self.name, self.learned)
        }
    }
    impl Key for super::ToolEntry {
        fn key(&self) -> String {
            format!("{}\0{}", self.name, self.learned)
        }
    }
    impl Key for super::LlmEntry {
        fn key(&self) -> String {
            format!("{}\0{}\0{}", self.host, self.api, self.learned)
        }
    }
    impl Key for super::HttpEntry {
        fn key(&self) -> String {
            format!(
                "{}\0{}\0{}\0{}",
                self.service, self.path, self.method, self.learned
            )
        }
    }
    impl Key for super::FlagEntry {
        fn key(&self) -> String {
            format!("{:?}\0{}\0{}", self.flag, self.detail, self.learned)
        }
    }
}

/// One learned entry in the making: a literal, or a pattern. `lit.examples` holds the
/// literals it stands for (a literal lists itself, so that a collapse gathers them all) and
/// `literals` how many, with those a pattern learned before no longer lists.
pub(super) struct Unit {
    pub(super) path: String,
    pub(super) lit: Lit,
    pub(super) protected: bool,
    /// `dir/*` collapsed from this directory's files (a candidate for `parent/**`).
    pub(super) collapsed_dir: bool,
}

/// How many literals a pattern keeps as its sample.
pub const EXAMPLES: usize = 3;

impl Unit {
    fn literal(raw: &str, l: &Lit) -> Unit {
        let mut lit = l.clone();
        lit.examples = BTreeSet::from([raw.to_string()]);
        lit.literals = 1;
        Unit {
            path: escape(raw),
            lit,
            protected: false,
            collapsed_dir: false,
        }
    }

    /// A shape, a family or a pattern learned before: never a candidate for `parent/**`,
    /// which takes directories that this learning collapsed on evidence (a shape's `dir/*`
    /// of random names is no such evidence).
    pub(super) fn pattern(path: String, lit: Lit) -> Unit {
        Unit {
            collapsed_dir: false,
            path,
            lit,
            protected: false,
        }
    }

    pub(super) fn join(&mut self, o: &Unit) {
        self.lit.join(&o.lit, true);
    }

    /// How many literals it stands for, as far as known.
    pub(super) fn literals(&self) -> u64 {
        self.lit.literals.max(self.lit.examples.len() as u64)
    }

    /// The evidence of distinct units (a collapse, a family): their literals add up.
    pub(super) fn gather(group: &[Unit]) -> Lit {
        let mut lit = Lit::default();
        for u in group {
            lit.join(&u.lit, true);
        }
        lit.literals = group.iter().map(Unit::literals).sum();
        lit
    }

    /// (examples, literals) as the profile writes them: none for a literal.
    fn sample(&self) -> (Vec<String>, u64) {
        let lit = self.lit.examples.len() == 1
            && self.lit.literals <= 1
            && self.lit.examples.first().map(|r| escape(r)) == Some(self.path.clone());
        if lit || self.protected {
            return (Vec::new(), 0);
        }
        let ex: Vec<String> = self.lit.examples.iter().take(EXAMPLES).cloned().collect();
        (ex, self.literals())
    }
}

fn learn_paths(
    obs: &BTreeMap<String, Lit>,
    before: &BTreeMap<String, Lit>,
    files: bool,
) -> Vec<Unit> {
    let mut out = Vec::new();
    // Patterns learned before take the literals learning would have given them: those of
    // their shape, and, for a directory's `dir/*` or `dir/**` (a collapse or a family), those
    // under it of the same kind of access (access_class). So learning as runs come gives
    // what learning from all at once gives, and no pattern widens to a new kind of access.
    let matchers: Vec<(String, globset::GlobMatcher)> = before
        .keys()
        .filter_map(|p| {
            let g = super::pattern::glob(&placeholder(p)).ok()?;
            Some((p.clone(), g.compile_matcher()))
        })
        .collect();
    let mut shaped: BTreeMap<String, Unit> = before
        .iter()
        .map(|(p, l)| (p.clone(), Unit::pattern(p.clone(), l.clone())))
        .collect();
    let mut literal: Vec<Unit> = Vec::new();
    for (raw, l) in obs {
        // Protected from what it did (an exec: no access): a read of .git/config is
        // learned like any read; a write to it is listed for review and admits nothing.
        let guard = protected::guard(&placeholder(raw));
        let guarded = guard.is_some_and(|g| {
            if l.access.is_empty() {
                g.covers(None)
            } else {
                l.access.iter().any(|a| g.covers(Some(*a)))
            }
        });
        if guarded {
            let mut u = Unit::literal(raw, l);
            u.protected = true;
            out.push(u);
            continue;
        }
        let me = Unit::literal(raw, l);
        let subject = placeholder(raw);
        let shape = shape(raw);
        let earlier = matchers.iter().find(|(p, m)| {
            shape.as_deref() == Some(p)
                || dir_form(p)
                    && m.is_match(super::pattern::subject(&subject))
                    && access_class(&l.access) == access_class(&shaped[p].lit.access)
        });
        match (earlier, shape) {
            (Some((p, _)), _) => {
                let u = shaped.get_mut(p).expect("a pattern from before");
                // Runs the pattern already counted: the same run merged again (merge
                // refuses inputs that share only some runs), so its count is not added.
                let again = me.lit.seen.is_subset(&before[p].seen);
                u.lit.join(&me.lit, !again);
            }
            (None, Some(pat)) => shaped
                .entry(pat.clone())
                .or_insert_with(|| Unit::pattern(pat, Lit::default()))
                .join(&me),
            (None, None) => literal.push(me),
        }
    }
    let mut units: Vec<Unit> = shaped.into_values().chain(literal).collect();
    if files {
        units = compact::families(units);
        units = collapse_dirs(units, false);
        units = collapse_dirs(units, true);
    }
    out.extend(units);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Step 2: collapse directories whose children varied across runs. With `deep`, a
/// directory whose children are themselves collapsed directories becomes `dir/**`.
/// A `**` pattern is already as wide as a directory gets.
fn collapse_dirs(units: Vec<Unit>, deep: bool) -> Vec<Unit> {
    // By directory and kind of access: a directory whose files are read does not become
    // writable because one of them was written.
    let mut by_dir: BTreeMap<(String, String), Vec<Unit>> = BTreeMap::new();
    let mut out = Vec::new();
    for u in units {
        if u.path.ends_with("/**") {
            out.push(u);
            continue;
        }
        let dir = if deep && u.collapsed_dir {
            parent(parent(&u.path).unwrap_or("")).map(str::to_string)
        } else {
            parent(&u.path).map(str::to_string)
        };
        let class = access_class(&u.lit.access);
        by_dir
            .entry((dir.unwrap_or_default(), class))
            .or_default()
            .push(u);
    }
    for ((dir, _), group) in by_dir {
        let candidates = group.iter().filter(|u| !deep || u.collapsed_dir).count();
        let runs: BTreeSet<u32> = group
            .iter()
            .flat_map(|u| u.lit.seen.iter().copied())
            .collect();
        let varying = group.iter().filter(|u| u.lit.seen != runs).count();
        // Subdirectories that were collapsed already varied: that is the evidence for `**`.
        let varied = if deep {
            true
        } else {
            varying * 2 >= group.len()
        };
        let ok = !dir.is_empty()
            && depth(&dir) >= 2
            && dir != "${HOME}"
            && candidates >= 3
            && group.len() >= 3
            && runs.len() >= 2
            && varied
            && group.iter().all(|u| !u.protected);
        if !ok {
            out.extend(group);
            continue;
        }
        let lit = Unit::gather(&group);
        let path = if deep {
            format!("{dir}/**")
        } else {
            format!("{dir}/*")
        };
        out.push(Unit {
            path,
            lit,
            protected: false,
            collapsed_dir: !deep,
        });
    }
    out
}

/// Reads (read, list, path) are one kind of access; anything that changes a file is its
/// own kind, by the exact accesses.
fn access_class(a: &BTreeSet<Access>) -> String {
    if a.iter()
        .all(|x| matches!(x, Access::Read | Access::List | Access::Path))
    {
        "read".into()
    } else {
        format!("{a:?}")
    }
}

/// `dir/*` or `dir/**` under a literal directory: what a collapse or a family writes.
fn dir_form(p: &str) -> bool {
    let dir = p.strip_suffix("/**").or_else(|| p.strip_suffix("/*"));
    dir.is_some_and(is_literal)
}

pub(super) fn parent(p: &str) -> Option<&str> {
    p.rsplit_once('/').map(|(d, _)| d).filter(|d| !d.is_empty())
}

pub(super) fn depth(dir: &str) -> usize {
    dir.split('/').filter(|s| !s.is_empty()).count()
}

/// Variables replaced by stand-ins, for checks that need an absolute path.
pub(super) fn placeholder(raw: &str) -> String {
    raw.replacen("${HOME}", "/home/_", 1)
        .replacen("${CWD}", "/_cwd", 1)
}

/// A literal path in pattern syntax: glob characters escaped, a leading variable kept.
pub fn escape(raw: &str) -> String {
    let (var, tail) = split_var(raw);
    format!("{var}{}", globset::escape(tail))
}

/// Whether a learned path is a literal (an escaped path), not a pattern.
pub fn is_literal(p: &str) -> bool {
    escape(&unescape(p)) == p
}

/// The inverse of `escape`.
pub fn unescape(p: &str) -> String {
    let (var, tail) = split_var(p);
    let mut out = String::from(var);
    let b = tail.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'[' && i + 2 < b.len() && b[i + 2] == b']' && b"*?[]{}".contains(&b[i + 1]) {
            out.push(b[i + 1] as char);
            i += 3;
        } else {
            let ch = tail[i..].chars().next().unwrap_or('?');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn split_var(p: &str) -> (&str, &str) {
    if p.starts_with("${") {
        if let Some(end) = p.find('}') {
            return (&p[..=end], &p[end + 1..]);
        }
    }
    ("", p)
}

/// Step 1: the pattern a literal path generalises to, if any segment of it does.
pub fn shape(raw: &str) -> Option<String> {
    let (var, tail) = split_var(raw);
    let segs: Vec<&str> = tail.split('/').collect();
    let mut changed = false;
    let mut out = String::from(var);
    for (i, seg) in segs.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        let prev = if i > 0 { segs[i - 1] } else { "" };
        let under_proc = var.is_empty()
            && (i == 2 && segs[1] == "proc" || (i == 4 && segs[1] == "proc" && segs[3] == "task"));
        let g = if under_proc && !seg.is_empty() && seg.bytes().all(|c| c.is_ascii_digit()) {
            Some("*".to_string())
        } else if prev == "__pycache__" && seg.ends_with(".pyc") {
            Some("*.pyc".to_string())
        } else {
            segment_shape(seg)
        };
        // A random last name right under `/`, a top-level directory, ${HOME} or ${CWD}
        // stays itself: `dir/*` there would be any file of the directory.
        let shallow = i + 1 == segs.len() && g.as_deref() == Some("*") && depth(&out) < 2;
        match g {
            Some(g) if !shallow => {
                changed = true;
                out.push_str(&g);
            }
            _ => out.push_str(&globset::escape(seg)),
        }
    }
    (changed && PathPat::check(&out).is_ok()).then_some(out)
}

/// A segment's random or versioned parts as `*`, if it has any.
fn segment_shape(seg: &str) -> Option<String> {
    // Versioned shared library: libssl.so.3, libc.so.6, libpython3.11.so.1.0
    if let Some(i) = seg.find(".so.") {
        let ver = &seg[i + 4..];
        if seg.starts_with("lib")
            && !ver.is_empty()
            && ver
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
        {
            return Some(format!("{}.so.*", globset::escape(&seg[..i])));
        }
    }
    // Python's tempfile: "tmp" and eight of [a-z0-9_].
    if seg.len() == 11
        && seg.starts_with("tmp")
        && seg[3..]
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
    {
        return Some("tmp*".to_string());
    }
    // mktemp: NAME.XXXXXX, a suffix of six or more letters and digits in mixed case.
    if let Some((name, suf)) = seg.rsplit_once('.') {
        if !name.is_empty()
            && suf.len() >= 6
            && suf.bytes().all(|c| c.is_ascii_alphanumeric())
            && suf.bytes().any(|c| c.is_ascii_uppercase())
            && suf.bytes().any(|c| c.is_ascii_lowercase())
        {
            return Some(format!("{}.*", globset::escape(name)));
        }
    }
    // uuids, long hex runs with digits and letters, long digit runs (timestamps, ids).
    let b = seg.as_bytes();
    let mut out = String::new();
    let mut changed = false;
    let mut i = 0;
    while i < b.len() {
        let run_end = (i..b.len())
            .find(|&j| !(b[j].is_ascii_hexdigit() || b[j] == b'-'))
            .unwrap_or(b.len());
        let run = &seg[i..run_end];
        if is_random_run(run) {
            out.push('*');
            changed = true;
            i = run_end;
        } else {
            let ch = seg[i..].chars().next().unwrap_or('?');
            out.push_str(&globset::escape(&ch.to_string()));
            i += ch.len_utf8();
        }
    }
    changed.then_some(out)
}

fn is_random_run(run: &str) -> bool {
    let is_uuid = run.len() == 36 && run.split('-').map(str::len).eq([8, 4, 4, 4, 12]);
    let hex: String = run.chars().filter(|c| *c != '-').collect();
    let digits = hex.bytes().filter(|c| c.is_ascii_digit()).count();
    let letters = hex.len() - digits;
    let hexy = !run.contains('-') && hex.len() >= 8 && digits >= 2 && letters >= 2;
    let numeric = !run.contains('-') && digits >= 6 && letters == 0;
    is_uuid || hexy || numeric
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_of_random_and_versioned_segments() {
        assert_eq!(
            shape("/tmp/tmpa8x2k1qz/out.txt").as_deref(),
            Some("/tmp/tmp*/out.txt")
        );
        assert_eq!(
            shape("/tmp/agent-work.Xy12Ab/report.txt").as_deref(),
            Some("/tmp/agent-work.*/report.txt")
        );
        assert_eq!(
            shape("/proc/4242/status").as_deref(),
            Some("/proc/*/status")
        );
        assert_eq!(
            shape("/proc/4242/task/4243/stat").as_deref(),
            Some("/proc/*/task/*/stat")
        );
        assert_eq!(shape("/proc/self/status"), None);
        assert_eq!(
            shape("/usr/lib/x86_64-linux-gnu/libssl.so.3").as_deref(),
            Some("/usr/lib/x86_64-linux-gnu/libssl.so.*")
        );
        assert_eq!(
            shape("/usr/lib/x86_64-linux-gnu/libpcre2-8.so.0.11.2").as_deref(),
            Some("/usr/lib/x86_64-linux-gnu/libpcre2-8.so.*")
        );
        assert_eq!(
            shape("${HOME}/app/__pycache__/tools.cpython-311.pyc").as_deref(),
            Some("${HOME}/app/__pycache__/*.pyc")
        );
        assert_eq!(
            shape("/var/cache/3f2b9c1d0e7a/blob").as_deref(),
            Some("/var/cache/*/blob")
        );
        assert_eq!(
            shape("/run/x/123e4567-e89b-12d3-a456-426614174000.json").as_deref(),
            Some("/run/x/*.json")
        );
        assert_eq!(
            shape("/var/log/app-20261126123000.log").as_deref(),
            Some("/var/log/app-*.log")
        );
        for plain in [
            "/usr/bin/python3.11",
            "/etc/hosts",
            "/home/ann/report.txt",
            "/usr/lib/python3.11/deadbeef",
            "/srv/file.backup1",
        ] {
            assert_eq!(shape(plain), None, "{plain}");
        }
    }

    #[test]
    fn escape_round_trips() {
        for raw in ["/a/b*c/[x]/{y}", "${HOME}/we?ird", "/plain/path"] {
            assert_eq!(unescape(&escape(raw)), raw);
            assert!(PathPat::check(&escape(raw)).is_ok());
        }
    }
}
