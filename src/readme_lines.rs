//! The command lines of the README's shell blocks: shared by the test that parses each
//! `agentguard` command (src/readme.rs) and the one that runs them (tests/readme.rs).

/// (1-based line number, command) for every line of every ```sh block, a line ending in
/// a backslash joined with the next; blank and comment-only lines left out.
pub fn shell_lines(readme: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let (mut in_sh, mut open) = (false, false);
    for (n, l) in readme.lines().enumerate() {
        let t = l.trim();
        if t.starts_with("```") {
            in_sh = !in_sh && t == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        match out.last_mut() {
            Some((_, prev)) if open => prev.push_str(t),
            _ if t.is_empty() || t.starts_with('#') => continue,
            _ => out.push((n + 1, l.to_string())),
        }
        open = l.ends_with('\\');
        if open {
            let last = &mut out.last_mut().expect("a line was pushed").1;
            last.pop();
            last.push(' ');
        }
    }
    out
}
