//! The README is the first thing a user reads: every `agentguard` command in its shell
//! blocks must be one the program accepts (subcommand, flags, values), so the README cannot
//! drift from the CLI.
use clap::Parser;

use crate::cli::Cli;

/// The argument lists of every `agentguard` invocation in the README's sh blocks, with
/// the line each is on.
fn invocations(readme: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    for (i, line) in crate::readme_lines::shell_lines(readme) {
        // A comment after the command: two spaces, then #.
        let code = line.split("  #").next().unwrap_or("");
        for part in code.split(['|', ';']).flat_map(|p| p.split("&&")) {
            let Some(words) = shlex::split(part.trim()) else {
                continue;
            };
            // The program is the segment's first word, after `do` and `sudo`.
            let Some(at) = words.iter().position(|w| w != "do" && w != "sudo") else {
                continue;
            };
            if words[at] != "agentguard" && !words[at].ends_with("/agentguard") {
                continue;
            }
            // A redirection ends the arguments.
            let args: Vec<String> = words[at + 1..]
                .iter()
                .take_while(|w| !w.starts_with('>') && !w.starts_with("2>") && *w != "<")
                .cloned()
                .collect();
            out.push((i, args));
        }
    }
    out
}

#[test]
fn every_command_in_the_readme_parses() {
    let readme = include_str!("../README.md");
    let found = invocations(readme);
    assert!(
        found.len() > 20,
        "the README's commands were found: {}",
        found.len()
    );
    let mut bad = Vec::new();
    for (line, args) in &found {
        let argv = std::iter::once("agentguard".to_string()).chain(args.iter().cloned());
        if let Err(e) = Cli::try_parse_from(argv) {
            use clap::error::ErrorKind::*;
            if !matches!(e.kind(), DisplayHelp | DisplayVersion) {
                bad.push(format!(
                    "README.md:{line}: agentguard {}: {}",
                    args.join(" "),
                    e.kind()
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn a_wrong_flag_is_caught() {
    let found = invocations("```sh\nsudo agentguard enforce --profle p.toml -- true  # x\n```\n");
    assert_eq!(found.len(), 1);
    let argv = std::iter::once("agentguard".to_string()).chain(found[0].1.iter().cloned());
    assert!(Cli::try_parse_from(argv).is_err());
}
