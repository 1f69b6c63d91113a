//! doctor's probes of the host that are not BPF programs: BTF, capabilities, cgroup v2,
//! the active LSM list, Landlock.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// The effective capabilities agentguard needs, from /proc/self/status.
pub fn capabilities() -> Result<String> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .context("no CapEff in /proc/self/status")?;
    let want = [(21, "CAP_SYS_ADMIN"), (38, "CAP_PERFMON"), (39, "CAP_BPF")];
    let missing: Vec<&str> = want
        .iter()
        .filter(|(bit, _)| eff & (1u64 << bit) == 0)
        .map(|(_, n)| *n)
        .collect();
    // CAP_SYS_ADMIN stands for the other two on kernels that predate them.
    if missing.is_empty() || !missing.contains(&"CAP_SYS_ADMIN") {
        Ok(format!(
            "effective {eff:#x}: CAP_BPF, CAP_PERFMON{}",
            if missing.contains(&"CAP_SYS_ADMIN") {
                ""
            } else {
                ", CAP_SYS_ADMIN"
            }
        ))
    } else {
        bail!("missing {}: run as root", missing.join(", "))
    }
}

pub fn btf() -> Result<String> {
    let m = std::fs::metadata("/sys/kernel/btf/vmlinux")
        .context("/sys/kernel/btf/vmlinux: the kernel exposes no BTF")?;
    Ok(format!("/sys/kernel/btf/vmlinux, {} KiB", m.len() / 1024))
}

/// Where cgroup v2 is mounted, checked writable by making a directory there.
pub fn cgroup2() -> Result<PathBuf> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
    let mount = mi
        .lines()
        .find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            (post.split_whitespace().next()? == "cgroup2")
                .then(|| pre.split_whitespace().nth(4).map(PathBuf::from))?
        })
        .context("no cgroup2 file system is mounted")?;
    let probe = mount.join(format!("agentguard-doctor-w{}", std::process::id()));
    std::fs::create_dir(&probe)
        .with_context(|| format!("{} is mounted but not writable", mount.display()))?;
    let _ = std::fs::remove_dir(&probe);
    Ok(mount)
}

/// The active LSM list (securityfs mounted if it is not).
pub fn lsm_list() -> Result<String> {
    let path = "/sys/kernel/security/lsm";
    if std::fs::metadata(path).is_err() {
        let _ = nix::mount::mount(
            Some("securityfs"),
            "/sys/kernel/security",
            Some("securityfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        );
    }
    let list = std::fs::read_to_string(path)
        .context("the active LSM list (/sys/kernel/security/lsm) cannot be read")?;
    let list = list.trim().to_string();
    if list.split(',').any(|l| l == "bpf") {
        Ok(list)
    } else {
        bail!("\"bpf\" is not in {list}")
    }
}

/// Landlock's ABI version, from the kernel itself.
pub fn landlock_abi() -> Result<i64> {
    const CREATE_RULESET_VERSION: libc::c_long = 1;
    // SAFETY: the version query takes no attribute and creates nothing.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    if v < 1 {
        let e = std::io::Error::last_os_error();
        bail!("not available ({e})");
    }
    Ok(v)
}
