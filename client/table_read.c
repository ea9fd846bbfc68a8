/*
 * table_read.c - the lock-free read: a lookup that takes no lock
 *
 * For client programs (table.h, "The read contract"): read the partition's
 * sequence word, look up and copy, and accept the result only if the word
 * is the same even number afterwards, i.e. no writer ran in between.  A
 * writer makes the word odd for the whole of its change (the writer
 * bracket, table_writer_begin/end), so an accepted copy is one no writer
 * touched.  While racing a writer this code may read anything: every
 * offset and length it follows is bounds-checked once, on a copy it then
 * uses, and what it copies is thrown away.
 *
 * It is written for a throughput loop of lookups: the addresses come from
 * the handle's copies of the geometry (struct table), validated when the
 * table was opened, so a lookup reads no header field to find its
 * partition; the tags of a bucket are compared at once
 * (bucket_tag_matches); there is no locked instruction and no fence the
 * CPU must wait for, so one lookup's cache misses can overlap the next
 * one's.  A hit costs the bucket's line and the item's; a miss the
 * bucket's, and an overflow bucket's only when the primary one is full.
 * The single-key read's core is inline in table_read.h, so that the
 * client's get has it without a call; its caller warms the bucket first
 * (table_warm_lookup), the batch below in its first stage.
 *
 * NOTE: the LWLock taken shared would do too, but costs two atomic
 * read-modify-writes on a line every reader of the partition shares, and a
 * client killed inside it would block writers until the supervisor
 * recovers the lock.  The sequence check costs two plain loads.  After
 * LOCKFREE_TRIES failures (a partition under a storm of writes) it gives
 * up and the caller reads with the lock (table_get_lockfree's contract),
 * so a reader cannot starve.
 *
 * Interface routines: table_get_lockfree, table_get_many_lockfree (see
 * table.h); table_read_chain, table_read_again for table_read.h.
 */
#include <errno.h>
#include <string.h>

#include "table_read.h"

#define LOCKFREE_TRIES 8

/*
 * The rest of a chain, from the overflow bucket link names (a bucket
 * index + 1, checked before use): out of line, since most chains end at
 * their primary bucket.
 */
__attribute__((noinline)) const struct table_item *table_read_chain(
	const struct table *t, const unsigned char *buckets, uint32_t link,
	const struct table_read *rd, uint32_t *value_len,
	struct table_slot *where)
{
	const unsigned char *arena = buckets + t->bucket_bytes;
	uint16_t tag = bucket_tag(rd->hash);

	/* The primary bucket was the first hop. */
	for (uint32_t hops = 1; hops < table_chain_max(t); hops++) {
		const struct table_bucket *b;
		const struct table_item *it;
		int s;

		if (link == 0 || link > t->nbuckets_total)
			return NULL;
		b = (const struct table_bucket *)buckets + (link - 1);
		s = table_read_bucket(t, arena, b, tag, rd, value_len, &it);
		if (s >= 0) {
			*where = (struct table_slot){ link - 1, (uint32_t)s };
			return it;
		}
		link = __atomic_load_n(&b->next, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* The tries after a first that raced a writer: out of line (rare). */
__attribute__((noinline, cold)) int table_read_again(const struct table *t,
						     struct table_read *rd,
						     uint32_t now,
						     uint64_t flush_cas)
{
	struct table_read_view v;

	table_read_view_of(t, rd->hash, now, flush_cas, &v);
	for (int tries = 1; tries < LOCKFREE_TRIES; tries++) {
		int st = table_read_try(&v, rd);

		if (st != -EAGAIN)
			return st;
	}
	return -EAGAIN;
}

int table_get_lockfree(const struct table *t, struct table_read *rd)
{
	return table_read_single(t, rd);
}

/*
 * Three stages, each a few keys ahead of the next: hash a key and warm its
 * bucket (and the bucket's CLOCK bits, which a hit writes); BATCH_ITEM_AHEAD
 * keys later, once that line has had time to arrive, warm the items its
 * matching tags name; BATCH_ITEM_AHEAD keys after that, read it.  So the
 * misses of about eight keys are in flight at once instead of two
 * dependent ones a key.  The warming is only address arithmetic on the
 * handle's copies and refs checked against the ring: a racing writer costs
 * at worst a useless prefetch.
 */
enum {
	BATCH_ITEM_AHEAD = 4,
	BATCH_READ_AHEAD = 8,
	BATCH_RING = 16
};
_Static_assert(BATCH_RING > BATCH_READ_AHEAD, "a key's bucket outlives stage 2");

/* The key's bucket, warmed; *arena gets its partition's ring. */
static inline __attribute__((always_inline)) const struct table_bucket *batch_warm_bucket(
	const struct table *t, uint64_t hash, const unsigned char **arena)
{
	uint32_t p = table_partition_of(t, hash);
	uint32_t b = table_bucket_of(t, hash);
	const unsigned char *base = t->part_base + (uint64_t)p * t->part_stride;
	const struct table_bucket *bucket = (const struct table_bucket *)base + b;

	*arena = base + t->bucket_bytes;
	__builtin_prefetch(bucket);
	__builtin_prefetch(t->used_base + (uint64_t)p * t->used_stride +
			   (uint64_t)b * sizeof(uint16_t));
	return bucket;
}

static inline __attribute__((always_inline)) void batch_warm_items(
	const struct table *t, const struct table_bucket *bucket,
	const unsigned char *arena, uint64_t hash)
{
	for (uint32_t m = bucket_tag_matches(bucket, bucket_tag(hash)); m != 0;
	     m = bucket_next_match(m)) {
		uint64_t off = (uint64_t)__atomic_load_n(
				       &bucket->refs[bucket_slot_of_match(m)],
				       __ATOMIC_RELAXED) *
			       TABLE_REF_UNIT;

		if (off + TABLE_PREFETCH_ITEM_BYTES > t->arena_size)
			continue;
		/* Every line the first TABLE_PREFETCH_ITEM_BYTES touch: each
		 * of these is less than a line from the next. */
		__builtin_prefetch(arena + off);
		__builtin_prefetch(arena + off + 64);
		__builtin_prefetch(arena + off + 128);
		__builtin_prefetch(arena + off + TABLE_PREFETCH_ITEM_BYTES - 1);
	}
}

void table_get_many_lockfree(const struct table *t, struct table_read *rd,
			     int *st, size_t n)
{
	uint32_t now = segment_clock(t->seg);
	uint64_t flush_cas = table_read_flush_cut(t, now);
	const struct table_bucket *bucket[BATCH_RING];
	const unsigned char *arena[BATCH_RING];

	for (size_t i = 0; i < n + BATCH_READ_AHEAD; i++) {
		size_t m = i - BATCH_ITEM_AHEAD, g = i - BATCH_READ_AHEAD;

		if (i < n) {
			/* A bad key is not read at all (table_read_one refuses it). */
			bool ok = rd[i].key_len > 0 &&
				  rd[i].key_len <= TABLE_KEY_MAX;

			rd[i].hash = ok ? table_hash(rd[i].key, rd[i].key_len)
					: 0;
			bucket[i % BATCH_RING] =
				batch_warm_bucket(t, rd[i].hash,
						  &arena[i % BATCH_RING]);
		}
		if (i >= BATCH_ITEM_AHEAD && m < n)
			batch_warm_items(t, bucket[m % BATCH_RING],
					 arena[m % BATCH_RING], rd[m].hash);
		if (i >= BATCH_READ_AHEAD && g < n)
			st[g] = table_read_one(t, &rd[g], now, flush_cas);
	}
}
