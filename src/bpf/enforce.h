/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What enforce's compilation units share: enforce.bpf.c (the LSM hooks, the path walk
 * and rule matching) defines the maps, variables and functions declared here; times.bpf.c
 * (a file's times) and dns.bpf.c (egress by name) use them. build.rs links the units into
 * one object (libbpf's static linker), from which the skeleton is generated.
 *
 * The helpers are static inline: each unit gets its own copy, verified with its caller.
 * Hidden functions are static after linking, so the verifier checks them in their
 * callers' context; the others are global functions, checked once on their own.
 */
#ifndef AGENTGUARD_ENFORCE_H
#define AGENTGUARD_ENFORCE_H

#define EPERM 1
#define MASK (AG_PATHBUF - 1)
#define IX(i) ix(i)

/* An index the verifier can bound: the barrier keeps the compiler from dropping the mask. */
static __always_inline __u32 ix(__u32 i)
{
	barrier_var(i);
	return i & 63;
}

/* Set by user space before load. */
extern const volatile __u64 tick_ns;
extern const volatile __u64 hash_key;	/* random per session: rules are found by keyed hash */
extern const volatile __u64 tree_cgid;	/* the tree's cgroup (its directory's inode number) */

/* The sensor's map of tracked processes (user space hands over its fd before load). */
struct procs_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct ag_proc);
};
extern struct procs_map procs SEC(".maps");

struct pathbuf {
	__u32 start;			/* the path is buf[start..AG_PATHBUF) */
	__u32 n;			/* components */
	/* Sized 64 and indexed with IX(): a masked index is one the verifier can bound. */
	__u32 coff[64];			/* offset of the '/' before component i; coff[n] = end */
	__u64 pre[64];			/* keyed hash of the path up to component i */
	__u64 comp[64];			/* keyed hash of component i alone */
	char buf[AG_PATHBUF + 256];
};

/* A path is built here, per CPU. */
struct scratch_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pathbuf);
};
extern struct scratch_map scratch SEC(".maps");

struct verdict {
	__u32 hand;		/* granted by hand-written rules */
	__u32 learned;		/* granted by learned rules */
	__u32 keep;		/* what the protected-set rules that matched leave to learned ones */
	__u32 rule;		/* the last rule that matched, for events */
};

/* A verdict before any rule matched: nothing granted, no access kept from learned rules. */
#define VERDICT_NONE { .rule = AG_RULE_NONE, .keep = ~0u }

struct denial {
	__u16 op;		/* enum ag_deny_op */
	__u16 family;
	__u16 port;
	__u32 rule;
	__u32 want;
	struct pathbuf *pb;
	__u8 addr[16];
};

/* enforce.bpf.c: a path by its struct path's address; its hashes; what the rules grant
 * it; a denial reported (the hook's return value). */
int build_path(struct pathbuf *pb, __u64 where);
int hash_path(struct pathbuf *pb);
int decide(struct pathbuf *pb, struct verdict *v);
/* Hidden, not global: the verifier checks a global function alone, where a pointer
 * argument is memory of its type's size (allowed_by_name's addr would be one byte). */
__hidden int deny(struct denial *d);

/* dns.bpf.c: whether a `host` rule's DNS answer allowed this address and port. */
__hidden bool allowed_by_name(const __u8 *addr, __u16 sotype, __u16 port);

/* The same test as the sensor's scope(), without its bitmap (LSM hooks are rarer). */
static __always_inline bool in_scope(struct task_struct *task)
{
	__u32 tgid = task->tgid;
	struct ag_proc *p = bpf_map_lookup_elem(&procs, &tgid);
	__u64 start;

	/*
	 * Not tracked, yet in the tree's cgroup, which no tree process can leave: a child
	 * that lost a race for the process map's last slot. Enforced all the same.
	 */
	if (!p)
		return tree_cgid && BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id) == tree_cgid;
	start = task->group_leader->start_boottime;
	if (p->start_ns == start)
		return true;
	return p->start_ns == 0 && tick_ns && p->start_ticks == start / tick_ns;
}

/* A typed kernel pointer as a plain address, which global functions can take. */
static __always_inline __u64 addr_of(const void *p)
{
	__u64 a = 0;

	bpf_probe_read_kernel(&a, sizeof(a), &p);
	return a;
}

static __always_inline struct pathbuf *path_of(__u64 where)
{
	__u32 zero = 0;
	struct pathbuf *pb = bpf_map_lookup_elem(&scratch, &zero);

	if (!pb || !build_path(pb, where) || !hash_path(pb))
		return NULL;
	return pb;
}

#endif
