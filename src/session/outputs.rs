//! What a session writes: the profile (-o), the baseline it learns into (--merge-into) and
//! the event log (--events). All are named, and their directories opened, before the tree
//! starts (src/output.rs), so the tree can plant nothing in them and a wrong path fails
//! before the run.
use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::RecordArgs;
use crate::event::JsonlWriter;
use crate::output::Output;
use crate::profile::{merge, Profile};

pub type EventLog = JsonlWriter<BufWriter<std::fs::File>>;

pub struct Outputs {
    profile: Option<(PathBuf, Output)>,
    /// The baseline learned into, and what it held before the run (none: it starts here).
    baseline: Option<(PathBuf, Output, Option<Profile>)>,
    events: Option<PathBuf>,
    /// Neither -o nor a baseline, nor enforcing or watching: the profile goes to stdout.
    print_profile: bool,
}

impl Outputs {
    /// Prepares every output; the event log is opened now, for the pipeline to write.
    pub fn prepare(args: &RecordArgs, enforcing: bool) -> Result<(Outputs, Option<EventLog>)> {
        let profile = match &args.output {
            Some(p) => Some((p.clone(), Output::prepare(p)?)),
            None => None,
        };
        // The baseline is read now too: what the tree does to the file during the run
        // does not become part of it, and a broken baseline fails before the run.
        let baseline = match &args.merge_into {
            Some(b) => {
                let out = Output::prepare(b)?;
                let before = if b.exists() {
                    Some(Profile::load(b)?)
                } else {
                    None
                };
                Some((b.clone(), out, before))
            }
            None => None,
        };
        let log = match &args.events {
            Some(p) => Some(JsonlWriter::new(BufWriter::with_capacity(
                1 << 20,
                crate::output::create_stream(p)?,
            ))),
            None => None,
        };
        let print_profile =
            args.output.is_none() && args.merge_into.is_none() && !enforcing && !args.watch;
        let outputs = Outputs {
            profile,
            baseline,
            events: args.events.clone(),
            print_profile,
        };
        Ok((outputs, log))
    }

    /// Writes the run's profile where it goes, and ends the event log (`events` written,
    /// or the first write error). Returns what was written, as the summary says it.
    pub fn write(
        self,
        profile: &Profile,
        log: Option<(EventLog, Option<anyhow::Error>)>,
        events: u64,
    ) -> Result<Vec<String>> {
        let mut said = Vec::new();
        if let Some((path, out, before)) = self.baseline {
            // Learn as you go: the baseline gains this run (a missing baseline starts here).
            let merged = match before {
                Some(b) => merge::merge(&[
                    (b, path.display().to_string()),
                    (profile.clone(), "this run".into()),
                ])?,
                None => profile.clone(),
            };
            merged.save_to(&out)?;
            said.push(format!("{} ({} runs)", path.display(), merged.runs));
        }
        if let Some((path, out)) = self.profile {
            profile.save_to(&out)?;
            said.push(path.display().to_string());
        }
        if self.print_profile {
            crate::output::stdout(&profile.to_toml()?, "the profile")?;
        }
        if let Some((w, error)) = log {
            if let Some(e) = error {
                return Err(e).context("writing the event log");
            }
            w.finish().context("writing the event log")?;
            let path = self.events.map(|p| p.display().to_string());
            said.push(format!("{} ({events} events)", path.unwrap_or_default()));
        }
        Ok(said)
    }
}
