/*
 * buf.c: the small foundations the rest stands on: bounded byte buffers,
 * error values with their errdefs category, diagnostics to shim.log, and
 * system call wrappers that retry on EINTR.
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

const char *kind_name(enum kind k)
{
	switch (k) {
	case KIND_NOT_FOUND:
		return "not found";
	case KIND_ALREADY_EXISTS:
		return "already exists";
	case KIND_INVALID_ARGUMENT:
		return "invalid argument";
	case KIND_FAILED_PRECONDITION:
		return "failed precondition";
	case KIND_CONFLICT:
		return "conflict";
	case KIND_UNAVAILABLE:
		return "unavailable";
	case KIND_NOT_IMPLEMENTED:
		return "not implemented";
	case KIND_NONE:
		break;
	}
	return "";
}

void err_set(struct err *e, enum kind k, const char *format, ...)
{
	va_list ap;
	va_start(ap, format);
	vsnprintf(e->msg, sizeof e->msg, format, ap);
	va_end(ap);
	e->kind = k;
}

void err_clear(struct err *e)
{
	e->kind = KIND_NONE;
	e->msg[0] = 0;
}

void err_prefix(struct err *e, const char *format, ...)
{
	char prefix[256];
	va_list ap;
	va_start(ap, format);
	int n = vsnprintf(prefix, sizeof prefix - 2, format, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t plen = strnlen(prefix, sizeof prefix - 3);
	memcpy(prefix + plen, ": ", 3);
	plen += 2;
	size_t mlen = strnlen(e->msg, sizeof e->msg - 1);
	if (mlen > sizeof e->msg - 1 - plen)
		mlen = sizeof e->msg - 1 - plen;
	memmove(e->msg + plen, e->msg, mlen);
	memcpy(e->msg, prefix, plen);
	e->msg[plen + mlen] = 0;
}

void err_errno(struct err *e, int errnum, const char *format, ...)
{
	va_list ap;
	va_start(ap, format);
	int n = vsnprintf(e->msg, sizeof e->msg, format, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof e->msg)
		fmt(e->msg + n, sizeof e->msg - (size_t)n, ": %s", strerror(errnum));
	e->kind = KIND_NONE;
}

int buf_reserve(struct buf *b, size_t extra)
{
	if (extra > b->max - b->len)
		return -1;
	size_t need = b->len + extra;
	if (need <= b->cap)
		return 0;
	if (b->fixed)
		return -1;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > b->max / 2 ? b->max : cap * 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (buf_reserve(b, n) < 0)
		return -1;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int buf_appendc(struct buf *b, char c)
{
	return buf_append(b, &c, 1);
}

int buf_appendf(struct buf *b, const char *format, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, format);
	int n = vsnprintf(tmp, sizeof tmp, format, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp)
		return -1;
	return buf_append(b, tmp, (size_t)n);
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void buf_free(struct buf *b)
{
	if (!b->fixed) {
		free(b->data);
		b->data = NULL;
		b->cap = 0;
	}
	b->len = 0;
}

void diag(const char *format, ...)
{
	char line[ERR_MSG_SIZE + 64];
	int n = snprintf(line, sizeof line, "berth-shim: ");
	va_list ap;
	va_start(ap, format);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, format, ap);
	va_end(ap);
	if (m < 0)
		return;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	write_all(STDERR_FILENO, line, len);
}

int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t read_retry(int fd, void *p, size_t n)
{
	for (;;) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		return r;
	}
}

int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int fmt(char *dst, size_t cap, const char *format, ...)
{
	va_list ap;
	va_start(ap, format);
	int n = vsnprintf(dst, cap, format, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return n;
}

int path_join(char *out, size_t cap, const char *dir, const char *name)
{
	return fmt(out, cap, "%s/%s", dir, name) < 0 ? -1 : 0;
}

int unix_listen(const char *path, int backlog, const char *what, struct err *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if (len >= sizeof sa.sun_path) {
		err_errno(e, ENAMETOOLONG, "%s: bind %s", what, path);
		return -1;
	}
	memcpy(sa.sun_path, path, len + 1);
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		err_errno(e, errno, "%s: socket", what);
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		err_errno(e, errno, "%s: bind %s", what, path);
		close(fd);
		return -1;
	}
	if (listen(fd, backlog) < 0) {
		err_errno(e, errno, "%s: listen %s", what, path);
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}
