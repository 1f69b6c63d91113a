//! The kernel/user boundary: raw ring-buffer records (`ag_hdr` + strings, defined once in
//! src/bpf/events.h) become owned `Event`s here, and nowhere else.
use std::net::{Ipv4Addr, Ipv6Addr};

use anyhow::{bail, Result};

use super::skel::types::{
    ag_data_op, ag_file_op, ag_flag_op, ag_flags, ag_hdr, ag_io_op, ag_kind, ag_net_op,
};
use crate::abi::{ag_deny_op, ag_rule_id};
use crate::event::{
    self, Access, DenyOp, Errno, Event, Family, FileOp, FlagKind, Kind, NetOp, Proto, Timestamp,
};
use crate::paths;
use crate::tree::Tree;

const HDR: usize = std::mem::size_of::<ag_hdr>();

/// A record is an event, or bytes of an HTTP stream for the LLM decoder (src/llm).
#[derive(Debug)]
pub enum Record {
    Event(Event),
    Data(crate::llm::Payload),
    /// A TLS stream read through AEAD probes, under its context's address until now, goes
    /// on under its socket's (payload.bpf.c): (process, from, to).
    Tie(u32, u64, u64),
    /// A kernel byte count (io.bpf.c), for the pipeline to pair with the file it named.
    Io(IoRecord),
}

/// An AG_IO record: what an open file is (its first counted call), or what it moved.
#[derive(Debug)]
pub enum IoRecord {
    /// `io` holds what the file is, with no bytes yet; `ev` is the event it will become.
    Name { key: u64, ev: Event },
    Count {
        key: u64,
        read: u64,
        written: u64,
        ts: Timestamp,
    },
}

#[cfg(test)]
impl Record {
    fn event(self) -> Event {
        match self {
            Record::Event(e) => e,
            other => panic!("not an event: {other:?}"),
        }
    }
}

/// Turns records into events, annotated with what the run's process tree says each process
/// runs and with wall-clock times (the offset from the kernel's monotonic clock).
pub struct Decoder {
    mono_to_wall_ns: i128,
    /// Under enforce: where each compiled rule came from, by rule id.
    rule_names: Vec<String>,
}

impl Decoder {
    pub fn new(mono_to_wall_ns: i128) -> Self {
        Self {
            mono_to_wall_ns,
            rule_names: Vec::new(),
        }
    }

    /// An AG_IO record. A file named through a detached mount names nothing a profile
    /// describes (as for opens): it is left unnamed, and its bytes are not reported.
    fn io(&self, h: &ag_hdr, s: &[u8], tree: &Tree) -> Result<Record> {
        let key = h.arg[0];
        match ag_io_op(h.op as u32) {
            ag_io_op::AG_IO_COUNT => Ok(Record::Io(IoRecord::Count {
                key,
                read: h.arg[1],
                written: h.arg[2],
                ts: self.wall_time(h.ts),
            })),
            ag_io_op::AG_IO_NAME => {
                let mut io = event::Io {
                    port: h.port,
                    ..Default::default()
                };
                if h.family == 0 {
                    // Left unnamed (neither path nor peer): the pipeline drops its counts.
                    if !has(h, ag_flags::AG_F_DETACHED) && has(h, ag_flags::AG_F_RESOLVED) {
                        io.path = Some(components_path(s));
                    }
                } else {
                    io.proto = Some(proto(h.family, h.sotype));
                    let (_, addr, _) = address(h, &[]);
                    // An unconnected socket's peer is all zeroes.
                    if h.port != 0 {
                        io.addr = addr;
                    }
                }
                Ok(Record::Io(IoRecord::Name {
                    key,
                    ev: Event {
                        ts: self.wall_time(h.ts),
                        pid: h.tgid,
                        tid: h.tid,
                        ppid: h.ppid,
                        exe: tree.exe_of(h.tgid).to_string(),
                        kind: Kind::Io(io),
                        cause: None,
                    },
                }))
            }
            other => bail!("unknown io operation {}", other.0),
        }
    }

    /// Names for the rule ids in denial records (enforce::compile's rule sources).
    pub fn set_rule_names(&mut self, names: Vec<String>) {
        self.rule_names = names;
    }

    pub fn wall_time(&self, mono_ns: u64) -> Timestamp {
        let ns = (mono_ns as i128 + self.mono_to_wall_ns).max(0) as u128;
        Timestamp::new(
            std::time::UNIX_EPOCH
                + std::time::Duration::new(
                    (ns / 1_000_000_000) as u64,
                    (ns % 1_000_000_000) as u32,
                ),
        )
    }

    /// One record, read with the tree as it stood before it (the pipeline updates the
    /// tree with each event it decodes).
    pub fn decode(&self, raw: &[u8], tree: &Tree) -> Result<Record> {
        if raw.len() < HDR {
            bail!("short record: {} bytes", raw.len());
        }
        // SAFETY: ag_hdr is plain old data and the length was checked; the ring buffer
        // gives no alignment guarantee beyond 8, so read unaligned anyway.
        let h: ag_hdr = unsafe { std::ptr::read_unaligned(raw.as_ptr().cast()) };
        let size = (h.size as usize).min(raw.len());
        let mut strs: [&[u8]; 4] = [&[]; 4];
        let mut off = HDR;
        for (i, len) in h.len.iter().enumerate() {
            let end = off + *len as usize;
            if end > size {
                bail!(
                    "record kind {} truncated: string {i} ends at {end} of {size}",
                    h.kind
                );
            }
            strs[i] = &raw[off..end];
            off = end;
        }
        let kind = match ag_kind(h.kind as u32) {
            ag_kind::AG_FORK => {
                let child = h.arg[0] as u32;
                Kind::Fork { child }
            }
            ag_kind::AG_EXEC => Kind::Exec(exec(&h, strs)),
            ag_kind::AG_EXIT => {
                let status = h.ret;
                if status & 0x7f == 0 {
                    Kind::Exit {
                        code: Some((status >> 8) & 0xff),
                        signal: None,
                    }
                } else {
                    Kind::Exit {
                        code: None,
                        signal: Some(status & 0x7f),
                    }
                }
            }
            ag_kind::AG_FILE if h.op as u32 == ag_file_op::AG_FILE_EXEC.0 => {
                Kind::Exec(event::Exec {
                    path: arg_path(&h, strs[0], strs[1], ag_flags::AG_F_BASE1.0),
                    error: Errno::from_ret(h.ret),
                    ..Default::default()
                })
            }
            // A path relative to a detached mount's root names nothing a profile can
            // describe (~/.ssh/id_ed25519 would read /id_ed25519): flagged, not learned.
            ag_kind::AG_FILE if has(&h, ag_flags::AG_F_DETACHED) => {
                let f = file(&h, strs)?;
                Kind::Flag(event::Flag {
                    flag: FlagKind::DetachedPath,
                    detail: format!(
                        "{} of {} through a detached mount (open_tree, fsmount) or another mount namespace: the path is relative to that mount's root",
                        format!("{:?}", f.op).to_lowercase(),
                        f.path
                    ),
                    error: f.error,
                })
            }
            ag_kind::AG_FILE => Kind::File(file(&h, strs)?),
            ag_kind::AG_NET => Kind::Net(net(&h, strs[0])?),
            ag_kind::AG_DNS => Kind::Dns(dns(&h, strs[0])),
            ag_kind::AG_FLAG => Kind::Flag(flag(&h, strs)?),
            ag_kind::AG_DENY => Kind::Deny(self.deny(&h, strs)),
            ag_kind::AG_DATA => {
                let op = ag_data_op(h.op as u32);
                if op == ag_data_op::AG_DATA_TLS_BIND {
                    return Ok(Record::Tie(h.tgid, h.arg[0], h.arg[1]));
                }
                return Ok(Record::Data(crate::llm::Payload {
                    ts: self.wall_time(h.ts),
                    pid: h.tgid,
                    tid: h.tid,
                    ppid: h.ppid,
                    exe: tree.exe_of(h.tgid).to_string(),
                    tls: matches!(
                        op,
                        ag_data_op::AG_DATA_TLS_WRITE | ag_data_op::AG_DATA_TLS_READ
                    ),
                    write: matches!(op, ag_data_op::AG_DATA_TLS_WRITE | ag_data_op::AG_DATA_SEND),
                    stream: h.arg[0],
                    total: h.arg[1],
                    offset: h.arg[2],
                    bytes: strs[0].to_vec(),
                }));
            }
            ag_kind::AG_IO => return self.io(&h, strs[0], tree),
            other => bail!("unknown record kind {}", other.0),
        };
        // From its exec on, a process is named by what it executed.
        let exe = crate::tree::executed(&kind).unwrap_or(tree.exe_of(h.tgid));
        let exe = exe.to_string();
        Ok(Record::Event(Event {
            ts: self.wall_time(h.ts),
            pid: h.tgid,
            tid: h.tid,
            ppid: h.ppid,
            exe,
            kind,
            cause: None,
        }))
    }
}

impl Decoder {
    /// A record from enforce.bpf.c: what was denied (or would have been), and why.
    fn deny(&self, h: &ag_hdr, strs: [&[u8]; 4]) -> event::Deny {
        let path = strs[0];
        let (rule, want) = (h.arg[0], h.arg[1]);
        // A unix socket's name comes by its length (want): abstract names hold NULs.
        let unix = &path[..(want as usize).min(path.len())];
        let path = paths::display_bytes(cstr(path));
        let access = crate::abi::accesses(want);
        let rule_reason = || match ag_rule_id(rule as u32) {
            ag_rule_id::AG_RULE_PROTECTED_SET => {
                let cat = crate::profile::protected::category(&path).unwrap_or("protected");
                format!("protected path ({cat}): only a hand-written rule admits it")
            }
            r => match self.rule_names.get(r.0 as usize) {
                Some(name) => format!("{name} does not grant it"),
                None => "no rule of the profile allows it".to_string(),
            },
        };
        let (op, object, access, reason) = match ag_deny_op(u32::from(h.op)) {
            ag_deny_op::AG_DENY_OPEN => (DenyOp::Open, path.clone(), access, rule_reason()),
            ag_deny_op::AG_DENY_EXEC => (DenyOp::Exec, path.clone(), Vec::new(), rule_reason()),
            ag_deny_op::AG_DENY_CONNECT => {
                let (_, addr, _) = address(h, unix);
                let object = if h.family == AF_UNIX {
                    format!("unix socket {addr}")
                } else {
                    format!("{addr}:{}", h.port)
                };
                (
                    DenyOp::Connect,
                    object,
                    Vec::new(),
                    "no [[net]] rule allows this destination".to_string(),
                )
            }
            ag_deny_op::AG_DENY_PTRACE => (
                DenyOp::Ptrace,
                format!("pid {want}"),
                Vec::new(),
                "ptrace of a process outside the tree".to_string(),
            ),
            ag_deny_op::AG_DENY_MODULE => (
                DenyOp::ModuleLoad,
                String::new(),
                Vec::new(),
                "loading kernel modules is denied".to_string(),
            ),
            ag_deny_op::AG_DENY_BPF => (
                DenyOp::Bpf,
                format!("cmd {want}"),
                Vec::new(),
                "bpf() is denied: it could undo enforcement".to_string(),
            ),
            ag_deny_op::AG_DENY_MOUNT => (
                DenyOp::Mount,
                String::new(),
                Vec::new(),
                "mounting is denied: it could hide paths from the profile".to_string(),
            ),
            ag_deny_op::AG_DENY_PATH => (DenyOp::Path, path.clone(), access, rule_reason()),
            ag_deny_op::AG_DENY_SIGNAL => (
                DenyOp::Signal,
                format!("pid {want}, signal {}", h.port),
                Vec::new(),
                "a signal to a process outside the tree".to_string(),
            ),
            ag_deny_op::AG_DENY_CLONE => (
                DenyOp::Clone,
                String::new(),
                Vec::new(),
                if want == 1 {
                    "clone3 into another cgroup: the tree stays in its own".to_string()
                } else {
                    "the process map is full (--max-procs): an untracked child would run unenforced"
                        .to_string()
                },
            ),
            ag_deny_op::AG_DENY_IOCTL => (
                DenyOp::Ioctl,
                ioctl_name(want as u32).to_string(),
                Vec::new(),
                "pushing input into a terminal is denied".to_string(),
            ),
            ag_deny_op::AG_DENY_SOCKET if i32::from(h.family) == libc::AF_NETLINK => (
                DenyOp::Netlink,
                format!("routing message type {}", h.port),
                Vec::new(),
                "changing links, addresses or routes is denied".to_string(),
            ),
            ag_deny_op::AG_DENY_SOCKET => (
                DenyOp::Socket,
                socket_name(h.family as u64, h.port as u64, want),
                Vec::new(),
                "a socket family or type no [[net]] rule can describe".to_string(),
            ),
            ag_deny_op::AG_DENY_DEVICE => (
                DenyOp::Mknod,
                path.clone(),
                Vec::new(),
                format!(
                    "making a {} device node ({}:{}) is denied",
                    if h.port as u32 == libc::S_IFBLK {
                        "block"
                    } else {
                        "character"
                    },
                    want >> 20,
                    want & 0xfffff
                ),
            ),
            ag_deny_op::AG_DENY_TASK => (
                DenyOp::Process,
                format!("pid {want}"),
                Vec::new(),
                "changing a process outside the tree (its limits, scheduling, or signals sent to it) is denied"
                    .to_string(),
            ),
            ag_deny_op::AG_DENY_BIND => (
                DenyOp::Bind,
                format!("port {}", h.port),
                Vec::new(),
                "binding port 53 is denied: answers from it would name addresses".to_string(),
            ),
            ag_deny_op::AG_DENY_FASTOPEN => (
                DenyOp::Socket,
                match want {
                    1 => "TCP Fast Open",
                    2 => "TCP urgent data (MSG_OOB)",
                    4 => "kernel TLS (TCP_ULP)",
                    _ => "a TCP send while connecting",
                }
                .to_string(),
                Vec::new(),
                "the HTTP endpoint check could not follow it: its bytes would leave before the connection is in its map, or out of the stream the server reads".to_string(),
            ),
            ag_deny_op::AG_DENY_XATTR => (
                DenyOp::Xattr,
                if want == 1 { "security.*" } else { "trusted.*" }.to_string(),
                Vec::new(),
                "setting the kernel's extended attributes (file capabilities, labels) is denied"
                    .to_string(),
            ),
            ag_deny_op::AG_DENY_HTTP => {
                // service, method, path: the request as the profile would spell it.
                let [service, method, path, _] = strs.map(|s| paths::display_bytes(cstr(s)));
                let mut reason = match crate::diff::rules::http_class(rule) {
                    Some(r) => format!("{} ({}): {}", r.id, r.severity.name(), r.when),
                    None => "the request cannot be followed as HTTP/1.x (a malformed line, two Host headers, a length that is not a number, or more headers in one send than the kernel reads): denied whatever it asks".to_string(),
                };
                // want: how (endpoint.bpf.c DENY_*): TLS plaintext is checked in a uprobe,
                // which cannot fail the call.
                if want == 1 {
                    reason.push_str(if h.ret != 0 {
                        "; over TLS: the process was killed at SSL_write, before the library had the request"
                    } else {
                        "; over TLS: enforced, the process would be killed at SSL_write"
                    });
                }
                (DenyOp::Http, format!("{method} {service}{path}"), Vec::new(), reason)
            }
            _ => (
                DenyOp::Uncheckable,
                path.clone(),
                Vec::new(),
                "too deep or too long for the kernel to check".to_string(),
            ),
        };
        event::Deny {
            op,
            object,
            access,
            reason,
            enforced: h.ret != 0,
        }
    }
}

fn has(h: &ag_hdr, f: ag_flags) -> bool {
    h.flags & f.0 != 0
}

/// A path the kernel resolved: components, leaf first, each NUL-terminated.
fn components_path(b: &[u8]) -> String {
    let mut parts: Vec<&[u8]> = b
        .split(|c| *c == 0)
        .filter(|p| !p.is_empty() && *p != b"/")
        .collect();
    parts.reverse();
    let mut s = String::with_capacity(b.len() + 1);
    for p in parts {
        s.push('/');
        s.push_str(&paths::display_bytes(p));
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

fn cstr(b: &[u8]) -> &[u8] {
    b.split(|c| *c == 0).next().unwrap_or(b)
}

/// A path argument: the string as given, joined to the base directory the kernel resolved.
fn arg_path(h: &ag_hdr, base: &[u8], raw: &[u8], base_flag: u32) -> String {
    let raw = paths::display_bytes(cstr(raw));
    if h.flags & base_flag != 0 {
        paths::join(&components_path(base), &raw)
    } else {
        paths::normalize(&raw)
    }
}

fn exec(h: &ag_hdr, s: [&[u8]; 4]) -> event::Exec {
    let path = components_path(s[0]);
    let mut argv: Vec<String> = s[1].split(|c| *c == 0).map(paths::argv_bytes).collect();
    if argv.last().is_some_and(|a| a.is_empty()) {
        argv.pop();
    }
    let cwd = components_path(s[2]);
    let name = paths::display_bytes(cstr(s[3]));
    let script =
        (has(h, ag_flags::AG_F_EXEC_SCRIPT) && !name.is_empty()).then(|| paths::join(&cwd, &name));
    let invoked_as = (!name.is_empty() && paths::join(&cwd, &name) != path).then_some(name);
    event::Exec {
        path,
        argv,
        argv_truncated: has(h, ag_flags::AG_F_ARGV_TRUNC),
        cwd,
        invoked_as,
        script,
        via_fd: has(h, ag_flags::AG_F_EXEC_FD),
        unlinked: has(h, ag_flags::AG_F_EXEC_UNLINKED),
        error: None,
    }
}

const O_ACCMODE: u64 = 0o3;
const O_CREAT: u64 = 0o100;
const O_TRUNC: u64 = 0o1000;
const O_APPEND: u64 = 0o2000;
const O_DIRECTORY: u64 = 0o200000;
const O_PATH: u64 = 0o10000000;

/// The access an open asked for (and, when it succeeded, what the kernel says it did).
pub fn open_access(flags: u64, created: bool, dir: bool, succeeded: bool) -> Vec<Access> {
    let mut a = Vec::new();
    if flags & O_PATH != 0 {
        a.push(Access::Path);
        return a;
    }
    if dir || flags & O_DIRECTORY != 0 {
        a.push(Access::List);
    } else {
        match flags & O_ACCMODE {
            0 => a.push(Access::Read),
            1 => a.push(Access::Write),
            _ => a.extend([Access::Read, Access::Write]),
        }
    }
    if flags & O_APPEND != 0 && flags & O_ACCMODE != 0 {
        a.push(Access::Append);
    }
    // O_CREAT on an existing file creates nothing: trust the kernel's word when it has one.
    if (succeeded && created) || (!succeeded && flags & O_CREAT != 0) {
        a.push(Access::Create);
    }
    if flags & O_TRUNC != 0 && flags & O_ACCMODE != 0 {
        a.push(Access::Truncate);
    }
    a
}

fn file(h: &ag_hdr, s: [&[u8]; 4]) -> Result<event::File> {
    let op = match ag_file_op(h.op as u32) {
        ag_file_op::AG_FILE_OPEN => FileOp::Open,
        ag_file_op::AG_FILE_UNLINK => FileOp::Unlink,
        ag_file_op::AG_FILE_RMDIR => FileOp::Rmdir,
        ag_file_op::AG_FILE_RENAME => FileOp::Rename,
        ag_file_op::AG_FILE_CHMOD => FileOp::Chmod,
        ag_file_op::AG_FILE_MKDIR => FileOp::Mkdir,
        ag_file_op::AG_FILE_LINK => FileOp::Link,
        ag_file_op::AG_FILE_SYMLINK => FileOp::Symlink,
        ag_file_op::AG_FILE_INTERP => FileOp::Interp,
        ag_file_op::AG_FILE_TRUNCATE => FileOp::Truncate,
        ag_file_op::AG_FILE_CHOWN => FileOp::Chown,
        ag_file_op::AG_FILE_UTIMES => FileOp::Utimes,
        other => bail!("unknown file operation {}", other.0),
    };
    let resolved = has(h, ag_flags::AG_F_RESOLVED);
    let path = if resolved {
        components_path(s[0])
    } else {
        arg_path(h, s[0], s[1], ag_flags::AG_F_BASE1.0)
    };
    let target = match op {
        FileOp::Symlink => Some(paths::display_bytes(cstr(s[3]))),
        FileOp::Rename | FileOp::Link => Some(arg_path(h, s[2], s[3], ag_flags::AG_F_BASE2.0)),
        _ => None,
    };
    let flags = h.arg[0];
    let access = match op {
        FileOp::Open => open_access(
            flags,
            has(h, ag_flags::AG_F_CREATED),
            has(h, ag_flags::AG_F_DIR),
            h.ret >= 0,
        ),
        FileOp::Unlink | FileOp::Rmdir => vec![Access::Delete],
        FileOp::Rename => vec![Access::Rename],
        FileOp::Chmod | FileOp::Chown => vec![Access::Chmod],
        FileOp::Truncate => vec![Access::Truncate],
        FileOp::Utimes => vec![Access::Times],
        FileOp::Mkdir => vec![Access::Mkdir],
        FileOp::Link => vec![Access::Link],
        FileOp::Symlink => vec![Access::Symlink],
        FileOp::Interp => vec![Access::Read],
    };
    let mode = match op {
        FileOp::Open if flags & O_CREAT != 0 => Some(h.arg[1] as u32 & 0o7777),
        FileOp::Chmod | FileOp::Mkdir => Some(h.arg[1] as u32 & 0o7777),
        _ => None,
    };
    Ok(event::File {
        op,
        path,
        resolved,
        target,
        access,
        flags,
        mode,
        truncated: has(h, ag_flags::AG_F_PATH_TRUNC),
        error: Errno::from_ret(h.ret),
    })
}

// The families the sensor decodes, as the kernel's u16 sa_family.
const AF_UNIX: u16 = libc::AF_UNIX as u16;
const AF_INET: u16 = libc::AF_INET as u16;
const AF_INET6: u16 = libc::AF_INET6 as u16;

fn proto(family: u16, sotype: u32) -> Proto {
    let inet = family == AF_INET || family == AF_INET6;
    match (sotype & 0xf) as i32 {
        libc::SOCK_STREAM if inet => Proto::Tcp,
        libc::SOCK_DGRAM if inet => Proto::Udp,
        libc::SOCK_STREAM => Proto::Stream,
        libc::SOCK_DGRAM => Proto::Dgram,
        libc::SOCK_RAW => Proto::Raw,
        libc::SOCK_SEQPACKET => Proto::Seqpacket,
        _ => Proto::Other,
    }
}

/// (family, address text, v4-mapped)
fn address(h: &ag_hdr, unix: &[u8]) -> (Family, String, bool) {
    match h.family {
        AF_INET => {
            let a = Ipv4Addr::new(h.addr[0], h.addr[1], h.addr[2], h.addr[3]);
            (Family::Inet, a.to_string(), false)
        }
        AF_INET6 => {
            let a = Ipv6Addr::from(h.addr);
            match a.to_ipv4_mapped() {
                Some(v4) => (Family::Inet6, v4.to_string(), true),
                None => (Family::Inet6, a.to_string(), false),
            }
        }
        AF_UNIX => {
            let text = match unix.first() {
                // Abstract: a leading NUL, then a name of exactly the remaining length.
                Some(0) => format!("@{}", paths::display_unix(&unix[1..])),
                // Bound relative to its binder's directory: marked so, never to be read
                // as an absolute or abstract name (`@/tmp/.X11-unix/X0` as a file name).
                Some(b'/') => paths::display_unix(cstr(unix)),
                Some(_) => format!("./{}", paths::display_unix(cstr(unix))),
                None => String::new(), // unnamed (autobind or socketpair)
            };
            (Family::Unix, text, false)
        }
        f => (Family::from_af(f), String::new(), false),
    }
}

fn net(h: &ag_hdr, unix: &[u8]) -> Result<event::Net> {
    let op = match ag_net_op(h.op as u32) {
        ag_net_op::AG_NET_CONNECT => NetOp::Connect,
        ag_net_op::AG_NET_BIND => NetOp::Bind,
        ag_net_op::AG_NET_LISTEN => NetOp::Listen,
        ag_net_op::AG_NET_SENDTO => NetOp::Sendto,
        ag_net_op::AG_NET_SENDMSG => NetOp::Sendmsg,
        ag_net_op::AG_NET_SOCKET => NetOp::Socket,
        other => bail!("unknown network operation {}", other.0),
    };
    let (family, addr, mapped) = match op {
        // No address: the socket was never made.
        NetOp::Socket => (Family::from_af(h.family), String::new(), false),
        _ => address(h, unix),
    };
    Ok(event::Net {
        op,
        proto: proto(h.family, h.sotype),
        family,
        addr,
        port: h.port,
        mapped,
        name: None,
        error: Errno::from_ret(h.ret),
    })
}

fn dns(h: &ag_hdr, payload: &[u8]) -> event::Dns {
    let (_, addr, _) = address(h, &[]);
    let server = if h.family == AF_INET6 && !addr.contains('.') {
        format!("[{addr}]:{}", h.port)
    } else {
        format!("{addr}:{}", h.port)
    };
    let answer = h.flags & ag_flags::AG_F_ANSWER.0 != 0;
    let mut names = Vec::new();
    let mut qtypes = Vec::new();
    let mut addrs = Vec::new();
    // A query's send failed (an errno), or the answer says why it has no addresses (an
    // rcode): the event log names either.
    let mut error = if answer {
        None
    } else {
        Errno::from_ret(h.ret).map(|e| e.to_string())
    };
    let mut id = None;
    if let Ok(p) = simple_dns::Packet::parse(payload) {
        id = Some(p.id());
        if answer {
            // Every A and AAAA record of the answer: the resolver followed the CNAMEs.
            for rr in &p.answers {
                let addr = match &rr.rdata {
                    simple_dns::rdata::RData::A(a) => Ipv4Addr::from(a.address).to_string(),
                    simple_dns::rdata::RData::AAAA(a) => Ipv6Addr::from(a.address).to_string(),
                    _ => continue,
                };
                addrs.push(event::DnsAddr { addr, ttl: rr.ttl });
            }
            use simple_dns::RCODE;
            error = match p.rcode() {
                RCODE::NoError => None,
                // The names operators know them by (RFC 1035, 2136).
                RCODE::FormatError => Some("FORMERR".into()),
                RCODE::ServerFailure => Some("SERVFAIL".into()),
                RCODE::NameError => Some("NXDOMAIN".into()),
                RCODE::NotImplemented => Some("NOTIMP".into()),
                RCODE::Refused => Some("REFUSED".into()),
                other => Some(format!("{other:?}").to_uppercase()),
            };
        }
        for q in &p.questions {
            // A label may hold any byte: printed and stored escaped.
            let name = paths::printable(
                &q.qname
                    .to_string()
                    .trim_end_matches('.')
                    .to_ascii_lowercase(),
            )
            .into_owned();
            if !names.contains(&name) {
                names.push(name);
            }
            let t = match q.qtype {
                simple_dns::QTYPE::TYPE(t) => format!("{t:?}"),
                other => format!("{other:?}"),
            };
            if !qtypes.contains(&t) {
                qtypes.push(t);
            }
        }
    }
    if answer && names.is_empty() {
        error.get_or_insert_with(|| "an answer agentguard could not parse".into());
    }
    event::Dns {
        names,
        qtypes,
        server,
        answer,
        addrs,
        error,
        id,
    }
}

fn ptrace_request(r: u64) -> String {
    let name = match r {
        0 => "PTRACE_TRACEME",
        1 => "PTRACE_PEEKTEXT",
        2 => "PTRACE_PEEKDATA",
        4 => "PTRACE_POKETEXT",
        5 => "PTRACE_POKEDATA",
        7 => "PTRACE_CONT",
        8 => "PTRACE_KILL",
        12 => "PTRACE_GETREGS",
        13 => "PTRACE_SETREGS",
        16 => "PTRACE_ATTACH",
        17 => "PTRACE_DETACH",
        0x4200 => "PTRACE_SETOPTIONS",
        0x4206 => "PTRACE_SEIZE",
        0x4207 => "PTRACE_INTERRUPT",
        _ => return format!("ptrace request {r}"),
    };
    name.to_string()
}

fn flag(h: &ag_hdr, s: [&[u8]; 4]) -> Result<event::Flag> {
    let a = h.arg;
    let (flag, detail) = match ag_flag_op(h.op as u32) {
        ag_flag_op::AG_FLAG_IO_URING => (
            FlagKind::IoUring,
            format!("io_uring_setup({} entries): operations submitted through io_uring are not seen by syscall tracepoints", a[0]),
        ),
        ag_flag_op::AG_FLAG_AIO => (
            FlagKind::Aio,
            format!("io_setup({} events): reads and writes submitted through Linux AIO (io_submit) are not counted in byte volumes", a[0]),
        ),
        ag_flag_op::AG_FLAG_PTRACE => (FlagKind::Ptrace, format!("{} pid {}", ptrace_request(a[0]), a[1] as i64)),
        ag_flag_op::AG_FLAG_SETUID => (FlagKind::Setuid, format!("{} to {}", syscall_name(a[0]), a[2] as i32)),
        ag_flag_op::AG_FLAG_SETGID => (FlagKind::Setgid, format!("{} to {}", syscall_name(a[0]), a[2] as i32)),
        ag_flag_op::AG_FLAG_CAPSET => (
            FlagKind::Capset,
            format!("pid {} effective {:#x} permitted {:#x}", a[0] as i32, a[1], a[2]),
        ),
        ag_flag_op::AG_FLAG_MEMFD => (
            FlagKind::MemfdCreate,
            format!("memfd_create({:?}, {:#x})", paths::display_bytes(cstr(s[1])), a[0]),
        ),
        ag_flag_op::AG_FLAG_MODULE => {
            let file = if has(h, ag_flags::AG_F_RESOLVED) { format!(" {}", components_path(s[0])) } else { String::new() };
            (FlagKind::ModuleLoad, format!("{}{file}", syscall_name(a[0])))
        }
        ag_flag_op::AG_FLAG_BPF => (FlagKind::Bpf, format!("bpf({})", bpf_cmd(a[0]))),
        ag_flag_op::AG_FLAG_COMPAT_SYSCALL => (
            FlagKind::CompatSyscall,
            format!("32-bit syscall {}: the sensor does not decode 32-bit syscalls of this process", a[0]),
        ),
        ag_flag_op::AG_FLAG_OPEN_BY_HANDLE => {
            (FlagKind::OpenByHandle, format!("open_by_handle_at(mount fd {}, flags {:#o})", a[0] as i32, a[1]))
        }
        ag_flag_op::AG_FLAG_TERMINAL => (
            FlagKind::Terminal,
            format!("ioctl(fd {}, {}): input pushed into a terminal", a[0] as i32, ioctl_name(a[1] as u32)),
        ),
        ag_flag_op::AG_FLAG_SOCKET => (FlagKind::Socket, socket_name(a[0], a[1], a[2])),
        ag_flag_op::AG_FLAG_SIGNAL => {
            let target = match a[1] as i64 {
                -1 => "every process (-1)".to_string(),
                p if p < 0 => format!("process group {}", -p),
                p => format!("pid {p}"),
            };
            (
                FlagKind::Signal,
                format!("{} signal {} to {target}, outside the tree", signal_syscall(a[0]), a[2] as i32),
            )
        }
        ag_flag_op::AG_FLAG_DEVICE => {
            let (mode, dev) = (a[0] & 0xffff_ffff, a[0] >> 32);
            let kind = if mode & 0o170000 == 0o060000 { "block" } else { "character" };
            (
                FlagKind::Device,
                format!(
                    "mknod {:?}: a {kind} device {}:{}",
                    paths::display_bytes(cstr(s[1])),
                    // The kernel's dev_t encoding for mknod's argument (new_decode_dev).
                    ((dev & 0xfff00) >> 8),
                    (dev & 0xff) | ((dev >> 12) & 0xfff00)
                ),
            )
        }
        ag_flag_op::AG_FLAG_CGROUP => (
            FlagKind::Cgroup,
            "clone3 into another cgroup (CLONE_INTO_CGROUP)".to_string(),
        ),
        ag_flag_op::AG_FLAG_MOUNT => (FlagKind::Mount, format!("{}()", mount_syscall(a[0]))),
        ag_flag_op::AG_FLAG_PROCESS => (
            FlagKind::ProcessAccess,
            format!("{}() on pid or pidfd {}", process_syscall(a[0]), a[1] as i32),
        ),
        ag_flag_op::AG_FLAG_FD_RECEIVED => {
            let file = if has(h, ag_flags::AG_F_RESOLVED) {
                components_path(s[0])
            } else {
                "a file with no name here (a socket, a pipe, or outside this mount namespace)"
                    .to_string()
            };
            let how = match a[0] {
                0 => "pidfd_getfd: a descriptor taken from another process".to_string(),
                1 => "a descriptor received over a unix socket".to_string(),
                n => format!("{n} descriptors received over a unix socket, the first"),
            };
            (FlagKind::FdReceived, format!("{how}: {file}"))
        }
        ag_flag_op::AG_FLAG_XATTR => (
            FlagKind::Xattr,
            format!("setxattr {:?}", paths::display_bytes(cstr(s[1]))),
        ),
        other => bail!("unknown flag {}", other.0),
    };
    Ok(event::Flag {
        flag,
        detail,
        error: Errno::from_ret(h.ret),
    })
}

/// A syscall's name from its number, as the C library of this architecture numbers it
/// (the kernel side's src/bpf/syscalls.h holds the same numbers for the BPF target).
fn named(nr: u64, names: &[(libc::c_long, &'static str)], other: &'static str) -> &'static str {
    names
        .iter()
        .find(|(n, _)| *n as u64 == nr)
        .map_or(other, |(_, name)| name)
}

fn signal_syscall(nr: u64) -> &'static str {
    let names = [
        (libc::SYS_kill, "kill"),
        (libc::SYS_tkill, "tkill"),
        (libc::SYS_tgkill, "tgkill"),
        (libc::SYS_rt_sigqueueinfo, "rt_sigqueueinfo"),
        (libc::SYS_rt_tgsigqueueinfo, "rt_tgsigqueueinfo"),
        (libc::SYS_pidfd_send_signal, "pidfd_send_signal"),
    ];
    named(nr, &names, "signal")
}

fn mount_syscall(nr: u64) -> &'static str {
    let names = [
        (libc::SYS_mount, "mount"),
        (libc::SYS_umount2, "umount2"),
        (libc::SYS_pivot_root, "pivot_root"),
        (libc::SYS_open_tree, "open_tree"),
        (libc::SYS_move_mount, "move_mount"),
        (libc::SYS_fsopen, "fsopen"),
        (libc::SYS_fsmount, "fsmount"),
        (libc::SYS_fspick, "fspick"),
    ];
    named(nr, &names, "mount")
}

fn process_syscall(nr: u64) -> &'static str {
    let names = [
        (libc::SYS_process_vm_readv, "process_vm_readv"),
        (libc::SYS_process_vm_writev, "process_vm_writev"),
    ];
    named(nr, &names, "pidfd_getfd")
}

fn ioctl_name(cmd: u32) -> &'static str {
    match u64::from(cmd) {
        c if c == libc::TIOCSTI as u64 => "TIOCSTI",
        c if c == libc::TIOCLINUX as u64 => "TIOCLINUX",
        _ => "ioctl",
    }
}

/// socket(2)'s arguments, named where they have a common name.
fn socket_name(family: u64, ty: u64, protocol: u64) -> String {
    let f = match i32::try_from(family).unwrap_or(-1) {
        libc::AF_UNIX => "unix".to_string(),
        libc::AF_INET => "inet".to_string(),
        libc::AF_INET6 => "inet6".to_string(),
        libc::AF_NETLINK => "netlink".to_string(),
        libc::AF_PACKET => "packet".to_string(),
        libc::AF_ALG => "alg".to_string(),
        libc::AF_VSOCK => "vsock".to_string(),
        libc::AF_XDP => "xdp".to_string(),
        _ => format!("family {family}"),
    };
    // The low bits: SOCK_NONBLOCK and SOCK_CLOEXEC sit above them.
    let t = match (ty & 0xf) as i32 {
        libc::SOCK_STREAM => "stream".to_string(),
        libc::SOCK_DGRAM => "dgram".to_string(),
        libc::SOCK_RAW => "raw".to_string(),
        libc::SOCK_SEQPACKET => "seqpacket".to_string(),
        t => format!("type {t}"),
    };
    format!("socket({f}, {t}, protocol {protocol})")
}

fn syscall_name(nr: u64) -> &'static str {
    let names = [
        (libc::SYS_setuid, "setuid"),
        (libc::SYS_setgid, "setgid"),
        (libc::SYS_setreuid, "setreuid"),
        (libc::SYS_setregid, "setregid"),
        (libc::SYS_setresuid, "setresuid"),
        (libc::SYS_setresgid, "setresgid"),
        (libc::SYS_setfsuid, "setfsuid"),
        (libc::SYS_setfsgid, "setfsgid"),
        (libc::SYS_init_module, "init_module"),
        (libc::SYS_finit_module, "finit_module"),
    ];
    named(nr, &names, "syscall")
}

fn bpf_cmd(cmd: u64) -> String {
    let name = match cmd {
        0 => "BPF_MAP_CREATE",
        1 => "BPF_MAP_LOOKUP_ELEM",
        2 => "BPF_MAP_UPDATE_ELEM",
        3 => "BPF_MAP_DELETE_ELEM",
        4 => "BPF_MAP_GET_NEXT_KEY",
        5 => "BPF_PROG_LOAD",
        8 => "BPF_PROG_ATTACH",
        17 => "BPF_RAW_TRACEPOINT_OPEN",
        28 => "BPF_LINK_CREATE",
        _ => return format!("cmd {cmd}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a record the way sensor.bpf.c lays it out.
    fn record(mut h: ag_hdr, strs: &[&[u8]]) -> Vec<u8> {
        for (i, s) in strs.iter().enumerate() {
            h.len[i] = s.len() as u16;
        }
        h.size = (HDR + strs.iter().map(|s| s.len()).sum::<usize>()) as u32;
        let mut out = vec![0u8; HDR];
        // SAFETY: out has room for one ag_hdr.
        unsafe { std::ptr::write_unaligned(out.as_mut_ptr().cast(), h) };
        for s in strs {
            out.extend_from_slice(s);
        }
        out
    }

    fn hdr(kind: ag_kind, op: u32) -> ag_hdr {
        ag_hdr {
            kind: kind.0 as u16,
            op: op as u16,
            tgid: 100,
            tid: 101,
            ppid: 1,
            ts: 5,
            ..Default::default()
        }
    }

    #[test]
    fn resolved_open_reverses_components_and_names_access() {
        let mut h = hdr(ag_kind::AG_FILE, ag_file_op::AG_FILE_OPEN.0);
        h.flags = ag_flags::AG_F_RESOLVED.0 | ag_flags::AG_F_CREATED.0;
        h.arg[0] = 0o1 | 0o100 | 0o1000; // O_WRONLY|O_CREAT|O_TRUNC
        h.arg[1] = 0o644;
        h.ret = 3;
        let mut tree = Tree::default();
        tree.add_root(100, "/usr/bin/python3");
        let ev = Decoder::new(0)
            .decode(&record(h, &[b"out.txt\0work\0tmp\0"]), &tree)
            .unwrap()
            .event();
        assert_eq!(ev.exe, "/usr/bin/python3");
        let Kind::File(f) = ev.kind else {
            panic!("{ev:?}")
        };
        assert_eq!(f.path, "/tmp/work/out.txt");
        assert!(f.resolved);
        assert_eq!(
            f.access,
            vec![Access::Write, Access::Create, Access::Truncate]
        );
        assert_eq!(f.mode, Some(0o644));
        assert_eq!(f.error, None);
    }

    #[test]
    fn failed_relative_open_is_joined_to_its_base_with_errno() {
        let mut h = hdr(ag_kind::AG_FILE, ag_file_op::AG_FILE_OPEN.0);
        h.flags = ag_flags::AG_F_BASE1.0;
        h.ret = -2;
        let ev = Decoder::new(0)
            .decode(
                &record(h, &[b"sub\0home\0", b"../etc/./x\0"]),
                &Tree::default(),
            )
            .unwrap()
            .event();
        let Kind::File(f) = ev.kind else { panic!() };
        assert_eq!(f.path, "/home/etc/x");
        assert!(!f.resolved);
        assert_eq!(f.error, Some(Errno::ENOENT));
        assert_eq!(f.access, vec![Access::Read]);
    }

    #[test]
    fn rename_carries_both_names() {
        let mut h = hdr(ag_kind::AG_FILE, ag_file_op::AG_FILE_RENAME.0);
        h.flags = ag_flags::AG_F_BASE2.0;
        let ev = Decoder::new(0)
            .decode(
                &record(h, &[b"", b"/a/b\0", b"tmp\0", b"c\0"]),
                &Tree::default(),
            )
            .unwrap()
            .event();
        let Kind::File(f) = ev.kind else { panic!() };
        assert_eq!(
            (f.path.as_str(), f.target.as_deref()),
            ("/a/b", Some("/tmp/c"))
        );
    }

    #[test]
    fn exec_splits_argv_and_the_tree_names_the_exe_through_fork_and_exec() {
        let d = Decoder::new(1_000_000_000);
        let mut tree = Tree::default();
        tree.add_root(100, "/bin/bash");
        let mut f = hdr(ag_kind::AG_FORK, 0);
        f.arg[0] = 200;
        let ev = d.decode(&record(f, &[]), &tree).unwrap().event();
        assert_eq!(ev.kind, Kind::Fork { child: 200 });
        assert_eq!(ev.exe, "/bin/bash");
        tree.update(&ev);
        assert_eq!(ev.ts.to_string(), "1970-01-01T00:00:01.000000005Z");

        let mut h = hdr(ag_kind::AG_EXEC, 0);
        h.tgid = 200;
        h.flags = ag_flags::AG_F_RESOLVED.0 | ag_flags::AG_F_ARGV_TRUNC.0;
        let ev = d
            .decode(
                &record(
                    h,
                    &[
                        b"dash\0bin\0usr\0",
                        b"sh\0./run.sh\0x",
                        b"w\0tmp\0",
                        b"./run.sh\0",
                    ],
                ),
                &tree,
            )
            .unwrap()
            .event();
        assert_eq!(ev.exe, "/usr/bin/dash");
        tree.update(&ev);
        let Kind::Exec(x) = ev.kind else { panic!() };
        assert_eq!(x.argv, vec!["sh", "./run.sh", "x"]);
        assert!(x.argv_truncated);
        assert_eq!(x.cwd, "/tmp/w");
        assert_eq!(x.invoked_as.as_deref(), Some("./run.sh"));

        // An exec that failed leaves the process running what it ran.
        let mut h = hdr(ag_kind::AG_FILE, ag_file_op::AG_FILE_EXEC.0);
        h.tgid = 200;
        h.ret = -2;
        let ev = d
            .decode(&record(h, &[b"", b"/usr/bin/nope\0"]), &tree)
            .unwrap()
            .event();
        let Kind::Exec(x) = &ev.kind else {
            panic!("{ev:?}")
        };
        assert_eq!(x.error, Some(Errno::ENOENT));
        assert_eq!(ev.exe, "/usr/bin/dash");
        tree.update(&ev);

        let mut e = hdr(ag_kind::AG_EXIT, 0);
        e.tgid = 200;
        e.ret = 3 << 8;
        let ev = d.decode(&record(e, &[]), &tree).unwrap().event();
        assert_eq!(ev.exe, "/usr/bin/dash");
        assert_eq!(
            ev.kind,
            Kind::Exit {
                code: Some(3),
                signal: None
            }
        );
        let mut e = hdr(ag_kind::AG_EXIT, 0);
        e.ret = 9;
        assert_eq!(
            d.decode(&record(e, &[]), &Tree::default())
                .unwrap()
                .event()
                .kind,
            Kind::Exit {
                code: None,
                signal: Some(9)
            }
        );
    }

    #[test]
    fn net_addresses_v4_v6_mapped_and_unix() {
        let mut h = hdr(ag_kind::AG_NET, ag_net_op::AG_NET_CONNECT.0);
        h.family = AF_INET6;
        h.sotype = 1;
        h.port = 8080;
        h.addr = Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped().octets();
        h.ret = -111;
        let Kind::Net(n) = Decoder::new(0)
            .decode(&record(h, &[]), &Tree::default())
            .unwrap()
            .event()
            .kind
        else {
            panic!()
        };
        assert_eq!(
            (n.addr.as_str(), n.mapped, n.port, n.proto),
            ("127.0.0.1", true, 8080, Proto::Tcp)
        );
        assert_eq!(n.error, Some(Errno::ECONNREFUSED));

        let mut h = hdr(ag_kind::AG_NET, ag_net_op::AG_NET_CONNECT.0);
        h.family = AF_UNIX;
        h.sotype = 1;
        let Kind::Net(n) = Decoder::new(0)
            .decode(&record(h, &[b"\0hidden"]), &Tree::default())
            .unwrap()
            .event()
            .kind
        else {
            panic!()
        };
        assert_eq!((n.addr.as_str(), n.proto), ("@hidden", Proto::Stream));
        let Kind::Net(n) = Decoder::new(0)
            .decode(&record(h, &[b"/run/x.sock\0\0\0"]), &Tree::default())
            .unwrap()
            .event()
            .kind
        else {
            panic!()
        };
        assert_eq!(n.addr, "/run/x.sock");
    }

    #[test]
    fn dns_query_names_are_parsed() {
        let mut q = simple_dns::Packet::new_query(7);
        q.questions.push(simple_dns::Question::new(
            simple_dns::Name::new_unchecked("API.Example.com"),
            simple_dns::TYPE::AAAA.into(),
            simple_dns::CLASS::IN.into(),
            false,
        ));
        let payload = q.build_bytes_vec().unwrap();
        let mut h = hdr(ag_kind::AG_DNS, ag_net_op::AG_NET_SENDTO.0);
        h.family = AF_INET;
        h.sotype = 2;
        h.port = 53;
        h.addr[..4].copy_from_slice(&[127, 0, 0, 53]);
        let Kind::Dns(d) = Decoder::new(0)
            .decode(&record(h, &[&payload]), &Tree::default())
            .unwrap()
            .event()
            .kind
        else {
            panic!()
        };
        assert_eq!(d.names, vec!["api.example.com"]);
        assert_eq!(d.qtypes, vec!["AAAA"]);
        assert_eq!(d.server, "127.0.0.53:53");
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        let d = Decoder::new(0);
        assert!(d.decode(&[1, 2, 3], &Tree::default()).is_err());
        let h = hdr(ag_kind(99), 0);
        assert!(d.decode(&record(h, &[]), &Tree::default()).is_err());
        let mut h = hdr(ag_kind::AG_FILE, 1);
        h.len[0] = 500; // claims more than the record holds
        let mut r = record(h, &[]);
        r.truncate(HDR);
        let mut hh: ag_hdr = unsafe { std::ptr::read_unaligned(r.as_ptr().cast()) };
        hh.len[0] = 500;
        unsafe { std::ptr::write_unaligned(r.as_mut_ptr().cast(), hh) };
        assert!(d.decode(&r, &Tree::default()).is_err());
    }
}
