//! Compiles the BPF objects and generates their skeletons (`$OUT_DIR/<name>.skel.rs`).
use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// (skeleton name, its compilation units): the sensor (with its payload capture and byte counts), the
/// LSM programs that enforce a profile, doctor's probes, and the Landlock backend's
/// network programs. An object of several units is linked by libbpf's static linker:
/// its units share maps and functions through a header's extern declarations.
const OBJECTS: &[(&str, &[&str])] = &[
    (
        "sensor",
        &[
            "src/bpf/sensor.bpf.c",
            "src/bpf/payload.bpf.c",
            "src/bpf/io.bpf.c",
        ],
    ),
    (
        "enforce",
        &[
            "src/bpf/enforce.bpf.c",
            "src/bpf/dns.bpf.c",
            "src/bpf/times.bpf.c",
        ],
    ),
    ("probe", &["src/bpf/probe.bpf.c"]),
    ("egress", &["src/bpf/egress.bpf.c"]),
    ("endpoint", &["src/bpf/endpoint.bpf.c"]),
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
    // libbpf's headers (bpf_helpers.h, ...), as libbpf-sys bundles them.
    let include = out.join("include");
    std::fs::create_dir_all(include.join("bpf")).expect("creating OUT_DIR/include/bpf");
    for (file, text) in libbpf_rs::libbpf_sys::API_HEADERS.iter() {
        std::fs::write(include.join("bpf").join(file), text).expect("writing libbpf's headers");
    }
    let units = out.join("units");
    std::fs::create_dir_all(&units).expect("creating OUT_DIR/units");
    for (name, sources) in OBJECTS {
        // All units in one pass of the linker: it resolves each unit's extern maps,
        // variables and functions against the others' definitions.
        let linked = out.join(format!("{name}.o"));
        let mut linker = libbpf_rs::Linker::new(&linked)
            .unwrap_or_else(|e| panic!("linking the {name} object: {e:#}"));
        for src in *sources {
            let stem = src.rsplit('/').next().unwrap_or(src);
            let obj = units.join(stem.replace(".bpf.c", ".o"));
            compile(src, &obj, arch, &include);
            linker
                .add_file(&obj)
                .unwrap_or_else(|e| panic!("linking {src} into the {name} object: {e:#}"));
        }
        linker
            .link()
            .unwrap_or_else(|e| panic!("linking the {name} object: {e:#}"));
        SkeletonBuilder::new()
            .obj(&linked)
            .generate(out.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|e| panic!("generating the {name} skeleton: {e:#}"));
    }
    // Every unit and header: a directory is scanned for any change, a new file too.
    println!("cargo:rerun-if-changed=src/bpf");
}

/// One compilation unit to a BPF object, with the flags libbpf-cargo uses. Its public
/// builder links each source alone, which cannot resolve one unit's extern maps in
/// another (its many-source builder is private).
fn compile(src: &str, obj: &std::path::Path, arch: &str, include: &std::path::Path) {
    let out = std::process::Command::new("clang")
        .args([
            &format!("-D__TARGET_ARCH_{arch}"),
            "-Wall",
            "-Werror",
            "-Isrc/bpf",
            "-I",
        ])
        .arg(include)
        // Stack protection does not exist in BPF.
        .args([
            "-fno-stack-protector",
            "-g",
            "-O2",
            "-target",
            "bpf",
            "-c",
            src,
            "-o",
        ])
        .arg(obj)
        .output()
        .unwrap_or_else(|e| panic!("running clang for {src} (see README, Prerequisites): {e}"));
    if !out.status.success() {
        panic!("compiling {src}:\n{}", String::from_utf8_lossy(&out.stderr));
    }
}
