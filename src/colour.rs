//! Whether agentguard's own output uses colour: `--color` when given as always or never,
//! else none when NO_COLOR is set and not empty (no-color.org), else only on a terminal.
use std::sync::OnceLock;

/// --color: when agentguard's own output has colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

static WHEN: OnceLock<ColorWhen> = OnceLock::new();

/// Set once, from the command line, before anything is printed.
pub fn set(when: ColorWhen) {
    let _ = WHEN.set(when);
}

/// Whether to colour a stream that is (or is not) a terminal.
pub fn enabled(terminal: bool) -> bool {
    decide(
        *WHEN.get().unwrap_or(&ColorWhen::Auto),
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        terminal,
    )
}

fn decide(when: ColorWhen, no_color: bool, terminal: bool) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => terminal && !no_color,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_then_no_color_then_the_terminal() {
        assert!(decide(ColorWhen::Always, true, false));
        assert!(!decide(ColorWhen::Never, false, true));
        assert!(decide(ColorWhen::Auto, false, true));
        assert!(!decide(ColorWhen::Auto, true, true));
        assert!(!decide(ColorWhen::Auto, false, false));
    }
}
