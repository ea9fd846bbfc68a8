/*
 * test_units.c - unit tests of the bench's pieces that need no server:
 * histogram.c, mcreply.c and keyspace.c
 *
 * Plain C with a CHECK macro rather than cmocka, so the bench's tests build
 * even where the project's unit tests are configured off (-Dtests=false).
 * Each check prints what failed; the exit status counts failures.
 *
 * Interface routines: main.
 */
#include <stdio.h>
#include <string.h>

#include "histogram.h"
#include "keyspace.h"
#include "mcreply.h"

static int failures;

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
				__LINE__, #cond); \
			failures++; \
		} \
	} while (0)

static struct hist h1, h2;

static void test_histogram(void)
{
	hist_reset(&h1);
	CHECK(hist_value_at(&h1, 50) == 0);
	for (uint64_t v = 1; v <= 100000; v++)
		hist_record(&h1, v, 1);
	/* within 1/64 of the true percentile, never below it */
	for (double p = 1; p < 100; p += 7.5) {
		double want = p * 1000.0, got = (double)hist_value_at(&h1, p);

		CHECK(got >= want - 1 && got <= want * (1 + 1.0 / 64) + 1);
	}
	CHECK(hist_value_at(&h1, 100) == 100000);
	CHECK(h1.min == 1 && h1.max == 100000 && h1.count == 100000);
	/* exact below 64; values past 2^40 land in the last bucket */
	hist_reset(&h2);
	hist_record(&h2, 37, 3);
	CHECK(hist_value_at(&h2, 50) == 37);
	hist_record(&h2, 1ull << 50, 1);
	CHECK(hist_value_at(&h2, 100) == 1ull << 50);
	hist_merge(&h1, &h2);
	CHECK(h1.count == 100004 && h1.max == 1ull << 50 && h1.min == 1);
	for (double p = 10; p < 100; p += 10)
		CHECK(hist_value_at(&h1, p) <= hist_value_at(&h1, p + 10));
}

static void test_mcreply(void)
{
	const char *buf = "VALUE k01 7 5\r\nhello\r\nEND\r\nSTORED\r\n"
			  "SERVER_ERROR out of memory\r\nVERSION 1\r\n";
	size_t len = strlen(buf), pos = 0;
	struct mcreply r;

	/* every prefix of the VALUE element is incomplete, not malformed */
	for (size_t n = 0; n < 22; n++)
		CHECK(mcreply_next(buf, n, &r) == MC_NEED_MORE);
	CHECK(mcreply_next(buf, len, &r) == MC_VALUE);
	CHECK(r.key_len == 3 && memcmp(r.key, "k01", 3) == 0);
	CHECK(r.flags == 7 && r.data_len == 5 && memcmp(r.data, "hello", 5) == 0);
	CHECK(r.consumed == 22);
	pos += r.consumed;
	CHECK(mcreply_next(buf + pos, len - pos, &r) == MC_END);
	pos += r.consumed;
	CHECK(mcreply_next(buf + pos, len - pos, &r) == MC_STORED);
	pos += r.consumed;
	CHECK(mcreply_next(buf + pos, len - pos, &r) == MC_ERROR);
	pos += r.consumed;
	CHECK(mcreply_next(buf + pos, len - pos, &r) == MC_OTHER);
	pos += r.consumed;
	CHECK(pos == len);

	CHECK(mcreply_next("VALUE k 1 2 99\r\nab\r\n", 20, &r) == MC_VALUE);
	CHECK(mcreply_next("VALUE k 1 2\r\nabc\r\n", 18, &r) == MC_MALFORMED);
	CHECK(mcreply_next("VALUE k x 2\r\nab\r\n", 17, &r) == MC_MALFORMED);
	CHECK(mcreply_next("END\n", 4, &r) == MC_MALFORMED);
	CHECK(mcreply_next("VALUE k 1 2\r\n", 13, &r) == MC_NEED_MORE &&
	      r.need == 17);
}

static void test_keyspace(void)
{
	struct keyspace ks;
	struct rng rng;
	char err[128], key[16], val[37];
	uint64_t idx, counts[4] = { 0 };
	const int draws = 200000;

	CHECK(keyspace_init(&ks, 1000, 3, 10, 0, err, sizeof(err)) == -1);
	CHECK(strstr(err, "--key-size") != NULL);
	CHECK(keyspace_init(&ks, 1000, 8, 37, 0, err, sizeof(err)) == 0);
	keyspace_key(&ks, 42, key);
	CHECK(memcmp(key, "k0000042", 8) == 0);
	CHECK(keyspace_key_index(&ks, key, 8, &idx) && idx == 42);
	CHECK(!keyspace_key_index(&ks, "k0001000", 8, &idx));
	CHECK(!keyspace_key_index(&ks, key, 7, &idx));
	keyspace_value(&ks, 42, val);
	CHECK(keyspace_value_matches(&ks, 42, val, 37));
	CHECK(!keyspace_value_matches(&ks, 43, val, 37));
	CHECK(!keyspace_value_matches(&ks, 42, val, 36));
	val[36] ^= 1;
	CHECK(!keyspace_value_matches(&ks, 42, val, 37));

	/* zipf:1 over 1000 keys: P(rank r) = 1/(r * H_1000), H_1000 ~ 7.485 */
	CHECK(keyspace_init(&ks, 1000, 8, 1, 1.0, err, sizeof(err)) == 0);
	rng_seed(&rng, 1, 0);
	for (int i = 0; i < draws; i++) {
		uint64_t k = keyspace_pick(&ks, &rng);

		CHECK(k < 1000);
		if (k < 4)
			counts[k]++;
	}
	for (int r = 0; r < 4; r++) {
		double want = draws / ((r + 1) * 7.485);

		CHECK(counts[r] > want * 0.95 && counts[r] < want * 1.05);
	}
	/* same seed and stream, same keys */
	{
		struct rng a, b;

		rng_seed(&a, 7, 3);
		rng_seed(&b, 7, 3);
		for (int i = 0; i < 100; i++)
			CHECK(keyspace_pick(&ks, &a) == keyspace_pick(&ks, &b));
	}
}

int main(void)
{
	test_histogram();
	test_mcreply();
	test_keyspace();
	if (failures)
		fprintf(stderr, "%d checks failed\n", failures);
	else
		printf("all checks passed\n");
	return failures ? 1 : 0;
}
