//! What this kernel can do, found out by the tests themselves, independently of
//! agentguard's code: the expected answers of tests that compare agentguard against the
//! host come from here.
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use libbpf_rs::MapCore;

use crate::util::*;

/// Whether BPF LSM takes decisions here: Ok, or why not. tests/bpf/lsm_check.bpf.c is
/// built with clang, loaded and attached with libbpf, and must make an open of this
/// thread's fail with EPERM. Loading is not enough: a kernel whose active LSM list lacks
/// "bpf" accepts the program and never calls it.
pub fn bpf_lsm() -> Result<(), String> {
    static ANSWER: OnceLock<Result<(), String>> = OnceLock::new();
    ANSWER.get_or_init(check_bpf_lsm).clone()
}

fn check_bpf_lsm() -> Result<(), String> {
    require_root();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf/lsm_check.bpf.c");
    let obj = process_dir().join("lsm_check.bpf.o");
    let st = Command::new("clang")
        .args(["-g", "-O2", "-target", "bpf", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .expect("clang (scripts/setup.sh installs it)");
    assert!(st.success(), "clang could not build {}", src.display());
    // libbpf's own lines would only repeat the answer (with a misleading ulimit hint).
    libbpf_rs::set_print(None);
    let open = libbpf_rs::ObjectBuilder::default()
        .open_file(&obj)
        .map_err(|e| format!("opening the object: {e}"))?;
    let o = open
        .load()
        .map_err(|e| format!("the kernel refused the program: {e}"))?;
    let prog = o
        .progs_mut()
        .find(|p| p.name() == "deny_target")
        .expect("the program");
    let link = prog
        .attach_lsm()
        .map_err(|e| format!("the kernel refused to attach it: {e}"))?;
    let map = o.maps().find(|m| m.name() == "target").expect("the map");
    let tid = nix::unistd::gettid().as_raw() as u32;
    map.update(
        &0u32.to_ne_bytes(),
        &tid.to_ne_bytes(),
        libbpf_rs::MapFlags::ANY,
    )
    .map_err(|e| format!("setting the target: {e}"))?;
    let opened = std::fs::File::open("/proc/self/stat");
    drop(link);
    match opened {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(()),
        Err(e) => Err(format!("the open failed otherwise: {e}")),
        Ok(_) => Err("it attached, but the kernel never asked it (BPF LSM not active)".into()),
    }
}
