//! Compaction on replayed streams: what it folds, what it keeps, and that diff still sees
//! everything a run did.
use std::path::Path;

use super::super::merge::merge;
use super::super::tests::{exec, open, profile, text, vars};
use super::*;
use crate::diff::{self, Checker};

const VENV: &str = "/home/ann/work/.venv/lib/python3.11/site-packages";

/// A Python agent's run: its packages, the stdlib's locale files, a few coreutils.
fn python_run(i: u32, extra: &[&str]) -> Profile {
    let mut s = vec![exec("/usr/bin/python3.11"), exec("/usr/bin/ls")];
    for m in ["anyio/__init__.py", "httpx/_client.py", "pydantic/main.py"]
        .iter()
        .chain(extra)
    {
        s.push(open(&format!("{VENV}/{m}"), vec![Access::Read]));
    }
    s.push(open(&format!("{VENV}/anyio"), vec![Access::List]));
    for f in ["LC_CTYPE", "LC_TIME", "LC_NUMERIC"] {
        s.push(open(
            &format!("/usr/lib/locale/C.utf8/{f}"),
            vec![Access::Read],
        ));
    }
    s.push(open("/etc/ld.so.cache", vec![Access::Read]));
    s.push(open(
        "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        vec![Access::Read],
    ));
    s.push(open(
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        vec![Access::Read],
    ));
    s.push(open("/etc/passwd", vec![Access::Read]));
    s.push(open(
        &format!("/tmp/tmp{:08}/out.txt", 1000 + i),
        vec![Access::Write, Access::Create],
    ));
    profile(
        &format!("run-{i}"),
        &format!("2026-11-26T12:00:{i:02}Z"),
        &s,
    )
}

#[test]
fn a_library_tree_becomes_one_read_only_pattern() {
    let p = python_run(1, &[]);
    let fam = p
        .file
        .iter()
        .find(|f| f.path.0 == "${CWD}/.venv/lib/python3.11/**")
        .unwrap_or_else(|| panic!("no family in\n{}", text(&p)));
    assert_eq!(
        fam.access,
        BTreeSet::from([Access::Read, Access::List]),
        "reads and listings only"
    );
    assert_eq!(fam.literals, 4);
    assert!(!p.file.iter().any(|f| f.path.0.contains("anyio")));
    // A write there is not ordinary: it stays itself, and nothing widens to writing.
    let w = profile(
        "w",
        "2026-11-26T12:00:09Z",
        &[
            open(&format!("{VENV}/a/x.py"), vec![Access::Read]),
            open(&format!("{VENV}/b/y.py"), vec![Access::Read]),
            open(&format!("{VENV}/c/z.py"), vec![Access::Read]),
            open(
                &format!("{VENV}/evil.pth"),
                vec![Access::Write, Access::Create],
            ),
        ],
    );
    let evil = w.file.iter().find(|f| f.path.0.ends_with("evil.pth"));
    assert!(evil.is_some(), "{}", text(&w));
    assert!(w
        .file
        .iter()
        .filter(|f| f.path.0.ends_with("/**"))
        .all(|f| !f.access.contains(&Access::Write)));
    // Two reads there are not a family.
    let two = profile(
        "t",
        "2026-11-26T12:00:09Z",
        &[
            open(&format!("{VENV}/a/x.py"), vec![Access::Read]),
            open(&format!("{VENV}/b/y.py"), vec![Access::Read]),
        ],
    );
    assert!(!two.file.iter().any(|f| f.path.0.ends_with("/**")));
}

#[test]
fn learning_proposes_includes_and_says_what_each_absorbed() {
    let p = python_run(1, &[]);
    assert!(p.include.contains(&"locale".to_string()), "{}", text(&p));
    assert!(p.include.contains(&"libs".to_string()));
    assert!(
        !p.include.contains(&"coreutils".to_string()),
        "an include that admits programs is never proposed"
    );
    assert!(p.exec.iter().any(|e| e.path.0 == "/usr/bin/ls"));
    assert!(!p.file.iter().any(|f| f.path.0.contains("/usr/lib/locale")));
    let loc = p.absorbed.iter().find(|a| a.include == "locale").unwrap();
    assert_eq!(loc.entries, 3);
    assert_eq!(loc.seen, vec![0]);
    assert!(loc.file[0].starts_with("/usr/lib/locale/C.utf8/LC_"));
    let shown = crate::baseline::describe(&p, "p.toml", 3);
    assert!(
        shown.contains("locale absorbed 3 learned entries (all runs"),
        "{shown}"
    );
    // One covered entry proposes nothing.
    let one = profile(
        "o",
        "2026-11-26T12:00:09Z",
        &[open("/usr/lib/locale/C.utf8/LC_CTYPE", vec![Access::Read])],
    );
    assert!(one.include.is_empty() && one.absorbed.is_empty());
}

#[test]
fn an_include_added_by_hand_absorbs_what_it_covers_on_the_next_merge() {
    let one = profile(
        "o",
        "2026-11-26T12:00:09Z",
        &[
            open("/usr/lib/locale/C.utf8/LC_CTYPE", vec![Access::Read]),
            open("/srv/data.txt", vec![Access::Read]),
        ],
    );
    assert_eq!(one.file.len(), 2);
    let mut edited = one.clone();
    edited.include.push("locale".into());
    let m = merge(&[(edited, "edited".into())]).unwrap();
    assert_eq!(m.file.len(), 1, "{}", text(&m));
    assert_eq!(m.absorbed[0].include, "locale");
    // Taking the include out again without its [[absorbed]] table is an error that says so.
    let mut broken = m.clone();
    broken.include.clear();
    let err = Profile::parse(&text(&broken), Path::new("b.toml")).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("b.toml") && msg.contains("[[absorbed]] locale"),
        "{msg}"
    );
}

#[test]
fn compact_profiles_merge_lawfully_and_re_learn_to_themselves() {
    let a = python_run(1, &["a/one.py"]);
    let b = python_run(2, &["b/two.py", "c/three.py"]);
    let c = python_run(3, &[]);
    let m = |x: &Profile, y: &Profile| {
        merge(&[(x.clone(), "x".into()), (y.clone(), "y".into())]).unwrap()
    };
    assert_eq!(text(&m(&a, &b)), text(&m(&b, &a)), "commutative");
    assert_eq!(
        text(&m(&m(&a, &b), &c)),
        text(&m(&a, &m(&b, &c))),
        "associative"
    );
    // A run with two reads in the library tree, too few to be a family of its own: they
    // join the family the others learned, each counted.
    let d = profile(
        "run-4",
        "2026-11-26T12:00:04Z",
        &[
            open(&format!("{VENV}/anyio/__init__.py"), vec![Access::Read]),
            open(&format!("{VENV}/d/four.py"), vec![Access::Read]),
        ],
    );
    let all = merge(&[
        (a.clone(), "a".into()),
        (b.clone(), "b".into()),
        (c.clone(), "c".into()),
        (d.clone(), "d".into()),
    ])
    .unwrap();
    assert_eq!(
        text(&m(&m(&m(&a, &b), &c), &d)),
        text(&all),
        "learning as runs come equals learning from all at once"
    );
    let fam = |p: &Profile| {
        p.file
            .iter()
            .find(|f| f.path.0.ends_with("python3.11/**"))
            .cloned()
            .unwrap()
    };
    // 5 + 6 + 4 opens in the first three runs, 2 in the last: every one counted.
    assert_eq!(fam(&all).count, 17, "{:?}", fam(&all));
    let ab = m(&a, &b);
    assert_eq!(text(&m(&ab, &ab)), text(&ab), "idempotent");
    assert_eq!(
        text(&m(&ab, &a)),
        text(&ab),
        "a run merged again counts once"
    );
    let fam = ab
        .file
        .iter()
        .find(|f| f.path.0.ends_with("python3.11/**"))
        .unwrap();
    assert_eq!(fam.seen, vec![0, 1]);
    assert!(fam.examples.len() <= EXAMPLES);
    assert!(fam.literals >= 6, "{fam:?}");
}

/// Everything a run did, as its event-level behaviour, checked against a baseline.
fn findings(baseline: &Profile, run: &Profile) -> Vec<String> {
    let mut c = Checker::new(baseline, Path::new("b.toml"), vars()).unwrap();
    let mut out = Vec::new();
    for (what, n) in diff::behaviour(run, &vars(), Path::new("r.toml")).unwrap() {
        if let Some(f) = c.check(&what, n, None) {
            out.push(f.object.clone());
        }
    }
    out.sort();
    out
}

#[test]
fn nothing_a_compacted_baseline_covered_is_lost_and_its_samples_do_not_hide_behaviour() {
    let runs: Vec<(Profile, String)> = (1..=4)
        .map(|i| (python_run(i, &["x/mod.py"]), i.to_string()))
        .collect();
    let base = merge(&runs).unwrap();
    // A new run of the same agent: nothing new.
    assert_eq!(
        findings(&base, &python_run(9, &["x/mod.py"])),
        Vec::<String>::new()
    );
    // A new library module is a read in the library tree: covered.
    assert_eq!(
        findings(&base, &python_run(9, &["y/new.py"])),
        Vec::<String>::new()
    );
    // A run whose family the baseline lacks: its pattern is a finding, not a pass on the
    // three examples the run profile kept.
    let other = profile(
        "o",
        "2026-11-26T12:00:09Z",
        &[
            open("/opt/tool/lib/python3.12/a.py", vec![Access::Read]),
            open("/opt/tool/lib/python3.12/b.py", vec![Access::Read]),
            open("/opt/tool/lib/python3.12/c.py", vec![Access::Read]),
            open("/opt/tool/lib/python3.12/d.py", vec![Access::Read]),
        ],
    );
    let f = findings(&base, &other);
    assert!(
        f.iter().any(|o| o == "/opt/tool/lib/python3.12/**"),
        "{f:?}"
    );
}

/// A run of `stream`, as run `i`.
fn run_of(i: u32, stream: &[crate::event::Kind]) -> Profile {
    profile(
        &format!("r{i}"),
        &format!("2026-11-26T12:00:{i:02}Z"),
        stream,
    )
}

fn merged(ps: &[&Profile]) -> Profile {
    merge(
        &ps.iter()
            .map(|p| ((*p).clone(), String::new()))
            .collect::<Vec<_>>(),
    )
    .unwrap()
}

#[test]
fn random_names_never_widen_to_a_whole_tree() {
    // Three random names written in three directories, over two runs: each its own
    // pattern, never /etc/apt/** (which would admit writing apt's hooks).
    let w = vec![Access::Write, Access::Create];
    let a = run_of(
        1,
        &[
            open("/etc/apt/a/1a2b3c4d", w.clone()),
            open("/etc/apt/b/1a2b3c4d", w.clone()),
        ],
    );
    let b = run_of(2, &[open("/etc/apt/c/1a2b3c4d", w.clone())]);
    let m = merged(&[&a, &b]);
    assert!(
        !m.file.iter().any(|f| f.path.0.contains("**")),
        "{}",
        text(&m)
    );
    // A random name right under $HOME or / stays itself.
    let h = run_of(
        3,
        &[
            open("/home/ann/1a2b3c4d", w.clone()),
            open("/9f8e7d6c5b", w.clone()),
        ],
    );
    let paths: Vec<&str> = h.file.iter().map(|f| f.path.0.as_str()).collect();
    assert_eq!(paths, ["${HOME}/1a2b3c4d", "/9f8e7d6c5b"], "{}", text(&h));
}

#[test]
fn the_order_of_merging_never_decides_what_becomes_writable() {
    let r = |p: &str| open(p, vec![Access::Read]);
    let a = run_of(1, &[r("/srv/d/f1")]);
    let b = run_of(2, &[r("/srv/d/f1"), r("/srv/d/f2"), r("/srv/d/f3")]);
    let c = run_of(
        3,
        &[
            r("/srv/d/f1"),
            r("/srv/d/f2"),
            r("/srv/d/f3"),
            open("/srv/d/f4", vec![Access::Write]),
        ],
    );
    let left = merged(&[&merged(&[&a, &b]), &c]);
    let right = merged(&[&a, &merged(&[&b, &c])]);
    assert_eq!(text(&left), text(&right));
    let star = left.file.iter().find(|f| f.path.0 == "/srv/d/*");
    assert!(
        star.is_some_and(|f| !f.access.contains(&Access::Write)),
        "{}",
        text(&left)
    );
    assert!(left.file.iter().any(|f| f.path.0 == "/srv/d/f4"));
}

#[test]
fn a_run_merged_with_itself_is_itself_when_a_literal_sits_beside_its_shape() {
    let r = run_of(
        1,
        &[
            open("/proc/self/status", vec![Access::Read]),
            open("/proc/4242/status", vec![Access::Read]),
            open("/proc/4243/status", vec![Access::Read]),
        ],
    );
    assert_eq!(text(&merged(&[&r, &r])), text(&r));
    assert_eq!(text(&merged(&[&r])), text(&r));
}

#[test]
fn another_terminal_is_not_an_ordinary_device() {
    let base = merged(&[&run_of(1, &[open("/etc/hosts", vec![Access::Read])])]);
    let mut c = Checker::new(&base, Path::new("b.toml"), vars()).unwrap();
    let rate = |c: &mut Checker, p: &str| {
        c.rate(&crate::profile::What::File {
            path: p.into(),
            access: BTreeSet::from([Access::Write]),
        })
        .map(|(r, _)| r.id)
    };
    assert_eq!(rate(&mut c, "/dev/null"), Some("device-ordinary"));
    assert_eq!(rate(&mut c, "/dev/tty"), Some("device-ordinary"));
    assert_eq!(rate(&mut c, "/dev/pts/0"), Some("write-outside"));
}
