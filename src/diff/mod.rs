//! `agentguard diff`: what a run did that its baseline does not cover, ranked, and a gate
//! for CI. The same checker runs live under `record --baseline`.
mod bytes;
mod ci;
pub mod complete;
pub mod report;
pub mod rules;
mod volume;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::event::Access;
use crate::profile::learn::unescape;
use crate::profile::matcher::{Hit, Matcher};
use crate::profile::{include, NetDir, Profile, Vars, What};
use crate::tree::Tree;
use rules::{classify, Context, Severity};

/// A process as a finding names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proc {
    pub pid: u32,
    pub exe: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// exec, file, net, dns, flag, tool or llm.
    pub kind: &'static str,
    /// The path, address, name or flag.
    pub object: String,
    /// file: the accesses; net: the operation and protocol.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    pub reason: String,
    /// The rule of the severity model that ranked it (man agentguard-diff, RULES).
    pub rule: &'static str,
    /// Whether this is behaviour the baseline does not cover (false: covered, weakly).
    pub new: bool,
    /// How many times the run did it.
    pub count: u64,
    /// The first process that did it, then its parents up to the root of the tree (at
    /// most tree::CHAIN_MAX).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub process: Vec<Proc>,
    /// The LLM tool call that most plausibly caused it (event logs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<crate::event::Cause>,
}

impl Finding {
    /// Its id (`allow --finding`, SARIF's fingerprint): stable across runs (its kind,
    /// object and accesses), short enough to type, and a cryptographic hash, so that a
    /// tree that read an ID pinned in CI cannot make another finding of the same ID.
    pub fn id(&self) -> String {
        use sha2::Digest;
        let h = sha2::Sha256::digest(format!("{}\0{}\0{}", self.kind, self.object, self.detail));
        h[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Baseline behaviour the run did not show (informational).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Missing {
    pub kind: &'static str,
    pub object: String,
    pub seen: String,
}

/// Checks behaviour against a baseline, one observation at a time, keeping one finding per
/// distinct behaviour.
pub struct Checker {
    matcher: Matcher,
    baseline: Profile,
    vars: Vars,
    known_dirs: HashSet<String>,
    findings: BTreeMap<What, Finding>,
    seen: HashSet<What>,
    volume: volume::Volume,
    /// What files and sockets moved, as the kernel counted it.
    bytes: bytes::Bytes,
    /// Volume, sequence and tool-effect findings: about the run, keyed by what they are
    /// about, rule and detail.
    run_findings: BTreeMap<(What, &'static str, String), Finding>,
    /// Learned tools' effects (exec, read, write, connect): each tool's own baseline.
    tool_effects: std::collections::HashMap<String, BTreeSet<String>>,
    /// How much of the run's LLM traffic was seen.
    sight: crate::profile::sight::Sight,
}

impl Checker {
    /// What ${CWD} and ${HOME} stand for in the run checked.
    pub fn vars(&self) -> &Vars {
        &self.vars
    }

    pub fn new(baseline: &Profile, origin: &Path, vars: Vars) -> Result<Checker> {
        let resolved = include::resolve(baseline, origin)?;
        let matcher = Matcher::new(&resolved, &vars)
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", origin.display()))?;
        let mut known_dirs = HashSet::new();
        for f in resolved
            .file
            .iter()
            .filter(|f| !f.protected && f.access.contains(&Access::Read))
        {
            for lit in literal_paths(&f.path.0, &f.replaced, &f.examples, &vars) {
                if let Some((d, _)) = lit.rsplit_once('/') {
                    known_dirs.insert(d.to_string());
                }
            }
        }
        let bytes = bytes::Bytes::new(&resolved, &vars);
        Ok(Checker {
            bytes,
            matcher,
            baseline: baseline.clone(),
            vars,
            known_dirs,
            findings: BTreeMap::new(),
            seen: HashSet::new(),
            volume: volume::Volume::new(&resolved.http),
            run_findings: BTreeMap::new(),
            // Tools learned before effects were (no `effects`) have no baseline of them.
            tool_effects: resolved
                .tool
                .iter()
                .filter(|t| t.learned && !t.effects.is_empty())
                .map(|t| (t.name.clone(), t.effects.keys().cloned().collect()))
                .collect(),
            sight: Default::default(),
        })
    }

    /// An event of the run, for what it says of the run's LLM traffic (its start, LLM
    /// calls, TLS not read).
    pub fn observe_run(&mut self, ev: &crate::event::Event) {
        self.sight.observe(ev);
    }

    /// A run given as a profile: what its [[run]] records say it saw.
    pub fn sight_of(&mut self, runs: &[crate::profile::RunInfo]) {
        let mut s = crate::profile::sight::Sight {
            captured: !runs.is_empty(),
            ..Default::default()
        };
        for r in runs.iter().map(crate::profile::sight::Sight::of_run) {
            s.captured &= r.captured;
            s.calls += r.calls;
            s.unread.extend(r.unread);
        }
        self.sight = s;
    }

    /// The run's LLM traffic went dark where every baseline run's was seen (llm-unseen):
    /// without it, tool calls and the causes of what they did are missing, and a gate
    /// must not read that as a quiet run.
    fn sight_findings(&self) -> Vec<(What, Finding)> {
        use crate::profile::sight::Sight;
        let s = &self.sight;
        let runs: Vec<Sight> = self.baseline.run_info.iter().map(Sight::of_run).collect();
        if !s.captured || runs.is_empty() || !runs.iter().all(|r| r.captured && r.calls > 0) {
            return Vec::new();
        }
        let least = runs.iter().map(|r| r.calls).min().unwrap_or(0);
        let before: BTreeSet<&String> = runs.iter().flat_map(|r| &r.unread).collect();
        let new = s.unread.iter().any(|u| !before.contains(u));
        if s.calls >= least || (s.calls > 0 && !new) {
            return Vec::new();
        }
        let why = if s.unread.is_empty() {
            "nothing said why: TLS linked in statically, or a transport agentguard does not read"
                .to_string()
        } else {
            let all: Vec<&str> = s.unread.iter().map(String::as_str).collect();
            format!("TLS it could not read: {}", all.join(", "))
        };
        let f = Finding {
            severity: rules::LLM_UNSEEN.severity,
            kind: "llm",
            object: "LLM calls".into(),
            detail: format!("{} seen", s.calls),
            reason: format!(
                "{} LLM calls of this run were seen, while each of the baseline's {} runs saw at least {least} ({why}): tool calls, and the causes of what they did, are missing from this run",
                s.calls,
                runs.len()
            ),
            rule: rules::LLM_UNSEEN.id,
            new: true,
            count: 1,
            process: Vec::new(),
            cause: None,
        };
        let what = What::Llm {
            host: String::new(),
            api: String::new(),
        };
        vec![(what, f)]
    }

    /// Checks one observation; returns the finding when it is the first of its kind.
    pub fn check(
        &mut self,
        what: &What,
        count: u64,
        tree: Option<(&Tree, u32)>,
    ) -> Option<Finding> {
        self.check_caused(what, count, tree, None)
    }

    /// `check`, naming the tool call behind the behaviour when there is one.
    pub fn check_caused(
        &mut self,
        what: &What,
        count: u64,
        tree: Option<(&Tree, u32)>,
        cause: Option<&crate::event::Cause>,
    ) -> Option<Finding> {
        self.seen.insert(what.clone());
        if let Some(f) = self.findings.get_mut(what) {
            f.count += count;
            return None;
        }
        let (kind, object, detail, hit) = self.assess(what);
        let (rule, mut reason) = self.classify(what, &hit)?;
        if self.baseline.runs < 3 && rule.id != rules::RARE.id {
            reason.push_str(&format!(
                " (the baseline has only {} run{})",
                self.baseline.runs,
                if self.baseline.runs == 1 { "" } else { "s" }
            ));
        }
        if let (What::File { path, access }, true) = (what, rule.id == rules::PROTECTED.id) {
            if access.contains(&Access::Read) {
                self.volume.protected_read(path);
            }
        }
        let f = finding(rule, kind, object, detail, reason, count, tree, cause);
        self.findings.insert(what.clone(), f.clone());
        Some(f)
    }

    /// One HTTP exchange of the run (`what` a What::Http), the bytes it moved and whether
    /// its connection switched protocols after it: the volume, sequence and switch findings
    /// it completes.
    pub fn exchange(
        &mut self,
        what: &What,
        (sent, received, switched): (u64, u64, bool),
        tree: Option<(&Tree, u32)>,
        cause: Option<&crate::event::Cause>,
    ) -> Vec<Finding> {
        let What::Http {
            service,
            method,
            path,
        } = what
        else {
            return Vec::new();
        };
        let object = format!("{service}{path}");
        // Covered, but never seen to switch: enforce would hold what follows to HTTP.
        // (Not covered: the request's own finding says more.) Said once, as volumes are.
        let switch = (switched
            && self.matcher.http_strength(service, method, path) > 0
            && !self.matcher.http_switches(service, method, path)
            && !self.run_findings.contains_key(&(
                what.clone(),
                rules::HTTP_NEW_SWITCH.id,
                String::new(),
            )))
        .then(|| {
            (
                &rules::HTTP_NEW_SWITCH,
                method.clone(),
                "the connection switched protocols after it; no baseline run's did".to_string(),
            )
        });
        let mut out = Vec::new();
        for (rule, detail, reason) in switch
            .into_iter()
            .chain(self.volume.exchange(what, sent, received))
        {
            let f = finding(rule, "http", object.clone(), detail, reason, 1, tree, cause);
            self.run_findings
                .insert((what.clone(), rule.id, String::new()), f.clone());
            out.push(f);
        }
        out
    }

    /// What one open file or socket moved (an io event), against its entry's learned
    /// range: the volume findings it completes.
    pub fn io(
        &mut self,
        io: &crate::event::Io,
        tree: Option<(&Tree, u32)>,
        cause: Option<&crate::event::Cause>,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        for o in self.bytes.io(io) {
            let f = finding(o.rule, o.kind, o.object, o.detail, o.reason, 1, tree, cause);
            self.run_findings
                .insert((o.about, o.rule.id, o.dir.to_string()), f.clone());
            out.push(f);
        }
        out
    }

    /// What a tool call caused (`whats` of one event tied to it by `cause`), against the
    /// tool's own baseline: a kind of effect its calls never had is a finding, once per
    /// tool and kind.
    pub fn tool_effects(
        &mut self,
        whats: &[What],
        tree: Option<(&Tree, u32)>,
        cause: &crate::event::Cause,
    ) -> Vec<Finding> {
        if cause.confidence < crate::profile::EFFECT_CONFIDENCE {
            return Vec::new();
        }
        let name = crate::paths::printable(&cause.tool).into_owned();
        let Some(known) = self.tool_effects.get(&name) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for kind in crate::profile::effects(whats) {
            if known.contains(kind) {
                continue;
            }
            let key = (
                What::Tool { name: name.clone() },
                rules::TOOL_NEW_EFFECT.id,
                kind.to_string(),
            );
            if self.run_findings.contains_key(&key) {
                continue;
            }
            let had: Vec<&str> = known.iter().map(String::as_str).collect();
            let f = finding(
                &rules::TOOL_NEW_EFFECT,
                "tool",
                name.clone(),
                kind.to_string(),
                format!(
                    "a {name} call caused {kind}; in the baseline its calls caused only {}",
                    had.join(", ")
                ),
                1,
                tree,
                Some(cause),
            );
            self.run_findings.insert(key, f.clone());
            out.push(f);
        }
        out
    }

    /// The rule and reason for one operation, without counting it: None when the
    /// baseline covers it by strong enough evidence. What `enforce --deny-at` admits is
    /// decided by this, so enforcement and `diff` rate alike.
    pub fn rate(&self, what: &What) -> Option<(&'static rules::Rule, String)> {
        let (_, _, _, hit) = self.assess(what);
        self.classify(what, &hit)
    }

    /// The directories holding a file the baseline reads.
    pub fn known_dirs(&self) -> &HashSet<String> {
        &self.known_dirs
    }

    /// A finding's kind, object and detail, and what the baseline says of it.
    fn assess(&self, what: &What) -> (&'static str, String, String, Hit) {
        match what {
            What::Exec { path } => (
                "exec",
                path.clone(),
                String::new(),
                self.matcher.exec_hit(path),
            ),
            What::File { path, access } => (
                "file",
                path.clone(),
                rules::names(access),
                self.matcher.file_hit(path, access),
            ),
            What::Net {
                op,
                proto,
                addr,
                port,
            } => {
                let strength = self.matcher.net_strength(*op, *proto, addr, *port);
                let obj = if *port == 0 {
                    addr.clone()
                } else if addr.contains(':') {
                    format!("[{addr}]:{port}")
                } else {
                    format!("{addr}:{port}")
                };
                (
                    "net",
                    obj,
                    format!("{} {}", lower(op), lower(proto)),
                    simple_hit(strength),
                )
            }
            What::Host {
                proto,
                name,
                port,
                addr,
            } => (
                "net",
                format!("{name}:{port}"),
                if addr.is_empty() {
                    format!("connect {}", lower(proto))
                } else {
                    format!("connect {} {addr}", lower(proto))
                },
                simple_hit(self.matcher.host_strength(*proto, name, *port, addr)),
            ),
            What::Dns { name } => (
                "dns",
                name.clone(),
                String::new(),
                simple_hit(self.matcher.dns_strength(name)),
            ),
            What::Flag { flag, detail } => (
                "flag",
                rules::flag_name(*flag).to_string(),
                detail.clone(),
                simple_hit(self.matcher.flag_strength(*flag, detail)),
            ),
            What::Tool { name } => (
                "tool",
                name.clone(),
                String::new(),
                simple_hit(self.matcher.tool_strength(name)),
            ),
            What::Llm { host, api } => (
                "llm",
                host.clone(),
                api.clone(),
                simple_hit(self.matcher.llm_strength(host)),
            ),
            What::Http {
                service,
                method,
                path,
            } => (
                "http",
                format!("{service}{path}"),
                method.clone(),
                simple_hit(self.matcher.http_strength(service, method, path)),
            ),
        }
    }

    fn classify(&self, what: &What, hit: &Hit) -> Option<(&'static rules::Rule, String)> {
        let workspace = self.vars.cwd.clone();
        let matcher = &self.matcher;
        let host_known = |op, addr: &str| {
            matcher.net_host_known(op, addr) || (op == NetDir::Connect && matcher.host_known(addr))
        };
        let home = self.vars.home.clone();
        let cx = Context {
            workspace: workspace.as_deref(),
            home: home.as_deref(),
            known_dirs: &self.known_dirs,
            baseline_runs: self.baseline.runs,
            host_known: &host_known,
            http_service: &|s: &str| matcher.http_service(s),
        };
        classify(what, hit, &cx)
    }

    /// The findings, most severe first; and the baseline's constant behaviour (seen in
    /// every run) that this run did not show.
    pub fn finish(&self) -> (Vec<Finding>, Vec<Missing>) {
        let f = self.findings_of().into_iter().map(|(_, f)| f).collect();
        (f, self.missing())
    }

    /// The findings with the behaviour each is about, most severe first (`allow` writes
    /// rules from the behaviour).
    pub fn findings_of(&self) -> Vec<(What, Finding)> {
        let mut f: Vec<(What, Finding)> = self
            .findings
            .iter()
            .map(|(w, f)| (w.clone(), f.clone()))
            .chain(
                self.run_findings
                    .iter()
                    .map(|((w, _, _), f)| (w.clone(), f.clone())),
            )
            .chain(self.sight_findings())
            .collect();
        f.sort_by(|(_, a), (_, b)| {
            b.severity
                .cmp(&a.severity)
                .then(a.kind.cmp(b.kind))
                .then(a.object.cmp(&b.object))
                .then(a.detail.cmp(&b.detail))
        });
        f
    }

    fn missing(&self) -> Vec<Missing> {
        let runs = self.baseline.runs;
        let mut out = Vec::new();
        if runs == 0 {
            return out;
        }
        let constant = |seen: &[u32]| seen.len() as u32 == runs;
        let seen_files: Vec<&String> = self
            .seen
            .iter()
            .filter_map(|w| {
                if let What::File { path, .. } = w {
                    Some(path)
                } else {
                    None
                }
            })
            .collect();
        let seen_execs: Vec<&String> = self
            .seen
            .iter()
            .filter_map(|w| {
                if let What::Exec { path } = w {
                    Some(path)
                } else {
                    None
                }
            })
            .collect();
        let hit = |pattern: &str, seen: &[&String]| -> bool {
            let Ok(p) = self.vars.expand(pattern) else {
                return true;
            };
            match crate::profile::pattern::glob(&p) {
                Ok(g) => {
                    let m = g.compile_matcher();
                    seen.iter()
                        .any(|s| m.is_match(crate::profile::pattern::subject(s)))
                }
                Err(_) => true,
            }
        };
        for e in self
            .baseline
            .exec
            .iter()
            .filter(|e| e.learned && !e.protected && constant(&e.seen))
        {
            if !hit(&e.path.0, &seen_execs) {
                out.push(Missing {
                    kind: "exec",
                    object: unescape(&e.path.0),
                    seen: format!("all {runs} runs"),
                });
            }
        }
        for e in self
            .baseline
            .file
            .iter()
            .filter(|e| e.learned && !e.protected && constant(&e.seen))
        {
            if !hit(&e.path.0, &seen_files) {
                out.push(Missing {
                    kind: "file",
                    object: unescape(&e.path.0),
                    seen: format!("all {runs} runs"),
                });
            }
        }
        for e in self
            .baseline
            .dns
            .iter()
            .filter(|e| e.learned && constant(&e.seen))
        {
            if !self
                .seen
                .iter()
                .any(|w| matches!(w, What::Dns { name } if e.name.matches(name)))
            {
                out.push(Missing {
                    kind: "dns",
                    object: e.name.0.clone(),
                    seen: format!("all {runs} runs"),
                });
            }
        }
        out
    }
}

#[allow(clippy::too_many_arguments)]
fn finding(
    rule: &'static rules::Rule,
    kind: &'static str,
    object: String,
    detail: String,
    reason: String,
    count: u64,
    tree: Option<(&Tree, u32)>,
    cause: Option<&crate::event::Cause>,
) -> Finding {
    let process = tree
        .map(|(t, pid)| {
            t.chain(pid)
                .into_iter()
                .map(|(pid, exe)| Proc { pid, exe })
                .collect()
        })
        .unwrap_or_default();
    Finding {
        severity: rule.severity,
        kind,
        object,
        detail,
        reason,
        rule: rule.id,
        new: rule.id != rules::RARE.id,
        count,
        process,
        cause: cause.cloned(),
    }
}

fn simple_hit(strength: u32) -> crate::profile::matcher::Hit {
    use crate::profile::matcher::{Hit, Verdict};
    let verdict = if strength > 0 {
        Verdict::Covered
    } else {
        Verdict::Uncovered(Default::default())
    };
    Hit {
        verdict,
        strength,
        known: Default::default(),
    }
}

fn lower<T: std::fmt::Debug>(v: &T) -> String {
    format!("{v:?}").to_lowercase()
}

/// The concrete paths an entry stands for: its literals (all, or a sample), or itself; for
/// a pattern, its sample.
fn literal_paths(
    pattern: &str,
    replaced: &[crate::profile::Literal],
    examples: &[String],
    vars: &Vars,
) -> Vec<String> {
    let raw: Vec<String> = if !replaced.is_empty() {
        replaced.iter().map(|l| l.path.clone()).collect()
    } else if !examples.is_empty() {
        // Only where a literal was read: a pattern's fixed prefix is no such evidence.
        examples.to_vec()
    } else {
        vec![unescape(pattern)]
    };
    raw.into_iter()
        .filter_map(|p| vars.expand_raw(&p).ok())
        .collect()
}

/// The gate: which findings make the exit status 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    /// any behaviour the baseline does not cover
    New,
    /// any finding (low includes behaviour covered only by rare entries)
    Low,
    /// a finding of medium severity or more
    Medium,
    /// a finding of high severity or more
    High,
    /// a critical finding
    Critical,
    /// never fail: report only
    Never,
}

/// Whether the findings fail the gate.
pub fn gate(fail_on: FailOn, findings: &[Finding]) -> bool {
    let at = |s: Severity| findings.iter().any(|f| f.severity >= s);
    match fail_on {
        FailOn::Never => false,
        FailOn::New => findings.iter().any(|f| f.new),
        FailOn::Low => at(Severity::Low),
        FailOn::Medium => at(Severity::Medium),
        FailOn::High => at(Severity::High),
        FailOn::Critical => at(Severity::Critical),
    }
}

/// The paths a run profile's entry says its run used: a literal itself; a pattern its
/// sample of literals and, when the sample is not all of them, the pattern itself as a
/// path, so that a baseline without that very pattern (or a wider one) gets a finding
/// rather than passing on literals nobody can see. Diff the run's event log for an exact
/// answer.
fn stands_for(path: &str, examples: &[String], literals: u64) -> Vec<String> {
    if examples.is_empty() {
        return vec![unescape(path)];
    }
    let mut v = examples.to_vec();
    if literals > examples.len() as u64 {
        v.push(path.to_string());
    }
    v
}

/// What a run profile says its run did, with how often: a pattern stands for the
/// literals it replaced, ${CWD} and ${HOME} for what they were in that run; what an
/// include absorbed, for the sample it keeps.
pub fn behaviour(p: &Profile, vars: &Vars, origin: &Path) -> Result<Vec<(What, u64)>> {
    let expand = |raw: &str| {
        vars.expand_raw(raw)
            .map_err(|e| anyhow::anyhow!("{}: {raw}: {e}", origin.display()))
    };
    let mut out = Vec::new();
    for e in &p.exec {
        let lits: Vec<(String, u64)> = if !e.replaced.is_empty() {
            e.replaced
                .iter()
                .map(|l| (l.path.clone(), l.count))
                .collect()
        } else {
            stands_for(&e.path.0, &e.examples, e.literals)
                .into_iter()
                .map(|p| (p, e.count))
                .collect()
        };
        for (path, count) in lits {
            out.push((
                What::Exec {
                    path: expand(&path)?,
                },
                count.max(1),
            ));
        }
    }
    for e in &p.file {
        let lits: Vec<(String, std::collections::BTreeSet<Access>, u64)> = if !e.replaced.is_empty()
        {
            e.replaced
                .iter()
                .map(|l| (l.path.clone(), l.access.clone(), l.count))
                .collect()
        } else {
            stands_for(&e.path.0, &e.examples, e.literals)
                .into_iter()
                .map(|p| (p, e.access.clone(), e.count))
                .collect()
        };
        for (path, access, count) in lits {
            out.push((
                What::File {
                    path: expand(&path)?,
                    access,
                },
                count.max(1),
            ));
        }
    }
    // What an include absorbed: its sample. A baseline that has the include covers it.
    for a in &p.absorbed {
        for path in &a.exec {
            out.push((
                What::Exec {
                    path: expand(&unescape(path))?,
                },
                1,
            ));
        }
        for path in &a.file {
            out.push((
                What::File {
                    path: expand(&unescape(path))?,
                    access: a.access.clone(),
                },
                1,
            ));
        }
    }
    for e in &p.net {
        let what = match (&e.host, &e.addr) {
            (Some(h), _) => What::Host {
                proto: e.proto,
                name: h.0.clone(),
                port: e.port.lo,
                addr: e.addresses.first().cloned().unwrap_or_default(),
            },
            (None, Some(a)) => What::Net {
                op: e.op,
                proto: e.proto,
                addr: a.0.clone(),
                port: e.port.lo,
            },
            (None, None) => continue,
        };
        out.push((what, e.count.max(1)));
    }
    for e in &p.dns {
        out.push((
            What::Dns {
                name: e.name.0.clone(),
            },
            e.count.max(1),
        ));
    }
    for e in &p.flag {
        out.push((
            What::Flag {
                flag: e.flag,
                detail: e.detail.clone(),
            },
            e.count.max(1),
        ));
    }
    for e in &p.tool {
        out.push((
            What::Tool {
                name: e.name.clone(),
            },
            e.count.max(1),
        ));
    }
    for e in &p.llm {
        out.push((
            What::Llm {
                host: e.host.clone(),
                api: e.api.clone(),
            },
            e.count.max(1),
        ));
    }
    for e in &p.http {
        out.push((http_what(e), e.count.max(1)));
    }
    Ok(out)
}

/// The behaviour an [[http]] entry stands for.
/// A run profile's volumes as io events: one per literal [[file]] entry that read, one per
/// [[net]] connection to one address or name and port that moved bytes.
pub fn run_io(p: &Profile, vars: &Vars) -> Vec<crate::event::Io> {
    use crate::profile::volume::total;
    let none = crate::event::Io::default();
    let mut out = Vec::new();
    for e in p.file.iter().filter(|e| e.learned && !e.read.is_empty()) {
        match vars.expand(&e.path.0) {
            Ok(path) if !crate::profile::pattern::is_glob(&path) => out.push(crate::event::Io {
                path: Some(path),
                read: total(&e.read),
                ..none.clone()
            }),
            _ => {}
        }
    }
    for e in p.net.iter().filter(|e| e.learned && e.port.lo == e.port.hi) {
        let (addr, name) = match (&e.addr, &e.host) {
            (_, Some(h)) => (String::new(), Some(h.0.clone())),
            (Some(a), None) if a.0.parse::<std::net::IpAddr>().is_ok() => (a.0.clone(), None),
            _ => continue,
        };
        out.push(crate::event::Io {
            proto: Some(e.proto),
            addr,
            port: e.port.lo,
            name,
            read: total(&e.received),
            written: total(&e.sent),
            ..none.clone()
        });
    }
    out
}

pub fn http_what(e: &crate::profile::HttpEntry) -> What {
    What::Http {
        service: e.service.clone(),
        method: e.method.clone(),
        path: e.path.clone(),
    }
}

#[cfg(test)]
mod tests;
