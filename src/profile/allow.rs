//! `agentguard allow`: a finding made into a hand-written rule that says who admitted it,
//! when and why. The rule is as narrow as the finding (this path, this address and port,
//! this name) or, for a file or program, its directory (`dir/*`); the protected set still
//! wins over it unless it was written with --protected.
use anyhow::{anyhow, bail, Result};

use super::learn::escape;
use super::pattern::{AddrPat, DomainPat, PathPat, PortPat, Vars};
use super::{
    Allowed, DnsEntry, ExecEntry, FileEntry, FlagEntry, HttpEntry, LlmEntry, NetDir, NetEntry,
    Profile, ToolEntry, What,
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
        let pat = if scope == Scope::Exact {
            lit
        } else {
            // Never a top-level directory, never ${HOME} or ${CWD} itself, as learning;
            // never a directory of programs, devices or kernel files, whose other entries
            // are other things entirely (/usr/bin/* holds shells, /dev/pts/* terminals).
            match lit.rsplit_once('/') {
                Some((dir, _))
                    if super::learn::depth(dir) >= 2
                        && !NO_DIRECTORY.iter().any(|n| under(dir, n)) =>
                {
                    format!("{dir}/*")
                }
                _ => bail!(
                    "{raw}: its directory cannot be allowed as a whole; allow the path itself"
                ),
            }
        };
        PathPat::check(&pat).map_err(|e| anyhow!("{raw}: {e}"))?;
        Ok(PathPat(pat))
    };
    // Names as observed: a `*` in one is a character, not a wildcard to admit.
    let name = |n: &str| -> Result<DomainPat> {
        if n.contains('*') {
            bail!("{n}: a name with '*' is not allowed (it would be a wildcard rule)");
        }
        DomainPat::check(n).map_err(|e| anyhow!("{n}: {e}"))?;
        Ok(DomainPat(n.to_string()))
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
                read: Vec::new(),
                allowed,
            });
            line
        }
        What::Net {
            op,
            proto,
            addr,
            port,
        } => {
            AddrPat::check(addr).map_err(|e| anyhow!("{addr}: {e}"))?;
            if addr == "*" {
                bail!("an address of '*' is not allowed");
            }
            net(
                p,
                *op,
                *proto,
                Some(AddrPat(addr.clone())),
                None,
                *port,
                allowed,
            )?
        }
        What::Host {
            proto,
            name: n,
            port,
            ..
        } => net(
            p,
            NetDir::Connect,
            *proto,
            None,
            Some(name(n)?),
            *port,
            allowed,
        )?,
        What::Dns { name: n } => {
            p.dns.push(DnsEntry {
                name: name(n)?,
                learned: false,
                seen: Vec::new(),
                count: 0,
                allowed,
            });
            format!("dns {n}")
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
                effects: Default::default(),
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
        What::Http {
            service,
            method,
            path,
        } => {
            let e = HttpEntry {
                service: service.clone(),
                method: method.clone(),
                path: path.clone(),
                learned: false,
                seen: Vec::new(),
                count: 0,
                sent: Vec::new(),
                received: Vec::new(),
                switches: false,
                allowed,
            };
            super::http::check(&e).map_err(|m| anyhow!("{method} {service}{path}: {m}"))?;
            p.http.push(e);
            format!("http {method} {service}{path}")
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
) -> Result<String> {
    // A unix socket has no port; for an IP address, port 0 is no port to admit (a refused
    // connect to it is recorded too), and "any port" is not what was seen.
    let unix = addr
        .as_ref()
        .is_some_and(|a| a.0.starts_with('/') || a.0.starts_with('@'));
    let port = match (port, unix) {
        (_, true) => PortPat::default(),
        (0, false) => bail!("a connection to port 0 is not allowed: it names no service"),
        (p, false) => PortPat::one(p),
    };

    let e = NetEntry {
        op,
        proto,
        addr,
        host,
        port,
        private: false,
        addresses: Vec::new(),
        learned: false,
        seen: Vec::new(),
        count: 0,
        failed: 0,
        sent: Vec::new(),
        received: Vec::new(),
        allowed,
    };
    let line = format!(
        "net {} {}",
        format!("{op:?} {proto:?}").to_lowercase(),
        e.describe()
    );
    p.net.push(e);
    Ok(line)
}

/// Directories whose entries `allow` never admits as a whole (Scope::Directory).
const NO_DIRECTORY: &[&str] = &[
    "/usr/bin",
    "/usr/sbin",
    "/bin",
    "/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/libexec",
    "/dev",
    "/proc",
    "/sys",
    "/run",
];

fn under(dir: &str, top: &str) -> bool {
    dir == top || dir.strip_prefix(top).is_some_and(|r| r.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn by() -> Allowed {
        Allowed {
            by: "ann".into(),
            at: "2026-12-05T00:00:00Z".into(),
            reason: "r".into(),
            finding: "f".into(),
            run: "run.jsonl".into(),
            protected: false,
        }
    }

    fn vars() -> Vars {
        Vars {
            home: Some("/home/ann".into()),
            cwd: Some("/home/ann/work".into()),
        }
    }

    fn file(path: &str) -> What {
        What::File {
            path: path.into(),
            access: BTreeSet::from([crate::event::Access::Read]),
        }
    }

    #[test]
    fn a_rule_is_as_narrow_as_its_finding() {
        let mut p = Profile::empty();
        let v = vars();
        // A name with glob characters is that name.
        add(&mut p, &file("/srv/a*b"), &v, Scope::Exact, by()).unwrap();
        add(
            &mut p,
            &file("/home/ann/work/docs/a.md"),
            &v,
            Scope::Directory,
            by(),
        )
        .unwrap();
        let paths: Vec<&str> = p.file.iter().map(|f| f.path.0.as_str()).collect();
        assert_eq!(paths, ["${CWD}/docs/*", "/srv/a[*]b"]);
        // Port 0 of an address names no service; a unix socket has no port.
        let net = |addr: &str, port| What::Net {
            op: NetDir::Connect,
            proto: crate::event::Proto::Tcp,
            addr: addr.into(),
            port,
        };
        assert!(add(&mut p, &net("203.0.113.9", 0), &v, Scope::Exact, by()).is_err());
        add(&mut p, &net("/run/app.sock", 0), &v, Scope::Exact, by()).unwrap();
        add(&mut p, &net("203.0.113.9", 443), &v, Scope::Exact, by()).unwrap();
        let ports: Vec<String> = p.net.iter().map(|n| n.describe()).collect();
        assert_eq!(ports, ["/run/app.sock", "203.0.113.9:443"]);
        // An observed name with '*' is not a wildcard rule.
        for w in [
            What::Dns {
                name: "*.com".into(),
            },
            What::Host {
                proto: crate::event::Proto::Tcp,
                name: "*.evil.example".into(),
                port: 443,
                addr: "203.0.113.9".into(),
            },
        ] {
            assert!(add(&mut p, &w, &v, Scope::Exact, by()).is_err(), "{w:?}");
        }
    }

    #[test]
    fn directories_of_programs_devices_and_the_kernel_are_never_allowed_whole() {
        let v = vars();
        for path in [
            "/usr/bin/head",
            "/dev/pts/3",
            "/proc/self/status",
            "/etc/passwd",
            "/home/ann/x",
        ] {
            let mut p = Profile::empty();
            let e = add(&mut p, &file(path), &v, Scope::Directory, by());
            assert!(e.is_err(), "{path}: {:?}", p.file);
            assert!(p.file.is_empty());
        }
        let mut p = Profile::empty();
        add(&mut p, &file("/srv/data/x.csv"), &v, Scope::Directory, by()).unwrap();
        assert_eq!(p.file[0].path.0, "/srv/data/*");
    }
}
