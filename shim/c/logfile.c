/*
 * logfile.c: the container's json-file log, as berth.dev/logs/jsonfile's
 * Writer writes it (that package reads it back for `docker logs`):
 *
 *	{"log":"hello\n","stream":"stdout","time":"2026-11-26T22:00:00.123456789Z"}
 *
 * Output is split into entries at newlines; a line longer than
 * MAX_ENTRY_SIZE is split, and output still unterminated at a flush becomes
 * an entry without "\n". When an entry would take the live file past
 * max-size the files are rotated by renames (path.(n-1) to path.n, ...,
 * path to path.1) and a new live file is opened: each entry goes whole into
 * one file, so a reader holding a file open loses nothing. Memory is fixed:
 * one unterminated entry per stream and one buffer of encoded entries.
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const stream_names[2] = {"stdout", "stderr"};

static int log_open_file(struct logfile *l)
{
	int fd = open(l->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	l->fd = fd;
	l->size = st.st_size;
	return 0;
}

/* log_report notes a failure in shim.log, once: a full disk must not fill
 * shim.log too. */
static void log_report(struct logfile *l, const char *what)
{
	if (l->reported)
		return;
	l->reported = true;
	diag("json-file log %s: %s: %s", l->path, what, strerror(errno));
}

int log_open(struct logfile *l, struct logstore *store, const char *path, long long max_size, int max_files,
	     struct err *e)
{
	l->enabled = false;
	l->fd = -1;
	if (!path || !path[0])
		return 0;
	if (max_size < 0 || max_files < 0) {
		err_set(e, KIND_INVALID_ARGUMENT, "json-file log %s: max-size %lld, max-file %d: invalid argument", path,
			max_size, max_files);
		return -1;
	}
	if (!(l->path = strdup(path))) {
		err_errno(e, ENOMEM, "json-file log %s", path);
		return -1;
	}
	l->max_size = max_size;
	l->max_files = max_files == 0 ? 1 : max_files;
	l->partial[0] = store->partial[0];
	l->partial[1] = store->partial[1];
	l->pending = (struct buf){.data = store->pending, .cap = sizeof store->pending,
				  .max = sizeof store->pending, .fixed = true};
	if (log_open_file(l) < 0) {
		err_errno(e, errno, "open json-file log");
		free(l->path);
		l->path = NULL;
		return -1;
	}
	l->enabled = true;
	return 0;
}

/* log_write_pending appends the encoded entries to the live file. */
static void log_write_pending(struct logfile *l)
{
	if (l->pending.len == 0)
		return;
	if (l->fd < 0 && log_open_file(l) < 0) {
		/* A rotation failed to open the new file, and so does this. */
		log_report(l, "open");
		l->pending.len = 0;
		return;
	}
	const char *p = l->pending.data;
	size_t n = l->pending.len;
	while (n > 0) {
		ssize_t w = write(l->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_report(l, "write");
			break;
		}
		l->size += w;
		p += w;
		n -= (size_t)w;
	}
	l->pending.len = 0;
}

static int rotated_name(const struct logfile *l, int n, char *out, size_t cap)
{
	int r = snprintf(out, cap, "%s.%d", l->path, n);
	return r < 0 || (size_t)r >= cap ? -1 : 0;
}

/* log_rotate shifts the rotated files up by one, dropping the oldest,
 * moves the live file to path.1 and opens a new live file. */
static void log_rotate(struct logfile *l)
{
	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
	if (l->max_files == 1) {
		if (unlink(l->path) < 0 && errno != ENOENT) {
			log_report(l, "rotate");
			return;
		}
	} else {
		char from[PATH_MAX + 16], to[PATH_MAX + 16];
		for (int i = l->max_files - 1; i > 1; i--) {
			if (rotated_name(l, i - 1, from, sizeof from) < 0 || rotated_name(l, i, to, sizeof to) < 0)
				return;
			if (rename(from, to) < 0 && errno != ENOENT) {
				log_report(l, "rotate");
				return;
			}
		}
		if (rotated_name(l, 1, to, sizeof to) < 0)
			return;
		if (rename(l->path, to) < 0) {
			log_report(l, "rotate");
			return;
		}
	}
	if (log_open_file(l) < 0)
		log_report(l, "rotate");
}

/* log_add encodes one entry, writing out what is pending and rotating
 * first if the entry would take the live file past max-size. */
static void log_add(struct logfile *l, int stream, const char *data, size_t n, const struct timespec *t)
{
	char ts[64];
	size_t tn = format_rfc3339nano(ts, sizeof ts, t);
	size_t need = JSON_QUOTED_MAX(n) + tn + 64;
	if (need > l->pending.max - l->pending.len)
		log_write_pending(l);
	size_t start = l->pending.len;
	struct buf *b = &l->pending;
	if (buf_append(b, "{\"log\":", 7) < 0 || json_append_string(b, data, n) < 0 ||
	    buf_append(b, ",\"stream\":\"", 11) < 0 || buf_append(b, stream_names[stream], 6) < 0 ||
	    buf_append(b, "\",\"time\":\"", 10) < 0 || buf_append(b, ts, tn) < 0 || buf_append(b, "\"}\n", 3) < 0) {
		b->len = start; /* cannot happen: need covers the entry */
		return;
	}
	size_t len = b->len - start;
	if (l->max_size <= 0 || l->size + (long long)start == 0 || l->size + (long long)b->len <= l->max_size)
		return;
	/* Write what came before, rotate, and keep the entry at the start. */
	char *entry = b->data + start;
	b->len = start;
	log_write_pending(l);
	log_rotate(l);
	memmove(b->data, entry, len);
	b->len = len;
}

void log_write(struct logfile *l, int stream, const char *data, size_t n, const struct timespec *t)
{
	if (!l->enabled || l->closed)
		return;
	int s = stream == STREAM_STDERR ? 1 : 0;
	char *partial = l->partial[s];
	while (n > 0) {
		size_t room = MAX_ENTRY_SIZE - l->plen[s];
		size_t take = n < room ? n : room;
		const char *nl = memchr(data, '\n', take);
		if (nl) {
			size_t k = (size_t)(nl - data) + 1;
			if (l->plen[s] == 0) {
				log_add(l, s, data, k, t);
			} else {
				memcpy(partial + l->plen[s], data, k);
				log_add(l, s, partial, l->plen[s] + k, t);
				l->plen[s] = 0;
			}
			data += k;
			n -= k;
			continue;
		}
		if (take == room && l->plen[s] == 0) {
			log_add(l, s, data, take, t);
		} else {
			memcpy(partial + l->plen[s], data, take);
			l->plen[s] += take;
			if (l->plen[s] == MAX_ENTRY_SIZE) {
				log_add(l, s, partial, MAX_ENTRY_SIZE, t);
				l->plen[s] = 0;
			}
		}
		data += take;
		n -= take;
	}
	log_write_pending(l);
}

void log_flush(struct logfile *l)
{
	if (!l->enabled || l->closed)
		return;
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	/* In the order of the streams' names, as the Go writer. */
	for (int i = 1; i >= 0; i--) {
		if (l->plen[i] == 0)
			continue;
		log_add(l, i, l->partial[i], l->plen[i], &t);
		l->plen[i] = 0;
	}
	log_write_pending(l);
}

int log_close(struct logfile *l)
{
	if (!l->enabled || l->closed)
		return 0;
	log_flush(l);
	l->closed = true;
	int rc = 0;
	if (l->fd >= 0) {
		rc = close(l->fd);
		l->fd = -1;
	}
	return rc < 0 && errno != EINTR ? -1 : 0;
}
