use std::process::Command;

use crate::util::*;

fn ag(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("NO_COLOR");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn version_names_the_commit_and_completions_are_printed() {
    let v = ag(&["--version"], &[]);
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(v.status.success(), "{text}");
    let commit = text
        .split("(commit ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("no commit: {text}"));
    // Built from a git checkout (the suite always is): the commit, not "unknown".
    assert!(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".git")
            .exists()
            && commit.len() >= 12
            && commit
                .trim_end_matches("-dirty")
                .chars()
                .all(|c| c.is_ascii_hexdigit()),
        "{text}"
    );
    let long = ag(&["--version"], &[]);
    assert!(String::from_utf8_lossy(&long.stdout).contains("agentguard doctor"));
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef agentguard"),
        ("fish", "complete -c agentguard"),
    ] {
        let out = ag(&["completions", shell], &[]);
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && s.contains(marker), "{shell}: {s}");
        assert!(
            s.contains("enforce") && s.contains("deny-at"),
            "{shell}: subcommands and flags"
        );
    }
}

#[test]
fn colour_follows_the_flag_then_no_color_and_conflicting_flags_are_refused() {
    // A report with a finding: colour shows on the severity heading.
    let d = scratch("cli-colour");
    let base = d.join("b.toml");
    let run = d.join("r.toml");
    let runinfo = "[[run]]\nid = \"r1\"\ncommand = \"x\"\nstarted = \"2026-12-01T00:00:00Z\"\nseconds = 1.0\n";
    std::fs::write(&base, format!("version = 1\nruns = 1\n\n{runinfo}")).unwrap();
    std::fs::write(
        &run,
        format!("version = 1\nruns = 1\n\n{runinfo}\n[[exec]]\npath = \"/usr/bin/curl\"\nlearned = true\nseen = [0]\ncount = 1\n"),
    )
    .unwrap();
    let (b, r) = (base.to_str().unwrap(), run.to_str().unwrap());
    let esc = |o: &std::process::Output| o.stdout.contains(&0x1b);
    let always = ag(&["diff", "--color", "always", b, r], &[]);
    assert_eq!(
        always.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&always.stderr)
    );
    assert!(esc(&always), "--color always colours a pipe");
    assert!(
        esc(&ag(
            &["diff", "--color", "always", b, r],
            &[("NO_COLOR", "1")]
        )),
        "the flag wins"
    );
    assert!(!esc(&ag(&["diff", b, r], &[])), "auto: no colour on a pipe");
    assert!(!esc(&ag(&["--color", "never", "diff", b, r], &[])));
    let both = ag(&["record", "--no-llm", "--llm-bodies", "--", "true"], &[]);
    assert_eq!(both.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&both.stderr).contains("cannot be used with"));
}
