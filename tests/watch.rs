use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

/// tmux on a server of this test process's own (its socket in the process directory),
/// never the user's.
fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux")
        .arg("-S")
        .arg(process_dir().join("tmux.sock"))
        .args(args)
        .output()
        .expect("tmux is needed (scripts/setup.sh installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The screen once it shows `want` (or after 15 s).
fn screen_with(session: &str, want: &str) -> String {
    let t = Instant::now();
    loop {
        let s = tmux(&["capture-pane", "-p", "-t", session]);
        if s.contains(want) || t.elapsed() > Duration::from_secs(15) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn watch_shows_a_recorded_tree_in_a_real_terminal() {
    let d = scratch("watch");
    let r = record(
        &d,
        &[],
        &strs(&sh("cat /etc/hostname > /dev/null; ls / > /dev/null")),
    );
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    let session = format!("agentguard-watch-{}", std::process::id());
    let cmd = format!(
        "{BIN} watch --replay {}; echo EXITED $?; sleep 30",
        d.join("run.jsonl").display()
    );
    start(&session, &cmd);
    // The footer is drawn last: the header's "replayed" can show on a half-drawn screen.
    let s = screen_with(&session, "q quit");
    let _guard = Kill(session.clone());
    assert!(s.contains("processes (3)"), "{s}");
    assert!(s.contains("cat") && s.contains("ls"), "{s}");
    assert!(s.contains("q quit"), "the keys are in the footer: {s}");
    // The view follows the tail; a filter finds the early open.
    tmux(&["send-keys", "-t", &session, "/", "hostname", "Enter"]);
    let s = screen_with(&session, "filter \"hostname\"");
    assert!(s.contains("open /etc/hostname [read]"), "{s}");
    tmux(&["send-keys", "-t", &session, "?"]);
    let s = screen_with(&session, "this help");
    assert!(s.contains("filter the events by text"), "{s}");
    tmux(&["send-keys", "-t", &session, "x", "q"]);
    let s = screen_with(&session, "EXITED");
    assert!(
        s.contains("EXITED 0"),
        "q quits with status 0 and gives the terminal back: {s}"
    );
}

/// A detached 120x30 tmux session running `cmd`.
fn start(session: &str, cmd: &str) {
    tmux(&[
        "new-session",
        "-d",
        "-s",
        session,
        "-x",
        "120",
        "-y",
        "30",
        cmd,
    ]);
}

struct Kill(String);
impl Drop for Kill {
    fn drop(&mut self) {
        tmux(&["kill-session", "-t", &self.0]);
    }
}

#[test]
fn watch_follows_a_live_tree_and_stays_until_q() {
    let d = scratch("watch-live");
    let log = d.join("out.log");
    let session = format!("agentguard-live-{}", std::process::id());
    let cmd = format!(
        "{BIN} watch --output-log {} -- /bin/sh -c 'for i in 1 2 3; do cat /etc/hostname; sleep 0.3; done'; echo EXITED $?; sleep 30",
        log.display()
    );
    start(&session, &cmd);
    let _guard = Kill(session.clone());
    let s = screen_with(&session, "the tree ended");
    assert!(s.contains("the tree ended (exit 0): q to quit"), "{s}");
    assert!(
        s.contains("processes (7)"),
        "the shell, three cats and three sleeps: {s}"
    );
    assert!(s.contains("cat /etc/hostname exit 0"), "{s}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        3,
        "the command's output went to the log"
    );
    tmux(&["send-keys", "-t", &session, "q"]);
    let s = screen_with(&session, "EXITED");
    assert!(s.contains("EXITED 0"), "{s}");
    // watch shows; it does not judge, nor print a profile after the UI.
    assert!(
        !s.contains("gate --fail-on") && !s.contains("version = 1"),
        "{s}"
    );
}

/// Without a terminal, watch (live or replayed) and record --tui say so and exit 2: no
/// panic, no UI drawn into a pipe waiting for a q nobody can type.
#[test]
fn watch_without_a_terminal_says_so() {
    let d = scratch("watch-no-tty");
    let log = d.join("run.jsonl");
    std::fs::write(&log, "").unwrap();
    let mark = d.join("ran");
    let touch = format!("touch {}", mark.display());
    let replay = ["watch", "--replay", log.to_str().unwrap()];
    let live = ["watch", "--", "/bin/sh", "-c", touch.as_str()];
    let tui = [
        "record",
        "--tui",
        "-o",
        "/dev/null",
        "--",
        "/bin/sh",
        "-c",
        touch.as_str(),
    ];
    for args in [&replay[..], &live[..], &tui[..]] {
        // Standard input and output are not terminals here (output() captures them).
        let out = Command::new(BIN).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("needs a terminal") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
        assert!(
            out.stdout.is_empty(),
            "{args:?}: nothing drawn into the pipe"
        );
    }
    assert!(!mark.exists(), "the command did not run");
}

#[test]
fn watch_ends_when_its_terminal_goes_away() {
    // A killed terminal (not q) once left agentguard spinning on end-of-file forever.
    let d = scratch("watch-hup");
    let pidfile = d.join("pid");
    let session = format!("agentguard-hup-{}", std::process::id());
    let cmd = format!(
        "echo $$ > {}; exec {BIN} watch --output-log {} -- /bin/true",
        pidfile.display(),
        d.join("out.log").display()
    );
    start(&session, &cmd);
    let s = screen_with(&session, "the tree ended");
    assert!(s.contains("q to quit"), "{s}");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    drop(Kill(session));
    let t = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        if t.elapsed() > Duration::from_secs(10) {
            // Not left spinning for the rest of the suite.
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
            panic!("agentguard {pid} outlived its terminal by 10 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
