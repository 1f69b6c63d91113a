//! Enforcement with BPF LSM is tested in a VM (tests/vm/enforce.sh). Here, where the
//! kernel refuses LSM programs, enforce --backend bpf-lsm must refuse to start the
//! command; the Landlock backend that auto picks here is tested in tests/landlock.rs.
use std::process::Command;

use crate::util::*;

#[test]
fn enforce_fails_closed_where_bpf_lsm_cannot_load() {
    let d = scratch("enforce-refused");
    let marker = d.join("ran");
    let profile = d.join("p.toml");
    std::fs::write(&profile, "version = 1\ninclude = [\"coreutils\"]\n").unwrap();
    let child = Command::new(BIN)
        .args(["enforce", "--backend", "bpf-lsm", "--profile"])
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
    if out.status.code() == Some(2) {
        assert!(err.contains("enforcement needs BPF LSM programs"), "{err}");
        assert!(
            err.contains("fix:") && err.contains("did not start the command"),
            "{err}"
        );
        assert!(
            !marker.exists(),
            "the command ran although it could not be enforced"
        );
    } else {
        // A kernel that allows BPF LSM: then the command runs, enforced.
        assert_eq!(out.status.code(), Some(0), "{err}");
    }
    // The watchdog removes the tree's cgroup once agentguard is gone.
    let cgroup = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .iter()
        .map(|r| std::path::Path::new(r).join(format!("agentguard-{pid}")))
        .find(|p| p.exists());
    for _ in 0..100 {
        if !cgroup.as_ref().is_some_and(|c| c.exists()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        !cgroup.is_some_and(|c| c.exists()),
        "the tree's cgroup was left behind"
    );
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
        .args(["enforce", "--backend", "bpf-lsm", "--profile"])
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
