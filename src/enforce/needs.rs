//! Before the start: what the kernel needs to run each program a profile lets the tree
//! exec, and whether the profile allows it. A dynamically linked program runs through its
//! ELF interpreter (PT_INTERP), and a `#!` script through the interpreter its first line
//! names; the kernel opens both for execution. A profile recorded by agentguard has them
//! (the sensor reports the interpreter the kernel mapped); one written by hand, or recorded
//! by an older version, may not, and its first exec would fail with EPERM. Found here, it
//! is refused with what to add, before anything runs.
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use anyhow::Result;
use object::read::elf::{FileHeader, ProgramHeader};

use crate::event::Access;
use crate::profile::matcher::{Matcher, Verdict};
use crate::profile::pattern::is_glob;
use crate::profile::{learn, Profile, Vars};

/// What the profile's programs need that it does not allow, each said for a person
/// (one line per missing interpreter, naming the programs that need it).
pub fn missing(p: &Profile, vars: &Vars) -> Result<Vec<String>> {
    let m = Matcher::new(p, vars)?;
    let read = BTreeSet::from([Access::Read]);
    // (missing interpreter, is an ELF loader) -> the programs that need it.
    let mut needs: BTreeMap<(String, bool), BTreeSet<String>> = BTreeMap::new();
    for e in p.exec.iter().filter(|e| !e.protected) {
        let raw = learn::unescape(&e.path.0);
        let Ok(expanded) = vars.expand_raw(&raw) else {
            continue;
        };
        for prog in super::compile::expand_braces(&expanded)? {
            // Patterns name programs not known until they run: nothing to look at here.
            if is_glob(&prog) || !Path::new(&prog).is_file() {
                continue;
            }
            if let Some(interp) = elf_interpreter(Path::new(&prog)) {
                let real = canonical(&interp);
                let allowed = m.file(&real, &read) == Verdict::Covered
                    || m.exec_hit(&real).verdict == Verdict::Covered;
                if !allowed {
                    needs.entry((real, true)).or_default().insert(prog);
                }
            } else if let Some(interp) = script_interpreter(Path::new(&prog)) {
                let real = canonical(&interp);
                if m.exec_hit(&real).verdict != Verdict::Covered {
                    needs.entry((real, false)).or_default().insert(prog);
                }
            }
        }
    }
    Ok(needs
        .into_iter()
        .map(|((interp, elf), progs)| {
            let mut names: Vec<&str> = progs.iter().map(String::as_str).take(3).collect();
            if progs.len() > 3 {
                names.push("...");
            }
            let who = format!(
                "{} ({} program{})",
                names.join(", "),
                progs.len(),
                if progs.len() == 1 { "" } else { "s" }
            );
            if elf {
                format!(
                    "the profile does not allow the ELF loader {interp} that {who} need: add \
                     [[file]] path = \"{interp}\" access = [\"read\"] (a recording has it)"
                )
            } else {
                format!(
                    "the profile does not allow the interpreter {interp} that the #! line of \
                     {who} names: add [[exec]] path = \"{interp}\" (a recording has it)"
                )
            }
        })
        .collect())
}

fn canonical(p: &str) -> String {
    std::fs::canonicalize(p)
        .map(|c| c.display().to_string())
        .unwrap_or_else(|_| p.to_string())
}

/// PT_INTERP of a 64-bit ELF file: None for a static program or anything else.
fn elf_interpreter(path: &Path) -> Option<String> {
    let f = std::fs::File::open(path).ok()?;
    let cache = object::ReadCache::new(f);
    let hdr = object::elf::FileHeader64::<object::Endianness>::parse(&cache).ok()?;
    let endian = hdr.endian().ok()?;
    let ph = hdr
        .program_headers(endian, &cache)
        .ok()?
        .iter()
        .find(|ph| ph.p_type(endian) == object::elf::PT_INTERP)?;
    let bytes = ph.data(endian, &cache).ok()?;
    let name = bytes.split(|c| *c == 0).next()?;
    Some(String::from_utf8_lossy(name).into_owned())
}

/// The program a `#!` line names (its first word).
fn script_interpreter(path: &Path) -> Option<String> {
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = line.split(|c| *c == b'\n').next()?;
    let word = String::from_utf8_lossy(line)
        .split_whitespace()
        .next()?
        .to_string();
    word.starts_with('/').then_some(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(text: &str) -> Profile {
        Profile::parse(text, Path::new("p.toml")).unwrap()
    }

    #[test]
    fn a_program_whose_loader_is_not_allowed_is_named_with_its_loader() {
        // /bin/sh is dynamically linked on every distribution this runs on.
        let sh = canonical("/bin/sh");
        let loader = canonical(&elf_interpreter(Path::new(&sh)).expect("a dynamic /bin/sh"));
        let without = profile(&format!("version = 1\n\n[[exec]]\npath = \"{sh}\"\n"));
        let m = missing(&without, &Vars::default()).unwrap();
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].contains(&format!("ELF loader {loader} that {sh} (1 program) need")),
            "{m:?}"
        );
        let with = profile(&format!(
            "version = 1\n\n[[exec]]\npath = \"{sh}\"\n\n[[file]]\npath = \"{loader}\"\naccess = [\"read\"]\n"
        ));
        assert!(missing(&with, &Vars::default()).unwrap().is_empty());
    }

    #[test]
    fn a_script_needs_the_interpreter_its_first_line_names() {
        let dir = std::env::temp_dir().join(format!("ag-needs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("run");
        std::fs::write(&script, "#!/bin/sh -e\necho hi\n").unwrap();
        let p = profile(&format!(
            "version = 1\n\n[[exec]]\npath = \"{}\"\n",
            script.display()
        ));
        let m = missing(&p, &Vars::default()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].contains(&format!(
                "interpreter {} that the #! line of {}",
                canonical("/bin/sh"),
                script.display()
            )),
            "{m:?}"
        );
    }
}
