/*
 * test_table.c - the partitioned hash table (client/table.c): operations
 *
 * The table is what every memcached command ends up in, so these tests pin
 * down the outcomes a memcached user relies on: exact statuses, values,
 * flags and CAS for each storage command (set, add, replace, append,
 * prepend, cas), delete, and incr/decr arithmetic including wrap-around and
 * memcached's space padding; and the statistics counters those operations
 * keep.
 *
 * The table's other concepts have files of their own: expiry and flush_all
 * (test_table_expiry.c), the meta protocol's options (test_table_meta.c),
 * bounded memory and eviction (test_table_memory.c), and several processes
 * and randomized model runs (test_table_procs.c).  All share the fixture in
 * table_fixture.c: each test gets a fresh cache, created the way the server
 * creates it, with this process's proc slot claimed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table_fixture.h"

/* Room for the largest value, static so that a failed assertion (which
 * leaves the test by longjmp) leaks nothing. */
static unsigned char big_a[TABLE_DEFAULT_MAX_ITEM + 1];
static unsigned char big_b[TABLE_DEFAULT_MAX_ITEM + 1];

/* ---- get / set -------------------------------------------------------- */

static void test_set_get_round_trip(void **state)
{
	struct table *t = tbl(state);
	struct table_item_info info;
	uint64_t cas = 0;
	char buf[64];

	assert_status(store_mode(t, TABLE_SET, "greeting", "hello", 5,
				 0xdeadbeef, 0, &cas),
		      TABLE_OK);
	assert_true(cas != 0);
	assert_status(get_str(t, "greeting", buf, sizeof(buf), &info), TABLE_OK);
	assert_string_equal(buf, "hello");
	assert_int_equal(info.value_len, 5);
	assert_int_equal(info.flags, 0xdeadbeef);
	assert_true(info.cas == cas);
	assert_int_equal(info.exptime, 0);
	assert_false(info.stale);
	assert_false(info.won);

	/* A miss is NOT_FOUND, for a key near an existing one too. */
	assert_status(get_str(t, "greetings", buf, sizeof(buf), NULL),
		      TABLE_NOT_FOUND);
	assert_status(get_str(t, "greetin", buf, sizeof(buf), NULL),
		      TABLE_NOT_FOUND);

	/* Overwrite: new value, new flags. */
	assert_status(set_str(t, "greeting", "bye", 1, 0), TABLE_OK);
	assert_status(get_str(t, "greeting", buf, sizeof(buf), &info), TABLE_OK);
	assert_string_equal(buf, "bye");
	assert_int_equal(info.flags, 1);
}

static void test_binary_and_empty_values(void **state)
{
	struct table *t = tbl(state);
	struct table_item_info info;
	const unsigned char bin[] = { 0, 1, 0, 255, '\r', '\n', 0, 0x80, 0 };
	unsigned char buf[32];

	assert_status(store_mode(t, TABLE_SET, "bin", bin, sizeof(bin), 0, 0,
				 NULL),
		      TABLE_OK);
	memset(buf, 0xaa, sizeof(buf));
	assert_status(table_get(t, "bin", 3, NULL, buf, sizeof(buf), &info),
		      TABLE_OK);
	assert_int_equal(info.value_len, sizeof(bin));
	assert_memory_equal(buf, bin, sizeof(bin));

	/* Keys are bytes too: a NUL inside one is part of the key. */
	assert_status(table_store(t,
				  &(struct table_store_req){ .mode = TABLE_SET,
							     .key = "a\0b",
							     .key_len = 3,
							     .value = "x",
							     .value_len = 1 },
				  NULL),
		      TABLE_OK);
	assert_status(table_get(t, "a\0c", 3, NULL, NULL, 0, &info),
		      TABLE_NOT_FOUND);
	assert_status(table_get(t, "a", 1, NULL, NULL, 0, &info),
		      TABLE_NOT_FOUND);
	assert_status(table_get(t, "a\0b", 3, NULL, NULL, 0, &info), TABLE_OK);

	assert_status(store_mode(t, TABLE_SET, "empty", "", 0, 42, 0, NULL),
		      TABLE_OK);
	memset(&info, 0xff, sizeof(info));
	assert_status(table_get(t, "empty", 5, NULL, buf, sizeof(buf), &info),
		      TABLE_OK);
	assert_int_equal(info.value_len, 0);
	assert_int_equal(info.flags, 42);
	/* Even a zero-capacity buffer holds an empty value. */
	assert_status(table_get(t, "empty", 5, NULL, buf, 0, &info), TABLE_OK);
}

static void test_key_lengths(void **state)
{
	struct table *t = tbl(state);
	struct table_item_info info;
	char key[TABLE_KEY_MAX + 2];

	memset(key, 'k', sizeof(key));
	assert_status(table_store(t,
				  &(struct table_store_req){ .mode = TABLE_SET,
							     .key = key,
							     .key_len = 1,
							     .value = "one",
							     .value_len = 3 },
				  NULL),
		      TABLE_OK);
	assert_status(table_store(t,
				  &(struct table_store_req){ .mode = TABLE_SET,
							     .key = key,
							     .key_len = TABLE_KEY_MAX,
							     .value = "max",
							     .value_len = 3 },
				  NULL),
		      TABLE_OK);
	assert_status(table_store(t,
				  &(struct table_store_req){
					  .mode = TABLE_SET,
					  .key = key,
					  .key_len = TABLE_KEY_MAX + 1,
					  .value = "over",
					  .value_len = 4 },
				  NULL),
		      TABLE_BAD_KEY);
	assert_status(table_store(t,
				  &(struct table_store_req){ .mode = TABLE_SET,
							     .key = key,
							     .key_len = 0,
							     .value = "none",
							     .value_len = 4 },
				  NULL),
		      TABLE_BAD_KEY);

	char buf[8];
	assert_status(table_get(t, key, 1, NULL, buf, sizeof(buf), &info),
		      TABLE_OK);
	assert_memory_equal(buf, "one", 3);
	assert_status(table_get(t, key, TABLE_KEY_MAX, NULL, buf, sizeof(buf),
				&info),
		      TABLE_OK);
	assert_memory_equal(buf, "max", 3);
	assert_status(table_get(t, key, TABLE_KEY_MAX + 1, NULL, buf,
				sizeof(buf), &info),
		      TABLE_BAD_KEY);
	assert_status(table_get(t, key, 0, NULL, buf, sizeof(buf), &info),
		      TABLE_BAD_KEY);
	assert_status(table_delete(t, key, 0, NULL), TABLE_BAD_KEY);
	assert_status(table_delete(t, key, TABLE_KEY_MAX + 1, NULL),
		      TABLE_BAD_KEY);
	assert_status(table_delete(t, key, TABLE_KEY_MAX, NULL), TABLE_OK);
}

static void test_value_size_limit(void **state)
{
	struct table *t = tbl(state);
	struct table_item_info info;
	size_t max = TABLE_DEFAULT_MAX_ITEM; /* the fixture leaves it default */
	unsigned char *val = big_a;
	unsigned char *buf = big_b;
	char key[TABLE_KEY_MAX];

	for (size_t i = 0; i <= max; i++)
		val[i] = (unsigned char)(i * 131 + 7);

	assert_status(store_mode(t, TABLE_SET, "big", val, max, 0, 0, NULL),
		      TABLE_OK);
	assert_status(table_get(t, "big", 3, NULL, buf, max + 1, &info),
		      TABLE_OK);
	assert_int_equal(info.value_len, max);
	assert_memory_equal(buf, val, max);

	assert_status(store_mode(t, TABLE_SET, "bigger", val, max + 1, 0, 0, NULL),
		      TABLE_TOO_LARGE);
	assert_status(exists(t, "bigger"), TABLE_NOT_FOUND);
	/* A refused overwrite leaves the old value in place. */
	assert_status(store_mode(t, TABLE_SET, "big", val, max + 1, 0, 0, NULL),
		      TABLE_TOO_LARGE);
	assert_status(table_get(t, "big", 3, NULL, NULL, 0, &info), TABLE_OK);
	assert_int_equal(info.value_len, max);

	/* The largest key with the largest value still fits a partition. */
	memset(key, 'K', sizeof(key));
	assert_status(table_store(t,
				  &(struct table_store_req){ .mode = TABLE_SET,
							     .key = key,
							     .key_len = sizeof(key),
							     .value = val,
							     .value_len = max },
				  NULL),
		      TABLE_OK);
	assert_status(table_get(t, key, sizeof(key), NULL, buf, max, &info),
		      TABLE_OK);
	assert_memory_equal(buf, val, max);
}

static void test_small_buffer_and_null_buffer(void **state)
{
	struct table *t = tbl(state);
	struct table_item_info info;
	char val[100];
	char buf[128];
	uint64_t cas = 0;

	memset(val, 'v', sizeof(val));
	assert_status(store_mode(t, TABLE_SET, "k", val, sizeof(val), 9, 0, &cas),
		      TABLE_OK);

	memset(buf, 0x5a, sizeof(buf));
	memset(&info, 0, sizeof(info));
	assert_status(table_get(t, "k", 1, NULL, buf, 99, &info),
		      TABLE_TOO_SMALL);
	assert_int_equal(info.value_len, 100);
	for (size_t i = 0; i < sizeof(buf); i++)
		if (buf[i] != 0x5a)
			fail_msg("TOO_SMALL copied into byte %zu", i);

	assert_status(table_get(t, "k", 1, NULL, buf, 100, &info), TABLE_OK);
	assert_memory_equal(buf, val, 100);

	memset(&info, 0, sizeof(info));
	assert_status(table_get(t, "k", 1, NULL, NULL, 0, &info), TABLE_OK);
	assert_int_equal(info.value_len, 100);
	assert_int_equal(info.flags, 9);
	assert_true(info.cas == cas);
}

/* ---- storage commands and CAS ----------------------------------------- */

static void test_add_replace(void **state)
{
	struct table *t = tbl(state);

	assert_status(store_mode(t, TABLE_ADD, "a", "1", 1, 0, 0, NULL),
		      TABLE_OK);
	assert_status(store_mode(t, TABLE_ADD, "a", "2", 1, 0, 0, NULL),
		      TABLE_NOT_STORED);
	assert_value(t, "a", "1");

	assert_status(store_mode(t, TABLE_REPLACE, "r", "1", 1, 0, 0, NULL),
		      TABLE_NOT_STORED);
	assert_status(exists(t, "r"), TABLE_NOT_FOUND);
	assert_status(store_mode(t, TABLE_REPLACE, "a", "3", 1, 5, 0, NULL),
		      TABLE_OK);
	assert_value(t, "a", "3");

	/* add may take the place of an expired item (memcached does). */
	assert_status(set_str(t, "e", "old", 0, 10), TABLE_OK);
	set_clock(state, T0 + 10);
	assert_status(store_mode(t, TABLE_ADD, "e", "new", 3, 0, 0, NULL),
		      TABLE_OK);
	assert_value(t, "e", "new");
	/* ... and replace may not. */
	assert_status(set_str(t, "f", "old", 0, 5), TABLE_OK);
	set_clock(state, T0 + 15);
	assert_status(store_mode(t, TABLE_REPLACE, "f", "new", 3, 0, 0, NULL),
		      TABLE_NOT_STORED);
}

static void test_append_prepend(void **state)
{
	struct table *t = tbl(state);
	struct table_item_info info;
	char buf[64];
	uint64_t cas1 = 0;
	uint64_t cas2 = 0;

	assert_status(store_mode(t, TABLE_APPEND, "m", "x", 1, 0, 0, NULL),
		      TABLE_NOT_STORED);
	assert_status(store_mode(t, TABLE_PREPEND, "m", "x", 1, 0, 0, NULL),
		      TABLE_NOT_STORED);
	assert_status(exists(t, "m"), TABLE_NOT_FOUND);

	assert_status(store_mode(t, TABLE_SET, "m", "mid", 3, 77, 100, &cas1),
		      TABLE_OK);
	/* The new flags and TTL are ignored: the old item's stay. */
	assert_status(store_mode(t, TABLE_APPEND, "m", "-end", 4, 1, 0, &cas2),
		      TABLE_OK);
	assert_true(cas2 != cas1);
	assert_status(store_mode(t, TABLE_PREPEND, "m", "start-", 6, 2, 5000,
				 NULL),
		      TABLE_OK);
	assert_status(get_str(t, "m", buf, sizeof(buf), &info), TABLE_OK);
	assert_string_equal(buf, "start-mid-end");
	assert_int_equal(info.flags, 77);
	assert_int_equal(info.exptime, T0 + 100);

	set_clock(state, T0 + 99);
	assert_status(exists(t, "m"), TABLE_OK);
	set_clock(state, T0 + 100);
	assert_status(exists(t, "m"), TABLE_NOT_FOUND);

	/* Binary bytes concatenate exactly. */
	assert_status(store_mode(t, TABLE_SET, "b", "\0a", 2, 0, 0, NULL),
		      TABLE_OK);
	assert_status(store_mode(t, TABLE_APPEND, "b", "\0b", 2, 0, 0, NULL),
		      TABLE_OK);
	assert_status(table_get(t, "b", 1, NULL, buf, sizeof(buf), &info),
		      TABLE_OK);
	assert_int_equal(info.value_len, 4);
	assert_memory_equal(buf, "\0a\0b", 4);
}

static void test_append_past_max_item(void **state)
{
	/* Partitions roomy enough for the old and the new item at once. */
	struct table *t = tbl(state);
	struct table_item_info info;
	size_t max = TABLE_DEFAULT_MAX_ITEM;
	unsigned char *val = big_a;

	memset(val, 'a', max);
	assert_status(store_mode(t, TABLE_SET, "full", val, max - 1, 0, 0, NULL),
		      TABLE_OK);
	/* Up to the limit exactly is fine... */
	assert_status(store_mode(t, TABLE_APPEND, "full", "b", 1, 0, 0, NULL),
		      TABLE_OK);
	/* ...one byte more is refused (memcached answers SERVER_ERROR), and
	 * the item is left as it was. */
	enum table_status st = store_mode(t, TABLE_APPEND, "full", "c", 1, 0, 0,
					  NULL);
	if (st != TABLE_TOO_LARGE && st != TABLE_NO_MEMORY)
		fail_msg("append past the limit: %s", table_status_name(st));
	st = store_mode(t, TABLE_PREPEND, "full", "c", 1, 0, 0, NULL);
	if (st != TABLE_TOO_LARGE && st != TABLE_NO_MEMORY)
		fail_msg("prepend past the limit: %s", table_status_name(st));
	assert_status(table_get(t, "full", 4, NULL, NULL, 0, &info), TABLE_OK);
	assert_int_equal(info.value_len, max);
}

/*
 * A partition only has to hold one item of max_item_size, so appending to a
 * big item may find no room for the old and the new copy at once.  It may
 * then fail for lack of memory, but it must not claim the key was missing,
 * and must not lose the item it was appending to.
 */
static void test_append_large_item_tight_partition(void **state)
{
	struct table *t = tbl(state); /* 2 MiB partitions */
	struct table_item_info info;
	size_t len = TABLE_DEFAULT_MAX_ITEM - 1;
	unsigned char *val = big_a;

	memset(val, 'a', len);
	assert_status(store_mode(t, TABLE_SET, "big", val, len, 0, 0, NULL),
		      TABLE_OK);
	enum table_status st = store_mode(t, TABLE_APPEND, "big", "b", 1, 0, 0,
					  NULL);
	printf("append to a 1 MiB item in a 2 MiB partition: %s\n",
	       table_status_name(st));
	if (st != TABLE_OK && st != TABLE_NO_MEMORY)
		fail_msg("append to a present key: %s", table_status_name(st));
	assert_status(table_get(t, "big", 3, NULL, NULL, 0, &info), TABLE_OK);
	assert_int_equal(info.value_len, st == TABLE_OK ? len + 1 : len);
}

static void test_cas_command(void **state)
{
	struct table *t = tbl(state);
	struct table_store_req req;
	struct table_item_info info;
	uint64_t cas = 0;
	uint64_t cas2 = 0;
	char buf[32];

	memset(&req, 0, sizeof(req));
	req.mode = TABLE_CAS;
	req.key = "c";
	req.key_len = 1;
	req.value = "v2";
	req.value_len = 2;
	req.cas = 12345;
	assert_status(table_store(t, &req, NULL), TABLE_NOT_FOUND);
	assert_status(exists(t, "c"), TABLE_NOT_FOUND);

	assert_status(store_mode(t, TABLE_SET, "c", "v1", 2, 0, 0, &cas),
		      TABLE_OK);
	req.cas = cas + 1;
	assert_status(table_store(t, &req, NULL), TABLE_EXISTS);
	assert_value(t, "c", "v1");

	req.cas = cas;
	assert_status(table_store(t, &req, &cas2), TABLE_OK);
	assert_true(cas2 != cas);
	assert_status(get_str(t, "c", buf, sizeof(buf), &info), TABLE_OK);
	assert_string_equal(buf, "v2");
	assert_true(info.cas == cas2);

	/* The old CAS is spent. */
	req.value = "v3";
	assert_status(table_store(t, &req, NULL), TABLE_EXISTS);
	assert_value(t, "c", "v2");
}

static void test_cas_unique_and_increasing(void **state)
{
	struct table *t = tbl(state);
	enum {
		N = 3000
	};
	static uint64_t cas[N];
	struct table_item_info info;
	char key[32];

	/* Every kind of store takes a fresh CAS from one table-wide counter,
	 * whatever partition the key lands in. */
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "cas-%d", i % 1000);
		enum table_store_mode mode = i < 1000	? TABLE_SET
					     : i < 2000 ? TABLE_APPEND
							: TABLE_REPLACE;
		assert_status(store_mode(t, mode, key, "1", 1, 0, 0, &cas[i]),
			      TABLE_OK);
		if (i > 0 && cas[i] <= cas[i - 1])
			fail_msg("store %d got CAS %llu after %llu", i,
				 (unsigned long long)cas[i],
				 (unsigned long long)cas[i - 1]);
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "cas-%d", i);
		assert_status(table_get(t, key, strlen(key), NULL, NULL, 0, &info),
			      TABLE_OK);
		assert_true(info.cas == cas[2000 + i]);
	}
}

/* ---- delete, incr/decr ------------------------------------------------ */

static void test_delete(void **state)
{
	struct table *t = tbl(state);

	assert_status(table_delete(t, "d", 1, NULL), TABLE_NOT_FOUND);
	assert_status(set_str(t, "d", "x", 0, 0), TABLE_OK);
	assert_status(table_delete(t, "d", 1, NULL), TABLE_OK);
	assert_status(exists(t, "d"), TABLE_NOT_FOUND);
	assert_status(table_delete(t, "d", 1, NULL), TABLE_NOT_FOUND);
	/* add works again once the key is gone */
	assert_status(store_mode(t, TABLE_ADD, "d", "y", 1, 0, 0, NULL),
		      TABLE_OK);
	assert_value(t, "d", "y");

	/* md C: delete only if the CAS matches. */
	uint64_t cas = 0;
	assert_status(store_mode(t, TABLE_SET, "dc", "x", 1, 0, 0, &cas),
		      TABLE_OK);
	struct table_delete_opts o = { .compare_cas = true, .cas = cas + 1 };
	assert_status(table_delete(t, "dc", 2, &o), TABLE_EXISTS);
	assert_status(exists(t, "dc"), TABLE_OK);
	o.cas = cas;
	assert_status(table_delete(t, "dc", 2, &o), TABLE_OK);
	assert_status(exists(t, "dc"), TABLE_NOT_FOUND);
}

static void test_incr_decr(void **state)
{
	struct table *t = tbl(state);
	struct table_item_info info;
	uint64_t v = 0;
	char buf[64];

	assert_status(arith(t, "n", true, 1, &v), TABLE_NOT_FOUND);
	assert_status(arith(t, "n", false, 1, &v), TABLE_NOT_FOUND);
	assert_status(exists(t, "n"), TABLE_NOT_FOUND);

	assert_status(set_str(t, "n", "10", 33, 0), TABLE_OK);
	assert_status(arith(t, "n", true, 5, &v), TABLE_OK);
	assert_true(v == 15);
	assert_status(get_str(t, "n", buf, sizeof(buf), &info), TABLE_OK);
	assert_string_equal(buf, "15");
	assert_int_equal(info.flags, 33); /* incr keeps the flags */

	/* incr returns the item's new CAS. */
	struct table_arith_req req = {
		.key = "n", .key_len = 1, .incr = true, .delta = 1
	};
	struct table_item_info ainfo;
	memset(&ainfo, 0, sizeof(ainfo));
	assert_status(table_arith(t, &req, &v, &ainfo), TABLE_OK);
	assert_true(v == 16);
	assert_true(ainfo.cas != info.cas);
	assert_status(table_get(t, "n", 1, NULL, NULL, 0, &info), TABLE_OK);
	assert_true(info.cas == ainfo.cas);

	assert_status(set_str(t, "max", "18446744073709551615", 0, 0), TABLE_OK);
	assert_status(arith(t, "max", true, 1, &v), TABLE_OK);
	assert_true(v == 0);
	assert_status(arith(t, "max", true, 7, &v), TABLE_OK);
	assert_true(v == 7);

	assert_status(set_str(t, "small", "5", 0, 0), TABLE_OK);
	assert_status(arith(t, "small", false, 10, &v), TABLE_OK);
	assert_true(v == 0);
	assert_value(t, "small", "0");
	assert_status(arith(t, "small", false, 1, &v), TABLE_OK);
	assert_true(v == 0);

	/* memcached keeps the length and pads with spaces on the right. */
	assert_status(set_str(t, "ten", "10", 0, 0), TABLE_OK);
	assert_status(arith(t, "ten", false, 1, &v), TABLE_OK);
	assert_true(v == 9);
	assert_status(get_str(t, "ten", buf, sizeof(buf), &info), TABLE_OK);
	assert_int_equal(info.value_len, 2);
	assert_int_equal(buf[0], '9');
	/* ... and reads such a padded number back as a number. */
	assert_status(arith(t, "ten", true, 1, &v), TABLE_OK);
	assert_true(v == 10);
	assert_value(t, "ten", "10");

	assert_status(set_str(t, "grow", "99", 0, 0), TABLE_OK);
	assert_status(arith(t, "grow", true, 1, &v), TABLE_OK);
	assert_true(v == 100);
	assert_status(get_str(t, "grow", buf, sizeof(buf), &info), TABLE_OK);
	assert_int_equal(info.value_len, 3);
	assert_string_equal(buf, "100");

	assert_status(set_str(t, "word", "abc", 0, 0), TABLE_OK);
	assert_status(arith(t, "word", true, 1, &v), TABLE_NON_NUMERIC);
	assert_status(arith(t, "word", false, 1, &v), TABLE_NON_NUMERIC);
	assert_value(t, "word", "abc");
	assert_status(set_str(t, "mixed", "12abc", 0, 0), TABLE_OK);
	assert_status(arith(t, "mixed", true, 1, &v), TABLE_NON_NUMERIC);
	assert_status(set_str(t, "blank", "", 0, 0), TABLE_OK);
	assert_status(arith(t, "blank", true, 1, &v), TABLE_NON_NUMERIC);
}

/* ---- stats ------------------------------------------------------------ */

static void test_stats_counters(void **state)
{
	struct table *t = tbl(state);
	struct table_stats s = stats(t);

	assert_true(s.items == 0 && s.bytes == 0 && s.total_items == 0);
	assert_true(s.hits == 0 && s.misses == 0);
	assert_true(s.mem_limit > 0 && s.mem_limit <= 16 * MIB);

	assert_status(set_str(t, "k01", "vvvvv", 0, 0), TABLE_OK);
	assert_status(set_str(t, "k02", "vvvvv", 0, 0), TABLE_OK);
	assert_status(set_str(t, "k03", "vvvvv", 0, 0), TABLE_OK);
	s = stats(t);
	assert_int_equal(s.items, 3);
	assert_int_equal(s.bytes, 3 * (3 + 5));
	assert_int_equal(s.total_items, 3);
	assert_true(s.mem_used >= s.bytes);

	assert_status(exists(t, "k01"), TABLE_OK);
	assert_status(exists(t, "k02"), TABLE_OK);
	assert_status(exists(t, "k99"), TABLE_NOT_FOUND);
	s = stats(t);
	assert_int_equal(s.hits, 2);
	assert_int_equal(s.misses, 1);

	/* A refused store stores nothing; an overwrite changes bytes only. */
	assert_status(store_mode(t, TABLE_ADD, "k01", "x", 1, 0, 0, NULL),
		      TABLE_NOT_STORED);
	assert_status(set_str(t, "k01", "vv", 0, 0), TABLE_OK);
	s = stats(t);
	assert_int_equal(s.items, 3);
	assert_int_equal(s.bytes, 2 * 8 + 5);
	assert_int_equal(s.total_items, 4);

	assert_status(table_delete(t, "k02", 3, NULL), TABLE_OK);
	s = stats(t);
	assert_int_equal(s.items, 2);
	assert_int_equal(s.bytes, 8 + 5);
	assert_int_equal(s.evictions, 0);

	/* The partitions add up to the total. */
	struct table_stats sum;
	memset(&sum, 0, sizeof(sum));
	for (uint32_t p = 0; p < t->npartitions; p++) {
		struct table_stats ps;
		memset(&ps, 0, sizeof(ps));
		table_stats_partition(t, p, &ps);
		sum.items += ps.items;
		sum.bytes += ps.bytes;
		sum.hits += ps.hits;
		sum.mem_limit += ps.mem_limit;
	}
	assert_int_equal(sum.items, s.items);
	assert_int_equal(sum.bytes, s.bytes);
	assert_int_equal(sum.hits, s.hits);
	assert_int_equal(sum.mem_limit, s.mem_limit);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_set_get_round_trip),
		T(test_binary_and_empty_values),
		T(test_key_lengths),
		T(test_value_size_limit),
		T(test_small_buffer_and_null_buffer),
		T(test_add_replace),
		T(test_append_prepend),
		cmocka_unit_test_setup_teardown(test_append_past_max_item,
						setup_roomy, teardown),
		T(test_append_large_item_tight_partition),
		T(test_cas_command),
		T(test_cas_unique_and_increasing),
		T(test_delete),
		T(test_incr_decr),
		T(test_stats_counters),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
