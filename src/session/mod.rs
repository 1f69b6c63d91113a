//! A session: one tree followed from its first instruction (or from when agentguard
//! attached) to its end, for record, watch and enforce alike. The commands (src/cmd) say
//! what it does through RecordArgs and, for enforce, the guard's setup; the events go
//! through the pipeline (src/pipeline) to the sinks the arguments ask for.
pub mod gate;
pub mod guard;
pub mod outputs;
pub mod target;

use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use crate::cli::RecordArgs;
use crate::enforce::{Backend, Setup};
use crate::event::Kind;
use crate::pipeline::source::{Rings, Source};
use crate::pipeline::{Pipeline, TlsCheck};
use crate::profile::{Builder, RunInfo, Vars};
use crate::sensor::{self, decode::Decoder, Sensor, Stats};
use target::{Launch, Started, Target};

/// Who the tree runs as (`--user`, resolved), and what ${CWD} and ${HOME} stand for in
/// its run: the launch directory and that user's home (an attached process: its own
/// directory).
pub fn run_vars(args: &RecordArgs) -> Result<(Vars, Option<crate::user::RunAs>)> {
    let user = args
        .user
        .as_deref()
        .map(crate::user::RunAs::resolve)
        .transpose()?;
    let vars = match (args.pid, &user) {
        (Some(pid), _) => Vars::for_pid(pid),
        (None, Some(u)) => Vars::from_env().with_home(&u.home),
        (None, None) => Vars::from_env(),
    };
    Ok((vars, user))
}

/// Follows the tree `args` names; with `enforce`, enforces a compiled profile on it too.
/// The exit status is the tree's, unless the gate or a failure to start decides.
pub fn run(args: RecordArgs, mut enforce: Option<Setup>) -> Result<i32> {
    if args.tui {
        if let Some(why) = crate::tui::need_terminal("--tui") {
            bail!("{why}");
        }
    }
    // A reader of the event stream or the profile that goes away (`| head`, a collector
    // that crashed) is a write error, said at the end: dying of SIGPIPE would leave the
    // tree unwatched, with no profile and no summary. (The tree gets the default back.)
    // SAFETY: setting a signal's disposition, before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let target = match args.pid {
        Some(pid) => Target::Pid(pid),
        None => Target::Command(args.command.clone()),
    };
    // First of all (guard::watchdog says why).
    let watchdog = enforce.as_ref().map(guard::watchdog).transpose()?;
    let signals = block_signals()?;
    // Where the agent's hooks report its tool calls (hook.rs), named in the environment the
    // command starts with (an attached tree's cannot be changed); needs the LLM stage that
    // ties calls to what they did. Under enforce the tree may send to it, and only to it
    // of agentguard's sockets (a hook that failed would leave the calls unreported and make
    // every tool call a denial), and the watchdog keeps it bound until the tree is dead.
    let syscalls = decodes_syscalls(&args, enforce.as_ref());
    let mut hooks = match &target {
        Target::Command(_) if syscalls && !args.llm.no_llm => Some(crate::hook::Listener::bind()?),
        _ => None,
    };
    if let (Some(h), Some(setup)) = (&hooks, enforce.as_mut()) {
        let admitted = setup.compiled.admit_unix_dgram(
            &format!("@{}", h.name),
            "agentguard's hook socket (AGENTGUARD_HOOK)",
        );
        if let Err(e) = admitted {
            // A full rule table is the profile's: enforce it as it is, without hooks.
            eprintln!(
                "agentguard: warning: {e:#}: the agent's hooks are not taken (no AGENTGUARD_HOOK)"
            );
            hooks = None;
        }
    }
    let landlock_fd = match &enforce {
        Some(Setup {
            backend: Backend::Landlock(fd),
            ..
        }) => Some(std::os::fd::AsRawFd::as_raw_fd(fd)),
        _ => None,
    };
    let started_wall = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let began = Instant::now();
    let mut obj = MaybeUninit::uninit();
    let mut sensor = Sensor::load(
        &mut obj,
        sensor::Config {
            ring_buffer_mb: args.ring_buffer_mb,
            max_procs: args.max_procs,
            syscalls,
            payload: syscalls && !args.llm.no_llm,
        },
    )?;
    let mut objects = guard::Objects::new();
    let guard = match (&enforce, &watchdog) {
        (Some(setup), Some(w)) => Some(guard::load(&mut objects, setup, &sensor, w)?),
        _ => None,
    };
    let (outputs, log) = outputs::Outputs::prepare(&args, enforce.is_some())?;
    let (vars, user) = run_vars(&args)?;
    let mut pipe = pipeline(&args, enforce.as_mut(), &vars, syscalls)?;
    pipe.jsonl = log;
    // Declared after the sensor: the probes come off before its programs go.
    let mut tls_links = Vec::new();
    let check = guard
        .as_ref()
        .map(|g| move |p: &std::path::Path| g.attach_tls(p));
    let check = check.as_ref().map(|c| c as &TlsCheck);
    let early_notes = pipe.attach_system_tls(&sensor, check, &mut tls_links);
    if let Some(setup) = &enforce {
        let rules = setup.compiled.rules.iter().map(|r| r.source.clone());
        pipe.decoder.set_rule_names(rules.collect());
        pipe.landlock = landlock_fd.is_some();
        guard::announce(setup, args.quiet);
    }
    if let Some(h) = &hooks {
        // No other thread runs yet: nothing reads the environment meanwhile.
        std::env::set_var(crate::hook::ENV, &h.name);
    }
    let how = Launch {
        output_log: (args.tui || outputs::events_to_stdout(&args))
            .then_some(args.output_log.as_path()),
        enforcing: enforce.is_some(),
        landlock: landlock_fd,
        quiet: args.quiet,
        user: user.as_ref(),
        keep: hooks.as_ref().map(|h| h.as_fd()),
    };
    let Some(mut started) =
        target::start(&target, &how, &mut sensor, watchdog.as_ref(), &mut pipe)?
    else {
        return Ok(127);
    };
    let run = run_id();
    let hook = hooks.as_ref().map(|h| h.name.as_str());
    pipe.begin(started.command.clone(), &run, &vars, hook, early_notes);
    let mut rings = Rings::open(
        &sensor,
        guard.as_ref().map(|g| g.denials()).unwrap_or_default(),
    )?;
    let kernel = Kernel {
        sensor: &sensor,
        guard: guard.as_ref(),
        check,
        hooks: hooks.as_ref(),
    };
    let followed = follow(
        &mut rings,
        &kernel,
        &mut tls_links,
        &mut pipe,
        &signals,
        &mut started,
        args.tui,
    )?;
    let leftover = if sensor.tree_empty() {
        0
    } else {
        sensor.tracked().len()
    };
    let ending = Ending {
        args: &args,
        target: &target,
        command: &started.command,
        followed,
        leftover,
        started_wall,
        run,
        seconds: began.elapsed().as_secs_f64(),
        vars: &vars,
        enforce: enforce.as_ref(),
        syscalls,
    };
    ending.finish(pipe, outputs)
}

/// The pipeline with the sinks the arguments ask for.
fn pipeline(
    args: &RecordArgs,
    enforce: Option<&mut Setup>,
    vars: &Vars,
    syscalls: bool,
) -> Result<Pipeline> {
    let mut p = Pipeline::new(
        Decoder::new(sensor::mono_to_wall_ns()),
        Builder::new(vars.clone()),
    );
    p.tui = args.tui.then(|| {
        crate::tui::app::App::new(format!("agentguard watch: {}", args.command.join(" ")))
    });
    p.findings.checker = match &args.baseline {
        Some(b) => Some(crate::diff::Checker::new(
            &crate::profile::Profile::load(b)?,
            b,
            vars.clone(),
        )?),
        None => None,
    };
    p.findings.admitting = enforce.and_then(|e| e.admitting.take());
    p.otlp = match &args.otlp.otlp {
        Some(url) => Some(crate::sinks::otlp::Exporter::new(
            url,
            args.otlp.otlp_content,
        )?),
        None => None,
    };
    p.llm = (syscalls && !args.llm.no_llm).then(|| {
        crate::llm::Llm::new(crate::llm::Options {
            bodies: args.llm.llm_bodies,
            body_max: args.llm.llm_body_max,
        })
    });
    Ok(p)
}

/// enforce alone follows the tree and reports denials; it decodes syscalls only when
/// something records them. Under Landlock the kernel reports no denials: the sensor's
/// failed calls are how they are found (pipeline/landlock.rs). The HTTPS endpoint check
/// needs the libraries the tree maps, found from its syscalls (--no-llm turns it off).
fn decodes_syscalls(args: &RecordArgs, enforce: Option<&Setup>) -> bool {
    match enforce {
        None => true,
        Some(e) => {
            matches!(e.backend, Backend::Landlock(_))
                || !args.llm.no_llm
                || e.admitting.is_some()
                || args.output.is_some()
                || args.events.is_some()
                || args.baseline.is_some()
                || args.merge_into.is_some()
                || args.otlp.otlp.is_some()
        }
    }
}

/// Signals arrive through a descriptor, read in the loop: no handler races the state.
fn block_signals() -> Result<SignalFd> {
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
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).context("signalfd")
}

/// How the following ended.
struct Followed {
    /// The started command's exit status (128 + signal when killed).
    root_status: Option<i32>,
    /// Stopped by a signal or the UI's q, not by the tree's end.
    interrupted: bool,
    stats: Stats,
}

/// The reports waiting on the hook socket into the pipeline, each judged the tree's or not
/// by `of_tree`; those dropped at once are answered at once.
fn take_reports(
    h: &crate::hook::Listener,
    pipe: &mut Pipeline,
    of_tree: impl Fn(&Pipeline, u32) -> bool,
) {
    for r in h.drain() {
        let mine = of_tree(pipe, r.pid);
        if let Some(reply) = pipe.hook(r, mine) {
            h.ack(&reply);
        }
    }
}

/// What a session follows the tree through: the sensor, the guard when enforcing (with
/// the HTTPS check it puts where the sensor probes TLS), the hook socket.
#[derive(Clone, Copy)]
struct Kernel<'a> {
    sensor: &'a Sensor<'a>,
    guard: Option<&'a guard::Guard<'a>>,
    check: Option<&'a TlsCheck<'a>>,
    hooks: Option<&'a crate::hook::Listener>,
}

impl Kernel<'_> {
    /// The sensor's counters, with the denial reports the guard had no room for counted
    /// as lost events too: a log without them is incomplete.
    fn stats(&self) -> Result<Stats> {
        let mut s = self.sensor.stats()?;
        if let Some(g) = self.guard {
            s.denials_lost = g.denials_lost();
            s.lost += s.denials_lost;
        }
        Ok(s)
    }
}

/// Reads the tree's events until it ends or agentguard is stopped; passes the terminal's
/// signals on; under the UI, draws it and, at the end, keeps it up until q.
fn follow(
    source: &mut impl Source,
    kernel: &Kernel,
    // The TLS probes put on libraries the tree maps, kept until the session ends.
    tls_links: &mut Vec<libbpf_rs::Link>,
    pipe: &mut Pipeline,
    signals: &SignalFd,
    started: &mut Started,
    tui: bool,
) -> Result<Followed> {
    let Kernel {
        sensor,
        check,
        hooks,
        ..
    } = *kernel;
    // The UI takes the terminal once the command runs (its output goes to --output-log).
    let mut terminal = tui.then(ratatui::init);
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
    let _restore = Restore(tui);
    let child = started.child;
    let mut root_status: Option<i32> = None;
    let mut interrupted = false;
    let mut hung_up = false;
    let mut stats = Stats::default();
    let mut last_check = Instant::now();
    let mut backlog = false;
    loop {
        // A backlog left by the last pump is read on without waiting.
        let wait = if backlog { 0 } else { 20 };
        backlog = source.pump(pipe, Duration::from_millis(wait))?;
        if let Some(h) = hooks {
            // Asked of the kernel now, while the hook waits for its answer.
            take_reports(h, pipe, |_, pid| sensor.tracks(pid));
            // The sender's fork and exec were in the ring before it sent: read them now,
            // so its report is taken (and its hook answered) in this turn, ahead of what
            // the tool it announces will do; only until the tree shows the senders.
            for _ in 0..16 {
                if !pipe.hooks_unplaced() || !source.pump(pipe, Duration::ZERO)? {
                    break;
                }
            }
            for reply in pipe.hooks_due() {
                h.ack(&reply);
            }
        }
        for n in pipe.attach_tls(sensor, check, tls_links) {
            pipe.handle(n);
        }
        let heard = signals_heard(signals, started, root_status);
        hung_up |= heard.hung_up;
        interrupted |= heard.interrupted;
        if let Some(t) = &mut terminal {
            let app = pipe
                .tui
                .as_mut()
                .expect("the UI state exists with the terminal");
            if crate::tui::step(t, app, &pipe.tree, Duration::ZERO)? {
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
            pipe.losses(kernel.stats()?, &mut stats);
            // The event log as it happens, for tail -f or a reader of --events -.
            pipe.flush_log();
            // Processes found in /proc that died before their first event never had an
            // exit record to take them out of scope.
            started.pending.retain(|(pid, ticks)| {
                let gone = !crate::attach::alive(*pid, Some(*ticks));
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
    // Everything the tree wrote before it ended, then what the kernel still counted, and
    // the hooks' last reports, whose senders are all known now.
    source.finish(pipe)?;
    if let Some(h) = hooks {
        // The tree has ended and left the kernel's map: a report read only now (its hook
        // stopped waiting) is the tree's if the tree showed its sender.
        take_reports(h, pipe, |pipe, pid| {
            sensor.tracks(pid) || pipe.tree.knows(pid)
        });
        for reply in pipe.hooks_end() {
            h.ack(&reply);
        }
    }
    pipe.io_left(sensor.io_left()?);
    pipe.losses(kernel.stats()?, &mut stats);
    if let Some(r) = &mut started.relay {
        r.finish();
    }
    if let Some(mut t) = terminal.take() {
        let root_exit = pipe.root_exit;
        let app = pipe
            .tui
            .as_mut()
            .expect("the UI state exists with the terminal");
        linger(
            &mut t,
            (app, &pipe.tree),
            signals,
            interrupted,
            hung_up,
            root_status.or(root_exit),
        )?;
        ratatui::restore();
    }
    Ok(Followed {
        root_status,
        interrupted,
        stats,
    })
}

/// What the signals agentguard received since the last turn ask for.
#[derive(Default)]
struct Heard {
    interrupted: bool,
    hung_up: bool,
}

/// Reads the pending signals: a window resize goes to the tree's terminal; an interrupt
/// goes to a command still running, twice, and the third stops agentguard.
fn signals_heard(signals: &SignalFd, started: &mut Started, root_status: Option<i32>) -> Heard {
    let mut heard = Heard::default();
    while let Ok(Some(si)) = signals.read_signal() {
        let sig = Signal::try_from(si.ssi_signo as i32).unwrap_or(Signal::SIGTERM);
        if sig == Signal::SIGWINCH {
            if let Some(r) = &started.relay {
                r.resize();
            }
            continue;
        }
        // The terminal went away: no one is left to press q at the end.
        heard.hung_up |= sig == Signal::SIGHUP;
        started.interrupts += 1;
        match (started.child, root_status) {
            (Some(pid), None) if started.interrupts < 3 => {
                // The command leads a session of its own, so the terminal's Ctrl-C reaches
                // agentguard only (on a pseudo-terminal of its own, the command gets its
                // Ctrl-C from there). Passed on to its group, as the terminal would have.
                let _ = nix::sys::signal::killpg(pid, sig);
            }
            _ => heard.interrupted = true,
        }
    }
    heard
}

/// The tree ended: the UI stays, with how it ended, until q (or a hangup, SIGTERM or
/// SIGINT).
fn linger(
    t: &mut ratatui::DefaultTerminal,
    (app, tree): (&mut crate::tui::app::App, &crate::tree::Tree),
    signals: &SignalFd,
    interrupted: bool,
    hung_up: bool,
    exit: Option<i32>,
) -> Result<()> {
    let ended = if interrupted {
        "stopped".to_string()
    } else {
        format!("the tree ended (exit {})", exit.unwrap_or(0))
    };
    app.done = Some(format!("{ended}: q to quit"));
    while !interrupted && !hung_up && !crate::tui::step(t, app, tree, Duration::from_millis(250))? {
        if let Ok(Some(_)) = signals.read_signal() {
            break;
        }
    }
    Ok(())
}

/// The end of a session: the end record, the profile and outputs, the summary, the gate.
struct Ending<'a> {
    args: &'a RecordArgs,
    target: &'a Target,
    command: &'a str,
    followed: Followed,
    /// Processes of the tree still running.
    leftover: usize,
    started_wall: String,
    /// The recording's id: in the log's start record and the profile's [[run]].
    run: String,
    seconds: f64,
    vars: &'a Vars,
    enforce: Option<&'a Setup>,
    syscalls: bool,
}

impl Ending<'_> {
    fn finish(self, mut pipe: Pipeline, outputs: outputs::Outputs) -> Result<i32> {
        let Followed {
            root_status,
            interrupted,
            stats,
        } = self.followed;
        let exit = match (self.target, root_status) {
            (Target::Command(_), Some(s)) => s,
            (Target::Pid(_), _) if interrupted => 130,
            _ => pipe.root_exit.unwrap_or(0),
        };
        let gaps = crate::diff::complete::Gaps {
            lost: stats.lost,
            untracked: stats.procs_untracked,
            running: self.leftover as u64,
            undecoded: pipe.decode_errors,
        };
        // HTTP the tree left unfinished (no answer, cut short) is reported before the end.
        if let Some(mut llm) = pipe.llm.take() {
            let ts = pipe.decoder.wall_time(crate::sensor::mono_now());
            let left = llm.finish(ts, &|pid| pipe.tree.exe_of(pid).to_string());
            pipe.llm = Some(llm);
            for ev in left {
                pipe.handle_one(ev);
            }
        }
        // The log's last line: whoever reads it knows it is whole.
        let end = Kind::End {
            exit,
            interrupted,
            events: pipe.events,
            lost: gaps.lost,
            procs_untracked: gaps.untracked,
            running: gaps.running,
            decode_errors: gaps.undecoded,
        };
        let end = crate::event::Event {
            exe: String::new(),
            ..pipe.own_event(pipe.root, end)
        };
        pipe.handle_one(end);
        let run = RunInfo {
            id: self.run.clone(),
            command: self.command.to_string(),
            started: self.started_wall.clone(),
            seconds: (self.seconds * 1000.0).round() / 1000.0,
            exit: Some(exit),
            lost_events: gaps.lost,
            procs_untracked: gaps.untracked,
            running: gaps.running,
            decode_errors: gaps.undecoded,
            cwd: self.vars.cwd.clone(),
            home: self.vars.home.clone(),
            // The builder's, from the run's events.
            llm_calls: None,
            tls_unread: Vec::new(),
        };
        let profile = pipe.builder.finish(run);
        let log = pipe.jsonl.take().map(|w| (w, pipe.write_error.take()));
        let mut written = outputs.write(&profile, log, pipe.events)?;
        // Spans a receiver never took are said, and make the exit 2 unless the command's
        // own status or the gate's says more: a collector the tree can reach (or kill)
        // must not get to replace either.
        let mut undelivered = false;
        if let Some(o) = pipe.otlp.take() {
            match o.close() {
                Ok(w) => written.push(w),
                Err(e) => {
                    undelivered = true;
                    if self.args.quiet {
                        crate::sinks::say(&format!("agentguard: {e}"));
                    }
                    pipe.warnings.push(e);
                }
            }
        }
        let exit_or_2 = |exit: i32| if exit == 0 && undelivered { 2 } else { exit };
        pipe.denials.print_repeats();
        if !self.args.quiet {
            self.summary(&pipe, exit, interrupted, stats, &written);
        }
        // The command's own failure comes first; then the gate.
        let Some(c) = &pipe.findings.checker else {
            return Ok(exit_or_2(exit));
        };
        let a = self.args;
        let verdict = gate::judge(c, a.fail_on, &gaps, a.watch, a.quiet);
        Ok(exit_or_2(verdict.filter(|_| exit == 0).unwrap_or(exit)))
    }

    fn summary(
        &self,
        pipe: &Pipeline,
        exit: i32,
        interrupted: bool,
        stats: Stats,
        written: &[String],
    ) {
        let llm = pipe
            .llm
            .as_ref()
            .map_or((0, 0), |l| (l.requests, l.tool_calls));
        let f = &pipe.findings;
        let s = crate::sinks::summary::Summary {
            command: self.command,
            exit,
            seconds: self.seconds,
            interrupted,
            builder: &pipe.builder,
            llm,
            syscalls: self.syscalls,
            enforcing: self.enforce.map(|e| (e.opts.audit, pipe.denials.count)),
            admitted: f
                .admitting
                .as_ref()
                .map(|(_, l)| (*l, f.admitted.as_slice())),
            stats,
            decode_errors: pipe.decode_errors,
            leftover: self.leftover,
            warnings: &pipe.warnings,
            outputs: written,
        };
        eprint!("{}", s.text());
    }
}

/// A unique id for this recording, so that merging it twice counts it once.
fn run_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|u| u.trim().to_string())
        .unwrap_or_else(|_| format!("{}-{}", std::process::id(), sensor::mono_to_wall_ns()))
}
