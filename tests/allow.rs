use std::path::Path;
use std::process::{Command, Output};

use crate::util::*;

fn ag(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A baseline of one program, and a run that does more: both recorded.
fn baseline_and_run(d: &Path, extra: &str) -> (String, String) {
    let base = d.join("b.toml");
    let out = ag(&[
        "record",
        "-q",
        "-o",
        base.to_str().unwrap(),
        "--",
        "/bin/sh",
        "-c",
        "cat /etc/hostname",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = d.join("run.jsonl");
    let script = format!("cat /etc/hostname; head -c1 /etc/os-release; {extra}");
    let out = Command::new(BIN)
        .args(["record", "-q", "--events", run.to_str().unwrap(), "--"])
        .args(["/bin/sh", "-c", &script])
        .env("HOME", d)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    (base.display().to_string(), run.display().to_string())
}

/// `allow --list`: (id, line) of each finding.
fn list(base: &str, run: &str) -> Vec<(String, String)> {
    let out = ag(&["allow", "--list", base, run]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| {
            let (id, rest) = l.split_once("  ").unwrap();
            (id.to_string(), rest.to_string())
        })
        .collect()
}

#[test]
fn allow_below_a_level_writes_rules_that_say_who_when_and_why_and_the_gate_then_passes() {
    let d = scratch("allow-below");
    let (base, run) = baseline_and_run(&d, "ls /usr/share >/dev/null");
    let before = list(&base, &run);
    assert!(before.len() >= 2, "{before:?}");
    assert!(
        before.iter().any(|(_, l)| l.contains("/usr/bin/head")),
        "{before:?}"
    );
    // No terminal and nothing chosen: an error that says what to pass.
    let out = ag(&["allow", &base, &run]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--all, --below LEVEL or --finding ID"));
    // No reason: refused, the baseline untouched.
    let was = std::fs::read_to_string(&base).unwrap();
    let out = ag(&["allow", "--all", &base, &run]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--reason is required"));
    assert_eq!(std::fs::read_to_string(&base).unwrap(), was);
    // An unknown ID: refused, naming it.
    let out = ag(&[
        "allow",
        "--finding",
        "00000000",
        "--reason",
        "r",
        &base,
        &run,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--finding 00000000: no such finding"));

    let out = ag(&[
        "allow",
        "--below",
        "high",
        "--reason",
        "reviewed: the report step",
        &base,
        &run,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(list(&base, &run).is_empty(), "{:?}", list(&base, &run));
    let diff = ag(&["diff", &base, &run]);
    assert_eq!(diff.status.code(), Some(0), "{}", text(&diff.stdout));
    let p: toml::Table = std::fs::read_to_string(&base).unwrap().parse().unwrap();
    let head = p["exec"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"].as_str() == Some("/usr/bin/head"))
        .expect("a rule for head");
    assert!(head.get("learned").is_none(), "hand-written: {head}");
    let a = &head["allowed"];
    assert_eq!(a["reason"].as_str(), Some("reviewed: the report step"));
    assert_eq!(a["finding"].as_str(), Some("exec-coreutil, low"));
    assert!(a["run"].as_str().unwrap().contains("run.jsonl"), "{a}");
    assert!(!a["by"].as_str().unwrap().is_empty() && a["at"].as_str().unwrap().starts_with("20"));
    // What allow wrote survives a merge with another run, untouched.
    let merged = ag(&["merge", &base, &run]);
    assert!(merged.status.success(), "{}", text(&merged.stderr));
    assert!(text(&merged.stdout).contains("reason = \"reviewed: the report step\""));
}

#[test]
fn a_protected_finding_is_allowed_only_with_protected() {
    let d = scratch("allow-protected");
    std::fs::write(d.join(".netrc"), "machine x login y password z\n").unwrap();
    let (base, run) = baseline_and_run(&d, "cat \"$HOME/.netrc\" >/dev/null");
    let findings = list(&base, &run);
    let netrc = findings
        .iter()
        .find(|(_, l)| l.contains(".netrc"))
        .unwrap_or_else(|| panic!("{findings:?}"));
    assert!(netrc.1.starts_with("CRITICAL"), "{netrc:?}");
    // --all without --protected: the rest allowed, the secret not; exit 1 says so.
    let out = ag(&["allow", "--all", "--reason", "r", &base, &run]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("only with --protected"));
    let left = list(&base, &run);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].1.contains(".netrc"));
    // Asked for by ID, with --protected: admitted, and the rule says it admits a
    // protected path.
    let out = ag(&[
        "allow",
        "--finding",
        &netrc.0,
        "--protected",
        "--reason",
        "test fixture",
        &base,
        &run,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(list(&base, &run).is_empty());
    let p = std::fs::read_to_string(&base).unwrap();
    assert!(p.contains("path = \"${HOME}/.netrc\""), "{p}");
    assert!(p.contains("protected = true"), "{p}");
    // The run merged in: its protected entry is learned, and `show` lists it as admitted
    // by a hand-written rule, not as one to review.
    let out = ag(&["merge", "-o", &base, &base, &run]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let show = text(&ag(&["show", &base]).stdout);
    let (_, admitted) = show
        .split_once("admitted by a hand-written rule")
        .unwrap_or_else(|| panic!("{show}"));
    assert!(admitted.contains(".netrc"), "{show}");
    assert!(!show.contains("review these"), "{show}");
    assert!(show.contains("test fixture"), "{show}");
}

/// On a terminal: the finding with its process chain, and a question per finding.
#[test]
fn on_a_terminal_it_asks_one_finding_at_a_time() {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    let d = scratch("allow-ask");
    let (base, run) = baseline_and_run(&d, "ls /usr/share >/dev/null");
    let findings = list(&base, &run);
    assert!(findings.len() >= 2, "{findings:?}");
    let pty = nix::pty::openpty(None, None).unwrap();
    let io = || std::process::Stdio::from(pty.slave.try_clone().unwrap());
    let mut child = Command::new(BIN)
        .args(["allow", &base, &run])
        .stdin(io())
        .stderr(io())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(pty.slave);
    let mut m = std::fs::File::from(pty.master);
    let _ = m.as_raw_fd();
    let mut seen = String::new();
    // Reads until the screen holds `n` prompts ("> " at a line's end).
    let until = |m: &mut std::fs::File, n: usize, seen: &mut String| {
        let mut buf = [0u8; 4096];
        while seen.matches("> ").count() < n {
            let k = m.read(&mut buf).unwrap();
            assert!(k > 0, "the terminal closed: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..k]));
        }
    };
    // First finding: an answer it does not know (asked again), then allow.
    until(&mut m, 1, &mut seen);
    assert!(seen.contains(&findings[0].0), "its id: {seen}");
    assert!(seen.contains("process: "), "its process chain: {seen}");
    m.write_all(b"x\n").unwrap();
    until(&mut m, 2, &mut seen);
    m.write_all(b"a\n").unwrap();
    until(&mut m, 3, &mut seen);
    assert!(seen.contains("why"), "{seen}");
    m.write_all(b"asked on a terminal\n").unwrap();
    // Second: deny; then quit and save.
    until(&mut m, 4, &mut seen);
    m.write_all(b"n\n").unwrap();
    if findings.len() > 2 {
        until(&mut m, 5, &mut seen);
        m.write_all(b"q\n").unwrap();
    }
    let mut rest = Vec::new();
    let _ = m.read_to_end(&mut rest);
    let status = child.wait().unwrap();
    assert!(status.success(), "{seen}{}", String::from_utf8_lossy(&rest));
    let left = list(&base, &run);
    assert_eq!(left.len(), findings.len() - 1, "{left:?}");
    assert!(!left.iter().any(|(id, _)| id == &findings[0].0));
    assert!(std::fs::read_to_string(&base)
        .unwrap()
        .contains("reason = \"asked on a terminal\""));
}

/// `events`: one line per event of a recorded run, filtered by kind, process and finding.
#[test]
fn events_prints_a_recorded_run_one_line_per_event_filtered() {
    let d = scratch("events");
    let (base, run) = baseline_and_run(&d, "ls /usr/share >/dev/null");
    let all = text(&ag(&["events", "-q", &run]).stdout);
    let n = std::fs::read_to_string(&run).unwrap().lines().count();
    assert_eq!(all.lines().count(), n, "every event once:\n{all}");
    let execs = text(&ag(&["events", "-q", "--kind", "exec", &run]).stdout);
    assert!(execs.lines().all(|l| l.contains(" exec ")), "{execs}");
    assert!(
        execs.contains("/usr/bin/head -c1 /etc/os-release"),
        "{execs}"
    );
    // The findings against the baseline, each marked with its severity and rule.
    let f = text(&ag(&["events", "-q", "--baseline", &base, "--findings", &run]).stdout);
    assert!(!f.is_empty() && f.lines().all(|l| l.contains("  [")), "{f}");
    assert!(f.contains("[LOW exec-coreutil]"), "{f}");
    assert!(!f.contains("/etc/hostname"), "covered by the baseline: {f}");
    let high = text(
        &ag(&[
            "events",
            "-q",
            "--baseline",
            &base,
            "--findings",
            "--severity",
            "high",
            &run,
        ])
        .stdout,
    );
    assert!(!high.contains("LOW"), "{high}");
    // A process and its descendants: the head the shell ran, not the shell's own reads.
    let head_pid: u32 = execs
        .lines()
        .find(|l| l.contains("/usr/bin/head"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap();
    let of_head = text(&ag(&["events", "-q", "--pid", &head_pid.to_string(), &run]).stdout);
    assert!(
        of_head.contains("/etc/os-release") && !of_head.contains("/etc/hostname"),
        "{of_head}"
    );
    // --findings without a baseline: an error saying so.
    let out = ag(&["events", "--findings", &run]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--findings needs --baseline"));
}

/// show and merge for programs: the profile field for field.
#[test]
fn show_and_merge_print_json_for_programs() {
    let d = scratch("json-formats");
    let (base, run) = baseline_and_run(&d, "true");
    let out = ag(&["show", "--format", "json", &base]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["profile"]["runs"], 1);
    assert!(v["profile"]["run"][0]["command"]
        .as_str()
        .unwrap()
        .contains("cat /etc/hostname"));
    let out = ag(&["merge", "--format", "json", &base, &run]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["profile"]["runs"], 2);
    // bench's figures, for programs (the profile bench, small).
    let out = ag(&[
        "bench", "--what", "profile", "--scale", "0.02", "--format", "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["what"], "profile");
    assert!(v["match"]["per_second"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["merge"]["seconds"].as_f64().is_some(), "{v}");
}

/// A name the tree chose never brings a control sequence to the person's terminal: not in
/// `allow`'s list and questions, not in `events`.
#[test]
fn names_the_tree_chose_reach_the_terminal_escaped() {
    let d = scratch("allow-escapes");
    let evil = d.join("notes\x1b[2K\rexec-coreutil ls");
    std::fs::write(&evil, "x").unwrap();
    let (base, run) = baseline_and_run(&d, &format!("cat '{}' >/dev/null", evil.display()));
    let list = text(&ag(&["allow", "--list", &base, &run]).stdout);
    assert!(list.contains("notes"), "{list}");
    assert!(!list.contains('\x1b') && !list.contains('\r'), "{list:?}");
    let events = text(&ag(&["events", "-q", "--kind", "file", &run]).stdout);
    assert!(events.contains("notes"), "{events}");
    assert!(
        !events.contains('\x1b') && !events.contains('\r'),
        "{events:?}"
    );
}
