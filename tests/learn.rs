use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::util::*;

/// What a run does: reads three of eight documents (which ones depends on the run) and
/// writes a temp file with a random name.
const SCRIPT: &str = "import os, sys, tempfile\n\
work, i = sys.argv[1], int(sys.argv[2])\n\
docs = sorted(os.listdir(os.path.join(work, 'docs')))\n\
for k in range(3):\n    \
    open(os.path.join(work, 'docs', docs[(i + k) % len(docs)])).read()\n\
fd, path = tempfile.mkstemp(dir=os.path.join(work, 'tmp'))\n\
os.write(fd, b'x'); os.close(fd)\n";

fn learned_file_paths(profile: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(profile).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    v.get("file")
        .and_then(|f| f.as_array())
        .map(|a| {
            a.iter()
                .filter(|e| e.get("learned").is_some())
                .map(|e| e["path"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn agentguard(args: &[&str]) -> std::process::Output {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "agentguard {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn three_runs_learn_a_baseline_that_covers_a_fourth_with_new_random_names() {
    let d = scratch("learn");
    std::fs::create_dir_all(d.join("docs")).unwrap();
    std::fs::create_dir_all(d.join("tmp")).unwrap();
    for i in 0..8 {
        std::fs::write(d.join(format!("docs/doc{i}.md")), "text").unwrap();
    }
    let work = d.to_str().unwrap();
    let learn = d.join("learn.toml");
    for i in 0..3 {
        let run = d.join(format!("run{i}.toml"));
        agentguard(&[
            "record",
            "-q",
            "-o",
            run.to_str().unwrap(),
            "--merge-into",
            learn.to_str().unwrap(),
            "--",
            python(),
            "-c",
            SCRIPT,
            work,
            &i.to_string(),
        ]);
    }
    // Merging the runs in another order gives the same baseline as learning as we went.
    let baseline = d.join("baseline.toml");
    let runs: Vec<String> = (0..3)
        .rev()
        .map(|i| d.join(format!("run{i}.toml")).display().to_string())
        .collect();
    let mut args = vec!["merge", "-o", baseline.to_str().unwrap()];
    args.extend(runs.iter().map(String::as_str));
    agentguard(&args);
    assert_eq!(
        std::fs::read_to_string(&baseline).unwrap(),
        std::fs::read_to_string(&learn).unwrap()
    );

    let paths = learned_file_paths(&baseline);
    assert!(
        paths.contains(&format!("{work}/docs/*")),
        "the documents collapsed: {paths:#?}"
    );
    assert!(
        paths.contains(&format!("{work}/tmp/tmp*")),
        "the temp names became a pattern: {paths:#?}"
    );
    assert!(
        !paths
            .iter()
            .any(|p| p.contains("/tmp/tmp") && !p.ends_with("tmp*")),
        "{paths:#?}"
    );

    // A fourth run reads a document no run read before and writes a new random name:
    // merged in, it adds no entry the baseline did not have.
    let run3 = d.join("run3.toml");
    agentguard(&[
        "record",
        "-q",
        "-o",
        run3.to_str().unwrap(),
        "--",
        python(),
        "-c",
        SCRIPT,
        work,
        "3",
    ]);
    let text = std::fs::read_to_string(&run3).unwrap();
    assert!(
        text.contains("doc5.md"),
        "the fourth run read a new document"
    );
    let merged = d.join("merged.toml");
    agentguard(&[
        "merge",
        "-o",
        merged.to_str().unwrap(),
        baseline.to_str().unwrap(),
        run3.to_str().unwrap(),
    ]);
    let new: Vec<_> = learned_file_paths(&merged)
        .difference(&paths)
        .cloned()
        .collect();
    assert!(new.is_empty(), "the baseline did not cover: {new:#?}");

    let show = String::from_utf8(agentguard(&["show", baseline.to_str().unwrap()]).stdout).unwrap();
    assert!(show.contains("learned from 3 runs"), "{show}");
    assert!(
        show.contains(&format!("{work}/docs/*   <- 5 literals")),
        "{show}"
    );
}

#[test]
fn merge_and_show_report_bad_input_with_file_and_line() {
    let d = scratch("badmerge");
    let bad = d.join("bad.toml");
    std::fs::write(
        &bad,
        "version = 1\n\n[[file]]\npath = \"relative/x\"\naccess = [\"read\"]\n",
    )
    .unwrap();
    for args in [
        vec!["merge", bad.to_str().unwrap()],
        vec!["show", bad.to_str().unwrap()],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("bad.toml") && err.contains("line 4") && err.contains("not absolute"),
            "{err}"
        );
    }
}

/// A run's event log is its profile too: `show` and `merge` read it as `record -o` wrote the
/// profile, the same run id included, and refuse a log that is not whole, naming it.
#[test]
fn an_event_log_merges_and_shows_as_the_profile_of_its_run() {
    let d = scratch("learn-log");
    std::fs::create_dir_all(d.join("docs")).unwrap();
    std::fs::create_dir_all(d.join("tmp")).unwrap();
    for i in 0..8 {
        std::fs::write(d.join(format!("docs/doc{i}.md")), "text").unwrap();
    }
    let work = d.to_str().unwrap();
    let (toml_out, log) = (d.join("run.toml"), d.join("run.jsonl"));
    agentguard(&[
        "record",
        "-q",
        "-o",
        toml_out.to_str().unwrap(),
        "--events",
        log.to_str().unwrap(),
        "--",
        python(),
        "-c",
        SCRIPT,
        work,
        "1",
    ]);
    let show = String::from_utf8(agentguard(&["show", log.to_str().unwrap()]).stdout).unwrap();
    assert!(show.contains("learned from 1 run"), "{show}");
    // The same entries, the same run: everything but the times equal.
    let table = |text: &str| {
        let mut t: toml::Table = text.parse().unwrap();
        let run = t["run"].as_array_mut().unwrap()[0].as_table_mut().unwrap();
        run.remove("started");
        run.remove("seconds");
        t
    };
    let from_log = String::from_utf8(agentguard(&["merge", log.to_str().unwrap()]).stdout).unwrap();
    let recorded = std::fs::read_to_string(&toml_out).unwrap();
    assert_eq!(table(&from_log), table(&recorded));
    let both = String::from_utf8(
        agentguard(&["merge", toml_out.to_str().unwrap(), log.to_str().unwrap()]).stdout,
    )
    .unwrap();
    assert!(
        both.contains("\nruns = 1\n"),
        "one run, counted once:\n{both}"
    );
    // Cut short: refused, by name.
    let text = std::fs::read_to_string(&log).unwrap();
    let cut = d.join("cut.jsonl");
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&cut, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let out = Command::new(BIN)
        .args(["merge", cut.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cut.jsonl") && err.contains("end record"),
        "{err}"
    );
}
