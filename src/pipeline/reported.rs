//! Tool calls the agent reports through its hook (hook.rs), into the pipeline as its
//! process's `llm.tool_call` events, marked reported.
use std::time::{Duration, Instant};

use super::Pipeline;
use crate::event::{Kind, ToolCall};
use crate::hook::Received;
use crate::tree::Tree;

/// How long a report of a process of the tree waits for the tree to show its sender (its
/// fork and exec were in the ring before it sent; lost records may never show them).
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
            self.hook_refused();
            return r.reply;
        }
        self.hooks_waiting.push((Instant::now(), r));
        None
    }

    fn hook_refused(&mut self) {
        self.hooks_refused += 1;
        let w = "tool calls reported to this recording's hook socket by processes outside the tree (or too many at once) were dropped".to_string();
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
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
        for (at, r) in std::mem::take(&mut self.hooks_waiting) {
            // The tree's own process, by the kernel: it is taken once the tree has its
            // ancestry to name the agent, or, with records lost, as its own after WAIT.
            if !self.tree.knows(r.pid) && now.duration_since(at) < wait {
                self.hooks_waiting.push((at, r));
                continue;
            }
            self.take_report(&r);
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
