//! The README's commands, run the way a user runs them: in a directory where `agentguard`
//! is the built binary, `sudo` runs its command (the suite is root), `python` is python3
//! and `agent.py` a small agent that reads its documents and writes a report. Each line of
//! each shell block runs, in order, unless it cannot run here; each skip says why. A
//! README whose commands do not work (a flag renamed, a directory not made, a baseline
//! that cannot run its own agent) fails here.
use std::process::Command;

use crate::util::*;

#[path = "../src/readme_lines.rs"]
mod readme_lines;

const AGENT: &str = r#"import os, sys
with open("docs/a.md") as f:
    text = f.read()
os.makedirs("out", exist_ok=True)
with open("out/report.md", "w") as f:
    f.write(f"{len(text.split())} words\n")
"#;

/// Lines that cannot run here, by a part of them, and why.
const SKIP: &[(&str, &str)] = &[
    ("scripts/", "the set-up itself: CI runs scripts/test.sh"),
    ("install ", "changes the host"),
    (
        "completions bash",
        "writes to /usr/share (tests/cli.rs checks completions)",
    ),
    (
        "--pid 4242",
        "attaches to a process that is not there (tests/attach.rs attaches)",
    ),
    ("pytest", "the user's own test suite"),
    (
        "--audit",
        "complain mode needs BPF LSM (tests/vm/enforce.sh)",
    ),
    ("-- ...", "`...` stands for the agent's command"),
    (
        "watch",
        "needs a terminal (tests/watch.rs drives it in tmux)",
    ),
    ("--tui", "needs a terminal (tests/watch.rs)"),
    (
        "examples/agent/run.py",
        "the example agent (tests/example.rs)",
    ),
    ("doctor", "tests/doctor.rs"),
    (
        "# ask, one finding at a time",
        "asks on a terminal (tests/allow.rs answers it on a pseudo-terminal)",
    ),
    (
        "--finding 3f2a9c1e",
        "an ID from another run (tests/allow.rs)",
    ),
];

#[test]
fn the_readme_commands_run() {
    let d = scratch_outside_tmp("readme");
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(d.join("docs")).unwrap();
    std::fs::write(d.join("docs/a.md"), "the quick brown fox\n").unwrap();
    std::fs::write(d.join("agent.py"), AGENT).unwrap();
    std::os::unix::fs::symlink(std::fs::canonicalize(BIN).unwrap(), bin.join("agentguard"))
        .unwrap();
    std::os::unix::fs::symlink(python(), bin.join("python")).unwrap();
    std::os::unix::fs::symlink(python(), bin.join("python3")).unwrap();
    std::fs::write(bin.join("sudo"), "#!/bin/sh\nexec \"$@\"\n").unwrap();
    std::fs::set_permissions(
        bin.join("sudo"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let (mut ran, mut skipped) = (Vec::new(), Vec::new());
    for (n, line) in readme_lines::shell_lines(&readme) {
        if let Some((_, why)) = SKIP.iter().find(|(part, _)| line.contains(part)) {
            skipped.push(format!("README.md:{n}: {why}"));
            continue;
        }
        let out = Command::new("bash")
            .args(["-c", &line])
            .current_dir(&d)
            .env("PATH", &path)
            .env("HOME", d.join("home"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        // diff's gate says 1 when it finds something: that is the command working.
        let ok = match out.status.code() {
            Some(0) => true,
            Some(1) => line.contains(" diff "),
            _ => false,
        };
        assert!(
            ok,
            "README.md:{n}: {line}\nexit {:?}\n{err}",
            out.status.code()
        );
        ran.push(n);
    }
    eprintln!("ran README lines {ran:?}; skipped:\n{}", skipped.join("\n"));
    assert!(
        ran.len() >= 12,
        "the README's commands were found and run: {ran:?}"
    );
    assert!(d.join("baseline.toml").exists() && d.join("out/report.md").exists());
}
