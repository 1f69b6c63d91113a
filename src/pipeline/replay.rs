//! A kept event log as the pipeline's source, where a live session's is the ring buffer.
//! The log holds what the first stages made (DNS names, LLM calls and each event's tool
//! call, Landlock's denials), so a replayed event enters after them: the profile builder,
//! then the sinks, as it did live. `diff run.jsonl` and `watch --replay` read logs this
//! way, so their findings are the live run's, tool-call causes included.
use super::Pipeline;
use crate::event::{Event, Kind};
use crate::profile::{Builder, Vars};
use crate::sensor::decode::Decoder;

impl Pipeline {
    /// A pipeline for a replay of `events`, with the ${CWD} and ${HOME} of their start
    /// record (`fallback` without one). No live lines: a replay's sinks report at the end.
    pub fn replaying(events: &[Event], fallback: Vars) -> Pipeline {
        let vars = recorded_vars(events).unwrap_or(fallback);
        let mut p = Pipeline::new(Decoder::new(0), Builder::new(vars));
        p.print = false;
        p
    }

    /// One event of a kept log.
    pub(super) fn replay(&mut self, ev: Event) {
        self.handle_one(ev);
    }
}

/// What ${CWD} and ${HOME} stood for when the log was recorded.
pub fn recorded_vars(events: &[Event]) -> Option<Vars> {
    events.iter().find_map(|e| match &e.kind {
        Kind::Start { cwd, home, .. } => Some(Vars {
            cwd: cwd.clone(),
            home: home.clone(),
        }),
        _ => None,
    })
}
