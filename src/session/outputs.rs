//! What a session writes: the profile (-o), the baseline it learns into (--merge-into) and
//! the event log (--events). All are named, and their directories opened, before the tree
//! starts (src/output.rs), so the tree can plant nothing in them and a wrong path fails
//! before the run.
use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::cli::RecordArgs;
use crate::event::JsonlWriter;
use crate::output::Output;
use crate::profile::{merge, Profile};

pub type EventLog = JsonlWriter<BufWriter<crate::spool::Stream>>;

pub struct Outputs {
    profile: Option<(PathBuf, Output)>,
    /// The baseline learned into, and what it held before the run (none: it starts here).
    baseline: Option<(PathBuf, Output, Option<Profile>)>,
    events: Option<PathBuf>,
    /// Neither -o nor a baseline, nor enforcing or watching: the profile goes to stdout.
    print_profile: bool,
}

/// `--events -` (or a path that is standard output's file, /dev/stdout): the event stream
/// goes to standard output, the command's output to --output-log.
pub fn events_to_stdout(args: &RecordArgs) -> bool {
    args.events
        .as_deref()
        .is_some_and(|p| p == std::path::Path::new("-") || is_stdout(p))
}

/// Whether `path` is, following links, the file standard output is.
fn is_stdout(path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(p), Ok(o)) = (
        std::fs::metadata(path),
        nix::sys::stat::fstat(std::io::stdout()),
    ) else {
        return false;
    };
    p.dev() == o.st_dev && p.ino() == o.st_ino
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
        let print_profile =
            args.output.is_none() && args.merge_into.is_none() && !enforcing && !args.watch;
        let log = match &args.events {
            Some(_) if events_to_stdout(args) => {
                if args.tui {
                    bail!("--events - streams the events to standard output, which the terminal UI takes: name a file");
                }
                if print_profile {
                    bail!("--events - streams the events to standard output, where record writes the profile without -o: name the profile with -o or --merge-into");
                }
                // The tree's output in the stream would be lines it wrote as agentguard's.
                if is_stdout(&args.output_log) {
                    bail!("--events - streams the events to standard output, and --output-log {} is standard output too: the command's output would be in the stream", args.output_log.display());
                }
                use std::os::fd::AsFd;
                let out = std::io::stdout()
                    .as_fd()
                    .try_clone_to_owned()
                    .context("standard output")?;
                Some(std::fs::File::from(out))
            }
            Some(p) => Some(crate::output::create_stream(p)?),
            None => None,
        }
        .map(|f| -> Result<EventLog> {
            let out = crate::spool::Stream::new(f).context("the event log")?;
            Ok(JsonlWriter::new(BufWriter::with_capacity(1 << 20, out)))
        })
        .transpose()?;
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
            w.finish()
                .and_then(|b| b.into_inner().map_err(|e| e.into_error().into()))
                .and_then(|s| Ok(s.close()?))
                .context("writing the event log")?;
            let path = match self.events {
                Some(p) if p.as_os_str() == "-" => "standard output".to_string(),
                p => p.map(|p| p.display().to_string()).unwrap_or_default(),
            };
            said.push(format!("{path} ({events} events)"));
        }
        Ok(said)
    }
}
