//! Tool calls the agent reports through its hook (hook.rs), into the pipeline as its
//! process's `llm.tool_call` events, marked reported.
use std::time::{Duration, Instant};

use super::Pipeline;
use crate::event::{Kind, ToolCall};
use crate::hook::Received;
use crate::tree::Tree;

/// How long a report of a process of the tree waits for the tree to show its sender (its
/// fork and exec were in the ring before it sent; lost records may never show them, and
/// the report is then dropped, said, rather than put on a process the tree cannot place).
const WAIT: Duration = Duration::from_secs(2);
/// Reports waiting at most: more are dropped at once.
const WAITING_MAX: usize = 256;

impl Pipeline {
    /// A report, with the process that sent it (the kernel said who) and whether the
    /// kernel tracked that process as the tree's when the report was read: the hook
    /// waits for its answer, so its pid was still its own then, however long the loop
    /// takes after. Taken only from a process of the tree, as its agent's: the nearest
    /// ancestor of the hook that is no shell (Claude Code runs a hook through `sh -c`).
    /// A call the agent's traffic showed is not said twice. Reports from processes
    /// outside the tree are dropped at once, and said.
    pub fn hook(&mut self, r: Received, of_tree: bool) -> Option<Vec<u8>> {
        if !of_tree || self.hooks_waiting.len() >= WAITING_MAX {
            self.hook_refused("tool calls reported to this recording's hook socket by processes outside the tree (or too many at once) were dropped");
            return r.reply;
        }
        // The sender lives now: an exited process the tree shows under its pid is an
        // earlier one's, whose ancestry is not the sender's (pid reuse).
        let stale = self.tree.knows(r.pid) && !self.tree.is_live(r.pid);
        self.hooks_waiting.push((Instant::now(), r, stale));
        None
    }

    /// Whether a report waits for its sender's records (the loop reads the ring on).
    pub fn hooks_unplaced(&self) -> bool {
        self.hooks_waiting
            .iter()
            .any(|(_, r, stale)| !self.placed(r.pid, *stale))
    }

    /// The tree shows the sender: live, or exited since (a hook that stopped waiting)
    /// when the pid was not an earlier process's at receipt.
    fn placed(&self, pid: u32, stale: bool) -> bool {
        self.tree.is_live(pid) || (!stale && self.tree.knows(pid))
    }

    fn hook_refused(&mut self, why: &str) {
        self.hooks_refused += 1;
        if !self.warnings.iter().any(|w| w == why) {
            self.warnings.push(why.to_string());
        }
    }

    /// Takes in the reports whose sender the tree now shows (the rest wait, at most WAIT);
    /// returns where their hooks wait for the answer that they were taken.
    pub fn hooks_due(&mut self) -> Vec<Vec<u8>> {
        self.hooks_taken(WAIT)
    }

    /// The recording ends: the tree has said all it will; every report left is taken.
    pub fn hooks_end(&mut self) -> Vec<Vec<u8>> {
        self.hooks_taken(Duration::ZERO)
    }

    fn hooks_taken(&mut self, wait: Duration) -> Vec<Vec<u8>> {
        let now = Instant::now();
        let mut answered = Vec::new();
        for (at, r, stale) in std::mem::take(&mut self.hooks_waiting) {
            // The tree's own process, by the kernel: it is taken once the tree shows it,
            // with the ancestry that names the agent.
            // At the end, the tree has exited: what it shows under the pid is the sender.
            if self.placed(r.pid, stale) || (wait.is_zero() && self.tree.knows(r.pid)) {
                self.take_report(&r);
            } else if now.duration_since(at) < wait {
                self.hooks_waiting.push((at, r, stale));
                continue;
            } else {
                self.hook_refused("tool calls reported by processes of the tree whose records were lost (the recording could not place them) were dropped");
            }
            answered.extend(r.reply);
        }
        answered
    }

    fn take_report(&mut self, r: &Received) {
        let agent = agent_of(&self.tree, r.pid);
        let Some(llm) = &mut self.llm else {
            return;
        };
        let rep = &r.report;
        match rep.event.as_str() {
            "PreToolUse" if !llm.saw_call(agent, &rep.id) => {
                let mut ev = self.own_event(
                    agent,
                    Kind::ToolCall(ToolCall {
                        id: rep.id.clone(),
                        name: rep.name.clone(),
                        arguments: crate::llm::redact::bounded(&rep.arguments, 4096),
                        api: "hook".into(),
                        host: String::new(),
                        steered: None,
                        reported: true,
                    }),
                );
                if let Some(llm) = &mut self.llm {
                    llm.reported(&mut ev);
                }
                self.handle(ev);
            }
            "PostToolUse" => llm.call_done(agent, &rep.id),
            _ => {}
        }
    }
}

/// The agent a hook process reports for: its nearest ancestor that is no shell.
fn agent_of(tree: &Tree, hook: u32) -> u32 {
    const SHELLS: [&str; 5] = ["sh", "bash", "dash", "zsh", "env"];
    let mut cur = tree.parent(hook).unwrap_or(hook);
    for _ in 0..16 {
        let exe = tree.exe_of(cur);
        let base = exe.rsplit('/').next().unwrap_or(exe);
        match tree.parent(cur) {
            Some(p) if SHELLS.contains(&base) => cur = p,
            _ => break,
        }
    }
    cur
}
