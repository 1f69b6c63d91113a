/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the sensor's compilation units share: sensor.bpf.c defines the maps and variables
 * declared here and the programs that follow the tree; payload.bpf.c, the HTTP payload
 * capture, reads them through these declarations. build.rs links the two objects into
 * one (libbpf's static linker), from which the skeleton is generated, so user space
 * sees one object with one copy of each map.
 *
 * The helpers are static inline: each unit gets its own copy, verified with its caller.
 */
#ifndef AGENTGUARD_SENSOR_H
#define AGENTGUARD_SENSOR_H

#define SOCK_STREAM 1
#define S_IFMT 00170000
#define S_IFSOCK 0140000

/* Set by user space before load. */
extern const volatile __u64 tick_ns;	/* ns per /proc starttime tick (NSEC_PER_SEC / USER_HZ) */
extern const volatile __u64 wakeup_bytes; /* wake the reader once this much is queued */

/* Scope, first check: one bit per tgid. A set bit is a hint; `procs` is the truth. */
extern __u64 scope_bits[AG_PID_LIMIT / 64];

/* The tracked processes: tgid -> identity. Sized by user space (--max-procs). */
struct procs_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct ag_proc);
};
extern struct procs_map procs SEC(".maps");

/* The records for user space. Sized by user space (--ring-buffer-mb). */
struct events_map {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 32 * 1024 * 1024);
};
extern struct events_map events SEC(".maps");

/* A record is assembled here, then copied out at its real size. */
struct scratch_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ag_event);
};
extern struct scratch_map scratch SEC(".maps");

/* Counters user space reads: records lost, processes not tracked (enum ag_stat). */
struct stats_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AG_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
};
extern struct stats_map stats SEC(".maps");

/*
 * One call's bytes on a stream (payload.bpf.c): a socket's at syscall exit, or an SSL
 * object's from the TLS probes. Hidden: after linking they are static functions, which
 * the verifier checks in their caller's context, as it did when they were one file.
 */
__hidden int on_payload(__u64 ptr, __u64 buf, __u64 len, __u16 op);
/* A call on a TCP socket, at syscall exit: one buffer (cnt 0), or cnt iovecs at buf. */
__hidden int on_stream(__u16 op, long ret, int fd, __u64 buf, __u64 cnt);
/* The same call, for the AEAD probes: ties a sealing context to its socket, notes reads. */
__hidden int on_aead_socket(__u64 sock, __u16 op, __u64 buf, __u64 cnt);
/* A read or write of `n` bytes on fd, counted per open file (io.bpf.c). */
__hidden int on_io(int fd, long n, bool out);
/* Sends (sendmmsg) or receives (recvmmsg) of `n` messages: their bytes counted. */
__hidden int on_mmsg(int fd, __u64 msgvec, long n, bool out);
/* Appends the path at a kernel address (struct path *) to a record (sensor.bpf.c). */
__u32 put_path_at(struct ag_event *e, __u32 off, __u32 slot, __u64 where);

static __always_inline void stat_inc(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/*
 * The index of tgid's word, masked so the verifier can see it is inside the array; the
 * barrier stops the compiler from dropping the mask as redundant with the caller's check.
 */
static __always_inline __u32 bit_word(__u32 tgid)
{
	__u32 w = tgid >> 6;

	barrier_var(w);
	return w & (AG_PID_LIMIT / 64 - 1);
}

static __always_inline bool bit_test(__u32 tgid)
{
	if (tgid >= AG_PID_LIMIT)
		return false;
	return scope_bits[bit_word(tgid)] & (1ULL << (tgid & 63));
}

/*
 * In scope means: tgid tracked AND the same process that was tracked, compared by the
 * group leader's start time, so a recycled pid is never in scope. Entries that user space
 * found in /proc carry only a start time in clock ticks: the first event adopts the exact
 * start time when the ticks agree.
 */
static __always_inline struct ag_proc *scope(struct task_struct *task, __u32 tgid)
{
	struct ag_proc *p;
	__u64 start;

	if (!bit_test(tgid))
		return NULL;
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p)
		return NULL;
	start = task->group_leader->start_boottime;
	if (p->start_ns == start)
		return p;
	if (p->start_ns == 0 && tick_ns && p->start_ticks == start / tick_ns) {
		p->start_ns = start;
		return p;
	}
	return NULL;
}

static __always_inline struct ag_event *ev_init(__u16 kind, __u16 op, struct task_struct *task)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 zero = 0;
	struct ag_event *e = bpf_map_lookup_elem(&scratch, &zero);

	if (!e)
		return NULL;
	__builtin_memset(&e->h, 0, sizeof(e->h));
	e->h.kind = kind;
	e->h.op = op;
	e->h.ts = bpf_ktime_get_ns();
	e->h.tgid = pid_tgid >> 32;
	e->h.tid = (__u32)pid_tgid;
	e->h.ppid = task->real_parent->tgid;
	return e;
}

/*
 * Copy the record out at its real size. File and network records do not wake the reader
 * (it polls) until a backlog builds up: a wake-up per event would cost more than the event.
 */
static __always_inline int ev_submit(struct ag_event *e, __u32 off, bool urgent)
{
	long err;

	__u64 size = sizeof(e->h) + off;
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (size > sizeof(*e))
		size = sizeof(*e);
	e->h.size = size;
	if (urgent || bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > wakeup_bytes)
		flags = 0;
	err = bpf_ringbuf_output(&events, e, size, flags);
	if (err)
		stat_inc(AG_STAT_LOST);
	return err ? -1 : 0;
}

/* task must be a BTF pointer (the current task): its fields are plain loads. */
static __always_inline struct file *fd_file(struct task_struct *task, int fd)
{
	struct fdtable *fdt = task->files->fdt;
	struct file **fda;
	struct file *f = NULL;

	if (fd < 0 || !fdt || fd >= fdt->max_fds)
		return NULL;
	fda = fdt->fd;
	bpf_probe_read_kernel(&f, sizeof(f), &fda[fd]);
	return f;
}

static __always_inline struct socket *fd_socket(struct task_struct *task, int fd)
{
	struct file *f = fd_file(task, fd);

	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	return BPF_CORE_READ(f, private_data);
}

#endif
