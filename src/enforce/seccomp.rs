//! What the Landlock backend cannot say with Landlock: system calls that reach past the
//! tree whatever path they name, refused with a seccomp filter the tree installs on itself
//! (after no_new_privs, before exec). Under BPF LSM the same classes are denied by LSM
//! hooks, with a report (enforce.bpf.c); here the call fails with EPERM and the sensor's
//! record of it (a flag) is the report.
//!
//! - clone3: its CLONE_INTO_CGROUP starts a child outside the tree's cgroup, where the
//!   egress programs and the watchdog's cgroup.kill do not reach, and seccomp cannot read
//!   clone3's arguments (they are in memory). It fails with ENOSYS, on which the C
//!   libraries fall back to clone(2), which has no such flag.
//! - ioctl TIOCSTI and TIOCLINUX: input pushed into a terminal.
//! - sockets no net rule describes: raw IP, packet, and families other than unix, IPv4,
//!   IPv6 and netlink's routing protocol.
//! - device nodes (mknod of a character or block device).
//! - mounts, old and new API (a detached mount's paths are relative to its own root).
//! - kernel modules, bpf(), kexec, io_uring (its operations pass no seccomp filter).
//! - TCP Fast Open (sendto, sendmsg, sendmmsg with MSG_FASTOPEN; TCP_FASTOPEN_CONNECT): its
//!   data leaves before the connection reaches the HTTP endpoint check (endpoint.bpf.c);
//!   and urgent data (MSG_OOB), a byte the check would see and the server's stream not;
//!   and kernel TLS (TCP_ULP), whose plaintext never passes SSL_write.
//! - prlimit64 on another process (limits that would disarm the watchdog or agentguard).
//! - every x32 and 32-bit system call: their numbers differ, so a filter of 64-bit
//!   numbers would not see them.
//!
//! And two capabilities the tree loses ([`drop_capabilities`]): CAP_NET_ADMIN, with which a
//! root tree could add routes, addresses or a tunnel through netlink, messages on a socket
//! that name resolution needs open (BPF LSM denies them by type, `netlink_send`); and
//! CAP_SETFCAP, with which it could give a program file capabilities (`security.capability`)
//! that a later run outside the tree would have (BPF LSM: `inode_setxattr`).
use std::collections::BTreeMap;

use anyhow::{Context, Result};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541C;
const S_IFMT: u64 = 0o170000;
const S_IFCHR: u64 = 0o020000;
const S_IFBLK: u64 = 0o060000;
/// Where the x32 ABI's numbers start: the high bit of the syscall number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The two filters, in the order to install them.
pub fn filters() -> Result<Vec<BpfProgram>> {
    let eperm = deny_list()?;
    let enosys = compile(BTreeMap::from([(libc::SYS_clone3, vec![])]), libc::ENOSYS)?;
    Ok(vec![eperm, enosys])
}

fn deny_list() -> Result<BpfProgram> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    rules.insert(
        libc::SYS_ioctl,
        vec![
            rule(&[(1, Len::Dword, Op::Eq, TIOCSTI)])?,
            rule(&[(1, Len::Dword, Op::Eq, TIOCLINUX)])?,
        ],
    );
    let (unix, inet, inet6, netlink) = (1, 2, 10, 16);
    let mut socket = vec![rule(&[
        (0, Len::Dword, Op::Ne, unix),
        (0, Len::Dword, Op::Ne, inet),
        (0, Len::Dword, Op::Ne, inet6),
        (0, Len::Dword, Op::Ne, netlink),
    ])?];
    for fam in [inet, inet6] {
        // Types other than stream and datagram: raw, rdm, seqpacket, dccp, packet.
        for ty in [3, 4, 5, 6, 10] {
            socket.push(rule(&[
                (0, Len::Dword, Op::Eq, fam),
                (1, Len::Dword, Op::MaskedEq(0xf), ty),
            ])?);
        }
        // Protocols other than the default, TCP and UDP. ICMP too: a ping socket's
        // datagrams do not pass the cgroup sendmsg programs, which see UDP only.
        socket.push(rule(&[
            (0, Len::Dword, Op::Eq, fam),
            (2, Len::Dword, Op::Ne, 0),
            (2, Len::Dword, Op::Ne, 6),
            (2, Len::Dword, Op::Ne, 17),
        ])?);
    }
    socket.push(rule(&[
        (0, Len::Dword, Op::Eq, netlink),
        (2, Len::Dword, Op::Ne, 0),
    ])?);
    rules.insert(libc::SYS_socket, socket);
    // TCP Fast Open: the data leaves with the SYN, before the connection is in the HTTP
    // endpoint check's map (src/bpf/endpoint.bpf.c sees established connections only).
    // Urgent data too: the server's stream leaves the byte out, the check would not.
    for (nr, flags_arg) in [
        (libc::SYS_sendto, 3),
        (libc::SYS_sendmsg, 2),
        (libc::SYS_sendmmsg, 3),
    ] {
        let mut flagged = Vec::new();
        for flag in [libc::MSG_FASTOPEN as u64, libc::MSG_OOB as u64] {
            flagged.push(rule(&[(flags_arg, Len::Dword, Op::MaskedEq(flag), flag)])?);
        }
        rules.insert(nr, flagged);
    }
    // TCP_ULP: kernel TLS, whose plaintext goes by write() and sendfile() after a
    // handshake in user space, past SSL_write and with the connection already opaque.
    let mut tcp = Vec::new();
    for opt in [libc::TCP_FASTOPEN_CONNECT, libc::TCP_ULP] {
        tcp.push(rule(&[
            (1, Len::Dword, Op::Eq, libc::IPPROTO_TCP as u64),
            (2, Len::Dword, Op::Eq, opt as u64),
        ])?);
    }
    rules.insert(libc::SYS_setsockopt, tcp);
    // Limits of another process (pid not 0, a new limit given): RLIMIT_NOFILE 0 on the
    // watchdog, RLIMIT_CPU on agentguard. Landlock does not scope them.
    rules.insert(
        libc::SYS_prlimit64,
        vec![rule(&[
            (0, Len::Dword, Op::Ne, 0),
            (2, Len::Qword, Op::Ne, 0),
        ])?],
    );
    for (nr, mode_arg) in [(libc::SYS_mknod, 1), (libc::SYS_mknodat, 2)] {
        rules.insert(
            nr,
            vec![
                rule(&[(mode_arg, Len::Dword, Op::MaskedEq(S_IFMT), S_IFCHR)])?,
                rule(&[(mode_arg, Len::Dword, Op::MaskedEq(S_IFMT), S_IFBLK)])?,
            ],
        );
    }
    for nr in [
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_open_tree,
        libc::SYS_move_mount,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_mount_setattr,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_bpf,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        // io_uring submits socket() and other calls that no seccomp filter sees.
        libc::SYS_io_uring_setup,
    ] {
        rules.insert(nr, vec![]);
    }
    compile(rules, libc::EPERM)
}

fn rule(conds: &[(u8, Len, Op, u64)]) -> Result<SeccompRule> {
    let c = conds
        .iter()
        .map(|(i, l, o, v)| SeccompCondition::new(*i, l.clone(), o.clone(), *v))
        .collect::<Result<Vec<_>, _>>()
        .context("a seccomp condition")?;
    SeccompRule::new(c).context("a seccomp rule")
}

/// A filter that fails the listed calls with `errno` and allows the rest; a system call
/// of another architecture, or of the x32 ABI, fails with ENOSYS.
fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> Result<BpfProgram> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        TargetArch::x86_64,
    )
    .context("building the seccomp filter")?;
    let mut prog: BpfProgram = filter.try_into().context("compiling the seccomp filter")?;
    // seccompiler starts with the architecture check: load arch, jump over the next
    // instruction if x86_64, else kill the process. A 32-bit call fails instead, and an
    // x32 call (same architecture, high bit set) does too, checked right after.
    let arch_fail = prog
        .get_mut(2)
        .filter(|i| i.code == 0x06)
        .context("the seccomp filter does not start with its architecture check")?;
    arch_fail.k = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let x32 = [
        // A = seccomp_data.nr; if A >= X32_SYSCALL_BIT return ENOSYS.
        seccompiler::sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: 0,
        },
        seccompiler::sock_filter {
            code: 0x35,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        seccompiler::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        },
    ];
    prog.splice(3..3, x32);
    Ok(prog)
}

const CAP_SETPCAP: u32 = 8;
/// What the tree runs without: see the module's comment.
const DROPPED: [u32; 2] = [12 /* CAP_NET_ADMIN */, 31 /* CAP_SETFCAP */];

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Takes [`DROPPED`] from the calling process for good: out of its bounding set (so that a
/// root exec does not grant them again), its ambient, inheritable, permitted and effective
/// sets. Only system calls: async-signal-safe after a fork. Without the right to change
/// the bounding set (not root), the process has none of them to gain: with no_new_privs
/// set, exec grants nothing.
pub fn drop_capabilities() -> std::io::Result<()> {
    let mut h = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut d = [CapData::default(); 2];
    // SAFETY: capget/capset read and write the two structures passed, sized for version 3.
    unsafe {
        if libc::syscall(libc::SYS_capget, &mut h as *mut CapHeader, d.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let can_drop = d[0].effective & (1 << CAP_SETPCAP) != 0;
        for cap in DROPPED {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0 && can_drop {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_LOWER as libc::c_ulong,
                cap as libc::c_ulong,
                0,
                0,
            );
            // All of them are below 32: the first word of each set.
            let bit = 1u32 << cap;
            d[0].effective &= !bit;
            d[0].permitted &= !bit;
            d[0].inheritable &= !bit;
        }
        if libc::syscall(libc::SYS_capset, &mut h as *mut CapHeader, d.as_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Installs the filters on the calling process (the child, before exec). Only system
/// calls: async-signal-safe after a fork.
pub fn install(filters: &[BpfProgram]) -> std::io::Result<()> {
    for f in filters {
        let prog = libc::sock_fprog {
            len: f.len() as u16,
            filter: f.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: prog points at a filter that outlives the call.
        let r = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_compile_with_the_x32_check_after_the_architecture_check() {
        let f = filters().unwrap();
        assert_eq!(f.len(), 2);
        for p in &f {
            assert_eq!(p[0].code, 0x20, "load arch");
            assert_eq!(p[2].k, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
            assert_eq!((p[4].code, p[4].k), (0x35, X32_SYSCALL_BIT));
        }
    }
}
