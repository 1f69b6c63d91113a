/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Egress by name, included by enforce.bpf.c (it uses its scope test, keyed hash and
 * scratch conventions).
 *
 * A DNS answer the tree receives (recvfrom on a UDP socket, from port 53) is parsed at
 * syscall exit, before the process can read it: when the question's name matches a `host`
 * rule, every A and AAAA address of the answer is allowed for that rule's ports until the
 * answer's TTL (at least ttl_floor_ns) runs out. So the first connect to a fresh address
 * never races user space. Answers for names that match no rule allow nothing; addresses in
 * loopback, link-local and cloud-metadata ranges are allowed only by rules that say
 * `private = true` (DNS rebinding).
 */
#ifndef AGENTGUARD_DNS_H
#define AGENTGUARD_DNS_H

#include "syscalls.h"

#define SOCK_DGRAM 2
#ifndef S_IFSOCK
#define S_IFSOCK 0140000
#endif
#define DNS_PORT 53
#define DNS_BUF 1024		/* bytes of an answer parsed (a power of two) */
#define DNS_LABELS 16		/* labels of a question name whose suffixes are tried */
#define DNS_ANSWERS 32		/* answer records read */

const volatile __u32 n_names = 0;		/* rules in `name_rules` */
const volatile __u64 ttl_floor_ns = 60ULL * 1000000000ULL;

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
		b->hash[k & (DNS_LABELS - 1)] = mix(b->hash[k & (DNS_LABELS - 1)], b->name[at & 255]);
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

/* A DNS answer in b->msg[0..b->len): allow its addresses for the rules its name matches. */
static __noinline int dns_answer(struct dns_buf *b)
{
	struct dns_ctx c = { .b = b };
	__u64 *r;
	__u32 k, ancount;

	if (!b || b->len < 12 || b->len > DNS_BUF)
		return 0;
	/* A response (QR), no error (RCODE 0), one question. */
	if (!(b->msg[2] & 0x80) || (b->msg[3] & 0x0f) || rd16(b, 4) != 1)
		return 0;
	ancount = rd16(b, 6);
	b->off = 12;
	b->left = 0;
	b->pos = 0;
	b->labels = 0;
	b->bad = 0;
	bpf_loop(256, qname_step, &c, 0);
	if (b->bad || b->labels == 0)
		return 0;
	for (k = 0; k < DNS_LABELS; k++)
		b->hash[k] = hash_key;
	bpf_loop(DNS_LABELS * 256, suffix_step, &c, 0);
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
		return 0;
	b->private_ok = 0;
	bpf_loop(AG_NAME_RULES, private_step, &c, 0);
	b->off += 4;	/* QTYPE, QCLASS */
	b->left = ancount < DNS_ANSWERS ? ancount : DNS_ANSWERS;
	b->in_name = 1;
	b->now = bpf_ktime_get_ns();
	bpf_loop(DNS_ANSWERS * 64, answer_step, &c, 0);
	return 0;
}

/*
 * Where a recvfrom's datagram came from: the socket's connected peer, never the address
 * buffer. The kernel writes that buffer only as far as the caller's length allowed (0
 * bytes when it passed 0) and still reports the full length, so its contents can be the
 * tree's own. The C library's resolver connects its socket to the server; answers read
 * from an unconnected socket name nothing here (connections by name then fail closed).
 */
static __always_inline __u16 dgram_source_port(struct socket *sock)
{
	return bpf_ntohs(BPF_CORE_READ(sock, sk, __sk_common.skc_dport));
}

/* Attached only when the profile has `host` rules (user space leaves it unloaded). */
SEC("tp_btf/sys_exit")
int BPF_PROG(dns_sys_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *task;
	struct dns_buf *b;
	struct socket *sock;
	struct file *f;
	__u32 zero = 0, n;
	int fd;

	if (SC_NR(regs) != NR_recvfrom || ret < 12)
		return 0;
	task = bpf_get_current_task_btf();
	if (!in_scope(task))
		return 0;
	fd = SC_ARG0(regs);
	{
		struct fdtable *fdt = task->files->fdt;
		struct file **fda;

		if (fd < 0 || !fdt || fd >= fdt->max_fds)
			return 0;
		fda = fdt->fd;
		f = NULL;
		bpf_probe_read_kernel(&f, sizeof(f), &fda[fd]);
	}
	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	sock = BPF_CORE_READ(f, private_data);
	if (!sock || BPF_CORE_READ(sock, type) != SOCK_DGRAM)
		return 0;
	if (dgram_source_port(sock) != DNS_PORT)
		return 0;
	b = bpf_map_lookup_elem(&dns_scratch, &zero);
	if (!b)
		return 0;
	/*
	 * Only what the kernel copied: with MSG_TRUNC recvfrom returns the datagram's length
	 * even when the buffer (its length argument) took less, or nothing.
	 */
	n = ret > DNS_BUF ? DNS_BUF : ret;
	if (n > SC_ARG2(regs))
		n = SC_ARG2(regs);
	if (n < 12)
		return 0;
	barrier_var(n);
	n &= DNS_BUF * 2 - 1;
	if (n > DNS_BUF)
		return 0;
	if (bpf_probe_read_user(b->msg, n, (const void *)SC_ARG1(regs)))
		return 0;
	b->len = n;
	return dns_answer(b);
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

static __always_inline bool allowed_by_name(const __u8 *addr, __u16 sotype, __u16 port)
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

#endif
