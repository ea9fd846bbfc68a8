/*
 * test_client_scan.c - shmkv_scan and shmkv_delete_prefix against the real
 * shmkv-server
 *
 * A scan reads the segment itself, so what it must show is what the
 * server holds: every live key with its size, flags and TTL, none that
 * expired, was deleted or flushed, and no key in a state it never had even
 * while another process rewrites keys as fast as it can.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "client_fixture.h"
#include "shmkv.h"

#define MAX_SEEN 4096

struct seen {
	size_t n;
	char keys[MAX_SEEN][64];
	struct shmkv_key_info info[MAX_SEEN];
	size_t torn;	   /* keys whose length and flags disagree */
	size_t stop_after; /* 0 = never stop */
};

static int remember(const struct shmkv_key_info *k, void *arg)
{
	struct seen *s = arg;

	if (s->n < MAX_SEEN && k->key_len < 64) {
		memcpy(s->keys[s->n], k->key, k->key_len);
		s->keys[s->n][k->key_len] = '\0';
		s->info[s->n] = *k;
		s->info[s->n].key = NULL;
	}
	s->n++;
	return s->stop_after != 0 && s->n >= s->stop_after;
}

static const struct shmkv_key_info *find(const struct seen *s, const char *key)
{
	const struct shmkv_key_info *hit = NULL;

	for (size_t i = 0; i < s->n && i < MAX_SEEN; i++)
		if (strcmp(s->keys[i], key) == 0) {
			assert_null(hit); /* seen once only */
			hit = &s->info[i];
		}
	return hit;
}

/* Every key with its metadata; the prefix filters; dead keys are not shown. */
static void test_scan_lists_live_keys(void **state)
{
	struct server *s = *state;
	shmkv *kv = fix_open(s);
	struct seen *seen = calloc(1, sizeof(*seen));
	char key[32], value[64];

	assert_non_null(seen);
	for (int i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "user:%d", i);
		memset(value, 'x', (size_t)(i % 60));
		assert_int_equal(shmkv_set(kv, key, strlen(key), value,
					   (size_t)(i % 60), (uint32_t)i,
					   i % 2 ? 600 : 0),
				 SHMKV_OK);
	}
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "session:%d", i);
		assert_int_equal(shmkv_set(kv, key, strlen(key), "s", 1, 0, 0),
				 SHMKV_OK);
	}
	assert_int_equal(shmkv_delete(kv, "user:7", 6), SHMKV_OK);
	assert_int_equal(shmkv_set(kv, "user:expired", 12, "e", 1, 0, -1),
			 SHMKV_OK);

	assert_int_equal(shmkv_scan(kv, "user:", 5, remember, seen), SHMKV_OK);
	assert_int_equal(seen->n, 499);
	assert_null(find(seen, "user:7"));
	assert_null(find(seen, "user:expired"));
	assert_null(find(seen, "session:1"));
	const struct shmkv_key_info *k = find(seen, "user:123");
	assert_non_null(k);
	assert_int_equal(k->key_len, 8);
	assert_int_equal(k->value_len, 123 % 60);
	assert_int_equal(k->flags, 123);
	assert_in_range(k->ttl, 590, 600);
	k = find(seen, "user:124");
	assert_non_null(k);
	assert_int_equal(k->ttl, -1);
	uint64_t cas = 0;
	char buf[64];
	size_t len;
	assert_int_equal(shmkv_gets(kv, "user:124", 8, buf, sizeof(buf), &len,
				    NULL, &cas),
			 SHMKV_OK);
	assert_int_equal(k->cas, cas);

	memset(seen, 0, sizeof(*seen));
	assert_int_equal(shmkv_scan(kv, NULL, 0, remember, seen), SHMKV_OK);
	assert_int_equal(seen->n, 499 + 50);

	/* The callback can stop the scan. */
	memset(seen, 0, sizeof(*seen));
	seen->stop_after = 10;
	assert_int_equal(shmkv_scan(kv, NULL, 0, remember, seen), SHMKV_OK);
	assert_int_equal(seen->n, 10);

	/* After a flush: nothing. */
	assert_int_equal(shmkv_flush(kv, 0), SHMKV_OK);
	memset(seen, 0, sizeof(*seen));
	assert_int_equal(shmkv_scan(kv, NULL, 0, remember, seen), SHMKV_OK);
	assert_int_equal(seen->n, 0);
	free(seen);
	shmkv_close(kv);
}

/* A key name the test wrote: "cold:N" or "hot:N", nothing else. */
static bool known_key(const struct shmkv_key_info *k)
{
	const char *p = k->key, *end = p + k->key_len;
	size_t prefix = k->key_len > 5 && memcmp(p, "cold:", 5) == 0  ? 5
			: k->key_len > 4 && memcmp(p, "hot:", 4) == 0 ? 4
								      : 0;

	if (prefix == 0)
		return false;
	for (p += prefix; p < end; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

static int check_consistent(const struct shmkv_key_info *k, void *arg)
{
	struct seen *s = arg;

	const char *key = k->key;
	bool hot = k->key_len > 4 && memcmp(key, "hot:", 4) == 0;
	unsigned long index = 0;

	/* The key is not NUL-terminated; known_key checked its digits. */
	for (size_t i = 4; hot && i < k->key_len; i++)
		index = index * 10 + (unsigned long)(key[i] - '0');

	/* The writer stores hot key i with flags i << 16 | its value's
	 * length; cold keys are 1 byte with flags 1.  A name, a length and
	 * flags read from two different writes cannot agree. */
	if (!known_key(k) || k->ttl != -1 ||
	    (hot ? (k->flags >> 16) != index || (k->flags & 0xffffu) != k->value_len
		 : k->flags != 1 || k->value_len != 1))
		s->torn++;
	return remember(k, arg);
}

/* The writer's loop: 200 hot keys a batch, each with a new length. */
static void rewrite_hot_keys(const struct server *s)
{
	static char keys[200][16], value[600];
	struct shmkv_write w[200];
	shmkv *kv = NULL;

	memset(value, 'h', sizeof(value));
	if (shmkv_open(s->sock, &kv) != SHMKV_OK)
		_exit(10);
	for (unsigned n = 0;; n++) {
		for (unsigned i = 0; i < 200; i++) {
			size_t len = (n * 37 + i * 11) % sizeof(value);

			snprintf(keys[i], sizeof(keys[i]), "hot:%u", i);
			w[i] = (struct shmkv_write){
				.key = keys[i],
				.key_len = strlen(keys[i]),
				.value = value,
				.value_len = len,
				.flags = (uint32_t)(i << 16 | len),
			};
		}
		if (shmkv_set_many(kv, w, 200) != SHMKV_OK)
			_exit(11);
	}
}

/*
 * Two other processes rewrite 200 hot keys with new lengths (flags = the
 * key's number and the length) as fast as batches go, in a server small
 * enough (2 MiB) that the item rings wrap over and over (memory of
 * replaced items is soon reused), while this one scans again and again: no
 * visited key ever shows a name, a length or flags that were never written
 * together, and the 1000 cold keys nobody touches are all seen every time.
 * NOTE: with the scan's sequence check removed this failed in 4 of 6 runs
 * (7 of 11 counting the first version with one writer), within 2 s; it
 * never failed with the check.
 */
static void test_scan_consistent_under_writes(void **state)
{
	struct server *s = *state;
	const char *const small[] = { "-m", "2", "-I", "1k", NULL };
	struct seen *seen = calloc(1, sizeof(*seen));
	char key[32];
	int status;

	fix_server_stop(s);
	fix_server_cleanup(s);
	fix_server_start(s, NULL, small);
	shmkv *kv = fix_open(s);
	assert_non_null(seen);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "cold:%d", i);
		assert_int_equal(shmkv_set(kv, key, strlen(key), "c", 1, 1, 0),
				 SHMKV_OK);
	}
	pid_t writers[2];

	/* Two writers: the rings wrap twice as often. */
	for (int i = 0; i < 2; i++) {
		writers[i] = fork();
		assert_true(writers[i] >= 0);
		if (writers[i] == 0)
			rewrite_hot_keys(s);
	}
	size_t scans = 0, hot_seen = 0;
	double deadline = fix_now() + 3.0;
	while (fix_now() < deadline || scans < 20) {
		memset(seen, 0, sizeof(*seen));
		assert_int_equal(shmkv_scan(kv, NULL, 0, check_consistent, seen),
				 SHMKV_OK);
		assert_int_equal(seen->torn, 0);
		size_t cold = 0;
		for (size_t i = 0; i < seen->n && i < MAX_SEEN; i++)
			cold += strncmp(seen->keys[i], "cold:", 5) == 0;
		assert_int_equal(cold, 1000);
		hot_seen += seen->n - cold;
		scans++;
	}
	for (int i = 0; i < 2; i++) {
		kill(writers[i], SIGKILL);
		assert_int_equal(waitpid(writers[i], &status, 0), writers[i]);
		/* It was running (a writer never exits by itself). */
		assert_true(WIFSIGNALED(status));
	}
	assert_true(hot_seen > 0);
	free(seen);
	shmkv_close(kv);
}

/* delete_prefix removes exactly the keys with the prefix. */
static void test_delete_prefix(void **state)
{
	struct server *s = *state;
	shmkv *kv = fix_open(s);
	char key[32], buf[8];
	size_t deleted = 0;

	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "%s:%d", i % 3 ? "keep" : "drop", i);
		assert_int_equal(shmkv_set(kv, key, strlen(key), "v", 1, 0, 0),
				 SHMKV_OK);
	}
	assert_int_equal(shmkv_delete_prefix(kv, "drop:", 5, &deleted), SHMKV_OK);
	assert_int_equal(deleted, 1000);
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "%s:%d", i % 3 ? "keep" : "drop", i);
		assert_int_equal(fix_get_str(kv, key, buf, sizeof(buf), NULL),
				 i % 3 ? SHMKV_OK : SHMKV_NOT_FOUND);
	}
	int fd = fix_tcp(s);
	assert_int_equal(fix_tcp_stat(fd, "curr_items"), 2000);
	close(fd);
	assert_int_equal(shmkv_delete_prefix(kv, "drop:", 5, &deleted), SHMKV_OK);
	assert_int_equal(deleted, 0);
	assert_int_equal(shmkv_delete_prefix(kv, "", 0, &deleted), SHMKV_BAD_KEY);
	assert_non_null(strstr(shmkv_last_error(), "shmkv_flush"));
	shmkv_close(kv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scan_lists_live_keys,
						fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_scan_consistent_under_writes,
						fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_delete_prefix, fix_setup,
						fix_teardown),
	};

	if (!fix_have_server())
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
