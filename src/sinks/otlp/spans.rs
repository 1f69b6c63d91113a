//! A run's events as one OpenTelemetry trace, in the GenAI semantic conventions: an
//! `invoke_agent` span for the tree, a `chat` span for each LLM call (request to response),
//! an `execute_tool` span for each tool call (from the response that asked for it to the
//! agent's next request, which carries its result), and what the kernel saw as short child
//! spans of the tool call behind it, or of the tree's span when no call is. Spans leave as
//! they end, so a collector sees the run while it goes on; the tree's span ends last.
//!
//! Content (exec arguments, tool arguments, LLM bodies) is left out unless asked for; it
//! is the event log's, already redacted. What the tree names (tools, models, paths, hosts)
//! is bounded, so a hostile tree cannot make a span of any size.
use std::collections::{HashMap, VecDeque};

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span, Status};

use crate::diff::Finding;
use crate::event::{Event, Kind};
use crate::llm::redact::cut;

/// Bytes kept of one attribute's text.
const TEXT_MAX: usize = 4096;
/// Child spans of one name (exec, connect, ...) in one run; beyond it repeats are counted,
/// not sent. What was not seen before in the run (another path, address, error) still
/// goes, as do denials, flags, findings and protected files: a tree that floods one kind
/// with one value cannot push the next one out (what waits for the receiver is bounded in
/// send.rs).
const KERNEL_MAX: u64 = 20_000;
/// Distinct kernel spans remembered, to tell a new one from a repeat.
const DISTINCT_MAX: usize = 100_000;
/// LLM requests waiting for their response; past it the oldest ends unanswered.
const CHATS_MAX: usize = 256;
/// Names kept of the tools a request offers, and bytes of each.
const OFFERED_MAX: usize = 32;
const NAME_MAX: usize = 256;
/// File spans under one parent (a tool call that ran `pip install` opens thousands).
const FILES_PER_PARENT: u32 = 1000;
/// Tool calls remembered, open or ended, so that later events find their span.
const CALLS_MAX: usize = 65_536;

/// An attribute value.
pub enum V {
    S(String),
    I(i64),
    B(bool),
    L(Vec<String>),
}

pub fn kv(key: &str, v: V) -> KeyValue {
    let value = match v {
        V::S(s) => any_value::Value::StringValue(bounded(&s)),
        V::I(i) => any_value::Value::IntValue(i),
        V::B(b) => any_value::Value::BoolValue(b),
        V::L(l) => any_value::Value::ArrayValue(ArrayValue {
            values: l
                .iter()
                .take(256)
                .map(|s| AnyValue {
                    value: Some(any_value::Value::StringValue(bounded(s))),
                })
                .collect(),
        }),
    };
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// `s`, cut at a character boundary to TEXT_MAX bytes, saying so.
fn bounded(s: &str) -> String {
    cut(s, TEXT_MAX)
}

fn nanos(ev: &Event) -> u64 {
    ev.ts
        .time()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Span ids: a counter through splitmix64 (a bijection: no two alike in a run), from a
/// random start.
struct Ids(u64);

impl Ids {
    fn next(&mut self) -> Vec<u8> {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)).max(1).to_be_bytes().to_vec()
    }
}

/// A span begun and not yet sent.
struct Open {
    span: Span,
    /// The process whose LLM call it is (chat, execute_tool).
    pid: u32,
    host: String,
    /// A chat's request number, which its response names (0 in older logs).
    exchange: u64,
}

pub struct Tracer {
    trace: Vec<u8>,
    ids: Ids,
    content: bool,
    root: Option<Span>,
    chats: Vec<Open>,
    /// Open tool calls, by the model's id.
    tools: HashMap<String, Open>,
    /// Every tool call's span id, open or ended (at most CALLS_MAX: the oldest go), by
    /// `key(id)`.
    calls: HashMap<String, Vec<u8>>,
    calls_order: VecDeque<String>,
    /// Kernel spans made, by name.
    kernel: HashMap<String, u64>,
    /// Hashes of the kernel spans' names and attributes seen (keyed per run, so a tree
    /// cannot make a new one look like a repeat).
    distinct: std::collections::HashSet<u64>,
    hasher: std::collections::hash_map::RandomState,
    files: HashMap<Vec<u8>, u32>,
    /// Child spans not made (KERNEL_MAX, FILES_PER_PARENT).
    pub dropped: u64,
    /// Spans ended, for the exporter to take.
    pub done: Vec<Span>,
}

impl Tracer {
    /// `seed`: where span ids start (random in a run, fixed in a test).
    pub fn new(content: bool, seed: u64) -> Tracer {
        Tracer {
            trace: Vec::new(),
            ids: Ids(seed),
            content,
            root: None,
            chats: Vec::new(),
            tools: HashMap::new(),
            calls: HashMap::new(),
            calls_order: VecDeque::new(),
            kernel: HashMap::new(),
            distinct: Default::default(),
            hasher: Default::default(),
            files: HashMap::new(),
            dropped: 0,
            done: Vec::new(),
        }
    }

    /// The run's trace id: its recording id (a UUID) as 16 bytes, so the trace and the
    /// profile's [[run]] name each other; another id's hash when it is not one.
    fn trace_id(run: &str) -> Vec<u8> {
        let hex: String = run.chars().filter(|c| *c != '-').collect();
        let parsed: Option<Vec<u8>> = (hex.len() == 32
            && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| {
            (0..16)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                .collect()
        })
        .flatten();
        parsed.unwrap_or_else(|| {
            use sha2::Digest;
            sha2::Sha256::digest(run.as_bytes())[..16].to_vec()
        })
    }

    fn span(&mut self, name: String, kind: SpanKind, parent: Vec<u8>, start: u64) -> Span {
        Span {
            trace_id: self.trace.clone(),
            span_id: self.ids.next(),
            parent_span_id: parent,
            name: bounded(&name),
            kind: kind as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start,
            ..Default::default()
        }
    }

    fn root_id(&self) -> Vec<u8> {
        self.root
            .as_ref()
            .map(|r| r.span_id.clone())
            .unwrap_or_default()
    }

    /// One event of the run, with the finding it is against --baseline.
    pub fn observe(&mut self, ev: &Event, finding: Option<&Finding>) {
        let at = nanos(ev);
        match &ev.kind {
            Kind::Start { command, run, .. } => {
                self.trace = Self::trace_id(run.as_deref().unwrap_or(command));
                let agent = command
                    .split_whitespace()
                    .next()
                    .map(|p| p.rsplit('/').next().unwrap_or(p))
                    .unwrap_or("")
                    .to_string();
                let mut s = self.span(
                    format!("invoke_agent {agent}"),
                    SpanKind::Internal,
                    Vec::new(),
                    at,
                );
                s.attributes = vec![
                    kv("gen_ai.operation.name", V::S("invoke_agent".into())),
                    kv("gen_ai.agent.name", V::S(agent)),
                    kv("process.pid", V::I(ev.pid.into())),
                ];
                // The command line may carry a secret (--api-key=...): content.
                if self.content {
                    s.attributes
                        .push(kv("agentguard.command", V::S(command.clone())));
                }
                if let Some(r) = run {
                    s.attributes.push(kv("agentguard.run", V::S(r.clone())));
                }
                self.root = Some(s);
                return;
            }
            Kind::LlmRequest(r) => {
                self.end_tools(Some(ev.pid), at);
                let name = match r.model.as_str() {
                    "" => "chat".to_string(),
                    m => format!("chat {m}"),
                };
                let root = self.root_id();
                let mut s = self.span(name, SpanKind::Client, root, at);
                s.attributes = vec![
                    kv("gen_ai.operation.name", V::S("chat".into())),
                    kv("gen_ai.provider.name", V::S(provider(&r.api).into())),
                    kv("agentguard.llm.api", V::S(r.api.clone())),
                    kv("agentguard.llm.transport", V::S(r.transport.clone())),
                    kv("process.pid", V::I(ev.pid.into())),
                ];
                s.attributes.extend(request(&r.method, &r.path));
                s.attributes.extend(server(&r.host));
                if !r.model.is_empty() {
                    s.attributes
                        .push(kv("gen_ai.request.model", V::S(r.model.clone())));
                }
                if !r.tools.is_empty() {
                    listed(&mut s.attributes, "agentguard.llm.tools_offered", &r.tools);
                }
                if let (true, Some(b)) = (self.content, &r.body) {
                    s.attributes
                        .push(kv("agentguard.llm.request.body", V::S(b.clone())));
                }
                self.chats.push(Open {
                    span: s,
                    pid: ev.pid,
                    host: r.host.clone(),
                    exchange: r.exchange,
                });
                // A tree that never gets answers cannot grow this without bound.
                if self.chats.len() > CHATS_MAX {
                    let old = self.chats.remove(0);
                    self.unanswered(old, at);
                }
            }
            Kind::LlmResponse(r) => {
                let open = match self.chats.iter().position(|c| match r.exchange {
                    0 => c.pid == ev.pid && c.host == r.host,
                    n => c.pid == ev.pid && c.exchange == n,
                }) {
                    Some(i) => self.chats.remove(i).span,
                    None => {
                        let root = self.root_id();
                        let mut s = self.span("chat".into(), SpanKind::Client, root, at);
                        s.attributes = vec![
                            kv("gen_ai.operation.name", V::S("chat".into())),
                            kv("gen_ai.provider.name", V::S(provider(&r.api).into())),
                        ];
                        s.attributes.extend(server(&r.host));
                        s
                    }
                };
                let mut s = open;
                ended(&mut s, at);
                s.attributes
                    .push(kv("http.response.status_code", V::I(r.status.into())));
                if !r.model.is_empty() {
                    s.attributes
                        .push(kv("gen_ai.response.model", V::S(r.model.clone())));
                }
                if let Some(n) = r.input_tokens {
                    s.attributes
                        .push(kv("gen_ai.usage.input_tokens", V::I(n as i64)));
                }
                if let Some(n) = r.output_tokens {
                    s.attributes
                        .push(kv("gen_ai.usage.output_tokens", V::I(n as i64)));
                }
                if !r.tool_calls.is_empty() {
                    listed(
                        &mut s.attributes,
                        "agentguard.llm.tool_calls",
                        &r.tool_calls,
                    );
                }
                if let (true, Some(b)) = (self.content, &r.body) {
                    s.attributes
                        .push(kv("agentguard.llm.response.body", V::S(b.clone())));
                }
                if let Some(e) = &r.error {
                    s.attributes
                        .push(kv("error.type", V::S("unreadable".into())));
                    s.status = Some(error(e));
                } else if r.status >= 400 {
                    s.attributes
                        .push(kv("error.type", V::S(r.status.to_string())));
                    s.status = Some(error(&format!("HTTP {}", r.status)));
                }
                self.done.push(s);
            }
            Kind::ToolCall(t) => {
                let id = key(&t.id);
                // An id used again (by the model, or by a tree that wants its call hidden
                // under another's) ends the first call's span: what follows is the new one's.
                if let Some(old) = self.tools.remove(&id) {
                    let mut s = old.span;
                    ended(&mut s, at);
                    self.done.push(s);
                }
                let root = self.root_id();
                let mut s = self.span(
                    format!("execute_tool {}", t.name),
                    SpanKind::Internal,
                    root,
                    at,
                );
                s.attributes = vec![
                    kv("gen_ai.operation.name", V::S("execute_tool".into())),
                    kv("gen_ai.tool.name", V::S(t.name.clone())),
                    kv("gen_ai.tool.call.id", V::S(t.id.clone())),
                    kv("gen_ai.tool.type", V::S("function".into())),
                    kv("process.pid", V::I(ev.pid.into())),
                ];
                if t.reported {
                    s.attributes
                        .push(kv("agentguard.tool.reported", V::B(true)));
                }
                if let Some(st) = &t.steered {
                    s.attributes
                        .push(kv("agentguard.tool.steered_by", V::S(st.by.clone())));
                    if let Some(c) = &st.call {
                        s.attributes
                            .push(kv("agentguard.tool.steered_by.call", V::S(c.clone())));
                    }
                    if let Some(c) = &st.tool {
                        s.attributes
                            .push(kv("agentguard.tool.steered_by.tool", V::S(c.clone())));
                    }
                    if self.content {
                        s.attributes.push(kv(
                            "agentguard.tool.steered_by.argument",
                            V::S(st.argument.clone()),
                        ));
                    }
                }
                if self.content {
                    s.attributes
                        .push(kv("gen_ai.tool.call.arguments", V::S(t.arguments.clone())));
                }
                if self.calls.insert(id.clone(), s.span_id.clone()).is_none() {
                    self.calls_order.push_back(id.clone());
                    if self.calls_order.len() > CALLS_MAX {
                        if let Some(gone) = self.calls_order.pop_front() {
                            self.calls.remove(&gone);
                        }
                    }
                }
                // Past the limit the oldest open call ends (not every process's).
                if self.tools.len() >= CHATS_MAX {
                    let oldest = self
                        .tools
                        .iter()
                        .min_by_key(|(_, o)| o.span.start_time_unix_nano)
                        .map(|(k, _)| k.clone());
                    if let Some(o) = oldest.and_then(|k| self.tools.remove(&k)) {
                        let mut s = o.span;
                        ended(&mut s, at);
                        self.done.push(s);
                    }
                }
                self.tools.insert(
                    id,
                    Open {
                        span: s,
                        pid: ev.pid,
                        host: t.host.clone(),
                        exchange: 0,
                    },
                );
                return;
            }
            Kind::End {
                exit,
                events,
                lost,
                interrupted,
                ..
            } => {
                self.end_tools(None, at);
                for c in std::mem::take(&mut self.chats) {
                    self.unanswered(c, at);
                }
                if let Some(mut r) = self.root.take() {
                    ended(&mut r, at);
                    r.attributes.extend([
                        kv("agentguard.exit", V::I((*exit).into())),
                        kv("agentguard.events", V::I(*events as i64)),
                        kv("agentguard.lost", V::I(*lost as i64)),
                        kv("agentguard.spans_dropped", V::I(self.dropped as i64)),
                    ]);
                    if *interrupted {
                        r.attributes.push(kv("agentguard.interrupted", V::B(true)));
                    }
                    if *exit != 0 {
                        r.status = Some(error(&format!("the command exited {exit}")));
                    } else if *lost != 0 {
                        r.status = Some(error(&format!(
                            "the sensor lost {lost} events: the trace is incomplete"
                        )));
                    }
                    self.done.push(r);
                }
                return;
            }
            _ => {}
        }
        self.kernel_span(ev, finding, at);
    }

    /// A kernel event's span, under the tool call that caused it or the tree's span.
    fn kernel_span(&mut self, ev: &Event, finding: Option<&Finding>, at: u64) {
        // A protected file (credentials, shell start-up files, ...) always shows, caused
        // or not, and is never cut.
        let protected = match &ev.kind {
            Kind::File(f) => crate::profile::protected::category(&f.path),
            _ => None,
        };
        let pointed = finding.is_some() || protected.is_some();
        let Some((name, mut attrs)) = super::kernel::describe(ev, pointed, self.content) else {
            return;
        };
        if let Some(c) = protected {
            attrs.push(kv("agentguard.file.protected", V::S(c.into())));
        }
        // Files are many and mostly distinct (an install opens thousands): only their
        // count per tool call bounds them. Other kinds' first of a kind always goes.
        let new = !matches!(ev.kind, Kind::File(_)) && {
            use std::hash::BuildHasher;
            let h = self.hasher.hash_one((&name, format!("{attrs:?}")));
            self.distinct.len() < DISTINCT_MAX && self.distinct.insert(h)
        };
        let limited = !new && !pointed && !matches!(ev.kind, Kind::Deny(_) | Kind::Flag(_));
        let made = self.kernel.entry(name.clone()).or_default();
        if limited && *made >= KERNEL_MAX {
            self.dropped += 1;
            return;
        }
        *made += 1;
        let parent = ev
            .cause
            .as_ref()
            .and_then(|c| self.calls.get(&key(&c.call)).cloned())
            .unwrap_or_else(|| self.root_id());
        if matches!(ev.kind, Kind::File(_)) {
            let n = self.files.entry(parent.clone()).or_default();
            if limited && *n >= FILES_PER_PARENT {
                self.dropped += 1;
                return;
            }
            *n += 1;
        }
        let mut s = self.span(name, SpanKind::Internal, parent, at);
        attrs.push(kv("process.pid", V::I(ev.pid.into())));
        attrs.push(kv("process.parent_pid", V::I(ev.ppid.into())));
        if !ev.exe.is_empty() {
            attrs.push(kv("process.executable.path", V::S(ev.exe.clone())));
        }
        if let Some(c) = &ev.cause {
            attrs.push(kv("gen_ai.tool.call.id", V::S(c.call.clone())));
            attrs.push(kv("gen_ai.tool.name", V::S(c.tool.clone())));
            attrs.push(kv(
                "agentguard.cause.confidence",
                V::S(format!("{:.2}", c.confidence)),
            ));
            attrs.push(kv("agentguard.cause.why", V::S(c.why.clone())));
        }
        if let Some(f) = finding {
            attrs.extend([
                kv(
                    "agentguard.finding.severity",
                    V::S(f.severity.name().into()),
                ),
                kv("agentguard.finding.rule", V::S(f.rule.into())),
                kv("agentguard.finding.reason", V::S(f.reason.clone())),
                kv("agentguard.finding.new", V::B(f.new)),
            ]);
        }
        if let Kind::Deny(d) = &ev.kind {
            if d.enforced {
                s.status = Some(error(&d.reason));
            }
        }
        s.attributes = attrs;
        self.done.push(s);
    }

    /// Ends the open tool calls of `pid` (its next LLM request carries their results), or
    /// all of them.
    fn end_tools(&mut self, pid: Option<u32>, at: u64) {
        let ids: Vec<String> = self
            .tools
            .iter()
            .filter(|(_, o)| pid.is_none_or(|p| o.pid == p))
            .map(|(id, _)| id.clone())
            .collect();
        let mut ended: Vec<Span> = ids
            .iter()
            .filter_map(|id| self.tools.remove(id))
            .map(|o| {
                let mut s = o.span;
                ended(&mut s, at);
                s
            })
            .collect();
        ended.sort_by_key(|s| s.start_time_unix_nano);
        self.done.extend(ended);
    }

    fn unanswered(&mut self, o: Open, at: u64) {
        let mut s = o.span;
        ended(&mut s, at);
        s.status = Some(error("no response was seen"));
        self.done.push(s);
    }
}

/// Ends `s` at `at` (never before it began: the events' clock is the tree's order).
fn ended(s: &mut Span, at: u64) {
    s.end_time_unix_nano = at.max(s.start_time_unix_nano);
}

/// The first OFFERED_MAX names of a list the tree chose, bounded, under `key`, and how
/// many it had under `key_count`.
fn listed(attrs: &mut Vec<KeyValue>, key: &str, names: &[String]) {
    let first = names.iter().take(OFFERED_MAX).map(|t| cut(t, NAME_MAX));
    attrs.push(kv(key, V::L(first.collect())));
    attrs.push(kv(&format!("{key}_count"), V::I(names.len() as i64)));
}

fn error(message: &str) -> Status {
    Status {
        message: bounded(message),
        code: StatusCode::Error as i32,
    }
}

/// The GenAI conventions' provider name for an API agentguard reads.
fn provider(api: &str) -> &str {
    api.split('.').next().unwrap_or(api)
}

/// A tool call's id as a key: itself, or for a long one its hash (ids are the model's
/// text, or the tree's, and unbounded).
fn key(id: &str) -> String {
    if id.len() <= NAME_MAX {
        return format!("id:{id}");
    }
    use sha2::Digest;
    let h = sha2::Sha256::digest(id.as_bytes());
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    // Apart from the short ids: a short id cannot name a long one's call.
    format!("sha256:{hex}")
}

/// `http.request.method` (`_OTHER` for a method HTTP does not define, as the conventions
/// say), `url.path` and `url.query`.
pub fn request(method: &str, target: &str) -> Vec<KeyValue> {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    let mut a = Vec::new();
    if KNOWN.contains(&method) {
        a.push(kv("http.request.method", V::S(method.into())));
    } else {
        a.push(kv("http.request.method", V::S("_OTHER".into())));
        a.push(kv("http.request.method_original", V::S(method.into())));
    }
    match target.split_once('?') {
        Some((p, q)) => {
            a.push(kv("url.path", V::S(p.into())));
            a.push(kv("url.query", V::S(q.into())));
        }
        None => a.push(kv("url.path", V::S(target.into()))),
    }
    a
}

/// `server.address` and `server.port` from a Host header.
pub fn server(host: &str) -> Vec<KeyValue> {
    match host.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() && !h.ends_with(':') => vec![
            kv(
                "server.address",
                V::S(h.trim_matches(['[', ']']).to_string()),
            ),
            kv("server.port", V::I(p.parse::<i64>().unwrap_or(0))),
        ],
        _ => vec![kv("server.address", V::S(host.to_string()))],
    }
}
