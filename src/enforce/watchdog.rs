//! The tree must not outlive its enforcement. The tree is put in a cgroup of its own; a
//! watchdog process, forked before any BPF object exists, waits on a pipe from
//! agentguard. When that pipe closes, because agentguard finished or because it was
//! killed, even with SIGKILL, the watchdog kills whatever is left of the tree through
//! cgroup.kill and removes the cgroup. A tree process cannot leave the cgroup: writing
//! cgroup.procs is a file open the profile does not allow, and clone3 into another cgroup
//! is denied (task_alloc under BPF LSM, the seccomp filter under Landlock).
//!
//! The kernel side must outlive agentguard until the tree is dead: once the programs are
//! attached, agentguard hands the watchdog a copy of every BPF link it holds (SCM_RIGHTS),
//! so a killed agentguard leaves the links attached until the watchdog has killed the
//! tree and exits. The tree cannot signal the watchdog (task_kill, Landlock's signal
//! scope), so it can neither stop it nor kill it.
//!
//! It kills by process set as well as by cgroup: agentguard hands it the sensor's map of
//! the tree's processes too, and each process the map holds is killed through a pidfd,
//! once its start time says it is the process the map tracked. A process that left the
//! cgroup anyway (a way out nobody has found yet) still dies with the tree.
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use nix::unistd::{fork, pipe2, ForkResult};

pub struct Watchdog {
    pub cgroup: PathBuf,
    /// Why the tree's task count is not limited (pids.max), when it is not.
    pub unlimited: Option<String>,
    _alive: OwnedFd,
    links: OwnedFd,
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

/// Caps the tree's tasks (processes and threads) at `max` with the pids controller, so
/// the kernel refuses a fork bomb's forks before the process map fills. The controller
/// is enabled for the cgroup's parent when it is available there but off (as systemd
/// enables it); where it is not (a hybrid host binds it to cgroup v1), says why.
fn limit_tasks(root: &Path, cgroup: &Path, max: u32) -> Option<String> {
    let pids_max = cgroup.join("pids.max");
    if !pids_max.exists() {
        let available = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if !available.split_whitespace().any(|c| c == "pids") {
            return Some(format!(
                "the pids controller is not available in {} (cgroup v1 may hold it)",
                root.display()
            ));
        }
        if let Err(e) = fs::write(root.join("cgroup.subtree_control"), "+pids") {
            return Some(format!(
                "enabling the pids controller in {}: {e}",
                root.join("cgroup.subtree_control").display()
            ));
        }
    }
    match fs::write(&pids_max, max.to_string()) {
        Ok(()) => None,
        Err(e) => Some(format!("writing {}: {e}", pids_max.display())),
    }
}

impl Watchdog {
    /// `max_tasks`: the tree's cgroup's pids.max.
    pub fn start(max_tasks: u32) -> Result<Watchdog> {
        let root = cgroup2_root()?;
        let cgroup = root.join(format!("agentguard-{}", std::process::id()));
        fs::create_dir(&cgroup)
            .with_context(|| format!("creating the tree's cgroup {}", cgroup.display()))?;
        if !cgroup.join("cgroup.kill").exists() {
            let _ = fs::remove_dir(&cgroup);
            bail!("this kernel has no cgroup.kill (it needs Linux 5.14 or newer): enforce could not kill the tree if agentguard died");
        }
        let unlimited = limit_tasks(&root, &cgroup, max_tasks);
        let (r, w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating a pipe")?;
        let (held, links) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("creating a socket pair")?;
        // SAFETY: single-threaded here; the child only waits, receives, writes and exits.
        match unsafe { fork() }.context("fork")? {
            ForkResult::Child => {
                drop(w);
                drop(links);
                close_other_fds(&[r.as_raw_fd(), held.as_raw_fd()]);
                // Nor agentguard's standard streams: a pipe agentguard wrote to must end
                // when agentguard does, and the user's terminal is none of its business.
                // SAFETY: descriptors of this fresh child.
                unsafe {
                    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                    if null >= 0 {
                        for fd in 0..3 {
                            libc::dup2(null, fd);
                        }
                        if null > 2 {
                            libc::close(null);
                        }
                    }
                }
                // Not in the tree's process group: a terminal's Ctrl-C must not kill it.
                let _ = nix::unistd::setsid();
                // Opened now: nothing the tree does later (a limit of 0 open files, were it
                // allowed) keeps the watchdog from killing it.
                let kill = fs::OpenOptions::new()
                    .write(true)
                    .open(cgroup.join("cgroup.kill"));
                let procs = fs::File::open(cgroup.join("cgroup.procs"));
                // The links agentguard hands over, kept open (never used) until the end,
                // and the map of the tree's processes.
                let mut kept: Vec<OwnedFd> = Vec::new();
                let mut set = None;
                receive_links(&held, &mut kept, &mut set);
                let mut f = fs::File::from(r);
                let mut b = [0u8; 1];
                let _ = f.read(&mut b); // returns when agentguard is gone
                if let Some(m) = &set {
                    kill_process_set(m);
                }
                kill_cgroup(&cgroup, kill.ok(), procs.ok());
                drop(kept);
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { .. } => {
                drop(r);
                drop(held);
                Ok(Watchdog {
                    cgroup,
                    unlimited,
                    _alive: w,
                    links,
                })
            }
        }
    }

    /// Hands the watchdog a copy of every BPF link agentguard holds now (the sensor's
    /// tracepoints, the LSM or cgroup programs): they stay attached while it lives; and
    /// `procs`, the sensor's map of the tree's processes; and `keep`, a descriptor that must
    /// stay open until the tree is dead (the hook socket, whose name the profile's rules
    /// admit: freed while the tree lives, another process could take the name). Then closes
    /// the channel, which lets the watchdog go on to wait for agentguard's end.
    pub fn hold_links(
        &self,
        procs: std::os::fd::BorrowedFd<'_>,
        keep: Option<std::os::fd::BorrowedFd<'_>>,
    ) -> Result<usize> {
        // One message: its tag ('M' the map, 'L' descriptors to keep, 'E' the end) and
        // the descriptors it hands over.
        let send = |tag: &[u8], fds: &[i32]| {
            let rights = [ControlMessage::ScmRights(fds)];
            let cmsg: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
            let iov = [std::io::IoSlice::new(tag)];
            sendmsg::<()>(self.links.as_raw_fd(), &iov, cmsg, MsgFlags::empty(), None)
        };
        if let Some(k) = keep {
            send(b"L", &[k.as_raw_fd()]).context("handing the hook socket to the watchdog")?;
        }
        send(b"M", &[procs.as_raw_fd()]).context("handing the process map to the watchdog")?;
        let fds = bpf_links().context("listing agentguard's BPF links")?;
        for chunk in fds.chunks(250) {
            send(b"L", chunk).context("handing the BPF links to the watchdog")?;
        }
        send(b"E", &[]).context("handing the BPF links to the watchdog")?;
        Ok(fds.len())
    }

    /// Moves a process into the tree's cgroup.
    pub fn adopt(&self, pid: u32) -> Result<()> {
        fs::write(self.cgroup.join("cgroup.procs"), pid.to_string())
            .with_context(|| format!("moving pid {pid} into {}", self.cgroup.display()))
    }
}

/// The descriptors of this process that are BPF links.
fn bpf_links() -> Result<Vec<i32>> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc/self/fd")? {
        let e = e?;
        let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if fs::read_link(e.path()).is_ok_and(|t| t.as_os_str() == "anon_inode:bpf_link") {
            out.push(fd);
        }
    }
    Ok(out)
}

/// In the watchdog: takes links, and the process map ("M"), until agentguard says it is
/// done ("E") or goes away.
fn receive_links(sock: &OwnedFd, kept: &mut Vec<OwnedFd>, set: &mut Option<OwnedFd>) {
    use std::os::fd::FromRawFd;
    loop {
        let mut buf = [0u8; 1];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 250]);
        let Ok(msg) = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        ) else {
            return;
        };
        if msg.bytes == 0 {
            return; // agentguard closed the channel (it died, or had nothing to hand)
        }
        let mut got: Vec<OwnedFd> = Vec::new();
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    // SAFETY: descriptors just received, owned by nothing else here.
                    got.extend(
                        fds.into_iter()
                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    );
                }
            }
        }
        if buf[0] == b'M' {
            *set = got.into_iter().next();
        } else {
            kept.extend(got);
        }
        if buf[0] == b'E' {
            return;
        }
    }
}

fn close_other_fds(keep: &[i32]) {
    if let Ok(dir) = fs::read_dir("/proc/self/fd") {
        let fds: Vec<i32> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        for fd in fds {
            if fd > 2 && !keep.contains(&fd) {
                // SAFETY: closing descriptors this fresh child does not use.
                unsafe { libc::close(fd) };
            }
        }
    }
}

/// The sensor's map value for a process (events.h, struct ag_proc).
#[repr(C)]
#[derive(Default)]
struct Proc {
    start_ns: u64,
    start_ticks: u64,
    flags: u32,
    pad: u32,
}

/// Kills each process of the map that is still the process the map tracked: its start
/// time, read through a pidfd taken first (so that the pid cannot be reused in between),
/// is the one the map holds.
fn kill_process_set(map: &OwnedFd) {
    use libbpf_rs::libbpf_sys::{bpf_map_get_next_key, bpf_map_lookup_elem};
    let tick_ns = crate::attach::tick_ns();
    // The keys first: the sensor deletes entries as processes die, and a walk from a
    // deleted key starts over. Bounded by far more than the map holds.
    let mut keys = Vec::new();
    let (mut key, mut next) = (0u32, 0u32);
    for i in 0..(1 << 20) {
        let prev: *const libc::c_void = if i == 0 {
            std::ptr::null()
        } else {
            (&key as *const u32).cast()
        };
        // SAFETY: key and next are u32, the map's key size.
        if unsafe { bpf_map_get_next_key(map.as_raw_fd(), prev, (&mut next as *mut u32).cast()) }
            != 0
        {
            break;
        }
        key = next;
        keys.push(key);
    }
    keys.sort_unstable();
    keys.dedup();
    for pid in keys {
        // Probe keys of the fork check (enforce.bpf.c) are not processes.
        if pid == 0 || pid >= 0xff00_0000 {
            continue;
        }
        let mut v = Proc::default();
        // SAFETY: v is the map's value layout.
        if unsafe {
            bpf_map_lookup_elem(
                map.as_raw_fd(),
                (&pid as *const u32).cast(),
                (&mut v as *mut Proc).cast(),
            )
        } != 0
        {
            continue;
        }
        let want = if v.start_ns != 0 {
            v.start_ns / tick_ns
        } else {
            v.start_ticks
        };
        // SAFETY: pidfd_open takes a pid and flags.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            continue;
        }
        // SAFETY: a descriptor pidfd_open just returned.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
        if crate::attach::start_ticks(pid).is_ok_and(|t| t == want) {
            // SAFETY: a pidfd this process holds; no siginfo.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
        }
    }
}

fn kill_cgroup(cgroup: &Path, kill: Option<fs::File>, procs: Option<fs::File>) {
    use std::io::{Seek, Write};
    match kill {
        Some(mut k) => {
            let _ = k.write_all(b"1");
        }
        None => {
            let _ = fs::write(cgroup.join("cgroup.kill"), "1");
        }
    }
    let mut procs = procs;
    for _ in 0..200 {
        // Empty only when the kernel says so: an unreadable list is not an empty one.
        let empty = match procs.as_mut() {
            Some(p) => {
                let mut s = String::new();
                p.seek(std::io::SeekFrom::Start(0)).is_ok()
                    && p.read_to_string(&mut s).is_ok()
                    && s.trim().is_empty()
            }
            None => fs::read_to_string(cgroup.join("cgroup.procs"))
                .map(|s| s.trim().is_empty())
                .unwrap_or(false),
        };
        if empty && fs::remove_dir(cgroup).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
