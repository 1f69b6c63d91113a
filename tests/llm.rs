use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::example::{example_and_stderr, example_with};
use crate::util::*;

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn of_kind<'a>(evs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    evs.iter().filter(|e| e["kind"] == kind).collect()
}

#[test]
fn llm_calls_over_https_streamed_are_seen_and_a_shell_is_tied_to_its_tool_call() {
    let d = scratch("llm-tls");
    let log = d.join("run.jsonl");
    let prof = d.join("run.toml");
    let r = example_with(
        &d.join("state"),
        3,
        Some("reverse_shell"),
        &format!("record -q -o {} --events {}", prof.display(), log.display()),
        &["--tls", "--stream"],
    );
    assert_eq!(r["reverse_shell"], true, "{r}");
    let evs = events(&log);
    let text = std::fs::read_to_string(&log).unwrap();

    // The probes went on the host's libssl, which the agent's python uses.
    assert!(
        of_kind(&evs, "tls")
            .iter()
            .any(|e| e["status"] == "covered"
                && e["library"].as_str().unwrap().contains("libssl.so")),
        "no libssl probed"
    );
    let reqs = of_kind(&evs, "llm.request");
    assert!(reqs.len() >= 5, "{} requests", reqs.len());
    let req = reqs[0];
    assert_eq!(
        (
            req["api"].as_str(),
            req["transport"].as_str(),
            req["stream"].as_bool()
        ),
        (Some("openai.chat"), Some("tls"), Some(true)),
        "{req:#}"
    );
    assert!(req["tools"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "run_shell"));
    // The API key is redacted, its scheme kept; it is nowhere in the log.
    let auth = req["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "authorization")
        .expect("the request's headers are kept");
    assert_eq!(auth[1], "Bearer [redacted]");
    assert!(!text.contains("not-needed-for-a-local-model"));
    // Streamed responses were reassembled into tool calls with their arguments.
    let responses = of_kind(&evs, "llm.response");
    assert!(responses
        .iter()
        .all(|r| r["status"] == 200 && r["stream"] == true));
    assert!(responses
        .iter()
        .any(|r| r["input_tokens"].as_u64().is_some()));
    let calls = of_kind(&evs, "llm.tool_call");
    let shell = calls
        .iter()
        .find(|c| {
            c["name"] == "run_shell"
                && c["arguments"]
                    .as_str()
                    .unwrap()
                    .contains("/dev/tcp/127.0.0.77/18083")
        })
        .expect("the reverse shell's tool call, with its arguments");
    let id = shell["id"].as_str().unwrap();

    // The shell the tool started, and its connection, are tied to that call.
    let bash = evs
        .iter()
        .find(|e| e["kind"] == "exec" && e["path"] == "/usr/bin/bash")
        .expect("the reverse shell ran");
    assert_eq!(bash["cause"]["call"], id, "{bash:#}");
    assert_eq!(bash["cause"]["tool"], "run_shell");
    assert!(
        bash["cause"]["confidence"].as_f64().unwrap() >= 0.9,
        "{bash:#}"
    );
    let conn = evs
        .iter()
        .find(|e| e["kind"] == "net" && e["addr"] == "127.0.0.77" && e["port"] == 18083)
        .expect("the reverse shell connected");
    assert_eq!(conn["cause"]["call"], id, "{conn:#}");
    // bash's /dev/tcp has no TLS library: its traffic is said to be unseen, not skipped.
    assert!(of_kind(&evs, "tls")
        .iter()
        .any(|e| e["status"] == "unseen" && e["pid"] == conn["pid"]));
    // Nothing is tied to a tool call before the first one.
    let first_call = evs
        .iter()
        .position(|e| e["kind"] == "llm.tool_call")
        .unwrap();
    assert!(evs[..first_call].iter().all(|e| e.get("cause").is_none()));

    // Every HTTP exchange is an http event with its bytes: the LLM calls over TLS (marked
    // with their API), and the internal API's over plain TCP, each tied to its tool call.
    let http = of_kind(&evs, "http");
    let llm = http
        .iter()
        .filter(|h| h["api"] == "openai.chat")
        .collect::<Vec<_>>();
    assert_eq!(llm.len(), reqs.len(), "one http event per LLM call");
    assert!(llm.iter().all(|h| h["transport"] == "tls"
        && h["status"] == 200
        && h["sent"].as_u64() > Some(500)
        && h["received"].as_u64() > Some(100)
        && h.get("cause").is_none()));
    let api: Vec<_> = http
        .iter()
        .filter(|h| h["host"] == "127.0.0.1:18080")
        .collect();
    assert!(!api.is_empty(), "the internal API's requests");
    for h in &api {
        let tool = h["cause"]["tool"].as_str();
        assert!(
            tool == Some("http_get") || tool == Some("http_post"),
            "{h:#}"
        );
        assert!(
            h["sent"].as_u64() > Some(0) && h["status"].as_u64() > Some(0),
            "{h:#}"
        );
    }

    // The profile learned the tools and the API host.
    let p = std::fs::read_to_string(&prof).unwrap();
    assert!(p.contains("[[tool]]\nname = \"run_shell\""), "{p}");
    assert!(p.contains("[[http]]\nservice = \"127.0.0.1:18080\"\nmethod = \"POST\"\npath = \"/api/tickets/{id}/comments\""), "{p}");
    assert!(
        p.contains("[[llm]]\nhost = \"127.0.0.1:18081\"\napi = \"openai.chat\""),
        "{p}"
    );
}

#[test]
fn llm_calls_over_plain_http_keep_bodies_only_when_asked_and_redact_secrets() {
    let d = scratch("llm-tcp");
    let log = d.join("run.jsonl");
    let r = example_with(
        &d.join("state"),
        4,
        Some("exfil_credentials"),
        &format!(
            "record -q -o /dev/null --events {} --llm-bodies --llm-body-max 3000",
            log.display()
        ),
        &[],
    );
    assert_eq!(r["exfiltrated"], true, "{r}");
    let evs = events(&log);
    let text = std::fs::read_to_string(&log).unwrap();
    let reqs = of_kind(&evs, "llm.request");
    assert!(reqs
        .iter()
        .all(|r| r["transport"] == "tcp" && r["stream"].is_null()));
    // Bodies are kept, bounded...
    for r in &reqs {
        let b = r["body"].as_str().expect("--llm-bodies keeps the body");
        assert!(b.len() <= 3000 + 40, "{} bytes", b.len());
    }
    assert!(reqs.last().unwrap()["body"]
        .as_str()
        .unwrap()
        .contains("more bytes]"));
    // ...and the planted secrets the agent read and sent back to its model are not in them,
    // nor in the tool call that posts them.
    for secret in [
        "AKIAFAKEEXAMPLE00000",
        "fake/secret/for/the/agentguard/example",
    ] {
        assert!(!text.contains(secret), "{secret} leaked into the event log");
    }
    let calls = of_kind(&evs, "llm.tool_call");
    let read = calls
        .iter()
        .find(|c| {
            c["name"] == "read_file"
                && c["arguments"]
                    .as_str()
                    .unwrap()
                    .contains(".aws/credentials")
        })
        .unwrap();
    let post = calls.iter().find(|c| c["name"] == "http_post").unwrap();
    assert!(
        post["arguments"].as_str().unwrap().contains("[redacted]"),
        "{post:#}"
    );
    // The credentials read and the post to the sink, each tied to its call.
    let cred = evs
        .iter()
        .find(|e| e["kind"] == "file" && e["path"].as_str().unwrap().ends_with("/.aws/credentials"))
        .unwrap();
    assert_eq!(cred["cause"]["call"], read["id"], "{cred:#}");
    assert_eq!(cred["cause"]["confidence"], 0.9);
    let sink = evs
        .iter()
        .find(|e| e["kind"] == "net" && e["addr"] == "127.0.0.66")
        .unwrap();
    assert_eq!(sink["cause"]["call"], post["id"], "{sink:#}");
    // The agent's own connections to its model are no tool's doing.
    assert!(evs
        .iter()
        .filter(|e| e["kind"] == "net" && e["port"] == 18081)
        .all(|e| e.get("cause").is_none()));
}

#[test]
fn no_llm_turns_payload_capture_off() {
    let d = scratch("llm-off");
    let log = d.join("run.jsonl");
    example_with(
        &d.join("state"),
        5,
        None,
        &format!("record -q -o /dev/null --no-llm --events {}", log.display()),
        &["--tls"],
    );
    let evs = events(&log);
    assert!(evs.iter().any(|e| e["kind"] == "exec"));
    assert!(evs
        .iter()
        .all(|e| !e["kind"].as_str().unwrap().starts_with("llm")
            && e["kind"] != "tls"
            && e.get("cause").is_none()));
}

/// Findings as `agentguard: SEVERITY what` lines (live) or grouped under `SEVERITY (n)`
/// (diff's text report): (severity, what, the tool-call line under it).
fn findings(text: &str, live: bool) -> std::collections::BTreeSet<(String, String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = std::collections::BTreeSet::new();
    let mut group = String::new();
    for (i, l) in lines.iter().enumerate() {
        let found = if live {
            l.strip_prefix("agentguard: ").and_then(|rest| {
                let (sev, what) = rest.split_once(' ')?;
                ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
                    .contains(&sev)
                    .then(|| (sev.to_string(), what.to_string()))
            })
        } else {
            if let Some((sev, _)) = l.split_once(" (") {
                if ["CRITICAL", "HIGH", "MEDIUM", "LOW"].contains(&sev) {
                    group = sev.to_string();
                }
            }
            l.strip_prefix("  ")
                .filter(|w| !w.starts_with(' ') && !group.is_empty())
                .map(|w| (group.clone(), w.to_string()))
        };
        if let Some((sev, what)) = found {
            let cause = lines
                .get(i + 1)
                .and_then(|n| n.strip_prefix("        <- tool call "))
                .unwrap_or("")
                .to_string();
            out.insert((sev, what, cause));
        }
    }
    out
}

/// The same run judged live (record --baseline) and replayed from its event log (diff):
/// the same findings, each with the same tool call behind it. Real agent, real model
/// traffic, a baseline learned from a benign run.
#[test]
fn a_replayed_event_log_gives_the_live_runs_findings_and_causes() {
    let d = scratch("llm-replay");
    let base = d.join("base.toml");
    let log = d.join("attack.jsonl");
    let benign = example_with(
        &d.join("state"),
        1,
        None,
        &format!("record -q -o {}", base.display()),
        &[],
    );
    assert_eq!(benign["exit"], 0, "{benign}");
    let (r, live) = example_and_stderr(
        &d.join("state"),
        1,
        Some("exfil_credentials"),
        &format!(
            "record -o /dev/null --events {} --baseline {} --fail-on never",
            log.display(),
            base.display()
        ),
        &[],
    );
    assert_eq!(r["exfiltrated"], true, "{r}");
    let out = Command::new(BIN)
        .args(["diff", "--fail-on", "never"])
        .arg(&base)
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed = findings(&String::from_utf8_lossy(&out.stdout), false);
    let live = findings(&live, true);
    assert_eq!(live, replayed, "live findings against diff's replay");
    // The attack's read of the credentials, tied to the read_file call that asked for it,
    // and its post to the sink, to http_post.
    assert!(
        live.iter()
            .any(|(_, what, cause)| what.contains(".aws/credentials")
                && cause.starts_with("read_file(")),
        "{live:#?}"
    );
    assert!(
        live.iter()
            .any(|(_, what, cause)| what.contains("127.0.0.66:18082")
                && cause.starts_with("http_post(")),
        "{live:#?}"
    );
}

/// A model on loopback answering each chat call with a tool call named for what the
/// client said it sent with, then closing the connection.
fn chat_model() -> u16 {
    use std::io::{BufRead, BufReader, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { return };
            let mut w = c.try_clone().unwrap();
            let mut r = BufReader::new(c);
            let mut len = 0;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            if r.read_exact(&mut body).is_err() {
                continue;
            }
            let req: Value = serde_json::from_slice(&body).unwrap();
            let how = req["messages"][0]["content"].as_str().unwrap().to_string();
            let answer = serde_json::json!({
                "id": "chatcmpl-1", "object": "chat.completion", "model": "scripted",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                    "role": "assistant", "content": null,
                    "tool_calls": [{"id": format!("call_{how}"), "type": "function",
                        "function": {"name": format!("via_{how}"), "arguments": "{\"path\": \"/etc/hostname\"}"}}]}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
            })
            .to_string();
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    port
}

/// The client: one chat call per way of moving a socket's bytes, the request split
/// across buffers where the call takes several, the answer read the same way.
const SYSCALL_CLIENT: &str = r#"
import json, os, socket, sys
port = int(sys.argv[1])
for how in sys.argv[2:]:
    body = json.dumps({"model": "scripted", "messages": [{"role": "user", "content": how}],
                       "tools": [{"type": "function", "function": {"name": "via_" + how, "parameters": {}}}]}).encode()
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (port, len(body))
    s = socket.create_connection(("127.0.0.1", port))
    fd = s.fileno()
    if how == "writev":
        # An empty buffer, then the method split: the request line is still found.
        os.writev(fd, [b"", head[:2], head[2:], body])
    elif how == "sendmsg":
        s.sendmsg([head, body[:5], body[5:]])
    elif how == "write":
        os.write(fd, head + body)
    elif how == "sendmmsg":
        # One message through sendmmsg, which agentguard does not read (README).
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        data = head + body
        buf = ctypes.create_string_buffer(data, len(data))
        class iovec(ctypes.Structure):
            _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
        class msghdr(ctypes.Structure):
            _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(iovec)),
                        ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t), ("flags", ctypes.c_int)]
        class mmsghdr(ctypes.Structure):
            _fields_ = [("hdr", msghdr), ("len", ctypes.c_uint)]
        v = iovec(ctypes.cast(buf, ctypes.c_void_p), len(data))
        m = mmsghdr(msghdr(None, 0, ctypes.pointer(v), 1, None, 0, 0), 0)
        assert libc.sendmmsg(fd, ctypes.byref(m), 1, 0) == 1, ctypes.get_errno()
        assert m.len == len(data)
    elif how == "pwritev2":
        # pwritev2 at offset -1 (the flag makes Python call it) is writev.
        os.pwritev(fd, [head, body], -1, os.RWF_DSYNC)
    got = b""
    while True:
        if how in ("writev", "pwritev2"):
            a, b = bytearray(16), bytearray(4096)
            n = os.readv(fd, [a, b])
            chunk = bytes(a + b)[:n]
        elif how == "sendmsg":
            a, b = bytearray(16), bytearray(4096)
            n, _, _, _ = s.recvmsg_into([a, b])
            chunk = bytes(a + b)[:n]
        else:
            chunk = os.read(fd, 4096)
        if not chunk:
            break
        got += chunk
    assert b'"via_' + how.encode() in got, got
    s.close()
print("done")
"#;

#[test]
fn llm_calls_sent_with_write_writev_and_sendmsg_are_seen() {
    let d = scratch("llm-syscalls");
    let port = chat_model();
    let script = d.join("client.py");
    std::fs::write(&script, SYSCALL_CLIENT).unwrap();
    let hows = ["writev", "sendmsg", "write", "pwritev2"];
    let port_s = port.to_string();
    let mut cmd = vec![python(), script.to_str().unwrap(), &port_s];
    cmd.extend(hows);
    let r = record(&d, &["-q"], &cmd);
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    assert_eq!(String::from_utf8_lossy(&r.output.stdout), "done\n");
    // Each request as the kernel copied it, and each answer's tool call, parsed.
    let reqs = r.kind("llm.request");
    assert_eq!(reqs.len(), hows.len(), "{reqs:#?}");
    assert!(reqs
        .iter()
        .all(|q| q["transport"] == "tcp" && q["path"] == "/v1/chat/completions"));
    let mut names: Vec<&str> = r
        .kind("llm.tool_call")
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort();
    let mut want: Vec<String> = hows.iter().map(|h| format!("via_{h}")).collect();
    want.sort();
    assert_eq!(names, want);
}

#[test]
fn a_run_whose_llm_calls_went_unseen_fails_the_gate() {
    let d = scratch("llm-dark");
    let port = chat_model().to_string();
    let script = d.join("client.py");
    std::fs::write(&script, SYSCALL_CLIENT).unwrap();
    let script = script.to_str().unwrap();
    // Learned from two recorded runs, each of whose call was seen.
    let base = d.join("baseline.toml");
    learn(&base, &[python(), script, &port, "write"], 2);
    let text = std::fs::read_to_string(&base).unwrap();
    assert_eq!(text.matches("llm_calls = 1\n").count(), 2, "{text}");
    // The same agent, its request sent where agentguard does not read it: it made its
    // call (the model answered), and the recording saw none.
    let r = record(&d, &["-q"], &[python(), script, &port, "sendmmsg"]);
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    assert!(r.kind("llm.request").is_empty());
    assert!(r.profile.contains("llm_calls = 0"), "{}", r.profile);
    // From the event log and from the run's profile alike: the gate fails on it.
    for run in [d.join("run.jsonl"), d.join("run.toml")] {
        let (code, report, err) = diff_json(&base, &run, "medium");
        assert_eq!(code, Some(1), "{err}");
        let f = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == "llm-unseen")
            .unwrap_or_else(|| panic!("{report:#}"));
        assert_eq!(
            (f["severity"].as_str(), f["detail"].as_str()),
            (Some("medium"), Some("0 seen"))
        );
    }
    // A run like the baseline's passes that rule.
    let ok = d.join("ok");
    std::fs::create_dir_all(&ok).unwrap();
    let r = record(&ok, &["-q"], &[python(), script, &port, "write"]);
    assert_eq!(r.code(), Some(0), "{}", r.stderr());
    let (_, report, _) = diff_json(&base, &ok.join("run.jsonl"), "medium");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["rule"] != "llm-unseen"),
        "{report:#}"
    );
}
