// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Egress by name: a compilation unit of enforce's object (enforce.h: it uses its keyed
 * hash; enforce.bpf.c's connect hooks ask allowed_by_name).
 *
 * The tree's DNS traffic is read from the packets themselves, by cgroup_skb programs on
 * its cgroup: a query going out is remembered by its socket, id, server and question; an
 * answer coming in counts only when it comes from that server, to that socket, with that
 * id and question. It is parsed from the datagram the kernel queues, which no thread of
 * the tree can rewrite (a buffer read at the end of recvfrom could be), before the process
 * can read it. When the question's name matches a `host` rule, every A and AAAA address of
 * the answer is allowed for that rule's ports until the answer's TTL (at least
 * ttl_floor_ns) runs out. So the first connect to a fresh address never races user space.
 * Answers for names that match no rule allow nothing; addresses in loopback, link-local
 * and cloud-metadata ranges are allowed only by rules that say `private = true` (DNS
 * rebinding).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.h"
#include "policy.h"
#include "enforce.h"

#define DNS_PORT 53
#define DNS_BUF 1024		/* bytes of an answer parsed (a power of two) */
#define DNS_LABELS 16		/* labels of a question name whose suffixes are tried */
#define DNS_ANSWERS 32		/* answer records read */

const volatile __u32 n_names = 0;		/* rules in `name_rules` */
const volatile __u64 ttl_floor_ns = 0;	/* set by lsm.rs from names.rs's TTL_FLOOR */

/* keyed hash of a name, lower case, dotted, no trailing dot -> rules (bit i: rule i) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AG_NAME_RULES);
	__type(key, __u64);
	__type(value, __u64);
} name_exact SEC(".maps");

/* *.example.com rules, by the keyed hash of example.com */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AG_NAME_RULES);
	__type(key, __u64);
	__type(value, __u64);
} name_suffix SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AG_NAME_RULES);
	__type(key, __u32);
	__type(value, struct ag_name_rule);
} name_rules SEC(".maps");

struct dns_allowed {
	__u64 expires;		/* bpf_ktime_get_ns() */
	__u64 rules;		/* name rules that allow this address */
};

/* Addresses allowed by name, v4 as v4-mapped v6. LRU: old answers make way. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ag_addr);
	__type(value, struct dns_allowed);
} dns_allow SEC(".maps");

/* A query the tree sent, by its socket and id: what an answer must match. */
struct dns_qkey {
	__u64 cookie;		/* the socket's */
	__u32 id;
	__u32 pad;
};

struct dns_query {
	__u64 qhash;		/* keyed hash of the question's name */
	__u64 sent;		/* bpf_ktime_get_ns() */
	__u8 server[16];	/* v4 as v4-mapped */
};

/*
 * How long a query waits for its answer. Resolvers give up after a few seconds; a query
 * kept open longer (one that never reached its server: a TTL of 1) would leave its id and
 * port for an off-path attacker to answer at leisure.
 */
#define DNS_QUERY_NS (10ULL * 1000000000ULL)

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct dns_qkey);
	__type(value, struct dns_query);
} dns_queries SEC(".maps");

/*
 * All parsing state lives here, in map memory, not in a stack context: kernels before 6.7
 * verify a bpf_loop callback once, with the constants of the first iteration, and may
 * prune branches that later iterations take. Values read from a map are unknown to it.
 */
struct dns_buf {
	__u8 msg[DNS_BUF];
	char name[256];		/* the question, dotted, lower case */
	__u32 starts[DNS_LABELS];	/* where each label starts in name */
	__u64 hash[DNS_LABELS];	/* keyed hash of name from starts[i] */
	__u32 len;		/* bytes of msg */
	__u32 off;		/* in msg: the next byte to read */
	__u32 left;		/* question: bytes left in the label; answers: records left */
	__u32 pos;		/* in name */
	__u32 labels;
	__u32 bad;
	__u32 in_name;		/* answers: skipping a record's owner name */
	__u32 pad;
	__u64 rules;		/* name rules the question matches */
	__u64 private_ok;	/* those of them that accept private addresses */
	__u64 now;
	__u64 expect;		/* answers: the hash of the question the query asked */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_buf);
} dns_scratch SEC(".maps");

struct dns_ctx {
	struct dns_buf *b;
};

/* One byte of the question name: its labels become a dotted, lower-case string. */
static int qname_step(__u32 i, struct dns_ctx *c)
{
	struct dns_buf *b = c->b;
	__u8 ch;

	if (!b)
		return 1;
	if (b->off >= b->len || b->pos >= 255) {
		b->bad = 1;
		return 1;
	}
	ch = b->msg[b->off & (DNS_BUF - 1)];
	b->off++;
	if (b->left == 0) {
		if (ch == 0)
			return 1;	/* the root: done */
		if (ch >= 64 || b->labels >= DNS_LABELS) {
			b->bad = 1;	/* compression in a question, junk, or too deep */
			return 1;
		}
		if (b->labels > 0)
			b->name[b->pos++ & 255] = '.';
		b->starts[b->labels & (DNS_LABELS - 1)] = b->pos;
		b->labels++;
		b->left = ch;
		return 0;
	}
	if (ch >= 'A' && ch <= 'Z')
		ch += 'a' - 'A';
	b->name[b->pos++ & 255] = ch;
	b->left--;
	return 0;
}

/* Step i hashes character i % 256 of the suffix starting at label i / 256. */
static int suffix_step(__u32 i, struct dns_ctx *c)
{
	struct dns_buf *b = c->b;
	__u32 k = i / 256, j = i % 256, at;

	if (!b || k >= b->labels)
		return 1;
	at = b->starts[k & (DNS_LABELS - 1)] + j;
	if (at < b->pos)
		b->hash[k & (DNS_LABELS - 1)] = ag_mix(b->hash[k & (DNS_LABELS - 1)], b->name[at & 255]);
	return 0;
}

/* Loopback, link-local, unspecified and cloud-metadata addresses (v4 as v4-mapped). */
static __always_inline bool dns_private(const __u8 *a)
{
	bool v4 = a[10] == 0xff && a[11] == 0xff && !(a[0] | a[1] | a[2] | a[3] | a[4] | a[5] |
						     a[6] | a[7] | a[8] | a[9]);
	int i;

	if (v4)
		return a[12] == 127 || a[12] == 0 || (a[12] == 169 && a[13] == 254) ||
		       (a[12] == 100 && a[13] == 100 && a[14] == 100 && a[15] == 200);
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return true;	/* fe80::/10 */
	if (a[0] == 0xfd && a[1] == 0x00 && a[2] == 0x0e && a[3] == 0xc2)
		return true;	/* fd00:ec2::/32, AWS's metadata service */
	for (i = 0; i < 15; i++)
		if (a[i])
			return false;
	return a[15] <= 1;	/* :: and ::1 */
}

static __always_inline __u32 rd16(struct dns_buf *b, __u32 off)
{
	return ((__u32)b->msg[off & (DNS_BUF - 1)] << 8) | b->msg[(off + 1) & (DNS_BUF - 1)];
}

/* One step over the answer section: a label of an owner name, or a record after it. */
static int answer_step(__u32 i, struct dns_ctx *c)
{
	struct dns_buf *b = c->b;
	struct ag_addr key = {};
	struct dns_allowed v, *old;
	__u32 type, rdlen, ttl, k;
	__u64 rules, life;
	__u8 ch;

	if (!b || b->left == 0 || b->off >= b->len)
		return 1;
	if (b->in_name) {
		ch = b->msg[b->off & (DNS_BUF - 1)];
		if (ch == 0) {
			b->off++;
			b->in_name = 0;
		} else if (ch >= 0xc0) {
			b->off += 2;	/* a pointer ends the name */
			b->in_name = 0;
		} else {
			b->off += ch + 1;
		}
		return 0;
	}
	if (b->off + 10 > b->len)
		return 1;
	type = rd16(b, b->off);
	ttl = (rd16(b, b->off + 4) << 16) | rd16(b, b->off + 6);
	rdlen = rd16(b, b->off + 8);
	b->off += 10;
	if (b->off + rdlen > b->len)
		return 1;
	if ((type == 1 && rdlen == 4) || (type == 28 && rdlen == 16)) {
		if (type == 1) {
			key.addr[10] = 0xff;
			key.addr[11] = 0xff;
			for (k = 0; k < 4; k++)
				key.addr[12 + k] = b->msg[(b->off + k) & (DNS_BUF - 1)];
		} else {
			for (k = 0; k < 16; k++)
				key.addr[k] = b->msg[(b->off + k) & (DNS_BUF - 1)];
		}
		rules = b->rules;
		if (dns_private(key.addr))
			rules &= b->private_ok;
		if (rules) {
			life = (__u64)ttl * 1000000000ULL;
			if (life < ttl_floor_ns)
				life = ttl_floor_ns;
			v.expires = b->now + life;
			v.rules = rules;
			old = bpf_map_lookup_elem(&dns_allow, &key);
			if (old && old->expires > b->now) {
				v.rules |= old->rules;
				if (old->expires > v.expires)
					v.expires = old->expires;
			}
			bpf_map_update_elem(&dns_allow, &key, &v, BPF_ANY);
		}
	}
	b->off += rdlen;
	b->left--;
	b->in_name = 1;
	return 0;
}

static int private_step(__u32 i, struct dns_ctx *c)
{
	struct dns_buf *b = c->b;
	struct ag_name_rule *r;

	if (!b || i >= n_names)
		return 1;
	r = bpf_map_lookup_elem(&name_rules, &i);
	if (r && r->private_ok && (b->rules & (1ULL << (i & 63))))
		b->private_ok |= 1ULL << (i & 63);
	return 0;
}

/* The question of the message in b->msg[0..b->len): its name and the keyed hash of each
 * suffix (b->hash[0]: the whole name). 0 when it is one the rules can read. */
static __noinline int dns_question(struct dns_buf *b)
{
	struct dns_ctx c = { .b = b };
	__u32 k;

	if (!b || b->len < 12 || b->len > DNS_BUF || rd16(b, 4) != 1)
		return -1;
	b->off = 12;
	b->left = 0;
	b->pos = 0;
	b->labels = 0;
	b->bad = 0;
	bpf_loop(256, qname_step, &c, 0);
	if (b->bad || b->labels == 0)
		return -1;
	for (k = 0; k < DNS_LABELS; k++)
		b->hash[k] = hash_key;
	bpf_loop(DNS_LABELS * 256, suffix_step, &c, 0);
	return 0;
}

/* A DNS answer in b->msg[0..b->len), to the query whose question hash is b->expect:
 * allow its addresses for the rules its name matches. 1 when it answered that question. */
static __noinline int dns_answer(struct dns_buf *b)
{
	struct dns_ctx c = { .b = b };
	__u64 *r;
	__u32 k, ancount;

	if (!b || b->len < 12 || b->len > DNS_BUF)
		return 0;
	/* A response (QR), no error (RCODE 0), one question: the one asked. */
	if (!(b->msg[2] & 0x80) || (b->msg[3] & 0x0f))
		return 0;
	ancount = rd16(b, 6);
	if (dns_question(b) || b->hash[0] != b->expect)
		return 0;
	b->rules = 0;
	r = bpf_map_lookup_elem(&name_exact, &b->hash[0]);
	if (r)
		b->rules |= *r;
	/* *.example.com: a suffix after the first label. */
	for (k = 1; k < DNS_LABELS; k++) {
		if (k >= b->labels)
			break;
		r = bpf_map_lookup_elem(&name_suffix, &b->hash[k]);
		if (r)
			b->rules |= *r;
	}
	if (!b->rules)
		return 1;
	b->private_ok = 0;
	bpf_loop(AG_NAME_RULES, private_step, &c, 0);
	b->off += 4;	/* QTYPE, QCLASS */
	b->left = ancount < DNS_ANSWERS ? ancount : DNS_ANSWERS;
	b->in_name = 1;
	b->now = bpf_ktime_get_ns();
	bpf_loop(DNS_ANSWERS * 64, answer_step, &c, 0);
	return 1;
}

/* A UDP datagram in an skb (data at the network header): its payload and peer. */
struct dns_pkt {
	__u32 off;		/* of the UDP payload */
	__u32 len;		/* of the UDP payload */
	__u8 peer[16];		/* v4 as v4-mapped: the destination going out, the source coming in */
	__u16 sport;
	__u16 dport;
};

static __always_inline int dns_pkt(struct __sk_buff *skb, struct dns_pkt *p, bool out)
{
	__u8 h[40], u[8];
	__u32 ip, ulen;

	if (bpf_skb_load_bytes(skb, 0, h, 1))
		return -1;
	if ((h[0] >> 4) == 4) {
		if (bpf_skb_load_bytes(skb, 0, h, 20))
			return -1;
		/* UDP, and not a fragment (more fragments, or an offset). */
		if (h[9] != 17 || (h[6] & 0x3f) || h[7])
			return -1;
		ip = (h[0] & 0xf) * 4;
		p->peer[10] = 0xff;
		p->peer[11] = 0xff;
		__builtin_memcpy(&p->peer[12], out ? &h[16] : &h[12], 4);
	} else if ((h[0] >> 4) == 6) {
		if (bpf_skb_load_bytes(skb, 0, h, 40))
			return -1;
		if (h[6] != 17)
			return -1;	/* extension headers: not a resolver's datagram */
		ip = 40;
		__builtin_memcpy(p->peer, out ? &h[24] : &h[8], 16);
	} else {
		return -1;
	}
	if (ip < 20 || ip > 60 || bpf_skb_load_bytes(skb, ip, u, 8))
		return -1;
	p->sport = (u[0] << 8) | u[1];
	p->dport = (u[2] << 8) | u[3];
	ulen = (u[4] << 8) | u[5];
	if (ulen < 8 + 12)
		return -1;
	p->off = ip + 8;
	p->len = ulen - 8;
	return 0;
}

/* The DNS message of the datagram into b->msg (as much as DNS_BUF holds). */
static __always_inline int dns_load(struct __sk_buff *skb, struct dns_pkt *p, struct dns_buf *b)
{
	__u32 n = p->len > DNS_BUF ? DNS_BUF : p->len;

	barrier_var(n);
	n &= DNS_BUF * 2 - 1;
	if (n < 12 || n > DNS_BUF)
		return -1;
	if (bpf_skb_load_bytes(skb, p->off, b->msg, n))
		return -1;
	b->len = n;
	return 0;
}

/* Attached to the tree's cgroup only when the profile has `host` rules (lsm.rs). The
 * datagram always passes: these programs decide what the answer allows, not its delivery. */
SEC("cgroup_skb/egress")
int dns_egress(struct __sk_buff *skb)
{
	struct dns_pkt p = {};
	struct dns_qkey k = {};
	struct dns_query q = {};
	struct dns_buf *b;
	__u32 zero = 0;

	if (dns_pkt(skb, &p, true) || p.dport != DNS_PORT)
		return 1;
	b = bpf_map_lookup_elem(&dns_scratch, &zero);
	if (!b || dns_load(skb, &p, b))
		return 1;
	if ((b->msg[2] & 0x80) || dns_question(b))
		return 1;	/* not a query, or a question the rules cannot read */
	k.cookie = bpf_get_socket_cookie(skb);
	k.id = rd16(b, 0);
	q.qhash = b->hash[0];
	q.sent = bpf_ktime_get_ns();
	__builtin_memcpy(q.server, p.peer, 16);
	bpf_map_update_elem(&dns_queries, &k, &q, BPF_ANY);
	return 1;
}

SEC("cgroup_skb/ingress")
int dns_ingress(struct __sk_buff *skb)
{
	struct dns_pkt p = {};
	struct dns_qkey k = {};
	struct dns_query *q;
	struct dns_buf *b;
	__u32 zero = 0, i;

	if (dns_pkt(skb, &p, false) || p.sport != DNS_PORT)
		return 1;
	b = bpf_map_lookup_elem(&dns_scratch, &zero);
	if (!b || dns_load(skb, &p, b))
		return 1;
	k.cookie = bpf_get_socket_cookie(skb);
	k.id = rd16(b, 0);
	q = bpf_map_lookup_elem(&dns_queries, &k);
	if (!q)
		return 1;	/* no query of this socket has this id */
	if (bpf_ktime_get_ns() - q->sent > DNS_QUERY_NS) {
		bpf_map_delete_elem(&dns_queries, &k);
		return 1;	/* too late to be the answer */
	}
	for (i = 0; i < 16; i++)
		if (q->server[i] != p.peer[i])
			return 1;	/* not from the server asked */
	b->expect = q->qhash;
	/* One answer per query: a second datagram with its id counts for nothing. */
	if (dns_answer(b))
		bpf_map_delete_elem(&dns_queries, &k);
	return 1;
}

/* A connect no address rule allowed: is its address one an allowed name resolved to? */
struct name_ctx {
	__u64 rules;
	__u16 sotype;
	__u16 port;
	__u32 ok;
};

static int name_rule_step(__u32 i, struct name_ctx *c)
{
	struct ag_name_rule *r;

	if (i >= n_names)
		return 1;
	if (!(c->rules & (1ULL << (i & 63))))
		return 0;
	r = bpf_map_lookup_elem(&name_rules, &i);
	if (!r || (r->sotype && r->sotype != c->sotype))
		return 0;
	if (c->port < r->port_lo || c->port > r->port_hi)
		return 0;
	c->ok = 1;
	return 1;
}

__hidden __noinline bool allowed_by_name(const __u8 *addr, __u16 sotype, __u16 port)
{
	struct ag_addr key = {};
	struct dns_allowed *v;
	struct name_ctx c = { .sotype = sotype, .port = port };

	if (!n_names)
		return false;
	__builtin_memcpy(key.addr, addr, 16);
	v = bpf_map_lookup_elem(&dns_allow, &key);
	if (!v || v->expires <= bpf_ktime_get_ns())
		return false;
	c.rules = v->rules;
	bpf_loop(AG_NAME_RULES, name_rule_step, &c, 0);
	return c.ok;
}
