//! Files agentguard writes. It writes them as root, at the end of a run, often in a
//! directory the tree could write: a link the tree planted at the file's name, at its
//! temporary name or in place of its directory must not send root's write somewhere else
//! (`run.toml.tmp -> ~/.bashrc`). So:
//!
//! - the directory is opened when the output is named, before the tree starts, and the
//!   file is written relative to that descriptor: a directory swapped for a link later
//!   changes nothing;
//! - a profile is written to a new temporary file, created exclusively without following
//!   links, then renamed over the name (a link at the name is replaced, not written
//!   through);
//! - a stream (the event log, the command's output) is created without following a link;
//! - of other file types, only a FIFO or a character device (a pipe to a reader,
//!   /dev/null, /dev/stdout) is written, in place; a directory, socket or block device is
//!   refused.
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// An output named now, written later.
pub struct Output {
    dir: OwnedFd,
    name: OsString,
    shown: PathBuf,
}

impl Output {
    /// Opens the output's directory now. Fails, naming the path, when the directory does
    /// not exist or the name is no file name: better before the run than after it.
    pub fn prepare(path: &Path) -> Result<Output> {
        let name = path
            .file_name()
            .with_context(|| format!("{}: not a file name to write", path.display()))?
            .to_os_string();
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = nix::fcntl::open(
            parent,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| {
            format!(
                "{}: cannot open its directory {}",
                path.display(),
                parent.display()
            )
        })?;
        let out = Output {
            dir,
            name,
            shown: path.to_path_buf(),
        };
        out.kind()?;
        Ok(out)
    }

    /// What is at the name now: Some(true) for a FIFO or character device (written in
    /// place), Some(false) for nothing, a regular file or a link (replaced).
    fn kind(&self) -> Result<bool> {
        match fstatat(
            &self.dir,
            self.name.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("{}", self.shown.display())),
            Ok(st) => {
                let t = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
                if t == SFlag::S_IFIFO || t == SFlag::S_IFCHR {
                    Ok(true)
                } else if t == SFlag::S_IFLNK {
                    // /dev/stdout and the like: a link to a pipe or a terminal is written
                    // through (what it reaches is a stream, not a file to overwrite); a
                    // link to anything else is replaced.
                    let followed = fstatat(&self.dir, self.name.as_os_str(), AtFlags::empty());
                    Ok(followed.is_ok_and(|f| {
                        let t = SFlag::from_bits_truncate(f.st_mode & SFlag::S_IFMT.bits());
                        t == SFlag::S_IFIFO || t == SFlag::S_IFCHR
                    }))
                } else if t == SFlag::S_IFREG {
                    Ok(false)
                } else {
                    bail!(
                        "{}: not a regular file, FIFO or character device: agentguard does not write there",
                        self.shown.display()
                    )
                }
            }
        }
    }

    /// The stream at the name (a pipe, /dev/null, a terminal, or a link to one, such as
    /// /dev/stdout), opened for writing.
    fn open_in_place(&self) -> Result<File> {
        let shown = self.shown.display();
        // Non-blocking open, retried for a while: a FIFO whose reader comes a little
        // later is written, one nobody reads (planted by the tree) is an error after 10 s,
        // not a hang. Then blocking writes, so that a slow reader gets it all.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let fd = loop {
            match openat(
                &self.dir,
                self.name.as_os_str(),
                OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
                Mode::empty(),
            ) {
                Err(Errno::ENXIO) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Err(Errno::ENXIO) => bail!("{shown}: a FIFO no one reads"),
                r => break r.with_context(|| format!("writing {shown}"))?,
            }
        };
        // What was opened, not what was looked at: a pipe, /dev/null or a terminal.
        let st = nix::sys::stat::fstat(&fd).with_context(|| format!("writing {shown}"))?;
        let t = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        let null = libc::makedev(1, 3);
        let ok = t == SFlag::S_IFIFO
            || (t == SFlag::S_IFCHR
                && (st.st_rdev == null || nix::unistd::isatty(&fd).unwrap_or(false)));
        if !ok {
            bail!("{shown}: not a pipe, /dev/null or a terminal: agentguard does not write there");
        }
        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()))
            .with_context(|| format!("writing {shown}"))?;
        Ok(File::from(fd))
    }

    /// Writes `bytes` whole: a reader never sees half of it.
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        let shown = self.shown.display();
        if self.kind()? {
            return self
                .open_in_place()?
                .write_all(bytes)
                .with_context(|| format!("writing {shown}"));
        }
        let mut tmp = OsString::from(".");
        tmp.push(&self.name);
        tmp.push(format!(".{}.{}.tmp", std::process::id(), nonce()));
        let fd = openat(
            &self.dir,
            tmp.as_os_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .with_context(|| format!("writing {shown}: creating its temporary file"))?;
        let written = File::from(fd)
            .write_all(bytes)
            .map_err(anyhow::Error::from)
            .and_then(|_| {
                renameat(&self.dir, tmp.as_os_str(), &self.dir, self.name.as_os_str())
                    .map_err(anyhow::Error::from)
            });
        if let Err(e) = written {
            let _ = unlinkat(&self.dir, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
            return Err(e).with_context(|| format!("writing {shown}"));
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` as [`Output::write`] does.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Output::prepare(path)?.write(bytes)
}

/// A file written as it goes (the event log, the command's output under the UI): created
/// or truncated without following a link at its name; a FIFO or character device is
/// written as it is.
pub fn create_stream(path: &Path) -> Result<File> {
    let out = Output::prepare(path)?;
    if out.kind()? {
        return out.open_in_place();
    }
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = match openat(
        &out.dir,
        out.name.as_os_str(),
        flags | OFlag::O_TRUNC,
        Mode::from_bits_truncate(0o644),
    ) {
        Err(Errno::ELOOP) => bail!(
            "{}: is a symbolic link; agentguard does not write through one",
            path.display()
        ),
        r => r.with_context(|| format!("creating {}", path.display()))?,
    };
    Ok(File::from(fd))
}

fn nonce() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (std::ptr::addr_of!(t) as u64).rotate_left(32)
}

/// Writes `text` to standard output. A reader that went away (`| head`) ends agentguard
/// quietly through SIGPIPE, which main leaves at its default: no EPIPE reaches here.
pub fn stdout(text: &str, what: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .with_context(|| format!("writing {what} to standard output"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("agentguard-output-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_link_at_the_name_is_replaced_not_written_through() {
        let d = dir("link");
        let victim = d.join("bashrc");
        std::fs::write(&victim, "original\n").unwrap();
        std::os::unix::fs::symlink(&victim, d.join("run.toml")).unwrap();
        write_atomic(&d.join("run.toml"), b"profile\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "original\n");
        assert_eq!(
            std::fs::read_to_string(d.join("run.toml")).unwrap(),
            "profile\n"
        );
        assert!(!std::fs::symlink_metadata(d.join("run.toml"))
            .unwrap()
            .file_type()
            .is_symlink());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_directory_swapped_for_a_link_after_prepare_changes_nothing() {
        let d = dir("swap");
        std::fs::create_dir(d.join("out")).unwrap();
        std::fs::create_dir(d.join("elsewhere")).unwrap();
        let out = Output::prepare(&d.join("out/run.toml")).unwrap();
        std::fs::rename(d.join("out"), d.join("out.old")).unwrap();
        std::os::unix::fs::symlink(d.join("elsewhere"), d.join("out")).unwrap();
        out.write(b"x").unwrap();
        assert!(d.join("out.old/run.toml").exists());
        assert!(!d.join("elsewhere/run.toml").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_stream_is_not_created_through_a_link_and_odd_targets_are_refused() {
        let d = dir("stream");
        let victim = d.join("victim");
        std::fs::write(&victim, "original\n").unwrap();
        std::os::unix::fs::symlink(&victim, d.join("run.jsonl")).unwrap();
        let e = create_stream(&d.join("run.jsonl")).unwrap_err();
        assert!(format!("{e:#}").contains("symbolic link"), "{e:#}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "original\n");
        std::fs::create_dir(d.join("adir")).unwrap();
        let e = write_atomic(&d.join("adir"), b"x").unwrap_err();
        assert!(format!("{e:#}").contains("not a regular file"), "{e:#}");
        let e = Output::prepare(&d.join("missing/run.toml")).err().unwrap();
        assert!(
            format!("{e:#}").contains("cannot open its directory"),
            "{e:#}"
        );
        write_atomic(Path::new("/dev/null"), b"x").unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }
}
