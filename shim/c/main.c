/*
 * main.c: berth-shim's command line and process setup. The flags are the
 * Go binary's, parsed as Go's flag package parses them (-flag value,
 * --flag value, -flag=value, bare booleans; parsing stops at the first
 * argument that is not a flag, or at --). Started by the engine
 * (shim.Start), the shim finds _BERTH_SHIM_DAEMON in its environment: it is
 * already in a session of its own with its output in shim.log, removes the
 * variables that list names, and serves. Started by hand, it daemonizes:
 * fork, setsid, output to <dir>/shim.log, and the parent returns at once.
 * The pid of the container, or why it could not be created, is written as
 * {"pid":N} or {"error":"..."} and a newline on --ready-fd, then closed.
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DAEMON_ENV "_BERTH_SHIM_DAEMON"

enum flag_type { F_STRING, F_INT, F_BOOL };

struct flag {
	const char *name;
	enum flag_type type;
	void *value;
	const char *usage;
};

static void usage(const struct flag *flags, size_t n)
{
	fprintf(stderr, "Usage of berth-shim:\n");
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "  -%s%s\n    \t%s\n", flags[i].name,
			flags[i].type == F_STRING ? " string" : flags[i].type == F_INT ? " int" : "", flags[i].usage);
}

/* parse_int parses as strconv.ParseInt(s, 0, 64): a sign, then a 0x, 0o,
 * 0b or 0 (octal) prefix or decimal digits, underscores between digits
 * after a prefix. */
static bool parse_int(const char *s, long long *out)
{
	bool neg = false;
	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	int base = 10;
	bool prefixed = false;
	if (s[0] == '0' && s[1]) {
		char c = s[1];
		prefixed = true;
		if (c == 'x' || c == 'X')
			base = 16, s += 2;
		else if (c == 'o' || c == 'O')
			base = 8, s += 2;
		else if (c == 'b' || c == 'B')
			base = 2, s += 2;
		else
			base = 8, s += 1;
	}
	if (!*s)
		return false;
	unsigned long long v = 0;
	for (; *s; s++) {
		if (*s == '_' && prefixed)
			continue;
		int d;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return false;
		if (d >= base || v > (ULLONG_MAX - (unsigned)d) / (unsigned)base)
			return false;
		v = v * (unsigned)base + (unsigned)d;
	}
	if (neg ? v > (unsigned long long)LLONG_MAX + 1 : v > (unsigned long long)LLONG_MAX)
		return false;
	*out = neg ? (long long)(0 - v) : (long long)v;
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
	for (size_t i = 0; i < 6; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

static void flag_fail(const struct flag *flags, size_t n, const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	usage(flags, n);
	exit(2);
}

static void parse_flags(int argc, char **argv, const struct flag *flags, size_t nflags)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-' || a[1] == 0)
			return;
		const char *name = a + 1;
		if (name[0] == '-') {
			name++;
			if (name[0] == 0)
				return; /* "--" ends the flags */
		}
		if (name[0] == '-' || name[0] == '=')
			flag_fail(flags, nflags, "bad flag syntax: %s%s", a, "");
		const char *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const struct flag *f = NULL;
		for (size_t k = 0; k < nflags; k++)
			if (strlen(flags[k].name) == len && strncmp(flags[k].name, name, len) == 0)
				f = &flags[k];
		if (!f) {
			if ((len == 4 && strncmp(name, "help", 4) == 0) || (len == 1 && name[0] == 'h')) {
				usage(flags, nflags);
				exit(0);
			}
			char shown[256];
			snprintf(shown, sizeof shown, "%.*s", (int)(len > 200 ? 200 : len), name);
			flag_fail(flags, nflags, "flag provided but not defined: -%s%s", shown, "");
		}
		if (f->type == F_BOOL) {
			if (eq && !parse_bool(eq + 1, f->value))
				flag_fail(flags, nflags, "invalid boolean value \"%s\" for -%s: parse error", eq + 1, f->name);
			if (!eq)
				*(bool *)f->value = true;
			continue;
		}
		const char *val;
		if (eq) {
			val = eq + 1;
		} else {
			if (i + 1 >= argc)
				flag_fail(flags, nflags, "flag needs an argument: -%s%s", f->name, "");
			val = argv[++i];
		}
		if (f->type == F_STRING) {
			*(const char **)f->value = val;
		} else if (!parse_int(val, f->value)) {
			flag_fail(flags, nflags, "invalid value \"%s\" for flag -%s: parse error", val, f->name);
		}
	}
}

/* report writes the ready message and closes fd. */
static void report(int fd, int pid, const char *error)
{
	if (fd < 0)
		return;
	struct buf b = {.max = ERR_MSG_SIZE * 6 + 64};
	int rc;
	if (error)
		rc = buf_append(&b, "{\"error\":", 9) == 0 && json_append_string(&b, error, strlen(error)) == 0 &&
				     buf_append(&b, "}\n", 2) == 0
			     ? 0
			     : -1;
	else if (pid != 0)
		rc = buf_appendf(&b, "{\"pid\":%d}\n", pid);
	else
		rc = buf_append(&b, "{}\n", 3);
	if (rc == 0)
		write_all(fd, b.data, b.len);
	buf_free(&b);
	close(fd);
}

/* unset_daemon_env removes the variables the starter added for the Go
 * shim's runtime (listed in _BERTH_SHIM_DAEMON, itself included), so the
 * OCI runtime gets the environment the engine had. */
static void unset_daemon_env(const char *list)
{
	char names[1024];
	snprintf(names, sizeof names, "%s", list);
	char *save = NULL;
	for (char *n = strtok_r(names, ",", &save); n; n = strtok_r(NULL, ",", &save))
		unsetenv(n);
	unsetenv(DAEMON_ENV);
}

/* daemonize forks the serving shim into a session of its own, its output
 * in <dir>/shim.log; the parent exits at once. */
static int daemonize(const char *dir, struct err *e)
{
	if (!dir || !dir[0]) {
		err_set(e, KIND_NONE, "--dir is required");
		return -1;
	}
	if (shim_mkdir(dir) < 0) {
		err_errno(e, errno, "mkdir %s", dir);
		return -1;
	}
	char path[PATH_MAX];
	if (path_join(path, sizeof path, dir, "shim.log") < 0) {
		err_errno(e, errno, "open %s/shim.log", dir);
		return -1;
	}
	int log = open(path, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (log < 0 || null < 0) {
		err_errno(e, errno, "open %s", log < 0 ? path : "/dev/null");
		if (log >= 0)
			close(log);
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		err_errno(e, errno, "fork");
		close(log);
		close(null);
		return -1;
	}
	if (pid > 0)
		exit(0);
	if (setsid() < 0 || chdir("/") < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0) {
		diag("daemonize: %s", strerror(errno));
		_exit(1);
	}
	close(log);
	close(null);
	return 0;
}

/* std_fds_open makes sure 0, 1 and 2 are open, so that no descriptor the
 * shim opens takes their place. */
static void std_fds_open(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n > 2)
			close(n);
	}
}

int main(int argc, char **argv)
{
	static struct shim shim;
	struct shim *s = &shim;
	struct config *cfg = &s->cfg;
	std_fds_open();
	/* Large buffers (long requests) go back to the kernel when freed. */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	mallopt(M_TRIM_THRESHOLD, 128 * 1024);
	mallopt(M_ARENA_MAX, 1);

	cfg->runtime = "berth-runtime";
	cfg->log_max_files = 1;
	long long ready_fd = -1;
	const struct flag flags[] = {
		{"id", F_STRING, &cfg->id, "container id"},
		{"bundle", F_STRING, &cfg->bundle, "OCI bundle directory"},
		{"dir", F_STRING, &cfg->dir, "shim directory (socket, exit files)"},
		{"runtime", F_STRING, &cfg->runtime, "OCI runtime binary"},
		{"runtime-root", F_STRING, &cfg->runtime_root, "state root passed to the runtime as --root"},
		{"log-path", F_STRING, &cfg->log_path, "json-file log of the container's output"},
		{"log-max-size", F_INT, &cfg->log_max_size, "rotate the log at this many bytes (0: never)"},
		{"log-max-files", F_INT, &cfg->log_max_files, "log files to keep"},
		{"stdin", F_BOOL, &cfg->stdin_, "keep the container's stdin open for attach"},
		{"tty", F_BOOL, &cfg->tty, "give the container a terminal"},
		{"deferred", F_BOOL, &cfg->deferred,
		 "create and start the container at the start request (runtime run --detach), not before"},
		{"ready-fd", F_INT, &ready_fd, "descriptor on which to report the pid or the error, then close"},
	};
	parse_flags(argc, argv, flags, sizeof flags / sizeof flags[0]);
	if (ready_fd < INT_MIN || ready_fd > INT_MAX || cfg->log_max_files < INT_MIN || cfg->log_max_files > INT_MAX) {
		fprintf(stderr, "invalid value for flag: out of range\n");
		return 2;
	}
	cfg->ready_fd = (int)ready_fd;

	/* SIGCHLD arrives through the signalfd; a write to a client that
	 * went away fails with EPIPE instead of killing the shim. */
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		diag("signals: %s", strerror(errno));
		return 1;
	}

	struct err e;
	err_clear(&e);
	const char *daemon_env = getenv(DAEMON_ENV);
	if (daemon_env)
		unset_daemon_env(daemon_env);
	else if (daemonize(cfg->dir, &e) < 0) {
		report(cfg->ready_fd, 0, e.msg);
		return 1;
	}
	if (cfg->ready_fd >= 0 && fcntl(cfg->ready_fd, F_SETFD, FD_CLOEXEC) < 0)
		diag("--ready-fd %d: %s", cfg->ready_fd, strerror(errno));
	if (shim_new(s, &e) < 0) {
		report(cfg->ready_fd, 0, e.msg);
		diag("%s", e.msg);
		return 1;
	}
	report(cfg->ready_fd, s->pid, NULL);
	return shim_serve(s);
}
