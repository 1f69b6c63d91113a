//! Denials as enforcement reports them: a line on standard error for each new one, the
//! same one again counted and given at the end, so a loop that retries does not flood the
//! terminal.
use std::collections::HashMap;

use super::{cause_suffix, say};
use crate::diff::{report, Proc};
use crate::event::{Deny, Event};
use crate::paths::printable;
use crate::tree::Tree;

/// Distinct denial lines counted rather than printed again; past this many, each prints:
/// a tree that makes every denial different costs a line each, not a growing search.
const DISTINCT: usize = 4096;

#[derive(Default)]
pub struct Denials {
    /// Denials (or, under audit, would-be denials) reported by enforcement.
    pub count: u64,
    /// Each line printed, with how many times the same denial came.
    lines: Vec<(String, u64)>,
    index: HashMap<String, usize>,
}

impl Denials {
    /// Counts a denial and, with `print`, prints it the first time it comes. Under the UI
    /// (`print` false) the denial shows there: a line on stderr would tear the screen.
    pub fn observe(&mut self, ev: &Event, d: &Deny, tree: &Tree, print: bool) {
        self.count += 1;
        if !print {
            return;
        }
        let what = if d.enforced { "DENIED" } else { "WOULD DENY" };
        let access = if d.access.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                crate::diff::rules::names(&d.access.iter().copied().collect())
            )
        };
        // The same denial (what, object, access, reason) again: counted, not printed. By
        // program too: a denial of another program is printed, not counted.
        let same = format!(
            "{what} {} {}{access} by {}: {}",
            d.op,
            d.object,
            printable(&ev.exe),
            d.reason
        );
        match self.index.get(&same) {
            Some(&i) => {
                self.lines[i].1 += 1;
                return;
            }
            None if self.lines.len() < DISTINCT => {
                self.index.insert(same.clone(), self.lines.len());
                self.lines.push((same, 1));
            }
            None => {}
        }
        let chain = report::chain(
            &tree
                .chain(ev.pid)
                .into_iter()
                .map(|(pid, exe)| Proc { pid, exe })
                .collect::<Vec<_>>(),
        );
        let cause = cause_suffix(ev.cause.as_ref());
        // One line whatever the names hold: a newline in a name must not forge a line of
        // agentguard's own.
        say(&printable(&format!(
            "agentguard: {what} {} {}{access} by {chain}: {}{cause}",
            d.op, d.object, d.reason
        )));
    }

    /// At the end: each denial that came more than once, with how many times.
    pub fn print_repeats(&self) {
        for (line, n) in self.lines.iter().filter(|(_, n)| *n > 1) {
            say(&printable(&format!(
                "agentguard: {line} ({n} times in all; printed once)"
            )));
        }
    }
}
