//! The summary on standard error at the end of a run: what the tree did, in counts, what
//! enforcement denied or admitted, what the sensor lost and what was written.
use crate::diff::{report, rules::Severity, Finding};
use crate::profile::Builder;
use crate::sensor::Stats;

pub struct Summary<'a> {
    pub command: &'a str,
    pub exit: i32,
    pub seconds: f64,
    pub interrupted: bool,
    pub builder: &'a Builder,
    /// LLM calls and tool calls seen.
    pub llm: (u64, u64),
    /// Whether syscalls were decoded (not under a bare enforce).
    pub syscalls: bool,
    /// Under enforce: whether auditing, and how many denials came.
    pub enforcing: Option<(bool, u64)>,
    /// Under enforce --deny-at: the level, and what was admitted below it.
    pub admitted: Option<(Severity, &'a [Finding])>,
    pub stats: Stats,
    pub decode_errors: u64,
    /// Processes of the tree still running at the end.
    pub leftover: usize,
    pub warnings: &'a [String],
    /// What was written, as said to the user.
    pub outputs: &'a [String],
}

impl Summary<'_> {
    pub fn text(&self) -> String {
        let b = self.builder;
        let mut s = String::new();
        let how = if self.interrupted {
            "interrupted".to_string()
        } else {
            format!("exit {}", self.exit)
        };
        let did = if self.enforcing.is_some() {
            "enforced"
        } else {
            "recorded"
        };
        s.push_str(&format!(
            "agentguard: {did} {} ({how}, {:.2} s)\n",
            self.command, self.seconds
        ));
        for (what, n) in [
            ("processes", b.processes),
            ("execs", b.execs()),
            ("files", b.files() as u64),
            ("connections", b.connections() as u64),
            ("DNS names", b.dns_names() as u64),
            ("flagged", b.flags() as u64),
            ("LLM calls", self.llm.0),
            ("tool calls", self.llm.1),
            ("tools", b.tools() as u64),
            ("failed calls", b.failures),
            ("lost events", self.stats.lost),
        ] {
            s.push_str(&format!("  {what:<13}{n:>8}\n"));
        }
        if !self.syscalls {
            s.push_str(
                "  (files, connections and DNS were not recorded: add -o or --events to record them)\n",
            );
        }
        if let Some((audit, denials)) = self.enforcing {
            let what = if audit { "would deny" } else { "denied" };
            s.push_str(&format!("  {what:<13}{denials:>8}\n"));
        }
        if let Some((level, admitted)) = self.admitted {
            s.push_str(&format!("  {:<13}{:>8}\n", "allowed", admitted.len()));
            if !admitted.is_empty() {
                s.push_str(&format!(
                    "  allowed beyond the profile, rated below {} (record with -o and merge into the baseline to make them part of it):\n",
                    level.name()
                ));
                for f in admitted {
                    s.push_str(&format!(
                        "    {:<7}{} [{}]\n",
                        f.severity.name(),
                        report::finding_line(f),
                        f.rule
                    ));
                }
            }
        }
        s.push_str(&self.warnings_text());
        for o in self.outputs {
            s.push_str(&format!("  wrote {o}\n"));
        }
        s
    }

    fn warnings_text(&self) -> String {
        let mut s = String::new();
        if self.stats.procs_untracked > 0 {
            s.push_str(&format!(
                "  warning: {} processes could not be tracked (process map full: raise --max-procs)\n",
                self.stats.procs_untracked
            ));
        }
        if self.stats.lost > self.stats.denials_lost {
            s.push_str("  warning: events were lost (ring buffer full: raise --ring-buffer-mb); the profile is incomplete\n");
        }
        if self.stats.denials_lost > 0 {
            let (what, did) = match self.enforcing {
                Some((true, _)) => ("would-be denials", "allowed, as --audit allows everything"),
                _ => ("denials", "still refused"),
            };
            s.push_str(&format!(
                "  warning: {} {what} were not reported (the denials ring was full): the calls were {did}, but the log and the count above miss them\n",
                self.stats.denials_lost
            ));
        }
        if self.decode_errors > 0 {
            s.push_str(&format!(
                "  warning: {} records could not be decoded\n",
                self.decode_errors
            ));
        }
        if self.leftover > 0 {
            s.push_str(&format!(
                "  note: {} processes of the tree are still running and are no longer recorded\n",
                self.leftover
            ));
        }
        for w in self.warnings {
            s.push_str(&format!("  warning: {w}\n"));
        }
        s
    }
}
