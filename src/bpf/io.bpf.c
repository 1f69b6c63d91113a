// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The sensor's byte counts, a compilation unit of its own linked into the sensor's object
 * (sensor.h): how many bytes each regular file, block device and internet socket of the
 * tree moved, whatever the protocol and whether or not its payload can be read (TLS no
 * probe reaches, a database protocol, a raw upload).
 *
 * Counted in the kernel, per open file (struct file): a read or write adds to its entry
 * and nothing goes to user space per call. The first counted call on a file says what it
 * is (AG_IO_NAME); its counts go out (AG_IO_COUNT) when its entry is taken over by another
 * file (a struct file freed and its memory reused, told by the inode; a socket connected
 * elsewhere, told by the peer) and, for what is left, when user space drains the map at
 * the end of the recording. A full map loses no bytes: the call is reported on its own.
 *
 * Not counted: pipes, terminals, unix sockets (the tree's own plumbing), memory-mapped
 * file reads (no syscall moves them), io_uring and Linux AIO (each reported as a flag,
 * never counted).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.h"
#include "sensor.h"

#define AF_INET 2
#define AF_INET6 10
#define S_IFREG 0100000
#define S_IFBLK 0060000

/* Into BTF, so the skeleton generates them for user space. */
enum ag_io_op _io_op = 0;
struct ag_io _io = {};

/* Open files being counted, by struct file address. A plain hash, not LRU: an evicted
 * entry would lose its bytes silently. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct ag_io);
} io SEC(".maps");

/* What a file is, for its first counted call: 0 when it went out. */
static __noinline int emit_name(struct file *f, struct ag_io *v, __u16 family, __u16 sotype)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct ag_event *e = ev_init(AG_IO, AG_IO_NAME, task);
	__u32 off = 0;

	if (!e)
		return -1;
	e->h.arg[0] = (__u64)f;
	if (family) {
		e->h.family = family;
		e->h.port = v->port;
		e->h.sotype = sotype;
		__builtin_memcpy(e->h.addr, v->addr, 16);
	} else {
		off = put_path_at(e, 0, 0, (__u64)&f->f_path);
		e->h.flags |= AG_F_RESOLVED;
	}
	return ev_submit(e, off, false);
}

static __always_inline void emit_count(__u64 key, __u64 read, __u64 written)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct ag_event *e;

	if (!read && !written)
		return;
	e = ev_init(AG_IO, AG_IO_COUNT, task);
	if (!e)
		return;
	e->h.arg[0] = key;
	e->h.arg[1] = read;
	e->h.arg[2] = written;
	ev_submit(e, 0, false);
}

/* The peer a socket sends to: its connected address (port 0 when it has none). */
static __always_inline void peer_of(struct sock *sk, __u16 family, struct ag_io *v)
{
	__u16 dport = BPF_CORE_READ(sk, __sk_common.skc_dport);

	v->port = bpf_ntohs(dport);
	if (family == AF_INET) {
		__u32 a = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(v->addr, &a, 4);
	} else {
		BPF_CORE_READ_INTO(&v->addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
}

static __always_inline bool same_addr(const struct ag_io *a, const struct ag_io *b)
{
	const __u64 *x = (const __u64 *)a->addr, *y = (const __u64 *)b->addr;

	return x[0] == y[0] && x[1] == y[1];
}

__hidden __noinline int on_io(int fd, long n, bool out)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct ag_io cur = {}, *v;
	struct file *f;
	struct sock *sk = NULL;
	__u16 family = 0, sotype = 0, mode;
	__u64 key;

	if (n <= 0)
		return 0;
	f = fd_file(task, fd);
	if (!f)
		return 0;
	mode = BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT;
	if (mode == S_IFSOCK) {
		struct socket *sock = BPF_CORE_READ(f, private_data);

		sk = BPF_CORE_READ(sock, sk);
		family = BPF_CORE_READ(sk, __sk_common.skc_family);
		if (family != AF_INET && family != AF_INET6)
			return 0;
		sotype = BPF_CORE_READ(sock, type);
		peer_of(sk, family, &cur);
	} else if (mode != S_IFREG && mode != S_IFBLK) {
		return 0;
	}
	cur.inode = (__u64)BPF_CORE_READ(f, f_inode);
	/* The inode's memory too may have been freed and reused for another file since the
	 * entry was made: its number and device tell them apart. */
	cur.ino = BPF_CORE_READ(f, f_inode, i_ino);
	cur.dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev);
	key = (__u64)f;
	v = bpf_map_lookup_elem(&io, &key);
	if (v && (v->inode != cur.inode || v->ino != cur.ino || v->dev != cur.dev ||
		  v->port != cur.port || !same_addr(v, &cur))) {
		/* Another file in the same memory, or the socket now talks to another peer:
		 * what the old one moved goes out under its name first, by the one thread
		 * whose delete took the entry (two that saw it stale would count it twice). */
		__u64 r = v->read, w = v->written;

		if (!bpf_map_delete_elem(&io, &key))
			emit_count(key, r, w);
		v = NULL;
	}
	if (!v) {
		/* Named first: counts under a name that never went out (the ring full) could
		 * never be told apart, so the entry waits for a call whose name does; this
		 * call's bytes are lost with it, and the loss counted. */
		if (emit_name(f, &cur, family, sotype))
			return 0;
		/* Fails when another thread made it first (then it is there) or when full. */
		bpf_map_update_elem(&io, &key, &cur, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&io, &key);
		if (!v) {
			/* Full: these bytes on their own, after the name. */
			emit_count(key, out ? 0 : n, out ? n : 0);
			return 0;
		}
	}
	if (out)
		__sync_fetch_and_add(&v->written, n);
	else
		__sync_fetch_and_add(&v->read, n);
	return 0;
}

struct mmsg_ctx {
	const struct mmsghdr *vec;
	long n;
	__u64 bytes;
};

static long mmsg_len(__u64 i, struct mmsg_ctx *c)
{
	__u32 len = 0;

	if ((long)i >= c->n)
		return 1;
	bpf_probe_read_user(&len, sizeof(len), &c->vec[i].msg_len);
	c->bytes += len;
	return 0;
}

/* sendmmsg/recvmmsg return how many messages moved; each one's bytes are in its msg_len. */
__hidden __noinline int on_mmsg(int fd, __u64 msgvec, long n, bool out)
{
	struct mmsg_ctx c = { .vec = (const struct mmsghdr *)msgvec, .n = n };

	if (n <= 0)
		return 0;
	/* UIO_MAXIOV: the most one call moves. */
	bpf_loop(1024, mmsg_len, &c, 0);
	return on_io(fd, c.bytes, out);
}
