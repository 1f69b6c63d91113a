//! The pipeline every live run's events go through, in one order:
//!
//! 1. decode: the sensor's and the guard's records become events (sensor/decode.rs),
//!    named from the run's one process tree (tree.rs), which every event then updates
//!    before the later stages read it;
//! 2. names: connections get the DNS name the tree resolved for the address (names.rs);
//! 3. LLM: TLS plaintext becomes LLM calls and tool calls, and every event is tied to the
//!    tool call behind it (llm/);
//! 4. Landlock denials: under Landlock, a call that failed for its reasons becomes a denial
//!    (landlock.rs);
//! 5. the profile builder;
//! 6. the sinks: denial lines, live findings and admissions (sinks/), the event log, the UI.
mod io;
pub mod landlock;
pub mod replay;
mod reported;
pub mod source;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io::BufWriter;

use libbpf_rs::Link;

use crate::event::{Event, FlagKind, JsonlWriter, Kind, Tls, TlsStatus};
use crate::profile::Builder;
use crate::sensor::{decode::Decoder, decode::IoRecord, decode::Record, mono_now, Sensor, Stats};
use crate::sinks::{denials::Denials, findings::Findings};
use crate::tree::Tree;

/// Puts enforcement's HTTPS request check on a file the sensor probes (the links hold it).
pub type TlsCheck<'a> = dyn Fn(&std::path::Path) -> anyhow::Result<Vec<Link>> + 'a;

pub struct Pipeline {
    pub decoder: Decoder,
    /// The run's process tree, shared by every stage.
    pub tree: Tree,
    /// Names for the addresses the tree connects to, from the DNS answers it received.
    pub names: crate::names::Names,
    /// LLM traffic and tool-call attribution (unless --no-llm).
    pub llm: Option<crate::llm::Llm>,
    /// Enforcing with Landlock: failed calls with EACCES are its denials.
    pub landlock: bool,
    pub builder: Builder,
    pub denials: Denials,
    pub findings: Findings,
    pub jsonl: Option<JsonlWriter<BufWriter<crate::spool::Stream>>>,
    /// --otlp: the run as a trace, sent as it happens.
    pub otlp: Option<crate::sinks::otlp::Exporter>,
    /// With --tui (watch): the UI's state, fed every event.
    pub tui: Option<crate::tui::app::App>,
    /// Denials and findings printed on standard error as they come (not under the UI,
    /// where they show in place, nor in a replay).
    pub print: bool,
    /// Events that went through, the first event-log write error, undecodable records.
    pub events: u64,
    pub write_error: Option<anyhow::Error>,
    pub decode_errors: u64,
    /// The tree's root, and its exit status from its exit record (for an attached root).
    pub root: u32,
    pub root_exit: Option<i32>,
    /// What the sensor cannot see (io_uring, 32-bit syscalls), said once each at the end.
    pub warnings: Vec<String>,
    /// Open files the kernel counts bytes for, by its key.
    io: io::Files,
    /// The links of probes put where no symbol said, by file: taken off (dropped) when
    /// what they read is not HTTP (llm::verify).
    unverified: HashMap<String, Vec<Link>>,
    /// Tool calls the agent's hook reported, waiting for their sender to be known
    /// (reported.rs), and how many came from no process of the tree.
    /// (with whether the tree showed its pid as an exited, earlier process at receipt)
    hooks_waiting: Vec<(std::time::Instant, crate::hook::Received, bool)>,
    pub hooks_refused: u64,
}

impl Pipeline {
    pub fn new(decoder: Decoder, builder: Builder) -> Pipeline {
        Pipeline {
            decoder,
            tree: Tree::default(),
            names: Default::default(),
            llm: None,
            landlock: false,
            builder,
            denials: Denials::default(),
            findings: Findings::default(),
            jsonl: None,
            otlp: None,
            tui: None,
            print: true,
            events: 0,
            write_error: None,
            decode_errors: 0,
            root: 0,
            root_exit: None,
            warnings: Vec::new(),
            io: io::Files::default(),
            unverified: HashMap::new(),
            hooks_waiting: Vec::new(),
            hooks_refused: 0,
        }
    }

    /// One record from a ring buffer, the sensor's or the guard's.
    pub fn ingest(&mut self, raw: &[u8]) {
        match self.decoder.decode(raw, &self.tree) {
            Ok(Record::Event(ev)) => self.handle(ev),
            Ok(Record::Data(p)) => {
                let evs = self.llm.as_mut().map(|l| l.payload(p)).unwrap_or_default();
                for ev in evs {
                    self.handle(ev);
                }
            }
            Ok(Record::Tie(pid, from, to)) => {
                if let Some(l) = self.llm.as_mut() {
                    l.tie(pid, from, to);
                }
            }
            Ok(Record::Io(r)) => {
                // A socket is named as it was when first used: the DNS name then.
                let r = match r {
                    IoRecord::Name { key, mut ev } => {
                        self.names.observe(&mut ev);
                        IoRecord::Name { key, ev }
                    }
                    count => count,
                };
                if let Some(ev) = self.io.record(r) {
                    self.handle(ev);
                }
            }
            Err(_) => self.decode_errors += 1,
        }
    }

    /// What the kernel still counted when the recording stopped (Sensor::io_left): the
    /// bytes of files still open, or closed and not yet taken over, as io events.
    pub fn io_left(&mut self, mut left: Vec<(u64, u64, u64)>) {
        left.sort_unstable();
        let ts = self.decoder.wall_time(mono_now());
        for (key, read, written) in left {
            if read == 0 && written == 0 {
                continue;
            }
            if let Some(ev) = self.io.count(key, read, written, ts) {
                self.handle(ev);
            }
        }
    }

    /// An event agentguard makes itself, timed and named as the tree's root.
    pub fn own_event(&self, pid: u32, kind: Kind) -> Event {
        Event {
            ts: self.decoder.wall_time(mono_now()),
            pid,
            tid: pid,
            ppid: 0,
            exe: self.tree.exe_of(pid).to_string(),
            kind,
            cause: None,
        }
    }

    /// The run's first event, naming the recording's hook socket if it has one, then the
    /// notes of what was probed before the tree existed, as its root's.
    pub fn begin(
        &mut self,
        command: String,
        run: &str,
        vars: &crate::profile::Vars,
        hook: Option<&str>,
        early: Vec<Event>,
    ) {
        let start = Kind::Start {
            command,
            run: Some(run.to_string()),
            cwd: vars.cwd.clone(),
            home: vars.home.clone(),
            llm: self.llm.is_some(),
            hook: hook.map(|h| format!("@{h}")),
        };
        self.handle(self.own_event(self.root, start));
        for mut n in early {
            (n.pid, n.tid) = (self.root, self.root);
            n.exe = self.tree.exe_of(self.root).to_string();
            self.handle(n);
        }
    }

    /// Puts the TLS probes on the host's libssl, before the command runs, so the tree's
    /// first TLS write is seen; other copies are probed when the tree maps them.
    pub fn attach_system_tls(
        &mut self,
        sensor: &Sensor,
        check: Option<&TlsCheck>,
        keep: &mut Vec<Link>,
    ) -> Vec<Event> {
        if let Some(l) = &mut self.llm {
            for path in crate::llm::libs::system_libssl() {
                l.coverage.to_attach.push((path, 0, true));
            }
        }
        self.attach_tls(sensor, check, keep)
    }

    /// Puts the TLS probes on the files the tree mapped since the last call (the ring
    /// buffer's callback cannot: the sensor is borrowed while it runs), and returns what
    /// each attempt found, as events. The probes stay while `keep` holds their links.
    /// Under enforce, `check` puts the HTTPS request check on each file probed.
    pub fn attach_tls(
        &mut self,
        sensor: &Sensor,
        check: Option<&TlsCheck>,
        keep: &mut Vec<Link>,
    ) -> Vec<Event> {
        let Some(llm) = &mut self.llm else {
            return Vec::new();
        };
        for path in std::mem::take(&mut llm.coverage.verify.to_detach) {
            self.unverified.remove(&path);
        }
        let todo = std::mem::take(&mut llm.coverage.to_attach);
        let mut notes = Vec::new();
        for (path, pid, is_lib) in todo {
            let named = std::path::Path::new(&path);
            let Some(file) = open_image(named, pid, is_lib) else {
                llm.coverage.untried(&path);
                continue;
            };
            let r = sensor.attach_tls(&file, named);
            // Probes put without symbols cover nothing until they have read an answer.
            let unverified = r.as_ref().is_ok_and(|p| p.how.is_some());
            llm.coverage.result(&path, r.is_ok() && !unverified);
            match r {
                Ok(probes) => {
                    let now = self.decoder.wall_time(mono_now());
                    if let Some(late) = llm.coverage.late(pid, &path, now) {
                        notes.push((pid, TlsStatus::Uncovered, path.clone(), late));
                    }
                    let mut detail = format!("TLS plaintext probed ({})", probes.funcs.join(", "));
                    if let Some(how) = &probes.how {
                        detail += &format!(": {how}");
                        llm.coverage.cover_when_verified(pid, &path);
                        self.unverified.insert(path.clone(), probes.links);
                    } else {
                        llm.coverage.cover(pid);
                        keep.extend(probes.links);
                    }
                    let mut failed = None;
                    match check.map(|c| c(named)) {
                        Some(Ok(links)) => {
                            keep.extend(links);
                            detail.push_str("; HTTPS requests checked by endpoint");
                        }
                        // Enforcement that does not hold is said, never left out.
                        Some(Err(e)) => failed = Some(format!("HTTPS requests through it are checked by destination only, not by endpoint: {e:#}")),
                        None => {}
                    }
                    notes.push((pid, TlsStatus::Covered, path.clone(), detail));
                    if let Some(f) = failed {
                        notes.push((pid, TlsStatus::Uncovered, path, f));
                    }
                }
                Err(e) if is_lib => notes.push((pid, TlsStatus::Uncovered, path, format!("{e:#}"))),
                Err(_) => {}
            }
        }
        notes
            .into_iter()
            .map(|(pid, status, library, detail)| {
                self.own_event(
                    pid,
                    Kind::Tls(Tls {
                        status,
                        library,
                        detail,
                    }),
                )
            })
            .collect()
    }

    /// Losses are events too: they go into the stream, so a replay knows it is incomplete.
    pub fn losses(&mut self, now: Stats, last: &mut Stats) {
        if now == *last {
            return;
        }
        *last = now;
        let ev = Event {
            exe: String::new(),
            ..self.own_event(
                0,
                Kind::Lost {
                    lost: now.lost,
                    procs_untracked: now.procs_untracked,
                },
            )
        };
        self.handle(ev);
    }

    /// A root of the tree: the launched command (which runs agentguard until it execs),
    /// or a process that already ran when tracking began.
    pub fn add_root(&mut self, pid: u32, exe: &str) {
        self.add_existing(pid, 0, exe);
    }

    /// A process of an attached tree, found running under `ppid` (0: the tree's root).
    pub fn add_existing(&mut self, pid: u32, ppid: u32, exe: &str) {
        self.tree.add_existing(pid, ppid, exe);
        self.builder.add_root();
    }

    /// An event through the stages after decoding.
    pub fn handle(&mut self, mut ev: Event) {
        self.tree.update(&ev);
        self.names.observe(&mut ev);
        let notes = match &mut self.llm {
            Some(l) => l.observe(&mut ev, &self.tree),
            None => Vec::new(),
        };
        let denied = self.landlock.then(|| landlock::denial(&ev)).flatten();
        self.sinks(ev);
        for n in notes.into_iter().chain(denied) {
            self.handle_one(n);
        }
    }

    /// An event that needs no further stage (the run's end, a note of a stage): the
    /// builder and the sinks.
    pub fn handle_one(&mut self, ev: Event) {
        self.tree.update(&ev);
        self.sinks(ev);
    }

    /// The event log's buffered lines, out now; a failure is kept as its first write error.
    pub fn flush_log(&mut self) {
        if let (Some(w), None) = (&mut self.jsonl, &self.write_error) {
            if let Err(e) = w.flush() {
                self.write_error = Some(e);
            }
        }
    }

    /// The builder and the sinks, for an event already in the tree.
    fn sinks(&mut self, ev: Event) {
        self.events += 1;
        let print = self.print && self.tui.is_none();
        if let Kind::Deny(d) = &ev.kind {
            self.denials.observe(&ev, d, &self.tree, print);
        }
        if let Kind::Flag(f) = &ev.kind {
            let warn = match f.flag {
                FlagKind::IoUring => Some(format!("pid {} ({}) set up io_uring: its io_uring operations are not visible to the sensor", ev.pid, ev.exe)),
                FlagKind::Aio => Some(format!("pid {} ({}) set up Linux AIO: the bytes it reads and writes through io_submit are not counted", ev.pid, ev.exe)),
                FlagKind::CompatSyscall => Some(format!("pid {} ({}) made 32-bit syscalls, which the sensor does not decode", ev.pid, ev.exe)),
                _ => None,
            };
            if let Some(w) = warn.filter(|w| !self.warnings.contains(w)) {
                self.warnings.push(w);
            }
        }
        // TLS it cannot read, said where the counts are read: "LLM calls 0" alone reads
        // as an agent that made none. (A process with no probed library that connects
        // out is only a tls event: most such connections are not TLS.)
        if let Kind::Tls(t) = &ev.kind {
            if matches!(t.status, TlsStatus::Uncovered | TlsStatus::Unparsed) {
                let w = format!("pid {} ({}): {}", ev.pid, ev.exe, t.detail);
                if !self.warnings.contains(&w) {
                    self.warnings.push(w);
                }
            }
        }
        if ev.pid == self.root {
            if let Kind::Exit { code, signal } = ev.kind {
                self.root_exit = code.or(signal.map(|s| s.saturating_add(128)));
            }
        }
        let whats = self.builder.add(&ev, &self.tree);
        let finding = self.findings.observe(&ev, &whats, &self.tree, print);
        if let (Some(w), None) = (&mut self.jsonl, &self.write_error) {
            if let Err(e) = w.write(&ev) {
                self.write_error = Some(e);
            }
        }
        if let Some(o) = &mut self.otlp {
            o.observe(&ev, finding.as_ref());
        }
        if let Some(app) = &mut self.tui {
            app.push(ev, finding);
        }
    }
}

/// The file to probe: a library by its path (whatever it is when opened, its offsets are
/// found in that same file); an executable through the image its process runs, not the
/// path, which the tree may have pointed at another file since. None when the process is
/// gone or runs another image now (its next exec of the path tries again).
fn open_image(path: &std::path::Path, pid: u32, is_lib: bool) -> Option<std::fs::File> {
    if is_lib {
        return std::fs::File::open(path).ok();
    }
    let exe = format!("/proc/{pid}/exe");
    // Opened, then named: an exec in between shows as another name.
    let file = std::fs::File::open(&exe).ok()?;
    (std::fs::read_link(&exe).ok()? == path).then_some(file)
}
