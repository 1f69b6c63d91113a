//! Starting the command so that it is in scope before its first instruction: the child is
//! forked, waits on a pipe while the parent puts it in scope, and only then execs.
use std::ffi::CString;
use std::os::fd::OwnedFd;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::{execvp, fork, pipe2, read, write, ForkResult, Pid};

/// Marks an errno from the child's Landlock step (errno values are far below it).
const LANDLOCK_FAILED: i32 = 1 << 30;
/// Marks an errno from the child's step to --user.
const USER_FAILED: i32 = 1 << 29;

pub struct GatedChild {
    pub pid: Pid,
    /// The tree's own terminal, when agentguard runs on one: relay it after the release.
    pub pty: Option<crate::pty::Pty>,
    go: OwnedFd,
    exec_err: OwnedFd,
    name: String,
}

/// Forks `argv` but holds it before exec until `release`. With `output`, the command's
/// standard output and error go to that file and its input is /dev/null (the terminal
/// belongs to the watch UI). Either way the command starts a session of its own, and
/// holds no descriptor of the user's terminal (src/pty.rs).
/// With `no_new_privs` (enforce), the child sets it after the release and before exec: a
/// setuid program or file capabilities give the tree nothing (sudo, pkexec). With
/// `landlock`, it also restricts itself with that ruleset. If it cannot, it does not run.
/// With `user`, the child becomes that user before exec (and gets its HOME), and the
/// tree's terminal is made its own.
pub fn spawn_gated(
    argv: &[String],
    output: Option<&std::path::Path>,
    no_new_privs: bool,
    landlock: Option<std::os::fd::RawFd>,
    user: Option<&crate::user::RunAs>,
) -> Result<GatedChild> {
    let out = match output {
        Some(p) => Some(crate::output::create_stream(p)?),
        None => None,
    };
    let null = match output {
        Some(_) => Some(std::fs::File::open("/dev/null").context("opening /dev/null")?),
        None => None,
    };
    let Some(name) = argv.first() else {
        bail!("no command to run")
    };
    let cargs: Vec<CString> = argv
        .iter()
        .map(|a| {
            CString::new(a.as_bytes())
                .with_context(|| format!("argument {a:?} contains a NUL byte"))
        })
        .collect::<Result<_>>()?;
    let pty = match output {
        Some(_) => None,
        None => crate::pty::Pty::open()?,
    };
    let env = user.map(crate::user::RunAs::environment).transpose()?;
    if let (Some(u), Some(p)) = (user, &pty) {
        // Its terminal: a program that opens /dev/tty again must be let in.
        nix::unistd::fchown(&p.slave, Some(u.uid), Some(u.gid))
            .context("giving the terminal to --user")?;
    }
    // Built before the fork: the child only installs them.
    let filters = match landlock {
        Some(_) => crate::enforce::seccomp::filters()?,
        None => Vec::new(),
    };
    let (go_r, go_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating a pipe")?;
    let (err_r, err_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating a pipe")?;
    // SAFETY: agentguard is single-threaded here (libbpf starts no threads), and the child
    // only calls async-signal-safe functions before exec.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            drop(go_w);
            drop(err_r);
            // Undo what agentguard set for itself: its blocked signals and Rust's SIGPIPE.
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
            // SAFETY: restoring the default disposition is always sound.
            let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
            if let (Some(o), Some(n)) = (&out, &null) {
                use std::os::fd::AsRawFd;
                // SAFETY: duplicating descriptors this child owns onto its standard ones.
                unsafe {
                    libc::dup2(n.as_raw_fd(), 0);
                    libc::dup2(o.as_raw_fd(), 1);
                    libc::dup2(o.as_raw_fd(), 2);
                }
            }
            // Not agentguard's session or process group: the tree cannot signal them as
            // a group, and a terminal's job control does not mix the two.
            match &pty {
                Some(p) => p.attach_child(),
                None => {
                    let _ = nix::unistd::setsid();
                }
            }
            let mut b = [0u8; 1];
            if !matches!(read(&go_r, &mut b), Ok(1)) {
                // The parent gave up (or died) before putting us in scope: never run unseen.
                unsafe { libc::_exit(127) };
            }
            if let Some(u) = user {
                if let Err(e) = u.become_user() {
                    let _ = write(&err_w, &((e as i32) | USER_FAILED).to_ne_bytes());
                    unsafe { libc::_exit(126) }
                }
            }
            if no_new_privs || landlock.is_some() {
                // SAFETY: two system calls on values this child owns; async-signal-safe.
                let failed = unsafe {
                    libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                        || landlock.is_some_and(|fd| {
                            libc::syscall(libc::SYS_landlock_restrict_self, fd, 0) != 0
                        })
                        || (landlock.is_some()
                            && crate::enforce::seccomp::drop_capabilities().is_err())
                        || crate::enforce::seccomp::install(&filters).is_err()
                };
                if failed {
                    let e = nix::errno::Errno::last() as i32 | LANDLOCK_FAILED;
                    let _ = write(&err_w, &e.to_ne_bytes());
                    unsafe { libc::_exit(126) }
                }
            }
            // Nothing agentguard inherited or opened reaches the tree beyond its standard
            // streams (a descriptor of the user's terminal, of a BPF object).
            // SAFETY: one system call on this child's own descriptor table.
            unsafe {
                libc::syscall(
                    libc::SYS_close_range,
                    3u32,
                    u32::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                )
            };
            let e = match &env {
                Some(env) => nix::unistd::execvpe(&cargs[0], &cargs, env).unwrap_err(),
                None => execvp(&cargs[0], &cargs).unwrap_err(),
            };
            let _ = write(&err_w, &(e as i32).to_ne_bytes());
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => Ok(GatedChild {
            pid: child,
            pty,
            go: go_w,
            exec_err: err_r,
            name: name.clone(),
        }),
    }
}

impl GatedChild {
    /// Lets the child exec; returns once it has (or reports why it could not).
    pub fn release(self) -> Result<()> {
        write(&self.go, &[1]).context("starting the command")?;
        drop(self.go);
        let mut buf = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match read(&self.exec_err, &mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).context("waiting for the command to start"),
            }
        }
        if got == 4 {
            let raw = i32::from_ne_bytes(buf);
            let errno = nix::errno::Errno::from_raw(raw & !(LANDLOCK_FAILED | USER_FAILED));
            if raw & USER_FAILED != 0 {
                bail!(
                    "the command could not become --user ({}): it was not run",
                    errno.desc()
                );
            }
            if raw & LANDLOCK_FAILED != 0 {
                bail!(
                    "the command could not be restricted with Landlock ({}): it was not run",
                    errno.desc()
                );
            }
            bail!("cannot run `{}`: {}", self.name, errno.desc());
        }
        Ok(())
    }
}
