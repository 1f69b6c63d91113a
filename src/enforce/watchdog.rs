//! The tree must not outlive its enforcement. The tree is put in a cgroup of its own; a
//! watchdog process, forked before any BPF object exists (so it holds none), waits on a
//! pipe from agentguard. When that pipe closes, because agentguard finished or because it
//! was killed, even with SIGKILL, the watchdog kills whatever is left of the tree through
//! cgroup.kill and removes the cgroup. A tree process cannot leave the cgroup: writing
//! cgroup.procs is a file open that the profile does not allow.
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::unistd::{fork, pipe2, ForkResult};

pub struct Watchdog {
    pub cgroup: PathBuf,
    _alive: OwnedFd,
}

/// Where cgroup v2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified in hybrid mode).
pub fn cgroup2_root() -> Result<PathBuf> {
    let info =
        fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if right.split_whitespace().next() == Some("cgroup2") {
            if let Some(mnt) = left.split_whitespace().nth(4) {
                return Ok(PathBuf::from(mnt));
            }
        }
    }
    bail!("cgroup v2 is not mounted: enforce puts the tree in a cgroup so that it can be killed if agentguard dies (mount -t cgroup2 none /sys/fs/cgroup)")
}

impl Watchdog {
    pub fn start() -> Result<Watchdog> {
        let root = cgroup2_root()?;
        let cgroup = root.join(format!("agentguard-{}", std::process::id()));
        fs::create_dir(&cgroup)
            .with_context(|| format!("creating the tree's cgroup {}", cgroup.display()))?;
        if !cgroup.join("cgroup.kill").exists() {
            let _ = fs::remove_dir(&cgroup);
            bail!("this kernel has no cgroup.kill (it needs Linux 5.14 or newer): enforce could not kill the tree if agentguard died");
        }
        let (r, w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating a pipe")?;
        // SAFETY: single-threaded here; the child only waits, writes and exits.
        match unsafe { fork() }.context("fork")? {
            ForkResult::Child => {
                drop(w);
                close_other_fds(r.as_raw_fd());
                // Not in the tree's process group: a terminal's Ctrl-C must not kill it.
                let _ = nix::unistd::setsid();
                let mut f = fs::File::from(r);
                let mut b = [0u8; 1];
                let _ = f.read(&mut b); // returns when agentguard is gone
                kill_cgroup(&cgroup);
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { .. } => {
                drop(r);
                Ok(Watchdog { cgroup, _alive: w })
            }
        }
    }

    /// Moves a process into the tree's cgroup.
    pub fn adopt(&self, pid: u32) -> Result<()> {
        fs::write(self.cgroup.join("cgroup.procs"), pid.to_string())
            .with_context(|| format!("moving pid {pid} into {}", self.cgroup.display()))
    }
}

fn close_other_fds(keep: i32) {
    if let Ok(dir) = fs::read_dir("/proc/self/fd") {
        let fds: Vec<i32> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        for fd in fds {
            if fd > 2 && fd != keep {
                // SAFETY: closing descriptors this fresh child does not use.
                unsafe { libc::close(fd) };
            }
        }
    }
}

fn kill_cgroup(cgroup: &Path) {
    let _ = fs::write(cgroup.join("cgroup.kill"), "1");
    for _ in 0..200 {
        let empty = fs::read_to_string(cgroup.join("cgroup.procs"))
            .map(|s| s.trim().is_empty())
            .unwrap_or(true);
        if empty && fs::remove_dir(cgroup).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
