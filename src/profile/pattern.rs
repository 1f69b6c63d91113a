//! The value types of a profile's rules, validated while the TOML is read so that a bad
//! one is reported at its line: path patterns with variables, addresses and CIDRs, ports
//! and port ranges, DNS names and wildcard domains.
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// Variables a path may start with, and what they stand for on this host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    /// ${HOME}: the home directory of the user the agent runs as.
    pub home: Option<String>,
    /// ${CWD}: the directory the agent was launched from.
    pub cwd: Option<String>,
}

pub const VAR_NAMES: [&str; 2] = ["HOME", "CWD"];

/// A directory a variable can stand for: absolute, and not the root.
fn usable(p: String) -> Option<String> {
    (p.starts_with('/') && p != "/").then(|| p.trim_end_matches('/').to_string())
}

impl Vars {
    /// HOME from the environment, CWD from this process.
    pub fn from_env() -> Vars {
        Vars {
            home: std::env::var("HOME").ok().and_then(usable),
            cwd: std::env::current_dir()
                .ok()
                .map(|p| p.display().to_string())
                .and_then(usable),
        }
    }

    /// These, with another user's home (`--user`).
    pub fn with_home(self, home: &str) -> Vars {
        Vars {
            home: usable(home.to_string()),
            ..self
        }
    }

    /// For a process already running: its own working directory; HOME from the environment.
    pub fn for_pid(pid: u32) -> Vars {
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))
            .ok()
            .map(|p| p.display().to_string());
        Vars {
            cwd: cwd.filter(|c| c != "/"),
            ..Vars::from_env()
        }
    }

    fn value(&self, name: &str) -> Option<&str> {
        match name {
            "HOME" => self.home.as_deref(),
            "CWD" => self.cwd.as_deref(),
            _ => None,
        }
    }

    /// (value of the leading ${VAR}, the rest), or None when the path has no variable.
    fn split_var<'a>(&'a self, p: &'a str) -> Result<Option<(&'a str, &'a str)>, String> {
        let Some(rest) = p.strip_prefix("${") else {
            return Ok(None);
        };
        let (name, tail) = rest
            .split_once('}')
            .ok_or_else(|| format!("unterminated variable in {p:?}"))?;
        let v = self
            .value(name)
            .ok_or_else(|| format!("${{{name}}} has no value on this host"))?;
        Ok(Some((v, tail)))
    }

    /// Replaces ${VAR} in a pattern (the value escaped); a variable with no value here is
    /// an error.
    pub fn expand(&self, p: &str) -> Result<String, String> {
        Ok(match self.split_var(p)? {
            Some((v, tail)) => format!("{}{tail}", globset_escape(v)),
            None => p.to_string(),
        })
    }

    /// A raw literal (not a pattern) with its leading ${VAR} replaced by the value.
    pub fn expand_raw(&self, p: &str) -> Result<String, String> {
        Ok(match self.split_var(p)? {
            Some((v, tail)) => format!("{v}{tail}"),
            None => p.to_string(),
        })
    }

    /// A literal path written with the variable whose value is its longest prefix.
    pub fn abstract_path(&self, p: &str) -> String {
        let mut best: Option<(&str, &str)> = None;
        for name in VAR_NAMES {
            if let Some(v) = self.value(name) {
                let under =
                    p == v || (p.starts_with(v) && p.as_bytes().get(v.len()) == Some(&b'/'));
                if under && best.is_none_or(|(_, b)| v.len() > b.len()) {
                    best = Some((name, v));
                }
            }
        }
        match best {
            Some((name, v)) => format!("${{{name}}}{}", &p[v.len()..]),
            None => p.to_string(),
        }
    }
}

fn globset_escape(s: &str) -> String {
    globset::escape(s)
}

/// Whether text uses glob syntax (then it is a pattern, else a literal path).
pub fn is_glob(p: &str) -> bool {
    p.contains(['*', '?', '[', '{'])
}

/// A path or path pattern: `*` one segment, `**` any depth, `{a,b}`, `[abc]`, and a
/// leading ${HOME} or ${CWD}.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PathPat(pub String);

impl PathPat {
    pub fn check(p: &str) -> Result<(), String> {
        if let Some(rest) = p.strip_prefix("${") {
            let name = rest.split('}').next().unwrap_or("");
            if !VAR_NAMES.contains(&name) || !rest.contains('}') {
                return Err(format!(
                    "unknown variable in {p:?}: use ${{HOME}} or ${{CWD}}"
                ));
            }
            let tail = &rest[name.len() + 1..];
            if !tail.is_empty() && !tail.starts_with('/') {
                return Err(format!("{p:?}: a variable must be followed by '/'"));
            }
        } else if !p.starts_with('/') && !p.starts_with("**/") {
            return Err(format!(
                "{p:?} is not absolute: start it with '/', '**/', ${{HOME}} or ${{CWD}}"
            ));
        }
        if p.contains("${") && p.rfind("${") != Some(0) {
            return Err(format!("{p:?}: a variable may only start a path"));
        }
        glob(p.replace("${HOME}", "/h").replace("${CWD}", "/c").as_str()).map(|_| ())
    }
}

/// `{a,b}` alternatives multiplied out, empty ones included (`lib{,64}` -> lib, lib64):
/// the one expansion that the matcher, the kernel compiler and Landlock all use, since
/// globset matches no empty alternative. Braces inside a `[...]` class (how literals are
/// escaped) are literal. Not nested.
pub fn expand_braces(p: &str) -> Result<Vec<String>, String> {
    let b = p.as_bytes();
    let mut in_class = false;
    let mut open = None;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'[' if !in_class => in_class = true,
            b']' if in_class => in_class = false,
            b'{' if !in_class => {
                open = Some(i);
                break;
            }
            _ => {}
        }
    }
    let Some(open) = open else {
        return Ok(vec![p.to_string()]);
    };
    let close = p[open..]
        .find('}')
        .map(|i| open + i)
        .ok_or_else(|| format!("unbalanced '{{' in {p:?}"))?;
    let mut out = Vec::new();
    for alt in p[open + 1..close].split(',') {
        for rest in expand_braces(&p[close + 1..])? {
            out.push(format!("{}{alt}{rest}", &p[..open]));
            if out.len() > 256 {
                return Err(format!("{p:?} expands to more than 256 paths"));
            }
        }
    }
    Ok(out)
}

/// Compiles an expanded path pattern: `*` and `?` never cross '/'. Patterns and paths are
/// matched without their leading '/' (see `subject`), so that the empty name before it is
/// never a segment a `*` could match: the kernel's matcher has no such segment either.
pub fn glob(p: &str) -> Result<globset::Glob, String> {
    globset::GlobBuilder::new(p.strip_prefix('/').unwrap_or(p))
        .literal_separator(true)
        // Literals are escaped with brackets (globset::escape), never backslashes.
        .backslash_escape(false)
        .build()
        .map_err(|e| format!("bad pattern {p:?}: {}", e.kind()))
}

/// A path as patterns are matched against it (see `glob`). The root itself is matched by
/// no pattern: only an exact "/" rule names it.
pub fn subject(path: &str) -> &str {
    if path == "/" {
        "\0"
    } else {
        path.strip_prefix('/').unwrap_or(path)
    }
}

/// Network address: an IP, a CIDR, a unix socket path (abstract ones start with '@'), or
/// `*` for any.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddrPat(pub String);

impl AddrPat {
    pub fn check(a: &str) -> Result<(), String> {
        if a == "*"
            || a.starts_with('/')
            || a.starts_with('@')
            || a.parse::<IpAddr>().is_ok()
            || a.parse::<IpNet>().is_ok()
        {
            Ok(())
        } else {
            Err(format!(
                "{a:?} is not an IP address, a CIDR (10.0.0.0/8), a unix socket path or *"
            ))
        }
    }
    pub fn net(&self) -> Option<IpNet> {
        self.0
            .parse::<IpNet>()
            .ok()
            .or_else(|| self.0.parse::<IpAddr>().ok().map(IpNet::from))
    }
}

/// A port, a range `"8000-8100"`, or absent (0) for any / not applicable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PortPat {
    pub lo: u16,
    pub hi: u16,
}

impl PortPat {
    pub fn one(p: u16) -> PortPat {
        PortPat { lo: p, hi: p }
    }
    pub fn is_any(&self) -> bool {
        self.lo == 0 && self.hi == 0
    }
    pub fn contains(&self, p: u16) -> bool {
        self.is_any() || (self.lo <= p && p <= self.hi)
    }
    fn parse(s: &str) -> Result<PortPat, String> {
        let bad = || format!("{s:?} is not a port or a range like \"8000-8100\"");
        let (lo, hi) = s.split_once('-').unwrap_or((s, s));
        let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
        let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
        if lo > hi {
            return Err(format!("port range {s:?} runs backwards"));
        }
        Ok(PortPat { lo, hi })
    }
}

/// A DNS name, or `*.example.com` for any name under it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomainPat(pub String);

impl DomainPat {
    pub fn check(d: &str) -> Result<(), String> {
        let name = d.strip_prefix("*.").unwrap_or(d);
        let ok = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{d:?} is not a DNS name or a wildcard like \"*.example.com\""
            ))
        }
    }
    pub fn matches(&self, name: &str) -> bool {
        match self.0.strip_prefix("*.") {
            Some(suffix) => {
                name.len() > suffix.len() + 1
                    && name.ends_with(suffix)
                    && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
            }
            None => self.0.eq_ignore_ascii_case(name),
        }
    }
}

macro_rules! string_value {
    ($t:ident, $what:literal) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $t::check(&s).map_err(|e| de::Error::custom(format!("bad {}: {e}", $what)))?;
                Ok($t(s))
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
string_value!(PathPat, "path");
string_value!(AddrPat, "address");
string_value!(DomainPat, "DNS name");

impl Serialize for PortPat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.lo == self.hi {
            s.serialize_u16(self.lo)
        } else {
            s.serialize_str(&format!("{}-{}", self.lo, self.hi))
        }
    }
}

impl<'de> Deserialize<'de> for PortPat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = PortPat;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number or a range like \"8000-8100\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortPat, E> {
                u16::try_from(v)
                    .map(PortPat::one)
                    .map_err(|_| E::custom(format!("bad port: {v} is not from 0 to 65535")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortPat, E> {
                self.visit_i64(v as i64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortPat, E> {
                PortPat::parse(v).map_err(|e| E::custom(format!("bad port: {e}")))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand_and_abstract() {
        let v = Vars {
            home: Some("/home/ann".into()),
            cwd: Some("/home/ann/src/app".into()),
        };
        assert_eq!(v.abstract_path("/home/ann/src/app/x.py"), "${CWD}/x.py");
        assert_eq!(v.abstract_path("/home/ann/.cache/y"), "${HOME}/.cache/y");
        assert_eq!(v.abstract_path("/home/annex/z"), "/home/annex/z");
        assert_eq!(v.expand("${CWD}/x.py").unwrap(), "/home/ann/src/app/x.py");
        assert!(Vars::default().expand("${HOME}/x").is_err());
    }

    #[test]
    fn path_patterns_are_checked() {
        for ok in [
            "/etc/passwd",
            "/tmp/*",
            "/usr/lib/**",
            "${HOME}/.cache/{pip,uv}/**",
            "${CWD}",
        ] {
            assert!(PathPat::check(ok).is_ok(), "{ok}");
        }
        for bad in ["etc/passwd", "${USER}/x", "/a/${HOME}", "/a/{b", "${HOME}x"] {
            assert!(PathPat::check(bad).is_err(), "{bad}");
        }
        let g = glob("/tmp/*/x").unwrap().compile_matcher();
        assert!(g.is_match(subject("/tmp/a/x")) && !g.is_match(subject("/tmp/a/b/x")));
        let g = glob("**/*/**").unwrap().compile_matcher();
        assert!(
            !g.is_match(subject("/tmp")),
            "no empty root segment for * to match"
        );
    }

    #[test]
    fn braces_expand_with_empty_alternatives_and_literal_brackets() {
        assert_eq!(
            expand_braces("/{usr/,}lib{,64}/x").unwrap(),
            ["/usr/lib/x", "/usr/lib64/x", "/lib/x", "/lib64/x"]
        );
        assert_eq!(
            expand_braces("/a[{]b/{c,d}").unwrap(),
            ["/a[{]b/c", "/a[{]b/d"]
        );
        assert!(expand_braces("/a/{b").is_err());
    }

    #[test]
    fn the_matcher_takes_an_empty_alternative_as_the_kernel_does() {
        // globset alone matches no empty alternative: "/lib{,64}/x" missed "/lib/x".
        let p = crate::profile::Profile::parse(
            "version = 1\n\n[[file]]\npath = \"/{usr/,}lib{,64}/ld-linux.so.*\"\naccess = [\"read\"]\n",
            std::path::Path::new("p.toml"),
        )
        .unwrap();
        let m = crate::profile::matcher::Matcher::new(&p, &Vars::default()).unwrap();
        let read = std::collections::BTreeSet::from([crate::event::Access::Read]);
        for path in ["/lib/ld-linux.so.2", "/usr/lib64/ld-linux.so.2"] {
            assert_eq!(
                m.file(path, &read),
                crate::profile::matcher::Verdict::Covered,
                "{path}"
            );
            let c = crate::enforce::compile::compile(&p, &Vars::default()).unwrap();
            assert!(
                crate::enforce::compile::kernel_model(&c, path, crate::enforce::compile::READ),
                "{path}"
            );
        }
    }

    #[test]
    fn ports_domains_addresses() {
        assert!(PortPat::parse("80-90").unwrap().contains(85));
        assert!(PortPat::parse("90-80").is_err());
        assert!(DomainPat("*.example.com".into()).matches("api.example.com"));
        assert!(!DomainPat("*.example.com".into()).matches("example.com"));
        assert!(!DomainPat("*.example.com".into()).matches("badexample.com"));
        assert!(DomainPat::check("exa mple.com").is_err());
        assert!(AddrPat::check("10.0.0.0/8").is_ok() && AddrPat::check("10.0.0.0/33").is_err());
        assert!(AddrPat("10.0.0.0/8".into())
            .net()
            .unwrap()
            .contains(&"10.1.2.3".parse::<IpAddr>().unwrap()));
    }
}
