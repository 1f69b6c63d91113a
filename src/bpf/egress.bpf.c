// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The Landlock backend's network half: cgroup sock_addr programs on the tree's own cgroup
 * check each outbound connection and unconnected datagram (IPv4, IPv6) against the
 * profile's [[net]] rules, the same compiled rules as enforce.bpf.c's, and refuse the rest
 * with EPERM, reporting each refusal. Landlock itself restricts TCP by port only.
 *
 * Unix sockets (connect, and datagrams to a name) are checked by the name the program
 * passed: these hooks run before the kernel looks the name up, so unlike enforce.bpf.c's
 * they cannot tell where a symlink at an allowed name leads.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "events.h"
#include "policy.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10

extern void *bpf_cast_to_kern_ctx(void *) __ksym;

const volatile __u64 hash_key = 0;	/* the key unix rules are hashed with */
const volatile __u32 n_net = 0;		/* rules in `net_rules` */
const volatile __u32 audit = 0;		/* report, deny nothing */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AG_NET_RULES);
	__type(key, __u32);
	__type(value, struct ag_net_rule);
} net_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} denials SEC(".maps");

/* Reports the denials ring had no room for: the calls were still refused. Read by the
 * session (bss), counted with the lost events, said in the summary. */
__u64 denials_lost = 0;

struct dest {
	__u8 addr[16];		/* v4 as v4-mapped */
	__u16 family;		/* AF_INET6 (v4 as v4-mapped) or AF_UNIX */
	__u16 port;
	__u16 sotype;
	__u32 ok;
	__u32 n;		/* unix: the name's length */
	__u64 unix_hash;	/* unix: ag_unix_hash of the name */
	__u8 name[AG_UNIX_NAME];	/* unix: the name, for the report */
};

static int rule_step(__u32 i, struct dest *d)
{
	struct ag_net_rule *r = bpf_map_lookup_elem(&net_rules, &i);

	if (!r || i >= n_net)
		return 1;
	if (r->family != d->family || (r->sotype && r->sotype != d->sotype))
		return 0;
	if (d->family == AF_UNIX ? r->unix_hash != d->unix_hash
				 : !ag_net_rule_covers(r, d->port, d->addr))
		return 0;
	d->ok = 1;
	return 1;
}

/* A refusal's report: the header, then a unix socket's name by its length. */
struct report {
	struct ag_hdr h;
	__u8 name[128];
};

/* 1: allowed; 0: refused (the caller gets EPERM), and reported. */
static __always_inline int decide(struct dest *d)
{
	struct report *r;
	__u64 id;

	bpf_loop(AG_NET_RULES, rule_step, d, 0);
	if (d->ok)
		return 1;
	r = bpf_ringbuf_reserve(&denials, sizeof(*r), 0);
	if (r) {
		id = bpf_get_current_pid_tgid();
		__builtin_memset(&r->h, 0, sizeof(r->h));
		r->h.kind = AG_DENY;
		r->h.op = AG_DENY_CONNECT;
		r->h.size = sizeof(*r);
		r->h.ts = bpf_ktime_get_ns();
		r->h.tgid = id >> 32;
		r->h.tid = (__u32)id;
		r->h.ret = audit ? 0 : -1;
		r->h.arg[0] = AG_RULE_NONE;	/* no rule allows it */
		r->h.arg[1] = d->n;		/* as enforce.bpf.c reports a unix name */
		r->h.family = d->family;
		r->h.port = d->port;
		r->h.len[0] = d->n & 127;
		__builtin_memcpy(r->h.addr, d->addr, 16);
		__builtin_memcpy(r->name, d->name, sizeof(d->name));
		bpf_ringbuf_submit(r, 0);
	} else {
		__sync_fetch_and_add(&denials_lost, 1);
	}
	return audit ? 1 : 0;
}

static __always_inline int v4(struct bpf_sock_addr *ctx)
{
	struct dest d = { .family = AF_INET6 };
	__u32 ip = ctx->user_ip4;

	d.addr[10] = 0xff;
	d.addr[11] = 0xff;
	__builtin_memcpy(&d.addr[12], &ip, 4);
	d.port = bpf_ntohs((__u16)ctx->user_port);
	d.sotype = ctx->type;
	return decide(&d);
}

static __always_inline int v6(struct bpf_sock_addr *ctx)
{
	struct dest d = { .family = AF_INET6 };
	__u32 w[4];

	w[0] = ctx->user_ip6[0];
	w[1] = ctx->user_ip6[1];
	w[2] = ctx->user_ip6[2];
	w[3] = ctx->user_ip6[3];
	__builtin_memcpy(d.addr, w, 16);
	d.port = bpf_ntohs((__u16)ctx->user_port);
	d.sotype = ctx->type;
	return decide(&d);
}

SEC("cgroup/connect4")
int egress_connect4(struct bpf_sock_addr *ctx)
{
	return v4(ctx);
}

SEC("cgroup/connect6")
int egress_connect6(struct bpf_sock_addr *ctx)
{
	return v6(ctx);
}

/* A datagram sent to an address without connect() is an outbound destination too. */
SEC("cgroup/sendmsg4")
int egress_sendmsg4(struct bpf_sock_addr *ctx)
{
	return v4(ctx);
}

SEC("cgroup/sendmsg6")
int egress_sendmsg6(struct bpf_sock_addr *ctx)
{
	return v6(ctx);
}

static __always_inline int unix_dest(struct bpf_sock_addr *ctx)
{
	struct bpf_sock_addr_kern *k = bpf_cast_to_kern_ctx(ctx);
	struct dest d = { .family = AF_UNIX, .sotype = ctx->type };
	__u32 n = k->uaddrlen;

	n = n > 2 ? n - 2 : 0;
	if (n > AG_UNIX_NAME)
		n = AG_UNIX_NAME;
	bpf_probe_read_kernel(d.name, sizeof(d.name), ((struct sockaddr_un *)k->uaddr)->sun_path);
	d.n = n;
	d.unix_hash = ag_unix_hash(hash_key, d.name, n);
	return decide(&d);
}

SEC("cgroup/connect_unix")
int egress_connect_unix(struct bpf_sock_addr *ctx)
{
	return unix_dest(ctx);
}

SEC("cgroup/sendmsg_unix")
int egress_sendmsg_unix(struct bpf_sock_addr *ctx)
{
	return unix_dest(ctx);
}
