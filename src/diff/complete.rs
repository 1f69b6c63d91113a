//! A gate never passes on missing data: the run diff checks, and the baseline it checks
//! against, must be whole before a single finding is rated. An event log starts with its
//! start record and ends with its end record, which counts the lines before it; a log
//! cut short (agentguard killed, a full disk, a truncated upload) or one the sensor could
//! not fill (lost records) is an error, not an empty run.
use std::path::Path;

use anyhow::{bail, Result};

use crate::event::{Event, Kind};
use crate::profile::Profile;

pub fn events(path: &Path, evs: &[Event]) -> Result<()> {
    let p = path.display();
    let Some(first) = evs.first() else {
        bail!("{p}: the event log is empty: nothing was recorded, so there is nothing a gate could pass");
    };
    if !matches!(first.kind, Kind::Start { .. }) {
        bail!("{p}:1: the first record is not the recording's start: not a whole agentguard event log");
    }
    let Some(Kind::End {
        events,
        lost,
        procs_untracked,
        ..
    }) = evs.last().map(|e| &e.kind)
    else {
        bail!(
            "{p}:{}: the log ends without its end record: the recording was cut short (agentguard killed, a full disk, a truncated file)",
            evs.len()
        );
    };
    let before = evs.len() as u64 - 1;
    if *events != before {
        bail!(
            "{p}:{}: the end record counts {events} records before it, the file has {before}: records are missing or were added",
            evs.len()
        );
    }
    if let Some(i) = evs[..evs.len() - 1].iter().position(|e| {
        matches!(e.kind, Kind::Start { .. } | Kind::End { .. }) && !std::ptr::eq(e, first)
    }) {
        bail!(
            "{p}:{}: a second start or end record: more than one recording in one log",
            i + 1
        );
    }
    if *lost > 0 || *procs_untracked > 0 {
        bail!(
            "{p}: the recording is incomplete: the sensor lost {lost} records and could not track {procs_untracked} processes (raise --ring-buffer-mb or --max-procs and record again)"
        );
    }
    Ok(())
}

/// A profile as the run, or as the baseline: recorded (it has runs) and whole.
pub fn profile(path: &Path, p: &Profile, role: &str) -> Result<()> {
    let d = path.display();
    if p.runs == 0 || p.run_info.is_empty() {
        bail!("{d}: the {role} has no recorded runs (runs = {}): a gate needs what a recording saw (agentguard record -o {role}.toml -- COMMAND)", p.runs);
    }
    if let Some(r) = p.run_info.iter().find(|r| r.lost_events > 0) {
        bail!(
            "{d}: the {role} is incomplete: its run {} lost {} events (record it again with a larger --ring-buffer-mb)",
            r.id, r.lost_events
        );
    }
    Ok(())
}
