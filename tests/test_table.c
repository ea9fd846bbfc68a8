/*
 * test_table.c - the partitioned hash table (client/table.c)
 *
 * The table is what every memcached command ends up in, so these tests pin
 * down the outcomes a memcached user relies on: exact statuses, values,
 * flags and CAS for each storage command; incr/decr arithmetic including
 * wrap-around and memcached's space padding; expiry and flush_all judged by
 * the segment clock, which the tests set so that time is deterministic; the
 * meta protocol's vivify/recache/invalidate options; bounded memory with an
 * LRU approximation that keeps hot keys; per-item overhead; and several
 * processes hammering one small table at once without ever reading a torn
 * value or another key's value.
 *
 * Each test gets a fresh cache (segment + proc slots + table), created the
 * way the server creates it, with this process's proc slot claimed.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <xxhash.h>

#include "cache.h"
#include "segment.h"
#include "table.h"

/* Well past the 30-day line, so relative and absolute TTLs are distinct. */
#define T0 1700000000u

#define MIB (1024u * 1024u)

/* Room for the largest value, static so that a failed assertion (which
 * leaves the test by longjmp) leaks nothing. */
static unsigned char big_a[TABLE_DEFAULT_MAX_ITEM + 1];
static unsigned char big_b[TABLE_DEFAULT_MAX_ITEM + 1];

/* ---- fixture and helpers ---------------------------------------------- */

static struct cache *cache_new(uint64_t memory, uint32_t partitions,
			       uint32_t max_item, uint32_t hint)
{
	struct cache *c = calloc(1, sizeof(*c));
	struct cache_config cfg;
	char err[512] = "";

	assert_non_null(c);
	memset(&cfg, 0, sizeof(cfg));
	cfg.table.memory = memory;
	cfg.table.partitions = partitions;
	cfg.table.max_item_size = max_item;
	cfg.table.item_size_hint = hint;
	cfg.seg.huge_pages = SEGMENT_HUGE_OFF;
	int rc = cache_create(c, &cfg, err, sizeof(err));
	if (rc != 0) {
		free(c);
		fail_msg("cache_create(%llu bytes, %u partitions): %d %s",
			 (unsigned long long)memory, partitions, rc, err);
	}
	assert_int_equal(cache_claim_proc(c), 0);
	segment_set_clock(&c->seg, T0);
	return c;
}

static void cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	cache_destroy(c);
	free(c);
}

static int setup(void **state)
{
	*state = cache_new(16 * MIB, 8, 0, 0);
	return 0;
}

/* Partitions roomy enough for two items of the largest size. */
static int setup_roomy(void **state)
{
	*state = cache_new(16 * MIB, 2, 0, 0);
	return 0;
}

/* Small enough to fill many times over in a moment. */
static int setup_small(void **state)
{
	*state = cache_new(4 * MIB, 4, 64 * 1024, 0);
	return 0;
}

static int setup_64m(void **state)
{
	*state = cache_new(64 * MIB, 16, 0, 0);
	return 0;
}

/* Few buckets per partition, so chains run through overflow buckets. */
static int setup_few_buckets(void **state)
{
	*state = cache_new(16 * MIB, 8, 64 * 1024, 64 * 1024);
	return 0;
}

static int teardown(void **state)
{
	cache_free(*state);
	return 0;
}

static struct table *tbl(void **state)
{
	return &((struct cache *)*state)->table;
}

static void set_clock(void **state, uint32_t now)
{
	segment_set_clock(&((struct cache *)*state)->seg, now);
}

static enum table_status store_mode(struct table *t, enum table_store_mode mode,
				    const char *key, const void *val,
				    size_t vlen, uint32_t flags, int64_t ttl,
				    uint64_t *cas_out)
{
	struct table_store_req req;

	memset(&req, 0, sizeof(req));
	req.mode = mode;
	req.key = key;
	req.key_len = strlen(key);
	req.value = val;
	req.value_len = vlen;
	req.flags = flags;
	req.exptime = ttl;
	return table_store(t, &req, cas_out);
}

static enum table_status set_str(struct table *t, const char *key,
				 const char *val, uint32_t flags, int64_t ttl)
{
	return store_mode(t, TABLE_SET, key, val, strlen(val), flags, ttl, NULL);
}

/* Reads key into buf as a C string (values here are text). */
static enum table_status get_str(struct table *t, const char *key, char *buf,
				 size_t cap, struct table_item_info *info)
{
	struct table_item_info local = { 0 };
	struct table_item_info *ip = info != NULL ? info : &local;
	enum table_status st;

	memset(ip, 0, sizeof(*ip));
	st = table_get(t, key, strlen(key), NULL, buf, cap - 1, ip);
	buf[st == TABLE_OK ? ip->value_len : 0] = '\0';
	return st;
}

static enum table_status get_opts(struct table *t, const char *key,
				  const struct table_get_opts *opts,
				  struct table_item_info *info)
{
	char buf[256];

	memset(info, 0, sizeof(*info));
	return table_get(t, key, strlen(key), opts, buf, sizeof(buf), info);
}

static enum table_status exists(struct table *t, const char *key)
{
	struct table_item_info info;

	return table_get(t, key, strlen(key), NULL, NULL, 0, &info);
}

static void assert_value(struct table *t, const char *key, const char *want)
{
	char buf[1024];
	enum table_status st = get_str(t, key, buf, sizeof(buf), NULL);

	if (st != TABLE_OK)
		fail_msg("get %s: %s, want OK", key, table_status_name(st));
	assert_string_equal(buf, want);
}

#define assert_status(expr, want)                                              \
	do {                                                                   \
		enum table_status st_ = (expr);                                \
		if (st_ != (want))                                             \
			fail_msg("%s: got %s, want %s", #expr,                 \
				 table_status_name(st_),                       \
				 table_status_name(want));                     \
	} while (0)

static enum table_status arith(struct table *t, const char *key, bool incr,
			       uint64_t delta, uint64_t *value)
{
	struct table_arith_req req;

	memset(&req, 0, sizeof(req));
	req.key = key;
	req.key_len = strlen(key);
	req.incr = incr;
	req.delta = delta;
	return table_arith(t, &req, value, NULL);
}

static struct table_stats stats(struct table *t)
{
	struct table_stats s;

	memset(&s, 0, sizeof(s));
	table_stats_total(t, &s);
	return s;
}

/* ---- get / set -------------------------------------------------------- */

static void test_set_get_round_trip(void **state)
{
	struct table *t = tbl(state);
	struct table_item_info info;
	uint64_t cas = 0;
	char buf[64];

	assert_status(store_mode(t, TABLE_SET, "greeting", "hello", 5, 0xdeadbeef,
				 0, &cas), TABLE_OK);
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
				 NULL), TABLE_OK);
	memset(buf, 0xaa, sizeof(buf));
	assert_status(table_get(t, "bin", 3, NULL, buf, sizeof(buf), &info),
		      TABLE_OK);
	assert_int_equal(info.value_len, sizeof(bin));
	assert_memory_equal(buf, bin, sizeof(bin));

	/* Keys are bytes too: a NUL inside one is part of the key. */
	assert_status(table_store(t, &(struct table_store_req){
		.mode = TABLE_SET, .key = "a\0b", .key_len = 3,
		.value = "x", .value_len = 1 }, NULL), TABLE_OK);
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
	assert_status(table_store(t, &(struct table_store_req){
		.mode = TABLE_SET, .key = key, .key_len = 1,
		.value = "one", .value_len = 3 }, NULL), TABLE_OK);
	assert_status(table_store(t, &(struct table_store_req){
		.mode = TABLE_SET, .key = key, .key_len = TABLE_KEY_MAX,
		.value = "max", .value_len = 3 }, NULL), TABLE_OK);
	assert_status(table_store(t, &(struct table_store_req){
		.mode = TABLE_SET, .key = key, .key_len = TABLE_KEY_MAX + 1,
		.value = "over", .value_len = 4 }, NULL), TABLE_BAD_KEY);
	assert_status(table_store(t, &(struct table_store_req){
		.mode = TABLE_SET, .key = key, .key_len = 0,
		.value = "none", .value_len = 4 }, NULL), TABLE_BAD_KEY);

	char buf[8];
	assert_status(table_get(t, key, 1, NULL, buf, sizeof(buf), &info),
		      TABLE_OK);
	assert_memory_equal(buf, "one", 3);
	assert_status(table_get(t, key, TABLE_KEY_MAX, NULL, buf, sizeof(buf),
				&info), TABLE_OK);
	assert_memory_equal(buf, "max", 3);
	assert_status(table_get(t, key, TABLE_KEY_MAX + 1, NULL, buf,
				sizeof(buf), &info), TABLE_BAD_KEY);
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

	assert_status(store_mode(t, TABLE_SET, "bigger", val, max + 1, 0, 0,
				 NULL), TABLE_TOO_LARGE);
	assert_status(exists(t, "bigger"), TABLE_NOT_FOUND);
	/* A refused overwrite leaves the old value in place. */
	assert_status(store_mode(t, TABLE_SET, "big", val, max + 1, 0, 0, NULL),
		      TABLE_TOO_LARGE);
	assert_status(table_get(t, "big", 3, NULL, NULL, 0, &info), TABLE_OK);
	assert_int_equal(info.value_len, max);

	/* The largest key with the largest value still fits a partition. */
	memset(key, 'K', sizeof(key));
	assert_status(table_store(t, &(struct table_store_req){
		.mode = TABLE_SET, .key = key, .key_len = sizeof(key),
		.value = val, .value_len = max }, NULL), TABLE_OK);
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
	assert_status(store_mode(t, TABLE_SET, "k", val, sizeof(val), 9, 0,
				 &cas), TABLE_OK);

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
				 NULL), TABLE_OK);
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
	assert_status(store_mode(t, TABLE_SET, "full", val, max - 1, 0, 0,
				 NULL), TABLE_OK);
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
	enum { N = 3000 };
	static uint64_t cas[N];
	struct table_item_info info;
	char key[32];

	/* Every kind of store takes a fresh CAS from one table-wide counter,
	 * whatever partition the key lands in. */
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "cas-%d", i % 1000);
		enum table_store_mode mode = i < 1000 ? TABLE_SET :
					     i < 2000 ? TABLE_APPEND :
							TABLE_REPLACE;
		assert_status(store_mode(t, mode, key, "1", 1, 0, 0, &cas[i]),
			      TABLE_OK);
		if (i > 0 && cas[i] <= cas[i - 1])
			fail_msg("store %d got CAS %llu after %llu", i,
				 (unsigned long long)cas[i],
				 (unsigned long long)cas[i - 1]);
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "cas-%d", i);
		assert_status(table_get(t, key, strlen(key), NULL, NULL, 0,
					&info), TABLE_OK);
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
	struct table_arith_req req = { .key = "n", .key_len = 1, .incr = true,
				       .delta = 1 };
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

/* ---- expiry ----------------------------------------------------------- */

static void test_expiry_relative_and_never(void **state)
{
	struct table *t = tbl(state);
	struct table_item_info info;
	char buf[16];

	assert_status(set_str(t, "ttl10", "x", 0, 10), TABLE_OK);
	assert_status(set_str(t, "forever", "y", 0, 0), TABLE_OK);
	assert_status(get_str(t, "ttl10", buf, sizeof(buf), &info), TABLE_OK);
	assert_int_equal(info.exptime, T0 + 10);

	set_clock(state, T0 + 9);
	assert_status(exists(t, "ttl10"), TABLE_OK);
	set_clock(state, T0 + 10);
	assert_status(exists(t, "ttl10"), TABLE_NOT_FOUND);
	/* An expired item behaves as missing for every command. */
	assert_status(store_mode(t, TABLE_APPEND, "ttl10", "z", 1, 0, 0, NULL),
		      TABLE_NOT_STORED);
	assert_status(table_delete(t, "ttl10", 5, NULL), TABLE_NOT_FOUND);

	set_clock(state, T0 + 100000000u);
	assert_status(exists(t, "forever"), TABLE_OK);
}

static void test_expiry_negative_and_absolute(void **state)
{
	struct table *t = tbl(state);
	struct table_item_info info;
	char buf[16];

	assert_status(set_str(t, "neg", "x", 0, -1), TABLE_OK);
	assert_status(exists(t, "neg"), TABLE_NOT_FOUND);
	/* A negative TTL on an existing key removes what was there. */
	assert_status(set_str(t, "was", "x", 0, 0), TABLE_OK);
	assert_status(set_str(t, "was", "y", 0, -1), TABLE_OK);
	assert_status(exists(t, "was"), TABLE_NOT_FOUND);

	assert_status(set_str(t, "abs", "x", 0, (int64_t)T0 + 100), TABLE_OK);
	assert_status(get_str(t, "abs", buf, sizeof(buf), &info), TABLE_OK);
	assert_int_equal(info.exptime, T0 + 100);
	set_clock(state, T0 + 99);
	assert_status(exists(t, "abs"), TABLE_OK);
	set_clock(state, T0 + 100);
	assert_status(exists(t, "abs"), TABLE_NOT_FOUND);

	/* Exactly 30 days is still relative; one more second is absolute
	 * (1970 here), so already expired. */
	set_clock(state, T0);
	assert_status(set_str(t, "30d", "x", 0, TABLE_RELATIVE_EXPTIME_MAX),
		      TABLE_OK);
	assert_status(exists(t, "30d"), TABLE_OK);
	assert_status(set_str(t, "30d+1", "x", 0,
			      TABLE_RELATIVE_EXPTIME_MAX + 1), TABLE_OK);
	assert_status(exists(t, "30d+1"), TABLE_NOT_FOUND);
}

static void test_exptime_conversion(void **state)
{
	struct table *t = tbl(state);
	uint32_t e;

	assert_int_equal(table_exptime(t, 0), 0);
	assert_int_equal(table_exptime(t, 1), T0 + 1);
	assert_int_equal(table_exptime(t, 10), T0 + 10);
	assert_int_equal(table_exptime(t, TABLE_RELATIVE_EXPTIME_MAX),
			 T0 + TABLE_RELATIVE_EXPTIME_MAX);
	assert_int_equal(table_exptime(t, (int64_t)T0 + 100), T0 + 100);

	/* Already expired: in the past, but not 0, which means "never". */
	e = table_exptime(t, -1);
	assert_true(e != 0 && e <= T0);
	e = table_exptime(t, -1000000);
	assert_true(e != 0 && e <= T0);
	e = table_exptime(t, TABLE_RELATIVE_EXPTIME_MAX + 1);
	assert_true(e != 0 && e <= T0);

	/* Judged by the segment clock, not the wall clock. */
	set_clock(state, T0 + 500);
	assert_int_equal(table_exptime(t, 10), T0 + 510);
}

static void test_touch(void **state)
{
	struct table *t = tbl(state);
	struct table_get_opts o;
	struct table_item_info info;

	memset(&o, 0, sizeof(o));
	o.touch = true;

	o.exptime = 100;
	assert_status(get_opts(t, "none", &o, &info), TABLE_NOT_FOUND);

	/* Extend: ttl 10 at T0, touched at T0+5 to 100. */
	assert_status(set_str(t, "ext", "v", 3, 10), TABLE_OK);
	set_clock(state, T0 + 5);
	assert_status(get_opts(t, "ext", &o, &info), TABLE_OK);
	assert_int_equal(info.exptime, T0 + 105);
	assert_int_equal(info.flags, 3);
	set_clock(state, T0 + 104);
	assert_status(exists(t, "ext"), TABLE_OK);
	set_clock(state, T0 + 105);
	assert_status(exists(t, "ext"), TABLE_NOT_FOUND);

	/* Shorten: ttl 1000, touched to 5. */
	set_clock(state, T0);
	assert_status(set_str(t, "short", "v", 0, 1000), TABLE_OK);
	o.exptime = 5;
	assert_status(get_opts(t, "short", &o, &info), TABLE_OK);
	set_clock(state, T0 + 4);
	assert_status(exists(t, "short"), TABLE_OK);
	set_clock(state, T0 + 5);
	assert_status(exists(t, "short"), TABLE_NOT_FOUND);

	/* Touch to 0: never expires. */
	set_clock(state, T0);
	assert_status(set_str(t, "keep", "v", 0, 10), TABLE_OK);
	o.exptime = 0;
	assert_status(get_opts(t, "keep", &o, &info), TABLE_OK);
	set_clock(state, T0 + 1000000);
	assert_status(exists(t, "keep"), TABLE_OK);

	/* Touching an expired item does not revive it. */
	set_clock(state, T0);
	assert_status(set_str(t, "dead", "v", 0, 10), TABLE_OK);
	set_clock(state, T0 + 10);
	o.exptime = 100;
	assert_status(get_opts(t, "dead", &o, &info), TABLE_NOT_FOUND);
}

static void test_fetched_and_last_access(void **state)
{
	struct table *t = tbl(state);
	struct table_get_opts peek;
	struct table_item_info info;

	memset(&peek, 0, sizeof(peek));
	peek.no_bump = true;

	assert_status(set_str(t, "h", "v", 0, 0), TABLE_OK);
	set_clock(state, T0 + 7);
	/* mg u: look without counting as a fetch or an access. */
	assert_status(get_opts(t, "h", &peek, &info), TABLE_OK);
	assert_false(info.fetched);
	assert_int_equal(info.last_access, 7);
	/* mg h: the first real fetch reports "not fetched before"... */
	assert_status(get_opts(t, "h", NULL, &info), TABLE_OK);
	assert_false(info.fetched);
	assert_int_equal(info.last_access, 7);
	/* ...and every later one "fetched", with the access time renewed. */
	set_clock(state, T0 + 10);
	assert_status(get_opts(t, "h", &peek, &info), TABLE_OK);
	assert_true(info.fetched);
	assert_int_equal(info.last_access, 3);
	/* A new value starts unfetched. */
	assert_status(set_str(t, "h", "w", 0, 0), TABLE_OK);
	assert_status(get_opts(t, "h", NULL, &info), TABLE_OK);
	assert_false(info.fetched);
	assert_int_equal(info.last_access, 0);
}

/* ---- flush_all -------------------------------------------------------- */

static void test_flush_now(void **state)
{
	struct table *t = tbl(state);
	char key[32];

	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "f%d", i);
		assert_status(set_str(t, key, "v", 0, 0), TABLE_OK);
	}
	table_flush(t, 0);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "f%d", i);
		assert_status(exists(t, key), TABLE_NOT_FOUND);
	}
	/* Stored after the flush within the same second: visible. */
	assert_status(set_str(t, "after", "v", 0, 0), TABLE_OK);
	assert_status(exists(t, "after"), TABLE_OK);
	/* A flushed key can be added again. */
	assert_status(store_mode(t, TABLE_ADD, "f1", "w", 1, 0, 0, NULL),
		      TABLE_OK);
	assert_value(t, "f1", "w");
	assert_status(exists(t, "f2"), TABLE_NOT_FOUND);

	/* Later seconds do not bring flushed items back or flush new ones. */
	table_tick(t, T0 + 1);
	assert_status(exists(t, "f2"), TABLE_NOT_FOUND);
	assert_status(exists(t, "after"), TABLE_OK);
	assert_value(t, "f1", "w");
}

static void test_flush_delayed(void **state)
{
	struct table *t = tbl(state);

	assert_status(set_str(t, "a", "v", 0, 0), TABLE_OK);
	assert_status(set_str(t, "b", "v", 0, 0), TABLE_OK);
	table_flush(t, 5);
	assert_status(exists(t, "a"), TABLE_OK);

	/* Stored between the command and its time: flushed as well. */
	table_tick(t, T0 + 2);
	assert_status(set_str(t, "c", "v", 0, 0), TABLE_OK);

	table_tick(t, T0 + 4);
	assert_status(exists(t, "a"), TABLE_OK);
	assert_status(exists(t, "b"), TABLE_OK);
	assert_status(exists(t, "c"), TABLE_OK);

	table_tick(t, T0 + 5);
	assert_status(exists(t, "a"), TABLE_NOT_FOUND);
	assert_status(exists(t, "b"), TABLE_NOT_FOUND);
	assert_status(exists(t, "c"), TABLE_NOT_FOUND);

	assert_status(set_str(t, "d", "v", 0, 0), TABLE_OK);
	assert_status(exists(t, "d"), TABLE_OK);
	/* The flush happened once; it does not keep eating new items. */
	table_tick(t, T0 + 6);
	assert_status(exists(t, "d"), TABLE_OK);
	table_tick(t, T0 + 100);
	assert_status(exists(t, "d"), TABLE_OK);
}

static void test_flush_explicit_cas(void **state)
{
	struct table *t = tbl(state);
	uint64_t out = 0;

	/* ms E lets a client pick any CAS, e.g. one from another server's
	 * clock or version counter: far above this table's own counter. */
	struct table_store_req req = {
		.mode = TABLE_SET, .key = "e-high", .key_len = 6,
		.value = "x", .value_len = 1,
		.new_cas = UINT64_C(1) << 60,
	};
	assert_status(table_store(t, &req, &out), TABLE_OK);
	assert_true(out == UINT64_C(1) << 60);
	assert_status(set_str(t, "plain", "x", 0, 0), TABLE_OK);

	/* flush_all invalidates every item stored before it, whatever its
	 * CAS; memcached judges by the time the item was stored. */
	table_flush(t, 0);
	assert_status(exists(t, "plain"), TABLE_NOT_FOUND);
	assert_status(exists(t, "e-high"), TABLE_NOT_FOUND);
}

/* ---- meta options ----------------------------------------------------- */

static void test_meta_vivify(void **state)
{
	struct table *t = tbl(state);
	struct table_get_opts o;
	struct table_item_info info;

	memset(&o, 0, sizeof(o));
	o.vivify = true;
	o.vivify_exptime = 30;

	/* mg N on a miss: an empty stub, and this caller wins ("VA 0 W"). */
	assert_status(get_opts(t, "viv", &o, &info), TABLE_OK);
	assert_true(info.won);
	assert_true(info.vivified);
	assert_false(info.token_sent);
	assert_int_equal(info.value_len, 0);

	/* Everyone after sees Z and does not win. */
	assert_status(get_opts(t, "viv", &o, &info), TABLE_OK);
	assert_false(info.won);
	assert_true(info.token_sent);
	assert_false(info.vivified);
	assert_status(get_opts(t, "viv", NULL, &info), TABLE_OK);
	assert_false(info.won);
	assert_true(info.token_sent);

	/* The stub has the TTL given with N. */
	set_clock(state, T0 + 29);
	assert_status(exists(t, "viv"), TABLE_OK);
	set_clock(state, T0 + 30);
	assert_status(exists(t, "viv"), TABLE_NOT_FOUND);

	/* The winner's set replaces the stub: no token any more. */
	set_clock(state, T0);
	assert_status(get_opts(t, "viv2", &o, &info), TABLE_OK);
	assert_true(info.won);
	assert_status(set_str(t, "viv2", "real", 0, 0), TABLE_OK);
	assert_status(get_opts(t, "viv2", &o, &info), TABLE_OK);
	assert_int_equal(info.value_len, 4);
	assert_false(info.won);
	assert_false(info.token_sent);
	assert_false(info.vivified);
}

static void test_meta_recache(void **state)
{
	struct table *t = tbl(state);
	struct table_get_opts o;
	struct table_item_info info;

	memset(&o, 0, sizeof(o));
	o.recache = true;
	o.recache_below = 30;

	assert_status(set_str(t, "rc", "v", 0, 100), TABLE_OK);
	set_clock(state, T0 + 10); /* 90 s left: no win */
	assert_status(get_opts(t, "rc", &o, &info), TABLE_OK);
	assert_false(info.won);
	assert_false(info.token_sent);

	set_clock(state, T0 + 80); /* 20 s left: one winner */
	assert_status(get_opts(t, "rc", &o, &info), TABLE_OK);
	assert_true(info.won);
	assert_status(get_opts(t, "rc", &o, &info), TABLE_OK);
	assert_false(info.won);
	assert_true(info.token_sent);

	/* An item that never expires never needs recaching. */
	assert_status(set_str(t, "rc0", "v", 0, 0), TABLE_OK);
	assert_status(get_opts(t, "rc0", &o, &info), TABLE_OK);
	assert_false(info.won);
}

static void test_meta_invalidate(void **state)
{
	struct table *t = tbl(state);
	struct table_delete_opts d;
	struct table_item_info info;
	char buf[32];
	uint64_t cas1 = 0;

	assert_status(store_mode(t, TABLE_SET, "inv", "old", 3, 0, 0, &cas1),
		      TABLE_OK);
	memset(&d, 0, sizeof(d));
	d.invalidate = true;
	assert_status(table_delete(t, "inv", 3, &d), TABLE_OK);

	/* md I: still there, stale, with a new CAS; first fetcher wins. */
	memset(&info, 0, sizeof(info));
	assert_status(table_get(t, "inv", 3, NULL, buf, sizeof(buf), &info),
		      TABLE_OK);
	assert_int_equal(info.value_len, 3);
	assert_memory_equal(buf, "old", 3);
	assert_true(info.stale);
	assert_true(info.won);
	assert_true(info.cas != cas1);
	assert_status(get_opts(t, "inv", NULL, &info), TABLE_OK);
	assert_true(info.stale);
	assert_false(info.won);
	assert_true(info.token_sent);

	/* ms I with a CAS older than the item's: stored, but still stale. */
	struct table_store_req req = {
		.mode = TABLE_SET, .key = "inv", .key_len = 3,
		.value = "late", .value_len = 4,
		.compare_cas = true, .cas = cas1, .invalidate = true,
	};
	assert_status(table_store(t, &req, NULL), TABLE_OK);
	assert_status(get_str(t, "inv", buf, sizeof(buf), &info), TABLE_OK);
	assert_string_equal(buf, "late");
	assert_true(info.stale);

	/* Without I an old CAS is just a mismatch. */
	req.invalidate = false;
	req.value = "nope";
	assert_status(table_store(t, &req, NULL), TABLE_EXISTS);

	/* A plain set makes it fresh again. */
	assert_status(set_str(t, "inv", "new", 0, 0), TABLE_OK);
	assert_status(get_str(t, "inv", buf, sizeof(buf), &info), TABLE_OK);
	assert_string_equal(buf, "new");
	assert_false(info.stale);
	assert_false(info.won);
	assert_false(info.token_sent);

	assert_status(table_delete(t, "missing", 7, &d), TABLE_NOT_FOUND);

	/* md I T: the stale item gets the TTL given. */
	assert_status(set_str(t, "inv-ttl", "v", 0, 0), TABLE_OK);
	d.touch = true;
	d.exptime = 30;
	assert_status(table_delete(t, "inv-ttl", 7, &d), TABLE_OK);
	assert_status(get_opts(t, "inv-ttl", NULL, &info), TABLE_OK);
	assert_true(info.stale);
	assert_int_equal(info.exptime, T0 + 30);
	set_clock(state, T0 + 30);
	assert_status(exists(t, "inv-ttl"), TABLE_NOT_FOUND);
}

static void test_meta_append_vivify(void **state)
{
	struct table *t = tbl(state);
	struct table_item_info info;
	char buf[32];
	struct table_store_req req = {
		.mode = TABLE_APPEND, .key = "av", .key_len = 2,
		.value = "abc", .value_len = 3, .flags = 9, .exptime = 1000,
		.vivify = true, .vivify_exptime = 20,
	};

	/* ms MA N: on a miss the append creates the item, with N's TTL. */
	assert_status(table_store(t, &req, NULL), TABLE_OK);
	assert_status(get_str(t, "av", buf, sizeof(buf), &info), TABLE_OK);
	assert_string_equal(buf, "abc");
	assert_int_equal(info.exptime, T0 + 20);
	/* On a hit it is an ordinary append. */
	req.value = "def";
	assert_status(table_store(t, &req, NULL), TABLE_OK);
	assert_value(t, "av", "abcdef");
	assert_status(get_opts(t, "av", NULL, &info), TABLE_OK);
	assert_int_equal(info.exptime, T0 + 20);
	set_clock(state, T0 + 20);
	assert_status(exists(t, "av"), TABLE_NOT_FOUND);
}

static void test_meta_store_cas(void **state)
{
	struct table *t = tbl(state);
	struct table_item_info info;
	uint64_t cas = 0;
	uint64_t out = 0;
	struct table_store_req req = {
		.mode = TABLE_SET, .key = "ms", .key_len = 2,
		.value = "v2", .value_len = 2, .compare_cas = true,
	};

	req.cas = 1;
	assert_status(table_store(t, &req, NULL), TABLE_NOT_FOUND);

	assert_status(store_mode(t, TABLE_SET, "ms", "v1", 2, 0, 0, &cas),
		      TABLE_OK);
	req.cas = cas + 1000;
	assert_status(table_store(t, &req, NULL), TABLE_EXISTS);
	assert_value(t, "ms", "v1");
	req.cas = cas;
	assert_status(table_store(t, &req, &out), TABLE_OK);
	assert_value(t, "ms", "v2");
	assert_true(out != cas);

	/* ms E: the caller picks the new CAS. */
	const uint64_t mine = UINT64_C(9000000000000000001);
	struct table_store_req e = {
		.mode = TABLE_SET, .key = "me", .key_len = 2,
		.value = "x", .value_len = 1, .new_cas = mine,
	};
	assert_status(table_store(t, &e, &out), TABLE_OK);
	assert_true(out == mine);
	assert_status(get_opts(t, "me", NULL, &info), TABLE_OK);
	assert_true(info.cas == mine);
	/* and a compare against it works */
	e.compare_cas = true;
	e.cas = mine;
	e.new_cas = 0;
	assert_status(table_store(t, &e, &out), TABLE_OK);
	assert_true(out != mine);
}

static void test_meta_arith_vivify(void **state)
{
	struct table *t = tbl(state);
	struct table_arith_req req;
	struct table_item_info info;
	uint64_t v = 0;
	char buf[32];

	memset(&req, 0, sizeof(req));
	req.key = "ctr";
	req.key_len = 3;
	req.incr = true;
	req.delta = 5;
	req.vivify = true;
	req.initial = 100;
	req.vivify_exptime = 60;

	/* ma N J: a miss creates the number with the initial value as is. */
	assert_status(table_arith(t, &req, &v, NULL), TABLE_OK);
	assert_true(v == 100);
	assert_status(get_str(t, "ctr", buf, sizeof(buf), &info), TABLE_OK);
	assert_string_equal(buf, "100");
	assert_int_equal(info.exptime, T0 + 60);

	assert_status(table_arith(t, &req, &v, NULL), TABLE_OK);
	assert_true(v == 105);
	req.vivify = false;
	req.incr = false;
	req.delta = 106;
	assert_status(table_arith(t, &req, &v, NULL), TABLE_OK);
	assert_true(v == 0);

	/* ma C: compare the CAS first. */
	assert_status(table_get(t, "ctr", 3, NULL, NULL, 0, &info), TABLE_OK);
	req.incr = true;
	req.delta = 1;
	req.compare_cas = true;
	req.cas = info.cas + 1;
	assert_status(table_arith(t, &req, &v, NULL), TABLE_EXISTS);
	req.cas = info.cas;
	assert_status(table_arith(t, &req, &v, NULL), TABLE_OK);
	assert_true(v == 1);

	/* ma T: a new TTL with the update, in place or not. */
	req.compare_cas = false;
	req.touch = true;
	req.exptime = 10;
	assert_status(table_arith(t, &req, &v, &info), TABLE_OK);
	assert_true(v == 2);
	assert_int_equal(info.exptime, T0 + 10);
	set_clock(state, T0 + 10);
	assert_status(exists(t, "ctr"), TABLE_NOT_FOUND);
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

/* ---- memory pressure -------------------------------------------------- */

static void fill_value(char *v, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		v[i] = (char)('a' + (seed + i * 7) % 26);
}

static void test_eviction_keeps_hot_keys(void **state)
{
	struct cache *c = *state;
	struct table *t = &c->table;
	enum { HOT = 50, VLEN = 1000, COLD = 20 * 4 * 1024 }; /* ~20x memory */
	char key[32];
	char val[VLEN];
	char buf[VLEN + 1];
	struct table_item_info info;
	unsigned hot_next = 0;

	for (int h = 0; h < HOT; h++) {
		snprintf(key, sizeof(key), "hot-%d", h);
		fill_value(val, VLEN, (unsigned)h);
		assert_status(store_mode(t, TABLE_SET, key, val, VLEN, 0, 0,
					 NULL), TABLE_OK);
	}
	for (int i = 0; i < COLD; i++) {
		snprintf(key, sizeof(key), "cold-%d", i);
		fill_value(val, VLEN, (unsigned)i + 1000);
		assert_status(store_mode(t, TABLE_SET, key, val, VLEN, 0, 0,
					 NULL), TABLE_OK);
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
	       (unsigned long long)s.evictions,
	       (unsigned long long)s.reinserted);
	assert_true(s.mem_used <= s.mem_limit);
	assert_true(s.mem_limit <= 4 * MIB);
	assert_true(s.bytes <= 4 * MIB);
	assert_true(s.evictions > 0);
	assert_true(s.items * VLEN <= 4 * MIB);

	int hot_lost = 0;
	for (int h = 0; h < HOT; h++) {
		snprintf(key, sizeof(key), "hot-%d", h);
		enum table_status st = table_get(t, key, strlen(key), NULL, buf,
						 sizeof(buf), &info);
		if (st != TABLE_OK) {
			hot_lost++;
			continue;
		}
		fill_value(val, VLEN, (unsigned)h);
		assert_int_equal(info.value_len, VLEN);
		assert_memory_equal(buf, val, VLEN);
	}
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
			 "evicted", hot_lost, HOT);
	assert_true(cold_kept < COLD / 10);
	/* The most recent writes are what is left of the cold keys. */
	snprintf(key, sizeof(key), "cold-%d", COLD - 1);
	assert_status(exists(t, key), TABLE_OK);
}

static void test_expired_items_reclaimed(void **state)
{
	struct cache *c = *state;
	struct table *t = &c->table;
	enum { VLEN = 1000, FILL = 8000, REFILL = 2000 };
	char key[32];
	char val[VLEN];

	fill_value(val, VLEN, 1);
	for (int i = 0; i < FILL; i++) {
		snprintf(key, sizeof(key), "short-%d", i);
		assert_status(store_mode(t, TABLE_SET, key, val, VLEN, 0, 10,
					 NULL), TABLE_OK);
	}
	struct table_stats s1 = stats(t);

	segment_set_clock(&c->seg, T0 + 20);
	for (int i = 0; i < REFILL; i++) {
		snprintf(key, sizeof(key), "long-%d", i);
		assert_status(store_mode(t, TABLE_SET, key, val, VLEN, 0, 0,
					 NULL), TABLE_OK);
	}
	struct table_stats s2 = stats(t);
	printf("expiry: expirations %llu -> %llu, evictions %llu -> %llu, "
	       "items %llu\n",
	       (unsigned long long)s1.expirations,
	       (unsigned long long)s2.expirations,
	       (unsigned long long)s1.evictions,
	       (unsigned long long)s2.evictions,
	       (unsigned long long)s2.items);
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
	enum { KLEN = 32, VLEN = 100, LIMIT = 4000000 };
	char key[KLEN + 1];
	char val[VLEN];
	uint64_t items_at_first_eviction = 0;
	uint64_t stores_at_first_eviction = 0;
	uint64_t min_items_after = UINT64_MAX;
	struct table_stats s;

	fill_value(val, VLEN, 3);
	for (uint64_t i = 0; i < LIMIT; i++) {
		snprintf(key, sizeof(key), "key:%028llu", (unsigned long long)i);
		assert_status(table_store(t, &(struct table_store_req){
			.mode = TABLE_SET, .key = key, .key_len = KLEN,
			.value = val, .value_len = VLEN }, NULL), TABLE_OK);
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
	double steady = (double)memory / (double)min_items_after -
			(KLEN + VLEN);
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

/* ---- several processes ------------------------------------------------ */

/*
 * A value is a run of records, each self-checking and naming its key:
 *   LLLL KKK VVVVVVVV payload... CCCCCCCC
 * L = record length (hex), K = key index, V = writer's version, C = XXH32 of
 * everything before it in the record.  set writes one record; append and
 * prepend add one, so any concatenation the table makes stays checkable,
 * and a torn or misplaced value cannot pass.
 */
#define MP_KEYS 500
#define MP_PROCS 4
#define MP_OPS 20000
#define MP_MAX_ITEM 4096
#define REC_MIN 23

/* Small, so that the children evict each other's items as they go. */
static int setup_mp(void **state)
{
	*state = cache_new(256 * 1024, 4, MP_MAX_ITEM, 0);
	return 0;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static size_t make_record(unsigned char *out, size_t len, unsigned key,
			  uint32_t version)
{
	char head[16];
	uint64_t s = ((uint64_t)version << 20) ^ key ^ 0x9e3779b97f4a7c15ull;

	snprintf(head, sizeof(head), "%04zx%03x%08x", len, key, version);
	memcpy(out, head, 15);
	for (size_t i = 15; i < len - 8; i++)
		out[i] = (unsigned char)xorshift(&s);
	snprintf(head, sizeof(head), "%08x", XXH32(out, len - 8, 0));
	memcpy(out + len - 8, head, 8);
	return len;
}

static unsigned hexval(const unsigned char *p, size_t n, bool *ok)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned d;
		if (p[i] >= '0' && p[i] <= '9')
			d = p[i] - '0';
		else if (p[i] >= 'a' && p[i] <= 'f')
			d = p[i] - 'a' + 10;
		else {
			*ok = false;
			return 0;
		}
		v = v * 16 + d;
	}
	return v;
}

/* NULL if value is a well-formed run of records of key, else why not. */
static const char *check_value(const unsigned char *v, size_t len,
			       unsigned key, uint32_t flags)
{
	size_t pos = 0;
	bool ok = true;

	if (flags != key)
		return "flags belong to another key";
	if (len == 0)
		return "empty value";
	while (pos < len) {
		if (len - pos < REC_MIN)
			return "truncated record";
		size_t rlen = hexval(v + pos, 4, &ok);
		unsigned rkey = hexval(v + pos + 4, 3, &ok);
		if (!ok || rlen < REC_MIN || rlen > len - pos)
			return "bad record length";
		if (rkey != key)
			return "record of another key";
		uint32_t sum = hexval(v + pos + rlen - 8, 8, &ok);
		if (!ok || sum != XXH32(v + pos, rlen - 8, 0))
			return "checksum mismatch (torn value)";
		pos += rlen;
	}
	return NULL;
}

static int mp_child(struct cache *c, int id, int gate)
{
	unsigned char val[MP_MAX_ITEM];
	unsigned char buf[MP_MAX_ITEM];
	struct table *t = &c->table;
	uint64_t rng = 0x1234567ull * (uint64_t)(id + 1) + 99;
	char key[16];

	alarm(20); /* a deadlock kills us instead of hanging the suite */
	if (cache_claim_proc(c) != 0) {
		fprintf(stderr, "child %d: no proc slot\n", id);
		return 3;
	}
	/* Start together (EOF when the parent closes the gate), so the
	 * children really overlap instead of running one after another. */
	char g;
	if (read(gate, &g, 1) != 0)
		return 4;
	close(gate);
	for (uint32_t op = 0; op < MP_OPS; op++) {
		unsigned k = (unsigned)(xorshift(&rng) % MP_KEYS);
		unsigned what = (unsigned)(xorshift(&rng) % 100);
		uint32_t version = ((uint32_t)id << 24) | op;
		struct table_item_info info;
		enum table_status st;
		size_t len;

		snprintf(key, sizeof(key), "mp:%u", k);
		if (what < 40) {
			memset(&info, 0, sizeof(info));
			st = table_get(t, key, strlen(key), NULL, buf,
				       sizeof(buf), &info);
			if (st == TABLE_NOT_FOUND)
				continue;
			if (st != TABLE_OK) {
				fprintf(stderr, "child %d: get %s: %s\n", id,
					key, table_status_name(st));
				return 2;
			}
			const char *why = check_value(buf, info.value_len, k,
						      info.flags);
			if (why != NULL) {
				fprintf(stderr, "child %d: get %s (%u bytes): "
					"%s\n", id, key, info.value_len, why);
				return 1;
			}
		} else if (what < 70) {
			len = REC_MIN + xorshift(&rng) % (2000 - REC_MIN + 1);
			make_record(val, len, k, version);
			st = table_store(t, &(struct table_store_req){
				.mode = TABLE_SET, .key = key,
				.key_len = strlen(key), .value = val,
				.value_len = len, .flags = k }, NULL);
			if (st != TABLE_OK) {
				fprintf(stderr, "child %d: set %s: %s\n", id,
					key, table_status_name(st));
				return 2;
			}
		} else if (what < 90) {
			len = REC_MIN + xorshift(&rng) % 64;
			make_record(val, len, k, version);
			st = table_store(t, &(struct table_store_req){
				.mode = what < 80 ? TABLE_APPEND : TABLE_PREPEND,
				.key = key, .key_len = strlen(key),
				.value = val, .value_len = len }, NULL);
			/* Past max_item_size an append is refused. */
			if (st != TABLE_OK && st != TABLE_NOT_STORED &&
			    st != TABLE_TOO_LARGE && st != TABLE_NO_MEMORY) {
				fprintf(stderr, "child %d: append %s: %s\n", id,
					key, table_status_name(st));
				return 2;
			}
		} else {
			st = table_delete(t, key, strlen(key), NULL);
			if (st != TABLE_OK && st != TABLE_NOT_FOUND) {
				fprintf(stderr, "child %d: delete %s: %s\n", id,
					key, table_status_name(st));
				return 2;
			}
		}
	}
	cache_release_proc(c);
	return 0;
}

/* Wait for every child until deadline, then kill the rest; 0 if all ok. */
static int reap_children(const pid_t *pids, int n, int seconds)
{
	int failed = 0;
	int left = n;
	int status[MP_PROCS];
	bool done[MP_PROCS] = { false };
	time_t deadline = time(NULL) + seconds;

	while (left > 0) {
		for (int i = 0; i < n; i++) {
			if (done[i])
				continue;
			pid_t r = waitpid(pids[i], &status[i], WNOHANG);
			if (r == pids[i] || (r < 0 && errno != EINTR)) {
				done[i] = true;
				left--;
				if (r < 0 || !WIFEXITED(status[i]) ||
				    WEXITSTATUS(status[i]) != 0) {
					fprintf(stderr, "child %d: %s %d\n", i,
						r < 0 ? "lost" :
						WIFEXITED(status[i]) ? "exit" :
						"signal",
						r < 0 ? 0 :
						WIFEXITED(status[i]) ?
						WEXITSTATUS(status[i]) :
						WTERMSIG(status[i]));
					failed++;
				}
			}
		}
		if (left > 0 && time(NULL) > deadline) {
			for (int i = 0; i < n; i++) {
				if (!done[i]) {
					kill(pids[i], SIGKILL);
					waitpid(pids[i], NULL, 0);
					fprintf(stderr, "child %d: killed "
						"after %d s (deadlock?)\n",
						i, seconds);
					failed++;
				}
			}
			break;
		}
		if (left > 0)
			usleep(10000);
	}
	return failed;
}

static void test_multiprocess_consistency(void **state)
{
	struct cache *c = *state;
	pid_t pids[MP_PROCS];
	int started = 0;
	int gate[2];

	assert_int_equal(pipe(gate), 0);
	fflush(stdout);
	fflush(stderr);
	for (int i = 0; i < MP_PROCS; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			close(gate[1]);
			_exit(mp_child(c, i, gate[0]));
		}
		if (pid < 0)
			break;
		pids[started++] = pid;
	}
	close(gate[0]);
	close(gate[1]);
	int failed = reap_children(pids, started, 40);
	assert_int_equal(started, MP_PROCS);
	assert_int_equal(failed, 0);

	/* What the children left behind is consistent too. */
	unsigned char buf[MP_MAX_ITEM];
	int present = 0;
	for (unsigned k = 0; k < MP_KEYS; k++) {
		struct table_item_info info;
		char key[16];
		snprintf(key, sizeof(key), "mp:%u", k);
		enum table_status st = table_get(&c->table, key, strlen(key),
						 NULL, buf, sizeof(buf), &info);
		if (st == TABLE_NOT_FOUND)
			continue;
		assert_status(st, TABLE_OK);
		const char *why = check_value(buf, info.value_len, k,
					      info.flags);
		if (why != NULL)
			fail_msg("after the run, %s: %s", key, why);
		present++;
	}
	struct table_stats s = stats(&c->table);
	printf("multiprocess: %d keys present, %llu evictions, %llu "
	       "contended of %llu lock acquisitions\n", present,
	       (unsigned long long)s.evictions,
	       (unsigned long long)s.lock_contended,
	       (unsigned long long)s.lock_acquisitions);
	assert_true(s.evictions > 0);
	assert_true(s.mem_used <= s.mem_limit);
}

/*
 * mg N and the stale flag exist so that of many clients missing the same key
 * at once exactly one recaches it (the others back off).  Several processes
 * race through the same keys, some missing (vivify), some invalidated (md
 * I): for every key exactly one process must win.
 */
#define WIN_ROUNDS 200

static int win_child(struct cache *c, int gate, int out)
{
	unsigned char won[WIN_ROUNDS];
	struct table_get_opts o;
	char key[32];
	char g;

	alarm(20);
	if (cache_claim_proc(c) != 0)
		return 3;
	if (read(gate, &g, 1) != 0)
		return 4;
	memset(&o, 0, sizeof(o));
	o.vivify = true;
	o.vivify_exptime = 60;
	for (int r = 0; r < WIN_ROUNDS; r++) {
		struct table_item_info info;

		snprintf(key, sizeof(key), "win-%d", r);
		memset(&info, 0, sizeof(info));
		if (table_get(&c->table, key, strlen(key), &o, NULL, 0,
			      &info) != TABLE_OK)
			return 2;
		won[r] = info.won;
	}
	if (write(out, won, sizeof(won)) != (ssize_t)sizeof(won))
		return 5;
	cache_release_proc(c);
	return 0;
}

static void test_multiprocess_single_winner(void **state)
{
	struct cache *c = *state;
	struct table *t = &c->table;
	struct table_delete_opts inv = { .invalidate = true };
	pid_t pids[MP_PROCS];
	int outs[MP_PROCS];
	int started = 0;
	int gate[2];
	char key[32];

	for (int r = 1; r < WIN_ROUNDS; r += 2) {
		snprintf(key, sizeof(key), "win-%d", r);
		assert_status(set_str(t, key, "old", 0, 0), TABLE_OK);
		assert_status(table_delete(t, key, strlen(key), &inv),
			      TABLE_OK);
	}
	assert_int_equal(pipe(gate), 0);
	fflush(stdout);
	fflush(stderr);
	for (int i = 0; i < MP_PROCS; i++) {
		int out[2];
		if (pipe(out) != 0)
			break;
		pid_t pid = fork();
		if (pid == 0) {
			close(gate[1]);
			close(out[0]);
			_exit(win_child(c, gate[0], out[1]));
		}
		close(out[1]);
		if (pid < 0) {
			close(out[0]);
			break;
		}
		outs[started] = out[0];
		pids[started++] = pid;
	}
	close(gate[0]);
	close(gate[1]);
	int failed = reap_children(pids, started, 40);

	int wins[WIN_ROUNDS] = { 0 };
	int short_reads = 0;
	for (int i = 0; i < started; i++) {
		unsigned char won[WIN_ROUNDS];
		if (read(outs[i], won, sizeof(won)) != (ssize_t)sizeof(won))
			short_reads++;
		else
			for (int r = 0; r < WIN_ROUNDS; r++)
				wins[r] += won[r];
		close(outs[i]);
	}
	assert_int_equal(started, MP_PROCS);
	assert_int_equal(failed, 0);
	assert_int_equal(short_reads, 0);
	for (int r = 0; r < WIN_ROUNDS; r++)
		if (wins[r] != 1)
			fail_msg("win-%d (%s): %d winners", r,
				 r % 2 ? "stale" : "missing", wins[r]);
}

/*
 * Random commands against a model of what memcached would hold.  A value
 * is a few segments, each generated from a seed, so the model stays small
 * while values are checked byte for byte: a lookup must return exactly the
 * latest value, never an older version, never bytes moved to the wrong
 * place.  A key may be missing only if the table counted an eviction for
 * it: each loss the model discovers must be covered by one more eviction
 * in the stats.
 */
#define MODEL_SEGS 4
#define MODEL_VMAX 2000

struct model_key {
	bool present;
	uint32_t flags;
	uint32_t nseg;
	struct { uint32_t seed; uint32_t len; } seg[MODEL_SEGS];
};

static void model_bytes(uint32_t seed, uint32_t len, unsigned char *out)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (uint32_t i = 0; i < len; i++)
		out[i] = (unsigned char)(xorshift(&x) >> 24);
}

static size_t model_value(const struct model_key *mk, unsigned char *out)
{
	size_t n = 0;

	for (uint32_t i = 0; i < mk->nseg; i++) {
		model_bytes(mk->seg[i].seed, mk->seg[i].len, out + n);
		n += mk->seg[i].len;
	}
	return n;
}

static bool loss_covered(struct table *t, uint64_t *explained)
{
	struct table_stats s = stats(t);

	if (s.evictions <= *explained)
		return false;
	(*explained)++;
	return true;
}

static void run_model(struct table *t, struct model_key *m, unsigned keys,
		      int ops, uint32_t vmax, uint64_t rng)
{
	static unsigned char val[MODEL_VMAX];
	static unsigned char want_v[MODEL_VMAX * MODEL_SEGS];
	static unsigned char buf[MODEL_VMAX * MODEL_SEGS];
	uint64_t explained = 0;
	char key[32];
	struct table_item_info info;

	memset(m, 0, keys * sizeof(*m));
	for (int op = 0; op < ops; op++) {
		unsigned k = (unsigned)(xorshift(&rng) % keys);
		unsigned what = (unsigned)(xorshift(&rng) % 10);
		uint32_t len = (uint32_t)(xorshift(&rng) % (vmax + 1));
		uint32_t seed = (uint32_t)xorshift(&rng);
		struct model_key *mk = &m[k];
		bool concat = what == 4 || what == 5;
		enum table_status st;
		enum table_status want;

		snprintf(key, sizeof(key), "model-key-%u", k);
		model_bytes(seed, len, val);
		if (concat && mk->present && mk->nseg == MODEL_SEGS)
			what = 0; /* full: overwrite instead */
		if (what < 3) {
			st = store_mode(t, TABLE_SET, key, val, len, k, 0, NULL);
			want = TABLE_OK;
		} else if (what < 4) {
			st = store_mode(t, TABLE_ADD, key, val, len, k, 0, NULL);
			want = mk->present ? TABLE_NOT_STORED : TABLE_OK;
		} else if (what < 6) {
			st = store_mode(t, what == 4 ? TABLE_APPEND
						     : TABLE_PREPEND,
					key, val, len, 0, 0, NULL);
			want = mk->present ? TABLE_OK : TABLE_NOT_STORED;
		} else if (what < 7) {
			st = table_delete(t, key, strlen(key), NULL);
			want = mk->present ? TABLE_OK : TABLE_NOT_FOUND;
		} else {
			memset(&info, 0, sizeof(info));
			st = table_get(t, key, strlen(key), NULL, buf,
				       sizeof(buf), &info);
			want = mk->present ? TABLE_OK : TABLE_NOT_FOUND;
		}
		if (st != want) {
			/* Only "it was evicted" may explain a difference. */
			if (!mk->present || !loss_covered(t, &explained))
				fail_msg("op %d on %s: %s, model says %s", op,
					 key, table_status_name(st),
					 table_status_name(want));
			mk->present = false;
		}
		if (st != TABLE_OK)
			continue;
		if (what < 4) {
			mk->present = true;
			mk->flags = k;
			mk->nseg = 1;
			mk->seg[0].seed = seed;
			mk->seg[0].len = len;
		} else if (what < 6) {
			if (what == 5)
				memmove(&mk->seg[1], &mk->seg[0],
					mk->nseg * sizeof(mk->seg[0]));
			uint32_t at = what == 4 ? mk->nseg : 0;
			mk->seg[at].seed = seed;
			mk->seg[at].len = len;
			mk->nseg++;
		} else if (what < 7) {
			mk->present = false;
		} else {
			size_t n = model_value(mk, want_v);
			if (info.value_len != n || info.flags != mk->flags ||
			    memcmp(buf, want_v, n) != 0)
				fail_msg("op %d: %s holds %u bytes (flags %u), "
					 "model %zu bytes (flags %u)%s", op,
					 key, info.value_len, info.flags, n,
					 mk->flags, info.value_len == n ?
					 ", contents differ" : "");
		}
	}
	/* Whatever the model holds is there, byte for byte, and the stats
	 * count exactly what is there. */
	uint64_t items = 0, bytes = 0;
	for (unsigned k = 0; k < keys; k++) {
		if (!m[k].present)
			continue;
		snprintf(key, sizeof(key), "model-key-%u", k);
		enum table_status st = table_get(t, key, strlen(key), NULL, buf,
						 sizeof(buf), &info);
		if (st == TABLE_NOT_FOUND && loss_covered(t, &explained))
			continue;
		assert_status(st, TABLE_OK);
		size_t n = model_value(&m[k], want_v);
		assert_int_equal(info.value_len, n);
		assert_memory_equal(buf, want_v, n);
		items++;
		bytes += strlen(key) + n;
	}
	struct table_stats s = stats(t);
	printf("model: %llu items, %llu evictions, %llu reinserted\n",
	       (unsigned long long)s.items, (unsigned long long)s.evictions,
	       (unsigned long long)s.reinserted);
	assert_int_equal(s.items, items);
	assert_int_equal(s.bytes, bytes);
	assert_true(s.mem_used <= s.mem_limit);
}

/* Few buckets (a large item_size_hint) force long chains through the
 * overflow buckets, and deletes give overflow buckets back. */
static void test_random_ops_match_model(void **state)
{
	static struct model_key m[240];

	run_model(tbl(state), m, 240, 30000, 64, 42);
}

/* Memory pressure: the ring wraps, evicts, and moves items that were read
 * (or that sit before enough dead space) to its head, many times over. */
static void test_random_ops_match_model_evicting(void **state)
{
	static struct model_key m[4000];

	run_model(tbl(state), m, 4000, 60000, MODEL_VMAX, 7);
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
	enum { HOT = 50, COLD = 200000 };
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
	       "%llu\n", (unsigned long long)s.items,
	       (unsigned long long)s.evictions,
	       (unsigned long long)s.mem_used,
	       (unsigned long long)s.mem_limit);
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
			 "evicted", hot_lost, HOT);
	assert_int_equal(kept + HOT, s.items);
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
		T(test_expiry_relative_and_never),
		T(test_expiry_negative_and_absolute),
		T(test_exptime_conversion),
		T(test_touch),
		T(test_fetched_and_last_access),
		T(test_flush_now),
		T(test_flush_delayed),
		T(test_flush_explicit_cas),
		T(test_meta_vivify),
		T(test_meta_recache),
		T(test_meta_invalidate),
		T(test_meta_append_vivify),
		T(test_meta_store_cas),
		T(test_meta_arith_vivify),
		T(test_stats_counters),
		cmocka_unit_test_setup_teardown(test_eviction_keeps_hot_keys,
						setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_expired_items_reclaimed,
						setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_memory_efficiency,
						setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_multiprocess_consistency,
						setup_mp, teardown),
		T(test_multiprocess_single_winner),
		cmocka_unit_test_setup_teardown(test_random_ops_match_model,
						setup_few_buckets, teardown),
		cmocka_unit_test_setup_teardown(
			test_random_ops_match_model_evicting, setup_small,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_bucket_pressure_keeps_hot_keys, setup_small,
			teardown),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
