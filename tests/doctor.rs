use std::process::Command;

use serde_json::Value;

use crate::util::*;

/// The probe named `name` from doctor's JSON.
fn probe<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no probe {name}"))
}

fn feature<'a>(r: &'a Value, name: &str) -> &'a str {
    r["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no feature {name}"))["status"]
        .as_str()
        .unwrap()
}

#[test]
fn doctors_table_matches_what_this_machine_does() {
    require_root();
    let out = Command::new(BIN)
        .args(["doctor", "--format", "json"])
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    // What the rest of this suite relies on, tried here by doing.
    for p in ["tracepoint (tp_btf)", "uprobe", "BTF", "capabilities"] {
        assert_eq!(probe(&r, p)["status"], "ok", "{p}: {}", probe(&r, p));
    }
    assert_eq!(feature(&r, "record"), "works");
    assert_eq!(feature(&r, "diff"), "works");
    // BPF LSM: doctor says what the suite's own LSM program found (tests/host.rs).
    let lsm = crate::host::bpf_lsm();
    assert_eq!(
        probe(&r, "BPF LSM program")["status"] == "ok",
        lsm.is_ok(),
        "{} / the suite's check: {lsm:?}",
        probe(&r, "BPF LSM program")
    );
    assert_eq!(
        feature(&r, "enforce (BPF LSM)"),
        if lsm.is_ok() { "works" } else { "unavailable" }
    );
    // Landlock: the ABI the kernel reports to a direct question.
    // SAFETY: the version query creates nothing.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1,
        )
    };
    if abi > 0 {
        assert_eq!(probe(&r, "Landlock")["detail"], format!("ABI {abi}"));
    } else {
        assert_eq!(probe(&r, "Landlock")["status"], "failed");
    }
    // cgroup v2: where mountinfo says.
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount = mi
        .lines()
        .find(|l| l.contains(" - cgroup2 "))
        .and_then(|l| l.split_whitespace().nth(4))
        .unwrap();
    assert_eq!(
        probe(&r, "cgroup v2")["detail"],
        format!("mounted at {mount}")
    );
    // Exit 1 exactly when something is not fully working.
    let all = r["features"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["status"] == "works");
    assert_eq!(out.status.code(), Some(if all { 0 } else { 1 }));
    // The text form is the same table for a person.
    let t = Command::new(BIN).arg("doctor").output().unwrap();
    let text = String::from_utf8_lossy(&t.stdout);
    assert!(
        text.contains("enforce (Landlock)") && text.contains("features:"),
        "{text}"
    );
}

/// Without root, doctor says what it could not try and why, and claims nothing about it:
/// no "not supported by this kernel", no feature rated on a probe it did not run.
#[test]
fn doctor_without_root_says_what_it_did_not_try() {
    require_root();
    // A user namespace of its own (util-linux unshare): the command runs as nobody, with
    // no capability over this machine, and still reads the files root can (a fresh root
    // directory may be mode 700, which nobody proper could not enter).
    let out = Command::new("unshare")
        .arg("--user")
        .args([BIN, "doctor", "--format", "json"])
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(r["root"], false);
    for p in [
        "tracepoint (tp_btf)",
        "uprobe",
        "multi-uprobe links",
        "BPF LSM program",
        "cgroup program (connect4)",
    ] {
        let v = probe(&r, p);
        assert_eq!(v["status"], "not_tried", "{p}: {v}");
        assert!(v["detail"].as_str().unwrap().contains("needs root"), "{v}");
        assert!(v["fix"].as_str().unwrap().contains("as root"), "{v}");
    }
    for f in [
        "record",
        "enforce (BPF LSM)",
        "enforce (Landlock)",
        "LLM visibility",
    ] {
        assert_eq!(feature(&r, f), "unchecked", "{f}");
    }
    assert_eq!(feature(&r, "diff"), "works");
    let text = serde_json::to_string(&r).unwrap();
    assert!(
        !text.contains("not supported by this kernel") && !text.contains("programs are refused"),
        "{text}"
    );
    // Ids for programs: no spaces, stable.
    for section in ["probes", "features"] {
        for x in r[section].as_array().unwrap() {
            let id = x["id"].as_str().unwrap();
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{id}"
            );
        }
    }
    assert_eq!(out.status.code(), Some(1), "unchecked is not works");
}
