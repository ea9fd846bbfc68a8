/*
 * test_client_writes.c - libshmkv's CAS, append/prepend, flush, batches and
 * error messages against the real shmkv-server
 *
 * Each test starts shmkv-server (client_fixture.c), writes through the
 * library, and checks what a direct lookup and a plain memcached client on
 * TCP see afterwards: a write call has done its work when it returns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "client_fixture.h"
#include "shmkv.h"

/* gets gives the CAS that cas must quote; a stale CAS loses. */
static void test_gets_and_cas(void **state)
{
	struct server *s = *state;
	shmkv *kv = fix_open(s);
	uint64_t cas = 0, cas2 = 0;
	char buf[32];
	size_t len = 0;
	uint32_t flags = 0;

	assert_int_equal(shmkv_set(kv, "c", 1, "one", 3, 5, 0), SHMKV_OK);
	assert_int_equal(shmkv_gets(kv, "c", 1, buf, sizeof(buf), &len, &flags,
				    &cas),
			 SHMKV_OK);
	assert_int_equal(len, 3);
	assert_int_equal(flags, 5);
	assert_true(cas != 0);

	/* The CAS is the one memcached's gets reports on TCP too. */
	int fd = fix_tcp(s);
	char line[128], want[128];
	assert_int_equal(fix_tcp_send_quiet(fd, "gets c\r\n", 8), 0);
	assert_int_equal(fix_tcp_line_quiet(fd, line, sizeof(line)), 0);
	snprintf(want, sizeof(want), "VALUE c 5 3 %llu", (unsigned long long)cas);
	assert_string_equal(line, want);
	close(fd);

	assert_int_equal(shmkv_cas(kv, "c", 1, "two", 3, 6, 0, cas), SHMKV_OK);
	assert_int_equal(fix_get_str(kv, "c", buf, sizeof(buf), &flags),
			 SHMKV_OK);
	assert_string_equal(buf, "two");
	assert_int_equal(flags, 6);
	/* The old CAS is stale now. */
	assert_int_equal(shmkv_cas(kv, "c", 1, "three", 5, 0, 0, cas),
			 SHMKV_EXISTS);
	assert_int_equal(shmkv_gets(kv, "c", 1, buf, sizeof(buf), &len, NULL,
				    &cas2),
			 SHMKV_OK);
	assert_true(cas2 != cas);
	assert_int_equal(shmkv_cas(kv, "gone", 4, "x", 1, 0, 0, cas2),
			 SHMKV_NOT_FOUND);
	assert_int_equal(shmkv_gets(kv, "gone", 4, buf, sizeof(buf), &len, NULL,
				    NULL),
			 SHMKV_NOT_FOUND);
	shmkv_close(kv);
}

/* append/prepend keep flags and TTL; on a missing key they store nothing. */
static void test_append_prepend(void **state)
{
	struct server *s = *state;
	shmkv *kv = fix_open(s);
	char buf[32];
	uint32_t flags = 0;

	assert_int_equal(shmkv_set(kv, "a", 1, "mid", 3, 77, 1000), SHMKV_OK);
	assert_int_equal(shmkv_append(kv, "a", 1, ">>", 2), SHMKV_OK);
	assert_int_equal(shmkv_prepend(kv, "a", 1, "<<", 2), SHMKV_OK);
	assert_int_equal(fix_get_str(kv, "a", buf, sizeof(buf), &flags),
			 SHMKV_OK);
	assert_string_equal(buf, "<<mid>>");
	assert_int_equal(flags, 77);

	int fd = fix_tcp(s);
	char line[128];
	assert_int_equal(fix_tcp_send_quiet(fd, "mg a t\r\n", 8), 0);
	assert_int_equal(fix_tcp_line_quiet(fd, line, sizeof(line)), 0);
	long ttl = -5;
	assert_int_equal(sscanf(line, "HD t%ld", &ttl), 1);
	assert_in_range(ttl, 990, 1000);
	close(fd);

	assert_int_equal(shmkv_append(kv, "none", 4, "x", 1), SHMKV_NOT_STORED);
	assert_int_equal(shmkv_prepend(kv, "none", 4, "x", 1), SHMKV_NOT_STORED);
	assert_int_equal(fix_get_str(kv, "none", buf, sizeof(buf), NULL),
			 SHMKV_NOT_FOUND);
	shmkv_close(kv);
}

/* flush empties the cache now; with a delay, only once the delay is over. */
static void test_flush(void **state)
{
	struct server *s = *state;
	shmkv *kv = fix_open(s);
	char buf[32];

	assert_int_equal(shmkv_set(kv, "f1", 2, "x", 1, 0, 0), SHMKV_OK);
	assert_int_equal(shmkv_set(kv, "f2", 2, "y", 1, 0, 0), SHMKV_OK);
	assert_int_equal(shmkv_flush(kv, 0), SHMKV_OK);
	assert_int_equal(fix_get_str(kv, "f1", buf, sizeof(buf), NULL),
			 SHMKV_NOT_FOUND);
	assert_int_equal(fix_get_str(kv, "f2", buf, sizeof(buf), NULL),
			 SHMKV_NOT_FOUND);
	/* Stored after the flush: there. */
	assert_int_equal(shmkv_set(kv, "f3", 2, "z", 1, 0, 0), SHMKV_OK);
	assert_int_equal(fix_get_str(kv, "f3", buf, sizeof(buf), NULL), SHMKV_OK);

	assert_int_equal(shmkv_flush(kv, 2), SHMKV_OK);
	assert_int_equal(fix_get_str(kv, "f3", buf, sizeof(buf), NULL), SHMKV_OK);
	double deadline = fix_now() + 10;
	while (fix_get_str(kv, "f3", buf, sizeof(buf), NULL) == SHMKV_OK &&
	       fix_now() < deadline)
		fix_sleep(0.1);
	assert_int_equal(fix_get_str(kv, "f3", buf, sizeof(buf), NULL),
			 SHMKV_NOT_FOUND);
	shmkv_close(kv);
}

static void fill_keys(struct shmkv_write *w, char (*keys)[24], char *value,
		      size_t n, size_t value_len)
{
	for (size_t i = 0; i < n; i++) {
		snprintf(keys[i], 24, "batch:%zu", i);
		w[i] = (struct shmkv_write){
			.key = keys[i],
			.key_len = strlen(keys[i]),
			.value = value,
			.value_len = value_len,
			.flags = (uint32_t)i,
			.ttl = 0,
			.status = SHMKV_PROTOCOL,
		};
	}
}

/* 20000 keys in one call: every one stored, with its own flags. */
static void test_set_many_and_delete_many(void **state)
{
	enum {
		N = 20000
	};
	struct server *s = *state;
	shmkv *kv = fix_open(s);
	struct shmkv_write *w = calloc(N, sizeof(*w));
	char(*keys)[24] = calloc(N, 24);
	char value[100], buf[128];
	uint32_t flags = 0;
	size_t len = 0;

	assert_non_null(w);
	assert_non_null(keys);
	memset(value, 'v', sizeof(value));
	fill_keys(w, keys, value, N, sizeof(value));
	assert_int_equal(shmkv_set_many(kv, w, N), SHMKV_OK);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(w[i].status, SHMKV_OK);
		assert_int_equal(shmkv_get(kv, keys[i], strlen(keys[i]), buf,
					   sizeof(buf), &len, &flags),
				 SHMKV_OK);
		assert_int_equal(len, sizeof(value));
		assert_int_equal(flags, i);
	}
	int fd = fix_tcp(s);
	assert_int_equal(fix_tcp_stat(fd, "curr_items"), N);

	/* Delete every other key, plus some that never existed. */
	size_t nd = 0;
	for (size_t i = 0; i < N; i += 2)
		w[nd++] = (struct shmkv_write){ .key = keys[i],
						.key_len = strlen(keys[i]) };
	w[nd++] = (struct shmkv_write){ .key = "batch:none", .key_len = 10 };
	assert_int_equal(shmkv_delete_many(kv, w, nd), SHMKV_OK);
	for (size_t i = 0; i + 1 < nd; i++)
		assert_int_equal(w[i].status, SHMKV_OK);
	assert_int_equal(w[nd - 1].status, SHMKV_NOT_FOUND);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(shmkv_get(kv, keys[i], strlen(keys[i]), buf,
					   sizeof(buf), &len, NULL),
				 i % 2 == 0 ? SHMKV_NOT_FOUND : SHMKV_OK);
	assert_int_equal(fix_tcp_stat(fd, "curr_items"), N / 2);
	close(fd);
	free(w);
	free(keys);
	shmkv_close(kv);
}

/*
 * A batch with bad items: those get their own status, the rest go in.  The
 * server's answer to the value over its limit names no item (memcached's
 * SERVER_ERROR has no opaque), and the batch still pairs it exactly.
 */
static void test_set_many_bad_items(void **state)
{
	struct server *s = *state;
	shmkv *kv = fix_open(s);
	size_t big_len = 2u * 1024 * 1024; /* over the 1 MB item limit */
	char *big = calloc(1, big_len), buf[32], bin[3] = { 'k', ' ', '\n' };
	char long_key[SHMKV_KEY_MAX + 1];
	struct shmkv_write w[5] = {
		{ .key = "ok1", .key_len = 3, .value = "1", .value_len = 1 },
		{ .key = "", .key_len = 0, .value = "x", .value_len = 1 },
		{ .key = "huge", .key_len = 4, .value = big, .value_len = big_len },
		{ .key = bin, .key_len = 3, .value = "2", .value_len = 1 },
		{ .key = long_key,
		  .key_len = sizeof(long_key),
		  .value = "3",
		  .value_len = 1 },
	};

	assert_non_null(big);
	memset(long_key, 'L', sizeof(long_key));
	assert_int_equal(shmkv_set_many(kv, w, 5), SHMKV_OK);
	assert_int_equal(w[0].status, SHMKV_OK);
	assert_int_equal(w[1].status, SHMKV_BAD_KEY);
	assert_int_equal(w[2].status, SHMKV_TOO_LARGE);
	assert_int_equal(w[3].status, SHMKV_OK); /* a binary key goes as base64 */
	assert_int_equal(w[4].status, SHMKV_BAD_KEY);
	assert_int_equal(fix_get_str(kv, "ok1", buf, sizeof(buf), NULL),
			 SHMKV_OK);
	assert_int_equal(shmkv_get(kv, bin, 3, buf, sizeof(buf), NULL, NULL),
			 SHMKV_OK);
	assert_int_equal(fix_get_str(kv, "huge", buf, sizeof(buf), NULL),
			 SHMKV_NOT_FOUND);
	/* The connection is still in step: a plain call works after it. */
	assert_int_equal(shmkv_set(kv, "after", 5, "y", 1, 0, 0), SHMKV_OK);
	assert_int_equal(fix_get_str(kv, "after", buf, sizeof(buf), NULL),
			 SHMKV_OK);
	free(big);
	shmkv_close(kv);
}

/* Every failure leaves its own message; every success clears it. */
static void test_last_error_per_call(void **state)
{
	struct server *s = *state;
	shmkv *kv = fix_open(s);
	char buf[8];

	assert_string_equal(shmkv_last_error(), "");
	assert_int_equal(shmkv_add(kv, "e", 1, "x", 1, 0, 0), SHMKV_OK);
	assert_int_equal(shmkv_add(kv, "e", 1, "x", 1, 0, 0), SHMKV_NOT_STORED);
	assert_string_equal(shmkv_last_error(), shmkv_strerror(SHMKV_NOT_STORED));
	assert_int_equal(shmkv_get(kv, "e", 1, buf, sizeof(buf), NULL, NULL),
			 SHMKV_OK);
	assert_string_equal(shmkv_last_error(), "");

	/* A long key's message, then an empty key's: each its own. */
	char long_key[300];
	memset(long_key, 'k', sizeof(long_key));
	assert_int_equal(shmkv_set(kv, long_key, sizeof(long_key), "x", 1, 0, 0),
			 SHMKV_BAD_KEY);
	assert_non_null(strstr(shmkv_last_error(), "300"));
	assert_int_equal(shmkv_get(kv, "", 0, buf, sizeof(buf), NULL, NULL),
			 SHMKV_BAD_KEY);
	assert_null(strstr(shmkv_last_error(), "300"));
	assert_string_equal(shmkv_last_error(), shmkv_strerror(SHMKV_BAD_KEY));
	assert_int_equal(shmkv_get(kv, "absent", 6, buf, sizeof(buf), NULL, NULL),
			 SHMKV_NOT_FOUND);
	assert_string_equal(shmkv_last_error(), shmkv_strerror(SHMKV_NOT_FOUND));
	assert_int_equal(shmkv_incr(kv, "e", 1, 1, NULL), SHMKV_NON_NUMERIC);
	assert_string_equal(shmkv_last_error(),
			    shmkv_strerror(SHMKV_NON_NUMERIC));
	assert_int_equal(shmkv_delete(kv, "e", 1), SHMKV_OK);
	assert_string_equal(shmkv_last_error(), "");
	shmkv_close(kv);

	/* Open fails with the path in the message; the next open clears it. */
	assert_int_equal(shmkv_open("/nonexistent/shmkv.sock", &kv),
			 SHMKV_NO_SERVER);
	assert_non_null(strstr(shmkv_last_error(), "/nonexistent/shmkv.sock"));
	kv = fix_open(s);
	assert_string_equal(shmkv_last_error(), "");
	shmkv_close(kv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gets_and_cas, fix_setup,
						fix_teardown),
		cmocka_unit_test_setup_teardown(test_append_prepend, fix_setup,
						fix_teardown),
		cmocka_unit_test_setup_teardown(test_flush, fix_setup,
						fix_teardown),
		cmocka_unit_test_setup_teardown(test_set_many_and_delete_many,
						fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_set_many_bad_items,
						fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_last_error_per_call,
						fix_setup, fix_teardown),
	};

	if (!fix_have_server())
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
