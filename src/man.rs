//! man/ is generated from the clap definitions; this test fails when the committed pages
//! drift. Regenerate with: AGENTGUARD_UPDATE_MAN=1 cargo test man::
use clap::CommandFactory;

use crate::cli::Cli;

fn render(cmd: clap::Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .expect("rendering a man page into memory");
    out
}

/// (file name, page) for agentguard(1) and one page per visible subcommand.
fn pages() -> Vec<(String, Vec<u8>)> {
    let top = Cli::command();
    let mut pages = vec![("agentguard.1".to_string(), render(top.clone()))];
    for sub in top.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("agentguard-{}", sub.get_name());
        let page = render(
            sub.clone()
                .name(&*Box::leak(name.clone().into_boxed_str()))
                .version(env!("CARGO_PKG_VERSION")),
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
