//! `agentguard record`: follow a process tree until it ends and write what it did.
use std::cell::RefCell;
use std::io::BufWriter;
use std::mem::MaybeUninit;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::attach;
use crate::cli::RecordArgs;
use crate::diff::{self, report, rules::Severity, Checker};
use crate::enforce::{self, egress::Egress, lsm::Lsm, watchdog::Watchdog};

/// The kernel side of enforcement, by backend: its denials are read with the sensor's.
enum Guard<'a> {
    Lsm(Lsm<'a>),
    Egress(Egress<'a>),
}

impl Guard<'_> {
    fn denials(&self) -> &dyn libbpf_rs::MapCore {
        match self {
            Guard::Lsm(l) => l.denials(),
            Guard::Egress(e) => e.denials(),
        }
    }
}
use crate::event::{Event, FlagKind, JsonlWriter, Kind};
use crate::launch;
use crate::profile::{merge, Builder, Profile, RunInfo, Vars};
use crate::sensor::{self, decode::Decoder, decode::Record, Sensor, Stats};

/// Everything the ring-buffer callback updates.
struct State {
    /// With --tui (watch): the UI's state, fed every event.
    tui: Option<crate::tui::app::App>,
    /// Denials (or, under audit, would-be denials) reported by enforcement.
    denials: u64,
    /// Each denial line printed, with how many times the same denial came: a loop that
    /// retries does not flood the terminal; the count is given at the end. Indexed, and
    /// bounded (DISTINCT_DENIALS): a tree that makes every denial different costs a line
    /// each, not a growing search.
    denied_lines: Vec<(String, u64)>,
    denied_index: std::collections::HashMap<String, usize>,
    audit: bool,
    enforcing: bool,
    /// Whether syscalls were decoded (not under a bare enforce).
    syscalls: bool,
    /// With --baseline: the live check.
    checker: Option<Checker>,
    /// enforce --deny-at: the profile as written and the level; what it does not cover
    /// and rates below the level was admitted: each such operation is reported once.
    admitting: Option<(Checker, Severity)>,
    admitted: Vec<diff::Finding>,
    decoder: Decoder,
    builder: Builder,
    jsonl: Option<JsonlWriter<BufWriter<std::fs::File>>>,
    events: u64,
    write_error: Option<anyhow::Error>,
    decode_errors: u64,
    /// Exit status of an attached root, from its exit record.
    root_exit: Option<i32>,
    root: u32,
    warnings: Vec<String>,
    /// LLM traffic and tool-call attribution (unless --no-llm).
    llm: Option<crate::llm::Llm>,
    /// Names for the addresses the tree connects to, from the DNS answers it received.
    names: crate::names::Names,
    /// Enforcing with Landlock: failed calls with EACCES are its denials.
    landlock: bool,
}

impl State {
    fn record(&mut self, r: Record) {
        match r {
            Record::Event(ev) => self.handle(ev),
            Record::Data(p) => {
                let evs = self.llm.as_mut().map(|l| l.payload(p)).unwrap_or_default();
                for ev in evs {
                    self.handle(ev);
                }
            }
        }
    }

    /// Puts the TLS probes on the files the tree mapped since the last call (the ring
    /// buffer's callback cannot: the sensor is borrowed while it runs).
    fn attach_tls(&mut self, sensor: &Sensor) -> Vec<Event> {
        let Some(llm) = &mut self.llm else {
            return Vec::new();
        };
        let todo = std::mem::take(&mut llm.coverage.to_attach);
        let mut notes = Vec::new();
        for (path, pid, is_lib) in todo {
            let r = sensor.attach_tls(std::path::Path::new(&path));
            llm.coverage.result(&path, r.is_ok());
            match r {
                Ok(funcs) => {
                    llm.coverage.cover(pid);
                    notes.push((
                        pid,
                        "covered",
                        path,
                        format!("TLS plaintext probed ({})", funcs.join(", ")),
                    ));
                }
                Err(e) if is_lib => notes.push((pid, "uncovered", path, format!("{e:#}"))),
                Err(_) => {}
            }
        }
        notes
            .into_iter()
            .map(|(pid, status, library, detail)| Event {
                ts: self.decoder.wall_time(mono_now()),
                pid,
                tid: pid,
                ppid: 0,
                exe: self.decoder.exe_of(pid),
                kind: Kind::Tls(crate::event::Tls {
                    status: status.into(),
                    library,
                    detail,
                }),
                cause: None,
            })
            .collect()
    }

    fn handle(&mut self, mut ev: Event) {
        self.names.observe(&mut ev);
        let notes = match &mut self.llm {
            Some(l) => l.observe(&mut ev),
            None => Vec::new(),
        };
        let denied = self.landlock.then(|| landlock_denial(&ev)).flatten();
        self.handle_one(ev);
        for n in notes.into_iter().chain(denied) {
            self.handle_one(n);
        }
    }

    fn handle_one(&mut self, ev: Event) {
        self.events += 1;
        if let Kind::Deny(d) = &ev.kind {
            self.denials += 1;
            let what = if d.enforced { "DENIED" } else { "WOULD DENY" };
            let access = if d.access.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    crate::diff::rules::names(&d.access.iter().copied().collect())
                )
            };
            let chain = crate::diff::report::chain(
                &self
                    .builder
                    .tree()
                    .chain(ev.pid)
                    .into_iter()
                    .map(|(pid, exe)| crate::diff::Proc { pid, exe })
                    .collect::<Vec<_>>(),
            );
            // Under the UI the denial shows there; a line on stderr would tear the screen.
            // The same denial (what, object, access, reason) again: counted, not printed.
            // By program too: a denial of another program is printed, not counted.
            let mut first = false;
            if self.tui.is_none() {
                let same = format!(
                    "{what} {} {}{access} by {}: {}",
                    d.op,
                    d.object,
                    crate::paths::printable(&ev.exe),
                    d.reason
                );
                first = match self.denied_index.get(&same) {
                    Some(&i) => {
                        self.denied_lines[i].1 += 1;
                        false
                    }
                    None => {
                        if self.denied_lines.len() < DISTINCT_DENIALS {
                            self.denied_index
                                .insert(same.clone(), self.denied_lines.len());
                            self.denied_lines.push((same, 1));
                        }
                        true
                    }
                };
            }
            if first {
                let cause = cause_suffix(ev.cause.as_ref());
                // One line whatever the names hold: a newline in a name must not forge
                // a line of agentguard's own.
                say(&crate::paths::printable(&format!(
                    "agentguard: {what} {} {}{access} by {chain}: {}{cause}",
                    d.op, d.object, d.reason
                )));
            }
        }
        if let Kind::Flag(f) = &ev.kind {
            let warn = match f.flag {
                FlagKind::IoUring => Some(format!("pid {} ({}) set up io_uring: its io_uring operations are not visible to the sensor", ev.pid, ev.exe)),
                FlagKind::CompatSyscall => Some(format!("pid {} ({}) made 32-bit syscalls, which the sensor does not decode", ev.pid, ev.exe)),
                _ => None,
            };
            if let Some(w) = warn.filter(|w| !self.warnings.contains(w)) {
                self.warnings.push(w);
            }
        }
        if ev.pid == self.root {
            if let Kind::Exit { code, signal } = ev.kind {
                self.root_exit = code.or(signal.map(|s| 128 + s));
            }
        }
        let whats = self.builder.add(&ev);
        let mut finding = None;
        if let Some(c) = &mut self.checker {
            for w in &whats {
                let tree = Some((self.builder.tree(), ev.pid));
                if let Some(f) = c.check_caused(w, 1, tree, ev.cause.as_ref()) {
                    if self.tui.is_none() {
                        let cause = cause_suffix(f.cause.as_ref());
                        say(&format!(
                            "agentguard: {} {}{cause}\n        by {}",
                            f.severity.name().to_uppercase(),
                            report::finding_line(&f),
                            report::chain(&f.process)
                        ));
                    }
                    finding = Some(f);
                }
            }
        }
        if let Some((c, level)) = &mut self.admitting {
            // What failed was not admitted (Landlock may narrow an admission).
            if !ev.denied() {
                for w in &whats {
                    let tree = Some((self.builder.tree(), ev.pid));
                    let Some(f) = c.check_caused(w, 1, tree, ev.cause.as_ref()) else {
                        continue;
                    };
                    if !f.new || f.severity >= *level {
                        continue;
                    }
                    if self.tui.is_none() {
                        let cause = cause_suffix(f.cause.as_ref());
                        say(&format!(
                            "agentguard: ALLOWED ({}) {} [{}]{cause}\n        by {}",
                            f.severity.name(),
                            report::finding_line(&f),
                            f.rule,
                            report::chain(&f.process)
                        ));
                    }
                    self.admitted.push(f);
                }
            }
        }
        if let (Some(w), None) = (&mut self.jsonl, &self.write_error) {
            if let Err(e) = w.write(&ev) {
                self.write_error = Some(e);
            }
        }
        if let Some(app) = &mut self.tui {
            app.push(ev, finding);
        }
    }
}

/// The tool call behind a live line, on a line of its own; nothing without one.
fn cause_suffix(c: Option<&crate::event::Cause>) -> String {
    c.map(|c| format!("\n        {}", report::cause_line(c)))
        .unwrap_or_default()
}

/// A live line on standard error in one write: the tree writes to the same stderr, and
/// eprintln! writes piece by piece, so the tree's own messages could land inside ours.
fn say(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// Landlock reports no denials; a file operation or exec of the tree that failed with
/// EACCES under it is one (connections are reported by the cgroup programs).
fn landlock_denial(ev: &Event) -> Option<Event> {
    let (op, object, access) = match &ev.kind {
        Kind::File(f) if f.error.as_deref() == Some("EACCES") => {
            let op = match f.op {
                crate::event::FileOp::Open => "open",
                _ => "path",
            };
            (op, f.path.clone(), f.access.clone())
        }
        Kind::Exec(x) if x.error.as_deref() == Some("EACCES") => ("exec", x.path.clone(), vec![]),
        // What the seccomp filter (enforce/seccomp.rs) and Landlock's signal scope refuse:
        // the sensor flags the call, with its error.
        Kind::Flag(f)
            if f.error.as_deref() == Some("EPERM")
                && matches!(
                    f.flag,
                    FlagKind::Terminal
                        | FlagKind::Socket
                        | FlagKind::Device
                        | FlagKind::Mount
                        | FlagKind::Signal
                        | FlagKind::ModuleLoad
                        | FlagKind::Bpf
                ) =>
        {
            let reason = if f.flag == FlagKind::Signal {
                "Landlock: a signal to a process outside the tree (EPERM)"
            } else {
                "seccomp: a call that reaches past the tree (EPERM)"
            };
            return Some(deny_event(
                ev,
                crate::diff::rules::flag_name(f.flag),
                f.detail.clone(),
                vec![],
                reason,
            ));
        }
        _ => return None,
    };
    Some(deny_event(
        ev,
        op,
        object,
        access,
        "Landlock: outside what the profile allows (EACCES)",
    ))
}

fn deny_event(
    ev: &Event,
    op: &str,
    object: String,
    access: Vec<crate::event::Access>,
    reason: &str,
) -> Event {
    Event {
        kind: Kind::Deny(crate::event::Deny {
            op: op.into(),
            object,
            access,
            reason: reason.into(),
            enforced: true,
        }),
        cause: ev.cause.clone(),
        ..ev.clone()
    }
}

enum Target {
    Command(Vec<String>),
    Pid(u32),
}

/// Distinct denial lines counted rather than printed again; past this many, each prints.
const DISTINCT_DENIALS: usize = 4096;

/// Records a tree; with `enforce`, also enforces a compiled profile on it (enforce.rs).
pub fn run(args: RecordArgs, mut enforce: Option<enforce::Setup>) -> Result<i32> {
    if args.tui {
        if let Some(why) = crate::tui::need_terminal("--tui") {
            eprintln!("agentguard: {why}");
            return Ok(2);
        }
    }
    let target = match args.pid {
        Some(pid) => Target::Pid(pid),
        None => Target::Command(args.command.clone()),
    };
    // First of all: before any BPF object exists, so the watchdog holds none of them, and
    // before any other descriptor, so that agentguard's end of its pipe is the first one a
    // dying agentguard closes, ahead of the BPF links that enforce the tree.
    let watchdog = match &enforce {
        Some(setup) => match Watchdog::start(setup.max_tasks) {
            Ok(w) => {
                // Said under -q too: a limit that is not there is a degradation.
                if let Some(why) = &w.unlimited {
                    eprintln!("agentguard: --max-tasks is not applied: {why}; the tree's forks are not limited in number");
                }
                Some(w)
            }
            Err(e) => {
                eprintln!("agentguard: {e:#}\nagentguard: the command was not started");
                return Ok(2);
            }
        },
        None => None,
    };
    // Signals arrive through a descriptor, read in the loop: no handler races the state.
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGWINCH,
    ] {
        mask.add(s);
    }
    mask.thread_block().context("blocking signals")?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .context("signalfd")?;

    // enforce alone follows the tree and reports denials; it decodes syscalls only when
    // something records them.
    let landlock_fd = match &enforce {
        Some(enforce::Setup {
            backend: enforce::Backend::Landlock(fd),
            ..
        }) => Some(std::os::fd::AsRawFd::as_raw_fd(fd)),
        _ => None,
    };
    // Under Landlock the kernel reports no denials: the sensor's failed calls are how
    // they are found (handle_one).
    let decode_syscalls = enforce.is_none()
        || landlock_fd.is_some()
        || enforce.as_ref().is_some_and(|e| e.admitting.is_some())
        || args.output.is_some()
        || args.events.is_some()
        || args.baseline.is_some()
        || args.merge_into.is_some();
    let started_wall = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let started = Instant::now();
    let mut obj = MaybeUninit::uninit();
    let mut sensor = Sensor::load(
        &mut obj,
        sensor::Config {
            ring_buffer_mb: args.ring_buffer_mb,
            max_procs: args.max_procs,
            // enforce alone follows the tree and reports denials; it decodes syscalls only
            // when something records them.
            syscalls: decode_syscalls,
            payload: decode_syscalls && !args.llm.no_llm,
        },
    )?;

    let enforce_active = enforce.is_some();
    let mut lsm_obj = MaybeUninit::uninit();
    let mut egress_obj = MaybeUninit::uninit();
    let guard = match &enforce {
        Some(setup) => {
            let loaded = match &setup.backend {
                enforce::Backend::Lsm => {
                    let cgroup = &watchdog.as_ref().expect("enforce starts a watchdog").cgroup;
                    Lsm::load(
                        &mut lsm_obj,
                        sensor.procs_fd(),
                        &setup.compiled,
                        setup.opts,
                        cgroup,
                    )
                    .map(Guard::Lsm)
                }
                enforce::Backend::Landlock(_) => {
                    let cgroup = &watchdog.as_ref().expect("enforce starts a watchdog").cgroup;
                    Egress::load(&mut egress_obj, &setup.compiled, cgroup, setup.opts.audit)
                        .map(Guard::Egress)
                }
            };
            match loaded {
                Ok(g) => Some(g),
                Err(e) => {
                    eprintln!("agentguard: {e:#}");
                    return Ok(2);
                }
            }
        }
        None => None,
    };
    // Outputs are named and their directories opened now, before the tree can plant
    // anything in them (src/output.rs), and a wrong path fails before the run.
    let out_profile = args
        .output
        .as_deref()
        .map(crate::output::Output::prepare)
        .transpose()?;
    let out_base = args
        .merge_into
        .as_deref()
        .map(crate::output::Output::prepare)
        .transpose()?;
    // The baseline learned into is read now too: what the tree does to the file during
    // the run does not become part of it, and a broken baseline fails before the run.
    let base_before = match &args.merge_into {
        Some(b) if b.exists() => Some(Profile::load(b)?),
        _ => None,
    };
    let jsonl = match &args.events {
        Some(p) => Some(JsonlWriter::new(BufWriter::with_capacity(
            1 << 20,
            crate::output::create_stream(p)?,
        ))),
        None => None,
    };
    // What ${CWD} and ${HOME} stand for in this run: the launch directory and home.
    let vars = match args.pid {
        Some(pid) => Vars::for_pid(pid),
        None => Vars::from_env(),
    };
    let checker = match &args.baseline {
        Some(b) => Some(Checker::new(&Profile::load(b)?, b, vars.clone())?),
        None => None,
    };
    let mut state = State {
        tui: args.tui.then(|| {
            crate::tui::app::App::new(
                format!("agentguard watch: {}", args.command.join(" ")),
                None,
            )
        }),
        checker,
        admitting: enforce.as_mut().and_then(|e| e.admitting.take()),
        admitted: Vec::new(),
        decoder: Decoder::new(sensor::mono_to_wall_ns()),
        builder: Builder::new(vars.clone()),
        jsonl,
        events: 0,
        write_error: None,
        decode_errors: 0,
        root_exit: None,
        root: 0,
        warnings: Vec::new(),
        denied_lines: Vec::new(),
        denied_index: std::collections::HashMap::new(),
        denials: 0,
        audit: enforce.as_ref().is_some_and(|e| e.opts.audit),
        enforcing: enforce.is_some(),
        syscalls: decode_syscalls,
        names: Default::default(),
        landlock: false,
        llm: (decode_syscalls && !args.llm.no_llm).then(|| {
            crate::llm::Llm::new(crate::llm::Options {
                bodies: args.llm.llm_bodies,
                body_max: args.llm.llm_body_max,
            })
        }),
    };
    // The host's libssl is probed before the command runs, so the tree's first TLS write
    // is seen; other copies are probed when the tree maps them.
    if let Some(l) = &mut state.llm {
        for path in crate::llm::libs::system_libssl() {
            l.coverage.to_attach.push((path, 0, true));
        }
    }
    let early_notes = state.attach_tls(&sensor);
    if let Some(setup) = &enforce {
        state.decoder.set_rule_names(
            setup
                .compiled
                .rules
                .iter()
                .map(|r| r.source.clone())
                .collect(),
        );
        state.landlock = landlock_fd.is_some();
        // The Landlock backend said what it runs and what it does not cover already.
        if !args.quiet && !state.landlock {
            let mode = if setup.opts.audit {
                "auditing (denying nothing)"
            } else {
                "enforcing"
            };
            eprintln!(
                "agentguard: {mode} {} ({} path rules, {} network rules, {} host rules) with BPF LSM",
                setup.profile_name,
                setup.compiled.rules.len(),
                setup.compiled.net.len(),
                setup.compiled.names.len()
            );
        }
    }

    // Put the tree in scope before it can do anything.
    let mut child = None;
    let mut relay = None;
    let mut pending: Vec<(u32, u64)> = Vec::new();
    let command_text = match &target {
        Target::Command(argv) => {
            let mut c = launch::spawn_gated(
                argv,
                args.tui.then_some(args.output_log.as_path()),
                enforce_active,
                landlock_fd,
            )?;
            let pid = c.pid.as_raw() as u32;
            let ticks = launch::start_ticks(pid)?;
            sensor.track(pid, ticks)?;
            if let Some(w) = &watchdog {
                w.adopt(pid)?;
            }
            state.builder.add_root(pid);
            state.decoder.seed(
                pid,
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
            state.root = pid;
            if let Some(w) = &watchdog {
                // From here the kernel side outlives agentguard until the tree is dead.
                w.hold_links(sensor.procs_fd())?;
            }
            let pty = c.pty.take();
            if let Err(e) = c.release() {
                let _ = waitpid(Pid::from_raw(pid as i32), None);
                eprintln!("agentguard: {e:#}");
                return Ok(127);
            }
            relay = pty.map(crate::pty::Pty::relay).transpose()?;
            child = Some(Pid::from_raw(pid as i32));
            shell_words(argv)
        }
        Target::Pid(root) => {
            let tree = attach::tree_of(*root)?;
            if let Some(w) = &watchdog {
                w.hold_links(sensor.procs_fd())?;
            }
            for p in &tree {
                sensor.track(p.pid, p.start_ticks)?;
                if let Some(w) = &watchdog {
                    // A process of the tree that exited since the tree was listed (a
                    // short-lived child) has nothing left to move: not a reason to fail.
                    if let Err(e) = w.adopt(p.pid) {
                        if attach::alive(p.pid, Some(p.start_ticks)) {
                            return Err(e);
                        }
                    }
                }
                state.builder.add_root(p.pid);
                state.decoder.seed(p.pid, p.exe.clone());
                pending.push((p.pid, p.start_ticks));
            }
            state.root = *root;
            if !args.quiet {
                eprintln!(
                    "agentguard: recording pid {root} and {} descendants; Ctrl-C to stop",
                    tree.len() - 1
                );
            }
            format!("--pid {root} ({})", tree[0].exe)
        }
    };

    let start = Event {
        ts: state.decoder.wall_time(mono_now()),
        pid: state.root,
        tid: state.root,
        ppid: 0,
        exe: state.decoder.exe_of(state.root),
        kind: Kind::Start {
            command: command_text.clone(),
            cwd: vars.cwd.clone(),
            home: vars.home.clone(),
        },
        cause: None,
    };
    state.handle(start);
    for mut n in early_notes {
        (n.pid, n.tid, n.exe) = (state.root, state.root, state.decoder.exe_of(state.root));
        state.handle(n);
    }
    let state = Rc::new(RefCell::new(state));
    let record = |state: Rc<RefCell<State>>| {
        move |raw: &[u8]| {
            let mut st = state.borrow_mut();
            match st.decoder.decode(raw) {
                Ok(r) => st.record(r),
                Err(_) => st.decode_errors += 1,
            }
            0
        }
    };
    let ring = sensor.ring(
        record(Rc::clone(&state)),
        guard
            .as_ref()
            .map(|g| (g.denials(), record(Rc::clone(&state)))),
    )?;

    // The UI takes the terminal once the command runs (its output goes to --output-log).
    let mut terminal = if args.tui {
        Some(ratatui::init())
    } else {
        None
    };
    // Gives the terminal back however this function ends (an error too; a panic is
    // handled by ratatui's hook).
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            if self.0 {
                ratatui::restore();
            }
        }
    }
    let _restore = Restore(args.tui);
    let mut root_status: Option<i32> = None;
    let mut interrupted = false;
    let mut hung_up = false;
    let mut last_stats = Stats::default();
    let mut last_check = Instant::now();
    let mut interrupts = 0;
    loop {
        // The kernel side wakes us only when a backlog builds: poll, then take the rest.
        // A stop and continue (SIGSTOP, a debugger, a suspended terminal) interrupts the
        // wait: that is no reason to stop reading.
        interrupted_ok(ring.poll(Duration::from_millis(20)))?;
        interrupted_ok(ring.consume())?;
        {
            let mut st = state.borrow_mut();
            for n in st.attach_tls(&sensor) {
                st.handle(n);
            }
        }

        while let Ok(Some(si)) = signals.read_signal() {
            let sig = Signal::try_from(si.ssi_signo as i32).unwrap_or(Signal::SIGTERM);
            if sig == Signal::SIGWINCH {
                if let Some(r) = &relay {
                    r.resize();
                }
                continue;
            }
            // The terminal went away: no one is left to press q at the end.
            hung_up |= sig == Signal::SIGHUP;
            interrupts += 1;
            match (child, root_status) {
                (Some(pid), None) if interrupts < 3 => {
                    // The command leads a session of its own, so the terminal's Ctrl-C
                    // reaches agentguard only (on a pseudo-terminal of its own, the
                    // command gets its Ctrl-C from there). Passed on to its group, as the
                    // terminal would have.
                    let _ = nix::sys::signal::killpg(pid, sig);
                }
                _ => interrupted = true,
            }
        }
        if let Some(t) = &mut terminal {
            let quit = {
                let mut st = state.borrow_mut();
                let app = st
                    .tui
                    .as_mut()
                    .expect("the UI state exists with the terminal");
                crate::tui::step(t, app, Duration::ZERO)?
            };
            if quit {
                // Quitting the UI ends the watch; a command still running is asked to stop.
                if let (Some(pid), None) = (child, root_status) {
                    let _ = kill(pid, Signal::SIGTERM);
                }
                interrupted = true;
            }
        }
        if let (Some(pid), None) = (child, root_status) {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => root_status = Some(code),
                Ok(WaitStatus::Signaled(_, sig, _)) => root_status = Some(128 + sig as i32),
                _ => {}
            }
        }
        if last_check.elapsed() >= Duration::from_millis(200) {
            last_check = Instant::now();
            report_losses(&sensor, &state, &mut last_stats)?;
            // Processes found in /proc that died before their first event never had an
            // exit record to take them out of scope.
            pending.retain(|(pid, ticks)| {
                let gone = !attach::alive(*pid, Some(*ticks));
                if gone && sensor.tracked().contains(pid) {
                    sensor.untrack(*pid);
                }
                !gone
            });
        }
        let root_done = child.is_none() || root_status.is_some();
        if interrupted || (root_done && sensor.tree_empty()) {
            break;
        }
    }
    interrupted_ok(ring.consume())?;
    report_losses(&sensor, &state, &mut last_stats)?;
    if let Some(r) = &mut relay {
        r.finish();
    }
    if let Some(mut t) = terminal.take() {
        // The tree ended: the UI stays, with how it ended, until q.
        let ended = if interrupted {
            "stopped".to_string()
        } else {
            format!(
                "the tree ended (exit {})",
                root_status.or(state.borrow().root_exit).unwrap_or(0)
            )
        };
        let mut st = state.borrow_mut();
        let app = st
            .tui
            .as_mut()
            .expect("the UI state exists with the terminal");
        app.done = Some(format!("{ended}: q to quit"));
        while !interrupted
            && !hung_up
            && !crate::tui::step(&mut t, app, Duration::from_millis(250))?
        {
            // A hangup (the terminal went away), SIGTERM or SIGINT ends the wait for q.
            if let Ok(Some(_)) = signals.read_signal() {
                break;
            }
        }
        drop(st);
        ratatui::restore();
    }
    drop(_restore);
    let leftover = if sensor.tree_empty() {
        0
    } else {
        sensor.tracked().len()
    };
    drop(ring);

    let mut st = Rc::try_unwrap(state)
        .ok()
        .context("the ring buffer still holds the state")?
        .into_inner();
    let seconds = started.elapsed().as_secs_f64();
    let exit = match (&target, root_status) {
        (Target::Command(_), Some(s)) => s,
        (Target::Command(_), None) => st.root_exit.unwrap_or(0),
        (Target::Pid(_), _) if interrupted => 130,
        (Target::Pid(_), _) => st.root_exit.unwrap_or(0),
    };
    // The log's last line: whoever reads it knows it is whole.
    let end = Event {
        ts: st.decoder.wall_time(mono_now()),
        pid: st.root,
        tid: st.root,
        ppid: 0,
        exe: String::new(),
        kind: Kind::End {
            exit,
            interrupted,
            events: st.events,
            lost: last_stats.lost,
            procs_untracked: last_stats.procs_untracked,
            running: leftover as u64,
            decode_errors: st.decode_errors,
        },
        cause: None,
    };
    st.handle_one(end);
    let run = RunInfo {
        id: run_id(),
        command: command_text.clone(),
        started: started_wall,
        seconds: (seconds * 1000.0).round() / 1000.0,
        exit: Some(exit),
        lost_events: last_stats.lost,
        procs_untracked: last_stats.procs_untracked,
        running: leftover as u64,
        decode_errors: st.decode_errors,
        cwd: vars.cwd.clone(),
        home: vars.home.clone(),
    };
    let profile = st.builder.finish(run);
    let mut outputs = Vec::new();
    if let Some(base) = &args.merge_into {
        // Learn as you go: the baseline gains this run (a missing baseline starts here).
        let merged = if let Some(b) = base_before {
            merge::merge(&[
                (b, base.display().to_string()),
                (profile.clone(), "this run".into()),
            ])?
        } else {
            profile.clone()
        };
        match &out_base {
            Some(o) => merged.save_to(o)?,
            None => merged.save(base)?,
        }
        outputs.push(format!("{} ({} runs)", base.display(), merged.runs));
    }
    match &args.output {
        Some(p) => {
            match &out_profile {
                Some(o) => profile.save_to(o)?,
                None => profile.save(p)?,
            }
            outputs.push(p.display().to_string());
        }
        // Under enforce, or when learning into a baseline, the profile is written only on request.
        None if args.merge_into.is_some() || enforce_active || args.watch => {}
        None => {
            crate::output::stdout(&profile.to_toml()?, "the profile")?;
        }
    }
    if let Some(w) = st.jsonl.take() {
        if let Some(e) = st.write_error.take() {
            return Err(e).context("writing the event log");
        }
        w.finish().context("writing the event log")?;
        outputs.push(format!(
            "{} ({} events)",
            args.events
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            st.events
        ));
    }
    for (line, n) in st.denied_lines.iter().filter(|(_, n)| *n > 1) {
        say(&crate::paths::printable(&format!(
            "agentguard: {line} ({n} times in all; printed once)"
        )));
    }
    if !args.quiet {
        print_summary(
            &command_text,
            exit,
            seconds,
            &st,
            last_stats,
            leftover,
            &outputs,
            interrupted,
        );
    }
    // The command's own failure comes first; then the gate.
    if let Some(c) = &st.checker {
        let (findings, _) = c.finish();
        let failed = diff::gate(args.fail_on, &findings);
        // A gate never passes on missing data: what the sensor lost could be the finding.
        let gaps = diff::complete::Gaps {
            lost: last_stats.lost,
            untracked: last_stats.procs_untracked,
            running: leftover as u64,
            undecoded: st.decode_errors,
        };
        let incomplete = !gaps.whole() && !failed;
        if !args.quiet {
            let n = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
            // watch has no gate: it shows, it does not judge.
            let gate = if args.watch {
                String::new()
            } else if failed {
                "; gate --fail-on: FAILED".to_string()
            } else if incomplete {
                format!(
                    "; gate --fail-on: INCOMPLETE ({} records lost, {} undecodable, {} processes untracked, {} still running: the run was not seen whole)",
                    gaps.lost, gaps.undecoded, gaps.untracked, gaps.running
                )
            } else {
                "; gate --fail-on: passed".to_string()
            };
            eprintln!(
                "agentguard: {} findings against the baseline ({} critical, {} high, {} medium, {} low){gate}",
                findings.len(),
                n(Severity::Critical),
                n(Severity::High),
                n(Severity::Medium),
                n(Severity::Low),
            );
        }
        if exit == 0 && failed {
            return Ok(1);
        }
        if exit == 0 && incomplete && !args.watch {
            return Ok(2);
        }
    }
    Ok(exit)
}

/// Losses are events too: they go into the stream, so a replay knows it is incomplete.
fn report_losses(sensor: &Sensor, state: &Rc<RefCell<State>>, last: &mut Stats) -> Result<()> {
    let now = sensor.stats()?;
    if now != *last {
        *last = now;
        let mut st = state.borrow_mut();
        let ts = st.decoder.wall_time(mono_now());
        let ev = Event {
            ts,
            pid: 0,
            tid: 0,
            ppid: 0,
            exe: String::new(),
            kind: Kind::Lost {
                lost: now.lost,
                procs_untracked: now.procs_untracked,
            },
            cause: None,
        };
        st.handle(ev);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn print_summary(
    command: &str,
    exit: i32,
    seconds: f64,
    st: &State,
    stats: Stats,
    leftover: usize,
    outputs: &[String],
    interrupted: bool,
) {
    let b = &st.builder;
    let mut s = String::new();
    let how = if interrupted {
        "interrupted".to_string()
    } else {
        format!("exit {exit}")
    };
    let did = if st.enforcing { "enforced" } else { "recorded" };
    s.push_str(&format!(
        "agentguard: {did} {command} ({how}, {seconds:.2} s)\n"
    ));
    for (what, n) in [
        ("processes", b.processes),
        ("execs", b.execs()),
        ("files", b.files() as u64),
        ("connections", b.connections() as u64),
        ("DNS names", b.dns_names() as u64),
        ("flagged", b.flags() as u64),
        ("LLM calls", st.llm.as_ref().map_or(0, |l| l.requests)),
        ("tool calls", st.llm.as_ref().map_or(0, |l| l.tool_calls)),
        ("tools", b.tools() as u64),
        ("failed calls", b.failures),
        ("lost events", stats.lost),
    ] {
        s.push_str(&format!("  {what:<13}{n:>8}\n"));
    }
    if !st.syscalls {
        s.push_str(
            "  (files, connections and DNS were not recorded: add -o or --events to record them)\n",
        );
    }
    if st.enforcing {
        let what = if st.audit { "would deny" } else { "denied" };
        s.push_str(&format!("  {what:<13}{:>8}\n", st.denials));
    }
    if let Some((_, level)) = &st.admitting {
        s.push_str(&format!("  {:<13}{:>8}\n", "allowed", st.admitted.len()));
        if !st.admitted.is_empty() {
            s.push_str(&format!(
                "  allowed beyond the profile, rated below {} (record with -o and merge into the baseline to make them part of it):\n",
                level.name()
            ));
            for f in &st.admitted {
                s.push_str(&format!(
                    "    {:<7}{} [{}]\n",
                    f.severity.name(),
                    report::finding_line(f),
                    f.rule
                ));
            }
        }
    }
    if stats.procs_untracked > 0 {
        s.push_str(&format!(
            "  warning: {} processes could not be tracked (process map full: raise --max-procs)\n",
            stats.procs_untracked
        ));
    }
    if stats.lost > 0 {
        s.push_str("  warning: events were lost (ring buffer full: raise --ring-buffer-mb); the profile is incomplete\n");
    }
    if st.decode_errors > 0 {
        s.push_str(&format!(
            "  warning: {} records could not be decoded\n",
            st.decode_errors
        ));
    }
    if leftover > 0 {
        s.push_str(&format!("  note: {leftover} processes of the tree are still running and are no longer recorded\n"));
    }
    for w in &st.warnings {
        s.push_str(&format!("  warning: {w}\n"));
    }
    for o in outputs {
        s.push_str(&format!("  wrote {o}\n"));
    }
    eprint!("{s}");
}

/// A ring-buffer read that a signal interrupted is retried by the next turn of the loop.
fn interrupted_ok(r: libbpf_rs::Result<()>) -> Result<()> {
    match r {
        Err(e) if e.kind() == libbpf_rs::ErrorKind::Interrupted => Ok(()),
        other => other.context("reading events"),
    }
}

fn mono_now() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// A unique id for this recording, so that merging it twice counts it once.
fn run_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|u| u.trim().to_string())
        .unwrap_or_else(|_| format!("{}-{}", std::process::id(), sensor::mono_to_wall_ns()))
}

/// The command line as a person would type it.
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn shell_words_quotes_what_needs_it() {
        assert_eq!(
            super::shell_words(&["python3".into(), "a b".into(), "it's".into(), "x=1".into()]),
            r"python3 'a b' 'it'\''s' x=1"
        );
    }
}
