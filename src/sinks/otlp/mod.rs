//! `--otlp URL`: the run as an OpenTelemetry trace, sent as it happens to an OTLP/HTTP
//! receiver (an OpenTelemetry Collector, or any backend that takes OTLP). spans.rs makes
//! the spans from the events; send.rs sends them.
mod kernel;
pub mod send;
pub mod spans;

use anyhow::{bail, Result};

use crate::diff::Finding;
use crate::event::Event;
use spans::{kv, V};

pub struct Exporter {
    pub url: String,
    tracer: spans::Tracer,
    sender: send::Sender,
}

/// The URL spans are posted to: `URL` as given when it names a path, else its
/// `/v1/traces` (as the OTLP exporter specification does for a base endpoint).
pub fn endpoint(url: &str) -> Result<String> {
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|e| anyhow::anyhow!("--otlp {url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => bail!(
            "--otlp {url}: https is not supported yet; send to a collector on this host over http (its exporter can use TLS onwards)"
        ),
        _ => bail!("--otlp {url:?}: give an http:// URL, such as http://127.0.0.1:4318"),
    }
    if uri.host().is_none_or(str::is_empty) {
        bail!("--otlp {url:?} names no host");
    }
    if uri.authority().is_some_and(|a| a.as_str().ends_with(':')) {
        bail!("--otlp {url:?} names no port after its ':'");
    }
    // (http's Uri takes any digits as a port, and then has none.)
    let authority = uri.authority().map_or("", |a| a.as_str());
    let port = match authority.rsplit_once(':') {
        Some((_, p)) if !authority.ends_with(']') => Some(p.parse::<u16>().unwrap_or(0)),
        _ => None,
    };
    if port == Some(0) {
        bail!("--otlp {url:?}: its port is not one from 1 to 65535");
    }
    if uri.query().is_some() || url.contains('#') {
        bail!("--otlp {url:?}: give the receiver's URL without a query or fragment");
    }
    Ok(match uri.path() {
        "" | "/" => format!("{}/v1/traces", url.trim_end_matches('/')),
        _ => url.to_string(),
    })
}

impl Exporter {
    /// `content`: exec and tool arguments and LLM bodies go into the spans too.
    pub fn new(url: &str, content: bool) -> Result<Exporter> {
        let url = endpoint(url)?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        let resource = vec![
            kv("service.name", V::S("agentguard".into())),
            kv("service.version", V::S(env!("CARGO_PKG_VERSION").into())),
            kv("host.name", V::S(host)),
        ];
        Ok(Exporter {
            tracer: spans::Tracer::new(content, seed()),
            sender: send::Sender::new(url.clone(), resource),
            url,
        })
    }

    /// One event of the run, with its finding against --baseline: the spans it ends leave.
    pub fn observe(&mut self, ev: &Event, finding: Option<&Finding>) {
        self.tracer.observe(ev, finding);
        self.sender.push(std::mem::take(&mut self.tracer.done));
    }

    /// Sends what is left; what the summary says of it, or (Err) why spans were lost.
    pub fn close(self) -> std::result::Result<String, String> {
        let dropped = self.tracer.dropped;
        let d = self.sender.close();
        if d.lost > 0 {
            return Err(format!(
                "OTLP export: {} of {} spans were not delivered to {}{}",
                d.lost,
                d.lost + d.delivered,
                self.url,
                d.error.map(|e| format!(": {e}")).unwrap_or_default()
            ));
        }
        let more = match dropped {
            0 => String::new(),
            n => format!(", {n} events past the span limits counted, not sent"),
        };
        Ok(format!("{} ({} spans{more})", self.url, d.delivered))
    }
}

/// Where span ids start: random, so that two runs' spans are told apart.
fn seed() -> u64 {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    u64::from_ne_bytes(b) ^ now
}

#[cfg(test)]
mod tests;
