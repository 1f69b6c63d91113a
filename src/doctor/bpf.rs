//! doctor's BPF probes (src/bpf/probe.bpf.c): each program type loaded alone, attached,
//! made to fire, and its counter read. The only module of doctor that talks to libbpf.
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, OpenObject};

use crate::skel::probe as skel;
use skel::{ProbeSkel, ProbeSkelBuilder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tracepoint,
    Uprobe,
    Fentry,
    Lsm,
    Cgroup,
}

/// The function the uprobe probe is put on: a symbol of agentguard's own binary.
#[no_mangle]
#[inline(never)]
pub extern "C" fn agentguard_doctor_probe(x: u64) -> u64 {
    std::hint::black_box(x.wrapping_mul(3))
}

/// Loads, attaches and fires one program; Ok(how it fired) or the reason it did not.
pub fn probe(kind: Kind, cgroup_root: Option<&std::path::Path>) -> Result<String> {
    let mut obj = MaybeUninit::<OpenObject>::uninit();
    let mut open = ProbeSkelBuilder::default()
        .open(&mut obj)
        .context("opening the probe object")?;
    {
        let p = &mut open.progs;
        p.probe_tracepoint.set_autoload(kind == Kind::Tracepoint);
        p.probe_uprobe.set_autoload(kind == Kind::Uprobe);
        p.probe_fentry.set_autoload(kind == Kind::Fentry);
        p.probe_lsm.set_autoload(kind == Kind::Lsm);
        p.probe_cgroup.set_autoload(kind == Kind::Cgroup);
    }
    let mut skel = open.load().map_err(|e| {
        anyhow!(
            "the kernel refused to load it: {e}{}",
            tail(&crate::sensor::libbpf_log_tail())
        )
    })?;
    let me = std::process::id();
    set_target(&mut skel, me, 0)?;
    let fired = match kind {
        Kind::Tracepoint => {
            let _l = attach(skel.progs.probe_tracepoint.attach())?;
            let mut c = std::process::Command::new("/bin/true")
                .spawn()
                .context("forking /bin/true")?;
            c.wait().ok();
            hits(&skel)?
        }
        Kind::Uprobe => {
            let exe =
                std::fs::read_link("/proc/self/exe").context("finding agentguard's binary")?;
            let opts = libbpf_rs::UprobeOpts {
                func_name: Some("agentguard_doctor_probe".into()),
                ..Default::default()
            };
            let _l = attach(
                skel.progs
                    .probe_uprobe
                    .attach_uprobe_with_opts(me as i32, &exe, 0, opts),
            )?;
            agentguard_doctor_probe(7);
            hits(&skel)?
        }
        Kind::Fentry | Kind::Lsm => {
            let l = if kind == Kind::Fentry {
                skel.progs.probe_fentry.attach()
            } else {
                skel.progs.probe_lsm.attach()
            };
            let _l = attach(l)?;
            std::fs::File::open("/proc/self/status").context("opening a file")?;
            hits(&skel)?
        }
        Kind::Cgroup => return cgroup(&mut skel, cgroup_root),
    };
    if fired == 0 {
        bail!("loaded and attached, but it never fired");
    }
    Ok(format!("loaded, attached, fired {fired}x"))
}

/// cgroup/connect4 on a cgroup made for the probe: a child moved into it connects to a
/// port the program refuses, and must get EPERM.
fn cgroup(skel: &mut ProbeSkel, root: Option<&std::path::Path>) -> Result<String> {
    let root = root.context("no cgroup v2 mount")?;
    let dir = root.join(format!("agentguard-doctor-{}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = (|| -> Result<String> {
        let f = std::fs::File::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("a loopback listener")?;
        let port = listener.local_addr()?.port();
        set_target(skel, 0, port.into())?;
        let _l = attach(skel.progs.probe_cgroup.attach_cgroup(f.as_raw_fd()))?;
        // A child moved into the cgroup connects (bash's /dev/tcp) to the refused port.
        let out = std::process::Command::new("/bin/bash")
            .args([
                "-c",
                &format!(
                    "echo $$ > {}/cgroup.procs && exec 3<>/dev/tcp/127.0.0.1/{port}",
                    dir.display()
                ),
            ])
            .output()
            .context("running bash in the cgroup")?;
        drop(listener);
        let err = String::from_utf8_lossy(&out.stderr);
        let fired = hits(skel)?;
        if fired == 0 {
            bail!("attached, but it never fired");
        }
        if out.status.success() || !err.contains("not permitted") {
            bail!("fired, but did not refuse the connection ({})", err.trim());
        }
        Ok("attached to a cgroup, fired, refused a connection (EPERM)".into())
    })();
    // The child has exited; the empty cgroup can go.
    for _ in 0..50 {
        if std::fs::remove_dir(&dir).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    result
}

fn attach(l: libbpf_rs::Result<Link>) -> Result<Link> {
    l.map_err(|e| {
        anyhow!(
            "loaded, but the kernel refused to attach it: {e}{}",
            tail(&crate::sensor::libbpf_log_tail())
        )
    })
}

fn set_target(skel: &mut ProbeSkel, tgid: u32, deny_port: u32) -> Result<()> {
    let bss = skel
        .maps
        .bss_data
        .as_deref_mut()
        .context("the probe object has no .bss")?;
    bss.target_tgid = tgid;
    bss.deny_port = deny_port;
    bss.hits = 0;
    Ok(())
}

fn hits(skel: &ProbeSkel) -> Result<u64> {
    let bss = skel
        .maps
        .bss_data
        .as_deref()
        .context("the probe object has no .bss")?;
    // SAFETY: an aligned u64 in the mmapped .bss, updated atomically by the kernel side.
    Ok(unsafe { std::ptr::read_volatile(&bss.hits) })
}

fn tail(log: &str) -> String {
    let last = log
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    if last.is_empty() {
        String::new()
    } else {
        format!(" ({})", last.trim())
    }
}
