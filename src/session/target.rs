//! The tree a session follows: a command it starts, held before its first instruction
//! until it is in scope, or a running process it attaches to with its descendants.
use anyhow::Result;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::enforce::watchdog::Watchdog;
use crate::pipeline::Pipeline;
use crate::pty::Relay;
use crate::sensor::Sensor;

pub enum Target {
    Command(Vec<String>),
    Pid(u32),
}

/// How the command starts (record's and enforce's options).
pub struct Launch<'a> {
    /// Under the watch UI: where the command's output goes (the UI has the terminal).
    pub output_log: Option<&'a std::path::Path>,
    /// Under enforce: no_new_privs, and with Landlock the ruleset it restricts itself with.
    pub enforcing: bool,
    pub landlock: Option<std::os::fd::RawFd>,
    pub quiet: bool,
    /// `--user`: who the command runs as.
    pub user: Option<&'a crate::user::RunAs>,
    /// Under enforce: what the watchdog keeps open until the tree is dead (the hook socket).
    pub keep: Option<std::os::fd::BorrowedFd<'a>>,
}

/// The tree, in scope.
pub struct Started {
    /// The command agentguard started, to wait for (none when attached).
    pub child: Option<Pid>,
    /// The command's own terminal, relayed to the user's.
    pub relay: Option<Relay>,
    /// Processes found in /proc when attaching, until they are seen to have died.
    pub pending: Vec<(u32, u64)>,
    /// The command as a person would type it, or the attached pid and its program.
    pub command: String,
    /// Interrupts (Ctrl-C, SIGTERM, ...) received so far: the third stops agentguard.
    pub interrupts: u32,
}

/// Puts the tree in scope before it can do anything: the sensor tracks it, the watchdog
/// holds it in its cgroup, the pipeline knows its root. None when the command could not
/// start (said why; exit 127).
pub fn start(
    target: &Target,
    how: &Launch,
    sensor: &mut Sensor,
    watchdog: Option<&Watchdog>,
    pipe: &mut Pipeline,
) -> Result<Option<Started>> {
    match target {
        Target::Command(argv) => {
            let mut c = crate::launch::spawn_gated(
                argv,
                how.output_log,
                how.enforcing,
                how.landlock,
                how.user,
            )?;
            let pid = c.pid.as_raw() as u32;
            let ticks = crate::attach::start_ticks(pid)?;
            sensor.track(pid, ticks)?;
            if let Some(w) = watchdog {
                w.adopt(pid)?;
            }
            let me = std::env::current_exe().map(|p| p.display().to_string());
            pipe.add_root(pid, &me.unwrap_or_default());
            pipe.root = pid;
            if let Some(w) = watchdog {
                // From here the kernel side outlives agentguard until the tree is dead.
                w.hold_links(sensor.procs_fd(), how.keep)?;
            }
            let pty = c.pty.take();
            if let Err(e) = c.release() {
                let _ = waitpid(Pid::from_raw(pid as i32), None);
                eprintln!("agentguard: {e:#}");
                return Ok(None);
            }
            Ok(Some(Started {
                child: Some(Pid::from_raw(pid as i32)),
                relay: pty.map(crate::pty::Pty::relay).transpose()?,
                pending: Vec::new(),
                command: shell_words(argv),
                interrupts: 0,
            }))
        }
        Target::Pid(root) => attach(*root, how.quiet, sensor, watchdog, pipe).map(Some),
    }
}

fn attach(
    root: u32,
    quiet: bool,
    sensor: &mut Sensor,
    watchdog: Option<&Watchdog>,
    pipe: &mut Pipeline,
) -> Result<Started> {
    let tree = crate::attach::tree_of(root)?;
    if let Some(w) = watchdog {
        w.hold_links(sensor.procs_fd(), None)?;
    }
    let mut pending = Vec::new();
    for p in &tree {
        sensor.track(p.pid, p.start_ticks)?;
        if let Some(w) = watchdog {
            // A process of the tree that exited since the tree was listed (a short-lived
            // child) has nothing left to move: not a reason to fail.
            if let Err(e) = w.adopt(p.pid) {
                if crate::attach::alive(p.pid, Some(p.start_ticks)) {
                    return Err(e);
                }
            }
        }
        pipe.add_existing(p.pid, p.ppid, &p.exe);
        pending.push((p.pid, p.start_ticks));
    }
    pipe.root = root;
    if !quiet {
        eprintln!(
            "agentguard: recording pid {root} and {} descendants; Ctrl-C to stop",
            tree.len() - 1
        );
    }
    Ok(Started {
        child: None,
        relay: None,
        pending,
        command: format!("--pid {root} ({})", tree[0].exe),
        interrupts: 0,
    })
}

/// The command line as a person would type it.
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn shell_words_quotes_what_needs_it() {
        assert_eq!(
            super::shell_words(&["python3".into(), "a b".into(), "it's".into(), "x=1".into()]),
            r"python3 'a b' 'it'\''s' x=1"
        );
    }
}
