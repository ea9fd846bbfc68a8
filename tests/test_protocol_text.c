/*
 * test_protocol_text.c - tests for server/protocol.c and protocol_text.c
 *
 * Each test drives proto_process directly (no sockets) on a real cache:
 * a 64 MiB segment with 16 partitions.  Expected replies are the bytes
 * memcached 1.6.18 sends for the same input (checked against
 * /usr/bin/memcached while writing them), except where a comment says the
 * value is ours (stats fields, the version string).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cache.h"
#include "protocol.h"
#include "protocol_fixture.h"

static void test_set_get_gets(void **state)
{
	struct fx *f = *state;

	expect(f, "set a 5 0 3\r\nabc\r\nget a\r\n",
	       "STORED\r\nVALUE a 5 3\r\nabc\r\nEND\r\n");
	feed(f, "gets a\r\n", 8);
	assert_memory_equal(f->out.data, "VALUE a 5 3 ", 12);
	expect(f, "get nope\r\n", "END\r\n");
	expect(f, "set b 0 0 1\r\nx\r\nget a nope b a\r\n",
	       "STORED\r\nVALUE a 5 3\r\nabc\r\nVALUE b 0 1\r\nx\r\n"
	       "VALUE a 5 3\r\nabc\r\nEND\r\n");
	/* Spaces: memcached splits on single spaces and skips empty tokens. */
	expect(f, " get a  b\r\n",
	       "VALUE a 5 3\r\nabc\r\nVALUE b 0 1\r\nx\r\nEND\r\n");
	/* A bare \n ends a line too. */
	expect(f, "get b\nget b\r\n",
	       "VALUE b 0 1\r\nx\r\nEND\r\nVALUE b 0 1\r\nx\r\nEND\r\n");
	/* 4294967296 as flags is 0 in memcached 1.6 (truncated), not an error. */
	expect(f, "set c 4294967296 0 1\r\ny\r\nget c\r\n",
	       "STORED\r\nVALUE c 0 1\r\ny\r\nEND\r\n");
	/* A negative exptime stores an item that is already gone. */
	expect(f, "set d 0 -1 1\r\nx\r\nget d\r\n", "STORED\r\nEND\r\n");
}

static void test_get_many_keys(void **state)
{
	struct fx *f = *state;
	char line[512];
	size_t n = 0;
	int i;

	/* More keys than memcached's 24 tokens: the rest is tokenized again. */
	expect(f, "set k29 0 0 2\r\nzz\r\n", "STORED\r\n");
	n += (size_t)snprintf(line, sizeof(line), "get");
	for (i = 0; i < 30; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, " k%d", i);
	snprintf(line + n, sizeof(line) - n, "\r\n");
	expect(f, line, "VALUE k29 0 2\r\nzz\r\nEND\r\n");
}

static void test_storage_modes(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "add a 0 0 1\r\nx\r\nadd a 0 0 1\r\ny\r\n"
	       "replace b 0 0 1\r\nz\r\nappend b 0 0 1\r\nz\r\n"
	       "prepend b 0 0 1\r\nz\r\nappend a 0 0 2\r\nzz\r\n"
	       "prepend a 0 0 2\r\nyy\r\nreplace a 0 0 1\r\nr\r\nget a b\r\n",
	       "STORED\r\nNOT_STORED\r\nNOT_STORED\r\nNOT_STORED\r\n"
	       "NOT_STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\n"
	       "VALUE a 0 1\r\nr\r\nEND\r\n");
	expect(f,
	       "set p 0 0 1\r\nb\r\nappend p 7 0 1\r\nc\r\n"
	       "prepend p 9 0 1\r\na\r\nget p\r\n",
	       "STORED\r\nSTORED\r\nSTORED\r\nVALUE p 0 3\r\nabc\r\nEND\r\n");
}

static void test_cas(void **state)
{
	struct fx *f = *state;
	char line[128];
	unsigned long long cas;

	expect(f, "set a 0 0 1\r\n1\r\n", "STORED\r\n");
	feed(f, "gets a\r\n", 8);
	assert_int_equal(sscanf(f->out.data, "VALUE a 0 1 %llu", &cas), 1);
	snprintf(line, sizeof(line), "cas a 0 0 1 %llu\r\n2\r\n", cas + 1000);
	expect(f, line, "EXISTS\r\n");
	expect(f, "cas b 0 0 1 1\r\n2\r\n", "NOT_FOUND\r\n");
	/* Too few tokens is ERROR, and the data line is then a command. */
	expect(f, "cas a 0 0 1\r\n2\r\n", "ERROR\r\nERROR\r\n");
	expect(f, "cas a 0 0 1 abc\r\n2\r\n",
	       "CLIENT_ERROR bad command line format\r\nERROR\r\n");
	snprintf(line, sizeof(line), "cas a 0 0 1 %llu\r\n3\r\nget a\r\n", cas);
	expect(f, line, "STORED\r\nVALUE a 0 1\r\n3\r\nEND\r\n");
	assert_int_equal(f->stats->cas_hits, 1);
	assert_int_equal(f->stats->cas_badval, 1);
	assert_int_equal(f->stats->cas_misses, 1);
}

static void test_bad_lines(void **state)
{
	struct fx *f = *state;

	expect(f, "set a 0 0 -1\r\n", "CLIENT_ERROR bad command line format\r\n");
	expect(f, "set a 0 0 abc\r\nxyz\r\n",
	       "CLIENT_ERROR bad command line format\r\nERROR\r\n");
	expect(f, "set a 0 0\r\n", "ERROR\r\n");
	expect(f, "set a -1 0 3\r\nabc\r\n",
	       "CLIENT_ERROR bad command line format\r\nERROR\r\n");
	expect(f, "set a 0 0 1 noreply extra\r\nx\r\n", "ERROR\r\nERROR\r\n");
	expect(f, "set a 0 0 1 foo\r\nx\r\n", "STORED\r\n");
	expect(f, "get\r\ngets\r\ngetx a\r\nfoo\r\n\r\nGET a\r\nget \r\n",
	       "ERROR\r\nERROR\r\nERROR\r\nERROR\r\nERROR\r\nERROR\r\nERROR\r\n");
	expect(f,
	       "set a 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 "
	       "21 22 23 24 25 26\r\nxxx\r\n",
	       "ERROR\r\nERROR\r\n");
}

static void test_bad_data_chunk(void **state)
{
	struct fx *f = *state;

	/* Five bytes are taken as the block; the lone \n left is a command. */
	expect(f, "set a 0 0 3\r\nabcd\r\nget a\r\n",
	       "CLIENT_ERROR bad data chunk\r\nERROR\r\nEND\r\n");
	expect(f, "set a 0 0 3 noreply\r\nabcd\r\nget a\r\n", "ERROR\r\nEND\r\n");
	expect(f, "set a 0 0 1\r\n1\r\r\n",
	       "CLIENT_ERROR bad data chunk\r\nERROR\r\n");
}

static void test_key_length(void **state)
{
	struct fx *f = *state;
	char k250[251], k251[252], buf[1200];

	memset(k250, 'k', 250);
	k250[250] = '\0';
	memset(k251, 'k', 251);
	k251[251] = '\0';
	snprintf(buf, sizeof(buf), "set %s 0 0 1\r\nx\r\n", k250);
	expect(f, buf, "STORED\r\n");
	snprintf(buf, sizeof(buf), "get %s\r\n", k250);
	feed(f, buf, strlen(buf));
	assert_int_equal(f->out.len, 6 + 250 + 6 + 3 + 5);
	/* A bad key fails the whole get: values already found are dropped. */
	snprintf(buf, sizeof(buf), "get %s %s %s\r\n", k250, k251, k250);
	expect(f, buf, "CLIENT_ERROR bad command line format\r\n");
	snprintf(buf, sizeof(buf),
		 "set %s 0 0 1\r\nx\r\ndelete %s\r\n"
		 "incr %s 1\r\ntouch %s 1\r\n",
		 k251, k251, k251, k251);
	expect(f, buf,
	       "CLIENT_ERROR bad command line format\r\nERROR\r\n"
	       "CLIENT_ERROR bad command line format\r\n"
	       "CLIENT_ERROR bad command line format\r\n"
	       "CLIENT_ERROR bad command line format\r\n");
}

/* A length that overflows memcached's int with its "\r\n" is a bad command
 * line there, and what follows is read as commands. */
static void test_set_length_near_int_max(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "set k 0 0 2147483647\r\nversion\r\n"
	       "cas k 0 0 2147483646 1\r\nversion\r\n"
	       "ms k 2147483647\r\nversion\r\n",
	       "CLIENT_ERROR bad command line format\r\nVERSION 1.6.18\r\n"
	       "CLIENT_ERROR bad command line format\r\nVERSION 1.6.18\r\n"
	       "CLIENT_ERROR bad command line format\r\nVERSION 1.6.18\r\n");
}

/* memcached's strtoull stops at the first white space: a number its decr
 * padded with spaces and an append extended still reads as that number. */
static void test_incr_decr_padded_number(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "set n 0 0 20\r\n18446744073709551614\r\nincr n 307\r\n"
	       "append n 0 0 2\r\n12\r\ndecr n 1\r\nget n\r\n"
	       "set m 0 0 4\r\n 7\t1\r\nincr m 1\r\nset o 0 0 2\r\n-0\r\n"
	       "incr o 1\r\nset p 0 0 2\r\n-1\r\nincr p 1\r\n"
	       "set r 0 0 3\r\n+12\r\nincr r 1\r\n",
	       "STORED\r\n305\r\nSTORED\r\n304\r\n"
	       "VALUE n 0 22\r\n304                   \r\nEND\r\n"
	       "STORED\r\n8\r\nSTORED\r\n1\r\nSTORED\r\n"
	       "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
	       "STORED\r\n13\r\n");
}

static void test_incr_decr(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\n"
	       "incr n abc\r\nincr n -1\r\nincr x 1\r\nincr n\r\n"
	       "incr n 18446744073709551615\r\n",
	       "STORED\r\n15\r\n0\r\n"
	       "CLIENT_ERROR invalid numeric delta argument\r\n"
	       "CLIENT_ERROR invalid numeric delta argument\r\n"
	       "NOT_FOUND\r\nERROR\r\n18446744073709551615\r\n");
	/* incr wraps at 2^64. */
	expect(f, "incr n 1\r\n", "0\r\n");
	expect(f, "set s 0 0 1\r\na\r\nincr s 1\r\ndecr s 1 noreply\r\n",
	       "STORED\r\nCLIENT_ERROR cannot increment or decrement "
	       "non-numeric value\r\n");
	expect(f, "decr x 1 2\r\n", "NOT_FOUND\r\n");
}

static void test_touch_gat(void **state)
{
	struct fx *f = *state;

	expect(f, "touch a 10\r\n", "NOT_FOUND\r\n");
	expect(f,
	       "set a 3 0 1\r\n1\r\ntouch a 10\r\ntouch a abc\r\ntouch a\r\n"
	       "touch a 10 noreply\r\ntouch a 1 noreply x\r\n",
	       "STORED\r\nTOUCHED\r\nCLIENT_ERROR invalid exptime argument\r\n"
	       "ERROR\r\nERROR\r\n");
	expect(f, "gat 10 b\r\ngat 10 a b a\r\n",
	       "END\r\nVALUE a 3 1\r\n1\r\nVALUE a 3 1\r\n1\r\nEND\r\n");
	feed(f, "gats 10 a\r\n", 11);
	assert_memory_equal(f->out.data, "VALUE a 3 1 ", 12);
	expect(f, "gat a\r\ngat abc a\r\ngat\r\ngat 10\r\n",
	       "CLIENT_ERROR invalid exptime argument\r\n"
	       "CLIENT_ERROR invalid exptime argument\r\nERROR\r\nEND\r\n");
	/* A TTL in the past makes the item gone. */
	expect(f, "touch a -1\r\nget a\r\n", "TOUCHED\r\nEND\r\n");
}

static void test_delete(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "delete a\r\nset a 0 0 1\r\n1\r\ndelete a 0\r\ndelete a\r\n"
	       "set a 0 0 1\r\n1\r\ndelete a 1\r\ndelete a noreply\r\n"
	       "delete a 0 noreply\r\ndelete\r\ndelete a noreply extra\r\n"
	       "get a\r\n",
	       "NOT_FOUND\r\nSTORED\r\nDELETED\r\nNOT_FOUND\r\nSTORED\r\n"
	       "CLIENT_ERROR bad command line format.  Usage: delete <key> "
	       "[noreply]\r\nERROR\r\n"
	       "CLIENT_ERROR bad command line format.  Usage: delete <key> "
	       "[noreply]\r\nEND\r\n");
	assert_int_equal(f->stats->delete_hits, 2);
}

static void test_flush_version_verbosity(void **state)
{
	struct fx *f = *state;

	expect(f, "set a 0 0 1\r\n1\r\nflush_all\r\nget a\r\n",
	       "STORED\r\nOK\r\nEND\r\n");
	expect(f,
	       "flush_all 10\r\nflush_all noreply\r\nflush_all abc\r\n"
	       "flush_all 0 noreply\r\nflush_all -1\r\nflush_all 1 2\r\n"
	       "flush_all 0 noreply x\r\n",
	       "OK\r\nCLIENT_ERROR invalid exptime argument\r\nOK\r\nOK\r\n"
	       "ERROR\r\n");
	expect(f, "version\r\nversion x\r\n",
	       "VERSION 1.6.18\r\nVERSION 1.6.18\r\n");
	expect(f,
	       "verbosity 1\r\nverbosity\r\nverbosity abc\r\n"
	       "verbosity 1 noreply\r\nverbosity 1 2\r\nverbosity 1 2 3\r\n",
	       "OK\r\nERROR\r\nCLIENT_ERROR bad command line format\r\nOK\r\n"
	       "ERROR\r\n");
	assert_int_equal(f->verbosity, 1);
}

static void test_quit_and_close(void **state)
{
	struct fx *f = *state;
	const char *in = "version\r\nquit\r\nversion\r\n";
	size_t used;

	f->out.len = 0;
	used = proto_process(&f->ctx, &f->conn, in, strlen(in), &f->out,
			     &f->action);
	assert_int_equal(f->action, PROTO_CLOSE);
	assert_int_equal(used, strlen("version\r\nquit\r\n"));
	assert_int_equal(f->out.len, strlen("VERSION 1.6.18\r\n"));

	/* memcached hangs up on an HTTP request, without a reply. */
	proto_conn_init(&f->conn);
	f->out.len = 0;
	proto_process(&f->ctx, &f->conn, "GET / HTTP/1.1\r\n", 16, &f->out,
		      &f->action);
	assert_int_equal(f->action, PROTO_CLOSE);
	assert_int_equal(f->out.len, 0);
}

static void test_line_too_long(void **state)
{
	struct fx *f = *state;
	char *buf = malloc(3000);
	size_t used;

	assert_non_null(buf);
	/* 2047 bytes without a newline: wait for more. */
	memset(buf, 'x', 3000);
	f->out.len = 0;
	used = proto_process(&f->ctx, &f->conn, buf, 2047, &f->out, &f->action);
	assert_int_equal(used, 0);
	assert_int_equal(f->action, PROTO_CONTINUE);
	assert_int_equal(f->conn.need, 2048);
	/* 3000: memcached closes without a word. */
	proto_process(&f->ctx, &f->conn, buf, 3000, &f->out, &f->action);
	assert_int_equal(f->action, PROTO_CLOSE);
	assert_int_equal(f->out.len, 0);
	/* A get's key list may be longer. */
	proto_conn_init(&f->conn);
	memcpy(buf, "get ", 4);
	used = proto_process(&f->ctx, &f->conn, buf, 3000, &f->out, &f->action);
	assert_int_equal(used, 0);
	assert_int_equal(f->action, PROTO_CONTINUE);
	/* A long line that is complete is just a command. */
	memcpy(buf, "xxxx", 4);
	memcpy(buf + 2998, "\r\n", 2);
	f->out.len = 0;
	used = proto_process(&f->ctx, &f->conn, buf, 3000, &f->out, &f->action);
	assert_int_equal(used, 3000);
	assert_int_equal(f->out.len, 7);
	free(buf);
}

/*
 * The reply budget: the parser starts no command once the replies reach
 * out.limit, says PROTO_FULL, and goes on from there when called again.
 */
static void test_reply_budget(void **state)
{
	struct fx *f = *state;
	const char *in = "version\r\nversion\r\nset a 0 0 1\r\nx\r\nget a\r\n";
	size_t used, total = 0;

	f->out.len = 0;
	f->out.limit = 1;
	used = proto_process(&f->ctx, &f->conn, in, strlen(in), &f->out,
			     &f->action);
	assert_int_equal(f->action, PROTO_FULL);
	assert_int_equal(used, strlen("version\r\n"));
	assert_int_equal(f->out.len, strlen("VERSION 1.6.18\r\n"));
	/* Room for two more replies: the set and its data block go whole. */
	total = used;
	f->out.limit = f->out.len + 20;
	used = proto_process(&f->ctx, &f->conn, in + total, strlen(in) - total,
			     &f->out, &f->action);
	assert_int_equal(f->action, PROTO_FULL);
	assert_int_equal(used, strlen("version\r\nset a 0 0 1\r\nx\r\n"));
	total += used;
	f->out.limit = 0;
	used = proto_process(&f->ctx, &f->conn, in + total, strlen(in) - total,
			     &f->out, &f->action);
	assert_int_equal(f->action, PROTO_CONTINUE);
	assert_int_equal(total + used, strlen(in));
	f->out.data[f->out.len] = '\0';
	assert_string_equal(f->out.data, "VERSION 1.6.18\r\nVERSION 1.6.18\r\n"
					 "STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
}

/* A client program's attach line is handed back, not answered. */
static void test_attach_reported(void **state)
{
	struct fx *f = *state;
	const char *in = "version\r\nshmkv_attach 7\r\nversion\r\n";
	size_t used;

	f->out.len = 0;
	used = proto_process(&f->ctx, &f->conn, in, strlen(in), &f->out,
			     &f->action);
	assert_int_equal(f->action, PROTO_ATTACH);
	assert_int_equal(used, strlen("version\r\nshmkv_attach 7\r\n"));
	assert_int_equal(f->conn.attach_len, strlen("shmkv_attach 7\r\n"));
	assert_int_equal(f->out.len, strlen("VERSION 1.6.18\r\n"));
	/* Only the command itself: "shmkv_attachx" is an unknown command. */
	expect(f, "shmkv_attachx\r\n", "ERROR\r\n");
}

/* Values of every size come back whole, header and bytes, cas included. */
static void test_value_sizes(void **state)
{
	static const size_t sizes[] = { 0, 1, 4095, 4096, 4097, 100000, MAX_ITEM };
	struct fx *f = *state;
	char *in = malloc(MAX_ITEM + 64), *want = malloc(MAX_ITEM + 64);
	size_t i, n;

	assert_non_null(in);
	assert_non_null(want);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		n = (size_t)snprintf(in, 64, "set big 7 0 %zu\r\n", sizes[i]);
		memset(in + n, 'a' + (int)i, sizes[i]);
		memcpy(in + n + sizes[i], "\r\n", 2);
		feed(f, in, n + sizes[i] + 2);
		assert_string_equal(f->out.data, "STORED\r\n");
		n = (size_t)snprintf(want, 64, "VALUE big 7 %zu\r\n", sizes[i]);
		memset(want + n, 'a' + (int)i, sizes[i]);
		memcpy(want + n + sizes[i], "\r\nEND\r\n", 8);
		feed(f, "get big\r\n", 9);
		assert_int_equal(f->out.len, n + sizes[i] + 7);
		assert_memory_equal(f->out.data, want, f->out.len);
	}
	free(in);
	free(want);
}

static void test_noreply(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "set a 0 0 1 noreply\r\nx\r\nadd a 0 0 1 noreply\r\ny\r\n"
	       "replace a 0 0 1 noreply\r\nz\r\nappend q 0 0 1 noreply\r\nz\r\n"
	       "incr a 1 noreply\r\ndelete nope noreply\r\nget a\r\n",
	       "VALUE a 0 1\r\nz\r\nEND\r\n");
}

static void test_pipeline_1000(void **state)
{
	struct fx *f = *state;
	size_t cap = 1000 * 64, n = 0, wn = 0;
	char *in = malloc(cap), *want = malloc(cap);
	int i;

	assert_non_null(in);
	assert_non_null(want);
	for (i = 0; i < 1000; i++) {
		if (i % 2 == 0) {
			n += (size_t)snprintf(in + n, cap - n,
					      "set key%d 0 0 %d\r\nv%d\r\n", i,
					      i < 10	? 2
					      : i < 100 ? 3
							: 4,
					      i);
			wn += (size_t)snprintf(want + wn, cap - wn, "STORED\r\n");
		} else {
			n += (size_t)snprintf(in + n, cap - n, "get key%d\r\n",
					      i - 1);
			wn += (size_t)snprintf(want + wn, cap - wn,
					       "VALUE key%d 0 %d\r\nv%d\r\nEND\r\n",
					       i - 1,
					       i - 1 < 10    ? 2
					       : i - 1 < 100 ? 3
							     : 4,
					       i - 1);
		}
	}
	feed(f, in, n);
	assert_int_equal(f->out.len, wn);
	assert_memory_equal(f->out.data, want, wn);
	assert_int_equal(f->stats->cmd_set, 500);
	assert_int_equal(f->stats->get_hits, 500);
	free(in);
	free(want);
}

/* The same replies whether the input arrives at once or a byte at a time. */
static void test_byte_at_a_time(void **state)
{
	struct fx *f = *state;
	const char *in = "set a 0 0 5\r\nhello\r\nget a\r\nincr a 1\r\n"
			 "set n 0 0 1\r\n7\r\nincr n 3\r\nset a 0 0 3\r\nxyzw\r\n"
			 "delete n\r\nquit\r\n";
	size_t len = strlen(in), have, off = 0;
	struct proto_out out = { 0 };
	char *whole;
	size_t whole_len;

	feed(f, in, len);
	assert_int_equal(f->action, PROTO_CLOSE);
	whole_len = f->out.len;
	whole = malloc(whole_len);
	assert_non_null(whole);
	memcpy(whole, f->out.data, whole_len);

	/* Fresh state: flush, and feed byte by byte. */
	expect(f, "flush_all\r\n", "OK\r\n");
	table_tick(&f->c.table, (uint32_t)time(NULL) + 1);
	proto_conn_init(&f->conn);
	for (have = 1; have <= len; have++) {
		size_t used = proto_process(&f->ctx, &f->conn, in + off,
					    have - off, &out, &f->action);

		off += used;
		if (f->action == PROTO_CLOSE)
			break;
		if (off < have)
			assert_true(f->conn.need > have - off);
	}
	assert_int_equal(f->action, PROTO_CLOSE);
	assert_int_equal(off, len);
	assert_int_equal(out.len, whole_len);
	assert_memory_equal(out.data, whole, whole_len);
	free(out.data);
	free(whole);
}

/* A value of max_item_size stores; one byte more is refused and skipped. */
static void test_max_item_size(void **state)
{
	struct fx *f = *state;
	size_t n = MAX_ITEM + 64, len;
	char *in = malloc(n + 64);
	const char *hdr;
	size_t off, used, step;

	assert_non_null(in);
	len = (size_t)snprintf(in, 64, "set big 0 0 %u\r\n", MAX_ITEM);
	memset(in + len, 'v', MAX_ITEM);
	len += MAX_ITEM;
	memcpy(in + len, "\r\n", 2);
	len += 2;
	feed(f, in, len);
	assert_int_equal(f->out.len, 8);
	assert_memory_equal(f->out.data, "STORED\r\n", 8);

	/* One more byte: the error comes at once, the block is skipped over
	 * several calls, and the connection then works. */
	len = (size_t)snprintf(in, 64, "set big 0 0 %u\r\n", MAX_ITEM + 1);
	hdr = "SERVER_ERROR object too large for cache\r\n";
	f->out.len = 0;
	used = proto_process(&f->ctx, &f->conn, in, len, &f->out, &f->action);
	assert_int_equal(used, len);
	assert_int_equal(f->out.len, strlen(hdr));
	assert_memory_equal(f->out.data, hdr, strlen(hdr));
	memset(in, 'v', MAX_ITEM + 1);
	memcpy(in + MAX_ITEM + 1, "\r\nget big\r\n", 11);
	off = 0;
	step = 100000;
	while (off < MAX_ITEM + 1 + 11) {
		size_t end = off + step < MAX_ITEM + 12 ? off + step
							: MAX_ITEM + 12;

		f->out.len = 0;
		used = proto_process(&f->ctx, &f->conn, in + off, end - off,
				     &f->out, &f->action);
		assert_int_equal(f->action, PROTO_CONTINUE);
		off += used;
		if (end < MAX_ITEM + 3)
			assert_int_equal(f->out.len, 0);
	}
	/* memcached drops the old value when a set is refused. */
	assert_int_equal(f->out.len, 5);
	assert_memory_equal(f->out.data, "END\r\n", 5);
	expect(f, "set big 0 0 1\r\nz\r\nget big\r\n",
	       "STORED\r\nVALUE big 0 1\r\nz\r\nEND\r\n");
	/* noreply hides the error, but the block is still skipped. */
	len = (size_t)snprintf(in, 64, "set big 0 0 %u noreply\r\n",
			       MAX_ITEM + 1);
	memset(in + len, 'v', MAX_ITEM + 1);
	memcpy(in + len + MAX_ITEM + 1, "\r\nmn\r\n", 6);
	feed(f, in, len + MAX_ITEM + 7);
	assert_int_equal(f->out.len, 4);
	assert_memory_equal(f->out.data, "MN\r\n", 4);
	assert_int_equal(f->stats->store_too_large, 2);
	free(in);
}

/* A value split over calls is waited for: need says how much. */
static void test_partial_value(void **state)
{
	struct fx *f = *state;
	const char *in = "set a 0 0 10\r\n0123456789\r\n";
	size_t used;

	f->out.len = 0;
	used = proto_process(&f->ctx, &f->conn, in, 20, &f->out, &f->action);
	assert_int_equal(used, 0);
	assert_int_equal(f->conn.need, strlen(in));
	assert_int_equal(f->out.len, 0);
	expect(f, in, "STORED\r\n");
	assert_int_equal(f->conn.need, 0);
}

static void test_stats(void **state)
{
	struct fx *f = *state;
	const char *s;

	expect(f, "set a 0 0 1\r\n1\r\nget a\r\nget b\r\n",
	       "STORED\r\nVALUE a 0 1\r\n1\r\nEND\r\nEND\r\n");
	s = feed(f, "stats\r\n", 7);
	assert_non_null(strstr(s, "STAT pid "));
	assert_non_null(strstr(s, "\r\nSTAT cmd_get 2\r\n"));
	assert_non_null(strstr(s, "\r\nSTAT get_hits 1\r\n"));
	assert_non_null(strstr(s, "\r\nSTAT get_misses 1\r\n"));
	assert_non_null(strstr(s, "\r\nSTAT cmd_set 1\r\n"));
	assert_non_null(strstr(s, "\r\nSTAT curr_items 1\r\n"));
	assert_non_null(strstr(s, "\r\nSTAT version 1.6.18\r\n"));
	assert_non_null(strstr(s, "\r\nSTAT page_size "));
	assert_true(strlen(s) > 5 && strcmp(s + strlen(s) - 5, "END\r\n") == 0);
	s = feed(f, "stats items\r\n", 13);
	assert_non_null(strstr(s, ":number 1\r\n"));
	s = feed(f, "stats locks\r\n", 13);
	assert_non_null(strstr(s, "STAT locks:acquisitions "));
	assert_non_null(strstr(s, "STAT locks:15:contended "));
	s = feed(f, "stats settings\r\n", 16);
	assert_non_null(strstr(s, "STAT item_size_max 1048576\r\n"));
	expect(f, "stats foo\r\n", "ERROR\r\n");
}

/* proto_peek_key names the key each command will look up or store. */
static void test_peek_key(void **state)
{
	static const struct {
		const char *in;
		const char *key; /* NULL: none named */
	} cases[] = {
		{ "get foo\r\n", "foo" },
		{ "get foo\n", "foo" },
		{ "get  foo bar\r\n", "foo" },
		{ "gets a-key b\r\n", "a-key" },
		{ "gat 100 tkey\r\n", "tkey" },
		{ "gats 100 tkey\r\n", "tkey" },
		{ "set sk 0 0 1\r\nx\r\n", "sk" },
		{ "add ak 0 0 1\r\n", "ak" },
		{ "cas ck 0 0 1 5\r\n", "ck" },
		{ "append pk 0 0 1\r\n", "pk" },
		{ "replace rk 0 0 1\r\n", "rk" },
		{ "delete dk\r\n", "dk" },
		{ "incr nk 1\r\n", "nk" },
		{ "touch tk 10\r\n", "tk" },
		{ "mg a-much-longer-key-of-thirty-two v\r\n",
		  "a-much-longer-key-of-thirty-two" },
		{ "ms mk 2 T0\r\n", "mk" },
		{ "md mk q\r\n", "mk" },
		{ "ma mk\r\n", "mk" },
		{ "get foo", NULL }, /* the key may go on */
		{ "get ", NULL },
		{ "get\r\n", NULL },
		{ "gat 100\r\n", NULL },
		{ "version\r\n", NULL },
		{ "stats foo\r\n", NULL },
		{ "mn\r\n", NULL },
		{ "getx foo\r\n", NULL },
		{ " get foo\r\n", NULL },
	};
	struct fx *f = *state;
	char line[300];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool named = proto_peek_key(&f->conn, cases[i].in,
					    strlen(cases[i].in));

		if (cases[i].key == NULL) {
			assert_false(named);
			continue;
		}
		assert_true(named);
		assert_int_equal(f->conn.peek_hash,
				 table_hash(cases[i].key, strlen(cases[i].key)));
		assert_int_equal(f->conn.peek_len, strlen(cases[i].key));
	}
	/* Keys of 250 bytes are named, longer ones are not. */
	memcpy(line, "get ", 4);
	memset(line + 4, 'k', 251);
	memcpy(line + 4 + 250, "\r\n", 2);
	assert_true(proto_peek_key(&f->conn, line, 256));
	line[4 + 250] = 'k';
	memcpy(line + 4 + 251, "\r\n", 2);
	assert_false(proto_peek_key(&f->conn, line, 257));
	/* A connection whose first byte is the binary protocol's. */
	proto_conn_init(&f->conn);
	assert_false(proto_peek_key(&f->conn, "\x80get foo\r\n", 10));
}

/* The hash a peek computed serves the lookup of the bytes it was computed
 * for, in the next call only: other bytes at the same address are hashed
 * again. */
static void test_peek_hash_used_once(void **state)
{
	struct fx *f = *state;
	char buf[] = "get foo\r\n";

	expect(f, "set foo 0 0 3\r\nfff\r\nset bar 0 0 3\r\nbbb\r\n",
	       "STORED\r\nSTORED\r\n");
	assert_true(proto_peek_key(&f->conn, buf, strlen(buf)));
	assert_string_equal(feed(f, buf, strlen(buf)),
			    "VALUE foo 0 3\r\nfff\r\nEND\r\n");
	memcpy(buf, "get bar\r\n", strlen(buf));
	assert_string_equal(feed(f, buf, strlen(buf)),
			    "VALUE bar 0 3\r\nbbb\r\nEND\r\n");
	/* A peek at a read that is then moved elsewhere before it is answered. */
	assert_true(proto_peek_key(&f->conn, buf, strlen(buf)));
	expect(f, "get foo\r\n", "VALUE foo 0 3\r\nfff\r\nEND\r\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		T(test_set_get_gets),
		T(test_get_many_keys),
		T(test_storage_modes),
		T(test_cas),
		T(test_bad_lines),
		T(test_bad_data_chunk),
		T(test_key_length),
		T(test_incr_decr),
		T(test_incr_decr_padded_number),
		T(test_set_length_near_int_max),
		T(test_touch_gat),
		T(test_delete),
		T(test_flush_version_verbosity),
		T(test_quit_and_close),
		T(test_line_too_long),
		T(test_reply_budget),
		T(test_attach_reported),
		T(test_value_sizes),
		T(test_noreply),
		T(test_pipeline_1000),
		T(test_byte_at_a_time),
		T(test_max_item_size),
		T(test_partial_value),
		T(test_stats),
		T(test_peek_key),
		T(test_peek_hash_used_once),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
