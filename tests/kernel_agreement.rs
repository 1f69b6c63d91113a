//! The kernel's decision equals the user-space matcher's, on generated profiles and paths.
//! Needs BPF LSM, so it is ignored on the host and run in the VM by tests/vm/agree.sh:
//! generated profiles are enforced in audit mode while a shell reads, appends to and lists
//! generated files; the kernel's would-be denials must be exactly what `agentguard diff`
//! (the matcher) finds uncovered.
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::util::*;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

const WORDS: &[&str] = &[
    "a",
    "b",
    "src",
    "tmp",
    "x.py",
    "y.pyc",
    ".ssh",
    ".env",
    "notes.md",
    "__pycache__",
    "lib.so.3",
    ".bashrc",
    "out",
];

/// (operation, path): what the tree does.
fn ops(root: &Path, rng: &mut Lcg) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for _ in 0..40 {
        let depth = 1 + rng.next(4) as usize;
        let mut p = root.display().to_string();
        for _ in 0..depth {
            p.push('/');
            p.push_str(WORDS[rng.next(WORDS.len() as u64) as usize]);
        }
        let op = ["read", "append", "list"][rng.next(3) as usize];
        out.push((op, p));
    }
    out
}

fn profile(root: &Path, rng: &mut Lcg) -> String {
    let mut t = String::from("version = 1\n");
    for i in 0..8 {
        let mut p = if rng.next(6) == 0 {
            "**".to_string()
        } else {
            root.display().to_string()
        };
        let depth = 1 + rng.next(3) as usize;
        for d in 0..depth {
            let w = WORDS[rng.next(WORDS.len() as u64) as usize];
            let seg = match rng.next(6) {
                0 if d == depth - 1 => "*".to_string(),
                1 => format!("{}*", &w[..1]),
                2 => format!("*{}", &w[w.len() - 1..]),
                _ => w.to_string(),
            };
            let _ = write!(p, "/{seg}");
        }
        if rng.next(3) == 0 {
            p.push_str("/**");
        }
        let access = [
            r#"["read"]"#,
            r#"["write", "append"]"#,
            r#"["list"]"#,
            r#"["read", "list"]"#,
        ][rng.next(4) as usize];
        let learned = if i % 2 == 0 { "learned = true\n" } else { "" };
        let _ = write!(
            t,
            "\n[[file]]\npath = \"{p}\"\naccess = {access}\n{learned}"
        );
    }
    t
}

#[test]
#[ignore = "needs BPF LSM: run in the VM by tests/vm/agree.sh"]
fn kernel_decisions_equal_the_matchers() {
    let d = scratch("agree");
    let mut rng = Lcg(20261126);
    let (mut compared, mut denied) = (0, 0);
    for case in 0..12 {
        let root = d.join(format!("c{case}"));
        let ops = ops(&root, &mut rng);
        // Make every path exist, with the kind of node its operation needs.
        let dirs: BTreeSet<&String> = ops
            .iter()
            .filter(|(o, _)| *o == "list")
            .map(|(_, p)| p)
            .collect();
        for (op, p) in &ops {
            let path = Path::new(p);
            if *op == "list" || dirs.iter().any(|d| d.starts_with(&format!("{p}/"))) {
                std::fs::create_dir_all(path).unwrap();
            } else if !path.is_dir() && !ops.iter().any(|(_, q)| q.starts_with(&format!("{p}/"))) {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, "x").unwrap();
            }
        }
        let ops: Vec<_> = ops
            .into_iter()
            .filter(|(op, p)| {
                if *op == "list" {
                    Path::new(p).is_dir()
                } else {
                    Path::new(p).is_file()
                }
            })
            .collect();
        let prof = d.join(format!("p{case}.toml"));
        std::fs::write(&prof, profile(&root, &mut rng)).unwrap();
        // The tree: one shell doing every operation.
        let mut script = String::new();
        // A run profile, as record writes one: one recorded run (diff refuses a run
        // profile that recorded none).
        let mut run = String::from(
            "version = 1\nruns = 1\n\n[[run]]\nid = \"agree\"\ncommand = \"sh ops.sh\"\nstarted = \"2026-12-01T00:00:00Z\"\nseconds = 1.0\n",
        );
        for (op, p) in &ops {
            let (line, access) = match *op {
                "read" => (format!("cat '{p}' > /dev/null"), r#"["read"]"#),
                "append" => (format!(": >> '{p}'"), r#"["write", "append"]"#),
                _ => (format!("ls '{p}' > /dev/null"), r#"["list"]"#),
            };
            let _ = writeln!(script, "{line} 2>/dev/null");
            let _ = write!(
                run,
                "\n[[file]]\npath = \"{}\"\naccess = {access}\n",
                globset_escape(p)
            );
        }
        std::fs::write(d.join("ops.sh"), &script).unwrap();
        let events = d.join(format!("e{case}.jsonl"));
        let out = Command::new(BIN)
            .args([
                "enforce",
                "-q",
                "--deny-at",
                "new",
                "--backend",
                "bpf-lsm",
                "--audit",
                "--profile",
            ])
            .arg(&prof)
            .arg("--events")
            .arg(&events)
            .args(["--", "/bin/sh"])
            .arg(d.join("ops.sh"))
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "case {case}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let root_s = format!("{}/", root.display());
        let kernel: BTreeSet<String> = std::fs::read_to_string(&events)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|e| {
                e["kind"] == "deny"
                    && e["op"] == "open"
                    && e["object"].as_str().unwrap().starts_with(&root_s)
            })
            .map(|e| e["object"].as_str().unwrap().to_string())
            .collect();
        // The matcher's answer, through diff: the run as a profile of what the shell did.
        let runp = d.join(format!("run{case}.toml"));
        std::fs::write(&runp, &run).unwrap();
        let out = Command::new(BIN)
            .args(["diff", "--format", "json", "--fail-on", "never"])
            .arg(&prof)
            .arg(&runp)
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        let matcher: BTreeSet<String> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "file" && f["new"] == true)
            .map(|f| f["object"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            kernel,
            matcher,
            "case {case}: kernel (left) and matcher (right) disagree\nprofile:\n{}",
            std::fs::read_to_string(&prof).unwrap()
        );
        compared += ops.len();
        denied += kernel.len();
    }
    println!("kernel and matcher agree on {compared} operations ({denied} paths denied)");
    assert!(
        denied > 20 && denied < compared,
        "the cases must exercise both answers"
    );
}

fn globset_escape(p: &str) -> String {
    p.chars()
        .map(|c| {
            if "*?[]{}".contains(c) {
                format!("[{c}]")
            } else {
                c.to_string()
            }
        })
        .collect()
}
