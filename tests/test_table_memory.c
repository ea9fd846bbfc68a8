/*
 * test_table_memory.c - bounded memory in the table (client/table_ring.c)
 *
 * A cache is only as good as what it keeps when it is full.  These tests
 * fill small tables many times over and check the LRU approximation: keys
 * read often survive eviction by memory and by buckets alike, expired
 * items give their space back before live ones are evicted, memory used
 * never exceeds the limit, no lookup ever returns another key's value, and
 * the per-item overhead stays small (measured the way a user would).
 *
 * The fixture (a fresh cache per test, clock at T0) is table_fixture.c.
 */
#include <stdio.h>
#include <string.h>

#include "table_fixture.h"

static void fill_value(char *v, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		v[i] = (char)('a' + (seed + i * 7) % 26);
}

/* hot_keys_lost - how many of hot-0 .. hot-(hot-1) are gone; those there
 * must hold their values. */
static int hot_keys_lost(struct table *t, int hot, size_t vlen)
{
	struct table_item_info info;
	char key[32], val[1000], buf[1001];
	int lost = 0;

	assert_true(vlen <= sizeof(val));
	for (int h = 0; h < hot; h++) {
		snprintf(key, sizeof(key), "hot-%d", h);
		enum table_status st = table_get(t, key, strlen(key), NULL, buf,
						 sizeof(buf), &info);
		if (st != TABLE_OK) {
			lost++;
			continue;
		}
		fill_value(val, vlen, (unsigned)h);
		assert_int_equal(info.value_len, vlen);
		assert_memory_equal(buf, val, vlen);
	}
	return lost;
}

static void test_eviction_keeps_hot_keys(void **state)
{
	struct cache *c = *state;
	struct table *t = &c->table;
	enum {
		HOT = 50,
		VLEN = 1000,
		COLD = 20 * 4 * 1024
	}; /* ~20x memory */
	char key[32];
	char val[VLEN];
	char buf[VLEN + 1];
	struct table_item_info info;
	unsigned hot_next = 0;

	for (int h = 0; h < HOT; h++) {
		snprintf(key, sizeof(key), "hot-%d", h);
		fill_value(val, VLEN, (unsigned)h);
		assert_status(store_mode(t, TABLE_SET, key, val, VLEN, 0, 0, NULL),
			      TABLE_OK);
	}
	for (int i = 0; i < COLD; i++) {
		snprintf(key, sizeof(key), "cold-%d", i);
		fill_value(val, VLEN, (unsigned)i + 1000);
		assert_status(store_mode(t, TABLE_SET, key, val, VLEN, 0, 0, NULL),
			      TABLE_OK);
		/* Read 10 hot keys every 20 writes: each one every 100. */
		if (i % 20 == 19) {
			for (int r = 0; r < 10; r++) {
				snprintf(key, sizeof(key), "hot-%u",
					 hot_next++ % HOT);
				table_get(t, key, strlen(key), NULL, buf,
					  sizeof(buf), &info);
			}
		}
	}

	struct table_stats s = stats(t);
	printf("eviction: items %llu bytes %llu mem_used %llu mem_limit %llu "
	       "evictions %llu reinserted %llu\n",
	       (unsigned long long)s.items, (unsigned long long)s.bytes,
	       (unsigned long long)s.mem_used, (unsigned long long)s.mem_limit,
	       (unsigned long long)s.evictions, (unsigned long long)s.reinserted);
	assert_true(s.mem_used <= s.mem_limit);
	assert_true(s.mem_limit <= 4 * MIB);
	assert_true(s.bytes <= 4 * MIB);
	assert_true(s.evictions > 0);
	assert_true(s.items * VLEN <= 4 * MIB);

	int hot_lost = hot_keys_lost(t, HOT, VLEN);
	int cold_kept = 0;
	for (int i = 0; i < COLD; i++) {
		snprintf(key, sizeof(key), "cold-%d", i);
		if (table_get(t, key, strlen(key), NULL, buf, sizeof(buf),
			      &info) == TABLE_OK) {
			cold_kept++;
			fill_value(val, VLEN, (unsigned)i + 1000);
			assert_memory_equal(buf, val, VLEN);
		}
	}
	printf("eviction: hot lost %d of %d, cold kept %d of %d\n", hot_lost,
	       HOT, cold_kept, COLD);
	if (hot_lost != 0)
		fail_msg("%d of %d hot keys (each read every 100 writes) were "
			 "evicted",
			 hot_lost, HOT);
	assert_true(cold_kept < COLD / 10);
	/* The most recent writes are what is left of the cold keys. */
	snprintf(key, sizeof(key), "cold-%d", COLD - 1);
	assert_status(exists(t, key), TABLE_OK);
}

static void test_expired_items_reclaimed(void **state)
{
	struct cache *c = *state;
	struct table *t = &c->table;
	enum {
		VLEN = 1000,
		FILL = 8000,
		REFILL = 2000
	};
	char key[32];
	char val[VLEN];

	fill_value(val, VLEN, 1);
	for (int i = 0; i < FILL; i++) {
		snprintf(key, sizeof(key), "short-%d", i);
		assert_status(store_mode(t, TABLE_SET, key, val, VLEN, 0, 10,
					 NULL),
			      TABLE_OK);
	}
	struct table_stats s1 = stats(t);

	segment_set_clock(&c->seg, T0 + 20);
	for (int i = 0; i < REFILL; i++) {
		snprintf(key, sizeof(key), "long-%d", i);
		assert_status(store_mode(t, TABLE_SET, key, val, VLEN, 0, 0, NULL),
			      TABLE_OK);
	}
	struct table_stats s2 = stats(t);
	printf("expiry: expirations %llu -> %llu, evictions %llu -> %llu, "
	       "items %llu\n",
	       (unsigned long long)s1.expirations,
	       (unsigned long long)s2.expirations,
	       (unsigned long long)s1.evictions,
	       (unsigned long long)s2.evictions, (unsigned long long)s2.items);
	assert_true(s2.expirations > s1.expirations);
	/* Only dead items were in the way: nothing live had to go. */
	assert_true(s2.evictions == s1.evictions);
	assert_true(s2.mem_used <= s2.mem_limit);
	for (int i = 0; i < REFILL; i++) {
		snprintf(key, sizeof(key), "long-%d", i);
		assert_status(exists(t, key), TABLE_OK);
	}
}

/*
 * What an item costs beyond its key and value (header, alignment, bucket
 * slot, ring slack), measured the way a user would: how many 32+100 byte
 * items a 64 MiB cache holds when it starts to evict.  The goal is 32 bytes
 * or less; the bound here only catches a regression to something wasteful.
 */
static void test_memory_efficiency(void **state)
{
	const uint64_t memory = 64 * MIB; /* as setup_64m */
	struct cache *c = *state;
	struct table *t = &c->table;
	enum {
		KLEN = 32,
		VLEN = 100,
		LIMIT = 4000000
	};
	char key[KLEN + 1];
	char val[VLEN];
	uint64_t items_at_first_eviction = 0;
	uint64_t stores_at_first_eviction = 0;
	uint64_t min_items_after = UINT64_MAX;
	struct table_stats s;

	fill_value(val, VLEN, 3);
	for (uint64_t i = 0; i < LIMIT; i++) {
		snprintf(key, sizeof(key), "key:%028llu", (unsigned long long)i);
		assert_status(table_store(t,
					  &(struct table_store_req){
						  .mode = TABLE_SET,
						  .key = key,
						  .key_len = KLEN,
						  .value = val,
						  .value_len = VLEN },
					  NULL),
			      TABLE_OK);
		if (i % 1024 != 1023)
			continue;
		s = stats(t);
		if (stores_at_first_eviction == 0) {
			if (s.evictions > 0) {
				items_at_first_eviction = s.items;
				stores_at_first_eviction = i + 1;
			}
		} else {
			if (s.items < min_items_after)
				min_items_after = s.items;
			/* Keep going a while to see the steady state. */
			if (i + 1 >= stores_at_first_eviction * 3 / 2)
				break;
		}
	}
	assert_true(items_at_first_eviction > 0);
	double per = (double)memory / (double)items_at_first_eviction -
		     (KLEN + VLEN);
	double steady = (double)memory / (double)min_items_after - (KLEN + VLEN);
	s = stats(t);
	printf("efficiency: %llu items when evictions started (%.1f bytes of "
	       "overhead per item), %llu at least afterwards (%.1f); buckets "
	       "%llu bytes\n",
	       (unsigned long long)items_at_first_eviction, per,
	       (unsigned long long)min_items_after, steady,
	       (unsigned long long)s.bucket_bytes);
	assert_true(s.mem_used <= s.mem_limit);
	assert_true(per < 48.0);
}

/*
 * Tiny items: the buckets, not the memory, run out first.  Hot keys must
 * survive that kind of eviction too, and no lookup may return another key's
 * value.
 */
static void test_bucket_pressure_keeps_hot_keys(void **state)
{
	struct cache *c = *state;
	struct table *t = &c->table;
	enum {
		HOT = 50,
		COLD = 200000
	};
	char key[32];
	char buf[32];
	struct table_item_info info;
	unsigned hot_next = 0;

	for (int h = 0; h < HOT; h++) {
		snprintf(key, sizeof(key), "h%d", h);
		assert_status(set_str(t, key, key, 0, 0), TABLE_OK);
	}
	for (int i = 0; i < COLD; i++) {
		snprintf(key, sizeof(key), "c%d", i);
		assert_status(set_str(t, key, key, 0, 0), TABLE_OK);
		if (i % 20 == 19) {
			for (int r = 0; r < 10; r++) {
				snprintf(key, sizeof(key), "h%u",
					 hot_next++ % HOT);
				table_get(t, key, strlen(key), NULL, buf,
					  sizeof(buf), &info);
			}
		}
	}
	struct table_stats s = stats(t);
	printf("bucket pressure: items %llu evictions %llu mem_used %llu of "
	       "%llu\n",
	       (unsigned long long)s.items, (unsigned long long)s.evictions,
	       (unsigned long long)s.mem_used, (unsigned long long)s.mem_limit);
	assert_true(s.evictions > 0);
	assert_true(s.mem_used <= s.mem_limit);
	int hot_lost = 0;
	for (int h = 0; h < HOT; h++) {
		snprintf(key, sizeof(key), "h%d", h);
		if (get_str(t, key, buf, sizeof(buf), &info) != TABLE_OK)
			hot_lost++;
		else
			assert_string_equal(buf, key);
	}
	uint64_t kept = 0;
	for (int i = 0; i < COLD; i++) {
		snprintf(key, sizeof(key), "c%d", i);
		if (get_str(t, key, buf, sizeof(buf), &info) == TABLE_OK) {
			kept++;
			assert_string_equal(buf, key);
		}
	}
	printf("bucket pressure: hot lost %d, cold kept %llu\n", hot_lost,
	       (unsigned long long)kept);
	if (hot_lost != 0)
		fail_msg("%d of %d hot keys (each read every 100 writes) were "
			 "evicted",
			 hot_lost, HOT);
	assert_int_equal(kept + HOT, s.items);
}

/* memcached's -M: a full table refuses, never evicts; counted per
 * partition (outofmemory), and every item stored stays readable. */
static void test_no_evict_refuses_instead(void **state)
{
	struct cache *c = *state;
	struct table *t = &c->table;
	enum {
		VLEN = 1000,
		TRIES = 8 * 1024
	}; /* ~2x memory */
	char key[32], val[VLEN], buf[VLEN + 1];
	struct table_item_info info;
	int stored = 0, refused = 0;

	t->no_evict = true;
	for (int i = 0; i < TRIES; i++) {
		enum table_status st;

		snprintf(key, sizeof(key), "k-%d", i);
		fill_value(val, VLEN, (unsigned)i);
		st = store_mode(t, TABLE_SET, key, val, VLEN, 0, 0, NULL);
		if (st == TABLE_OK) {
			stored++;
		} else {
			assert_status(st, TABLE_NO_MEMORY);
			refused++;
		}
	}
	struct table_stats s = stats(t);
	assert_true(refused > 0);
	assert_int_equal(s.evictions, 0);
	assert_int_equal(s.outofmemory, (uint64_t)refused);
	assert_int_equal(s.items, (uint64_t)stored);
	/* Every store that succeeded is still there: nothing made room. */
	int seen = 0;
	for (int i = 0; i < TRIES; i++) {
		snprintf(key, sizeof(key), "k-%d", i);
		seen += table_get(t, key, strlen(key), NULL, buf, sizeof(buf),
				  &info) == TABLE_OK;
	}
	assert_int_equal(seen, stored);
	/* Without -M the same table evicts, and counts the unread ones. */
	t->no_evict = false;
	for (int i = 0; i < TRIES; i++) {
		snprintf(key, sizeof(key), "again-%d", i);
		assert_status(store_mode(t, TABLE_SET, key, val, VLEN, 0, 0, NULL),
			      TABLE_OK);
	}
	s = stats(t);
	assert_true(s.evictions > 0);
	/* The k-* items were all read above; the again-* ones never. */
	assert_true(s.evicted_unfetched > 0);
	assert_true(s.evicted_unfetched < s.evictions);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		cmocka_unit_test_setup_teardown(test_eviction_keeps_hot_keys,
						setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_expired_items_reclaimed,
						setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_memory_efficiency,
						setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_bucket_pressure_keeps_hot_keys,
						setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_no_evict_refuses_instead,
						setup_small, teardown),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
