//! man/ is generated from the clap definitions; this test fails when the committed pages
//! drift. Regenerate with: AGENTGUARD_UPDATE_MAN=1 cargo test man::
use clap::CommandFactory;

use crate::cli::Cli;

fn render(cmd: clap::Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .expect("rendering a man page into memory");
    sections(&String::from_utf8(out).expect("man pages are UTF-8")).into_bytes()
}

/// The sections a man page reader looks for: the help's "Exit status:" paragraph as EXIT
/// STATUS, and clap's catch-all EXTRA as what it holds (EXAMPLES, RULES).
fn sections(page: &str) -> String {
    let mut page = page.to_string();
    const EXIT: &str = "\n.PP\nExit status: ";
    if let Some(i) = page.find(EXIT) {
        let start = i + EXIT.len();
        let end = page[start..].find('\n').map_or(page.len(), |n| start + n);
        let text = page[start..end].to_string();
        page.replace_range(i..end, "");
        let at = ["\n.SH EXTRA", "\n.SH VERSION"]
            .iter()
            .filter_map(|h| page.find(h))
            .min()
            .unwrap_or(page.len());
        let mut first = text.chars();
        let text: String = first
            .next()
            .map(|c| c.to_ascii_uppercase())
            .into_iter()
            .chain(first)
            .collect();
        page.insert_str(at, &format!("\n.SH \"EXIT STATUS\"\n{text}"));
    }
    page.replace("\n.SH EXTRA\nExamples:\n", "\n.SH EXAMPLES\n")
        .replace("\n.SH EXTRA\nExample:\n", "\n.SH EXAMPLES\n")
        .replace("\n.SH EXTRA\nRULES: ", "\n.SH RULES\n")
}

/// (file name, page) for agentguard(1) and one page per visible subcommand.
fn pages() -> Vec<(String, Vec<u8>)> {
    // No `help` subcommand page (there is no agentguard-help(1)); the version is the
    // package's, without the commit, so the pages do not change with every commit.
    let top = Cli::command()
        .disable_help_subcommand(true)
        .version(env!("CARGO_PKG_VERSION"))
        .long_version(env!("CARGO_PKG_VERSION"));
    let mut pages = vec![("agentguard.1".to_string(), render(top.clone()))];
    for sub in top.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("agentguard-{}", sub.get_name());
        // The page is agentguard-enforce(1); its SYNOPSIS is what one types, `agentguard
        // enforce`; a subcommand has no -V of its own.
        let page = render(
            sub.clone()
                .name(&*Box::leak(name.clone().into_boxed_str()))
                .bin_name(format!("agentguard {}", sub.get_name()))
                .version(env!("CARGO_PKG_VERSION"))
                .disable_version_flag(true),
        );
        pages.push((format!("{name}.1"), page));
    }
    pages
}

#[test]
fn committed_man_pages_match_the_cli() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let update = std::env::var_os("AGENTGUARD_UPDATE_MAN").is_some();
    let mut stale = Vec::new();
    for (name, page) in pages() {
        let path = dir.join(&name);
        if update {
            std::fs::write(&path, &page).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&page[..]) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "man pages out of date: {stale:?}; run AGENTGUARD_UPDATE_MAN=1 cargo test man::"
    );
}

#[test]
fn pages_read_as_a_man_page_reader_expects() {
    for (name, page) in pages() {
        let page = String::from_utf8(page).unwrap();
        assert!(
            page.contains(".SH \"EXIT STATUS\""),
            "{name}: no EXIT STATUS"
        );
        assert!(
            !page.contains("agentguard\\-help"),
            "{name}: names agentguard-help(1)"
        );
        if let Some(sub) = name
            .strip_prefix("agentguard-")
            .and_then(|n| n.strip_suffix(".1"))
        {
            assert!(!page.contains("\\fB\\-V\\fR"), "{name}: -V on a subcommand");
            assert!(
                page.contains(&format!(".SH SYNOPSIS\n\\fBagentguard {sub}\\fR")),
                "{name}: the SYNOPSIS is what one types"
            );
        }
    }
}
