// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * agentguard's enforcement: BPF LSM programs that deny, with EPERM, what the compiled
 * profile (policy.h) does not allow, for the processes of one tree. The tree is the one
 * the sensor tracks: `procs` is the sensor's map, shared by file descriptor, so both
 * agree on scope by construction.
 *
 * Every hook asks "is this process in scope?" first. Each denial (or would-be denial,
 * under audit) is a record on the `denials` ring buffer naming the rule or the reason.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.h"
#include "policy.h"
#include "enforce.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define FMODE_READ 0x1
#define FMODE_WRITE 0x2
#define FMODE_EXEC 0x20
#define FMODE_CREATED 0x100000
#define O_TRUNC 01000
#define O_APPEND 02000
#define S_IFMT 00170000
#define S_IFDIR 0040000
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define AF_NETLINK 16
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_TYPE_MASK 0xf
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define MSG_FASTOPEN 0x20000000
#define MSG_OOB 1
#define TCP_SYN_SENT 2
#define TCP_FASTOPEN_CONNECT 30
#define TCP_ULP 31
#define IPPROTO_UDP 17
#define IPPROTO_ICMPV6 58
#define S_IFCHR 0020000
#define S_IFBLK 0060000
#define TIOCSTI 0x5412
#define TIOCLINUX 0x541C
#define CLONE_THREAD 0x00010000
#define CLONE_INTO_CGROUP 0x200000000ULL
#define SIGKILL 9

const volatile __u64 tick_ns = 10000000;
const volatile __u64 hash_key = 0;	/* random per session: rules are found by keyed hash */
const volatile __u32 audit = 0;		/* report, deny nothing */
const volatile __u32 kill_on_deny = 0;
const volatile __u64 tree_cgid = 0;	/* the tree's cgroup (its directory's inode number) */
const volatile __u32 n_slow = 0;	/* rules in `slow` */
const volatile __u32 n_net = 0;		/* rules in `net_rules` */

/* The maps enforce.h declares, defined here (enforce.h says what each holds). */
struct procs_map procs SEC(".maps");
struct scratch_map scratch SEC(".maps");

struct ag_glob _glob = {};
struct ag_dir _dir = {};
struct ag_net_rule _net = {};
struct ag_name_rule _name = {};
struct ag_addr _addr = {};
enum ag_access _access = 0;
enum ag_rule_flags _rule_flags = 0;
enum ag_deny_op _deny_op = 0;
enum ag_rule_id _rule_id = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct ag_glob);
} globs SEC(".maps");

/* Keyed hash of a literal directory "/d1/.../dk" ("" is the root) -> its rules. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct ag_dir);
} dirs SEC(".maps");

/* Keyed hash of one component -> rules starting with "**" anchored on it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct ag_dir);
} comps SEC(".maps");

/* Rules starting with "**" and no literal segment to anchor on. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AG_ANYWHERE);
	__type(key, __u32);
	__type(value, __u32);
} slow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AG_NET_RULES);
	__type(key, __u32);
	__type(value, struct ag_net_rule);
} net_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} denials SEC(".maps");

/* Reports the denials ring had no room for: the calls were still refused. Read by the
 * session (bss), counted with the lost events, said in the summary. */
__u64 denials_lost = 0;

struct walk_ctx {
	struct pathbuf *pb;
	struct dentry *dentry;
	struct dentry *root;
	struct mount *mnt;
	__u32 pos;
	__u32 n;
	__u32 done;
	__u32 bad;
};

/* One step up the tree: bpf_loop's body, so the verifier checks it once. */
static int walk_step(__u32 i, struct walk_ctx *c)
{
	struct pathbuf *pb = c->pb;
	struct dentry *dentry = c->dentry, *parent;
	struct mount *mnt_parent;
	struct qstr q;
	__u32 pos = c->pos, len;

	if (!pb)
		return 1;
	if (dentry == c->root) {
		struct mount *mnt = c->mnt;	/* a kernel pointer in a local: CO-RE reads need that */

		mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
		if (mnt_parent == mnt || !mnt_parent) {
			/*
			 * The top of a tree of mounts: the tree's own namespace, or a kernel-internal
			 * mount (pipes, memfds, overlayfs layers). Anything else is detached
			 * (open_tree, fsmount, a lazy unmount) or another namespace's: its path is
			 * relative to a root the profile does not describe (~/.ssh/id_ed25519 would
			 * read as /id_ed25519), so it cannot be checked.
			 */
			struct mnt_namespace *ns = BPF_CORE_READ(mnt, mnt_ns);
			struct task_struct *t = bpf_get_current_task_btf();

			if ((long)ns != -22 /* MNT_NS_INTERNAL */ && ns != t->nsproxy->mnt_ns)
				c->bad = 1;
			c->done = 1;
			return 1;
		}
		c->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		c->mnt = mnt_parent;
		c->root = BPF_CORE_READ(mnt_parent, mnt.mnt_root);
		return 0;
	}
	parent = BPF_CORE_READ(dentry, d_parent);
	if (bpf_core_read(&q, sizeof(q), &dentry->d_name)) {
		c->bad = 1;
		return 1;
	}
	len = q.len;
	if (len > 255 || pos < len + 2 || pos > AG_PATHBUF || c->n >= AG_DEPTH) {
		c->bad = 1;
		return 1;
	}
	pos -= len;
	bpf_probe_read_kernel(&pb->buf[pos & MASK], len & 255, q.name);
	pos -= 1;
	pb->buf[pos & MASK] = '/';
	c->pos = pos;
	c->n++;
	if (dentry == parent) {
		c->done = 1;	/* a pseudo file: its name is all there is */
		return 1;
	}
	c->dentry = parent;
	return 0;
}

/*
 * The path of `where` (a struct path address), written the way d_path writes it: from the
 * leaf backwards, so it ends up root first. Returns false when it is too deep or too long
 * to check: the caller denies.
 */
__noinline int build_path(struct pathbuf *pb, __u64 where)
{
	struct walk_ctx c = { .pb = pb, .pos = AG_PATHBUF };
	struct path pth;
	struct vfsmount *vfsmnt;

	if (!pb || bpf_probe_read_kernel(&pth, sizeof(pth), (const void *)where))
		return 0;
	vfsmnt = pth.mnt;
	c.dentry = pth.dentry;
	c.mnt = container_of(vfsmnt, struct mount, mnt);
	c.root = BPF_CORE_READ(vfsmnt, mnt_root);
	bpf_loop(AG_DEPTH * 2, walk_step, &c, 0);
	if (c.bad || !c.done)
		return 0;
	pb->start = c.pos;
	pb->n = c.n;
	return 1;
}

struct hash_ctx {
	struct pathbuf *pb;
	__u64 h;
	__u64 hc;
	__u32 k;
	__u32 bad;
};

/* One byte of the path: bpf_loop's body, so the verifier checks it once. */
static int hash_byte(__u32 i, struct hash_ctx *c)
{
	struct pathbuf *pb = c->pb;
	__u32 at, k;
	__u8 ch;

	if (!pb)
		return 1;
	at = pb->start + i;
	if (at >= AG_PATHBUF)
		return 1;
	ch = pb->buf[at & MASK];
	k = c->k;
	if (ch == '/') {
		if (i > 0) {
			if (k >= AG_DEPTH) {
				c->bad = 1;
				return 1;
			}
			pb->comp[IX(k)] = c->hc;
			k++;
			pb->pre[IX(k)] = c->h;
			c->k = k;
		}
		if (k > AG_DEPTH)
			return 1;
		pb->coff[IX(k)] = at;
		c->hc = hash_key;
	} else {
		c->hc = ag_mix(c->hc, ch);
	}
	c->h = ag_mix(c->h, ch);
	return 0;
}

/* Hashes of every prefix and of every component, and where each component starts. */
__noinline int hash_path(struct pathbuf *pb)
{
	struct hash_ctx c = { .pb = pb, .h = hash_key, .hc = hash_key };
	__u32 k;

	if (!pb)
		return 0;
	pb->pre[0] = hash_key;
	bpf_loop(AG_PATHBUF, hash_byte, &c, 0);
	k = c.k;
	if (c.bad || k >= AG_DEPTH)
		return 0;
	if (pb->n > 0) {
		pb->comp[IX(k)] = c.hc;
		k++;
		pb->pre[IX(k)] = c.h;
	}
	if (k > AG_DEPTH || k != pb->n)
		return 0;
	pb->coff[IX(k)] = AG_PATHBUF;
	return 1;
}

/* Does component j match segment s? (Global functions are verified once, not per call.) */
__noinline int seg_match(struct pathbuf *pb, struct ag_seg *s, __u32 j)
{
	__u32 from, to, len, i;

	if (!pb || !s || j >= AG_DEPTH)
		return false;
	from = pb->coff[IX(j)] + 1;
	to = pb->coff[IX(j + 1)];
	if (to < from || to > AG_PATHBUF)
		return false;
	len = to - from;
	if (!s->star && len != s->plen)
		return false;
	if (s->star && len < (__u32)s->plen + s->slen)
		return false;
	for (i = 0; i < AG_SEG_LIT; i++) {
		if (i >= s->plen)
			break;
		if (pb->buf[(from + i) & MASK] != s->pre[i])
			return false;
	}
	for (i = 0; i < AG_SEG_LIT; i++) {
		if (i >= s->slen)
			break;
		if (pb->buf[(to - s->slen + i) & MASK] != s->suf[i])
			return false;
	}
	return true;
}

/* Does glob g match the components from j on? */
__noinline int glob_match(struct pathbuf *pb, struct ag_glob *g, __u32 j)
{
	__u32 rest, i;

	if (!pb || !g || j > pb->n)
		return false;
	rest = pb->n - j;
	if (g->flags & AG_RULE_TAIL_ANY ? rest <= g->nseg : rest != g->nseg)
		return false;
	for (i = 0; i < AG_SEGS; i++) {
		if (i >= g->nseg)
			break;
		if (!seg_match(pb, &g->seg[i], j + i))
			return false;
	}
	return true;
}

static __always_inline void apply(struct verdict *v, struct ag_glob *g)
{
	if (g->flags & AG_RULE_PROTECTED)
		v->keep &= g->grant;
	else if (g->flags & AG_RULE_HAND)
		v->hand |= g->grant;
	else
		v->learned |= g->grant;
	v->rule = g->id;
}

/* The rules of one directory (or anchor), tried on the components from j on. */
__noinline int try_list(struct pathbuf *pb, struct ag_dir *d, __u32 j, struct verdict *v)
{
	struct ag_glob *g;
	__u32 i, idx;

	if (!pb || !d || !v)
		return 0;
	for (i = 0; i < AG_DIR_RULES; i++) {
		if (i >= d->n)
			break;
		idx = d->idx[i];
		g = bpf_map_lookup_elem(&globs, &idx);
		if (!g)
			continue;
		if (glob_match(pb, g, j))
			apply(v, g);
	}
	return 0;
}

/*
 * Everything the profile grants the path in pb: the rules of each ancestor directory, the
 * "**" rules anchored on each component (their segments start at it), the unanchored rest.
 */
__noinline int decide(struct pathbuf *pb, struct verdict *v)
{
	struct ag_dir *d;
	__u32 k, idx, i;
	__u64 key;

	if (!pb || !v)
		return 0;
	for (k = 0; k <= AG_DEPTH; k++) {
		if (k > pb->n)
			break;
		key = pb->pre[IX(k)];
		d = bpf_map_lookup_elem(&dirs, &key);
		if (d)
			try_list(pb, d, k, v);
		if (k < pb->n && k < AG_DEPTH) {
			key = pb->comp[IX(k)];
			d = bpf_map_lookup_elem(&comps, &key);
			if (d)
				try_list(pb, d, k, v);
		}
	}
	for (i = 0; i < AG_ANYWHERE; i++) {
		struct ag_glob *g;

		if (i >= n_slow)
			break;
		idx = i;
		{
			__u32 *gi = bpf_map_lookup_elem(&slow, &idx);

			if (!gi)
				continue;
			idx = *gi;
		}
		g = bpf_map_lookup_elem(&globs, &idx);
		if (!g)
			continue;
		for (k = 0; k <= AG_DEPTH; k++) {
			if (k > pb->n)
				break;
			if (glob_match(pb, g, k)) {
				apply(v, g);
				break;
			}
		}
	}
	return 0;
}

/* Reports a denial; returns what the hook returns (0 under audit). */
__hidden __noinline int deny(struct denial *d)
{
	struct pathbuf *pb;
	struct task_struct *task = bpf_get_current_task_btf();
	struct ag_event *e;
	__u32 len = 0;

	if (!d)
		return -EPERM;
	pb = d->pb;
	e = bpf_ringbuf_reserve(&denials, sizeof(struct ag_hdr) + AG_PATHBUF, 0);
	if (e) {
		__builtin_memset(&e->h, 0, sizeof(e->h));
		e->h.kind = AG_DENY;
		e->h.op = d->op;
		e->h.ts = bpf_ktime_get_ns();
		e->h.tgid = task->tgid;
		e->h.tid = task->pid;
		e->h.ppid = task->real_parent->tgid;
		e->h.ret = audit ? 0 : -EPERM;
		e->h.arg[0] = d->rule;
		e->h.arg[1] = d->want;
		e->h.family = d->family;
		e->h.port = d->port;
		__builtin_memcpy(e->h.addr, d->addr, 16);
		if (pb && pb->start < AG_PATHBUF) {
			len = AG_PATHBUF - pb->start;
			bpf_probe_read_kernel(e->data, len & MASK, &pb->buf[pb->start & MASK]);
		}
		e->h.len[0] = len & MASK;
		e->h.size = sizeof(struct ag_hdr) + (len & MASK);
		bpf_ringbuf_submit(e, 0);
	} else {
		__sync_fetch_and_add(&denials_lost, 1);
	}
	if (audit)
		return 0;
	if (kill_on_deny)
		bpf_send_signal(SIGKILL);
	return -EPERM;
}

static __always_inline int deny_simple(__u16 op, __u32 what)
{
	struct denial d = { .op = op, .want = what };

	return deny(&d);
}

static __always_inline int check_path(__u16 op, __u64 where, __u32 want)
{
	struct verdict v = VERDICT_NONE;
	struct pathbuf *pb = path_of(where);
	__u32 granted;

	struct denial d = { .op = op, .want = want };

	if (!pb) {
		d.op = AG_DENY_UNCHECKABLE;
		return deny(&d);
	}
	decide(pb, &v);
	granted = v.hand | (v.learned & v.keep);
	/* An exec's open asks for either bit (see enforce_file_open); every other open for all. */
	if (want == (AG_ACC_EXEC | AG_ACC_READ) ? (want & granted) != 0 : (want & granted) == want)
		return 0;
	/* Denied for protection: it asks for what a protected rule keeps from learned ones. */
	d.rule = (want & ~v.keep) ? AG_RULE_PROTECTED_SET : v.rule;
	d.pb = pb;
	return deny(&d);
}

SEC("lsm/file_open")
int BPF_PROG(enforce_file_open, struct file *file, int ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 mode, flags, want = 0;

	if (ret)
		return ret;
	if (!in_scope(task))
		return 0;
	mode = file->f_mode;
	flags = file->f_flags;
	/*
	 * The kernel's own opens for an exec: the program (bprm_check_security decides on it)
	 * and its ELF interpreter, which no other hook sees. Either may be run if the profile
	 * lets the tree run it or read it (a loader is a library the tree reads).
	 */
	if ((mode & FMODE_EXEC) || (flags & FMODE_EXEC))
		return check_path(AG_DENY_EXEC, addr_of(file) + bpf_core_field_offset(struct file, f_path),
				  AG_ACC_EXEC | AG_ACC_READ);
	if ((file->f_inode->i_mode & S_IFMT) == S_IFDIR) {
		/*
		 * overlayfs opens the real directory beneath the one the tree opened, through a
		 * private mount of the layer that no path lookup reaches (mnt_ns is
		 * MNT_NS_INTERNAL): the tree's own open was checked by this hook already, at the
		 * path it sees. Checked again it would be at the layer's path (/usr/lib/x as /lib/x
		 * on an overlay of /usr), which no profile names. Directories only: the other
		 * files of internal mounts (namespaces, pipes, memfds) stay checked.
		 */
		struct mount *m = container_of(file->f_path.mnt, struct mount, mnt);

		if ((long)BPF_CORE_READ(m, mnt_ns) == -22 /* EINVAL: MNT_NS_INTERNAL */)
			return 0;
		want |= AG_ACC_LIST;
	} else if (mode & FMODE_READ)
		want |= AG_ACC_READ;
	if (mode & FMODE_WRITE) {
		want |= AG_ACC_WRITE;
		if (flags & O_APPEND)
			want |= AG_ACC_APPEND;
		if (flags & O_TRUNC)
			want |= AG_ACC_TRUNCATE;
	}
	if (mode & FMODE_CREATED)
		want |= AG_ACC_CREATE;
	return check_path(AG_DENY_OPEN, addr_of(file) + bpf_core_field_offset(struct file, f_path), want);
}

SEC("lsm/bprm_check_security")
int BPF_PROG(enforce_exec, struct linux_binprm *bprm, int ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file *f;

	if (ret)
		return ret;
	if (!in_scope(task))
		return 0;
	/* The file the kernel is about to run, not the name it was asked for. */
	f = BPF_CORE_READ(bprm, file);
	return check_path(AG_DENY_EXEC, (__u64)&f->f_path, AG_ACC_EXEC);
}

struct net_ctx {
	__u16 family;
	__u16 sotype;
	__u16 port;
	__u8 addr[16];
	__u64 unix_hash;
	__u32 ok;
};

static int net_rule_cb(__u32 i, struct net_ctx *c)
{
	struct ag_net_rule *r = bpf_map_lookup_elem(&net_rules, &i);

	if (!r || i >= n_net)
		return 1;
	if (r->family != c->family || (r->sotype && r->sotype != c->sotype))
		return 0;
	if (c->family == AF_UNIX) {
		if (r->unix_hash == c->unix_hash)
			c->ok = 1;
		return c->ok;
	}
	if (!ag_net_rule_covers(r, c->port, c->addr))
		return 0;
	c->ok = 1;
	return 1;
}

/* An outbound destination (connect, or a datagram's own address) against the net rules. */
static __always_inline int check_sockaddr(struct socket *sock, struct sockaddr *address)
{
	struct net_ctx c = {};
	__u16 family, port = 0;

	family = BPF_CORE_READ(address, sa_family);
	c.sotype = BPF_CORE_READ(sock, type);
	/*
	 * The socket's own family decides how the kernel reads the address: an IPv4 socket
	 * sends a datagram addressed AF_UNSPEC as if it were AF_INET.
	 */
	if (family == 0 /* AF_UNSPEC */ && BPF_CORE_READ(sock, sk, __sk_common.skc_family) == AF_INET)
		family = AF_INET;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)address;

		/* IPv4 is matched as v4-mapped IPv6, so one rule form covers both. */
		c.family = AF_INET6;
		c.addr[10] = 0xff;
		c.addr[11] = 0xff;
		bpf_probe_read_kernel(&c.addr[12], 4, &sin->sin_addr);
		port = bpf_ntohs(BPF_CORE_READ(sin, sin_port));
	} else if (family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)address;

		c.family = AF_INET6;
		bpf_probe_read_kernel(c.addr, 16, &sin6->sin6_addr);
		port = bpf_ntohs(BPF_CORE_READ(sin6, sin6_port));
	} else {
		/*
		 * Unix sockets are checked where the kernel has found the socket it reaches
		 * (unix_stream_connect, unix_may_send below); netlink and the like are not
		 * outbound connections.
		 */
		return 0;
	}
	c.port = port;
	bpf_loop(AG_NET_RULES, net_rule_cb, &c, 0);
	if (c.ok)
		return 0;
	if (c.family == AF_INET6 && allowed_by_name(c.addr, c.sotype, port))
		return 0;
	{
		struct denial d = { .op = AG_DENY_CONNECT, .family = c.family, .port = port };

		__builtin_memcpy(d.addr, c.addr, 16);
		return deny(&d);
	}
}

/*
 * A unix socket by the socket the kernel reaches, not the name the program passed: the
 * peer's bound name (a symlink at an allowed path that leads to the D-Bus system bus is
 * the bus's name; an abstract name with a NUL inside is that whole name). An unnamed peer
 * (socketpair, a descriptor passed over a socket) is one the tree already holds.
 */
static __noinline int check_unix_peer(struct sock *other)
{
	struct unix_address *a = BPF_CORE_READ((struct unix_sock *)other, addr);
	struct net_ctx c = { .family = AF_UNIX };
	struct pathbuf *pb;
	__u32 zero = 0, n;
	__u8 *name;

	if (!a)
		return 0;
	pb = bpf_map_lookup_elem(&scratch, &zero);
	if (!pb)
		return -EPERM;
	n = BPF_CORE_READ(a, len);
	n = n > 2 ? n - 2 : 0;
	if (n > AG_UNIX_NAME)
		n = AG_UNIX_NAME;
	/* At the end of the buffer, where deny() reports a path from. */
	name = (__u8 *)&pb->buf[AG_PATHBUF - AG_UNIX_NAME];
	__builtin_memset(name, 0, AG_UNIX_NAME);
	bpf_probe_read_kernel(name, n & 127, &a->name[0].sun_path);
	c.unix_hash = ag_unix_hash(hash_key, name, n);
	c.sotype = BPF_CORE_READ(other, sk_type);
	bpf_loop(AG_NET_RULES, net_rule_cb, &c, 0);
	if (c.ok)
		return 0;
	{
		struct denial d = { .op = AG_DENY_CONNECT, .family = AF_UNIX, .pb = pb };

		/* The name by its length (deny() copies from start to the end). */
		pb->start = AG_PATHBUF - AG_UNIX_NAME;
		d.want = n;
		return deny(&d);
	}
}

SEC("lsm/unix_stream_connect")
int BPF_PROG(enforce_unix_connect, struct sock *sock, struct sock *other, struct sock *newsk,
	     int ret)
{
	if (ret)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	return check_unix_peer(other);
}

/* Every datagram, connected or not, and a datagram socket's connect. */
SEC("lsm/unix_may_send")
int BPF_PROG(enforce_unix_send, struct socket *sock, struct socket *other, int ret)
{
	if (ret)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	return check_unix_peer(BPF_CORE_READ(other, sk));
}

SEC("lsm/socket_connect")
int BPF_PROG(enforce_connect, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	if (ret)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	return check_sockaddr(sock, address);
}

/* A datagram sent to an address without connect() is an outbound destination too. */
SEC("lsm/socket_sendmsg")
int BPF_PROG(enforce_sendmsg, struct socket *sock, struct msghdr *msg, int size, int ret)
{
	struct sockaddr *name;

	if (ret)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	/*
	 * TCP sends the HTTP endpoint check (endpoint.bpf.c) could not follow: Fast Open's
	 * data leaves with the SYN and a send begun while connecting goes out by the plain
	 * path, both before the connection is in its map; an urgent byte never reaches the
	 * server's stream, so the check and the server would read different bytes.
	 */
	if (BPF_CORE_READ(sock, type) == SOCK_STREAM &&
	    (BPF_CORE_READ(sock, sk, __sk_common.skc_family) == AF_INET ||
	     BPF_CORE_READ(sock, sk, __sk_common.skc_family) == AF_INET6)) {
		__u32 flags = BPF_CORE_READ(msg, msg_flags);
		struct denial d = { .op = AG_DENY_FASTOPEN };

		if (flags & MSG_FASTOPEN)
			d.want = 1;
		else if (flags & MSG_OOB)
			d.want = 2;
		else if (BPF_CORE_READ(sock, sk, __sk_common.skc_state) == TCP_SYN_SENT)
			d.want = 3;
		if (d.want)
			return deny(&d);
	}
	name = BPF_CORE_READ(msg, msg_name);
	if (!name)
		return 0;	/* connected: connect() was checked */
	return check_sockaddr(sock, name);
}

SEC("lsm/socket_setsockopt")
int BPF_PROG(enforce_setsockopt, struct socket *sock, int level, int optname, int ret)
{
	struct denial d = { .op = AG_DENY_FASTOPEN, .want = 1 };

	if (ret)
		return ret;
	if (level != IPPROTO_TCP || (optname != TCP_FASTOPEN_CONNECT && optname != TCP_ULP))
		return 0;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	/* Kernel TLS: its plaintext goes by write() and sendfile(), past SSL_write. */
	if (optname == TCP_ULP)
		d.want = 4;
	return deny(&d);
}

/*
 * Changes to names and modes: checked like opens, on the path they touch (a directory and
 * the entry in it). Without them, a file written where the profile allows could be renamed
 * or hard-linked onto a protected path.
 */
static __always_inline int check_entry(const struct path *dir, struct dentry *dentry, __u32 want)
{
	struct path p;

	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	p.mnt = dir->mnt;
	p.dentry = dentry;
	return check_path(AG_DENY_PATH, addr_of(&p), want);
}

SEC("lsm/path_unlink")
int BPF_PROG(enforce_unlink, const struct path *dir, struct dentry *dentry, int ret)
{
	return ret ? ret : check_entry(dir, dentry, AG_ACC_DELETE);
}

SEC("lsm/path_rmdir")
int BPF_PROG(enforce_rmdir, const struct path *dir, struct dentry *dentry, int ret)
{
	return ret ? ret : check_entry(dir, dentry, AG_ACC_DELETE);
}

/*
 * A new file: open(O_CREAT) creates it before file_open is asked, so a create checked only
 * there would leave an empty file behind. mknod(2) (fifos, sockets, devices) comes here too.
 */
SEC("lsm/path_mknod")
int BPF_PROG(enforce_mknod, const struct path *dir, struct dentry *dentry, umode_t mode, unsigned int dev,
	     int ret)
{
	if (ret)
		return ret;
	/*
	 * A device node made by the tree would reach /dev/mem or a disk under a name the
	 * profile allows: no profile rule admits one.
	 */
	if (((mode & S_IFMT) == S_IFCHR || (mode & S_IFMT) == S_IFBLK) &&
	    in_scope(bpf_get_current_task_btf())) {
		struct denial d = { .op = AG_DENY_DEVICE, .want = dev, .port = mode & S_IFMT };
		struct path p;

		p.mnt = dir->mnt;
		p.dentry = dentry;
		d.pb = path_of(addr_of(&p));
		return deny(&d);
	}
	return check_entry(dir, dentry, AG_ACC_CREATE);
}

SEC("lsm/path_mkdir")
int BPF_PROG(enforce_mkdir, const struct path *dir, struct dentry *dentry, umode_t mode, int ret)
{
	return ret ? ret : check_entry(dir, dentry, AG_ACC_MKDIR);
}

SEC("lsm/path_symlink")
int BPF_PROG(enforce_symlink, const struct path *dir, struct dentry *dentry, const char *old_name, int ret)
{
	return ret ? ret : check_entry(dir, dentry, AG_ACC_SYMLINK);
}

/* The source is renamed away; the target is created (as record writes it in a profile). */
SEC("lsm/path_rename")
int BPF_PROG(enforce_rename, const struct path *old_dir, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry, int ret)
{
	if (ret)
		return ret;
	ret = check_entry(old_dir, old_dentry, AG_ACC_RENAME);
	if (ret)
		return ret;
	return check_entry(new_dir, new_dentry, AG_ACC_CREATE);
}

/* A hard link: the existing file is linked, the new name created. */
SEC("lsm/path_link")
int BPF_PROG(enforce_link, struct dentry *old_dentry, const struct path *new_dir, struct dentry *new_dentry, int ret)
{
	if (ret)
		return ret;
	ret = check_entry(new_dir, old_dentry, AG_ACC_LINK);
	if (ret)
		return ret;
	return check_entry(new_dir, new_dentry, AG_ACC_CREATE);
}

SEC("lsm/path_chmod")
int BPF_PROG(enforce_chmod, const struct path *path, umode_t mode, int ret)
{
	if (ret)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	return check_path(AG_DENY_PATH, addr_of(path), AG_ACC_CHMOD);
}

/* A change of owner is a change of mode: a protected file handed to another user. */
SEC("lsm/path_chown")
int BPF_PROG(enforce_chown, const struct path *path, __u32 uid, __u32 gid, int ret)
{
	if (ret)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	return check_path(AG_DENY_PATH, addr_of(path), AG_ACC_CHMOD);
}

/*
 * security.* and trusted.* attributes are the kernel's: file capabilities
 * (security.capability) a root process outside the tree would run with later, and the
 * labels of other security modules. No profile rule admits setting or removing them.
 */
static __always_inline bool has_prefix(const char *s, const char *pre, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] != pre[i])
			return false;
	return true;
}

static __always_inline int check_xattr(const char *name)
{
	char n[10] = {};

	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	bpf_probe_read_kernel_str(n, sizeof(n), name);
	if (!has_prefix(n, "security.", 9) && !has_prefix(n, "trusted.", 8))
		return 0;
	return deny_simple(AG_DENY_XATTR, n[0] == 's' ? 1 : 2);
}

SEC("lsm/inode_setxattr")
int BPF_PROG(enforce_setxattr, struct mnt_idmap *idmap, struct dentry *dentry, const char *name,
	     const void *value, size_t size, int flags, int ret)
{
	return ret ? ret : check_xattr(name);
}

SEC("lsm/inode_removexattr")
int BPF_PROG(enforce_removexattr, struct mnt_idmap *idmap, struct dentry *dentry, const char *name,
	     int ret)
{
	return ret ? ret : check_xattr(name);
}

SEC("lsm/path_truncate")
int BPF_PROG(enforce_truncate, const struct path *path, int ret)
{
	if (ret)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	return check_path(AG_DENY_PATH, addr_of(path), AG_ACC_TRUNCATE);
}

/* Escapes: a tree process may not trace a process outside its tree. */
SEC("lsm/ptrace_access_check")
int BPF_PROG(enforce_ptrace, struct task_struct *child, unsigned int mode, int ret)
{
	struct task_struct *task = bpf_get_current_task_btf();

	if (ret)
		return ret;
	if (!in_scope(task) || in_scope(child))
		return 0;
	return deny_simple(AG_DENY_PTRACE, child->tgid);
}

SEC("lsm/kernel_read_file")
int BPF_PROG(enforce_module_file, struct file *file, enum kernel_read_file_id id, bool contents, int ret)
{
	if (ret)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	return deny_simple(AG_DENY_MODULE, id);
}

SEC("lsm/kernel_load_data")
int BPF_PROG(enforce_module_data, enum kernel_load_data_id id, bool contents, int ret)
{
	if (ret)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	return deny_simple(AG_DENY_MODULE, id);
}

SEC("lsm/bpf")
int BPF_PROG(enforce_bpf, int cmd, union bpf_attr *attr, unsigned int size, int ret)
{
	if (ret)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	return deny_simple(AG_DENY_BPF, cmd);
}

SEC("lsm/sb_mount")
int BPF_PROG(enforce_mount, const char *dev_name, const struct path *path, const char *type,
	     unsigned long flags, void *data, int ret)
{
	if (ret)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	return deny_simple(AG_DENY_MOUNT, 0);
}

SEC("lsm/move_mount")
int BPF_PROG(enforce_move_mount, const struct path *from, const struct path *to, int ret)
{
	if (ret)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	return deny_simple(AG_DENY_MOUNT, 0);
}

/*
 * The guard itself: a tree process may signal its own tree only. Stopping the watchdog or
 * killing agentguard would end enforcement, and the tree has no business with the rest of
 * the host's processes either (kill -9 -1 is one signal per process, each asked here).
 */
SEC("lsm/task_kill")
int BPF_PROG(enforce_kill, struct task_struct *p, struct kernel_siginfo *info, int sig,
	     const struct cred *cred, int ret)
{
	struct denial d = { .op = AG_DENY_SIGNAL };

	if (ret)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()) || in_scope(p))
		return 0;
	d.want = p->tgid;
	d.port = sig;
	return deny(&d);
}

/*
 * New processes. clone3(CLONE_INTO_CGROUP) would start a child outside the tree's cgroup,
 * where the watchdog's cgroup.kill does not reach. And a child the sensor cannot track
 * (its process map full) would run unenforced: the fork fails instead. The probe inserts
 * a key no pid can have (pids stop at 2^22), per CPU, and takes it out again.
 */
SEC("lsm/task_alloc")
int BPF_PROG(enforce_task_alloc, struct task_struct *task, unsigned long clone_flags, int ret)
{
	struct ag_proc blank = {};
	__u32 probe;
	long err;

	if (ret)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	if (clone_flags & CLONE_INTO_CGROUP)
		return deny_simple(AG_DENY_CLONE, 1);
	if (clone_flags & CLONE_THREAD)
		return 0;	/* a thread joins its process's entry */
	probe = 0xffffff00 | (bpf_get_smp_processor_id() & 0xff);
	err = bpf_map_update_elem(&procs, &probe, &blank, BPF_NOEXIST);
	if (!err)
		bpf_map_delete_elem(&procs, &probe);
	else if (err != -17 /* EEXIST: another task's probe on this CPU, so there was room */)
		return deny_simple(AG_DENY_CLONE, 2);
	return 0;
}

/*
 * The terminal: TIOCSTI pushes input into a terminal as if typed, TIOCLINUX can do the
 * same on a console. The tree's own terminal is a pseudo-terminal agentguard relays, but a
 * descriptor of the user's terminal could still reach the tree.
 */
static __always_inline int check_ioctl(unsigned int cmd)
{
	if (cmd != TIOCSTI && cmd != TIOCLINUX)
		return 0;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	return deny_simple(AG_DENY_IOCTL, cmd);
}

SEC("lsm/file_ioctl")
int BPF_PROG(enforce_ioctl, struct file *file, unsigned int cmd, unsigned long arg, int ret)
{
	return ret ? ret : check_ioctl(cmd);
}

/*
 * The same through the 32-bit entry. Linux 6.8 gave compat ioctl a hook of its own; before
 * that it went through file_ioctl, and this program is not loaded (lsm.rs).
 */
SEC("lsm/file_ioctl_compat")
int BPF_PROG(enforce_ioctl_compat, struct file *file, unsigned int cmd, unsigned long arg,
	     int ret)
{
	return ret ? ret : check_ioctl(cmd);
}

/*
 * Socket families and types: what the net rules can describe (unix, and TCP, UDP and ICMP
 * over IPv4 and IPv6) and what name resolution needs (netlink's routing protocol). Raw IP
 * and packet sockets would send past every address check; other families (vsock, alg,
 * bluetooth, xdp) reach what no rule names.
 */
SEC("lsm/socket_create")
int BPF_PROG(enforce_socket, int family, int type, int protocol, int kern, int ret)
{
	int t = type & SOCK_TYPE_MASK;
	struct denial d = { .op = AG_DENY_SOCKET };

	if (ret || kern)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	if (family == AF_UNIX)
		return 0;
	if ((family == AF_INET || family == AF_INET6) && (t == SOCK_STREAM || t == SOCK_DGRAM) &&
	    (protocol == 0 || protocol == IPPROTO_TCP || protocol == IPPROTO_UDP ||
	     protocol == IPPROTO_ICMP || protocol == IPPROTO_ICMPV6))
		return 0;
	if (family == AF_NETLINK && protocol == 0 /* NETLINK_ROUTE */)
		return 0;
	d.family = family;
	d.port = t;
	d.want = protocol;
	return deny(&d);
}

/*
 * Port 53: an answer from it names addresses (dns.h, names.rs). A tree that served DNS to
 * itself could make an allowed name stand for any address; agents do not serve DNS.
 */
SEC("lsm/socket_bind")
int BPF_PROG(enforce_bind, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	__u16 family, port;
	struct denial d = { .op = AG_DENY_BIND };

	if (ret)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	family = BPF_CORE_READ(address, sa_family);
	/* An IPv4 socket binds an AF_UNSPEC address as AF_INET (__inet_bind). */
	if (family == 0 && BPF_CORE_READ(sock, sk, __sk_common.skc_family) == AF_INET)
		family = AF_INET;
	if (family != AF_INET && family != AF_INET6)
		return 0;
	/* sin_port and sin6_port sit at the same offset. */
	port = bpf_ntohs(BPF_CORE_READ((struct sockaddr_in *)address, sin_port));
	if (port != 53)
		return 0;
	d.family = family;
	d.port = port;
	return deny(&d);
}

/* A pid a tree process names: one of the tree's (by the process map), or 0 (itself). */
static __always_inline bool pid_in_tree(int pid)
{
	__u32 k = pid < 0 ? -pid : pid;

	return pid == 0 || bpf_map_lookup_elem(&procs, &k) != NULL;
}

/*
 * SIGIO and friends: F_SETOWN makes the kernel signal the owner when the file is ready,
 * past task_kill (send_sigio checks file_send_sigiotask). A tree process may name only
 * its own tree as the owner.
 */
SEC("lsm/file_fcntl")
int BPF_PROG(enforce_fcntl, struct file *file, unsigned int cmd, unsigned long arg, int ret)
{
	struct { int type; int pid; } ex = {};
	int pid;

	if (ret)
		return ret;
	if (cmd != 8 /* F_SETOWN */ && cmd != 15 /* F_SETOWN_EX */)
		return 0;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	if (cmd == 8) {
		pid = (int)arg;
	} else {
		if (bpf_probe_read_user(&ex, sizeof(ex), (const void *)arg))
			return deny_simple(AG_DENY_TASK, 0);
		pid = ex.type == 2 /* F_OWNER_PGRP */ ? -ex.pid : ex.pid;
	}
	if (pid_in_tree(pid))
		return 0;
	return deny_simple(AG_DENY_TASK, pid < 0 ? -pid : pid);
}

/*
 * Limits and scheduling of processes outside the tree: an RLIMIT_NOFILE of 0 would keep
 * the watchdog from opening cgroup.kill, an RLIMIT_CPU of 1 s has the kernel kill
 * agentguard, a nice of 19 starves its reader. The tree may set its own.
 */
static __always_inline int check_target(struct task_struct *p)
{
	if (!in_scope(bpf_get_current_task_btf()) || in_scope(p))
		return 0;
	return deny_simple(AG_DENY_TASK, p->tgid);
}

SEC("lsm/task_setrlimit")
int BPF_PROG(enforce_setrlimit, struct task_struct *p, unsigned int resource, struct rlimit *new_rlim,
	     int ret)
{
	return ret ? ret : check_target(p);
}

SEC("lsm/task_setnice")
int BPF_PROG(enforce_setnice, struct task_struct *p, int nice, int ret)
{
	return ret ? ret : check_target(p);
}

SEC("lsm/task_setscheduler")
int BPF_PROG(enforce_setscheduler, struct task_struct *p, int ret)
{
	return ret ? ret : check_target(p);
}

SEC("lsm/task_setioprio")
int BPF_PROG(enforce_setioprio, struct task_struct *p, int ioprio, int ret)
{
	return ret ? ret : check_target(p);
}

/* Mounts, continued: pivot_root and umount remap or uncover paths. */
SEC("lsm/sb_pivotroot")
int BPF_PROG(enforce_pivotroot, const struct path *old_path, const struct path *new_path, int ret)
{
	if (ret)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	return deny_simple(AG_DENY_MOUNT, 0);
}

SEC("lsm/sb_umount")
int BPF_PROG(enforce_umount, struct vfsmount *mnt, int flags, int ret)
{
	if (ret)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	return deny_simple(AG_DENY_MOUNT, 0);
}

/*
 * Netlink's routing protocol is admitted for what name resolution asks (RTM_GET*: the
 * low two bits of the type are 2). A request that changes links, addresses or routes
 * (a tunnel to another host, a route for an allowed address through it) would carry
 * traffic past every socket check.
 */
SEC("lsm/netlink_send")
int BPF_PROG(enforce_netlink_send, struct sock *sk, struct sk_buff *skb, int ret)
{
	__u16 type = 0;
	unsigned char *data;

	if (ret)
		return ret;
	if (!in_scope(bpf_get_current_task_btf()))
		return 0;
	if (BPF_CORE_READ(sk, sk_protocol) != 0 /* NETLINK_ROUTE */)
		return 0;
	data = BPF_CORE_READ(skb, data);
	/* struct nlmsghdr: __u32 len, then __u16 type */
	if (bpf_probe_read_kernel(&type, sizeof(type), data + 4))
		return deny_simple(AG_DENY_SOCKET, 0);
	if (type < 16 /* NLMSG_MIN_TYPE: control messages */ || (type & 3) == 2)
		return 0;
	{
		struct denial d = { .op = AG_DENY_SOCKET, .family = AF_NETLINK, .port = type };

		return deny(&d);
	}
}
