//! `agentguard merge` and `agentguard show`: building a baseline and reading one.
use std::fmt::Write as _;

use anyhow::Result;

use crate::cli::{MergeArgs, ShowArgs};
use crate::profile::{include, merge as merging, Literal, Profile};

pub fn merge(args: MergeArgs) -> Result<i32> {
    let mut inputs = Vec::new();
    for p in &args.inputs {
        let profile = Profile::load(p)?;
        include::resolve(&profile, p)?; // a bad include is reported now, not at enforcement
        inputs.push((profile, p.display().to_string()));
    }
    let merged = merging::merge(&inputs)?;
    match &args.output {
        Some(out) => {
            merged.save(out)?;
            eprintln!(
                "agentguard: merged {} profiles ({} runs) into {}",
                inputs.len(),
                merged.runs,
                out.display()
            );
        }
        None => crate::output::stdout(&merged.to_toml()?, "the baseline")?,
    }
    Ok(0)
}

pub fn show(args: ShowArgs) -> Result<i32> {
    let p = Profile::load(&args.profile)?;
    include::resolve(&p, &args.profile)?;
    crate::output::stdout(
        &describe(&p, &args.profile.display().to_string(), args.examples),
        "the summary",
    )?;
    Ok(0)
}

/// "all runs", "2/5 runs", or "hand" for a rule written by hand.
fn evidence(learned: bool, seen: &[u32], runs: u32) -> String {
    match (learned, seen.len() as u32) {
        (false, _) => "hand".to_string(),
        (true, n) if n == runs => "all runs".to_string(),
        (true, n) => format!("{n}/{runs} runs"),
    }
}

fn replaced(r: &[Literal], examples: usize) -> String {
    if r.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = r
        .iter()
        .take(examples)
        .map(|l| l.path.rsplit('/').next().unwrap_or(&l.path))
        .collect();
    let more = if r.len() > examples { ", ..." } else { "" };
    format!("   <- {} literals: {}{more}", r.len(), names.join(", "))
}

/// A summary for a person: evidence first, widened entries visible, protected ones apart.
pub fn describe(p: &Profile, name: &str, examples: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{name}: learned from {} run{}",
        p.runs,
        if p.runs == 1 { "" } else { "s" }
    );
    if !p.include.is_empty() {
        let _ = writeln!(s, "includes: {}", p.include.join(", "));
    }
    for (i, r) in p.run_info.iter().enumerate() {
        let exit = r.exit.map(|e| format!("exit {e}")).unwrap_or_default();
        let lost = if r.lost_events > 0 {
            format!(", {} events lost", r.lost_events)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  run {i:<3} {}  {:.1} s  {exit}{lost}  {}",
            r.started, r.seconds, r.command
        );
    }
    let runs = p.runs;
    let admitted_execs: Vec<_> = p.exec.iter().filter(|e| !e.protected).collect();
    if !admitted_execs.is_empty() {
        let _ = writeln!(s, "\nexec ({}):", admitted_execs.len());
        for e in admitted_execs {
            let _ = writeln!(
                s,
                "  {:<10} {}{}",
                evidence(e.learned, &e.seen, runs),
                e.path,
                replaced(&e.replaced, examples)
            );
        }
    }
    let files: Vec<_> = p.file.iter().filter(|e| !e.protected).collect();
    if !files.is_empty() {
        let _ = writeln!(s, "\nfiles ({}):", files.len());
        for e in files {
            let access: Vec<String> = e
                .access
                .iter()
                .map(|a| format!("{a:?}").to_lowercase())
                .collect();
            let _ = writeln!(
                s,
                "  {:<10} {:<18} {}{}",
                evidence(e.learned, &e.seen, runs),
                access.join(","),
                e.path,
                replaced(&e.replaced, examples)
            );
        }
    }
    if !p.net.is_empty() {
        let _ = writeln!(s, "\nnetwork ({}):", p.net.len());
        for e in &p.net {
            let port = if e.port.is_any() {
                String::new()
            } else if e.port.lo == e.port.hi {
                format!(":{}", e.port.lo)
            } else {
                format!(":{}-{}", e.port.lo, e.port.hi)
            };
            let failed = if e.failed > 0 {
                format!("   ({} failed)", e.failed)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "  {:<10} {:<8} {:<6} {}{port}{failed}",
                evidence(e.learned, &e.seen, runs),
                format!("{:?}", e.op).to_lowercase(),
                format!("{:?}", e.proto).to_lowercase(),
                e.describe()
            );
        }
    }
    if !p.dns.is_empty() {
        let _ = writeln!(s, "\nDNS names ({}):", p.dns.len());
        for e in &p.dns {
            let _ = writeln!(s, "  {:<10} {}", evidence(e.learned, &e.seen, runs), e.name);
        }
    }
    if !p.flag.is_empty() {
        let _ = writeln!(s, "\nflagged ({}):", p.flag.len());
        for e in &p.flag {
            let _ = writeln!(
                s,
                "  {:<10} {:<14} {}",
                evidence(e.learned, &e.seen, runs),
                format!("{:?}", e.flag).to_lowercase(),
                e.detail
            );
        }
    }
    let protected: Vec<String> = p
        .exec
        .iter()
        .filter(|e| e.protected)
        .map(|e| {
            format!(
                "  {:<10} exec               {}",
                evidence(true, &e.seen, runs),
                e.path
            )
        })
        .chain(p.file.iter().filter(|e| e.protected).map(|e| {
            let access: Vec<String> = e
                .access
                .iter()
                .map(|a| format!("{a:?}").to_lowercase())
                .collect();
            format!(
                "  {:<10} {:<18} {}",
                evidence(true, &e.seen, runs),
                access.join(","),
                e.path
            )
        }))
        .collect();
    if !protected.is_empty() {
        let _ = writeln!(s, "\nprotected, seen in training: review these; only a hand-written rule admits them ({}):", protected.len());
        for l in protected {
            let _ = writeln!(s, "{l}");
        }
    }
    s
}
