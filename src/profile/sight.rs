//! How much of a run's LLM traffic agentguard saw: whether payload was captured at all,
//! the LLM calls it read, and the TLS it could not read. Kept per run in the profile, so
//! that diff can tell a run whose model traffic went dark from one that made no calls.
use std::collections::BTreeSet;

use super::RunInfo;
use crate::event::{Event, Kind, TlsStatus};

/// Blind spots kept per run: a tree that loads many libraries says no more.
const UNREAD_MAX: usize = 16;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sight {
    /// Payload was captured (not --no-llm, not an older log that does not say).
    pub captured: bool,
    pub calls: u64,
    /// "exe: library" per process speaking TLS agentguard does not read (a library it does
    /// not probe, or HTTP/2).
    pub unread: BTreeSet<String>,
}

impl Sight {
    pub fn observe(&mut self, ev: &Event) {
        match &ev.kind {
            Kind::Start { llm, .. } => self.captured = *llm,
            Kind::LlmRequest(_) => self.calls += 1,
            Kind::Tls(t) if self.unread.len() < UNREAD_MAX => {
                let what = match t.status {
                    // A ClientHello from code no probe covers: the executable's own TLS.
                    TlsStatus::Uncovered if t.library == ev.exe => "TLS linked in",
                    TlsStatus::Uncovered => &t.library,
                    TlsStatus::Unparsed => "HTTP/2",
                    TlsStatus::Covered | TlsStatus::Unseen => return,
                };
                let exe = crate::paths::printable(&ev.exe);
                self.unread
                    .insert(format!("{exe}: {}", crate::paths::printable(what)));
            }
            _ => {}
        }
    }

    pub fn fill(&self, run: &mut RunInfo) {
        run.llm_calls = self.captured.then_some(self.calls);
        run.tls_unread = self.unread.iter().cloned().collect();
    }

    /// What a recorded run's profile says it saw.
    pub fn of_run(run: &RunInfo) -> Sight {
        Sight {
            captured: run.llm_calls.is_some(),
            calls: run.llm_calls.unwrap_or(0),
            unread: run.tls_unread.iter().cloned().collect(),
        }
    }
}
