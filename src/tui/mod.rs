//! `agentguard watch`: a terminal UI of a tree's processes, events, findings and denials.
//! This release replays a kept event log; the live view of a running tree is next.
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
    let events = read_jsonl(&args.replay)?;
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
    let mut app = App::new(
        format!("agentguard watch {}", args.replay.display()),
        checker,
    );
    let n = events.len();
    for ev in events {
        app.on_event(ev);
    }
    app.done = Some(format!("replayed {n} events: q to quit"));
    // ratatui::init restores the terminal on panic too.
    let mut terminal = ratatui::init();
    let result = (|| -> Result<()> {
        loop {
            terminal.draw(|f| ui::draw(f, &app)).context("drawing")?;
            if event::poll(Duration::from_millis(250)).context("reading the terminal")? {
                if let TermEvent::Key(k) = event::read().context("reading the terminal")? {
                    if k.kind == KeyEventKind::Press && app.on_key(k) {
                        return Ok(());
                    }
                }
            }
        }
    })();
    ratatui::restore();
    result.map(|_| 0)
}

#[cfg(test)]
mod tests;
