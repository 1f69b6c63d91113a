//! Live findings: what the tree does that the baseline does not cover (--baseline), and,
//! under enforce --deny-at, what was admitted beyond the profile. Each is printed as it
//! happens, with the process chain and the tool call behind it.
use super::{cause_suffix, say};
use crate::diff::{report, rules::Severity, Checker, Finding};
use crate::event::{Event, Kind};
use crate::profile::What;
use crate::tree::Tree;

#[derive(Default)]
pub struct Findings {
    /// With --baseline: the live check.
    pub checker: Option<Checker>,
    /// enforce --deny-at: the profile as written and the level; what it does not cover
    /// and rates below the level was admitted: each such operation is reported once.
    pub admitting: Option<(Checker, Severity)>,
    pub admitted: Vec<Finding>,
}

impl Findings {
    /// Checks what one event did (`whats`, from the profile builder). Prints each new
    /// finding with `print` (not under the UI); returns the baseline's, for the UI.
    pub fn observe(
        &mut self,
        ev: &Event,
        whats: &[What],
        tree: &Tree,
        print: bool,
    ) -> Option<Finding> {
        let mut finding = None;
        if let Some(c) = &mut self.checker {
            c.observe_run(ev);
            let mut found = Vec::new();
            for w in whats {
                found.extend(c.check_caused(w, 1, Some((tree, ev.pid)), ev.cause.as_ref()));
            }
            // What an HTTP exchange moved: volumes and the exfiltration sequence.
            if let (Kind::Http(h), [w]) = (&ev.kind, whats) {
                found.extend(c.exchange(
                    w,
                    (h.sent, h.received, h.switched()),
                    Some((tree, ev.pid)),
                    ev.cause.as_ref(),
                ));
            }
            // What a file or socket moved, as the kernel counted it.
            if let Kind::Io(io) = &ev.kind {
                found.extend(c.io(io, Some((tree, ev.pid)), ev.cause.as_ref()));
            }
            // What the tool call behind it has never done.
            if let Some(cause) = ev.cause.as_ref().filter(|_| !ev.failed() && !ev.denied()) {
                found.extend(c.tool_effects(whats, Some((tree, ev.pid)), cause));
            }
            for f in found {
                if print {
                    let cause = cause_suffix(f.cause.as_ref());
                    say(&format!(
                        "agentguard: {} {}{cause}\n        by {}",
                        f.severity.name().to_uppercase(),
                        report::finding_line(&f),
                        report::chain(&f.process)
                    ));
                }
                // The UI marks the event with its most severe finding.
                if finding
                    .as_ref()
                    .is_none_or(|g: &Finding| f.severity > g.severity)
                {
                    finding = Some(f);
                }
            }
        }
        // What failed was not admitted (Landlock may narrow an admission).
        if let Some((c, level)) = self.admitting.as_mut().filter(|_| !ev.denied()) {
            for w in whats {
                let Some(f) = c.check_caused(w, 1, Some((tree, ev.pid)), ev.cause.as_ref()) else {
                    continue;
                };
                if !f.new || f.severity >= *level {
                    continue;
                }
                if print {
                    let cause = cause_suffix(f.cause.as_ref());
                    say(&format!(
                        "agentguard: ALLOWED ({}) {} [{}]{cause}\n        by {}",
                        f.severity.name(),
                        report::finding_line(&f),
                        f.rule,
                        report::chain(&f.process)
                    ));
                }
                self.admitted.push(f);
            }
        }
        finding
    }
}
