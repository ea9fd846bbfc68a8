/*
 * table_walk.h - visit the live items of a partition, a few buckets at a time
 *
 * For memcached's key listings (`lru_crawler metadump`, `stats
 * cachedump`): a caller walks partition p from bucket 0, each call holding
 * the partition's lock shared over at most `nbuckets` primary buckets (and
 * their overflow chains), so a listing of a large cache never holds a lock
 * for long and writers get in between calls.  An item changed between two
 * calls may be seen in its old state or its new one, or (if it moved to
 * another bucket by being replaced) twice or not at all, as memcached's
 * own crawler may.
 *
 * table_walk_oldest answers memcached's per-class "age": how long ago the
 * item the partition would evict next (the first live one from its ring's
 * tail) was last read or written.
 *
 * Interface routines:
 *   table_walk_buckets  primary buckets of a partition (the walk's end)
 *   table_walk          visit live items of buckets [from, from+n)
 *   table_walk_oldest   seconds since the tail item's last access
 */
#ifndef SHMKV_TABLE_WALK_H
#define SHMKV_TABLE_WALK_H

#include <stdbool.h>
#include <stdint.h>

#include "table.h"

/* What a listing shows of an item; key points into the segment and is
 * valid only during the callback. */
struct table_walk_entry {
	const unsigned char *key;
	uint8_t key_len;
	uint32_t value_len;
	uint32_t exptime;     /* absolute Unix seconds, 0 = never */
	uint32_t last_access; /* absolute Unix seconds */
	uint64_t cas;
	uint64_t total_size; /* header, key and value in the ring */
	bool fetched;	     /* read since it was stored */
};

/* Called under the partition's lock held shared: copy, never block. */
typedef void (*table_walk_fn)(void *arg, const struct table_walk_entry *e);

uint32_t table_walk_buckets(const struct table *t);

/*
 * table_walk - fn for every live item (not expired, not flushed) of
 * partition p whose primary bucket is in [from, from + n); returns the
 * next bucket to start from (table_walk_buckets(t) at the end).
 */
uint32_t table_walk(struct table *t, uint32_t p, uint32_t from, uint32_t n,
		    table_walk_fn fn, void *arg);

/*
 * table_walk_oldest - seconds since the last access of the first live item
 * from partition p's tail, looking at no more than a few dozen items past
 * dead ones; 0 for an empty partition (or one whose tail is all dead).
 */
uint32_t table_walk_oldest(struct table *t, uint32_t p);

#endif
