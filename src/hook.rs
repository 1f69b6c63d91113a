//! Tool calls an agent reports through its hooks (Claude Code's PreToolUse and PostToolUse):
//! `agentguard hook`, which the agent runs for each, passes what it was given to the
//! recording the agent runs under, on a unix datagram socket named in the tree's
//! environment (AGENTGUARD_HOOK). For when the agent's LLM traffic cannot be read: its tool
//! calls still tie what the tree does to them.
//!
//! They are the agent's word, and the tree could forge them: the recording takes them only
//! from processes of the tree (the kernel says who sent each), marks them `reported`, and
//! uses them for attribution alone. They never relax enforcement and never teach a profile a
//! tool.
use std::io::Read;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The variable that names the socket, in the tree's environment.
pub const ENV: &str = "AGENTGUARD_HOOK";
/// The most of a hook's input read, and of a report sent.
const INPUT_MAX: u64 = 1 << 20;
const REPORT_MAX: usize = 32 << 10;
/// The most of a tool's input kept: the rest is cut (it is for matching, not for reading).
const ARGUMENTS_MAX: usize = 16 << 10;

/// One hook call, as the recording receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// PreToolUse or PostToolUse.
    pub event: String,
    /// The tool call's id (Claude Code's tool_use_id).
    pub id: String,
    pub name: String,
    /// The tool's input as JSON text, cut at ARGUMENTS_MAX bytes.
    pub arguments: String,
}

impl Report {
    /// From what Claude Code gives a hook on its standard input; None when it is not a
    /// tool call's (another hook event, or not its shape).
    pub fn from_hook(v: &Value) -> Option<Report> {
        let event = v.get("hook_event_name")?.as_str()?;
        if !matches!(event, "PreToolUse" | "PostToolUse") {
            return None;
        }
        let mut arguments = v
            .get("tool_input")
            .map(Value::to_string)
            .unwrap_or_default();
        if arguments.len() > ARGUMENTS_MAX {
            let mut end = ARGUMENTS_MAX;
            while !arguments.is_char_boundary(end) {
                end -= 1;
            }
            arguments.truncate(end);
        }
        Some(Report {
            event: event.to_string(),
            id: v.get("tool_use_id")?.as_str()?.to_string(),
            name: v.get("tool_name")?.as_str()?.to_string(),
            arguments,
        })
    }
}

/// `agentguard hook`: passes the hook's input to the recording named by AGENTGUARD_HOOK.
/// Always 0 and silent on standard output: a hook that fails, or prints, can stop or steer
/// the agent's tool, and the agent may run where nothing records it. Failures are said on
/// standard error.
pub fn run() -> i32 {
    if let Err(e) = send() {
        eprintln!("agentguard hook: {e:#}");
    }
    0
}

fn send() -> Result<()> {
    let Some(name) = std::env::var_os(ENV) else {
        return Ok(()); // not under a recording: nothing to tell
    };
    let mut input = String::new();
    std::io::stdin()
        .take(INPUT_MAX)
        .read_to_string(&mut input)
        .context("reading the hook's input")?;
    let v: Value = serde_json::from_str(&input).context("the hook's input is not JSON")?;
    let Some(report) = Report::from_hook(&v) else {
        return Ok(());
    };
    let bytes = serde_json::to_vec(&report)?;
    let addr = SocketAddr::from_abstract_name(name.as_encoded_bytes())?;
    // The recording answers once it has taken the report in, and the agent starts the
    // tool only when this hook has ended: what the tool does comes after its call.
    // Connected to the recording: only it can answer (the reply socket's name is as
    // public as any abstract name). Neither the send nor the wait hangs the agent's tool.
    // Autobound (a name the kernel picks): a name of our own would be new in every run,
    // and only the recording's socket is agentguard's to leave out of what a run learns.
    let me = reply_socket().context("binding the hook's reply socket")?;
    me.set_read_timeout(Some(ACK_WAIT))?;
    me.set_write_timeout(Some(ACK_WAIT))?;
    me.connect_addr(&addr)
        .with_context(|| format!("reaching the recording ({ENV})"))?;
    me.send(&bytes)
        .with_context(|| format!("telling the recording ({ENV})"))?;
    let mut ack = [0u8; 8];
    me.recv(&mut ack)
        .context("the recording did not answer in time")?;
    Ok(())
}

/// A datagram socket bound to an abstract name the kernel picks (autobind).
fn reply_socket() -> Result<UnixDatagram> {
    use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let fd = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &UnixAddr::new_unnamed(),
    )?;
    Ok(UnixDatagram::from(fd))
}

/// How long a hook waits for the recording to have taken its report in. It answers within
/// one turn of its loop, which may be spent probing a large executable the tree just ran
/// (3 s ran out once in the emulated CI VM): the agent's tool waits
/// this long only while the recording is alive and busy.
const ACK_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// An abstract socket name no one guesses: agentguard-hook-KIND-PID-RANDOM.
fn random_name(kind: &str) -> Result<String> {
    let mut random = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .context("reading /dev/urandom")?;
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "agentguard-hook-{kind}-{}-{hex}",
        std::process::id()
    ))
}

/// Whether a unix socket's name (as events write it, '@' for the abstract namespace) has
/// the shape of a recording's hook socket: what a start event may name as its `hook`.
pub fn is_listener_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("@agentguard-hook-rec-") else {
        return false;
    };
    let Some((pid, hex)) = rest.split_once('-') else {
        return false;
    };
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && hex.len() == 32
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The recording's end: an abstract socket with a name no one guesses, whose datagrams
/// come with their sender's pid (SO_PASSCRED).
pub struct Listener {
    sock: UnixDatagram,
    pub name: String,
}

impl Listener {
    pub fn bind() -> Result<Listener> {
        let name = random_name("rec")?;
        let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
        let sock = UnixDatagram::bind_addr(&addr).context("binding the hook socket")?;
        sock.set_nonblocking(true)?;
        nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::PassCred, &true)
            .context("asking for the hook senders' credentials")?;
        Ok(Listener { sock, name })
    }

    /// The socket, for the watchdog to keep bound while the tree lives.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.sock)
    }

    /// The reports waiting, each with the pid that sent it and where it waits for the
    /// answer; datagrams without credentials or that do not parse are dropped.
    pub fn drain(&self) -> Vec<Received> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrLike, UnixAddr};
        use std::os::fd::AsRawFd;
        let mut out = Vec::new();
        let mut buf = vec![0u8; REPORT_MAX];
        // A bounded number a turn: a tree that floods the socket cannot hold the loop.
        for _ in 0..256 {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            let mut cmsg = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
            let Ok(msg) = recvmsg::<UnixAddr>(
                self.sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
            ) else {
                break;
            };
            let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
            let len = msg.bytes;
            // An unbound sender's address is empty: not asked for its name (nix asserts
            // on one shorter than the family), and answered nowhere.
            let reply = msg
                .address
                .as_ref()
                .filter(|a| a.len() as usize > std::mem::size_of::<libc::sa_family_t>())
                .and_then(|a| a.as_abstract())
                .map(<[u8]>::to_vec);
            let pid = msg.cmsgs().ok().and_then(|mut c| {
                c.find_map(|m| match m {
                    ControlMessageOwned::ScmCredentials(c) => Some(c.pid() as u32),
                    _ => None,
                })
            });
            let (Some(pid), false) = (pid, truncated) else {
                continue;
            };
            if let Ok(report) = serde_json::from_slice::<Report>(&buf[..len.min(REPORT_MAX)]) {
                out.push(Received { pid, report, reply });
            }
        }
        out
    }

    /// Tells a hook its report was taken in (or dropped): it may end.
    pub fn ack(&self, reply: &[u8]) {
        if let Ok(a) = SocketAddr::from_abstract_name(reply) {
            let _ = self.sock.send_to_addr(b"ok", &a);
        }
    }
}

/// A report as received: who sent it (the kernel says), and where its hook waits.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub pid: u32,
    pub report: Report,
    pub reply: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_has_the_shape_a_start_event_may_name() {
        let l = Listener::bind().unwrap();
        assert!(is_listener_name(&format!("@{}", l.name)));
        for other in [
            format!("/{}", l.name),
            format!("@{}x", l.name),
            format!("@{}", random_name("reply").unwrap()),
            "@agentguard-hook-rec-1-".to_string(),
            "/run/docker.sock".to_string(),
        ] {
            assert!(!is_listener_name(&other), "{other}");
        }
    }

    #[test]
    fn a_claude_code_hook_input_is_a_report() {
        let v: Value = serde_json::from_str(
            r#"{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"Bash",
                "tool_input":{"command":"cat /etc/hostname"},"tool_use_id":"toolu_1"}"#,
        )
        .unwrap();
        assert_eq!(
            Report::from_hook(&v),
            Some(Report {
                event: "PreToolUse".into(),
                id: "toolu_1".into(),
                name: "Bash".into(),
                arguments: r#"{"command":"cat /etc/hostname"}"#.into(),
            })
        );
        // Other hook events, and inputs without an id, are not tool calls.
        let other: Value =
            serde_json::from_str(r#"{"hook_event_name":"Stop","tool_use_id":"x"}"#).unwrap();
        assert_eq!(Report::from_hook(&other), None);
        let no_id: Value =
            serde_json::from_str(r#"{"hook_event_name":"PreToolUse","tool_name":"Bash"}"#).unwrap();
        assert_eq!(Report::from_hook(&no_id), None);
        // A long input is cut on a character boundary.
        let long = serde_json::json!({"hook_event_name":"PreToolUse","tool_name":"W",
            "tool_use_id":"i","tool_input":{"content":"é".repeat(ARGUMENTS_MAX)}});
        let r = Report::from_hook(&long).unwrap();
        assert!(r.arguments.len() <= ARGUMENTS_MAX);
    }

    #[test]
    fn a_report_reaches_the_listener_with_its_senders_pid() {
        let l = Listener::bind().unwrap();
        let r = Report {
            event: "PreToolUse".into(),
            id: "toolu_2".into(),
            name: "Bash".into(),
            arguments: "{}".into(),
        };
        let addr = SocketAddr::from_abstract_name(l.name.as_bytes()).unwrap();
        UnixDatagram::unbound()
            .unwrap()
            .send_to_addr(&serde_json::to_vec(&r).unwrap(), &addr)
            .unwrap();
        UnixDatagram::unbound()
            .unwrap()
            .send_to_addr(b"not json", &addr)
            .unwrap();
        let got = l.drain();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].pid, &got[0].report), (std::process::id(), &r));
        assert!(l.drain().is_empty());
    }
}
