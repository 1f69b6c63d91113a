use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_agentguard");

/// A fresh directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    require_root();
    // No pid in the name: a long number in a path is generalised in profiles, and the
    // tests read profiles literally.
    let d = std::env::temp_dir().join(format!("agentguard-test-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn require_root() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the integration tests load BPF programs and must run as root (sudo cargo test)"
    );
}

/// The real Python interpreter (not a shim), so trees stay small.
pub fn python() -> &'static str {
    static PY: OnceLock<String> = OnceLock::new();
    PY.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 is needed");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

pub struct Run {
    pub output: Output,
    pub events: Vec<Value>,
    pub profile: String,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    /// Events of one kind.
    pub fn kind(&self, kind: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["kind"] == kind).collect()
    }
    /// Exec events' argv, successful ones only.
    pub fn argvs(&self) -> Vec<Vec<String>> {
        self.kind("exec")
            .into_iter()
            .filter(|e| e.get("error").is_none())
            .map(|e| {
                e["argv"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect()
            })
            .collect()
    }
    /// File events on exactly this path.
    pub fn files(&self, path: &Path) -> Vec<&Value> {
        let p = path.to_str().unwrap();
        self.kind("file")
            .into_iter()
            .filter(|e| e["path"] == p)
            .collect()
    }
}

/// `agentguard record [extra] -- cmd...` with both outputs in `dir`.
pub fn record(dir: &Path, extra: &[&str], cmd: &[&str]) -> Run {
    let prof = dir.join("run.toml");
    let events = dir.join("run.jsonl");
    let output = Command::new(BIN)
        .arg("record")
        .arg("-o")
        .arg(&prof)
        .arg("--events")
        .arg(&events)
        .args(extra)
        .arg("--")
        .args(cmd)
        .output()
        .expect("running agentguard");
    read_outputs(output, &prof, &events)
}

pub fn read_outputs(output: Output, prof: &Path, events: &Path) -> Run {
    let text = std::fs::read_to_string(events).unwrap_or_default();
    let events = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad event line {l}: {e}")))
        .collect();
    let profile = std::fs::read_to_string(prof).unwrap_or_default();
    Run {
        output,
        events,
        profile,
    }
}

pub fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".to_string(), "-c".to_string(), script.to_string()]
}

pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
