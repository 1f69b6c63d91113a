//! The process tree as the events describe it: who forked whom, who runs what. One tree per
//! run, kept by the pipeline and read by every stage: the decoder names each event's
//! executable from it, attribution walks it to the agent process whose tool call is open,
//! the builder asks whether a ptrace target is ours, and the sinks print a process's
//! ancestry. A process stays in the tree after it exits, so its children's events still
//! find their ancestors; a pid reused by a later fork is replaced by that fork.
use std::collections::HashMap;

use crate::event::{Event, Kind};

#[derive(Debug, Default, Clone)]
struct Proc {
    ppid: u32,
    exe: String,
}

#[derive(Debug, Default, Clone)]
pub struct Tree {
    procs: HashMap<u32, Proc>,
}

impl Tree {
    /// A root of the tree: the launched command, or a process already running when
    /// tracking began, with what it runs as far as that is known.
    pub fn add_root(&mut self, pid: u32, exe: &str) {
        self.procs.insert(
            pid,
            Proc {
                ppid: 0,
                exe: exe.to_string(),
            },
        );
    }

    pub fn contains(&self, pid: u32) -> bool {
        self.procs.contains_key(&pid)
    }

    /// What `pid` runs, empty when the tree has never seen it.
    pub fn exe_of(&self, pid: u32) -> &str {
        self.procs.get(&pid).map_or("", |p| p.exe.as_str())
    }

    /// The process `pid` was forked from, if the tree saw the fork.
    pub fn parent(&self, pid: u32) -> Option<u32> {
        self.procs.get(&pid).map(|p| p.ppid).filter(|&p| p != 0)
    }

    /// Takes in what one event says about the tree: a fork adds the child (running its
    /// parent's executable until it execs), a successful exec renames the process.
    pub fn update(&mut self, ev: &Event) {
        // A process whose fork the tree did not see (one running when tracking began)
        // hangs under the parent the kernel reported, when that one is in the tree.
        self.procs.entry(ev.pid).or_insert_with(|| Proc {
            ppid: ev.ppid,
            exe: ev.exe.clone(),
        });
        match &ev.kind {
            Kind::Fork { child } => {
                self.procs.insert(
                    *child,
                    Proc {
                        ppid: ev.pid,
                        exe: ev.exe.clone(),
                    },
                );
            }
            Kind::Exec(x) if x.error.is_none() => {
                if let Some(p) = self.procs.get_mut(&ev.pid) {
                    p.exe = x.path.clone();
                }
            }
            _ => {}
        }
    }

    /// (pid, exe) of `pid` and its ancestors in the tree, nearest first. A cycle (pids
    /// reused within one run) or a chain past 64 ends the walk.
    pub fn chain(&self, pid: u32) -> Vec<(u32, String)> {
        let mut out: Vec<(u32, String)> = Vec::new();
        let mut cur = pid;
        while let Some(p) = self.procs.get(&cur) {
            out.push((cur, p.exe.clone()));
            if p.ppid == 0 || out.len() > 64 || out.iter().any(|(q, _)| *q == p.ppid) {
                break;
            }
            cur = p.ppid;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Errno, Exec};

    fn ev(pid: u32, exe: &str, kind: Kind) -> Event {
        Event {
            ts: String::new(),
            pid,
            tid: pid,
            ppid: 0,
            exe: exe.into(),
            kind,
            cause: None,
        }
    }

    fn exec(path: &str, error: Option<Errno>) -> Kind {
        Kind::Exec(Exec {
            path: path.into(),
            argv: vec![],
            argv_truncated: false,
            cwd: String::new(),
            invoked_as: None,
            script: None,
            via_fd: false,
            unlinked: false,
            error,
        })
    }

    #[test]
    fn forks_and_execs_make_the_tree_and_exits_keep_it() {
        let mut t = Tree::default();
        t.add_root(10, "/usr/bin/agentguard");
        t.update(&ev(
            10,
            "/usr/bin/agentguard",
            exec("/usr/bin/python3", None),
        ));
        t.update(&ev(10, "/usr/bin/python3", Kind::Fork { child: 11 }));
        assert_eq!(t.exe_of(11), "/usr/bin/python3");
        t.update(&ev(11, "/usr/bin/python3", exec("/bin/sh", None)));
        // A failed exec leaves the process what it was.
        t.update(&ev(11, "/bin/sh", exec("/bin/nope", Some(Errno::ENOENT))));
        t.update(&ev(11, "/bin/sh", Kind::Fork { child: 12 }));
        t.update(&ev(
            11,
            "/bin/sh",
            Kind::Exit {
                code: Some(0),
                signal: None,
            },
        ));
        assert_eq!(
            t.chain(12),
            vec![
                (12, "/bin/sh".to_string()),
                (11, "/bin/sh".to_string()),
                (10, "/usr/bin/python3".to_string())
            ]
        );
        assert_eq!(t.parent(12), Some(11));
        assert_eq!(t.parent(10), None);
        assert_eq!(t.exe_of(99), "");
        assert!(!t.contains(99));
    }

    #[test]
    fn a_reused_pid_that_closes_a_loop_ends_the_walk() {
        let mut t = Tree::default();
        t.update(&ev(1, "/a", Kind::Fork { child: 2 }));
        t.update(&ev(2, "/a", Kind::Fork { child: 1 }));
        assert_eq!(t.chain(2).len(), 2);
    }
}
