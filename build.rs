//! Compiles the BPF objects and generates their skeletons (`$OUT_DIR/<name>.skel.rs`).
use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// (source, skeleton name): the sensor, the LSM programs that enforce a profile, and
/// doctor's probes, and the Landlock backend's network programs.
const OBJECTS: &[(&str, &str)] = &[
    ("src/bpf/sensor.bpf.c", "sensor"),
    ("src/bpf/enforce.bpf.c", "enforce"),
    ("src/bpf/probe.bpf.c", "probe"),
    ("src/bpf/egress.bpf.c", "egress"),
];

/// The commit built, for --version: "unknown" outside a git checkout, "-dirty" with
/// uncommitted changes.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) if !c.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c}-dirty")
            } else {
                c
            }
        }
        _ => "unknown".to_string(),
    }
}

fn main() {
    println!("cargo:rustc-env=AGENTGUARD_COMMIT={}", commit());
    // A new commit or checkout moves HEAD's log; the index, a change staged.
    for f in [".git/logs/HEAD", ".git/index"] {
        if std::path::Path::new(f).exists() {
            println!("cargo:rerun-if-changed={f}");
        }
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok(other) => panic!("the BPF sensor supports x86_64 only for now, not {other}"),
        Err(_) => "x86",
    };
    for (src, name) in OBJECTS {
        SkeletonBuilder::new()
            .source(src)
            .clang_args([
                format!("-D__TARGET_ARCH_{arch}"),
                "-Wall".to_string(),
                "-Werror".to_string(),
                "-Isrc/bpf".to_string(),
            ])
            .build_and_generate(out.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|e| {
                panic!("building {src} (needs clang; see README, Prerequisites): {e:#}")
            });
    }
    for f in [
        "src/bpf/sensor.bpf.c",
        "src/bpf/enforce.bpf.c",
        "src/bpf/probe.bpf.c",
        "src/bpf/egress.bpf.c",
        "src/bpf/events.h",
        "src/bpf/payload.h",
        "src/bpf/dns.h",
        "src/bpf/times.h",
        "src/bpf/policy.h",
        "src/bpf/syscalls.h",
        "src/bpf/vmlinux.h",
    ] {
        println!("cargo:rerun-if-changed={f}");
    }
}
