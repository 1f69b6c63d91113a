//! The crate's modules depend on each other one way: commands on the session, the session
//! on the pipeline, the pipeline on the sensor and the sinks, the sinks on events and
//! diff, and everything on the bottom layer (events, the tree, abi, skeletons). This test
//! reads the sources and fails on any circle of `crate::` paths (and a top-level file's
//! `super::` paths) between top-level modules, naming it. Test code is left out: a test
//! may reach anywhere (an inline `mod tests` ends its file, as everywhere in src/).
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module -> the top-level modules its non-test code names.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".rs") || name == "tests.rs" {
                continue;
            }
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let top = rel
                .split('/')
                .next()
                .unwrap()
                .trim_end_matches(".rs")
                .to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            // An inline test module ends its file: its closing brace (the first at the
            // start of a line) is the file's last text, or code after it would be missed.
            let code = match text.find("#[cfg(test)]\nmod tests {") {
                Some(at) => {
                    let end = text[at..].find("\n}\n").map(|e| at + e + 3);
                    assert!(
                        end.is_some_and(|e| text[e..].trim().is_empty()),
                        "{rel}: code after its test module; move it above"
                    );
                    &text[..at]
                }
                None => &text[..],
            };
            let deps = out.entry(top.clone()).or_default();
            // A file of src/ itself reaches its siblings through super:: too.
            let prefixes: &[&str] = if rel.contains('/') {
                &["crate::"]
            } else {
                &["crate::", "super::"]
            };
            for prefix in prefixes {
                for (at, _) in code.match_indices(prefix) {
                    for name in names(&code[at + prefix.len()..]) {
                        if name != top {
                            deps.insert(name);
                        }
                    }
                }
            }
        }
    }
    out
}

/// The top-level modules a path names after `crate::`: one, or each of a group
/// (`crate::{a::X, b}`).
fn names(rest: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)]
            .into_iter()
            .filter(|n| !n.is_empty())
            .collect();
    };
    // The group's items at depth 0, up to its closing brace.
    let mut out = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => item_start = true,
            _ if item_start && !c.is_whitespace() => {
                item_start = false;
                let name = ident(&group[i..]);
                if !name.is_empty() && name != "self" {
                    out.push(name);
                }
            }
            _ => {}
        }
    }
    out
}

/// A circle through `from`, if there is one: the modules in order, `from` at both ends.
fn circle(g: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut path = vec![from.to_string()];
    let mut seen = BTreeSet::new();
    fn walk(
        g: &BTreeMap<String, BTreeSet<String>>,
        from: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        let at = path.last().unwrap().clone();
        for next in g.get(&at).into_iter().flatten() {
            if next == from {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(g, from, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    walk(g, from, &mut path, &mut seen).then_some(path)
}

#[test]
fn no_module_depends_on_itself_through_others() {
    let g = edges();
    assert!(g.len() > 10, "read the sources: {:?}", g.keys());
    let circles: Vec<String> = g
        .keys()
        .filter_map(|m| circle(&g, m))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn grouped_paths_name_each_module() {
    assert_eq!(names("event::{Event, Kind};"), ["event"]);
    assert_eq!(
        names("{event::{Event, Kind}, tree::Tree, self};"),
        ["event", "tree"]
    );
    assert_eq!(
        names("{\n    diff,\n    pipeline::Pipeline,\n}"),
        ["diff", "pipeline"]
    );
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    g.entry("c".into()).or_default().insert("a".into());
    g.entry("d".into()).or_default().insert("a".into());
    assert_eq!(circle(&g, "a").unwrap(), ["a", "b", "c", "a"]);
    assert_eq!(circle(&g, "d"), None);
}
