// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * agentguard's sensor: follows one process tree and reports what it does.
 *
 * Built on tracepoints only (tp_btf), so it runs where kprobes, fentry and BPF LSM are
 * not available. Four programs:
 *   sched_process_fork  puts children in scope before they run
 *   sched_process_exec  reports the executed file, argv and cwd
 *   sched_process_exit  reports the exit and takes the process out of scope
 *   sys_exit            everything else, decoded from the syscall's saved registers
 * and, in payload.bpf.c (its own compilation unit, linked with this one by build.rs),
 * uprobes on TLS libraries for the plaintext of HTTP streams; in io.bpf.c, the bytes
 * each open file and internet socket moved, counted in the kernel.
 *
 * Every program asks "is this process in scope?" first, from a bitmap in .bss, so the
 * cost for the rest of the host is one memory load.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.h"
#include "syscalls.h"
#include "sensor.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AT_FDCWD -100
#define AT_EMPTY_PATH 0x1000
#define AT_REMOVEDIR 0x200
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define SOCK_DGRAM 2
#define MSG_PEEK 2
#define MSG_TRUNC 0x20
#define S_IFDIR 0040000
#define S_IFCHR 0020000
#define S_IFBLK 0060000
#define AF_NETLINK 16
#define TIOCSTI 0x5412
#define TIOCLINUX 0x541C
#define CLONE_INTO_CGROUP 0x200000000ULL
#define FMODE_CREATED 0x100000
#define O_WRONLY 01
#define O_CREAT 0100
#define O_TRUNC 01000
#define TS_COMPAT 0x0002
#define DNS_PORT 53

/* Set by user space before load (declared in sensor.h). */
const volatile __u64 tick_ns = 10000000;	/* ns per /proc starttime tick (NSEC_PER_SEC / USER_HZ) */
const volatile __u64 wakeup_bytes = 256 * 1024; /* wake the reader once this much is queued */

__u64 scope_bits[AG_PID_LIMIT / 64];

/* Put the boundary types into BTF so the skeleton generates them for user space. */
struct ag_hdr _hdr = {};
struct ag_proc _proc = {};
enum ag_kind _kind = 0;
enum ag_file_op _file_op = 0;
enum ag_net_op _net_op = 0;
enum ag_flag_op _flag_op = 0;
enum ag_flags _flags = 0;
enum ag_stat _stat = 0;
enum ag_proc_flags _proc_flags = 0;

/* The maps sensor.h declares, defined here (sensor.h says what each holds). */
struct procs_map procs SEC(".maps");
struct events_map events SEC(".maps");
struct scratch_map scratch SEC(".maps");
struct stats_map stats SEC(".maps");

static __always_inline void bit_set(__u32 tgid)
{
	if (tgid < AG_PID_LIMIT)
		__sync_fetch_and_or(&scope_bits[bit_word(tgid)], 1ULL << (tgid & 63));
}

static __always_inline void bit_clear(__u32 tgid)
{
	if (tgid < AG_PID_LIMIT)
		__sync_fetch_and_and(&scope_bits[bit_word(tgid)], ~(1ULL << (tgid & 63)));
}

/*
 * Append a path as the kernel resolved it: NUL-terminated components, leaf first (user
 * space reverses them). Walks dentries up to the mount root and crosses into the parent
 * mount, the way d_path does, since bpf_d_path is not allowed in tracepoints.
 *
 * A global function, so the verifier checks its loop once rather than at every caller.
 * `where` is a kernel address (struct path *), read with probe_read.
 */
__noinline __u32 put_path_at(struct ag_event *e, __u32 off, __u32 slot, __u64 where)
{
	struct path pth;
	struct dentry *dentry, *parent, *root;
	struct vfsmount *vfsmnt;
	struct mount *mnt, *mnt_parent;
	const unsigned char *name;
	__u32 start = off;
	long n;
	int i;

	if (!e || bpf_probe_read_kernel(&pth, sizeof(pth), (const void *)where))
		return off;
	dentry = pth.dentry;
	vfsmnt = pth.mnt;
	mnt = container_of(vfsmnt, struct mount, mnt);
	root = BPF_CORE_READ(vfsmnt, mnt_root);
	for (i = 0; i < AG_PATH_DEPTH; i++) {
		parent = BPF_CORE_READ(dentry, d_parent);
		if (dentry == root) {
			mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
			if (mnt_parent == mnt || !mnt_parent) {
				struct mnt_namespace *ns = BPF_CORE_READ(mnt, mnt_ns);
				struct task_struct *t = bpf_get_current_task_btf();

				/* As enforce.bpf.c's walk: kernel-internal mounts are fine. */
				if ((long)ns != -22 && ns != t->nsproxy->mnt_ns)
					e->h.flags |= AG_F_DETACHED;
				goto done;
			}
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mnt_parent;
			vfsmnt = &mnt->mnt;
			root = BPF_CORE_READ(vfsmnt, mnt_root);
			continue;
		}
		if (off - start > AG_STR_MAX - 256)
			break;
		name = BPF_CORE_READ(dentry, d_name.name);
		n = bpf_probe_read_kernel_str(&e->data[off & AG_OFF_MASK], 256, name);
		if (n <= 0)
			break;
		off += n;
		/* Its own parent but not a mount root: a pseudo file (memfd, pipe) or a
		 * disconnected dentry. Its name is all the path there is. */
		if (dentry == parent)
			goto done;
		dentry = parent;
	}
	e->h.flags |= AG_F_PATH_TRUNC;
done:
	e->h.len[slot & (AG_NSTR - 1)] = off - start;
	return off;
}

#define put_path(e, off, slot, p) put_path_at(e, off, slot, (__u64)(p))

/* The task's cwd as a plain address (put_path_at takes no verifier-typed pointer). */
static __always_inline struct path *cwd_of(struct task_struct *task)
{
	struct fs_struct *fs = BPF_CORE_READ(task, fs);

	return &fs->pwd;
}

static __always_inline __u32 put_user_str(struct ag_event *e, __u32 off, __u32 slot,
					  const char *ustr)
{
	long n = bpf_probe_read_user_str(&e->data[off & AG_OFF_MASK], AG_STR_MAX, ustr);

	if (n < 0)
		n = 0;
	e->h.len[slot & (AG_NSTR - 1)] = n;
	return off + n;
}

/*
 * A path argument as the program passed it, plus the directory it is relative to as the
 * kernel resolved it (dirfd or cwd), so user space can join them. slot is 0 or 2.
 */
static __noinline __u32 put_arg_path(struct ag_event *e, __u32 off, __u32 slot, int dirfd,
				     const char *upath)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file *f;
	char c = '/';

	bpf_probe_read_user(&c, 1, upath);
	if (c != '/' && dirfd != -1) {
		if (dirfd == AT_FDCWD) {
			off = put_path(e, off, slot, cwd_of(task));
		} else {
			f = fd_file(task, dirfd);
			if (f)
				off = put_path(e, off, slot, &f->f_path);
		}
		e->h.flags |= slot ? AG_F_BASE2 : AG_F_BASE1;
	}
	return put_user_str(e, off, slot + 1, upath);
}

struct file_args {
	long ret;
	__u64 flags;
	__u64 mode;
	const char *p1;
	const char *p2;
	int dfd1;
	int dfd2;		/* -1: p2 is literal (a symlink's target) */
	__u16 op;
};

static __noinline int emit_file(struct file_args *a)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct ag_event *e = ev_init(AG_FILE, a->op, task);
	struct file *f;
	__u32 off = 0;

	if (!e)
		return 0;
	e->h.ret = a->ret;
	e->h.arg[0] = a->flags;
	e->h.arg[1] = a->mode;
	if (a->op == AG_FILE_OPEN && a->ret >= 0 && (f = fd_file(task, a->ret))) {
		/* Opened: report the file the kernel resolved, not the string it was given. */
		off = put_path(e, off, 0, &f->f_path);
		e->h.flags |= AG_F_RESOLVED;
		if (BPF_CORE_READ(f, f_mode) & FMODE_CREATED)
			e->h.flags |= AG_F_CREATED;
		if ((BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) == S_IFDIR)
			e->h.flags |= AG_F_DIR;
	} else if (a->p1) {
		off = put_arg_path(e, off, 0, a->dfd1, a->p1);
	} else if (a->op != AG_FILE_OPEN && a->dfd1 >= 0 && (f = fd_file(task, a->dfd1))) {
		/* By descriptor (fchmod, fchown): the file it is. */
		off = put_path(e, off, 0, &f->f_path);
		e->h.flags |= AG_F_RESOLVED;
	}
	if (a->p2)
		off = put_arg_path(e, off, 2, a->dfd2, a->p2);
	ev_submit(e, off, false);
	return 0;
}

/* Read a user sockaddr into the record; returns its family. */
static __always_inline __u16 read_sockaddr(struct ag_event *e, __u32 *off, const void *uaddr,
					   __u32 alen, __u16 sfam)
{
	__u16 family = 0;
	__u16 port;
	__u32 n;

	if (!uaddr || alen < 2 || bpf_probe_read_user(&family, 2, uaddr))
		return 0;
	/* The kernel reads an AF_UNSPEC address on an IPv4 socket as AF_INET. */
	if (family == 0 && sfam == AF_INET)
		family = AF_INET;
	e->h.family = family;
	if (family == AF_INET || family == AF_INET6) {
		bpf_probe_read_user(&port, 2, uaddr + 2);
		e->h.port = bpf_ntohs(port);
		if (family == AF_INET)
			bpf_probe_read_user(e->h.addr, 4, uaddr + 4);
		else
			bpf_probe_read_user(e->h.addr, 16, uaddr + 8);
	} else if (family == AF_UNIX) {
		/* sun_path as given: abstract names start with NUL, so copy by length. */
		n = alen - 2;
		if (n > 108)
			n = 108;
		barrier_var(n);
		n &= 127;
		bpf_probe_read_user(&e->data[0], n, uaddr + 2);
		e->h.len[0] = n;
		*off = n;
	}
	return family;
}

/* The socket's peer (or, with local set, its own address). */
static __always_inline void read_sock_addr(struct ag_event *e, struct socket *sock, bool local)
{
	struct sock *sk = BPF_CORE_READ(sock, sk);
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	e->h.family = family;
	if (local) {
		e->h.port = BPF_CORE_READ(sk, __sk_common.skc_num);
		if (family == AF_INET)
			bpf_core_read(e->h.addr, 4, &sk->__sk_common.skc_rcv_saddr);
		else if (family == AF_INET6)
			bpf_core_read(e->h.addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
	} else {
		e->h.port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		if (family == AF_INET)
			bpf_core_read(e->h.addr, 4, &sk->__sk_common.skc_daddr);
		else if (family == AF_INET6)
			bpf_core_read(e->h.addr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

/*
 * A connected unix socket's peer by the name it was bound to: what enforce.bpf.c checks
 * (unix_stream_connect), so a symlink at one name that leads to another socket is
 * recorded as the socket it reached. Returns the name's length (0: left as given).
 */
static __always_inline __u32 read_unix_peer(struct ag_event *e, struct socket *sock)
{
	struct unix_sock *u = (struct unix_sock *)BPF_CORE_READ(sock, sk);
	struct unix_sock *peer = (struct unix_sock *)BPF_CORE_READ(u, peer);
	struct unix_address *a;
	__u32 n;

	if (!peer)
		return 0;
	a = BPF_CORE_READ(peer, addr);
	if (!a)
		return 0;
	n = BPF_CORE_READ(a, len);
	n = n > 2 ? n - 2 : 0;
	if (n > 108)
		n = 108;
	barrier_var(n);
	n &= 127;
	if (!n || bpf_probe_read_kernel(&e->data[0], n, &a->name[0].sun_path))
		return 0;
	e->h.len[0] = n;
	e->h.family = AF_UNIX;
	e->h.port = 0;
	__builtin_memset(e->h.addr, 0, sizeof(e->h.addr));
	return n;
}

struct net_args {
	long ret;
	const void *uaddr;
	const void *buf;
	__u64 blen;
	__u32 alen;
	int fd;
	__u16 op;
};

/*
 * connect, bind, listen, and the sends. A send is reported when it names a destination
 * (UDP without connect) and, whatever the socket, when it is a datagram to port 53: then
 * its payload goes to user space as a DNS query.
 */
static __noinline int emit_net(struct net_args *a)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct socket *sock = fd_socket(task, a->fd);
	struct ag_event *e = ev_init(AG_NET, a->op, task);
	bool is_send = a->op == AG_NET_SENDTO || a->op == AG_NET_SENDMSG;
	__u32 off = 0;
	__u64 n;

	if (!e)
		return 0;
	e->h.ret = a->ret;
	e->h.arg[0] = a->fd;
	if (sock)
		e->h.sotype = BPF_CORE_READ(sock, type);
	if (a->uaddr) {
		__u16 sfam = sock ? BPF_CORE_READ(sock, sk, __sk_common.skc_family) : 0;

		/* AF_UNSPEC on an IPv6 socket means "the connected peer". */
		if (!read_sockaddr(e, &off, a->uaddr, a->alen, sfam) && sock && is_send)
			read_sock_addr(e, sock, false);
		else if (sfam == AF_UNIX && a->op == AG_NET_CONNECT && !a->ret) {
			/* By the socket's family, not the address another thread may rewrite. */
			__u32 n = read_unix_peer(e, sock);

			if (n)
				off = n;
		}
	} else if (sock && a->op == AG_NET_LISTEN) {
		read_sock_addr(e, sock, true);
		e->h.flags |= AG_F_LOCAL;
	} else if (sock && is_send)
		read_sock_addr(e, sock, false);
	if (is_send) {
		if (e->h.sotype == SOCK_DGRAM && e->h.port == DNS_PORT &&
		    (e->h.family == AF_INET || e->h.family == AF_INET6) && a->buf) {
			e->h.kind = AG_DNS;
			n = a->blen;
			if (n > AG_DNS_MAX)
				n = AG_DNS_MAX;
			barrier_var(n);
			n &= AG_DNS_MAX * 2 - 1;
			bpf_probe_read_user(&e->data[0], n, a->buf);
			e->h.len[0] = n;
			off = n;
		} else if (!a->uaddr) {
			return 0;	/* a send on a connected socket: connect said it all */
		}
	}
	ev_submit(e, off, false);
	return 0;
}

/* sendmsg / sendmmsg: the destination and first buffer from a user_msghdr. */
static __always_inline int emit_msghdr(long ret, int fd, const struct user_msghdr *um, __u16 op)
{
	struct net_args a = { .ret = ret, .fd = fd, .op = op };
	struct user_msghdr m;
	struct iovec iov;

	if (bpf_probe_read_user(&m, sizeof(m), um))
		return 0;
	a.uaddr = m.msg_name;
	a.alen = m.msg_namelen;
	if (m.msg_iovlen && !bpf_probe_read_user(&iov, sizeof(iov), m.msg_iov)) {
		a.buf = iov.iov_base;
		a.blen = iov.iov_len;
	}
	return emit_net(&a);
}

static __noinline int emit_flag(__u16 op, long ret, __u64 a0, __u64 a1, __u64 a2)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct ag_event *e = ev_init(AG_FLAG, op, task);

	if (!e)
		return 0;
	e->h.ret = ret;
	e->h.arg[0] = a0;
	e->h.arg[1] = a1;
	e->h.arg[2] = a2;
	ev_submit(e, 0, false);
	return 0;
}

/* A refused socket() of an internet family: a net record with no address. */
static __noinline int emit_socket_failed(long ret, __u32 fam, __u32 type)
{
	struct ag_event *e = ev_init(AG_NET, AG_NET_SOCKET, bpf_get_current_task_btf());

	if (!e)
		return 0;
	e->h.ret = ret;
	e->h.family = fam;
	e->h.sotype = type;
	ev_submit(e, 0, false);
	return 0;
}

/* Flags that carry a string: memfd_create's name, finit_module's file. */
static __noinline int emit_flag_str(__u16 op, long ret, __u64 a0, const char *ustr, int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct ag_event *e = ev_init(AG_FLAG, op, task);
	struct file *f;
	__u32 off = 0;

	if (!e)
		return 0;
	e->h.ret = ret;
	e->h.arg[0] = a0;
	if (ustr) {
		off = put_user_str(e, off, 1, ustr);
	} else if ((f = fd_file(task, fd))) {
		off = put_path(e, off, 0, &f->f_path);
		e->h.flags |= AG_F_RESOLVED;
	}
	ev_submit(e, off, false);
	return 0;
}

static __always_inline int on_file(__u16 op, long ret, int dfd, const char *p, __u64 flags,
				   __u64 mode)
{
	struct file_args a = { .ret = ret, .op = op, .dfd1 = dfd, .p1 = p, .flags = flags,
			       .mode = mode };
	return emit_file(&a);
}

static __always_inline int on_file2(__u16 op, long ret, int dfd1, const char *p1, int dfd2,
				    const char *p2, __u64 flags)
{
	struct file_args a = { .ret = ret, .op = op, .dfd1 = dfd1, .p1 = p1, .dfd2 = dfd2,
			       .p2 = p2, .flags = flags };
	return emit_file(&a);
}

static __always_inline int on_sock(__u16 op, long ret, int fd, const void *uaddr, __u32 alen,
				   const void *buf, __u64 blen)
{
	struct net_args a = { .ret = ret, .op = op, .fd = fd, .uaddr = uaddr, .alen = alen,
			      .buf = buf, .blen = blen };
	return emit_net(&a);
}

static __always_inline int on_open_how(long ret, int dfd, const char *p, const struct open_how *uhow)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), uhow);
	return on_file(AG_FILE_OPEN, ret, dfd, p, how.flags, how.mode);
}

struct mmsg_ctx {
	long ret;
	const struct mmsghdr *vec;
	int fd;
};

static int mmsg_step(__u32 i, struct mmsg_ctx *c)
{
	emit_msghdr(c->ret, c->fd, &c->vec[i].msg_hdr, AG_NET_SENDMSG);
	return 0;
}

/*
 * Every message sent (ret of them; the first when the call failed), up to the kernel's
 * own limit: a destination in the last message is a destination. glibc's resolver sends
 * its A and AAAA queries as one sendmmsg of two.
 */
static __always_inline int on_sendmmsg(long ret, int fd, const struct mmsghdr *vec, __u64 vlen)
{
	struct mmsg_ctx c = { .ret = ret, .vec = vec, .fd = fd };
	__u32 n = ret > 0 ? ret : 1;

	if (n > vlen)
		n = vlen;
	if (n > 1024)	/* UIO_MAXIOV */
		n = 1024;
	bpf_loop(n, mmsg_step, &c, 0);
	return 0;
}

static __always_inline int on_capset(long ret, const void *hdrp, const void *datap)
{
	__u32 hdr[2] = {};
	__u32 data[6] = {};	/* two __user_cap_data_struct: effective, permitted, inheritable */

	bpf_probe_read_user(hdr, sizeof(hdr), hdrp);
	bpf_probe_read_user(data, sizeof(data), datap);
	return emit_flag(AG_FLAG_CAPSET, ret, hdr[1], data[0] | ((__u64)data[3] << 32),
			 data[1] | ((__u64)data[4] << 32));
}

/*
 * recvfrom: on a TCP socket, HTTP payload (payload.bpf.c); on a UDP socket, a datagram from
 * port 53 is a DNS answer, which user space reads to name the addresses the tree connects
 * to. uaddr/ualen: where recvfrom stores the sender (NULL on a connected socket).
 */
struct recv_args {
	long ret;
	int fd;
	__u64 buf;
	__u64 blen;
	const void *uaddr;
	const __u32 *ualen;
	/* No stream payload in the buffer: MSG_PEEK (the bytes stay queued, copied when
	 * read), MSG_TRUNC (TCP discards them without writing the buffer, which keeps
	 * whatever the tree put there). */
	bool nocopy;
};

static __noinline int on_recv(struct recv_args *a)
{
	long ret;
	int fd;
	__u64 buf, blen;
	const void *uaddr;
	const __u32 *ualen;
	struct task_struct *task = bpf_get_current_task_btf();
	struct socket *sock;
	struct ag_event *e;
	__u32 alen = 0;
	__u64 n;

	if (!a)
		return 0;
	ret = a->ret;
	fd = a->fd;
	buf = a->buf;
	blen = a->blen;
	uaddr = a->uaddr;
	ualen = a->ualen;
	if (ret <= 0)
		return 0;
	sock = fd_socket(task, fd);
	if (!sock)
		return 0;
	if (BPF_CORE_READ(sock, type) == SOCK_STREAM) {
		if (a->nocopy)
			return 0;
		on_aead_socket((__u64)sock, AG_DATA_RECV, buf, 0);
		return on_payload((__u64)sock, buf, ret, AG_DATA_RECV);
	}
	if (BPF_CORE_READ(sock, type) != SOCK_DGRAM)
		return 0;
	e = ev_init(AG_DNS, AG_NET_SENDTO, task);
	if (!e)
		return 0;
	/*
	 * The source: the connected peer when there is one (the buffer the kernel fills is
	 * written only as far as the caller's length allowed, and could hold the tree's own
	 * bytes); else the address buffer, which names.rs still matches to a query.
	 */
	if (BPF_CORE_READ(sock, sk, __sk_common.skc_dport)) {
		read_sock_addr(e, sock, false);
	} else {
		if (uaddr && ualen)
			bpf_probe_read_user(&alen, sizeof(alen), ualen);
		if (!uaddr || !alen || !read_sockaddr(e, &(__u32){ 0 }, uaddr, alen, 0))
			read_sock_addr(e, sock, false);
	}
	if (e->h.port != DNS_PORT || (e->h.family != AF_INET && e->h.family != AF_INET6))
		return 0;
	e->h.flags |= AG_F_ANSWER;
	e->h.ret = ret;
	/* Only what the kernel copied: MSG_TRUNC returns the length of a datagram the
	 * buffer did not take. */
	n = ret < blen ? ret : blen;
	if (n > AG_DNS_ANSWER_MAX)
		n = AG_DNS_ANSWER_MAX;
	barrier_var(n);
	n &= AG_DNS_ANSWER_MAX * 2 - 1;
	bpf_probe_read_user(&e->data[0], n, (const void *)buf);
	e->h.len[0] = n;
	ev_submit(e, n, false);
	return 0;
}

/*
 * Descriptors received over a unix socket (SCM_RIGHTS in the first control message):
 * files the process holds without having opened them, so no open of theirs is recorded.
 * Flagged with the first one's file.
 */
static __always_inline int on_rights(long ret, const struct user_msghdr *m)
{
	struct {
		__u64 len;
		int level;
		int type;
		int fd;
	} c = {};
	__u64 at = 0;
	int i;

	if (ret < 0 || !m->msg_control)
		return 0;
	/* SCM_RIGHTS among the first few: SO_PASSCRED puts SCM_CREDENTIALS before it. */
	for (i = 0; i < 4; i++) {
		if (at + 20 > m->msg_controllen ||
		    bpf_probe_read_user(&c, sizeof(c), m->msg_control + at))
			return 0;
		if (c.len < 16)
			return 0;
		if (c.level == 1 /* SOL_SOCKET */ && c.type == 1 /* SCM_RIGHTS */ && c.len >= 20)
			return emit_flag_str(AG_FLAG_FD_RECEIVED, ret, (c.len - 16) / 4, NULL, c.fd);
		at += (c.len + 7) & ~7ULL;	/* CMSG_ALIGN */
	}
	return 0;
}

/* sendmsg and recvmsg on a TCP socket: HTTP payload through the message's iovecs. */
static __always_inline int on_msg_stream(__u16 op, long ret, int fd,
					 const struct user_msghdr *um)
{
	struct user_msghdr m;

	if (ret <= 0 || bpf_probe_read_user(&m, sizeof(m), um))
		return 0;
	return on_stream(op, ret, fd, (__u64)m.msg_iov, m.msg_iovlen);
}

/* recvmsg: the sender and first buffer from a user_msghdr the kernel has filled in. */
static __always_inline int on_recvmsg(long ret, int fd, struct user_msghdr *um)
{
	struct recv_args r = { .ret = ret, .fd = fd };
	struct user_msghdr m;
	struct iovec iov;
	struct socket *sock = fd_socket(bpf_get_current_task_btf(), fd);

	if (!sock || ret < 0 || bpf_probe_read_user(&m, sizeof(m), um))
		return 0;
	if (BPF_CORE_READ(sock, sk, __sk_common.skc_family) == AF_UNIX)
		on_rights(ret, &m);
	/* Datagrams only: a stream's bytes are the LLM capture's (on_msg_stream). */
	if (!ret || BPF_CORE_READ(sock, type) != SOCK_DGRAM)
		return 0;
	if (!m.msg_iovlen || bpf_probe_read_user(&iov, sizeof(iov), m.msg_iov))
		return 0;
	r.buf = (__u64)iov.iov_base;
	r.blen = iov.iov_len;
	r.uaddr = m.msg_name;
	r.ualen = (const __u32 *)&um->msg_namelen;
	return on_recv(&r);
}

/*
 * A signal's target outside the tree: the guard (agentguard, its watchdog) or any other
 * process of the host. kill(-1) reaches every process; a negative pid names a process
 * group, here by its leader.
 */
static __always_inline int on_signal(long ret, long nr, long pid, __u64 sig)
{
	__u32 target;

	if (nr == NR_kill && pid == 0)
		return 0;	/* the caller's own process group */
	target = pid < 0 ? -pid : pid;
	if (pid != -1 && bpf_map_lookup_elem(&procs, &target))
		return 0;
	return emit_flag(AG_FLAG_SIGNAL, ret, nr, pid, sig);
}

/* pidfd_send_signal: the pid behind the descriptor (a pidfd's private data is its pid). */
static __always_inline int on_pidfd_signal(long ret, int fd, __u64 sig)
{
	struct file *f = fd_file(bpf_get_current_task_btf(), fd);
	struct pid *p;

	if (!f)
		return 0;
	p = BPF_CORE_READ(f, private_data);
	return on_signal(ret, NR_pidfd_send_signal, BPF_CORE_READ(p, numbers[0].nr), sig);
}

/* setxattr of the kernel's attributes: file capabilities, other modules' labels. */
static __always_inline int on_setxattr(long ret, long nr, const char *uname)
{
	char n[10] = {};

	bpf_probe_read_user_str(n, sizeof(n), uname);
	if (!(n[0] == 's' && n[1] == 'e' && n[2] == 'c' && n[3] == 'u' && n[4] == 'r' &&
	      n[5] == 'i' && n[6] == 't' && n[7] == 'y' && n[8] == '.') &&
	    !(n[0] == 't' && n[1] == 'r' && n[2] == 'u' && n[3] == 's' && n[4] == 't' &&
	      n[5] == 'e' && n[6] == 'd' && n[7] == '.'))
		return 0;
	return emit_flag_str(AG_FLAG_XATTR, ret, nr, uname, -1);
}

/* The syscalls the dispatcher below handles: the rest return before the scope lookup. */
static __always_inline bool wanted(long nr)
{
	switch (nr) {
	case NR_open: case NR_creat: case NR_openat: case NR_openat2: case NR_open_by_handle_at:
	case NR_execve: case NR_execveat:
	case NR_unlink: case NR_unlinkat: case NR_rmdir: case NR_mkdir: case NR_mkdirat:
	case NR_chmod: case NR_fchmodat: case NR_fchmodat2: case NR_fchmod:
	case NR_truncate: case NR_chown: case NR_lchown: case NR_fchown: case NR_fchownat:
	case NR_utime: case NR_utimes: case NR_futimesat: case NR_utimensat:
	case NR_rename: case NR_renameat: case NR_renameat2:
	case NR_link: case NR_linkat: case NR_symlink: case NR_symlinkat:
	case NR_connect: case NR_bind: case NR_listen:
	case NR_sendto: case NR_sendmsg: case NR_sendmmsg: case NR_recvfrom: case NR_recvmsg:
	case NR_recvmmsg:
	case NR_read: case NR_readv: case NR_pread64: case NR_preadv: case NR_preadv2:
	case NR_write: case NR_writev: case NR_pwrite64: case NR_pwritev: case NR_pwritev2:
	case NR_sendfile: case NR_splice: case NR_copy_file_range:
	case NR_io_uring_setup: case NR_io_setup: case NR_ptrace:
	case NR_setuid: case NR_setreuid: case NR_setresuid: case NR_setfsuid:
	case NR_setgid: case NR_setregid: case NR_setresgid: case NR_setfsgid:
	case NR_capset: case NR_memfd_create: case NR_init_module: case NR_finit_module:
	case NR_bpf:
	case NR_ioctl: case NR_socket: case NR_kill: case NR_tkill: case NR_tgkill:
	case NR_rt_sigqueueinfo: case NR_rt_tgsigqueueinfo: case NR_pidfd_send_signal:
	case NR_mknod: case NR_mknodat: case NR_clone3:
	case NR_mount: case NR_umount2: case NR_pivot_root: case NR_open_tree: case NR_move_mount:
	case NR_fsopen: case NR_fsmount: case NR_fspick:
	case NR_process_vm_readv: case NR_process_vm_writev: case NR_pidfd_getfd:
	case NR_setxattr: case NR_lsetxattr: case NR_fsetxattr:
		return true;
	}
	return false;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *task;
	struct ag_proc *p;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	bool compat;
	long nr;

	if (!bit_test(tgid))
		return 0;
	task = bpf_get_current_task_btf();
	compat = bpf_core_field_exists(task->thread_info.status) &&
		 (task->thread_info.status & TS_COMPAT);
	if (!compat && !wanted(SC_NR(regs)))
		return 0;
	p = scope(task, tgid);
	if (!p)
		return 0;
	/* 32-bit syscalls use other numbers: say so once rather than misread them. */
	if (compat) {
		if (!(p->flags & AG_PROC_COMPAT_SEEN)) {
			p->flags |= AG_PROC_COMPAT_SEEN;
			emit_flag(AG_FLAG_COMPAT_SYSCALL, ret, SC_NR(regs), 0, 0);
		}
		return 0;
	}
	nr = SC_NR(regs);
	switch (nr) {
	/* Bytes moved, counted per open file (io.bpf.c). */
	case NR_pread64: case NR_preadv:
		return on_io(SC_ARG0(regs), ret, false);
	case NR_pwrite64: case NR_pwritev:
		return on_io(SC_ARG0(regs), ret, true);
	/* And on a TCP socket, HTTP payload (payload.bpf.c): clients send requests with
	 * write and writev as often as with send; preadv2/pwritev2 at offset -1 are readv and
	 * writev. */
	case NR_read:
		on_io(SC_ARG0(regs), ret, false);
		return on_stream(AG_DATA_RECV, ret, SC_ARG0(regs), SC_ARG1(regs), 0);
	case NR_readv: case NR_preadv2:
		on_io(SC_ARG0(regs), ret, false);
		return on_stream(AG_DATA_RECV, ret, SC_ARG0(regs), SC_ARG1(regs), SC_ARG2(regs));
	case NR_write:
		on_io(SC_ARG0(regs), ret, true);
		return on_stream(AG_DATA_SEND, ret, SC_ARG0(regs), SC_ARG1(regs), 0);
	case NR_writev: case NR_pwritev2:
		on_io(SC_ARG0(regs), ret, true);
		return on_stream(AG_DATA_SEND, ret, SC_ARG0(regs), SC_ARG1(regs), SC_ARG2(regs));
	case NR_sendfile:	/* (out_fd, in_fd, ...) */
		on_io(SC_ARG1(regs), ret, false);
		return on_io(SC_ARG0(regs), ret, true);
	case NR_splice:		/* (fd_in, off_in, fd_out, ...) */
	case NR_copy_file_range:
		on_io(SC_ARG0(regs), ret, false);
		return on_io(SC_ARG2(regs), ret, true);
	case NR_recvmmsg:	/* (fd, msgvec, vlen, flags, ...) */
		if (SC_ARG3(regs) & MSG_PEEK)
			return 0;	/* left in the queue: counted when read */
		return on_mmsg(SC_ARG0(regs), SC_ARG1(regs), ret, false);
	case NR_open:
		return on_file(AG_FILE_OPEN, ret, AT_FDCWD, (const char *)SC_ARG0(regs),
			       SC_ARG1(regs), SC_ARG2(regs));
	case NR_creat:
		return on_file(AG_FILE_OPEN, ret, AT_FDCWD, (const char *)SC_ARG0(regs),
			       O_CREAT | O_WRONLY | O_TRUNC, SC_ARG1(regs));
	case NR_openat:
		return on_file(AG_FILE_OPEN, ret, SC_ARG0(regs), (const char *)SC_ARG1(regs),
			       SC_ARG2(regs), SC_ARG3(regs));
	case NR_openat2:
		return on_open_how(ret, SC_ARG0(regs), (const char *)SC_ARG1(regs),
				   (const struct open_how *)SC_ARG2(regs));
	case NR_open_by_handle_at:
		emit_flag(AG_FLAG_OPEN_BY_HANDLE, ret, SC_ARG0(regs), SC_ARG2(regs), 0);
		return on_file(AG_FILE_OPEN, ret, AT_FDCWD, NULL, SC_ARG2(regs), 0);
	case NR_execve:
		if (ret < 0)
			return on_file(AG_FILE_EXEC, ret, AT_FDCWD, (const char *)SC_ARG0(regs), 0, 0);
		return 0;
	case NR_execveat:
		if (ret < 0)
			return on_file(AG_FILE_EXEC, ret, SC_ARG0(regs), (const char *)SC_ARG1(regs),
				       SC_ARG4(regs), 0);
		return 0;
	case NR_unlink:
		return on_file(AG_FILE_UNLINK, ret, AT_FDCWD, (const char *)SC_ARG0(regs), 0, 0);
	case NR_unlinkat:
		return on_file((SC_ARG2(regs) & AT_REMOVEDIR) ? AG_FILE_RMDIR : AG_FILE_UNLINK,
			       ret, SC_ARG0(regs), (const char *)SC_ARG1(regs), SC_ARG2(regs), 0);
	case NR_rmdir:
		return on_file(AG_FILE_RMDIR, ret, AT_FDCWD, (const char *)SC_ARG0(regs), 0, 0);
	case NR_mkdir:
		return on_file(AG_FILE_MKDIR, ret, AT_FDCWD, (const char *)SC_ARG0(regs), 0,
			       SC_ARG1(regs));
	case NR_mkdirat:
		return on_file(AG_FILE_MKDIR, ret, SC_ARG0(regs), (const char *)SC_ARG1(regs), 0,
			       SC_ARG2(regs));
	case NR_chmod:
		return on_file(AG_FILE_CHMOD, ret, AT_FDCWD, (const char *)SC_ARG0(regs), 0,
			       SC_ARG1(regs));
	case NR_fchmodat:
	case NR_fchmodat2:
		return on_file(AG_FILE_CHMOD, ret, SC_ARG0(regs), (const char *)SC_ARG1(regs), 0,
			       SC_ARG2(regs));
	case NR_fchmod:
		return on_file(AG_FILE_CHMOD, ret, SC_ARG0(regs), NULL, 0, SC_ARG1(regs));
	case NR_truncate:
		return on_file(AG_FILE_TRUNCATE, ret, AT_FDCWD, (const char *)SC_ARG0(regs), 0, 0);
	case NR_chown:
	case NR_lchown:
		return on_file(AG_FILE_CHOWN, ret, AT_FDCWD, (const char *)SC_ARG0(regs), 0,
			       (SC_ARG1(regs) << 32) | (SC_ARG2(regs) & 0xffffffff));
	case NR_utime:
	case NR_utimes:
		return on_file(AG_FILE_UTIMES, ret, AT_FDCWD, (const char *)SC_ARG0(regs), 0, 0);
	case NR_futimesat:
	case NR_utimensat:
		return on_file(AG_FILE_UTIMES, ret, SC_ARG0(regs), (const char *)SC_ARG1(regs),
			       nr == NR_utimensat ? SC_ARG3(regs) : 0, 0);
	case NR_fchown:
		return on_file(AG_FILE_CHOWN, ret, SC_ARG0(regs), NULL, 0,
			       (SC_ARG1(regs) << 32) | (SC_ARG2(regs) & 0xffffffff));
	case NR_fchownat:
		return on_file(AG_FILE_CHOWN, ret, SC_ARG0(regs), (const char *)SC_ARG1(regs),
			       SC_ARG4(regs), (SC_ARG2(regs) << 32) | (SC_ARG3(regs) & 0xffffffff));
	case NR_rename:
		return on_file2(AG_FILE_RENAME, ret, AT_FDCWD, (const char *)SC_ARG0(regs),
				AT_FDCWD, (const char *)SC_ARG1(regs), 0);
	case NR_renameat:
	case NR_renameat2:
		return on_file2(AG_FILE_RENAME, ret, SC_ARG0(regs), (const char *)SC_ARG1(regs),
				SC_ARG2(regs), (const char *)SC_ARG3(regs),
				nr == NR_renameat2 ? SC_ARG4(regs) : 0);
	case NR_link:
		return on_file2(AG_FILE_LINK, ret, AT_FDCWD, (const char *)SC_ARG0(regs),
				AT_FDCWD, (const char *)SC_ARG1(regs), 0);
	case NR_linkat:
		return on_file2(AG_FILE_LINK, ret, SC_ARG0(regs), (const char *)SC_ARG1(regs),
				SC_ARG2(regs), (const char *)SC_ARG3(regs), SC_ARG4(regs));
	case NR_symlink:
		/* The new link is the path that matters; the target is literal text. */
		return on_file2(AG_FILE_SYMLINK, ret, AT_FDCWD, (const char *)SC_ARG1(regs), -1,
				(const char *)SC_ARG0(regs), 0);
	case NR_symlinkat:
		return on_file2(AG_FILE_SYMLINK, ret, SC_ARG1(regs), (const char *)SC_ARG2(regs),
				-1, (const char *)SC_ARG0(regs), 0);
	case NR_connect:
		return on_sock(AG_NET_CONNECT, ret, SC_ARG0(regs), (const void *)SC_ARG1(regs),
			       SC_ARG2(regs), NULL, 0);
	case NR_bind:
		return on_sock(AG_NET_BIND, ret, SC_ARG0(regs), (const void *)SC_ARG1(regs),
			       SC_ARG2(regs), NULL, 0);
	case NR_listen:
		return on_sock(AG_NET_LISTEN, ret, SC_ARG0(regs), NULL, 0, NULL, 0);
	case NR_sendto:
		on_io(SC_ARG0(regs), ret, true);
		/* With an address on TCP too: Fast Open's first bytes. */
		on_stream(AG_DATA_SEND, ret, SC_ARG0(regs), SC_ARG1(regs), 0);
		return on_sock(AG_NET_SENDTO, ret, SC_ARG0(regs), (const void *)SC_ARG4(regs),
			       SC_ARG5(regs), (const void *)SC_ARG1(regs), SC_ARG2(regs));
	case NR_recvfrom:
	{
		/* A peek leaves the bytes queued: they are counted when read. */
		if (!(SC_ARG3(regs) & MSG_PEEK))
			on_io(SC_ARG0(regs), ret, false);
		struct recv_args r = { .ret = ret, .fd = SC_ARG0(regs), .buf = SC_ARG1(regs),
				       .blen = SC_ARG2(regs), .uaddr = (const void *)SC_ARG4(regs),
				       .ualen = (const __u32 *)SC_ARG5(regs),
				       .nocopy = SC_ARG3(regs) & (MSG_PEEK | MSG_TRUNC) };

		return on_recv(&r);
	}
	case NR_recvmsg:
		if (!(SC_ARG2(regs) & MSG_PEEK))
			on_io(SC_ARG0(regs), ret, false);
		if (!(SC_ARG2(regs) & (MSG_PEEK | MSG_TRUNC)))
			on_msg_stream(AG_DATA_RECV, ret, SC_ARG0(regs),
				      (const struct user_msghdr *)SC_ARG1(regs));
		return on_recvmsg(ret, SC_ARG0(regs), (struct user_msghdr *)SC_ARG1(regs));
	case NR_sendmsg:
		on_io(SC_ARG0(regs), ret, true);
		on_msg_stream(AG_DATA_SEND, ret, SC_ARG0(regs), (const struct user_msghdr *)SC_ARG1(regs));
		return emit_msghdr(ret, SC_ARG0(regs), (const struct user_msghdr *)SC_ARG1(regs),
				   AG_NET_SENDMSG);
	case NR_sendmmsg:
		on_mmsg(SC_ARG0(regs), SC_ARG1(regs), ret, true);
		return on_sendmmsg(ret, SC_ARG0(regs), (const struct mmsghdr *)SC_ARG1(regs),
				   SC_ARG2(regs));
	case NR_io_uring_setup:
		return emit_flag(AG_FLAG_IO_URING, ret, SC_ARG0(regs), 0, 0);
	case NR_io_setup:
		return emit_flag(AG_FLAG_AIO, ret, SC_ARG0(regs), 0, 0);
	case NR_ptrace:
		return emit_flag(AG_FLAG_PTRACE, ret, SC_ARG0(regs), SC_ARG1(regs), 0);
	case NR_setuid:
	case NR_setreuid:
	case NR_setresuid:
	case NR_setfsuid:
		return emit_flag(AG_FLAG_SETUID, ret, nr, SC_ARG0(regs),
				 nr == NR_setuid || nr == NR_setfsuid ? SC_ARG0(regs) : SC_ARG1(regs));
	case NR_setgid:
	case NR_setregid:
	case NR_setresgid:
	case NR_setfsgid:
		return emit_flag(AG_FLAG_SETGID, ret, nr, SC_ARG0(regs),
				 nr == NR_setgid || nr == NR_setfsgid ? SC_ARG0(regs) : SC_ARG1(regs));
	case NR_capset:
		return on_capset(ret, (const void *)SC_ARG0(regs), (const void *)SC_ARG1(regs));
	case NR_memfd_create:
		return emit_flag_str(AG_FLAG_MEMFD, ret, SC_ARG1(regs), (const char *)SC_ARG0(regs), -1);
	case NR_init_module:
		return emit_flag_str(AG_FLAG_MODULE, ret, nr, NULL, -1);
	case NR_finit_module:
		return emit_flag_str(AG_FLAG_MODULE, ret, nr, NULL, SC_ARG0(regs));
	case NR_bpf:
		return emit_flag(AG_FLAG_BPF, ret, SC_ARG0(regs), 0, 0);
	case NR_ioctl:
		if (SC_ARG1(regs) == TIOCSTI || SC_ARG1(regs) == TIOCLINUX)
			return emit_flag(AG_FLAG_TERMINAL, ret, SC_ARG0(regs), SC_ARG1(regs), 0);
		return 0;
	case NR_socket: {
		int fam = SC_ARG0(regs), type = SC_ARG1(regs) & 0xf, proto = SC_ARG2(regs);

		/* What net rules describe (as enforce.bpf.c's socket_create admits them): only
		 * when refused, since then no connect follows to say the tree wanted out. */
		if (fam == AF_UNIX || (fam == AF_NETLINK && proto == 0))
			return 0;
		if ((fam == AF_INET || fam == AF_INET6) && (type == 1 || type == 2) &&
		    (proto == 0 || proto == 1 || proto == 6 || proto == 17 || proto == 58))
			return ret < 0 ? emit_socket_failed(ret, fam, type) : 0;
		return emit_flag(AG_FLAG_SOCKET, ret, fam, SC_ARG1(regs), proto);
	}
	case NR_kill:
	case NR_tkill:
		return on_signal(ret, nr, (int)SC_ARG0(regs), SC_ARG1(regs));
	case NR_rt_sigqueueinfo:
		return on_signal(ret, nr, (int)SC_ARG0(regs), SC_ARG1(regs));
	case NR_tgkill:
	case NR_rt_tgsigqueueinfo:
		return on_signal(ret, nr, (int)SC_ARG0(regs), SC_ARG2(regs));
	case NR_pidfd_send_signal:
		return on_pidfd_signal(ret, SC_ARG0(regs), SC_ARG1(regs));
	case NR_mknod:
	case NR_mknodat: {
		__u64 mode = nr == NR_mknod ? SC_ARG1(regs) : SC_ARG2(regs);
		__u64 dev = nr == NR_mknod ? SC_ARG2(regs) : SC_ARG3(regs);

		if ((mode & S_IFMT) != S_IFCHR && (mode & S_IFMT) != S_IFBLK)
			return 0;
		return emit_flag_str(AG_FLAG_DEVICE, ret, (mode & 0xffffffff) | (dev << 32),
				     (const char *)(nr == NR_mknod ? SC_ARG0(regs) : SC_ARG1(regs)), -1);
	}
	case NR_clone3: {
		__u64 flags = 0;

		if (ret == 0)
			return 0;	/* the child's return: the parent reports */
		bpf_probe_read_user(&flags, sizeof(flags), (const void *)SC_ARG0(regs));
		if (!(flags & CLONE_INTO_CGROUP))
			return 0;
		return emit_flag(AG_FLAG_CGROUP, ret, flags, 0, 0);
	}
	case NR_mount:
	case NR_umount2:
	case NR_pivot_root:
	case NR_open_tree:
	case NR_move_mount:
	case NR_fsopen:
	case NR_fsmount:
	case NR_fspick:
		return emit_flag(AG_FLAG_MOUNT, ret, nr, 0, 0);
	case NR_process_vm_readv:
	case NR_process_vm_writev:
	case NR_pidfd_getfd:
		return emit_flag(AG_FLAG_PROCESS, ret, nr, SC_ARG0(regs), 0);
	case NR_setxattr:
	case NR_lsetxattr:
	case NR_fsetxattr:
		return on_setxattr(ret, nr, (const char *)SC_ARG1(regs));
	}
	return 0;
}

/* Children enter scope here, before wake_up_new_task lets them run their first instruction. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	struct ag_proc np = {};
	struct ag_event *e;
	__u32 ptgid = parent->tgid;
	__u32 ctgid = child->tgid;

	if (!bit_test(ptgid) || !scope(parent, ptgid))
		return 0;
	if (child->pid != ctgid)
		return 0;	/* a thread: in scope through its tgid already */
	np.start_ns = child->start_boottime;
	if (bpf_map_update_elem(&procs, &ctgid, &np, BPF_ANY)) {
		stat_inc(AG_STAT_PROCS_FULL);
		return 0;
	}
	bit_set(ctgid);
	e = ev_init(AG_FORK, 0, parent);
	if (!e)
		return 0;
	e->h.arg[0] = ctgid;
	e->h.arg[1] = np.start_ns;
	ev_submit(e, 0, true);
	return 0;
}

/* bpf_find_vma's callback: the file mapped where the address is. */
static long vma_file(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	/* Read as a plain value: put_path_at takes no verifier-typed pointer. */
	*(__u64 *)data = (__u64)BPF_CORE_READ(vma, vm_file);
	return 0;
}

/*
 * The ELF interpreter an exec loaded, from what the kernel did rather than from the file's
 * headers: exec leaves the user instruction pointer at the first instruction the new
 * program will run, which for a dynamically linked program lies in its interpreter's
 * mapping. Reported as an AG_FILE_INTERP record after the exec's own.
 */
static __always_inline void put_interp(struct task_struct *p, struct file *exe)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(p);
	struct ag_event *e;
	__u64 f = 0;
	__u32 off;

	if (!regs || bpf_find_vma(p, BPF_CORE_READ(regs, ip), vma_file, &f, 0) || !f ||
	    f == (__u64)exe)
		return;
	e = ev_init(AG_FILE, AG_FILE_INTERP, p);
	if (!e)
		return;
	off = put_path(e, 0, 0, &((struct file *)f)->f_path);
	e->h.flags |= AG_F_RESOLVED;
	ev_submit(e, off, true);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct ag_event *e;
	struct file *file;
	unsigned long as, ae;
	const char *filename;
	__u64 n;
	__u32 off = 0;
	__u32 tgid = p->tgid;
	char head[9] = {};

	if (!bit_test(tgid) || !scope(p, tgid))
		return 0;
	e = ev_init(AG_EXEC, 0, p);
	if (!e)
		return 0;
	file = BPF_CORE_READ(bprm, file);
	off = put_path(e, off, 0, &file->f_path);
	e->h.flags |= AG_F_RESOLVED;
	if (BPF_CORE_READ(file, f_inode, __i_nlink) == 0)
		e->h.flags |= AG_F_EXEC_UNLINKED;
	e->h.arg[0] = BPF_CORE_READ(bprm, argc);

	as = BPF_CORE_READ(p, mm, arg_start);
	ae = BPF_CORE_READ(p, mm, arg_end);
	n = ae > as ? ae - as : 0;
	if (n > AG_STR_MAX) {
		n = AG_STR_MAX;
		e->h.flags |= AG_F_ARGV_TRUNC;
	}
	barrier_var(n);
	n &= AG_STR_MAX * 2 - 1;
	if (bpf_probe_read_user(&e->data[off & AG_OFF_MASK], n, (void *)as))
		n = 0;
	e->h.len[1] = n;
	off += n;

	off = put_path(e, off, 2, cwd_of(p));

	filename = BPF_CORE_READ(bprm, filename);
	bpf_probe_read_kernel_str(head, sizeof(head), filename);
	if (head[0] == '/' && head[1] == 'd' && head[2] == 'e' && head[3] == 'v' &&
	    head[4] == '/' && head[5] == 'f' && head[6] == 'd' && head[7] == '/')
		e->h.flags |= AG_F_EXEC_FD;
	/* binfmt_script and binfmt_misc point bprm->interp away from the name exec was given. */
	if ((__u64)BPF_CORE_READ(bprm, interp) != (__u64)filename)
		e->h.flags |= AG_F_EXEC_SCRIPT;
	n = bpf_probe_read_kernel_str(&e->data[off & AG_OFF_MASK], AG_STR_MAX, filename);
	if ((long)n < 0)
		n = 0;
	e->h.len[3] = n;
	off += n;
	ev_submit(e, off, true);
	put_interp(p, file);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *task)
{
	struct ag_event *e;
	__u32 tgid = task->tgid;

	if (!bit_test(tgid) || !scope(task, tgid))
		return 0;
	/* Threads leave one by one; the process leaves with its last one. */
	if (task->signal->live.counter != 0)
		return 0;
	e = ev_init(AG_EXIT, 0, task);
	if (e) {
		e->h.ret = task->exit_code;
		ev_submit(e, 0, true);
	}
	bpf_map_delete_elem(&procs, &tgid);
	bit_clear(tgid);
	return 0;
}
