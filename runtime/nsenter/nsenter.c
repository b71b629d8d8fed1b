// Stage 0 of berth's container init: joins and creates namespaces while the
// process is still single-threaded, before the Go runtime starts.
//
// The kernel refuses setns(2) into a user or mount namespace from a
// multi-threaded process, and a new PID or time namespace only applies to
// children created afterwards. The Go runtime starts threads before main, so
// both jobs must happen here, in a constructor that runs before it.
//
// The constructor does nothing unless _BERTH_INITPIPE names a file descriptor.
// Over that socket the runtime sends a bootstrap message of text lines, all
// in one write, and nothing more until this process reports back:
//
//	join <type> <path>        join the namespace at path (user first)
//	clone <flags>             namespaces to create (CLONE_NEW* bits, decimal)
//	timens <clock> <s> <ns>   an offset for the new time namespace
//	procfs <fd>               the child opens a procfs context (fsopen) at fd
//	cgroup-later              the cgroup lines come in a second message
//	end
//
// With cgroup-later (no new user namespace: in one, the host's cgroup files
// are not writable), the runtime creates the cgroup while this process
// starts and makes the namespaces, and sends a second message of "cgroup"
// lines and "end" once it exists; a new cgroup namespace is made after the
// cgroup is joined, so that its root is the container's cgroup.
//
// The order of work is the one the kernel requires: join the user namespace
// (or create one and wait while the runtime writes its id maps), join the
// other namespaces, unshare the new ones, write the time offsets, then fork
// with CLONE_PARENT so the child, which is pid 1 of a new PID namespace and
// lives in the new time namespace, becomes the runtime's own child. This
// process reports "pid <n>" to the runtime and exits; the child returns into
// Go. Asked for a procfs context, the child first opens one: a procfs shows
// the PID namespace of the process that creates it, and the runtime, which
// mounts the container's filesystems from outside while the child's Go
// runtime starts, takes it from there (pidfd_getfd). It reports "procfs ok",
// or "procfs none <errno>" where the kernel has no fsopen. Any failure is
// reported as "error <text>" and ends the process.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#endif

#define MAX_JOIN 8
#define MAX_LINE 4096
// The whole bootstrap: MAX_JOIN paths and the cgroup lines fit.
#define MAX_MSG (MAX_JOIN * MAX_LINE + 16 * MAX_LINE)

static int sync_fd = -1;

static void report(const char *fmt, ...)
{
	char buf[MAX_LINE];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = write(sync_fd, buf + off, n - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		off += w;
	}
}

static void die(const char *what, const char *arg)
{
	int err = errno;
	report("error nsenter: %s %s: %s", what, arg ? arg : "", strerror(err));
	_exit(1);
}

static int read_message(char *buf, size_t size, size_t n);

// read_bootstrap reads the whole bootstrap message into buf, NUL-terminated.
// The runtime writes it at once and sends nothing more until this process
// reports, so reading until the data ends with "end\n" takes nothing that
// belongs to a later exchange; one read usually does it (a read per byte
// cost ~300 system calls).
static int read_bootstrap(char *buf, size_t size)
{
	return read_message(buf, size, 0);
}

// read_message reads into buf, which holds n bytes already, until the data
// ends with an "end" line, and returns its length.
static int read_message(char *buf, size_t size, size_t n)
{
	buf[n] = '\0';
	if ((n == 4 || (n > 4 && buf[n - 5] == '\n')) && strcmp(buf + n - 4, "end\n") == 0)
		return n;
	while (n + 1 < size) {
		ssize_t r = read(sync_fd, buf + n, size - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		n += r;
		buf[n] = '\0';
		if ((n == 4 || (n > 4 && buf[n - 5] == '\n')) && strcmp(buf + n - 4, "end\n") == 0)
			return n;
	}
	errno = E2BIG;
	return -1;
}

struct join {
	char type[16];
	char path[MAX_LINE];
	int fd;
};

static int ns_flag(const char *type)
{
	static const struct {
		const char *name;
		int flag;
	} table[] = {
		{ "user", CLONE_NEWUSER }, { "mount", CLONE_NEWNS },
		{ "pid", CLONE_NEWPID },   { "network", CLONE_NEWNET },
		{ "ipc", CLONE_NEWIPC },   { "uts", CLONE_NEWUTS },
		{ "cgroup", CLONE_NEWCGROUP }, { "time", CLONE_NEWTIME },
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(table[i].name, type) == 0)
			return table[i].flag;
	return 0;
}

static void become_root(void)
{
	// Inside a fresh user namespace the process keeps its old kernel ids;
	// switch to the namespace's root so later steps act as its owner.
	if (setresgid(0, 0, 0) < 0)
		die("setresgid", "0");
	if (setresuid(0, 0, 0) < 0)
		die("setresuid", "0");
	// setgroups may be denied in the namespace (setgroups=deny); the Go
	// side sets the final groups anyway.
	setgroups(0, NULL);
}

static void wait_ack(char want)
{
	char c;
	ssize_t r;
	do {
		r = read(sync_fd, &c, 1);
	} while (r < 0 && errno == EINTR);
	if (r != 1 || c != want) {
		errno = EPROTO;
		die("wait for runtime", NULL);
	}
}

static pid_t fork_parent(void)
{
	// CLONE_PARENT makes the child a child of the runtime, which waits for
	// it; the init of a PID namespace may not use it, then plain fork.
	pid_t pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0 && errno == EINVAL)
		pid = fork();
	return pid;
}

// join_cgroup moves this (single-threaded) process into a v1 cgroup by
// writing "0" to its tasks file: a thread moving itself needs none of the
// global lock that a move by pid takes.
static void join_cgroup(const char *tasks)
{
	int fd = open(tasks, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die("join cgroup", tasks);
	if (write(fd, "0", 1) != 1)
		die("join cgroup", tasks);
	close(fd);
}

// join_cgroups_later reads the second message ("cgroup" lines, "end") into
// buf, which holds the n bytes of it read with the first one, and joins the
// cgroups it names.
static void join_cgroups_later(char *buf, size_t size, size_t n)
{
	if (read_message(buf, size, n) < 0) {
		if (errno != E2BIG)
			errno = EPIPE;
		die("read cgroups", NULL);
	}
	for (char *next = buf;;) {
		char *nl = strchr(next, '\n');
		char *line = next;
		*nl = '\0';
		next = nl + 1;
		if (strcmp(line, "end") == 0)
			return;
		if (strncmp(line, "cgroup ", 7) != 0) {
			errno = EINVAL;
			die("cgroup line", line);
		}
		join_cgroup(line + 7);
	}
}

// open_procfs opens a procfs context of this process's PID namespace at
// descriptor fd (close-on-exec) and reports whether it could.
static void open_procfs(int fd)
{
	int fs = syscall(SYS_fsopen, "proc", FSOPEN_CLOEXEC);
	if (fs < 0) {
		report("procfs none %d", errno);
		return;
	}
	if (fs != fd) {
		if (dup3(fs, fd, O_CLOEXEC) < 0)
			die("dup3", "procfs context");
		close(fs);
	}
	report("procfs ok");
}

void berth_nsenter(void)
{
	const char *env = getenv("_BERTH_INITPIPE");
	struct join joins[MAX_JOIN];
	int njoin = 0, clone_flags = 0, joined_user = 0, procfs_fd = -1, cgroup_later = 0;
	char timens[MAX_LINE] = "";
	static char msg[MAX_MSG];
	char *line;

	if (env == NULL || *env == '\0')
		return;
	sync_fd = atoi(env);
	if (sync_fd <= 2)
		_exit(1);
	// Not dumpable: processes already in the container cannot open this
	// one's /proc files (its descriptors, its memory) while it sets up.
	// execve of the user program makes it dumpable again.
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		die("prctl", "PR_SET_DUMPABLE");

	int len = read_bootstrap(msg, sizeof(msg));
	if (len < 0) {
		if (errno != E2BIG)
			errno = EPIPE;
		die("read bootstrap", NULL);
	}
	// What follows the first "end" line (the start of a second message
	// sent before this one was read) is kept for join_cgroups_later.
	size_t rest = 0;
	for (char *next = msg;;) {
		char *nl = strchr(next, '\n');
		line = next;
		*nl = '\0'; // the message ends with "end\n": there is one
		next = nl + 1;
		if (strcmp(line, "end") == 0) {
			rest = len - (next - msg);
			memmove(msg, next, rest);
			break;
		}
		if (strncmp(line, "join ", 5) == 0) {
			struct join *j = &joins[njoin];
			char *sp = strchr(line + 5, ' ');
			if (njoin == MAX_JOIN || sp == NULL || sp - (line + 5) >= (long)sizeof(j->type)) {
				errno = EINVAL;
				die("bootstrap line", line);
			}
			memcpy(j->type, line + 5, sp - (line + 5));
			j->type[sp - (line + 5)] = '\0';
			snprintf(j->path, sizeof(j->path), "%s", sp + 1);
			njoin++;
		} else if (strncmp(line, "cgroup ", 7) == 0) {
			join_cgroup(line + 7);
		} else if (strncmp(line, "clone ", 6) == 0) {
			clone_flags = atoi(line + 6);
		} else if (strcmp(line, "cgroup-later") == 0) {
			cgroup_later = 1;
		} else if (strncmp(line, "procfs ", 7) == 0) {
			procfs_fd = atoi(line + 7);
			if (procfs_fd <= 2) {
				errno = EINVAL;
				die("bootstrap line", line);
			}
		} else if (strncmp(line, "timens ", 7) == 0) {
			size_t len = strlen(timens);
			snprintf(timens + len, sizeof(timens) - len, "%s\n", line + 7);
		} else {
			errno = EINVAL;
			die("bootstrap line", line);
		}
	}

	// Open every path first: after joining a mount namespace the host's
	// paths are gone.
	for (int i = 0; i < njoin; i++) {
		joins[i].fd = open(joins[i].path, O_RDONLY | O_CLOEXEC);
		if (joins[i].fd < 0)
			die("open namespace", joins[i].path);
	}
	for (int i = 0; i < njoin; i++) {
		if (strcmp(joins[i].type, "user") != 0)
			continue;
		if (setns(joins[i].fd, CLONE_NEWUSER) < 0)
			die("setns user", joins[i].path);
		joined_user = 1;
		become_root();
	}
	if (clone_flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			die("unshare", "user namespace");
		// The runtime writes uid_map and gid_map from outside, where it
		// holds the privilege to map any range.
		// A runtime without root on the host may open this process's
		// /proc files only while it is dumpable.
		if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
			die("prctl", "PR_SET_DUMPABLE");
		report("usermap");
		wait_ack('u');
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
			die("prctl", "PR_SET_DUMPABLE");
		become_root();
	}
	(void)joined_user;
	for (int i = 0; i < njoin; i++) {
		int flag = ns_flag(joins[i].type);
		if (flag == CLONE_NEWUSER)
			continue;
		if (flag == 0) {
			errno = EINVAL;
			die("unknown namespace type", joins[i].type);
		}
		if (setns(joins[i].fd, flag) < 0)
			die("setns", joins[i].path);
		close(joins[i].fd);
	}
	int now = clone_flags & ~CLONE_NEWUSER;
	if (cgroup_later)
		now &= ~CLONE_NEWCGROUP;
	if (now) {
		if (unshare(now) < 0)
			die("unshare", "namespaces");
	}
	if (cgroup_later) {
		join_cgroups_later(msg, sizeof(msg), rest);
		if ((clone_flags & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0)
			die("unshare", "cgroup namespace");
	}
	if (timens[0] != '\0') {
		// While not dumpable, /proc/self belongs to the host's root, which
		// a new user namespace's root cannot write as: lift it briefly.
		if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
			die("prctl", "PR_SET_DUMPABLE");
		int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			die("open", "/proc/self/timens_offsets");
		// One write per offset line: the kernel parses one write at a time.
		for (char *p = timens, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
			if (write(fd, p, nl - p + 1) < 0)
				die("write timens_offsets", p);
		}
		close(fd);
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
			die("prctl", "PR_SET_DUMPABLE");
	}

	pid_t child = fork_parent();
	if (child < 0)
		die("fork", "init");
	if (child > 0) {
		report("pid %d", child);
		_exit(0);
	}
	if (procfs_fd >= 0)
		open_procfs(procfs_fd);
	// The child returns into the Go runtime, which continues the setup.
}
