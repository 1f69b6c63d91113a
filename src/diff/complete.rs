//! A gate never passes on missing data: the run diff checks must be whole before a single
//! finding is rated. An event log starts with its
//! start record and ends with its end record, which counts the lines before it; a log
//! cut short (agentguard killed, a full disk, a truncated upload), one the sensor could
//! not fill (lost or undecodable records, untracked processes) or one that stopped while
//! the tree ran is an error, not an empty run. The end record shows completeness, not
//! authenticity: whoever can write the file can write a whole one.
use std::path::Path;

use anyhow::{bail, Result};

use crate::event::{Event, Kind};
use crate::profile::Profile;

/// What a recording could not see, from its end record or its profile's run (record
/// fills one in for its live gate).
pub struct Gaps {
    pub lost: u64,
    pub untracked: u64,
    pub running: u64,
    pub undecoded: u64,
}

impl Gaps {
    /// Nothing missing: a gate may pass on it.
    pub fn whole(&self) -> bool {
        self.check("", false).is_ok()
    }

    /// `partial`: a recording that stopped while the tree ran is accepted (--pid).
    fn check(&self, what: &str, partial: bool) -> Result<()> {
        let Gaps {
            lost,
            untracked,
            running,
            undecoded,
        } = self;
        if *lost > 0 || *untracked > 0 || *undecoded > 0 {
            bail!(
                "{what} is incomplete: the sensor lost {lost} records, {undecoded} could not be decoded and {untracked} processes could not be tracked (raise --ring-buffer-mb or --max-procs and record again)"
            );
        }
        if *running > 0 && !partial {
            bail!(
                "{what} stopped while {running} processes of the tree still ran: what they did next is not in it (a --pid recording ended with Ctrl-C: diff --partial judges what was recorded)"
            );
        }
        Ok(())
    }
}

pub fn events(path: &Path, evs: &[Event], partial: bool) -> Result<()> {
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
        running,
        decode_errors,
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
    if let Some(i) = evs[1..evs.len() - 1]
        .iter()
        .position(|e| matches!(e.kind, Kind::Start { .. } | Kind::End { .. }))
    {
        bail!(
            "{p}:{}: a second start or end record: more than one recording in one log",
            i + 2
        );
    }
    // The counters only grow: a loss record past what the end counts is a log that
    // contradicts itself, and a gate believes neither.
    for (i, e) in evs.iter().enumerate() {
        if let Kind::Lost {
            lost: l,
            procs_untracked: u,
        } = e.kind
        {
            if l > *lost || u > *procs_untracked {
                bail!(
                    "{p}:{}: a loss record counts more ({l} events lost, {u} processes untracked) than the end record ({lost}, {procs_untracked}): the log contradicts itself",
                    i + 1
                );
            }
        }
    }
    Gaps {
        lost: *lost,
        untracked: *procs_untracked,
        running: *running,
        undecoded: *decode_errors,
    }
    .check(&format!("{p}: the recording"), partial)
}

/// A profile as the run: recorded (it has runs) and whole. (A baseline needs neither: what
/// it lacks shows as findings.)
pub fn profile(path: &Path, p: &Profile, role: &str, partial: bool) -> Result<()> {
    let d = path.display();
    if p.runs == 0 || p.run_info.is_empty() {
        bail!("{d}: the {role} has no recorded runs (runs = {}): a gate needs what a recording saw (agentguard record -o {role}.toml -- COMMAND)", p.runs);
    }
    for r in &p.run_info {
        Gaps {
            lost: r.lost_events,
            untracked: r.procs_untracked,
            running: r.running,
            undecoded: r.decode_errors,
        }
        .check(&format!("{d}: the {role}'s run {}", r.id), partial)?;
    }
    Ok(())
}
