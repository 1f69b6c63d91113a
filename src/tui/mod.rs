//! `agentguard watch`: a terminal UI of a tree's processes, events, findings and denials,
//! live (record's loop feeds it, see record.rs) or replayed from a kept event log.
pub mod app;
pub mod ui;

use std::time::Duration;

use anyhow::{Context, Result};
use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};

use crate::cli::WatchArgs;
use crate::diff::Checker;
use crate::event::{read_jsonl, Kind};
use crate::profile::{Profile, Vars};
use app::App;

pub fn run(args: WatchArgs) -> Result<i32> {
    let Some(replay) = &args.replay else {
        // Live: record's loop, with the UI in front.
        let rargs = crate::cli::RecordArgs {
            output: None,
            events: args.events.clone(),
            pid: args.pid,
            ring_buffer_mb: 64,
            max_procs: 65536,
            baseline: args.baseline.clone(),
            fail_on: crate::cli::FailOn::Never,
            merge_into: None,
            tui: true,
            output_log: args.output_log.clone(),
            quiet: false,
            llm: args.llm,
            command: args.command.clone(),
        };
        return crate::record::run(rargs, None);
    };
    let events = read_jsonl(replay)?;
    let vars = events
        .iter()
        .find_map(|e| match &e.kind {
            Kind::Start { cwd, home, .. } => Some(Vars {
                cwd: cwd.clone(),
                home: home.clone(),
            }),
            _ => None,
        })
        .unwrap_or_else(Vars::from_env);
    let checker = match &args.baseline {
        Some(b) => Some(Checker::new(&Profile::load(b)?, b, vars)?),
        None => None,
    };
    let mut app = App::new(format!("agentguard watch {}", replay.display()), checker);
    let n = events.len();
    for ev in events {
        app.on_event(ev);
    }
    app.done = Some(format!("replayed {n} events: q to quit"));
    // ratatui::init restores the terminal on panic too.
    let mut terminal = ratatui::init();
    let result = (|| -> Result<()> {
        loop {
            if step(&mut terminal, &mut app, Duration::from_millis(250))? {
                return Ok(());
            }
        }
    })();
    ratatui::restore();
    result.map(|_| 0)
}

/// Draws the UI, then handles the keys that arrive within `wait`; true when the user quits.
/// Drawing once per step, not once per event, is what keeps up with a busy tree.
pub fn step(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    wait: Duration,
) -> Result<bool> {
    // A terminal that hung up reads as endless end-of-file, on which the event reader
    // would spin: treat it as a quit.
    if terminal_gone() {
        return Ok(true);
    }
    terminal.draw(|f| ui::draw(f, app)).context("drawing")?;
    let mut wait = wait;
    // A bounded number per step: a terminal that went away can report input forever, and
    // the next draw is what notices it (an error, and agentguard ends).
    for _ in 0..64 {
        if !event::poll(wait).context("reading the terminal")? {
            break;
        }
        // Readable may mean hung up: the reader would then wait forever for an event.
        if terminal_gone() {
            return Ok(true);
        }
        if let TermEvent::Key(k) = event::read().context("reading the terminal")? {
            if k.kind == KeyEventKind::Press && app.on_key(k) {
                return Ok(true);
            }
        }
        wait = Duration::ZERO;
    }
    Ok(false)
}

fn terminal_gone() -> bool {
    let mut p = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

#[cfg(test)]
mod tests;
