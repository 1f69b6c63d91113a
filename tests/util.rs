use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_agentguard");

/// A fresh directory for one test, removed when the test passes and kept when it fails
/// (for a look at what agentguard wrote). It lives below a directory of this test
/// process's own, so concurrent runs of the suite never share one.
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn scratch(name: &str) -> Scratch {
    require_root();
    let d = process_dir().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

/// `scratch`, outside the temp directories: for a tree whose HOME must not lie beneath
/// /tmp, as a user's does not (a learned /tmp/tmp.* rule is a hierarchy under Landlock,
/// which would hold that HOME and is refused for it).
pub fn scratch_outside_tmp(name: &str) -> Scratch {
    require_root();
    // The VM's only writable directory is its work directory (tests/vm/z-integration.sh).
    let base = std::env::var_os("AGENTGUARD_TEST_OUTSIDE_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    let d = base.join(process_dir().file_name().unwrap()).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

/// Where agentguard keeps the TLS functions its searches found (AGENTGUARD_TLS_CACHE):
/// this test process's, not the host's, shared by its runs as a user's runs share theirs.
pub fn tls_cache() -> PathBuf {
    process_dir().join("tls.toml")
}

/// This test process's directory: `agentguard-test-` and its pid spelt in the letters g-z.
/// Not in digits: a long number in a path is generalised in profiles, and the tests read
/// profiles literally. Directories that dead runs left behind are removed on first use.
pub fn process_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = std::env::temp_dir();
        for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("agentguard-test-").and_then(unletter) {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let d = tmp.join(format!("agentguard-test-{}", letter(std::process::id())));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

fn letter(mut n: u32) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'g' + (n % 20) as u8);
        n /= 20;
        if n == 0 {
            break;
        }
    }
    String::from_utf8(s).unwrap()
}

fn unletter(s: &str) -> Option<u32> {
    s.bytes().rev().try_fold(0u32, |n, c| {
        (b'g'..=b'z')
            .contains(&c)
            .then(|| n.checked_mul(20)?.checked_add(u32::from(c - b'g')))?
    })
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
        .env("AGENTGUARD_TLS_CACHE", tls_cache())
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

/// A FIFO in `dir`: one side of a handshake between a test and the processes it runs,
/// so that a test waits for a state to be reached, never for a time to pass.
pub fn fifo(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    p
}

/// The first line a process writes into `fifo`, waiting at most `secs` for it.
pub fn await_line(fifo: &Path, secs: u64) -> String {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    // Non-blocking, so that a writer that never comes is a failure, not a hang.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo)
        .unwrap();
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(
            !left.is_zero(),
            "nothing came through {} in {secs} s (got {:?})",
            fifo.display(),
            String::from_utf8_lossy(&got)
        );
        let mut p = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd that lives across the call.
        unsafe { libc::poll(&mut p, 1, left.as_millis().min(1000) as i32) };
        let mut buf = [0u8; 256];
        match f.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("reading {}: {e}", fifo.display()),
        }
        if let Some(i) = got.iter().position(|&c| c == b'\n') {
            return String::from_utf8_lossy(&got[..i]).into_owned();
        }
        if p.revents & libc::POLLHUP != 0 && got.is_empty() {
            // A writer came and went without a line; wait for the next one.
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Writes `line` into `fifo` as soon as a process opens it for reading (at most `secs`).
pub fn send_line(fifo: &Path, line: &str, secs: u64) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
        {
            Ok(mut f) => {
                f.write_all(format!("{line}\n").as_bytes()).unwrap();
                return;
            }
            // ENXIO: no reader yet.
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "nobody opened {} to read in {secs} s",
                    fifo.display()
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("opening {}: {e}", fifo.display()),
        }
    }
}

/// A process a test started and waits for at its end. If the test fails before that, it is
/// ended (continued, sent SIGTERM, which agentguard forwards to its tree, then SIGKILL),
/// so nothing a failed test started outlives it holding the harness's pipes.
pub struct Started(Option<std::process::Child>);

impl Started {
    pub fn new(c: std::process::Child) -> Started {
        Started(Some(c))
    }
    pub fn id(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }
    pub fn wait_with_output(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        let Some(mut c) = self.0.take() else { return };
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        let _ = kill(pid, Signal::SIGCONT);
        let _ = kill(pid, Signal::SIGTERM);
        let t = std::time::Instant::now();
        while matches!(c.try_wait(), Ok(None)) {
            if t.elapsed().as_secs() >= 10 {
                let _ = c.kill();
                let _ = c.wait();
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Says, past the harness's output capture so that it shows in every run, that a test did
/// not run here and why ("skipping: needs ..."). tests/vm/z-integration.sh fails on such a
/// line in the VM, where what these tests need is present.
pub fn skip(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipping: {test}: {why}");
}

/// A server a test started says its port as its first line on standard output, once it
/// listens: the handshake. `what` names it in the failure.
pub fn port_line(child: &mut std::process::Child, what: &str) -> u16 {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("its standard output is piped"))
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{what} said {line:?}"))
}

/// `agentguard diff --format json --fail-on LEVEL BASELINE RUN`: its exit status, its
/// report (Null when it printed none) and what it said on standard error.
pub fn diff_json(base: &Path, run: &Path, fail_on: &str) -> (Option<i32>, Value, String) {
    let out = Command::new(BIN)
        .args(["diff", "--format", "json", "--fail-on", fail_on])
        .arg(base)
        .arg(run)
        .output()
        .expect("running agentguard diff");
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Why another user could not reach `path` here, if it could not: a directory on its way
/// that others may not search. A machine whose root directory is private (a root made
/// with mktemp, mode 0700) runs nothing as another user; tests that need one say so.
pub fn unreachable_by_others(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    path.ancestors().skip(1).find_map(|dir| {
        let mode = std::fs::metadata(dir).ok()?.permissions().mode();
        (mode & 0o001 == 0).then(|| {
            format!(
                "needs another user: {} (mode {:o}) is not searchable by other users on this machine",
                dir.display(),
                mode & 0o777
            )
        })
    })
}

/// A running agentguard's children: its watchdog (forked, not run, so it has agentguard's
/// name) and the tree's root.
pub fn guard_children(agentguard: u32) -> (i32, i32) {
    let kids: Vec<i32> =
        std::fs::read_to_string(format!("/proc/{agentguard}/task/{agentguard}/children"))
            .unwrap()
            .split_whitespace()
            .map(|k| k.parse().unwrap())
            .collect();
    let watchdog = *kids
        .iter()
        .find(|k| {
            std::fs::read_to_string(format!("/proc/{k}/comm"))
                .is_ok_and(|c| c.trim() == "agentguard")
        })
        .expect("the watchdog");
    let root = *kids
        .iter()
        .find(|&&k| k != watchdog)
        .expect("the tree's root");
    (watchdog, root)
}

/// `agentguard record -q --merge-into baseline -- cmd`, `runs` times, in the baseline's
/// directory (the workspace, as an agent's); the last run's output.
pub fn learn(baseline: &Path, cmd: &[&str], runs: usize) -> Output {
    let mut last = None;
    for i in 0..runs {
        let out = Command::new(BIN)
            .env("AGENTGUARD_TLS_CACHE", tls_cache())
            .current_dir(baseline.parent().unwrap())
            .args(["record", "-q", "--merge-into"])
            .arg(baseline)
            .arg("--")
            .args(cmd)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "recorded run {i} of {cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        last = Some(out);
    }
    last.unwrap()
}

/// An npm prefix holding `packages` (pinned versions), installed once into a cache under
/// cargo's target directory that later runs reuse; `done` is a file the install leaves.
pub fn npm_prefix(packages: &[&str], done: &str) -> PathBuf {
    let name = packages.join("-").replace(['@', '/'], "_");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("npm")
        .join(name);
    if dir.join(done).exists() {
        return dir;
    }
    // Installed beside, then renamed: an interrupted install is never taken for one.
    let part = dir.with_extension("part");
    let _ = std::fs::remove_dir_all(&part);
    std::fs::create_dir_all(&part).unwrap();
    let out = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&part)
        .args(packages)
        .output()
        .expect(
            "npm is needed for the tests of third-party programs (scripts/setup.sh installs it)",
        );
    assert!(
        out.status.success(),
        "npm install {packages:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&part, &dir).unwrap();
    dir
}

/// A Python with the test suite's own packages (tests/requirements.txt, put in .venv by
/// scripts/setup.sh).
pub fn venv_python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup.sh",
        p.display()
    );
    p
}
