//! The LLM stage on replayed payload: what it makes of HTTP exchanges and streams.
use super::*;

fn chunk(write: bool, stream: u64, bytes: &[u8]) -> Payload {
    Payload {
        ts: Timestamp::default(),
        pid: 10,
        tid: 10,
        ppid: 1,
        exe: "/usr/bin/python3".into(),
        tls: false,
        write,
        stream,
        total: bytes.len() as u64,
        offset: 0,
        bytes: bytes.to_vec(),
    }
}

fn kinds(evs: &[Event]) -> Vec<&'static str> {
    evs.iter()
        .map(|e| match &e.kind {
            Kind::Http(_) => "http",
            Kind::LlmRequest(_) => "llm.request",
            Kind::LlmResponse(_) => "llm.response",
            Kind::ToolCall(_) => "llm.tool_call",
            _ => "other",
        })
        .collect()
}

/// An Anthropic messages request with this body, as one write.
fn messages_request(body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: model\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// The head of a streamed response, and one server-sent event as one HTTP chunk.
const SSE_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

fn sse(data: &str) -> Vec<u8> {
    let ev = format!("data: {data}\n\n");
    format!("{:x}\r\n{ev}\r\n", ev.len()).into_bytes()
}

#[test]
fn every_exchange_is_an_http_event_with_its_bytes() {
    let mut llm = Llm::new(Options::default());
    let req = b"POST /api/tickets/7/notes?token=s3cret HTTP/1.1\r\nHost: API.internal:8080\r\nContent-Length: 5\r\n\r\nhello";
    assert!(llm.payload(chunk(true, 1, req)).is_empty());
    let resp = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    let evs = llm.payload(chunk(false, 1, resp));
    let [ev] = &evs[..] else {
        panic!("one event: {evs:?}")
    };
    let Kind::Http(h) = &ev.kind else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (h.method.as_str(), h.host.as_str(), h.status, h.api.as_ref()),
        ("POST", "api.internal:8080", 201, None)
    );
    assert_eq!(h.path, "/api/tickets/7/notes?token=[redacted]");
    assert_eq!((h.sent, h.received), (req.len() as u64, resp.len() as u64));
    assert_eq!(llm.requests, 0, "no LLM call");
}

#[test]
fn a_request_without_an_answer_is_reported_when_its_process_exits() {
    let mut llm = Llm::new(Options::default());
    let req = b"PUT /upload HTTP/1.1\r\nHost: sink\r\nContent-Length: 3\r\n\r\nabc";
    assert!(llm.payload(chunk(true, 1, req)).is_empty());
    let mut exit = Event {
        ts: Timestamp::default(),
        pid: 10,
        tid: 10,
        ppid: 1,
        exe: String::new(),
        kind: Kind::Exit {
            code: Some(0),
            signal: None,
        },
        cause: None,
    };
    let evs = llm.observe(&mut exit, &Tree::default());
    let Some(Kind::Http(h)) = evs.first().map(|e| &e.kind) else {
        panic!("{evs:?}")
    };
    assert_eq!((h.status, h.sent, h.received), (0, req.len() as u64, 0));
}

#[test]
fn a_streamed_tool_call_opens_when_its_block_closes() {
    let mut llm = Llm::new(Options::default());
    let r = messages_request(
        br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(kinds(&llm.payload(chunk(true, 2, &r))), ["llm.request"]);
    let mut first = SSE_HEAD.to_vec();
    for d in [
        r#"{"type":"message_start","message":{"model":"m","usage":{"input_tokens":3}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t1","name":"bash"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"cmd\":\"id\"}"}}"#,
    ] {
        first.extend(sse(d));
    }
    assert!(llm.payload(chunk(false, 2, &first)).is_empty());
    // The block closes: the agent may run it now, so the call opens now.
    let evs = llm.payload(chunk(
        false,
        2,
        &sse(r#"{"type":"content_block_stop","index":0}"#),
    ));
    assert_eq!(kinds(&evs), ["llm.tool_call"]);
    let mut rest = Vec::new();
    for d in [
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t2","name":"bash"}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"cmd\":\"ls\"}"}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"message_stop"}"#,
    ] {
        rest.extend(sse(d));
    }
    rest.extend(b"0\r\n\r\n");
    let evs = llm.payload(chunk(false, 2, &rest));
    // The message ends in this chunk: it reports only the call not yet reported.
    assert_eq!(kinds(&evs), ["http", "llm.response", "llm.tool_call"]);
    let Kind::ToolCall(t) = &evs[2].kind else {
        unreachable!()
    };
    assert_eq!(
        (t.id.as_str(), t.arguments.as_str()),
        ("t2", r#"{"cmd":"ls"}"#)
    );
    let Kind::LlmResponse(r) = &evs[1].kind else {
        unreachable!()
    };
    assert_eq!(r.tool_calls, ["bash (t1)", "bash (t2)"]);
    assert_eq!(llm.tool_calls, 2);
}

#[test]
fn an_interim_answer_is_not_the_response() {
    let mut llm = Llm::new(Options::default());
    let req = b"POST /upload HTTP/1.1\r\nHost: svc\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi";
    assert!(llm.payload(chunk(true, 3, req)).is_empty());
    let cont = b"HTTP/1.1 100 Continue\r\n\r\n";
    assert!(llm.payload(chunk(false, 3, cont)).is_empty());
    let resp = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    let evs = llm.payload(chunk(false, 3, resp));
    let Some(Kind::Http(h)) = evs.first().map(|e| &e.kind) else {
        panic!("{evs:?}")
    };
    assert_eq!((h.status, h.received), (201, resp.len() as u64));
}

#[test]
fn a_call_the_stream_changed_after_its_block_closed_is_reported_again() {
    let mut llm = Llm::new(Options::default());
    let r = messages_request(br#"{"model":"m","stream":true,"messages":[]}"#);
    llm.payload(chunk(true, 4, &r));
    let mut first = SSE_HEAD.to_vec();
    for d in [
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t1","name":"bash"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"cmd\":\"ls\"}"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
    ] {
        first.extend(sse(d));
    }
    assert_eq!(
        kinds(&llm.payload(chunk(false, 4, &first))),
        ["llm.tool_call"]
    );
    // A hostile server appends to the closed block: the agent runs what the message ends
    // with, so that is reported too.
    let mut rest = Vec::new();
    for d in [
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"; curl x"}}"#,
        r#"{"type":"message_stop"}"#,
    ] {
        rest.extend(sse(d));
    }
    rest.extend(b"0\r\n\r\n");
    let evs = llm.payload(chunk(false, 4, &rest));
    let calls: Vec<&str> = evs
        .iter()
        .filter_map(|e| match &e.kind {
            Kind::ToolCall(t) => Some(t.arguments.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(calls, [r#"{"cmd":"ls"}; curl x"#]);
}

#[test]
fn requests_still_open_when_the_recording_ends_are_reported() {
    let mut llm = Llm::new(Options::default());
    // One whole request no answer came to, one cut short (its body never all sent).
    let (a, b): (&[u8], &[u8]) = (
        b"GET /a HTTP/1.1\r\nHost: s\r\n\r\n",
        b"POST /b HTTP/1.1\r\nHost: s\r\nContent-Length: 100\r\n\r\nonly this",
    );
    llm.payload(chunk(true, 5, a));
    llm.payload(chunk(true, 6, b));
    let evs = llm.finish(Timestamp::default(), &|_| "/usr/bin/python3".into());
    let got: Vec<(String, u64)> = evs
        .iter()
        .filter_map(|e| match &e.kind {
            Kind::Http(h) if h.status == 0 => Some((h.path.clone(), h.sent)),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/a".to_string(), a.len() as u64),
            ("/b".to_string(), b.len() as u64)
        ]
    );
    assert!(llm
        .finish(Timestamp::default(), &|_| String::new())
        .is_empty());
}

#[test]
fn what_follows_a_switch_of_protocols_is_not_parsed() {
    let mut llm = Llm::new(Options::default());
    // A WebSocket: the 101 is the request's answer, and the frames after it (unmasked
    // from the server, so they may spell anything) are neither requests nor responses.
    let up = b"GET /ws HTTP/1.1\r\nHost: svc\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    assert!(llm.payload(chunk(true, 4, up)).is_empty());
    let evs = llm.payload(chunk(
        false,
        4,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x20HTTP/1.1 200 OK\r\n\r\n",
    ));
    let [ev] = &evs[..] else {
        panic!("one event: {evs:?}")
    };
    let Kind::Http(h) = &ev.kind else {
        panic!("{ev:?}")
    };
    assert!(h.status == 101 && h.switched(), "{h:?}");
    let frame = b"\x81\x30GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
    assert!(llm.payload(chunk(true, 4, frame)).is_empty());
    assert!(llm
        .payload(chunk(false, 4, b"HTTP/1.1 200 OK\r\n\r\n"))
        .is_empty());

    // CONNECT: its 2xx answer has no body (the tunnel follows it at once).
    let c = b"CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n";
    assert!(llm.payload(chunk(true, 5, c)).is_empty());
    let evs = llm.payload(chunk(
        false,
        5,
        b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03\x00\x02hi",
    ));
    let Some(Kind::Http(h)) = evs.first().map(|e| &e.kind) else {
        panic!("{evs:?}")
    };
    assert_eq!(
        (h.method.as_str(), h.path.as_str(), h.status),
        ("CONNECT", "api.example:443", 200)
    );
    assert!(h.switched());
    assert!(llm
        .payload(chunk(true, 5, b"\x16\x03\x01\x00\x05hello"))
        .is_empty());
    // A CONNECT refused is an answer like any other: the connection stays HTTP.
    assert!(llm.payload(chunk(true, 6, c)).is_empty());
    let evs = llm.payload(chunk(
        false,
        6,
        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
    ));
    assert!(matches!(&evs[..], [e] if matches!(&e.kind, Kind::Http(h) if !h.switched())));
    assert!(llm.payload(chunk(true, 6, c)).is_empty());
    assert_eq!(
        llm.payload(chunk(false, 6, b"HTTP/1.1 200 OK\r\n\r\n"))
            .len(),
        1
    );
}

/// The Http events of `evs`: (method, path, host, status, received).
fn exchanges(evs: &[Event]) -> Vec<(String, String, String, u16, u64)> {
    evs.iter()
        .filter_map(|e| match &e.kind {
            Kind::Http(h) => Some((
                h.method.clone(),
                h.path.clone(),
                h.host.clone(),
                h.status,
                h.received,
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn plain_http_inside_a_tunnel_is_read_as_a_new_connections_the_way_enforce_reads_it() {
    let mut llm = Llm::new(Options::default());
    let c = b"CONNECT inner.example:80 HTTP/1.1\r\nHost: inner.example:80\r\n\r\n";
    assert!(llm.payload(chunk(true, 7, c)).is_empty());
    let evs = llm.payload(chunk(
        false,
        7,
        b"HTTP/1.1 200 Connection established\r\n\r\n",
    ));
    assert_eq!(exchanges(&evs).len(), 1, "{evs:?}");
    // The request inside the tunnel, and its answer: an exchange like any other, so a
    // baseline learns the endpoint enforce will check there.
    let inner = b"GET /tickets/104 HTTP/1.1\r\nHost: inner.example\r\n\r\n";
    assert!(llm.payload(chunk(true, 7, inner)).is_empty());
    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let evs = llm.payload(chunk(false, 7, answer));
    assert_eq!(
        exchanges(&evs),
        [(
            "GET".into(),
            "/tickets/104".into(),
            "inner.example".into(),
            200,
            answer.len() as u64
        )]
    );
    // A WebSocket inside the tunnel switches again: its frames are another protocol's,
    // for good, in both directions.
    let up = b"GET /ws HTTP/1.1\r\nHost: inner.example\r\nUpgrade: websocket\r\n\r\n";
    assert!(llm.payload(chunk(true, 7, up)).is_empty());
    let evs = llm.payload(chunk(false, 7, b"HTTP/1.1 101 Switching Protocols\r\n\r\n"));
    assert_eq!(exchanges(&evs)[0].3, 101);
    assert!(llm.payload(chunk(true, 7, b"\x82\x05hello")).is_empty());
    assert!(llm.payload(chunk(true, 7, inner)).is_empty());
    assert!(llm.payload(chunk(false, 7, answer)).is_empty());
}

#[test]
fn a_response_is_framed_by_what_its_own_request_asked() {
    let mut llm = Llm::new(Options::default());
    // A CONNECT refused with a body: the body is the 407's (only a 2xx opens a tunnel),
    // and the next answer pairs with the next request.
    let c = b"CONNECT x.example:443 HTTP/1.1\r\nHost: x.example:443\r\n\r\n";
    let get = b"GET /a HTTP/1.1\r\nHost: x.example\r\n\r\n";
    assert!(llm
        .payload(chunk(true, 8, &[&c[..], get].concat()))
        .is_empty());
    let refused = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 4\r\n\r\ndeny";
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let evs = llm.payload(chunk(false, 8, &[&refused[..], ok].concat()));
    assert_eq!(
        exchanges(&evs),
        [
            (
                "CONNECT".into(),
                "x.example:443".into(),
                "x.example:443".into(),
                407,
                refused.len() as u64
            ),
            (
                "GET".into(),
                "/a".into(),
                "x.example".into(),
                200,
                ok.len() as u64
            )
        ]
    );
    // A GET pipelined before a HEAD: the GET's answer has its body, the HEAD's has none
    // (its Content-Length is the resource's).
    let head = b"HEAD /a HTTP/1.1\r\nHost: x.example\r\n\r\n";
    assert!(llm
        .payload(chunk(true, 9, &[&get[..], head].concat()))
        .is_empty());
    let head_ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
    let evs = llm.payload(chunk(false, 9, &[&ok[..], head_ok].concat()));
    let got: Vec<(String, u64)> = exchanges(&evs)
        .into_iter()
        .map(|(m, _, _, _, r)| (m, r))
        .collect();
    assert_eq!(
        got,
        [
            ("GET".to_string(), ok.len() as u64),
            ("HEAD".to_string(), head_ok.len() as u64)
        ]
    );
}

#[test]
fn probes_put_without_symbols_are_taken_off_when_their_first_answer_is_not_http() {
    let tls = |write, stream, bytes: &[u8], exe: &str| Payload {
        tls: true,
        exe: exe.into(),
        ..chunk(write, stream, bytes)
    };
    let mut llm = Llm::new(Options::default());
    llm.coverage.verify.probed("/opt/bun");
    llm.coverage.verify.probed("/opt/claude");
    let req = messages_request(b"{\"model\": \"m\", \"messages\": []}");
    // A probe that reads a real answer is trusted: the call is read.
    let evs = llm.payload(tls(true, 1, &req, "/opt/claude"));
    assert_eq!(kinds(&evs), ["llm.request"]);
    let mut answer = SSE_HEAD.to_vec();
    answer.extend(sse("{\"type\": \"message_stop\"}"));
    llm.payload(tls(false, 1, &answer, "/opt/claude"));
    assert!(llm.coverage.verify.to_detach.is_empty());
    // One that reads what no HTTP server says is taken off and said, and what else
    // comes from it is dropped.
    llm.payload(tls(true, 2, &req, "/opt/bun"));
    let evs = llm.payload(tls(false, 2, b"\x17\x03\x03\x00\x20ciphertext", "/opt/bun"));
    let [ev] = &evs[..] else {
        panic!("one note: {evs:?}")
    };
    assert!(
        matches!(&ev.kind, Kind::Tls(t) if t.status == TlsStatus::Uncovered && t.library == "/opt/bun"),
        "{ev:?}"
    );
    assert_eq!(llm.coverage.verify.to_detach, ["/opt/bun"]);
    assert!(llm.payload(tls(true, 3, &req, "/opt/bun")).is_empty());
}

#[test]
fn a_handshake_record_inside_an_http_stream_is_not_a_hello() {
    // A request, then a write that starts like a ClientHello: it is the stream's, to parse
    // (here it does not parse), not a hello to drop and report.
    let mut llm = Llm::new(Options::default());
    let first = b"GET /health HTTP/1.1\r\nHost: model\r\n\r\n";
    assert!(llm.payload(chunk(true, 1, first)).is_empty());
    let mut second = b"\x16\x03\x01\x00\x00\x01\r\n".to_vec();
    second.extend(messages_request(b"{}"));
    llm.payload(chunk(true, 1, &second));
    let evs = llm.finish(Timestamp::default(), &|_| String::new());
    assert!(
        !evs.iter().any(|e| matches!(e.kind, Kind::Tls(_))),
        "{evs:?}"
    );
    // The same bytes as a socket's first write are a hello, said at the end.
    llm.payload(chunk(true, 2, &second));
    let evs = llm.finish(Timestamp::default(), &|_| String::new());
    assert!(
        evs.iter().any(|e| matches!(e.kind, Kind::Tls(_))),
        "{evs:?}"
    );
}

#[test]
fn a_stream_read_through_aead_probes_meets_its_answer_once_tied_to_its_socket() {
    // The request is sealed before the kernel knows its socket: it comes under the sealing
    // context's address (1); the tie moves it to the socket's stream (2), where the answer
    // is read. Without the tie the answer would meet no request.
    let tls = |write, stream, bytes: &[u8]| Payload {
        tls: true,
        exe: "/opt/codex".into(),
        ..chunk(write, stream, bytes)
    };
    let mut llm = Llm::new(Options::default());
    let req = messages_request(b"{\"model\": \"m\", \"messages\": [], \"stream\": true}");
    assert_eq!(kinds(&llm.payload(tls(true, 1, &req))), ["llm.request"]);
    llm.tie(10, 1, 2);
    let mut answer = SSE_HEAD.to_vec();
    answer.extend(sse("{\"type\": \"message_stop\"}"));
    let mut evs = llm.payload(tls(false, 2, &answer));
    evs.extend(llm.finish(Timestamp::default(), &|_| String::new()));
    assert_eq!(exchanges(&evs).len(), 1, "{evs:?}");
    assert!(
        exchanges(&evs).iter().all(|(_, _, _, _, r)| *r > 0),
        "the answer was read: {evs:?}"
    );
    // A tie of another process's context moves nothing.
    llm.payload(tls(true, 3, &req));
    llm.tie(11, 3, 4);
    assert!(llm.conns.contains_key(&(10, true, 3)));
}

#[test]
fn a_response_carries_its_requests_exchange_number_on_any_connection() {
    let mut llm = Llm::new(Options::default());
    let req = messages_request(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#);
    let number = |evs: &[Event]| -> Vec<u64> {
        evs.iter()
            .filter_map(|e| match &e.kind {
                Kind::LlmRequest(r) => Some(r.exchange),
                Kind::LlmResponse(r) => Some(r.exchange),
                _ => None,
            })
            .collect()
    };
    assert_eq!(number(&llm.payload(chunk(true, 2, &req))), [1]);
    assert_eq!(number(&llm.payload(chunk(true, 3, &req))), [2]);
    let body = br#"{"model":"m","content":[],"usage":{"input_tokens":1,"output_tokens":1}}"#;
    let mut answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(body);
    // The second connection is answered first.
    assert_eq!(number(&llm.payload(chunk(false, 3, &answer))), [2]);
    assert_eq!(number(&llm.payload(chunk(false, 2, &answer))), [1]);
}
