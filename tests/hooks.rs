//! `agentguard hook`: an agent that reports its tool calls through its hooks, as Claude
//! Code's PreToolUse and PostToolUse do, here a script that runs the hook command the way
//! Claude Code does (`sh -c`, the hook's input on standard input). The reported call is in
//! the recording, marked reported, what the tool ran is tied to it, what ran after its end
//! is not, and a report sent from outside the tree is dropped.
use std::process::Command;

use crate::util::*;

/// The agent: reports a call, runs its tool, reports its end; given two fifos, it then says
/// where its recording listens, waits for the test to have tried a forged report and runs
/// something else.
const AGENT: &str = r#"
import json, os, subprocess, sys
ag, said, go = (sys.argv[1:4] + ["", ""])[:3]
def hook(event):
    report = {"hook_event_name": event, "tool_name": "Bash", "tool_use_id": "toolu_hook_1",
              "tool_input": {"command": "cat /etc/hostname"}}
    subprocess.run(["sh", "-c", ag + " hook"], input=json.dumps(report).encode(), check=True)
hook("PreToolUse")
subprocess.run(["cat", "/etc/hostname"], stdout=subprocess.DEVNULL, check=True)
hook("PostToolUse")
if os.environ.get("LOOKALIKE"):
    # A socket of the tree's own, named like the hook's: not what enforce admits.
    import socket
    name = "\0" + os.environ["AGENTGUARD_HOOK"] + "x"
    r = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    r.bind(name)
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"x", name)
        print("LOOKALIKE-SENT")
    except PermissionError:
        print("LOOKALIKE-DENIED")
if not said:
    sys.exit(0)
with open(said, "w") as f:
    f.write(os.environ.get("AGENTGUARD_HOOK", "") + "\n")
with open(go) as f:
    f.read()
subprocess.run(["cat", sys.argv[0]], stdout=subprocess.DEVNULL, check=True)
"#;

#[test]
fn a_tool_call_reported_by_the_agents_hook_ties_what_its_tool_did() {
    let d = scratch("hooks");
    let script = d.join("agent.py");
    std::fs::write(&script, AGENT).unwrap();
    let (said, go) = (fifo(&d, "said"), fifo(&d, "go"));
    let (prof, events) = (d.join("run.toml"), d.join("run.jsonl"));
    let child = Command::new(BIN)
        .args(["record", "-o"])
        .arg(&prof)
        .arg("--events")
        .arg(&events)
        .arg("--")
        .arg(python())
        .arg(&script)
        .arg(BIN)
        .arg(&said)
        .arg(&go)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let name = await_line(&said, 60);
    assert!(name.starts_with("agentguard-hook-"), "{name:?}");
    // A report from a process outside the tree, to the name it read.
    let forged = br#"{"event":"PreToolUse","id":"toolu_forged","name":"Bash","arguments":"{}"}"#;
    {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        std::os::unix::net::UnixDatagram::unbound()
            .unwrap()
            .send_to_addr(forged, &addr)
            .unwrap();
    }
    std::fs::write(&go, "go\n").unwrap();
    let run = read_outputs(child.wait_with_output().unwrap(), &prof, &events);
    assert_eq!(run.code(), Some(0), "{}", run.stderr());

    let calls = run.kind("llm.tool_call");
    let [call] = calls.as_slice() else {
        panic!("one reported call: {calls:#?}\n{}", run.stderr())
    };
    assert_eq!(call["id"], "toolu_hook_1");
    assert_eq!(call["name"], "Bash");
    assert_eq!(call["reported"], true);
    assert_eq!(call["api"], "hook");
    assert!(call["arguments"]
        .as_str()
        .unwrap()
        .contains("cat /etc/hostname"));
    // Reported as the agent's (python), not the hook's or its shell's.
    assert!(call["exe"].as_str().unwrap().contains("python"), "{call:#}");
    let cat = |path: &str| {
        run.kind("file")
            .into_iter()
            .find(|f| f["path"] == path && f["exe"] == "/usr/bin/cat")
            .unwrap_or_else(|| panic!("cat read {path}"))
            .clone()
    };
    assert_eq!(cat("/etc/hostname")["cause"]["call"], "toolu_hook_1");
    // After the call's end, the agent's next command (reading the script itself: a
    // brand-new root has no /etc/hosts) is no call's.
    let script = script.to_str().unwrap();
    assert!(cat(script).get("cause").is_none(), "{:#}", cat(script));
    // The forged report was dropped, and said.
    assert!(
        run.stderr()
            .contains("by processes outside the tree (or too many at once) were dropped"),
        "{}",
        run.stderr()
    );
    // A reported call teaches the profile no tool.
    assert!(!run.profile.contains("name = \"Bash\""), "{}", run.profile);
}

/// Under enforce, with the baseline learned from the agent's own recorded runs: its hooks
/// still reach the recording (the session admits its own hook socket, and nothing else of
/// agentguard's), nothing is denied, and the baseline never learned the socket's name,
/// which is new in every run.
#[test]
fn a_hooked_agent_runs_under_its_learned_baseline_and_its_hooks_still_report() {
    require_root();
    let d = scratch_outside_tmp("hooks-enforce");
    let script = d.join("agent.py");
    std::fs::write(&script, AGENT).unwrap();
    let cmd = [python(), script.to_str().unwrap(), BIN];
    let baseline = d.join("baseline.toml");
    learn(&baseline, &cmd, 2);
    let text = std::fs::read_to_string(&baseline).unwrap();
    assert!(!text.contains("agentguard-hook"), "{text}");
    let events = d.join("enforced.jsonl");
    let out = Command::new(BIN)
        .current_dir(&d)
        .args(["enforce", "--profile"])
        .arg(&baseline)
        .arg("--events")
        .arg(&events)
        .env("LOOKALIKE", "1")
        .arg("--")
        .args(cmd)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Only the hook socket's exact name is admitted: one named like it is the tree's.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "LOOKALIKE-DENIED\n",
        "{stderr}"
    );
    let events: Vec<serde_json::Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Nothing denied. Under Landlock, but for one thing Landlock cannot grant: the hook
    // (a Rust program) reads its own /proc/self/maps at start (glibc, for its main
    // thread's stack), which the baseline learned as /proc/*/maps, and a Landlock rule
    // reaches only the /proc entries there at the start, not a process's started later.
    let landlock = crate::host::bpf_lsm().is_err();
    let (lookalike, denials): (Vec<_>, Vec<_>) = events
        .iter()
        .filter(|e| e["kind"] == "deny")
        .filter(|e| !(landlock && e["object"] == "/proc/self/maps" && e["exe"] == BIN))
        .partition(|e| {
            e["object"]
                .as_str()
                .is_some_and(|o| o.contains("agentguard-hook-rec-") && o.ends_with('x'))
        });
    assert_eq!(lookalike.len(), 1, "{lookalike:#?}\n{stderr}");
    assert!(denials.is_empty(), "{denials:#?}\n{stderr}");
    // The hook's sends reached the recording: the call is there, and the tool's read
    // is tied to it.
    let call = events
        .iter()
        .find(|e| e["kind"] == "llm.tool_call")
        .unwrap_or_else(|| panic!("no reported call under enforce:\n{stderr}"));
    assert_eq!(call["reported"], true);
    let cat = events
        .iter()
        .find(|e| e["kind"] == "file" && e["path"] == "/etc/hostname" && e["exe"] == "/usr/bin/cat")
        .unwrap_or_else(|| panic!("cat's read:\n{stderr}"));
    assert_eq!(cat["cause"]["call"], "toolu_hook_1", "{cat:#}");
}
