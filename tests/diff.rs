use std::process::Command;

use crate::util::*;

/// A benign run reads the documents; the attack also reads a key and runs a new program.
fn script(dir: &std::path::Path, attack: bool, exit: i32) -> String {
    let d = dir.display();
    let mut s = format!("cat {d}/docs/a.md {d}/docs/b.md > /dev/null; ls {d}/docs > /dev/null");
    if attack {
        s.push_str(&format!(
            "; cat {d}/home/.ssh/id_ed25519 > /dev/null; wc -c {d}/docs/a.md > /dev/null"
        ));
    }
    s.push_str(&format!("; exit {exit}"));
    s
}

fn setup(name: &str) -> Scratch {
    let d = scratch(name);
    std::fs::create_dir_all(d.join("docs")).unwrap();
    std::fs::create_dir_all(d.join("home/.ssh")).unwrap();
    std::fs::write(d.join("docs/a.md"), "a").unwrap();
    std::fs::write(d.join("docs/b.md"), "b").unwrap();
    std::fs::write(d.join("home/.ssh/id_ed25519"), "not a real key").unwrap();
    for i in 0..2 {
        let out = Command::new(BIN)
            .args(["record", "-q", "--merge-into"])
            .arg(d.join("baseline.toml"))
            .args(["--", "/bin/sh", "-c", &script(&d, false, 0)])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "baseline run {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    d
}

#[test]
fn diff_of_an_event_log_names_what_and_who_and_gates() {
    let d = setup("diff");
    let attack = record(&d, &[], &strs(&sh(&script(&d, true, 0))));
    assert_eq!(attack.code(), Some(0), "{}", attack.stderr());
    let (code, report, err) = diff_json(&d.join("baseline.toml"), &d.join("run.jsonl"), "high");
    assert_eq!(code, Some(1), "{err}");
    let findings = report["findings"].as_array().unwrap();
    let key = findings
        .iter()
        .find(|f| f["object"] == d.join("home/.ssh/id_ed25519").to_str().unwrap())
        .expect("the key read");
    assert_eq!(
        (key["severity"].as_str(), key["rule"].as_str()),
        (Some("critical"), Some("protected"))
    );
    let chain: Vec<&str> = key["process"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["exe"].as_str().unwrap())
        .collect();
    assert!(
        chain[0].ends_with("/cat") && chain.last().unwrap().ends_with("dash"),
        "{chain:?}"
    );
    let wc = findings
        .iter()
        .find(|f| f["object"].as_str().unwrap().ends_with("/wc"))
        .expect("the new program");
    assert_eq!(wc["severity"], "low");
    // The same run as a profile: the same findings, without processes.
    let out = Command::new(BIN)
        .args(["diff", "--fail-on", "critical"])
        .arg(d.join("baseline.toml"))
        .arg(d.join("run.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("CRITICAL (1)") && text.contains("protected path: credentials"),
        "{text}"
    );
    // A benign run passes even the strictest gate.
    let benign = record(&d, &[], &strs(&sh(&script(&d, false, 0))));
    assert_eq!(benign.code(), Some(0));
    let out = Command::new(BIN)
        .args(["diff", "--fail-on", "new"])
        .arg(d.join("baseline.toml"))
        .arg(d.join("run.jsonl"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn record_with_a_baseline_checks_live_and_keeps_the_commands_exit_status_first() {
    let d = setup("live");
    let base = d.join("baseline.toml");
    let run = |attack: bool, exit: i32| {
        Command::new(BIN)
            .args(["record", "-o", "/dev/null", "--baseline"])
            .arg(&base)
            .args([
                "--fail-on",
                "high",
                "--",
                "/bin/sh",
                "-c",
                &script(&d, attack, exit),
            ])
            .output()
            .unwrap()
    };
    let ok = run(false, 0);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = run(true, 0);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{err}");
    assert!(
        err.contains("agentguard: CRITICAL file") && err.contains("id_ed25519"),
        "{err}"
    );
    assert!(err.contains("gate --fail-on: FAILED"), "{err}");
    let failing = run(true, 3);
    assert_eq!(
        failing.status.code(),
        Some(3),
        "the command's own failure comes first"
    );
    let bad_baseline = Command::new(BIN)
        .args(["record", "--baseline", "/nonexistent.toml", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(bad_baseline.status.code(), Some(2));
}

/// The gate never passes on missing data: a log cut short, one that lost lines, an empty
/// one, and a baseline with no recorded runs are errors (exit 2), each saying where and
/// what; the whole log passes.
#[test]
fn the_gate_fails_closed_on_a_log_or_baseline_that_is_not_whole() {
    let d = setup("closed");
    let benign = record(&d, &[], &strs(&sh(&script(&d, false, 0))));
    assert_eq!(benign.code(), Some(0), "{}", benign.stderr());
    let log = std::fs::read_to_string(d.join("run.jsonl")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines[0].contains("\"kind\":\"start\"")
            && lines.last().unwrap().contains("\"kind\":\"end\""),
        "a log starts and ends with its records"
    );
    let diff_with = |extra: &[&str], baseline: &std::path::Path, run: &std::path::Path| {
        Command::new(BIN)
            .args(["diff", "--fail-on", "new"])
            .args(extra)
            .arg(baseline)
            .arg(run)
            .output()
            .unwrap()
    };
    let diff = |baseline: &std::path::Path, run: &std::path::Path| diff_with(&[], baseline, run);
    let base = d.join("baseline.toml");
    let whole = diff(&base, &d.join("run.jsonl"));
    assert_eq!(
        whole.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&whole.stdout)
    );
    let cases: [(&str, String, &str); 4] = [
        ("empty.jsonl", String::new(), "the event log is empty"),
        (
            "cut.jsonl",
            lines[..lines.len() - 1].join("\n"),
            "ends without its end record",
        ),
        (
            "holed.jsonl",
            [&lines[..2], &lines[3..]].concat().join("\n"),
            "records are missing or were added",
        ),
        (
            "headless.jsonl",
            lines[1..].join("\n"),
            ":1: the first record is not the recording's start",
        ),
    ];
    for (name, text, why) in cases {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        let out = diff(&base, &p);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(why) && err.contains(name), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: no report on missing data");
    }
    // A recording that stopped while its tree ran: an error, unless --partial says a
    // partial run is what is being judged; lost records fail either way.
    let end: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let with_end = |field: &str, n: u64| {
        let mut e = end.clone();
        e[field] = n.into();
        let mut all: Vec<String> = lines[..lines.len() - 1]
            .iter()
            .map(|l| l.to_string())
            .collect();
        all.push(e.to_string());
        all.join("\n")
    };
    let running = d.join("running.jsonl");
    std::fs::write(&running, with_end("running", 2)).unwrap();
    let out = diff(&base, &running);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("stopped while 2 processes of the tree still ran"),
        "{err}"
    );
    let partial = diff_with(&["--partial"], &base, &running);
    assert_eq!(
        partial.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&partial.stderr)
    );
    for field in ["lost", "decode_errors", "procs_untracked"] {
        let p = d.join(format!("{field}.jsonl"));
        std::fs::write(&p, with_end(field, 3)).unwrap();
        let out = diff_with(&["--partial"], &base, &p);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{field}: {err}");
        assert!(err.contains("is incomplete"), "{field}: {err}");
    }
    // A loss record in the middle that the end record contradicts (the counters only
    // grow): the log is not believed either way.
    let mut forged: Vec<String> = lines[..lines.len() - 1]
        .iter()
        .map(|l| l.to_string())
        .collect();
    let start: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    forged.push(
        serde_json::json!({"ts": start["ts"], "pid": 0, "tid": 0, "ppid": 0, "exe": "",
            "kind": "lost", "lost": 5000, "procs_untracked": 3})
        .to_string(),
    );
    let mut e = end.clone();
    e["events"] = (end["events"].as_u64().unwrap() + 1).into();
    forged.push(e.to_string());
    let p = d.join("contradicted.jsonl");
    std::fs::write(&p, forged.join("\n")).unwrap();
    let out = diff(&base, &p);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "contradicted.jsonl:{}: a loss record counts more",
            lines.len()
        )),
        "{err}"
    );
    // A run profile that recorded nothing is an error; a hand-written baseline is a
    // baseline (what it lacks is findings, and the gate fails on them).
    let hand = d.join("hand.toml");
    std::fs::write(&hand, "version = 1\n\n[[exec]]\npath = \"/usr/bin/true\"\n").unwrap();
    let out = diff(&base, &hand);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("hand.toml") && err.contains("no recorded runs"),
        "{err}"
    );
    let out = diff(&hand, &d.join("run.toml"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "findings against a hand-written baseline: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The official SARIF validator (Microsoft's SARIF Multitool, a self-contained executable):
/// pinned, from npm.
const SARIF_MULTITOOL: &str = "@microsoft/sarif-multitool-linux@5.7.0";

/// The CI formats of a diff of recorded runs, each read back by a consumer that is not
/// ours: SARIF by the SARIF Multitool's `validate` (the 2.1.0 schema and the SARIF rules),
/// JUnit XML by junitparser. Both say what the JSON report says: a result per finding with
/// its rule and level; a test case per rule, failed exactly where the rule's findings
/// fail the gate.
#[test]
fn the_ci_formats_are_read_back_by_their_own_validators() {
    let d = setup("diff-ci");
    let attack = record(&d, &[], &strs(&sh(&script(&d, true, 0))));
    assert_eq!(attack.code(), Some(0), "{}", attack.stderr());
    let (base, run) = (d.join("baseline.toml"), d.join("run.jsonl"));
    let (_, report, err) = diff_json(&base, &run, "medium");
    let findings = report["findings"].as_array().expect(&err);
    assert!(findings.len() >= 2, "{report:#}");
    let diff = |format: &str| {
        let out = Command::new(BIN)
            .args(["diff", "--fail-on", "medium", "--format", format])
            .arg(&base)
            .arg(&run)
            .output()
            .unwrap();
        // The gate is the same whatever the format.
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };

    // SARIF, validated.
    let sarif = d.join("run.sarif");
    std::fs::write(&sarif, diff("sarif")).unwrap();
    let tool = npm_prefix(
        &[SARIF_MULTITOOL],
        "node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool",
    )
    .join("node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool");
    // Its postinstall (which npm may not run) only sets the mode.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let checked = d.join("validation.sarif");
    let out = Command::new(&tool)
        .arg("validate")
        .arg(&sarif)
        .arg("-o")
        .arg(&checked)
        // No ICU on a minimal machine: .NET's invariant culture instead.
        .env("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&checked).unwrap()).unwrap();
    // What the validator found: nothing but its advice to name a web page for the tool,
    // which agentguard has none of.
    let said: Vec<String> = v["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {} {}", r["ruleId"], r["level"], r["message"]))
        .filter(|r| !r.contains("ProvideToolnformationUri"))
        .collect();
    assert!(said.is_empty(), "{said:#?}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    let results = s["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), findings.len());
    let level = |sev: &str| match sev {
        "critical" | "high" => "error",
        "medium" => "warning",
        _ => "note",
    };
    for (r, f) in results.iter().zip(findings) {
        assert_eq!(r["ruleId"], f["rule"], "{r:#}");
        assert_eq!(r["level"], level(f["severity"].as_str().unwrap()), "{r:#}");
        assert!(
            r["message"]["text"]
                .as_str()
                .unwrap()
                .contains(f["object"].as_str().unwrap()),
            "{r:#}"
        );
    }
    let key = results
        .iter()
        .find(|r| r["ruleId"] == "protected")
        .expect("the key read");
    assert!(
        key["message"]["text"]
            .as_str()
            .unwrap()
            .contains("process: cat (pid "),
        "{key:#}"
    );

    // JUnit, parsed by junitparser.
    let junit = d.join("run.xml");
    std::fs::write(&junit, diff("junit")).unwrap();
    let out = Command::new(venv_python())
        .args([
            "-c",
            "import json, sys, junitparser\n\
             xml = junitparser.JUnitXml.fromfile(sys.argv[1])\n\
             cases = {}\n\
             for suite in xml:\n\
             \x20   for c in suite:\n\
             \x20       cases[c.name] = [r._tag for r in c.result]\n\
             print(json.dumps({'cases': cases, 'failures': xml.failures, 'tests': xml.tests}))",
        ])
        .arg(&junit)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cases = j["cases"].as_object().unwrap();
    assert_eq!(j["tests"].as_u64(), Some(cases.len() as u64));
    let rank = |s: &str| {
        ["low", "medium", "high", "critical"]
            .iter()
            .position(|x| *x == s)
    };
    for (rule, results) in cases {
        let failing = findings.iter().any(|f| {
            f["rule"] == rule.as_str() && rank(f["severity"].as_str().unwrap()) >= rank("medium")
        });
        let failed = results.as_array().unwrap().iter().any(|r| r == "failure");
        assert_eq!(
            failed,
            failing,
            "{rule}: {}",
            String::from_utf8_lossy(&std::fs::read(&junit).unwrap())
        );
    }
    assert!(
        cases.contains_key("protected") && cases.len() > 20,
        "{cases:?}"
    );
    let failures = cases
        .values()
        .filter(|r| r.as_array().unwrap().iter().any(|x| x == "failure"))
        .count();
    assert_eq!(j["failures"].as_u64(), Some(failures as u64));
}
