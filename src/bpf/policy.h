/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The compiled profile, as enforce.bpf.c reads it: the one definition of the policy maps'
 * types, shared with src/enforce/compile.rs through the skeleton.
 *
 * A path rule is a glob over path components: a literal directory D (looked up by the
 * keyed hash of "/d1/d2/..."), then up to AG_SEGS segments, each a literal or one '*'
 * between a literal prefix and suffix, then optionally "any depth" (a trailing "**").
 * Rules that start with "**" (no literal directory) sit in a short list tried at every
 * depth. What a glob cannot say this way, the compiler refuses (enforce fails closed).
 */
#ifndef AGENTGUARD_POLICY_H
#define AGENTGUARD_POLICY_H

#define AG_SEGS 4		/* segments after the literal directory */
#define AG_SEG_LIT 30		/* bytes of a segment's prefix, and of its suffix */
#define AG_DIR_RULES 32		/* glob rules hanging off one directory */
#define AG_ANYWHERE 64		/* rules starting with "**" */
#define AG_NET_RULES 256
#define AG_DEPTH 32		/* path components the kernel walks; deeper is denied */
#define AG_PATHBUF 4096

/* Access bits: a path rule grants these. */
enum ag_access {
	AG_ACC_READ = 1 << 0,
	AG_ACC_WRITE = 1 << 1,
	AG_ACC_APPEND = 1 << 2,
	AG_ACC_CREATE = 1 << 3,
	AG_ACC_TRUNCATE = 1 << 4,
	AG_ACC_LIST = 1 << 5,
	AG_ACC_EXEC = 1 << 6,
	AG_ACC_DELETE = 1 << 7,
	AG_ACC_RENAME = 1 << 8,
	AG_ACC_CHMOD = 1 << 9,
	AG_ACC_MKDIR = 1 << 10,
	AG_ACC_LINK = 1 << 11,
	AG_ACC_SYMLINK = 1 << 12,
	AG_ACC_TIMES = 1 << 13,		/* utimes: setting a file's times */
};

/* A denial's rule (its arg[0]) when it is not one of the profile's rules. */
enum ag_rule_id {
	AG_RULE_NONE = 0xfffffffe,		/* no rule matched */
	AG_RULE_PROTECTED_SET = 0xffffffff,	/* a protected-set rule keeps it from learned ones */
};

/* Rule flags. */
enum ag_rule_flags {
	AG_RULE_HAND = 1 << 0,		/* written by hand: admits protected paths too */
	AG_RULE_TAIL_ANY = 1 << 1,	/* ends in "**": any further components */
	AG_RULE_PROTECTED = 1 << 2,	/* a rule of the protected set: its grant is what it
					 * leaves to learned rules (0 for a secret; reads for
					 * a persistence point, protected.rs Guard) */
};

struct ag_seg {
	__u8 star;		/* 0: literal (pre only); 1: pre*suf */
	__u8 plen;
	__u8 slen;
	__u8 pad;
	char pre[AG_SEG_LIT];
	char suf[AG_SEG_LIT];
};

struct ag_glob {
	__u32 grant;		/* enum ag_access */
	__u32 flags;		/* enum ag_rule_flags */
	__u32 nseg;
	__u32 id;		/* rule number, for denial events */
	struct ag_seg seg[AG_SEGS];
};

/* file_exact / exec_exact values, keyed by the keyed hash of the whole path. */
struct ag_exact {
	__u32 grant;
	__u32 flags;
	__u32 id;
	__u32 pad;
};

/* dir_rules values, keyed by the keyed hash of a directory: indices into `globs`. */
struct ag_dir {
	__u32 n;
	__u32 idx[AG_DIR_RULES];
};

struct ag_net_rule {
	__u16 family;		/* AF_INET, AF_INET6 (v4 rules also stored v4-mapped), AF_UNIX */
	__u16 sotype;		/* SOCK_STREAM, SOCK_DGRAM, 0 = any */
	__u16 port_lo;
	__u16 port_hi;
	__u32 prefixlen;	/* of addr, in bits; unix: 0 */
	__u32 id;
	__u8 addr[16];
	__u64 unix_hash;	/* AF_UNIX: keyed hash of the name's bytes (ag_unix_hash) */
};

#define AG_HASH_PRIME 0x100000001b3ULL

/* The keyed hash rules are found by, byte by byte (compile.rs, hash()). */
static __always_inline __u64 ag_mix(__u64 h, __u8 c)
{
	h = (h ^ c) * AG_HASH_PRIME;
	return h ^ (h >> 29);
}

/* sun_path's size: a unix socket's name is at most this long. */
#define AG_UNIX_NAME 108

/*
 * A unix socket's name as the kernel compares it: a path up to its first NUL, an abstract
 * name (a NUL first) by its whole length, NULs inside included, so "@a" and "@a\0" differ
 * here as they do in the kernel. `n` is the length after sun_family.
 */
static __always_inline __u64 ag_unix_hash(__u64 key, const __u8 *name, __u32 n)
{
	__u64 h = key;
	__u32 i;

	for (i = 0; i < AG_UNIX_NAME; i++) {
		if (i >= n)
			break;
		if (i > 0 && name[0] != 0 && name[i] == 0)
			break;
		h = ag_mix(h, name[i]);
	}
	return h;
}

/*
 * Whether an IP destination (v4 as v4-mapped) and port fall under a rule: its port range,
 * then its prefix. The one definition for enforce.bpf.c and egress.bpf.c.
 */
static __always_inline bool ag_net_rule_covers(const struct ag_net_rule *r, __u16 port,
					       const __u8 *addr)
{
	__u32 bits = r->prefixlen, b;

	if (port < r->port_lo || port > r->port_hi)
		return false;
	for (b = 0; b < 16; b++) {
		__u8 m;

		if (b * 8 >= bits)
			break;
		m = bits - b * 8 >= 8 ? 0xff : (__u8)(0xff << (8 - (bits - b * 8)));
		if ((addr[b] & m) != (r->addr[b] & m))
			return false;
	}
	return true;
}

/* `host` rules (egress by name, dns.h): at most this many, one bit each. */
#define AG_NAME_RULES 64

struct ag_name_rule {
	__u16 sotype;		/* SOCK_STREAM, SOCK_DGRAM, 0 = any */
	__u16 port_lo;
	__u16 port_hi;
	__u8 private_ok;	/* loopback, link-local and metadata answers allowed too */
	__u8 pad;
	__u32 id;
	__u32 pad2;
};

/* An address as dns.h keys it: v4 as v4-mapped v6. */
struct ag_addr {
	__u8 addr[16];
};

/* Why something was denied. */
enum ag_deny_op {
	AG_DENY_OPEN = 1,
	AG_DENY_EXEC = 2,
	AG_DENY_CONNECT = 3,
	AG_DENY_PTRACE = 4,
	AG_DENY_MODULE = 5,
	AG_DENY_BPF = 6,
	AG_DENY_MOUNT = 7,
	AG_DENY_UNCHECKABLE = 8,	/* path too deep or long for the kernel to check */
	AG_DENY_PATH = 9,		/* unlink, rmdir, mkdir, rename, link, symlink, chmod, chown, truncate */
	AG_DENY_SIGNAL = 10,		/* a signal to a process outside the tree; want = pid, port = signal */
	AG_DENY_CLONE = 11,		/* want: 1 into another cgroup, 2 the process map is full */
	AG_DENY_IOCTL = 12,		/* want = the request (TIOCSTI, TIOCLINUX) */
	AG_DENY_SOCKET = 13,		/* family, port = type, want = protocol */
	AG_DENY_DEVICE = 14,		/* mknod of a device; want = dev, port = S_IFCHR or S_IFBLK */
	AG_DENY_XATTR = 15,		/* want: 1 security.*, 2 trusted.* */
	AG_DENY_BIND = 16,		/* binding port 53 */
	AG_DENY_TASK = 17,		/* limits, scheduling or signal owner of a process outside the tree; want = pid */
	AG_DENY_HTTP = 18,		/* an HTTP request (endpoint.bpf.c); rule = enum ag_http_class; strings: service, method, path */
	AG_DENY_FASTOPEN = 19,		/* a TCP send endpoint.bpf.c could not follow; want: 1 Fast Open, 2 urgent data, 3 while connecting, 4 kernel TLS */
};

/*
 * HTTP endpoints (endpoint.bpf.c): a request is looked up by its key as the profile spells
 * it (src/profile/http.rs): the service "host:port" from the Host header, the method upper
 * case, the path template ("/api/tickets/{id}"). Each field NUL-padded; a field longer
 * than its buffer makes the request match nothing.
 */
#define AG_HTTP_SERVICE_LEN 64
#define AG_HTTP_METHOD_LEN 16
#define AG_HTTP_PATH_LEN 172
#define AG_HTTP_ENDPOINTS 16384

/* An AG_HTTP_ENDPOINT key's value: bits. */
enum ag_http_value {
	AG_HTTP_COVERED = 1,
	/* The endpoint switched protocols in a run the profile learned from (101 Switching
	 * Protocols, or a tunnel after CONNECT): a request to it that asks to switch leaves
	 * the connection to what follows. */
	AG_HTTP_SWITCHES = 2,
};

enum ag_http_kind {
	AG_HTTP_ENDPOINT = 1,	/* service, method, path: an endpoint the profile admits */
	AG_HTTP_SERVICE = 2,	/* service only: a service of the profile; value 1 if it writes there */
	AG_HTTP_LLM = 3,	/* service: an [[llm]] host as the Host header names it */
};

struct ag_http_key {
	__u32 kind;		/* enum ag_http_kind */
	char service[AG_HTTP_SERVICE_LEN];
	char method[AG_HTTP_METHOD_LEN];
	char path[AG_HTTP_PATH_LEN];
};

/* What an uncovered request is, as diff rates it (src/diff/rules.rs); deny_mask has a
 * bit per class the level denies. */
enum ag_http_class {
	AG_HTTP_NEW_SERVICE = 1,	/* http-new-service */
	AG_HTTP_WRITE_READ_ONLY = 2,	/* http-write-read-only */
	AG_HTTP_NEW_WRITE = 3,		/* http-new-write */
	AG_HTTP_NEW_ENDPOINT = 4,	/* http-new-endpoint */
	AG_HTTP_LLM_NEW_HOST = 5,	/* llm-new-host */
	AG_HTTP_MALFORMED = 6,		/* not HTTP/1.x the kernel can follow: always denied */
};

#endif
