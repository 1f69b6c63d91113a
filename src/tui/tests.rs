//! Frames of the watch UI, from a replayed stream and scripted keys (no root, no terminal).
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

use super::app::{App, Mode, Pane};
use super::ui;
use crate::event::{Access, Deny, DenyOp, Event, Exec, File, Kind};
use crate::pipeline::{source::Log, Pipeline};

/// The UI as watch runs it: fed by a pipeline, whose process tree it draws.
struct Ui(Pipeline);

impl Ui {
    fn new(title: &str) -> Ui {
        let mut p = Pipeline::replaying(&[], Default::default());
        p.tui = Some(App::new(title.into()));
        Ui(p)
    }

    /// One event, as a kept log feeds it.
    fn feed(&mut self, e: Event) {
        Log::new(vec![e]).drain(&mut self.0);
    }
}

impl std::ops::Deref for Ui {
    type Target = App;
    fn deref(&self) -> &App {
        self.0.tui.as_ref().expect("the UI is in the pipeline")
    }
}

impl std::ops::DerefMut for Ui {
    fn deref_mut(&mut self) -> &mut App {
        self.0.tui.as_mut().expect("the UI is in the pipeline")
    }
}

fn ev(pid: u32, ppid: u32, exe: &str, kind: Kind) -> Event {
    Event {
        ts: "2026-11-26T12:00:00.123456789Z".parse().unwrap(),
        pid,
        tid: pid,
        ppid,
        exe: exe.into(),
        kind,
        cause: None,
    }
}

fn exec(path: &str, argv: &[&str]) -> Kind {
    Kind::Exec(Exec {
        path: path.into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        argv_truncated: false,
        cwd: "/w".into(),
        invoked_as: None,
        script: None,
        via_fd: false,
        unlinked: false,
        error: None,
    })
}

fn open(path: &str) -> Kind {
    Kind::File(File::opened(path, vec![Access::Read]))
}

/// A small agent run: python starts a shell that reads a file and is denied a key.
fn app() -> Ui {
    let mut a = Ui::new("agentguard watch run.jsonl");
    for e in [
        ev(
            100,
            1,
            "",
            Kind::Start {
                command: "python agent.py".into(),
                run: None,
                cwd: Some("/w".into()),
                home: None,
                llm: false,
                hook: None,
            },
        ),
        ev(
            100,
            1,
            "",
            exec("/usr/bin/python3.11", &["python3", "agent.py"]),
        ),
        ev(100, 1, "/usr/bin/python3.11", Kind::Fork { child: 101 }),
        ev(
            101,
            100,
            "/usr/bin/python3.11",
            exec("/usr/bin/cat", &["cat", "notes.md"]),
        ),
        ev(101, 100, "/usr/bin/cat", open("/w/notes.md")),
        ev(
            101,
            100,
            "/usr/bin/cat",
            Kind::Deny(Deny {
                op: DenyOp::Open,
                object: "/home/a/.ssh/id".into(),
                access: vec![Access::Read],
                reason: "protected path (credentials)".into(),
                enforced: true,
            }),
        ),
        ev(
            101,
            100,
            "/usr/bin/cat",
            Kind::Exit {
                code: Some(1),
                signal: None,
            },
        ),
    ] {
        a.feed(e);
    }
    a.done = Some("replayed 7 events".into());
    a
}

fn frame(a: &Ui) -> String {
    let mut t = Terminal::new(TestBackend::new(110, 22)).unwrap();
    t.draw(|f| ui::draw(f, a, &a.0.tree)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut s = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

fn key(a: &mut Ui, c: KeyCode) -> bool {
    let Ui(p) = a;
    let app = p.tui.as_mut().expect("the UI is in the pipeline");
    app.on_key(KeyEvent::new(c, KeyModifiers::NONE), &p.tree)
}

#[test]
fn the_main_view() {
    let a = app();
    assert_eq!(a.tree_order(&a.0.tree), vec![(0, 100), (1, 101)]);
    insta::assert_snapshot!("main", frame(&a));
}

#[test]
fn keys_filter_select_and_show_detail() {
    let mut a = app();
    key(&mut a, KeyCode::Char('/'));
    for c in "notes".chars() {
        key(&mut a, KeyCode::Char(c));
    }
    assert_eq!(a.mode, Mode::Filter("notes".into()));
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.visible().len(), 2, "the exec and the open mention notes");
    insta::assert_snapshot!("filtered", frame(&a));
    key(&mut a, KeyCode::Esc);
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.pane, Pane::Tree);
    key(&mut a, KeyCode::Down);
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.only_pid, Some(101));
    key(&mut a, KeyCode::Up);
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.mode, Mode::Detail);
    insta::assert_snapshot!("detail", frame(&a));
    key(&mut a, KeyCode::Char('x'));
    key(&mut a, KeyCode::Char('?'));
    insta::assert_snapshot!("help", frame(&a));
    key(&mut a, KeyCode::Esc);
    assert!(key(&mut a, KeyCode::Char('q')));
}

#[test]
fn a_long_stream_keeps_a_bounded_window_and_follows_the_tail() {
    let mut a = app();
    for i in 0..(super::app::KEEP + 10) {
        a.feed(ev(101, 100, "/usr/bin/cat", open(&format!("/w/f{i}"))));
    }
    assert_eq!(a.rows.len(), super::app::KEEP);
    assert_eq!(a.dropped, 17);
    assert_eq!(a.selected_row, super::app::KEEP - 1, "following the tail");
    key(&mut a, KeyCode::Char('p'));
    a.feed(ev(101, 100, "/usr/bin/cat", open("/w/late")));
    assert!(
        a.paused && a.selected_row < super::app::KEEP - 1,
        "paused: the view stays"
    );
}

#[test]
fn events_show_the_tool_call_behind_them_and_the_filter_finds_it() {
    let mut a = Ui::new("agentguard watch");
    let call = ev(
        100,
        1,
        "/usr/bin/python3.11",
        Kind::ToolCall(crate::event::ToolCall {
            id: "call_1".into(),
            name: "run_shell".into(),
            arguments: r#"{"command":"cat notes.md"}"#.into(),
            api: "openai.chat".into(),
            host: "api.example.com".into(),
            steered: None,
            reported: false,
        }),
    );
    let shell = ev(
        101,
        100,
        "/usr/bin/python3.11",
        exec("/usr/bin/cat", &["cat", "notes.md"]),
    );
    // Through the LLM stage, as record runs it, before the UI sees each event.
    a.0.llm = Some(crate::llm::Llm::new(crate::llm::Options {
        bodies: false,
        body_max: 0,
    }));
    let fork = ev(100, 1, "/usr/bin/python3.11", Kind::Fork { child: 101 });
    for e in [call, fork, shell] {
        a.0.handle(e);
    }
    let f = frame(&a);
    assert!(
        f.contains("tool call run_shell(command='cat notes.md')"),
        "{f}"
    );
    assert!(
        f.contains("exec /usr/bin/cat notes.md  <- run_shell(command="),
        "{f}"
    );
    key(&mut a, KeyCode::Char('/'));
    for c in "run_shell".chars() {
        key(&mut a, KeyCode::Char(c));
    }
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.n_visible, 2, "the call and the exec it caused");
}

/// The findings view (F) and the text filter see what a row shows: its finding's severity.
#[test]
fn the_findings_view_and_a_severity_filter_show_the_rows_rated_so() {
    let base = crate::profile::Profile::parse(
        r#"
version = 1

[[exec]]
path = "/usr/bin/{python3.11,cat}"

[[file]]
path = "/w/notes.md"
access = ["read"]
"#,
        std::path::Path::new("b.toml"),
    )
    .unwrap();
    let vars = crate::profile::Vars {
        home: Some("/home/a".into()),
        cwd: Some("/w".into()),
    };
    let checker = crate::diff::Checker::new(&base, std::path::Path::new("b.toml"), vars).unwrap();
    // As `watch --replay` has it: the UI behind the pipeline, the checker a sink beside it.
    let mut a = Ui::new("agentguard watch");
    a.0.findings.checker = Some(checker);
    a.feed(ev(100, 1, "", exec("/usr/bin/python3.11", &["python3"])));
    a.feed(ev(100, 1, "/usr/bin/python3.11", open("/w/notes.md")));
    a.feed(ev(100, 1, "/usr/bin/python3.11", open("/w/draft.md")));
    // As a recording wrote it: tied to the tool call that read the key.
    let mut read = ev(100, 1, "/usr/bin/python3.11", open("/home/a/.ssh/id_rsa"));
    read.cause = Some(crate::event::Cause {
        reported: false,
        call: "call_1".into(),
        tool: "read_file".into(),
        summary: "read_file(path='~/.ssh/id_rsa')".into(),
        confidence: 0.9,
        why: "its arguments name it".into(),
        steered_by: None,
    });
    a.feed(read);
    let severities: Vec<_> = a
        .rows
        .iter()
        .map(|r| r.finding.as_ref().map(|f| f.severity.name()))
        .collect();
    assert_eq!(
        severities,
        [None, None, Some("low"), Some("critical")],
        "the rows as diff rates them"
    );
    assert_eq!(
        a.rows[3]
            .finding
            .as_ref()
            .and_then(|f| f.cause.as_ref())
            .map(|c| c.call.as_str()),
        Some("call_1"),
        "a replayed finding names the tool call behind it"
    );
    assert_eq!(a.visible().len(), 4);
    key(&mut a, KeyCode::Char('F'));
    assert_eq!(a.visible(), vec![2, 3], "findings, low and above");
    for _ in 0..3 {
        key(&mut a, KeyCode::Char('F'));
    }
    assert_eq!(a.visible(), vec![3], "critical only");
    assert!(frame(&a).contains("findings critical and above"));
    key(&mut a, KeyCode::Char('F'));
    assert_eq!(a.visible().len(), 4, "and back to every event");
    key(&mut a, KeyCode::Char('/'));
    for c in "critical".chars() {
        key(&mut a, KeyCode::Char(c));
    }
    key(&mut a, KeyCode::Enter);
    assert_eq!(
        a.visible(),
        vec![3],
        "/critical finds the row marked CRITICAL"
    );
}

/// The keys an htop or less user reaches for move through the events.
#[test]
fn paging_keys_move_the_selection() {
    let mut a = app();
    for i in 0..100 {
        a.feed(ev(101, 100, "/usr/bin/cat", open(&format!("/w/f{i}"))));
    }
    let last = a.n_visible - 1;
    assert_eq!(a.selected_row, last);
    a.page = 10;
    key(&mut a, KeyCode::PageUp);
    assert_eq!(a.selected_row, last - 10);
    assert!(a.paused, "moving up pauses the stream");
    key(&mut a, KeyCode::Char('g'));
    assert_eq!(a.selected_row, 0);
    key(&mut a, KeyCode::PageDown);
    assert_eq!(a.selected_row, 10);
    key(&mut a, KeyCode::Char('k'));
    key(&mut a, KeyCode::Char('j'));
    key(&mut a, KeyCode::Char('j'));
    assert_eq!(a.selected_row, 11);
    key(&mut a, KeyCode::Char('G'));
    assert_eq!(a.selected_row, last);
    assert!(!a.paused, "at the end it follows again");
    key(&mut a, KeyCode::Home);
    key(&mut a, KeyCode::End);
    assert_eq!(a.selected_row, last);
    assert!(
        frame(&a).contains("jk PgUp PgDn g G move"),
        "the keys are shown"
    );
}
