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
    // The run is read once: what is rated is what the rules are written from.
    let input = RunInput::load(&args.run, false)?;
    let vars = input.vars().unwrap_or_else(Vars::from_env);
    let run = match input.run_id() {
        Some(id) => format!("{} ({})", args.run.display(), printable(&id)),
        None => args.run.display().to_string(),
    };
    let findings = run_findings(&baseline, &args.baseline, input, &args.run, &vars)?;
    // Two findings of one id: refuse rather than admit both.
    let mut ids: Vec<String> = findings.iter().map(|(_, f)| f.id()).collect();
    ids.sort();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        bail!(
            "two findings of {} share the id {}: allow them by asking, or with --below",
            args.run.display(),
            w[0]
        );
    }
    if args.list {
        for (_, f) in &findings {
            println!("{}  {}", f.id(), line(f));
        }
        return Ok(0);
    }
    let chosen = args.all || args.below.is_some() || !args.finding.is_empty();
    let ask = !chosen;
    if ask && !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        bail!("no terminal to ask on: choose what to allow with --all, --below LEVEL or --finding ID (`--list` prints the IDs)");
    }
    for want in &args.finding {
        if !findings.iter().any(|(_, f)| &f.id() == want) {
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
    let (mut allowed, mut skipped, mut denied, mut refused) = (Vec::new(), 0, 0, Vec::new());
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
                || args.finding.contains(&f.id());
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
        // A volume or a tool's effects are learned from runs: no rule widens them.
        if [
            rules::HTTP_VOLUME.id,
            rules::NET_VOLUME.id,
            rules::FILE_VOLUME.id,
            rules::EXFIL_SEQUENCE.id,
            rules::TOOL_NEW_EFFECT.id,
            rules::LLM_UNSEEN.id,
        ]
        .contains(&f.rule)
        {
            eprintln!("agentguard allow: not a rule: {}: merge the run into the baseline (`agentguard merge`) to learn it", line(f));
            skipped += 1;
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
        // A protected path is admitted as itself, never with its neighbours.
        let scope = if protected { Scope::Exact } else { scope };
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
    let left = run_findings(
        &back,
        out,
        RunInput::load(&args.run, false)?,
        &args.run,
        &vars,
    )?
    .len();
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
fn run_findings(
    baseline: &Profile,
    origin: &Path,
    input: RunInput,
    run: &Path,
    vars: &Vars,
) -> Result<Vec<(What, Finding)>> {
    let checker = Checker::new(baseline, origin, vars.clone())?;
    let checker = input
        .check(checker, run)
        .with_context(|| format!("reading the run {}", run.display()))?;
    Ok(checker.findings_of())
}

/// Text the tree chose (names, arguments, tool calls) as it may reach a terminal.
fn printable(s: &str) -> String {
    crate::paths::printable(s).into_owned()
}

fn line(f: &Finding) -> String {
    let detail = if f.detail.is_empty() {
        String::new()
    } else {
        format!(" ({})", f.detail)
    };
    printable(&format!(
        "{:<8} {:<5} {}{detail}: {} [{}]",
        f.severity.name().to_uppercase(),
        f.kind,
        f.object,
        f.reason,
        f.rule
    ))
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
    writeln!(e, "\n[{}/{total}] {}  id {}", i + 1, line(f), f.id())?;
    if f.count > 1 {
        writeln!(e, "  {} times", f.count)?;
    }
    if !f.process.is_empty() {
        let chain: Vec<String> = f
            .process
            .iter()
            .map(|p| format!("{} {}", p.pid, printable(&p.exe)))
            .collect();
        writeln!(e, "  process: {}", chain.join(" <- "))?;
    }
    if let Some(c) = &f.cause {
        writeln!(
            e,
            "  tool call: {} ({})",
            printable(&c.summary),
            printable(&c.why)
        )?;
    }
    // A protected path is allowed as itself only, never with its neighbours.
    let dir = matches!(f.kind, "file" | "exec") && f.rule != rules::PROTECTED.id;
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
