// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * `agentguard doctor`'s probes: the smallest program of each type agentguard relies on.
 * doctor loads one at a time, attaches it, makes it fire, and reads its counter: a program
 * type works here only if all three happened.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Written by user space after load: the process whose actions count. */
__u32 target_tgid = 0;
/* cgroup/connect4: connections to this port are refused (the probe of enforcement). */
__u32 deny_port = 0;
__u64 hits = 0;

static __always_inline void hit(void)
{
	if ((bpf_get_current_pid_tgid() >> 32) == target_tgid)
		__sync_fetch_and_add(&hits, 1);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(probe_tracepoint, struct task_struct *parent, struct task_struct *child)
{
	if (parent->tgid == target_tgid)
		__sync_fetch_and_add(&hits, 1);
	return 0;
}

SEC("uprobe")
int probe_uprobe(struct pt_regs *ctx)
{
	hit();
	return 0;
}

SEC("fentry/security_file_open")
int BPF_PROG(probe_fentry, struct file *file)
{
	hit();
	return 0;
}

SEC("lsm/file_open")
int BPF_PROG(probe_lsm, struct file *file, int ret)
{
	hit();
	return ret;
}

SEC("cgroup/connect4")
int probe_cgroup(struct bpf_sock_addr *ctx)
{
	__sync_fetch_and_add(&hits, 1);
	if (deny_port && ctx->user_port == bpf_htons((__u16)deny_port))
		return 0;	/* EPERM: what the Landlock backend's network half relies on */
	return 1;
}
