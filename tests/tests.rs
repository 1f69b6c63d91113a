//! Integration tests: the real binary, the real sensor, real processes. They need root
//! (the sensor loads BPF) and assert on what the kernel reported.

/// Running agentguard and reading what it wrote.
mod util;

/// What this kernel can do, checked by the tests themselves.
mod host;

/// `agentguard record`: the process tree, execs, files, network, flagged kinds, exit codes.
mod record;

/// `agentguard record --pid`: attaching to a running tree.
mod attach;

/// `record --merge-into`, `merge`, `show`: baselines learned from real runs.
mod learn;

/// `allow`: findings of a recorded run made rules, asked on a terminal or chosen by flags;
/// `events` and the JSON of show and merge on the same recordings.
mod allow;

/// `diff` and `record --baseline`: findings and the CI gate on real recordings.
mod diff;

/// Bytes the kernel counted per file and per destination, learned and diffed.
mod volume;

/// The example LangChain agent (examples/agent): a baseline from benign seeds, held-out
/// seeds that pass, attacks that are caught.
mod example;

/// The user's loop with nothing hand-written: record, merge, enforce the result.
mod learned;

/// Each shipped include enforced on a real program that needs it.
mod includes;

/// `enforce` on this machine, whose kernel refuses LSM programs: it fails closed.
mod enforce;

/// Plain HTTP enforced by endpoint, from recorded runs, against a tree that splits,
/// pipelines and frames its requests to get one past.
mod endpoints;

/// `enforce --backend landlock`: Landlock for files, cgroup programs for connections.
mod landlock;

/// `doctor`: its table against what this machine does.
mod doctor;

/// The adversarial suite, record side (tests/adversary/adversary.c).
mod adversary;

/// The cgroup v2 mount, for cases that need one.
pub fn adversary_cgroup_root() -> std::path::PathBuf {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mi.lines()
        .find(|l| l.contains(" - cgroup2 "))
        .and_then(|l| l.split_whitespace().nth(4))
        .map(std::path::PathBuf::from)
        .expect("cgroup v2 is mounted")
}

/// The kernel's decisions against the matcher's, on generated profiles (in the VM).
mod kernel_agreement;

/// LLM traffic (TLS via uprobes, plain HTTP), tool calls, attribution and redaction, on the
/// example agent.
mod llm;

/// `--otlp`: the run as an OpenTelemetry trace, sent as it happens to a receiver that
/// decodes it with the official protobuf definitions.
mod otlp;

/// Claude Code and Codex from npm against a scripted model: their LLM calls, tool calls and
/// what each tool call did.
mod agents;

/// `agentguard hook`: tool calls an agent reports through its hooks, tied to what followed.
mod hooks;

/// DNS answers name connections; profiles and diff by name (a local DNS server).
mod dns;

/// `watch`: the terminal UI in a real terminal (tmux), on a real recording.
mod watch;

/// The conventions of a command-line tool: --version, completions, colour, conflicts.
mod cli;

/// The README's commands, run as a user runs them.
mod readme;
