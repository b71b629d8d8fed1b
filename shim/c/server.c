/*
 * server.c: the shim's life and its socket. shim_new creates the container
 * through the runtime; shim_serve runs the event loop: it accepts clients
 * on <dir>/shim.sock, reads one JSON Request line from each, and answers
 * it (start, attach, resize, kill, exec, state, wait: shim/protocol.go),
 * streaming the process's I/O for attach and exec. It reaps every child;
 * when the container's init has exited and its output has ended (or 5 s
 * passed), it records the exit files, ends the attached clients, answers
 * the waiters, closes the socket, gives the connections left 5 s, and
 * returns. One thread: the runtime runs to completion inside a request.
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* The most output a client may have pending: a reply and one frame. */
#define MAX_PENDING_OUT (MAX_REQUEST_LINE + OUTPUT_BUF_SIZE + 64)

int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static const char *status_name(enum status st)
{
	switch (st) {
	case ST_CREATED:
		return "created";
	case ST_RUNNING:
		return "running";
	case ST_STOPPED:
		break;
	}
	return "stopped";
}

/* ---- connections ---- */

static void conn_close(struct shim *s, struct conn *c)
{
	if (c->pio)
		pio_detach(s, c->pio, c);
	if (c->exec)
		c->exec->conn = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	watch_close(s, &c->w);
	buf_free(&c->req);
	free(c->out);
	free(c->in);
	free(c);
	if (s->listener.fd >= 0 && s->listener.events == 0)
		watch_set(s, &s->listener, EPOLLIN);
}

void conn_update(struct shim *s, struct conn *c)
{
	uint32_t ev = 0;
	bool pending_out = c->out_len > c->out_off;
	switch (c->state) {
	case C_REQUEST:
	case C_WAIT:
		ev = EPOLLIN;
		break;
	case C_ATTACH:
	case C_EXEC:
		if (c->broken)
			break;
		if (c->copy_input ? !c->input_eof && c->in_len <= c->in_off : !c->read_eof)
			ev |= EPOLLIN;
		break;
	case C_CLOSING:
		break;
	}
	if (pending_out && !c->broken)
		ev |= EPOLLOUT;
	watch_set(s, &c->w, ev);
}

/* conn_finish closes c once its pending output is out. */
static void conn_finish(struct shim *s, struct conn *c)
{
	c->state = C_CLOSING;
	c->copy_input = false;
	if (c->broken || c->out_len <= c->out_off) {
		conn_close(s, c);
		return;
	}
	conn_update(s, c);
}

int conn_sendv(struct shim *s, struct conn *c, const void *a, size_t an, const void *b, size_t bn)
{
	if (c->broken)
		return -1;
	size_t total = an + bn;
	if (c->out_len > c->out_off) {
		size_t have = c->out_len - c->out_off;
		if (total > MAX_PENDING_OUT - have) {
			c->broken = true;
			return -1;
		}
		char *p = malloc(have + total);
		if (!p) {
			c->broken = true;
			return -1;
		}
		memcpy(p, c->out + c->out_off, have);
		memcpy(p + have, a, an);
		if (bn)
			memcpy(p + have + an, b, bn);
		free(c->out);
		c->out = p;
		c->out_off = 0;
		c->out_len = have + total;
		return 0;
	}
	struct iovec iov[2] = {{(void *)a, an}, {(void *)b, bn}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = bn ? 2 : 1};
	ssize_t w;
	do {
		w = sendmsg(c->w.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (w < 0 && errno == EINTR);
	if (w < 0 && errno != EAGAIN) {
		c->broken = true;
		return -1;
	}
	size_t sent = w < 0 ? 0 : (size_t)w;
	if (sent == total)
		return 0;
	size_t rest = total - sent;
	if (rest > MAX_PENDING_OUT || !(c->out = malloc(rest))) {
		c->broken = true;
		return -1;
	}
	if (sent < an) {
		memcpy(c->out, (const char *)a + sent, an - sent);
		if (bn)
			memcpy(c->out + an - sent, b, bn);
	} else {
		memcpy(c->out, (const char *)b + (sent - an), rest);
	}
	c->out_off = 0;
	c->out_len = rest;
	conn_update(s, c);
	return 0;
}

int conn_send(struct shim *s, struct conn *c, const void *data, size_t n)
{
	return conn_sendv(s, c, data, n, NULL, 0);
}

/* conn_flush_out sends pending output; it may close c. */
static void conn_flush_out(struct shim *s, struct conn *c)
{
	while (c->out_len > c->out_off && !c->broken) {
		ssize_t w = send(c->w.fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w < 0) {
			c->broken = true;
			break;
		}
		c->out_off += (size_t)w;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	struct pio *p = c->pio;
	if (c->broken) {
		if (p)
			pio_detach(s, p, c);
		conn_gone(s, c);
		return;
	}
	if (c->state == C_CLOSING) {
		conn_close(s, c);
		return;
	}
	if (p)
		pio_resume(s, p);
	conn_update(s, c);
}

void conn_gone(struct shim *s, struct conn *c)
{
	if (c->state == C_EXEC) {
		/* The exec's connection stays until its exit code is written. */
		if (c->broken)
			conn_update(s, c);
		return;
	}
	conn_finish(s, c);
}

static int reply(struct shim *s, struct conn *c, const struct response *r)
{
	struct buf b = {.max = MAX_PENDING_OUT};
	int rc = -1;
	if (response_encode(&b, r) == 0 && buf_appendc(&b, '\n') == 0)
		rc = conn_send(s, c, b.data, b.len);
	buf_free(&b);
	return rc;
}

static int reply_err(struct shim *s, struct conn *c, const struct err *e)
{
	struct response r = {.error = e->msg, .kind = e->kind};
	return reply(s, c, &r);
}

static struct response state_response(struct shim *s)
{
	struct response r = {.pid = s->pid, .status = status_name(s->status)};
	if (s->finished && s->reaped)
		r.exit = &s->exit;
	return r;
}

static int reply_state(struct shim *s, struct conn *c)
{
	struct response r = state_response(s);
	return reply(s, c, &r);
}

static struct pio *input_target(struct shim *s, struct conn *c)
{
	return c->exec ? c->exec->pio : s->io;
}

/* input_finish ends a client's input: its process's stdin is closed (^D
 * for a terminal) when the client asked for that. */
static void input_finish(struct shim *s, struct conn *c)
{
	struct pio *p = input_target(s, c);
	if (p && !p->started) {
		conn_update(s, c); /* a deferred start: after it */
		return;
	}
	c->copy_input = false;
	if (c->close_stdin && p)
		pio_close_stdin(s, p);
	conn_update(s, c);
}

/* input_write writes data to the process's stdin, keeping what it cannot
 * take yet; false when the stdin is gone. */
static void conn_queue_input(struct shim *s, struct conn *c, const char *data, size_t n)
{
	struct pio *p = input_target(s, c);
	if (!c->copy_input || n == 0)
		return;
	if (p && !p->started) {
		/* Held until a deferred start: the process is not there yet. */
		if (!(c->in = malloc(n))) {
			c->copy_input = false;
			return;
		}
		memcpy(c->in, data, n);
		c->in_off = 0;
		c->in_len = n;
		return;
	}
	if (!p || p->in.fd < 0) {
		c->copy_input = false; /* as a write to a closed stdin: the copy ends */
		return;
	}
	ssize_t w;
	do {
		w = write(p->in.fd, data, n);
	} while (w < 0 && errno == EINTR);
	if (w < 0 && errno != EAGAIN) {
		c->copy_input = false;
		return;
	}
	size_t done = w < 0 ? 0 : (size_t)w;
	if (done == n)
		return;
	size_t rest = n - done;
	if (!(c->in = malloc(rest))) {
		c->copy_input = false;
		return;
	}
	memcpy(c->in, data + done, rest);
	c->in_off = 0;
	c->in_len = rest;
	watch_set(s, &p->in, EPOLLOUT);
}

void conn_input_flush(struct shim *s, struct conn *c)
{
	struct pio *p = input_target(s, c);
	while (c->in_len > c->in_off) {
		if (!c->copy_input || !p || p->in.fd < 0)
			break;
		ssize_t w = write(p->in.fd, c->in + c->in_off, c->in_len - c->in_off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w < 0) {
			c->copy_input = false;
			break;
		}
		c->in_off += (size_t)w;
	}
	bool delivered = c->copy_input && c->in_len <= c->in_off;
	free(c->in);
	c->in = NULL;
	c->in_len = c->in_off = 0;
	if (delivered && c->input_eof) {
		input_finish(s, c);
		return;
	}
	if (!delivered)
		c->copy_input = false;
	conn_update(s, c);
}

/* conn_read_stream handles input on an attach or exec connection. */
static void conn_read_stream(struct shim *s, struct conn *c, uint32_t events)
{
	ssize_t n = read(c->w.fd, s->iobuf, sizeof s->iobuf);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n > 0) {
		if (c->copy_input)
			conn_queue_input(s, c, s->iobuf, (size_t)n);
		conn_update(s, c);
		return;
	}
	/* The client's input ended: it closed its writing half, or is gone. */
	if (c->copy_input) {
		c->input_eof = true;
		if (c->in_len <= c->in_off)
			input_finish(s, c);
		else
			conn_update(s, c);
		return;
	}
	c->read_eof = true;
	if ((events & (EPOLLHUP | EPOLLERR)) || n < 0) {
		/* Nobody is there to read output either. */
		c->broken = true;
		if (c->pio)
			pio_detach(s, c->pio, c);
		conn_gone(s, c);
		return;
	}
	conn_update(s, c);
}

/* ---- requests ---- */

static void run_with_io_args(const char **argv, size_t *argc, const char *a)
{
	argv[(*argc)++] = a;
}

/* new_io makes a process's stdio: pipes, or for a terminal /dev/null
 * for the runtime and, later, the pty master it sends. */
static struct pio *new_io(bool tty, bool with_stdin, struct err *e)
{
	return tty ? pio_new_tty(e) : pio_new_pipes(with_stdin, e);
}

/* run_process runs a runtime command that makes a process (create, run
 * --detach, exec --detach) with stdio p and returns its pid. On error p's
 * child ends are closed; p is the caller's to free. */
static int run_process(struct shim *s, struct pio *p, const char *name, const char *const *args, pid_t *pid_out,
		       struct err *e)
{
	struct console con = {.fd = -1};
	char con_path[SHIM_PATH_MAX], pid_file[SHIM_PATH_MAX], pid_name[SHIM_PATH_MAX];
	const char *argv[24];
	size_t argc = 0;
	for (; args[argc] && argc < 16; argc++)
		argv[argc] = args[argc];
	if (p->tty) {
		/* A short name: the path must fit a sockaddr_un (108 bytes) in a
		 * directory that already holds a 64-hex container ID. */
		char cname[32];
		snprintf(cname, sizeof cname, "c%u.sock", ++s->consoles);
		if (path_join(con_path, sizeof con_path, s->cfg.dir, cname) < 0) {
			err_errno(e, ENAMETOOLONG, "console socket");
			pio_close_child(p);
			return -1;
		}
		if (console_listen(&con, con_path, e) < 0) {
			pio_close_child(p);
			return -1;
		}
		run_with_io_args(argv, &argc, "--console-socket");
		run_with_io_args(argv, &argc, con.path);
	}
	if (snprintf(pid_name, sizeof pid_name, "%s.pid", name) >= (int)sizeof pid_name ||
	    path_join(pid_file, sizeof pid_file, s->cfg.dir, pid_name) < 0) {
		err_errno(e, ENAMETOOLONG, "shim: pid file");
		console_close(&con);
		pio_close_child(p);
		return -1;
	}
	unlink(pid_file);
	run_with_io_args(argv, &argc, "--pid-file");
	run_with_io_args(argv, &argc, pid_file);
	run_with_io_args(argv, &argc, s->cfg.id);
	argv[argc] = NULL;
	int rc = run_runtime(s, p->child, argv, e);
	pio_close_child(p);
	if (rc == 0 && p->tty)
		rc = pio_take_console(p, &con, e);
	console_close(&con);
	if (rc == 0)
		rc = read_pid(pid_file, pid_out, e);
	return rc;
}

/* run_with_io is run_process with new stdio, returned in *pio_out. */
static int run_with_io(struct shim *s, bool tty, bool with_stdin, const char *name, const char *const *args,
		       struct pio **pio_out, pid_t *pid_out, struct err *e)
{
	struct pio *p = new_io(tty, with_stdin, e);
	if (!p)
		return -1;
	if (run_process(s, p, name, args, pid_out, e) < 0) {
		pio_free(s, p);
		return -1;
	}
	*pio_out = p;
	return 0;
}

static void init_output_done(struct shim *s, struct pio *p);
static void end_unstarted(struct shim *s, const char *why);

/* deferred_start creates and starts a deferred shim's container with
 * `runtime run --detach`; a failure ends the shim once answered. */
static int deferred_start(struct shim *s, struct err *e)
{
	if (s->status != ST_CREATED || s->start_failed || s->pid != 0) {
		err_set(e, KIND_CONFLICT, "container is %s: conflict", status_name(s->status));
		return -1;
	}
	const char *args[] = {"run", "--detach", "--bundle", s->cfg.bundle, NULL};
	if (run_process(s, s->io, "init", args, &s->pid, e) < 0) {
		s->pid = 0;
		size_t n = strlen(e->msg);
		snprintf(e->msg + n, sizeof e->msg - n, ": failed precondition");
		e->kind = KIND_FAILED_PRECONDITION;
		s->start_failed = true;
		return -1;
	}
	s->status = ST_RUNNING;
	s->start_deadline = 0;
	s->cgroup = memory_cgroup(s->pid);
	pio_start(s, s->io);
	/* Clients that attached with input before the start feed it now. */
	struct conn *next;
	for (struct conn *c = s->conns; c; c = next) {
		next = c->next;
		if (!c->copy_input || c->exec)
			continue;
		if (c->in_len > c->in_off)
			watch_set(s, &s->io->in, EPOLLOUT);
		else if (c->input_eof)
			input_finish(s, c);
		else
			conn_update(s, c);
	}
	return 0;
}

/* The request handlers share their caller's err: each error message is
 * kilobytes, and the stack pages a request touches stay with the shim. */
static void do_control(struct shim *s, struct conn *c, struct request *req, struct err *e)
{
	const char *op = req->op.data ? req->op.data : "";
	if (strcmp(op, "state") == 0) {
		reply_state(s, c);
		return;
	}
	int rc = 0;
	if (strcmp(op, "start") == 0 && s->cfg.deferred) {
		rc = deferred_start(s, e);
		if (rc < 0 && s->start_failed && !s->finished) {
			/* The run failed: the shim ends once this is answered. */
			reply_err(s, c, e);
			end_unstarted(s, e->msg);
			return;
		}
	} else if (strcmp(op, "start") == 0) {
		if (s->status != ST_CREATED) {
			err_set(e, KIND_CONFLICT, "container is %s: conflict", status_name(s->status));
			rc = -1;
		} else {
			const char *args[] = {"start", s->cfg.id, NULL};
			rc = run_runtime(s, (int[3]){-1, -1, -1}, args, e);
			if (rc == 0 && s->status == ST_CREATED)
				s->status = ST_RUNNING;
		}
	} else if (strcmp(op, "kill") == 0) {
		if (s->status == ST_STOPPED) {
			err_set(e, KIND_FAILED_PRECONDITION, "container has exited: failed precondition");
			rc = -1;
		} else if (s->cfg.deferred && s->pid <= 0) {
			err_set(e, KIND_FAILED_PRECONDITION, "container is not running: failed precondition");
			rc = -1;
		} else {
			char sig[32];
			snprintf(sig, sizeof sig, "%lld", req->signal ? req->signal : (long long)SIGTERM);
			const char *args[] = {"kill", s->cfg.id, sig, NULL, NULL};
			if (req->all) {
				args[1] = "--all";
				args[2] = s->cfg.id;
				args[3] = sig;
			}
			rc = run_runtime(s, (int[3]){-1, -1, -1}, args, e);
		}
	} else if (strcmp(op, "resize") == 0) {
		struct pio *p = s->io;
		if (req->exec.len > 0) {
			p = NULL;
			for (struct exec *x = s->execs; x; x = x->next)
				if (strcmp(x->id, req->exec.data) == 0)
					p = x->pio;
			if (!p) {
				err_set(e, KIND_NOT_FOUND, "exec %s: not found", req->exec.data);
				rc = -1;
			}
		}
		if (p)
			rc = pio_resize(p, (unsigned)req->width, (unsigned)req->height, e);
	} else {
		struct buf q = {.max = 512};
		json_append_string(&q, op, strlen(op));
		err_set(e, KIND_NOT_IMPLEMENTED, "unknown op %.*s: not implemented", (int)q.len, q.data ? q.data : "\"\"");
		buf_free(&q);
		rc = -1;
	}
	if (rc < 0)
		reply_err(s, c, e);
	else
		reply_state(s, c);
}

static void do_attach(struct shim *s, struct conn *c, struct request *req, const char *rest, size_t rest_len,
		      struct err *e)
{
	/* A deferred shim's terminal comes with the start; a stdin pipe
	 * exists from the first. */
	if (req->stdin_ && !s->io->tty && !pio_has_stdin(s->io)) {
		err_set(e, KIND_FAILED_PRECONDITION, "container has no stdin: failed precondition");
		reply_err(s, c, e);
		conn_finish(s, c);
		return;
	}
	/* Taken in before the reply: a client attached before start misses
	 * no output. */
	c->want_stdout = req->stdout_;
	c->want_stderr = req->stderr_;
	bool attached = pio_attach(s->io, c);
	if (reply_state(s, c) < 0 || !attached) {
		conn_finish(s, c);
		return;
	}
	c->state = C_ATTACH;
	if (req->stdin_) {
		c->copy_input = true;
		c->close_stdin = req->close_stdin;
		conn_queue_input(s, c, rest, rest_len);
	}
	buf_free(&c->req);
	conn_update(s, c);
}

static struct exec *find_exec(struct shim *s, const char *id)
{
	for (struct exec *x = s->execs; x; x = x->next)
		if (strcmp(x->id, id) == 0)
			return x;
	return NULL;
}

static void exec_output_done(struct shim *s, struct pio *p);

/* exec_start checks an exec request and runs `runtime exec --detach`. */
static struct exec *exec_start(struct shim *s, struct request *req, struct err *e)
{
	const char *id = req->id.data ? req->id.data : "";
	if (!id[0] || strpbrk(id, "/.") || strlen(id) != req->id.len || !req->process) {
		err_set(e, KIND_INVALID_ARGUMENT, "exec needs an id (no / or .) and a process: invalid argument");
		return NULL;
	}
	if (s->status != ST_RUNNING) {
		err_set(e, KIND_FAILED_PRECONDITION, "container is not running: failed precondition");
		return NULL;
	}
	if (find_exec(s, id)) {
		err_set(e, KIND_ALREADY_EXISTS, "exec %s: already exists", id);
		return NULL;
	}
	char name[SHIM_PATH_MAX], json_name[SHIM_PATH_MAX], json_path[SHIM_PATH_MAX];
	if (snprintf(name, sizeof name, "exec-%s", id) >= 256 ||
	    snprintf(json_name, sizeof json_name, "%s.json", name) >= 256 ||
	    path_join(json_path, sizeof json_path, s->cfg.dir, json_name) < 0) {
		err_set(e, KIND_INVALID_ARGUMENT, "exec %.64s...: id too long: invalid argument", id);
		return NULL;
	}
	struct buf proc = {.max = MAX_REQUEST_LINE + 64};
	int rc = process_rewrite(req->process, req->process_len, req->tty, &proc, e);
	if (rc < 0)
		err_prefix(e, "exec %s", id);
	else
		rc = write_file(s->cfg.dir, json_name, proc.data, proc.len, e);
	buf_free(&proc);
	if (rc < 0)
		return NULL;
	struct exec *x = calloc(1, sizeof *x);
	if (!x || !(x->id = strdup(id))) {
		free(x);
		err_errno(e, ENOMEM, "exec %s", id);
		unlink(json_path);
		return NULL;
	}
	const char *args[] = {"exec", "--process", json_path, "--detach", NULL};
	if (run_with_io(s, req->tty, req->stdin_, name, args, &x->pio, &x->pid, e) < 0) {
		free(x->id);
		free(x);
		unlink(json_path);
		return NULL;
	}
	x->pio->owner = x;
	x->pio->on_done = exec_output_done;
	x->next = s->execs;
	s->execs = x;
	return x;
}

static void do_exec(struct shim *s, struct conn *c, struct request *req, const char *rest, size_t rest_len,
		    struct err *e)
{
	struct exec *x = exec_start(s, req, e);
	if (!x) {
		reply_err(s, c, e);
		conn_finish(s, c);
		return;
	}
	x->conn = c;
	c->exec = x;
	c->state = C_EXEC;
	c->want_stdout = c->want_stderr = true;
	pio_attach(x->pio, c);
	struct response r = {.pid = x->pid, .status = "running"};
	if (reply(s, c, &r) < 0)
		pio_detach_all(s, x->pio);
	pio_start(s, x->pio);
	if (req->stdin_ && x->conn == c && !c->broken) {
		c->copy_input = true;
		c->close_stdin = true;
		conn_queue_input(s, c, rest, rest_len);
	}
	if (x->conn == c) {
		buf_free(&c->req);
		conn_update(s, c);
	}
}

/* exec_finish ends an exec whose process exited and whose output ended
 * (or ran past its time): the exit code is written before the client's
 * connection closes, which tells it to read it. */
static void exec_finish(struct shim *s, struct exec *x)
{
	for (struct exec **pp = &s->execs; *pp; pp = &(*pp)->next) {
		if (*pp == x) {
			*pp = x->next;
			break;
		}
	}
	struct conn *c = x->conn;
	if (c) {
		if (c->pio)
			pio_detach(s, c->pio, c);
		c->exec = NULL;
	}
	char name[SHIM_PATH_MAX], line[32];
	int n = snprintf(line, sizeof line, "%d\n", exit_code(x->status));
	struct err e;
	err_clear(&e);
	snprintf(name, sizeof name, "exec-%s.exit", x->id);
	if (write_file(s->cfg.dir, name, line, (size_t)n, &e) < 0)
		diag("%s", e.msg);
	pio_free(s, x->pio);
	char path[SHIM_PATH_MAX];
	snprintf(name, sizeof name, "exec-%s.json", x->id);
	if (path_join(path, sizeof path, s->cfg.dir, name) == 0)
		unlink(path);
	snprintf(name, sizeof name, "exec-%s.pid", x->id);
	if (path_join(path, sizeof path, s->cfg.dir, name) == 0)
		unlink(path);
	free(x->id);
	free(x);
	if (c)
		conn_finish(s, c);
}

static void exec_output_done(struct shim *s, struct pio *p)
{
	struct exec *x = p->owner;
	if (x->exited)
		exec_finish(s, x);
}

static void handle_line(struct shim *s, struct conn *c, size_t line_len)
{
	struct request req;
	struct err e;
	err_clear(&e);
	const char *rest = c->req.data + line_len;
	size_t rest_len = c->req.len - line_len;
	if (request_decode(&req, c->req.data, line_len, &e) < 0) {
		reply_err(s, c, &e);
		conn_finish(s, c);
		return;
	}
	const char *op = req.op.data ? req.op.data : "";
	c->state = C_CLOSING;
	if (strcmp(op, "attach") == 0) {
		do_attach(s, c, &req, rest, rest_len, &e);
	} else if (strcmp(op, "exec") == 0) {
		do_exec(s, c, &req, rest, rest_len, &e);
	} else if (strcmp(op, "wait") == 0) {
		if (s->finished) {
			reply_state(s, c);
			conn_finish(s, c);
		} else if (rest_len > 0) {
			conn_close(s, c); /* the client sent more: as a hang-up */
		} else {
			c->state = C_WAIT;
			buf_free(&c->req);
			conn_update(s, c);
		}
	} else {
		do_control(s, c, &req, &e);
		conn_finish(s, c);
	}
	request_free(&req);
}

/* conn_read_request reads the request line; it may close c. */
static void conn_read_request(struct shim *s, struct conn *c)
{
	if (c->req.len == c->req.cap && buf_reserve(&c->req, c->req.cap ? 1 : REQUEST_BUF_INIT) < 0) {
		struct err e;
		err_set(&e, KIND_INVALID_ARGUMENT, "bad request: invalid argument: request line longer than %d bytes",
			MAX_REQUEST_LINE);
		reply_err(s, c, &e);
		conn_finish(s, c);
		return;
	}
	ssize_t n = read(c->w.fd, c->req.data + c->req.len, c->req.cap - c->req.len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		conn_close(s, c); /* gone before a whole line: no answer */
		return;
	}
	size_t old = c->req.len;
	c->req.len += (size_t)n;
	char *nl = memchr(c->req.data + old, '\n', (size_t)n);
	if (nl)
		handle_line(s, c, (size_t)(nl - c->req.data) + 1);
}

void conn_ready(struct shim *s, struct conn *c, uint32_t events)
{
	if (events & EPOLLOUT) {
		bool closing = c->state == C_CLOSING;
		conn_flush_out(s, c);
		if (closing)
			return; /* closed, or still flushing */
		/* c may have been closed by a broken write. */
		for (struct conn *x = s->conns; x != c; x = x->next)
			if (!x)
				return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	switch (c->state) {
	case C_REQUEST:
		conn_read_request(s, c);
		break;
	case C_WAIT:
		conn_close(s, c); /* the client sent something or hung up */
		break;
	case C_ATTACH:
	case C_EXEC:
		conn_read_stream(s, c, events);
		break;
	case C_CLOSING:
		if (events & (EPOLLHUP | EPOLLERR))
			conn_close(s, c);
		break;
	}
}

static void accept_ready(struct shim *s)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(s->listener.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Again once a connection closes. */
				diag("accept: %s", strerror(errno));
				watch_set(s, &s->listener, 0);
			}
			return;
		}
		struct conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			return;
		}
		c->w = (struct watch){.type = W_CONN, .fd = fd, .owner = c};
		c->req.max = MAX_REQUEST_LINE;
		c->state = C_REQUEST;
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		conn_update(s, c);
	}
}

/* stop_serving marks the container stopped, answers the waiters, and
 * closes the listening socket; the connections left get DRAIN_TIMEOUT_MS
 * to finish. */
static void stop_serving(struct shim *s)
{
	s->status = ST_STOPPED;
	s->finished = true;
	struct conn *next;
	for (struct conn *c = s->conns; c; c = next) {
		next = c->next;
		if (c->state == C_WAIT) {
			reply_state(s, c);
			conn_finish(s, c);
		}
	}
	watch_close(s, &s->listener);
	char sock[SHIM_PATH_MAX];
	if (path_join(sock, sizeof sock, s->cfg.dir, "shim.sock") == 0)
		unlink(sock);
	s->close_deadline = now_ms() + DRAIN_TIMEOUT_MS;
}

/* ---- the container ---- */

static void finalize(struct shim *s)
{
	struct err e;
	err_clear(&e);
	s->drain_deadline = 0;
	pio_detach_all(s, s->io);
	if (write_exit(s->cfg.dir, &s->exit, &e) < 0) {
		diag("%s", e.msg);
		s->result = 1;
	}
	if (log_close(&s->log) < 0) {
		diag("close json-file log: %s", strerror(errno));
		s->result = 1;
	}
	stop_serving(s);
}

/* end_unstarted ends a deferred shim whose container never ran (its
 * start failed, or never came): clients are detached, waiters answered,
 * and no exit files written, since nothing exited. */
static void end_unstarted(struct shim *s, const char *why)
{
	diag("%s", why);
	s->result = 1;
	s->start_deadline = 0;
	s->start_failed = true;
	pio_detach_all(s, s->io);
	log_close(&s->log);
	stop_serving(s);
}

static void init_output_done(struct shim *s, struct pio *p)
{
	(void)p;
	if (s->reaped && !s->finished)
		finalize(s);
}

void shim_child_exited(struct shim *s, pid_t pid, int status)
{
	if (pid == s->pid && !s->reaped) {
		s->reaped = true;
		s->reap_status = status;
		s->exit.code = exit_code(status);
		clock_gettime(CLOCK_REALTIME, &s->exit.at);
		s->exit.oom = oom_killed(s->cgroup);
		/* Processes outliving init (a host PID namespace) may hold the
		 * output open: it gets a bound. */
		if (s->io->done)
			finalize(s);
		else
			s->drain_deadline = now_ms() + DRAIN_TIMEOUT_MS;
		return;
	}
	for (struct exec *x = s->execs; x; x = x->next) {
		if (x->pid != pid || x->exited)
			continue;
		x->exited = true;
		x->status = status;
		if (x->pio->done)
			exec_finish(s, x);
		else
			x->deadline = now_ms() + DRAIN_TIMEOUT_MS;
		return;
	}
}

static void reap(struct shim *s)
{
	struct signalfd_siginfo si;
	while (read(s->sig.fd, &si, sizeof si) > 0)
		;
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;
		shim_child_exited(s, pid, st);
	}
}

static int mkdir_all(const char *path, mode_t mode)
{
	char p[PATH_MAX];
	if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *c = p + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = 0;
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -1;
		*c = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return -1;
	struct stat st;
	if (stat(p, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

int shim_mkdir(const char *path)
{
	return mkdir_all(path, 0700);
}

static int listen_socket(struct shim *s, struct err *e)
{
	char path[SHIM_PATH_MAX];
	if (path_join(path, sizeof path, s->cfg.dir, "shim.sock") < 0) {
		err_errno(e, ENAMETOOLONG, "shim: listen: bind %s/shim.sock", s->cfg.dir);
		return -1;
	}
	int fd = unix_listen(path, 4096, "shim: listen", e);
	if (fd < 0)
		return -1;
	s->listener = (struct watch){.type = W_LISTEN, .fd = fd};
	return 0;
}

/* find_runtime resolves the runtime's path (malloc'd); a function of its
 * own, so that its buffer is on the stack only while it runs. */
static char *find_runtime(const char *name, struct err *e)
{
	char found[PATH_MAX];
	if (look_path(name, found, sizeof found, e) < 0)
		return NULL;
	char *p = strdup(found);
	if (!p)
		err_errno(e, ENOMEM, "shim");
	return p;
}

int shim_new(struct shim *s, struct err *e)
{
	const struct config *cfg = &s->cfg;
	s->epfd = -1;
	s->sig = (struct watch){.type = W_SIGNAL, .fd = -1};
	s->listener = (struct watch){.type = W_LISTEN, .fd = -1};
	s->log.fd = -1;
	if (!cfg->id || !cfg->id[0] || !cfg->bundle || !cfg->bundle[0] || !cfg->dir || !cfg->dir[0] ||
	    !cfg->runtime || !cfg->runtime[0]) {
		err_set(e, KIND_INVALID_ARGUMENT, "shim: id, bundle, dir and runtime are required: invalid argument");
		return -1;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		err_errno(e, errno, "shim: become child subreaper");
		return -1;
	}
	if (mkdir_all(cfg->dir, 0700) < 0) {
		err_errno(e, errno, "shim: mkdir %s", cfg->dir);
		return -1;
	}
	char line[32];
	int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
	if (write_file(cfg->dir, "shim.pid", line, (size_t)n, e) < 0) {
		err_prefix(e, "shim");
		return -1;
	}
	if (!(s->runtime_path = find_runtime(cfg->runtime, e)))
		return -1;
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if ((s->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (s->sig.fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		err_errno(e, errno, "shim: event loop");
		return -1;
	}
	if (listen_socket(s, e) < 0)
		return -1;
	if (log_open(&s->log, &s->logstore, cfg->log_path, cfg->log_max_size, (int)cfg->log_max_files, e) < 0) {
		err_prefix(e, "shim");
		goto fail;
	}
	if (cfg->deferred) {
		/* Created and started by the start request; an engine gone
		 * before it leaves no shim behind for long. */
		if (!(s->io = new_io(cfg->tty, cfg->stdin_, e))) {
			log_close(&s->log);
			goto fail;
		}
		s->io->log = s->log.enabled ? &s->log : NULL;
		s->io->on_done = init_output_done;
		s->status = ST_CREATED;
		s->start_deadline = now_ms() + START_TIMEOUT_MS;
		return 0;
	}
	const char *args[] = {"create", "--bundle", cfg->bundle, NULL};
	if (run_with_io(s, cfg->tty, cfg->stdin_, "init", args, &s->io, &s->pid, e) < 0) {
		log_close(&s->log);
		goto fail;
	}
	s->io->log = s->log.enabled ? &s->log : NULL;
	s->io->on_done = init_output_done;
	s->status = ST_CREATED;
	s->cgroup = memory_cgroup(s->pid);
	return 0;
fail:;
	char sock[SHIM_PATH_MAX];
	close(s->listener.fd);
	s->listener.fd = -1;
	if (path_join(sock, sizeof sock, cfg->dir, "shim.sock") == 0)
		unlink(sock);
	return -1;
}

/* next_timeout is epoll_wait's timeout: until the nearest deadline, or -1
 * when there is none (an idle shim sleeps until something happens). */
static int next_timeout(struct shim *s, int64_t now)
{
	int64_t next = 0;
	if (s->drain_deadline)
		next = s->drain_deadline;
	if (s->start_deadline && (!next || s->start_deadline < next))
		next = s->start_deadline;
	if (s->close_deadline && (!next || s->close_deadline < next))
		next = s->close_deadline;
	for (struct exec *x = s->execs; x; x = x->next)
		if (x->deadline && (!next || x->deadline < next))
			next = x->deadline;
	if (!next)
		return -1;
	if (next <= now)
		return 0;
	return next - now > 60000 ? 60000 : (int)(next - now);
}

static void run_deadlines(struct shim *s, int64_t now)
{
	if (s->drain_deadline && now >= s->drain_deadline && !s->finished)
		finalize(s);
	if (s->start_deadline && now >= s->start_deadline && !s->finished)
		end_unstarted(s, "not started within 1m0s");
	struct exec *next;
	for (struct exec *x = s->execs; x; x = next) {
		next = x->next;
		if (x->deadline && now >= x->deadline)
			exec_finish(s, x);
	}
}

int shim_serve(struct shim *s)
{
	watch_set(s, &s->sig, EPOLLIN);
	watch_set(s, &s->listener, EPOLLIN);
	if (!s->cfg.deferred)
		pio_start(s, s->io);
	/* Children that exited before the loop began. */
	reap(s);
	for (;;) {
		if (s->finished && !s->conns)
			break;
		int64_t now = now_ms();
		if (s->close_deadline && now >= s->close_deadline)
			break;
		run_deadlines(s, now);
		if (s->finished && !s->conns)
			break;
		struct epoll_event ev;
		int n = epoll_wait(s->epfd, &ev, 1, next_timeout(s, now));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			diag("epoll_wait: %s", strerror(errno));
			return 1;
		}
		if (n == 0)
			continue;
		struct watch *w = ev.data.ptr;
		switch (w->type) {
		case W_SIGNAL:
			reap(s);
			break;
		case W_LISTEN:
			accept_ready(s);
			break;
		case W_CONN:
			conn_ready(s, w->owner, ev.events);
			break;
		case W_OUTPUT:
			pio_output_ready(s, w, ev.events);
			break;
		case W_STDIN:
			pio_stdin_ready(s, w->owner, ev.events);
			break;
		}
	}
	while (s->conns)
		conn_close(s, s->conns);
	while (s->execs) {
		struct exec *x = s->execs;
		s->execs = x->next;
		pio_free(s, x->pio);
		free(x->id);
		free(x);
	}
	pio_free(s, s->io);
	s->io = NULL;
	return s->result;
}
