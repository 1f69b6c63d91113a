//! The Landlock backend's file half: a profile's file and exec rules as a Landlock ruleset.
//!
//! Landlock grants access to a file or to everything beneath a directory, never by
//! pattern. So each rule becomes the hierarchy of its literal prefix (`/usr/lib/*.so` ->
//! beneath `/usr/lib`): widened, and reported. A rule that would widen to the whole file
//! system, or to a directory that holds protected paths (`${HOME}/*` holds `~/.ssh`), is
//! dropped instead: narrowed, and reported. Creating, deleting and renaming are rights on
//! the directory that holds the entry, so a rule for one new file allows any in its
//! directory: widened. chmod is not something Landlock restricts: reported.
use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use landlock::{
    Access, AccessFs, BitFlags, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, Scope, ABI,
};

use crate::event::Access as A;
use crate::profile::{protected, Profile, Vars};

/// Rights this backend handles (ABI 3): everything else is left to the kernel's defaults.
/// Device ioctls (ABI 5) are not handled: terminals need them.
const HANDLED: ABI = ABI::V3;

/// What the compiled ruleset allows, and how it differs from the profile.
#[derive(Debug, Default)]
pub struct Plan {
    /// Path -> rights beneath it (a file: on it).
    pub grants: BTreeMap<PathBuf, BitFlags<AccessFs>>,
    /// Rules allowed more widely than written, with what they became.
    pub widened: Vec<String>,
    /// Rules not allowed at all, and why.
    pub narrowed: Vec<String>,
}

/// The profile's file and exec rules as Landlock grants.
pub fn plan(p: &Profile, vars: &Vars) -> Plan {
    let mut plan = Plan::default();
    let guarded = Guarded::new(vars.home.as_deref());
    let rules = p
        .file
        .iter()
        .filter(|e| !e.protected)
        .map(|e| {
            (
                format!("[[file]] {}", e.path),
                e.path.0.clone(),
                e.access.clone(),
            )
        })
        .chain(p.exec.iter().filter(|e| !e.protected).map(|e| {
            (
                format!("[[exec]] {}", e.path),
                e.path.0.clone(),
                Default::default(),
            )
        }));
    for (source, pattern, access) in rules {
        let exec = source.starts_with("[[exec]]");
        // In pattern syntax throughout: a literal '[' or '*' in a name is escaped ("[[]"),
        // and only an unescaped one makes a pattern.
        let expanded = match vars.expand(&pattern) {
            Ok(x) => x,
            Err(e) => {
                plan.narrowed.push(format!("{source}: {e}"));
                continue;
            }
        };
        for alt in braces(&expanded) {
            let (literal, exact) = literal_prefix(&alt);
            if literal == "/" || literal.is_empty() {
                plan.narrowed.push(format!(
                    "{source}: not allowed: as a hierarchy it would be the whole file system"
                ));
                continue;
            }
            let path = PathBuf::from(&literal);
            let is_dir = path.is_dir();
            // The dynamic loader an exec starts is opened for execution: as under BPF LSM,
            // reading it is enough (README, What enforce covers).
            let loader = alt.contains("ld-linux") || alt.contains("ld-musl");
            let exec_like = exec || (loader && access.contains(&A::Read));
            let (rights, parent_rights) = rights(&access, exec_like, is_dir, exact);
            if access.contains(&A::Chmod) {
                plan.widened.push(format!(
                    "{source}: chmod is not restricted by Landlock (allowed wherever the file is)"
                ));
            }
            // Directory rights: on the directory itself for a hierarchy, on the parent for
            // an entry.
            let (holder, widened_to_parent) = if exact && !is_dir {
                (
                    path.parent().map(Path::to_path_buf).unwrap_or_default(),
                    true,
                )
            } else {
                (path.clone(), false)
            };
            // A pattern's directory that holds protected paths: its entries, less the
            // protected ones, as they are at the start ("/etc/*" without /etc/shadow).
            if !exact && path.is_dir() && guarded.beneath(&path).is_some() && !rights.is_empty() {
                let deep = alt.ends_with("/**");
                let skipped = guarded.entries_but_protected(&path, rights, deep, 3, &mut plan);
                plan.widened.push(format!(
                    "{source}: allowed for each entry of {} as it is at the start{}, except the protected {}",
                    path.display(),
                    if deep { " (each a hierarchy)" } else { "" },
                    skipped.join(", ")
                ));
                grant(&guarded, &source, &holder, parent_rights, &mut plan);
                continue;
            }
            if !exact {
                plan.widened
                    .push(format!("{source}: allowed beneath {literal} (a hierarchy)"));
            } else if is_dir && !rights.is_empty() {
                plan.widened
                    .push(format!("{source}: allowed beneath the directory {literal}"));
            }
            if !parent_rights.is_empty() && widened_to_parent {
                plan.widened.push(format!(
                    "{source}: creating, deleting or renaming it is allowed for any entry of {}",
                    holder.display()
                ));
            }
            grant(&guarded, &source, &path, rights, &mut plan);
            grant(&guarded, &source, &holder, parent_rights, &mut plan);
        }
    }
    if plan.grants.keys().any(|p| p.is_dir()) {
        plan.widened.push("every hierarchy: protected files deeper in it (a project's .env, .git/hooks) are not excluded: Landlock cannot carve exceptions".into());
    }
    plan.widened.sort();
    plan.widened.dedup();
    plan.narrowed.sort();
    plan.narrowed.dedup();
    plan
}

/// Landlock's rights for a rule's accesses: on the path itself, and on the directory that
/// holds it (making, removing and renaming entries). `exec`: the file is executed (or is
/// the dynamic loader an exec opens), which Landlock checks as execute and read.
fn rights(
    access: &BTreeSet<A>,
    exec: bool,
    is_dir: bool,
    exact: bool,
) -> (BitFlags<AccessFs>, BitFlags<AccessFs>) {
    let mut rights = BitFlags::<AccessFs>::empty();
    let mut parent_rights = BitFlags::<AccessFs>::empty();
    // An exec opens the file for reading too: Landlock wants both rights.
    if exec {
        rights |= AccessFs::Execute | AccessFs::ReadFile;
    }
    for a in access {
        match a {
            A::Read => rights |= dir_only(is_dir, AccessFs::ReadDir) | AccessFs::ReadFile,
            A::List => rights |= dir_only(is_dir || !exact, AccessFs::ReadDir),
            A::Write | A::Append => rights |= AccessFs::WriteFile,
            A::Truncate => rights |= AccessFs::Truncate,
            A::Path | A::Chmod | A::Times => {}
            // A new file of any kind but a device: a socket bound to a path and a
            // FIFO are made where a regular file is (BPF LSM checks all three at
            // path_mknod).
            A::Create => {
                parent_rights |= AccessFs::MakeReg | AccessFs::MakeSock | AccessFs::MakeFifo
            }
            A::Delete => parent_rights |= AccessFs::RemoveFile | AccessFs::RemoveDir,
            A::Mkdir => parent_rights |= AccessFs::MakeDir,
            A::Symlink => parent_rights |= AccessFs::MakeSym,
            A::Rename | A::Link => {
                parent_rights |= AccessFs::Refer | AccessFs::MakeReg | AccessFs::RemoveFile
            }
        }
    }
    (rights, parent_rights)
}

/// `r` on `at` (a file, or the hierarchy of a directory), unless Landlock would open
/// protected paths with it or `at` does not exist: then narrowed, and said.
fn grant(g: &Guarded, source: &str, at: &Path, r: BitFlags<AccessFs>, plan: &mut Plan) {
    if r.is_empty() {
        return;
    }
    let hierarchy = at.is_dir();
    // Listing only: names, no contents. Landlock gives it to the hierarchy, protected
    // directories included; said, not refused.
    if hierarchy && r == AccessFs::ReadDir {
        if g.beneath(at).is_some() {
            plan.widened.push(format!(
                "{source}: listing allowed beneath {} (names only; protected directories in it included)",
                at.display()
            ));
        }
        *plan.grants.entry(at.to_path_buf()).or_default() |= r;
        return;
    }
    if hierarchy {
        if let Some(p) = g.beneath(at) {
            plan.narrowed.push(format!(
                "{source}: not allowed: beneath {} lies the protected {} (Landlock cannot exclude it; write a narrower rule)",
                at.display(),
                p.display()
            ));
            return;
        }
    }
    if !at.exists() {
        plan.narrowed.push(format!(
            "{source}: not allowed: {} does not exist",
            at.display()
        ));
        return;
    }
    *plan.grants.entry(at.to_path_buf()).or_default() |= r;
}

fn dir_only(is_dir: bool, r: AccessFs) -> BitFlags<AccessFs> {
    if is_dir {
        r.into()
    } else {
        BitFlags::empty()
    }
}

/// The ruleset's descriptor: the child restricts itself with it before exec.
pub fn ruleset(plan: &Plan) -> Result<OwnedFd> {
    let handled = AccessFs::from_all(HANDLED);
    let mut rs = Ruleset::default()
        .set_compatibility(landlock::CompatLevel::HardRequirement)
        .handle_access(handled)
        .context("Landlock: handling file access")?
        // The tree may not signal processes outside its domain: agentguard, its watchdog,
        // the rest of the host (ABI 6, Linux 6.12).
        .scope(Scope::Signal)
        .context("Landlock: scoping signals to the tree (needs Linux 6.12 or newer)")?
        .create()
        .context("Landlock: creating the ruleset")?;
    for (path, rights) in &plan.grants {
        let fd = match PathFd::new(path) {
            Ok(fd) => fd,
            // Gone since the plan listed it (a temporary file, a process's /proc entry):
            // there is nothing left to grant.
            Err(_) if std::fs::symlink_metadata(path).is_err() => continue,
            Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
        };
        // File-only rights on a file; all of them on a directory.
        let r = if path.is_dir() {
            *rights
        } else {
            *rights & AccessFs::from_file(HANDLED)
        };
        if r.is_empty() {
            continue;
        }
        rs = rs
            .add_rule(PathBeneath::new(fd, r))
            .with_context(|| format!("Landlock: a rule for {}", path.display()))?;
    }
    let fd: Option<OwnedFd> = rs.into();
    fd.context("Landlock: no ruleset descriptor")
}

/// The protected set as Landlock must see it: absolute locations (`/etc/shadow`), and the
/// names that are protected wherever they are (`.ssh`, `.bashrc`), which a hierarchy
/// holds when it has them as entries.
struct Guarded {
    absolute: Vec<PathBuf>,
    names: Vec<String>,
    /// Names whose protected paths lie beneath them (`.git` for .git/config): a directory
    /// so named holds protected paths.
    holders: Vec<String>,
    /// The home directory: it holds the credentials and start-up files whatever is in
    /// it now, so a hierarchy holding it holds protected paths (a HOME under /tmp).
    home: Option<PathBuf>,
}

impl Guarded {
    fn new(home: Option<&str>) -> Guarded {
        let mut g = Guarded {
            absolute: Vec::new(),
            names: Vec::new(),
            holders: Vec::new(),
            home: home.map(PathBuf::from),
        };
        for (pat, _) in protected::PROTECTED {
            if let Some(rest) = pat.strip_prefix("**/") {
                let first = rest.split('/').next().unwrap_or(rest);
                if !first.contains(['*', '?', '[']) && !g.names.iter().any(|n| n == first) {
                    g.names.push(first.to_string());
                }
                if rest.contains('/') && !g.holders.iter().any(|n| n == first) {
                    g.holders.push(first.to_string());
                }
            } else {
                let (lit, _) = literal_prefix(pat);
                if lit.len() > 1 {
                    g.absolute.push(PathBuf::from(lit));
                }
            }
        }
        g
    }

    /// How everything at `p` is protected: a protected file, or a directory whose every
    /// entry is (`.ssh`: from all access, `.git/hooks`: from writes).
    fn guard(&self, p: &Path) -> Option<protected::Guard> {
        let s = p.to_string_lossy();
        // A directory whose contents are guarded (`.ssh/x`) before its own entry guard.
        let within = p
            .is_dir()
            .then(|| protected::guard(&format!("{s}/x")))
            .flatten()
            .filter(|g| *g != protected::Guard::Entry);
        within.or_else(|| protected::guard(&s))
    }

    /// Grants `r` on each entry of `dir` but the protected ones: files as files, and
    /// directories as hierarchies when `deep` (a pattern ending in "**"), descending
    /// `depth` levels into those holding protected paths; otherwise only listing them.
    /// Returns the entries left out.
    fn entries_but_protected(
        &self,
        dir: &Path,
        r: BitFlags<AccessFs>,
        deep: bool,
        depth: u32,
        plan: &mut Plan,
    ) -> Vec<String> {
        let mut skipped = Vec::new();
        let Ok(rd) = std::fs::read_dir(dir) else {
            return vec![format!("{} (unreadable)", dir.display())];
        };
        // Other processes' /proc entries: never the tree's (its pids do not exist yet),
        // and they hold other processes' environments.
        let proc_root = dir == Path::new("/proc");
        let mut entries: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| {
                !proc_root
                    || !e
                        .file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
            })
            .map(|e| e.path())
            .collect();
        entries.sort();
        let reads = AccessFs::ReadFile | AccessFs::ReadDir | AccessFs::Execute;
        for c in entries {
            match self.guard(&c) {
                Some(protected::Guard::All) => {
                    skipped.push(c.display().to_string());
                    continue;
                }
                // A persistence point (.git/config, .bashrc): read, never written.
                Some(protected::Guard::Writes) => {
                    let keep = if c.is_dir() {
                        r & reads
                    } else {
                        r & reads & AccessFs::from_file(HANDLED)
                    };
                    if !keep.is_empty() {
                        *plan.grants.entry(c.clone()).or_default() |= keep;
                    }
                    skipped.push(format!("{} (writing)", c.display()));
                    continue;
                }
                // Moving or replacing it needs rights on `dir`, which are not granted here.
                Some(protected::Guard::Entry) | None => {}
            }
            let meta = std::fs::symlink_metadata(&c);
            let is_dir = meta.as_ref().is_ok_and(|m| m.is_dir());
            if !is_dir {
                let fr = r & AccessFs::from_file(HANDLED);
                if !fr.is_empty() && meta.is_ok_and(|m| m.is_file()) {
                    *plan.grants.entry(c).or_default() |= fr;
                }
                continue;
            }
            let holds = self.beneath(&c).is_some();
            if !deep {
                if !holds && r.contains(AccessFs::ReadDir) {
                    *plan.grants.entry(c).or_default() |= AccessFs::ReadDir;
                }
            } else if !holds {
                *plan.grants.entry(c).or_default() |= r;
            } else if depth > 0 {
                skipped.extend(self.entries_but_protected(&c, r, deep, depth - 1, plan));
            } else {
                skipped.push(c.display().to_string());
            }
        }
        skipped
    }

    /// A protected location beneath the directory `d`, if there is one.
    fn beneath(&self, d: &Path) -> Option<PathBuf> {
        if let Some(h) = self
            .home
            .as_ref()
            .filter(|h| h.starts_with(d) && h.as_path() != d)
        {
            return Some(h.clone());
        }
        let name = d.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| self.holders.contains(&n)) {
            return Some(d.to_path_buf());
        }
        if let Some(a) = self
            .absolute
            .iter()
            .find(|a| a.starts_with(d) && a.as_path() != d)
        {
            return Some(a.clone());
        }
        self.names.iter().map(|n| d.join(n)).find(|p| p.exists())
    }
}

/// The literal directories before the first pattern segment, and whether the whole path
/// is literal.
fn literal_prefix(p: &str) -> (String, bool) {
    let mut out = String::new();
    for seg in p.split('/').filter(|s| !s.is_empty()) {
        let Some(lit) = super::compile::literal(seg) else {
            return (if out.is_empty() { "/".into() } else { out }, false);
        };
        out.push('/');
        out.push_str(&String::from_utf8_lossy(&lit));
    }
    (if out.is_empty() { "/".into() } else { out }, true)
}

/// `a{b,c}d` -> [abd, acd]: the profile's one expansion (pattern.rs).
fn braces(p: &str) -> Vec<String> {
    crate::profile::pattern::expand_braces(p).unwrap_or_else(|_| vec![p.to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_prefixes_and_braces() {
        assert_eq!(literal_prefix("/usr/lib/*.so"), ("/usr/lib".into(), false));
        assert_eq!(literal_prefix("/etc/hosts"), ("/etc/hosts".into(), true));
        assert_eq!(literal_prefix("**/x.pyc"), ("/".into(), false));
        // An escaped metacharacter is part of a name: /usr/bin/[ is a program.
        assert_eq!(literal_prefix("/usr/bin/[[]"), ("/usr/bin/[".into(), true));
        assert_eq!(
            braces("/etc/{passwd,group}"),
            vec!["/etc/passwd", "/etc/group"]
        );
        assert_eq!(
            braces("/usr/bin/python3{,.*}"),
            vec!["/usr/bin/python3", "/usr/bin/python3.*"]
        );
    }

    #[test]
    fn rules_are_widened_to_hierarchies_and_narrowed_around_protected_paths() {
        let home = std::env::temp_dir().join(format!("ag-ll-{}", std::process::id()));
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::create_dir_all(home.join("work")).unwrap();
        let vars = Vars {
            cwd: Some(home.join("work").display().to_string()),
            home: Some(home.display().to_string()),
        };
        let p = Profile::parse(
            r#"
version = 1
[[file]]
path = "${HOME}/*"
access = ["read"]
[[file]]
path = "${CWD}/*.md"
access = ["read", "write"]
[[file]]
path = "/etc/hostname"
access = ["read"]
[[file]]
path = "**/__pycache__/*.pyc"
access = ["read"]
[[exec]]
path = "/usr/bin/{true,false}"
"#,
            Path::new("p.toml"),
        )
        .unwrap();
        let plan = plan(&p, &vars);
        let work = home.join("work");
        assert!(plan.grants[&work].contains(AccessFs::ReadFile | AccessFs::WriteFile));
        assert!(plan.grants[Path::new("/etc/hostname")].contains(AccessFs::ReadFile));
        assert!(plan.grants[Path::new("/usr/bin/true")].contains(AccessFs::Execute));
        assert!(!plan.grants.contains_key(&home), "{plan:?}");
        // ${HOME}/* holds ~/.ssh: each entry but that one, the work directory for listing.
        let w = plan.widened.join("\n");
        assert!(
            w.contains(&format!(
                "[[file]] ${{HOME}}/*: allowed for each entry of {} as it is at the start, except the protected {}",
                home.display(),
                home.join(".ssh").display()
            )),
            "{w}"
        );
        assert!(!plan.grants.contains_key(&home.join(".ssh")), "{plan:?}");
        let n = plan.narrowed.join("\n");
        assert!(n.contains("**/__pycache__/*.pyc: not allowed: as a hierarchy it would be the whole file system"), "{n}");
        assert!(plan
            .widened
            .iter()
            .any(|w| w.contains("${CWD}/*.md: allowed beneath")));
        let _ = std::fs::remove_dir_all(&home);
    }
}
