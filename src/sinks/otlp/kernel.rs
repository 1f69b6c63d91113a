//! The spans of what the kernel saw: which events get one, and what they say, in the
//! OpenTelemetry semantic conventions' names where there are some (process.*, file.path,
//! server.*, network.*, dns.question.name, http.*), agentguard's own otherwise.
use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::spans::{kv, server, V};
use crate::event::{Event, Kind};

/// A kernel event's span name and attributes; None for what gets no span (forks, exits,
/// byte counts, DNS answers, and files no tool call, finding or protection points at:
/// `found`).
pub fn describe(ev: &Event, found: bool, content: bool) -> Option<(String, Vec<KeyValue>)> {
    let errno = |e: &Option<crate::event::Errno>| e.map(|e| kv("error.type", V::S(e.to_string())));
    Some(match &ev.kind {
        Kind::Exec(x) => {
            let mut a = vec![kv("agentguard.exec.path", V::S(x.path.clone()))];
            if let Some(i) = &x.invoked_as {
                a.push(kv("agentguard.exec.invoked_as", V::S(i.clone())));
            }
            if content {
                a.push(kv("process.command_args", V::L(x.argv.clone())));
            }
            a.extend(errno(&x.error));
            ("exec".into(), a)
        }
        Kind::File(f) if ev.cause.is_some() || found => {
            let access = f.access.iter().map(name);
            let mut a = vec![
                kv("file.path", V::S(f.path.clone())),
                kv("agentguard.file.op", V::S(name(&f.op))),
                kv("agentguard.file.access", V::L(access.collect())),
            ];
            a.extend(errno(&f.error));
            ("file".into(), a)
        }
        Kind::Net(n) => {
            let op = name(&n.op);
            let mut a = vec![
                kv("network.transport", V::S(name(&n.proto))),
                kv("network.peer.address", V::S(n.addr.clone())),
                kv(
                    "server.address",
                    V::S(n.name.clone().unwrap_or(n.addr.clone())),
                ),
            ];
            if n.port != 0 {
                a.push(kv("server.port", V::I(n.port.into())));
                a.push(kv("network.peer.port", V::I(n.port.into())));
            }
            a.extend(errno(&n.error));
            (op, a)
        }
        Kind::Dns(d) if !d.answer => {
            let mut a = vec![
                kv(
                    "dns.question.name",
                    V::S(d.names.first().cloned().unwrap_or_default()),
                ),
                kv("agentguard.dns.names", V::L(d.names.clone())),
                kv("agentguard.dns.types", V::L(d.qtypes.clone())),
                kv("agentguard.dns.server", V::S(d.server.clone())),
            ];
            if let Some(e) = &d.error {
                a.push(kv("error.type", V::S(e.clone())));
            }
            ("dns".into(), a)
        }
        Kind::Http(h) => {
            let mut a = super::spans::request(&h.method, &h.path);
            a.extend(server(&h.host));
            ("http".into(), a)
        }
        Kind::Deny(d) => {
            let mut a = vec![
                kv("agentguard.deny.op", V::S(name(&d.op))),
                kv("agentguard.deny.object", V::S(d.object.clone())),
                kv("agentguard.deny.reason", V::S(d.reason.clone())),
                kv("agentguard.deny.enforced", V::B(d.enforced)),
            ];
            if !d.access.is_empty() {
                let access = d.access.iter().map(name);
                a.push(kv("agentguard.deny.access", V::L(access.collect())));
            }
            ("deny".into(), a)
        }
        Kind::Flag(f) => (
            "flag".into(),
            vec![kv("agentguard.flag", V::S(name(&f.flag)))],
        ),
        // Anything else a finding points at still shows.
        _ if found => ("finding".into(), Vec::new()),
        _ => return None,
    })
}

/// An enum's name as the event log writes it (`io_uring`, `sendto`).
fn name<T: serde::Serialize>(x: &T) -> String {
    serde_json::to_value(x)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}
