// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A file's times (utimes, utimensat, futimens): a compilation unit of enforce's object
 * (enforce.h: it uses enforce.bpf.c's path walk and rule matching).
 *
 * Setting times reaches no path hook: only inode_setattr, which is given a dentry and no
 * mount. The path a rule is matched against needs the mount, so each mount of the file's
 * file system in the tree's mount namespace whose root is above the file is a name the file
 * has, and the change is allowed when a rule grants `times` to one of those names: by
 * that name the tree could have written the file anyway. A file with no such name (a
 * detached or another namespace's mount) is uncheckable and denied.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.h"
#include "policy.h"
#include "enforce.h"

#define ATTR_MODE (1 << 0)
#define ATTR_UID (1 << 1)
#define ATTR_GID (1 << 2)
#define ATTR_SIZE (1 << 3)
#define ATTR_ATIME (1 << 4)
#define ATTR_MTIME (1 << 5)
#define TIMES_MOUNTS 8		/* names of one file tried; more are not looked at */
#define TIMES_SCAN (1 << 16)	/* mounts of one file system scanned (of every namespace) */
#define MNT_NS_INTERNAL ((void *)-22)	/* a kernel-internal mount (fs/mount.h) */

/* Before Linux 6.13 a super block's mounts are a list through mnt_instance. */
struct super_block___list {
	struct list_head s_mounts;
} __attribute__((preserve_access_index));

struct mount___list {
	struct list_head mnt_instance;
} __attribute__((preserve_access_index));

struct mounts_ctx {
	struct mount *m;		/* the mount the scan is at */
	void *head;			/* the list head (before 6.13) */
	struct mnt_namespace *ns;	/* the tree's */
	struct dentry *dentry;		/* the file */
	struct mount *found[TIMES_MOUNTS];
	__u32 n;
	__u32 internal;			/* a kernel-internal mount's root is above the file */
};

static __always_inline struct mount *next_mount(struct mounts_ctx *c, struct mount *m)
{
	if (bpf_core_field_exists(struct mount___list, mnt_instance)) {
		struct list_head *pos = BPF_CORE_READ((struct mount___list *)m, mnt_instance.next);

		if (!pos || (void *)pos == c->head)
			return NULL;
		return (void *)pos - bpf_core_field_offset(struct mount___list, mnt_instance);
	}
	return BPF_CORE_READ(m, mnt_next_for_sb);
}

/* Whether `root` is the file or one of its directories (within AG_DEPTH steps). */
static __always_inline bool above(struct dentry *d, struct dentry *root)
{
	for (int i = 0; i < AG_DEPTH; i++) {
		struct dentry *parent;

		if (d == root)
			return true;
		parent = BPF_CORE_READ(d, d_parent);
		if (!parent || parent == d)
			return false;
		d = parent;
	}
	return false;
}

/*
 * One mount of the file system. Kept when it is in the tree's namespace and its root is
 * above the file: a name the file has there. A bind mount of another directory is none.
 */
static int mounts_step(__u32 i, struct mounts_ctx *c)
{
	struct mount *m = c->m;
	struct mnt_namespace *ns;
	__u32 n = c->n;

	if (!m)
		return 1;
	c->m = next_mount(c, m);
	ns = BPF_CORE_READ(m, mnt_ns);
	if (ns != c->ns && (void *)ns != MNT_NS_INTERNAL)
		return 0;
	if (!above(c->dentry, BPF_CORE_READ(m, mnt.mnt_root)))
		return 0;
	if ((void *)ns == MNT_NS_INTERNAL) {
		c->internal = 1;
		return 0;
	}
	if (n >= TIMES_MOUNTS)
		return 1;
	c->found[n] = m;
	c->n = n + 1;
	return 0;
}

static __always_inline int check_times(struct dentry *dentry, struct iattr *attr)
{
	struct denial d = { .op = AG_DENY_PATH, .want = AG_ACC_TIMES };
	struct task_struct *t = bpf_get_current_task_btf();
	struct mounts_ctx c = { .dentry = dentry };
	struct super_block *sb;
	struct mount *denied_at = NULL;
	struct verdict denied_v = {};
	unsigned int valid;

	valid = BPF_CORE_READ(attr, ia_valid);
	/*
	 * Times alone: a truncate (ATTR_SIZE), chmod and chown set times too and have their
	 * own path hooks; writes update times without coming here.
	 */
	if (!(valid & (ATTR_ATIME | ATTR_MTIME)) || (valid & (ATTR_SIZE | ATTR_MODE | ATTR_UID | ATTR_GID)))
		return 0;
	if (!in_scope(t))
		return 0;
	sb = BPF_CORE_READ(dentry, d_sb);
	c.ns = t->nsproxy->mnt_ns;
	if (bpf_core_field_exists(struct mount___list, mnt_instance)) {
		struct list_head *first = BPF_CORE_READ((struct super_block___list *)sb, s_mounts.next);

		c.head = (void *)sb + bpf_core_field_offset(struct super_block___list, s_mounts);
		c.m = (void *)first == c.head ? NULL :
		      (void *)first - bpf_core_field_offset(struct mount___list, mnt_instance);
	} else {
		c.m = BPF_CORE_READ(sb, s_mounts);
	}
	bpf_loop(TIMES_SCAN, mounts_step, &c, 0);
	/*
	 * No name in the tree's namespace, but under a kernel-internal mount: overlayfs
	 * setting the times of its upper file, for a call on the overlay's own path that was
	 * checked already (a container's root). Anything else without a name is uncheckable.
	 */
	if (!c.n && c.internal)
		return 0;
	for (__u32 i = 0; i < TIMES_MOUNTS && i < c.n; i++) {
		struct mount *m = c.found[i];
		struct verdict v = VERDICT_NONE;
		struct pathbuf *pb;
		struct path p;

		p.mnt = &m->mnt;
		p.dentry = dentry;
		pb = path_of(addr_of(&p));
		if (!pb)
			continue;
		decide(pb, &v);
		if ((v.hand | (v.learned & v.keep)) & AG_ACC_TIMES)
			return 0;
		denied_at = m;
		denied_v = v;
	}
	if (!denied_at) {
		d.op = AG_DENY_UNCHECKABLE;
		return deny(&d);
	}
	/* Reported by the last name tried (the path buffer is per CPU: built again). */
	{
		struct path p;

		p.mnt = &denied_at->mnt;
		p.dentry = dentry;
		d.pb = path_of(addr_of(&p));
	}
	d.rule = (AG_ACC_TIMES & ~denied_v.keep) ? AG_RULE_PROTECTED_SET : denied_v.rule;
	return deny(&d);
}

/* Linux 6.8 and later pass the mount's id map first. */
SEC("lsm/inode_setattr")
int BPF_PROG(enforce_setattr, struct mnt_idmap *idmap, struct dentry *dentry, struct iattr *attr, int ret)
{
	return ret ? ret : check_times(dentry, attr);
}

SEC("lsm/inode_setattr")
int BPF_PROG(enforce_setattr_dentry_first, struct dentry *dentry, struct iattr *attr, int ret)
{
	return ret ? ret : check_times(dentry, attr);
}
