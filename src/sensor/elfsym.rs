//! Where a function is in an ELF file, as uprobes want it: its file offset. libbpf's own
//! lookup for multi-uprobe links fails on stripped libraries (no .symtab), which is how
//! distributions ship libssl.
use std::path::Path;

use anyhow::{Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, SectionIndex};

/// The file offset of each of `names` that the file defines as a function (None for the
/// ones it does not), from its dynamic symbols, then its full symbol table.
pub fn func_offsets(path: &Path, names: &[&str]) -> Result<Vec<Option<u64>>> {
    // Read lazily: only the headers and symbol tables of a large executable, not all of it.
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let cache = object::ReadCache::new(f);
    let file = object::File::parse(&cache)
        .with_context(|| format!("{}: not an ELF file", path.display()))?;
    let mut out = vec![None; names.len()];
    for sym in file.dynamic_symbols().chain(file.symbols()) {
        if sym.kind() != object::SymbolKind::Text || !sym.is_definition() {
            continue;
        }
        let Ok(name) = sym.name() else { continue };
        // Versioned names (SSL_write@@OPENSSL_3.0.0) count as the plain name.
        let name = name.split('@').next().unwrap_or(name);
        let Some(i) = names.iter().position(|n| *n == name) else {
            continue;
        };
        if out[i].is_some() {
            continue;
        }
        let Some(index) = sym.section_index() else {
            continue;
        };
        out[i] = file_offset(&file, index, sym.address());
        // All found: the rest of the tables (node's are 10 MB) need not be read.
        if out.iter().all(Option::is_some) {
            break;
        }
    }
    Ok(out)
}

fn file_offset<'a, R: object::ReadRef<'a>>(
    file: &object::File<'a, R>,
    index: SectionIndex,
    addr: u64,
) -> Option<u64> {
    let sec = file.section_by_index(index).ok()?;
    let (off, _) = sec.file_range()?;
    Some(addr.checked_sub(sec.address())? + off)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_libc_functions_where_the_dynamic_table_says() {
        // Any glibc host has these; a missing name stays None.
        let libc = ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib64/libc.so.6"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists())
            .expect("a libc");
        let offs = func_offsets(libc, &["write", "read", "no_such_function_here"]).unwrap();
        assert!(offs[0].is_some() && offs[1].is_some(), "{offs:?}");
        assert_ne!(offs[0], offs[1]);
        assert_eq!(offs[2], None);
    }
}
