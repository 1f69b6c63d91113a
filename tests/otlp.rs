use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::example::example_with;
use crate::util::*;

/// A receiver (tests/otlp/receiver.py, on the official protobuf definitions) writing what
/// it decoded into `dir`/spans.jsonl; it answers its first `unavailable` requests 503.
struct Receiver {
    child: std::process::Child,
    port: u16,
    file: std::path::PathBuf,
}

impl Receiver {
    fn start(dir: &Path, unavailable: u32) -> Receiver {
        let file = dir.join("spans.jsonl");
        let mut child = Command::new(venv_python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otlp/receiver.py"))
            .arg(&file)
            .arg(unavailable.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let port = port_line(&mut child, "the OTLP receiver");
        Receiver { child, port, file }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it received so far: its lines, each a span or a note.
    fn lines(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.file).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let errors: Vec<&Value> = lines.iter().filter(|l| l.get("error").is_some()).collect();
        assert!(errors.is_empty(), "the receiver refused: {errors:?}");
        lines
    }

    fn spans(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter_map(|l| l.get("span").cloned())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    let v = span["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["key"] == key))
        .map(|a| &a["value"])
        .unwrap_or(&Value::Null);
    // OTLP's JSON form: {"stringValue": ...}, {"intValue": "12"}, ...
    v.get("stringValue")
        .or(v.get("intValue"))
        .or(v.get("boolValue"))
        .or(v.get("arrayValue"))
        .unwrap_or(&Value::Null)
}

#[test]
fn a_run_reaches_the_receiver_while_it_runs_and_ends_as_one_trace() {
    require_root();
    let d = scratch("otlp-live");
    // Its first answer is 503: the batch comes again.
    let rx = Receiver::start(&d, 1);
    let go = fifo(&d, "go");
    let prof = d.join("run.toml");
    let script = format!("/bin/true; read x < {}; cat /etc/hostname", go.display());
    let run = Started::new(
        Command::new(BIN)
            .args(["record", "-o"])
            .arg(&prof)
            .args(["--otlp", &rx.url(), "--"])
            .args(sh(&script))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The tree waits on the FIFO until its first exec's span is in the receiver.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let live = loop {
        let spans = rx.spans();
        if let Some(s) = spans
            .iter()
            .find(|s| s["name"] == "exec" && attr(s, "agentguard.exec.path") == "/usr/bin/true")
        {
            break s.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no span of /bin/true arrived while the tree ran: {spans:#?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(
        rx.spans().iter().all(|s| s["name"] != "invoke_agent sh"),
        "the tree's span came before the tree ended"
    );
    send_line(&go, "go", 30);
    let out = run.wait_with_output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("OTLP export") && stderr.contains("HTTP 503; retrying"),
        "{stderr}"
    );
    let lines = rx.lines();
    assert_eq!(lines[0]["unavailable"], "/v1/traces");
    let spans = rx.spans();
    // Everything the summary says was delivered was received.
    let said = format!("wrote {}/v1/traces ({} spans)", rx.url(), spans.len());
    assert!(stderr.contains(&said), "{said:?} not in {stderr}");
    // One trace, the run's: its id is the profile's [[run]] id.
    let root = spans
        .iter()
        .find(|s| s["name"] == "invoke_agent sh")
        .expect("the tree's span");
    let profile = std::fs::read_to_string(&prof).unwrap();
    let id = attr(root, "agentguard.run").as_str().unwrap();
    assert!(profile.contains(&format!("id = \"{id}\"")), "{profile}");
    assert_eq!(root["traceId"], id.replace('-', ""));
    assert_eq!(root["parentSpanId"], "");
    assert_eq!(attr(root, "gen_ai.operation.name"), "invoke_agent");
    assert_eq!(attr(root, "agentguard.exit"), "0");
    assert_eq!(
        root["resource"]["attributes"][0]["value"]["stringValue"],
        "agentguard"
    );
    for s in &spans {
        assert_eq!(s["traceId"], root["traceId"], "{s:#}");
        if s != root {
            assert_eq!(s["parentSpanId"], root["spanId"], "{s:#}");
        }
    }
    // The kernel's report of the tree, as spans: every exec, with its process.
    let execs: Vec<&Value> = spans
        .iter()
        .filter(|s| s["name"] == "exec" && attr(s, "error.type").is_null())
        .collect();
    let paths: Vec<&str> = execs
        .iter()
        .map(|s| attr(s, "agentguard.exec.path").as_str().unwrap())
        .collect();
    assert!(paths.contains(&"/usr/bin/true"), "{paths:?}");
    assert!(paths.contains(&"/usr/bin/cat"), "{paths:?}");
    assert!(
        attr(&live, "process.pid")
            .as_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            > 1
    );
    // Content is off: no arguments.
    assert!(execs
        .iter()
        .all(|s| attr(s, "process.command_args").is_null()));
}

#[test]
fn an_agents_llm_calls_and_tool_calls_are_genai_spans_over_what_each_tool_did() {
    require_root();
    let d = scratch("otlp-agent");
    let rx = Receiver::start(&d, 0);
    let r = example_with(
        &d.join("state"),
        4,
        Some("exfil_credentials"),
        &format!("record -q -o /dev/null --otlp {}", rx.url()),
        &[],
    );
    assert_eq!(r["exfiltrated"], true, "{r}");
    let spans = rx.spans();
    let named = |prefix: &str| -> Vec<&Value> {
        spans
            .iter()
            .filter(|s| s["name"].as_str().unwrap().starts_with(prefix))
            .collect()
    };
    let root = named("invoke_agent")[0];
    // The model's calls: chat spans with the model and the tokens it counted.
    let chats = named("chat");
    assert!(chats.len() >= 2, "{spans:#?}");
    for c in &chats {
        assert_eq!(c["parentSpanId"], root["spanId"]);
        assert_eq!(c["kind"], "SPAN_KIND_CLIENT");
        assert_eq!(attr(c, "gen_ai.operation.name"), "chat");
        assert_eq!(attr(c, "gen_ai.provider.name"), "openai");
        assert_eq!(attr(c, "server.port"), "18081");
        assert!(!attr(c, "gen_ai.request.model").is_null(), "{c:#}");
        assert!(!attr(c, "gen_ai.usage.input_tokens").is_null(), "{c:#}");
    }
    // The tool calls, each under the tree's span.
    let tools = named("execute_tool");
    assert!(tools.len() >= 3, "{spans:#?}");
    for t in &tools {
        assert_eq!(t["parentSpanId"], root["spanId"]);
        assert_eq!(attr(t, "gen_ai.operation.name"), "execute_tool");
        assert!(!attr(t, "gen_ai.tool.call.id").is_null(), "{t:#}");
        assert!(
            attr(t, "gen_ai.tool.call.arguments").is_null(),
            "content is off: {t:#}"
        );
    }
    // What the kernel saw, under the tool call that did it: the credentials read under a
    // read_file call, the post to the sink under an http_post call.
    let parent_tool = |s: &Value| -> String {
        let p = tools
            .iter()
            .find(|t| t["spanId"] == s["parentSpanId"])
            .unwrap_or_else(|| panic!("no tool call over {s:#}"));
        attr(p, "gen_ai.tool.name").as_str().unwrap().to_string()
    };
    let cred = named("file")
        .into_iter()
        .find(|s| {
            attr(s, "file.path")
                .as_str()
                .unwrap()
                .ends_with("/.aws/credentials")
        })
        .expect("a span of the credentials read");
    assert_eq!(parent_tool(cred), "read_file");
    let sink = named("connect")
        .into_iter()
        .find(|s| attr(s, "network.peer.address") == "127.0.0.66")
        .expect("a span of the connection to the sink");
    assert_eq!(parent_tool(sink), "http_post");
    // The model's own connections are the tree's, not a tool's.
    let model_conns: Vec<&Value> = named("connect")
        .into_iter()
        .filter(|s| attr(s, "server.port") == "18081")
        .collect();
    assert!(!model_conns.is_empty());
    assert!(model_conns
        .iter()
        .all(|s| s["parentSpanId"] == root["spanId"]));
    // The planted secrets are in no span.
    let text = std::fs::read_to_string(&rx.file).unwrap();
    for secret in [
        "AKIAFAKEEXAMPLE00000",
        "fake/secret/for/the/agentguard/example",
    ] {
        assert!(!text.contains(secret), "{secret} reached the receiver");
    }
}

#[test]
fn spans_a_receiver_never_took_fail_the_run_and_say_how_many() {
    require_root();
    let d = scratch("otlp-down");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = |quiet: bool, exit: i32| {
        let out = Command::new(BIN)
            .arg("record")
            .args(quiet.then_some("-q"))
            .arg("-o")
            .arg(d.join("run.toml"))
            .args(["--otlp", &format!("http://127.0.0.1:{port}"), "--"])
            .args(sh(&format!("exit {exit}")))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let said = format!("spans were not delivered to http://127.0.0.1:{port}/v1/traces");
    let (code, stderr) = run(true, 0);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("failed") && stderr.contains("retrying"),
        "{stderr}"
    );
    assert!(stderr.contains(&said), "{stderr}");
    // The run's own outputs are still written.
    assert!(std::fs::read_to_string(d.join("run.toml"))
        .unwrap()
        .contains("[[run]]"));
    // The command's own failure comes first, and the summary is there, with the loss.
    let (code, stderr) = run(false, 7);
    assert_eq!(code, Some(7), "{stderr}");
    assert!(stderr.contains("(exit 7,"), "{stderr}");
    assert!(
        stderr.contains("  warning: OTLP export: ") && stderr.contains(&said),
        "{stderr}"
    );
}
