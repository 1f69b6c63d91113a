//! Rendering a diff: text for a person (colour on a terminal only), markdown for a CI job
//! summary or a pull-request comment, JSON for programs (documented, stable: the field list
//! is in man/agentguard-diff.1).
use crate::paths::printable;
use std::fmt::Write as _;
use std::io::IsTerminal;

use anyhow::Result;
use serde::Serialize;

use super::rules::Severity;
use super::FailOn;
use super::{Finding, Missing, Proc};

/// Format version of the JSON report.
pub const JSON_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Report {
    pub baseline: String,
    pub baseline_runs: u32,
    pub run: String,
    pub fail_on: FailOn,
    pub failed: bool,
    pub findings: Vec<Finding>,
    pub missing: Vec<Missing>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    #[serde(flatten)]
    report: &'a Report,
    counts: Counts,
}

#[derive(Serialize, Default)]
struct Counts {
    critical: usize,
    high: usize,
    medium: usize,
    low: usize,
}

fn counts(f: &[Finding]) -> Counts {
    let n = |s| f.iter().filter(|x| x.severity == s).count();
    Counts {
        critical: n(Severity::Critical),
        high: n(Severity::High),
        medium: n(Severity::Medium),
        low: n(Severity::Low),
    }
}

/// diff --format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    /// for a person, grouped by severity (colour on a terminal)
    Text,
    /// for a CI job summary or a pull-request comment
    Markdown,
    /// for programs: a stable, documented format
    Json,
    /// SARIF 2.1.0, for code scanning: one result per finding
    Sarif,
    /// JUnit XML, for CI dashboards: one test case per rule, failed when its findings fail the gate
    Junit,
}

pub fn print(r: &Report, format: DiffFormat) -> Result<()> {
    let out = std::io::stdout();
    let text = match format {
        DiffFormat::Text => text(r, crate::colour::enabled(out.is_terminal())),
        DiffFormat::Markdown => markdown(r),
        DiffFormat::Json => json(r)?,
        DiffFormat::Sarif => super::ci::sarif(r)?,
        DiffFormat::Junit => super::ci::junit(r),
    };
    crate::output::stdout(&text, "the report")
}

pub fn json(r: &Report) -> Result<String> {
    let mut s = serde_json::to_string_pretty(&JsonReport {
        version: JSON_VERSION,
        report: r,
        counts: counts(&r.findings),
    })?;
    s.push('\n');
    Ok(s)
}

pub(super) fn fail_on_name(f: FailOn) -> &'static str {
    match f {
        FailOn::New => "new",
        FailOn::Low => "low",
        FailOn::Medium => "medium",
        FailOn::High => "high",
        FailOn::Critical => "critical",
        FailOn::Never => "never",
    }
}

/// "cat (pid 12) <- sh (pid 10) <- python3.11 (pid 9)"
pub fn chain(p: &[Proc]) -> String {
    p.iter()
        .map(|x| {
            format!(
                "{} (pid {})",
                printable(x.exe.rsplit('/').next().unwrap_or(&x.exe)),
                x.pid
            )
        })
        .collect::<Vec<_>>()
        .join(" <- ")
}

fn colour(sev: Severity) -> &'static str {
    match sev {
        Severity::Critical => "\x1b[1;35m",
        Severity::High => "\x1b[1;31m",
        Severity::Medium => "\x1b[33m",
        Severity::Low => "\x1b[36m",
    }
}

/// One line per finding, grouped by severity, the process under it.
pub fn finding_line(f: &Finding) -> String {
    let what = if f.detail.is_empty() {
        f.object.clone()
    } else {
        format!("{} ({})", f.object, f.detail)
    };
    let times = if f.count > 1 {
        format!(" x{}", f.count)
    } else {
        String::new()
    };
    printable(&format!("{:<5} {what}{times}: {}", f.kind, f.reason)).into_owned()
}

/// `<- tool call run_shell(command='curl ...') (confidence 0.9: its arguments name it)`
/// and, when an earlier tool's result carried its instruction, `, steered by the result of http_get(...)`.
pub fn cause_line(c: &crate::event::Cause) -> String {
    let steered = c
        .steered_by
        .as_ref()
        .map(|s| format!(", steered by the result of {s}"))
        .unwrap_or_default();
    printable(&format!(
        "<- tool call {} (confidence {:.1}: {}){steered}",
        c.summary, c.confidence, c.why
    ))
    .into_owned()
}

pub fn text(r: &Report, tty: bool) -> String {
    let mut s = String::new();
    let paint = |sev| {
        if tty {
            (colour(sev), "\x1b[0m")
        } else {
            ("", "")
        }
    };
    let _ = writeln!(
        s,
        "agentguard diff: {} against {} ({} runs)",
        printable(&r.run),
        printable(&r.baseline),
        r.baseline_runs
    );
    if r.findings.is_empty() {
        let _ = writeln!(
            s,
            "no findings: the baseline covers everything this run did"
        );
    }
    for sev in [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ] {
        let group: Vec<&Finding> = r.findings.iter().filter(|f| f.severity == sev).collect();
        if group.is_empty() {
            continue;
        }
        let (a, b) = paint(sev);
        let _ = writeln!(s, "\n{a}{} ({}){b}", sev.name().to_uppercase(), group.len());
        for f in group {
            let _ = writeln!(s, "  {}", finding_line(f));
            if let Some(c) = &f.cause {
                let _ = writeln!(s, "        {}", cause_line(c));
            }
            if !f.process.is_empty() {
                let _ = writeln!(s, "        by {}", chain(&f.process));
            }
        }
    }
    if !r.missing.is_empty() {
        let _ = writeln!(
            s,
            "\nnot seen in this run (informational): {} entries the baseline saw in every run",
            r.missing.len()
        );
        for m in r.missing.iter().take(20) {
            let _ = writeln!(s, "  {:<5} {}", m.kind, printable(&m.object));
        }
        if r.missing.len() > 20 {
            let _ = writeln!(s, "  ... and {} more", r.missing.len() - 20);
        }
    }
    let verdict = if r.failed { "FAILED" } else { "passed" };
    let _ = writeln!(s, "\ngate --fail-on {}: {verdict}", fail_on_name(r.fail_on));
    s
}

/// Text inside a code span: it cannot close the span (a backquote becomes a quote) or the
/// table cell, and shows control characters escaped.
fn md_code(s: &str) -> String {
    printable(s).replace('|', "\\|").replace('`', "'")
}

/// Text outside a code span: markdown and HTML in a name the tree chose stay text (a
/// `<details>` or `<!--` would hide the rest of a CI summary, a link would dress it up).
fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in printable(s).chars() {
        if "\\`*_[]<>|&".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let c = counts(&r.findings);
    let icon = if r.failed { "❌" } else { "✅" };
    let _ = writeln!(
        s,
        "### {icon} agentguard diff: {} finding{} ({} critical, {} high, {} medium, {} low)\n",
        r.findings.len(),
        if r.findings.len() == 1 { "" } else { "s" },
        c.critical,
        c.high,
        c.medium,
        c.low
    );
    let _ = writeln!(
        s,
        "Run `{}` against baseline `{}` ({} runs). Gate `--fail-on {}`: **{}**.\n",
        md_code(&r.run),
        md_code(&r.baseline),
        r.baseline_runs,
        fail_on_name(r.fail_on),
        if r.failed { "failed" } else { "passed" }
    );
    if !r.findings.is_empty() {
        let _ = writeln!(s, "| severity | kind | what | why | tool call | process |");
        let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- |");
        for f in &r.findings {
            let what = if f.detail.is_empty() {
                format!("`{}`", md_code(&f.object))
            } else {
                format!("`{}` ({})", md_code(&f.object), md_escape(&f.detail))
            };
            let call = f
                .cause
                .as_ref()
                .map(|c| format!("`{}` ({:.1})", md_code(&c.summary), c.confidence))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "| {} | {} | {what} | {} | {call} | {} |",
                f.severity.name(),
                f.kind,
                md_escape(&f.reason),
                md_escape(&chain(&f.process))
            );
        }
        s.push('\n');
    }
    if !r.missing.is_empty() {
        let _ = writeln!(
            s,
            "<details><summary>Baseline behaviour not seen in this run ({})</summary>\n",
            r.missing.len()
        );
        for m in &r.missing {
            let _ = writeln!(s, "- {} `{}`", m.kind, md_code(&m.object));
        }
        let _ = writeln!(s, "\n</details>");
    }
    s
}
