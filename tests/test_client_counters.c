/*
 * test_client_counters.c - the lookups' hits and misses (client/api_read.c)
 * as the library and the server's stats report them
 *
 * A handle's only reader counts into its proc slot at once, so a program
 * that looks up and then asks the server sees every lookup it made; a
 * restart gives the handle a new slot on the new server, which counts only
 * what came after.  Threads sharing a handle count on their own and the
 * slow path puts their sum in the slot, so the server's figure may lag
 * but reaches the sum and never passes it.
 */
#include <pthread.h>
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

/* Hits and misses, in this process and in the server's stats. */
static void test_counters_and_stats(void **state)
{
	struct server *s = *state;
	struct shmkv_counters c;
	char buf[16], *text = NULL;
	int fd = fix_tcp(s);
	shmkv *kv = fix_open(s);

	fix_tcp_store(fd, "set hit 0 0 1", "h", "STORED");
	for (int i = 0; i < 3; i++)
		assert_int_equal(fix_get_str(kv, "hit", buf, sizeof(buf), NULL),
				 SHMKV_OK);
	for (int i = 0; i < 2; i++)
		assert_int_equal(fix_get_str(kv, "miss", buf, sizeof(buf), NULL),
				 SHMKV_NOT_FOUND);
	shmkv_counters(kv, &c);
	assert_int_equal(c.hits, 3);
	assert_int_equal(c.misses, 2);
	assert_int_equal(fix_tcp_stat(fd, "direct_get_hits"), 3);
	assert_int_equal(fix_tcp_stat(fd, "direct_get_misses"), 2);
	assert_int_equal(shmkv_server_stats(kv, &text), SHMKV_OK);
	assert_non_null(strstr(text, "STAT direct_get_hits 3\n"));
	assert_non_null(strstr(text, "STAT direct_get_misses 2\n"));
	assert_null(strstr(text, "END"));
	free(text);

	/* The counts outlive the client that made them, counted once. */
	shmkv_close(kv);
	fix_sleep(0.3);
	assert_int_equal(fix_tcp_stat(fd, "direct_get_hits"), 3);
	assert_int_equal(fix_tcp_stat(fd, "direct_get_misses"), 2);
	kv = fix_open(s);
	shmkv_counters(kv, &c);
	assert_int_equal(c.hits + c.misses, 0);
	assert_int_equal(fix_get_str(kv, "hit", buf, sizeof(buf), NULL),
			 SHMKV_OK);
	assert_int_equal(fix_tcp_stat(fd, "direct_get_hits"), 4);
	shmkv_close(kv);
	close(fd);
}

/* n keys of a batch, each either "hit" or "miss". */
static void batch_of(struct shmkv_item *items, size_t n, char (*bufs)[16])
{
	for (size_t i = 0; i < n; i++)
		items[i] = (struct shmkv_item){ .key = i % 3 ? "hit" : "miss",
						.key_len = i % 3 ? 3 : 4,
						.buf = bufs[i],
						.cap = sizeof(bufs[i]) };
}

/*
 * Gets and batches are counted at once, before and after a restart; the
 * new server counts only the lookups made after the handle reattached,
 * and the handle's own counters keep both.
 */
static void test_counters_across_a_restart(void **state)
{
	struct server *s = *state;
	struct shmkv_item items[40];
	struct shmkv_counters c;
	char bufs[40][16], buf[16];
	int fd = fix_tcp(s);
	shmkv *kv = fix_open(s);

	fix_tcp_store(fd, "set hit 0 0 1", "h", "STORED");
	batch_of(items, 40, bufs);
	assert_int_equal(shmkv_get_many(kv, items, 40), SHMKV_OK);
	assert_int_equal(fix_get_str(kv, "hit", buf, sizeof(buf), NULL),
			 SHMKV_OK);
	/* 26 of the 40 are hits (i % 3 != 0), 14 misses. */
	assert_int_equal(fix_tcp_stat(fd, "direct_get_hits"), 27);
	assert_int_equal(fix_tcp_stat(fd, "direct_get_misses"), 14);
	close(fd);

	assert_int_equal(fix_server_stop(s), 0);
	assert_int_equal(fix_get_str(kv, "hit", buf, sizeof(buf), NULL),
			 SHMKV_SERVER_GONE);
	fix_server_start(s, s->dir, NULL);
	fd = fix_tcp(s);
	fix_tcp_store(fd, "set hit 0 0 1", "h", "STORED");
	/* The first call after the restart attaches; count from there. */
	assert_int_equal(fix_get_str(kv, "miss", buf, sizeof(buf), NULL),
			 SHMKV_NOT_FOUND);
	assert_int_equal(fix_get_str(kv, "hit", buf, sizeof(buf), NULL),
			 SHMKV_OK);
	assert_int_equal(fix_tcp_stat(fd, "direct_get_hits"), 1);
	assert_int_equal(fix_tcp_stat(fd, "direct_get_misses"), 1);
	batch_of(items, 40, bufs);
	assert_int_equal(shmkv_get_many(kv, items, 40), SHMKV_OK);
	assert_int_equal(fix_tcp_stat(fd, "direct_get_hits"), 27);
	assert_int_equal(fix_tcp_stat(fd, "direct_get_misses"), 15);
	shmkv_counters(kv, &c);
	assert_int_equal(c.hits, 54);
	assert_int_equal(c.misses, 29);
	shmkv_close(kv);
	close(fd);
}

enum {
	THREAD_GETS = 1000
};

static void *thread_gets(void *arg)
{
	char buf[16];

	for (int i = 0; i < THREAD_GETS; i++)
		if (fix_get_str(arg, "hit", buf, sizeof(buf), NULL) != SHMKV_OK)
			return arg; /* non-NULL: failed */
	return NULL;
}

/*
 * Two threads on one handle: the server's count reaches their sum once the
 * slow path has run (this thread keeps looking up until it has), and never
 * counts more than was looked up.
 */
static void test_counters_of_two_threads(void **state)
{
	struct server *s = *state;
	pthread_t tid[2];
	long long seen = 0, done = 2 * THREAD_GETS;
	char buf[16];
	int fd = fix_tcp(s);
	shmkv *kv = fix_open(s);

	fix_tcp_store(fd, "set hit 0 0 1", "h", "STORED");
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&tid[i], NULL, thread_gets, kv),
				 0);
	for (int i = 0; i < 2; i++) {
		void *failed;

		assert_int_equal(pthread_join(tid[i], &failed), 0);
		assert_null(failed);
	}
	/* Bounded: a poll comes every 256 lookups or 100 ms at the latest. */
	for (int round = 0; round < 200 && seen < done; round++) {
		for (int i = 0; i < 50; i++, done++)
			assert_int_equal(fix_get_str(kv, "hit", buf,
						     sizeof(buf), NULL),
					 SHMKV_OK);
		seen = fix_tcp_stat(fd, "direct_get_hits");
		assert_true(seen <= done);
	}
	assert_true(seen >= 2 * THREAD_GETS);
	shmkv_close(kv);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_counters_and_stats,
						fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_counters_across_a_restart,
						fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_counters_of_two_threads,
						fix_setup, fix_teardown),
	};

	if (!fix_have_server())
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
