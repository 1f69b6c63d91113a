//! Processes found from /proc: a running process and its existing descendants, to attach
//! to, and a process's identity there (its start time in clock ticks).
use std::collections::{HashMap, VecDeque};

use anyhow::{bail, Context, Result};

/// A process already running when tracking began.
#[derive(Debug, Clone)]
pub struct Existing {
    pub pid: u32,
    /// Its parent in the tree; 0 for the root (whose parent is not followed).
    pub ppid: u32,
    pub start_ticks: u64,
    pub exe: String,
}

/// `root` and every descendant, parents before children.
pub fn tree_of(root: u32) -> Result<Vec<Existing>> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut info: HashMap<u32, (u64, String)> = HashMap::new();
    for p in procfs::process::all_processes().context("listing /proc")? {
        let Ok(p) = p else { continue };
        // A process may exit while we look: skip it, it is no longer there to follow.
        let Ok(stat) = p.stat() else { continue };
        let exe = p
            .exe()
            .map(|e| e.display().to_string())
            .unwrap_or_else(|_| format!("[{}]", stat.comm));
        children
            .entry(stat.ppid as u32)
            .or_default()
            .push(stat.pid as u32);
        info.insert(stat.pid as u32, (stat.starttime, exe));
    }
    if !info.contains_key(&root) {
        bail!("no process with pid {root}");
    }
    let mut out = Vec::new();
    let mut queue = VecDeque::from([(root, 0)]);
    while let Some((pid, ppid)) = queue.pop_front() {
        if let Some((start_ticks, exe)) = info.get(&pid) {
            out.push(Existing {
                pid,
                ppid,
                start_ticks: *start_ticks,
                exe: exe.clone(),
            });
        }
        if let Some(kids) = children.get(&pid) {
            queue.extend(kids.iter().map(|&k| (k, pid)));
        }
    }
    Ok(out)
}

/// Whether `pid` is still the process that started at `start_ticks`.
pub fn alive(pid: u32, start_ticks: Option<u64>) -> bool {
    match procfs::process::Process::new(pid as i32).and_then(|p| p.stat()) {
        Ok(stat) => start_ticks.is_none_or(|t| stat.starttime == t) && stat.state != 'Z',
        Err(_) => false,
    }
}

/// One clock tick of /proc's start times, in nanoseconds: start_ticks' unit, and how
/// the kernel side turns a task's start_boottime into it.
pub fn tick_ns() -> u64 {
    // SAFETY: sysconf has no preconditions.
    1_000_000_000 / (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64)
}

/// Field 22 of /proc/PID/stat: the start time in clock ticks since boot.
pub fn start_ticks(pid: u32) -> Result<u64> {
    let stat = procfs::process::Process::new(pid as i32)
        .and_then(|p| p.stat())
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    Ok(stat.starttime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_child_of_this_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let tree = tree_of(std::process::id()).unwrap();
        assert_eq!(tree[0].pid, std::process::id());
        assert!(
            tree.iter()
                .any(|e| e.pid == child.id() && e.exe.ends_with("sleep")),
            "{tree:?}"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!alive(child.id(), None));
        assert!(tree_of(u32::MAX - 1).is_err());
    }
}
