// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The test suite's own check that BPF LSM takes decisions on this kernel, independent of
 * agentguard's code (tests/host.rs): file_open is denied to one thread, named in `target`.
 * No headers, so that clang alone builds it at test time.
 */
typedef unsigned int u32;
typedef unsigned long long u64;
#define SEC(name) __attribute__((section(name), used))

/* Helper ids from the kernel's uapi (bpf_map_lookup_elem = 1, get_current_pid_tgid = 14). */
static void *(*map_lookup_elem)(void *map, const void *key) = (void *)1;
static u64 (*get_current_pid_tgid)(void) = (void *)14;

/* BPF_MAP_TYPE_ARRAY (2) of one u32: the thread id to deny. */
struct {
	int (*type)[2];
	int (*max_entries)[1];
	u32 *key;
	u32 *value;
} target SEC(".maps");

SEC("lsm/file_open")
int deny_target(u64 *ctx)
{
	u32 k = 0;
	u32 *tid = map_lookup_elem(&target, &k);

	if (tid && *tid && (u32)get_current_pid_tgid() == *tid)
		return -1;	/* -EPERM */
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
