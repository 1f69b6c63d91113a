//! `enforce --backend bpf-lsm` on both kinds of kernel: where BPF LSM takes no decisions
//! (this machine) it must refuse to start the command; where it does (the VM, which runs
//! these tests through tests/vm/z-integration.sh) the command runs, enforced. Each test
//! says "skipping: needs X" on the other kind; tests/host.rs tells them apart without
//! agentguard's help. tests/vm/enforce.sh has the rest of BPF LSM enforcement; the
//! Landlock backend that auto picks here is tested in tests/landlock.rs. The denials-ring
//! test runs under whichever backend the host has (both, between here and the VM).
use std::process::Command;

use crate::host;
use crate::util::*;

/// The tree's cgroup, removed by the watchdog once agentguard is gone.
fn assert_cgroup_removed(agentguard: u32) {
    let cgroup = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .iter()
        .map(|r| std::path::Path::new(r).join(format!("agentguard-{agentguard}")))
        .find(|p| p.exists());
    let t = std::time::Instant::now();
    while cgroup.as_ref().is_some_and(|c| c.exists()) && t.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        !cgroup.is_some_and(|c| c.exists()),
        "the tree's cgroup was left behind"
    );
}

#[test]
fn enforce_fails_closed_where_bpf_lsm_cannot_load() {
    if let Ok(()) = host::bpf_lsm() {
        skip(
            "enforce_fails_closed_where_bpf_lsm_cannot_load",
            "needs a kernel where BPF LSM takes no decisions (this one takes them)",
        );
        return;
    }
    let d = scratch("enforce-refused");
    let marker = d.join("ran");
    let profile = d.join("p.toml");
    std::fs::write(&profile, "version = 1\ninclude = [\"coreutils\"]\n").unwrap();
    let child = Command::new(BIN)
        .args([
            "enforce",
            "--deny-at",
            "new",
            "--backend",
            "bpf-lsm",
            "--profile",
        ])
        .arg(&profile)
        .args([
            "--",
            "/bin/sh",
            "-c",
            &format!("touch {}", marker.display()),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("enforcement needs BPF LSM programs"), "{err}");
    assert!(
        err.contains("fix:") && err.contains("did not start the command"),
        "{err}"
    );
    assert!(
        !marker.exists(),
        "the command ran although it could not be enforced"
    );
    assert_cgroup_removed(pid);
}

#[test]
fn enforce_with_bpf_lsm_runs_the_command_and_denies_what_the_profile_lacks() {
    if let Err(why) = host::bpf_lsm() {
        skip(
            "enforce_with_bpf_lsm_runs_the_command_and_denies_what_the_profile_lacks",
            &format!("needs BPF LSM ({why}); scripts/vm-test.sh runs it in a VM"),
        );
        return;
    }
    let d = scratch("enforce-bpf-lsm");
    std::fs::write(d.join("allowed.txt"), "allowed\n").unwrap();
    std::fs::write(d.join("secret.txt"), "secret\n").unwrap();
    let profile = d.join("p.toml");
    std::fs::write(
        &profile,
        format!(
            "version = 1\ninclude = [\"coreutils\"]\n\n[[file]]\npath = \"{}/allowed.txt\"\naccess = [\"read\"]\n",
            d.display()
        ),
    )
    .unwrap();
    let child = Command::new(BIN)
        .args([
            "enforce",
            "--deny-at",
            "new",
            "--backend",
            "bpf-lsm",
            "--profile",
        ])
        .arg(&profile)
        .arg("--")
        .arg("/bin/cat")
        .arg(d.join("allowed.txt"))
        .arg(d.join("secret.txt"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(so, "allowed\n", "{se}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "cat failed on the denied file: {se}"
    );
    assert!(
        se.contains(&format!("DENIED open {}/secret.txt", d.display())),
        "{se}"
    );
    assert_cgroup_removed(pid);
}

#[test]
fn a_profile_the_kernel_cannot_check_exactly_is_refused_naming_the_rule() {
    let d = scratch("enforce-inexact");
    let profile = d.join("p.toml");
    std::fs::write(
        &profile,
        "version = 1\n\n[[file]]\npath = \"/srv/**/secret\"\naccess = [\"read\"]\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args([
            "enforce",
            "--deny-at",
            "new",
            "--backend",
            "bpf-lsm",
            "--profile",
        ])
        .arg(&profile)
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("[[file]] /srv/**/secret")
            && err.contains("\"**\" only at the start or the end"),
        "{err}"
    );
    assert!(err.contains("the command was not started"), "{err}");
}

#[test]
fn a_tree_process_the_process_map_lost_is_still_enforced() {
    // The process map is how the LSM programs know the tree; a child that lost a race for
    // its last slot is not in it. Root, from outside the tree, deletes the tree's shell
    // from the map, so that the cat it then starts is not tracked either: the cat is
    // still in the tree's cgroup, which no tree process can leave, and its read of a file
    // the profile does not grant is still denied.
    if let Err(why) = host::bpf_lsm() {
        skip(
            "a_tree_process_the_process_map_lost_is_still_enforced",
            &format!("needs BPF LSM ({why}); scripts/vm-test.sh runs it in a VM"),
        );
        return;
    }
    use libbpf_rs::MapCore;
    // Outside the temp directory: in the VM that is 9p, which holds no FIFO.
    let d = scratch_outside_tmp("enforce-untracked");
    std::fs::write(d.join("secret.txt"), "secret\n").unwrap();
    let (started, go, out) = (fifo(&d, "started"), fifo(&d, "go"), fifo(&d, "result"));
    let profile = d.join("p.toml");
    std::fs::write(
        &profile,
        format!(
            "version = 1\ninclude = [\"coreutils\", \"locale\"]\n\n[[exec]]\npath = \"/usr/bin/dash\"\n\n\
             [[file]]\npath = \"{}/{{started,go,result}}\"\naccess = [\"read\", \"write\", \"truncate\"]\n",
            d.display()
        ),
    )
    .unwrap();
    let script = format!(
        "echo up > {s}; read x < {g}; if cat {secret} > {o}; then :; else echo DENIED > {o}; fi; read y < {g}",
        s = started.display(),
        g = go.display(),
        o = out.display(),
        secret = d.join("secret.txt").display()
    );
    let ag = Started::new(
        Command::new(BIN)
            .args([
                "enforce",
                "--deny-at",
                "new",
                "--backend",
                "bpf-lsm",
                "-q",
                "--profile",
            ])
            .arg(&profile)
            .args(["--", "/usr/bin/dash", "-c", &script])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let agp = ag.id();
    // `>` opens the FIFO for writing with O_TRUNC: the rule grants both.
    assert_eq!(await_line(&started, 60).trim(), "up");
    let (_, shell) = guard_children(agp);
    let shell = shell as u32;
    // The newest map named procs: agentguard's, loaded last.
    let id = libbpf_rs::query::MapInfoIter::default()
        .filter(|m| m.name == "procs")
        .map(|m| m.id)
        .max()
        .expect("the process map");
    libbpf_rs::MapHandle::from_map_id(id)
        .unwrap()
        .delete(&shell.to_ne_bytes())
        .expect("the shell was in the process map");
    send_line(&go, "go", 30);
    let r = await_line(&out, 60);
    send_line(&go, "go", 30);
    let o = ag.wait_with_output();
    let se = String::from_utf8_lossy(&o.stderr);
    assert_eq!(r.trim(), "DENIED", "the untracked cat read the file: {se}");
    assert!(
        se.contains(&format!("DENIED open {}/secret.txt", d.display())),
        "{se}"
    );
}

/// A tree that floods the guard's denials ring to hide the denial it cares about: the
/// calls are still refused, and the reports the ring had no room for are counted, said,
/// and make the run's log incomplete. The guard's reader (agentguard) is stopped while
/// the tree floods, so the ring fills for certain; what the summary counts as denied plus
/// what it says went unreported is exactly what the tree saw refused. Learned from the
/// script's own recorded runs (which connect nowhere); whichever backend this host has.
#[test]
fn denials_the_ring_had_no_room_for_are_counted_and_said() {
    require_root();
    use std::io::{BufRead, Write};
    let d = scratch_outside_tmp("enforce-denial-flood");
    let script = d.join("flood.py");
    std::fs::write(
        &script,
        "import os, socket, sys\n\
         n = int(os.environ.get('FLOOD', '0'))\n\
         if n:\n\
         \x20   print('ready', flush=True)\n\
         \x20   sys.stdin.readline()\n\
         \x20   s = socket.socket()\n\
         \x20   refused = 0\n\
         \x20   for _ in range(n):\n\
         \x20       try:\n\
         \x20           s.connect(('127.0.0.1', 9))\n\
         \x20       except PermissionError:\n\
         \x20           refused += 1\n\
         \x20       except OSError:\n\
         \x20           pass\n\
         \x20   print('refused', refused, flush=True)\n",
    )
    .unwrap();
    let cmd = [python(), script.to_str().unwrap()];
    let baseline = d.join("baseline.toml");
    learn(&baseline, &cmd, 2);
    const FLOOD: u64 = 5000;
    let mut child = Command::new(BIN)
        .current_dir(&d)
        .args(["enforce", "--deny-at", "new", "--profile"])
        .arg(&baseline)
        .arg("--")
        .args(cmd)
        .env("FLOOD", FLOOD.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (mut stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    let ag = Started::new(child);
    // The tree's lines, through a thread: a tree that dies without its line is a failure
    // after a while, not a hang.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout).lines() {
            if tx.send(l.unwrap()).is_err() {
                break;
            }
        }
    });
    let line = || {
        rx.recv_timeout(std::time::Duration::from_secs(300))
            .unwrap()
    };
    assert_eq!(line(), "ready");
    let agp = nix::unistd::Pid::from_raw(ag.id() as i32);
    nix::sys::signal::kill(agp, nix::sys::signal::Signal::SIGSTOP).unwrap();
    stdin.write_all(b"go\n").unwrap();
    let said = line();
    nix::sys::signal::kill(agp, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert_eq!(
        said,
        format!("refused {FLOOD}"),
        "every connect was refused"
    );
    drop(stdin);
    let out = ag.wait_with_output();
    let err = String::from_utf8_lossy(&out.stderr);
    let count = |prefix: &str| -> u64 {
        err.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix:?} line:\n{err}"))
    };
    let denied = count("denied");
    let unreported = err
        .lines()
        .find_map(|l| {
            let n = l.trim().strip_prefix("warning: ")?;
            let (n, rest) = n.split_once(' ')?;
            rest.starts_with("denials were not reported")
                .then(|| n.parse::<u64>().ok())?
        })
        .unwrap_or_else(|| panic!("no unreported denials said:\n{err}"));
    assert!(
        unreported > 0 && denied > 0,
        "the ring was full while agentguard was stopped: {err}"
    );
    assert_eq!(denied + unreported, FLOOD, "{err}");
    assert!(
        err.contains(&format!(
            "warning: {unreported} denials were not reported (the denials ring was full)"
        )),
        "{err}"
    );
    assert!(count("lost events") >= unreported, "{err}");
}
