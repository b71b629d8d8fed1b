/*
 * shim.h: the declarations shared by berth-shim's C sources.
 *
 * berth-shim monitors one container (see shim/doc.go, which specifies the
 * protocol this program speaks): it runs the OCI runtime's create, holds
 * the container's stdio, writes its json-file log, reaps it as child
 * subreaper, records its exit in files and serves requests on
 * <dir>/shim.sock. Everything runs in one thread around one epoll loop;
 * SIGCHLD arrives through a signalfd. Nothing wakes an idle shim.
 *
 * Every byte that comes from the container or from a client is untrusted:
 * buffers are bounded, and a client that sends too much is refused.
 */
#ifndef BERTH_SHIM_H
#define BERTH_SHIM_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* The most output read from a process at once. */
#define OUTPUT_BUF_SIZE (32 * 1024)
/* The longest request line (an exec's process is the long one). */
#define MAX_REQUEST_LINE (1024 * 1024)
/* The first allocation of a connection's request buffer. */
#define REQUEST_BUF_INIT 512
/* How long output may go on after its process exited, and how long the
 * connections get to finish after the container exited. */
#define DRAIN_TIMEOUT_MS 5000
/* How long a deferred shim waits for its start request. */
#define START_TIMEOUT_MS 60000
/* The most output bytes in one json-file entry (as Docker's). */
#define MAX_ENTRY_SIZE (16 * 1024)
/* Encoded entries waiting to be written to the log: room for the largest
 * entry (every byte escaped as \u00XX) and its envelope. */
#define LOG_PENDING_SIZE (128 * 1024)
/* The most bytes of an error message kept. */
#define ERR_MSG_SIZE 4096
/* The longest path of a file in the shim's directory: the directory must
 * fit a socket address (108 bytes) anyway. Small, like every buffer on
 * the stack: the pages a stack ever touched stay with an idle shim. */
#define SHIM_PATH_MAX 512
/* The longest line of the runtime's JSON log read (bufio.Scanner's). */
#define RUNTIME_LOG_LINE_MAX (64 * 1024)

/* Streams of the multiplexed frames. */
enum { STREAM_STDIN = 0, STREAM_STDOUT = 1, STREAM_STDERR = 2 };

/* errdefs categories as they go on the wire (Response.Kind). */
enum kind {
	KIND_NONE = 0,
	KIND_NOT_FOUND,
	KIND_ALREADY_EXISTS,
	KIND_INVALID_ARGUMENT,
	KIND_FAILED_PRECONDITION,
	KIND_CONFLICT,
	KIND_UNAVAILABLE,
	KIND_NOT_IMPLEMENTED,
};
const char *kind_name(enum kind k);

/* err is a failure: its message and category. */
struct err {
	enum kind kind;
	char msg[ERR_MSG_SIZE];
};
void err_set(struct err *e, enum kind k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* err_prefix puts "prefix: " before the message, keeping the kind. */
void err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* unix_listen listens on a new stream socket bound at path (a file left
 * there is removed first), non-blocking and close-on-exec; what names it
 * in errors. It returns the descriptor, or -1 with e set. */
int unix_listen(const char *path, int backlog, const char *what, struct err *e);

/* err_errno sets "what: strerror(errnum)" without a kind. */
void err_errno(struct err *e, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* err_clear empties e without touching all of it. */
void err_clear(struct err *e);

/* buf is a byte buffer that grows up to max, or lives in fixed storage. */
struct buf {
	char *data;
	size_t len, cap, max;
	bool fixed; /* data is not the heap's: never reallocated or freed */
};
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_appendc(struct buf *b, char c);
int buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_consume(struct buf *b, size_t n);
void buf_free(struct buf *b);

/* ---- json.c ---- */

/* jdec reads JSON from p[0:len]. */
struct jdec {
	const char *p;
	size_t len, pos;
	int depth;
	char err[160];
};
void jdec_init(struct jdec *d, const char *p, size_t len);
size_t jdec_skip_space(struct jdec *d);
/* jdec_string reads a string (or null, as empty) into out (cleared
 * first); out may be NULL to only check it. */
int jdec_string(struct jdec *d, struct buf *out);
int jdec_bool(struct jdec *d, bool *v);
int jdec_int(struct jdec *d, long long min, long long max, long long *v);
int jdec_skip(struct jdec *d);
/* jdec_object reads an object, calling member with the decoder at each
 * member's value, which member must consume. */
typedef int (*jdec_member_fn)(struct jdec *d, const char *key, size_t keylen, void *ctx);
int jdec_object(struct jdec *d, jdec_member_fn member, void *ctx);
bool jdec_at_end(struct jdec *d);

/* json_append_string appends s quoted as encoding/json quotes it (HTML
 * characters and U+2028/9 escaped, invalid UTF-8 as U+FFFD). */
int json_append_string(struct buf *b, const char *s, size_t n);
/* json_quoted_len is the most bytes json_append_string adds for n bytes. */
#define JSON_QUOTED_MAX(n) (6 * (n) + 2)

/* format_rfc3339nano writes t as Go's time.RFC3339Nano in UTC. */
size_t format_rfc3339nano(char *dst, size_t cap, const struct timespec *t);

/* request is one decoded Request line. */
struct request {
	struct buf op, exec, id;
	bool stdin_, stdout_, stderr_, close_stdin, all, tty;
	long long width, height, signal;
	const char *process; /* the raw "process" value inside the line; NULL when absent or null */
	size_t process_len;
};
int request_decode(struct request *r, const char *line, size_t len, struct err *e);
void request_free(struct request *r);

/* exit_info is how a process ended. */
struct exit_info {
	int code;
	struct timespec at;
	bool oom;
};

/* response is the line that answers a request. */
struct response {
	const char *error;
	enum kind kind;
	int pid;
	const char *status;
	const struct exit_info *exit;
};
int response_encode(struct buf *b, const struct response *r);

/* process_rewrite checks an exec's process JSON and writes it back with
 * "terminal" set to tty. */
int process_rewrite(const char *raw, size_t len, bool tty, struct buf *out, struct err *e);

/* runtime_log_error returns in msg (size cap) the message of the last
 * error-level line of the runtime's JSON log after offset; *found tells
 * whether there was one. */
void runtime_log_error(const char *path, off_t offset, char *msg, size_t cap, bool *found);

/* ---- logfile.c ---- */

/* logfile writes a json-file log: one JSON object per line of output. */
struct logfile {
	bool enabled, closed, reported;
	char *path;
	long long max_size;
	int max_files;
	int fd;
	long long size;
	size_t plen[2];    /* unterminated output per stream: 0 stdout, 1 stderr */
	char *partial[2];  /* MAX_ENTRY_SIZE bytes each */
	struct buf pending; /* entries encoded, not yet written */
};
/* logstore is a log's fixed buffers: only what output touches of them
 * becomes resident. */
struct logstore {
	char partial[2][MAX_ENTRY_SIZE];
	char pending[LOG_PENDING_SIZE];
};
int log_open(struct logfile *l, struct logstore *store, const char *path, long long max_size, int max_files,
	     struct err *e);
/* log_write records a chunk of output of stream (STREAM_STDOUT or
 * STREAM_STDERR) read at t. */
void log_write(struct logfile *l, int stream, const char *data, size_t n, const struct timespec *t);
void log_flush(struct logfile *l);
int log_close(struct logfile *l);

/* ---- exitfile.c ---- */

/* write_file writes dir/name atomically (temp file and rename), mode 0600,
 * without fsync: these are run-time state. */
int write_file(const char *dir, const char *name, const char *data, size_t len, struct err *e);
int write_exit(const char *dir, const struct exit_info *x, struct err *e);
/* exit_code is Docker's code for a wait status: 128+signal if killed. */
int exit_code(int status);

/* ---- stdio.c ---- */

struct shim;
struct conn;

enum watch_type { W_SIGNAL, W_LISTEN, W_CONN, W_OUTPUT, W_STDIN };

/* watch is one descriptor in the epoll set; owner is the object it
 * belongs to. events is what it is registered for (0: not registered). */
struct watch {
	enum watch_type type;
	int fd;
	uint32_t events;
	void *owner;
	int stream; /* W_OUTPUT: STREAM_STDOUT or STREAM_STDERR */
};
int watch_set(struct shim *s, struct watch *w, uint32_t events);
void watch_close(struct shim *s, struct watch *w);

/* pio is one process's stdio on the shim's side. */
struct pio {
	bool tty;
	int master;          /* pty master, -1 without a tty */
	struct watch out[2]; /* stdout, stderr (tty: out[0] is the master) */
	struct watch in;     /* stdin pipe's write end, or a dup of the master */
	int child[3];        /* the runtime's stdio, closed once it ran */
	int open_outputs;    /* output streams not yet at their end */
	bool started, done, paused;
	bool has_size; /* a terminal size asked for before the terminal came */
	unsigned short rows, cols;
	struct logfile *log; /* NULL: output is not logged */
	struct conn *clients;
	void (*on_done)(struct shim *s, struct pio *p);
	void *owner;
};
struct pio *pio_new_pipes(bool with_stdin, struct err *e);
struct pio *pio_new_tty(struct err *e);
void pio_close_child(struct pio *p);
void pio_start(struct shim *s, struct pio *p);
void pio_free(struct shim *s, struct pio *p);
void pio_output_ready(struct shim *s, struct watch *w, uint32_t events);
void pio_stdin_ready(struct shim *s, struct pio *p, uint32_t events);
/* pio_attach adds c as a client; false when the output already ended. */
bool pio_attach(struct pio *p, struct conn *c);
void pio_detach(struct shim *s, struct pio *p, struct conn *c);
/* pio_detach_all ends every client (conn_gone). */
void pio_detach_all(struct shim *s, struct pio *p);
/* pio_resume reads output again once no client has output pending. */
void pio_resume(struct shim *s, struct pio *p);
bool pio_has_stdin(struct pio *p);
void pio_close_stdin(struct shim *s, struct pio *p);
int pio_resize(struct pio *p, unsigned width, unsigned height, struct err *e);

/* console is the socket on which the runtime sends a pty master. */
struct console {
	char path[SHIM_PATH_MAX];
	int fd;
};
int console_listen(struct console *c, const char *path, struct err *e);
int console_receive(struct console *c, struct err *e);
void console_close(struct console *c);
/* pio_take_console receives the pty master the runtime sent into p. */
int pio_take_console(struct pio *p, struct console *c, struct err *e);

/* ---- runtime.c ---- */

int look_path(const char *name, char *out, size_t cap, struct err *e);
/* run_runtime runs the OCI runtime with args and stdio (-1 entries get
 * /dev/null) and waits for it; a failure carries its logged error. */
int run_runtime(struct shim *s, const int stdio[3], const char *const *args, struct err *e);
int read_pid(const char *path, pid_t *pid, struct err *e);
/* memory_cgroup returns pid's memory cgroup directory (malloc'd), NULL
 * if unknown. */
char *memory_cgroup(pid_t pid);
bool oom_killed(const char *dir);

/* ---- server.c ---- */

enum conn_state { C_REQUEST, C_ATTACH, C_EXEC, C_WAIT, C_CLOSING };

/* conn is one client connection. */
struct conn {
	struct watch w;
	enum conn_state state;
	struct buf req; /* the request line as it arrives */
	/* output not yet sent: a reply, a frame */
	char *out;
	size_t out_len, out_off;
	bool want_stdout, want_stderr;
	struct pio *pio; /* attached to, or NULL */
	struct conn *next_client;
	/* input to the process's stdin */
	bool copy_input, close_stdin, input_eof;
	char *in;
	size_t in_len, in_off;
	bool read_eof, broken;
	struct exec *exec;
	struct conn *prev, *next;
};
/* conn_send queues data after what is pending and sends what it can;
 * -1 once the client is broken. */
int conn_send(struct shim *s, struct conn *c, const void *data, size_t n);
int conn_sendv(struct shim *s, struct conn *c, const void *a, size_t an, const void *b, size_t bn);
/* conn_update registers the events c waits for. */
void conn_update(struct shim *s, struct conn *c);
/* conn_gone ends a connection whose output has ended or broke. */
void conn_gone(struct shim *s, struct conn *c);
void conn_ready(struct shim *s, struct conn *c, uint32_t events);
/* conn_input_flush writes pending input to the process; false if it
 * must wait. */
void conn_input_flush(struct shim *s, struct conn *c);

/* exec is a process started in the container by a client. */
struct exec {
	char *id;
	pid_t pid;
	struct pio *pio;
	struct conn *conn;
	bool exited;
	int status;
	int64_t deadline; /* ms on CLOCK_MONOTONIC; 0: none */
	struct exec *next;
};

enum status { ST_CREATED, ST_RUNNING, ST_STOPPED };

/* config is what berth-shim is started with. */
struct config {
	const char *id, *bundle, *dir, *runtime, *runtime_root, *log_path;
	long long log_max_size, log_max_files;
	bool stdin_, tty;
	bool deferred; /* created and started by the start request (runtime run --detach) */
	int ready_fd;
};

struct shim {
	struct config cfg;
	char *runtime_path;
	char *cgroup; /* the container's memory cgroup directory, or NULL */
	int epfd;
	struct watch sig, listener;
	struct pio *io;
	pid_t pid;
	enum status status;
	bool reaped, finished;
	bool start_failed;      /* deferred: the start failed or never came */
	int64_t start_deadline; /* deferred: when to give up waiting for the start */
	int reap_status;
	struct exit_info exit;
	int64_t drain_deadline, close_deadline;
	struct conn *conns;
	struct exec *execs;
	unsigned consoles;
	int result;
	struct logfile log;
	/* Big buffers last: pages that nothing touched cost nothing. */
	char iobuf[OUTPUT_BUF_SIZE]; /* output and input pass through here */
	struct logstore logstore;
};

int shim_new(struct shim *s, struct err *e);
/* shim_mkdir makes path and its parents, mode 0700. */
int shim_mkdir(const char *path);
int shim_serve(struct shim *s);
void shim_child_exited(struct shim *s, pid_t pid, int status);
int64_t now_ms(void);
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Helpers of system calls. */
int write_all(int fd, const void *p, size_t n);
int set_nonblock(int fd);
ssize_t read_retry(int fd, void *p, size_t n);
int path_join(char *out, size_t cap, const char *dir, const char *name);
/* fmt is snprintf that reports truncation: -1 (ENAMETOOLONG). */
int fmt(char *dst, size_t cap, const char *format, ...) __attribute__((format(printf, 3, 4)));

#endif
