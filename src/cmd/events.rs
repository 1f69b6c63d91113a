//! `agentguard events RUN.jsonl`: a kept event log as one line per event, for a person
//! (like `tetra getevents -o compact`), filtered by kind, process and finding.
use std::fmt::Write as _;

use anyhow::{bail, Result};

use crate::cli::EventsArgs;
use crate::diff::{complete, rules::Severity, Checker};
use crate::event::{read_jsonl, Event};
use crate::profile::{builder_observe, Profile, Vars};
use crate::tree::Tree;
use crate::tui::app::{kind_name, summary};

pub fn run(args: EventsArgs) -> Result<i32> {
    let evs = read_jsonl(&args.log)?;
    // A log cut short is shown, and said to be: a person reads what there is.
    let whole = complete::events(&args.log, &evs, true).err();
    let mut checker = match &args.baseline {
        Some(b) => {
            let base = Profile::load(b)?;
            let vars = crate::pipeline::replay::recorded_vars(&evs).unwrap_or_else(Vars::from_env);
            Some(Checker::new(&base, b, vars)?)
        }
        None => None,
    };
    if args.findings && checker.is_none() {
        bail!("--findings needs --baseline: findings are what a baseline does not cover");
    }
    let min = args.severity.unwrap_or(Severity::Low);
    let mut tree = Tree::default();
    let mut out = String::new();
    let (mut shown, mut total) = (0u64, 0u64);
    for ev in &evs {
        tree.update(ev);
        total += 1;
        if !args.kind.is_empty() && !args.kind.iter().any(|k| kind_matches(k, ev)) {
            continue;
        }
        if let Some(p) = args.pid {
            if ev.pid != p && !tree.chain(ev.pid).iter().any(|(a, _)| *a == p) {
                continue;
            }
        }
        let rated = checker.as_mut().and_then(|c| worst(c, ev, &tree));
        if args.findings && !rated.as_ref().is_some_and(|(s, _)| *s >= min) {
            continue;
        }
        shown += 1;
        let mark = rated
            .map(|(s, rule)| format!("  [{} {rule}]", s.name().to_uppercase()))
            .unwrap_or_default();
        let _ = writeln!(out, "{}{mark}", line(ev));
    }
    if let Some(e) = whole {
        let _ = writeln!(out, "agentguard events: {e:#}");
    }
    crate::output::stdout(&out, "the events")?;
    if shown < total && !args.quiet {
        eprintln!("agentguard events: {shown} of {total} events shown");
    }
    Ok(0)
}

/// `exec`, `file`, `net` or `llm` (every llm.* kind).
fn kind_matches(want: &str, ev: &Event) -> bool {
    let k = kind_name(&ev.kind);
    k == want || k.split('.').next() == Some(want)
}

/// The most severe finding this event's behaviour would be, against the baseline.
fn worst(c: &mut Checker, ev: &Event, tree: &Tree) -> Option<(Severity, &'static str)> {
    builder_observe(ev, tree)
        .iter()
        .filter_map(|w| c.rate(w).map(|(r, _)| (r.severity, r.id)))
        .max()
}

/// time, pid, program, kind and what: one line.
fn line(ev: &Event) -> String {
    let t = humantime::format_rfc3339_millis(ev.ts.time()).to_string();
    let clock = t.get(11..23).unwrap_or(&t);
    let exe = ev.exe.rsplit('/').next().unwrap_or(&ev.exe);
    format!(
        "{clock} {:>7} {:<15} {:<8} {}",
        ev.pid,
        crate::paths::printable(exe),
        kind_name(&ev.kind),
        // Names the tree chose never bring a control sequence to the terminal.
        crate::paths::printable(&summary(ev))
    )
}
