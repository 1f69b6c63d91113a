// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Enforcement by HTTP endpoint, for plain HTTP/1.x: a sock_ops program on the tree's
 * cgroup puts each TCP connection the tree opens into `conns`; the sk_msg program then sees
 * every byte the tree sends on it before TCP takes it, follows the HTTP framing across
 * sends (request line, headers, a Content-Length or chunked body, the next request), and
 * when a request's header block completes looks it up as the profile spells it
 * (struct ag_http_key). A request the profile does not cover is rated as diff rates it
 * (enum ag_http_class); a class the level denies drops the send that completes the
 * header block (the caller gets EACCES), so the server never has a request to act on, and
 * every later send on that connection: a half-sent request cannot be finished another way.
 *
 * Fail closed: what cannot be followed (a malformed line, two Host headers, a length that
 * is not a number, bytes beyond what one send may hold of headers) is denied. A connection
 * whose first bytes are not a request (TLS, another protocol) is not HTTP to any server
 * and is left alone: TLS is checked where its plaintext is.
 *
 * TLS: uprobes on OpenSSL's SSL_write(_ex) (attached by user space to each libssl the
 * sensor probes) run the same framing over the plaintext, per SSL object. A uprobe cannot
 * fail the call, so a denied request kills the process (SIGKILL, delivered before the
 * function's first instruction runs): the plaintext is never encrypted, the server never
 * has the request. What a tree sends through a TLS library agentguard does not probe is
 * checked by destination only (README says where this holds).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.h"
#include "policy.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";


/* Put the key's enums into BTF so the skeleton generates them for user space. */
enum ag_http_kind _http_kind = 0;
enum ag_http_class _http_class = 0;
enum ag_http_value _http_value = 0;

const volatile __u32 audit = 0;		/* report, deny nothing */
const volatile __u32 deny_mask = 0;	/* 1 << enum ag_http_class, per class denied */
/* The tree ran before the probes (--pid): an SSL object without a stream was made before
 * them; not followed (opaque) rather than killed. */
const volatile __u32 adopt_unseen = 0;

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AG_HTTP_ENDPOINTS);
	__type(key, struct ag_http_key);
	__type(value, __u32);
} endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} denials SEC(".maps");

/* Reports the denials ring had no room for: the calls were still refused. Read by the
 * session (bss), counted with the lost events, said in the summary. */
__u64 denials_lost = 0;

/* The tree's cgroup, at 0: the TLS probes fire for every process mapping the library. */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tree SEC(".maps");

/* Where a stream is in HTTP's framing. */
enum st {
	P_FIRST = 0,	/* nothing sent yet: a request, or not HTTP at all */
	P_START,	/* between requests */
	P_METHOD,
	P_TARGET,	/* the first byte of the request target */
	P_PATH,
	P_QUERY,
	P_VERSION,
	P_LINE,		/* the start of a header line */
	P_NAME,
	P_VALUE,
	P_BODY,		/* `left` bytes of body */
	P_CHUNK_SIZE,
	P_CHUNK_EXT,
	P_CHUNK_DATA,	/* `left` bytes of a chunk */
	P_CHUNK_END,	/* the CRLF after a chunk */
	P_TRAILER,	/* the start of a trailer line */
	P_TRAILER_LINE,
	P_OPAQUE,	/* not HTTP: never checked */
	P_DENIED,	/* a request was denied: the connection is closed to sends */
	P_SNIFF,	/* the first line is no request line: HTTP (denied) or not at its end */
};

/* Which header a value belongs to. */
enum hdr { H_OTHER = 0, H_HOST, H_LENGTH, H_CODING };

#define NAME_MAX 32
#define SEG_MAX 64
#define WINDOW 512
#define WINDOWS 32

/* Flags of the request being read. */
#define R_BAD 1		/* matches no key: a field too long, an odd target */
#define R_HOST 2	/* a Host header was seen */
#define R_LENGTH 4	/* a Content-Length was seen */
#define R_CHUNKED 8
#define R_MALFORMED 16	/* cannot be followed: denied */
#define R_TRIM 32	/* the host value has started (leading whitespace skipped) */
#define PORT_BAD 0x100000
#define R_CR 64		/* a CR came: only LF may follow */
#define R_FRAGMENT 128	/* a '#' in the target: no client sends one */
#define R_V2 256	/* the version so far reads "HTTP/2.0" */
#define R_LOWER 512	/* the method had a lower-case letter */
#define R_UPGRADE 1024	/* an Upgrade header was seen */
#define R_SWITCHES 2048	/* covered by an endpoint learned to switch protocols */
#define R_URL 4096	/* the target reads as a URL: '/' or '*' first, or a ':' in it */

struct stream {
	__u8 tls;	/* an SSL object's plaintext: a denial kills (DENY_KILL) */
	__u8 server;	/* TLS: the object serves (its writes are responses) */
	__u8 quiet;	/* TLS: a write's return moves the stream; the entry reported */
	__u8 line1;	/* the connection's first line has ended */
	__u8 http5;	/* bytes of "HTTP/" matched in the first line */
	__u8 g09;	/* where the first line is in an HTTP/0.9 request's (step09) */
	__u8 st;
	__u8 hdr;
	__u16 flags;
	__u8 nlen;	/* header name bytes */
	__u16 mlen, plen, hkeep;	/* method, path, host bytes */
	__u16 pend;	/* whitespace after the host's last byte, not kept */
	__u16 colons, colon;	/* ':' in the host, and where the last one is */
	__u32 port;	/* the number after the last ':'; PORT_BAD when it is none */
	__u16 slen;	/* raw bytes of the current path segment */
	__u16 digits, hex, word, alpha;	/* the segment's shape (looks_like_id) */
	__u16 tlen;	/* transfer-coding bytes */
	__u64 left;	/* body or chunk bytes left; the number being read */
	char name[NAME_MAX];
	char coding[16];
	char seg[SEG_MAX];
	char method[AG_HTTP_METHOD_LEN];
	char path[256];		/* AG_HTTP_PATH_LEN used: a power of two bounds the index */
	char host[AG_HTTP_SERVICE_LEN];
};

/* Each connection's place in the framing, freed with the socket. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct stream);
} streams SEC(".maps");


/*
 * Each SSL object's place in the framing, made where a connection starts (SSL_clear that
 * succeeded, which the handshake calls; SSL_set_connect_state; SSL_set_accept_state) and
 * dropped at SSL_free. A write on an object without one is denied (fail closed): a stream
 * that starts afresh mid-connection would take a body's bytes for a request, or the next
 * request for another protocol. LRU, so processes that end without SSL_free do not fill
 * it; an evicted stream's next write is denied the same way.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct tls_key);
	__type(value, struct stream);
} tls_streams SEC(".maps");

/* A TLS stream: the SSL object's address in its process. */
struct tls_key {
	__u64 ssl;
	__u32 tgid;
	__u32 pad;
};

/* A probed call in flight: what its return acts on (tls_return). */
struct tls_frame {
	struct tls_key k;
	__u64 buf;
	__u64 written;	/* SSL_write_ex(2)'s size_t *; 0 for SSL_write, which returns the count */
	__u64 sp;	/* the stack pointer at its entry: which return is its */
	__u32 which;
	__u32 inner;	/* a write inside a write on the same object (SSL_write_ex calls
			 * SSL_write_ex2): the outer one checks and commits */
};

#define TLS_FRAMES 4

/* A thread's probed calls in flight, innermost last: calls nest (a write inside another
 * object's write, from a callback; SSL_clear inside the write that starts a handshake),
 * each acted on at its own return. */
struct tls_stack {
	__u32 tgid;	/* whose: a thread id reused by another process finds it stale */
	__u32 n;
	struct tls_frame f[TLS_FRAMES];
};

struct scratch {
	char buf[WINDOW];
	struct ag_http_key key;
	struct stream blank;	/* never written: a new TLS stream's state (too big for the stack) */
	struct tls_stack no_calls;	/* never written: a thread's first calls */
	struct stream spec;	/* a TLS write checked before it is written (tls_enter) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

SEC("sockops")
int endpoint_sockops(struct bpf_sock_ops *ops)
{
	struct bpf_sock *sk;
	struct stream *s;
	__u64 cookie;

	if (ops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
		return 1;
	/* A socket connected again (after an AF_UNSPEC disconnect) starts afresh. */
	sk = ops->sk;
	/* One register for the test and the call: a reload would lose the verifier's check. */
	asm volatile("" : "+r"(sk));
	if (sk) {
		s = bpf_sk_storage_get(&streams, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (s)
			__builtin_memset(s, 0, sizeof(*s));
	}
	cookie = bpf_get_socket_cookie(ops);
	bpf_sock_hash_update(ops, &conns, &cookie, BPF_NOEXIST);
	return 1;
}

static __always_inline int tchar(char c)
{
	/* RFC 9110's token characters. */
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
	case '-': case '.': case '^': case '_': case '`': case '|': case '~':
		return 1;
	}
	return 0;
}

static __always_inline char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static __always_inline int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static __always_inline char hexdigit(__u8 d)
{
	return d < 10 ? '0' + d : 'A' + d - 10;
}

/* Appends a byte as src/profile/http.rs encode() spells it: printable ASCII but braces
 * as is, the rest as %XX. Returns the new length; past `cap`, cap + 1 (too long). */
static __always_inline __u16 put(char *buf, __u16 len, __u16 cap, __u16 mask, char c)
{
	__u8 b = (__u8)c;

	if (b > 32 && b < 127 && b != '{' && b != '}') {
		if (len >= cap)
			return cap + 1;
		buf[len & mask] = c;
		return len + 1;
	}
	if (len + 3 > cap)
		return cap + 1;
	buf[len & mask] = '%';
	buf[(len + 1) & mask] = hexdigit(b >> 4);
	buf[(len + 2) & mask] = hexdigit(b & 15);
	return len + 3;
}

/* looks_like_id() of src/profile/http.rs, from the counts kept while the segment came. */
static __always_inline int is_id(struct stream *s)
{
	__u16 n = s->slen;

	if (n == 0)
		return 0;
	if (s->digits == n)
		return 1;
	if (n == 36 && s->hex == 32 && s->seg[8] == '-' && s->seg[13] == '-' &&
	    s->seg[18] == '-' && s->seg[23] == '-')
		return 1;
	if (n >= 8 && s->hex == n && s->digits >= 2)
		return 1;
	if (n >= 16 && s->word == n && s->digits >= 3 && s->alpha > 0)
		return 1;
	return 0;
}

struct encoding {
	struct stream *s;
	__u16 len;
};

static long encode_step(__u64 i, struct encoding *e)
{
	struct stream *s = e->s;

	if (i >= s->slen || e->len > AG_HTTP_PATH_LEN)
		return 1;
	e->len = put(s->path, e->len, AG_HTTP_PATH_LEN, 255, s->seg[i & (SEG_MAX - 1)]);
	return 0;
}

/*
 * The segment read so far joins the template: "{id}", or its bytes encoded. Global (the
 * verifier checks it once, not at each call site), as classify() and report() are.
 */
__noinline int end_segment(struct stream *s)
{
	__u16 len;

	if (!s)
		return 0;
	len = s->plen;

	if (is_id(s)) {
		if (len + 4 > AG_HTTP_PATH_LEN) {
			s->flags |= R_BAD;
		} else {
			s->path[len & 255] = '{';
			s->path[(len + 1) & 255] = 'i';
			s->path[(len + 2) & 255] = 'd';
			s->path[(len + 3) & 255] = '}';
			s->plen = len + 4;
		}
	} else if (s->slen > SEG_MAX) {
		s->flags |= R_BAD;
	} else {
		struct encoding e = { .s = s, .len = len };

		bpf_loop(SEG_MAX, encode_step, &e, 0);
		len = e.len;
		if (len > AG_HTTP_PATH_LEN)
			s->flags |= R_BAD;
		else
			s->plen = len;
	}
	s->slen = s->digits = s->hex = s->word = s->alpha = 0;
	return 0;
}

static __always_inline void seg_byte(struct stream *s, char c)
{
	/* Counts stop with the length (a line that long no server takes). */
	if (s->slen >= 0xffff)
		return;
	if (s->slen < SEG_MAX)
		s->seg[s->slen & (SEG_MAX - 1)] = c;
	s->slen++;
	if (c >= '0' && c <= '9')
		s->digits++;
	if (hexval(c) >= 0)
		s->hex++;
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		s->alpha++;
	if (hexval(c) >= 0 || (c >= 'g' && c <= 'z') || (c >= 'G' && c <= 'Z') || c == '_' ||
	    c == '-')
		s->word++;
}

/* The request's template ends with an LLM API's path (src/llm/api.rs recognise). */
/* Named, not literals: anonymous strings would share .rodata without BTF of their own. */
const volatile char tail_chat[] = "/chat/completions";
const volatile char tail_responses[] = "/responses";
const volatile char tail_messages[] = "/v1/messages";

static __always_inline int ends_with(struct stream *s, __u16 n, const volatile char *tail,
				     __u16 tn)
{
	__u16 i;

	if (n < tn)
		return 0;
	for (i = 0; i < 20; i++) {
		if (i >= tn)
			break;
		if (s->path[(n - tn + i) & 255] != tail[i])
			return 0;
	}
	return 1;
}

static __always_inline int llm_path(struct stream *s)
{
	__u16 n = s->plen;
	__u16 i;

	if ((s->flags & R_FRAGMENT) || s->mlen != 4 || s->method[0] != 'P' || s->method[1] != 'O' || s->method[2] != 'S' ||
	    s->method[3] != 'T')
		return 0;
	for (i = 0; i < AG_HTTP_PATH_LEN; i++) {
		if (n == 0 || s->path[(n - 1) & 255] != '/')
			break;
		n--;
	}
	return ends_with(s, n, tail_chat, 17) || ends_with(s, n, tail_responses, 10) ||
	       ends_with(s, n, tail_messages, 12) || (n == 9 && ends_with(s, n, tail_messages + 3, 9));
}

/* service() of src/profile/http.rs: the host as the header named it, then the port it
 * names (1 to 65535) or the scheme's: 443 over TLS, 80 otherwise. */
static __always_inline int service(struct stream *s, char *out)
{
	__u16 name = s->hkeep, i;
	__u32 port = s->tls ? 443 : 80, p, digits;

	if (s->hkeep > AG_HTTP_SERVICE_LEN - 1)
		return -1;
	/* Split at the last ':' when what is before has none, or ends with ']' (IPv6). */
	if (s->colons == 1 ||
	    (s->colons > 1 && s->colon > 0 && s->host[(s->colon - 1) & 63] == ']')) {
		name = s->colon;
		if (s->port > 0 && s->port <= 65535)
			port = s->port;
	}
	__builtin_memcpy(out, s->host, AG_HTTP_SERVICE_LEN);
	if (name == 0) {
		out[0] = '-';
		name = 1;
	}
	for (i = 0; i < AG_HTTP_SERVICE_LEN; i++) {
		if (i >= name)
			out[i] = 0;
	}
	digits = port >= 10000 ? 5 : port >= 1000 ? 4 : port >= 100 ? 3 : port >= 10 ? 2 : 1;
	if (name + 1 + digits > AG_HTTP_SERVICE_LEN - 1)
		return -1;
	out[name & 63] = ':';
	/* The decimal digits, last first. */
	for (p = 0; p < 5; p++) {
		if (p >= digits)
			break;
		out[(name + digits - p) & 63] = '0' + port % 10;
		port /= 10;
	}
	return 0;
}

/* The request's class: 0 covered, else enum ag_http_class. */
/*
 * The key is the per-CPU scratch's, looked up here rather than passed: a global
 * function's pointer arguments are plain memory, which older kernels (6.1) refuse as a
 * map key.
 */
static __always_inline struct ag_http_key *scratch_key(void)
{
	__u32 zero = 0;
	struct scratch *x = bpf_map_lookup_elem(&scratch, &zero);

	return x ? &x->key : NULL;
}

__noinline int classify(struct stream *s)
{
	struct ag_http_key *k = scratch_key();
	__u32 *v;
	int write;

	if (!s || !k)
		return AG_HTTP_MALFORMED;
	__builtin_memset(k, 0, sizeof(*k));
	/* Both framings: servers disagree on which wins (request smuggling); denied. The
	 * report names what was read of it. */
	if ((s->flags & R_MALFORMED) || ((s->flags & R_CHUNKED) && (s->flags & R_LENGTH))) {
		__builtin_memcpy(k->service, s->host, AG_HTTP_SERVICE_LEN);
		__builtin_memcpy(k->method, s->method, AG_HTTP_METHOD_LEN);
		__builtin_memcpy(k->path, s->path, AG_HTTP_PATH_LEN);
		return AG_HTTP_MALFORMED;
	}
	if (llm_path(s)) {
		/* [[llm]] hosts are the header's value as it came (host or host:port). */
		k->kind = AG_HTTP_LLM;
		__builtin_memcpy(k->service, s->host, AG_HTTP_SERVICE_LEN);
		if (s->hkeep < AG_HTTP_SERVICE_LEN && bpf_map_lookup_elem(&endpoints, k))
			return 0;
		return AG_HTTP_LLM_NEW_HOST;
	}
	if (service(s, k->service) < 0)
		s->flags |= R_BAD;
	/* The buffers are zero past their lengths (begin_request). */
	__builtin_memcpy(k->method, s->method, AG_HTTP_METHOD_LEN);
	__builtin_memcpy(k->path, s->path, AG_HTTP_PATH_LEN);
	k->kind = AG_HTTP_ENDPOINT;
	v = s->flags & R_BAD ? NULL : bpf_map_lookup_elem(&endpoints, k);
	if (v) {
		if (*v & AG_HTTP_SWITCHES)
			s->flags |= R_SWITCHES;
		return 0;
	}
	write = !((s->mlen == 3 && s->method[0] == 'G' && s->method[1] == 'E' &&
		   s->method[2] == 'T') ||
		  (s->mlen == 4 && s->method[0] == 'H' && s->method[1] == 'E' &&
		   s->method[2] == 'A' && s->method[3] == 'D') ||
		  (s->mlen == 7 && s->method[0] == 'O' && s->method[1] == 'P' &&
		   s->method[2] == 'T' && s->method[3] == 'I' && s->method[4] == 'O' &&
		   s->method[5] == 'N' && s->method[6] == 'S'));
	/* The service alone: the same key without method and path. */
	__builtin_memset(k->method, 0, sizeof(k->method) + sizeof(k->path));
	k->kind = AG_HTTP_SERVICE;
	v = bpf_map_lookup_elem(&endpoints, k);
	/* Put the request back in the key, for the report. */
	__builtin_memcpy(k->method, s->method, AG_HTTP_METHOD_LEN);
	__builtin_memcpy(k->path, s->path, AG_HTTP_PATH_LEN);
	if (!v)
		return AG_HTTP_NEW_SERVICE;
	if (write && !*v)
		return AG_HTTP_WRITE_READ_ONLY;
	return write ? AG_HTTP_NEW_WRITE : AG_HTTP_NEW_ENDPOINT;
}

/* How a denial was carried out (the report's arg[1]). */
#define DENY_DROP 0	/* the send failed with EACCES */
#define DENY_KILL 1	/* TLS: the process was killed at SSL_write */

__noinline int report(__u32 class, __u32 how)
{
	struct ag_http_key *k = scratch_key();
	struct {
		struct ag_hdr h;
		char service[AG_HTTP_SERVICE_LEN];
		char method[AG_HTTP_METHOD_LEN];
		char path[AG_HTTP_PATH_LEN];
	} *r;
	__u64 id = bpf_get_current_pid_tgid();

	if (!k)
		return 0;
	r = bpf_ringbuf_reserve(&denials, sizeof(*r), 0);
	if (!r) {
		__sync_fetch_and_add(&denials_lost, 1);
		return 0;
	}
	__builtin_memset(&r->h, 0, sizeof(r->h));
	r->h.kind = AG_DENY;
	r->h.op = AG_DENY_HTTP;
	r->h.size = sizeof(*r);
	r->h.ts = bpf_ktime_get_ns();
	r->h.tgid = id >> 32;
	r->h.tid = (__u32)id;
	r->h.ret = audit ? 0 : -1;
	r->h.arg[0] = class;
	r->h.arg[1] = how;
	r->h.len[0] = AG_HTTP_SERVICE_LEN;
	r->h.len[1] = AG_HTTP_METHOD_LEN;
	r->h.len[2] = AG_HTTP_PATH_LEN;
	__builtin_memcpy(r->service, k->service, AG_HTTP_SERVICE_LEN);
	__builtin_memcpy(r->method, k->method, AG_HTTP_METHOD_LEN);
	__builtin_memcpy(r->path, k->path, AG_HTTP_PATH_LEN);
	bpf_ringbuf_submit(r, 0);
	return 0;
}

static void begin_request(struct stream *s)
{
	s->flags = 0;
	s->mlen = s->plen = s->hkeep = s->slen = 0;
	s->pend = s->colons = s->colon = 0;
	s->port = PORT_BAD;
	s->digits = s->hex = s->word = s->alpha = 0;
	s->left = 0;
	__builtin_memset(s->method, 0, sizeof(s->method));
	__builtin_memset(s->path, 0, sizeof(s->path));
	__builtin_memset(s->host, 0, sizeof(s->host));
}

static __always_inline int is_connect(struct stream *s)
{
	return s->mlen == 7 && s->method[0] == 'C' && s->method[1] == 'O' && s->method[2] == 'N' &&
	       s->method[3] == 'N' && s->method[4] == 'E' && s->method[5] == 'C' &&
	       s->method[6] == 'T';
}

/* A request that asks to switch protocols (an Upgrade header; CONNECT's tunnel), without
 * a body (the switch would follow it). */
static __always_inline int asks_switch(struct stream *s)
{
	return ((s->flags & R_UPGRADE) || is_connect(s)) && !(s->flags & R_CHUNKED) && !s->left;
}

/* The header block of a request is complete: decide, then frame its body. */
__noinline int headers_done(struct stream *s)
{
	__u32 class;

	if (!s)
		return 0;
	class = classify(s);
	if (class && ((deny_mask >> class) & 1 || class == AG_HTTP_MALFORMED)) {
		if (!s->quiet)
			report(class, s->tls ? DENY_KILL : DENY_DROP);
		if (!audit) {
			s->st = P_DENIED;
			return 0;
		}
	}
	/*
	 * The server switches protocols after this request: a covered endpoint the profile
	 * learned to switch, or one the level admits as new (reported; nothing learned says
	 * whether it switches). What follows is read as a new connection's first bytes are:
	 * a WebSocket frame or a TLS record is not a request line and is left alone; a
	 * request (the server refused to switch and reads on) is checked; a first line that
	 * a server may take for a request is denied. As safe as a fresh connection, which the
	 * tree could open instead. A covered endpoint never seen to switch stays HTTP: a
	 * client that offers an upgrade the server ignores (h2c) sends requests after it.
	 */
	if (asks_switch(s) && (class ? class != AG_HTTP_MALFORMED : (s->flags & R_SWITCHES))) {
		begin_request(s);
		s->st = P_FIRST;
		s->line1 = 0;
		s->http5 = 0;
		s->g09 = 0;
		return 0;
	}
	if (s->flags & R_CHUNKED) {
		s->st = P_CHUNK_SIZE;
		s->left = 0;
	} else if (s->left) {
		s->st = P_BODY;
	} else {
		s->st = P_START;
	}
	return 0;
}

static __always_inline void malformed(struct stream *s)
{
	s->flags |= R_MALFORMED;
	headers_done(s);
}

const volatile char h_host[] = "host";
const volatile char h_length[] = "content-length";
const volatile char h_coding[] = "transfer-encoding";
const volatile char h_upgrade[] = "upgrade";

static __always_inline int same(const char *a, const volatile char *b, __u32 n)
{
	__u32 i;

	for (i = 0; i < NAME_MAX; i++) {
		if (i >= n)
			break;
		if (a[i] != b[i])
			return 0;
	}
	return 1;
}

/* A header's name is complete: which one it is. */
static __always_inline void name_done(struct stream *s)
{
	char *n = s->name;

	s->hdr = H_OTHER;
	if (s->nlen == 4 && same(n, h_host, 4))
		s->hdr = H_HOST;
	else if (s->nlen == 14 && same(n, h_length, 14))
		s->hdr = H_LENGTH;
	else if (s->nlen == 17 && same(n, h_coding, 17))
		s->hdr = H_CODING;
	else if (s->nlen == 7 && same(n, h_upgrade, 7))
		s->flags |= R_UPGRADE;
	if (s->hdr == H_HOST) {
		if (s->flags & R_HOST)
			s->flags |= R_MALFORMED;	/* two Host headers: which one the server takes is its choice */
		s->flags |= R_HOST;
		s->hkeep = s->pend = s->colons = s->colon = 0;
		s->port = PORT_BAD;
		__builtin_memset(s->host, 0, sizeof(s->host));
	} else if (s->hdr == H_LENGTH) {
		if (s->flags & R_LENGTH)
			s->flags |= R_MALFORMED;
		s->flags |= R_LENGTH;
		s->left = 0;
	} else if (s->hdr == H_CODING) {
		s->tlen = 0;
	}
}

/* A header line is complete. */
static __always_inline void value_done(struct stream *s)
{
	char *c = s->coding;
	__u16 n = s->tlen;

	if (s->hdr == H_CODING) {
		/* Only "chunked" (last) frames a request's body the kernel can follow. */
		if (n >= 7 && n <= 16 && c[(n - 7) & 15] == 'c' && c[(n - 6) & 15] == 'h' &&
		    c[(n - 5) & 15] == 'u' && c[(n - 4) & 15] == 'n' && c[(n - 3) & 15] == 'k' &&
		    c[(n - 2) & 15] == 'e' && c[(n - 1) & 15] == 'd')
			s->flags |= R_CHUNKED;
		else
			s->flags |= R_MALFORMED;
	}
}


/* What feed() did with a byte. */
#define GO 0		/* consumed: the next */
#define STOP 1		/* consumed: the caller looks at the state (a body, a denial) */
#define AGAIN 2		/* not consumed: body bytes, the caller's to skip */
#define SKIP 3		/* the rest is not HTTP */

/*
 * One byte of the framing (a body's bytes are skipped by the caller, not fed). Global: the
 * verifier checks its many states once, whatever the caller's.
 */
/* "HTTP/", a byte at a time. */
static __always_inline char http_at(__u8 i)
{
	return i == 0 ? 'H' : i == 1 ? 'T' : i == 2 ? 'T' : i == 3 ? 'P' : '/';
}

/* Whitespace to Python's str.split() on a Latin-1 line: what http.server strips. */
static __always_inline int pyspace(int c)
{
	__u8 b = c;

	return b == ' ' || (b >= '\t' && b <= '\r') || (b >= 0x1c && b <= 0x1f) || b == 0x85 ||
	       b == 0xa0;
}

/*
 * An HTTP/0.9 request line, "GET" and a target with no version, which Python's http.server
 * (after stripping whitespace) and others serve: 0 leading whitespace, 1 to 3 "GET"
 * matched, 4 whitespace after it, 5 a target's byte (a match), 6 none.
 */
static __always_inline __u8 step09(__u8 g, int c)
{
	int ws = pyspace(c);

	switch (g) {
	case 0:
		return ws ? 0 : c == 'G' ? 1 : 6;
	case 1:
		return c == 'E' ? 2 : 6;
	case 2:
		return c == 'T' ? 3 : 6;
	case 3:
		return ws ? 4 : 6;
	case 4:
		return ws ? 4 : 5;
	default:
		return g;
	}
}

/*
 * The connection's first line is not a request line the kernel can follow: if it names
 * "HTTP/" it is a request some server may take (" POST / HTTP/1.1": Python's strips the
 * space), and if it reads "GET" and a target it is HTTP/0.9's, both denied; if not, the
 * connection speaks something else (SSH, Redis, Postgres) and is left alone. Decided at
 * the line's end.
 */
static __always_inline int sniff(struct stream *s, int c)
{
	s->st = P_SNIFF;
	if (c != '\n')
		return GO;
	if (s->http5 >= 5 || s->g09 == 5) {
		malformed(s);
		return STOP;
	}
	s->st = P_OPAQUE;
	return SKIP;
}

/*
 * A request line ended after its target, with no version: HTTP/0.9's form, which llhttp
 * (Node, uvicorn, aiohttp) serves whatever the method, and then reads headers and a body.
 * On the connection's first line it is denied when the target reads as a URL; a line
 * like "EHLO host" or "USER name" (SMTP, FTP: no server takes it for HTTP) is sniffed as
 * another protocol's. Later lines are always denied.
 */
static __always_inline int line_without_version(struct stream *s, int c, int first)
{
	if (first && !(s->flags & R_URL))
		return sniff(s, c);
	malformed(s);
	return STOP;
}

const volatile char h2_version[] = "HTTP/2.0";

/*
 * The connection's first line is exactly HTTP/2's preface ("PRI * HTTP/2.0"): HTTP/2,
 * which the kernel does not follow (binary frames, HPACK). Left alone, as another
 * protocol is; README says so. Exact, so that no HTTP/1.x request line passes for it.
 */
static __always_inline int h2_preface(struct stream *s)
{
	return s->mlen == 3 && s->method[0] == 'P' && s->method[1] == 'R' &&
	       s->method[2] == 'I' && !(s->flags & R_LOWER) && s->plen == 1 &&
	       s->path[0] == '*' && (s->flags & R_V2) && s->nlen == 8;
}

__noinline int feed(struct stream *s, int c)
{
	int first, h;

	if (!s)
		return SKIP;
	/* Whether this byte is of the connection's first line (its LF too). */
	first = !s->line1;
	if (first) {
		if (c == '\n') {
			s->line1 = 1;
		} else {
			if (s->http5 < 5)
				s->http5 = c == http_at(s->http5) ? s->http5 + 1 : c == 'H';
			s->g09 = step09(s->g09, c);
		}
	}
	/* A CR is a line's end: only LF may follow it (servers differ on a bare CR). */
	if (s->flags & R_CR) {
		s->flags &= ~R_CR;
		if (c != '\n' && s->st != P_FIRST && s->st != P_START && s->st != P_SNIFF) {
			malformed(s);
			return STOP;
		}
	}
	switch (s->st) {
	case P_SNIFF:
		return sniff(s, c);
	case P_FIRST:
	case P_START:
		if (c == '\r' || c == '\n')
			return GO;
		if (!tchar(c)) {
			if (s->st == P_FIRST && first)
				return sniff(s, c);
			begin_request(s);
			malformed(s);
			return STOP;
		}
		begin_request(s);
		if (c >= 'a' && c <= 'z')
			s->flags |= R_LOWER;
		s->method[0] = c >= 'a' && c <= 'z' ? c - 32 : c;
		s->mlen = 1;
		s->st = P_METHOD;
		return GO;
	case P_METHOD:
		if (c == ' ') {
			s->st = P_TARGET;
			return GO;
		}
		if (c >= 'a' && c <= 'z')
			s->flags |= R_LOWER;
		if (!tchar(c) || s->mlen >= AG_HTTP_METHOD_LEN - 1) {
			if (first)
				return sniff(s, c);
			malformed(s);
			return STOP;
		}
		s->method[s->mlen & 15] = c >= 'a' && c <= 'z' ? c - 32 : c;
		s->mlen++;
		return GO;
	case P_TARGET:
		s->st = P_PATH;
		if (c == '/' || c == '*')
			s->flags |= R_URL;
		if (c == '/') {
			s->path[0] = '/';
			s->plen = 1;
			return GO;
		}
		if (is_connect(s)) {
			/* CONNECT's host:port, spelled as src/profile/http.rs template() does: "/" and
			 * the authority as one segment. */
			s->path[0] = '/';
			s->plen = 1;
		} else {
			s->flags |= R_BAD;	/* absolute-form, '*': never a learned path */
		}
		/* fall through */
	case P_PATH:
		if (c == ':')
			s->flags |= R_URL;
		if (c == '/') {
			end_segment(s);
			if (s->plen >= AG_HTTP_PATH_LEN)
				s->flags |= R_BAD;
			else
				s->path[s->plen++ & 255] = '/';
		} else if (c == '?' || c == '#') {
			end_segment(s);
			if (c == '#')
				s->flags |= R_FRAGMENT | R_BAD;
			/* CONNECT names host:port and nothing after it: never a learned tunnel. */
			if (is_connect(s))
				s->flags |= R_BAD;
			s->st = P_QUERY;
		} else if (c == ' ') {
			end_segment(s);
			s->st = P_VERSION;
			s->flags |= R_V2;
			s->nlen = 0;
		} else if (c == '\r' || c == '\n') {
			return line_without_version(s, c, first);
		} else {
			seg_byte(s, c);
		}
		return GO;
	case P_QUERY:
		if (c == ' ') {
			s->st = P_VERSION;
			s->flags |= R_V2;
			s->nlen = 0;
		} else if (c == '\r' || c == '\n') {
			return line_without_version(s, c, first);
		}
		if (c == ':')
			s->flags |= R_URL;
		return GO;
	case P_VERSION:
		if (c == '\r') {
			s->flags |= R_CR;
		} else if (c == '\n') {
			if (first && h2_preface(s)) {
				s->st = P_OPAQUE;
				return SKIP;
			}
			s->st = P_LINE;
		} else {
			if (s->nlen >= 8 || c != h2_version[s->nlen & 7])
				s->flags &= ~R_V2;
			if (s->nlen < 255)
				s->nlen++;
		}
		return GO;
	case P_LINE:
		if (c == '\r') {
			s->flags |= R_CR;
			return GO;
		}
		if (c == '\n') {
			headers_done(s);
			/* Stop: the caller skips a body, or stops at a denial. */
			return STOP;
		}
		if (c == ' ' || c == '\t' || !tchar(c)) {
			/* A folded line, or not a header: servers differ; denied. */
			malformed(s);
			return STOP;
		}
		s->nlen = 1;
		s->name[0] = lower(c);
		s->st = P_NAME;
		return GO;
	case P_NAME:
		if (c == ':') {
			name_done(s);
			s->st = P_VALUE;
			return GO;
		}
		if (!tchar(c)) {
			malformed(s);
			return STOP;
		}
		if (s->nlen < NAME_MAX)
			s->name[s->nlen & 31] = lower(c);
		if (s->nlen < 255)
			s->nlen++;
		return GO;
	case P_VALUE:
		if (c == '\n') {
			value_done(s);
			s->st = P_LINE;
			return GO;
		}
		if (c == '\r') {
			s->flags |= R_CR;
			return GO;
		}
		if (s->hdr == H_HOST) {
			if (c == ' ' || c == '\t') {
				if (s->flags & R_TRIM)
					s->pend++;
				return GO;
			}
			if (s->pend)
				s->flags |= R_BAD;	/* whitespace inside a host: never a profile's */
			s->flags |= R_TRIM;
			if (c == ':') {
				s->colons++;
				s->colon = s->hkeep;
				s->port = 0;
			} else if (c == '+' && s->colons) {
				s->flags |= R_BAD;	/* "+80": a number to Rust, not to the kernel */
				s->port = PORT_BAD;
			} else if (c >= '0' && c <= '9' && s->port <= 65535) {
				s->port = s->port * 10 + (c - '0');
			} else {
				s->port = PORT_BAD;
			}
			s->hkeep = put(s->host, s->hkeep, AG_HTTP_SERVICE_LEN, 63, lower(c));
		} else if (s->hdr == H_LENGTH) {
			if (c == ' ' || c == '\t')
				return GO;
			if (c < '0' || c > '9' || s->left > (1ULL << 50)) {
				s->flags |= R_MALFORMED;
				return GO;
			}
			s->left = s->left * 10 + (c - '0');
		} else if (s->hdr == H_CODING) {
			if (c == ' ' || c == '\t')
				return GO;
			if (s->tlen < 16)
				s->coding[s->tlen & 15] = lower(c);
			if (s->tlen < 255)
				s->tlen++;
		}
		return GO;
	case P_CHUNK_SIZE:
		if (c == '\r')
			return GO;
		if (c == ';' || c == ' ' || c == '\t') {
			s->st = P_CHUNK_EXT;
			return GO;
		}
		if (c == '\n') {
			s->st = s->left ? P_CHUNK_DATA : P_TRAILER;
			return s->left ? STOP : GO;
		}
		h = hexval(c);
		if (h < 0 || s->left > (1ULL << 50)) {
			malformed(s);
			return STOP;
		}
		s->left = s->left * 16 + h;
		return GO;
	case P_CHUNK_EXT:
		if (c == '\n') {
			s->st = s->left ? P_CHUNK_DATA : P_TRAILER;
			return s->left ? STOP : GO;
		}
		return GO;
	case P_CHUNK_END:
		if (c == '\r')
			return GO;
		if (c == '\n') {
			s->st = P_CHUNK_SIZE;
			s->left = 0;
			return GO;
		}
		malformed(s);
		return STOP;
	case P_TRAILER:
		if (c == '\r')
			return GO;
		s->st = c == '\n' ? P_START : P_TRAILER_LINE;
		return GO;
	case P_TRAILER_LINE:
		if (c == '\n')
			s->st = P_TRAILER;
		return GO;
	default:
		/* P_BODY, P_CHUNK_DATA: the caller's; P_OPAQUE, P_DENIED: nothing to read. */
		return AGAIN;
	}
}

struct window {
	struct stream *s;
	struct scratch *x;
	__u32 n;	/* bytes in the window */
	__u32 used;	/* bytes of it consumed */
};

static long step(__u64 i, struct window *w)
{
	int r;

	if (i >= w->n)
		return 1;
	r = feed(w->s, w->x->buf[i & (WINDOW - 1)]);
	if (r == AGAIN) {
		w->used = i;
		return 1;
	}
	w->used = r == SKIP ? w->n : i + 1;
	return r != GO;
}

/* One window of a send: skips a body's bytes, or feeds up to WINDOW bytes of framing. */
struct send {
	struct sk_msg_md *msg;	/* plain TCP: the message */
	__u64 ubuf;		/* TLS: the plaintext in the caller's memory */
	struct window w;
	__u32 off, size;
	int verdict;	/* -1 while undecided */
};

/* What a send's state decides before its next window: 1 when the walk ends. */
static __always_inline int walk_done(struct send *c)
{
	struct stream *s = c->w.s;

	if (s->st == P_DENIED) {
		c->verdict = audit ? SK_PASS : SK_DROP;
		return 1;
	}
	if (c->off >= c->size || s->st == P_OPAQUE) {
		c->verdict = SK_PASS;
		return 1;
	}
	return 0;
}

/* A body's (or chunk's) bytes in this send: skipped, not read. 1 when it did. */
static __always_inline int skip_body(struct send *c)
{
	struct stream *s = c->w.s;
	__u32 n;

	if (s->st != P_BODY && s->st != P_CHUNK_DATA)
		return 0;
	n = c->size - c->off;
	if (s->left < n)
		n = s->left;
	s->left -= n;
	c->off += n;
	if (!s->left)
		s->st = s->st == P_BODY ? P_START : P_CHUNK_END;
	return 1;
}

/* The window's n bytes are in the scratch buffer: fed. */
static __always_inline void feed_window(struct send *c, __u32 n)
{
	c->w.n = n;
	c->w.used = 0;
	bpf_loop(WINDOW, step, &c->w, 0);
	c->off += c->w.used;
}

/* The bytes of the next window, at most WINDOW. */
static __always_inline __u32 window_len(struct send *c)
{
	__u32 n = c->size - c->off;

	return n > WINDOW ? WINDOW : n;
}

static long window_step(__u64 r, struct send *c)
{
	__u32 n;
	void *data, *end;

	if (walk_done(c))
		return 1;
	if (skip_body(c))
		return 0;
	n = window_len(c);
	if (bpf_msg_pull_data(c->msg, c->off, c->off + n, 0)) {
		c->verdict = audit ? SK_PASS : SK_DROP;
		return 1;
	}
	data = c->msg->data;
	end = c->msg->data_end;
	if (data + n > end)
		n = end - data;
	if (n > WINDOW || n == 0) {
		c->verdict = audit ? SK_PASS : SK_DROP;
		return 1;
	}
	bpf_probe_read_kernel(c->w.x->buf, n & (WINDOW - 1) ? n & (WINDOW - 1) : WINDOW, data);
	feed_window(c, n);
	return 0;
}

/* The same over plaintext in the TLS caller's memory. */
static long tls_window_step(__u64 r, struct send *c)
{
	__u32 n;

	if (walk_done(c))
		return 1;
	if (skip_body(c))
		return 0;
	n = window_len(c);
	/* Not resident (a uprobe cannot fault it in): not followed, denied. */
	if (n == 0 || bpf_probe_read_user(c->w.x->buf, n & (WINDOW - 1) ? n & (WINDOW - 1) : WINDOW,
					  (const void *)(c->ubuf + c->off))) {
		malformed(c->w.s);
		c->verdict = audit ? SK_PASS : SK_DROP;
		return 1;
	}
	feed_window(c, n);
	return 0;
}

/* After the windows: the send's verdict. */
static __always_inline int verdict(struct send *c)
{
	struct stream *s = c->w.s;

	if (c->verdict >= 0)
		return c->verdict;
	if (s->st == P_DENIED)
		return audit ? SK_PASS : SK_DROP;
	if (c->off < c->size && s->st != P_OPAQUE) {
		/* More framing in one send than the kernel reads: cannot be followed. */
		malformed(s);
		return audit ? SK_PASS : SK_DROP;
	}
	return SK_PASS;
}

SEC("sk_msg")
int endpoint_msg(struct sk_msg_md *msg)
{
	__u32 zero = 0;
	struct scratch *x = bpf_map_lookup_elem(&scratch, &zero);
	struct stream *s;
	struct send c = { .msg = msg, .size = msg->size, .verdict = -1 };

	if (!x || !msg->sk)
		return SK_DROP;
	s = bpf_sk_storage_get(&streams, msg->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s)
		return SK_DROP;	/* fail closed: a stream that cannot be followed */
	c.w.s = s;
	c.w.x = x;
	bpf_loop(WINDOWS, window_step, &c, 0);
	return verdict(&c);
}

/* Which function a TLS probe is on: its attach cookie (src/enforce/endpoint.rs). */
#define TLS_WRITE 1	/* SSL_write(ssl, buf, int num) */
#define TLS_WRITE_EX 2	/* SSL_write_ex(ssl, buf, size_t num, size_t *written) */
#define TLS_WRITE_EX2 3	/* SSL_write_ex2(ssl, buf, size_t num, uint64_t flags, size_t *written) */
#define TLS_FREE 4	/* SSL_free(ssl): the object (and its stream) ends */
#define TLS_CONNECT 5	/* SSL_set_connect_state(ssl): a client's connection starts */
#define TLS_SERVER 6	/* SSL_set_accept_state(ssl): a server's; its writes are responses */
#define TLS_CLEAR 7	/* SSL_clear(ssl), also at each handshake's start: at its return */

/* Per thread; a thread's entry is dropped when it exits. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct tls_stack);
} tls_calls SEC(".maps");

/* Processes with TLS streams: their streams are dropped when they end. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} tls_tgids SEC(".maps");

/* Walks `n` bytes of plaintext at `buf` through the framing of `s`: SK_PASS or SK_DROP. */
static __always_inline int tls_walk(struct stream *s, struct scratch *x, __u64 buf, __u64 n)
{
	struct send c = { .ubuf = buf, .size = n, .verdict = -1 };

	c.w.s = s;
	c.w.x = x;
	bpf_loop(WINDOWS, tls_window_step, &c, 0);
	return verdict(&c);
}

/* Denied: killed, as a uprobe cannot fail the call (see tls_enter). */
static __always_inline void kill(void)
{
	if (!audit)
		bpf_send_signal(9);	/* SIGKILL */
}

/* A write that cannot be followed: reported (with what is known) and killed. */
static __always_inline void unfollowed(struct scratch *x)
{
	__builtin_memset(&x->key, 0, sizeof(x->key));
	report(AG_HTTP_MALFORMED, DENY_KILL);
	kill();
}

/* A connection starts on the object: its stream afresh, a server's not checked. */
static __always_inline void tls_start(struct tls_key *k, struct scratch *x, int server)
{
	struct stream *s;

	__u8 one = 1;

	bpf_map_update_elem(&tls_tgids, &k->tgid, &one, BPF_ANY);
	bpf_map_update_elem(&tls_streams, k, &x->blank, BPF_ANY);
	s = bpf_map_lookup_elem(&tls_streams, k);
	if (!s)
		return;
	s->tls = 1;
	if (server) {
		s->server = 1;
		s->st = P_OPAQUE;
	}
}

/*
 * Entry of any probed function. A write's plaintext is checked before the library has it,
 * on a copy of the stream's state: the library may take only part of it (a partial
 * write), or none and be called again with the same bytes (SSL_ERROR_WANT_WRITE), so the
 * stream itself moves at the return, over the bytes written. A denied request kills the
 * process; the signal is taken on the way back to the function, so none of it runs.
 */
static __always_inline int tls_enter(struct pt_regs *ctx)
{
	__u64 which = bpf_get_attach_cookie(ctx);
	__u64 id = bpf_get_current_pid_tgid();
	__u64 sp = PT_REGS_SP(ctx);
	struct tls_key k = { .ssl = PT_REGS_PARM1(ctx), .tgid = id >> 32 };
	__u64 buf = PT_REGS_PARM2(ctx);
	struct tls_frame *f, *outer;
	struct tls_stack *st;
	__u32 zero = 0, n, i;
	struct scratch *x;
	struct stream *s;
	__u64 num, p4, p5;

	if (bpf_current_task_under_cgroup(&tree, 0) != 1)
		return 0;
	x = bpf_map_lookup_elem(&scratch, &zero);
	if (!x)
		return 0;
	if (which == TLS_FREE) {
		bpf_map_delete_elem(&tls_streams, &k);
		return 0;
	}
	if (which == TLS_CONNECT || which == TLS_SERVER) {
		/* Either clears the object's connection: what follows is a new one. */
		tls_start(&k, x, which == TLS_SERVER);
		return 0;
	}
	num = PT_REGS_PARM3(ctx);
	if (which == TLS_WRITE)
		num = (int)num > 0 ? (int)num : 0;
	if (which != TLS_CLEAR && !num)
		return 0;
	/* Both read first: a load chosen between two context offsets is refused. */
	p4 = PT_REGS_PARM4(ctx);
	p5 = PT_REGS_PARM5(ctx);
	barrier_var(p4);
	barrier_var(p5);

	st = bpf_map_lookup_elem(&tls_calls, &id);
	if (!st) {
		bpf_map_update_elem(&tls_calls, &id, &x->no_calls, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&tls_calls, &id);
		if (!st) {
			unfollowed(x);
			return 0;
		}
	}
	if (st->tgid != k.tgid) {
		/* Another process's thread of this id, ended inside a call. */
		st->tgid = k.tgid;
		st->n = 0;
	}
	/* Calls left without returning (longjmp) were deeper in the stack than this one. */
	n = st->n;
	for (i = 0; i < TLS_FRAMES; i++) {
		__u32 top = n - 1;

		barrier_var(top);
		if (n == 0 || n > TLS_FRAMES || st->f[top & (TLS_FRAMES - 1)].sp > sp)
			break;
		n--;
	}
	if (n >= TLS_FRAMES) {
		st->n = 0;
		unfollowed(x);
		return 0;
	}
	/* The masks are the verifier's bound: kept from the compiler, which knows n < 4. */
	barrier_var(n);
	f = &st->f[n & (TLS_FRAMES - 1)];
	f->k = k;
	f->buf = buf;
	f->sp = sp;
	f->which = which;
	f->written = which == TLS_WRITE_EX ? p4 : which == TLS_WRITE_EX2 ? p5 : 0;
	f->inner = 0;
	if (n > 0 && which != TLS_CLEAR) {
		i = n - 1;
		barrier_var(i);
		outer = &st->f[i & (TLS_FRAMES - 1)];
		f->inner = outer->which != TLS_CLEAR && outer->k.ssl == k.ssl;
	}
	st->n = n + 1;
	if (which == TLS_CLEAR || f->inner)
		return 0;

	s = bpf_map_lookup_elem(&tls_streams, &k);
	if (!s && adopt_unseen) {
		/* Opaque until its next start (SSL_clear, a new connection), which is seen. */
		tls_start(&k, x, 0);
		s = bpf_map_lookup_elem(&tls_streams, &k);
		if (s)
			s->st = P_OPAQUE;
	}
	/* No stream: an object whose start was not seen, or shared with another process. A
	 * size no library takes (past 2 GiB) cannot be followed either. */
	if (!s || num > 0x7fffffff) {
		st->n = n;
		unfollowed(x);
		return 0;
	}
	if (s->st == P_OPAQUE)
		return 0;
	__builtin_memcpy(&x->spec, s, sizeof(*s));
	if (tls_walk(&x->spec, x, buf, num) == SK_DROP) {
		st->n = n;
		kill();
	}
	return 0;
}

/*
 * Return of a call: a write moves its stream over what was written, as the entry checked
 * it; an SSL_clear that succeeded starts the object's stream afresh (one that failed
 * cleared nothing). Its frame is the outermost of those below the stack pointer now
 * (the call's own stack is gone; deeper ones were left by longjmp).
 */
static __always_inline int tls_return(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 sp = PT_REGS_SP(ctx);
	long ret = PT_REGS_RC(ctx);
	struct tls_frame c = {}, *f;
	struct tls_stack *st;
	__u32 zero = 0, n, i;
	int found = 0;
	struct scratch *x;
	struct stream *s;
	__u64 n_written = 0;

	if (bpf_current_task_under_cgroup(&tree, 0) != 1)
		return 0;
	st = bpf_map_lookup_elem(&tls_calls, &id);
	x = bpf_map_lookup_elem(&scratch, &zero);
	if (!st || !x || st->tgid != (__u32)(id >> 32))
		return 0;
	n = st->n;
	for (i = 0; i < TLS_FRAMES; i++) {
		__u32 top = n - 1;

		if (n == 0 || n > TLS_FRAMES)
			break;
		barrier_var(top);
		f = &st->f[top & (TLS_FRAMES - 1)];
		if (f->sp >= sp)
			break;
		c = *f;
		found = 1;
		n--;
	}
	st->n = n;
	if (!found || c.inner)
		return 0;
	if (c.which == TLS_CLEAR) {
		if ((int)ret == 1) {
			s = bpf_map_lookup_elem(&tls_streams, &c.k);
			tls_start(&c.k, x, s && s->server);
		}
		return 0;
	}
	if (!c.written) {
		n_written = (int)ret > 0 ? (int)ret : 0;
	} else if ((int)ret == 1 &&
		   bpf_probe_read_user(&n_written, sizeof(n_written), (const void *)c.written)) {
		/* What was written cannot be known: the stream cannot be followed on (its
		 * next write is killed as unfollowed). */
		bpf_map_delete_elem(&tls_streams, &c.k);
		return 0;
	}
	s = bpf_map_lookup_elem(&tls_streams, &c.k);
	if (s && n_written && s->st != P_OPAQUE) {
		/* The entry reported what it denied; under audit it would report it again. A
		 * denial first seen here (the bytes changed since the entry) is reported and
		 * killed. */
		s->quiet = audit;
		if (tls_walk(s, x, c.buf, n_written > 0x7fffffff ? 0x7fffffff : n_written) ==
		    SK_DROP)
			kill();
		s->quiet = 0;
	}
	return 0;
}

/* A thread of the tree ends: its calls; the last of a process: its streams too. */
static long drop_stream(struct bpf_map *map, struct tls_key *k, struct stream *s, __u32 *tgid)
{
	if (k->tgid == *tgid)
		bpf_map_delete_elem(map, k);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tls_exit, struct task_struct *p)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	if (!bpf_map_lookup_elem(&tls_tgids, &tgid))
		return 0;
	bpf_map_delete_elem(&tls_calls, &id);
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	bpf_for_each_map_elem(&tls_streams, drop_stream, &tgid, 0);
	bpf_map_delete_elem(&tls_tgids, &tgid);
	return 0;
}

/* Twice, as the sensor's probes are: one multi-uprobe link per file, or plain uprobes. */
SEC("uprobe.multi")
int tls_check_multi(struct pt_regs *ctx)
{
	return tls_enter(ctx);
}

SEC("uretprobe.multi")
int tls_commit_multi(struct pt_regs *ctx)
{
	return tls_return(ctx);
}

SEC("uprobe")
int tls_check_one(struct pt_regs *ctx)
{
	return tls_enter(ctx);
}

SEC("uretprobe")
int tls_commit_one(struct pt_regs *ctx)
{
	return tls_return(ctx);
}
