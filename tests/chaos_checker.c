/*
 * chaos_checker.c - a client program that checks every value it reads
 *
 * Used by tests/e2e/test_chaos.py: attaches to the server over its Unix
 * socket and looks keys "chaos:<n>" up directly in shared memory
 * (shmkv_get) for a number of seconds, while the test kills workers and
 * checkers around it.  Every value the test writes is
 * "key|version|payload|crc", crc being the CRC-32 (zlib's) of what precedes
 * the last '|' in hex, so a torn or misplaced value cannot pass.
 *
 * It fails (and says why on stderr) on a corrupt value (exit 1) or when
 * it makes no progress for the stall limit (exit 3): a lookup that waits on
 * a lock a dead process left behind.  A watchdog thread checks progress,
 * since a lookup blocked for good never returns to be timed.  On success it prints one
 * line of counts and exits 0.
 *
 * Usage: chaos_checker SOCKET NKEYS SECONDS [STALL_MS]
 *
 * The second mode is a client program that dies in a lock, for the
 * deterministic tests of crash recovery: it attaches, takes the lock of the
 * partition KEY falls in (shared, as a lookup does, or exclusive, as a
 * writer does: the lock is in the writable control part, so a client can),
 * prints "held" and waits to be killed.
 *
 * Usage: chaos_checker SOCKET hold KEY shared|exclusive
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_internal.h"
#include "shmkv.h"
#include "table_internal.h"

static uint32_t crc_table[256];
static _Atomic unsigned long progress; /* lookups finished */
static _Atomic int finished;
static long stall_ms = 1000;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

/* crc32 - zlib's crc32(data) (IEEE 802.3, reflected). */
static uint32_t crc32(const unsigned char *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;

	while (n--)
		c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* watchdog - exit 3 if no lookup finishes within stall_ms. */
static void *watchdog(void *arg)
{
	unsigned long last = (unsigned long)-1;
	double since = now_s();

	(void)arg;
	while (!atomic_load(&finished)) {
		struct timespec ts = { 0, 20 * 1000000L };
		unsigned long now = atomic_load(&progress);

		if (now != last) {
			last = now;
			since = now_s();
		} else if ((now_s() - since) * 1000 > (double)stall_ms) {
			fprintf(stderr,
				"checker: STUCK: no lookup finished for "
				"%ld ms\n",
				stall_ms);
			fflush(stderr);
			_exit(3);
		}
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* value_ok - is v "key|version|payload|crc" for this key, crc matching? */
static int value_ok(const char *key, const char *v, size_t len)
{
	const char *bar = NULL;
	size_t klen = strlen(key);
	char hex[9];

	for (size_t i = len; i > 0; i--) {
		if (v[i - 1] == '|') {
			bar = v + i - 1;
			break;
		}
	}
	if (bar == NULL || (size_t)(v + len - bar - 1) != 8 || len < klen + 1 ||
	    memcmp(v, key, klen) != 0 || v[klen] != '|')
		return 0;
	snprintf(hex, sizeof(hex), "%08x",
		 crc32((const unsigned char *)v, (size_t)(bar - v)));
	return memcmp(bar + 1, hex, 8) == 0;
}

/* hold - take the lock of key's partition in mode and wait for death. */
static int hold(shmkv *kv, const char *key, const char *mode)
{
	struct table_part_ref pr;
	char buf[16];

	/* A lookup first: it attaches the handle if it is not yet. */
	(void)shmkv_get(kv, key, strlen(key), buf, sizeof(buf), NULL, NULL);
	if (!kv->attached) {
		fprintf(stderr, "checker: not attached: %s\n",
			shmkv_last_error());
		return 4;
	}
	table_part_resolve(&kv->cache->table, table_hash(key, strlen(key)), &pr);
	lwlock_acquire(&kv->cache->table.owner, &pr.ctl->c.lock,
		       strcmp(mode, "exclusive") == 0 ? LW_EXCLUSIVE : LW_SHARED);
	printf("held partition %u\n", pr.index);
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	static char buf[65536];
	unsigned long hits = 0, misses = 0, errors = 0, n = 0;
	double start, end, worst = 0;
	long nkeys;
	pthread_t dog;
	shmkv *kv = NULL;
	enum shmkv_status st;

	if (argc < 4) {
		fprintf(stderr, "usage: %s SOCKET NKEYS SECONDS [STALL_MS]\n",
			argv[0]);
		return 2;
	}
	nkeys = strtol(argv[2], NULL, 10);
	if (nkeys <= 0)
		nkeys = 1;
	if (argc > 4)
		stall_ms = strtol(argv[4], NULL, 10);
	crc_init();
	srand((unsigned)time(NULL) ^ (unsigned)(uintptr_t)&argc);
	st = shmkv_open(argv[1], &kv);
	if (st != SHMKV_OK) {
		fprintf(stderr, "checker: cannot attach: %s\n",
			shmkv_last_error());
		return 4;
	}
	if (strcmp(argv[2], "hold") == 0)
		return argc > 4 ? hold(kv, argv[3], argv[4]) : 2;
	start = now_s();
	end = start + strtod(argv[3], NULL);
	if (pthread_create(&dog, NULL, watchdog, NULL) != 0) {
		fprintf(stderr, "checker: cannot start the watchdog\n");
		return 4;
	}
	for (;;) {
		char key[32];
		size_t len = 0;
		double t0 = now_s(), took;

		if (t0 > end)
			break;
		snprintf(key, sizeof(key), "chaos:%ld", (long)rand() % nkeys);
		st = shmkv_get(kv, key, strlen(key), buf, sizeof(buf), &len,
			       NULL);
		took = now_s() - t0;
		if (took > worst)
			worst = took;
		if (took * 1000 > (double)stall_ms) {
			fprintf(stderr,
				"checker: STUCK: a lookup of %s took %.0f ms\n",
				key, took * 1000);
			return 3;
		}
		n++;
		atomic_store(&progress, n);
		if (st == SHMKV_OK) {
			hits++;
			if (!value_ok(key, buf, len)) {
				fprintf(stderr,
					"checker: CORRUPT value of %s: %.*s\n",
					key, (int)(len > 200 ? 200 : len), buf);
				return 1;
			}
		} else if (st == SHMKV_NOT_FOUND) {
			misses++;
		} else {
			errors++;
		}
	}
	atomic_store(&finished, 1);
	pthread_join(dog, NULL);
	printf("checker: lookups=%lu hits=%lu misses=%lu errors=%lu "
	       "worst_ms=%.1f\n",
	       n, hits, misses, errors, worst * 1000);
	shmkv_close(kv);
	return 0;
}
