/*
 * test_client.c - libshmkv (include/shmkv.h) against the real shmkv-server
 *
 * The library's promises only mean something with a real server on the
 * other end of the socket: what it hands over, when it refuses, what
 * happens when it stops.  So every test starts shmkv-server itself (the
 * binary named by $SHMKV_SERVER, on a free port, with a temporary run
 * directory), writes through plain TCP as any memcached client would, and
 * checks what programs attached through the library see.  Forked child
 * processes stand in for separate client programs; each opens its own
 * handle after fork, as the header requires.
 *
 * A server is always stopped: the per-test teardown runs even when an
 * assertion fails, and the server is started with PR_SET_PDEATHSIG so that
 * it gets SIGTERM even if this test process crashes.
 *
 * The server plumbing (start, stop, TCP) is in client_fixture.c; the
 * concurrent tests (torn reads, threads, proc slots) are in
 * test_client_concurrency.c, the lookups' counters in
 * test_client_counters.c.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "api_internal.h"
#include "client_fixture.h"
#include "shmkv.h"

/* A client process reads what another client wrote over TCP. */
static void test_reads_what_tcp_wrote(void **state)
{
	struct server *s = *state;
	int fd = fix_tcp(s);
	char buf[64];
	uint32_t flags = 0;
	int status;

	fix_tcp_store(fd, "set greeting 42 0 5", "hello", "STORED");
	close(fd);

	/* Another process, as a separate program would be. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		shmkv *kv = NULL;
		int rc = 0;

		if (shmkv_open(s->sock, &kv) != SHMKV_OK)
			_exit(10);
		if (fix_get_str(kv, "greeting", buf, sizeof(buf), &flags) !=
		    SHMKV_OK)
			rc = 11;
		else if (strcmp(buf, "hello") != 0 || flags != 42)
			rc = 12;
		shmkv_close(kv);
		_exit(rc);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	shmkv *kv = fix_open(s);
	assert_int_equal(fix_get_str(kv, "greeting", buf, sizeof(buf), &flags),
			 SHMKV_OK);
	assert_string_equal(buf, "hello");
	assert_int_equal(flags, 42);
	assert_int_equal(fix_get_str(kv, "nobody-set-this", buf, sizeof(buf),
				     NULL),
			 SHMKV_NOT_FOUND);
	assert_int_equal(shmkv_get(kv, "", 0, buf, sizeof(buf), NULL, NULL),
			 SHMKV_BAD_KEY);
	shmkv_close(kv);
}

/* get_alloc, and TOO_SMALL saying how big the value is. */
static void test_get_alloc_and_too_small(void **state)
{
	struct server *s = *state;
	size_t big = 100 * 1024, len = 0;
	char *value = malloc(big), head[64], small[8];
	void *got = NULL;
	uint32_t flags = 0;
	int fd = fix_tcp(s);

	assert_non_null(value);
	for (size_t i = 0; i < big; i++)
		value[i] = (char)('a' + (i * 7) % 26);
	snprintf(head, sizeof(head), "set big 9 0 %zu", big);
	fix_tcp_store_n(fd, head, value, big, "STORED");
	fix_tcp_store(fd, "set tiny 0 0 3", "abc", "STORED");
	close(fd);

	shmkv *kv = fix_open(s);
	assert_int_equal(shmkv_get(kv, "big", 3, small, sizeof(small), &len,
				   &flags),
			 SHMKV_TOO_SMALL);
	assert_int_equal(len, big); /* the size needed */
	assert_int_equal(shmkv_get_alloc(kv, "big", 3, &got, &len, &flags),
			 SHMKV_OK);
	assert_int_equal(len, big);
	assert_int_equal(flags, 9);
	assert_memory_equal(got, value, big);
	free(got);
	got = NULL;
	assert_int_equal(shmkv_get_alloc(kv, "tiny", 4, &got, &len, NULL),
			 SHMKV_OK);
	assert_int_equal(len, 3);
	assert_memory_equal(got, "abc", 3);
	free(got);
	got = (void *)1;
	assert_int_equal(shmkv_get_alloc(kv, "absent", 6, &got, &len, NULL),
			 SHMKV_NOT_FOUND);
	assert_null(got);
	shmkv_close(kv);
	free(value);
}

/* get_many: 16 keys, every third one missing, one buffer too small. */
static void test_get_many_mixed(void **state)
{
	struct server *s = *state;
	struct shmkv_item items[16];
	char keys[16][16], bufs[16][32], head[64], val[32];
	int fd = fix_tcp(s);

	for (int i = 0; i < 16; i++) {
		snprintf(keys[i], sizeof(keys[i]), "many-%d", i);
		if (i % 3 == 0)
			continue;
		snprintf(val, sizeof(val), "value-of-%d", i);
		snprintf(head, sizeof(head), "set %s %d 0 %zu", keys[i], i,
			 strlen(val));
		fix_tcp_store(fd, head, val, "STORED");
	}
	close(fd);

	shmkv *kv = fix_open(s);
	memset(items, 0, sizeof(items));
	for (int i = 0; i < 16; i++) {
		items[i].key = keys[i];
		items[i].key_len = strlen(keys[i]);
		items[i].buf = bufs[i];
		items[i].cap = i == 7 ? 4 : sizeof(bufs[i]);
		items[i].status = SHMKV_PROTOCOL;
	}
	assert_int_equal(shmkv_get_many(kv, items, 16), SHMKV_OK);
	for (int i = 0; i < 16; i++) {
		snprintf(val, sizeof(val), "value-of-%d", i);
		if (i % 3 == 0) {
			assert_int_equal(items[i].status, SHMKV_NOT_FOUND);
		} else if (i == 7) {
			assert_int_equal(items[i].status, SHMKV_TOO_SMALL);
			assert_int_equal(items[i].value_len, strlen(val));
		} else {
			assert_int_equal(items[i].status, SHMKV_OK);
			assert_int_equal(items[i].value_len, strlen(val));
			assert_memory_equal(items[i].buf, val, strlen(val));
			assert_int_equal(items[i].flags, (uint32_t)i);
		}
	}
	shmkv_close(kv);
}

/* get_many of 70 keys (more than the 16 the batch's pipeline holds, and
 * not a multiple of it): every item answered, a bad key inside the batch
 * costs only its own item. */
static void test_get_many_past_one_chunk(void **state)
{
	enum {
		N = 70
	};
	struct server *s = *state;
	struct shmkv_item items[N];
	char keys[N][16], bufs[N][32], head[64], val[32];
	int fd = fix_tcp(s);

	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "chunk-%d", i);
		if (i % 5 == 4)
			continue;
		snprintf(val, sizeof(val), "v%d", i);
		snprintf(head, sizeof(head), "set %s %d 0 %zu", keys[i], i,
			 strlen(val));
		fix_tcp_store(fd, head, val, "STORED");
	}
	close(fd);

	shmkv *kv = fix_open(s);
	for (int i = 0; i < N; i++)
		items[i] = (struct shmkv_item){ .key = keys[i],
						.key_len = strlen(keys[i]),
						.buf = bufs[i],
						.cap = sizeof(bufs[i]),
						.status = SHMKV_PROTOCOL };
	items[40].key_len = 0;
	assert_int_equal(shmkv_get_many(kv, items, N), SHMKV_OK);
	for (int i = 0; i < N; i++) {
		snprintf(val, sizeof(val), "v%d", i);
		if (i == 40) {
			assert_int_equal(items[i].status, SHMKV_BAD_KEY);
		} else if (i % 5 == 4) {
			assert_int_equal(items[i].status, SHMKV_NOT_FOUND);
		} else {
			assert_int_equal(items[i].status, SHMKV_OK);
			assert_int_equal(items[i].value_len, strlen(val));
			assert_memory_equal(items[i].buf, val, strlen(val));
			assert_int_equal(items[i].flags, (uint32_t)i);
		}
	}
	struct shmkv_counters n;
	shmkv_counters(kv, &n);
	assert_int_equal(n.hits, N - N / 5 - 1);
	assert_int_equal(n.misses, N / 5);
	shmkv_close(kv);
}

/* The server's clock in the header decides expiry for direct reads too. */
static void test_expiry_respected(void **state)
{
	struct server *s = *state;
	char buf[16];
	int fd = fix_tcp(s);
	shmkv *kv = fix_open(s);

	fix_tcp_store(fd, "set short 0 1 1", "s", "STORED");
	fix_tcp_store(fd, "set two 0 2 1", "t", "STORED");
	fix_tcp_store(fd, "set long 0 100 1", "l", "STORED");
	/* TTL 2 survives at least one tick of the server's clock. */
	assert_int_equal(fix_get_str(kv, "two", buf, sizeof(buf), NULL),
			 SHMKV_OK);
	fix_sleep(2.2);
	assert_int_equal(fix_get_str(kv, "short", buf, sizeof(buf), NULL),
			 SHMKV_NOT_FOUND);
	double until = fix_now() + 2.0;
	while (fix_get_str(kv, "two", buf, sizeof(buf), NULL) == SHMKV_OK &&
	       fix_now() < until)
		fix_sleep(0.05);
	assert_int_equal(fix_get_str(kv, "two", buf, sizeof(buf), NULL),
			 SHMKV_NOT_FOUND);
	assert_int_equal(fix_get_str(kv, "long", buf, sizeof(buf), NULL),
			 SHMKV_OK);
	assert_string_equal(buf, "l");
	shmkv_close(kv);
	close(fd);
}

/* set, add, replace and delete: each status, and a lookup right after. */
static void check_store_commands(shmkv *kv)
{
	char buf[64];
	uint32_t flags = 0;

	assert_int_equal(shmkv_set(kv, "w1", 2, "v1", 2, 7, 0), SHMKV_OK);
	assert_int_equal(fix_get_str(kv, "w1", buf, sizeof(buf), &flags),
			 SHMKV_OK);
	assert_string_equal(buf, "v1");
	assert_int_equal(flags, 7);

	assert_int_equal(shmkv_add(kv, "w1", 2, "no", 2, 0, 0), SHMKV_NOT_STORED);
	assert_int_equal(shmkv_add(kv, "w2", 2, "v2", 2, 0, 0), SHMKV_OK);
	assert_int_equal(fix_get_str(kv, "w2", buf, sizeof(buf), NULL), SHMKV_OK);
	assert_string_equal(buf, "v2");

	assert_int_equal(shmkv_replace(kv, "w3", 2, "v3", 2, 0, 0),
			 SHMKV_NOT_STORED);
	assert_int_equal(fix_get_str(kv, "w3", buf, sizeof(buf), NULL),
			 SHMKV_NOT_FOUND);
	assert_int_equal(shmkv_replace(kv, "w1", 2, "v1b", 3, 8, 0), SHMKV_OK);
	assert_int_equal(fix_get_str(kv, "w1", buf, sizeof(buf), &flags),
			 SHMKV_OK);
	assert_string_equal(buf, "v1b");
	assert_int_equal(flags, 8);

	assert_int_equal(shmkv_delete(kv, "w2", 2), SHMKV_OK);
	assert_int_equal(fix_get_str(kv, "w2", buf, sizeof(buf), NULL),
			 SHMKV_NOT_FOUND);
	assert_int_equal(shmkv_delete(kv, "w2", 2), SHMKV_NOT_FOUND);
}

/* incr and decr: memcached's padding, its floor at zero, its wrap. */
static void check_arithmetic(shmkv *kv)
{
	char buf[64];
	uint64_t n = 0;

	assert_int_equal(shmkv_set(kv, "num", 3, "10", 2, 0, 0), SHMKV_OK);
	assert_int_equal(shmkv_incr(kv, "num", 3, 5, &n), SHMKV_OK);
	assert_int_equal(n, 15);
	assert_int_equal(fix_get_str(kv, "num", buf, sizeof(buf), NULL),
			 SHMKV_OK);
	assert_string_equal(buf, "15");
	assert_int_equal(shmkv_decr(kv, "num", 3, 20, &n), SHMKV_OK);
	assert_int_equal(n, 0); /* decr stops at zero */
	assert_int_equal(fix_get_str(kv, "num", buf, sizeof(buf), NULL),
			 SHMKV_OK);
	/* As memcached, a decr that shortens the number pads it with spaces. */
	assert_int_equal(strspn(buf, "0"), 1);
	assert_int_equal(strspn(buf + 1, " "), strlen(buf + 1));
	assert_int_equal(shmkv_set(kv, "max", 3, "18446744073709551615", 20, 0, 0),
			 SHMKV_OK);
	assert_int_equal(shmkv_incr(kv, "max", 3, 2, &n), SHMKV_OK);
	assert_int_equal(n, 1); /* incr wraps at 2^64 */
	assert_int_equal(shmkv_incr(kv, "absent", 6, 1, &n), SHMKV_NOT_FOUND);
	assert_int_equal(shmkv_incr(kv, "w1", 2, 1, NULL), SHMKV_NON_NUMERIC);
}

/* touch, and an item stored already expired. */
static void check_touch_and_expiry(shmkv *kv)
{
	char buf[64];

	assert_int_equal(shmkv_touch(kv, "absent", 6, 100), SHMKV_NOT_FOUND);
	assert_int_equal(shmkv_touch(kv, "w1", 2, 100), SHMKV_OK);
	assert_int_equal(fix_get_str(kv, "w1", buf, sizeof(buf), NULL), SHMKV_OK);
	assert_int_equal(shmkv_touch(kv, "w1", 2, -1), SHMKV_OK);
	assert_int_equal(fix_get_str(kv, "w1", buf, sizeof(buf), NULL),
			 SHMKV_NOT_FOUND);
	assert_int_equal(shmkv_set(kv, "dead", 4, "x", 1, 0, -1), SHMKV_OK);
	assert_int_equal(fix_get_str(kv, "dead", buf, sizeof(buf), NULL),
			 SHMKV_NOT_FOUND);
}

/* Which keys and values may be written, up to the longest key. */
static void check_key_and_value_bytes(shmkv *kv)
{
	char buf[64], key251[251];
	size_t len = 0;
	static const char binkey[] = { 'a', ' ', 'b', '\0', 'c', '\r', '\n' };

	/* Any bytes may make a key: they travel base64-encoded. */
	assert_int_equal(shmkv_set(kv, binkey, sizeof(binkey), "bin", 3, 0, 0),
			 SHMKV_OK);
	assert_int_equal(shmkv_get(kv, binkey, sizeof(binkey), buf, sizeof(buf),
				   &len, NULL),
			 SHMKV_OK);
	assert_int_equal(len, 3);
	assert_int_equal(shmkv_set(kv, "empty", 5, "", 0, 0, 0), SHMKV_OK);
	assert_int_equal(shmkv_get(kv, "empty", 5, buf, sizeof(buf), &len, NULL),
			 SHMKV_OK);
	assert_int_equal(len, 0);
	assert_int_equal(shmkv_set(kv, "null", 4, NULL, 0, 0, 0), SHMKV_OK);
	assert_int_equal(shmkv_get(kv, "null", 4, buf, sizeof(buf), &len, NULL),
			 SHMKV_OK);
	assert_int_equal(len, 0);

	memset(key251, 'k', sizeof(key251));
	assert_int_equal(shmkv_set(kv, key251, 250, "x", 1, 0, 0), SHMKV_OK);
	assert_int_equal(shmkv_get(kv, key251, 250, buf, sizeof(buf), &len, NULL),
			 SHMKV_OK);
	assert_int_equal(shmkv_set(kv, key251, 251, "x", 1, 0, 0), SHMKV_BAD_KEY);
	key251[0] = ' '; /* now it must travel base64-encoded */
	assert_int_equal(shmkv_set(kv, key251, SHMKV_KEY_BINARY_MAX, "y", 1, 0, 0),
			 SHMKV_OK);
	assert_int_equal(shmkv_get(kv, key251, SHMKV_KEY_BINARY_MAX, buf,
				   sizeof(buf), &len, NULL),
			 SHMKV_OK);
	assert_int_equal(shmkv_set(kv, key251, SHMKV_KEY_BINARY_MAX + 1, "y", 1,
				   0, 0),
			 SHMKV_BAD_KEY);
	assert_int_equal(shmkv_set(kv, "", 0, "x", 1, 0, 0), SHMKV_BAD_KEY);
	assert_int_equal(shmkv_delete(kv, "", 0), SHMKV_BAD_KEY);
}

/* A value beyond the item size limit is refused, the connection kept. */
static void check_too_large(shmkv *kv)
{
	char buf[64];
	size_t huge = 2u << 20;

	/* Beyond the server's item size limit (1 MiB); the connection must
	 * stay usable afterwards. */
	char *big = calloc(1, huge);
	assert_non_null(big);
	assert_int_equal(shmkv_set(kv, "huge", 4, big, huge, 0, 0),
			 SHMKV_TOO_LARGE);
	free(big);
	assert_int_equal(shmkv_set(kv, "after", 5, "ok", 2, 0, 0), SHMKV_OK);
	assert_int_equal(fix_get_str(kv, "after", buf, sizeof(buf), NULL),
			 SHMKV_OK);
	assert_string_equal(buf, "ok");
}

/* Every write's status, and a direct lookup right after it sees it. */
static void test_writes_through_library(void **state)
{
	struct server *s = *state;
	shmkv *kv = fix_open(s);

	check_store_commands(kv);
	check_arithmetic(kv);
	check_touch_and_expiry(kv);
	check_key_and_value_bytes(kv);
	check_too_large(kv);
	shmkv_close(kv);
}

/* Run fn in a child as user nobody; its status and message come back. */
static enum shmkv_status open_as_nobody(const char *sock, char *msg, size_t cap,
					bool then_get)
{
	struct passwd *pw = getpwnam("nobody");
	int p[2], status;
	struct {
		int st;
		char msg[256];
	} out = { -1, "" };

	assert_non_null(pw);
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		shmkv *kv = NULL;

		close(p[0]);
		if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
		    setuid(pw->pw_uid) < 0)
			_exit(3);
		out.st = shmkv_open(sock, &kv);
		snprintf(out.msg, sizeof(out.msg), "%s", shmkv_last_error());
		if (out.st == SHMKV_OK && then_get) {
			char buf[8];
			size_t len = 0;

			out.st = shmkv_get(kv, "k", 1, buf, sizeof(buf), &len,
					   NULL);
			snprintf(out.msg, sizeof(out.msg), "%.*s", (int)len, buf);
		}
		shmkv_close(kv);
		_exit(write(p[1], &out, sizeof(out)) == sizeof(out) ? 0 : 4);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &out, sizeof(out)), sizeof(out));
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	snprintf(msg, cap, "%s", out.msg);
	return (enum shmkv_status)out.st;
}

/* Only the server's user, root and --attach-group may attach. */
static void test_nobody_is_refused(void **state)
{
	struct server *s = *state;
	char msg[256], want[64];

	if (geteuid() != 0) {
		print_message("skipped: only root can become user nobody\n");
		skip();
	}
	/* The run directory is the server's user's alone. */
	assert_int_equal(open_as_nobody(s->sock, msg, sizeof(msg), false),
			 SHMKV_PERMISSION);
	/* Even with the socket reachable, the server checks the peer. */
	assert_int_equal(chmod(s->run, 0711), 0);
	assert_int_equal(chmod(s->sock, 0777), 0);
	assert_int_equal(open_as_nobody(s->sock, msg, sizeof(msg), false),
			 SHMKV_PERMISSION);
	snprintf(want, sizeof(want), "uid %u",
		 (unsigned)getpwnam("nobody")->pw_uid);
	if (strstr(msg, want) == NULL)
		fail_msg("refusal does not name the user (%s): %s", want, msg);

	/* A member of the server's --attach-group may. */
	struct group *gr = getgrgid(getpwnam("nobody")->pw_gid);
	assert_non_null(gr);
	struct server *g = &s[1]; /* the teardown stops it */
	fix_server_start(g, NULL,
			 (const char *[]){ "--attach-group", gr->gr_name, NULL });
	int fd = fix_tcp(g);
	fix_tcp_store(fd, "set k 0 0 2", "ok", "STORED");
	close(fd);
	assert_int_equal(open_as_nobody(g->sock, msg, sizeof(msg), true),
			 SHMKV_OK);
	assert_string_equal(msg, "ok");
}

/* A library of another layout version is refused, with both versions. */
static void test_version_mismatch(void **state)
{
	struct server *s = *state;
	shmkv *kv = (shmkv *)1;
	char want[64];

	assert_int_equal(shmkv_open_version(s->sock, SEGMENT_LAYOUT_VERSION + 6,
					    &kv),
			 SHMKV_VERSION_MISMATCH);
	assert_null(kv);
	snprintf(want, sizeof(want), "server %u, client %u",
		 SEGMENT_LAYOUT_VERSION, SEGMENT_LAYOUT_VERSION + 6);
	if (strstr(shmkv_last_error(), want) == NULL)
		fail_msg("message lacks '%s': %s", want, shmkv_last_error());
}

/* Stop the server under a client, start another: outage, then new data. */
static void test_server_restart(void **state)
{
	struct server *s = *state;
	char buf[32];
	int fd = fix_tcp(s);
	shmkv *kv = fix_open(s);

	fix_tcp_store(fd, "set k 0 0 3", "old", "STORED");
	fix_tcp_store(fd, "set only-old 0 0 1", "x", "STORED");
	close(fd);
	assert_int_equal(fix_get_str(kv, "k", buf, sizeof(buf), NULL), SHMKV_OK);
	assert_string_equal(buf, "old");

	assert_int_equal(fix_server_stop(s), 0);
	assert_int_equal(fix_get_str(kv, "k", buf, sizeof(buf), NULL),
			 SHMKV_SERVER_GONE);
	assert_int_equal(fix_get_str(kv, "k", buf, sizeof(buf), NULL),
			 SHMKV_SERVER_GONE);
	assert_int_equal(shmkv_set(kv, "k", 1, "v", 1, 0, 0), SHMKV_SERVER_GONE);
	assert_non_null(strstr(shmkv_last_error(), s->sock));
	struct shmkv_item item = { .key = "k",
				   .key_len = 1,
				   .buf = buf,
				   .cap = sizeof(buf),
				   .status = SHMKV_OK };
	assert_int_equal(shmkv_get_many(kv, &item, 1), SHMKV_SERVER_GONE);
	assert_int_equal(item.status, SHMKV_SERVER_GONE);

	fix_server_start(s, s->dir, NULL); /* same socket path */
	fd = fix_tcp(s);
	fix_tcp_store(fd, "set k 0 0 3", "new", "STORED");
	close(fd);
	assert_int_equal(fix_get_str(kv, "k", buf, sizeof(buf), NULL), SHMKV_OK);
	assert_string_equal(buf, "new");
	assert_int_equal(fix_get_str(kv, "only-old", buf, sizeof(buf), NULL),
			 SHMKV_NOT_FOUND);
	assert_int_equal(shmkv_set(kv, "k2", 2, "w", 1, 0, 0), SHMKV_OK);
	assert_int_equal(fix_get_str(kv, "k2", buf, sizeof(buf), NULL), SHMKV_OK);
	shmkv_close(kv);
}

/*
 * A server killed outright marks nothing in the segment; the client must
 * still notice soon (its connection closed), not serve the dead server's
 * data for as long as it keeps calling slowly.
 */
static void test_server_killed(void **state)
{
	struct server *s = *state;
	enum shmkv_status st;
	char buf[32];
	int fd = fix_tcp(s), stale = 0;
	shmkv *kv = fix_open(s);

	fix_tcp_store(fd, "set k 0 0 3", "old", "STORED");
	close(fd);
	assert_int_equal(fix_get_str(kv, "k", buf, sizeof(buf), NULL), SHMKV_OK);
	fix_server_kill(s);
	double killed = fix_now();
	while ((st = fix_get_str(kv, "k", buf, sizeof(buf), NULL)) == SHMKV_OK &&
	       fix_now() < killed + 5.0) {
		stale++;
		fix_sleep(0.01);
	}
	assert_int_equal(st, SHMKV_SERVER_GONE);
	if (fix_now() - killed > 1.5)
		fail_msg("read the dead server's data for %.1f s (%d lookups)",
			 fix_now() - killed, stale);

	fix_server_start(s, s->dir, NULL);
	fd = fix_tcp(s);
	fix_tcp_store(fd, "set k 0 0 3", "new", "STORED");
	close(fd);
	assert_int_equal(fix_get_str(kv, "k", buf, sizeof(buf), NULL), SHMKV_OK);
	assert_string_equal(buf, "new");
	shmkv_close(kv);
}

/* A store into the data part kills the client, not the cache. */
static void test_data_part_is_read_only(void **state)
{
	struct server *s = *state;
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		unsigned char ksa[64] = { 0 };
		struct rlimit no_core = { 0, 0 };
		shmkv *kv = NULL;

		if (shmkv_open(s->sock, &kv) != SHMKV_OK)
			_exit(10);
		unsigned char *data = kv->cache->seg.data;
		/* Neither can the mapping be made writable. */
		if (mprotect(data, 4096, PROT_READ | PROT_WRITE) == 0)
			_exit(11);
		/* SIGSEGV to its default action by the raw system call, so
		 * ASan's handler cannot stay in place; no core dump. */
		setrlimit(RLIMIT_CORE, &no_core);
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		syscall(SYS_rt_sigaction, SIGSEGV, ksa, NULL, (size_t)8);
		data[kv->cache->seg.data_size / 2] = 1;
		data[0] = 0;
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status))
		fail_msg("the child was not killed: exit %d",
			 WEXITSTATUS(status));
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSEGV);

	/* And the server is none the worse for it. */
	shmkv *kv = fix_open(s);
	char buf[8];
	assert_int_equal(shmkv_set(kv, "still", 5, "ok", 2, 0, 0), SHMKV_OK);
	assert_int_equal(fix_get_str(kv, "still", buf, sizeof(buf), NULL),
			 SHMKV_OK);
	shmkv_close(kv);
}

/*
 * One thread, more handles than it keeps thread-local entries for (4), in
 * an order that keeps evicting them: each lookup counts on its own
 * handle, and every server hears of its own handle's lookups.
 */
static void test_one_thread_many_handles(void **state)
{
	enum {
		HANDLES = 7
	};
	struct server *s = *state;
	shmkv *kv[HANDLES];
	uint64_t want[HANDLES] = { 0 };
	char buf[16];
	int fd = fix_tcp(s);
	uint64_t sum = 0;

	fix_tcp_store(fd, "set many 0 0 2", "mh", "STORED");
	for (int h = 0; h < HANDLES; h++)
		kv[h] = fix_open(s);
	for (int round = 0; round < 40; round++) {
		int h = (round * 3 + round / 7) % HANDLES;

		for (int i = 0; i <= h; i++) {
			assert_int_equal(fix_get_str(kv[h], "many", buf,
						     sizeof(buf), NULL),
					 SHMKV_OK);
			assert_string_equal(buf, "mh");
			want[h]++;
		}
	}
	for (int h = 0; h < HANDLES; h++) {
		struct shmkv_counters c;

		shmkv_counters(kv[h], &c);
		assert_int_equal(c.hits, want[h]);
		assert_int_equal(c.misses, 0);
		sum += want[h];
	}
	assert_int_equal(fix_tcp_stat(fd, "direct_get_hits"), sum);
	for (int h = 0; h < HANDLES; h++)
		shmkv_close(kv[h]);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reads_what_tcp_wrote,
						fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_get_alloc_and_too_small,
						fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_get_many_mixed, fix_setup,
						fix_teardown),
		cmocka_unit_test_setup_teardown(test_get_many_past_one_chunk,
						fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_expiry_respected,
						fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_writes_through_library,
						fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_nobody_is_refused,
						fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_version_mismatch,
						fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_server_restart, fix_setup,
						fix_teardown),
		cmocka_unit_test_setup_teardown(test_server_killed, fix_setup,
						fix_teardown),
		cmocka_unit_test_setup_teardown(test_data_part_is_read_only,
						fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_one_thread_many_handles,
						fix_setup, fix_teardown),
	};

	if (!fix_have_server())
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
