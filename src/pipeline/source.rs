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
    /// Feeds the pipeline what has arrived, waiting up to `wait` for something to arrive;
    /// false once the source has nothing more to give.
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
/// denials, read in one poll. libbpf calls a closure per record while it holds the ring;
/// the closures only copy the record here, so the pipeline itself is owned by the loop
/// and not shared with them. The copy is held at most one poll's worth (the rings' size).
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

impl Source for Rings<'_> {
    fn pump(&mut self, pipe: &mut Pipeline, wait: Duration) -> Result<bool> {
        // The kernel side wakes us only when a backlog builds: poll, then take the rest.
        // A stop and continue (SIGSTOP, a debugger, a suspended terminal) interrupts the
        // wait: that is no reason to stop reading.
        interrupted_ok(self.ring.poll(wait))?;
        interrupted_ok(self.ring.consume())?;
        // Swapped out, so no borrow is held while the pipeline runs; both buffers keep
        // their capacity from one poll to the next.
        std::mem::swap(&mut *self.queue.borrow_mut(), &mut self.spare);
        let mut start = 0;
        for &end in &self.spare.ends {
            pipe.ingest(&self.spare.bytes[start..end]);
            start = end;
        }
        self.spare.clear();
        Ok(true)
    }
}

/// A ring-buffer read that a signal interrupted is retried by the next turn of the loop.
fn interrupted_ok(r: libbpf_rs::Result<()>) -> Result<()> {
    match r {
        Err(e) if e.kind() == libbpf_rs::ErrorKind::Interrupted => Ok(()),
        other => other.context("reading events"),
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
