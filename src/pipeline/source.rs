//! Where a pipeline's events come from: live, the sensor's and the guard's ring buffers;
//! replayed, a kept event log. The pipeline is the same for both, so a replay's findings
//! are the live run's, tool-call causes included.
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, RingBuffer};

use super::Pipeline;
use crate::event::Event;
use crate::sensor::Sensor;

/// A source of a pipeline's events.
pub trait Source {
    /// Feeds the pipeline what has arrived, waiting up to `wait` for something to arrive.
    /// True when it stopped with more waiting (call again without waiting), false when
    /// it fed everything it had.
    fn pump(&mut self, pipe: &mut Pipeline, wait: Duration) -> Result<bool>;
}

/// Records copied out of the ring buffers, in the order they were read.
#[derive(Default)]
struct Records {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Records {
    fn push(&mut self, raw: &[u8]) {
        self.bytes.extend_from_slice(raw);
        self.ends.push(self.bytes.len());
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
}

/// The live source: the sensor's ring buffer and, enforcing with BPF LSM, the guard's
/// denials. libbpf calls a closure per record while it holds the ring; the closures only
/// copy the record here, so the pipeline itself is owned by the loop and not shared with
/// them. Records are taken a batch at a time, each batch through the pipeline before the
/// next is read: the copy holds one batch, however fast the tree writes.
pub struct Rings<'a> {
    ring: RingBuffer<'a>,
    queue: Rc<RefCell<Records>>,
    spare: Records,
}

impl<'a> Rings<'a> {
    pub fn open(sensor: &'a Sensor, denials: Option<&'a dyn MapCore>) -> Result<Rings<'a>> {
        let queue = Rc::new(RefCell::new(Records::default()));
        let into = |q: &Rc<RefCell<Records>>| {
            let q = Rc::clone(q);
            move |raw: &[u8]| {
                q.borrow_mut().push(raw);
                0
            }
        };
        let ring = sensor.ring(into(&queue), denials.map(|m| (m, into(&queue))))?;
        Ok(Rings {
            ring,
            queue,
            spare: Records::default(),
        })
    }
}

/// Records read from the rings before they go through the pipeline.
const BATCH: usize = 1024;
/// Batches per pump: a tree that writes as fast as they are read still lets the loop
/// take signals and draw the UI between pumps.
const BATCHES: usize = 64;

impl Rings<'_> {
    /// Waits up to `wait` until a ring has records. The kernel side wakes the reader only
    /// when a backlog builds, so a timeout is no reason to think the rings are empty.
    fn wait(&self, wait: Duration) -> Result<()> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        // SAFETY: the ring buffer's epoll descriptor, open while `self.ring` lives.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.ring.epoll_fd()) };
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        match poll(
            &mut [PollFd::new(fd, PollFlags::POLLIN)],
            PollTimeout::from(ms),
        ) {
            // A stop and continue (SIGSTOP, a debugger, a suspended terminal) interrupts
            // the wait: that is no reason to stop reading.
            Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
            Err(e) => Err(e).context("waiting for events"),
        }
    }

    /// The records copied so far, through the pipeline; the queue is left empty.
    fn drain(&mut self, pipe: &mut Pipeline) {
        // Swapped out, so no borrow is held while the pipeline runs; both buffers keep
        // their capacity from one batch to the next.
        std::mem::swap(&mut *self.queue.borrow_mut(), &mut self.spare);
        let mut start = 0;
        for &end in &self.spare.ends {
            pipe.ingest(&self.spare.bytes[start..end]);
            start = end;
        }
        self.spare.clear();
    }
}

impl Source for Rings<'_> {
    fn pump(&mut self, pipe: &mut Pipeline, wait: Duration) -> Result<bool> {
        self.wait(wait)?;
        for _ in 0..BATCHES {
            let n = self.ring.consume_raw_n(BATCH);
            self.drain(pipe);
            match usize::try_from(n) {
                Ok(n) if n < BATCH => return Ok(false),
                Ok(_) => {}
                // Interrupted: the next pump reads on.
                Err(_) if -n == libc::EINTR => return Ok(true),
                Err(_) => {
                    return Err(std::io::Error::from_raw_os_error(-n)).context("reading events")
                }
            }
        }
        Ok(true)
    }
}

/// A kept event log (replay.rs says where its events enter the pipeline).
pub struct Log {
    events: std::vec::IntoIter<Event>,
}

impl Log {
    pub fn new(events: Vec<Event>) -> Log {
        Log {
            events: events.into_iter(),
        }
    }

    /// Every event of the log through `pipe`.
    pub fn drain(mut self, pipe: &mut Pipeline) {
        // A log is read whole: nothing to wait for, nothing to fail.
        let _ = self.pump(pipe, Duration::ZERO);
    }
}

impl Source for Log {
    fn pump(&mut self, pipe: &mut Pipeline, _wait: Duration) -> Result<bool> {
        for ev in &mut self.events {
            pipe.replay(ev);
        }
        Ok(false)
    }
}
