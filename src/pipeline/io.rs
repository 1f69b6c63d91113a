//! The kernel's byte counts (io.bpf.c) paired with the files they are for: a NAME record
//! says what an open file is when it is first counted, COUNT records say what it moved
//! since. Each count becomes an `io` event of the process that first used the file,
//! named (for a socket, with the DNS name the tree resolved) as it was then.
use std::collections::HashMap;

use crate::event::{Event, Kind, Timestamp};
use crate::sensor::decode::IoRecord;

/// Files named and not yet reported. The kernel sends exactly one COUNT after each NAME
/// (when the file's entry is taken over, at once when its map is full, or drained at the
/// end), so a name is dropped with its count: this holds no more than the kernel's map.
#[derive(Default)]
pub struct Files {
    named: HashMap<u64, Event>,
}

impl Files {
    /// One record; the event it completes, if any.
    pub fn record(&mut self, r: IoRecord) -> Option<Event> {
        match r {
            IoRecord::Name { key, ev } => {
                self.named.insert(key, ev);
                None
            }
            IoRecord::Count {
                key,
                read,
                written,
                ts,
            } => self.count(key, read, written, ts),
        }
    }

    /// A count for a named file: its io event. A file left unnamed (a detached mount's)
    /// reports nothing.
    pub fn count(&mut self, key: u64, read: u64, written: u64, ts: Timestamp) -> Option<Event> {
        let named = self.named.remove(&key)?;
        let Kind::Io(io) = &named.kind else {
            return None;
        };
        if io.path.is_none() && io.proto.is_none() {
            return None;
        }
        let mut io = io.clone();
        io.read = read;
        io.written = written;
        Some(Event {
            ts,
            kind: Kind::Io(io),
            ..named
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Io;

    fn named(key: u64, pid: u32, path: Option<&str>) -> IoRecord {
        IoRecord::Name {
            key,
            ev: Event {
                ts: "2026-12-05T12:00:00Z".parse().unwrap(),
                pid,
                tid: pid,
                ppid: 1,
                exe: "/bin/cat".into(),
                kind: Kind::Io(Io {
                    path: path.map(String::from),
                    ..Io::default()
                }),
                cause: None,
            },
        }
    }

    fn count(key: u64, read: u64) -> IoRecord {
        IoRecord::Count {
            key,
            read,
            written: 1,
            ts: "2026-12-05T12:00:09Z".parse().unwrap(),
        }
    }

    #[test]
    fn counts_become_events_of_the_file_last_named_under_their_key() {
        let mut f = Files::default();
        assert!(f.record(count(7, 10)).is_none(), "never named");
        assert!(f.record(named(7, 40, Some("/data/a"))).is_none());
        let ev = f.record(count(7, 10)).unwrap();
        let Kind::Io(io) = &ev.kind else { panic!() };
        assert_eq!(
            (ev.pid, io.path.as_deref(), io.read, io.written),
            (40, Some("/data/a"), 10, 1)
        );
        assert_eq!(ev.ts.to_string(), "2026-12-05T12:00:09.000000000Z");
        assert!(f.record(count(7, 10)).is_none(), "one count per name");
        // The same memory, another file.
        f.record(named(7, 41, Some("/data/b")));
        let ev = f.record(count(7, 3)).unwrap();
        let Kind::Io(io) = &ev.kind else { panic!() };
        assert_eq!((ev.pid, io.path.as_deref()), (41, Some("/data/b")));
        // Unnamed (a detached mount's file): its bytes name nothing.
        f.record(named(8, 41, None));
        assert!(f.record(count(8, 3)).is_none());
    }
}
