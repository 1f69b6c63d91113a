//! Ties what the tree does to the tool call that most plausibly caused it.
//!
//! A tool call is open from the response that asked for it until its agent process sends
//! its next LLM request (which carries the tool's result). An event is tied to an open call
//! of the nearest ancestor (or itself) that made LLM calls: surest when the call's
//! arguments name what the event did (the command, the path, the address), less sure on
//! lineage and timing alone. A process started under a call keeps that call for the rest of
//! its life, and passes it to its children.
use std::collections::HashMap;

use serde_json::Value;

use crate::event::{Cause, Event, Kind, Net};
use crate::tree::Tree;

#[derive(Debug, Clone)]
struct Call {
    id: String,
    name: String,
    summary: String,
    /// The string values of the arguments, for matching.
    values: Vec<String>,
    /// The earlier call whose result carried its decisive argument.
    steered_by: Option<String>,
    /// Reported by the agent's hook, not read from its traffic.
    reported: bool,
}

/// Open calls kept per agent: a hook that reports calls and never their end (or a tree
/// that forges them) cannot make every later event pay for thousands.
const OPEN_MAX: usize = 64;
/// The most a link to a reported call is worth: the call itself is the tree's word.
const REPORTED_CONFIDENCE: f32 = 0.5;

#[derive(Debug, Default)]
pub struct Attributor {
    calls: Vec<Call>,
    /// Agent process -> its open calls (indices into `calls`).
    open: HashMap<u32, Vec<usize>>,
    /// Processes started under a call, and the cause they carry.
    procs: HashMap<u32, Cause>,
    /// Processes by how many calls had been made when they were forked: one forked before
    /// a call (a helper, a server the agent keeps) was not started by it.
    born: HashMap<u32, usize>,
    /// Where the tree's LLM requests went (Host headers): connections there are the agent
    /// talking to its model, caused by no tool.
    llm_hosts: std::collections::HashSet<String>,
}

impl Attributor {
    /// The agent's hook says its tool call `id` has ended: what its process does from now
    /// is not that call's (processes the call started keep it). Only a call the hook
    /// reported: one read from the traffic ends with the agent's next request, not at the
    /// word of a process that learned its id.
    pub fn done(&mut self, pid: u32, id: &str) {
        let calls = &self.calls;
        if let Some(open) = self.open.get_mut(&pid) {
            open.retain(|&i| !(calls[i].id == id && calls[i].reported));
            if open.is_empty() {
                self.open.remove(&pid);
            }
        }
    }

    /// Sets `ev.cause` when a tool call explains it; the run's tree gives the ancestors.
    pub fn observe(&mut self, ev: &mut Event, tree: &Tree) {
        match &ev.kind {
            Kind::LlmRequest(r) => {
                // The next request carries the results: the calls are done.
                self.open.remove(&ev.pid);
                self.model_at(&r.host);
                return;
            }
            Kind::Net(n) if self.is_model(n) => return,
            Kind::ToolCall(t) => {
                let values = arg_values(&t.arguments);
                let steered_by = t
                    .steered
                    .as_ref()
                    .filter(|s| s.by == "tool_result")
                    .map(|s| {
                        s.tool
                            .clone()
                            .unwrap_or_else(|| format!("call {}", s.call.as_deref().unwrap_or("?")))
                    });
                // Reported by the agent's hook and seen in its traffic too: one call, as
                // the traffic says it (a report never overrides what was read).
                if let Some(&i) = self
                    .open
                    .get(&ev.pid)
                    .and_then(|o| o.iter().find(|&&i| self.calls[i].id == t.id))
                {
                    if !t.reported {
                        self.calls[i] = Call {
                            id: t.id.clone(),
                            name: t.name.clone(),
                            summary: summary(&t.name, &t.arguments),
                            values,
                            steered_by,
                            reported: false,
                        };
                    }
                    return;
                }
                self.calls.push(Call {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    summary: summary(&t.name, &t.arguments),
                    values,
                    steered_by,
                    reported: t.reported,
                });
                let open = self.open.entry(ev.pid).or_default();
                open.push(self.calls.len() - 1);
                if open.len() > OPEN_MAX {
                    open.remove(0);
                }
                return;
            }
            Kind::Fork { child } => {
                self.born.insert(*child, self.calls.len());
                if let Some(c) = self.procs.get(&ev.pid).cloned() {
                    self.procs.insert(
                        *child,
                        Cause {
                            why: format!("inherited from pid {}: {}", ev.pid, c.why),
                            ..c
                        },
                    );
                }
                return;
            }
            Kind::Exit { .. } => {
                self.procs.remove(&ev.pid);
                self.born.remove(&ev.pid);
                return;
            }
            // The agent's own LLM calls are no tool's.
            Kind::Http(h) if h.api.is_some() => return,
            Kind::Exec(_)
            | Kind::Http(_)
            | Kind::File(_)
            | Kind::Net(_)
            | Kind::Dns(_)
            | Kind::Flag(_)
            | Kind::Deny(_) => {}
            _ => return,
        }
        let objects = objects(ev);
        let is_exec = matches!(ev.kind, Kind::Exec(_));
        // Carried from the call it was started under; a match only makes it surer.
        if let Some(c) = self.procs.get_mut(&ev.pid) {
            if let Some(call) = self.calls.iter().find(|k| k.id == c.call) {
                if c.confidence < 0.9 && names(call, &objects) {
                    c.confidence = 0.9;
                    c.why = "its arguments name it".into();
                }
            }
            ev.cause = Some(c.clone());
            return;
        }
        let Some((agent, open)) = self.nearest_open(ev.pid, tree) else {
            return;
        };
        let in_agent = agent == ev.pid;
        let matched: Vec<usize> = open
            .iter()
            .copied()
            .filter(|&i| names(&self.calls[i], &objects))
            .collect();
        // A call read from the traffic outranks one the agent's hook reported: a report
        // whose arguments name everything cannot take the link from the real call.
        let matched = match matched.iter().rev().find(|&&i| !self.calls[i].reported) {
            Some(&i) => vec![i],
            None => matched,
        };
        let (i, confidence, why) = if let Some(&i) = matched.last() {
            (i, 0.9, "its arguments name it".to_string())
        } else {
            let i = *open.last().expect("open turns are never empty");
            // Forked before the call was made: the call did not start it.
            let before = self.born.get(&ev.pid).is_some_and(|n| *n <= i);
            let (c, why) = match (in_agent, open.len() == 1) {
                (false, _) if before => {
                    (0.2, "a process of the tree that ran before the tool call")
                }
                (false, true) => (0.6, "a process started during the tool call"),
                (false, false) => (
                    0.3,
                    "a process started during the latest of several tool calls",
                ),
                (true, true) => (0.4, "the agent's process, during the tool call"),
                (true, false) => (
                    0.2,
                    "the agent's process, during the latest of several tool calls",
                ),
            };
            (i, c, why.to_string())
        };
        let call = &self.calls[i];
        let (confidence, why) = match call.reported {
            true => (
                f32::min(confidence, REPORTED_CONFIDENCE),
                format!("{why} (a call the agent's hook reported)"),
            ),
            false => (confidence, why),
        };
        let cause = Cause {
            call: call.id.clone(),
            tool: call.name.clone(),
            summary: call.summary.clone(),
            confidence,
            why,
            steered_by: call.steered_by.clone(),
            reported: call.reported,
        };
        if is_exec && !in_agent {
            self.procs.insert(ev.pid, cause.clone());
        }
        ev.cause = Some(cause);
    }

    /// Where the tree's LLM requests go (a Host header): a name or an address, with its
    /// port or without (then the default ports, as connect reports them).
    fn model_at(&mut self, host: &str) {
        // Host names are case-insensitive.
        let host = host.to_ascii_lowercase();
        if !host.contains(':') {
            for port in [443, 80] {
                self.llm_hosts.insert(format!("{host}:{port}"));
            }
        }
        self.llm_hosts.insert(host);
    }

    /// A connection to the model: by its address, or by the name the tree resolved it
    /// from (a Host header names a host, connect an address).
    fn is_model(&self, n: &Net) -> bool {
        self.llm_hosts.contains(&format!("{}:{}", n.addr, n.port))
            || n.name.as_ref().is_some_and(|name| {
                self.llm_hosts
                    .contains(&format!("{}:{}", name.to_ascii_lowercase(), n.port))
            })
    }

    fn nearest_open(&self, pid: u32, tree: &Tree) -> Option<(u32, Vec<usize>)> {
        let mut cur = pid;
        for _ in 0..64 {
            if let Some(o) = self.open.get(&cur).filter(|o| !o.is_empty()) {
                return Some((cur, o.clone()));
            }
            cur = tree.parent(cur)?;
        }
        None
    }
}

/// What an event did, as strings a tool call's arguments could name.
fn objects(ev: &Event) -> Vec<String> {
    match &ev.kind {
        Kind::Exec(x) => {
            let mut v: Vec<String> = x.argv.iter().skip(1).cloned().collect();
            v.push(x.path.clone());
            v
        }
        Kind::File(f) => {
            let mut v = vec![f.path.clone()];
            v.extend(f.target.clone());
            v
        }
        Kind::Net(n) if n.port != 0 => vec![
            format!("{}:{}", n.addr, n.port),
            format!("[{}]:{}", n.addr, n.port),
        ],
        Kind::Net(n) => vec![n.addr.clone()],
        Kind::Dns(d) => d.names.clone(),
        Kind::Flag(f) => vec![f.detail.clone()],
        // A request names its service and path ("http://127.0.0.1:18080/api/tickets/7").
        Kind::Http(h) => vec![
            h.host.clone(),
            h.path.split('?').next().unwrap_or_default().to_string(),
        ],
        // A denial names the file, program or destination ("127.0.0.66:18082").
        Kind::Deny(d) => vec![d.object.clone()],
        _ => Vec::new(),
    }
}

/// Whether one of the call's argument values names one of the objects.
fn names(call: &Call, objects: &[String]) -> bool {
    objects.iter().filter(|o| o.len() >= 3).any(|o| {
        let base = o.rsplit('/').next().unwrap_or(o);
        call.values.iter().any(|v| {
            v == o
                || (o.starts_with('/') && v.contains(o.as_str()))
                // An address:port in a URL.
                || (o.contains(':') && o.len() >= 7 && v.contains(o.as_str()))
                || v.strip_prefix("~/").is_some_and(|rest| o.ends_with(&format!("/{rest}")))
                // A relative path, or a command naming a program or a file by its name.
                || (!v.starts_with('/') && v.len() >= 3 && o.ends_with(&format!("/{v}")))
                || (base.len() >= 2 && words(v).any(|w| w == base || w == o))
        })
    })
}

fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c.is_whitespace() || "'\";|&()<>=`$".contains(c))
        .filter(|w| !w.is_empty())
}

/// Every string in the arguments (numbers too, as text).
fn arg_values(args: &str) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Number(n) => out.push(n.to_string()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    match serde_json::from_str::<Value>(args) {
        Ok(v) => walk(&v, &mut out),
        Err(_) => out.push(args.to_string()),
    }
    out
}

/// `run_shell(command='curl ...')`, at most about 120 characters.
pub fn summary(name: &str, args: &str) -> String {
    let inner = match serde_json::from_str::<Value>(args) {
        Ok(Value::Object(o)) => o
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    // A path or URL says most at its end (the file, the endpoint).
                    Value::String(s)
                        if !s.contains(char::is_whitespace)
                            && (s.starts_with(['/', '~']) || s.contains("://")) =>
                    {
                        format!("'{}'", tail(s, 60))
                    }
                    Value::String(s) => format!("'{}'", short(s, 60)),
                    other => short(&other.to_string(), 60),
                };
                format!("{k}={v}")
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => short(args, 80),
    };
    short(&format!("{name}({inner})"), 120)
}

fn tail(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let rest: String = s.chars().skip(n - max.saturating_sub(3)).collect();
    format!("...{rest}")
}

fn short(s: &str, max: usize) -> String {
    let s = s.replace('\n', "\\n");
    if s.chars().count() <= max {
        return s;
    }
    let cut: String = s.chars().take(max.saturating_sub(3)).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Exec, File, LlmRequest, Net, NetOp, Proto, ToolCall};

    fn ev(pid: u32, kind: Kind) -> Event {
        Event::of(pid, "x", kind)
    }
    fn call(pid: u32, id: &str, name: &str, args: &str) -> Event {
        ev(
            pid,
            Kind::ToolCall(ToolCall {
                id: id.into(),
                name: name.into(),
                arguments: args.into(),
                api: "openai.chat".into(),
                host: "h".into(),
                steered: None,
                reported: false,
            }),
        )
    }
    fn exec(pid: u32, argv: &[&str]) -> Event {
        ev(
            pid,
            Kind::Exec(Exec {
                path: argv[0].into(),
                argv: argv.iter().map(|s| s.to_string()).collect(),
                argv_truncated: false,
                cwd: "/w".into(),
                invoked_as: None,
                script: None,
                via_fd: false,
                unlinked: false,
                error: None,
            }),
        )
    }
    fn open(pid: u32, path: &str) -> Event {
        ev(pid, Kind::File(File::opened(path, vec![])))
    }
    fn request(pid: u32) -> Event {
        ev(
            pid,
            Kind::LlmRequest(LlmRequest {
                api: "openai.chat".into(),
                host: "h".into(),
                method: "POST".into(),
                path: "/v1/chat/completions".into(),
                transport: "tcp".into(),
                model: String::new(),
                stream: false,
                tools: vec![],
                headers: vec![],
                body: None,
                exchange: 0,
            }),
        )
    }

    /// One event through the tree and then the attributor, as the pipeline does.
    fn run((a, tree): &mut (Attributor, Tree), mut e: Event) -> Option<Cause> {
        tree.update(&e);
        a.observe(&mut e, tree);
        e.cause
    }

    #[test]
    fn a_shell_command_and_its_children_are_tied_to_run_shell() {
        let mut a = (Attributor::default(), Tree::default());
        run(&mut a, request(10));
        run(
            &mut a,
            call(10, "c1", "read_file", r#"{"path":"~/.aws/credentials"}"#),
        );
        run(
            &mut a,
            call(
                10,
                "c2",
                "run_shell",
                r#"{"command":"curl -s http://10.0.0.9:8080/x"}"#,
            ),
        );
        run(&mut a, ev(10, Kind::Fork { child: 11 }));
        let c = run(
            &mut a,
            exec(11, &["/bin/sh", "-c", "curl -s http://10.0.0.9:8080/x"]),
        )
        .unwrap();
        assert_eq!((c.call.as_str(), c.confidence), ("c2", 0.9));
        assert_eq!(
            c.summary,
            "run_shell(command='curl -s http://10.0.0.9:8080/x')"
        );
        run(&mut a, ev(11, Kind::Fork { child: 12 }));
        let c = run(
            &mut a,
            exec(12, &["/usr/bin/curl", "-s", "http://10.0.0.9:8080/x"]),
        )
        .unwrap();
        assert_eq!(c.call, "c2");
        let net = ev(
            12,
            Kind::Net(Net {
                op: NetOp::Connect,
                family: crate::event::Family::Inet,
                proto: Proto::Tcp,
                addr: "10.0.0.9".into(),
                port: 8080,
                mapped: false,
                name: None,
                error: None,
            }),
        );
        assert_eq!(run(&mut a, net).unwrap().call, "c2");
        // The agent itself reading the file the other call named.
        let c = run(&mut a, open(10, "/home/u/.aws/credentials")).unwrap();
        assert_eq!((c.call.as_str(), c.confidence), ("c1", 0.9));
        // The agent's own unrelated opens: weakly, to the latest call.
        let c = run(&mut a, open(10, "/usr/lib/python3/json/__init__.py")).unwrap();
        assert!(c.confidence < 0.5, "{c:?}");
    }

    /// The agent's own connection to its model, by the name it resolved (a Host header
    /// names a host, connect an address): no tool call caused it.
    #[test]
    fn a_connection_to_the_model_by_name_is_no_tool_calls() {
        let mut a = (Attributor::default(), Tree::default());
        let mut req = request(10);
        if let Kind::LlmRequest(r) = &mut req.kind {
            r.host = "API.Example.com".into();
        }
        run(&mut a, req);
        run(
            &mut a,
            call(10, "c1", "fetch", r#"{"url":"https://api.example.com/x"}"#),
        );
        let net = |name: Option<&str>, port| {
            ev(
                10,
                Kind::Net(Net {
                    op: NetOp::Connect,
                    family: crate::event::Family::Inet,
                    proto: Proto::Tcp,
                    addr: "192.0.2.7".into(),
                    port,
                    mapped: false,
                    name: name.map(str::to_string),
                    error: None,
                }),
            )
        };
        assert_eq!(run(&mut a, net(Some("api.example.com"), 443)), None);
        // Another port of that host, or an address with no name, is not the model.
        assert!(run(&mut a, net(Some("api.example.com"), 8443)).is_some());
        assert!(run(&mut a, net(None, 443)).is_some());
    }

    #[test]
    fn a_process_forked_before_the_call_was_not_started_by_it() {
        let mut a = (Attributor::default(), Tree::default());
        a.1.add_root(10, "/usr/bin/python3");
        // A helper the agent keeps, forked before any call.
        run(&mut a, ev(10, Kind::Fork { child: 11 }));
        run(&mut a, call(10, "c1", "read_file", r#"{"path":"/w/a.md"}"#));
        run(&mut a, ev(10, Kind::Fork { child: 12 }));
        let helper = run(&mut a, open(11, "/var/cache/x")).unwrap();
        assert_eq!(helper.confidence, 0.2, "{helper:?}");
        // A process forked during the call is the call's, by lineage.
        let child = run(&mut a, open(12, "/var/cache/x")).unwrap();
        assert_eq!(child.confidence, 0.6, "{child:?}");
    }

    #[test]
    fn nothing_is_tied_outside_a_tool_call() {
        let mut a = (Attributor::default(), Tree::default());
        assert_eq!(run(&mut a, open(10, "/etc/hosts")), None);
        run(
            &mut a,
            call(10, "c1", "list_files", r#"{"path":"/w/docs"}"#),
        );
        assert!(run(&mut a, open(10, "/w/docs")).is_some());
        // The next request carries the result: the call is over.
        run(&mut a, request(10));
        assert_eq!(run(&mut a, open(10, "/w/docs")), None);
    }

    #[test]
    fn summaries_are_short() {
        let s = summary(
            "write_file",
            &format!(r#"{{"path":"/a","content":"{}"}}"#, "x".repeat(500)),
        );
        assert!(s.len() <= 125, "{s}");
        assert!(
            s.starts_with("write_file(content='xxx") && s.contains("...', path='/a')"),
            "{s}"
        );
        let s = summary(
            "read_file",
            &format!(r#"{{"path":"/{}/docs/incident.md"}}"#, "w".repeat(80)),
        );
        assert!(
            s.ends_with("www/docs/incident.md')") && s.contains("'..."),
            "{s}"
        );
    }

    /// A call as the agent's hook reports it.
    fn reported(pid: u32, id: &str, args: &str) -> Event {
        let mut e = call(pid, id, "Bash", args);
        if let Kind::ToolCall(t) = &mut e.kind {
            t.reported = true;
            t.api = "hook".into();
        }
        e
    }

    #[test]
    fn a_reported_call_never_outranks_a_read_one_and_is_worth_less() {
        let mut s = (Attributor::default(), Tree::default());
        s.1.add_root(1, "/usr/bin/agent");
        run(
            &mut s,
            call(
                1,
                "real",
                "run_shell",
                r#"{"command": "cat /etc/hostname"}"#,
            ),
        );
        // A report whose arguments name everything, after the real call.
        run(
            &mut s,
            reported(
                1,
                "forged",
                r#"{"command": "cat /etc/hostname /etc/passwd"}"#,
            ),
        );
        run(&mut s, ev(1, Kind::Fork { child: 2 }));
        let c = run(&mut s, exec(2, &["/usr/bin/cat", "/etc/hostname"])).unwrap();
        assert_eq!((c.call.as_str(), c.reported), ("real", false));
        // Alone, a reported call links, marked and below what teaches a profile.
        let mut s = (Attributor::default(), Tree::default());
        s.1.add_root(1, "/usr/bin/agent");
        run(
            &mut s,
            reported(1, "r1", r#"{"command": "cat /etc/hostname"}"#),
        );
        run(&mut s, ev(1, Kind::Fork { child: 2 }));
        let c = run(&mut s, exec(2, &["/usr/bin/cat", "/etc/hostname"])).unwrap();
        assert_eq!(c.call, "r1");
        assert!(c.reported);
        assert!(c.confidence <= REPORTED_CONFIDENCE);
        assert!(c.confidence < crate::profile::EFFECT_CONFIDENCE);
    }

    #[test]
    fn a_hook_ends_only_the_calls_it_reported_and_open_calls_are_bounded() {
        let mut s = (Attributor::default(), Tree::default());
        s.1.add_root(1, "/usr/bin/agent");
        run(&mut s, call(1, "real", "run_shell", "{}"));
        run(&mut s, reported(1, "r1", "{}"));
        s.0.done(1, "real");
        s.0.done(1, "r1");
        let open: Vec<&str> = s.0.open[&1]
            .iter()
            .map(|&i| s.0.calls[i].id.as_str())
            .collect();
        assert_eq!(open, ["real"]);
        // The traffic's word replaces a report of the same call.
        run(&mut s, reported(1, "r2", "{}"));
        run(&mut s, call(1, "r2", "run_shell", "{}"));
        let i = *s.0.open[&1].last().unwrap();
        assert!(!s.0.calls[i].reported);
        for k in 0..200 {
            run(&mut s, reported(1, &format!("f{k}"), "{}"));
        }
        assert_eq!(s.0.open[&1].len(), OPEN_MAX);
    }
}
