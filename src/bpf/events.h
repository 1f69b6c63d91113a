/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one definition of what crosses the kernel/user boundary.
 *
 * The BPF programs in sensor.bpf.c fill these; the Rust side reads the generated
 * `types::ag_hdr` and the enums below from the skeleton (src/sensor/decode.rs), so the
 * two sides cannot drift. Nothing else in user space knows this layout.
 */
#ifndef AGENTGUARD_EVENTS_H
#define AGENTGUARD_EVENTS_H

/* Highest pid the kernel can hand out on 64-bit (PID_MAX_LIMIT). */
#define AG_PID_LIMIT (4 * 1024 * 1024)

/* Each string of a record is at most this long (a resolved path, argv, cwd). */
#define AG_STR_MAX 4096
/* Strings are appended at offsets masked with this, so the verifier can bound them. */
#define AG_OFF_MASK (16384 - 1)
/* Size of the variable part of a record: the masked offset plus one string. */
#define AG_DATA_MAX (AG_OFF_MASK + 1 + AG_STR_MAX)
/* A directory tree deeper than this is reported with AG_F_PATH_TRUNC. */
#define AG_PATH_DEPTH 64
/* Bytes of a DNS query datagram that are captured. */
#define AG_DNS_MAX 512
/* Bytes of a DNS answer that are captured (EDNS answers are larger than 512). */
#define AG_DNS_ANSWER_MAX 2048
/* Strings per record. */
#define AG_NSTR 4

/* Every record starts with the kind, then its total size. */
enum ag_kind {
	AG_FORK = 1,
	AG_EXEC = 2,
	AG_EXIT = 3,
	AG_FILE = 4,
	AG_NET = 5,
	AG_DNS = 6,
	AG_FLAG = 7,
	AG_DENY = 8,	/* from enforce.bpf.c: a denial, or a would-be one under audit */
	AG_DATA = 9,	/* bytes of an HTTP stream: TLS plaintext or a plain TCP socket */
	AG_IO = 10,	/* bytes an open file or internet socket moved (io.bpf.c) */
};

/*
 * AG_IO operations. arg[0] is the open file (struct file's address: a key, never
 * dereferenced by user space).
 *   NAME   what the file is, on its first counted call: str[0] its resolved path
 *          (AG_F_RESOLVED), or for a socket its peer in family/port/addr and its type in
 *          sotype (port 0 and no address: not connected);
 *   COUNT  bytes it moved since its NAME: arg[1] read or received, arg[2] written or sent.
 *          A NAME for the same key starts a new file.
 */
enum ag_io_op {
	AG_IO_NAME = 1,
	AG_IO_COUNT = 2,
};

/* A counted file, kept per open file in the `io` map (io.bpf.c); user space drains what
 * is left at the end. */
struct ag_io {
	__u64 inode;		/* the file's inode: a reused struct file is another file */
	__u64 ino;		/* its number, and below its device: an inode's memory reused */
	__u64 read;
	__u64 written;
	__u8 addr[16];		/* sockets: the peer counted for */
	__u32 dev;
	__u16 port;
	__u16 pad;
};

/*
 * AG_DATA operations. arg[0] is the stream (the SSL object's address, or the socket's, or
 * for TLS read through AEAD probes the socket's address + 1),
 * arg[1] the bytes the call moved, arg[2] this chunk's offset in them; str[0] the chunk.
 */
enum ag_data_op {
	AG_DATA_TLS_WRITE = 1,
	AG_DATA_TLS_READ = 2,
	AG_DATA_SEND = 3,
	AG_DATA_RECV = 4,
	/* No bytes: the TLS stream arg[0] (an AEAD context, see payload.bpf.c) goes on as
	 * stream arg[1] (its socket's). */
	AG_DATA_TLS_BIND = 5,
};

/* Bytes per AG_DATA record, and records per call: the rest of a call is cut (user space
 * sees the gap from arg[1]). */
#define AG_CHUNK 8192
#define AG_CHUNKS 32

/* AG_FILE operations. */
enum ag_file_op {
	AG_FILE_OPEN = 1,
	AG_FILE_UNLINK = 2,
	AG_FILE_RMDIR = 3,
	AG_FILE_RENAME = 4,
	AG_FILE_CHMOD = 5,
	AG_FILE_MKDIR = 6,
	AG_FILE_LINK = 7,
	AG_FILE_SYMLINK = 8,
	/* an execve/execveat that failed (a successful one is an AG_EXEC) */
	AG_FILE_EXEC = 9,
	/* the ELF interpreter (dynamic loader) an exec mapped for the new program: follows
	 * the AG_EXEC record of the same process */
	AG_FILE_INTERP = 10,
	/* truncate(2) of a path (ftruncate needs a descriptor open for writing: its open). */
	AG_FILE_TRUNCATE = 11,
	/* chown, lchown, fchownat, fchown: arg[1] = the new owner (uid << 32 | gid). */
	AG_FILE_CHOWN = 12,
	/* utime, utimes, futimesat, utimensat (a NULL path: the descriptor's file). */
	AG_FILE_UTIMES = 13,
};

/* AG_NET operations. */
enum ag_net_op {
	AG_NET_CONNECT = 1,
	AG_NET_BIND = 2,
	AG_NET_LISTEN = 3,
	AG_NET_SENDTO = 4,
	AG_NET_SENDMSG = 5,
	/* a socket() of the families net rules describe that failed (a sandbox of the
	 * tree's own refusing it): no address; family, sotype and ret say what */
	AG_NET_SOCKET = 6,
};

/* AG_FLAG: behaviour worth a reviewer's eye whatever its arguments. */
enum ag_flag_op {
	AG_FLAG_IO_URING = 1,
	AG_FLAG_PTRACE = 2,
	AG_FLAG_SETUID = 3,
	AG_FLAG_SETGID = 4,
	AG_FLAG_CAPSET = 5,
	AG_FLAG_MEMFD = 6,
	AG_FLAG_MODULE = 7,
	AG_FLAG_BPF = 8,
	AG_FLAG_COMPAT_SYSCALL = 9,
	AG_FLAG_OPEN_BY_HANDLE = 10,
	AG_FLAG_TERMINAL = 11,		/* TIOCSTI, TIOCLINUX: input pushed into a terminal */
	AG_FLAG_SOCKET = 12,		/* a socket family or type net rules cannot describe */
	AG_FLAG_SIGNAL = 13,		/* a signal to a process outside the tree */
	AG_FLAG_DEVICE = 14,		/* mknod of a character or block device */
	AG_FLAG_CGROUP = 15,		/* clone3 into another cgroup */
	AG_FLAG_MOUNT = 16,		/* mount, open_tree, fsmount, move_mount, ... */
	AG_FLAG_PROCESS = 17,		/* process_vm_readv/writev, pidfd_getfd */
	AG_FLAG_XATTR = 18,		/* setting a security.* or trusted.* attribute */
	AG_FLAG_FD_RECEIVED = 19,	/* a descriptor the process did not open: arg[0] = how many
					 * (0: pidfd_getfd), str[0] = the first one's file */
	AG_FLAG_AIO = 20,		/* io_setup: Linux AIO, whose reads and writes are not counted */
};

/* ag_hdr.flags bits. */
enum ag_flags {
	/* str[0] is a kernel-resolved path, stored as NUL-terminated components leaf first. */
	AG_F_RESOLVED = 1 << 0,
	/* The resolved path was deeper than AG_PATH_DEPTH or longer than AG_STR_MAX. */
	AG_F_PATH_TRUNC = 1 << 1,
	/* argv was longer than AG_STR_MAX. */
	AG_F_ARGV_TRUNC = 1 << 2,
	/* exec: the executed file had no name left (memfd, deleted file). */
	AG_F_EXEC_UNLINKED = 1 << 3,
	/* exec: through execveat(fd, "", AT_EMPTY_PATH) or an fd path. */
	AG_F_EXEC_FD = 1 << 4,
	/* open: the file was created by this open (FMODE_CREATED). */
	AG_F_CREATED = 1 << 5,
	/* open: the opened object is a directory. */
	AG_F_DIR = 1 << 6,
	/* str[0] / str[2]: a base directory (resolved, leaf first) to join str[1] / str[3] to. */
	AG_F_BASE1 = 1 << 7,
	AG_F_BASE2 = 1 << 8,
	/* net: the address is the socket's own local one (listen). */
	AG_F_LOCAL = 1 << 9,
	/* AG_DNS: an answer received (from the server in addr/port), not a query sent. */
	AG_F_ANSWER = 1 << 10,
	/* exec: a binfmt handler (a #! script, binfmt_misc) ran str[3]'s file through the
	 * interpreter in str[0]. */
	AG_F_EXEC_SCRIPT = 1 << 11,
	/* A resolved path ended at the root of a mount outside the process's namespace: a
	 * detached tree (open_tree, fsmount), a lazily unmounted one, or another namespace's.
	 * The path is relative to that root. */
	AG_F_DETACHED = 1 << 12,
};

/* Counters kept per CPU in the `stats` map, indexed by these. */
enum ag_stat {
	AG_STAT_LOST = 0,	/* ring buffer full: record dropped */
	AG_STAT_PROCS_FULL = 1,	/* procs map full: a child could not be put in scope */
	AG_STAT_MAX = 2,
};

/*
 * The fixed part of every record. `size` counts the header and the strings that follow.
 * Strings follow back to back in index order, `len[i]` bytes each (0 = absent).
 */
struct ag_hdr {
	__u16 kind;
	__u16 op;
	__u32 size;
	__u64 ts;		/* CLOCK_MONOTONIC, ns */
	__u32 tgid;
	__u32 tid;
	__u32 ppid;		/* tgid of the real parent at the time of the event */
	__s32 ret;		/* syscall result; < 0 is -errno */
	__u32 flags;		/* enum ag_flags */
	__u32 sotype;		/* net: SOCK_STREAM, SOCK_DGRAM, ... */
	__u64 arg[4];		/* per kind, see decode.rs */
	__u16 family;		/* net: AF_INET, AF_INET6, AF_UNIX */
	__u16 port;		/* net: host byte order */
	__u8 addr[16];		/* net: IPv4 in the first 4 bytes, or IPv6 */
	__u16 len[AG_NSTR];
};

/* ag_proc.flags bits. */
enum ag_proc_flags {
	AG_PROC_COMPAT_SEEN = 1 << 0,	/* a 32-bit syscall was reported once */
};

/*
 * A tracked process, keyed by tgid in the `procs` map. User space inserts the processes it
 * starts or finds in /proc with start_ns = 0 and their /proc starttime in start_ticks;
 * the kernel side fills start_ns on their first event (see scope()).
 */
struct ag_proc {
	__u64 start_ns;		/* group leader's start_boottime */
	__u64 start_ticks;
	__u32 flags;
	__u32 pad;
};

struct ag_event {
	struct ag_hdr h;
	char data[AG_DATA_MAX];
};

#endif
