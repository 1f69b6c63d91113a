//! The watch UI's state: a plain struct fed events and keys, with no terminal in it, so a
//! test can drive it with a replayed stream and scripted keys.
use std::collections::{BTreeMap, VecDeque};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::diff::rules::Severity;
use crate::diff::Finding;
use crate::event::{Event, Kind};
use crate::tree::Tree;

/// Events kept for display; older ones are dropped (and counted).
pub const KEEP: usize = 50_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Tree,
    Events,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Help,
    /// Typing a filter: the text so far.
    Filter(String),
    /// The selected event, in full.
    Detail,
}

/// What the tree pane shows of a process besides its place in the tree.
#[derive(Debug, Clone, Default)]
pub struct Proc {
    pub argv: Vec<String>,
    /// None while running; the exit code or 128+signal once it ended.
    pub exit: Option<i32>,
}

/// One line of the event stream, with what diff or enforcement said of it.
#[derive(Debug, Clone)]
pub struct Row {
    pub ev: Event,
    pub finding: Option<Finding>,
}

pub struct App {
    /// The processes shown, in pid order; their parents and executables are the tree's.
    pub procs: BTreeMap<u32, Proc>,
    pub rows: VecDeque<Row>,
    pub dropped: u64,
    pub counts: BTreeMap<&'static str, u64>,
    pub lost: u64,
    pub denials: u64,
    pub findings: u64,
    pub pane: Pane,
    pub mode: Mode,
    pub paused: bool,
    /// Text an event must contain to be shown (kind, path, exe...).
    pub filter: String,
    /// Show only the events of this process.
    pub only_pid: Option<u32>,
    /// The findings view: only findings at or above this severity, and denials.
    pub min_severity: Option<Severity>,
    /// Rows a PgUp or PgDn moves (the events pane's height, set as it is drawn).
    pub page: usize,
    /// Colours drawn (NO_COLOR and --color never turn them off).
    pub colour: bool,
    pub selected_proc: usize,
    pub selected_row: usize,
    /// How many rows the filters let through (kept up to date as events arrive).
    pub n_visible: usize,
    /// The source has ended (the tree exited, or the replay was read).
    pub done: Option<String>,
    pub title: String,
}

pub fn kind_name(k: &Kind) -> &'static str {
    match k {
        Kind::Start { .. } => "start",
        Kind::Fork { .. } => "fork",
        Kind::Exec(_) => "exec",
        Kind::Exit { .. } => "exit",
        Kind::File(_) => "file",
        Kind::Net(_) => "net",
        Kind::Dns(_) => "dns",
        Kind::Flag(_) => "flag",
        Kind::Deny(_) => "deny",
        Kind::Lost { .. } => "lost",
        Kind::End { .. } => "end",
        Kind::LlmRequest(_) => "llm.request",
        Kind::LlmResponse(_) => "llm.response",
        Kind::ToolCall(_) => "llm.tool_call",
        Kind::Http(_) => "http",
        Kind::Tls(_) => "tls",
        Kind::Io(_) => "io",
    }
}

/// An enum's name as the event stream spells it.
fn word<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// The event as one line of text: what the filter searches and the list shows; with the
/// tool call behind it, when one is.
pub fn summary(ev: &Event) -> String {
    let s = what(ev);
    match &ev.cause {
        Some(c) => format!("{s}  <- {} ({:.1})", c.summary, c.confidence),
        None => s,
    }
}

fn what(ev: &Event) -> String {
    match &ev.kind {
        Kind::Start { command, .. } => format!("start {command}"),
        Kind::Fork { child } => format!("fork -> {child}"),
        Kind::Exec(x) => match &x.error {
            Some(e) => format!("exec {} ({e})", x.path),
            None => format!(
                "exec {} {}",
                x.path,
                crate::paths::printable(
                    &x.argv.iter().skip(1).cloned().collect::<Vec<_>>().join(" ")
                )
            ),
        },
        Kind::Exit { code, signal } => match (code, signal) {
            (_, Some(s)) => format!("exit signal {s}"),
            (Some(c), _) => format!("exit {c}"),
            _ => "exit".to_string(),
        },
        Kind::File(f) => {
            let access = crate::diff::rules::names(&f.access.iter().copied().collect());
            let err = f.error.map(|e| format!(" ({e})")).unwrap_or_default();
            format!("{} {} [{access}]{err}", word(&f.op), f.path)
        }
        Kind::Net(n) => {
            let err = n.error.map(|e| format!(" ({e})")).unwrap_or_default();
            // By name when the tree resolved it, with the address as evidence; a refused
            // socket() has none.
            let dest = match &n.name {
                Some(name) => format!("{name}:{} ({})", n.port, n.addr),
                None if n.op == crate::event::NetOp::Socket => String::new(),
                None => format!("{}:{}", n.addr, n.port),
            };
            format!("{} {} {dest}{err}", word(&n.op), word(&n.proto))
        }
        Kind::Dns(d) if d.answer => {
            let addrs: Vec<&str> = d.addrs.iter().map(|a| a.addr.as_str()).collect();
            match &d.error {
                Some(e) => format!("dns answer {} {e}", d.names.join(",")),
                None => format!("dns answer {} -> {}", d.names.join(","), addrs.join(",")),
            }
        }
        Kind::Dns(d) => format!("dns {} {}", d.names.join(","), d.qtypes.join(",")),
        Kind::Flag(f) => format!(
            "flag {}: {}",
            crate::diff::rules::flag_name(f.flag),
            f.detail
        ),
        Kind::Deny(d) => format!(
            "{} {} {}: {}",
            if d.enforced { "DENIED" } else { "WOULD DENY" },
            d.op,
            d.object,
            d.reason
        ),
        Kind::Http(h) => format!(
            "http {} {}{} -> {} ({} B out, {} B in)",
            h.method,
            crate::paths::printable(&h.host),
            crate::paths::printable(&h.path),
            if h.status == 0 {
                "no answer".to_string()
            } else {
                h.status.to_string()
            },
            h.sent,
            h.received
        ),
        Kind::Lost { lost, .. } => format!("lost {lost} events"),
        Kind::End {
            exit, interrupted, ..
        } => {
            if *interrupted {
                "end (interrupted)".to_string()
            } else {
                format!("end (exit {exit})")
            }
        }
        Kind::LlmRequest(r) => format!(
            "llm.request {} {}{} model {} ({} tools offered)",
            r.api,
            r.host,
            r.path,
            if r.model.is_empty() { "?" } else { &r.model },
            r.tools.len()
        ),
        Kind::LlmResponse(r) => {
            let calls = if r.tool_calls.is_empty() {
                "no tool calls".to_string()
            } else {
                format!("tool calls: {}", r.tool_calls.join(", "))
            };
            let tokens = match (r.input_tokens, r.output_tokens) {
                (Some(i), Some(o)) => format!(", tokens {i} in / {o} out"),
                _ => String::new(),
            };
            format!("llm.response {} {}: {calls}{tokens}", r.status, r.api)
        }
        Kind::ToolCall(t) => format!(
            "tool call {}",
            crate::llm::attribute::summary(&t.name, &t.arguments)
        ),
        Kind::Tls(t) => format!("tls {} {}: {}", t.status, t.library, t.detail),
        Kind::Io(io) => format!(
            "io {} ({} B in, {} B out)",
            crate::paths::printable(&io.object()),
            io.read,
            io.written
        ),
    }
}

impl App {
    pub fn new(title: String) -> App {
        App {
            procs: BTreeMap::new(),
            rows: VecDeque::new(),
            dropped: 0,
            counts: BTreeMap::new(),
            lost: 0,
            denials: 0,
            findings: 0,
            pane: Pane::Events,
            mode: Mode::Normal,
            paused: false,
            filter: String::new(),
            only_pid: None,
            min_severity: None,
            page: 20,
            colour: crate::colour::enabled(true),
            selected_proc: 0,
            selected_row: 0,
            n_visible: 0,
            done: None,
            title,
        }
    }

    /// One event, with the finding it raised if any. While paused, events are still
    /// counted and kept; only the view stops moving.
    pub fn push(&mut self, ev: Event, finding: Option<Finding>) {
        *self.counts.entry(kind_name(&ev.kind)).or_default() += 1;
        if finding.is_some() {
            self.findings += 1;
        }
        match &ev.kind {
            Kind::Start { .. } => {
                self.procs.entry(ev.pid).or_default();
            }
            Kind::Fork { child } => {
                self.procs.insert(*child, Proc::default());
                self.procs.entry(ev.pid).or_default();
            }
            Kind::Exec(x) if x.error.is_none() => {
                let p = self.procs.entry(ev.pid).or_default();
                // Shown on the terminal: no control character reaches it.
                p.argv = x
                    .argv
                    .iter()
                    .map(|a| crate::paths::printable(a).into_owned())
                    .collect();
            }
            Kind::Exit { code, signal } => {
                if let Some(p) = self.procs.get_mut(&ev.pid) {
                    p.exit = Some(code.or(signal.map(|s| s.saturating_add(128))).unwrap_or(0));
                }
            }
            Kind::Lost { lost, .. } => self.lost = *lost,
            Kind::Deny(_) => self.denials += 1,
            _ => {}
        }
        if self.rows.len() == KEEP {
            if let Some(old) = self.rows.pop_front() {
                if self.matches(&old) {
                    self.n_visible -= 1;
                    self.selected_row = self.selected_row.saturating_sub(1);
                }
            }
            self.dropped += 1;
        }
        let row = Row { ev, finding };
        let shown = self.matches(&row);
        self.rows.push_back(row);
        if shown {
            self.n_visible += 1;
            if !self.paused && self.mode == Mode::Normal && self.pane == Pane::Events {
                // Follow the stream, as tail -f does.
                self.selected_row = self.n_visible - 1;
            }
        }
    }

    /// Whether the filters let a row through. The text filter sees what the row shows:
    /// its summary, program, and the severity and rule of its finding ("critical").
    fn matches(&self, r: &Row) -> bool {
        let ev = &r.ev;
        let denied = matches!(ev.kind, Kind::Deny(_));
        let severe = match self.min_severity {
            None => true,
            Some(min) => denied || r.finding.as_ref().is_some_and(|f| f.severity >= min),
        };
        severe
            && self.only_pid.is_none_or(|p| ev.pid == p)
            && (self.filter.is_empty() || {
                let f = self.filter.to_lowercase();
                let finding = r
                    .finding
                    .as_ref()
                    .map(|x| format!("{} {}", x.severity.name(), x.rule))
                    .unwrap_or_default();
                summary(ev).to_lowercase().contains(&f)
                    || ev.exe.to_lowercase().contains(&f)
                    || finding.to_lowercase().contains(&f)
                    || (denied && "denied".contains(&f))
            })
    }

    /// After a filter changes: count again, and go to the last row.
    fn refilter(&mut self) {
        self.n_visible = self.rows.iter().filter(|r| self.matches(r)).count();
        self.selected_row = self.n_visible.saturating_sub(1);
    }

    /// The rows the filters let through, as indices into `rows`.
    pub fn visible(&self) -> Vec<usize> {
        self.rows
            .iter()
            .enumerate()
            .filter(|(_, r)| self.matches(r))
            .map(|(i, _)| i)
            .collect()
    }

    /// Processes in the order of the run's tree (the pipeline's): (depth, pid). One pass
    /// to index children: it runs every frame, and a tree of tens of thousands of
    /// processes must not cost their square.
    pub fn tree_order(&self, tree: &Tree) -> Vec<(usize, u32)> {
        let parent = |pid: u32| {
            tree.parent(pid)
                .filter(|p| *p != pid && self.procs.contains_key(p))
        };
        let mut kids: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        let mut roots = Vec::new();
        for &pid in self.procs.keys() {
            match parent(pid) {
                Some(p) => kids.entry(p).or_default().push(pid),
                None => roots.push(pid),
            }
        }
        let mut out = Vec::with_capacity(self.procs.len());
        let mut seen = std::collections::HashSet::new();
        let mut walk = |root: u32, out: &mut Vec<(usize, u32)>| {
            let mut stack = vec![(0, root)];
            while let Some((d, pid)) = stack.pop() {
                if !seen.insert(pid) {
                    continue;
                }
                out.push((d, pid));
                if let Some(k) = kids.get(&pid) {
                    stack.extend(k.iter().rev().map(|&c| (d + 1, c)));
                }
            }
        };
        for r in roots {
            walk(r, &mut out);
        }
        // Whatever no root reaches (a loop of parents) is listed too, never hidden.
        for &pid in self.procs.keys() {
            walk(pid, &mut out);
        }
        out
    }

    pub fn selected_event(&self) -> Option<&Row> {
        let v = self.visible();
        v.get(self.selected_row).and_then(|i| self.rows.get(*i))
    }

    /// Moves the selection of the focused pane by `n` rows, within its bounds. Moving in
    /// the events pauses the stream, as Up does.
    fn move_by(&mut self, n: isize, procs: usize, rows: usize) {
        let (sel, len) = match self.pane {
            Pane::Tree => (&mut self.selected_proc, procs),
            Pane::Events => {
                self.paused = true;
                (&mut self.selected_row, rows)
            }
        };
        let to = (*sel as isize).saturating_add(n);
        *sel = to.clamp(0, len.saturating_sub(1) as isize) as usize;
    }

    /// Handles a key; returns true to quit.
    pub fn on_key(&mut self, k: KeyEvent, tree: &Tree) -> bool {
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            return true;
        }
        match self.mode.clone() {
            Mode::Filter(mut text) => {
                match k.code {
                    KeyCode::Enter => {
                        self.filter = text;
                        self.mode = Mode::Normal;
                        self.refilter();
                    }
                    KeyCode::Esc => self.mode = Mode::Normal,
                    KeyCode::Backspace => {
                        text.pop();
                        self.mode = Mode::Filter(text);
                    }
                    KeyCode::Char(c) => {
                        text.push(c);
                        self.mode = Mode::Filter(text);
                    }
                    _ => {}
                }
                return false;
            }
            Mode::Help | Mode::Detail => {
                if matches!(k.code, KeyCode::Char('q')) {
                    return true;
                }
                self.mode = Mode::Normal;
                return false;
            }
            Mode::Normal => {}
        }
        // Every process is in the tree pane once (tree_order hides none).
        let procs = self.procs.len();
        let rows = self.n_visible;
        match k.code {
            KeyCode::Char('q') => return true,
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char('/') | KeyCode::Char('f') => {
                self.mode = Mode::Filter(self.filter.clone())
            }
            KeyCode::Char('p') => self.paused = !self.paused,
            KeyCode::Char('F') => {
                self.min_severity = match self.min_severity {
                    None => Some(Severity::Low),
                    Some(Severity::Low) => Some(Severity::Medium),
                    Some(Severity::Medium) => Some(Severity::High),
                    Some(Severity::High) => Some(Severity::Critical),
                    Some(Severity::Critical) => None,
                };
                self.pane = Pane::Events;
                self.refilter();
            }
            KeyCode::PageUp => self.move_by(-(self.page as isize), procs, rows),
            KeyCode::PageDown => self.move_by(self.page as isize, procs, rows),
            KeyCode::Home | KeyCode::Char('g') => self.move_by(isize::MIN / 2, procs, rows),
            KeyCode::End | KeyCode::Char('G') => {
                self.move_by(isize::MAX / 2, procs, rows);
                if self.pane == Pane::Events {
                    self.paused = false; // at the end: follow the stream again
                }
            }
            KeyCode::Tab => {
                self.pane = if self.pane == Pane::Tree {
                    Pane::Events
                } else {
                    Pane::Tree
                }
            }
            KeyCode::Esc => {
                self.filter.clear();
                self.only_pid = None;
                self.refilter();
            }
            KeyCode::Up | KeyCode::Char('k') => match self.pane {
                Pane::Tree => self.selected_proc = self.selected_proc.saturating_sub(1),
                Pane::Events => {
                    self.selected_row = self.selected_row.saturating_sub(1);
                    self.paused = true;
                }
            },
            KeyCode::Down | KeyCode::Char('j') => match self.pane {
                Pane::Tree => {
                    self.selected_proc = (self.selected_proc + 1).min(procs.saturating_sub(1))
                }
                Pane::Events => {
                    self.selected_row = (self.selected_row + 1).min(rows.saturating_sub(1))
                }
            },
            KeyCode::Enter => match self.pane {
                // A process: show only its events.
                Pane::Tree => {
                    self.only_pid = self
                        .tree_order(tree)
                        .get(self.selected_proc)
                        .map(|(_, p)| *p);
                    self.pane = Pane::Events;
                    self.refilter();
                }
                Pane::Events if rows > 0 => self.mode = Mode::Detail,
                Pane::Events => {}
            },
            _ => {}
        }
        false
    }
}

impl App {
    /// "cat (12)", its parent, ... up to the root of the tree.
    pub fn procs_chain(tree: &Tree, pid: u32) -> Vec<String> {
        tree.chain(pid)
            .into_iter()
            .map(|(pid, exe)| format!("{} ({pid})", exe.rsplit('/').next().unwrap_or(&exe)))
            .collect()
    }
}
