//! The event log's writer when a reader is on the other end (a pipe, `--events -`, a
//! socket): a thread of its own writes to it, fed through a queue, so a reader that reads
//! slowly or not at all never holds the session's loop (which drains the kernel's rings,
//! answers hooks and passes signals on). The queue holds at most `MAX` bytes; what comes
//! beyond that is dropped, counted and said when the log ends, as a write error: a reader
//! that fell that far behind has an incomplete log, and its end record says so too. A
//! regular file is written directly: the file system does not wait on a reader. The
//! thread starts with the first line (after the command is launched: the fork that
//! launches it happens while agentguard has one thread). At the end, a reader that takes
//! nothing for `STALL` is given up on, said as a write error, so a stopped reader cannot
//! hold agentguard (whose terminal signals are blocked by then) forever.
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileTypeExt;
use std::sync::{Arc, Condvar, Mutex};

/// How far a reader may fall behind (bytes of whole lines waiting) before lines are dropped.
const MAX: usize = 64 << 20;
/// How long the end waits for a reader that takes nothing.
const STALL: std::time::Duration = std::time::Duration::from_secs(if cfg!(test) { 1 } else { 30 });

/// Where the event log goes: a file, or a reader through the spool.
pub enum Stream {
    File(File),
    Spooled(Spool),
}

impl Stream {
    /// A file as it is; a FIFO, socket or character device other than /dev/null through
    /// a spool.
    pub fn new(f: File) -> io::Result<Stream> {
        use std::os::unix::fs::MetadataExt;
        let m = f.metadata()?;
        let t = m.file_type();
        let null = t.is_char_device()
            && std::fs::metadata("/dev/null").is_ok_and(|n| n.rdev() == m.rdev());
        Ok(
            if (t.is_fifo() || t.is_socket() || t.is_char_device()) && !null {
                Stream::Spooled(Spool::start(f))
            } else {
                Stream::File(f)
            },
        )
    }

    /// Everything written, out: waits for the spool's reader to take it all. An error
    /// when the reader went away, or fell so far behind that lines were dropped.
    pub fn close(self) -> io::Result<()> {
        match self {
            Stream::File(mut f) => f.flush(),
            Stream::Spooled(s) => s.close(),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::File(f) => f.write(buf),
            Stream::Spooled(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::File(f) => f.flush(),
            Stream::Spooled(s) => s.flush(),
        }
    }
}

#[derive(Default)]
struct Queue {
    chunks: VecDeque<Vec<u8>>,
    bytes: usize,
    closed: bool,
    /// The writer thread's first error (the reader went away): every later write fails.
    error: Option<(io::ErrorKind, String)>,
    dropped_lines: u64,
    /// Chunks written so far, and whether the thread has ended: what the end waits on.
    written: u64,
    done: bool,
}

pub struct Spool {
    shared: Arc<(Mutex<Queue>, Condvar)>,
    /// The file until the first write starts the thread (None: it runs).
    out: Option<File>,
}

impl Spool {
    fn start(out: File) -> Spool {
        Spool {
            shared: Arc::new((Mutex::new(Queue::default()), Condvar::new())),
            out: Some(out),
        }
    }

    fn run(&mut self) {
        let Some(mut out) = self.out.take() else {
            return;
        };
        let theirs = Arc::clone(&self.shared);
        std::thread::spawn(move || {
            let (m, cv) = &*theirs;
            loop {
                let chunk = {
                    let mut q = m.lock().unwrap_or_else(|p| p.into_inner());
                    loop {
                        if let Some(c) = q.chunks.pop_front() {
                            q.bytes -= c.len();
                            break c;
                        }
                        if q.closed {
                            q.done = true;
                            cv.notify_all();
                            return;
                        }
                        q = cv.wait(q).unwrap_or_else(|p| p.into_inner());
                    }
                };
                let r = out.write_all(&chunk);
                let mut q = m.lock().unwrap_or_else(|p| p.into_inner());
                q.written += 1;
                cv.notify_all();
                if let Err(e) = r {
                    q.error = Some((e.kind(), e.to_string()));
                    q.chunks.clear();
                    q.bytes = 0;
                    q.done = true;
                    return;
                }
            }
        });
    }

    fn failed(q: &Queue) -> io::Result<()> {
        match &q.error {
            Some((kind, what)) => Err(io::Error::new(*kind, what.clone())),
            None => Ok(()),
        }
    }

    fn close(self) -> io::Result<()> {
        let (m, cv) = &*self.shared;
        let mut q = m.lock().unwrap_or_else(|p| p.into_inner());
        q.closed = true;
        cv.notify_all();
        if self.out.is_none() {
            // Waits while the reader takes something at least every STALL.
            let (mut seen, mut since) = (q.written, std::time::Instant::now());
            while !q.done {
                if q.written != seen {
                    (seen, since) = (q.written, std::time::Instant::now());
                }
                let left = STALL.saturating_sub(since.elapsed());
                if left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "its reader took nothing for {} s: {} bytes were not written",
                            STALL.as_secs(),
                            q.bytes
                        ),
                    ));
                }
                q = cv
                    .wait_timeout(q, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        Self::failed(&q)?;
        if q.dropped_lines > 0 {
            return Err(io::Error::other(format!(
                "its reader fell {} MiB behind: {} lines were not written (the end record counts them, so the log reads as incomplete)",
                MAX >> 20,
                q.dropped_lines
            )));
        }
        Ok(())
    }
}

impl Write for Spool {
    /// Takes the buffer whole (the event log hands over whole lines), or drops it whole.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.run();
        let (m, cv) = &*self.shared;
        let mut q = m.lock().unwrap_or_else(|p| p.into_inner());
        Self::failed(&q)?;
        if q.bytes + buf.len() > MAX {
            q.dropped_lines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        } else {
            q.bytes += buf.len();
            q.chunks.push_back(buf.to_vec());
            cv.notify_all();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Self::failed(&self.shared.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Drop for Spool {
    /// Not closed (an error path): the thread is told to end once the queue is out, and
    /// left to it.
    fn drop(&mut self) {
        let (m, cv) = &*self.shared;
        m.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
        cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_that_never_reads_holds_no_writer_and_loses_lines_said() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut s = Stream::new(File::from(w)).unwrap();
        assert!(matches!(s, Stream::Spooled(_)));
        let line = vec![b'x'; 1 << 20];
        let mut with_nl = line.clone();
        with_nl.push(b'\n');
        // Far more than a pipe holds, and more than the spool: no write waits.
        for _ in 0..(MAX >> 20) + 8 {
            s.write_all(&with_nl).unwrap();
        }
        s.flush().unwrap();
        // The reader reads it all now; the end says what it missed.
        let reader = std::thread::spawn(move || {
            let mut n = 0;
            let mut f = File::from(r);
            let mut buf = vec![0; 1 << 16];
            loop {
                match std::io::Read::read(&mut f, &mut buf) {
                    Ok(0) | Err(_) => return n,
                    Ok(k) => n += k,
                }
            }
        });
        let e = s.close().unwrap_err().to_string();
        assert!(e.contains("lines were not written"), "{e}");
        let got = reader.join().unwrap();
        // At most the queue, the chunk being written and what the pipe held.
        assert!(
            got > 0 && got % with_nl.len() == 0 && got <= MAX + 2 * with_nl.len(),
            "{got}"
        );
    }

    #[test]
    fn a_reader_that_takes_nothing_is_given_up_on_at_the_end() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut s = Stream::new(File::from(w)).unwrap();
        // More than the pipe holds; the reader never reads (nor goes away).
        s.write_all(&[b'x'; 1 << 20]).unwrap();
        s.write_all(b"\n").unwrap();
        let e = s.close().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        drop(r);
    }

    #[test]
    fn a_reader_gone_is_an_error_of_the_next_write() {
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        let mut s = Stream::new(File::from(w)).unwrap();
        // SIGPIPE is ignored by a session; the test harness ignores it too (Rust's
        // runtime sets SIG_IGN), so the writer thread sees EPIPE.
        s.write_all(b"a\n").unwrap();
        let e = s.close().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
