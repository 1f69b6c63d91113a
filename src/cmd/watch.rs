//! `agentguard watch`: the terminal UI, on a live session or on a kept event log.
use std::time::Duration;

use anyhow::{bail, Result};

use crate::cli::WatchArgs;
use crate::diff::Checker;
use crate::event::read_jsonl;
use crate::pipeline::{source::Log, Pipeline};
use crate::profile::{Profile, Vars};
use crate::tui::app::App;

pub fn run(args: WatchArgs) -> Result<i32> {
    if let Some(why) = crate::tui::need_terminal("watch") {
        bail!("{why}");
    }
    let Some(replay) = &args.replay else {
        // Live: a session, with the UI in front.
        let rargs = crate::cli::RecordArgs {
            output: None,
            events: args.events.clone(),
            pid: args.pid,
            ring_buffer_mb: crate::sensor::RING_MB,
            max_procs: crate::sensor::MAX_PROCS,
            baseline: args.baseline.clone(),
            fail_on: crate::cli::FailOn::Never,
            merge_into: None,
            tui: true,
            watch: true,
            output_log: args.output_log.clone(),
            quiet: false,
            user: args.user.clone(),
            llm: args.llm,
            otlp: args.otlp.clone(),
            command: args.command.clone(),
        };
        return crate::session::run(rargs, None);
    };
    if args.otlp.otlp.is_some() {
        bail!("--otlp sends a live run as it happens; a replay is not sent");
    }
    let events = read_jsonl(replay)?;
    let n = events.len();
    // Through the pipeline a live watch uses: the same findings, causes included.
    let mut pipe = Pipeline::replaying(&events, Vars::from_env());
    if let Some(b) = &args.baseline {
        let vars = pipe.builder.vars().clone();
        pipe.findings.checker = Some(Checker::new(&Profile::load(b)?, b, vars)?);
    }
    pipe.tui = Some(App::new(format!("agentguard watch {}", replay.display())));
    Log::new(events).drain(&mut pipe);
    // The pipeline stays: the UI shows the processes of its tree.
    let app = pipe.tui.as_mut().expect("the UI was put in the pipeline");
    app.done = Some(format!("replayed {n} events: q to quit"));
    // ratatui::init restores the terminal on panic too.
    let mut terminal = ratatui::init();
    let result = (|| -> Result<()> {
        loop {
            if crate::tui::step(&mut terminal, app, &pipe.tree, Duration::from_millis(250))? {
                return Ok(());
            }
        }
    })();
    ratatui::restore();
    result.map(|_| 0)
}
