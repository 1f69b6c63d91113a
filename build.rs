//! Compiles the BPF sensor and generates its skeleton (`$OUT_DIR/sensor.skel.rs`).
use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/sensor.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok(other) => panic!("the BPF sensor supports x86_64 only for now, not {other}"),
        Err(_) => "x86",
    };
    SkeletonBuilder::new()
        .source(SRC)
        .clang_args([
            format!("-D__TARGET_ARCH_{arch}"),
            "-Wall".to_string(),
            "-Werror".to_string(),
            "-Isrc/bpf".to_string(),
        ])
        .build_and_generate(out.join("sensor.skel.rs"))
        .expect("building the BPF sensor (needs clang; see README, Prerequisites)");
    for f in [
        "src/bpf/sensor.bpf.c",
        "src/bpf/events.h",
        "src/bpf/syscalls.h",
        "src/bpf/vmlinux.h",
    ] {
        println!("cargo:rerun-if-changed={f}");
    }
}
