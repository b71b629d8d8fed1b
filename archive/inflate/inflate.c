/*
 * berth-inflate: gunzip into memory shared with berthd.
 *
 * `igzip -dc` writes what it inflates into a pipe, and berthd reads it out
 * again: two copies of every byte of a layer, a quarter of the work of
 * unpacking one. berth-inflate inflates (with ISA-L, as igzip does)
 * straight into segments of a shared memory object that berthd reads in
 * place:
 *
 *   berth-inflate SEGMENT_SIZE SEGMENTS
 *   fd 0  the gzip stream (one or more members)
 *   fd 3  the shared memory, SEGMENTS * SEGMENT_SIZE bytes
 *   fd 4  "filled": for each segment, in turn, its length (4 bytes, host
 *         order); the segment after the last one written is segment
 *         (n % SEGMENTS). Closed at the end of the stream.
 *   fd 5  "free": one byte from berthd for each segment it is done with.
 *
 * It exits 0 once the whole stream is inflated and checked (CRC and size of
 * every member), 1 with a message on stderr for a stream that is not gzip,
 * corrupt or cut short, 2 for bad usage.
 *
 * The stream comes from a registry: once the memory is mapped, the program
 * puts itself in seccomp's strict mode, where read, write and _exit are
 * all the kernel lets it do (any other call kills it). A bug in inflating
 * hostile input can then reach nothing but its own descriptors.
 */
#include <errno.h>
#include <isa-l/igzip_lib.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define IN_SIZE (1 << 20)

/* leave ends the process with _exit(2) itself: under strict seccomp,
 * exit_group(2), which exit and _exit call, is not allowed. */
static _Noreturn void leave(int status)
{
	syscall(SYS_exit, status);
	for (;;)
		;
}

static _Noreturn void die(const char *msg)
{
	fprintf(stderr, "berth-inflate: %s\n", msg);
	leave(1);
}

static _Noreturn void die_errno(const char *what)
{
	fprintf(stderr, "berth-inflate: %s: %s\n", what, strerror(errno));
	leave(1);
}

static const char *inflate_error(int ret)
{
	switch (ret) {
	case ISAL_INVALID_BLOCK:
		return "invalid deflate block";
	case ISAL_INVALID_SYMBOL:
		return "invalid deflate symbol";
	case ISAL_INVALID_LOOKBACK:
		return "invalid lookback distance";
	case ISAL_INVALID_WRAPPER:
		return "not in gzip format";
	case ISAL_UNSUPPORTED_METHOD:
		return "unsupported compression method";
	case ISAL_INCORRECT_CHECKSUM:
		return "checksum mismatch";
	case ISAL_NEED_DICT:
		return "stream needs a dictionary";
	}
	return "inflate failed";
}

static long parse_count(const char *s, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v <= 0 || v > max) {
		fprintf(stderr, "berth-inflate: bad number %s\n", s);
		exit(2);
	}
	return v;
}

/* read_in refills the input; it returns 0 at the end of the stream. */
static size_t read_in(uint8_t *buf)
{
	for (;;) {
		ssize_t n = read(0, buf, IN_SIZE);
		if (n >= 0)
			return (size_t)n;
		if (errno != EINTR)
			die_errno("read input");
	}
}

static void write_all(int fd, const void *p, size_t len, const char *what)
{
	const char *b = p;
	while (len > 0) {
		ssize_t n = write(fd, b, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die_errno(what);
		b += n;
		len -= (size_t)n;
	}
}

/* wait_free blocks until berthd frees a segment; it returns how many it
 * freed. */
static long wait_free(void)
{
	char b[64];
	for (;;) {
		ssize_t n = read(5, b, sizeof b);
		if (n > 0)
			return n;
		if (n == 0)
			die("berthd went away");
		if (errno != EINTR)
			die_errno("read free segments");
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: berth-inflate SEGMENT_SIZE SEGMENTS\n");
		return 2;
	}
	long seg = parse_count(argv[1], 64L << 20);
	long nseg = parse_count(argv[2], 64);
	uint8_t *mem = mmap(NULL, (size_t)(seg * nseg), PROT_READ | PROT_WRITE, MAP_SHARED, 3, 0);
	if (mem == MAP_FAILED)
		die_errno("map the shared memory");
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT) != 0)
		die_errno("enter seccomp strict mode");
	static uint8_t in[IN_SIZE];
	static struct inflate_state st;
	isal_inflate_init(&st);
	st.crc_flag = ISAL_GZIP;

	long credits = nseg, n = 0;
	int in_end = 0, done = 0;
	size_t avail = 0;
	uint8_t *next = in;
	while (!done) {
		if (credits == 0)
			credits += wait_free();
		uint8_t *out = mem + (n % nseg) * seg;
		st.next_out = out;
		st.avail_out = (uint32_t)seg;
		while (st.avail_out > 0) {
			if (avail == 0 && !in_end) {
				avail = read_in(in);
				next = in;
				in_end = avail == 0;
			}
			if (st.block_state == ISAL_BLOCK_FINISH) {
				/* A member ended: the stream ends here, or another
				 * member follows. */
				if (avail == 0 && in_end) {
					done = 1;
					break;
				}
				if (avail == 0)
					continue;
				isal_inflate_reset(&st);
				st.crc_flag = ISAL_GZIP;
			}
			st.next_in = next;
			st.avail_in = (uint32_t)avail;
			uint32_t out_before = st.avail_out;
			int ret = isal_inflate(&st);
			if (ret < 0 || ret == ISAL_NEED_DICT)
				die(inflate_error(ret));
			next = st.next_in;
			avail = st.avail_in;
			if (in_end && avail == 0 && st.block_state != ISAL_BLOCK_FINISH &&
			    st.avail_out == out_before)
				die("unexpected end of stream");
		}
		uint32_t len = (uint32_t)(seg - st.avail_out);
		if (len > 0) {
			write_all(4, &len, sizeof len, "write filled segment");
			n++;
			credits--;
		}
	}
	leave(0);
}
