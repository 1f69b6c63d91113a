//! `agentguard merge` and `agentguard show`: building a baseline and reading one.
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::cli::{Format, MergeArgs, ShowArgs};
use crate::event::Access;
use crate::profile::{include, merge as merging, Allowed, Literal, NetEntry, Profile};

pub fn merge(args: MergeArgs) -> Result<i32> {
    let mut inputs = Vec::new();
    for p in &args.inputs {
        let profile = load(p)?;
        include::resolve(&profile, p)?; // a bad include is reported now, not at enforcement
        inputs.push((profile, p.display().to_string()));
    }
    let merged = merging::merge(&inputs)?;
    if let Some(out) = &args.output {
        merged.save(out)?;
        eprintln!(
            "agentguard: merged {} profiles ({} runs) into {}",
            inputs.len(),
            merged.runs,
            out.display()
        );
    }
    match (args.format, &args.output) {
        (Format::Json, out) => {
            let name = out.as_ref().map(|o| o.display().to_string());
            crate::output::stdout(&json(&merged, name.as_deref())?, "the baseline")?
        }
        (Format::Text, None) => crate::output::stdout(&merged.to_toml()?, "the baseline")?,
        (Format::Text, Some(_)) => {}
    }
    Ok(0)
}

pub fn show(args: ShowArgs) -> Result<i32> {
    let p = load(&args.profile)?;
    include::resolve(&p, &args.profile)?;
    let name = args.profile.display().to_string();
    let text = match args.format {
        Format::Text => describe(&p, &name, args.examples),
        Format::Json => json(&p, Some(&name))?,
    };
    crate::output::stdout(&text, "the summary")?;
    Ok(0)
}

/// A profile for programs: `{"version": 1, "source": FILE, "profile": {...}}`, the profile
/// field for field as agentguard-profile(5) names them (`run` for the [[run]] tables).
fn json(p: &Profile, source: Option<&str>) -> Result<String> {
    let v = serde_json::json!({
        "version": 1,
        "source": source,
        "profile": p,
    });
    Ok(serde_json::to_string_pretty(&v)? + "\n")
}

/// A profile, or the profile of a recorded run's event log (`record --events`, a .jsonl):
/// what the run did, as `record -o` writes it, the same run id included, so a log and the
/// profile of one run merge as one run. A log that is not whole is refused, as by diff.
pub fn load(path: &Path) -> Result<Profile> {
    if path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "json")
    {
        let evs = crate::event::read_jsonl(path)?;
        crate::diff::complete::events(path, &evs, false)?;
        return Ok(crate::pipeline::replay::profile_of(evs));
    }
    Profile::load(path)
}

/// "all runs", "2/5 runs", or "hand" for a rule written by hand.
fn evidence(learned: bool, seen: &[u32], runs: u32, allowed: Option<&Allowed>) -> String {
    match (learned, seen.len() as u32) {
        (false, _) if allowed.is_some() => "allowed".to_string(),
        (false, _) => "hand".to_string(),
        (true, n) if n == runs => "all runs".to_string(),
        (true, n) => format!("{n}/{runs} runs"),
    }
}

/// What a pattern stands for: "<- 412 literals: a.pyc, b.pyc, ..." (the sample's names).
fn replaced(r: &[Literal], sample: &[String], literals: u64, examples: usize) -> String {
    let paths: Vec<&str> = if r.is_empty() {
        sample.iter().map(String::as_str).collect()
    } else {
        r.iter().map(|l| l.path.as_str()).collect()
    };
    if paths.is_empty() {
        return String::new();
    }
    let n = literals.max(paths.len() as u64);
    let names: Vec<&str> = paths
        .iter()
        .take(examples)
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .collect();
    let more = if n > names.len() as u64 { ", ..." } else { "" };
    let plural = if n == 1 { "" } else { "s" };
    format!("   <- {n} literal{plural}: {}{more}", names.join(", "))
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
    for a in &p.absorbed {
        let sample: Vec<&str> = a.exec.iter().chain(&a.file).map(String::as_str).collect();
        let _ = writeln!(
            s,
            "  {} absorbed {} learned entr{} ({}, {} times): {}{}",
            a.include,
            a.entries,
            if a.entries == 1 { "y" } else { "ies" },
            evidence(true, &a.seen, p.runs, None),
            a.count,
            sample.join(", "),
            if a.entries > sample.len() as u64 {
                ", ..."
            } else {
                ""
            }
        );
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
    let execs = p.exec.iter().filter(|e| !e.protected).map(|e| {
        format!(
            "  {:<10} {}{}",
            evidence(e.learned, &e.seen, runs, e.allowed.as_ref()),
            e.path,
            replaced(&e.replaced, &e.examples, e.literals, examples)
        )
    });
    section(&mut s, "exec", execs);
    // The access column as wide as its longest list, so long lists keep the paths aligned.
    let width = p
        .file
        .iter()
        .map(|e| access_list(&e.access).len())
        .max()
        .unwrap_or(0)
        .max(18);
    let files = p.file.iter().filter(|e| !e.protected).map(|e| {
        let volume = if e.read.is_empty() {
            String::new()
        } else {
            format!("   (per run at most {} read)", most(&e.read))
        };
        format!(
            "  {:<10} {:<width$} {}{}{volume}",
            evidence(e.learned, &e.seen, runs, e.allowed.as_ref()),
            access_list(&e.access),
            e.path,
            replaced(&e.replaced, &e.examples, e.literals, examples)
        )
    });
    section(&mut s, "files", files);
    section(&mut s, "network", p.net.iter().map(|e| net_line(e, runs)));
    let dns = p.dns.iter().map(|e| {
        format!(
            "  {:<10} {}",
            evidence(e.learned, &e.seen, runs, e.allowed.as_ref()),
            e.name
        )
    });
    section(&mut s, "DNS names", dns);
    let flags = p.flag.iter().map(|e| {
        format!(
            "  {:<10} {:<14} {}",
            evidence(e.learned, &e.seen, runs, e.allowed.as_ref()),
            format!("{:?}", e.flag).to_lowercase(),
            e.detail
        )
    });
    section(&mut s, "flagged", flags);
    let tools = p.tool.iter().map(|e| {
        let effects = if e.effects.is_empty() {
            String::new()
        } else {
            let kinds: Vec<&str> = e.effects.keys().map(String::as_str).collect();
            format!(", caused {}", kinds.join(", "))
        };
        format!(
            "  {:<10} {}   ({} call{}{effects})",
            evidence(e.learned, &e.seen, runs, e.allowed.as_ref()),
            e.name,
            e.count,
            if e.count == 1 { "" } else { "s" }
        )
    });
    section(&mut s, "tool calls", tools);
    let http = p.http.iter().map(|e| {
        let volume = out_in(&e.sent, &e.received);
        format!(
            "  {:<10} {:<7} {}{}{volume}",
            evidence(e.learned, &e.seen, runs, e.allowed.as_ref()),
            e.method,
            e.service,
            e.path
        )
    });
    section(&mut s, "HTTP endpoints", http);
    let llm = p.llm.iter().map(|e| {
        format!(
            "  {:<10} {:<20} {}",
            evidence(e.learned, &e.seen, runs, e.allowed.as_ref()),
            e.api,
            e.host
        )
    });
    section(&mut s, "LLM APIs", llm);
    section(
        &mut s,
        "allowed by `agentguard allow`: who, when, why",
        allowed_lines(p).into_iter(),
    );
    // A protected entry a hand-written rule of the same path admits has been reviewed.
    // (A rule `allow` wrote without --protected does not admit it: the protected set wins.)
    let admits =
        |learned: bool, a: &Option<Allowed>| !learned && a.as_ref().is_none_or(|a| a.protected);
    let by_hand_exec = |path: &str| {
        p.exec
            .iter()
            .any(|h| admits(h.learned, &h.allowed) && h.path.0 == path)
    };
    let by_hand_file = |path: &str, a: &std::collections::BTreeSet<Access>| {
        p.file
            .iter()
            .any(|h| admits(h.learned, &h.allowed) && h.path.0 == path && a.is_subset(&h.access))
    };
    let admitted = p
        .exec
        .iter()
        .filter(|e| e.protected && by_hand_exec(&e.path.0))
        .map(|e| {
            format!(
                "  {:<10} {:<width$} {}",
                evidence(true, &e.seen, runs, None),
                "exec",
                e.path
            )
        })
        .chain(
            p.file
                .iter()
                .filter(|e| e.protected && by_hand_file(&e.path.0, &e.access))
                .map(|e| {
                    format!(
                        "  {:<10} {:<width$} {}",
                        evidence(true, &e.seen, runs, None),
                        access_list(&e.access),
                        e.path
                    )
                }),
        );
    section(
        &mut s,
        "protected, seen in training, admitted by a hand-written rule",
        admitted,
    );
    let protected = p
        .exec
        .iter()
        .filter(|e| e.protected && !by_hand_exec(&e.path.0))
        .map(|e| {
            format!(
                "  {:<10} {:<width$} {}",
                evidence(true, &e.seen, runs, None),
                "exec",
                e.path
            )
        })
        .chain(
            p.file
                .iter()
                .filter(|e| e.protected && !by_hand_file(&e.path.0, &e.access))
                .map(|e| {
                    format!(
                        "  {:<10} {:<width$} {}",
                        evidence(true, &e.seen, runs, None),
                        access_list(&e.access),
                        e.path
                    )
                }),
        );
    section(
        &mut s,
        "protected, seen in training: review these; only a hand-written rule admits them",
        protected,
    );
    s
}

/// Each rule `agentguard allow` wrote: what, who, when, why, from which finding.
fn allowed_lines(p: &Profile) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |what: String, a: &Option<Allowed>| {
        if let Some(a) = a {
            let prot = if a.protected { ", protected" } else { "" };
            // What a profile says may come from anyone: never a control sequence.
            let line = format!(
                "  {what}\n      by {} at {}: {}  ({}{prot}; from {})",
                a.by, a.at, a.reason, a.finding, a.run
            );
            out.push(
                line.split('\n')
                    .map(|l| crate::paths::printable(l).into_owned())
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        }
    };
    for e in &p.exec {
        add(format!("exec {}", e.path), &e.allowed);
    }
    for e in &p.file {
        add(
            format!("file {} ({})", e.path, access_list(&e.access)),
            &e.allowed,
        );
    }
    for e in &p.net {
        add(format!("net {}", e.describe()), &e.allowed);
    }
    for e in &p.dns {
        add(format!("dns {}", e.name), &e.allowed);
    }
    for e in &p.flag {
        add(format!("flag {}", e.detail), &e.allowed);
    }
    for e in &p.tool {
        add(format!("tool {}", e.name), &e.allowed);
    }
    for e in &p.llm {
        add(format!("llm {}", e.host), &e.allowed);
    }
    for e in &p.http {
        add(
            format!("http {} {}{}", e.method, e.service, e.path),
            &e.allowed,
        );
    }
    out
}

/// A titled section with its line count; nothing when it has no lines.
fn section(s: &mut String, title: &str, lines: impl Iterator<Item = String>) {
    let lines: Vec<String> = lines.collect();
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n{title} ({}):", lines.len());
    for l in lines {
        let _ = writeln!(s, "{l}");
    }
}

fn access_list<'a>(access: impl IntoIterator<Item = &'a Access>) -> String {
    let names: Vec<String> = access
        .into_iter()
        .map(|a| format!("{a:?}").to_lowercase())
        .collect();
    names.join(",")
}

/// One network entry: the destination with its port or range, once (describe has it).
fn net_line(e: &NetEntry, runs: u32) -> String {
    let failed = if e.failed > 0 {
        format!("   ({} failed)", e.failed)
    } else {
        String::new()
    };
    let volume = out_in(&e.sent, &e.received);
    format!(
        "  {:<10} {:<8} {:<6} {}{failed}{volume}",
        evidence(e.learned, &e.seen, runs, e.allowed.as_ref()),
        format!("{:?}", e.op).to_lowercase(),
        format!("{:?}", e.proto).to_lowercase(),
        e.describe()
    )
}

/// Learned volumes out and in, as `show` prints them after an entry (nothing when none).
fn out_in(sent: &[u64], received: &[u64]) -> String {
    if sent.is_empty() && received.is_empty() {
        return String::new();
    }
    format!(
        "   (per run at most {} out, {} in)",
        most(sent),
        most(received)
    )
}

/// The largest of per-run volumes, as people read it ("0 B" when none were learned).
fn most(v: &[u64]) -> String {
    crate::profile::http::bytes(v.iter().max().copied().unwrap_or(0))
}
