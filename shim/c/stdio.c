/*
 * stdio.c: a process's stdio on the shim's side (the container's init, or
 * an exec): the parent ends of its pipes, or the pty master the runtime
 * sends over --console-socket. Output is read into the shim's one buffer
 * and handed to the attached clients (raw for a tty, else in multiplexed
 * frames) and to the json-file log. A client that cannot take output at
 * once holds the rest, and the process's output is not read again until
 * every client has caught up: the process waits, as it would for the Go
 * shim, and memory stays bounded. Input from clients goes to the stdin
 * pipe or the master. Also the console socket and terminal resizing.
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

int watch_set(struct shim *s, struct watch *w, uint32_t events)
{
	if (w->fd < 0) {
		w->events = 0;
		return 0;
	}
	if (events == w->events)
		return 0;
	struct epoll_event ev = {.events = events, .data.ptr = w};
	int op = w->events == 0 ? EPOLL_CTL_ADD : events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
	if (epoll_ctl(s->epfd, op, w->fd, &ev) < 0) {
		diag("epoll_ctl %d on fd %d: %s", op, w->fd, strerror(errno));
		return -1;
	}
	w->events = events;
	return 0;
}

void watch_close(struct shim *s, struct watch *w)
{
	if (w->fd < 0)
		return;
	watch_set(s, w, 0);
	close(w->fd);
	w->fd = -1;
}

static struct pio *pio_alloc(void)
{
	struct pio *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->master = -1;
	for (int i = 0; i < 2; i++)
		p->out[i] = (struct watch){.type = W_OUTPUT, .fd = -1, .owner = p,
					   .stream = i == 0 ? STREAM_STDOUT : STREAM_STDERR};
	p->in = (struct watch){.type = W_STDIN, .fd = -1, .owner = p};
	for (int i = 0; i < 3; i++)
		p->child[i] = -1;
	return p;
}

/* pio_discard frees a pio that never joined the event loop. */
static void pio_discard(struct pio *p)
{
	pio_close_child(p);
	for (int i = 0; i < 2; i++)
		if (p->out[i].fd >= 0 && p->out[i].fd != p->master)
			close(p->out[i].fd);
	if (p->in.fd >= 0)
		close(p->in.fd);
	if (p->master >= 0)
		close(p->master);
	free(p);
}

/* make_pipe makes a pipe whose shim end (read when read_end) is
 * non-blocking. */
static int make_pipe(int fds[2], bool shim_reads)
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	if (set_nonblock(fds[shim_reads ? 0 : 1]) < 0) {
		int saved = errno;
		close(fds[0]);
		close(fds[1]);
		errno = saved;
		return -1;
	}
	return 0;
}

struct pio *pio_new_pipes(bool with_stdin, struct err *e)
{
	struct pio *p = pio_alloc();
	if (!p) {
		err_errno(e, ENOMEM, "stdio");
		return NULL;
	}
	int fds[2];
	if (with_stdin) {
		if (make_pipe(fds, false) < 0) {
			err_errno(e, errno, "stdin pipe");
			goto fail;
		}
		p->child[0] = fds[0];
		p->in.fd = fds[1];
	} else if ((p->child[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		err_errno(e, errno, "open /dev/null");
		goto fail;
	}
	for (int i = 0; i < 2; i++) {
		if (make_pipe(fds, true) < 0) {
			err_errno(e, errno, i == 0 ? "stdout pipe" : "stderr pipe");
			goto fail;
		}
		p->out[i].fd = fds[0];
		p->child[i + 1] = fds[1];
	}
	return p;
fail:
	pio_discard(p);
	return NULL;
}

struct pio *pio_new_tty(struct err *e)
{
	struct pio *p = pio_alloc();
	if (!p) {
		err_errno(e, ENOMEM, "stdio");
		return NULL;
	}
	p->tty = true;
	for (int i = 0; i < 3; i++) {
		if ((p->child[i] = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
			err_errno(e, errno, "open /dev/null");
			pio_discard(p);
			return NULL;
		}
	}
	return p;
}

/* pio_set_master takes the pty master: output is read from it and input
 * written to a duplicate, which the loop watches apart. */
static int pio_set_master(struct pio *p, int master, struct err *e)
{
	if (set_nonblock(master) < 0) {
		err_errno(e, errno, "console socket");
		close(master);
		return -1;
	}
	int dup = fcntl(master, F_DUPFD_CLOEXEC, 3);
	if (dup < 0) {
		err_errno(e, errno, "console socket");
		close(master);
		return -1;
	}
	p->master = master;
	p->out[0].fd = master;
	p->in.fd = dup;
	if (p->has_size) {
		struct winsize ws = {.ws_row = p->rows, .ws_col = p->cols};
		if (ioctl(master, TIOCSWINSZ, &ws) < 0)
			diag("resize: %s", strerror(errno));
	}
	return 0;
}

void pio_close_child(struct pio *p)
{
	for (int i = 0; i < 3; i++) {
		if (p->child[i] >= 0) {
			close(p->child[i]);
			p->child[i] = -1;
		}
	}
}

void pio_start(struct shim *s, struct pio *p)
{
	p->started = true;
	p->open_outputs = 0;
	for (int i = 0; i < 2; i++) {
		if (p->out[i].fd < 0)
			continue;
		p->open_outputs++;
		watch_set(s, &p->out[i], EPOLLIN);
	}
	if (p->open_outputs == 0) {
		p->done = true;
		if (p->on_done)
			p->on_done(s, p);
	}
}

void pio_free(struct shim *s, struct pio *p)
{
	if (!p)
		return;
	while (p->clients)
		pio_detach(s, p, p->clients);
	for (int i = 0; i < 2; i++) {
		if (p->out[i].fd == p->master) {
			watch_set(s, &p->out[i], 0);
			p->out[i].fd = -1;
		} else {
			watch_close(s, &p->out[i]);
		}
	}
	watch_close(s, &p->in);
	for (struct conn *c = s->conns; c; c = c->next) {
		if (c->exec && c->exec->pio == p)
			c->copy_input = false;
	}
	pio_discard(p);
}

/* pio_pause stops reading output until every client has caught up. */
static void pio_pause(struct shim *s, struct pio *p)
{
	if (p->paused)
		return;
	p->paused = true;
	for (int i = 0; i < 2; i++)
		watch_set(s, &p->out[i], 0);
}

void pio_resume(struct shim *s, struct pio *p)
{
	if (!p->paused)
		return;
	for (struct conn *c = p->clients; c; c = c->next_client) {
		if (c->out_len > c->out_off)
			return;
	}
	p->paused = false;
	for (int i = 0; i < 2; i++) {
		if (p->out[i].fd >= 0)
			watch_set(s, &p->out[i], EPOLLIN);
	}
}

/* broadcast hands data of stream to the clients that want it. */
static void broadcast(struct shim *s, struct pio *p, int stream, const char *data, size_t n)
{
	bool behind = false;
	struct conn *next;
	for (struct conn *c = p->clients; c; c = next) {
		next = c->next_client;
		if ((stream == STREAM_STDOUT && !c->want_stdout) || (stream == STREAM_STDERR && !c->want_stderr))
			continue;
		int rc;
		if (p->tty) {
			rc = conn_send(s, c, data, n);
		} else {
			unsigned char hdr[8] = {(unsigned char)stream, 0, 0, 0, (unsigned char)(n >> 24),
						(unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
			rc = conn_sendv(s, c, hdr, sizeof hdr, data, n);
		}
		if (rc < 0) {
			pio_detach(s, p, c);
			conn_gone(s, c);
			continue;
		}
		if (c->out_len > c->out_off)
			behind = true;
	}
	if (behind)
		pio_pause(s, p);
}

/* output_ended closes one output stream; the last one flushes the log
 * and reports the output done. */
static void output_ended(struct shim *s, struct pio *p, struct watch *w)
{
	if (w->fd == p->master) {
		watch_set(s, w, 0);
		w->fd = -1;
	} else {
		watch_close(s, w);
	}
	if (--p->open_outputs > 0)
		return;
	if (p->log)
		log_flush(p->log);
	p->done = true;
	if (p->on_done)
		p->on_done(s, p);
}

void pio_output_ready(struct shim *s, struct watch *w, uint32_t events)
{
	(void)events;
	struct pio *p = w->owner;
	ssize_t n = read(w->fd, s->iobuf, sizeof s->iobuf);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* The end, or EIO on a master whose terminal is gone. */
		output_ended(s, p, w);
		return;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	broadcast(s, p, w->stream, s->iobuf, (size_t)n);
	if (p->log)
		log_write(p->log, w->stream, s->iobuf, (size_t)n, &now);
}

void pio_stdin_ready(struct shim *s, struct pio *p, uint32_t events)
{
	(void)events;
	bool waiting = false;
	for (struct conn *c = s->conns; c; c = c->next) {
		if (c->in_len <= c->in_off || !c->copy_input)
			continue;
		struct pio *target = c->exec ? c->exec->pio : s->io;
		if (target != p)
			continue;
		conn_input_flush(s, c);
		if (c->in_len > c->in_off)
			waiting = true;
	}
	if (!waiting)
		watch_set(s, &p->in, 0);
}

bool pio_attach(struct pio *p, struct conn *c)
{
	if (p->done)
		return false;
	c->pio = p;
	c->next_client = p->clients;
	p->clients = c;
	return true;
}

void pio_detach(struct shim *s, struct pio *p, struct conn *c)
{
	for (struct conn **pp = &p->clients; *pp; pp = &(*pp)->next_client) {
		if (*pp == c) {
			*pp = c->next_client;
			break;
		}
	}
	c->next_client = NULL;
	c->pio = NULL;
	pio_resume(s, p);
}

void pio_detach_all(struct shim *s, struct pio *p)
{
	while (p->clients) {
		struct conn *c = p->clients;
		pio_detach(s, p, c);
		conn_gone(s, c);
	}
}

bool pio_has_stdin(struct pio *p)
{
	return p->in.fd >= 0;
}

void pio_close_stdin(struct shim *s, struct pio *p)
{
	if (p->tty) {
		/* Closing the master would hang up the terminal: ^D instead. */
		if (p->in.fd >= 0) {
			ssize_t w;
			do {
				w = write(p->in.fd, "\x04", 1);
			} while (w < 0 && errno == EINTR);
		}
		return;
	}
	watch_close(s, &p->in);
}

int pio_resize(struct pio *p, unsigned width, unsigned height, struct err *e)
{
	if (p->master < 0 && p->tty) {
		/* A deferred start's terminal: the size is kept for it. */
		p->has_size = true;
		p->rows = (unsigned short)height;
		p->cols = (unsigned short)width;
		return 0;
	}
	if (p->master < 0) {
		err_set(e, KIND_FAILED_PRECONDITION, "the process has no terminal: failed precondition");
		return -1;
	}
	struct winsize ws = {.ws_row = (unsigned short)height, .ws_col = (unsigned short)width};
	if (ioctl(p->master, TIOCSWINSZ, &ws) < 0) {
		err_errno(e, errno, "resize");
		return -1;
	}
	return 0;
}

/* ---- console socket ---- */

int console_listen(struct console *c, const char *path, struct err *e)
{
	c->fd = -1;
	if (snprintf(c->path, sizeof c->path, "%s", path) >= (int)sizeof c->path) {
		err_errno(e, ENAMETOOLONG, "console socket: bind %s", path);
		return -1;
	}
	int fd = unix_listen(path, 16, "console socket", e);
	if (fd < 0)
		return -1;
	c->fd = fd;
	return 0;
}

/* receive_fd reads one message from conn and returns the first descriptor
 * it carries; any others are closed. */
static int receive_fd(int conn, struct err *e)
{
	char data[512];
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(8 * sizeof(int))];
	} ctl;
	struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.space,
			     .msg_controllen = sizeof ctl.space};
	ssize_t r;
	do {
		r = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		err_errno(e, errno, "console socket: receive");
		return -1;
	}
	int got = -1;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h; h = CMSG_NXTHDR(&msg, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
			if (got < 0)
				got = fd;
			else
				close(fd);
		}
	}
	if (got < 0)
		err_set(e, KIND_NONE, "console socket: no descriptor received");
	return got;
}

int console_receive(struct console *c, struct err *e)
{
	int conn;
	do {
		conn = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
	} while (conn < 0 && errno == EINTR);
	if (conn < 0) {
		if (errno == EAGAIN)
			err_set(e, KIND_NONE, "console socket: the runtime sent no terminal");
		else
			err_errno(e, errno, "console socket: accept");
		return -1;
	}
	/* The runtime has exited: what it sent is there, or never comes. */
	if (set_nonblock(conn) < 0) {
		err_errno(e, errno, "console socket");
		close(conn);
		return -1;
	}
	int fd = receive_fd(conn, e);
	close(conn);
	return fd;
}

void console_close(struct console *c)
{
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
		unlink(c->path);
	}
}

int pio_take_console(struct pio *p, struct console *c, struct err *e)
{
	int fd = console_receive(c, e);
	if (fd < 0)
		return -1;
	return pio_set_master(p, fd, e);
}
