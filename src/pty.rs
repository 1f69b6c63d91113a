//! The tree's own terminal. A process with a descriptor of the user's terminal can push
//! input into it (TIOCSTI) that the user's shell runs after agentguard has exited, or read
//! what the user types next. So, as sudo does with use_pty, the tree gets a
//! pseudo-terminal of its own in a session of its own, and agentguard relays between it
//! and the user's terminal: the tree never holds a descriptor of the real one. What it
//! prints passes through src/escapes.rs on the way.
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{openpty, Winsize};
use nix::sys::termios::{self, SetArg, Termios};

/// Which of standard input, output and error are a terminal: those the tree gets the
/// pseudo-terminal for; the others it inherits as they are (a pipe, a file).
pub fn ttys() -> [bool; 3] {
    // SAFETY: isatty only asks about a descriptor number.
    [0, 1, 2].map(|fd| unsafe { libc::isatty(fd) } == 1)
}

/// The pseudo-terminal before the fork: the child takes `slave`, the parent `master`.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    pub on: [bool; 3],
}

impl Pty {
    /// A pseudo-terminal sized and set up like the user's terminal, when standard input,
    /// output or error is one; None otherwise (then the tree has no terminal at all).
    pub fn open() -> Result<Option<Pty>> {
        let on = ttys();
        let Some(user) = on.iter().position(|t| *t) else {
            return Ok(None);
        };
        let user = user as RawFd;
        let size = winsize(user);
        let mode = termios::tcgetattr(unsafe { std::os::fd::BorrowedFd::borrow_raw(user) }).ok();
        let p = openpty(size.as_ref(), mode.as_ref()).context("opening a pseudo-terminal")?;
        Ok(Some(Pty {
            master: p.master,
            slave: p.slave,
            on,
        }))
    }

    /// In the child, before exec: a new session whose controlling terminal is the slave,
    /// on the standard descriptors that were a terminal. Async-signal-safe calls only.
    pub fn attach_child(&self) {
        // SAFETY: system calls on descriptors this fresh child owns.
        unsafe {
            libc::setsid();
            libc::ioctl(self.slave.as_raw_fd(), libc::TIOCSCTTY, 0);
            for fd in 0..3 {
                if self.on[fd as usize] {
                    libc::dup2(self.slave.as_raw_fd(), fd);
                }
            }
            libc::close(self.slave.as_raw_fd());
            libc::close(self.master.as_raw_fd());
        }
    }

    /// In the parent, after the fork: relay until the tree's last holder of the slave is
    /// gone. Standard input is put in raw mode (restored on drop) when agentguard is in
    /// the terminal's foreground; in the background it is not read at all.
    pub fn relay(self) -> Result<Relay> {
        let Pty { master, slave, on } = self;
        drop(slave);
        let stop = Arc::new(AtomicBool::new(false));
        let foreground =
            on[0] && nix::unistd::tcgetpgrp(std::io::stdin()).ok() == Some(nix::unistd::getpgrp());
        let saved = if foreground {
            let t = termios::tcgetattr(std::io::stdin()).context("reading the terminal's mode")?;
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &raw)
                .context("putting the terminal in raw mode")?;
            Some(t)
        } else {
            None
        };
        let out_fd = master
            .try_clone()
            .context("duplicating the pseudo-terminal")?;
        let to_user = std::thread::spawn(move || {
            let mut m = std::fs::File::from(out_fd);
            let mut buf = [0u8; 8192];
            let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
            // Sequences that act beyond the screen (the clipboard, files, answers typed
            // back) do not reach the user's terminal: src/escapes.rs.
            let mut filter = crate::escapes::Filter::default();
            let mut passed = Vec::with_capacity(buf.len());
            loop {
                match m.read(&mut buf) {
                    // EIO: every descriptor of the slave is closed.
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let w: &mut dyn Write = if on[1] { &mut out } else { &mut err };
                        passed.clear();
                        filter.feed(&buf[..n], &mut passed);
                        if w.write_all(&passed).and_then(|_| w.flush()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        if foreground {
            let in_fd = master
                .try_clone()
                .context("duplicating the pseudo-terminal")?;
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut m = std::fs::File::from(in_fd);
                let stdin = std::io::stdin();
                let mut buf = [0u8; 1024];
                while !stop.load(Ordering::Relaxed) {
                    // Woken now and then to notice the end, so that keys typed after the
                    // tree has gone stay with the user's shell.
                    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
                    match poll(&mut fds, PollTimeout::from(100u16)) {
                        Ok(0) => continue,
                        Ok(_) => {}
                        Err(nix::errno::Errno::EINTR) => continue,
                        Err(_) => break,
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match nix::unistd::read(&stdin, &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if m.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
        Ok(Relay {
            master,
            user: on.iter().position(|t| *t).unwrap_or(0) as RawFd,
            saved,
            stop,
            to_user: Some(to_user),
        })
    }
}

pub struct Relay {
    master: OwnedFd,
    user: RawFd,
    saved: Option<Termios>,
    stop: Arc<AtomicBool>,
    to_user: Option<JoinHandle<()>>,
}

impl Relay {
    /// The user's terminal changed size (SIGWINCH): so does the tree's.
    pub fn resize(&self) {
        if let Some(ws) = winsize(self.user) {
            // SAFETY: TIOCSWINSZ reads one Winsize from a valid pointer.
            unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        }
    }

    /// The tree is done: let its last output through (bounded: a daemon the tree left
    /// behind may hold the terminal open), then give the terminal back.
    pub fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.to_user.take() {
            let until = Instant::now() + Duration::from_millis(500);
            while !h.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
        self.restore();
    }

    fn restore(&mut self) {
        if let Some(t) = self.saved.take() {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &t);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.restore();
    }
}

fn winsize(fd: RawFd) -> Option<Winsize> {
    let mut ws: Winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one Winsize into a valid pointer.
    (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0).then_some(ws)
}
