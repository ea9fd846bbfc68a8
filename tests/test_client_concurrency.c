/*
 * test_client_concurrency.c - libshmkv under concurrency, against the real server
 *
 * What test_client.c checks one call at a time, here with many at once:
 * reader processes that must never see a torn or foreign value while
 * writers rewrite the keys over TCP, threads sharing one handle (lookups
 * in parallel without its mutex, across server restarts; other calls
 * serialise on the mutex), and as many handles as the server has proc
 * slots.  Each test starts its own shmkv-server (client_fixture.c)
 * and always stops it.
 */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "api_internal.h"
#include "client_fixture.h"
#include "shmkv.h"

/*
 * Torn or foreign values.  A value is "<key>:<version>:<filler>:<sum>",
 * the filler's length and letter depending on the version and the sum
 * covering everything before it, so a reader can tell a value that mixes
 * two writes, or belongs to another key, from a good one.  Writers go over
 * TCP (several connections, which the kernel spreads over the workers).
 *
 * A value is never rewritten in place: a set writes a new item at its
 * partition ring's head.  Only memory being reused can tear a read, so the
 * server gets little memory (TORN_MEMORY) and the keys' values together
 * outgrow it: writers keep evicting and overwriting items readers may be
 * copying.
 */
#define TORN_MEMORY "2"
#define TORN_MAX_ITEM "16k"
#define TORN_WRITERS 2
#define TORN_READERS 3
#define TORN_KEYS 1024
#define TORN_SECONDS 1.5
#define TORN_VALUE_MAX 4096

struct torn_report {
	uint64_t reads;	  /* values read and checked */
	uint64_t changes; /* times a key's version moved on */
	int error;	  /* 0, or what went wrong (below) */
	char detail[200];
};

static uint64_t fnv1a(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 1099511628211ull;
	return h;
}

static size_t torn_value(const char *key, unsigned version, char *out)
{
	size_t fill = (version * 37u) % 3000u + 1;
	int n = snprintf(out, TORN_VALUE_MAX, "%s:%u:", key, version);

	memset(out + n, 'a' + (int)(version % 26), fill);
	n += (int)fill;
	out[n++] = ':';
	n += snprintf(out + n, (size_t)(TORN_VALUE_MAX - n), "%016" PRIx64,
		      fnv1a(out, (size_t)n));
	return (size_t)n;
}

/* 0 and the version if value is a whole, good value of key. */
static int torn_check(const char *key, const char *v, size_t len,
		      unsigned *version)
{
	char want[TORN_VALUE_MAX];
	size_t klen = strlen(key);
	char *end;

	if (len < klen + 1 || memcmp(v, key, klen) != 0 || v[klen] != ':')
		return 2; /* another key's value */
	*version = (unsigned)strtoul(v + klen + 1, &end, 10);
	if (torn_value(key, *version, want) != len || memcmp(want, v, len) != 0)
		return 1; /* torn */
	return 0;
}

/* Sets pipelined TORN_BATCH at a time, so the writers keep up with the
 * readers on a machine with few cores. */
#define TORN_BATCH 32

static int torn_writer(const struct server *s, int w, double deadline)
{
	static char batch[TORN_BATCH * (TORN_VALUE_MAX + 64)];
	char key[32], line[64];
	int fd = fix_tcp_quiet(s);

	if (fd < 0)
		return 1;
	for (unsigned version = 1; fix_now() < deadline; version++) {
		for (int k = 0; k < TORN_KEYS; k += TORN_BATCH) {
			size_t len = 0;

			for (int b = k; b < k + TORN_BATCH && b < TORN_KEYS; b++) {
				snprintf(key, sizeof(key), "torn-%d-%d", w, b);
				char *head = batch + len;
				int hn = snprintf(head, 64,
						  "set %s 0 0 %04zu\r\n", key,
						  (size_t)0);
				size_t n = torn_value(key, version, head + hn);

				/* The length is only known now: fill it in. */
				snprintf(head, 64, "set %s 0 0 %04zu", key, n);
				head[hn - 2] = '\r';
				len += (size_t)hn + n;
				memcpy(batch + len, "\r\n", 2);
				len += 2;
			}
			if (fix_tcp_send_quiet(fd, batch, len) < 0)
				return 1;
			for (int b = k; b < k + TORN_BATCH && b < TORN_KEYS; b++)
				if (fix_tcp_line_quiet(fd, line, sizeof(line)) <
					    0 ||
				    strcmp(line, "STORED") != 0)
					return 2;
		}
	}
	close(fd);
	return 0;
}

static int torn_reader(const struct server *s, struct torn_report *rep,
		       double deadline)
{
	unsigned last[TORN_WRITERS][TORN_KEYS] = { { 0 } };
	char key[32], buf[TORN_VALUE_MAX];
	shmkv *kv = NULL;

	if (shmkv_open(s->sock, &kv) != SHMKV_OK) {
		snprintf(rep->detail, sizeof(rep->detail), "open: %s",
			 shmkv_last_error());
		return rep->error = 5;
	}
	while (fix_now() < deadline && rep->error == 0) {
		for (int w = 0; w < TORN_WRITERS; w++) {
			for (int k = 0; k < TORN_KEYS; k++) {
				size_t len = 0;
				unsigned version = 0;
				enum shmkv_status st;

				snprintf(key, sizeof(key), "torn-%d-%d", w, k);
				st = shmkv_get(kv, key, strlen(key), buf,
					       sizeof(buf), &len, NULL);
				if (st == SHMKV_NOT_FOUND)
					continue;
				if (st != SHMKV_OK) {
					snprintf(rep->detail, sizeof(rep->detail),
						 "get %s: %s", key,
						 shmkv_last_error());
					rep->error = 6;
					break;
				}
				rep->reads++;
				rep->error = torn_check(key, buf, len, &version);
				if (rep->error == 0 && version < last[w][k])
					rep->error = 3; /* went back in time */
				if (rep->error != 0) {
					snprintf(rep->detail, sizeof(rep->detail),
						 "%s (version %u after %u): %.60s",
						 key, version, last[w][k], buf);
					break;
				}
				rep->changes += version != last[w][k];
				last[w][k] = version;
			}
		}
	}
	shmkv_close(kv);
	return rep->error;
}

static int torn_setup(void **state)
{
	struct server *s = calloc(2, sizeof(*s)); /* as fix_setup's */

	if (s == NULL)
		return -1;
	fix_server_start(s, NULL,
			 (const char *[]){ "-m", TORN_MEMORY, "-I",
					   TORN_MAX_ITEM, NULL });
	*state = s;
	return 0;
}

static void test_readers_never_see_torn_values(void **state)
{
	struct server *s = *state;
	/* Shared with the children: each reader fills in its report. */
	struct torn_report *reps = mmap(NULL, TORN_READERS * sizeof(*reps),
					PROT_READ | PROT_WRITE,
					MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pids[TORN_WRITERS + TORN_READERS];
	double deadline = fix_now() + TORN_SECONDS;
	int status;

	assert_true(reps != MAP_FAILED);
	memset(reps, 0, TORN_READERS * sizeof(*reps));
	for (int i = 0; i < TORN_WRITERS + TORN_READERS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0)
			_exit(i < TORN_WRITERS
				      ? torn_writer(s, i, deadline)
				      : torn_reader(s, &reps[i - TORN_WRITERS],
						    deadline));
	}
	for (int i = 0; i < TORN_WRITERS + TORN_READERS; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		if (i >= TORN_WRITERS) {
			struct torn_report *r = &reps[i - TORN_WRITERS];

			if (r->error != 0)
				fail_msg("reader %d: error %d after %" PRIu64
					 " reads: %s",
					 i - TORN_WRITERS, r->error, r->reads,
					 r->detail);
			/* It must have read while the writers were busy. */
			print_message("reader %d: %" PRIu64 " values checked, "
				      "%" PRIu64 " changes seen\n",
				      i - TORN_WRITERS, r->reads, r->changes);
			if (r->reads < 1000 || r->changes < 100)
				fail_msg("reader %d read too little to tell: %" PRIu64
					 " values, %" PRIu64 " changes",
					 i - TORN_WRITERS, r->reads, r->changes);
		}
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	munmap(reps, TORN_READERS * sizeof(*reps));
}

/*
 * Every handle holds a proc slot; when they are all taken the next open
 * says so.  The server has no flag for fewer slots, so this takes all of
 * its 256 (less those its workers hold).
 */
static void test_out_of_proc_slots(void **state)
{
	struct server *s = *state;
	enum {
		MAX = CACHE_DEFAULT_PROCS + 8
	};
	shmkv **kvs = calloc(MAX, sizeof(*kvs));
	enum shmkv_status st = SHMKV_OK;
	struct rlimit rl;
	int n = 0;

	assert_non_null(kvs);
	/* Three descriptors a handle. */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 4 * MAX) {
		print_message("skipped: RLIMIT_NOFILE's hard limit %llu is below "
			      "the %d descriptors this takes\n",
			      (unsigned long long)rl.rlim_max, 4 * MAX);
		skip();
	}
	if (rl.rlim_cur < 4 * MAX) {
		rl.rlim_cur = 4 * MAX;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	while (n < MAX && (st = shmkv_open(s->sock, &kvs[n])) == SHMKV_OK)
		n++;
	char msg[256];
	snprintf(msg, sizeof(msg), "%s", shmkv_last_error());
	assert_int_equal(st, SHMKV_NO_PROC_SLOTS);
	assert_true(n > (int)CACHE_DEFAULT_PROCS / 2 &&
		    n < (int)CACHE_DEFAULT_PROCS);
	assert_non_null(strstr(msg, "proc slots"));

	/* A slot comes back when its client goes. */
	shmkv_close(kvs[--n]);
	double until = fix_now() + 3.0;
	while ((st = shmkv_open(s->sock, &kvs[n])) != SHMKV_OK &&
	       fix_now() < until)
		fix_sleep(0.02);
	assert_int_equal(st, SHMKV_OK);
	n++;
	while (n > 0)
		shmkv_close(kvs[--n]);
	free(kvs);
}

/* One handle, four threads: calls serialise; nothing is mixed up. */
#define THREADS 4
#define THREAD_ROUNDS 600

struct thread_arg {
	shmkv *kv;
	int id;
	int error;
	char detail[128];
};

static void *thread_main(void *p)
{
	struct thread_arg *a = p;
	char key[32], val[32], buf[32];

	for (int i = 0; i < THREAD_ROUNDS && a->error == 0; i++) {
		size_t len = 0;
		enum shmkv_status st;

		snprintf(key, sizeof(key), "thread-%d-%d", a->id, i % 8);
		snprintf(val, sizeof(val), "%d:%d", a->id, i);
		st = shmkv_set(a->kv, key, strlen(key), val, strlen(val),
			       (uint32_t)a->id, 0);
		if (st == SHMKV_OK)
			st = shmkv_get(a->kv, key, strlen(key), buf,
				       sizeof(buf), &len, NULL);
		if (st != SHMKV_OK || len != strlen(val) ||
		    memcmp(buf, val, len) != 0) {
			a->error = 1;
			snprintf(a->detail, sizeof(a->detail),
				 "%s: %s, got "
				 "'%.*s' for '%s'",
				 key, shmkv_strerror(st), (int)len, buf, val);
		}
		/* Another thread's key: any of its values, never a torn one. */
		snprintf(key, sizeof(key), "thread-%d-0", (a->id + 1) % THREADS);
		st = shmkv_get(a->kv, key, strlen(key), buf, sizeof(buf) - 1,
			       &len, NULL);
		if (st == SHMKV_OK) {
			buf[len] = '\0';
			if (atoi(buf) != (a->id + 1) % THREADS ||
			    strchr(buf, ':') == NULL)
				a->error = 2;
		} else if (st != SHMKV_NOT_FOUND) {
			a->error = 3;
		}
	}
	return NULL;
}

static void test_threads_share_a_handle(void **state)
{
	struct server *s = *state;
	struct thread_arg args[THREADS];
	pthread_t tids[THREADS];
	struct shmkv_counters c;
	shmkv *kv = fix_open(s);

	for (int i = 0; i < THREADS; i++) {
		args[i] = (struct thread_arg){ .kv = kv, .id = i };
		assert_int_equal(pthread_create(&tids[i], NULL, thread_main,
						&args[i]),
				 0);
	}
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(tids[i], NULL), 0);
	for (int i = 0; i < THREADS; i++)
		if (args[i].error != 0)
			fail_msg("thread %d: error %d: %s", i, args[i].error,
				 args[i].detail);
	/* Every lookup counted once, none lost to a race. */
	shmkv_counters(kv, &c);
	assert_int_equal(c.hits + c.misses, 2 * THREADS * THREAD_ROUNDS);
	shmkv_close(kv);
}

/*
 * Lookups take no lock: with the handle's mutex held (as a thread busy
 * writing holds it), more lookups than one liveness round still finish,
 * and are counted.  Taking the mutex in a lookup would hang right here.
 */
static void test_lookups_do_not_wait_for_the_mutex(void **state)
{
	struct server *s = *state;
	struct shmkv_item items[4];
	struct shmkv_counters c;
	char buf[32], bufs[4][32];
	int fd = fix_tcp(s);
	shmkv *kv = fix_open(s);

	fix_tcp_store(fd, "set k 0 0 3", "val", "STORED");
	close(fd);
	assert_int_equal(fix_get_str(kv, "k", buf, sizeof(buf), NULL), SHMKV_OK);
	pthread_mutex_lock(&kv->mu);
	for (int i = 0; i < 600; i++) {
		assert_int_equal(fix_get_str(kv, i % 2 ? "k" : "nope", buf,
					     sizeof(buf), NULL),
				 i % 2 ? SHMKV_OK : SHMKV_NOT_FOUND);
		for (int j = 0; j < 4; j++)
			items[j] = (struct shmkv_item){ .key = "k",
							.key_len = 1,
							.buf = bufs[j],
							.cap = 32 };
		assert_int_equal(shmkv_get_many(kv, items, 4), SHMKV_OK);
		assert_int_equal(items[3].status, SHMKV_OK);
		assert_memory_equal(bufs[3], "val", 3);
	}
	pthread_mutex_unlock(&kv->mu);
	shmkv_counters(kv, &c);
	assert_int_equal(c.hits, 1 + 300 + 600 * 4);
	assert_int_equal(c.misses, 300);
	shmkv_close(kv);
}

/*
 * Threads looking up on one handle while the server stops, comes back, is
 * killed and comes back again: each lookup gives a value some server
 * stored for the key, not found, or SERVER_GONE, never anything else and
 * never a crash (a mapping unmapped under a lookup would fault, and
 * ASan's build reports it); and every thread goes on to see the newest
 * server's value by itself.
 */
#define RESTART_THREADS 4

struct restart_arg {
	shmkv *kv;
	_Atomic int stop;
	_Atomic int generation; /* what each thread last saw: 1, 2, 3 */
	_Atomic uint64_t lookups;
	int error;
	char detail[128];
};

static void *restart_reader(void *p)
{
	struct restart_arg *a = p;
	char buf[32], many[3][32];

	while (!atomic_load(&a->stop) && a->error == 0) {
		struct shmkv_item items[3];
		size_t len = 0;
		enum shmkv_status st = shmkv_get(a->kv, "k", 1, buf,
						 sizeof(buf) - 1, &len, NULL);

		if (st == SHMKV_OK && len == 4 && memcmp(buf, "gen", 3) == 0 &&
		    buf[3] >= '1' && buf[3] <= '3')
			atomic_store(&a->generation, buf[3] - '0');
		else if (st != SHMKV_NOT_FOUND && st != SHMKV_SERVER_GONE)
			a->error = 1;
		for (int j = 0; j < 3; j++)
			items[j] = (struct shmkv_item){ .key = "k",
							.key_len = 1,
							.buf = many[j],
							.cap = 32 };
		st = shmkv_get_many(a->kv, items, 3);
		for (int j = 0; j < 3 && a->error == 0; j++)
			if (items[j].status == SHMKV_OK
				    ? items[j].value_len != 4 ||
					      memcmp(many[j], "gen", 3) != 0
				    : items[j].status != SHMKV_NOT_FOUND &&
					      items[j].status != SHMKV_SERVER_GONE)
				a->error = 2;
		if (a->error != 0)
			snprintf(a->detail, sizeof(a->detail), "%s: %s",
				 shmkv_strerror(st), shmkv_last_error());
		atomic_fetch_add(&a->lookups, 1);
	}
	return NULL;
}

/*
 * stop_readers - stop and join every reader thread; before any failure is
 * reported, so that no thread outlives the test's frame that holds args.
 */
static void stop_readers(struct restart_arg *args, pthread_t *tids)
{
	for (int i = 0; i < RESTART_THREADS; i++)
		atomic_store(&args[i].stop, 1);
	for (int i = 0; i < RESTART_THREADS; i++)
		assert_int_equal(pthread_join(tids[i], NULL), 0);
}

/*
 * Wait until every thread saw generation gen: 60 s at most, since under
 * valgrind four threads share one core and a reattach is slow.
 */
static void wait_all_see(struct restart_arg *args, pthread_t *tids, int gen)
{
	double deadline = fix_now() + 60.0;
	int seen;

	do {
		seen = 0;
		for (int i = 0; i < RESTART_THREADS; i++)
			seen += atomic_load(&args[i].generation) == gen;
		if (seen == RESTART_THREADS)
			return;
		fix_sleep(0.005);
	} while (fix_now() < deadline);
	stop_readers(args, tids);
	fail_msg("only %d of %d threads saw generation %d within 60 s", seen,
		 RESTART_THREADS, gen);
}

static void store_generation(const struct server *s, const char *value)
{
	int fd = fix_tcp(s);

	fix_tcp_store(fd, "set k 0 0 4", value, "STORED");
	close(fd);
}

static void test_threads_look_up_across_restarts(void **state)
{
	struct server *s = *state;
	struct restart_arg args[RESTART_THREADS];
	pthread_t tids[RESTART_THREADS];
	shmkv *kv = fix_open(s);

	store_generation(s, "gen1");
	for (int i = 0; i < RESTART_THREADS; i++) {
		args[i] = (struct restart_arg){ .kv = kv };
		assert_int_equal(pthread_create(&tids[i], NULL, restart_reader,
						&args[i]),
				 0);
	}
	wait_all_see(args, tids, 1);
	assert_int_equal(fix_server_stop(s), 0);
	fix_server_start(s, s->dir, NULL);
	store_generation(s, "gen2");
	wait_all_see(args, tids, 2);
	fix_server_kill(s);
	fix_server_start(s, s->dir, NULL);
	store_generation(s, "gen3");
	wait_all_see(args, tids, 3);
	stop_readers(args, tids);
	for (int i = 0; i < RESTART_THREADS; i++)
		if (args[i].error != 0)
			fail_msg("thread %d: error %d: %s", i, args[i].error,
				 args[i].detail);
	shmkv_close(kv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_readers_never_see_torn_values,
						torn_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_threads_share_a_handle,
						fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_out_of_proc_slots,
						fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_lookups_do_not_wait_for_the_mutex,
						fix_setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_threads_look_up_across_restarts,
						fix_setup, fix_teardown),
	};

	if (!fix_have_server())
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
