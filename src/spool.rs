//! The event log's writer when a reader is on the other end (a pipe, `--events -`, a
//! socket): a thread of its own writes to it, fed through a queue, so a reader that reads
//! slowly or not at all never holds the session's loop (which drains the kernel's rings,
//! answers hooks and passes signals on). The queue holds at most `MAX` bytes; what comes
//! beyond that is dropped, counted and said when the log ends, as a write error: a reader
//! that fell that far behind has an incomplete log, and its end record says so too. A
//! regular file is written directly: the file system does not wait on a reader.
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileTypeExt;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// How far a reader may fall behind (bytes of whole lines waiting) before lines are dropped.
const MAX: usize = 64 << 20;

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
}

pub struct Spool {
    shared: Arc<(Mutex<Queue>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Spool {
    fn start(mut out: File) -> Spool {
        let shared = Arc::new((Mutex::new(Queue::default()), Condvar::new()));
        let theirs = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
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
                            return;
                        }
                        q = cv.wait(q).unwrap_or_else(|p| p.into_inner());
                    }
                };
                if let Err(e) = out.write_all(&chunk) {
                    let mut q = m.lock().unwrap_or_else(|p| p.into_inner());
                    q.error = Some((e.kind(), e.to_string()));
                    q.chunks.clear();
                    q.bytes = 0;
                    return;
                }
            }
        });
        Spool {
            shared,
            thread: Some(thread),
        }
    }

    fn failed(q: &Queue) -> io::Result<()> {
        match &q.error {
            Some((kind, what)) => Err(io::Error::new(*kind, what.clone())),
            None => Ok(()),
        }
    }

    fn close(mut self) -> io::Result<()> {
        {
            let (m, cv) = &*self.shared;
            m.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
            cv.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let q = self.shared.0.lock().unwrap_or_else(|p| p.into_inner());
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
        let (m, cv) = &*self.shared;
        let mut q = m.lock().unwrap_or_else(|p| p.into_inner());
        Self::failed(&q)?;
        if q.bytes + buf.len() > MAX {
            q.dropped_lines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        } else {
            q.bytes += buf.len();
            q.chunks.push_back(buf.to_vec());
            cv.notify_one();
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
        cv.notify_one();
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
