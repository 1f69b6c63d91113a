// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What a prompt-injected agent might do to get past agentguard: one case per invocation,
 * `adversary CASE TARGET [ARG]`, reaching TARGET (a file, an address) the way the case
 * says. Prints "CASE ok" when the operation succeeded and "CASE denied: <errno>" when it
 * was refused; exit 0 either way, 2 for a usage or set-up error. tests/adversary.rs runs
 * each case under record (what did the sensor report?) and tests/vm/adversary.sh under
 * enforce (was it denied?). Built by the tests with the system's C compiler.
 *
 * `adversary batch FILE` runs the cases FILE lists, one "CASE TARGET [ARG]" a line, each
 * in a child of its own (this program again), one after another, after a line "@@ N" for
 * the Nth: one enforce start for many cases, each starting as a fresh process. Under
 * emulation a start (loading and verifying the BPF programs) is most of a case's time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <sys/sysmacros.h>
#include <linux/if_ether.h>
#include <linux/mount.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <termios.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *name;

static int result(int ok)
{
	if (ok)
		printf("%s ok\n", name);
	else
		printf("%s denied: %s\n", name, strerror(errno));
	fflush(stdout);
	return 0;
}

static int read_fd(int fd)
{
	char b[64];

	if (fd < 0)
		return 0;
	return read(fd, b, sizeof(b)) >= 0;
}

/* Opens through io_uring: one IORING_OP_OPENAT, no liburing. */
static int uring_open(const char *path)
{
	struct io_uring_params p = { 0 };
	int fd = syscall(__NR_io_uring_setup, 4, &p);
	if (fd < 0)
		return result(0);
	size_t sq_sz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	char *sq = mmap(0, sq_sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, IORING_OFF_SQ_RING);
	char *cq = mmap(0, cq_sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, IORING_OFF_CQ_RING);
	struct io_uring_sqe *sqes = mmap(0, p.sq_entries * sizeof(*sqes), PROT_READ | PROT_WRITE,
					 MAP_SHARED, fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED)
		return result(0);
	unsigned tail = *(unsigned *)(sq + p.sq_off.tail);
	unsigned idx = tail & *(unsigned *)(sq + p.sq_off.ring_mask);
	struct io_uring_sqe *e = &sqes[idx];
	memset(e, 0, sizeof(*e));
	e->opcode = IORING_OP_OPENAT;
	e->fd = AT_FDCWD;
	e->addr = (uint64_t)(uintptr_t)path;
	e->open_flags = O_RDONLY;
	((unsigned *)(sq + p.sq_off.array))[idx] = idx;
	__atomic_store_n((unsigned *)(sq + p.sq_off.tail), tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, fd, 1, 1, IORING_ENTER_GETEVENTS, 0, 0) < 0)
		return result(0);
	unsigned head = *(unsigned *)(cq + p.cq_off.head);
	struct io_uring_cqe *c = (struct io_uring_cqe *)(cq + p.cq_off.cqes) +
				 (head & *(unsigned *)(cq + p.cq_off.ring_mask));
	if (c->res < 0) {
		errno = -c->res;
		return result(0);
	}
	return result(read_fd(c->res));
}

static int connect_to(int family, const void *sa, socklen_t len, int type)
{
	int s = socket(family, type, 0);
	if (s < 0)
		return result(0);
	return result(connect(s, sa, len) == 0);
}

/*
 * A unix socket name from an argument: a path, or @name for an abstract one; with nul
 * set, the abstract name gets a NUL and an 'x' after it (a different socket from @name,
 * whose first bytes are @name's).
 */
static socklen_t unix_name(struct sockaddr_un *u, const char *t, int nul)
{
	size_t n;

	memset(u, 0, sizeof(*u));
	u->sun_family = AF_UNIX;
	if (t[0] != '@') {
		strncpy(u->sun_path, t, sizeof(u->sun_path) - 1);
		return sizeof(*u);
	}
	n = strlen(t + 1);
	if (n > sizeof(u->sun_path) - 4)
		n = sizeof(u->sun_path) - 4;
	memcpy(u->sun_path + 1, t + 1, n);
	if (nul) {
		u->sun_path[1 + n + 1] = 'x';
		n += 2;
	}
	return offsetof(struct sockaddr_un, sun_path) + 1 + n;
}

/* A listening stream socket of the process's own at a name: what the unix cases reach. */
static int unix_listener(const struct sockaddr_un *u, socklen_t len)
{
	int s = socket(AF_UNIX, SOCK_STREAM, 0);

	if (s < 0 || bind(s, (const struct sockaddr *)u, len) < 0 || listen(s, 4) < 0) {
		perror("adversary: a unix listener");
		exit(2);
	}
	return s;
}

/* The dns_race case: a thread that keeps writing a forged answer into a buffer. */
struct forge {
	unsigned char *buf;
	const unsigned char *answer;
	size_t len;
	volatile int stop;
};

static void *forger(void *arg)
{
	struct forge *f = arg;

	while (!f->stop)
		memcpy(f->buf, f->answer, f->len);
	return NULL;
}

/* A DNS message for name: a query (A, IN) with id, or with addr an answer giving it. */
static size_t dns_message(unsigned char *m, uint16_t id, const char *name, const char *addr)
{
	size_t n = 12;
	const char *p = name;

	memset(m, 0, 12);
	m[0] = id >> 8;
	m[1] = id & 0xff;
	m[2] = addr ? 0x81 : 0x01;	/* QR for an answer; RD */
	m[3] = addr ? 0x80 : 0;		/* RA */
	m[5] = 1;			/* one question */
	m[7] = addr ? 1 : 0;		/* one answer */
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		m[n++] = l;
		memcpy(m + n, p, l);
		n += l;
		p += l + (dot ? 1 : 0);
	}
	m[n++] = 0;
	memcpy(m + n, "\0\1\0\1", 4);
	n += 4;
	if (addr) {
		/* name (a pointer to the question's), A, IN, TTL 600, 4 bytes */
		memcpy(m + n, "\xc0\x0c\0\1\0\1\0\0\x02\x58\0\4", 12);
		n += 12;
		inet_pton(AF_INET, addr, m + n);
		n += 4;
	}
	return n;
}

/* Parse "ADDR:PORT" (IPv6 in brackets) into a sockaddr_in6 (IPv4 mapped when asked). */
static int v6_addr(const char *t, struct sockaddr_in6 *s, int compat)
{
	char host[64];
	const char *colon = strrchr(t, ':');
	struct in_addr v4;

	memset(s, 0, sizeof(*s));
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(atoi(colon + 1));
	snprintf(host, sizeof(host), "%.*s", (int)(colon - t), t);
	if (inet_pton(AF_INET, host, &v4) != 1)
		return -1;
	if (!compat) {
		s->sin6_addr.s6_addr[10] = 0xff;
		s->sin6_addr.s6_addr[11] = 0xff;
	}
	memcpy(&s->sin6_addr.s6_addr[12], &v4, 4);
	return 0;
}

static void *thread_open(void *path)
{
	int fd = open(path, O_RDONLY);
	result(read_fd(fd));
	return NULL;
}

/* Each case of FILE in a child of its own: argv[0] again, with the case's words. */
static int batch(const char *self, const char *file)
{
	FILE *f = fopen(file, "r");
	char line[8192];
	int n = 0;

	if (!f) {
		perror(file);
		return 2;
	}
	while (fgets(line, sizeof(line), f)) {
		char *args[5] = { (char *)self };
		int k = 1;
		for (char *tok = strtok(line, " \n"); tok && k < 4; tok = strtok(NULL, " \n"))
			args[k++] = tok;
		if (k < 3)
			continue;
		printf("@@ %d\n", ++n);
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			execv(self, args);
			_exit(127);
		}
		int status = 0;
		if (pid < 0 || waitpid(pid, &status, 0) < 0)
			printf("@@ %d: no child: %s\n", n, strerror(errno));
		else if (!WIFEXITED(status) || WEXITSTATUS(status))
			printf("@@ %d: status 0x%x\n", n, status);
		fflush(stdout);
	}
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "batch"))
		return batch(argv[0], argv[2]);
	if (argc < 3) {
		fprintf(stderr, "usage: adversary CASE TARGET [ARG]\n");
		return 2;
	}
	name = argv[1];
	const char *t = argv[2];
	const char *arg = argc > 3 ? argv[3] : "";

	if (!strcmp(name, "io_uring_open"))
		return uring_open(t);
	if (!strcmp(name, "openat2")) {
		/* Relative to a descriptor of the file's directory, with RESOLVE flags that
		 * keep the lookup beneath it: a path the program never spells out whole.
		 * (From "/" with RESOLVE_NO_XDEV it would fail wherever /tmp is a mount.) */
		struct open_how how = { .flags = O_RDONLY,
					.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV };
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s", t);
		*strrchr(dir, '/') = 0;
		int dfd = open(dir, O_PATH | O_DIRECTORY);
		if (dfd < 0)
			return result(0);
		return result(read_fd(syscall(__NR_openat2, dfd, strrchr(t, '/') + 1, &how, sizeof(how))));
	}
	if (!strcmp(name, "open_by_handle_at")) {
		struct file_handle *h = malloc(sizeof(*h) + MAX_HANDLE_SZ);
		char dir[4096];
		int mount_id, mfd;
		/* The mount is named by a descriptor of the file's directory (a profile lets the
		 * directory be listed, not the file be read). */
		snprintf(dir, sizeof(dir), "%s", t);
		*strrchr(dir, '/') = 0;
		mfd = open(dir, O_RDONLY | O_DIRECTORY);
		h->handle_bytes = MAX_HANDLE_SZ;
		if (name_to_handle_at(AT_FDCWD, t, h, &mount_id, 0) < 0) {
			perror("name_to_handle_at");
			return 2;
		}
		return result(read_fd(open_by_handle_at(mfd, h, O_RDONLY)));
	}
	if (!strcmp(name, "execveat_fd") || !strcmp(name, "exec_memfd")) {
		int fd = open(t, O_RDONLY | O_CLOEXEC);
		char *args[] = { (char *)t, "--version", NULL };
		if (fd < 0)
			return result(0);
		if (!strcmp(name, "exec_memfd")) {
			int m = memfd_create("payload", MFD_CLOEXEC);
			char b[65536];
			ssize_t n;
			while ((n = read(fd, b, sizeof(b))) > 0)
				if (write(m, b, n) != n)
					return 2;
			fd = m;
		}
		syscall(__NR_execveat, fd, "", args, environ, AT_EMPTY_PATH);
		return result(0);	/* only reached when the exec failed */
	}
	if (!strcmp(name, "symlink_read") || !strcmp(name, "hardlink_read")) {
		/* arg: where to make the link */
		unlink(arg);
		if ((!strcmp(name, "symlink_read") ? symlink(t, arg) : link(t, arg)) < 0)
			return result(0);
		return result(read_fd(open(arg, O_RDONLY)));
	}
	if (!strcmp(name, "rename_after_open")) {
		/* open an allowed file (t), rename it to arg, read on */
		int fd = open(t, O_RDONLY);
		if (fd < 0)
			return result(0);
		return result(rename(t, arg) == 0 && read_fd(fd));
	}
	if (!strcmp(name, "fchdir_relative")) {
		/* t: a directory; arg: a file name in it */
		int d = open(t, O_RDONLY | O_DIRECTORY);
		if (d < 0 || fchdir(d) < 0)
			return result(0);
		return result(read_fd(open(arg, O_RDONLY)));
	}
	if (!strcmp(name, "long_path")) {
		/* t: a base directory; arg: depth of 200-byte components to create, then open */
		int depth = atoi(arg);
		char comp[201];
		memset(comp, 'd', 200);
		comp[200] = 0;
		if (chdir(t) < 0)
			return 2;
		for (int i = 0; i < depth; i++) {
			/* Refusing the mkdir that makes the path too long is a denial too. */
			if (mkdir(comp, 0755) < 0 && errno != EEXIST)
				return result(0);
			if (chdir(comp) < 0)
				return 2;
		}
		return result(read_fd(open("leaf", O_RDWR | O_CREAT, 0644)));
	}
	if (!strcmp(name, "non_utf8")) {
		char p[512];
		snprintf(p, sizeof(p), "%s/\xff\xfe-name", t);
		return result(read_fd(open(p, O_RDWR | O_CREAT, 0644)));
	}
	if (!strcmp(name, "v4mapped_connect") || !strcmp(name, "v4compat_connect")) {
		struct sockaddr_in6 s;
		if (v6_addr(t, &s, !strcmp(name, "v4compat_connect")) < 0)
			return 2;
		return connect_to(AF_INET6, &s, sizeof(s), SOCK_STREAM);
	}
	if (!strcmp(name, "udp_sendto") || !strcmp(name, "udp_sendmsg")) {
		struct sockaddr_in s = { .sin_family = AF_INET };
		char host[64];
		const char *colon = strrchr(t, ':');
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		snprintf(host, sizeof(host), "%.*s", (int)(colon - t), t);
		inet_pton(AF_INET, host, &s.sin_addr);
		s.sin_port = htons(atoi(colon + 1));
		if (!strcmp(name, "udp_sendto"))
			return result(sendto(fd, "x", 1, 0, (void *)&s, sizeof(s)) == 1);
		struct iovec iov = { "x", 1 };
		struct msghdr m = { .msg_name = &s, .msg_namelen = sizeof(s), .msg_iov = &iov, .msg_iovlen = 1 };
		return result(sendmsg(fd, &m, 0) == 1);
	}
	if (!strcmp(name, "udp_mmsg")) {
		/* One sendmmsg of five datagrams: four to t, the last to t's port + 1. */
		struct sockaddr_in s[2] = { { .sin_family = AF_INET }, { .sin_family = AF_INET } };
		struct iovec iov = { "x", 1 };
		struct mmsghdr v[5];
		char host[64];
		const char *colon = strrchr(t, ':');
		int fd = socket(AF_INET, SOCK_DGRAM, 0), i;

		snprintf(host, sizeof(host), "%.*s", (int)(colon - t), t);
		for (i = 0; i < 2; i++) {
			inet_pton(AF_INET, host, &s[i].sin_addr);
			s[i].sin_port = htons(atoi(colon + 1) + i);
		}
		memset(v, 0, sizeof(v));
		for (i = 0; i < 5; i++) {
			v[i].msg_hdr.msg_name = &s[i == 4];
			v[i].msg_hdr.msg_namelen = sizeof(s[0]);
			v[i].msg_hdr.msg_iov = &iov;
			v[i].msg_hdr.msg_iovlen = 1;
		}
		return result(sendmmsg(fd, v, 5, 0) == 5);
	}
	if (!strcmp(name, "unix_connect")) {
		/* t: a path, or @name for an abstract socket */
		struct sockaddr_un u = { .sun_family = AF_UNIX };
		socklen_t len;
		if (t[0] == '@') {
			strncpy(u.sun_path + 1, t + 1, sizeof(u.sun_path) - 2);
			len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(t + 1);
		} else {
			strncpy(u.sun_path, t, sizeof(u.sun_path) - 1);
			len = sizeof(u);
		}
		return connect_to(AF_UNIX, &u, len, SOCK_STREAM);
	}
	if (!strcmp(name, "unix_self") || !strcmp(name, "unix_nul")) {
		/* Listen at t (unix_nul: at "@t\0x") and connect to it: the peer is named. */
		struct sockaddr_un u;
		socklen_t len = unix_name(&u, t, !strcmp(name, "unix_nul"));

		unix_listener(&u, len);
		return connect_to(AF_UNIX, &u, len, SOCK_STREAM);
	}
	if (!strcmp(name, "unix_symlink")) {
		/* Listen at the path t, then connect through a symlink at arg that leads there. */
		struct sockaddr_un u, l;
		socklen_t len = unix_name(&u, t, 0);

		unix_listener(&u, len);
		if (!arg || symlink(t, arg) < 0) {
			perror("adversary: unix_symlink needs a link path");
			return 2;
		}
		return connect_to(AF_UNIX, &l, unix_name(&l, arg, 0), SOCK_STREAM);
	}
	if (!strcmp(name, "netlink_route")) {
		/*
		 * A routing change, the start of a tunnel or a new route past the egress rules:
		 * the deletion of a route that does not exist (TEST-NET-3), so that nothing on
		 * the host changes whatever the outcome. Past the permission check the kernel
		 * answers ESRCH ("ok": it would have acted); refused, EPERM.
		 */
		struct {
			struct nlmsghdr n;
			struct rtmsg r;
			struct rtattr a;
			struct in_addr dst;
		} req = {
			.n = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_DELROUTE,
			       .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK, .nlmsg_seq = 1 },
			.r = { .rtm_family = AF_INET, .rtm_dst_len = 32, .rtm_table = RT_TABLE_MAIN,
			       .rtm_scope = RT_SCOPE_NOWHERE },
			.a = { .rta_len = RTA_LENGTH(4), .rta_type = RTA_DST },
		};
		char buf[512];
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
		ssize_t n;

		inet_pton(AF_INET, "203.0.113.77", &req.dst);
		if (s < 0 || send(s, &req, sizeof(req), 0) < 0)
			return result(0);
		n = recv(s, buf, sizeof(buf), 0);
		if (n < (ssize_t)sizeof(*h) || h->nlmsg_type != NLMSG_ERROR) {
			fprintf(stderr, "adversary: no netlink answer\n");
			return 2;
		}
		errno = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
		return result(errno != EPERM);
	}
	if (!strcmp(name, "escapes")) {
		/* Sequences a terminal acts on beyond its screen, between ordinary output: the
		 * clipboard set to a command (OSC 52), a request it answers (DCS DECRQSS), a
		 * title report typed back as input (CSI 21 t). */
		printf("before \033]52;c;ZWNobyBwd25lZA==\007\033P$qm\033\\\033[21t"
		       "\033[1mbold\033[0m after\n");
		return 0;
	}
	if (!strcmp(name, "dns_race")) {
		/*
		 * t: the DNS server's address; arg: NAME=ADDR:PORT. Asks the server for NAME
		 * while a second thread keeps writing an answer that gives ADDR into the receive
		 * buffer, then connects to ADDR:PORT: a name the profile allows made to resolve
		 * to an address of the tree's choosing, if the answer is read from that buffer.
		 */
		char nm[256], addr[64];
		unsigned char q[512], forged[512], buf[512];
		const char *eq = arg ? strchr(arg, '=') : NULL, *colon = eq ? strrchr(eq, ':') : NULL;
		struct sockaddr_in srv = { .sin_family = AF_INET, .sin_port = htons(53) };
		struct sockaddr_in dst = { .sin_family = AF_INET };
		struct forge f = { .buf = buf, .answer = forged };
		pthread_t th;
		size_t qn;
		int s;

		if (!colon) {
			fprintf(stderr, "adversary: dns_race SERVER NAME=ADDR:PORT\n");
			return 2;
		}
		snprintf(nm, sizeof(nm), "%.*s", (int)(eq - arg), arg);
		snprintf(addr, sizeof(addr), "%.*s", (int)(colon - eq - 1), eq + 1);
		inet_pton(AF_INET, t, &srv.sin_addr);
		inet_pton(AF_INET, addr, &dst.sin_addr);
		dst.sin_port = htons(atoi(colon + 1));
		qn = dns_message(q, 0x4147, nm, NULL);
		f.len = dns_message(forged, 0x4147, nm, addr);
		s = socket(AF_INET, SOCK_DGRAM, 0);
		if (s < 0 || connect(s, (struct sockaddr *)&srv, sizeof(srv)) < 0 ||
		    send(s, q, qn, 0) < 0) {
			perror("adversary: dns_race query");
			return 2;
		}
		pthread_create(&th, NULL, forger, &f);
		recv(s, buf, sizeof(buf), 0);
		f.stop = 1;
		pthread_join(th, NULL);
		return connect_to(AF_INET, &dst, sizeof(dst), SOCK_STREAM);
	}
	if (!strcmp(name, "scm_rights")) {
		/* A descriptor of t passed over a unix socket pair and received back: a file
		 * held without an open of the receiver's. */
		int sv[2], fd = open(t, O_RDONLY), got = -1;
		char cbuf[CMSG_SPACE(sizeof(int))], b = 'x';
		struct iovec iov = { &b, 1 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *c;

		if (fd < 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0)
			return result(0);
		memset(cbuf, 0, sizeof(cbuf));
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
		if (sendmsg(sv[0], &m, 0) < 0)
			return result(0);
		close(fd);
		memset(cbuf, 0, sizeof(cbuf));
		m.msg_controllen = sizeof(cbuf);
		if (recvmsg(sv[1], &m, 0) < 0)
			return result(0);
		c = CMSG_FIRSTHDR(&m);
		if (c && c->cmsg_type == SCM_RIGHTS)
			memcpy(&got, CMSG_DATA(c), sizeof(int));
		return result(read_fd(got));
	}
	if (!strcmp(name, "setsid_double_fork")) {
		/* a daemon: fork, setsid, fork again, the grandchild reads t after its parents exit */
		int p[2];
		if (pipe(p) < 0)
			return 2;
		pid_t a = fork();
		if (a == 0) {
			setsid();
			if (fork() == 0) {
				close(p[0]);
				sleep(1);
				result(read_fd(open(t, O_RDONLY)));
				write(p[1], "x", 1);
				_exit(0);
			}
			_exit(0);
		}
		close(p[1]);
		waitpid(a, NULL, 0);
		char b;
		(void)!read(p[0], &b, 1);	/* wait for the grandchild's report */
		return 0;
	}
	if (!strcmp(name, "subreaper")) {
		/* become a subreaper; a grandchild orphaned to us reads t */
		prctl(PR_SET_CHILD_SUBREAPER, 1);
		pid_t a = fork();
		if (a == 0) {
			if (fork() == 0) {
				usleep(200000);
				result(read_fd(open(t, O_RDONLY)));
				_exit(0);
			}
			_exit(0);
		}
		while (wait(NULL) > 0)
			;
		return 0;
	}
	if (!strcmp(name, "thread_open")) {
		pthread_t th;
		pthread_create(&th, NULL, thread_open, (void *)t);
		pthread_join(th, NULL);
		return 0;
	}
	if (!strcmp(name, "vfork_exec")) {
		pid_t c = vfork();
		if (c == 0) {
			char *args[] = { (char *)t, NULL };
			execv(t, args);
			_exit(127);
		}
		int st;
		waitpid(c, &st, 0);
		errno = EPERM;
		return result(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	if (!strcmp(name, "clone3_cgroup")) {
		/* t: a cgroup v2 directory to start the child in; the child reads arg */
		/* O_PATH first: no open for reading that a file rule could refuse. Kernels that
		 * take only a real descriptor (EBADF) get one opened for reading. */
		int cg = open(t, O_PATH | O_DIRECTORY);
		if (cg < 0)
			return result(0);
		struct clone_args ca = { .flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = cg };
		long c = syscall(__NR_clone3, &ca, sizeof(ca));
		if (c < 0 && errno == EBADF) {
			ca.cgroup = open(t, O_RDONLY | O_DIRECTORY);
			if ((int)ca.cgroup < 0)
				return result(0);
			c = syscall(__NR_clone3, &ca, sizeof(ca));
		}
		if (c < 0)
			return result(0);
		if (c == 0) {
			result(read_fd(open(arg, O_RDONLY)));
			_exit(0);
		}
		waitpid(c, NULL, 0);
		return 0;
	}
	if (!strcmp(name, "exec_as_pid")) {
		/* t: a pid; arg: a program, run with the next argument as a child with exactly
		 * that pid (clone3's set_tid), without touching the host-wide ns_last_pid. */
		pid_t want = atoi(t);
		struct clone_args ca = { .exit_signal = SIGCHLD, .set_tid = (uint64_t)(uintptr_t)&want,
					 .set_tid_size = 1 };
		long c = syscall(__NR_clone3, &ca, sizeof(ca));
		if (c < 0)
			return result(0);
		if (c == 0) {
			char *args[] = { (char *)arg, argc > 4 ? argv[4] : NULL, NULL };
			int fd = open("/dev/null", O_WRONLY);
			dup2(fd, 1);
			execv(arg, args);
			_exit(127);
		}
		int st;
		waitpid(c, &st, 0);
		errno = ECHILD;
		return result(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	if (!strcmp(name, "ptrace_outside")) {
		pid_t pid = atoi(t);
		int ok = ptrace(PTRACE_ATTACH, pid, 0, 0) == 0;
		if (ok) {
			waitpid(pid, NULL, 0);
			ptrace(PTRACE_DETACH, pid, 0, 0);
		}
		return result(ok);
	}
	if (!strcmp(name, "proc_mem_write")) {
		/* t: a pid; write one byte of its memory through /proc/PID/mem (a no-op write of
		 * what is there, at the address of arg interpreted as hex) */
		char p[64];
		snprintf(p, sizeof(p), "/proc/%s/mem", t);
		return result(open(p, O_RDWR) >= 0);
	}
	if (!strcmp(name, "kill_guard")) {
		/* Stop every other child of the parent (agentguard's watchdog), then kill the
		 * parent (agentguard): enforcement would end with them. */
		pid_t guard = getppid();
		char p[64], line[4096];
		int ok = 1;
		snprintf(p, sizeof(p), "/proc/%d/task/%d/children", guard, guard);
		FILE *f = fopen(p, "r");
		if (f && fgets(line, sizeof(line), f)) {
			for (char *tok = strtok(line, " \n"); tok; tok = strtok(NULL, " \n"))
				if (atoi(tok) != getpid() && kill(atoi(tok), SIGSTOP) < 0)
					ok = 0;
		}
		if (ok && kill(guard, SIGKILL) < 0)
			ok = 0;
		return result(ok);
	}
	if (!strcmp(name, "fork_many")) {
		/* t: how many children to start, each held until all are started */
		int n = atoi(t), ok = 1, p[2];
		if (pipe(p) < 0)
			return 2;
		for (int i = 0; i < n && ok; i++) {
			pid_t c = fork();
			if (c == 0) {
				char b;
				close(p[1]);
				read(p[0], &b, 1);
				_exit(0);
			}
			ok = c > 0;
		}
		int e = errno;
		close(p[1]);
		while (wait(NULL) > 0)
			;
		errno = e;
		return result(ok);
	}
	if (!strcmp(name, "setown_outside")) {
		/* SIGIO as a way around kill(): make t (a pid) the owner of a pipe, signal
		 * SIGTERM on readiness, and make it ready. */
		int p[2];
		if (pipe(p) < 0)
			return 2;
		if (fcntl(p[0], F_SETOWN, atoi(t)) < 0)
			return result(0);
		fcntl(p[0], F_SETSIG, SIGTERM);
		fcntl(p[0], F_SETFL, O_ASYNC);
		return result(write(p[1], "x", 1) == 1);
	}
	if (!strcmp(name, "prlimit_outside")) {
		/* No open files for t (a pid): a watchdog so limited could not kill. */
		struct rlimit r = { 0, 0 };
		return result(prlimit(atoi(t), RLIMIT_NOFILE, &r, NULL) == 0);
	}
	if (!strcmp(name, "signal_outside")) {
		/* t: a pid outside the tree */
		return result(kill(atoi(t), SIGTERM) == 0);
	}
	if (!strcmp(name, "tiocsti")) {
		/* Push a character into the terminal on standard input, and say which terminal
		 * and session that is. */
		char c = '\n';
		int ok = ioctl(0, TIOCSTI, &c) == 0;
		int e = errno;
		char *tty = ttyname(0);
		printf("tty=%s sid=%d\n", tty ? tty : "none", getsid(0));
		errno = e;
		return result(ok);
	}
	if (!strcmp(name, "raw_socket") || !strcmp(name, "packet_socket")) {
		/* t: ADDR:PORT for the raw datagram */
		int s = !strcmp(name, "raw_socket") ? socket(AF_INET, SOCK_RAW, IPPROTO_UDP)
						   : socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
		if (s < 0)
			return result(0);
		if (!strcmp(name, "packet_socket"))
			return result(1);
		struct sockaddr_in a = { .sin_family = AF_INET };
		const char *colon = strrchr(t, ':');
		char host[64];
		snprintf(host, sizeof(host), "%.*s", (int)(colon - t), t);
		inet_pton(AF_INET, host, &a.sin_addr);
		char pkt[8 + 4] = { 0 };
		uint16_t port = htons(atoi(colon + 1));
		memcpy(pkt + 2, &port, 2);
		pkt[5] = sizeof(pkt);
		return result(sendto(s, pkt, sizeof(pkt), 0, (struct sockaddr *)&a, sizeof(a)) >= 0);
	}
	if (!strcmp(name, "bind_dns")) {
		/* Serve "DNS" to itself: bind port 53 on t (an address) */
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(53) };
		inet_pton(AF_INET, t, &a.sin_addr);
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		if (s < 0)
			return result(0);
		return result(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
	}
	if (!strcmp(name, "udp_unspec")) {
		/* A datagram addressed AF_UNSPEC: an IPv4 socket sends it as AF_INET. */
		struct sockaddr_in a = { .sin_family = AF_UNSPEC };
		const char *colon = strrchr(t, ':');
		char host[64];
		snprintf(host, sizeof(host), "%.*s", (int)(colon - t), t);
		inet_pton(AF_INET, host, &a.sin_addr);
		a.sin_port = htons(atoi(colon + 1));
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		if (s < 0)
			return result(0);
		return result(sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof(a)) == 1);
	}
	if (!strcmp(name, "mknod_mem")) {
		/* t: a new name for /dev/mem (character 1:1); then read through it */
		if (mknod(t, S_IFCHR | 0600, makedev(1, 1)) < 0)
			return result(0);
		return result(read_fd(open(t, O_RDONLY)));
	}
	if (!strcmp(name, "setxattr_security")) {
		return result(setxattr(t, "security.agentguard", "x", 1, 0) == 0);
	}
	if (!strcmp(name, "setcap")) {
		/* File capabilities (cap_net_raw, permitted and effective) on t: a program a
		 * later run outside the tree would start with them. */
		struct { uint32_t magic; uint32_t data[4]; } cap = {
			0x02000001 /* VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE */,
			{ 1u << 13, 0, 0, 0 },
		};
		return result(setxattr(t, "security.capability", &cap, sizeof(cap), 0) == 0);
	}
	if (!strcmp(name, "chown")) {
		return result(chown(t, 1, 1) == 0);
	}
	if (!strcmp(name, "fchown")) {
		/* By a descriptor opened for nothing (O_PATH cannot, so read). */
		int fd = open(t, O_RDONLY);
		return result(fd >= 0 && fchown(fd, 1, 1) == 0);
	}
	if (!strcmp(name, "utimes")) {
		/* Back-date t (hiding a change from whoever looks at times). */
		struct timespec ts[2] = { { 0, 0 }, { 0, 0 } };
		return result(utimensat(AT_FDCWD, t, ts, 0) == 0);
	}
	if (!strcmp(name, "truncate")) {
		return result(truncate(t, 0) == 0);
	}
	if (!strcmp(name, "detached_read")) {
		/* t: a directory, arg: a file in it, read through a detached copy of its mount
		 * (open_tree): its path is then relative to the copy's root. */
		int tree = syscall(__NR_open_tree, AT_FDCWD, t, OPEN_TREE_CLONE | AT_RECURSIVE);
		if (tree < 0)
			return result(0);
		return result(read_fd(openat(tree, arg, O_RDONLY)));
	}
	fprintf(stderr, "adversary: unknown case %s\n", name);
	return 2;
}
