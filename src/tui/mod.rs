//! `agentguard watch`: a terminal UI of a tree's processes, events, findings and denials,
//! live (a session's pipeline feeds it, src/session) or replayed from a kept event log
//! (src/cmd/watch.rs).
pub mod app;
pub mod ui;

use std::time::Duration;

use anyhow::{Context, Result};
use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};

use crate::tree::Tree;
use app::App;

/// The UI draws on standard output and reads keys from standard input: both must be a
/// terminal. Drawn into a pipe it would wait for a `q` nobody can type.
pub fn need_terminal(what: &str) -> Option<String> {
    use std::io::IsTerminal;
    let missing = match (
        std::io::stdin().is_terminal(),
        std::io::stdout().is_terminal(),
    ) {
        (true, true) => return None,
        (false, true) => "standard input is not a terminal",
        (true, false) => "standard output is not a terminal",
        (false, false) => "neither standard input nor standard output is a terminal",
    };
    Some(format!(
        "{what} needs a terminal ({missing}); without one, use agentguard record (--events FILE.jsonl keeps every event)"
    ))
}

/// Draws the UI of the run whose process tree is `tree`, then handles the keys that arrive within `wait`; true when the user quits.
/// Drawing once per step, not once per event, is what keeps up with a busy tree.
pub fn step(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    tree: &Tree,
    wait: Duration,
) -> Result<bool> {
    // A terminal that hung up reads as endless end-of-file, on which the event reader
    // would spin: treat it as a quit.
    if terminal_gone() {
        return Ok(true);
    }
    // A page is the events pane's height: the screen less the header, footer and borders.
    let height = terminal
        .size()
        .context("reading the terminal's size")?
        .height;
    app.page = usize::from(height.saturating_sub(6)).max(1);
    terminal
        .draw(|f| ui::draw(f, app, tree))
        .context("drawing")?;
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
            if k.kind == KeyEventKind::Press && app.on_key(k, tree) {
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
