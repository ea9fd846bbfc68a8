/*
 * fuzz_protocol.c - libFuzzer harness for proto_process, and its replayer
 *
 * The parser is the one part of the server that reads bytes chosen by
 * anyone who can connect, so it is fuzzed on its own, as protocol.h was
 * designed to allow: arbitrary bytes go through proto_process against a
 * real table (a small segment, huge pages off, so eviction is reached
 * quickly), exactly as a connection would present them.
 *
 * An input is a 2-byte header and the bytes "sent":
 *   byte 0  bit 0: a reply budget of one byte, so the parser stops after
 *                  every command (PROTO_FULL) and is called again with the
 *                  rest, as connection.c does when its bound is reached;
 *           bit 1: call the parser even when fewer than proto_conn.need
 *                  bytes are buffered (the connection never does; the
 *                  parser must cope anyway);
 *           bits 2-5: chunk size class c: the bytes arrive in chunks of
 *                  1 to 2^(c-1) bytes (c = 0: all at once; c = 1: one
 *                  byte per read);
 *   byte 1  seeds the generator that picks each chunk's size.
 * So the fuzzer mutates the split points too, and a command split across
 * reads (mid-line, mid-"\r\n", mid-data-block) is as likely as a whole one.
 *
 * The harness calls proto_process exactly as connection.c does (after
 * proto_peek_key, as connection_batch.c does): every
 * buffered byte and a reply budget, again after PROTO_FULL and
 * PROTO_ATTACH, until the parser says it needs more bytes.  After every
 * call it checks what a connection relies on: consumed <= presented; a
 * call that stops for more bytes asks for more than it has (or the
 * connection would wait for ever); PROTO_FULL only with the budget spent;
 * the output grew by at most a bounded
 * amount per byte consumed (one largest value plus a line per byte, and
 * never without consuming); replies end in "\r\n"; the unconsumed tail
 * stays below the longest line plus the largest data block.  A failed check
 * aborts, which libFuzzer and the sanitizers report as a crash.
 *
 * Built with -fsanitize=fuzzer, libFuzzer supplies main().  Built with
 * FUZZ_REPLAY_MAIN (the gcc and ASan builds of `make test`), main() replays
 * the files and directories named on its command line, each input three
 * ways: with its own header, one byte at a time, and all at once.
 *
 * Interface routines:
 *   LLVMFuzzerTestOneInput  one input (libFuzzer's entry point)
 *   main                    the replayer (FUZZ_REPLAY_MAIN only)
 */
#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cache.h"
#include "protocol.h"

#define FUZZ_MEMORY (8u << 20)
#define FUZZ_PARTITIONS 4u
#define FUZZ_MAX_ITEM (64u * 1024u)
/* memcached's longest line (get/gets may go to 1 MiB; see protocol.c). */
#define FUZZ_LINE_MAX (1u << 20)
/* Reply bytes one consumed input byte may produce: a whole value and its
 * header line ("VALUE <250-byte key> <flags> <len> <cas>"), or a slice
 * of `stats`.  Deliberately loose: it catches runaway output, not style. */
#define FUZZ_OUT_PER_BYTE (FUZZ_MAX_ITEM + 4096u)

#define FLAG_SMALL_BUDGET 0x01u
#define FLAG_IGNORE_NEED 0x02u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
	bool ready;
	bool trace; /* replayer: print the replies (FUZZ_TRACE=1) */
	struct cache cache;
	struct server_stats stats;
	struct server_settings settings;
	struct proto_ctx ctx;
} env;

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, \
				"fuzz_protocol: check failed: %s: ", #cond); \
			fprintf(stderr, __VA_ARGS__); \
			fputc('\n', stderr); \
			abort(); \
		} \
	} while (0)

/* env_init - the table and context every input runs against, once. */
static void env_init(void)
{
	struct cache_config cfg;
	char err[256];

	if (env.ready)
		return;
	memset(&cfg, 0, sizeof(cfg));
	cfg.table.memory = FUZZ_MEMORY;
	cfg.table.partitions = FUZZ_PARTITIONS;
	cfg.table.max_item_size = FUZZ_MAX_ITEM;
	cfg.seg.huge_pages = SEGMENT_HUGE_OFF;
	if (cache_create(&env.cache, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_protocol: cache_create: %s\n", err);
		abort();
	}
	if (cache_claim_proc(&env.cache) != 0) {
		fprintf(stderr, "fuzz_protocol: no proc slot\n");
		abort();
	}
	/* A fixed clock: an input replays the same way on any day. */
	table_tick(&env.cache.table, 1700000000u);
	env.settings.port = 11211;
	env.settings.listen = "127.0.0.1";
	env.settings.unix_socket = "/tmp/fuzz.sock";
	env.settings.memory = FUZZ_MEMORY;
	env.settings.workers = 1;
	env.settings.max_connections = 1024;
	env.settings.max_item_size = FUZZ_MAX_ITEM;
	env.settings.partitions = FUZZ_PARTITIONS;
	env.settings.huge_pages = "off";
	env.settings.page_size = 4096;
	env.settings.started = 1700000000;
	env.settings.pid = 1;
	env.ctx.table = &env.cache.table;
	env.ctx.stats = &env.stats;
	env.ctx.all = NULL;
	env.ctx.max_item_size = FUZZ_MAX_ITEM;
	env.ctx.version = "1.6.18";
	env.ctx.settings = &env.settings;
	env.ready = true;
}

/* A session: one connection's buffered input and the parser's state. */
struct session {
	struct proto_conn pc;
	struct proto_out out;
	char *in;
	size_t in_len;
	size_t in_cap;
	bool closed;
};

/*
 * present - one proto_process call on everything buffered, with every
 * check; the action it returned.
 */
static enum proto_action present(struct session *s, unsigned flags)
{
	enum proto_action action = PROTO_CONTINUE;
	size_t before = s->out.len, used, grew, left;

	s->out.limit = (flags & FLAG_SMALL_BUDGET) ? before + 1 : 0;
	/* As connection_batch.c does before it answers a read: the peek must
	 * stay inside the bytes, and the lookup reuses the hash it names. */
	(void)proto_peek_key(&s->pc, s->in, s->in_len);
	used = proto_process(&env.ctx, &s->pc, s->in, s->in_len, &s->out,
			     &action);
	CHECK(used <= s->in_len, "consumed %zu of %zu", used, s->in_len);
	CHECK(s->out.len >= before && s->out.len <= s->out.cap,
	      "out len %zu cap %zu before %zu", s->out.len, s->out.cap, before);
	grew = s->out.len - before;
	CHECK(grew <= (uint64_t)used * FUZZ_OUT_PER_BYTE,
	      "%zu reply bytes for %zu bytes consumed", grew, used);
	/* A binary request (first byte 0x80) is refused in binary, then the
	 * connection closes; every other reply is text lines. */
	if (grew > 0 && (unsigned char)s->out.data[before] == 0x81)
		CHECK(action == PROTO_CLOSE && before == 0,
		      "a binary reply that does not close the connection");
	else if (grew > 0)
		CHECK(grew >= 2 && memcmp(s->out.data + s->out.len - 2, "\r\n",
					  2) == 0,
		      "a reply of %zu bytes does not end in \\r\\n", grew);
	left = s->in_len - used;
	if (action == PROTO_CLOSE) {
		s->closed = true;
		return action;
	}
	if (action == PROTO_FULL)
		CHECK(s->out.limit != 0 && s->out.len >= s->out.limit,
		      "full with %zu of a budget of %zu", s->out.len,
		      s->out.limit);
	if (action == PROTO_ATTACH)
		CHECK(s->pc.attach_len > 0 && s->pc.attach_len <= used,
		      "attach line of %zu bytes, %zu used", s->pc.attach_len,
		      used);
	/* Stopped for more bytes: it must want more than it has, or a
	 * connection would wait on this input for ever. */
	if (action == PROTO_CONTINUE && left > 0)
		CHECK(s->pc.need > left, "stalled: need %zu with %zu buffered",
		      s->pc.need, left);
	memmove(s->in, s->in + used, left);
	s->in_len = left;
	return action;
}

/* drain - answer what is buffered, as a connection would. */
static void drain(struct session *s, unsigned flags)
{
	while (!s->closed && s->in_len > 0) {
		if (!(flags & FLAG_IGNORE_NEED) && s->in_len < s->pc.need)
			break;
		if (present(s, flags) == PROTO_CONTINUE)
			break;
		/* PROTO_FULL: the replies would be written now. */
		if (env.trace)
			fwrite(s->out.data, 1, s->out.len, stdout);
		s->out.len = 0;
	}
	/* An unconsumed tail is at most one line and one data block (a
	 * refused block is swallowed as it arrives, never buffered). */
	CHECK(s->closed || s->in_len <= FUZZ_LINE_MAX + FUZZ_MAX_ITEM + 2,
	      "%zu bytes held unconsumed", s->in_len);
	/* The replies would be written now; keep only the buffer. */
	if (env.trace)
		fwrite(s->out.data, 1, s->out.len, stdout);
	s->out.len = 0;
}

/* next_rand - xorshift32; the chunk sizes need variety, not quality. */
static uint32_t next_rand(uint32_t *state)
{
	uint32_t x = *state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}

/* run_session - send data[0, size) in chunks chosen by flags and seed. */
static void run_session(unsigned flags, unsigned seed, const uint8_t *data,
			size_t size)
{
	struct session s;
	unsigned chunk_class = (flags >> 2) & 0x0fu;
	uint32_t rng = 0x9e3779b9u ^ (seed * 0x01000193u);
	size_t pos = 0, n;

	memset(&s, 0, sizeof(s));
	proto_conn_init(&s.pc);
	if (size > 0) {
		s.in = malloc(size);
		CHECK(s.in != NULL, "out of memory");
		s.in_cap = size;
	}
	while (pos < size && !s.closed) {
		n = size - pos;
		if (chunk_class > 0) {
			size_t limit = (size_t)1 << (chunk_class - 1);
			size_t want = 1 + next_rand(&rng) % limit;

			if (want < n)
				n = want;
		}
		memcpy(s.in + s.in_len, data + pos, n);
		s.in_len += n;
		pos += n;
		drain(&s, flags);
	}
	free(s.in);
	free(s.out.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	env_init();
	if (size < 2)
		return 0;
	run_session(data[0], data[1], data + 2, size - 2);
	return 0;
}

#ifdef FUZZ_REPLAY_MAIN

/* replay_file - one input, with its header and then two fixed chunkings. */
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long len;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "fuzz_protocol: cannot read %s\n", path);
		if (f)
			fclose(f);
		return -1;
	}
	buf = malloc((size_t)len + 1);
	if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "fuzz_protocol: cannot read %s\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	if (len >= 2) {
		/* One byte per read, then all at once one command per
		 * call: the two extremes of how a command can arrive. */
		run_session(1u << 2, 0, buf + 2, (size_t)len - 2);
		run_session(FLAG_SMALL_BUDGET, 0, buf + 2, (size_t)len - 2);
	}
	free(buf);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* replay_path - a file, or every regular file of a directory, by name. */
static int replay_path(const char *path, unsigned *count)
{
	struct dirent **names;
	struct stat st;
	char sub[4096];
	int n, i, rc = 0;

	if (stat(path, &st) != 0) {
		fprintf(stderr,
			"fuzz_protocol: no such file or directory: %s\n", path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (replay_file(path) != 0)
			return -1;
		(*count)++;
		return 0;
	}
	n = scandir(path, &names, NULL, by_name);
	if (n < 0) {
		fprintf(stderr, "fuzz_protocol: cannot list %s\n", path);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.' && rc == 0) {
			snprintf(sub, sizeof(sub), "%s/%s", path,
				 names[i]->d_name);
			if (stat(sub, &st) == 0 && S_ISREG(st.st_mode)) {
				if (replay_file(sub) != 0)
					rc = -1;
				else
					(*count)++;
			}
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE-OR-DIR...\n", argv[0]);
		return 2;
	}
	env_init();
	env.trace = getenv("FUZZ_TRACE") != NULL;
	for (i = 1; i < argc; i++)
		if (replay_path(argv[i], &count) != 0)
			return 1;
	cache_destroy(&env.cache);
	if (count == 0) {
		fprintf(stderr, "fuzz_protocol: no inputs found\n");
		return 1;
	}
	printf("replayed %u inputs, each 3 ways: all checks passed\n", count);
	return 0;
}

#endif
