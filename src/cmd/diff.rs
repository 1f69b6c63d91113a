//! `agentguard diff`: a run (an event log or a profile) against a baseline, and the gate.
use std::path::Path;

use anyhow::{bail, Context as _, Result};

use crate::cli::DiffArgs;
use crate::diff::{behaviour, complete, gate, report, Checker};
use crate::event::{read_jsonl, Event};
use crate::pipeline::{source::Log, Pipeline};
use crate::profile::{Profile, Vars};

pub fn run(args: DiffArgs) -> Result<i32> {
    // The baseline needs no recorded runs: a hand-written profile is a baseline too, and
    // what a baseline lacks is reported as findings, never passed over.
    let baseline = Profile::load(&args.baseline)?;
    let input = RunInput::load(&args.run, args.partial)?;
    // ${CWD} and ${HOME} mean the run's launch directory and home, wherever diff runs.
    let mut vars = input.vars().unwrap_or_else(Vars::from_env);
    if let Some(c) = &args.cwd {
        vars.cwd = Some(c.display().to_string());
    }
    if let Some(h) = &args.home {
        vars.home = Some(h.display().to_string());
    }
    let checker = Checker::new(&baseline, &args.baseline, vars)?;
    let checker = input
        .check(checker, &args.run)
        .with_context(|| format!("reading the run {}", args.run.display()))?;
    let (findings, missing) = checker.finish();
    let failed = gate(args.fail_on, &findings);
    let r = report::Report {
        baseline: args.baseline.display().to_string(),
        baseline_runs: baseline.runs,
        run: args.run.display().to_string(),
        fail_on: args.fail_on,
        failed,
        findings,
        missing,
    };
    report::print(&r, args.format)?;
    Ok(i32::from(failed))
}

/// The run being checked: an event log (which names processes) or a profile.
pub(super) enum RunInput {
    Events(Vec<Event>),
    Profile(Profile),
}

impl RunInput {
    /// `partial`: a recording that stopped while its tree ran is accepted (--partial).
    pub(super) fn load(path: &Path, partial: bool) -> Result<RunInput> {
        if !path.exists() {
            bail!("{}: no such file", path.display());
        }
        if path
            .extension()
            .is_some_and(|e| e == "jsonl" || e == "json")
        {
            let evs = read_jsonl(path)?;
            complete::events(path, &evs, partial)?;
            Ok(RunInput::Events(evs))
        } else {
            let p = Profile::load(path)?;
            complete::profile(path, &p, "run", partial)?;
            Ok(RunInput::Profile(p))
        }
    }

    /// The recording's id: a profile's [[run]], a log's start record.
    pub(super) fn run_id(&self) -> Option<String> {
        match self {
            RunInput::Events(evs) => evs.iter().find_map(|e| match &e.kind {
                crate::event::Kind::Start { run, .. } => run.clone(),
                _ => None,
            }),
            RunInput::Profile(p) => p.run_info.first().map(|r| r.id.clone()),
        }
    }

    /// What ${CWD} and ${HOME} stood for when the run was recorded.
    pub(super) fn vars(&self) -> Option<Vars> {
        match self {
            RunInput::Events(evs) => crate::pipeline::replay::recorded_vars(evs),
            RunInput::Profile(p) => p.run_info.first().map(|r| Vars {
                cwd: r.cwd.clone(),
                home: r.home.clone(),
            }),
        }
    }

    pub(super) fn check(self, mut checker: Checker, origin: &Path) -> Result<Checker> {
        let p = match self {
            RunInput::Events(evs) => {
                // Through the pipeline the live run used: the same findings, causes
                // included. The checker goes in and comes back with what it found.
                let mut pipe = Pipeline::replaying(&evs, checker.vars().clone());
                pipe.findings.checker = Some(checker);
                Log::new(evs).drain(&mut pipe);
                return Ok(pipe
                    .findings
                    .checker
                    .take()
                    .expect("the checker stays in the pipeline"));
            }
            RunInput::Profile(p) => p,
        };
        checker.sight_of(&p.run_info);
        for (what, count) in behaviour(&p, checker.vars(), origin)? {
            checker.check(&what, count, None);
        }
        // A run profile's volumes: each endpoint's bytes in its run (no order: no sequence).
        for e in p.http.iter().filter(|e| e.learned) {
            let what = crate::diff::http_what(e);
            use crate::profile::volume::total;
            checker.exchange(
                &what,
                (total(&e.sent), total(&e.received), e.switches),
                None,
                None,
            );
        }
        // And what its files and sockets moved, for the entries that name one file or
        // one destination (a pattern names no file the baseline's patterns can be tried on).
        for io in crate::diff::run_io(&p, checker.vars()) {
            checker.io(&io, None, None);
        }
        Ok(checker)
    }
}
