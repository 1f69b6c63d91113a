use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::util::*;

fn record_pid(dir: &std::path::Path, pid: u32) -> std::process::Child {
    Command::new(BIN)
        .args(["record", "-o"])
        .arg(dir.join("run.toml"))
        .arg("--events")
        .arg(dir.join("run.jsonl"))
        .args(["--pid", &pid.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until agentguard says it is recording (the sensor is loaded and the tree in scope).
fn wait_ready(child: &mut std::process::Child) -> std::io::BufReader<std::process::ChildStderr> {
    use std::io::BufRead;
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("recording pid"), "{line}");
    err
}

#[test]
fn attaching_follows_existing_descendants_until_the_tree_ends() {
    let d = scratch("attach");
    let go = d.join("go");
    let marker = d.join("marker");
    std::fs::write(&marker, "x").unwrap();
    let up = fifo(&d, "child-up");
    // A parent and a child that already exist (the child says so), waiting for `go`.
    let script = format!(
        "(echo up > {up}; while [ ! -e {go} ]; do sleep 0.05; done; cat {m} > /dev/null) & \
         while [ ! -e {go} ]; do sleep 0.05; done; wait",
        up = up.display(),
        go = go.display(),
        m = marker.display()
    );
    let mut tree = Command::new("/bin/sh")
        .args(["-c", &script])
        .spawn()
        .unwrap();
    await_line(&up, 30);
    let mut rec = record_pid(&d, tree.id());
    let mut err = wait_ready(&mut rec);
    std::fs::write(&go, "").unwrap();
    tree.wait().unwrap();
    let status = rec.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    let run = read_outputs(
        std::process::Output {
            status,
            stdout: vec![],
            stderr: rest.into_bytes(),
        },
        &d.join("run.toml"),
        &d.join("run.jsonl"),
    );
    let cat = run.files(&marker);
    assert_eq!(cat.len(), 1, "the pre-existing child's cat was recorded");
    assert_ne!(cat[0]["pid"].as_u64().unwrap() as u32, tree.id());
    assert!(
        run.profile
            .contains(&format!("command = \"--pid {}", tree.id())),
        "{}",
        run.profile
    );
}

#[test]
fn ctrl_c_ends_an_attached_recording_with_130_and_writes_its_files() {
    let d = scratch("attach-int");
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    let mut rec = record_pid(&d, sleeper.id());
    let _err = wait_ready(&mut rec);
    let t = Instant::now();
    kill(Pid::from_raw(rec.id() as i32), Signal::SIGINT).unwrap();
    let status = rec.wait().unwrap();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(status.code(), Some(130));
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "the attached process is left running"
    );
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let profile = std::fs::read_to_string(d.join("run.toml")).unwrap();
    assert!(profile.contains("exit = 130"), "{profile}");
    assert!(d.join("run.jsonl").exists());
}

#[test]
fn sigterm_to_record_is_forwarded_to_the_command() {
    let d = scratch("forward");
    let up = fifo(&d, "up");
    let mut rec = Command::new(BIN)
        .args(["record", "-q", "-o"])
        .arg(d.join("run.toml"))
        .args(["--", "/bin/sh", "-c"])
        .arg(format!("echo up > {}; exec sleep 60", up.display()))
        .spawn()
        .unwrap();
    // The command runs under the recording.
    await_line(&up, 60);
    kill(Pid::from_raw(rec.id() as i32), Signal::SIGTERM).unwrap();
    let status = rec.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "sleep died of the forwarded SIGTERM"
    );
}
