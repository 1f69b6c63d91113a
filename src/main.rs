//! agentguard: learn, review, diff and enforce what an AI agent's process tree does.
mod abi;
mod attach;
mod baseline;
mod bench;
mod cli;
mod cmd;
mod colour;
mod diff;
mod doctor;
mod enforce;
mod escapes;
mod event;
mod hook;
mod launch;
#[cfg(test)]
mod layers;
mod llm;
#[cfg(test)]
mod man;
mod names;
mod output;
mod paths;
mod pipeline;
mod profile;
mod pty;
#[cfg(test)]
mod readme;
#[cfg(test)]
mod readme_lines;
mod sensor;
mod session;
mod sinks;
mod skel;
mod spool;
mod tree;
mod tui;
mod user;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn run(cli: Cli) -> anyhow::Result<i32> {
    colour::set(cli.color);
    match cli.command {
        Command::Record(args) => cmd::record::run(args),
        Command::Enforce(args) => cmd::enforce::run(args),
        Command::Diff(args) => cmd::diff::run(args),
        Command::Allow(args) => cmd::allow::run(args),
        Command::Events(args) => cmd::events::run(args),
        Command::Watch(args) => cmd::watch::run(args),
        Command::Merge(args) => baseline::merge(args),
        Command::Show(args) => baseline::show(args),
        Command::Bench(args) => bench::run(args),
        Command::Storm(args) => bench::storm(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Hook => Ok(hook::run()),
        Command::Completions(args) => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(args.shell, &mut cmd, "agentguard", &mut std::io::stdout());
            Ok(0)
        }
    }
}

fn main() -> ExitCode {
    // Output piped into `head` ends quietly, as with any Unix tool, not with a panic.
    // SAFETY: setting a signal's disposition to its default, before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("agentguard: {e:#}");
            ExitCode::from(2)
        }
    }
}
