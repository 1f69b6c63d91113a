//! Enforcement by HTTP endpoint (src/bpf/endpoint.bpf.c), from recorded runs: a client
//! that uses an internal API is recorded twice into a baseline, then enforced at
//! `--deny-at medium` while it tries what a steered agent would, including the ways a
//! tree that knows agentguard would split, pipeline or hide a request. The server is this
//! test process, outside the tree: what it received is what left.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use crate::util::*;

/// The requests the server received, as "METHOD target".
type Seen = Arc<Mutex<Vec<String>>>;

/// An HTTP/1.1 server with keep-alive, Content-Length and chunked request bodies; each
/// request answered `200 ok`, but an upgrade to a WebSocket at /ws (101) and a CONNECT
/// (200), after which the connection is a tunnel (see `tunnel`).
fn server() -> (u16, Seen) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let s = Arc::clone(&seen);
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let _ = serve(c, &s);
            });
        }
    });
    (port, seen)
}

fn serve(c: TcpStream, seen: &Seen) -> std::io::Result<()> {
    let mut w = c.try_clone()?;
    let mut r = BufReader::new(c);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line == "\r\n" && !head.is_empty() {
                break;
            }
            if line != "\r\n" {
                head.push(line.trim_end().to_string());
            }
        }
        seen.lock().unwrap().push(
            head[0]
                .rsplit_once(' ')
                .map_or(head[0].clone(), |(l, _)| l.to_string()),
        );
        let header = |name: &str| {
            head.iter().find_map(|h| {
                let (n, v) = h.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        if header("transfer-encoding").is_some() {
            loop {
                let mut size = String::new();
                r.read_line(&mut size)?;
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                r.read_exact(&mut chunk)?;
                if n == 0 {
                    break;
                }
            }
        } else if let Some(n) = header("content-length") {
            let mut body = vec![0; n.parse().unwrap_or(0)];
            r.read_exact(&mut body)?;
        }
        if head[0].starts_with("GET /ws ") && header("upgrade").is_some() {
            w.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")?;
            return tunnel(r, w, seen);
        }
        if head[0].starts_with("CONNECT ") {
            w.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
            return tunnel(r, w, seen);
        }
        w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")?;
    }
}

/// The connection after it switched protocols: each read answered with a WebSocket frame
/// holding "ok"; bytes naming HTTP/ are kept in `Seen` (a request that got through).
fn tunnel(mut r: BufReader<TcpStream>, mut w: TcpStream, seen: &Seen) -> std::io::Result<()> {
    let mut buf = [0; 65536];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let got = String::from_utf8_lossy(&buf[..n]);
        if got.contains("HTTP/") {
            seen.lock().unwrap().push(format!("tunnel {got}"));
        }
        w.write_all(b"\x82\x02ok")?;
    }
}

/// The client: the baseline's three requests on one connection, then what `mode` tries.
/// Prints what each attempt came to, as JSON.
const CLIENT: &str = r#"
import json, socket, ssl, sys
port, mode, tls_port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
host = "127.0.0.1:%d" % port

def conn():
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def tls_conn():
    # The terminator's certificate is made for the test run: not verified.
    ctx = ssl._create_unverified_context()
    return ctx.wrap_socket(conn_to(tls_port))

def self_serve():
    # The tree serving HTTPS itself (a socket pair): its responses are not requests.
    import os, threading
    here = os.path.dirname(os.path.abspath(sys.argv[0]))
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(here + "/cert.pem", here + "/key.pem")
    a, b = socket.socketpair()
    def serve():
        t = sctx.wrap_socket(a, server_side=True)
        t.recv(4096)
        t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    th = threading.Thread(target=serve)
    th.start()
    c = ssl._create_unverified_context().wrap_socket(b)
    c.sendall(req("GET", "/api/tickets/104"))
    answer(c)
    th.join()
    return "served"

def conn_to(p):
    s = socket.create_connection(("127.0.0.1", p))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def head(method, path, n, extra=""):
    return ("%s %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\n\r\n" % (method, path, host, extra, n)).encode()

def req(method, path, body=b""):
    return head(method, path, len(body)) + body

def send(s, data):
    try:
        s.sendall(data)
        return "sent"
    except PermissionError:
        return "EACCES"

def ws_frame(payload, key=b"\x37\xfa\x21\x3d"):
    # A client's frame: binary, final, masked (RFC 6455).
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes([0x82, 0x80 | len(payload)]) + key + masked

def upgrade(s, path="/ws"):
    s.sendall(head("GET", path, 0, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"))
    got = b""
    while not got.endswith(b"\r\n\r\n"):
        got += s.recv(1)
    return got.split(b" ")[1].decode()

def tunnel(s, target="127.0.0.1:443"):
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
    got = b""
    while not got.endswith(b"\r\n\r\n"):
        got += s.recv(1)
    return got.split(b" ")[1].decode()

# A WebSocket message carrying a request line: frame bytes, never a request.
ws_message = ws_frame(b"POST /api/admin/export HTTP/1.1\r\nHost: x\r\n\r\n")
# The start of a TLS ClientHello, as a client sends through CONNECT's tunnel.
client_hello = b"\x16\x03\x01\x00\xf4\x01\x00\x00\xf0\x03\x03" + bytes(range(32))

def answer(s):
    got = b""
    while not got.endswith(b"ok"):
        b = s.recv(4096)
        if not b:
            raise SystemExit("the server closed")
        got += b

out = {}
s = conn()
# A comment whose body holds a request line: body bytes, never a request.
comment = b'{"text": "POST /api/admin/export HTTP/1.1\r\nHost: x\r\n\r\n"}'
for r in (req("GET", "/api/tickets/104"), req("POST", "/api/tickets/104/comments", comment), req("GET", "/kb/search?q=printer")):
    out.setdefault("baseline", []).append(send(s, r))
    answer(s)
if mode == "learn":
    # The same service over TLS (the terminator forwards to it).
    t = tls_conn()
    for r in (req("GET", "/api/tickets/104"), req("POST", "/api/tickets/104/comments", comment)):
        t.sendall(r)
        answer(t)
    out["serve"] = self_serve()
    # A WebSocket, plain and over TLS, and a CONNECT tunnel: each switches protocols.
    for c in (conn(), tls_conn()):
        out.setdefault("switched", []).append(upgrade(c))
        c.sendall(ws_message)
        answer(c)
    c = conn()
    out["switched"].append(tunnel(c))
    c.sendall(client_hello)
    answer(c)
elif mode == "tls":
    # Over TLS the check is in SSL_write: what it denies kills the process, so each
    # step is printed before it is tried.
    t = tls_conn()
    t.sendall(req("POST", "/api/tickets/104/comments", comment))
    answer(t)
    print("allowed", flush=True)
    t.sendall(req("POST", "/api/admin/export", b"rows"))
    print("sent", flush=True)
elif mode == "tls-attach":
    # Run before agentguard, which attaches (--pid) while the connection is open.
    t = tls_conn()
    t.sendall(req("GET", "/api/tickets/104"))
    answer(t)
    print("ready", flush=True)
    sys.stdin.readline()
    t.sendall(req("GET", "/api/tickets/104"))
    answer(t)
    print("old ok", flush=True)
    u = tls_conn()
    u.sendall(req("POST", "/api/admin/export", b"rows"))
    print("sent", flush=True)
elif mode == "tls-nested":
    # A write inside another connection's write (OpenSSL's message callback runs within
    # SSL_write): checked on its own.
    victim = tls_conn()
    armed = []
    ctx = ssl._create_unverified_context()
    def cb(conn, direction, version, content_type, msg_type, data):
        if armed and direction == "write":
            armed.clear()
            victim.sendall(req("POST", "/api/admin/export", b"rows"))
            print("nested sent", flush=True)
    ctx._msg_callback = cb
    carrier = ctx.wrap_socket(conn_to(tls_port))
    armed.append(1)
    print("armed", flush=True)
    carrier.sendall(req("GET", "/api/tickets/104"))
    answer(carrier)
    print("carrier ok", flush=True)
elif mode == "tls-implicit":
    # The handshake inside the first SSL_write (it calls SSL_clear there).
    t = ssl._create_unverified_context().wrap_socket(conn_to(tls_port), do_handshake_on_connect=False)
    t.sendall(req("GET", "/api/tickets/104"))
    answer(t)
    print("allowed", flush=True)
    t.sendall(req("POST", "/api/admin/export", b"rows"))
    print("sent", flush=True)
elif mode == "tls-split":
    t = tls_conn()
    data = req("POST", "/api/admin/export", b"rows")
    print(len(data) - 4 - 1, flush=True)
    for i in range(len(data)):
        print(i, flush=True)
        t.sendall(data[i:i + 1])
elif mode == "tls-retry":
    # A large body through a small send buffer, non-blocking: the library asks for the
    # same bytes again (SSL_ERROR_WANT_WRITE), which must not count twice.
    import select
    raw = conn_to(tls_port)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    t = ssl._create_unverified_context().wrap_socket(raw)
    body = b"x" * (1 << 20)
    data = memoryview(head("POST", "/api/tickets/104/comments", len(body)) + body)
    t.setblocking(False)
    off = retries = 0
    while off < len(data):
        try:
            off += t.send(data[off:off + 65536])
        except ssl.SSLWantWriteError:
            retries += 1
            select.select([], [t], [])
    t.setblocking(True)
    answer(t)
    print("retries %d" % retries, flush=True)
    t.sendall(req("GET", "/api/tickets/104"))
    answer(t)
    print("allowed", flush=True)
    t.sendall(req("POST", "/api/admin/export", b"rows"))
    print("sent", flush=True)
elif mode == "wss-request":
    # A request after a WebSocket's upgrade over TLS: checked, killed.
    t = tls_conn()
    upgrade(t)
    print("allowed", flush=True)
    t.sendall(req("POST", "/api/admin/export", b"rows"))
    print("sent", flush=True)
elif mode in ("ws-request", "ws-hidden", "connect-request"):
    # After a switch the connection is read as a new one's: a request is checked, and so
    # is a line that names HTTP/ behind a byte a server may strip (NEL, to Python).
    t = conn()
    out[mode] = [tunnel(t) if mode == "connect-request" else upgrade(t)]
    evil = req("POST", "/api/admin/export", b"rows")
    out[mode].append(send(t, b"\x85" + evil if mode == "ws-hidden" else evil))
elif mode == "upgrade-elsewhere":
    # An Upgrade header on an endpoint that never switched: the connection stays HTTP,
    # so a frame after it is no request, refused.
    t = conn()
    out[mode] = [upgrade(t, "/api/tickets/104")]
    t.recv(2)
    out[mode].append(send(t, ws_message))
elif mode == "edges":
    # HTTP/0.9's request line (no version), bare and behind a byte Python strips as
    # whitespace: a request Python's server serves, refused.
    out[mode] = [send(conn(), b"GET /api/admin/export\r\n"), send(conn(), b"\x85GET /api/admin/export\n")]
    # The same form with another method, then headers and a body: llhttp (Node, uvicorn)
    # serves it. A first line that names no URL is another protocol's (SMTP), left alone.
    out[mode].append(send(conn(), b"POST /api/admin/export\r\nHost: %s\r\nContent-Length: 4\r\n\r\nrows" % host.encode()))
    out[mode].append(send(conn(), b"EHLO client.example\r\n"))
    # A CONNECT whose target carries a query: no learned tunnel (a new write, refused).
    out[mode].append(send(conn(), b"CONNECT 127.0.0.1:443?x HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n"))
    # An upgrade to an endpoint the level admits as new: what follows is read as a fresh
    # connection's, so a frame passes.
    t = conn()
    out[mode].append(upgrade(t, "/kb/live"))
    out[mode].append(send(t, ws_message))
elif mode == "new-read":
    out[mode] = send(s, req("GET", "/api/tickets/7/history"))
    answer(s)
elif mode == "split":
    # The request a byte per send: the kernel follows it across sends.
    t = conn()
    data = req("POST", "/api/admin/export", b"rows")
    res = [send(t, data[i:i + 1]) for i in range(len(data))]
    out[mode] = [res.index("EACCES") if "EACCES" in res else -1, len(data) - 4 - 1]
elif mode == "pipelined":
    t = conn()
    out[mode] = send(t, req("GET", "/api/tickets/5") + req("POST", "/api/admin/export", b"rows"))
elif mode == "chunked":
    t = conn()
    h = ("POST /api/tickets/104/comments HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n" % host).encode()
    out[mode] = [send(t, h), send(t, b"5\r\nhello\r\n"), send(t, b"0\r\n\r\n")]
    answer(t)
    out[mode].append(send(t, req("POST", "/api/admin/export", b"rows")))
elif mode == "fastopen":
    # Fast Open's data would leave with the SYN, before the connection is followed.
    t = socket.socket()
    try:
        t.sendto(req("POST", "/api/admin/export", b"rows"), socket.MSG_FASTOPEN, ("127.0.0.1", port))
        out[mode] = ["sent"]
    except PermissionError:
        out[mode] = ["refused"]
    try:
        socket.socket().setsockopt(socket.IPPROTO_TCP, 30, 1)  # TCP_FASTOPEN_CONNECT
        out[mode].append("set")
    except PermissionError:
        out[mode].append("refused")
    # Kernel TLS: after a handshake in user space, plaintext by write(), past SSL_write.
    try:
        conn().setsockopt(socket.IPPROTO_TCP, 31, b"tls")  # TCP_ULP
        out[mode].append("set")
    except PermissionError:
        out[mode].append("refused")
    except OSError as e:
        out[mode].append(e.strerror)
elif mode == "oob":
    # An urgent byte: the server's stream leaves it out, the check would not.
    t = conn()
    try:
        t.send(b" ", socket.MSG_OOB)
        out[mode] = "sent"
    except PermissionError:
        out[mode] = "refused"
elif mode == "reconnect":
    # Not HTTP on the first connection, then the same socket connected again.
    import ctypes
    t = conn()
    out[mode] = [send(t, b"\x00\x01 binary\n")]
    unspec = bytearray(16)
    unspec[2:4] = port.to_bytes(2, "big")
    unspec[4:8] = bytes([127, 0, 0, 1])
    libc = ctypes.CDLL(None, use_errno=True)
    out[mode].append(libc.connect(t.fileno(), ctypes.c_char_p(bytes(unspec)), 16))
    t.connect(("127.0.0.1", port))
    out[mode].append(send(t, req("POST", "/api/admin/export", b"rows")))
elif mode == "lookalike":
    # A header named like Content-Length, which servers ignore: the next request is one.
    t = conn()
    hidden = req("POST", "/api/admin/export", b"rows")
    first = head("GET", "/kb/search", 0).replace(b"Content-Length: 0", b"Cxxxxxx-Lxxxxh: %d" % len(hidden))
    out[mode] = send(t, first + hidden)
elif mode == "space":
    # A space before the method: Python's server strips it.
    out[mode] = send(conn(), b" " + req("POST", "/api/admin/export", b"rows"))
elif mode == "both":
    t = conn()
    out[mode] = send(t, head("POST", "/api/tickets/104/comments", 4, "Transfer-Encoding: chunked\r\n") + b"0\r\n\r\n")
elif mode == "other":
    # Another protocol is left alone.
    t = conn()
    out[mode] = [send(t, b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"), send(t, b"hello\r\n")]
print(json.dumps(out, sort_keys=True))
"#;

fn client(d: &Path, ports: (u16, u16), mode: &str) -> Vec<String> {
    let script = d.join("client.py");
    std::fs::write(&script, CLIENT).unwrap();
    vec![
        python().to_string(),
        script.display().to_string(),
        ports.0.to_string(),
        mode.to_string(),
        ports.1.to_string(),
    ]
}

/// A TLS terminator in front of the server, outside the tree: what the tree sends over
/// TLS reaches the server in plain, so `Seen` holds it too.
const TERMINATOR: &str = r#"
import socket, ssl, sys, threading
cert, key, upstream = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(64)
print(l.getsockname()[1], flush=True)

def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

def serve(c):
    try:
        t = ctx.wrap_socket(c, server_side=True)
    except OSError:
        return
    u = socket.create_connection(("127.0.0.1", upstream))
    threading.Thread(target=pump, args=(u, t), daemon=True).start()
    pump(t, u)

while True:
    c, _ = l.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// The terminator, killed when dropped.
struct Terminator(std::process::Child);

impl Drop for Terminator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the terminator with a certificate made for the run; its port.
fn terminator(d: &Path, upstream: u16) -> (Terminator, u16) {
    let (cert, key) = (d.join("cert.pem"), d.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (scripts/setup.sh installs it)");
    assert!(made.status.success(), "{made:?}");
    let script = d.join("terminator.py");
    std::fs::write(&script, TERMINATOR).unwrap();
    let mut child = Command::new(python())
        .arg(&script)
        .args([&cert, &key])
        .arg(upstream.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let port = port_line(&mut child, "terminator");
    (Terminator(child), port)
}

fn enforce(d: &Path, cmd: &[String]) -> (Output, Vec<serde_json::Value>) {
    let events = d.join("enforced.jsonl");
    let out = Command::new(BIN)
        .current_dir(d)
        .args(["enforce", "--backend", "auto", "--deny-at", "medium"])
        .arg("--events")
        .arg(&events)
        .arg("--profile")
        .arg(d.join("baseline.toml"))
        .arg("--")
        .args(cmd)
        .output()
        .unwrap();
    let denials = std::fs::read_to_string(&events)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "deny")
        .collect();
    (out, denials)
}

fn stdout(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| {
        panic!(
            "client output {:?}: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[test]
fn a_learned_baseline_refuses_the_requests_it_does_not_cover_however_they_are_sent() {
    require_root();
    let d = scratch("endpoints");
    let (port, seen) = server();
    let (_terminator, tls_port) = terminator(&d, port);
    let port = (port, tls_port);
    learn(
        &d.join("baseline.toml"),
        &strs(&client(&d, port, "learn")),
        2,
    );
    let baseline = std::fs::read_to_string(d.join("baseline.toml")).unwrap();
    assert!(
        baseline.contains("path = \"/api/tickets/{id}/comments\""),
        "{baseline}"
    );
    // The WebSocket's endpoint and the tunnel switched protocols, and are learned so.
    let p: toml::Table = baseline.parse().unwrap();
    let mut switching: Vec<String> = p["http"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.get("switches").and_then(toml::Value::as_bool) == Some(true))
        .map(|e| {
            format!(
                "{} {}{}",
                e["method"].as_str().unwrap(),
                e["service"].as_str().unwrap(),
                e["path"].as_str().unwrap()
            )
        })
        .collect();
    switching.sort();
    assert_eq!(
        switching,
        [
            "CONNECT 127.0.0.1:443/127.0.0.1:443".to_string(),
            format!("GET 127.0.0.1:{}/ws", port.0)
        ],
        "{baseline}"
    );

    // Each enforced run of the client, counted: each posts a comment of its own.
    let runs = std::cell::Cell::new(0);
    let run = |mode: &str| {
        runs.set(runs.get() + 1);
        enforce(&d, &client(&d, port, mode))
    };
    // In the VM (tests/vm/z-integration.sh) under BPF LSM, a few runs of each kind: the
    // checks are the cgroup and uprobe programs the host's run of this test puts through
    // every mode, and each enforced run costs a quarter of a minute under emulation.
    let brief = std::env::var_os("AGENTGUARD_TEST_ENDPOINTS_BRIEF").is_some();

    // The baseline's own run: nothing denied.
    let (out, denials) = run("learn");
    assert_eq!(
        stdout(&out)["baseline"],
        serde_json::json!(["sent", "sent", "sent"])
    );
    assert_eq!(stdout(&out)["serve"], "served");
    assert_eq!(
        stdout(&out)["switched"],
        serde_json::json!(["101", "101", "200"])
    );
    assert!(denials.is_empty(), "{denials:?}");

    // A read of a new endpoint rates low: admitted at medium, and it reaches the server.
    let (out, denials) = run("new-read");
    assert_eq!(stdout(&out)["new-read"], "sent");
    assert!(denials.is_empty(), "{denials:?}");
    assert!(seen
        .lock()
        .unwrap()
        .contains(&"GET /api/tickets/7/history".to_string()));

    // A write to an endpoint never written, a byte per send: refused at the send that
    // completes its header block, reported with the rule.
    let (out, denials) = run("split");
    let at = &stdout(&out)["split"];
    assert_eq!(
        at[0], at[1],
        "the send refused is the header block's last byte"
    );
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert_eq!(denials[0]["op"], "http");
    assert_eq!(
        denials[0]["object"],
        format!("POST 127.0.0.1:{}/api/admin/export", port.0)
    );
    assert!(
        denials[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("http-new-write (medium)"),
        "{denials:?}"
    );

    if !brief {
        more_ways_to_send(&run, &seen);
    }

    // Over TLS (Python's libssl, probed): the baseline's request passes; the write is
    // refused by killing the client at the SSL_write that holds it.
    let (out, denials) = run("tls");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "allowed\n");
    assert_eq!(out.status.code(), Some(128 + 9), "{out:?}");
    killed_for_export(&denials, port);
    if !brief {
        more_ways_over_tls(&run, port);
    }

    attach_to_a_running_client(&d, port);

    let seen = seen.lock().unwrap();
    assert!(
        !seen.iter().any(|r| r.contains("/api/admin/export")),
        "a refused request reached the server: {seen:?}"
    );
    // The comment carrying a request line in its body was a body: one comment per run.
    let comments = seen
        .iter()
        .filter(|r| *r == "POST /api/tickets/104/comments")
        .count();
    // Each run's own (2 learning, those enforced, and the attached one where it ran), the
    // learn mode's over TLS (3 runs), the TLS mode's, and the chunked and retry modes'.
    let attached = usize::from(crate::host::bpf_lsm().is_ok());
    let more = if brief { 0 } else { 2 };
    assert_eq!(runs.get(), if brief { 4 } else { 23 });
    assert_eq!(
        comments,
        2 + runs.get() + attached + 3 + 1 + more,
        "{seen:?}"
    );
}

/// The ways a tree that knows the check sends a request over plain HTTP, each refused or
/// passed as the baseline says.
fn more_ways_to_send(run: &impl Fn(&str) -> (Output, Vec<serde_json::Value>), seen: &Seen) {
    // Pipelined behind an allowed request in one send: the whole send is refused.
    let (out, _) = run("pipelined");
    assert_eq!(stdout(&out)["pipelined"], "EACCES");
    assert!(!seen
        .lock()
        .unwrap()
        .contains(&"GET /api/tickets/5".to_string()));

    // After a chunked body the next request on the connection is still checked.
    let (out, _) = run("chunked");
    assert_eq!(
        stdout(&out)["chunked"],
        serde_json::json!(["sent", "sent", "sent", "EACCES"])
    );

    // What a tree that knows the check tries: Fast Open and urgent data, refused; a
    // socket connected again after a stream that was not HTTP, a header named like
    // Content-Length, a space before the method, both framings at once: each request
    // refused. A protocol that is not HTTP passes.
    for (mode, want) in [
        (
            "fastopen",
            serde_json::json!(["refused", "refused", "refused"]),
        ),
        ("oob", serde_json::json!("refused")),
        ("reconnect", serde_json::json!(["sent", 0, "EACCES"])),
        ("lookalike", serde_json::json!("EACCES")),
        ("space", serde_json::json!("EACCES")),
        ("both", serde_json::json!("EACCES")),
        ("other", serde_json::json!(["sent", "sent"])),
        ("ws-request", serde_json::json!(["101", "EACCES"])),
        ("ws-hidden", serde_json::json!(["101", "EACCES"])),
        ("connect-request", serde_json::json!(["200", "EACCES"])),
        ("upgrade-elsewhere", serde_json::json!(["200", "EACCES"])),
        (
            "edges",
            serde_json::json!(["EACCES", "EACCES", "EACCES", "sent", "EACCES", "200", "sent"]),
        ),
    ] {
        let (out, _) = run(mode);
        assert_eq!(stdout(&out)[mode], want, "{mode}");
    }
}

/// The one denial of a TLS run: killed for the request, named (not as a write that cannot
/// be followed).
fn killed_for_export(denials: &[serde_json::Value], port: (u16, u16)) {
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert_eq!(
        denials[0]["object"],
        format!("POST 127.0.0.1:{}/api/admin/export", port.0)
    );
    let reason = denials[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("http-new-write") && reason.contains("killed at SSL_write"),
        "{denials:?}"
    );
}

/// The ways a write over TLS can be made, each killed at the SSL_write that holds it.
fn more_ways_over_tls(run: &impl Fn(&str) -> (Output, Vec<serde_json::Value>), port: (u16, u16)) {
    // The handshake made by the first SSL_write: the same.
    let (out, denials) = run("tls-implicit");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "allowed\n");
    assert_eq!(out.status.code(), Some(128 + 9), "{out:?}");
    killed_for_export(&denials, port);
    // A write made inside another connection's write is checked on its own.
    let (out, denials) = run("tls-nested");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "armed\n", "{out:?}");
    assert_eq!(out.status.code(), Some(128 + 9), "{out:?}");
    killed_for_export(&denials, port);
    // A byte per SSL_write: killed at the write that completes the header block.
    let (out, denials) = run("tls-split");
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        lines.first(),
        lines.last(),
        "the last write tried is the header block's last byte"
    );
    assert_eq!(out.status.code(), Some(128 + 9), "{out:?}");
    killed_for_export(&denials, port);
    // Writes the library takes again (SSL_ERROR_WANT_WRITE) count once: after a 1 MiB
    // body the next request is still followed, and the one after it still refused.
    let (out, denials) = run("tls-retry");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let retries: u64 = lines
        .first()
        .and_then(|l| l.strip_prefix("retries "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(retries > 0, "no write was taken again: nothing was tested");
    assert_eq!(lines[1..], ["allowed"], "{out:?}");
    assert_eq!(out.status.code(), Some(128 + 9), "{out:?}");
    killed_for_export(&denials, port);

    // A request after a WebSocket's upgrade over TLS is checked as a new connection's.
    let (out, denials) = run("wss-request");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "allowed\n", "{out:?}");
    assert_eq!(out.status.code(), Some(128 + 9), "{out:?}");
    killed_for_export(&denials, port);
}

/// enforce --pid (BPF LSM) on a client whose TLS connection was made before: that
/// connection's place in its stream is unknown, so it is left to the destination rules (an
/// allowed request passes, not killed); a connection made after is checked.
fn attach_to_a_running_client(d: &Path, port: (u16, u16)) {
    const TEST: &str =
        "endpoints::a_learned_baseline_refuses_the_requests_it_does_not_cover_however_they_are_sent";
    if let Err(why) = crate::host::bpf_lsm() {
        skip(
            TEST,
            &format!("needs BPF LSM for enforce --pid ({why}); scripts/vm-test.sh runs it in a VM"),
        );
        return;
    }
    use std::process::Stdio;
    let cmd = client(d, port, "tls-attach");
    // Both ended if the test fails before their end (Started): neither may outlive it
    // holding the harness's output.
    let mut c = Command::new(&cmd[0])
        .args(&cmd[1..])
        .current_dir(d)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut c_out, mut c_in) = (c.stdout.take().unwrap(), c.stdin.take().unwrap());
    let c = Started::new(c);
    let mut out = BufReader::new(&mut c_out);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let events = d.join("attached.jsonl");
    let mut ag = Command::new(BIN)
        .current_dir(d)
        .args(["enforce", "--backend", "bpf-lsm", "--deny-at", "medium"])
        .arg("--events")
        .arg(&events)
        .arg("--profile")
        .arg(d.join("baseline.toml"))
        .args(["--pid", &c.id().to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ag_err = ag.stderr.take().unwrap();
    let ag = Started::new(ag);
    // Attached once it says so: the probes and the cgroup are in place before.
    let mut err = BufReader::new(ag_err);
    let mut said = String::new();
    loop {
        let mut l = String::new();
        if err.read_line(&mut l).unwrap() == 0 {
            panic!("enforce --pid ended before attaching: {said}");
        }
        said.push_str(&l);
        if l.contains("recording pid") {
            break;
        }
    }
    let drain = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
        rest
    });
    writeln!(c_in, "go").unwrap();
    drop(c_in);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = c.wait_with_output().status;
    let ag_status = ag.wait_with_output().status;
    said.push_str(&drain.join().unwrap());
    assert_eq!(rest, "old ok\n", "{said}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "{said}");
    assert!(ag_status.code().is_some(), "{said}");
    let denials: Vec<serde_json::Value> = std::fs::read_to_string(&events)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "deny")
        .collect();
    assert_eq!(denials.len(), 1, "{denials:?}\n{said}");
    assert!(
        denials[0]["reason"]
            .as_str()
            .unwrap()
            .contains("killed at SSL_write"),
        "{denials:?}"
    );
}
