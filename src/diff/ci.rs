//! A diff in the formats CI systems read: SARIF 2.1.0 for code scanning (one result per
//! finding), JUnit XML for test dashboards (one test case per rule of the severity model,
//! failed when its findings fail the gate). Both carry the same words as the text report.
use std::fmt::Write as _;

use serde_json::{json, Value};

use super::report::{cause_line, chain, finding_line, Report};
use super::rules::{Severity, RULES};
use super::{gate, Finding};
use crate::paths::printable;

/// SARIF's level: what fails a review, what needs a look, the rest.
fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// GitHub code scanning's `security-severity` (0 to 10), which it files as critical (9.0
/// and above), high (7.0), medium (4.0) or low: the same four as ours.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
    }
}

/// SARIF reads `[text](target)` in a plain-text message as a link: names the tree chose
/// must not become one, so `\`, `[` and `]` are escaped as SARIF says.
fn sarif_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '[' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The finding, the process chain under it and the tool call behind it, one per line.
fn message(f: &Finding) -> String {
    let mut m = finding_line(f);
    if !f.process.is_empty() {
        m.push_str("\nprocess: ");
        m.push_str(&chain(&f.process));
    }
    if let Some(c) = &f.cause {
        m.push('\n');
        m.push_str(&cause_line(c));
    }
    m
}

/// A path as a SARIF artifact URI (RFC 3986): relative stays relative (to the checkout,
/// as code scanning wants), absolute becomes file://; bytes outside the unreserved set are
/// percent-encoded.
fn uri(path: &str) -> String {
    let mut s = String::from(if path.starts_with('/') { "file://" } else { "" });
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            s.push(b as char);
        } else {
            let _ = write!(s, "%{b:02X}");
        }
    }
    s
}

pub fn sarif(r: &Report) -> anyhow::Result<String> {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|rule| {
            json!({
                "id": rule.id,
                "shortDescription": {"text": format!("{}.", rule.when)},
                "defaultConfiguration": {"level": level(rule.severity)},
                "properties": {
                    "security-severity": security_severity(rule.severity),
                    "severity": rule.severity.name(),
                    "tags": ["security", "agentguard"],
                },
            })
        })
        .collect();
    let mut location = json!({"artifactLocation": {"uri": uri(&r.run)}});
    // A finding is the run's as a whole (its log or profile), not of one line: the region
    // is the whole file, as SARIF says a whole-artifact result is given.
    if let Ok(text) = std::fs::read(&r.run) {
        // Every line, blank ones too (a profile has them); a last line without its newline.
        let lines = text.iter().filter(|&&b| b == b'\n').count()
            + usize::from(text.last().is_some_and(|&b| b != b'\n'));
        if lines > 0 {
            location["region"] = json!({"startLine": 1, "endLine": lines});
        }
    }
    let results: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            let mut res = json!({
                "ruleId": f.rule,
                "level": level(f.severity),
                "message": {"text": sarif_text(&message(f))},
                "locations": [{"physicalLocation": location}],
                "partialFingerprints": {"agentguardFinding/v1": f.id()},
                "properties": {
                    "security-severity": security_severity(f.severity),
                    "severity": f.severity.name(),
                    "kind": f.kind,
                    "object": printable(&f.object),
                    "detail": printable(&f.detail),
                    "new": f.new,
                    "count": f.count,
                    "process": f.process.iter().map(|p| json!({"pid": p.pid, "exe": printable(&p.exe)})).collect::<Vec<_>>(),
                },
            });
            if let Some(c) = &f.cause {
                res["properties"]["cause"] = json!({
                    "call": printable(&c.call),
                    "tool": printable(&c.tool),
                    "summary": printable(&c.summary),
                    "confidence": c.confidence,
                    "why": c.why,
                    "steered_by": c.steered_by.as_deref().map(printable),
                    "reported": c.reported,
                });
            }
            if let Some(i) = RULES.iter().position(|x| x.id == f.rule) {
                res["ruleIndex"] = json!(i);
            }
            res
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "agentguard",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": true,
                "properties": {
                    "baseline": r.baseline,
                    "baselineRuns": r.baseline_runs,
                    "run": r.run,
                    "failOn": super::report::fail_on_name(r.fail_on),
                    "gateFailed": r.failed,
                },
            }],
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&log)?;
    s.push('\n');
    Ok(s)
}

/// Text for XML: each line as `printable` leaves it (no control characters, which XML 1.0
/// cannot carry even escaped), then the library's escaping.
fn xml(s: &str) -> String {
    let p: String = s
        .split('\n')
        .map(printable)
        .collect::<Vec<_>>()
        .join("\n")
        .chars()
        .map(|c| {
            if matches!(c, '\u{fffe}' | '\u{ffff}') {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    quick_xml::escape::escape(p.as_str()).into_owned()
}

/// One test case per rule of the severity model (and per rule a finding names that the
/// table lacks), so a dashboard tracks the same cases run after run: failed when the
/// rule's findings fail the gate, each finding a line of the failure; findings below the
/// gate in the case's output.
pub fn junit(r: &Report) -> String {
    let mut ids: Vec<&str> = RULES.iter().map(|x| x.id).collect();
    for f in &r.findings {
        if !ids.contains(&f.rule) {
            ids.push(f.rule);
        }
    }
    let fail_on = super::report::fail_on_name(r.fail_on);
    let mut cases = String::new();
    let mut failures = 0;
    for id in &ids {
        let of: Vec<Finding> = r
            .findings
            .iter()
            .filter(|f| f.rule == *id)
            .cloned()
            .collect();
        let failing = gate(r.fail_on, &of);
        let lines: String = of
            .iter()
            .map(|f| {
                format!(
                    "{:<8} {}\n",
                    f.severity.name(),
                    message(f).replace('\n', "\n         ")
                )
            })
            .collect();
        let _ = write!(
            cases,
            "    <testcase classname=\"agentguard.diff\" name=\"{}\">",
            xml(id)
        );
        if failing {
            failures += 1;
            let _ = write!(
                cases,
                "\n      <failure message=\"{} fail{} the gate (--fail-on {fail_on})\" type=\"{}\">{}</failure>\n    ",
                if of.len() == 1 { "1 finding".to_string() } else { format!("{} findings", of.len()) },
                if of.len() == 1 { "s" } else { "" },
                of.iter().map(|f| f.severity).max().map_or("", |s| s.name()),
                xml(&lines)
            );
        } else if !of.is_empty() {
            let _ = write!(
                cases,
                "\n      <system-out>{}</system-out>\n    ",
                xml(&lines)
            );
        }
        cases.push_str("</testcase>\n");
    }
    let name = xml(&format!("agentguard diff {} against {}", r.run, r.baseline));
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"agentguard diff\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\">\n  \
         <testsuite name=\"{name}\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">\n    \
         <properties>\n      \
         <property name=\"baseline\" value=\"{}\"/>\n      \
         <property name=\"baseline_runs\" value=\"{}\"/>\n      \
         <property name=\"run\" value=\"{}\"/>\n      \
         <property name=\"fail_on\" value=\"{fail_on}\"/>\n      \
         <property name=\"gate\" value=\"{}\"/>\n    \
         </properties>",
        xml(&r.baseline),
        r.baseline_runs,
        xml(&r.run),
        if r.failed { "failed" } else { "passed" },
        n = ids.len(),
    );
    s.push_str(&cases);
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::FailOn;

    /// A name the tree chose, made to break out of the XML and to forge lines.
    fn hostile() -> Report {
        Report {
            baseline: "base line.toml".into(),
            baseline_runs: 3,
            run: "runs/run #1.jsonl".into(),
            fail_on: FailOn::High,
            failed: true,
            findings: vec![Finding {
                severity: Severity::Critical,
                kind: "file",
                object: "/tmp/[fix](https://evil.test)x\"/></failure><testcase name=\"forged\u{1}\u{fffe}".into(),
                detail: "read".into(),
                reason: "protected path".into(),
                rule: "protected",
                new: true,
                count: 1,
                process: vec![],
                cause: None,
            }],
            missing: vec![],
        }
    }

    #[test]
    fn junit_carries_a_hostile_name_as_text_and_nothing_else() {
        let x = junit(&hostile());
        assert_eq!(x.matches("<testcase ").count(), RULES.len(), "{x}");
        assert!(!x.contains("name=\"forged"), "{x}");
        assert!(
            x.contains("&lt;/failure&gt;&lt;testcase name=&quot;forged\\x01\u{fffd}"),
            "{x}"
        );
        assert_eq!(x.matches("<failure ").count(), 1);
    }

    #[test]
    fn sarif_names_the_run_by_a_uri_and_the_finding_by_its_id() {
        let r = hostile();
        let s: Value = serde_json::from_str(&sarif(&r).unwrap()).unwrap();
        let res = &s["runs"][0]["results"][0];
        assert_eq!(
            res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "runs/run%20%231.jsonl"
        );
        assert_eq!(
            res["partialFingerprints"]["agentguardFinding/v1"],
            r.findings[0].id()
        );
        assert_eq!(res["level"], "error");
        let text = res["message"]["text"].as_str().unwrap();
        assert!(text.contains("/tmp/\\[fix\\](https://evil.test)"), "{text}");
        assert_eq!(res["ruleIndex"], 0);
        assert_eq!(uri("/a b"), "file:///a%20b");
    }
}
