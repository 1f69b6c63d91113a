//! `agentguard allow`: a finding made into a hand-written rule that says who admitted it,
//! when and why. The rule is as narrow as the finding (this path, this address and port,
//! this name) or, for a file or program, its directory (`dir/*`); the protected set still
//! wins over it unless it was written with --protected.
use anyhow::{bail, Result};

use super::learn::escape;
use super::pattern::{AddrPat, DomainPat, PathPat, PortPat, Vars};
use super::{
    Allowed, DnsEntry, ExecEntry, FileEntry, FlagEntry, LlmEntry, NetDir, NetEntry, Profile,
    ToolEntry, What,
};

/// How wide a rule `allow` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The behaviour itself.
    Exact,
    /// A file's or a program's directory: `dir/*`, with the finding's accesses.
    Directory,
}

/// Adds the rule admitting `what` to `p`; returns it as a person reads it.
pub fn add(p: &mut Profile, what: &What, vars: &Vars, scope: Scope, by: Allowed) -> Result<String> {
    let path = |raw: &str| -> Result<PathPat> {
        let lit = escape(&vars.abstract_path(raw));
        if scope == Scope::Exact {
            return Ok(PathPat(lit));
        }
        // Never a top-level directory, never ${HOME} or ${CWD} itself: as learning.
        match lit.rsplit_once('/') {
            Some((dir, _)) if super::learn::depth(dir) >= 2 => Ok(PathPat(format!("{dir}/*"))),
            _ => bail!(
                "{raw}: its directory is too near the root to allow as a whole; allow the path itself"
            ),
        }
    };
    let allowed = Some(by);
    let line = match what {
        What::Exec { path: raw } => {
            let path = path(raw)?;
            let line = format!("exec {path}");
            p.exec.push(ExecEntry {
                path,
                learned: false,
                protected: false,
                seen: Vec::new(),
                count: 0,
                replaced: Vec::new(),
                examples: Vec::new(),
                literals: 0,
                allowed,
            });
            line
        }
        What::File { path: raw, access } => {
            let path = path(raw)?;
            let names: Vec<String> = access
                .iter()
                .map(|a| format!("{a:?}").to_lowercase())
                .collect();
            let line = format!("file {path} ({})", names.join(","));
            p.file.push(FileEntry {
                path,
                access: access.clone(),
                learned: false,
                protected: false,
                seen: Vec::new(),
                count: 0,
                replaced: Vec::new(),
                examples: Vec::new(),
                literals: 0,
                allowed,
            });
            line
        }
        What::Net {
            op,
            proto,
            addr,
            port,
        } => net(
            p,
            *op,
            *proto,
            Some(AddrPat(addr.clone())),
            None,
            *port,
            allowed,
        ),
        What::Host {
            proto, name, port, ..
        } => net(
            p,
            NetDir::Connect,
            *proto,
            None,
            Some(DomainPat(name.clone())),
            *port,
            allowed,
        ),
        What::Dns { name } => {
            p.dns.push(DnsEntry {
                name: DomainPat(name.clone()),
                learned: false,
                seen: Vec::new(),
                count: 0,
                allowed,
            });
            format!("dns {name}")
        }
        What::Flag { flag, detail } => {
            p.flag.push(FlagEntry {
                flag: *flag,
                detail: detail.clone(),
                learned: false,
                seen: Vec::new(),
                count: 0,
                allowed,
            });
            format!("flag {flag:?} {detail}").to_lowercase()
        }
        What::Tool { name } => {
            p.tool.push(ToolEntry {
                name: name.clone(),
                learned: false,
                seen: Vec::new(),
                count: 0,
                allowed,
            });
            format!("tool {name}")
        }
        What::Llm { host, api } => {
            p.llm.push(LlmEntry {
                host: host.clone(),
                api: api.clone(),
                learned: false,
                seen: Vec::new(),
                count: 0,
                allowed,
            });
            format!("llm {api} {host}")
        }
    };
    super::learn::sort(p);
    Ok(line)
}

fn net(
    p: &mut Profile,
    op: NetDir,
    proto: crate::event::Proto,
    addr: Option<AddrPat>,
    host: Option<DomainPat>,
    port: u16,
    allowed: Option<Allowed>,
) -> String {
    let e = NetEntry {
        op,
        proto,
        addr,
        host,
        // A unix socket has no port.
        port: if port == 0 {
            PortPat::default()
        } else {
            PortPat::one(port)
        },
        private: false,
        addresses: Vec::new(),
        learned: false,
        seen: Vec::new(),
        count: 0,
        failed: 0,
        allowed,
    };
    let line = format!(
        "net {} {}",
        format!("{op:?} {proto:?}").to_lowercase(),
        e.describe()
    );
    p.net.push(e);
    line
}
