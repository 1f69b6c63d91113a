//! Where a pipeline's events come from: live, the sensor's and the guard's ring buffers;
//! replayed, a kept event log. The pipeline is the same for both, so a replay's findings
//! are the live run's, tool-call causes included.
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, RingBuffer, RingBufferBuilder};

use super::Pipeline;
use crate::event::Event;
use crate::sensor::Sensor;

/// A source of a pipeline's events.
pub trait Source {
    /// Feeds the pipeline what has arrived, waiting up to `wait` for something to arrive.
    /// True when it stopped with more waiting (call again without waiting), false when
    /// it fed everything it had.
    fn pump(&mut self, pipe: &mut Pipeline, wait: Duration) -> Result<bool>;

    /// Feeds the pipeline what is left once the tree has ended or agentguard is stopped.
    fn finish(&mut self, pipe: &mut Pipeline) -> Result<()> {
        while self.pump(pipe, Duration::ZERO)? {}
        Ok(())
    }
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
/// denials. libbpf calls a closure per record while it holds a ring; the closures only
/// copy the record here, so the pipeline itself is owned by the loop and not shared with
/// them. Records are taken a batch at a time, each batch through the pipeline before the
/// next is read: the copy holds one batch, however fast the tree writes. Each ring is read
/// on its own budget, so a flood of the sensor's records cannot starve the denials ring.
/// The sensor's is read first: a denial comes after the exec of the process it names (a
/// program denied as soon as it starts), whose record is then in the tree already, so the
/// denial names the program rather than no one.
pub struct Rings<'a> {
    /// The sensor's ring, then the denials rings (when enforcing).
    rings: Vec<RingBuffer<'a>>,
    queue: Rc<RefCell<Records>>,
    spare: Records,
    /// Records the rings can hold at most: what a final read takes at most.
    capacity: usize,
}

/// Records read from a ring before they go through the pipeline.
const BATCH: usize = 1024;
/// Batches per ring per pump: a tree that writes as fast as they are read still lets the
/// loop take signals and draw the UI between pumps.
const BATCHES: usize = 64;
/// The smallest record a ring holds: libbpf's 8-byte header and a record header.
const MIN_RECORD: usize = 8 + std::mem::size_of::<crate::skel::sensor::types::ag_hdr>();

impl<'a> Rings<'a> {
    pub fn open(sensor: &'a Sensor, denials: Vec<&'a dyn MapCore>) -> Result<Rings<'a>> {
        // A ring buffer map's size is its max_entries, in bytes.
        let bytes = sensor.ring_bytes()
            + denials
                .iter()
                .map(|m| m.max_entries() as usize)
                .sum::<usize>();
        let queue = Rc::new(RefCell::new(Records::default()));
        let into = |q: &Rc<RefCell<Records>>| {
            let q = Rc::clone(q);
            move |raw: &[u8]| {
                q.borrow_mut().push(raw);
                0
            }
        };
        let mut rings = vec![sensor.ring(into(&queue))?];
        for map in denials {
            let mut b = RingBufferBuilder::new();
            b.add(map, into(&queue))
                .context("opening the denials ring buffer")?;
            rings.push(b.build().context("opening the denials ring buffer")?);
        }
        Ok(Rings {
            rings,
            queue,
            spare: Records::default(),
            capacity: bytes / MIN_RECORD + 1,
        })
    }

    /// Waits up to `wait` until a ring has records. The kernel side wakes the reader only
    /// when a backlog builds, so a timeout is no reason to think the rings are empty.
    fn wait(&self, wait: Duration) -> Result<()> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds: Vec<PollFd> = self
            .rings
            .iter()
            // SAFETY: each ring buffer's epoll descriptor, open while `self.rings` lives.
            .map(|r| unsafe { std::os::fd::BorrowedFd::borrow_raw(r.epoll_fd()) })
            .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
            .collect();
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(ms)) {
            // A stop and continue (SIGSTOP, a debugger, a suspended terminal) interrupts
            // the wait: that is no reason to stop reading.
            Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
            Err(e) => Err(e).context("waiting for events"),
        }
    }

    /// Up to `n` records of ring `i`, through the pipeline; how many there were.
    fn read(&mut self, i: usize, n: usize, pipe: &mut Pipeline) -> Result<usize> {
        // The callbacks only copy and return 0: a negative count is libbpf's own error.
        let got = self.rings[i].consume_raw_n(n);
        let got = usize::try_from(got)
            .map_err(|_| std::io::Error::from_raw_os_error(-got))
            .context("reading events")?;
        // Swapped out, so no borrow is held while the pipeline runs; both buffers keep
        // their capacity from one batch to the next.
        std::mem::swap(&mut *self.queue.borrow_mut(), &mut self.spare);
        let mut start = 0;
        for &end in &self.spare.ends {
            pipe.ingest(&self.spare.bytes[start..end]);
            start = end;
        }
        self.spare.clear();
        Ok(got)
    }
}

impl Source for Rings<'_> {
    fn pump(&mut self, pipe: &mut Pipeline, wait: Duration) -> Result<bool> {
        self.wait(wait)?;
        let mut more = false;
        for i in 0..self.rings.len() {
            let mut full = true;
            for _ in 0..BATCHES {
                if self.read(i, BATCH, pipe)? < BATCH {
                    full = false;
                    break;
                }
            }
            more |= full;
        }
        Ok(more)
    }

    /// Whatever the rings hold: at most as many records as they can hold, so a tree that
    /// still runs (an attached one, a third Ctrl-C) and writes as fast as it is read
    /// cannot keep agentguard from ending, and nothing written before the end is left.
    fn finish(&mut self, pipe: &mut Pipeline) -> Result<()> {
        for i in 0..self.rings.len() {
            let mut left = self.capacity;
            while left > 0 {
                let got = self.read(i, left.min(BATCH), pipe)?;
                if got < left.min(BATCH) {
                    break;
                }
                left -= got;
            }
        }
        Ok(())
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
