//! The one vocabulary: every consumer (profile builder, diff, TUI, tests) reads this typed
//! stream, live from the sensor or replayed from a JSONL file.
use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

mod values;
pub use values::{Errno, Family, Timestamp};

/// One thing a process of the tree did, or something the sensor has to say about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Wall-clock time, RFC 3339 with nanoseconds.
    pub ts: Timestamp,
    /// Process (thread group) id.
    pub pid: u32,
    /// Thread id; equal to `pid` for the main thread.
    pub tid: u32,
    /// Parent's pid when the event happened (orphans show their new parent).
    pub ppid: u32,
    /// The process's executable as last seen (exec, /proc, or its parent's at fork).
    pub exe: String,
    #[serde(flatten)]
    pub kind: Kind,
    /// The LLM tool call that most plausibly caused this (see src/llm/attribute.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
}

/// Why an event is tied to a tool call, and how sure that is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    /// The tool call's id, as the model gave it.
    pub call: String,
    pub tool: String,
    /// `run_shell(command='curl ...')`, short.
    pub summary: String,
    /// 0 to 1.
    pub confidence: f32,
    /// What the link rests on: the arguments name it, lineage, timing.
    pub why: String,
    /// When the call's decisive argument came from an earlier tool's result: that call
    /// (`read_file(path='.../ticket.md')`). The mark of an injected instruction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steered_by: Option<String>,
    /// The call is one the agent's hook reported (ToolCall::reported): the tree's word.
    /// Such a link teaches a profile no tool effect.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reported: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kind {
    /// The recording began: what was run, and what ${CWD} and ${HOME} stand for in it.
    /// The first line of an event log.
    Start {
        command: String,
        /// The recording's id, as its profile's [[run]] names it, so that a log and the
        /// profile of the same run merge as one run (absent in logs before it was added).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        run: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        cwd: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        home: Option<String>,
        /// LLM payload is captured in this recording (not --no-llm): a run that shows no
        /// LLM call made none that agentguard could read.
        #[serde(skip_serializing_if = "std::ops::Not::not", default)]
        llm: bool,
        /// The recording's hook socket (AGENTGUARD_HOOK, '@' for the abstract namespace):
        /// agentguard's own, new in every run, so never learned.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        hook: Option<String>,
    },
    /// A new process (not a thread) entered the tree.
    Fork {
        child: u32,
    },
    /// An exec, successful or not.
    Exec(Exec),
    /// The process (its last thread) exited.
    Exit {
        #[serde(skip_serializing_if = "Option::is_none", default)]
        code: Option<i32>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        signal: Option<i32>,
    },
    File(File),
    Net(Net),
    Dns(Dns),
    /// Behaviour a reviewer should see whatever its arguments (io_uring, ptrace, ...).
    Flag(Flag),
    /// Enforcement denied an operation (`enforced`), or would have under --audit.
    Deny(Deny),
    /// An LLM API request of the tree (over TLS or plain HTTP).
    #[serde(rename = "llm.request")]
    LlmRequest(LlmRequest),
    #[serde(rename = "llm.response")]
    LlmResponse(LlmResponse),
    /// One tool call an LLM response asked for.
    #[serde(rename = "llm.tool_call")]
    ToolCall(ToolCall),
    /// One HTTP/1.x exchange of the tree (LLM calls too): what was asked of which service,
    /// and how many bytes went each way.
    Http(Http),
    /// Bytes one open file or internet socket of the tree moved, counted in the kernel
    /// whatever the protocol; reported when the file is done with or the recording ends.
    Io(Io),
    /// What agentguard can see of a process's TLS traffic: a library it covers was
    /// attached, or one it does not cover (or none, with TCP connections) was seen.
    Tls(Tls),
    /// The sensor could not deliver everything: `lost` records since the start.
    Lost {
        lost: u64,
        procs_untracked: u64,
    },
    /// The recording ended: the last line of a complete event log. A log without it was
    /// cut short; `events` counts the lines before it, so a log that lost lines is known.
    End {
        /// The command's exit status (128 + N for signal N).
        exit: i32,
        #[serde(default, skip_serializing_if = "is_false")]
        interrupted: bool,
        events: u64,
        lost: u64,
        procs_untracked: u64,
        /// Processes of the tree still running when the recording stopped (--pid and
        /// Ctrl-C, or agentguard interrupted): what they did next is not in the log.
        #[serde(default, skip_serializing_if = "is_zero")]
        running: u64,
        /// Records the decoder could not read.
        #[serde(default, skip_serializing_if = "is_zero")]
        decode_errors: u64,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Exec {
    /// The executed file as the kernel resolved it (for a script, its interpreter). For a
    /// failed exec: the path as given, made absolute against cwd or the dirfd.
    pub path: String,
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub argv_truncated: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cwd: String,
    /// The name exec was called with, when it differs from `path`: a script (`path` is
    /// then its interpreter) or a symlink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_as: Option<String>,
    /// The file a binfmt handler ran through `path` (a `#!` script, a binfmt_misc file),
    /// as exec was given it, made absolute against cwd: the kernel opened it for
    /// execution too, so a profile must allow it as well as its interpreter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Executed through an fd (execveat AT_EMPTY_PATH, /dev/fd/N).
    #[serde(default, skip_serializing_if = "is_false")]
    pub via_fd: bool,
    /// The executed file had no name left (memfd, deleted).
    #[serde(default, skip_serializing_if = "is_false")]
    pub unlinked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Errno>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileOp {
    Open,
    Unlink,
    Rmdir,
    Rename,
    Chmod,
    Mkdir,
    Link,
    Symlink,
    /// The ELF interpreter (dynamic loader) that the kernel mapped for an exec of this
    /// process: read by the kernel on the program's behalf, reported after the exec.
    Interp,
    /// truncate(2) by path.
    Truncate,
    /// A change of owner. Learned as `chmod`, the right enforce checks it under.
    Chown,
    /// A change of a file's access or modification time.
    Utimes,
}

/// What an operation did to a path: the words a profile uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Read,
    Write,
    Append,
    Create,
    Truncate,
    /// Opened as a directory (listing it).
    List,
    /// O_PATH: a handle, no data access.
    Path,
    Delete,
    Rename,
    Chmod,
    Mkdir,
    Link,
    Symlink,
    /// Setting a file's access or modification time (utimensat). Enforced under BPF LSM;
    /// Landlock has no control over it.
    Times,
}

impl Access {
    /// What a rule granting `self` grants besides: setting times where it grants writing
    /// (a write sets them too). The matcher and the kernel rules both read this.
    pub fn implies(self) -> &'static [Access] {
        match self {
            Access::Write => &[Access::Times],
            _ => &[],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct File {
    pub op: FileOp,
    /// Absolute path. Kernel-resolved when `resolved` (a successful open); otherwise the
    /// string the program gave, joined to the directory the kernel resolved for it.
    pub path: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub resolved: bool,
    /// rename and link: the new name; symlink: the link's target text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub access: Vec<Access>,
    /// open: O_* flags; renameat2/linkat: their flags.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flags: u64,
    /// open with O_CREAT, chmod, mkdir: the mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Errno>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetOp {
    Connect,
    Bind,
    Listen,
    Sendto,
    Sendmsg,
    /// A socket() that failed (only those are recorded): the tree meant to reach out and
    /// was refused before any address, by a sandbox of its own (Codex's seccomp filter).
    Socket,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    Tcp,
    Udp,
    /// unix stream
    Stream,
    /// unix datagram
    Dgram,
    Raw,
    Seqpacket,
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Net {
    pub op: NetOp,
    pub family: Family,
    pub proto: Proto,
    /// IP address (an IPv4-mapped IPv6 address is shown as IPv4 with `mapped`), or the
    /// unix socket's path (abstract names start with '@').
    pub addr: String,
    #[serde(default, skip_serializing_if = "is_zero_u16")]
    pub port: u16,
    #[serde(default, skip_serializing_if = "is_false")]
    pub mapped: bool,
    /// The name the tree resolved to this address (from a DNS answer it received, within
    /// the answer's TTL), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Errno>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dns {
    /// Query names, lower case, without the trailing dot.
    pub names: Vec<String>,
    /// Query types (A, AAAA, ...).
    pub qtypes: Vec<String>,
    /// The resolver the query went to (or the answer came from), as addr:port.
    pub server: String,
    /// An answer received, not a query sent.
    #[serde(default, skip_serializing_if = "is_false")]
    pub answer: bool,
    /// The addresses an answer gave (A and AAAA records, CNAME chains followed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addrs: Vec<DnsAddr>,
    /// A query that failed, or an answer's error (NXDOMAIN, SERVFAIL, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The message's transaction id: an answer counts only if it answers a query the tree
    /// sent to that server with that id (names.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsAddr {
    pub addr: String,
    /// Seconds the answer may be kept.
    pub ttl: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    IoUring,
    Ptrace,
    Setuid,
    Setgid,
    Capset,
    MemfdCreate,
    ExecFd,
    ModuleLoad,
    Bpf,
    CompatSyscall,
    OpenByHandle,
    /// TIOCSTI or TIOCLINUX: input pushed into a terminal as if typed.
    Terminal,
    /// A socket of a family or type no net rule describes (raw, packet, vsock, ...).
    Socket,
    /// A signal to a process outside the tree.
    Signal,
    /// mknod of a character or block device.
    Device,
    /// clone3 into another cgroup.
    Cgroup,
    /// mount, open_tree, fsmount, move_mount and the like.
    Mount,
    /// Another process's memory or descriptors: process_vm_readv/writev, pidfd_getfd.
    ProcessAccess,
    /// Setting a security.* or trusted.* extended attribute (file capabilities, labels).
    Xattr,
    /// A file reached through a detached mount or another mount namespace.
    DetachedPath,
    /// A descriptor the process did not open: received over a unix socket (SCM_RIGHTS)
    /// or taken from another process (pidfd_getfd). What it does with it is not recorded.
    FdReceived,
    /// io_setup: Linux AIO, whose reads and writes (io_submit) no byte count sees.
    Aio,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deny {
    pub op: DenyOp,
    /// The path, address:port, target pid or command it concerned.
    pub object: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<Access>,
    /// Why: which rule of the profile, or which part of the policy.
    pub reason: String,
    /// false under --audit: reported, not denied.
    pub enforced: bool,
}

/// What kind of operation a denial refused; the same name whichever backend refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyOp {
    Open,
    /// A path operation other than open (under Landlock: rename, unlink, mkdir, ...).
    Path,
    Exec,
    Connect,
    Bind,
    Ptrace,
    ModuleLoad,
    Bpf,
    Mount,
    /// A signal to a process outside the tree.
    Signal,
    /// A clone the tree may not make (into another cgroup, or past --max-procs).
    Clone,
    /// TIOCSTI or TIOCLINUX on a terminal. Recordings of 0.x's Landlock backend say
    /// `terminal`.
    #[serde(alias = "terminal")]
    Ioctl,
    Netlink,
    Socket,
    /// A device node made. Recordings of 0.x's Landlock backend say `device`.
    #[serde(alias = "device")]
    Mknod,
    /// Limits, scheduling or other changes of a process outside the tree.
    Process,
    Xattr,
    /// Too deep or too long for the kernel to check: denied because unchecked.
    Uncheckable,
    /// A plain HTTP request the profile does not cover, refused as it completed.
    Http,
}

impl DenyOp {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyOp::Open => "open",
            DenyOp::Path => "path",
            DenyOp::Exec => "exec",
            DenyOp::Connect => "connect",
            DenyOp::Bind => "bind",
            DenyOp::Ptrace => "ptrace",
            DenyOp::ModuleLoad => "module_load",
            DenyOp::Bpf => "bpf",
            DenyOp::Mount => "mount",
            DenyOp::Signal => "signal",
            DenyOp::Clone => "clone",
            DenyOp::Ioctl => "ioctl",
            DenyOp::Netlink => "netlink",
            DenyOp::Socket => "socket",
            DenyOp::Mknod => "mknod",
            DenyOp::Process => "process",
            DenyOp::Xattr => "xattr",
            DenyOp::Uncheckable => "uncheckable",
            DenyOp::Http => "http",
        }
    }
}

impl std::fmt::Display for DenyOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub flag: FlagKind,
    /// A short description of the arguments (request and target, ids, name).
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Errno>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmRequest {
    /// openai.chat, openai.responses or anthropic.messages.
    pub api: String,
    /// The Host header (the API host the agent uses).
    pub host: String,
    pub method: String,
    /// The request target, secrets in its query redacted.
    pub path: String,
    /// tls or tcp.
    pub transport: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub stream: bool,
    /// Names of the tools offered to the model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// Headers, credentials redacted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// The body, only with --llm-bodies, bounded and with secrets redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The request's number among the run's LLM requests, which its response carries too:
    /// calls in flight at once are told apart (0: not known, a log from before it was kept).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub exchange: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmResponse {
    pub api: String,
    pub host: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub stream: bool,
    /// `name` (`id`) of each tool call asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Why the body could not be read (an encoding not decoded, bytes missed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The request's `exchange`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub exchange: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as JSON text, secrets redacted, bounded.
    pub arguments: String,
    pub api: String,
    pub host: String,
    /// Which earlier message of the conversation first carried its decisive arguments
    /// (src/llm/steer.rs); absent when none did (the model chose them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steered: Option<Steer>,
    /// Reported by the agent through its hook (`agentguard hook`), not read from its LLM
    /// traffic: the tree's word, used to tie what it does to the call, never to learn a
    /// tool or relax a rule.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reported: bool,
}

/// Where a tool call's instruction came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Steer {
    /// tool_result, user or system.
    pub by: String,
    /// The tool call whose result carried it, and what that call was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The argument found there (a URL, a path, a host), redacted and bounded.
    pub argument: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Http {
    pub method: String,
    /// The Host header, lower case: the service as the client named it (the connection's
    /// real address is the net event's).
    pub host: String,
    /// The request target, secrets in its query redacted.
    pub path: String,
    /// tls or tcp.
    pub transport: String,
    /// The response's status; 0 when none came (the process exited or the stream broke).
    #[serde(default, skip_serializing_if = "is_zero_u16")]
    pub status: u16,
    /// Bytes of the request and of the response as they crossed the socket (head and
    /// body, before decompression).
    pub sent: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub received: u64,
    /// The LLM API it is, when it is one (then llm.request and llm.response say more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
}

impl Http {
    /// The connection left HTTP after this request's answer: 101 Switching Protocols (a
    /// WebSocket, h2c), or a 2xx answer to a CONNECT to host:port (a tunnel; a CONNECT to a
    /// path is a server's handler answering, which keeps speaking HTTP).
    pub fn switched(&self) -> bool {
        self.status == 101
            || (self.method == "CONNECT"
                && !self.path.starts_with('/')
                && (200..300).contains(&self.status))
    }
}

/// What an open file moved. A file: `path`. A socket: `proto`, `addr` and `port` of its
/// peer (empty and 0 when it had none: a datagram socket that sent to many), and the name
/// the tree resolved for the address when it first used it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Io {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<Proto>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub addr: String,
    #[serde(default, skip_serializing_if = "is_zero_u16")]
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Bytes read or received.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub read: u64,
    /// Bytes written or sent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub written: u64,
}

impl Io {
    /// The file's path, or `name:port`, `addr:port`, `[v6]:port` for a socket.
    pub fn object(&self) -> String {
        if let Some(p) = &self.path {
            return p.clone();
        }
        let who = match (&self.name, self.addr.as_str()) {
            (Some(n), _) => n.clone(),
            (None, "") => return "(a socket with no peer)".to_string(),
            (None, a) if a.contains(':') => format!("[{a}]"),
            (None, a) => a.to_string(),
        };
        format!("{who}:{}", self.port)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tls {
    pub status: TlsStatus,
    /// The library or executable concerned.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub library: String,
    pub detail: String,
}

/// How much of a process's TLS agentguard can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsStatus {
    /// Its TLS library is probed: the plaintext is seen.
    Covered,
    /// It uses a TLS library agentguard cannot probe.
    Uncovered,
    /// It connects out with no TLS library agentguard probes mapped.
    Unseen,
    /// Its plaintext is seen but speaks a protocol agentguard does not parse (HTTP/2).
    Unparsed,
}

impl std::fmt::Display for TlsStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsStatus::Covered => "covered",
            TlsStatus::Uncovered => "uncovered",
            TlsStatus::Unseen => "unseen",
            TlsStatus::Unparsed => "unparsed",
        })
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(v: &u64) -> bool {
    *v == 0
}
fn is_zero_u16(v: &u16) -> bool {
    *v == 0
}

impl Event {
    /// Whether the operation this event reports failed.
    /// Refused by a policy (EPERM, EACCES): enforce's, Landlock's or the host's own.
    pub fn denied(&self) -> bool {
        let error = match &self.kind {
            Kind::Exec(x) => &x.error,
            Kind::File(x) => &x.error,
            Kind::Net(x) => &x.error,
            _ => return false,
        };
        error.is_some_and(Errno::is_denial)
    }

    pub fn failed(&self) -> bool {
        match &self.kind {
            Kind::Exec(x) => x.error.is_some(),
            Kind::File(x) => x.error.is_some(),
            // A non-blocking connect answers EINPROGRESS and goes on in the background.
            Kind::Net(x) => x.error.is_some_and(|e| e != Errno::EINPROGRESS),
            Kind::Dns(x) => x.error.is_some(),
            Kind::Flag(x) => x.error.is_some(),
            _ => false,
        }
    }
}

/// Writes events as JSON lines.
pub struct JsonlWriter<W: Write> {
    out: W,
    /// The line being written: handed to `out` whole, so that a buffer flushed while the
    /// log is read (tail -f, a pipe) never ends inside a line.
    line: Vec<u8>,
}

impl<W: Write> JsonlWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            line: Vec::new(),
        }
    }
    pub fn write(&mut self, ev: &Event) -> Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, ev)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        Ok(())
    }
    /// What is buffered, out now (the session does so at least once a second).
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }
    pub fn finish(mut self) -> Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads a JSONL event stream; a bad line is an error naming the file and line.
pub fn read_jsonl(path: &Path) -> Result<Vec<Event>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        // agentguard writes none: skipping one would make every later line number that
        // the completeness checks cite (they count records) point at the wrong line.
        if line.trim().is_empty() {
            bail!(
                "{}:{}: a blank line: not as agentguard wrote the log (edited or joined)",
                path.display(),
                i + 1
            );
        }
        let ev = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not an agentguard event", path.display(), i + 1))?;
        out.push(ev);
    }
    Ok(out)
}

/// Constructors for the unit tests of every stage, so that each does not build the same
/// event field by field.
#[cfg(test)]
impl Event {
    /// An event of `pid`'s main thread (parent 1), running `exe`.
    pub fn of(pid: u32, exe: &str, kind: Kind) -> Event {
        Event {
            ts: Default::default(),
            pid,
            tid: pid,
            ppid: 1,
            exe: exe.into(),
            kind,
            cause: None,
        }
    }
}

impl File {
    /// A successful open the kernel resolved.
    pub fn opened(path: &str, access: Vec<Access>) -> File {
        File {
            op: FileOp::Open,
            path: path.into(),
            resolved: true,
            target: None,
            access,
            flags: 0,
            mode: None,
            truncated: false,
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denial_operations_serialise_as_their_printed_names() {
        use DenyOp::*;
        let all = [
            Open,
            Path,
            Exec,
            Connect,
            Bind,
            Ptrace,
            ModuleLoad,
            Bpf,
            Mount,
            Signal,
            Clone,
            Ioctl,
            Netlink,
            Socket,
            Mknod,
            Process,
            Xattr,
            Uncheckable,
        ];
        for op in all {
            let json = serde_json::to_string(&op).unwrap();
            assert_eq!(json, format!("\"{}\"", op.as_str()));
            assert_eq!(serde_json::from_str::<DenyOp>(&json).unwrap(), op);
        }
        // Older Landlock recordings named two operations differently.
        assert_eq!(
            serde_json::from_str::<DenyOp>("\"terminal\"").unwrap(),
            Ioctl
        );
        assert_eq!(serde_json::from_str::<DenyOp>("\"device\"").unwrap(), Mknod);
        assert!(serde_json::from_str::<DenyOp>("\"opne\"").is_err());
    }

    fn ev(kind: Kind) -> Event {
        Event {
            ts: "2026-11-26T12:00:00.000000001Z".parse().unwrap(),
            pid: 10,
            tid: 11,
            ppid: 1,
            exe: "/bin/sh".into(),
            kind,
            cause: None,
        }
    }

    #[test]
    fn json_lines_round_trip_every_kind() {
        let events = vec![
            ev(Kind::Start {
                command: "sh x".into(),
                run: Some("0b6c-run".into()),
                cwd: Some("/w".into()),
                home: None,
                llm: true,
                hook: Some("@agentguard-hook-rec-1-00".into()),
            }),
            ev(Kind::Fork { child: 12 }),
            ev(Kind::Exec(Exec {
                path: "/usr/bin/cat".into(),
                argv: vec!["cat".into(), "a b".into()],
                argv_truncated: true,
                cwd: "/tmp".into(),
                invoked_as: None,
                script: Some("/tmp/run.sh".into()),
                via_fd: false,
                unlinked: false,
                error: None,
            })),
            ev(Kind::Exit {
                code: Some(3),
                signal: None,
            }),
            ev(Kind::File(File {
                op: FileOp::Rename,
                path: "/tmp/a".into(),
                resolved: false,
                target: Some("/tmp/b".into()),
                access: vec![Access::Rename],
                flags: 0,
                mode: None,
                truncated: false,
                error: Some(Errno::ENOENT),
            })),
            ev(Kind::Net(Net {
                op: NetOp::Connect,
                family: Family::Inet6,
                proto: Proto::Tcp,
                addr: "127.0.0.1".into(),
                port: 80,
                mapped: true,
                name: None,
                error: None,
            })),
            ev(Kind::Dns(Dns {
                names: vec!["example.com".into()],
                qtypes: vec!["A".into()],
                server: "127.0.0.53:53".into(),
                answer: false,
                addrs: vec![],
                error: None,
                id: Some(7),
            })),
            ev(Kind::Flag(Flag {
                flag: FlagKind::Ptrace,
                detail: "PTRACE_ATTACH pid 1".into(),
                error: None,
            })),
            ev(Kind::Lost {
                lost: 5,
                procs_untracked: 0,
            }),
        ];
        let mut w = JsonlWriter::new(Vec::new());
        for e in &events {
            w.write(e).unwrap();
        }
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        let back: Vec<Event> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, events);
        assert!(text.lines().nth(2).unwrap().contains(r#""kind":"exec""#));
    }

    #[test]
    fn a_bad_line_names_file_and_line() {
        let dir = std::env::temp_dir().join(format!("ag-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bad.jsonl");
        let good = serde_json::to_string(&ev(Kind::Fork { child: 1 })).unwrap();
        std::fs::write(&p, format!("{good}\n{{\"kind\":\"nope\"}}\n")).unwrap();
        let err = format!("{:#}", read_jsonl(&p).unwrap_err());
        assert!(err.contains("bad.jsonl:2"), "{err}");
        // A blank line is named too, not skipped (later line numbers would be off).
        std::fs::write(&p, format!("{good}\n\n{good}\n")).unwrap();
        let err = format!("{:#}", read_jsonl(&p).unwrap_err());
        assert!(err.contains("bad.jsonl:2: a blank line"), "{err}");
        std::fs::write(&p, format!("{good}\n{good}\n")).unwrap();
        assert_eq!(read_jsonl(&p).unwrap().len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
