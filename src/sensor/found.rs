//! What the signature search (boring.rs) found in executables the table of known builds
//! does not hold, kept across runs: the search reads the whole executable (Codex's 250 MB
//! take about 0.15 s), and an agent connects within a fraction of a second of its exec, so
//! its first calls would go by before the probes are on. The next run finds the file here.
//!
//! A file is known by what its inode says (device, inode, size, modification and change
//! times): the change time moves with any write to it. What is kept here is still the
//! tree's to write (it may run as root): an entry is used only where the file's code says
//! the same as the search would (boring::confirms: the source file's name at the address
//! kept, each function raising what its part in the signature does), and what probes
//! placed without symbols read is verified (llm::verify). The cache is read without
//! following a symbolic link, only when it is a regular file, and at most CACHE_MAX bytes;
//! it is written through a new file of its own, never through one that exists.
//!
//! The file: AGENTGUARD_TLS_CACHE, else $XDG_CACHE_HOME/agentguard/tls.toml, else
//! ~/.cache/agentguard/tls.toml; AGENTGUARD_TLS_CACHE set empty keeps nothing.
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::boring::Located;

/// Entries kept at most: the oldest go first.
const ENTRIES_MAX: usize = 64;
/// The most of the cache read: a few hundred bytes an entry.
const CACHE_MAX: u64 = 1 << 20;

/// A file as its inode says it is now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    ctime: i64,
    ctime_nsec: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    file: Identity,
    /// The address of the source file's name the functions' error sites give.
    source: u64,
    #[serde(flatten)]
    at: Located,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Kept {
    #[serde(default)]
    file: Vec<Entry>,
}

/// Where the cache is; None when it is turned off or there is no home to keep it in.
fn location() -> Option<PathBuf> {
    let env = |k| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(v) = std::env::var_os("AGENTGUARD_TLS_CACHE") {
        return (!v.is_empty()).then(|| PathBuf::from(v));
    }
    let dir = env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(dir.join("agentguard/tls.toml"))
}

fn identity(f: &std::fs::File) -> Option<Identity> {
    let m = f.metadata().ok()?;
    Some(Identity {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
        ctime: m.ctime(),
        ctime_nsec: m.ctime_nsec(),
    })
}

fn read(path: &std::path::Path) -> Kept {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Not through a link, not a FIFO's wait, not more than a cache holds.
    let text = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()
        .filter(|f| f.metadata().is_ok_and(|m| m.is_file()))
        .and_then(|f| {
            let mut t = String::new();
            f.take(CACHE_MAX).read_to_string(&mut t).ok().map(|_| t)
        });
    // A cache that does not parse is rebuilt, not an error: it only saves time.
    text.and_then(|t| toml::from_str(&t).ok())
        .unwrap_or_default()
}

/// What an earlier search found in this file, unless it changed since: the functions,
/// and the address of the source file's name.
pub fn get(f: &std::fs::File) -> Option<(Located, u64)> {
    get_in(&location()?, f)
}

fn get_in(path: &std::path::Path, f: &std::fs::File) -> Option<(Located, u64)> {
    let now = identity(f)?;
    read(path)
        .file
        .into_iter()
        .find(|e| e.file == now)
        .map(|e| (e.at, e.source))
}

/// Keeps what a search found in this file. Failing to keep it costs only time: said on
/// standard error, never fatal.
pub fn put(f: &std::fs::File, at: Located, source: u64) {
    if let Some(path) = location() {
        put_in(&path, f, at, source);
    }
}

fn put_in(path: &std::path::Path, f: &std::fs::File, at: Located, source: u64) {
    let Some(file) = identity(f) else {
        return;
    };
    let mut kept = read(path);
    kept.file
        .retain(|e| (e.file.dev, e.file.ino) != (file.dev, file.ino));
    let entry = Entry { file, source, at };
    kept.file.push(entry);
    let over = kept.file.len().saturating_sub(ENTRIES_MAX);
    kept.file.drain(..over);
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = toml::to_string(&kept).map_err(std::io::Error::other)?;
        // Whole or not at all: another run may be reading it. The new file is this run's
        // own (never one a link names), and only root's to read.
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = path.with_extension(format!("toml.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        drop(f);
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        eprintln!(
            "agentguard: warning: cannot keep the TLS functions found in {} ({e}): the next run searches again",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensor::boring::Library;

    #[test]
    fn a_search_is_kept_for_the_same_file_until_it_changes() {
        let d = std::env::temp_dir().join(format!("agentguard-found-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let cache = d.join("cache/tls.toml");
        let exe = d.join("exe");
        std::fs::write(&exe, b"code").unwrap();
        let other = d.join("other");
        std::fs::write(&other, b"code").unwrap();
        let at = Located {
            library: Library::Aead,
            write: 0x10,
            read: 0x20,
        };
        let open = |p: &std::path::Path| std::fs::File::open(p).unwrap();
        assert_eq!(get_in(&cache, &open(&exe)), None);
        put_in(&cache, &open(&exe), at, 0x99);
        assert_eq!(get_in(&cache, &open(&exe)), Some((at, 0x99)));
        // Another file with the same bytes is another inode.
        assert_eq!(get_in(&cache, &open(&other)), None);
        // A write changes the file (here its size; always its change time, though two
        // writes within a clock tick can share one): what was found no longer holds.
        std::fs::write(&exe, b"other code").unwrap();
        assert_eq!(get_in(&cache, &open(&exe)), None);
        // A cache that does not parse is started again.
        std::fs::write(&cache, "not toml [").unwrap();
        assert_eq!(get_in(&cache, &open(&exe)), None);
        put_in(&cache, &open(&exe), at, 0x99);
        assert_eq!(get_in(&cache, &open(&exe)), Some((at, 0x99)));
        // Not read through a link, nor written through one.
        let link = d.join("cache/link.toml");
        std::os::unix::fs::symlink(&cache, &link).unwrap();
        assert_eq!(get_in(&link, &open(&exe)), None);
        let victim = d.join("victim");
        std::fs::write(&victim, "mine").unwrap();
        let tmp = link.with_extension(format!("toml.{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, tmp).unwrap();
        put_in(&link, &open(&exe), at, 0x99);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "mine");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
