//! `agentguard allow BASELINE RUN`: admit what a run did that the baseline does not cover,
//! as hand-written rules that say who admitted them, when and why: one finding at a time
//! on a terminal (like aa-logprof), or chosen by flags for CI.
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context as _, Result};

use super::diff::RunInput;
use crate::cli::AllowArgs;
use crate::diff::{rules, Checker, Finding};
use crate::profile::allow::{self, Scope};
use crate::profile::{include, Allowed, Profile, Vars, What};

pub fn run(args: AllowArgs) -> Result<i32> {
    let mut baseline = Profile::load(&args.baseline)?;
    let findings = findings(&baseline, &args.baseline, &args.run)?;
    if args.list {
        for (_, f) in &findings {
            println!("{}  {}", id(f), line(f));
        }
        return Ok(0);
    }
    let chosen = args.all || args.below.is_some() || !args.finding.is_empty();
    let ask = !chosen;
    if ask && !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        bail!("no terminal to ask on: choose what to allow with --all, --below LEVEL or --finding ID (`--list` prints the IDs)");
    }
    for want in &args.finding {
        if !findings.iter().any(|(_, f)| &id(f) == want) {
            bail!(
                "--finding {want}: no such finding in {} (`agentguard allow --list` prints them)",
                args.run.display()
            );
        }
    }
    if findings.is_empty() {
        eprintln!(
            "agentguard allow: {} covers everything {} did: nothing to allow",
            args.baseline.display(),
            args.run.display()
        );
        return Ok(0);
    }
    let mut reason = args.reason.clone();
    if !ask && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        bail!("--reason is required: an admitted rule says why it was admitted");
    }
    let who = who();
    let at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let run = run_name(&args.run);
    let (mut allowed, mut skipped, mut denied, mut refused) = (Vec::new(), 0, 0, Vec::new());
    let vars = vars_of(&args.run)?;
    let total = findings.len();
    for (i, (what, f)) in findings.iter().enumerate() {
        let protected = f.rule == rules::PROTECTED.id;
        let scope = if ask {
            match prompt(i, total, f, protected && !args.protected)? {
                Answer::Allow => Scope::Exact,
                Answer::Directory => Scope::Directory,
                Answer::Deny => {
                    denied += 1;
                    continue;
                }
                Answer::Skip => {
                    skipped += 1;
                    continue;
                }
                Answer::Quit => break,
            }
        } else {
            let wanted = args.all
                || args.below.is_some_and(|l| f.severity < l)
                || args.finding.contains(&id(f));
            if !wanted {
                skipped += 1;
                continue;
            }
            Scope::Exact
        };
        if protected && !args.protected {
            refused.push(line(f));
            continue;
        }
        if ask && reason.is_none() {
            reason = Some(ask_reason()?);
        }
        let by = Allowed {
            by: who.clone(),
            at: at.clone(),
            reason: reason.clone().unwrap_or_default(),
            finding: format!("{}, {}", f.rule, f.severity.name()),
            run: run.clone(),
            protected,
        };
        match allow::add(&mut baseline, what, &vars, scope, by) {
            Ok(rule) => allowed.push(rule),
            Err(e) => eprintln!("agentguard allow: {e:#}"),
        }
    }
    for r in &refused {
        eprintln!("agentguard allow: not allowed, protected (only with --protected): {r}");
    }
    if allowed.is_empty() {
        eprintln!("agentguard allow: nothing allowed ({skipped} skipped, {denied} denied)");
        return Ok(i32::from(!refused.is_empty()));
    }
    let out = args.output.as_deref().unwrap_or(&args.baseline);
    // What is written must read back: the same checks as any profile, includes resolved.
    let text = baseline.to_toml()?;
    let back = Profile::parse(&text, out)?;
    include::resolve(&back, out)?;
    back.save(out)?;
    for r in &allowed {
        eprintln!("agentguard allow: + {r}");
    }
    let left = findings_after(&back, out, &args.run)?;
    eprintln!(
        "agentguard allow: {} rule{} written to {} ({skipped} skipped, {denied} denied); {} finding{} of {} left",
        allowed.len(),
        if allowed.len() == 1 { "" } else { "s" },
        out.display(),
        left,
        if left == 1 { "" } else { "s" },
        args.run.display()
    );
    Ok(i32::from(!refused.is_empty()))
}

/// The run's findings against the baseline, as `diff` reports them.
fn findings(baseline: &Profile, origin: &Path, run: &Path) -> Result<Vec<(What, Finding)>> {
    let vars = vars_of(run)?;
    let input = RunInput::load(run, false)?;
    let checker = Checker::new(baseline, origin, vars)?;
    let checker = input
        .check(checker, run)
        .with_context(|| format!("reading the run {}", run.display()))?;
    Ok(checker.findings_of())
}

fn findings_after(baseline: &Profile, origin: &Path, run: &Path) -> Result<usize> {
    Ok(findings(baseline, origin, run)?.len())
}

/// ${CWD} and ${HOME} as the run recorded them.
fn vars_of(run: &Path) -> Result<Vars> {
    Ok(RunInput::load(run, false)?
        .vars()
        .unwrap_or_else(Vars::from_env))
}

/// A finding's id: stable across runs and versions of the report (its kind, object and
/// accesses), short enough to type.
pub fn id(f: &Finding) -> String {
    // FNV-1a: no dependency for eight hex digits.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in format!("{}\0{}\0{}", f.kind, f.object, f.detail).bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    format!("{:08x}", h >> 32)
}

fn line(f: &Finding) -> String {
    let detail = if f.detail.is_empty() {
        String::new()
    } else {
        format!(" ({})", f.detail)
    };
    format!(
        "{:<8} {:<5} {}{detail}: {} [{}]",
        f.severity.name().to_uppercase(),
        f.kind,
        f.object,
        f.reason,
        f.rule
    )
}

fn who() -> String {
    for v in ["SUDO_USER", "USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(v) {
            if !u.is_empty() {
                return crate::paths::printable(&u).into_owned();
            }
        }
    }
    format!("uid {}", nix::unistd::getuid())
}

/// The run as the rules name it: its file, and its recording's id when it has one.
fn run_name(run: &Path) -> String {
    let id = RunInput::load(run, false).ok().and_then(|r| r.run_id());
    match id {
        Some(id) => format!("{} ({id})", run.display()),
        None => run.display().to_string(),
    }
}

enum Answer {
    Allow,
    Directory,
    Deny,
    Skip,
    Quit,
}

/// One finding, with its process chain and tool call, and the question.
fn prompt(i: usize, total: usize, f: &Finding, protected: bool) -> Result<Answer> {
    let mut e = std::io::stderr().lock();
    writeln!(e, "\n[{}/{total}] {}  id {}", i + 1, line(f), id(f))?;
    if f.count > 1 {
        writeln!(e, "  {} times", f.count)?;
    }
    if !f.process.is_empty() {
        let chain: Vec<String> = f
            .process
            .iter()
            .map(|p| format!("{} {}", p.pid, p.exe))
            .collect();
        writeln!(e, "  process: {}", chain.join(" <- "))?;
    }
    if let Some(c) = &f.cause {
        writeln!(e, "  tool call: {} ({})", c.summary, c.why)?;
    }
    let dir = matches!(f.kind, "file" | "exec");
    let options = if protected {
        "protected: allowed only with --protected.  de(n)y  (s)kip  (q)uit"
    } else if dir {
        "(a)llow  allow the (d)irectory  de(n)y  (s)kip  (q)uit"
    } else {
        "(a)llow  de(n)y  (s)kip  (q)uit"
    };
    loop {
        write!(e, "  {options} > ")?;
        e.flush()?;
        let mut l = String::new();
        if std::io::stdin().lock().read_line(&mut l)? == 0 {
            return Ok(Answer::Quit);
        }
        match (l.trim(), protected) {
            ("a", false) => return Ok(Answer::Allow),
            ("d", false) if dir => return Ok(Answer::Directory),
            ("n", _) => return Ok(Answer::Deny),
            ("s", _) => return Ok(Answer::Skip),
            ("q", _) => return Ok(Answer::Quit),
            _ => {}
        }
    }
}

fn ask_reason() -> Result<String> {
    let mut e = std::io::stderr().lock();
    loop {
        write!(e, "  why (kept with the rules you allow) > ")?;
        e.flush()?;
        let mut l = String::new();
        if std::io::stdin().lock().read_line(&mut l)? == 0 {
            bail!("no reason given: nothing written");
        }
        if !l.trim().is_empty() {
            return Ok(l.trim().to_string());
        }
    }
}
