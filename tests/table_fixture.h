/*
 * table_fixture.h - the fixture and helpers shared by the table's tests
 *
 * Each table test gets a fresh cache (segment + proc slots + table), created
 * the way the server creates it, with this process's proc slot claimed and
 * the segment clock at T0; the setup_* variants differ only in size and
 * shape.  *state is the struct cache.
 *
 * Interface routines:
 *   cache_new, cache_free      a cache of given memory/partitions/max item/hint
 *   setup, setup_roomy, setup_small, setup_64m, setup_few_buckets, teardown
 *                              cmocka setups (sizes documented in the .c)
 *   tbl, set_clock             the table and the segment clock of *state
 *   store_mode, set_str        table_store with one call
 *   get_str, get_opts, exists  table_get into a C string, with options, or none
 *   assert_value               key holds exactly this text
 *   arith                      incr/decr
 *   stats                      table_stats_total
 *   assert_status              a status, or fail naming both statuses
 */
#ifndef SHMKV_TESTS_TABLE_FIXTURE_H
#define SHMKV_TESTS_TABLE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cache.h"
#include "segment.h"
#include "table.h"

/* Well past the 30-day line, so relative and absolute TTLs are distinct. */
#define T0 1700000000u

#define MIB (1024u * 1024u)

#define assert_status(expr, want) \
	do { \
		enum table_status st_ = (expr); \
		if (st_ != (want)) \
			fail_msg("%s: got %s, want %s", #expr, \
				 table_status_name(st_), \
				 table_status_name(want)); \
	} while (0)

/* table_status_name - a status in words, for failure messages. */
const char *table_status_name(enum table_status st);

struct cache *cache_new(uint64_t memory, uint32_t partitions, uint32_t max_item,
			uint32_t hint);
void cache_free(struct cache *c);

/* 16 MiB in 8 partitions: the default for tests of single operations. */
int setup(void **state);
/* Partitions roomy enough for two items of the largest size. */
int setup_roomy(void **state);
/* Small enough to fill many times over in a moment. */
int setup_small(void **state);
/* 64 MiB in 16 partitions, for measuring per-item overhead. */
int setup_64m(void **state);
/* Few buckets per partition, so chains run through overflow buckets. */
int setup_few_buckets(void **state);
int teardown(void **state);

struct table *tbl(void **state);
void set_clock(void **state, uint32_t now);

enum table_status store_mode(struct table *t, enum table_store_mode mode,
			     const char *key, const void *val, size_t vlen,
			     uint32_t flags, int64_t ttl, uint64_t *cas_out);
enum table_status set_str(struct table *t, const char *key, const char *val,
			  uint32_t flags, int64_t ttl);
/* Reads key into buf as a C string (values here are text). */
enum table_status get_str(struct table *t, const char *key, char *buf,
			  size_t cap, struct table_item_info *info);
enum table_status get_opts(struct table *t, const char *key,
			   const struct table_get_opts *opts,
			   struct table_item_info *info);
enum table_status exists(struct table *t, const char *key);
void assert_value(struct table *t, const char *key, const char *want);
enum table_status arith(struct table *t, const char *key, bool incr,
			uint64_t delta, uint64_t *value);
struct table_stats stats(struct table *t);

#endif
