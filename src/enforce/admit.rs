//! `enforce --deny-at LEVEL`: what the profile does not cover but the severity model rates
//! below LEVEL, added to the profile as rules the kernel checks like any other.
//!
//! One table decides: each candidate is rated by the same `Checker` that `agentguard diff`
//! and `record --baseline` use, against the profile as written. A rule of the table is
//! admitted as a whole only when its scope can be written as kernel rules: reads beside
//! files the baseline reads (`dir/*`), reads anywhere (`/**`), writes in the workspace and
//! the temp directories, and programs, which are listed one by one from the system's
//! program directories as they are at the start. The protected set still wins over every
//! admitted rule (they are learned rules, not hand-written ones), as it does in `diff`.
use std::collections::BTreeMap;
use std::path::Path;

use crate::diff::rules::{self, Rule, Severity};
use crate::diff::Checker;
use crate::event::{Access, Proto};
use crate::profile::learn::escape;
use crate::profile::pattern::{is_glob, AddrPat, PathPat, PortPat, Vars};
use crate::profile::protected;
use crate::profile::{ExecEntry, FileEntry, NetDir, NetEntry, Profile, What};

/// The profile widened for a level, and what the widening admits, for the person.
#[derive(Debug)]
pub struct Admitted {
    pub profile: Profile,
    /// "read-known-dir (low): new files in 12 directories the baseline reads", ...
    pub lines: Vec<String>,
    /// Where an admitted rule could not be written for the kernel: it stays denied.
    pub narrowed: Vec<String>,
}

const READS: &[Access] = &[Access::Read, Access::List, Access::Path];

/// Every file access: the reads and the protected set's list of writing ones.
fn all_file() -> Vec<Access> {
    READS.iter().chain(protected::WRITES).copied().collect()
}

fn below(rule: &Rule, level: Severity) -> bool {
    rule.severity < level
}

fn file(path: String, access: &[Access]) -> FileEntry {
    FileEntry {
        allowed: None,
        path: PathPat(path),
        access: access.iter().copied().collect(),
        learned: true,
        protected: false,
        seen: Vec::new(),
        count: 0,
        replaced: Vec::new(),
        examples: Vec::new(),
        literals: 0,
        read: Vec::new(),
    }
}

fn exec(path: String) -> ExecEntry {
    ExecEntry {
        allowed: None,
        path: PathPat(path),
        learned: true,
        protected: false,
        seen: Vec::new(),
        count: 0,
        replaced: Vec::new(),
        examples: Vec::new(),
        literals: 0,
    }
}

/// `resolved`: the profile with its includes resolved, as the checker was built from.
pub fn widen(resolved: &Profile, checker: &Checker, vars: &Vars, level: Severity) -> Admitted {
    let mut p = resolved.clone();
    let mut lines = Vec::new();
    let mut narrowed = Vec::new();

    if below(&rules::READ_KNOWN_DIR, level) {
        let mut dirs: Vec<&String> = checker
            .known_dirs()
            .iter()
            .filter(|d| !d.is_empty() && !is_glob(d))
            .collect();
        dirs.sort();
        for d in &dirs {
            p.file.push(file(format!("{}/*", escape(d)), READS));
        }
        // A file the baseline has a rule for, with an access it never used (a read of
        // what it only wrote): the same rule.
        for e in resolved.file.iter().filter(|e| !e.protected) {
            p.file.push(file(e.path.0.clone(), READS));
        }
        lines.push(say(
            &rules::READ_KNOWN_DIR,
            format!(
                "reads of new files in the {} directories the baseline reads, and reads of the files it writes",
                dirs.len()
            ),
        ));
    }
    if below(&rules::DEVICE, level) {
        for d in rules::DEVICES {
            p.file.push(file((*d).into(), rules::DEVICE_ACCESS));
        }
        lines.push(say(
            &rules::DEVICE,
            "reads and writes of /dev/null, /dev/tty and the other ordinary devices".into(),
        ));
    }
    if below(&rules::READ_NEW, level) {
        p.file.push(file("/**".into(), READS));
        lines.push(say(
            &rules::READ_NEW,
            "reads anywhere outside the protected set".into(),
        ));
    }
    if below(&rules::WRITE_OUTSIDE, level) {
        p.file.push(file("/**".into(), &all_file()));
        lines.push(say(
            &rules::WRITE_OUTSIDE,
            "writes anywhere outside the protected set".into(),
        ));
    } else if below(&rules::WRITE_WORKSPACE, level) {
        let at = workspace(&mut p, vars, &mut narrowed);
        lines.push(say(
            &rules::WRITE_WORKSPACE,
            format!("writes in {}", at.join(", ")),
        ));
    }
    if below(&rules::EXEC_ELSEWHERE, level) {
        p.exec.push(exec("/**".into()));
        lines.push(say(
            &rules::EXEC_ELSEWHERE,
            "programs anywhere outside the protected set".into(),
        ));
    }
    lines.extend(programs_admitted(&mut p, checker, level));
    if below(&rules::NET_NEW_HOST, level) {
        for proto in [Proto::Tcp, Proto::Udp] {
            p.net.push(net(NetDir::Connect, proto));
        }
        p.net.push(net(NetDir::Resolve, Proto::Udp));
        lines.push(say(
            &rules::NET_NEW_HOST,
            "connections to any address and port, DNS servers included".into(),
        ));
        narrowed.push(say(
            &rules::NET_NEW_UNIX,
            "unix-socket destinations stay as the profile lists them (the kernel matches them by exact path)".into(),
        ));
    }
    Admitted {
        profile: p,
        lines,
        narrowed,
    }
}

fn say(r: &Rule, what: String) -> String {
    format!("{} ({}): {what}", r.id, r.severity.name())
}

/// Writes in the workspace (the launch directory, unless it holds the home directory or a
/// program directory) and the temp directories (unless one holds the home directory):
/// where they were admitted; what was left out goes to `narrowed`.
fn workspace(p: &mut Profile, vars: &Vars, narrowed: &mut Vec<String>) -> Vec<String> {
    let home = vars.home.as_deref();
    let mut at = Vec::new();
    // A launch directory holding the home directory or a program directory is no
    // workspace (rules::in_work).
    match vars.cwd.as_deref() {
        None => narrowed.push(say(
            &rules::WRITE_WORKSPACE,
            "no workspace (writes there stay denied)".into(),
        )),
        Some(cwd) if rules::holds_home_or_programs(cwd, home) => narrowed.push(say(
            &rules::WRITE_WORKSPACE,
            format!("not in {cwd}: it holds the home directory or a program directory, so it is no workspace (writes there stay denied)"),
        )),
        Some(_) => {
            p.file.push(file("${CWD}/**".into(), &all_file()));
            at.push("${CWD}".to_string());
        }
    }
    for t in rules::TEMP_DIRS {
        // The home directory is never a scratch area: a temp directory that holds it
        // cannot be admitted as a whole, and the kernel has no "except".
        if home.is_some_and(|h| rules::under(h, t)) {
            narrowed.push(say(
                &rules::WRITE_WORKSPACE,
                format!("not in {t}: the home directory is beneath it (writes there stay denied)"),
            ));
            continue;
        }
        p.file.push(file(format!("{t}/**"), &all_file()));
        at.push((*t).to_string());
    }
    at
}

/// The system's programs that the level admits, each rated on its own as the kernel will
/// report it (resolved); one line per rule.
fn programs_admitted(p: &mut Profile, checker: &Checker, level: Severity) -> Vec<String> {
    let mut lines = Vec::new();
    let mut by_rule: BTreeMap<&'static str, (Severity, Vec<String>)> = BTreeMap::new();
    for prog in programs(rules::SYSTEM_BIN) {
        if let Some((rule, _)) = checker.rate(&What::Exec { path: prog.clone() }) {
            if below(rule, level) && rule.id != rules::RARE.id {
                p.exec.push(exec(escape(&prog)));
                by_rule
                    .entry(rule.id)
                    .or_insert((rule.severity, Vec::new()))
                    .1
                    .push(prog);
            }
        }
    }
    for (id, (sev, progs)) in by_rule {
        let names: Vec<&str> = progs
            .iter()
            .take(6)
            .map(|p| p.rsplit('/').next().unwrap_or(p))
            .collect();
        lines.push(format!(
            "{id} ({}): {} programs ({}{})",
            sev.name(),
            progs.len(),
            names.join(", "),
            if progs.len() > names.len() {
                ", ..."
            } else {
                ""
            }
        ));
    }
    lines
}

fn net(op: NetDir, proto: Proto) -> NetEntry {
    NetEntry {
        allowed: None,
        op,
        proto,
        addr: Some(AddrPat("*".into())),
        host: None,
        port: PortPat::default(),
        private: false,
        addresses: Vec::new(),
        learned: true,
        seen: Vec::new(),
        count: 0,
        failed: 0,
        sent: Vec::new(),
        received: Vec::new(),
    }
}

/// The executable files in the program directories, by the path the kernel reports when
/// one runs (symbolic links resolved), each once.
fn programs(bins: &[&str]) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut dirs = std::collections::HashSet::new();
    for d in bins {
        // A directory that links to another (/bin on a merged /usr) is read once.
        let Ok(dir) = std::fs::canonicalize(d) else {
            continue;
        };
        if !dirs.insert(dir.clone()) {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            // In a resolved directory only a symbolic link has a path to resolve: resolving
            // every name, a readlink per component, was most of enforce's start-up on a
            // slow machine (thousands of programs).
            let real = match e.file_type() {
                Ok(t) if t.is_symlink() => match std::fs::canonicalize(e.path()) {
                    Ok(r) => r,
                    Err(_) => continue,
                },
                Ok(_) => e.path(),
                Err(_) => continue,
            };
            if is_executable(&real) {
                if let Some(s) = real.to_str() {
                    out.insert(s.to_string());
                }
            }
        }
    }
    out.into_iter().collect()
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests;
