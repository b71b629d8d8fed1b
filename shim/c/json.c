/*
 * json.c: the JSON berth-shim reads and writes. It reads Request lines
 * (as shim/wire.go's decoder does: unknown members skipped, null as the
 * zero value, nothing after the object), an exec's process (checked and
 * given its "terminal"), and the runtime's JSON log; it writes Response
 * lines and quotes strings exactly as Go's encoding/json does, so that
 * the Go client and the json-file readers see what the Go shim wrote.
 * Input is untrusted: every read is bounds-checked and nesting is limited.
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* The deepest nesting of arrays and objects read. */
#define MAX_DEPTH 100

#define RUNE_ERROR 0xFFFDu

/* utf8_decode returns the rune at s[0:n] (n > 0) and its length, as Go's
 * utf8.DecodeRune: an invalid sequence is U+FFFD of length 1. */
static uint32_t utf8_decode(const unsigned char *s, size_t n, size_t *size)
{
	unsigned char c = s[0];
	*size = 1;
	if (c < 0x80)
		return c;
	unsigned char lo = 0x80, hi = 0xBF;
	size_t len;
	uint32_t r;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		r = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		r = c & 0x0F;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		r = c & 0x07;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		return RUNE_ERROR;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return RUNE_ERROR;
	r = r << 6 | (s[1] & 0x3F);
	for (size_t i = 2; i < len; i++) {
		if (s[i] < 0x80 || s[i] > 0xBF)
			return RUNE_ERROR;
		r = r << 6 | (s[i] & 0x3F);
	}
	*size = len;
	return r;
}

static int utf8_append(struct buf *b, uint32_t r)
{
	unsigned char out[4];
	size_t n;
	if (r > 0x10FFFF || (r >= 0xD800 && r < 0xE000))
		r = RUNE_ERROR;
	if (r < 0x80) {
		out[0] = (unsigned char)r;
		n = 1;
	} else if (r < 0x800) {
		out[0] = (unsigned char)(0xC0 | r >> 6);
		out[1] = (unsigned char)(0x80 | (r & 0x3F));
		n = 2;
	} else if (r < 0x10000) {
		out[0] = (unsigned char)(0xE0 | r >> 12);
		out[1] = (unsigned char)(0x80 | (r >> 6 & 0x3F));
		out[2] = (unsigned char)(0x80 | (r & 0x3F));
		n = 3;
	} else {
		out[0] = (unsigned char)(0xF0 | r >> 18);
		out[1] = (unsigned char)(0x80 | (r >> 12 & 0x3F));
		out[2] = (unsigned char)(0x80 | (r >> 6 & 0x3F));
		out[3] = (unsigned char)(0x80 | (r & 0x3F));
		n = 4;
	}
	return buf_append(b, out, n);
}

int json_append_string(struct buf *b, const char *str, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	if (buf_reserve(b, 2) < 0 || buf_appendc(b, '"') < 0)
		return -1;
	size_t start = 0;
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		if (c < 0x80) {
			if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
				i++;
				continue;
			}
			if (buf_append(b, s + start, i - start) < 0)
				return -1;
			char esc[6] = {'\\', (char)c};
			size_t len = 2;
			switch (c) {
			case '"':
			case '\\':
				break;
			case '\n':
				esc[1] = 'n';
				break;
			case '\r':
				esc[1] = 'r';
				break;
			case '\t':
				esc[1] = 't';
				break;
			default:
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 0xF];
				len = 6;
			}
			if (buf_append(b, esc, len) < 0)
				return -1;
			i++;
			start = i;
			continue;
		}
		size_t size;
		uint32_t r = utf8_decode(s + i, n - i, &size);
		if (r == RUNE_ERROR && size == 1) {
			if (buf_append(b, s + start, i - start) < 0 || buf_append(b, "\\ufffd", 6) < 0)
				return -1;
			i++;
			start = i;
			continue;
		}
		if (r == 0x2028 || r == 0x2029) {
			char esc[6] = {'\\', 'u', '2', '0', '2', hex[r & 0xF]};
			if (buf_append(b, s + start, i - start) < 0 || buf_append(b, esc, 6) < 0)
				return -1;
			i += size;
			start = i;
			continue;
		}
		i += size;
	}
	if (buf_append(b, s + start, n - start) < 0)
		return -1;
	return buf_appendc(b, '"');
}

size_t format_rfc3339nano(char *dst, size_t cap, const struct timespec *t)
{
	struct tm tm;
	time_t sec = t->tv_sec;
	if (cap == 0 || !gmtime_r(&sec, &tm)) {
		if (cap)
			dst[0] = 0;
		return 0;
	}
	int n = snprintf(dst, cap, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	size_t len = (size_t)n;
	if (t->tv_nsec > 0 && t->tv_nsec < 1000000000) {
		char frac[16];
		snprintf(frac, sizeof frac, "%09ld", (long)t->tv_nsec);
		size_t f = 9;
		while (f > 0 && frac[f - 1] == '0')
			f--;
		frac[f] = 0;
		n = snprintf(dst + len, cap - len, ".%s", frac);
		if (n < 0 || (size_t)n >= cap - len)
			return 0;
		len += (size_t)n;
	}
	if (len + 2 > cap)
		return 0;
	dst[len++] = 'Z';
	dst[len] = 0;
	return len;
}

/* ---- decoding ---- */

void jdec_init(struct jdec *d, const char *p, size_t len)
{
	d->p = p;
	d->len = len;
	d->pos = 0;
	d->depth = 0;
	d->err[0] = 0;
}

static int jdec_fail(struct jdec *d, const char *what)
{
	if (!d->err[0])
		snprintf(d->err, sizeof d->err, "JSON syntax error at offset %zu: %s", d->pos, what);
	return -1;
}

size_t jdec_skip_space(struct jdec *d)
{
	while (d->pos < d->len) {
		char c = d->p[d->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		d->pos++;
	}
	return d->pos;
}

static char jdec_peek(struct jdec *d)
{
	if (jdec_skip_space(d) == d->len)
		return 0;
	return d->p[d->pos];
}

static int jdec_consume(struct jdec *d, char c)
{
	if (jdec_peek(d) != c) {
		char what[16];
		snprintf(what, sizeof what, "want '%c'", c);
		return jdec_fail(d, what);
	}
	d->pos++;
	return 0;
}

static bool jdec_literal(struct jdec *d, const char *word)
{
	size_t n = strlen(word);
	jdec_skip_space(d);
	if (d->len - d->pos >= n && memcmp(d->p + d->pos, word, n) == 0) {
		d->pos += n;
		return true;
	}
	return false;
}

bool jdec_at_end(struct jdec *d)
{
	return jdec_skip_space(d) == d->len;
}

static bool jdec_hex4(struct jdec *d, uint32_t *r)
{
	if (d->len - d->pos < 4)
		return false;
	uint32_t v = 0;
	for (size_t i = 0; i < 4; i++) {
		char c = d->p[d->pos + i];
		int x;
		if (c >= '0' && c <= '9')
			x = c - '0';
		else if (c >= 'a' && c <= 'f')
			x = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			x = c - 'A' + 10;
		else
			return false;
		v = v << 4 | (uint32_t)x;
	}
	d->pos += 4;
	*r = v;
	return true;
}

/* jdec_escape decodes the escape at d->pos (a backslash) onto out. */
static int jdec_escape(struct jdec *d, struct buf *out)
{
	if (d->pos + 1 >= d->len)
		return jdec_fail(d, "unterminated escape");
	char c = d->p[d->pos + 1];
	d->pos += 2;
	char lit;
	switch (c) {
	case '"':
	case '\\':
	case '/':
		lit = c;
		break;
	case 'b':
		lit = '\b';
		break;
	case 'f':
		lit = '\f';
		break;
	case 'n':
		lit = '\n';
		break;
	case 'r':
		lit = '\r';
		break;
	case 't':
		lit = '\t';
		break;
	case 'u': {
		uint32_t r;
		if (!jdec_hex4(d, &r))
			return jdec_fail(d, "bad \\u escape");
		if (r >= 0xD800 && r < 0xE000) {
			/* A pair makes one rune; a lone half is U+FFFD. */
			size_t save = d->pos;
			uint32_t r2;
			if (d->pos + 1 < d->len && d->p[d->pos] == '\\' && d->p[d->pos + 1] == 'u') {
				d->pos += 2;
				if (jdec_hex4(d, &r2) && r < 0xDC00 && r2 >= 0xDC00 && r2 < 0xE000)
					return out ? utf8_append(out, 0x10000 + ((r - 0xD800) << 10 | (r2 - 0xDC00)))
						   : 0;
			}
			d->pos = save;
			r = RUNE_ERROR;
		}
		return out ? utf8_append(out, r) : 0;
	}
	default:
		return jdec_fail(d, "bad escape");
	}
	return out ? buf_appendc(out, lit) : 0;
}

int jdec_string(struct jdec *d, struct buf *out)
{
	if (out)
		out->len = 0;
	if (jdec_literal(d, "null"))
		return 0;
	if (jdec_consume(d, '"') < 0)
		return -1;
	size_t start = d->pos;
	while (d->pos < d->len) {
		unsigned char c = (unsigned char)d->p[d->pos];
		if (c == '"') {
			if (out && buf_append(out, d->p + start, d->pos - start) < 0)
				return jdec_fail(d, "string too long");
			d->pos++;
			return 0;
		}
		if (c < 0x20)
			return jdec_fail(d, "control character in string");
		if (c == '\\') {
			if (out && buf_append(out, d->p + start, d->pos - start) < 0)
				return jdec_fail(d, "string too long");
			if (jdec_escape(d, out) < 0)
				return jdec_fail(d, "string too long");
			start = d->pos;
			continue;
		}
		if (c >= 0x80) {
			size_t size;
			uint32_t r = utf8_decode((const unsigned char *)d->p + d->pos, d->len - d->pos, &size);
			if (r == RUNE_ERROR && size == 1) {
				if (out && (buf_append(out, d->p + start, d->pos - start) < 0 ||
					    utf8_append(out, RUNE_ERROR) < 0))
					return jdec_fail(d, "string too long");
				d->pos++;
				start = d->pos;
				continue;
			}
			d->pos += size;
			continue;
		}
		d->pos++;
	}
	return jdec_fail(d, "unterminated string");
}

int jdec_bool(struct jdec *d, bool *v)
{
	if (jdec_literal(d, "true")) {
		*v = true;
		return 0;
	}
	if (jdec_literal(d, "false") || jdec_literal(d, "null")) {
		*v = false;
		return 0;
	}
	return jdec_fail(d, "want a boolean");
}

/* jdec_number finds the text of the number at d->pos. */
static int jdec_number(struct jdec *d, size_t *start)
{
	*start = jdec_skip_space(d);
	while (d->pos < d->len) {
		char c = d->p[d->pos];
		if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'))
			break;
		d->pos++;
	}
	if (d->pos == *start)
		return jdec_fail(d, "want a number");
	return 0;
}

int jdec_int(struct jdec *d, long long min, long long max, long long *v)
{
	if (jdec_literal(d, "null")) {
		*v = 0;
		return 0;
	}
	size_t start;
	if (jdec_number(d, &start) < 0)
		return -1;
	/* As strconv.ParseInt(text, 10, 64): a sign, then only digits. */
	size_t i = start;
	bool neg = false;
	if (d->p[i] == '+' || d->p[i] == '-') {
		neg = d->p[i] == '-';
		i++;
	}
	if (i == d->pos)
		return jdec_fail(d, "number does not fit");
	unsigned long long u = 0;
	for (; i < d->pos; i++) {
		char c = d->p[i];
		if (c < '0' || c > '9')
			return jdec_fail(d, "number does not fit");
		if (u > (ULLONG_MAX - 9) / 10)
			return jdec_fail(d, "number does not fit");
		u = u * 10 + (unsigned)(c - '0');
	}
	long long n;
	if (neg) {
		if (u > (unsigned long long)LLONG_MAX + 1)
			return jdec_fail(d, "number does not fit");
		n = u == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)u;
	} else {
		if (u > (unsigned long long)LLONG_MAX)
			return jdec_fail(d, "number does not fit");
		n = (long long)u;
	}
	if (n < min || n > max)
		return jdec_fail(d, "number does not fit");
	*v = n;
	return 0;
}

static int skip_member(struct jdec *d, const char *key, size_t keylen, void *ctx)
{
	(void)key;
	(void)keylen;
	(void)ctx;
	return jdec_skip(d);
}

int jdec_skip(struct jdec *d)
{
	char c = jdec_peek(d);
	if (c == '{')
		return jdec_object(d, skip_member, NULL);
	if (c == '[') {
		if (++d->depth > MAX_DEPTH)
			return jdec_fail(d, "nested too deep");
		d->pos++;
		if (jdec_peek(d) == ']') {
			d->pos++;
			d->depth--;
			return 0;
		}
		for (;;) {
			if (jdec_skip(d) < 0)
				return -1;
			c = jdec_peek(d);
			if (c == ',') {
				d->pos++;
			} else if (c == ']') {
				d->pos++;
				d->depth--;
				return 0;
			} else {
				return jdec_fail(d, "want , or ]");
			}
		}
	}
	if (c == '"')
		return jdec_string(d, NULL);
	if (c == 't' || c == 'f' || c == 'n') {
		if (jdec_literal(d, "true") || jdec_literal(d, "false") || jdec_literal(d, "null"))
			return 0;
		return jdec_fail(d, "bad literal");
	}
	size_t start;
	return jdec_number(d, &start);
}

int jdec_object(struct jdec *d, jdec_member_fn member, void *ctx)
{
	if (jdec_consume(d, '{') < 0)
		return -1;
	if (++d->depth > MAX_DEPTH)
		return jdec_fail(d, "nested too deep");
	if (jdec_peek(d) == '}') {
		d->pos++;
		d->depth--;
		return 0;
	}
	struct buf key = {.max = d->len * 3 + 16};
	int rc = -1;
	for (;;) {
		if (jdec_string(d, &key) < 0 || jdec_consume(d, ':') < 0)
			break;
		if (member(d, key.data ? key.data : "", key.len, ctx) < 0)
			break;
		char c = jdec_peek(d);
		if (c == ',') {
			d->pos++;
		} else if (c == '}') {
			d->pos++;
			d->depth--;
			rc = 0;
			break;
		} else {
			jdec_fail(d, "want , or }");
			break;
		}
	}
	buf_free(&key);
	return rc;
}

/* ---- requests ---- */

static bool key_is(const char *key, size_t keylen, const char *name)
{
	return keylen == strlen(name) && memcmp(key, name, keylen) == 0;
}

static int request_member(struct jdec *d, const char *key, size_t keylen, void *ctx)
{
	struct request *r = ctx;
	if (key_is(key, keylen, "op"))
		return jdec_string(d, &r->op);
	if (key_is(key, keylen, "stdin"))
		return jdec_bool(d, &r->stdin_);
	if (key_is(key, keylen, "stdout"))
		return jdec_bool(d, &r->stdout_);
	if (key_is(key, keylen, "stderr"))
		return jdec_bool(d, &r->stderr_);
	if (key_is(key, keylen, "closeStdin"))
		return jdec_bool(d, &r->close_stdin);
	if (key_is(key, keylen, "width"))
		return jdec_int(d, 0, 65535, &r->width);
	if (key_is(key, keylen, "height"))
		return jdec_int(d, 0, 65535, &r->height);
	if (key_is(key, keylen, "exec"))
		return jdec_string(d, &r->exec);
	if (key_is(key, keylen, "signal"))
		return jdec_int(d, LLONG_MIN, LLONG_MAX, &r->signal);
	if (key_is(key, keylen, "all"))
		return jdec_bool(d, &r->all);
	if (key_is(key, keylen, "id"))
		return jdec_string(d, &r->id);
	if (key_is(key, keylen, "tty"))
		return jdec_bool(d, &r->tty);
	if (key_is(key, keylen, "process")) {
		size_t start = jdec_skip_space(d);
		if (jdec_skip(d) < 0)
			return -1;
		size_t n = d->pos - start;
		if (n == 4 && memcmp(d->p + start, "null", 4) == 0) {
			r->process = NULL;
			r->process_len = 0;
		} else {
			r->process = d->p + start;
			r->process_len = n;
		}
		return 0;
	}
	return jdec_skip(d);
}

int request_decode(struct request *r, const char *line, size_t len, struct err *e)
{
	memset(r, 0, sizeof *r);
	size_t max = len * 3 + 16;
	r->op.max = r->exec.max = r->id.max = max;
	struct jdec d;
	jdec_init(&d, line, len);
	int rc = jdec_object(&d, request_member, r);
	if (rc == 0 && !jdec_at_end(&d))
		rc = jdec_fail(&d, "data after the request");
	if (rc < 0) {
		err_set(e, KIND_INVALID_ARGUMENT, "bad request: invalid argument: %s", d.err);
		request_free(r);
		return -1;
	}
	/* NUL-terminate the strings for the callers. */
	if (buf_appendc(&r->op, 0) < 0 || buf_appendc(&r->exec, 0) < 0 || buf_appendc(&r->id, 0) < 0) {
		err_set(e, KIND_INVALID_ARGUMENT, "bad request: invalid argument: out of memory");
		request_free(r);
		return -1;
	}
	r->op.len--;
	r->exec.len--;
	r->id.len--;
	return 0;
}

void request_free(struct request *r)
{
	buf_free(&r->op);
	buf_free(&r->exec);
	buf_free(&r->id);
}

/* ---- responses ---- */

static int key_open(struct buf *b, bool *open, const char *key)
{
	if (buf_appendc(b, *open ? ',' : '{') < 0)
		return -1;
	*open = true;
	if (json_append_string(b, key, strlen(key)) < 0)
		return -1;
	return buf_appendc(b, ':');
}

int response_encode(struct buf *b, const struct response *r)
{
	bool open = false;
	if (r->error && r->error[0]) {
		if (key_open(b, &open, "error") < 0 || json_append_string(b, r->error, strlen(r->error)) < 0)
			return -1;
	}
	if (r->kind != KIND_NONE) {
		const char *k = kind_name(r->kind);
		if (key_open(b, &open, "kind") < 0 || json_append_string(b, k, strlen(k)) < 0)
			return -1;
	}
	if (r->pid != 0) {
		if (key_open(b, &open, "pid") < 0 || buf_appendf(b, "%d", r->pid) < 0)
			return -1;
	}
	if (r->status && r->status[0]) {
		if (key_open(b, &open, "status") < 0 || json_append_string(b, r->status, strlen(r->status)) < 0)
			return -1;
	}
	if (r->exit) {
		char at[64];
		format_rfc3339nano(at, sizeof at, &r->exit->at);
		if (key_open(b, &open, "exit") < 0 || buf_appendf(b, "{\"code\":%d,\"exitedAt\":\"%s\"", r->exit->code, at) < 0)
			return -1;
		if (r->exit->oom && buf_append(b, ",\"oom\":true", 11) < 0)
			return -1;
		if (buf_appendc(b, '}') < 0)
			return -1;
	}
	if (!open)
		return buf_append(b, "{}", 2);
	return buf_appendc(b, '}');
}

/* ---- an exec's process ---- */

enum jtype { J_ANY, J_BOOL, J_STRING, J_NUMBER, J_OBJECT, J_ARRAY, J_STRINGS };

/* The members of the runtime-spec's Process and the JSON type each needs
 * (encoding/json matches names without regard to case). */
static const struct {
	const char *name;
	enum jtype type;
} process_members[] = {
	{"terminal", J_BOOL},	      {"consoleSize", J_OBJECT},    {"user", J_OBJECT},
	{"args", J_STRINGS},	      {"commandLine", J_STRING},    {"env", J_STRINGS},
	{"cwd", J_STRING},	      {"capabilities", J_OBJECT},   {"rlimits", J_ARRAY},
	{"noNewPrivileges", J_BOOL},  {"apparmorProfile", J_STRING}, {"oomScoreAdj", J_NUMBER},
	{"scheduler", J_OBJECT},      {"selinuxLabel", J_STRING},   {"ioPriority", J_OBJECT},
	{"execCPUAffinity", J_OBJECT},
};

struct process_ctx {
	struct buf *out;
	char bad[128];
};

static enum jtype member_type(const char *key, size_t keylen)
{
	for (size_t i = 0; i < sizeof process_members / sizeof process_members[0]; i++) {
		const char *n = process_members[i].name;
		if (strlen(n) == keylen && strncasecmp(n, key, keylen) == 0)
			return process_members[i].type;
	}
	return J_ANY;
}

/* check_type reads the value at d, which must be of type t (or null). */
static int check_type(struct jdec *d, enum jtype t, bool *ok)
{
	char c = jdec_peek(d);
	*ok = true;
	if (c == 'n' || t == J_ANY)
		return jdec_skip(d);
	switch (t) {
	case J_BOOL:
		*ok = c == 't' || c == 'f';
		break;
	case J_STRING:
		*ok = c == '"';
		break;
	case J_NUMBER:
		*ok = c == '-' || (c >= '0' && c <= '9');
		break;
	case J_OBJECT:
		*ok = c == '{';
		break;
	case J_ARRAY:
		*ok = c == '[';
		break;
	case J_STRINGS:
		if (c != '[') {
			*ok = false;
			break;
		}
		d->pos++;
		if (jdec_peek(d) == ']') {
			d->pos++;
			return 0;
		}
		for (;;) {
			c = jdec_peek(d);
			if (c != '"' && c != 'n')
				*ok = false;
			if (jdec_skip(d) < 0)
				return -1;
			c = jdec_peek(d);
			if (c == ',') {
				d->pos++;
			} else if (c == ']') {
				d->pos++;
				return 0;
			} else {
				return jdec_fail(d, "want , or ]");
			}
		}
	case J_ANY:
		break;
	}
	return jdec_skip(d);
}

static int process_member(struct jdec *d, const char *key, size_t keylen, void *ctx)
{
	struct process_ctx *p = ctx;
	enum jtype t = member_type(key, keylen);
	size_t start = jdec_skip_space(d);
	bool ok;
	if (check_type(d, t, &ok) < 0)
		return -1;
	if (!ok && !p->bad[0])
		snprintf(p->bad, sizeof p->bad, "member %.*s has the wrong type", (int)(keylen > 64 ? 64 : keylen), key);
	if (t == J_BOOL && keylen == 8 && strncasecmp(key, "terminal", 8) == 0)
		return 0; /* replaced */
	if (buf_appendc(p->out, ',') < 0 || json_append_string(p->out, key, keylen) < 0 ||
	    buf_appendc(p->out, ':') < 0 || buf_append(p->out, d->p + start, d->pos - start) < 0)
		return jdec_fail(d, "process too large");
	return 0;
}

int process_rewrite(const char *raw, size_t len, bool tty, struct buf *out, struct err *e)
{
	struct process_ctx p = {.out = out};
	struct jdec d;
	jdec_init(&d, raw, len);
	out->len = 0;
	int rc = -1;
	if (buf_append(out, tty ? "{\"terminal\":true" : "{\"terminal\":false", tty ? 16 : 17) == 0) {
		if (jdec_peek(&d) != '{') {
			jdec_skip(&d);
			snprintf(p.bad, sizeof p.bad, "not an object");
		} else {
			rc = jdec_object(&d, process_member, &p);
		}
	}
	if (rc < 0 || p.bad[0]) {
		err_set(e, KIND_INVALID_ARGUMENT, "process: invalid argument: %s", p.bad[0] ? p.bad : d.err);
		return -1;
	}
	if (buf_appendc(out, '}') < 0) {
		err_set(e, KIND_INVALID_ARGUMENT, "process: invalid argument: too large");
		return -1;
	}
	return 0;
}

/* ---- the runtime's log ---- */

struct log_line {
	struct buf level, msg;
	bool bad;
};

static int log_line_member(struct jdec *d, const char *key, size_t keylen, void *ctx)
{
	struct log_line *l = ctx;
	struct buf *dst = NULL;
	if (keylen == 5 && strncasecmp(key, "level", 5) == 0)
		dst = &l->level;
	else if (keylen == 3 && strncasecmp(key, "msg", 3) == 0)
		dst = &l->msg;
	if (!dst)
		return jdec_skip(d);
	char c = jdec_peek(d);
	if (c == 'n')
		return jdec_skip(d); /* null leaves the field as it was */
	if (c != '"') {
		l->bad = true;
		return jdec_skip(d);
	}
	return jdec_string(d, dst);
}

/* consider_line keeps the message of line if it is an error entry. */
static void consider_line(const char *line, size_t n, char *msg, size_t cap, bool *found)
{
	struct log_line l = {.level = {.max = RUNTIME_LOG_LINE_MAX * 3}, .msg = {.max = RUNTIME_LOG_LINE_MAX * 3}};
	struct jdec d;
	jdec_init(&d, line, n);
	if (jdec_peek(&d) == '{' && jdec_object(&d, log_line_member, &l) == 0 && jdec_at_end(&d) && !l.bad &&
	    l.level.len == 5 && memcmp(l.level.data, "error", 5) == 0) {
		size_t m = l.msg.len < cap - 1 ? l.msg.len : cap - 1;
		if (m)
			memcpy(msg, l.msg.data, m);
		msg[m] = 0;
		*found = true;
	}
	buf_free(&l.level);
	buf_free(&l.msg);
}

void runtime_log_error(const char *path, off_t offset, char *msg, size_t cap, bool *found)
{
	*found = false;
	if (cap == 0)
		return;
	msg[0] = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char *line = malloc(RUNTIME_LOG_LINE_MAX);
	if (!line || lseek(fd, offset, SEEK_SET) < 0) {
		free(line);
		close(fd);
		return;
	}
	size_t len = 0;
	for (;;) {
		ssize_t r = read_retry(fd, line + len, RUNTIME_LOG_LINE_MAX - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		size_t start = 0;
		for (;;) {
			char *nl = memchr(line + start, '\n', len - start);
			if (!nl)
				break;
			size_t end = (size_t)(nl - line);
			size_t n = end - start;
			if (n > 0 && line[start + n - 1] == '\r')
				n--;
			consider_line(line + start, n, msg, cap, found);
			start = end + 1;
		}
		memmove(line, line + start, len - start);
		len -= start;
		if (len == RUNTIME_LOG_LINE_MAX) {
			len = 0; /* a line too long ends the scan, as bufio.Scanner's */
			goto out;
		}
	}
	if (len > 0) {
		if (line[len - 1] == '\r')
			len--;
		consider_line(line, len, msg, cap, found);
	}
out:
	free(line);
	close(fd);
}
