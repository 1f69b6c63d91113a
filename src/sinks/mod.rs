//! What consumes the pipeline's events as they come (src/pipeline): the denial lines, the
//! live findings and admissions, and at the end the summary. The event log and the terminal
//! UI are fed by the pipeline too; the profile and baseline are written at the session's
//! end (session/outputs.rs).
pub mod denials;
pub mod findings;
pub mod otlp;
pub mod summary;

/// A live line on standard error in one write: the tree writes to the same stderr, and
/// eprintln! writes piece by piece, so the tree's own messages could land inside ours.
pub fn say(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// The tool call behind a live line, on a line of its own; nothing without one.
pub fn cause_suffix(c: Option<&crate::event::Cause>) -> String {
    c.map(|c| format!("\n        {}", crate::diff::report::cause_line(c)))
        .unwrap_or_default()
}
