/*
 * test_table_counters.c - the table's counters of memcached's stats
 * (client/table_ops.c, client/table_ring.c, client/table.c)
 *
 * memcached counts, per slab class, what its lookups and commands found:
 * get_expired and get_flushed (a lookup of any command that found its
 * item expired or flushed, counted once, since memcached then unlinks the
 * item), the evictions of items with a TTL (evicted_nonzero), of items
 * read since their last move (evicted_active), the idle time of the last
 * evicted item (evicted_time), and the hits of delete, incr, decr, cas
 * and touch.  shmkv counts them per partition; these tests use one
 * partition, so a partition's counters are the table's, and the segment
 * clock, so that time is deterministic.
 */
#include <stdio.h>
#include <string.h>

#include "table_fixture.h"

/* One partition of 8 MiB, items up to 64 KiB. */
static int setup_one(void **state)
{
	*state = cache_new(8 * MIB, 1, 64 * 1024, 0);
	return 0;
}

static struct table_stats part0(struct table *t)
{
	struct table_stats ps;

	table_stats_partition(t, 0, &ps);
	return ps;
}

static enum table_status store_cas(struct table *t, enum table_store_mode mode,
				   const char *key, const char *val, uint64_t cas)
{
	struct table_store_req req = {
		.mode = mode,
		.key = key,
		.key_len = strlen(key),
		.value = val,
		.value_len = strlen(val),
		.compare_cas = true,
		.cas = cas,
	};

	return table_store(t, &req, NULL);
}

static uint64_t cas_of(struct table *t, const char *key)
{
	struct table_item_info info;

	assert_status(get_opts(t, key, NULL, &info), TABLE_OK);
	return info.cas;
}

/* ---- get_expired and get_flushed ------------------------------------ */

static void test_expired_counts_once_per_item(void **state)
{
	struct table *t = tbl(state);
	struct table_stats ps;

	assert_status(set_str(t, "g", "1", 0, 10), TABLE_OK);
	set_clock(state, T0 + 10);
	assert_status(exists(t, "g"), TABLE_NOT_FOUND);
	assert_status(exists(t, "g"), TABLE_NOT_FOUND);
	ps = part0(t);
	/* memcached unlinks the item on the first lookup: the second is a
	 * plain miss. */
	assert_int_equal(ps.get_expired, 1);
	assert_int_equal(ps.get_flushed, 0);
	assert_int_equal(ps.misses, 2);
	assert_int_equal(ps.hits, 0);
}

static void test_expired_counted_by_every_command(void **state)
{
	struct table *t = tbl(state);
	const char *keys[] = { "del", "incr", "app", "touch", "set" };
	struct table_get_opts touch = { .touch = true, .exptime = 100 };
	struct table_item_info info;
	struct table_stats ps;
	uint64_t v;

	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
		assert_status(set_str(t, keys[i], "5", 0, 10), TABLE_OK);
	set_clock(state, T0 + 11);
	assert_status(table_delete(t, "del", 3, NULL), TABLE_NOT_FOUND);
	assert_status(arith(t, "incr", true, 1, &v), TABLE_NOT_FOUND);
	assert_status(store_mode(t, TABLE_APPEND, "app", "x", 1, 0, 0, NULL),
		      TABLE_NOT_STORED);
	assert_status(get_opts(t, "touch", &touch, &info), TABLE_NOT_FOUND);
	ps = part0(t);
	assert_int_equal(ps.get_expired, 4);
	/* A set's lookup finds the expired item too; its replacement is not
	 * counted again as a reclaim, as memcached's was unlinked by then. */
	assert_status(set_str(t, "set", "6", 0, 0), TABLE_OK);
	ps = part0(t);
	assert_int_equal(ps.get_expired, 5);
	assert_int_equal(ps.expirations, 0);
	assert_int_equal(ps.expired_unfetched, 0);
	assert_value(t, "set", "6");
	assert_int_equal(part0(t).get_expired, 5);
}

static void test_flushed_counts_get_flushed(void **state)
{
	struct table *t = tbl(state);
	struct table_stats ps;

	assert_status(set_str(t, "f", "1", 0, 0), TABLE_OK);
	/* Expired and flushed: memcached asks about the flush first. */
	assert_status(set_str(t, "both", "1", 0, 5), TABLE_OK);
	assert_status(set_str(t, "never", "1", 0, 5), TABLE_OK);
	set_clock(state, T0 + 6);
	table_flush(t, 0);
	assert_status(exists(t, "f"), TABLE_NOT_FOUND);
	assert_status(exists(t, "f"), TABLE_NOT_FOUND);
	assert_status(exists(t, "both"), TABLE_NOT_FOUND);
	ps = part0(t);
	assert_int_equal(ps.get_flushed, 2);
	assert_int_equal(ps.get_expired, 0);
	/* An item nobody looked up is reclaimed by the next store of its
	 * key, and counted as memcached's tail would count it. */
	assert_status(set_str(t, "never", "2", 0, 0), TABLE_OK);
	ps = part0(t);
	assert_int_equal(ps.get_flushed, 3);
	assert_int_equal(ps.expirations, 0);
	assert_status(set_str(t, "after", "1", 0, 0), TABLE_OK);
	assert_status(exists(t, "after"), TABLE_OK);
	assert_int_equal(part0(t).get_flushed, 3);
}

/* ---- the commands' hits (stats slabs) ------------------------------- */

static void test_delete_hits(void **state)
{
	struct table *t = tbl(state);
	struct table_delete_opts stale = { .invalidate = true };
	struct table_delete_opts badcas = { .compare_cas = true };

	assert_status(set_str(t, "a", "1", 0, 0), TABLE_OK);
	assert_status(set_str(t, "b", "1", 0, 0), TABLE_OK);
	badcas.cas = cas_of(t, "a") + 100;
	assert_status(table_delete(t, "a", 1, &badcas), TABLE_EXISTS);
	/* md I marks the item stale: memcached counts no delete hit. */
	assert_status(table_delete(t, "b", 1, &stale), TABLE_OK);
	assert_int_equal(part0(t).delete_hits, 0);
	assert_status(table_delete(t, "a", 1, NULL), TABLE_OK);
	assert_status(table_delete(t, "a", 1, NULL), TABLE_NOT_FOUND);
	assert_status(table_delete(t, "b", 1, NULL), TABLE_OK);
	assert_int_equal(part0(t).delete_hits, 2);
}

static void test_incr_decr_hits(void **state)
{
	struct table *t = tbl(state);
	struct table_arith_req viv = {
		.key = "v",
		.key_len = 1,
		.incr = true,
		.delta = 1,
		.vivify = true,
		.initial = 7,
	};
	struct table_stats ps;
	uint64_t v;

	assert_status(set_str(t, "n", "10", 0, 0), TABLE_OK);
	assert_status(set_str(t, "s", "abc", 0, 0), TABLE_OK);
	assert_status(arith(t, "n", true, 5, &v), TABLE_OK);
	assert_status(arith(t, "n", true, 99999999999ull, &v), TABLE_OK);
	assert_status(arith(t, "n", false, 1, &v), TABLE_OK);
	assert_status(arith(t, "s", true, 1, &v), TABLE_NON_NUMERIC);
	assert_status(arith(t, "m", false, 1, &v), TABLE_NOT_FOUND);
	/* A number ma N creates is neither a hit nor a miss in memcached. */
	assert_status(table_arith(t, &viv, &v, NULL), TABLE_OK);
	assert_int_equal(v, 7);
	ps = part0(t);
	assert_int_equal(ps.incr_hits, 2);
	assert_int_equal(ps.decr_hits, 1);
}

static void test_cas_hits_and_badval(void **state)
{
	struct table *t = tbl(state);
	struct table_stats ps;

	assert_status(set_str(t, "c", "1", 0, 0), TABLE_OK);
	assert_status(store_cas(t, TABLE_CAS, "c", "2", cas_of(t, "c") + 100),
		      TABLE_EXISTS);
	assert_status(store_cas(t, TABLE_CAS, "c", "2", cas_of(t, "c")),
		      TABLE_OK);
	/* ms C in set or replace mode is memcached's cas command. */
	assert_status(store_cas(t, TABLE_REPLACE, "c", "3", cas_of(t, "c")),
		      TABLE_OK);
	assert_status(store_cas(t, TABLE_SET, "c", "4", 1), TABLE_EXISTS);
	/* A CAS that finds no item is a miss, which only stats counts. */
	assert_status(store_cas(t, TABLE_CAS, "none", "1", 5), TABLE_NOT_FOUND);
	/* An append's CAS check counts nothing in memcached. */
	assert_status(store_cas(t, TABLE_APPEND, "c", "x", 1), TABLE_EXISTS);
	assert_status(store_cas(t, TABLE_APPEND, "c", "x", cas_of(t, "c")),
		      TABLE_OK);
	ps = part0(t);
	assert_int_equal(ps.cas_hits, 2);
	assert_int_equal(ps.cas_badval, 2);
	assert_value(t, "c", "3x");
}

static void test_touch_hits_are_not_get_hits(void **state)
{
	struct table *t = tbl(state);
	struct table_get_opts touch = { .touch = true, .exptime = 100 };
	struct table_item_info info;
	struct table_stats ps;

	assert_status(set_str(t, "k", "1", 0, 0), TABLE_OK);
	assert_status(get_opts(t, "k", &touch, &info), TABLE_OK);
	assert_status(get_opts(t, "k", &touch, &info), TABLE_OK);
	assert_status(get_opts(t, "missing", &touch, &info), TABLE_NOT_FOUND);
	assert_status(exists(t, "k"), TABLE_OK);
	ps = part0(t);
	assert_int_equal(ps.touch_hits, 2);
	assert_int_equal(ps.hits, 1);
}

/* ---- evictions ------------------------------------------------------ */

/* Store item i of a run (1000-byte values, ttl) under prefix. */
static void put(struct table *t, const char *prefix, unsigned i, int64_t ttl)
{
	char key[32], val[1001];

	snprintf(key, sizeof(key), "%s%u", prefix, i);
	memset(val, 'v', 1000);
	val[1000] = '\0';
	assert_status(set_str(t, key, val, 0, ttl), TABLE_OK);
}

/* Store fresh items until n evictions have happened; how many it took. */
static unsigned fill_until_evicted(struct table *t, const char *prefix,
				   uint64_t n, int64_t ttl)
{
	unsigned i = 0;

	while (part0(t).evictions < n) {
		assert_true(i < 100000);
		put(t, prefix, i++, ttl);
	}
	return i;
}

static void test_evicted_nonzero_and_time(void **state)
{
	struct table *t = tbl(state);
	struct table_stats ps;
	unsigned held, more;
	uint64_t first;

	/* Items with a TTL, stored at T0; more of them 7 s later.  One
	 * allocation may evict two items (keys differ in length). */
	held = fill_until_evicted(t, "old", 1, 100000);
	first = part0(t).evictions;
	set_clock(state, T0 + 7);
	more = fill_until_evicted(t, "new", first + 1, 100000);
	ps = part0(t);
	assert_int_equal(ps.evicted_nonzero, ps.evictions);
	/* The ring's oldest went first: stored, and not read, 7 s before. */
	assert_int_equal(ps.evicted_time, 7);
	assert_int_equal(ps.evicted_active, 0);
	/* Items without a TTL: the ring evicts in the order items were
	 * stored, so every item with a TTL goes before the first without. */
	set_clock(state, T0 + 9);
	fill_until_evicted(t, "zero", held + more + 10, 0);
	ps = part0(t);
	assert_int_equal(ps.evicted_nonzero, held + more);
	assert_true(ps.evictions >= held + more + 10);
	/* The last evicted's idle time, not the longest. */
	assert_int_equal(ps.evicted_time, 0);
}

static void test_evicted_active(void **state)
{
	struct table *t = tbl(state);
	struct table_stats ps;
	unsigned held, i;
	uint64_t before;
	char key[32];

	held = fill_until_evicted(t, "r", 1, 0);
	before = part0(t).evictions;
	/* Read every item still there: each gets a second chance at the
	 * tail while one allocation's copy budget lasts (256 KiB, some 250
	 * of these items); past it, a read item is evicted all the same:
	 * memcached's active item evicted from its cold LRU. */
	for (i = 0; i < held; i++) {
		snprintf(key, sizeof(key), "r%u", i);
		(void)exists(t, key);
	}
	for (i = 0; i < 10; i++)
		put(t, "big", i, 0);
	ps = part0(t);
	assert_true(held > 10 * 300);
	assert_true(ps.reinserted >= 10 * 200);
	assert_true(ps.evictions > before);
	/* Every item the tail reached so far had been read. */
	assert_int_equal(ps.evicted_active, ps.evictions - before);
}

/* ---- stats reset -------------------------------------------------- */

static void test_reset_zeroes_counters_not_contents(void **state)
{
	struct table *t = tbl(state);
	struct table_stats ps;
	uint64_t v;

	fill_until_evicted(t, "r", 1, 10);
	assert_status(set_str(t, "n", "1", 0, 0), TABLE_OK);
	assert_status(arith(t, "n", true, 1, &v), TABLE_OK);
	assert_status(exists(t, "n"), TABLE_OK);
	set_clock(state, T0 + 20);
	assert_status(exists(t, "r5"), TABLE_NOT_FOUND);
	ps = part0(t);
	assert_true(ps.evictions > 0 && ps.get_expired == 1 &&
		    ps.incr_hits == 1 && ps.hits == 1 && ps.total_items > 0);
	table_stats_reset(t);
	ps = part0(t);
	assert_int_equal(ps.evictions + ps.evicted_nonzero + ps.evicted_time +
				 ps.evicted_unfetched + ps.expirations +
				 ps.get_expired + ps.incr_hits + ps.hits +
				 ps.misses + ps.total_items,
			 0);
	assert_true(ps.items > 1);
	assert_value(t, "n", "2");
	/* The item a lookup counted before the reset stays counted. */
	assert_status(exists(t, "r5"), TABLE_NOT_FOUND);
	assert_int_equal(part0(t).get_expired, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_one, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_expired_counts_once_per_item),
		T(test_expired_counted_by_every_command),
		T(test_flushed_counts_get_flushed),
		T(test_delete_hits),
		T(test_incr_decr_hits),
		T(test_cas_hits_and_badval),
		T(test_touch_hits_are_not_get_hits),
		T(test_evicted_nonzero_and_time),
		T(test_evicted_active),
		T(test_reset_zeroes_counters_not_contents),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
