//! Drawing the watch UI: one function per area, over a plain `&App`.
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use super::app::{summary, App, Mode, Pane};
use crate::diff::rules::Severity;
use crate::tree::Tree;

pub const KEYS: &str =
    "q quit  ? help  / filter  F findings  tab pane  ↑↓ jk PgUp PgDn g G move  enter select  p pause  esc clear";

fn severity_style(s: Severity) -> Style {
    match s {
        Severity::Critical => Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
        Severity::High => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        Severity::Medium => Style::new().fg(Color::Yellow),
        Severity::Low => Style::new().fg(Color::Cyan),
    }
}

pub fn draw(f: &mut Frame, app: &App, procs: &Tree) {
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(5),
        Constraint::Length(1),
    ])
    .areas(f.area());
    header(f, app, head);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(35), Constraint::Percentage(65)]).areas(body);
    tree(f, app, procs, left);
    events(f, app, right);
    footer(f, app, foot);
    match &app.mode {
        Mode::Help => help(f),
        Mode::Detail => detail(f, app, procs),
        _ => {}
    }
    if !app.colour {
        // NO_COLOR or --color never: bold and reverse video still mark what matters.
        for cell in f.buffer_mut().content.iter_mut() {
            cell.set_fg(Color::Reset).set_bg(Color::Reset);
        }
    }
}

fn header(f: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![Span::styled(
        format!(" {} ", app.title),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    for (k, n) in &app.counts {
        spans.push(Span::raw(format!(" {k} {n} ")));
    }
    let mut second = vec![Span::raw(format!(" lost {} ", app.lost))];
    if app.lost > 0 {
        second[0] = Span::styled(
            format!(" lost {} ", app.lost),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        );
    }
    if app.findings > 0 {
        second.push(Span::styled(
            format!(" findings {} ", app.findings),
            Style::new().fg(Color::Red),
        ));
    }
    if app.denials > 0 {
        second.push(Span::styled(
            format!(" denied {} ", app.denials),
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ));
    }
    if app.paused {
        second.push(Span::styled(
            " PAUSED ",
            Style::new().add_modifier(Modifier::REVERSED),
        ));
    }
    if let Some(d) = &app.done {
        second.push(Span::styled(
            format!(" {d} "),
            Style::new().add_modifier(Modifier::BOLD),
        ));
    }
    let p = Paragraph::new(vec![Line::from(spans), Line::from(second)])
        .block(Block::new().borders(Borders::BOTTOM));
    f.render_widget(p, area);
}

fn focused(app: &App, pane: Pane) -> Style {
    if app.pane == pane {
        Style::new().fg(Color::Green)
    } else {
        Style::new()
    }
}

fn tree(f: &mut Frame, app: &App, procs: &Tree, area: Rect) {
    let items: Vec<ListItem> = app
        .tree_order(procs)
        .into_iter()
        .map(|(depth, pid)| {
            let p = &app.procs[&pid];
            let exe = procs.exe_of(pid);
            let name = exe.rsplit('/').next().unwrap_or(exe);
            let args = p.argv.iter().skip(1).cloned().collect::<Vec<_>>().join(" ");
            let state = match p.exit {
                None => Span::styled("running", Style::new().fg(Color::Green)),
                Some(0) => Span::raw("exit 0"),
                Some(c) => Span::styled(format!("exit {c}"), Style::new().fg(Color::Yellow)),
            };
            ListItem::new(Line::from(vec![
                Span::raw(format!("{}{pid} {name} {args} ", "  ".repeat(depth))),
                state,
            ]))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(app.selected_proc));
    let title = format!(" processes ({}) ", app.procs.len());
    let list = List::new(items)
        .block(
            Block::bordered()
                .title(title)
                .border_style(focused(app, Pane::Tree)),
        )
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    f.render_stateful_widget(list, area, &mut state);
}

fn events(f: &mut Frame, app: &App, area: Rect) {
    let visible = app.visible();
    // Only the rows that fit are built: the stream can be long.
    let height = area.height.saturating_sub(2) as usize;
    let sel = app.selected_row.min(visible.len().saturating_sub(1));
    let first = sel.saturating_sub(height.saturating_sub(1));
    let items: Vec<ListItem> = visible[first..(first + height).min(visible.len())]
        .iter()
        .map(|&i| {
            let r = &app.rows[i];
            let ts = r.ev.ts.to_string();
            let time = ts.get(11..23).unwrap_or("");
            let mut spans = vec![Span::styled(
                format!("{time} {:>6} ", r.ev.pid),
                Style::new().fg(Color::DarkGray),
            )];
            let text = summary(&r.ev);
            match (&r.finding, &r.ev.kind) {
                (_, crate::event::Kind::Deny(_)) => spans.push(Span::styled(
                    text,
                    Style::new()
                        .fg(Color::White)
                        .bg(Color::Red)
                        .add_modifier(Modifier::BOLD),
                )),
                (Some(fd), _) => {
                    spans.push(Span::styled(
                        format!("{} ", fd.severity.name().to_uppercase()),
                        severity_style(fd.severity),
                    ));
                    spans.push(Span::styled(text, severity_style(fd.severity)));
                }
                (None, _) if r.ev.failed() => {
                    spans.push(Span::styled(text, Style::new().fg(Color::DarkGray)))
                }
                (None, _) => spans.push(Span::raw(text)),
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let mut title = format!(" events ({} of {}) ", visible.len(), app.rows.len());
    if !app.filter.is_empty() {
        title.push_str(&format!("filter \"{}\" ", app.filter));
    }
    if let Some(p) = app.only_pid {
        title.push_str(&format!("pid {p} "));
    }
    if let Some(s) = app.min_severity {
        title.push_str(&format!("findings {} and above, denials ", s.name()));
    }
    let mut state = ListState::default().with_selected(Some(sel - first));
    let list = List::new(items)
        .block(
            Block::bordered()
                .title(title)
                .border_style(focused(app, Pane::Events)),
        )
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    f.render_stateful_widget(list, area, &mut state);
}

fn footer(f: &mut Frame, app: &App, area: Rect) {
    let text = match &app.mode {
        Mode::Filter(t) => format!(" filter: {t}_   (enter apply, esc cancel)"),
        _ => format!(" {KEYS}"),
    };
    f.render_widget(
        Paragraph::new(text).style(Style::new().add_modifier(Modifier::REVERSED)),
        area,
    );
}

fn popup(f: &mut Frame, title: &str, lines: Vec<Line>) {
    let area = f.area();
    let [_, mid, _] = Layout::vertical([
        Constraint::Percentage(15),
        Constraint::Percentage(70),
        Constraint::Percentage(15),
    ])
    .areas(area);
    let [_, mid, _] = Layout::horizontal([
        Constraint::Percentage(10),
        Constraint::Percentage(80),
        Constraint::Percentage(10),
    ])
    .areas(mid);
    f.render_widget(Clear, mid);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(format!(" {title} (any key closes) "))),
        mid,
    );
}

fn help(f: &mut Frame) {
    let lines = [
        "q, Ctrl-C   quit (the watched command keeps running only under --replay)",
        "?           this help",
        "/ or f      filter the events by text: kind, path, address, program, severity",
        "esc         clear the filter and the process selection",
        "tab         switch between the process tree and the events",
        "F           findings only, from low up; each press raises the level, then all again",
        "up/down j/k move (in the events, moving pauses the stream); PgUp/PgDn a page",
        "g/Home G/End the first row, the last (which follows the stream again)",
        "enter       tree: show only that process's events; events: the event in full",
        "p           pause or resume following the stream",
        "Colours: findings by severity (critical, high, medium, low); denials on red; failed grey",
    ];
    popup(f, "help", lines.iter().map(|l| Line::raw(*l)).collect());
}

fn detail(f: &mut Frame, app: &App, procs: &Tree) {
    let Some(r) = app.selected_event() else {
        return;
    };
    let mut lines: Vec<Line> = serde_json::to_string_pretty(&r.ev)
        .unwrap_or_default()
        .lines()
        .map(|l| Line::raw(l.to_string()))
        .collect();
    if let Some(fd) = &r.finding {
        lines.insert(
            0,
            Line::styled(
                format!(
                    "{}: {} ({})",
                    fd.severity.name().to_uppercase(),
                    fd.reason,
                    fd.rule
                ),
                severity_style(fd.severity),
            ),
        );
        lines.insert(1, Line::raw(""));
    }
    let chain: Vec<String> = App::procs_chain(procs, r.ev.pid);
    if !chain.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::raw(format!("process: {}", chain.join(" <- "))));
    }
    popup(f, "event", lines);
}
