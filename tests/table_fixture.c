/*
 * table_fixture.c - the fresh cache and the helpers every table test uses
 *
 * The table's tests are split by concept over several files (operations,
 * expiry, meta options, memory pressure, several processes); they share this
 * fixture so that each test starts from a cache created exactly the way the
 * server creates one: segment, proc slots and table, with this process's
 * proc slot claimed and the segment clock set to T0.  The helpers wrap the
 * table's request structs so that a test reads as the memcached commands it
 * stands for.
 *
 * Interface routines (see table_fixture.h): cache_new, cache_free, setup,
 * setup_roomy, setup_small, setup_64m, setup_few_buckets, teardown, tbl,
 * set_clock, store_mode, set_str, get_str, get_opts, exists, assert_value,
 * arith, stats.
 */
#include "table_fixture.h"

const char *table_status_name(enum table_status st)
{
	switch (st) {
	case TABLE_OK: return "ok";
	case TABLE_NOT_FOUND: return "not found";
	case TABLE_NOT_STORED: return "not stored";
	case TABLE_EXISTS: return "exists";
	case TABLE_TOO_LARGE: return "too large";
	case TABLE_NO_MEMORY: return "out of memory";
	case TABLE_NON_NUMERIC: return "non-numeric value";
	case TABLE_TOO_SMALL: return "buffer too small";
	case TABLE_BAD_KEY: return "bad key";
	}
	return "unknown";
}

#include <stdlib.h>
#include <string.h>

struct cache *cache_new(uint64_t memory, uint32_t partitions, uint32_t max_item,
			uint32_t hint)
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

void cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	cache_destroy(c);
	free(c);
}

int setup(void **state)
{
	*state = cache_new(16 * MIB, 8, 0, 0);
	return 0;
}

/* Partitions roomy enough for two items of the largest size. */
int setup_roomy(void **state)
{
	*state = cache_new(16 * MIB, 2, 0, 0);
	return 0;
}

/* Small enough to fill many times over in a moment. */
int setup_small(void **state)
{
	*state = cache_new(4 * MIB, 4, 64 * 1024, 0);
	return 0;
}

int setup_64m(void **state)
{
	*state = cache_new(64 * MIB, 16, 0, 0);
	return 0;
}

/* Few buckets per partition, so chains run through overflow buckets. */
int setup_few_buckets(void **state)
{
	*state = cache_new(16 * MIB, 8, 64 * 1024, 64 * 1024);
	return 0;
}

int teardown(void **state)
{
	cache_free(*state);
	return 0;
}

struct table *tbl(void **state)
{
	return &((struct cache *)*state)->table;
}

void set_clock(void **state, uint32_t now)
{
	segment_set_clock(&((struct cache *)*state)->seg, now);
}

enum table_status store_mode(struct table *t, enum table_store_mode mode,
			     const char *key, const void *val, size_t vlen,
			     uint32_t flags, int64_t ttl, uint64_t *cas_out)
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

enum table_status set_str(struct table *t, const char *key, const char *val,
			  uint32_t flags, int64_t ttl)
{
	return store_mode(t, TABLE_SET, key, val, strlen(val), flags, ttl, NULL);
}

/* Reads key into buf as a C string (values here are text). */
enum table_status get_str(struct table *t, const char *key, char *buf,
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

enum table_status get_opts(struct table *t, const char *key,
			   const struct table_get_opts *opts,
			   struct table_item_info *info)
{
	char buf[256];

	memset(info, 0, sizeof(*info));
	return table_get(t, key, strlen(key), opts, buf, sizeof(buf), info);
}

enum table_status exists(struct table *t, const char *key)
{
	struct table_item_info info;

	return table_get(t, key, strlen(key), NULL, NULL, 0, &info);
}

void assert_value(struct table *t, const char *key, const char *want)
{
	char buf[1024];
	enum table_status st = get_str(t, key, buf, sizeof(buf), NULL);

	if (st != TABLE_OK)
		fail_msg("get %s: %s, want OK", key, table_status_name(st));
	assert_string_equal(buf, want);
}

enum table_status arith(struct table *t, const char *key, bool incr,
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

struct table_stats stats(struct table *t)
{
	struct table_stats s;

	memset(&s, 0, sizeof(s));
	table_stats_total(t, &s);
	return s;
}
