//! A kept event log as the pipeline's source, where a live session's is the ring buffer.
//! The log holds what the first stages made (DNS names, LLM calls and each event's tool
//! call, Landlock's denials), so a replayed event enters after them: the profile builder,
//! then the sinks, as it did live. `diff run.jsonl` and `watch --replay` read logs this
//! way, so their findings are the live run's, tool-call causes included.
use super::source::Log;
use super::Pipeline;
use crate::event::{Event, Kind};
use crate::profile::{Builder, Profile, RunInfo, Vars};
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

/// The profile of a kept log's run, as its recording wrote it: the events through the
/// profile builder; the [[run]] from the start and end records (the caller checked that
/// the log is whole). A log from before start records named their run gets an id of its
/// start time and root, the same each time it is read.
pub fn profile_of(events: Vec<Event>) -> Profile {
    let start = events.iter().find_map(|e| match &e.kind {
        Kind::Start {
            command,
            run,
            cwd,
            home,
            ..
        } => Some((e, command.clone(), run.clone(), cwd.clone(), home.clone())),
        _ => None,
    });
    let end = events.iter().rev().find_map(|e| match &e.kind {
        Kind::End {
            exit,
            lost,
            procs_untracked,
            running,
            decode_errors,
            ..
        } => Some((
            e.ts,
            *exit,
            *lost,
            *procs_untracked,
            *running,
            *decode_errors,
        )),
        _ => None,
    });
    let (first_ts, first_pid) = events
        .first()
        .map_or((Default::default(), 0), |e| (e.ts, e.pid));
    let (ts, pid, command, run, cwd, home) = match start {
        Some((e, c, r, cwd, home)) => (e.ts, e.pid, c, r, cwd, home),
        None => (first_ts, first_pid, String::new(), None, None, None),
    };
    let started = humantime::format_rfc3339_seconds(ts.time()).to_string();
    let id =
        run.unwrap_or_else(|| format!("log {} {pid}", humantime::format_rfc3339_nanos(ts.time())));
    let (end_ts, _, lost, untracked, running, undecoded) = end.unwrap_or((ts, 0, 0, 0, 0, 0));
    let seconds = ((end_ts.secs_f64() - ts.secs_f64()).max(0.0) * 1000.0).round() / 1000.0;
    let vars = Vars {
        cwd: cwd.clone(),
        home: home.clone(),
    };
    let mut pipe = Pipeline::replaying(&events, vars);
    Log::new(events).drain(&mut pipe);
    pipe.builder.finish(RunInfo {
        id,
        command,
        started,
        seconds,
        exit: end.map(|e| e.1),
        lost_events: lost,
        procs_untracked: untracked,
        running,
        decode_errors: undecoded,
        cwd,
        home,
        // The builder's, from the log's events.
        llm_calls: None,
        tls_unread: Vec::new(),
    })
}

/// What ${CWD} and ${HOME} stood for when the log was recorded.
pub fn recorded_vars(events: &[Event]) -> Option<Vars> {
    // As Vars::from_env takes them: an absolute directory other than `/`; a log that says
    // otherwise (written by hand, or by the tree) gets no variable.
    let usable = |p: &Option<String>| {
        p.as_ref()
            .filter(|p| p.starts_with('/') && p.as_str() != "/")
            .map(|p| p.trim_end_matches('/').to_string())
    };
    events.iter().find_map(|e| match &e.kind {
        Kind::Start { cwd, home, .. } => Some(Vars {
            cwd: usable(cwd),
            home: usable(home),
        }),
        _ => None,
    })
}
