//! The profile: the one artifact. A recorded run is a profile of one run; a baseline is
//! profiles merged; diff and enforcement read them. Versioned, sorted TOML, so profiles
//! diff cleanly in git. The format is documented in man/agentguard-profile.5.
//!
//! Entries are either written by hand (rules that learning never touches) or learned
//! (`learned = true`): those carry their evidence, the runs they were seen in (`seen`, indices
//! into `[[run]]`) and, for a pattern, the literals it replaced.
pub mod allow;
pub mod bench;
mod builder;
pub mod compact;
pub mod http;
pub mod include;
pub mod learn;
pub mod matcher;
pub mod merge;
pub mod pattern;
pub mod protected;
pub mod sight;
pub mod volume;

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub use builder::{effects, observe as builder_observe, Builder, What, EFFECT_CONFIDENCE};

pub use pattern::{AddrPat, DomainPat, PathPat, PortPat, Vars};

use crate::event::{Access, FlagKind, Proto};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Format version; a reader refuses versions it does not know.
    pub version: u32,
    /// How many runs this profile learned from (the number of `[[run]]` tables).
    #[serde(default)]
    pub runs: u32,
    /// Shared abstractions this profile builds on: names of profiles shipped with agentguard
    /// (see profiles/README.md) or paths relative to this file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
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
    /// LLM tool calls the agent made, by tool name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool: Vec<ToolEntry>,
    /// LLM APIs the agent called, by host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub llm: Vec<LlmEntry>,
    /// HTTP endpoints the tree called (LLM APIs are `llm`), by service, method and path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpEntry>,
    /// What each include took over from learning: the learned entries it covers are
    /// dropped and summed here, so that the profile says what the include stands for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absorbed: Vec<Absorbed>,
}

/// How a rule came to be admitted by `agentguard allow`: for the person who reviews it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    /// The user who ran `allow` (SUDO_USER when run with sudo).
    pub by: String,
    /// When, RFC 3339.
    pub at: String,
    pub reason: String,
    /// The finding it admitted: its rule and severity, as diff rated it ("exec-new, medium").
    pub finding: String,
    /// The run it came from (a [[run]] id or the run's file).
    pub run: String,
    /// Admitted with --protected: it admits protected paths too, as a hand-written rule
    /// does. Without it the protected set wins over the rule, as over a learned one.
    #[serde(default, skip_serializing_if = "is_false")]
    pub protected: bool,
}

/// Learned entries a shipped include covers, folded into it (src/profile/compact.rs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Absorbed {
    /// The include's name; it is in `include`.
    pub include: String,
    /// Runs the absorbed entries were seen in, and how often in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<u32>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: u64,
    /// How many learned entries it absorbed (summed over merged inputs, so an entry two
    /// inputs had counts twice).
    pub entries: u64,
    /// A bounded sample of the programs and files it absorbed, with their accesses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub access: BTreeSet<Access>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInfo {
    /// Unique per recording: merging the same run twice counts it once.
    pub id: String,
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
    /// Children the process map could not hold (--max-procs): not recorded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub procs_untracked: u64,
    /// Processes of the tree still running when the recording stopped.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub running: u64,
    /// Records the decoder could not read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub decode_errors: u64,
    /// What ${CWD} and ${HOME} stood for in this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// LLM calls seen in this run; absent when payload was not captured (--no-llm, or a
    /// run recorded before they were counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_calls: Option<u64>,
    /// TLS this run spoke that agentguard could not read: "program: library" (a library
    /// it does not probe, or HTTP/2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_unread: Vec<String>,
}

/// What a learned pattern stands for: one literal it replaced, with its own evidence.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Literal {
    pub path: String,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub access: BTreeSet<Access>,
    pub seen: Vec<u32>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecEntry {
    pub path: PathPat,
    #[serde(default, skip_serializing_if = "is_false")]
    pub learned: bool,
    /// Learned from a protected path: listed for review, admits nothing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub protected: bool,
    /// Indices of the runs it was seen in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<u32>,
    /// How many times, over all runs.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: u64,
    /// A pattern's literals as older versions wrote them, every one: read, never written.
    #[serde(default, skip_serializing)]
    pub replaced: Vec<Literal>,
    /// A pattern: a bounded sample of the literals it stands for (the first by name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
    /// A pattern: how many distinct literals it stood for (summed over merged inputs).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub literals: u64,
    /// Written by `agentguard allow`: who admitted it, when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Allowed>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: PathPat,
    pub access: BTreeSet<Access>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub learned: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub protected: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<u32>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: u64,
    /// As for [[exec]].
    #[serde(default, skip_serializing)]
    pub replaced: Vec<Literal>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub literals: u64,
    /// Learned: bytes read from the files it covers in each run of `seen`, in that order,
    /// as the kernel counted them (absent when none were read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<u64>,
    /// Written by `agentguard allow`: who admitted it, when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Allowed>,
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
    /// By address: an IP, a CIDR, a unix socket path, or *. Exactly one of addr and host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<AddrPat>,
    /// By name (connect only): an address the tree received, in a DNS answer, for this
    /// name or, with *.example.com, any name under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<DomainPat>,
    #[serde(default, skip_serializing_if = "PortPat::is_any")]
    pub port: PortPat,
    /// With host, hand-written only: the name may resolve to loopback, link-local or
    /// cloud-metadata addresses (refused otherwise: DNS rebinding).
    #[serde(default, skip_serializing_if = "is_false")]
    pub private: bool,
    /// With host, learned: the addresses it resolved to (evidence, not a rule).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub learned: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<u32>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: u64,
    /// Attempts that failed (refused, unreachable): intent is behaviour too.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: u64,
    /// Learned connections: bytes sent to and received from the destination in each run
    /// of `seen`, in that order, as the kernel counted them on the sockets (absent when
    /// none moved).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub received: Vec<u64>,
    /// Written by `agentguard allow`: who admitted it, when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Allowed>,
}

impl NetEntry {
    /// `api.example.com:443` or `10.0.0.0/8:8000-8100`, for messages.
    pub fn describe(&self) -> String {
        let who = match (&self.host, &self.addr) {
            (Some(h), _) => h.0.clone(),
            (None, Some(a)) => a.0.clone(),
            (None, None) => "(no address)".into(),
        };
        if self.port.is_any() {
            who
        } else {
            let p = &self.port;
            if p.lo == p.hi {
                format!("{who}:{}", p.lo)
            } else {
                format!("{who}:{}-{}", p.lo, p.hi)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsEntry {
    pub name: DomainPat,
    #[serde(default, skip_serializing_if = "is_false")]
    pub learned: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<u32>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: u64,
    /// Written by `agentguard allow`: who admitted it, when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Allowed>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolEntry {
    /// The tool's name as the model called it.
    pub name: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub learned: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<u32>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: u64,
    /// What its calls caused, by kind (exec, read, write, connect), and the runs in which
    /// they did (learned entries): the tool's own baseline. A call that causes a kind its
    /// tool never did is a finding (`tool-new-effect`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub effects: std::collections::BTreeMap<String, Vec<u32>>,
    /// Written by `agentguard allow`: who admitted it, when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Allowed>,
}

/// The kinds of effect a tool's baseline holds (builder::effect).
pub const EFFECTS: [&str; 4] = ["connect", "exec", "read", "write"];

/// An HTTP endpoint: what the tree asked of a service, and how much it moved per run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpEntry {
    /// `host:port`, the host as the requests' Host header names it (lower case), the port
    /// the header's or the scheme's (443 over TLS, 80 otherwise).
    pub service: String,
    /// GET, POST, ...: upper case as sent.
    pub method: String,
    /// The request path without its query, each segment that looks like an id (digits, a
    /// uuid, a long hex or random run) written `{id}` (profile::http::template).
    pub path: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub learned: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<u32>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: u64,
    /// Bytes sent to the endpoint in each run of `seen`, in that order (learned entries):
    /// the distribution `diff` holds a run's volume to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent: Vec<u64>,
    /// Bytes received from it in each run of `seen`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub received: Vec<u64>,
    /// The connection switched protocols after a request to it (101 Switching Protocols:
    /// a WebSocket; a 2xx answer to CONNECT: a tunnel). Under enforce, a request to it that
    /// asks to switch leaves what follows on its connection unchecked by endpoint.
    #[serde(default, skip_serializing_if = "is_false")]
    pub switches: bool,
    /// Written by `agentguard allow`: who admitted it, when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Allowed>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmEntry {
    /// The API host, as the requests' Host header names it (host or host:port).
    pub host: String,
    /// openai.chat, openai.responses or anthropic.messages.
    pub api: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub learned: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<u32>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: u64,
    /// Written by `agentguard allow`: who admitted it, when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Allowed>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagEntry {
    pub flag: FlagKind,
    pub detail: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub learned: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<u32>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: u64,
    /// Written by `agentguard allow`: who admitted it, when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Allowed>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}
fn is_false(b: &bool) -> bool {
    !*b
}

impl Profile {
    pub fn empty() -> Profile {
        Profile {
            version: VERSION,
            runs: 0,
            include: Vec::new(),
            run_info: Vec::new(),
            exec: Vec::new(),
            file: Vec::new(),
            net: Vec::new(),
            dns: Vec::new(),
            flag: Vec::new(),
            tool: Vec::new(),
            llm: Vec::new(),
            http: Vec::new(),
            absorbed: Vec::new(),
        }
    }

    pub fn to_toml(&self) -> Result<String> {
        let body = toml::to_string(self).context("serialising the profile")?;
        Ok(format!(
            "# agentguard profile (format {VERSION}): see agentguard-profile(5).\n\
             # Learned entries carry `seen` (indices of the [[run]]s they were seen in) and `count`.\n\n{body}"
        ))
    }

    pub fn parse(text: &str, origin: &Path) -> Result<Profile> {
        let p: Profile = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{}: {}", origin.display(), e.to_string().trim_end()))?;
        p.validate()
            .map_err(|e| anyhow::anyhow!("{}: {e}", origin.display()))?;
        Ok(p)
    }

    /// What serde cannot check: the version, and that the evidence refers to real runs.
    fn validate(&self) -> Result<()> {
        if self.version != VERSION {
            bail!(
                "field `version`: this agentguard reads profile format {VERSION}, not {}",
                self.version
            );
        }
        if self.runs as usize != self.run_info.len() {
            bail!(
                "field `runs` is {} but there are {} [[run]] tables",
                self.runs,
                self.run_info.len()
            );
        }
        let check = |section: &str,
                     what: &dyn std::fmt::Display,
                     learned: bool,
                     seen: &[u32],
                     allowed: &Option<Allowed>|
         -> Result<()> {
            if learned && allowed.is_some() {
                bail!(
                    "[[{section}]] {what}: `allowed` is for hand-written rules (remove `learned`)"
                );
            }
            if !learned && !seen.is_empty() {
                bail!("[[{section}]] {what}: `seen` is for learned entries (add `learned = true` or remove it)");
            }
            if let Some(bad) = seen.iter().find(|i| **i >= self.runs) {
                bail!("[[{section}]] {what}: field `seen` names run {bad}, but the profile has {} runs", self.runs);
            }
            if seen.windows(2).any(|w| w[0] >= w[1]) {
                bail!(
                    "[[{section}]] {what}: field `seen` must be sorted run indices without repeats"
                );
            }
            Ok(())
        };
        for e in &self.exec {
            check("exec", &e.path, e.learned, &e.seen, &e.allowed)?;
        }
        for e in &self.file {
            check("file", &e.path, e.learned, &e.seen, &e.allowed)?;
            volume::check(e.learned, &e.seen, &[("read", &e.read)])
                .map_err(|m| anyhow::anyhow!("[[file]] {}: {m}", e.path))?;
            if e.access.is_empty() {
                bail!("[[file]] {}: field `access` is empty", e.path);
            }
        }
        for e in &self.net {
            let what = e.describe();
            check("net", &what, e.learned, &e.seen, &e.allowed)?;
            volume::check(
                e.learned,
                &e.seen,
                &[("sent", &e.sent), ("received", &e.received)],
            )
            .map_err(|m| anyhow::anyhow!("[[net]] {what}: {m}"))?;
            match (&e.addr, &e.host) {
                (Some(_), Some(_)) => bail!("[[net]] {what}: give `addr` or `host`, not both"),
                (None, None) => bail!("[[net]] {what}: field `addr` or `host` is missing"),
                (None, Some(_)) if e.op != NetDir::Connect => {
                    bail!("[[net]] {what}: `host` rules are for op = \"connect\"")
                }
                _ => {}
            }
            if e.private && (e.host.is_none() || e.learned) {
                bail!("[[net]] {what}: `private` is for hand-written `host` rules");
            }
            if !e.addresses.is_empty() && e.host.is_none() {
                bail!("[[net]] {what}: `addresses` is evidence for a `host` rule");
            }
        }
        for e in &self.dns {
            check("dns", &e.name, e.learned, &e.seen, &e.allowed)?;
        }
        for e in &self.flag {
            check("flag", &e.detail, e.learned, &e.seen, &e.allowed)?;
        }
        for e in &self.tool {
            check("tool", &e.name, e.learned, &e.seen, &e.allowed)?;
            for (kind, runs) in &e.effects {
                if !EFFECTS.contains(&kind.as_str()) {
                    bail!(
                        "[[tool]] {}: effects: unknown kind {kind:?} (one of {})",
                        e.name,
                        EFFECTS.join(", ")
                    );
                }
                if !e.learned {
                    bail!(
                        "[[tool]] {}: `effects` are evidence of learned entries",
                        e.name
                    );
                }
                if runs.is_empty()
                    || runs.windows(2).any(|w| w[0] >= w[1])
                    || runs.iter().any(|r| !e.seen.contains(r))
                {
                    bail!(
                        "[[tool]] {}: effects.{kind} must be sorted runs of its `seen`",
                        e.name
                    );
                }
            }
        }
        for e in &self.llm {
            check("llm", &e.host, e.learned, &e.seen, &e.allowed)?;
        }
        for e in &self.http {
            let what = format!("{} {}{}", e.method, e.service, e.path);
            check("http", &what, e.learned, &e.seen, &e.allowed)?;
            http::check(e).map_err(|m| anyhow::anyhow!("[[http]] {what}: {m}"))?;
        }
        for a in &self.absorbed {
            check("absorbed", &a.include, true, &a.seen, &None)?;
            if !self.include.contains(&a.include) {
                bail!("[[absorbed]] {}: the profile does not include {:?}: add it back to `include`, or remove this table too (the entries it absorbed are not kept)", a.include, a.include);
            }
        }
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Profile> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text, path)
    }

    /// Writes atomically, never through a link the tree planted (src/output.rs).
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::output::write_atomic(path, self.to_toml()?.as_bytes())
    }

    /// The same, to an output named before the run.
    pub fn save_to(&self, out: &crate::output::Output) -> Result<()> {
        out.write(self.to_toml()?.as_bytes())
    }
}

#[cfg(test)]
mod tests;
