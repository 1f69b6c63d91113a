//! The process tree as the events describe it: who forked whom, who runs what. One tree per
//! run, kept by the pipeline and read by every stage: the decoder names each event's
//! executable from it, attribution walks it to the agent process whose tool call is open,
//! the builder asks whether a ptrace target is ours, and the sinks print a process's
//! ancestry. A process stays in the tree after it exits, so its children's events still
//! find their ancestors; a pid reused by a later fork is replaced by that fork.
use std::collections::HashMap;

use crate::event::{Event, Kind};

#[derive(Debug, Clone)]
struct Proc {
    ppid: u32,
    exe: String,
    /// Its exit was seen: kept for its children's ancestry, no longer a live process.
    exited: bool,
}

impl Proc {
    fn new(ppid: u32, exe: &str) -> Proc {
        Proc {
            ppid,
            exe: exe.to_string(),
            exited: false,
        }
    }
}

/// What a successful exec made its process run: from that event on, its name.
pub fn executed(kind: &Kind) -> Option<&str> {
    match kind {
        Kind::Exec(x) if x.error.is_none() => Some(&x.path),
        _ => None,
    }
}

#[derive(Debug, Default, Clone)]
pub struct Tree {
    procs: HashMap<u32, Proc>,
    /// Each process's forks, for re-parenting when a pid is reused (entries whose parent
    /// has since changed are skipped then).
    children: HashMap<u32, Vec<u32>>,
}

impl Tree {
    /// A root of the tree, for tests (the pipeline adds roots with `add_existing`).
    #[cfg(test)]
    pub fn add_root(&mut self, pid: u32, exe: &str) {
        self.add_existing(pid, 0, exe);
    }

    /// A process already running when tracking began, under its parent in the tree (0:
    /// a root), so an attached tree keeps its shape.
    pub fn add_existing(&mut self, pid: u32, ppid: u32, exe: &str) {
        self.procs.insert(pid, Proc::new(ppid, exe));
        if ppid != 0 {
            self.children.entry(ppid).or_default().push(pid);
        }
    }

    /// Whether `pid` is a process of the tree that has not exited (a pid of one that
    /// did may be anyone's now).
    pub fn is_live(&self, pid: u32) -> bool {
        self.procs.get(&pid).is_some_and(|p| !p.exited)
    }

    /// Whether the tree has seen `pid` at all, running or exited.
    pub fn knows(&self, pid: u32) -> bool {
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
        let me = self
            .procs
            .entry(ev.pid)
            .or_insert_with(|| Proc::new(ev.ppid, &ev.exe));
        if let Some(path) = executed(&ev.kind) {
            me.exe = path.to_string();
        }
        if matches!(ev.kind, Kind::Exit { .. }) {
            me.exited = true;
        }
        // A process is never its own child: such a record is forged or garbled.
        if let Kind::Fork { child } = ev.kind {
            if child != ev.pid {
                self.reuse(child);
                self.procs.insert(child, Proc::new(ev.pid, &ev.exe));
                self.children.entry(ev.pid).or_default().push(child);
            }
        }
    }

    /// A fork names a pid the tree already holds: that process has exited and the kernel
    /// reused its pid. Its children are handed to its parent, as the kernel reparents
    /// orphans: otherwise they would hang under the new process, and a new process that
    /// descends from them would close a loop in which neither reaches the root.
    fn reuse(&mut self, pid: u32) {
        let Some(old) = self.procs.get(&pid) else {
            return;
        };
        let grandparent = old.ppid;
        let kids = self.children.remove(&pid).unwrap_or_default();
        let mut moved = Vec::new();
        for k in kids {
            if let Some(p) = self.procs.get_mut(&k).filter(|p| p.ppid == pid && k != pid) {
                p.ppid = grandparent;
                moved.push(k);
            }
        }
        if grandparent != 0 {
            self.children.entry(grandparent).or_default().extend(moved);
        }
    }

    /// (pid, exe) of `pid` and its ancestors in the tree, nearest first: at most
    /// CHAIN_MAX of them, each name cut at CHAIN_NAME bytes. Every finding and denial
    /// carries one, so a deep tree of long names (a forged log's, or a tree's on purpose)
    /// must not multiply into gigabytes. A loop of parents ends the walk too.
    pub fn chain(&self, pid: u32) -> Vec<(u32, String)> {
        let mut out: Vec<(u32, String)> = Vec::new();
        let mut cur = pid;
        while let Some(p) = self.procs.get(&cur) {
            out.push((cur, cut(&p.exe)));
            if p.ppid == 0 || out.len() >= CHAIN_MAX || out.iter().any(|(q, _)| *q == p.ppid) {
                break;
            }
            cur = p.ppid;
        }
        out
    }
}

pub const CHAIN_MAX: usize = 32;
pub const CHAIN_NAME: usize = 256;

/// A name cut to CHAIN_NAME bytes, at a character boundary, marked with an ellipsis.
fn cut(name: &str) -> String {
    if name.len() <= CHAIN_NAME {
        return name.to_string();
    }
    let mut end = CHAIN_NAME;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &name[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Errno, Exec};

    fn ev(pid: u32, exe: &str, kind: Kind) -> Event {
        Event {
            ts: Default::default(),
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
            error,
            ..Default::default()
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
        assert!(!t.is_live(99));
        assert!(!t.is_live(11), "exited");
        assert!(t.is_live(12));
    }

    /// 100 forks 200; 200 forks 201 and exits; 201 forks a new 200 (the pid reused),
    /// which forks 202. Every one still reaches the root.
    #[test]
    fn a_reused_pid_hands_its_children_to_its_parent() {
        let mut t = Tree::default();
        t.add_root(100, "/bin/sh");
        t.update(&ev(100, "/bin/sh", Kind::Fork { child: 200 }));
        t.update(&ev(200, "/bin/sh", exec("/bin/bash", None)));
        t.update(&ev(200, "/bin/bash", Kind::Fork { child: 201 }));
        t.update(&ev(201, "/bin/bash", exec("/usr/bin/python3", None)));
        t.update(&ev(201, "/usr/bin/python3", Kind::Fork { child: 200 }));
        t.update(&ev(200, "/usr/bin/python3", exec("/usr/bin/curl", None)));
        t.update(&ev(200, "/usr/bin/curl", Kind::Fork { child: 202 }));
        let pids = |pid| t.chain(pid).into_iter().map(|(p, _)| p).collect::<Vec<_>>();
        assert_eq!(pids(202), vec![202, 200, 201, 100]);
        assert_eq!(t.exe_of(200), "/usr/bin/curl");
        assert_eq!(t.parent(201), Some(100));
    }

    #[test]
    fn a_deep_tree_of_long_names_gives_a_bounded_chain() {
        let mut t = Tree::default();
        let long = "/x".repeat(40_000);
        for pid in 1..1000 {
            t.update(&ev(pid, &long, Kind::Fork { child: pid + 1 }));
        }
        let c = t.chain(1000);
        assert_eq!(c.len(), CHAIN_MAX);
        assert!(c
            .iter()
            .all(|(_, e)| e.len() <= CHAIN_NAME + '…'.len_utf8()));
        assert!(c[0].1.ends_with('…'));
    }

    /// Forks no kernel reports (a process forking itself, two forking each other) make
    /// no loop: the walk ends.
    #[test]
    fn forks_that_would_loop_do_not() {
        let mut t = Tree::default();
        t.update(&ev(1, "/a", Kind::Fork { child: 1 }));
        assert_eq!(t.parent(1), None);
        t.update(&ev(1, "/a", Kind::Fork { child: 2 }));
        t.update(&ev(2, "/a", Kind::Fork { child: 1 }));
        assert_eq!(t.chain(1).len(), 2);
        assert_eq!(t.chain(2).len(), 1);
    }

    /// An attached tree keeps the shape /proc showed: a descendant's chain reaches the
    /// root, and a reused pid still hands the children on.
    #[test]
    fn an_attached_tree_keeps_its_shape() {
        let mut t = Tree::default();
        t.add_existing(100, 0, "/usr/bin/bash");
        t.add_existing(101, 100, "/usr/bin/python3");
        t.add_existing(102, 101, "/usr/bin/cat");
        let pids: Vec<u32> = t.chain(102).into_iter().map(|(p, _)| p).collect();
        assert_eq!(pids, [102, 101, 100]);
        // 101 exited and its pid went to a new fork of the root: 102 is the root's now.
        t.update(&ev(100, "/usr/bin/bash", Kind::Fork { child: 101 }));
        assert_eq!(t.parent(102), Some(100));
    }
}
