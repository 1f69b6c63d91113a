//! What keeps a learned profile short enough to review, with nothing lost for diff and
//! enforce: library trees collapse into one read-only pattern (families), and learned
//! entries a shipped abstraction covers fold into it (`include`, with `[[absorbed]]`
//! saying what each took over). Patterns keep a bounded sample of their literals
//! (learn.rs, `EXAMPLES`).
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::learn::{depth, is_literal, placeholder, unescape, Lit, Unit, EXAMPLES};
use super::matcher::{Matcher, Verdict};
use super::{include, Absorbed, Profile, Vars};
use crate::event::Access;

/// A library tree: the interpreter's own (`lib/python3.11`, which holds `site-packages`)
/// or a package manager's (`node_modules`). What is installed there is code the agent
/// loads; reading more of it than one run did is ordinary, writing to it is not.
pub fn family_root(path: &str) -> Option<String> {
    let segs: Vec<&str> = path.split('/').collect();
    for i in 1..segs.len().saturating_sub(1) {
        let s = segs[i];
        let python = (segs[i - 1] == "lib" || segs[i - 1] == "lib64")
            && s.strip_prefix("python3").is_some_and(|v| {
                v.is_empty()
                    || v.strip_prefix('.')
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
            });
        if python || s == "node_modules" {
            let root = segs[..=i].join("/");
            return (depth(&root) >= 3 && is_literal(&root)).then_some(root);
        }
    }
    None
}

/// Accesses a family admits: reading and listing.
fn read_only(a: &BTreeSet<Access>) -> bool {
    a.iter()
        .all(|x| matches!(x, Access::Read | Access::List | Access::Path))
}

/// Step 1b: three or more read-only entries under one library root become `root/**`.
pub(super) fn families(units: Vec<Unit>) -> Vec<Unit> {
    let mut groups: BTreeMap<String, Vec<Unit>> = BTreeMap::new();
    let mut out = Vec::new();
    for u in units {
        match family_root(&u.path).filter(|_| !u.protected && read_only(&u.lit.access)) {
            Some(root) => groups.entry(root).or_default().push(u),
            None => out.push(u),
        }
    }
    for (root, group) in groups {
        if group.len() < 3 {
            out.extend(group);
            continue;
        }
        out.push(Unit::pattern(format!("{root}/**"), Unit::gather(&group)));
    }
    out
}

/// What an include absorbed, as learning keeps it (a sample of paths, bounded on output).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Folded {
    /// Runs, count, accesses; `literals` counts the entries (at least: see Lit).
    pub lit: Lit,
    pub exec: BTreeSet<String>,
    pub file: BTreeSet<String>,
}

impl Folded {
    pub fn from_absorbed(a: &Absorbed) -> Folded {
        Folded {
            lit: Lit {
                access: a.access.clone(),
                seen: a.seen.iter().copied().collect(),
                count: a.count,
                literals: a.entries,
                ..Default::default()
            },
            exec: a.exec.iter().cloned().collect(),
            file: a.file.iter().cloned().collect(),
        }
    }

    pub fn join(&mut self, o: &Folded, sum: bool) {
        self.lit.join(&o.lit, sum);
        self.exec.extend(o.exec.iter().cloned());
        self.file.extend(o.file.iter().cloned());
    }

    pub fn remapped(&self, map: &[u32]) -> Folded {
        Folded {
            lit: self.lit.remapped(map),
            ..self.clone()
        }
    }

    pub fn into_absorbed(self, include: String) -> Absorbed {
        Absorbed {
            include,
            seen: self.lit.seen.iter().copied().collect(),
            count: self.lit.count,
            entries: self.lit.literals,
            exec: self.exec.into_iter().take(EXAMPLES).collect(),
            file: self.file.into_iter().take(EXAMPLES).collect(),
            access: self.lit.access,
        }
    }
}

/// An include is proposed when it covers this many learned entries.
pub const PROPOSE_AT: usize = 3;

/// Folds learned entries into the shipped includes that cover them: every include the
/// profile names, and each other shipped one that admits no programs and covers at least
/// PROPOSE_AT entries (learning proposes it). An entry goes to the first include, in shipped order, that
/// covers all it stands for; protected entries are never folded.
pub fn absorb_includes(p: &mut Profile, folded: &mut BTreeMap<String, Folded>) {
    let vars = Vars {
        home: Some("/home/_".into()),
        cwd: Some("/_cwd".into()),
    };
    for (name, text) in include::SHIPPED {
        let origin = Path::new("profiles").join(format!("{name}.toml"));
        let Some((inc, m)) = Profile::parse(text, &origin)
            .and_then(|inc| {
                let m = Matcher::new(&include::resolve(&inc, &origin)?, &vars)?;
                Ok((inc, m))
            })
            .ok()
        else {
            continue;
        };
        let execs: Vec<usize> = (0..p.exec.len())
            .filter(|&i| {
                let e = &p.exec[i];
                e.learned
                    && !e.protected
                    && probes(&e.path.0, &e.examples)
                        .iter()
                        .all(|x| m.exec_hit(x).verdict == Verdict::Covered)
            })
            .collect();
        let files: Vec<usize> = (0..p.file.len())
            .filter(|&i| {
                let e = &p.file[i];
                e.learned
                    && !e.protected
                    && probes(&e.path.0, &e.examples)
                        .iter()
                        .all(|x| m.file(x, &e.access) == Verdict::Covered)
            })
            .collect();
        let named = p.include.iter().any(|i| i == name);
        // Learning proposes only abstractions of reads (libs, locale, tls): one that admits
        // programs (python, coreutils) or connections (resolver) admits what a run never
        // did, so only a person adds it.
        let reads_only = inc.exec.is_empty() && inc.net.is_empty() && inc.include.is_empty();
        if execs.is_empty() && files.is_empty()
            || !named && (!reads_only || execs.len() + files.len() < PROPOSE_AT)
        {
            continue;
        }
        if !named {
            p.include.push(name.to_string());
        }
        let f = folded.entry(name.to_string()).or_default();
        f.lit.literals += (execs.len() + files.len()) as u64;
        for &i in &execs {
            let e = &p.exec[i];
            f.lit
                .join(&entry_lit(&e.seen, e.count, &BTreeSet::new()), true);
            f.exec.insert(e.path.0.clone());
        }
        for &i in &files {
            let e = &p.file[i];
            f.lit.join(&entry_lit(&e.seen, e.count, &e.access), true);
            f.file.insert(e.path.0.clone());
        }
        let gone_e: BTreeSet<usize> = execs.into_iter().collect();
        let gone_f: BTreeSet<usize> = files.into_iter().collect();
        let mut i = 0;
        p.exec.retain(|_| (!gone_e.contains(&i), i += 1).0);
        let mut i = 0;
        p.file.retain(|_| (!gone_f.contains(&i), i += 1).0);
    }
}

fn entry_lit(seen: &[u32], count: u64, access: &BTreeSet<Access>) -> Lit {
    Lit {
        seen: seen.iter().copied().collect(),
        count,
        access: access.clone(),
        ..Default::default()
    }
}

/// Concrete paths that stand for an entry, for asking an include whether it covers it: a
/// literal itself; a pattern its examples, and the pattern as text at one and at three
/// levels deep (what a `*` or `**` in it could reach), so that an include narrower than
/// the pattern does not swallow it.
fn probes(path: &str, examples: &[String]) -> Vec<String> {
    if is_literal(path) {
        return vec![placeholder(&unescape(path))];
    }
    let mut out: Vec<String> = examples.iter().map(|e| placeholder(e)).collect();
    let text = placeholder(path);
    out.push(text.replace("**", "_a_/_b_/_c_").replace('*', "_x_"));
    out.push(text.replace("**", "_a_").replace('*', "_x_"));
    out.push(text);
    out
}

#[cfg(test)]
mod tests;
