//! The severity model: a small table of rules, the first that applies wins. `help()` prints
//! the same table into `agentguard diff --help` and so into man/agentguard-diff.1.
use std::collections::BTreeSet;

use serde::Serialize;

use crate::event::{Access, FlagKind};
use crate::profile::matcher::{Hit, Verdict};
use crate::profile::protected;
use crate::profile::{NetDir, What};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug)]
pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    /// When it applies, as the man page says it.
    pub when: &'static str,
}

macro_rules! rules {
    ($($name:ident = $id:literal, $sev:ident, $when:literal;)*) => {
        $(pub const $name: Rule = Rule { id: $id, severity: Severity::$sev, when: $when };)*
        pub const RULES: &[&Rule] = &[$(&$name),*];
    };
}

rules! {
    PROTECTED = "protected", Critical, "a protected path (credentials, shell start-up files, VCS hooks, agent configuration, system secrets, process memory, raw devices) that no hand-written rule admits";
    FLAG_CRITICAL = "flag-critical", Critical, "exec through an fd or a memfd, a kernel module load, bpf(), ptrace of a process outside the tree";
    EXEC_SHELL = "exec-shell", High, "a shell or interpreter spawned under the agent (sh, bash, python, perl, node, ...)";
    EXEC_NETWORK = "exec-network", High, "a network-capable program (curl, wget, nc, ssh, scp, rsync, git, openssl, ...)";
    EXEC_PRIVILEGED = "exec-privileged", High, "a setuid or setgid program, or one that changes privileges, namespaces or mounts, or drives a container engine or the service manager (sudo, su, pkexec, nsenter, unshare, chroot, mount, debugfs, systemd-run, docker, ...)";
    EXEC_ELSEWHERE = "exec-elsewhere", High, "a program outside the system's program directories (/usr/bin, /usr/sbin, /usr/local/bin, ...): written, downloaded or unpacked";
    NET_NEW_HOST = "net-new-host", High, "a connection or datagram to an IP address the baseline never reached (loopback too: local services are targets)";
    NET_NEW_RESOLVER = "net-new-resolver", High, "a query to a DNS server the baseline never used";
    DNS_NEW = "dns-new", High, "a DNS name the baseline never resolved";
    LLM_NEW_HOST = "llm-new-host", High, "an LLM API host the baseline never called (prompts, context and tool results go there)";
    NET_NEW_PORT = "net-new-port", High, "a known host on a port the baseline never used: another service";
    NET_NEW_UNIX = "net-new-unix", High, "a unix-socket destination the baseline never used (container engines, D-Bus and ssh-agent sockets hand out root or credentials)";
    NET_NEW_LISTENER = "net-new-listener", High, "a new listening or bound socket on an address outside loopback";
    WRITE_OUTSIDE = "write-outside", High, "a write, create, delete, rename, chmod or link outside the workspace (${CWD}) and the temp directories, or in the home directory or a program directory wherever they are (a launch directory of $HOME, / or /usr is no workspace)";
    FLAG_HIGH = "flag-high", High, "setuid, setgid, capset, io_uring (its operations are invisible), 32-bit syscalls, open_by_handle_at";
    HTTP_WRITE_READ_ONLY = "http-write-read-only", High, "a write method (POST, PUT, PATCH, DELETE, any but GET, HEAD and OPTIONS) to an HTTP service the baseline only read from";
    EXFIL_SEQUENCE = "exfil-sequence", High, "in one run, 16 KiB or more downloaded over HTTP, then write requests (or requests of 1 KiB or more) carrying at least half as much out, summed over the run (downloads past 1 MiB do not raise that bar); or a protected file read the baseline does not admit, then any such request; to an HTTP service other than the LLM API";
    HTTP_NEW_SERVICE = "http-new-service", Medium, "an HTTP service (Host header and port) the baseline never called";
    LLM_UNSEEN = "llm-unseen", Medium, "a run whose LLM traffic agentguard did not see, where every baseline run's was: no LLM call seen, or fewer than any baseline run while the run spoke TLS agentguard cannot read (a library it does not probe, HTTP/2) that no baseline run did; tool calls, and the causes of what they did, are missing from it";
    HTTP_NEW_SWITCH = "http-new-switch", Medium, "a connection switched protocols (a WebSocket's 101, a CONNECT tunnel) after a request to an endpoint the baseline has but never saw switch: under enforce what follows the switch is held to HTTP's framing and refused";
    HTTP_NEW_WRITE = "http-new-write", Medium, "a write method to an endpoint of a known service that the baseline never wrote to: a new endpoint, or a new method on a known one";
    NET_VOLUME = "net-volume", Medium, "more bytes sent to (or received from) a destination in one run, over every protocol and whether or not agentguard reads it (TLS it cannot see into, a database, a raw socket), than any baseline run moved, by a margin: twice the largest run plus 16 KiB";
    FILE_VOLUME = "file-volume", Medium, "more bytes read in one run from the files a learned entry covers than any baseline run read, by a margin: twice the largest run plus 256 KiB (a table, an archive or a source tree pulled in bulk)";
    HTTP_VOLUME = "http-volume", Medium, "more bytes sent to (or received from) an HTTP endpoint in one run than any baseline run moved, by a margin: twice the largest run plus 4 KiB; endpoints of a service that no entry names share 4 KiB sent (a run of nothing)";
    NET_NEW_LOCAL = "net-new-local", Medium, "a new listener on loopback or a unix socket";
    WRITE_WORKSPACE = "write-workspace", Medium, "a new write in the workspace or a temp directory";
    EXEC_NEW = "exec-new", Medium, "a program in a system program directory that the baseline never ran";
    TOOL_NEW_EFFECT = "tool-new-effect", Medium, "a tool call caused a kind of effect (exec, read, write, connect) that the same tool's calls never caused in the baseline: read_file ran a program, run_shell connected out";
    TOOL_NEW = "tool-new", Medium, "a tool the model never called in the baseline";
    READ_NEW = "read-new", Medium, "a read in a directory the baseline never read from";
    FLAG_MEDIUM = "flag-medium", Medium, "memfd_create, ptrace within the tree, Linux AIO (io_setup: its reads and writes are not counted in byte volumes)";
    EXEC_COREUTIL = "exec-coreutil", Low, "a read-only core utility (ls, cat, head, grep, wc, ...)";
    HTTP_NEW_ENDPOINT = "http-new-endpoint", Low, "a read (GET, HEAD, OPTIONS) of an endpoint of a known HTTP service that the baseline never used";
    READ_KNOWN_DIR = "read-known-dir", Low, "a new file in a directory the baseline already reads";
    DEVICE = "device-ordinary", Low, "reading or writing an ordinary device: /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom, /dev/tty (the tree's own terminal), /dev/ptmx";
    RARE = "rare", Low, "covered, but only by entries seen in at most a fifth of a baseline of five runs or more: weak evidence of normality";
}

const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "csh", "tcsh", "busybox", "python",
    "python2", "python3", "perl", "ruby", "node", "nodejs", "deno", "bun", "php", "lua", "luajit",
    "tclsh", "wish", "awk", "gawk", "mawk", "nawk", "expect", "pwsh", "Rscript", "R", "julia",
    "pypy", "pypy3", "guile", "java", "jshell", "erl", "escript", "elixir", "racket", "sbcl",
    "ocaml", "swipl", "gdb", "emacs",
];
/// Programs that change who the tree is or what it can reach: privileges, namespaces,
/// mounts, raw file systems, container engines, the service manager.
const PRIVILEGED: &[&str] = &[
    "sudo",
    "su",
    "sg",
    "newgrp",
    "pkexec",
    "doas",
    "runuser",
    "setpriv",
    "capsh",
    "setcap",
    "nsenter",
    "unshare",
    "chroot",
    "pivot_root",
    "mount",
    "umount",
    "losetup",
    "debugfs",
    "dd",
    "insmod",
    "modprobe",
    "systemctl",
    "systemd-run",
    "busctl",
    "machinectl",
    "docker",
    "podman",
    "nerdctl",
    "ctr",
    "crictl",
    "kubectl",
    "lxc",
    "chattr",
    "crontab",
    "at",
    "passwd",
    "chpasswd",
    "useradd",
    "usermod",
    "visudo",
];

/// A program with the setuid or setgid bit, as installed where the rating is made.
fn setid(path: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o6000 != 0)
}

const NETWORK: &[&str] = &[
    "curl",
    "wget",
    "nc",
    "ncat",
    "netcat",
    "nc.openbsd",
    "nc.traditional",
    "socat",
    "ssh",
    "scp",
    "sftp",
    "rsync",
    "ftp",
    "tftp",
    "telnet",
    "openssl",
    "nmap",
    "dig",
    "nslookup",
    "host",
    "aria2c",
    "http",
    "https",
    "git",
    "ping",
    "ip",
    "iptables",
    "nft",
];
const COREUTILS: &[&str] = &[
    "ls",
    "cat",
    "head",
    "tail",
    "wc",
    "sort",
    "uniq",
    "cut",
    "tr",
    "grep",
    "egrep",
    "fgrep",
    "find",
    "stat",
    "file",
    "du",
    "df",
    "date",
    "echo",
    "printf",
    "basename",
    "dirname",
    "realpath",
    "readlink",
    "pwd",
    "env",
    "id",
    "uname",
    "whoami",
    "true",
    "false",
    "test",
    "[",
    "sleep",
    "diff",
    "cmp",
    "md5sum",
    "sha1sum",
    "sha256sum",
    "which",
    "tee",
    "seq",
    "nproc",
    "hostname",
    "less",
    "more",
];

/// Where a system's programs are installed (the kernel reports the resolved path: on a
/// merged-/usr system /bin/ls runs as /usr/bin/ls).
pub const SYSTEM_BIN: &[&str] = &[
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/bin",
    "/sbin",
];

/// A program directly in one of the system's program directories.
pub fn in_system_bin(path: &str) -> bool {
    path.rsplit_once('/')
        .is_some_and(|(dir, name)| !name.is_empty() && SYSTEM_BIN.contains(&dir))
}

/// "python3.11" -> "python3" -> matches "python3"; "/usr/bin/nc.openbsd" stays whole too.
fn program(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// By name, version suffixes ignored: python3.11 is python3, and what comes before a first
/// digit, dot or dash names the program too (perl5.36-x86_64-linux-gnu is perl, a copy of
/// the interpreter under Debian's multiarch name; ip6tables is ip).
fn is_in(list: &[&str], path: &str) -> bool {
    let name = program(path);
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    let head = name
        .split(|c: char| c.is_ascii_digit() || c == '.' || c == '-')
        .next()
        .unwrap_or(name);
    list.contains(&name) || list.contains(&stem) || (!head.is_empty() && list.contains(&head))
}

pub const TEMP_DIRS: &[&str] = &["/tmp", "/var/tmp", "/dev/shm", "/run/user"];

/// Devices every program writes to or reads from (`> /dev/null`, its own terminal as
/// /dev/tty): nothing is stored and nothing leaves. Not /dev/pts/N: that names any
/// terminal, another user's session too. The pattern is what enforce admits for the rule.
pub const DEVICES: &[&str] = &["/dev/{null,zero,full,random,urandom,tty,ptmx}"];

/// What the device rule covers: data in and out (a shell's `>` opens with create and
/// truncate, a no-op on a device), and its times. Not removing, renaming or replacing it.
pub const DEVICE_ACCESS: &[Access] = &[
    Access::Read,
    Access::Write,
    Access::Append,
    Access::Create,
    Access::Truncate,
    Access::Path,
    Access::Times,
];

/// An ordinary device (DEVICES), by its path.
pub fn ordinary_device(path: &str) -> bool {
    path.strip_prefix("/dev/")
        .is_some_and(|d| ["null", "zero", "full", "random", "urandom", "tty", "ptmx"].contains(&d))
}

pub fn under(path: &str, dir: &str) -> bool {
    path == dir
        || dir == "/" && path.starts_with('/')
        || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

fn is_loopback(addr: &str) -> bool {
    addr.parse::<std::net::IpAddr>()
        .map(|a| a.is_loopback())
        .unwrap_or(false)
}

/// Whether a write to `path` is scratch work: beneath the workspace or a temp directory
/// (not the directories themselves). Never in the home directory, unless the workspace is
/// a directory inside it (`~/project`): a workspace of $HOME, or above it, and a temp
/// directory holding it, do not make the home directory scratch. Never in the system's
/// program directories, whatever the workspace.
pub fn in_work(path: &str, workspace: Option<&str>, home: Option<&str>) -> bool {
    let beneath = |d: &str| path != d && under(path, d);
    if SYSTEM_BIN.iter().any(|b| under(path, b)) {
        return false;
    }
    let in_home = home.is_some_and(|h| under(path, h));
    let in_workspace = workspace
        .filter(|w| !holds_home_or_programs(w, home))
        .is_some_and(beneath);
    in_workspace || (!in_home && TEMP_DIRS.iter().any(|d| beneath(d)))
}

/// A launch directory that is the home directory, or above it or a program directory (/,
/// /home, /usr): no workspace at all.
pub fn holds_home_or_programs(workspace: &str, home: Option<&str>) -> bool {
    home.is_some_and(|h| under(h, workspace)) || SYSTEM_BIN.iter().any(|b| under(b, workspace))
}

/// What diff knows besides the matcher's answer.
pub struct Context<'a> {
    pub workspace: Option<&'a str>,
    pub home: Option<&'a str>,
    /// Directories holding a file the baseline reads (expanded).
    pub known_dirs: &'a std::collections::HashSet<String>,
    pub baseline_runs: u32,
    pub host_known: &'a dyn Fn(NetDir, &str) -> bool,
    /// An HTTP service: None when the baseline never called it, else whether it wrote there.
    pub http_service: &'a dyn Fn(&str) -> Option<bool>,
}

/// The rule for behaviour the baseline does not cover (or covers only weakly), and the
/// one-line reason. None: covered, and by strong enough evidence.
pub fn classify(what: &What, hit: &Hit, cx: &Context) -> Option<Rated> {
    let rare = cx.baseline_runs >= 5
        && hit.strength > 0
        && hit.strength < crate::profile::matcher::ALLOWED
        && hit.strength * 5 <= cx.baseline_runs;
    match (&hit.verdict, rare) {
        (Verdict::Covered, true) => {
            return Some((
                &RARE,
                format!(
                    "seen in only {} of the baseline's {} runs",
                    hit.strength, cx.baseline_runs
                ),
            ));
        }
        (Verdict::Covered, false) => return None,
        _ => {}
    }
    Some(match what {
        What::File { path, access } => file(path, access, hit, cx),
        What::Exec { path } => exec(path, hit),
        What::Net { op, addr, port, .. } => net(*op, addr, *port, cx),
        What::Host { name, port, .. } => {
            if (cx.host_known)(NetDir::Connect, name) {
                (&NET_NEW_PORT, format!("a known host on a new port {port}"))
            } else {
                (
                    &NET_NEW_HOST,
                    "an outbound destination never seen".to_string(),
                )
            }
        }
        What::Dns { .. } => (
            &DNS_NEW,
            "a DNS name the baseline never resolved".to_string(),
        ),
        What::Llm { api, .. } => (
            &LLM_NEW_HOST,
            format!("an LLM API host ({api}) the baseline never called"),
        ),
        What::Tool { .. } => (
            &TOOL_NEW,
            "a tool the model never called in the baseline".to_string(),
        ),
        What::Flag { flag, detail } => flagged(*flag, detail),
        What::Http {
            service, method, ..
        } => http(service, method, cx),
    })
}

/// An HTTP endpoint the baseline does not cover: what the service was to the baseline.
fn http(service: &str, method: &str, cx: &Context) -> Rated {
    let write = crate::profile::http::is_write(method);
    match ((cx.http_service)(service), write) {
        (None, _) => (
            &HTTP_NEW_SERVICE,
            format!("an HTTP service the baseline never called ({method})"),
        ),
        (Some(false), true) => (
            &HTTP_WRITE_READ_ONLY,
            format!("{method} to a service the baseline only read from"),
        ),
        (Some(true), true) => (
            &HTTP_NEW_WRITE,
            format!("{method} to an endpoint of this service the baseline never wrote to"),
        ),
        (Some(_), false) => (
            &HTTP_NEW_ENDPOINT,
            format!("{method} of an endpoint of a known service the baseline never used"),
        ),
    }
}

type Rated = (&'static Rule, String);

/// The rule of each class of HTTP request the kernel rates (enum ag_http_class of
/// src/bpf/policy.h): `enforce --deny-at` denies a class whose rule is rated at the level
/// or above, as it decides for everything else.
pub const HTTP_CLASSES: &[(u32, &Rule)] = {
    use crate::skel::endpoint::types::ag_http_class as C;
    &[
        (C::AG_HTTP_NEW_SERVICE.0, &HTTP_NEW_SERVICE),
        (C::AG_HTTP_WRITE_READ_ONLY.0, &HTTP_WRITE_READ_ONLY),
        (C::AG_HTTP_NEW_WRITE.0, &HTTP_NEW_WRITE),
        (C::AG_HTTP_NEW_ENDPOINT.0, &HTTP_NEW_ENDPOINT),
        (C::AG_HTTP_LLM_NEW_HOST.0, &LLM_NEW_HOST),
    ]
};

/// The rule a kernel denial's class stands for (None: a request it could not follow).
pub fn http_class(class: u64) -> Option<&'static Rule> {
    HTTP_CLASSES
        .iter()
        .find(|(c, _)| u64::from(*c) == class)
        .map(|(_, r)| *r)
}

/// A file access the baseline does not cover: where it wrote, or what it read.
fn file(path: &str, access: &BTreeSet<Access>, hit: &Hit, cx: &Context) -> Rated {
    if hit.verdict == Verdict::Protected {
        let cat = protected::category(path).unwrap_or("protected");
        return (&PROTECTED, format!("protected path: {cat}"));
    }
    let missing: BTreeSet<Access> = match &hit.verdict {
        Verdict::Uncovered(m) => m.clone(),
        _ => access.clone(),
    };
    let wider = if hit.known.is_empty() {
        String::new()
    } else {
        format!(
            "wider access: {} became {}; ",
            names(&hit.known),
            names(&missing)
        )
    };
    if ordinary_device(path) && missing.iter().all(|a| DEVICE_ACCESS.contains(a)) {
        return (
            &DEVICE,
            format!("{wider}{} of an ordinary device", names(&missing)),
        );
    }
    let writes = missing.iter().any(|a| protected::WRITES.contains(a));
    let in_work = in_work(path, cx.workspace, cx.home);
    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    if writes && !in_work {
        (
            &WRITE_OUTSIDE,
            format!("{wider}{} outside the workspace", names(&missing)),
        )
    } else if writes {
        (
            &WRITE_WORKSPACE,
            format!("{wider}new {} in the workspace", names(&missing)),
        )
    } else if cx.known_dirs.contains(dir) || !hit.known.is_empty() {
        (
            &READ_KNOWN_DIR,
            format!("{wider}new file in a directory the baseline reads"),
        )
    } else {
        (
            &READ_NEW,
            format!(
                "{wider}new {} in a directory the baseline never read",
                names(&missing)
            ),
        )
    }
}

/// A program the baseline never ran, by what it can do.
fn exec(path: &str, hit: &Hit) -> Rated {
    if hit.verdict == Verdict::Protected {
        return (
            &PROTECTED,
            format!(
                "exec of a protected path: {}",
                protected::category(path).unwrap_or("protected")
            ),
        );
    }
    if is_in(SHELLS, path) {
        (
            &EXEC_SHELL,
            format!(
                "a shell or interpreter ({}) spawned under the agent",
                program(path)
            ),
        )
    } else if is_in(NETWORK, path) {
        (
            &EXEC_NETWORK,
            format!(
                "a network-capable program ({}) spawned under the agent",
                program(path)
            ),
        )
    } else if is_in(PRIVILEGED, path) || setid(path) {
        (
            &EXEC_PRIVILEGED,
            format!(
                "a program that changes privileges or what the tree can reach ({})",
                program(path)
            ),
        )
    } else if is_in(COREUTILS, path) {
        (
            &EXEC_COREUTIL,
            format!(
                "a read-only core utility ({}) the baseline never ran",
                program(path)
            ),
        )
    } else if in_system_bin(path) {
        (&EXEC_NEW, "a program the baseline never ran".to_string())
    } else {
        (
            &EXEC_ELSEWHERE,
            "a program outside the system's program directories that the baseline never ran"
                .to_string(),
        )
    }
}

/// A network operation on an address the baseline does not cover.
fn net(op: NetDir, addr: &str, port: u16, cx: &Context) -> Rated {
    let local = is_loopback(addr) || addr.starts_with('/') || addr.starts_with('@');
    match op {
        NetDir::Resolve => (
            &NET_NEW_RESOLVER,
            format!("a DNS server never used: {addr}:{port}"),
        ),
        NetDir::Bind | NetDir::Listen if !local => (
            &NET_NEW_LISTENER,
            format!("a new listener on {addr}:{port}"),
        ),
        NetDir::Bind | NetDir::Listen => (
            &NET_NEW_LOCAL,
            format!("a new local listener on {addr}:{port}"),
        ),
        NetDir::Connect if addr.starts_with('/') || addr.starts_with('@') => {
            (&NET_NEW_UNIX, "a new unix-socket destination".to_string())
        }
        NetDir::Connect if (cx.host_known)(NetDir::Connect, addr) => {
            (&NET_NEW_PORT, format!("a known host on a new port {port}"))
        }
        NetDir::Connect => (
            &NET_NEW_HOST,
            "an outbound destination never seen".to_string(),
        ),
    }
}

/// A flagged operation: critical when it reaches past the tree.
fn flagged(flag: FlagKind, detail: &str) -> Rated {
    // Each critical one reaches past the tree: the kernel, the user's terminal,
    // the guard or another process, a device, a cgroup the watchdog does not kill.
    let critical = matches!(
        flag,
        FlagKind::ExecFd
            | FlagKind::ModuleLoad
            | FlagKind::Bpf
            | FlagKind::Terminal
            | FlagKind::Signal
            | FlagKind::Device
            | FlagKind::Cgroup
            | FlagKind::ProcessAccess
            | FlagKind::Xattr
            | FlagKind::DetachedPath
    ) || (flag == FlagKind::Ptrace && detail.contains("outside the tree"));
    let medium = matches!(
        flag,
        FlagKind::MemfdCreate | FlagKind::Ptrace | FlagKind::Aio
    );
    let rule = if critical {
        &FLAG_CRITICAL
    } else if medium {
        &FLAG_MEDIUM
    } else {
        &FLAG_HIGH
    };
    (rule, format!("{}: {detail}", flag_name(flag)))
}

pub fn flag_name(f: FlagKind) -> &'static str {
    match f {
        FlagKind::IoUring => "io_uring",
        FlagKind::Ptrace => "ptrace",
        FlagKind::Setuid => "setuid",
        FlagKind::Setgid => "setgid",
        FlagKind::Capset => "capset",
        FlagKind::MemfdCreate => "memfd_create",
        FlagKind::ExecFd => "exec_fd",
        FlagKind::ModuleLoad => "module_load",
        FlagKind::Bpf => "bpf",
        FlagKind::CompatSyscall => "compat_syscall",
        FlagKind::OpenByHandle => "open_by_handle",
        FlagKind::Terminal => "terminal",
        FlagKind::Socket => "socket",
        FlagKind::Signal => "signal",
        FlagKind::Device => "device",
        FlagKind::Cgroup => "cgroup",
        FlagKind::Mount => "mount",
        FlagKind::ProcessAccess => "process_access",
        FlagKind::Xattr => "xattr",
        FlagKind::DetachedPath => "detached_path",
        FlagKind::FdReceived => "fd_received",
        FlagKind::Aio => "aio",
    }
}

pub fn names(a: &BTreeSet<Access>) -> String {
    let v: Vec<String> = a
        .iter()
        .map(|x| {
            serde_json::to_value(x)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        })
        .collect();
    v.join("+")
}

/// The rules and the JSON format, for the long help and the man page.
pub fn help() -> String {
    let mut s = String::from(
        "RULES: each finding gets the severity of the first rule that applies, tested in this order. \
Behaviour the baseline covers is no finding, unless only by rare entries (rule `rare`). Reasons note a \
baseline of fewer than three runs as weak evidence.\n\n",
    );
    for r in RULES {
        s.push_str(&format!(
            "  {:<9} {:<17} {}\n",
            r.severity.name(),
            r.id,
            r.when
        ));
    }
    s.push_str(
        "\nFile rules apply to the accesses the baseline does not grant (a read that became a write is ranked \
as a write: \"wider access\"). Shells and interpreters, network programs and core utilities are recognised \
by program name, version suffixes ignored (python3.11 is python), and by what comes before a first digit, \
dot or dash (perl5.36-x86_64-linux-gnu is perl).\n\n\
JSON (--format json, version 1): an object with version, baseline, baseline_runs, run, fail_on, failed, \
counts {critical, high, medium, low}, missing [{kind, object, seen}] and findings, each with severity \
(low|medium|high|critical), kind (exec|file|net|dns|flag|tool|llm), object (path, address:port, name, \
flag, tool name or API host), detail (accesses; operation and protocol; flag detail; API), reason, rule \
(an id above), new (false for `rare`), count, process: [{pid, exe}] from the process that did it up to \
the root of the tree (at most 32, each name cut at 256 bytes; absent when the run is a profile), and cause: the LLM tool call behind it, when \
the run is an event log and one explains it ({call, tool, summary, confidence, why}). Example:\n\n\
  {\"version\": 1, \"baseline\": \"baseline.toml\", \"baseline_runs\": 5, \"run\": \"run.jsonl\",\n\
   \"fail_on\": \"high\", \"failed\": true, \"counts\": {\"critical\": 0, \"high\": 1, \"medium\": 0, \"low\": 0},\n\
   \"missing\": [], \"findings\": [{\"severity\": \"high\", \"kind\": \"exec\", \"object\": \"/usr/bin/curl\",\n\
   \"reason\": \"a network-capable program (curl) spawned under the agent\", \"rule\": \"exec-network\",\n\
   \"new\": true, \"count\": 1, \"process\": [{\"pid\": 812, \"exe\": \"/usr/bin/curl\"},\n\
   {\"pid\": 790, \"exe\": \"/usr/bin/python3.11\"}]}]}\n",
    );
    s
}
