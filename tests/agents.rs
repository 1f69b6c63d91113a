//! The agents people run, from npm at pinned versions, each against a scripted local model
//! (tests/agents/model.py): what agentguard records of their LLM calls, their tool calls and
//! what each tool call did in the kernel.
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::util::*;

/// Pinned: a new release changes the tools, the endpoints and the TLS stack under test.
/// Claude Code's native executable, the package its npm wrapper's postinstall copies it
/// from (that wrapper wants a newer Node.js than Debian's to install).
const CLAUDE_CODE: &str = "@anthropic-ai/claude-code-linux-x64@2.1.332";
const CODEX: &str = "@openai/codex@0.171.0";
/// Claude Code refuses to skip its permission prompts as root: it runs as nobody (see
/// `claude_user`).
const NOBODY: u32 = 65534;

/// The npm prefix holding both agents (about 800 MB: each ships a native executable).
fn agents() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| npm_prefix(&[CLAUDE_CODE, CODEX], "node_modules/.bin/codex"))
}

/// The scripted model, started; its port is the first line it prints, once it listens.
struct Model {
    port: u16,
    _child: Started,
}

fn model(command: &str, tls: Option<&(PathBuf, PathBuf, PathBuf)>) -> Model {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agents/model.py");
    let mut child = Command::new(python());
    child.arg(script).arg(command);
    if let Some((_, cert, key)) = tls {
        child.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
    }
    let mut child = child
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let port = port_line(&mut child, "the model");
    Model {
        port,
        _child: Started::new(child),
    }
}

/// A service on loopback, not the model (a connection to the model's address is the agent's
/// own, never a tool's), answering every request with 204; its port.
fn service() -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let mut buf = [0; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        }
    });
    port
}

/// What the model asks of the agent's shell tool: a file read, a file written and a
/// connection to `service`, each to be tied to the tool call.
fn command(service: u16) -> String {
    format!("cat /etc/hostname > hostname.txt && curl -s -o /dev/null http://127.0.0.1:{service}/tool-check")
}

/// What one recorded agent run must show: its LLM calls, the tool call with its arguments,
/// and the tool's exec, file and connection tied to that call.
/// `transport` is "tcp" or "tls" (read through the TLS probes).
fn check(
    run: &Run,
    (api, transport): (&str, &str),
    tool: &str,
    (model, service): (u16, u16),
    work: &Path,
) {
    let calls = run
        .kind("llm.request")
        .into_iter()
        .filter(|r| {
            r["api"] == api
                && r["host"] == format!("127.0.0.1:{model}")
                && r["transport"] == transport
                && r["stream"] == true
        })
        .count();
    assert!(
        calls >= 2,
        "{calls} streamed {api} calls over {transport} seen\n{}",
        run.stderr()
    );
    let call = run
        .kind("llm.tool_call")
        .into_iter()
        .find(|c| c["name"] == tool && c["arguments"].as_str().unwrap().contains("hostname.txt"))
        .unwrap_or_else(|| panic!("no {tool} call seen: {:#?}", run.kind("llm.tool_call")));
    let id = call["id"].as_str().unwrap();
    let cat = run
        .kind("exec")
        .into_iter()
        .find(|e| e["argv"] == serde_json::json!(["cat", "/etc/hostname"]))
        .expect("the tool's cat ran");
    assert_eq!(cat["cause"]["call"], id, "{cat:#}");
    let out = work.join("hostname.txt");
    let written = run
        .files(&out)
        .into_iter()
        .find(|f| f.get("error").is_none() && f["access"].to_string().contains("write"))
        .unwrap_or_else(|| panic!("{} was not written: {:#?}", out.display(), run.files(&out)));
    assert_eq!(written["cause"]["call"], id, "{written:#}");
    let conn = run
        .kind("net")
        .into_iter()
        .find(|n| n["port"] == service && n["exe"] == "/usr/bin/curl")
        .expect("the tool's curl connected");
    assert_eq!(conn["cause"]["call"], id, "{conn:#}");
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
}

/// A directory the agent's user owns: its HOME and its working directory.
fn owned(dir: &Path, name: &str, uid: u32) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    chown(&d, Some(uid), Some(uid)).unwrap();
    d
}

/// A CA and a leaf for 127.0.0.1 it signed, made for the run: rustls (Codex) takes no lone
/// self-signed certificate. Returns (CA, leaf, leaf's key).
fn certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let [ca, ca_key, leaf, key, csr, ext] = [
        "ca.pem", "ca.key", "leaf.pem", "leaf.key", "leaf.csr", "leaf.ext",
    ]
    .map(|f| dir.join(f));
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let p = |s: &PathBuf| s.to_str().unwrap().to_string();
    let steps: [Vec<String>; 3] = [
        ["req", "-x509"]
            .iter()
            .chain(&ec)
            .map(|s| s.to_string())
            .chain(
                [
                    "-keyout",
                    &p(&ca_key),
                    "-out",
                    &p(&ca),
                    "-days",
                    "2",
                    "-subj",
                    "/CN=agentguard test CA",
                ]
                .map(String::from),
            )
            .collect(),
        ["req"]
            .iter()
            .chain(&ec)
            .map(|s| s.to_string())
            .chain(
                [
                    "-keyout",
                    &p(&key),
                    "-out",
                    &p(&csr),
                    "-subj",
                    "/CN=127.0.0.1",
                ]
                .map(String::from),
            )
            .collect(),
        [
            "x509",
            "-req",
            "-in",
            &p(&csr),
            "-CA",
            &p(&ca),
            "-CAkey",
            &p(&ca_key),
            "-CAcreateserial",
            "-out",
            &p(&leaf),
            "-days",
            "2",
            "-extfile",
            &p(&ext),
        ]
        .map(String::from)
        .to_vec(),
    ];
    for args in steps {
        let out = Command::new("openssl").args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (ca, leaf, key)
}

/// The model, over HTTP, or over HTTPS with `certs`' leaf; its base URL.
fn serve(command: &str, tls: Option<&(PathBuf, PathBuf, PathBuf)>) -> (Model, String) {
    let m = model(command, tls);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://127.0.0.1:{}", m.port);
    (m, url)
}

/// Who Claude Code runs as in `d`: nobody (`record --user nobody`), or, on a machine where no
/// other user can reach `d` (a root directory made with mktemp, mode 0700, as a brand-new
/// machine's build root is), root with IS_SANDBOX=1, which Claude Code takes as leave for
/// root to skip its permission prompts (in a container). The uid, and record's arguments.
fn claude_user(d: &Path) -> (u32, &'static [&'static str]) {
    match unreachable_by_others(d) {
        None => (NOBODY, &["--user", "nobody"]),
        Some(why) => {
            eprintln!("Claude Code runs as root with IS_SANDBOX=1: {why}");
            (0, &[])
        }
    }
}

/// Claude Code in `d` (its HOME and working directory there, owned by `uid`), its model at
/// `url`, trusting `ca`: the command to record and its working directory.
fn claude(d: &Path, uid: u32, url: &str, ca: Option<&Path>) -> (Vec<String>, PathBuf) {
    chown(d, Some(uid), Some(uid)).unwrap();
    let (home, work) = (owned(d, "home", uid), owned(d, "work", uid));
    let exe = agents().join("node_modules/@anthropic-ai/claude-code-linux-x64/claude");
    let mut cmd = vec![
        // nobody's own HOME (/nonexistent) is not writable: one of the test's.
        "env".to_string(),
        format!("--chdir={}", work.display()),
        format!("HOME={}", home.display()),
        format!("ANTHROPIC_BASE_URL={url}"),
        "ANTHROPIC_API_KEY=sk-ant-scripted".into(),
        // No calls home (telemetry, updates): the scripted model is all it talks to.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1".into(),
        "DISABLE_AUTOUPDATER=1".into(),
    ];
    if let Some(ca) = ca {
        cmd.push(format!("NODE_EXTRA_CA_CERTS={}", ca.display()));
    }
    if uid == 0 {
        cmd.push("IS_SANDBOX=1".into());
    }
    cmd.extend([
        exe.display().to_string(),
        "-p".into(),
        "--dangerously-skip-permissions".into(),
        "write this machine's name to hostname.txt".into(),
    ]);
    (cmd, work)
}

/// Codex in `d`, the same way. Its home must not lie below /tmp: it refuses its helper
/// executables there (scratch_outside_tmp).
fn codex(d: &Path, url: &str, ca: Option<&Path>) -> (Vec<String>, PathBuf) {
    let home = d.join("codex-home");
    let work = d.join("work");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "model = \"scripted\"\nmodel_provider = \"local\"\n\n[model_providers.local]\nname = \"local\"\nbase_url = \"{url}/v1\"\nwire_api = \"responses\"\nenv_key = \"OPENAI_API_KEY\"\n"
        ),
    )
    .unwrap();
    let mut cmd = vec![
        "env".to_string(),
        format!("--chdir={}", work.display()),
        format!("CODEX_HOME={}", home.display()),
        "OPENAI_API_KEY=sk-scripted".into(),
    ];
    if let Some(ca) = ca {
        // rustls reads the first; Codex's own client the second.
        cmd.push(format!("SSL_CERT_FILE={}", ca.display()));
        cmd.push(format!("CODEX_CA_CERTIFICATE={}", ca.display()));
    }
    cmd.extend([
        agents()
            .join("node_modules/.bin/codex")
            .display()
            .to_string(),
        "exec".into(),
        "--skip-git-repo-check".into(),
        // Its own sandbox (bubblewrap) is not what is under test here.
        "--dangerously-bypass-approvals-and-sandbox".into(),
        "write this machine's name to hostname.txt".into(),
    ]);
    (cmd, work)
}

#[test]
fn claude_code_over_http_its_calls_and_what_its_bash_tool_did() {
    let d = scratch_outside_tmp("claude-http");
    let (uid, user) = claude_user(&d);
    let s = service();
    let (m, url) = serve(&command(s), None);
    let (cmd, work) = claude(&d, uid, &url, None);
    // Its hooks report each tool call to the recording too (`agentguard hook`): a call its
    // traffic showed is said once, and the hook does not get in the tool's way.
    let hook = format!("{BIN} hook");
    let entry =
        serde_json::json!([{"matcher": "*", "hooks": [{"type": "command", "command": hook}]}]);
    let settings = serde_json::json!({"hooks": {"PreToolUse": entry, "PostToolUse": entry}});
    let dir = owned(&d.join("home"), ".claude", uid);
    std::fs::write(dir.join("settings.json"), settings.to_string()).unwrap();
    let run = record(&d, user, &strs(&cmd));
    check(
        &run,
        ("anthropic.messages", "tcp"),
        "Bash",
        (m.port, s),
        &work,
    );
    let mut ids: Vec<&str> = run
        .kind("llm.tool_call")
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let all = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        all,
        "a call said twice: {:#?}",
        run.kind("llm.tool_call")
    );
    // Each hook reached the recording's socket (its reports are the calls above, said once).
    let reached = run
        .kind("net")
        .into_iter()
        .filter(|n| {
            n["addr"]
                .as_str()
                .unwrap_or("")
                .starts_with("@agentguard-hook-rec-")
                && n.get("error").is_none()
        })
        .count();
    assert!(reached >= 2, "{reached} hooks reached the recording");
    let hooks = run
        .kind("exec")
        .into_iter()
        .filter(|e| e["path"] == BIN && e["argv"].to_string().contains("\"hook\""))
        .count();
    assert!(hooks >= 2, "{hooks} hooks ran");
}

/// Claude Code is a Bun executable with BoringSSL linked in and no symbols: the probes go on
/// its SSL_write and SSL_read, found by what their code is (a known build here).
#[test]
fn claude_code_over_https_its_calls_read_through_boringssl_linked_in() {
    let d = scratch_outside_tmp("claude-https");
    let (uid, user) = claude_user(&d);
    let s = service();
    let tls = certs(&d);
    let (m, url) = serve(&command(s), Some(&tls));
    let (cmd, work) = claude(&d, uid, &url, Some(&tls.0));
    let run = record(&d, user, &strs(&cmd));
    check(
        &run,
        ("anthropic.messages", "tls"),
        "Bash",
        (m.port, s),
        &work,
    );
    let probed = run
        .kind("tls")
        .into_iter()
        .find(|t| t["status"] == "covered" && t["library"].as_str().unwrap().ends_with("/claude"))
        .expect("the probes went on claude itself");
    assert!(
        probed["detail"]
            .as_str()
            .unwrap()
            .contains("BoringSSL linked in"),
        "{probed:#}"
    );
    assert!(!run.stderr().contains("warning:"), "{}", run.stderr());
}

#[test]
fn codex_over_http_its_calls_and_what_its_shell_tool_did() {
    let d = scratch_outside_tmp("codex-http");
    let s = service();
    let (m, url) = serve(&command(s), None);
    let (cmd, work) = codex(&d, &url, None);
    let run = record(&d, &[], &strs(&cmd));
    check(
        &run,
        ("openai.responses", "tcp"),
        "exec_command",
        (m.port, s),
        &work,
    );
}

/// Codex is a static Rust executable whose TLS is rustls on AWS-LC, with no symbols: the
/// probes go on the AEAD's seal and open, found by what their code is, and the TLS 1.3
/// records they read are tied to their sockets. A baseline learned from its runs over HTTP
/// then sees its HTTPS run's calls: no `llm-unseen`.
#[test]
fn codex_over_https_its_calls_read_through_the_aead_linked_in() {
    let d = scratch_outside_tmp("codex-https");
    let s = service();
    let (_m, url) = serve(&command(s), None);
    let (cmd, _) = codex(&d, &url, None);
    let base = d.join("baseline.toml");
    learn(&base, &strs(&cmd), 2);
    let text = std::fs::read_to_string(&base).unwrap();
    assert_eq!(text.matches("llm_calls = 2\n").count(), 2, "{text}");

    let tls = certs(&d);
    let (m, url) = serve(&command(s), Some(&tls));
    let (cmd, work) = codex(&d, &url, Some(&tls.0));
    let exe = "x86_64-unknown-linux-musl/bin/codex";

    // With nothing kept from an earlier search, the probes go on once the search at its
    // exec ends, which may be after Codex began speaking: then that is said, never passed
    // over in silence. And what the search found is kept.
    let fresh = d.join("fresh-cache.toml");
    let first = record_with_cache(&d, &fresh, &cmd);
    let late = first
        .stderr()
        .lines()
        .any(|l| l.contains("warning:") && l.contains("began speaking TLS before the probes"));
    let seen = first.kind("llm.request").len();
    assert!(
        late || seen >= 2,
        "{seen} calls seen, no warning:\n{}",
        first.stderr()
    );
    let kept = std::fs::read_to_string(&fresh).unwrap();
    assert!(kept.contains("library = \"aead\""), "{kept}");

    let run = record(&d, &[], &strs(&cmd));
    check(
        &run,
        ("openai.responses", "tls"),
        "exec_command",
        (m.port, s),
        &work,
    );
    let probed = probed_on(&run, exe);
    assert!(
        probed.contains("EVP_AEAD_CTX_seal, EVP_AEAD_CTX_open"),
        "{probed}"
    );
    // Found by the runs before: kept in the cache, which the code confirmed.
    assert!(probed.contains("earlier run"), "{probed}");
    // A cache that names other offsets (the tree can write it) is not taken: the search
    // runs again.
    let kept = std::fs::read_to_string(&fresh).unwrap();
    let forged = kept
        .lines()
        .map(|l| match l.strip_prefix("write = ") {
            Some(n) => format!("write = {}", n.parse::<u64>().unwrap() + 16),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&fresh, forged).unwrap();
    let again = record_with_cache(&d, &fresh, &cmd);
    let probed = probed_on(&again, exe);
    assert!(probed.contains("found by its signature"), "{probed}");
    assert!(
        !run.stderr()
            .lines()
            .any(|l| l.contains("warning:") && l.contains(exe)),
        "{}",
        run.stderr()
    );
    assert!(!run.profile.contains("TLS linked in"), "{}", run.profile);
    let (_, report, err) = diff_json(&base, &d.join("run.jsonl"), "medium");
    assert!(
        !report["findings"]
            .as_array()
            .unwrap_or_else(|| panic!("{err}"))
            .iter()
            .any(|f| f["rule"] == "llm-unseen"),
        "{report:#}"
    );
}

/// `record` of `cmd` keeping what the TLS search finds in `cache`, its outputs in `d`.
fn record_with_cache(d: &Path, cache: &Path, cmd: &[String]) -> Run {
    let (prof, events) = (d.join("cached.toml"), d.join("cached.jsonl"));
    let out = Command::new(BIN)
        .env("AGENTGUARD_TLS_CACHE", cache)
        .args(["record", "-o"])
        .arg(&prof)
        .arg("--events")
        .arg(&events)
        .arg("--")
        .args(cmd)
        .output()
        .unwrap();
    read_outputs(out, &prof, &events)
}

/// How the TLS probes went on the executable ending in `exe`, as the run says.
fn probed_on(run: &Run, exe: &str) -> String {
    run.kind("tls")
        .into_iter()
        .find(|t| t["status"] == "covered" && t["library"].as_str().unwrap().ends_with(exe))
        .unwrap_or_else(|| panic!("the probes went on {exe}: {:#?}", run.kind("tls")))["detail"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `doctor --tls` on Claude Code: the table's offsets for this build, and the signature
/// searched anyway finds the same (the table is checked against the code it names).
#[test]
fn doctor_finds_boringssl_in_claude_code_where_the_table_says() {
    let exe = agents().join("node_modules/@anthropic-ai/claude-code-linux-x64/claude");
    let out = Command::new(BIN)
        .args(["doctor", "--tls"])
        .arg(&exe)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("SSL_write at 0x3330300, SSL_read at 0x33304b0"),
        "{text}"
    );
    assert!(
        text.contains("a known build: @anthropic-ai/claude-code-linux-x64@2.1.332"),
        "{text}"
    );
    assert!(text.contains("library = \"boringssl\""), "{text}");
    assert!(
        text.contains("write = 0x3330300\nread = 0x33304b0"),
        "{text}"
    );
    // A file without TLS functions says so and fails.
    let out = Command::new(BIN)
        .args(["doctor", "--tls", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no TLS functions to probe"));
}
