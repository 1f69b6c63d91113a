//! The command line: clap definitions, from which the man pages are generated too.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::diff::rules;

pub use crate::colour::ColorWhen;
pub use crate::diff::{report::DiffFormat, FailOn};

#[derive(Debug, Parser)]
#[command(
    name = "agentguard",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("AGENTGUARD_COMMIT"), ")"),
    long_version = concat!(
        env!("CARGO_PKG_VERSION"),
        " (commit ",
        env!("AGENTGUARD_COMMIT"),
        ")\nbuilt in: record, diff, watch; enforce with BPF LSM and with Landlock and cgroup programs; \
LLM visibility (OpenSSL-ABI libssl uprobes, plain HTTP); no optional features\n\
what works on this host: agentguard doctor"
    ),
    about = "Learn, review, diff and enforce what an AI agent's process tree does, with eBPF",
    long_about = "agentguard watches one agent's process tree with eBPF: every exec, file, \
connection, DNS name and risky kernel operation of the tree, from its first instruction to its \
last process. It records what the tree did as a TOML profile and a JSONL event stream.\n\n\
Loading the sensor needs root (CAP_BPF and CAP_PERFMON) and a kernel with BTF.\n\n\
Environment: AGENTGUARD_TLS_CACHE, the file where the TLS functions a search found in an \
executable are kept for the next run (default: $XDG_CACHE_HOME/agentguard/tls.toml, else \
~/.cache/agentguard/tls.toml; empty: nothing is kept).\n\n\
Exit status: each command's page says; 2 on a usage error."
)]
pub struct Cli {
    /// Colour in agentguard's own output: auto (on a terminal, unless NO_COLOR is set),
    /// always or never
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record what a command (or a running process) and all its descendants do
    #[command(
        long_about = "Starts COMMAND, or attaches to --pid and its existing descendants, and follows every \
process of that tree until the tree ends (or Ctrl-C with --pid). Writes the run as a profile (-o, or \
standard output) and, with --events, every event as JSON lines. A summary goes to standard error.\n\n\
Exit status: the command's own (128+N if it was killed by signal N); 127 if it could not be started; \
130 when a --pid recording is interrupted; with --baseline, when the command succeeded: 1 when the \
gate (--fail-on) failed, 2 when it could not judge the run (records lost); 2 when agentguard itself fails \
(before the command starts when an output cannot be written or an input does not parse).",
        after_help = "Examples:\n  sudo agentguard record -o run.toml -- python3 agent.py --task \"...\"\n  \
sudo agentguard record -o run.toml --events run.jsonl --pid 4242"
    )]
    Record(RecordArgs),
    /// A live terminal UI of a tree's processes, events, findings and denials
    #[command(
        long_about = "Runs COMMAND (or watches --pid and its descendants, or replays a kept event log) in a \
terminal UI: the process tree with each process running or exited, the event stream with filters by text and \
by process, counters per kind and of lost events, findings against --baseline highlighted by severity, \
denials standing out. Keys: q quit, ? help, / filter (text, or a severity: /critical), F findings view \
(each press raises the lowest severity shown), tab switch pane, arrows or j/k move, PgUp/PgDn, g/G or \
Home/End first and last, enter select, p pause, esc clear. The command's output goes to --output-log. When \
the tree ends the UI stays until q. The same view is available while recording or enforcing: record --tui, \
enforce --tui. watch has no gate.\n\n\
Exit status: the command's own, as record's; 0 after a replay; 2 without a terminal (standard input and \
output must be one) or when agentguard fails.",
        after_help = "Examples:\n  sudo agentguard watch -- python agent.py\n  sudo agentguard watch --pid 4242 --baseline baseline.toml\n  agentguard watch --replay run.jsonl"
    )]
    Watch(WatchArgs),
    /// Merge recorded runs and baselines into one baseline that generalises
    #[command(
        long_about = "Merges profiles (recorded runs or baselines) into one: the union of what they saw, \
each entry counting the runs it was seen in, generalised from that evidence (random names become \
patterns, directories whose files vary across runs collapse). Order does not matter. Hand-written \
rules and includes are kept as they are. A run that two inputs both hold is counted once; inputs that \
share some runs but not all are refused. Writes to -o, or standard output.\n\n\
Exit status: 0 when the baseline was written, 2 on error (an input that does not parse, inputs that share \
some runs but not all).",
        after_help = "Example:\n  agentguard merge runs/*.toml -o baseline.toml"
    )]
    Merge(MergeArgs),
    /// Enforce a profile in the kernel (BPF LSM, or Landlock where it is off): what it does not allow fails
    #[command(
        long_about = "Runs COMMAND (or watches --pid and its descendants) under a profile enforced by BPF LSM \
programs, or, where BPF LSM is unavailable, by Landlock with cgroup programs and a seccomp filter (--backend \
auto, the default, says which before the start): opens of files by access, executions (of the resolved file), outbound connections and unconnected \
datagrams (IPv4, IPv6; unix sockets by the socket the kernel reaches, its bound name) that the profile does \
not allow fail with EPERM; ptrace of processes \
outside the tree, kernel module loads, bpf() and mounts are denied. Protected paths are denied unless a \
hand-written rule names them. Plain HTTP/1.x requests are checked by endpoint (under either backend): \
a request whose service, method and path template the profile's [[http]] entries do not cover, rated as diff \
rates it, fails with EACCES at the send that completes its header block when --deny-at denies its rating \
(split, pipelined and chunked requests are followed; what cannot be followed is denied; TCP Fast Open is \
refused); HTTPS requests through a probed OpenSSL get the same check in SSL_write, where a denial kills the \
process (a uprobe cannot fail the call); other TLS is checked by destination only. Each denial is printed on standard error, written to \
--events, and counted in the summary; denials the kernel's report ring had no room for (a tree flooding it) are \
still refused, and counted as lost events and said in the summary. Everything record does, enforce does too (-o, --events, --baseline).\n\n\
Progressive enforcement: a baseline learned from a few runs never holds everything the next run does (another \
document, wc instead of grep). --deny-at LEVEL (default high) denies what `agentguard diff` would rate LEVEL or \
above, and admits what it rates below: the same rule table (agentguard diff --help, RULES) decides both. Before \
the start enforce prints, rule by rule, what it admits beyond the profile: at high, new files in directories \
the baseline reads and read-only core utilities (low), and reads outside the protected set, writes in the \
workspace and temp directories and the other programs of the system's program directories, as they are at \
the start (medium). Shells and interpreters, network programs, programs elsewhere, writes outside the \
workspace, new destinations (a new port on a known host too), protected paths and critical operations stay \
denied. An admitted operation is reported when it happens (ALLOWED (low) exec /usr/bin/head ... \
[exec-coreutil]) and listed in the summary: record the run with -o and merge it into the baseline to make it \
part of it. --deny-at new denies everything the profile does not cover.\n\n\
Fails closed: when the chosen backend cannot enforce (--backend bpf-lsm where the LSM programs cannot load: \
no bpf in the kernel's lsm= list, no BTF; Landlock missing too under auto), or the profile holds a pattern \
BPF LSM cannot check exactly, or lacks the ELF loader or #! interpreter that a program it names needs, the \
command is not started and the exit status is 2. The \
tree runs in a cgroup of its own; if agentguard dies, even by SIGKILL, a watchdog kills what is left of it; \
when enforce ends, so does the tree.\n\n\
Threat model: the tree may be root and attack agentguard itself. Its signals reach only the tree (BPF LSM \
task_kill and file_fcntl for SIGIO owners; Landlock's signal scope), and it may not change the limits or \
scheduling of other processes, so it can neither stop the watchdog nor kill agentguard, and the BPF \
links are handed to the watchdog, so a killed agentguard leaves the policy in force until the tree is dead. \
The tree runs in a session of its own, on a pseudo-terminal agentguard relays when it has a terminal, and \
TIOCSTI and TIOCLINUX are denied (through the 32-bit entry too); escape sequences that reach past the \
screen (the clipboard, files, answers typed back) are not relayed. Denied too, whatever the profile: clone3 into another cgroup, a fork the \
process map cannot track, device nodes, raw, packet and other socket families, netlink routing changes, \
binding port 53, security.* and trusted.* attributes, pivot_root, umount and paths through detached mounts. Under Landlock a seccomp filter denies what \
Landlock cannot say (clone3 fails with ENOSYS; TIOCSTI, socket families, device nodes, mounts, modules, \
bpf(), kexec, 32-bit system calls fail with EPERM), the tree runs without CAP_NET_ADMIN, and unix sockets \
are checked by the name passed; it needs Linux 6.12 for the signal scope. Outputs are \
opened before the tree starts and never written through a link; names are printed escaped. What is not \
covered is listed in the README (Threat model).\n\n\
Exit status: the command's own (128+N if it was killed by signal N); 127 if it could not be started; with \
--baseline, as record's; 2 when the profile cannot be enforced (the command is not started) or agentguard \
fails.",
        after_help = "Examples:\n  sudo agentguard enforce --profile baseline.toml -- python agent.py\n  sudo agentguard enforce --profile baseline.toml --deny-at new -- python agent.py\n  sudo agentguard enforce --profile baseline.toml --audit -- python agent.py"
    )]
    Enforce(EnforceArgs),
    /// Compare a run with a baseline: rank what is new, and gate CI on it
    #[command(
        long_about = "Reports what RUN (a profile, or an event log in JSONL, which also names the processes) \
did that BASELINE does not cover: new programs, files or wider access to them, destinations, DNS names and \
flagged kinds, each with a severity from the rule table (RULES, below) and a one-line \
reason; and, for information, what the baseline saw in every run and this run did not.\n\n\
Exit status: 1 when a finding at or above --fail-on exists, 0 when none, 2 on error. A gate never passes \
on missing data: an event log without its start or end record (a recording cut short), one whose end \
record counts other lines than it has, a recording that lost records, and a run profile \
without recorded runs are errors. A run profile keeps a sample of each pattern's literals: \
diff checks the sample and, when there were more, the pattern itself as a path, so a baseline \
without that pattern (or a wider one) reports it rather than passing; diff the event log for \
an exact answer.",
        after_help = "Examples:\n  agentguard diff baseline.toml run.toml\n  agentguard diff baseline.toml run.jsonl --format markdown >> $GITHUB_STEP_SUMMARY\n  agentguard diff baseline.toml run.toml --fail-on high",
        after_long_help = crate::diff::rules::help()
    )]
    Diff(DiffArgs),
    /// Admit what a run did that a baseline does not cover, as rules that say who, when and why
    #[command(
        long_about = "Makes findings of RUN against BASELINE (what `agentguard diff` reports) hand-written \
rules of BASELINE, each saying who admitted it, when, why (--reason), which finding and which run. \
On a terminal it asks, one finding at a time with its process chain and tool call (like aa-logprof): \
allow it, allow its directory (a file's or program's `dir/*`), deny (leave it out: it stays a finding, \
and enforce keeps denying it), skip, or quit and save. For CI, --all, --below LEVEL or --finding ID \
choose without asking (`--list` prints the IDs). A rule admits exactly the finding's behaviour: the \
path with its accesses, the program, the address and port, the name. The protected set still wins \
over an allowed rule, so allowing a directory never admits the credentials in it; a protected finding \
is admitted only with --protected, and its rule says so. The baseline is rewritten atomically (or \
written to -o); afterwards `diff BASELINE RUN` no longer reports what was allowed.\n\n\
Exit status: 0; 1 when a protected finding was chosen but not allowed (no --protected); 2 on error.",
        after_help = "Examples:\n  agentguard allow baseline.toml run.jsonl\n  agentguard allow --list baseline.toml run.jsonl\n  agentguard allow --below high --reason 'reviewed: report tooling' baseline.toml run.jsonl\n  agentguard allow --finding 3f2a9c1e5b7d0a48 --reason 'new docs dir' baseline.toml run.jsonl"
    )]
    Allow(AllowArgs),
    /// Print a kept event log one line per event, filtered by kind, process and finding
    #[command(
        long_about = "Prints an event log (record --events) one line per event: time, pid, program, kind \
and what it did (the command line of an exec, a file's path and accesses, a connection's address), \
with the LLM tool call behind it when one is. --kind keeps some kinds (exec, file, net, dns, flag, \
deny, tls, llm for every llm.* kind); --pid keeps a process and its descendants; --baseline marks \
each event with the most severe finding its behaviour is against that baseline, and --findings \
keeps only those (at --severity or above). A log cut short is printed, and said to be.\n\n\
Exit status: 0, or 2 when the log or the baseline cannot be read.",
        after_help = "Examples:\n  agentguard events run.jsonl\n  agentguard events --kind exec --kind net run.jsonl\n  agentguard events --baseline baseline.toml --findings --severity high run.jsonl"
    )]
    Events(EventsArgs),
    /// Print a summary of a profile for a person
    #[command(
        long_about = "Prints what a profile admits, grouped by kind: how many runs it learned from, \
which entries were seen in every run and which were rare, what each learned pattern replaced \
(how many literals, and a sample), what each include absorbed, protected paths seen during training (to review: they are admitted only by hand-written rules), and \
the includes and hand-written rules.\n\n\
Exit status: 0, or 2 when the profile cannot be read."
    )]
    Show(ShowArgs),
    /// Measure the sensor's overhead: syscall storms bare, in the tree and beside it
    #[command(
        long_about = "Runs the same syscall storms bare, inside a recorded tree and outside it while a \
recording is active, and prints the time of each storm's loop and the ratios. Also measures the start-up \
until the recorded command's first instruction and the events lost during the open storm. Needs root.\n\n\
Exit status: 0, or 2 when a measurement could not be made."
    )]
    Bench(BenchArgs),
    /// Check what this host supports, by doing it: which features work, which do not and why
    #[command(
        long_about = "Probes this host by doing, not by reading version numbers: loads, attaches and fires the smallest program of each BPF type agentguard uses (tracepoints, uprobes, fentry, BPF LSM, cgroup programs), looks for BTF, the active LSM list, cgroup v2, Landlock and its ABI, and the capabilities it runs with. Then says, for each feature (record, diff, watch, enforce with each backend, LLM visibility, egress by name), whether it works, is degraded (and what is lost) or is unavailable (why, and the fix).

Exit status: 0 when everything works, 1 when something is degraded or unavailable, 2 on error.",
        after_help = "Examples:\n  sudo agentguard doctor\n  sudo agentguard doctor --format json"
    )]
    Doctor(DoctorArgs),
    /// Pass a tool call an agent's hook reports to the recording it runs under
    #[command(
        long_about = "Run by an agent's tool hooks (Claude Code's PreToolUse and PostToolUse): reads the \
hook's input (JSON) on standard input and passes the tool call's id, name and input to the agentguard \
recording the agent runs under, named by AGENTGUARD_HOOK in its environment. The recording ties what \
the tree does to the call, and marks the call reported: the agent's word, never used to learn a tool \
or to relax a rule. Under enforce the recording admits its own hook socket, and no other of \
agentguard's. Not under a recording, it does nothing. Prints nothing on standard output.\n\n\
Exit status: always 0 (a failing hook would stop the agent's tool); failures are said on standard error.",
        after_help = "In Claude Code's settings (~/.claude/settings.json or the project's .claude/settings.json):\n  \
{\"hooks\": {\"PreToolUse\": [{\"matcher\": \"*\", \"hooks\": [{\"type\": \"command\", \"command\": \"agentguard hook\"}]}],\n  \
             \"PostToolUse\": [{\"matcher\": \"*\", \"hooks\": [{\"type\": \"command\", \"command\": \"agentguard hook\"}]}]}}"
    )]
    Hook,
    /// Print a shell completion script for agentguard
    #[command(
        long_about = "Prints the completion script for SHELL on standard output: subcommands, options and \
their values.\n\n\
Exit status: 0.",
        after_help = "Examples:\n  agentguard completions bash | sudo tee /usr/share/bash-completion/completions/agentguard\n  agentguard completions zsh > ~/.zfunc/_agentguard\n  agentguard completions fish > ~/.config/fish/completions/agentguard.fish"
    )]
    Completions(CompletionsArgs),
    /// Run one syscall storm and print its loop time in nanoseconds (used by bench)
    #[command(hide = true, name = "__storm")]
    Storm(StormArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Write the run's profile here (TOML); without it the profile goes to standard output
    /// (record) or nowhere (enforce, watch)
    #[arg(short = 'o', long, value_name = "FILE.toml")]
    pub output: Option<PathBuf>,
    /// Write every event here as it happens, one JSON object per line (flushed at least once
    /// a second); `-` streams them to standard output, and the command's output goes to
    /// --output-log. A slow reader (pipe, FIFO, socket) never holds the recording up: up to
    /// 64 MiB of lines wait for it; beyond that lines are dropped, counted, and the exit is 2
    #[arg(long, value_name = "FILE.jsonl")]
    pub events: Option<PathBuf>,
    /// Attach to this running process and its existing descendants instead of starting COMMAND
    #[arg(long, value_name = "PID", conflicts_with = "command")]
    pub pid: Option<u32>,
    /// Size of the kernel-to-user ring buffer in MiB (a power of two)
    #[arg(long, value_name = "MIB", default_value_t = crate::sensor::RING_MB)]
    pub ring_buffer_mb: u32,
    /// How many live processes the tree may have at once
    #[arg(long, value_name = "N", default_value_t = crate::sensor::MAX_PROCS)]
    pub max_procs: u32,
    /// Check the run live against this baseline: findings are printed as they happen
    #[arg(long, value_name = "BASELINE.toml")]
    pub baseline: Option<PathBuf>,
    /// With --baseline: exit 1 at the end when a finding at or above this level occurred
    /// (unless the command itself failed: its exit status comes first)
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = FailOn::New, requires = "baseline")]
    pub fail_on: FailOn,
    /// Also merge this run into a baseline, creating it if it does not exist
    #[arg(long, value_name = "BASELINE.toml")]
    pub merge_into: Option<PathBuf>,
    /// Show the run live in a terminal UI (see agentguard-watch); the command's output goes
    /// to --output
    #[arg(long)]
    pub tui: bool,
    /// Run as `agentguard watch`: no profile on standard output, no gate.
    #[arg(skip)]
    pub watch: bool,
    /// With --tui or --events -: where the command's standard output and error go
    #[arg(long, value_name = "FILE", default_value = "agentguard-output.log")]
    pub output_log: PathBuf,
    /// Print no summary
    #[arg(short, long)]
    pub quiet: bool,
    /// Run COMMAND as this user (a name or a uid), with its groups and with HOME, USER and
    /// LOGNAME from its passwd entry; ${HOME} in the profile is its home. For agents that
    /// refuse to run as root
    #[arg(long, value_name = "USER", conflicts_with = "pid")]
    pub user: Option<String>,
    #[command(flatten)]
    pub llm: LlmArgs,
    #[command(flatten)]
    pub otlp: OtlpArgs,
    /// The command to run and record, after `--`
    #[arg(last = true, value_name = "COMMAND", required_unless_present = "pid")]
    pub command: Vec<String>,
}

/// Where the run goes as an OpenTelemetry trace.
#[derive(Debug, Clone, Args)]
pub struct OtlpArgs {
    /// Send the run as it happens to this OTLP/HTTP receiver (an OpenTelemetry Collector),
    /// as a trace in the GenAI conventions: invoke_agent, chat and execute_tool spans, and
    /// what each tool call caused in the kernel as its child spans. A base URL gets
    /// /v1/traces; spans not delivered by the end are said, and make the exit 2 when the
    /// command and the gate succeeded
    #[arg(long, value_name = "URL")]
    pub otlp: Option<String>,
    /// With --otlp: put content in the spans too (exec arguments, tool-call arguments, and
    /// with --llm-bodies the LLM bodies), as the event log has it, secrets redacted
    #[arg(long, requires = "otlp")]
    pub otlp_content: bool,
}

/// What is kept of the tree's LLM traffic.
#[derive(Debug, Clone, Copy, Args)]
pub struct LlmArgs {
    /// Do not look at HTTP payloads: no TLS uprobes, no LLM events, no tool-call attribution;
    /// under enforce, HTTPS requests are then checked by destination only, not by endpoint
    #[arg(long)]
    pub no_llm: bool,
    /// Keep LLM request and response bodies in the events (secrets redacted, bounded by
    /// --llm-body-max); without it only what they say (model, tools, tool calls, usage)
    #[arg(long, conflicts_with = "no_llm")]
    pub llm_bodies: bool,
    /// With --llm-bodies: bytes kept of each body
    #[arg(long, value_name = "BYTES", default_value_t = 16384)]
    pub llm_body_max: usize,
}

#[derive(Debug, Args)]
pub struct EnforceArgs {
    /// The profile to enforce
    #[arg(long, value_name = "PROFILE.toml")]
    pub profile: PathBuf,
    /// Deny what `agentguard diff` would rate at LEVEL or above; admit, and report as
    /// ALLOWED, what the profile does not cover but rates below it. `new` denies all of it
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = DenyAt::High)]
    pub deny_at: DenyAt,
    /// Complain mode: report what would be denied, deny nothing
    #[arg(long)]
    pub audit: bool,
    /// What a denial does to the process: fail the call with EPERM, or kill the process
    #[arg(long, value_enum, value_name = "ACTION", default_value_t = OnDeny::Eperm)]
    pub on_deny: OnDeny,
    /// Which kernel mechanism enforces: BPF LSM (exact), Landlock with cgroup programs
    /// (hierarchies; where BPF LSM is unavailable), or auto: BPF LSM when it works here
    #[arg(long, value_enum, value_name = "BACKEND", default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// How many tasks (processes and threads) the tree may have at once: the pids.max of
    /// its cgroup, so a fork bomb's forks fail (EAGAIN)
    #[arg(long, value_name = "N", default_value_t = 16384, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tasks: u32,
    #[command(flatten)]
    pub run: RecordArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// BPF LSM when its programs load here, Landlock otherwise (said before the start)
    Auto,
    /// BPF LSM only: exit 2 where it is unavailable
    BpfLsm,
    /// Landlock for files and cgroup programs for connections
    Landlock,
}

/// From which rating `enforce` denies behaviour the profile does not cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DenyAt {
    /// everything the profile does not cover (strict)
    New,
    /// low and above: the same as `new`, every uncovered operation rates low or more
    Low,
    /// medium and above: admits new files in directories the baseline reads and read-only
    /// core utilities
    Medium,
    /// high and above: also admits reads outside the protected set, writes in the workspace
    /// and temp directories and the system's other programs
    High,
    /// critical only: admits everything but the protected set and critical operations
    Critical,
}

impl DenyAt {
    /// The lowest rating denied; None: everything uncovered is denied.
    pub fn level(self) -> Option<crate::diff::rules::Severity> {
        use crate::diff::rules::Severity;
        match self {
            DenyAt::New | DenyAt::Low => None,
            DenyAt::Medium => Some(Severity::Medium),
            DenyAt::High => Some(Severity::High),
            DenyAt::Critical => Some(Severity::Critical),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnDeny {
    /// the denied call fails with EPERM
    Eperm,
    /// the process is killed with SIGKILL
    Kill,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The baseline profile
    #[arg(value_name = "BASELINE.toml")]
    pub baseline: PathBuf,
    /// The run: a profile (.toml) or an event log (.jsonl)
    #[arg(value_name = "RUN")]
    pub run: PathBuf,
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Exit 1 when a finding at or above this level exists
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = FailOn::New)]
    pub fail_on: FailOn,
    /// What ${CWD} stands for (default: the run's launch directory, as recorded)
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// What ${HOME} stands for (default: the run's home, as recorded)
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Accept a run that stopped while its tree still ran (a --pid recording ended with
    /// Ctrl-C): the report covers what was recorded. Lost records still fail
    #[arg(long)]
    pub partial: bool,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The event log (.jsonl, from record --events)
    #[arg(value_name = "RUN.jsonl")]
    pub log: std::path::PathBuf,
    /// Only events of this kind (repeatable): exec, file, net, dns, flag, deny, tls, llm, ...
    #[arg(long, value_name = "KIND")]
    pub kind: Vec<String>,
    /// Only events of this process and its descendants
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Mark each event with the most severe finding it is against this baseline
    #[arg(long, value_name = "BASELINE.toml")]
    pub baseline: Option<PathBuf>,
    /// Only events that are findings against --baseline
    #[arg(long)]
    pub findings: bool,
    /// With --findings: only findings at this severity or above
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub severity: Option<rules::Severity>,
    /// No count of the events left out
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct AllowArgs {
    /// The baseline to add rules to
    #[arg(value_name = "BASELINE.toml")]
    pub baseline: PathBuf,
    /// The run: a profile (.toml) or an event log (.jsonl)
    #[arg(value_name = "RUN")]
    pub run: PathBuf,
    /// Allow every finding (protected ones only with --protected)
    #[arg(long, conflicts_with_all = ["below", "list"])]
    pub all: bool,
    /// Allow the findings rated below LEVEL
    #[arg(long, value_enum, value_name = "LEVEL", conflicts_with = "list")]
    pub below: Option<rules::Severity>,
    /// Allow this finding (repeatable); `--list` prints the IDs
    #[arg(long, value_name = "ID", conflicts_with = "list")]
    pub finding: Vec<String>,
    /// Why: kept with every rule written (asked for on a terminal when absent)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Admit protected paths too (credentials, start-up files, hooks, ...) when chosen
    #[arg(long)]
    pub protected: bool,
    /// Print the findings with their IDs and change nothing
    #[arg(long)]
    pub list: bool,
    /// Write the baseline with its new rules here instead of over BASELINE
    #[arg(short = 'o', long, value_name = "FILE.toml")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Replay this event log (JSONL, from record or enforce --events) instead of running
    #[arg(long, value_name = "FILE.jsonl", conflicts_with_all = ["pid", "command"])]
    pub replay: Option<PathBuf>,
    /// Highlight what this baseline does not cover, by severity
    #[arg(long, value_name = "BASELINE.toml")]
    pub baseline: Option<PathBuf>,
    /// Watch this running process and its descendants
    #[arg(long, value_name = "PID", conflicts_with = "command")]
    pub pid: Option<u32>,
    /// Also write every event here
    #[arg(long, value_name = "FILE.jsonl")]
    pub events: Option<PathBuf>,
    /// Where the command's standard output and error go (the terminal is the UI's)
    #[arg(long, value_name = "FILE", default_value = "agentguard-output.log")]
    pub output_log: PathBuf,
    /// Run COMMAND as this user (a name or a uid), with its groups and its HOME
    #[arg(long, value_name = "USER", conflicts_with_all = ["pid", "replay"])]
    pub user: Option<String>,
    #[command(flatten)]
    pub llm: LlmArgs,
    #[command(flatten)]
    pub otlp: OtlpArgs,
    /// The command to run and watch, after `--`
    #[arg(last = true, value_name = "COMMAND", required_unless_present_any = ["pid", "replay"])]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Profiles to merge, or event logs of recorded runs (.jsonl, from `record --events`)
    #[arg(required = true, value_name = "PROFILE.toml|RUN.jsonl")]
    pub inputs: Vec<PathBuf>,
    /// Write the baseline here; without it, to standard output
    #[arg(short = 'o', long, value_name = "FILE.toml")]
    pub output: Option<PathBuf>,
    /// Standard output as TOML (the baseline) or JSON (the baseline, field for field)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// --format of show, merge and bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// for a person (merge: the TOML profile)
    Text,
    /// for programs: {"version": 1, ...}, documented in the command's page
    Json,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The profile to describe, or the event log of a recorded run (.jsonl)
    #[arg(value_name = "PROFILE.toml|RUN.jsonl")]
    pub profile: PathBuf,
    /// How many literals to list under each learned pattern
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub examples: usize,
    /// text for a person; json: the profile field for field, as agentguard-profile(5)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// text: a table for a person; json: for programs
    #[arg(long, value_enum, default_value_t = DoctorFormat::Text)]
    pub format: DoctorFormat,
    /// Instead of the host: where the TLS probes would go in this executable or library
    /// (its SSL_write and SSL_read), and how they were found; repeatable
    #[arg(long, value_name = "FILE")]
    pub tls: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DoctorFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Scale every storm's iteration count by this factor (1.0 = the documented sizes)
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub scale: f64,
    /// Repeat each measurement this many times and keep the median
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub repeat: u32,
    /// Which figures: the sensor's storms, or the profile merge and matcher
    #[arg(long, value_enum, default_value_t = BenchWhat::Sensor)]
    pub what: BenchWhat,
    /// text for a person; json: the same figures for programs
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchWhat {
    /// syscall storms bare, in the tree and beside it (needs root)
    Sensor,
    /// merge 50 profiles of 5,000 entries; match 1M paths against 5,000 rules
    Profile,
    /// storms bare and under enforce with a 5,000-rule profile (needs BPF LSM: run it in the VM)
    Enforce,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Storm {
    /// open and close one file
    Open,
    /// fork and exec /bin/true
    Exec,
    /// connect to and accept from a loopback listener
    Connect,
}

#[derive(Debug, Args)]
pub struct StormArgs {
    #[arg(value_enum)]
    pub storm: Storm,
    pub iterations: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn record_needs_a_command_or_a_pid_not_both() {
        assert!(Cli::try_parse_from(["agentguard", "record"]).is_err());
        assert!(Cli::try_parse_from(["agentguard", "record", "--pid", "1", "--", "ls"]).is_err());
        let c = Cli::try_parse_from(["agentguard", "record", "-o", "x.toml", "--", "ls", "-l"])
            .unwrap();
        let Command::Record(r) = c.command else {
            panic!()
        };
        assert_eq!(r.command, vec!["ls", "-l"]);
    }
}
