//! The agent's LLM traffic: HTTP streams the sensor copied (TLS plaintext from uprobes,
//! plain TCP from sendto/recvfrom) become llm.request, llm.response and llm.tool_call
//! events, and every later event of the tree is tied to the tool call behind it.
pub mod api;
pub mod attribute;
pub mod hello;
pub mod http;
pub mod libs;
pub mod redact;
pub mod steer;
pub mod verify;

use std::collections::{HashMap, VecDeque};

use crate::event::{
    Event, Http, Kind, LlmRequest, LlmResponse, Timestamp, Tls, TlsStatus, ToolCall,
};
use crate::tree::Tree;
use api::Api;

/// Bytes one call on a stream moved (or one chunk of them), as the sensor reports them.
#[derive(Debug, Clone)]
pub struct Payload {
    pub ts: Timestamp,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub exe: String,
    pub tls: bool,
    /// Sent by the process (a request), or received (a response).
    pub write: bool,
    /// The SSL object's or the socket's kernel address.
    pub stream: u64,
    /// Bytes the call moved, and where this chunk starts in them.
    pub total: u64,
    pub offset: u64,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Keep request and response bodies (redacted, bounded) in the events.
    pub bodies: bool,
    pub body_max: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bodies: false,
            body_max: 16 * 1024,
        }
    }
}

/// What a request said, kept until its response arrives.
struct Pending {
    api: Option<Api>,
    host: String,
    /// For the http event: method, redacted target, tls, bytes sent.
    method: String,
    path: String,
    tls: bool,
    sent: u64,
    /// An LLM request's conversation: where its calls' arguments could come from, and
    /// what is left of the bytes its calls may search it for.
    conversation: Vec<steer::Msg>,
    search: std::cell::Cell<usize>,
    /// An LLM request's number in the run (the llm.request and llm.response events'
    /// `exchange`); 0 for other HTTP.
    exchange: u64,
}

impl Pending {
    /// The http event of this exchange: `response` is None when none came.
    fn exchange(&self, response: Option<&http::Message>, base: &Origin) -> Event {
        let status = match response.map(|m| &m.head) {
            Some(http::Head::Response { status }) => *status,
            _ => 0,
        };
        base.event(Kind::Http(Http {
            method: self.method.clone(),
            host: self.host.to_ascii_lowercase(),
            path: self.path.clone(),
            transport: if self.tls { "tls" } else { "tcp" }.into(),
            status,
            sent: self.sent,
            received: response.map_or(0, |m| m.wire),
            api: self.api.map(|a| a.name().to_string()),
        }))
    }
}

#[derive(Default)]
struct Conn {
    tx: http::Stream,
    rx: http::Stream,
    /// The call being reassembled per direction: (bytes it moved, next offset).
    tx_call: Option<(u64, u64)>,
    rx_call: Option<(u64, u64)>,
    pending: VecDeque<Pending>,
    /// Tool calls of the response being streamed already reported: their block closed
    /// before the message ended (an agent may run them at once).
    early: Early,
    /// An answer was read on it.
    answered: bool,
}

/// The calls of the response being streamed that were reported as their blocks closed,
/// by id with what they said, and how often the stream was read for them.
#[derive(Default)]
struct Early {
    calls: HashMap<String, (String, String)>,
    /// Bytes of the stream parsed for them so far.
    work: usize,
}

/// Turns payload into events, and attributes events to tool calls.
pub struct Llm {
    opts: Options,
    conns: HashMap<(u32, bool, u64), Conn>,
    pub coverage: libs::Coverage,
    attributor: attribute::Attributor,
    said_h2: std::collections::HashSet<u32>,
    /// Recent tool calls' summaries by process and id, to name the call whose result
    /// steered another (an id is the client's to choose: only the same agent's count).
    summaries: VecDeque<(u32, String, String)>,
    pub requests: u64,
    pub tool_calls: u64,
}

impl Llm {
    pub fn new(opts: Options) -> Llm {
        Llm {
            opts,
            conns: HashMap::new(),
            coverage: Default::default(),
            attributor: Default::default(),
            said_h2: Default::default(),
            summaries: VecDeque::new(),
            requests: 0,
            tool_calls: 0,
        }
    }

    /// Attributes an event of the tree; returns notes on TLS visibility it gave rise to.
    pub fn observe(&mut self, ev: &mut Event, tree: &Tree) -> Vec<Event> {
        self.attributor.observe(ev, tree);
        let mut out = Vec::new();
        if let Kind::Exit { .. } = ev.kind {
            // A stream its process never finished reading is all there will be of it.
            let keys: Vec<_> = self
                .conns
                .keys()
                .filter(|k| k.0 == ev.pid)
                .copied()
                .collect();
            let base = Origin::of(ev);
            for k in keys {
                out.extend(self.close(k, &base));
            }
        }
        out.extend(self.coverage.observe(ev));
        self.name_steering(&mut out);
        out
    }

    /// Ends a connection: what it still held (a stream its reader stopped reading, requests
    /// without an answer, a request cut short) is reported as it is.
    fn close(&mut self, k: (u32, bool, u64), base: &Origin) -> Vec<Event> {
        let mut out = Vec::new();
        let Some(mut c) = self.conns.remove(&k) else {
            return out;
        };
        let sse = c.rx.partial().is_some_and(|(hs, _)| is_sse(hs));
        // (Popped only for a stream: a request without an answer is reported below.)
        if let Some(pending) = sse.then(|| c.pending.pop_front()).flatten() {
            if let Some(m) = c.rx.take_partial() {
                out.push(pending.exchange(Some(&m), base));
                if let Some(api) = pending.api {
                    let early = std::mem::take(&mut c.early);
                    out.extend(response(api, &pending, &m, &self.opts, base, &early));
                }
            }
        }
        // Requests that never had an answer (or whose answer was not seen).
        for p in c.pending.drain(..) {
            out.push(p.exchange(None, base));
        }
        // A request cut short (its body shorter than it said): what went out counts.
        if let Some(m) = c.tx.take_partial() {
            if let http::Head::Request { method, path } = &m.head {
                let cut = Pending {
                    api: None,
                    host: m.header("host").unwrap_or_default().to_string(),
                    method: method.clone(),
                    path: redact::path(path),
                    tls: k.1,
                    sent: m.wire,
                    conversation: Vec::new(),
                    search: Default::default(),
                    exchange: 0,
                };
                out.push(cut.exchange(None, base));
            }
        }
        out
    }

    /// The recording ends at `ts`: every connection still open is closed (see `close`), as
    /// its process's (`exe_of` names it).
    pub fn finish(&mut self, ts: Timestamp, exe_of: &dyn Fn(u32) -> String) -> Vec<Event> {
        let mut keys: Vec<_> = self.conns.keys().copied().collect();
        keys.sort();
        let mut out = Vec::new();
        for k in keys {
            let base = Origin {
                ts,
                pid: k.0,
                tid: k.0,
                ppid: 0,
                exe: exe_of(k.0),
            };
            out.extend(self.close(k, &base));
        }
        out.extend(self.coverage.finish());
        self.name_steering(&mut out);
        out
    }

    /// Names the call whose result steered each tool call, and remembers each call.
    fn name_steering(&mut self, evs: &mut [Event]) {
        const KEEP: usize = 4096;
        for ev in evs {
            let Kind::ToolCall(t) = &mut ev.kind else {
                continue;
            };
            if let Some(s) = &mut t.steered {
                if let Some(id) = &s.call {
                    s.tool = self
                        .summaries
                        .iter()
                        .rev()
                        .find(|(pid, i, _)| *pid == ev.pid && i == id)
                        .map(|(_, _, summary)| summary.clone());
                }
            }
            if self.summaries.len() == KEEP {
                self.summaries.pop_front();
            }
            self.summaries.push_back((
                ev.pid,
                t.id.clone(),
                attribute::summary(&t.name, &t.arguments),
            ));
        }
    }

    /// Whether process `pid`'s LLM traffic showed the tool call `id` (or its hook did).
    pub fn saw_call(&self, pid: u32, id: &str) -> bool {
        self.summaries.iter().any(|(p, i, _)| *p == pid && i == id)
    }

    /// A tool call the agent reported through its hook (hook.rs), as its process's event:
    /// counted and remembered like one its traffic showed.
    pub fn reported(&mut self, ev: &mut Event) {
        self.tool_calls += 1;
        self.name_steering(std::slice::from_mut(ev));
    }

    /// The agent's hook says the tool call `id` of process `pid` has ended.
    pub fn call_done(&mut self, pid: u32, id: &str) {
        self.attributor.done(pid, id);
    }

    /// A TLS stream read through AEAD probes goes on under another key (its socket's, once
    /// the kernel has tied its sealing context to it): what was read of it so far moves
    /// along, so the answers read under the socket's key meet their requests.
    pub fn tie(&mut self, pid: u32, from: u64, to: u64) {
        // A socket already read is not restarted: a new context on it (a key update)
        // begins mid-stream, and its bytes before the tie are lost either way.
        if let Some(c) = self.conns.remove(&(pid, true, from)) {
            self.conns.entry((pid, true, to)).or_insert(c);
        }
    }

    /// One chunk of payload; returns the LLM events it completed.
    pub fn payload(&mut self, p: Payload) -> Vec<Event> {
        let base = Origin {
            ts: p.ts,
            pid: p.pid,
            tid: p.tid,
            ppid: p.ppid,
            exe: p.exe.clone(),
        };
        // A socket's first write only: bytes of a stream already read as HTTP are HTTP's,
        // whatever they start with (a "hello" there would cut a request out unseen).
        if p.write && !p.tls && p.offset == 0 && !self.conns.contains_key(&(p.pid, false, p.stream))
        {
            if let Some(h) = hello::parse(&p.bytes) {
                // No server name for an address (RFC 6066): the connection names it.
                let mut to = h.server.map(|s| format!(" to {s}")).unwrap_or_default();
                if !h.alpn.is_empty() {
                    to += &format!(" (offering {})", h.alpn.join(", "));
                }
                let late = self.coverage.hello(base.event(Kind::Tls(Tls {
                    status: TlsStatus::Uncovered,
                    library: p.exe.clone(),
                    detail: format!("speaks TLS{to} through no library agentguard probes (TLS linked into the executable): its plaintext is not visible"),
                })));
                return late.into_iter().collect();
            }
        }
        if p.write && p.offset == 0 && p.bytes.starts_with(b"PRI * HTTP/2") {
            if self.said_h2.insert(p.pid) {
                return vec![base.event(Kind::Tls(Tls {
                    status: TlsStatus::Unparsed,
                    library: String::new(),
                    detail: "speaks HTTP/2, which agentguard does not parse: its LLM calls on that connection are not visible".into(),
                }))];
            }
            return Vec::new();
        }
        if p.tls {
            let first_answer = (!p.write && p.offset == 0)
                .then(|| self.conns.get(&(p.pid, true, p.stream)))
                .flatten()
                .filter(|c| !c.pending.is_empty() && !c.answered)
                .map(|_| p.bytes.as_slice());
            match self.coverage.verify.check(&p.exe, first_answer) {
                verify::Verdict::Read => {}
                verify::Verdict::Verified => self.coverage.verified(&p.exe),
                verify::Verdict::Drop => return Vec::new(),
                verify::Verdict::Bad => {
                    // What it read on any connection is suspect: dropped unreported.
                    self.conns.retain(|k, _| !(k.1 && k.0 == p.pid));
                    return vec![base.event(Kind::Tls(Tls {
                        status: TlsStatus::Uncovered,
                        library: p.exe.clone(),
                        detail: "the TLS probes put on it without symbols read an answer that is not HTTP: they are taken off, and its TLS plaintext is not visible".into(),
                    }))];
                }
            }
        }
        let opts = self.opts;
        let before = self.requests;
        let conn = self.conns.entry((p.pid, p.tls, p.stream)).or_default();
        if !p.write {
            conn.answered = true;
        }
        let (stream, call) = if p.write {
            (&mut conn.tx, &mut conn.tx_call)
        } else {
            (&mut conn.rx, &mut conn.rx_call)
        };
        // Chunks of one call arrive in order; anything else means bytes were missed.
        let in_order = match *call {
            Some((total, next)) => p.offset == next && p.total == total,
            None => p.offset == 0,
        };
        let incomplete_before = p.offset == 0 && matches!(*call, Some((t, n)) if n < t);
        if !in_order || incomplete_before {
            stream.gap();
        }
        let next = p.offset + p.bytes.len() as u64;
        *call = (next < p.total).then_some((p.total, next));
        let msgs = stream.push(&p.bytes);
        let mut out = Vec::new();
        let (mut requests, mut tool_calls) = (0, 0u64);
        for m in msgs {
            match &m.head {
                http::Head::Request { method, path } => {
                    // A HEAD's answer has no body; nor has a 2xx to CONNECT (the tunnel).
                    conn.rx.asks(http::Asked::of(method, path));
                    let host = m.header("host").unwrap_or_default().to_string();
                    let api = Api::recognise(method, path);
                    let json: serde_json::Value = match api {
                        Some(_) => serde_json::from_slice(&m.body).unwrap_or_default(),
                        None => serde_json::Value::Null,
                    };
                    // A client that pipelines requests no answer comes to: the oldest are
                    // reported unanswered rather than kept (each may hold a conversation).
                    while conn.pending.len() >= http::PENDING_MAX {
                        if let Some(old) = conn.pending.pop_front() {
                            out.push(old.exchange(None, &base));
                        }
                    }
                    conn.pending.push_back(Pending {
                        api,
                        host: host.clone(),
                        method: method.clone(),
                        path: redact::path(path),
                        tls: p.tls,
                        sent: m.wire,
                        conversation: api
                            .map(|a| steer::conversation(a, &json))
                            .unwrap_or_default(),
                        search: std::cell::Cell::new(steer::SEARCH_BUDGET),
                        exchange: api.map_or(0, |_| before + requests + 1),
                    });
                    let Some(api) = api else { continue };
                    requests += 1;
                    let r = api::request(api, &json);
                    out.push(base.event(Kind::LlmRequest(LlmRequest {
                        api: api.name().into(),
                        host,
                        method: method.clone(),
                        path: redact::path(path),
                        transport: if p.tls { "tls" } else { "tcp" }.into(),
                        model: r.model,
                        stream: r.stream,
                        tools: r.tools,
                        headers: redact::headers(&m.headers),
                        body: body(&opts, &m.body),
                        exchange: before + requests,
                    })));
                }
                // An interim answer (100 Continue, 103 Early Hints) is not the response.
                http::Head::Response { status }
                    if (100..200).contains(status) && *status != 101 => {}
                http::Head::Response { .. } => {
                    if let Some(pending) = conn.pending.pop_front() {
                        let e = pending.exchange(Some(&m), &base);
                        let switched = matches!(&e.kind, Kind::Http(h) if h.switched());
                        out.push(e);
                        if switched {
                            // What follows is read as a new connection's (the answers
                            // already are: http::Stream switched them): requests still
                            // waiting never had an HTTP answer.
                            conn.tx = http::Stream::switched();
                            for waiting in conn.pending.drain(..) {
                                out.push(waiting.exchange(None, &base));
                            }
                        }
                        if let Some(api) = pending.api {
                            let early = std::mem::take(&mut conn.early);
                            out.extend(response(api, &pending, &m, &opts, &base, &early));
                        }
                    }
                }
            }
        }
        // Clients stop reading a stream at its last event (OpenAI's [DONE]) and never read
        // the chunked body's end: the response is complete at that event.
        if !p.write {
            out.extend(early_calls(conn, &p.bytes, &base));
            let done = match (conn.rx.partial(), conn.pending.front()) {
                (Some((hs, body)), Some(Pending { api: Some(api), .. })) => {
                    is_sse(hs) && api::stream_done(*api, body)
                }
                _ => false,
            };
            if done {
                if let (Some(m), Some(pending)) = (conn.rx.take_partial(), conn.pending.pop_front())
                {
                    out.push(pending.exchange(Some(&m), &base));
                    if let Some(api) = pending.api {
                        let early = std::mem::take(&mut conn.early);
                        out.extend(response(api, &pending, &m, &opts, &base, &early));
                    }
                }
            }
        }
        tool_calls += out
            .iter()
            .filter(|e| matches!(e.kind, Kind::ToolCall(_)))
            .count() as u64;
        self.requests += requests;
        self.tool_calls += tool_calls;
        self.name_steering(&mut out);
        out
    }
}

fn is_sse(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .any(|(n, v)| n == "content-type" && v.starts_with("text/event-stream"))
}

/// Each chunk that completes an event re-parses the body so far (a server sending one
/// event at a time would cost the square of its size): past this much parsing for one
/// response, or a body this large, its calls are reported when the message ends.
const EARLY_MAX: usize = 1 << 20;
const EARLY_WORK: usize = 64 << 20;

/// The tool calls of the response being streamed whose block has just closed: an agent
/// such as Claude Code runs each as soon as it closes, before the message ends, so the
/// call must be open before what it causes arrives.
fn early_calls(conn: &mut Conn, chunk: &[u8], base: &Origin) -> Vec<Event> {
    let (Some((hs, body)), Some(pending)) = (conn.rx.partial(), conn.pending.front()) else {
        return Vec::new();
    };
    let Some(api) = &pending.api else {
        return Vec::new();
    };
    // Only when an event ended in this chunk can a block have closed.
    if !is_sse(hs)
        || body.len() > EARLY_MAX
        || conn.early.work.saturating_add(body.len()) > EARLY_WORK
        || !ended_event(chunk)
    {
        return Vec::new();
    }
    conn.early.work += body.len();
    let reply = api::streamed(*api, &http::sse_data(body));
    let mut out = Vec::new();
    for c in reply.calls {
        if reply.closed.contains(&c.id) && !c.id.is_empty() && !conn.early.calls.contains_key(&c.id)
        {
            conn.early
                .calls
                .insert(c.id.clone(), (c.name.clone(), c.arguments.clone()));
            out.push(tool_call(*api, pending, c, base));
        }
    }
    out
}

/// A tool call, with where its instruction came from (the earlier call's summary is
/// filled in by Llm::steered, which knows the calls).
/// Whether bytes of a stream end a server-sent event (a blank line), whatever chunked
/// framing sits around them.
fn ended_event(chunk: &[u8]) -> bool {
    chunk.windows(2).any(|w| w == b"\n\n") || chunk.windows(4).any(|w| w == b"\n\r\n")
}

fn tool_call(api: Api, request: &Pending, c: api::Call, base: &Origin) -> Event {
    let steered = steer::source(
        &request.conversation,
        &c.arguments,
        &|_| None,
        &request.search,
    );
    base.event(Kind::ToolCall(ToolCall {
        id: c.id,
        name: c.name,
        arguments: redact::bounded(&c.arguments, 4096),
        api: api.name().into(),
        host: request.host.clone(),
        steered,
        reported: false,
    }))
}

/// The llm.response event of a response, and one llm.tool_call per call it asks for
/// (but those reported as their blocks closed, unless the message's end says otherwise of
/// them: a call is never hidden behind what a stream said of it before).
fn response(
    api: Api,
    request: &Pending,
    m: &http::Message,
    opts: &Options,
    base: &Origin,
    early: &Early,
) -> Vec<Event> {
    let status = match m.head {
        http::Head::Response { status } => status,
        http::Head::Request { .. } => 0,
    };
    let sse = is_sse(&m.headers);
    let reply = if m.body_error.is_some() {
        api::Reply::default()
    } else if sse {
        api::streamed(api, &http::sse_data(&m.body))
    } else {
        serde_json::from_slice(&m.body)
            .map(|v| api::reply(api, &v))
            .unwrap_or_default()
    };
    let mut out = vec![base.event(Kind::LlmResponse(LlmResponse {
        api: api.name().into(),
        exchange: request.exchange,
        host: request.host.clone(),
        status,
        model: reply.model.clone(),
        stream: sse,
        tool_calls: reply
            .calls
            .iter()
            .map(|c| format!("{} ({})", c.name, c.id))
            .collect(),
        input_tokens: reply.input_tokens,
        output_tokens: reply.output_tokens,
        headers: redact::headers(&m.headers),
        body: body(opts, &m.body),
        error: m.body_error.clone(),
    }))];
    for c in reply.calls {
        let same = early
            .calls
            .get(&c.id)
            .is_some_and(|(n, a)| *n == c.name && *a == c.arguments);
        if !same {
            out.push(tool_call(api, request, c, base));
        }
    }
    out
}

/// Where an event the LLM stage makes comes from: the process that moved the bytes.
#[derive(Clone)]
struct Origin {
    ts: Timestamp,
    pid: u32,
    tid: u32,
    ppid: u32,
    exe: String,
}

impl Origin {
    fn of(ev: &Event) -> Origin {
        Origin {
            ts: ev.ts,
            pid: ev.pid,
            tid: ev.tid,
            ppid: ev.ppid,
            exe: ev.exe.clone(),
        }
    }

    fn event(&self, kind: Kind) -> Event {
        Event {
            ts: self.ts,
            pid: self.pid,
            tid: self.tid,
            ppid: self.ppid,
            exe: self.exe.clone(),
            kind,
            cause: None,
        }
    }
}

/// A body as events keep it: only when asked, redacted, bounded.
fn body(opts: &Options, b: &[u8]) -> Option<String> {
    (opts.bodies && !b.is_empty())
        .then(|| redact::bounded(&String::from_utf8_lossy(b), opts.body_max))
}

#[cfg(test)]
mod tests;
