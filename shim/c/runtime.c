/*
 * runtime.c: running the OCI runtime (berth-runtime, runc, crun) and what
 * the shim learns from the kernel about its container. The runtime gets
 * the global flags --log <dir>/runtime.log --log-format json [--root R];
 * when it fails, the last error it logged (or its exit status) is the
 * failure's message. Also: finding the runtime in $PATH, reading the pid
 * files it writes, and the memory cgroup whose oom_kill counter tells
 * whether the kernel OOM-killed the container (v1 and v2).
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* The most arguments a runtime command gets. */
#define MAX_ARGS 32

static bool is_executable(const char *path, int *errnum)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		*errnum = errno;
		return false;
	}
	if (S_ISDIR(st.st_mode) || !(st.st_mode & 0111)) {
		*errnum = EACCES;
		return false;
	}
	return true;
}

int look_path(const char *name, char *out, size_t cap, struct err *e)
{
	int errnum = ENOENT;
	if (strchr(name, '/')) {
		if (is_executable(name, &errnum) && snprintf(out, cap, "%s", name) < (int)cap)
			return 0;
		err_set(e, KIND_NOT_FOUND, "shim: runtime: not found: exec: \"%s\": %s", name, strerror(errnum));
		return -1;
	}
	const char *path = getenv("PATH");
	if (!path)
		path = "";
	while (name[0]) {
		const char *end = strchr(path, ':');
		size_t n = end ? (size_t)(end - path) : strlen(path);
		int r = n == 0 ? snprintf(out, cap, "./%s", name) : snprintf(out, cap, "%.*s/%s", (int)n, path, name);
		if (r > 0 && (size_t)r < cap && is_executable(out, &errnum))
			return 0;
		if (!end)
			break;
		path = end + 1;
	}
	err_set(e, KIND_NOT_FOUND, "shim: runtime: not found: exec: \"%s\": executable file not found in $PATH", name);
	return -1;
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) < 0 ? 0 : st.st_size;
}

static const char *base_name(const char *p)
{
	const char *slash = strrchr(p, '/');
	if (slash && slash[1])
		return slash + 1;
	return p;
}

/* exec_child is the forked child's side: it never returns. */
static void exec_child(const int stdio[3], const char *path, char *const argv[], int errfd)
{
	for (int i = 0; i < 3; i++) {
		if (dup2(stdio[i], i) < 0)
			goto fail;
	}
	/* Nothing of the shim's leaks into the runtime and the container. */
	syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_DFL);
	execve(path, argv, environ);
fail:;
	int errnum = errno;
	ssize_t w;
	do {
		w = write(errfd, &errnum, sizeof errnum);
	} while (w < 0 && errno == EINTR);
	_exit(127);
}

int run_runtime(struct shim *s, const int stdio_in[3], const char *const *args, struct err *e)
{
	char logpath[SHIM_PATH_MAX];
	if (path_join(logpath, sizeof logpath, s->cfg.dir, "runtime.log") < 0) {
		err_errno(e, errno, "shim: runtime log");
		return -1;
	}
	const char *argv[MAX_ARGS + 8];
	size_t argc = 0;
	argv[argc++] = s->runtime_path;
	argv[argc++] = "--log";
	argv[argc++] = logpath;
	argv[argc++] = "--log-format";
	argv[argc++] = "json";
	if (s->cfg.runtime_root && s->cfg.runtime_root[0]) {
		argv[argc++] = "--root";
		argv[argc++] = s->cfg.runtime_root;
	}
	for (size_t i = 0; args[i]; i++) {
		if (argc >= MAX_ARGS + 6) {
			err_set(e, KIND_NONE, "shim: too many runtime arguments");
			return -1;
		}
		argv[argc++] = args[i];
	}
	argv[argc] = NULL;

	int stdio[3], null_fd = -1;
	for (int i = 0; i < 3; i++) {
		stdio[i] = stdio_in[i];
		if (stdio[i] >= 0)
			continue;
		if (null_fd < 0 && (null_fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
			err_errno(e, errno, "open /dev/null");
			return -1;
		}
		stdio[i] = null_fd;
	}
	off_t before = file_size(logpath);
	int errpipe[2];
	if (pipe2(errpipe, O_CLOEXEC) < 0) {
		err_errno(e, errno, "shim: run %s", s->cfg.runtime);
		if (null_fd >= 0)
			close(null_fd);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0)
		exec_child(stdio, s->runtime_path, (char *const *)argv, errpipe[1]);
	int fork_errno = errno;
	close(errpipe[1]);
	if (null_fd >= 0)
		close(null_fd);
	if (pid < 0) {
		close(errpipe[0]);
		err_errno(e, fork_errno, "shim: run %s: fork", s->cfg.runtime);
		return -1;
	}
	int child_errno = 0;
	ssize_t r = read_retry(errpipe[0], &child_errno, sizeof child_errno);
	close(errpipe[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			err_errno(e, errno, "shim: wait for %s", s->cfg.runtime);
			return -1;
		}
	}
	if (r == (ssize_t)sizeof child_errno) {
		err_errno(e, child_errno, "shim: run %s: fork/exec %s", s->cfg.runtime, s->runtime_path);
		return -1;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	/* "runtime op: " and then the message, read straight into e. */
	err_set(e, KIND_NONE, "%.256s %.64s: ", base_name(s->cfg.runtime), args[0]);
	size_t n = strlen(e->msg);
	bool found;
	runtime_log_error(logpath, before, e->msg + n, sizeof e->msg - n, &found);
	if (!e->msg[n])
		snprintf(e->msg + n, sizeof e->msg - n, "exit status %d", exit_code(st));
	return -1;
}

/* read_small reads up to cap-1 bytes of path, NUL-terminated. */
static ssize_t read_small(const char *path, char *out, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = 0;
	while (len < cap - 1) {
		ssize_t r = read_retry(fd, out + len, cap - 1 - len);
		if (r < 0) {
			int saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	out[len] = 0;
	return (ssize_t)len;
}

int read_pid(const char *path, pid_t *pid, struct err *e)
{
	char data[64];
	ssize_t n = read_small(path, data, sizeof data);
	if (n < 0) {
		err_errno(e, errno, "shim: read pid file: open %s", path);
		return -1;
	}
	const char *p = data;
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	char *end;
	errno = 0;
	long v = strtol(p, &end, 10);
	while (*end == ' ' || *end == '\n' || *end == '\t' || *end == '\r')
		end++;
	if (errno || end == p || *end || v <= 0 || v > INT_MAX || !(*p == '+' || *p == '-' || (*p >= '0' && *p <= '9'))) {
		err_set(e, KIND_NONE, "shim: pid file %s holds \"%.32s\"", path, data);
		return -1;
	}
	*pid = (pid_t)v;
	return 0;
}

/* cgroup_dir joins a hierarchy's mount point and a cgroup path. */
static char *cgroup_dir(const char *mount, const char *cg)
{
	const char *sep = cg[0] == '/' ? "" : "/";
	size_t n = strlen(mount) + strlen(sep) + strlen(cg) + 1;
	char *out = malloc(n);
	if (out)
		snprintf(out, n, "%s%s%s", mount, sep, cg);
	return out;
}

char *memory_cgroup(pid_t pid)
{
	char path[64], data[4096];
	snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
	if (read_small(path, data, sizeof data) < 0)
		return NULL;
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':');
		if (!c1)
			continue;
		char *c2 = strchr(c1 + 1, ':');
		if (!c2)
			continue;
		*c1 = 0;
		*c2 = 0;
		const char *hier = line, *ctrls = c1 + 1, *cg = c2 + 1;
		if (strcmp(hier, "0") == 0 && ctrls[0] == 0) {
			return cgroup_dir("/sys/fs/cgroup", cg);
		}
		char list[256];
		snprintf(list, sizeof list, "%s", ctrls);
		char *s2 = NULL;
		for (char *c = strtok_r(list, ",", &s2); c; c = strtok_r(NULL, ",", &s2)) {
			if (strcmp(c, "memory") == 0) {
				return cgroup_dir("/sys/fs/cgroup/memory", cg);
			}
		}
	}
	return NULL;
}

bool oom_killed(const char *dir)
{
	if (!dir || !dir[0])
		return false;
	static const char *const names[] = {"memory.events", "memory.oom_control"};
	for (size_t i = 0; i < 2; i++) {
		char path[PATH_MAX], data[4096];
		if (path_join(path, sizeof path, dir, names[i]) < 0 || read_small(path, data, sizeof data) < 0)
			continue;
		char *save = NULL;
		for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			if (strncmp(line, "oom_kill ", 9) == 0)
				return strtoull(line + 9, NULL, 10) > 0;
		}
	}
	return false;
}
