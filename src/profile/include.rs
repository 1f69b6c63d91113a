//! `include = [...]`: shared abstractions. The ones shipped in profiles/ are built into the
//! binary, so a profile that names them works wherever agentguard runs; any other name is
//! a path relative to the including file.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::Profile;

/// (name, text) of each shipped abstraction.
pub const SHIPPED: &[(&str, &str)] = &[
    ("coreutils", include_str!("../../profiles/coreutils.toml")),
    ("libs", include_str!("../../profiles/libs.toml")),
    ("locale", include_str!("../../profiles/locale.toml")),
    ("python", include_str!("../../profiles/python.toml")),
    ("resolver", include_str!("../../profiles/resolver.toml")),
    ("tls", include_str!("../../profiles/tls.toml")),
];

/// The profile with the rules of everything it includes (transitively) added as
/// hand-written rules; `include` is left as it was, for display.
pub fn resolve(p: &Profile, origin: &Path) -> Result<Profile> {
    let mut out = p.clone();
    let mut seen = BTreeSet::new();
    add_includes(&mut out, p, origin, &mut seen, 0)?;
    Ok(out)
}

fn add_includes(
    out: &mut Profile,
    p: &Profile,
    origin: &Path,
    seen: &mut BTreeSet<String>,
    depth: usize,
) -> Result<()> {
    if depth > 16 {
        bail!("{}: includes nest more than 16 deep", origin.display());
    }
    for name in &p.include {
        let (key, inc, inc_origin) = load(name, origin)?;
        if !seen.insert(key) {
            continue;
        }
        if inc.exec.iter().any(|e| e.learned)
            || inc.file.iter().any(|e| e.learned)
            || !inc.run_info.is_empty()
        {
            bail!("{}: include {name:?} holds learned entries or runs; an abstraction is written by hand", origin.display());
        }
        out.exec.extend(inc.exec.iter().cloned());
        out.file.extend(inc.file.iter().cloned());
        out.net.extend(inc.net.iter().cloned());
        out.dns.extend(inc.dns.iter().cloned());
        out.flag.extend(inc.flag.iter().cloned());
        add_includes(out, &inc, &inc_origin, seen, depth + 1)?;
    }
    Ok(())
}

fn load(name: &str, origin: &Path) -> Result<(String, Profile, PathBuf)> {
    if let Some((_, text)) = SHIPPED.iter().find(|(n, _)| *n == name) {
        let o = PathBuf::from(format!("profiles/{name}.toml"));
        return Ok((format!("shipped:{name}"), Profile::parse(text, &o)?, o));
    }
    if !name.contains('/') && !name.ends_with(".toml") {
        let names: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
        bail!("{}: include {name:?}: no such abstraction (shipped: {}); a file is named by a path ending in .toml", origin.display(), names.join(", "));
    }
    let path = origin.parent().unwrap_or(Path::new(".")).join(name);
    let p =
        Profile::load(&path).with_context(|| format!("{}: include {name:?}", origin.display()))?;
    let key = std::fs::canonicalize(&path)
        .unwrap_or(path.clone())
        .display()
        .to_string();
    Ok((key, p, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_abstraction_parses_and_is_hand_written() {
        for (name, text) in SHIPPED {
            let p = Profile::parse(text, Path::new(name)).unwrap();
            assert!(
                p.file.iter().chain(std::iter::empty()).all(|e| !e.learned),
                "{name}"
            );
            assert!(!p.file.is_empty() || !p.exec.is_empty(), "{name} is empty");
        }
    }

    #[test]
    fn every_shipped_include_compiles_exactly_for_bpf_lsm() {
        let vars = crate::profile::Vars {
            home: Some("/home/u".into()),
            cwd: Some("/w".into()),
        };
        for (name, _) in SHIPPED {
            let mut p = Profile::empty();
            p.include = vec![name.to_string()];
            let r = resolve(&p, Path::new("x.toml")).unwrap();
            if let Err(e) = crate::enforce::compile::compile(&r, &vars) {
                panic!("include {name:?} cannot be enforced exactly: {e:#}");
            }
        }
    }

    #[test]
    fn includes_resolve_and_unknown_names_are_errors() {
        let mut p = Profile::empty();
        p.include = vec!["resolver".into(), "python".into()];
        let r = resolve(&p, Path::new("x.toml")).unwrap();
        let m = super::super::matcher::Matcher::new(
            &r,
            &super::super::Vars {
                home: Some("/root".into()),
                cwd: None,
            },
        )
        .unwrap();
        let read = std::collections::BTreeSet::from([crate::event::Access::Read]);
        assert_eq!(
            m.file("/etc/resolv.conf", &read),
            super::super::matcher::Verdict::Covered
        );
        assert_eq!(
            m.file("/root/.pyenv/versions/3.11.7/lib/python3.11/os.py", &read),
            super::super::matcher::Verdict::Covered
        );
        assert_ne!(
            m.file("/etc/shadow", &read),
            super::super::matcher::Verdict::Covered
        );
        p.include = vec!["nope".into()];
        let e = format!("{:#}", resolve(&p, Path::new("x.toml")).unwrap_err());
        assert!(
            e.contains("x.toml: include \"nope\": no such abstraction"),
            "{e}"
        );
    }

    #[test]
    fn no_shipped_include_grants_keys_or_writes_code_others_run() {
        // tls reads certificates, not /etc/ssl/private; python reads byte code, and writes
        // none where a Python outside the tree would run it.
        use super::super::matcher::{Matcher, Verdict};
        use crate::event::Access;
        let mut p = Profile::empty();
        p.include = SHIPPED.iter().map(|(n, _)| n.to_string()).collect();
        let r = resolve(&p, Path::new("x.toml")).unwrap();
        let vars = super::super::Vars {
            home: Some("/root".into()),
            cwd: Some("/w".into()),
        };
        let m = Matcher::new(&r, &vars).unwrap();
        let read = std::collections::BTreeSet::from([Access::Read]);
        let write = std::collections::BTreeSet::from([Access::Write, Access::Create]);
        assert_eq!(
            m.file("/etc/ssl/certs/ca-certificates.crt", &read),
            Verdict::Covered
        );
        for key in ["/etc/ssl/private/host.key", "/etc/pki/tls/private/host.key"] {
            assert_ne!(m.file(key, &read), Verdict::Covered, "{key}");
        }
        let pyc = "/usr/lib/python3/dist-packages/__pycache__/six.cpython-311.pyc";
        assert_eq!(m.file(pyc, &read), Verdict::Covered);
        assert_ne!(m.file(pyc, &write), Verdict::Covered);
    }
}
