// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The sensor's payload capture, a compilation unit of its own linked into the sensor's
 * object (sensor.h: it shares the sensor's scope check, scratch record and ring buffer):
 * the bytes of HTTP streams, for user space to find the agent's LLM calls in.
 *
 *   TLS   uprobes on OpenSSL's SSL_write(_ex) and SSL_read(_ex), attached by user space to
 *         each libssl (or binary exporting them) the tree maps: the plaintext.
 *   AEAD  uprobes on EVP_AEAD_CTX_seal and _open linked into an executable (rustls on
 *         AWS-LC: Codex), where TLS 1.3 records are sealed and opened (see below).
 *   plain every call an HTTP client moves a TCP socket's bytes with, from the sensor's
 *         sys_exit program: write/send(to), writev, sendmsg, pwritev2; read/recv(from),
 *         readv, recvmsg, preadv2 (a buffer, or an iovec array walked in order).
 *
 * Only streams that start like an HTTP/1.x request (or the HTTP/2 preface, so user space
 * can say it is not parsed) are copied: the first write marks the stream, later writes and
 * all reads are copied only for marked streams. Ciphertext, database protocols and file
 * data never leave the kernel.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.h"
#include "sensor.h"

/* Set by user space before load: without it, no payload program does anything. */
const volatile bool capture_payload = false;

/* Into BTF, so the skeleton generates it for user space. */
enum ag_data_op _data_op = 0;

/* A stream: the SSL object's or the socket's address, and the process (SSL objects are
 * user addresses, unique only within a process). */
struct stream_key {
	__u64 ptr;
	__u32 tgid;
	__u32 pad;
};

#define STREAM_HTTP 1
#define STREAM_H2 2
#define STREAM_TLS 3	/* a socket that began with a TLS ClientHello */

/* Streams seen to carry HTTP; LRU, so a long-lived tree cannot fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct stream_key);
	__type(value, __u8);
} streams SEC(".maps");

/* An SSL_read(_ex) or EVP_AEAD_CTX_open in flight, per thread: where the plaintext will be. */
struct tls_read {
	__u64 ssl;		/* or the AEAD context */
	__u64 buf;
	__u64 readbytes;	/* SSL_read_ex's or EVP_AEAD_CTX_open's size_t *, or 0 for SSL_read */
	__u64 aead;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct tls_read);
} tls_reads SEC(".maps");

struct chunk_ctx {
	__u64 key;
	__u64 buf;
	__u64 len;	/* bytes of this buffer */
	__u64 total;	/* bytes the call moved: user space reassembles a call by offset */
	__u64 base;	/* this buffer's offset in them */
	__u16 op;
};

static long emit_chunk(__u64 i, struct chunk_ctx *c)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct ag_event *e;
	__u64 off = i * AG_CHUNK, n;

	if (off >= c->len)
		return 1;
	e = ev_init(AG_DATA, c->op, task);
	if (!e)
		return 1;
	n = c->len - off;
	if (n > AG_CHUNK)
		n = AG_CHUNK;
	barrier_var(n);
	n &= AG_CHUNK * 2 - 1;
	e->h.arg[0] = c->key;
	e->h.arg[1] = c->total;
	e->h.arg[2] = c->base + off;
	if (bpf_probe_read_user(&e->data[0], n, (const void *)(c->buf + off)))
		n = 0;
	e->h.len[0] = n;
	ev_submit(e, n, false);
	return 0;
}

/*
 * Whether a write's first four bytes start an HTTP/1.x request or HTTP/2, or, on a socket
 * (`plain`), a TLS handshake record: a ClientHello, whose SNI and ALPN tell user space what
 * a process with no probed TLS library is saying where it cannot be read.
 */
static __always_inline __u8 http_start(const char *m, bool plain)
{
	if ((m[0] == 'G' && m[1] == 'E' && m[2] == 'T' && m[3] == ' ') ||
	    (m[0] == 'P' && m[1] == 'O' && m[2] == 'S' && m[3] == 'T') ||
	    (m[0] == 'P' && m[1] == 'U' && m[2] == 'T' && m[3] == ' ') ||
	    (m[0] == 'H' && m[1] == 'E' && m[2] == 'A' && m[3] == 'D') ||
	    (m[0] == 'P' && m[1] == 'A' && m[2] == 'T' && m[3] == 'C') ||
	    (m[0] == 'D' && m[1] == 'E' && m[2] == 'L' && m[3] == 'E') ||
	    (m[0] == 'O' && m[1] == 'P' && m[2] == 'T' && m[3] == 'I') ||
	    (m[0] == 'C' && m[1] == 'O' && m[2] == 'N' && m[3] == 'N'))
		return STREAM_HTTP;
	if (m[0] == 'P' && m[1] == 'R' && m[2] == 'I' && m[3] == ' ')
		return STREAM_H2;
	if (plain && m[0] == 0x16 && m[1] == 0x03 && (__u8)m[2] <= 0x04)
		return STREAM_TLS;
	return 0;
}

/*
 * Whether a call's bytes on a stream are copied, from its first buffer: a write that
 * starts HTTP marks the stream; bytes of unmarked streams are not copied. HTTP/2 is
 * reported once (its preface) and then left, and so is TLS on a socket (its ClientHello).
 * Returns how many of `len` bytes to copy.
 */
static __always_inline __u64 wanted_bytes(__u64 ptr, const char *first, __u64 len, bool write,
					  bool plain)
{
	struct stream_key k = { .ptr = ptr, .tgid = bpf_get_current_pid_tgid() >> 32 };
	__u8 *state, start;

	if (!capture_payload || !len || len > (1ULL << 31))
		return 0;
	state = bpf_map_lookup_elem(&streams, &k);
	if (state && *state == STREAM_H2)
		return 0;
	if (write) {
		start = http_start(first, plain);
		/* A handshake record is copied only as a socket's first: the hello. Later
		 * ones leave the stream as it was, so a fake hello hides no HTTP after it. */
		if (start == STREAM_TLS && state)
			start = 0;
		if (start) {
			bpf_map_update_elem(&streams, &k, &start, BPF_ANY);
			if (start == STREAM_H2)
				return 24;	/* the preface: enough to say what it is */
			return len;
		}
	}
	if (!state || *state == STREAM_TLS)
		return 0;
	return len;
}

/*
 * TLS read through an AEAD: EVP_AEAD_CTX_seal and _open, where rustls on AWS-LC (or any
 * TLS stack on BoringSSL's or AWS-LC's crypto) seals and opens each TLS 1.3 record. Only
 * application data: the additional data is the record's header (17 03 03, then the
 * ciphertext's length, which the call's lengths must give), and the plaintext ends with
 * its content type, 0x17. Anything else sealed with an AEAD (handshake records, QUIC,
 * files) does not look like that and is left.
 *
 * A context is one direction of one connection. It is tied to its socket by the thread's
 * socket calls: a sealing context by the thread's next write that starts with the record it
 * sealed; an opening one by the TCP socket the thread read last. Its stream is the socket's
 * address + 1 (the socket's own stream carries the ciphertext). Bytes a sealing context gave
 * before its tie are under the context's address (or its old socket's, when a context's
 * address is reused by another connection): user space moves them over when the tie is
 * made (AG_DATA_TLS_BIND).
 */
#define AEAD_TAG 16		/* AES-GCM's and ChaCha20-Poly1305's, TLS 1.3's AEADs */
#define AEAD_RECORD_MAX (16384 + 256 + AEAD_TAG)

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct stream_key);	/* the context */
	__type(value, __u64);		/* its stream */
} aead_tied SEC(".maps");

/* A thread's first sealed record since its last socket write that carried one: its
 * context, the record's length, and the stream its plaintext went to. */
struct aead_sealed {
	__u64 ctx;
	__u64 record;
	__u64 key;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct aead_sealed);
} aead_sealed SEC(".maps");

/* The stream of the TCP socket each thread of an AEAD-probed process read last. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} aead_read_last SEC(".maps");

/* Processes whose AEAD probes have fired: only their socket reads are noted. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} aead_procs SEC(".maps");

/* The stack arguments of EVP_AEAD_CTX_seal and _open (the 7th to 10th), above the
 * return address at entry. */
struct aead_args {
	__u64 in;
	__u64 in_len;
	__u64 ad;
	__u64 ad_len;
};

/* Whether the call seals or opens a TLS 1.3 record of `len` ciphertext bytes (its
 * additional data is that record's header); notes the process as AEAD-probed. */
static __always_inline bool aead_record(struct pt_regs *ctx, struct aead_args *a, __u64 tag)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u8 h[5], one = 1;

	if (bpf_probe_read_user(a, sizeof(*a), (const void *)(PT_REGS_SP(ctx) + 8)))
		return false;
	if (a->ad_len != 5 || a->in_len <= tag || a->in_len > AEAD_RECORD_MAX ||
	    bpf_probe_read_user(h, sizeof(h), (const void *)a->ad))
		return false;
	if (h[0] != 0x17 || h[1] != 3 || h[2] != 3 ||
	    (((__u64)h[3] << 8) | h[4]) != a->in_len + AEAD_TAG - tag)
		return false;
	if (!bpf_map_lookup_elem(&aead_procs, &tgid))
		bpf_map_update_elem(&aead_procs, &tgid, &one, BPF_ANY);
	return true;
}

/* Zeros of padding looked through for a record's content type (RFC 8446 5.4). */
#define AEAD_PAD_MAX 32

/* The length of a record's content: its plaintext of `n` bytes at `buf` is the content,
 * the content type, then zeros of padding. 0 unless the type is application data (23)
 * within the last AEAD_PAD_MAX bytes (more padding than that is left unread). */
static __always_inline __u64 aead_content(__u64 buf, __u64 n)
{
	__u8 tail[AEAD_PAD_MAX] = {};
	__u64 k = n < AEAD_PAD_MAX ? n : AEAD_PAD_MAX;
	int i;

	if (!k || k > AEAD_PAD_MAX || bpf_probe_read_user(tail, k, (const void *)(buf + n - k)))
		return 0;
	for (i = AEAD_PAD_MAX - 1; i >= 0; i--) {
		if (i >= k || !tail[i])
			continue;
		return tail[i] == 0x17 ? n - k + i : 0;
	}
	return 0;
}

/* EVP_AEAD_CTX_seal's entry: the record's plaintext is `in`. Its context's next record
 * written by this thread is awaited even when the context is tied: a context's address
 * reused by another connection is tied again to its socket. */
static __always_inline int aead_seal(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct stream_key k = { .ptr = PT_REGS_PARM1(ctx), .tgid = id >> 32 };
	struct aead_sealed *p, n;
	struct aead_args a;
	__u64 *tied, len, key;

	if (!aead_record(ctx, &a, 0))
		return 0;
	len = aead_content(a.in, a.in_len);
	if (!len)
		return 0;
	tied = bpf_map_lookup_elem(&aead_tied, &k);
	key = tied ? *tied : k.ptr;
	p = bpf_map_lookup_elem(&aead_sealed, &id);
	if (!p || p->ctx != k.ptr) {
		n.ctx = k.ptr;
		n.record = a.in_len + AEAD_TAG;
		n.key = key;
		bpf_map_update_elem(&aead_sealed, &id, &n, BPF_ANY);
	}
	return on_payload(key, a.in, len, AG_DATA_TLS_WRITE);
}

/*
 * A TCP socket call of the tree that moved bytes (`buf`, or `cnt` iovecs at `buf`): a write
 * that starts with the record the thread sealed first since its last write ties that
 * context to the socket; a read by an AEAD-probed process is noted for the opens that
 * follow it. A function of its own, beside the payload's: its stack is not added to theirs.
 */
__hidden __noinline int on_aead_socket(__u64 sock, __u16 op, __u64 buf, __u64 cnt)
{
	__u64 id = bpf_get_current_pid_tgid(), to = sock + 1;
	struct stream_key k = { .tgid = id >> 32 }, s = { .ptr = to, .tgid = id >> 32 };
	struct aead_sealed *p, n;
	struct ag_event *e;
	struct iovec v;
	__u8 h[5], *state, st;

	if (!capture_payload)
		return 0;
	if (op == AG_DATA_RECV) {
		if (bpf_map_lookup_elem(&aead_procs, &k.tgid))
			bpf_map_update_elem(&aead_read_last, &id, &to, BPF_ANY);
		return 0;
	}
	p = bpf_map_lookup_elem(&aead_sealed, &id);
	if (!p)
		return 0;
	n = *p;
	if (cnt) {
		if (bpf_probe_read_user(&v, sizeof(v), (const void *)buf) || v.iov_len < 5)
			return 0;
		buf = (__u64)v.iov_base;
	}
	/* Another write (another socket's, or not this record) leaves it awaited. */
	if (bpf_probe_read_user(h, sizeof(h), (const void *)buf) || h[0] != 0x17 || h[1] != 3 ||
	    h[2] != 3 || (((__u64)h[3] << 8) | h[4]) != n.record)
		return 0;
	bpf_map_delete_elem(&aead_sealed, &id);
	if (n.key == to)
		return 0;	/* tied to this socket already */
	k.ptr = n.ctx;
	bpf_map_update_elem(&aead_tied, &k, &to, BPF_ANY);
	k.ptr = n.key;
	state = bpf_map_lookup_elem(&streams, &k);
	if (state) {
		st = *state;
		bpf_map_update_elem(&streams, &s, &st, BPF_ANY);
	}
	e = ev_init(AG_DATA, AG_DATA_TLS_BIND, bpf_get_current_task_btf());
	if (!e)
		return 0;
	e->h.arg[0] = n.key;
	e->h.arg[1] = to;
	ev_submit(e, 0, false);
	return 0;
}

/* EVP_AEAD_CTX_open's return: `n` bytes of a record's plaintext at r->buf. Its stream is
 * the socket the thread read last (a record is opened in the same poll that read it),
 * else the one its context was tied to. */
static __always_inline int aead_opened(struct tls_read *r, __u64 n)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct stream_key k = { .ptr = r->ssl, .tgid = id >> 32 };
	__u64 *tied, *last, to, len;

	if (n > AEAD_RECORD_MAX)
		return 0;
	len = aead_content(r->buf, n);
	if (!len)
		return 0;
	tied = bpf_map_lookup_elem(&aead_tied, &k);
	last = bpf_map_lookup_elem(&aead_read_last, &id);
	if (last) {
		to = *last;
		if (!tied || *tied != to)
			bpf_map_update_elem(&aead_tied, &k, &to, BPF_ANY);
	} else if (tied) {
		to = *tied;
	} else {
		return 0;
	}
	return on_payload(to, r->buf, len, AG_DATA_TLS_READ);
}

/* One call's bytes on a stream, in one buffer. */
__hidden __noinline int on_payload(__u64 ptr, __u64 buf, __u64 len, __u16 op)
{
	bool write = op == AG_DATA_TLS_WRITE || op == AG_DATA_SEND;
	struct chunk_ctx c = { .key = ptr, .buf = buf, .op = op };
	char first[4] = {};

	if (!buf || (write && len >= 4 && bpf_probe_read_user(first, 4, (const void *)buf)))
		return 0;
	c.len = c.total = wanted_bytes(ptr, first, len, write, op == AG_DATA_SEND);
	if (c.len)
		bpf_loop(AG_CHUNKS, emit_chunk, &c, 0);
	return 0;
}

/* A call's walk over its iovec array: the call's bytes fill the buffers in order. */
struct iov_ctx {
	__u64 key;
	const struct iovec *iov;
	__u64 cnt;
	__u64 total;
	__u64 done;	/* bytes emitted from earlier buffers */
	__u32 chunks;	/* chunks the call may still emit (AG_CHUNKS in all, as one buffer) */
	__u16 op;
};

static long iov_step(__u64 i, struct iov_ctx *ic)
{
	struct chunk_ctx c = { .key = ic->key, .total = ic->total, .base = ic->done, .op = ic->op };
	struct iovec v;
	__u64 n, nr;

	if (i >= ic->cnt || ic->done >= ic->total || !ic->chunks)
		return 1;
	if (bpf_probe_read_user(&v, sizeof(v), &ic->iov[i]))
		return 1;
	n = ic->total - ic->done;
	if (n > v.iov_len)
		n = v.iov_len;
	if (!n)
		return 0;
	c.buf = (__u64)v.iov_base;
	c.len = n;
	nr = (n + AG_CHUNK - 1) / AG_CHUNK;
	if (nr > ic->chunks)
		nr = ic->chunks;
	bpf_loop(nr, emit_chunk, &c, 0);
	ic->chunks -= nr;
	ic->done += n;
	return 0;
}

/*
 * One call's bytes on a stream, through an iovec array (writev, sendmsg, readv,
 * recvmsg): `len` bytes the call moved, filling the buffers in order. The stream's
 * start is judged by the first buffer, which clients fill with the request line.
 */
__hidden __noinline int on_payload_iov(__u64 ptr, __u64 iov, __u64 cnt, __u64 len, __u16 op)
{
	bool write = op == AG_DATA_TLS_WRITE || op == AG_DATA_SEND;
	struct iov_ctx ic = { .key = ptr, .iov = (const struct iovec *)iov, .op = op,
			      .chunks = AG_CHUNKS };
	char first[4] = {};
	__u32 got = 0;
	int i;

	if (!iov || !cnt)
		return 0;
	/* A write's first four bytes, across buffers: an empty or short first buffer does
	 * not hide the request line. */
	for (i = 0; write && i < 4 && got < 4 && got < len && i < cnt; i++) {
		struct iovec v;
		__u32 j;

		if (bpf_probe_read_user(&v, sizeof(v), (const struct iovec *)iov + i))
			return 0;
		for (j = 0; j < 4 && got < 4 && j < v.iov_len; j++) {
			if (bpf_probe_read_user(&first[got & 3], 1, (const char *)v.iov_base + j))
				return 0;
			got++;
		}
	}
	ic.total = wanted_bytes(ptr, first, len, write, op == AG_DATA_SEND);
	if (!ic.total)
		return 0;
	ic.cnt = cnt > 1024 ? 1024 : cnt;	/* UIO_MAXIOV */
	bpf_loop(ic.cnt, iov_step, &ic, 0);
	return 0;
}

/* The tree's processes only; a cheap bit test first, as everywhere in the sensor. */
static __always_inline bool payload_in_scope(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!capture_payload || !bit_test(tgid))
		return false;
	return scope(bpf_get_current_task_btf(), tgid) != NULL;
}

/*
 * A call on a TCP socket, at syscall exit (ret bytes moved): through one buffer (`buf`,
 * `cnt` 0), or through `cnt` iovecs at `buf`.
 */
__hidden __noinline int on_stream(__u16 op, long ret, int fd, __u64 buf, __u64 cnt)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct socket *sock;

	if (!capture_payload || ret <= 0)
		return 0;
	sock = fd_socket(task, fd);
	if (!sock || BPF_CORE_READ(sock, type) != SOCK_STREAM)
		return 0;
	on_aead_socket((__u64)sock, op, buf, cnt);
	if (cnt)
		return on_payload_iov((__u64)sock, buf, cnt, ret, op);
	return on_payload((__u64)sock, buf, ret, op);
}

/* Which function a TLS probe is on: its attach cookie. */
#define TLS_WRITE 1	/* SSL_write(ssl, buf, int num) */
#define TLS_WRITE_EX 2	/* SSL_write_ex(ssl, buf, size_t num, size_t *written) */
#define TLS_READ 3	/* SSL_read(ssl, buf, int num) */
#define TLS_READ_EX 4	/* SSL_read_ex(ssl, buf, size_t num, size_t *readbytes) */
/* EVP_AEAD_CTX_seal and _open(ctx, out, size_t *out_len, max_out, nonce, nonce_len, in,
 * in_len, ad, ad_len): seal's plaintext is `in` on entry, open's `out` on return. */
#define TLS_SEAL 5
#define TLS_OPEN 6

/*
 * Entry of any of the four: a write's plaintext is there on entry; a read's is there on
 * return, so where it will be is kept for the return probe.
 */
static __always_inline int tls_enter(struct pt_regs *ctx)
{
	__u64 which = bpf_get_attach_cookie(ctx);
	__u64 id = bpf_get_current_pid_tgid();
	void *ssl = (void *)PT_REGS_PARM1(ctx);
	__u64 buf = PT_REGS_PARM2(ctx);
	long num = which == TLS_WRITE || which == TLS_READ ? (int)PT_REGS_PARM3(ctx)
							    : (long)PT_REGS_PARM3(ctx);
	struct tls_read r = { .ssl = (__u64)ssl, .buf = buf };

	struct aead_args a;

	if (!payload_in_scope())
		return 0;
	if (which == TLS_SEAL)
		return aead_seal(ctx);
	if (which == TLS_OPEN) {
		/* The ciphertext holds the tag: open's additional data counts it. */
		if (!aead_record(ctx, &a, AEAD_TAG))
			return 0;
		r.readbytes = PT_REGS_PARM3(ctx);
		r.aead = 1;
		bpf_map_update_elem(&tls_reads, &id, &r, BPF_ANY);
		return 0;
	}
	if (which == TLS_WRITE || which == TLS_WRITE_EX) {
		if (num > 0)
			on_payload((__u64)ssl, buf, num, AG_DATA_TLS_WRITE);
		return 0;
	}
	if (which == TLS_READ_EX)
		r.readbytes = PT_REGS_PARM4(ctx);
	bpf_map_update_elem(&tls_reads, &id, &r, BPF_ANY);
	return 0;
}

/* SSL_read returns the count; SSL_read_ex and EVP_AEAD_CTX_open return 1 and store it
 * through readbytes. */
static __always_inline int tls_exit(struct pt_regs *ctx)
{
	long ret = PT_REGS_RC(ctx);
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_read *r = bpf_map_lookup_elem(&tls_reads, &id);
	__u64 n = 0;

	if (!r)
		return 0;
	if (r->readbytes) {
		if (ret == 1)
			bpf_probe_read_user(&n, sizeof(n), (const void *)r->readbytes);
	} else if (ret > 0) {
		n = ret;
	}
	if (n && r->aead)
		aead_opened(r, n);
	else if (n)
		on_payload(r->ssl, r->buf, n, AG_DATA_TLS_READ);
	bpf_map_delete_elem(&tls_reads, &id);
	return 0;
}

/*
 * Each probe twice: as one multi-uprobe link per file (kernels from 6.6; detaching it
 * costs one RCU grace period, not one per function), and as plain uprobes, the fallback.
 */
SEC("uprobe.multi")
int tls_enter_multi(struct pt_regs *ctx)
{
	return tls_enter(ctx);
}

SEC("uretprobe.multi")
int tls_exit_multi(struct pt_regs *ctx)
{
	return tls_exit(ctx);
}

SEC("uprobe")
int tls_enter_one(struct pt_regs *ctx)
{
	return tls_enter(ctx);
}

SEC("uretprobe")
int tls_exit_one(struct pt_regs *ctx)
{
	return tls_exit(ctx);
}
