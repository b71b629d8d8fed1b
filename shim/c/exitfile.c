/*
 * exitfile.c: the files the shim leaves in its directory, read by the
 * engine (shim.ReadExit, the exec client): exit (the code), exited-at
 * (RFC 3339 with nanoseconds), oom (present after an OOM kill), and the
 * shim's pid, an exec's process and exit code. Each is written to a
 * temporary name and renamed, so a reader sees it whole or not at all;
 * exit is written last, so its presence means the others are complete.
 * No fsync: they are run-time state, next to the socket, on a tmpfs.
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int write_file(const char *dir, const char *name, const char *data, size_t len, struct err *e)
{
	char path[SHIM_PATH_MAX], tmp[SHIM_PATH_MAX];
	if (path_join(path, sizeof path, dir, name) < 0 ||
	    snprintf(tmp, sizeof tmp, "%s/.%s-XXXXXX", dir, name) >= (int)sizeof tmp) {
		err_errno(e, ENAMETOOLONG, "write %s", name);
		return -1;
	}
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		err_errno(e, errno, "write %s", name);
		return -1;
	}
	int rc = write_all(fd, data, len);
	if (rc == 0)
		rc = fchmod(fd, 0600);
	int saved = errno;
	if (close(fd) < 0 && rc == 0 && errno != EINTR) {
		rc = -1;
		saved = errno;
	}
	if (rc == 0 && rename(tmp, path) < 0) {
		rc = -1;
		saved = errno;
	}
	if (rc < 0) {
		unlink(tmp);
		err_errno(e, saved, "write %s", name);
		return -1;
	}
	return 0;
}

int write_exit(const char *dir, const struct exit_info *x, struct err *e)
{
	if (x->oom && write_file(dir, "oom", "1\n", 2, e) < 0)
		return -1;
	char line[80];
	size_t n = format_rfc3339nano(line, sizeof line - 1, &x->at);
	line[n++] = '\n';
	if (write_file(dir, "exited-at", line, n, e) < 0)
		return -1;
	int m = snprintf(line, sizeof line, "%d\n", x->code);
	return write_file(dir, "exit", line, (size_t)m, e);
}

int exit_code(int status)
{
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return -1;
}
