//! One direction of an HTTP/1.x connection, reassembled from the bytes the sensor copied
//! into whole messages: heads parsed by httparse, bodies framed by Content-Length, chunked
//! transfer coding or the end of the connection, and decompressed (gzip, deflate).
use std::collections::VecDeque;
use std::io::Read;

/// Bodies beyond this are cut (the message still completes, marked).
const BODY_MAX: usize = 8 << 20;
/// A head longer than this is not HTTP worth waiting for.
const HEAD_MAX: usize = 64 << 10;
const HEADERS_MAX: usize = 96;

#[derive(Debug, Clone, PartialEq)]
pub enum Head {
    Request { method: String, path: String },
    Response { status: u16 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub head: Head,
    /// Names lower case, in order.
    pub headers: Vec<(String, String)>,
    /// Decoded (chunks joined, decompressed).
    pub body: Vec<u8>,
    /// Why the body is not all there or not readable.
    pub body_error: Option<String>,
    /// Bytes the message took on the wire: head, framing and body as sent.
    pub wire: u64,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Copy)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

#[derive(Debug)]
struct Partial {
    head: Head,
    headers: Vec<(String, String)>,
    framing: Framing,
    body: Vec<u8>,
    cut: bool,
    wire: u64,
}

/// Bytes in, messages out. A gap (bytes the sensor could not copy) drops the message it
/// fell in and waits for the next head.
#[derive(Debug, Default)]
pub struct Stream {
    buf: Vec<u8>,
    cur: Option<Partial>,
    /// Skip input until something parses as a head.
    lost: bool,
    /// What the requests still waiting for this direction's responses asked, oldest
    /// first, as far as a response's framing goes: the request side tells us.
    asked: VecDeque<Asked>,
    /// The next bytes are a new connection's first (the connection switched protocols):
    /// a message's head, or the stream is another protocol's from here on.
    fresh: bool,
    /// Another protocol's bytes (a WebSocket's frames, a tunnel's TLS): never parsed.
    opaque: bool,
}

/// What a request asked, as far as its response's framing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    Other,
    /// A HEAD: the response has no body.
    Head,
    /// A CONNECT to host:port: a 2xx answer has no body and opens a tunnel.
    Connect,
}

impl Asked {
    pub fn of(method: &str, target: &str) -> Asked {
        match method {
            "HEAD" => Asked::Head,
            // A CONNECT to a path is a handler answering, which keeps speaking HTTP
            // (event::Http::switched says the same).
            "CONNECT" if !target.starts_with('/') => Asked::Connect,
            _ => Asked::Other,
        }
    }
}

/// Requests kept per connection waiting for their answers, here and in llm/mod.rs's
/// queue: one bound, so that both drop the same oldest request and stay paired.
pub const PENDING_MAX: usize = 32;

impl Stream {
    /// A direction of a connection that switched protocols: read from here as a new
    /// connection's, the way the kernel reads it under enforce (endpoint.bpf.c): a request
    /// or a response is parsed (plain HTTP inside a CONNECT tunnel), anything else makes
    /// the rest of the connection another protocol's.
    pub fn switched() -> Stream {
        Stream {
            fresh: true,
            ..Stream::default()
        }
    }

    /// A request was sent on the connection: what it asked frames its response.
    pub fn asks(&mut self, a: Asked) {
        if self.asked.len() >= PENDING_MAX {
            self.asked.pop_front();
        }
        self.asked.push_back(a);
    }

    pub fn push(&mut self, bytes: &[u8]) -> Vec<Message> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(m) = self.step() {
            out.push(m);
        }
        out
    }

    /// Bytes were missed: what was in progress cannot be trusted.
    pub fn gap(&mut self) {
        self.buf.clear();
        self.cur = None;
        self.lost = true;
    }

    /// The message being received: its headers and the body so far (decoded chunks).
    pub fn partial(&self) -> Option<(&[(String, String)], &[u8])> {
        self.cur
            .as_ref()
            .map(|p| (p.headers.as_slice(), p.body.as_slice()))
    }

    /// Ends the message being received where it is (a stream its reader stopped reading);
    /// whatever of it still arrives is skipped up to the next message.
    pub fn take_partial(&mut self) -> Option<Message> {
        let p = self.cur.take()?;
        self.lost = true;
        self.buf.clear();
        Some(finish(p))
    }

    fn step(&mut self) -> Option<Message> {
        if self.opaque {
            self.buf.clear();
            return None;
        }
        if self.cur.is_none() {
            if self.lost {
                // Resynchronise on something that looks like the start of a message.
                let at = find_start(&self.buf)?;
                self.buf.drain(..at);
                self.lost = false;
            }
            let asked = self.asked.front().copied().unwrap_or(Asked::Other);
            let (partial, used) = match parse_head(&self.buf, asked) {
                Ok(Some(x)) => x,
                Ok(None) if self.buf.len() <= HEAD_MAX => return None,
                // Not HTTP: after a switch, another protocol's; else bytes were missed.
                Ok(None) | Err(()) if self.fresh => {
                    self.opaque = true;
                    self.buf.clear();
                    return None;
                }
                Ok(None) | Err(()) => {
                    self.gap();
                    return None;
                }
            };
            self.fresh = false;
            if let Head::Response { status } = partial.head {
                // An interim answer (1xx but 101) is not the request's response.
                if !(100..200).contains(&status) || status == 101 {
                    self.asked.pop_front();
                }
                // Switched: what follows the head is a new connection's.
                if status == 101 || (asked == Asked::Connect && (200..300).contains(&status)) {
                    self.fresh = true;
                    self.asked.clear();
                }
            }
            self.buf.drain(..used);
            self.cur = Some(Partial {
                wire: used as u64,
                ..partial
            });
        }
        let p = self.cur.as_mut()?;
        match p.framing {
            Framing::Length(left) => {
                let take = left.min(self.buf.len());
                p.framing = Framing::Length(left - take);
                let more = left > take;
                let bytes: Vec<u8> = self.buf.drain(..take).collect();
                p.wire += take as u64;
                keep(p, &bytes);
                if more {
                    return None;
                }
            }
            Framing::Chunked => loop {
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete((at, size))) => {
                        let size = size as usize;
                        if size == 0 {
                            // The last chunk, then trailers, then an empty line.
                            let rest = &self.buf[at..];
                            let end = if rest.starts_with(b"\r\n") {
                                2
                            } else {
                                find(rest, b"\r\n\r\n")? + 4
                            };
                            self.buf.drain(..at + end);
                            p.wire += (at + end) as u64;
                            break;
                        }
                        if self.buf.len() < at + size + 2 {
                            return None;
                        }
                        let chunk = self.buf[at..at + size].to_vec();
                        keep(p, &chunk);
                        self.buf.drain(..at + size + 2);
                        p.wire += (at + size + 2) as u64;
                    }
                    Ok(httparse::Status::Partial) => return None,
                    Err(_) => {
                        self.gap();
                        return None;
                    }
                }
            },
            Framing::UntilClose => {
                let b = std::mem::take(&mut self.buf);
                p.wire += b.len() as u64;
                keep(p, &b);
                return None;
            }
        }
        let p = self.cur.take()?;
        Some(finish(p))
    }
}

fn keep(p: &mut Partial, bytes: &[u8]) {
    let room = BODY_MAX.saturating_sub(p.body.len());
    if bytes.len() > room {
        p.cut = true;
    }
    p.body.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn find_start(buf: &[u8]) -> Option<usize> {
    const STARTS: [&[u8]; 9] = [
        b"HTTP/1.",
        b"GET ",
        b"POST ",
        b"PUT ",
        b"HEAD ",
        b"PATCH ",
        b"DELETE ",
        b"OPTIONS ",
        b"CONNECT ",
    ];
    (0..buf.len()).find(|&i| STARTS.iter().any(|s| buf[i..].starts_with(s)))
}

/// A complete head at the start of `buf`: the message so far and the bytes it took.
fn parse_head(buf: &[u8], asked: Asked) -> Result<Option<(Partial, usize)>, ()> {
    let mut hs = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let (head, used, raw) = if buf.starts_with(b"HTTP/") {
        let mut r = httparse::Response::new(&mut hs);
        match r.parse(buf).map_err(|_| ())? {
            httparse::Status::Partial => return Ok(None),
            httparse::Status::Complete(n) => (
                Head::Response {
                    status: r.code.unwrap_or(0),
                },
                n,
                r.headers.to_vec(),
            ),
        }
    } else {
        let mut r = httparse::Request::new(&mut hs);
        match r.parse(buf).map_err(|_| ())? {
            httparse::Status::Partial => return Ok(None),
            httparse::Status::Complete(n) => (
                Head::Request {
                    method: r.method.unwrap_or("").to_string(),
                    path: r.path.unwrap_or("").to_string(),
                },
                n,
                r.headers.to_vec(),
            ),
        }
    };
    let headers: Vec<(String, String)> = raw
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let no_body = match &head {
        Head::Response { status } => {
            (100..200).contains(status)
                || *status == 204
                || *status == 304
                || asked == Asked::Head
                || (asked == Asked::Connect && (200..300).contains(status))
        }
        Head::Request { .. } => false,
    };
    let framing = if no_body {
        Framing::Length(0)
    } else if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        Framing::Chunked
    } else if let Some(n) = get("content-length") {
        Framing::Length(n.parse().map_err(|_| ())?)
    } else if matches!(head, Head::Request { .. }) {
        Framing::Length(0)
    } else {
        Framing::UntilClose
    };
    Ok(Some((
        Partial {
            head,
            headers,
            framing,
            body: Vec::new(),
            cut: false,
            wire: 0,
        },
        used,
    )))
}

fn finish(p: Partial) -> Message {
    let mut m = Message {
        head: p.head,
        headers: p.headers,
        body: p.body,
        body_error: p.cut.then(|| format!("body cut at {} MiB", BODY_MAX >> 20)),
        wire: p.wire,
    };
    let enc = m
        .header("content-encoding")
        .unwrap_or("identity")
        .to_ascii_lowercase();
    if m.body_error.is_none() && !m.body.is_empty() {
        let mut out = Vec::new();
        let r = match enc.as_str() {
            "identity" | "" => return m,
            "gzip" | "x-gzip" => flate2::read::GzDecoder::new(&m.body[..])
                .take(BODY_MAX as u64)
                .read_to_end(&mut out),
            "deflate" => flate2::read::ZlibDecoder::new(&m.body[..])
                .take(BODY_MAX as u64)
                .read_to_end(&mut out),
            other => {
                m.body_error = Some(format!("body encoded with {other}: not decoded"));
                return m;
            }
        };
        match r {
            Ok(_) => m.body = out,
            Err(e) => m.body_error = Some(format!("{enc} body: {e}")),
        }
    }
    m
}

/// Server-sent events: the `data` of each event, in order.
pub fn sse_data(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if line.is_empty() {
            if let Some(d) = cur.take() {
                out.push(d);
            }
        } else if let Some(v) = line.strip_prefix("data:") {
            let v = v.strip_prefix(' ').unwrap_or(v);
            match &mut cur {
                Some(d) => {
                    d.push('\n');
                    d.push_str(v);
                }
                None => cur = Some(v.to_string()),
            }
        }
    }
    out.extend(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_bodies_split_anywhere() {
        let wire = b"POST /v1/chat/completions HTTP/1.1\r\nHost: api\r\nContent-Length: 11\r\n\r\nhello world";
        for cut in 1..wire.len() {
            let mut s = Stream::default();
            let mut got = s.push(&wire[..cut]);
            got.extend(s.push(&wire[cut..]));
            assert_eq!(got.len(), 1, "cut at {cut}");
            assert_eq!(got[0].body, b"hello world");
            assert_eq!(
                got[0].head,
                Head::Request {
                    method: "POST".into(),
                    path: "/v1/chat/completions".into()
                }
            );
        }
    }

    #[test]
    fn chunked_and_pipelined() {
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        let mut s = Stream::default();
        let mut got = Vec::new();
        for b in wire.chunks(3) {
            got.extend(s.push(b));
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].body, b"hello world");
        assert_eq!(got[1].head, Head::Response { status: 204 });
    }

    #[test]
    fn gzip_is_decoded_and_unknown_encodings_said() {
        use std::io::Write;
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(b"{\"ok\":true}").unwrap();
        let gz = z.finish().unwrap();
        let mut wire = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            gz.len()
        )
        .into_bytes();
        wire.extend(&gz);
        wire.extend(b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\nxx");
        let got = Stream::default().push(&wire);
        assert_eq!(got[0].body, b"{\"ok\":true}");
        assert_eq!(
            got[1].body_error.as_deref(),
            Some("body encoded with br: not decoded")
        );
    }

    #[test]
    fn a_gap_drops_the_message_and_resynchronises() {
        let mut s = Stream::default();
        assert!(s
            .push(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
            .is_empty());
        s.gap();
        let got =
            s.push(b"of the lost body... HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].head, Head::Response { status: 404 });
    }

    #[test]
    fn chunked_server_sent_events() {
        let mut wire =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        for part in [
            "data: {\"a\":1}\n\n",
            "event: x\r\ndata: line1\r\ndata: line2\r\n\r\n",
            "data: [DONE]\n\n",
        ] {
            wire.extend(format!("{:x}\r\n{part}\r\n", part.len()).bytes());
        }
        wire.extend(b"0\r\n\r\n");
        let got = Stream::default().push(&wire);
        assert_eq!(got.len(), 1);
        assert_eq!(
            sse_data(&got[0].body),
            vec!["{\"a\":1}", "line1\nline2", "[DONE]"]
        );
    }
}
