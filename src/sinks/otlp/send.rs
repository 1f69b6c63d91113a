//! Sending spans to an OTLP/HTTP receiver (protobuf, POST to /v1/traces) from a thread of
//! its own, so that a slow or absent collector never holds the session's loop, which
//! drains the kernel's rings and answers hooks. Spans wait in a queue of at most `MAX`
//! spans and `MAX_BYTES` of their encoding; what comes beyond it is dropped and counted. A batch leaves when `BATCH` spans wait or a
//! second has passed; a batch is at most `BATCH_BYTES` encoded (a collector refuses large
//! bodies: 20 MiB by default). A receiver that cannot be reached, or answers 429, 502, 503
//! or 504 (the OTLP specification's retryable answers), gets the batch again, with backoff
//! or after the Retry-After it asked for; any other refusal drops the batch, counted. At the end, `END_WAIT` is given to deliver what
//! is left; what is not delivered by then is said.
//!
//! The thread starts with the first span, after the command is launched: the fork that
//! launches it happens while agentguard has one thread.
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

const MAX: usize = 100_000;
const MAX_BYTES: usize = 64 << 20;
const BATCH: usize = 512;
const BATCH_BYTES: usize = 4 << 20;
const END_WAIT: Duration = Duration::from_secs(if cfg!(test) { 2 } else { 10 });

#[derive(Default)]
struct Queue {
    spans: VecDeque<Span>,
    /// The spans' encoded size.
    bytes: usize,
    closed: bool,
    /// Spans taken by the receiver, refused by it, dropped for room.
    delivered: u64,
    refused: u64,
    dropped: u64,
    /// The last failure, and whether it was said yet.
    error: Option<String>,
    warned: bool,
    warned_refused: bool,
}

pub struct Sender {
    url: String,
    resource: Vec<KeyValue>,
    shared: Arc<(Mutex<Queue>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What became of the spans, at the end.
pub struct Delivery {
    pub delivered: u64,
    /// Not delivered: refused, dropped for room, or left when the end's wait ran out.
    pub lost: u64,
    pub error: Option<String>,
}

impl Sender {
    pub fn new(url: String, resource: Vec<KeyValue>) -> Sender {
        Sender {
            url,
            resource,
            shared: Arc::new((Mutex::new(Queue::default()), Condvar::new())),
            thread: None,
        }
    }

    pub fn push(&mut self, spans: Vec<Span>) {
        if spans.is_empty() {
            return;
        }
        if self.thread.is_none() {
            let (url, resource, shared) =
                (self.url.clone(), self.resource.clone(), self.shared.clone());
            self.thread = Some(std::thread::spawn(move || run(&url, resource, &shared)));
        }
        let (lock, cv) = &*self.shared;
        let mut q = lock.lock().unwrap_or_else(|e| e.into_inner());
        for s in spans {
            let size = s.encoded_len();
            if q.spans.len() >= MAX || q.bytes + size > MAX_BYTES {
                q.dropped += 1;
            } else {
                q.bytes += size;
                q.spans.push_back(s);
            }
        }
        if q.spans.len() >= BATCH {
            cv.notify_one();
        }
    }

    /// Sends what is left (waiting at most END_WAIT), and says what became of it all.
    pub fn close(mut self) -> Delivery {
        let (lock, cv) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        cv.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let q = lock.lock().unwrap_or_else(|e| e.into_inner());
        Delivery {
            delivered: q.delivered,
            lost: q.refused + q.dropped + q.spans.len() as u64,
            error: q.error.clone(),
        }
    }
}

/// The thread: batches out until closed and empty, or closed and END_WAIT has passed.
fn run(url: &str, resource: Vec<KeyValue>, shared: &(Mutex<Queue>, Condvar)) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .max_redirects(0)
        // The collector named, never one the environment points at.
        .proxy(None)
        .build()
        .into();
    let (lock, cv) = shared;
    let mut closed_at: Option<Instant> = None;
    let mut backoff = Duration::ZERO;
    // The next batch leaves at `tick` (or sooner when BATCH spans wait), never before
    // `not_before` (the backoff after a failure).
    let (mut tick, mut not_before) = (Instant::now(), Instant::now());
    loop {
        let batch: Vec<Span> = {
            let mut q = lock.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                let now = Instant::now();
                let wait = if q.closed {
                    let end = *closed_at.get_or_insert(now) + END_WAIT;
                    if q.spans.is_empty() || now >= end {
                        return;
                    }
                    if now >= not_before {
                        break;
                    }
                    not_before.min(end) - now
                } else if q.spans.is_empty() {
                    // Woken by the end; a first span waits at most this long.
                    Duration::from_secs(1)
                } else {
                    let full = q.spans.len() >= BATCH;
                    if now >= not_before && (full || now >= tick) {
                        break;
                    }
                    let until = if full {
                        not_before
                    } else {
                        not_before.max(tick)
                    };
                    until.saturating_duration_since(now)
                };
                q = cv
                    .wait_timeout(q, wait)
                    .map(|(q, _)| q)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            let mut batch = Vec::new();
            let mut size = 0;
            while let Some(s) = q.spans.front() {
                let n = s.encoded_len();
                if batch.len() == BATCH || (!batch.is_empty() && size + n > BATCH_BYTES) {
                    break;
                }
                size += n;
                batch.extend(q.spans.pop_front());
            }
            q.bytes -= size;
            batch
        };
        let attempt = Instant::now();
        tick = attempt + Duration::from_secs(1);
        if batch.is_empty() {
            continue;
        }
        let n = batch.len() as u64;
        let outcome = post(&agent, url, &resource, batch.clone());
        let mut q = lock.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Outcome::Taken(rejected, why) => {
                backoff = Duration::ZERO;
                q.delivered += n - rejected.min(n);
                if rejected > 0 {
                    q.refused += rejected.min(n);
                    q.error = Some(format!("{rejected} spans rejected: {why}"));
                }
            }
            Outcome::Refused(why) => {
                backoff = Duration::ZERO;
                q.refused += n;
                if !q.warned_refused {
                    q.warned_refused = true;
                    crate::sinks::say(&format!(
                        "agentguard: warning: OTLP export to {url}: the receiver refused {n} spans ({why}); they are not sent again"
                    ));
                }
                q.error = Some(why);
            }
            Outcome::Retry(why, after) => {
                backoff = (backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(8));
                // The receiver's Retry-After, within reason.
                backoff = backoff.max(after.min(Duration::from_secs(30)));
                not_before = attempt + backoff;
                warn_once(&mut q, url, &why);
                q.error = Some(why);
                // Back at the front, in order; if the queue filled meanwhile, the newest go.
                for s in batch.into_iter().rev() {
                    q.bytes += s.encoded_len();
                    q.spans.push_front(s);
                }
                while q.spans.len() > MAX || q.bytes > MAX_BYTES {
                    let Some(s) = q.spans.pop_back() else { break };
                    q.bytes -= s.encoded_len();
                    q.dropped += 1;
                }
            }
        }
    }
}

/// Said once, live: an export that fails goes on trying, and the end says what was lost.
fn warn_once(q: &mut Queue, url: &str, why: &str) {
    if !q.warned {
        q.warned = true;
        crate::sinks::say(&format!(
            "agentguard: warning: OTLP export to {url} failed: {why}; retrying (up to {MAX} spans, {} MiB, wait)",
            MAX_BYTES >> 20
        ));
    }
}

enum Outcome {
    /// Taken, with how many spans the receiver said it rejected, and why.
    Taken(u64, String),
    /// Refused for good: the batch is dropped.
    Refused(String),
    /// Not taken now: again after at least this long.
    Retry(String, Duration),
}

fn post(agent: &ureq::Agent, url: &str, resource: &[KeyValue], spans: Vec<Span>) -> Outcome {
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource.to_vec(),
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "agentguard".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let sent = agent
        .post(url)
        .header("Content-Type", "application/x-protobuf")
        .send(&req.encode_to_vec()[..]);
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) => return Outcome::Retry(e.to_string(), Duration::ZERO),
    };
    let status = resp.status().as_u16();
    let after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_secs);
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .unwrap_or_default();
    match status {
        200..=299 => {
            // A partial success names the spans it rejected (an empty body is full success).
            let partial = ExportTraceServiceResponse::decode(&body[..])
                .ok()
                .and_then(|r| r.partial_success);
            match partial {
                Some(p) if p.rejected_spans > 0 => {
                    Outcome::Taken(p.rejected_spans as u64, p.error_message)
                }
                _ => Outcome::Taken(0, String::new()),
            }
        }
        429 | 502 | 503 | 504 => Outcome::Retry(format!("HTTP {status}"), after),
        _ => Outcome::Refused(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )),
    }
}
