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
 * table.h).
 */
#include <errno.h>
#include <string.h>

#include "table_internal.h"

#define LOCKFREE_TRIES 8

/* One partition as a lookup sees it, from the handle's copies. */
struct read_view {
	const struct table *t;
	const struct table_bucket *buckets;
	const unsigned char *arena;
	uint32_t now;
	uint64_t flush_cas;
};

/*
 * The flush cut-off as a reader that may not write sees it: a delayed
 * flush that has come due counts as applied (table.c's flush_cut does the
 * same for a read-only mapping).
 */
static uint64_t read_flush_cut(const struct table *t, uint32_t now)
{
	/* Acquire pairs with table_flush's release store of flush_at. */
	uint32_t at = atomic_load_explicit(&t->hdr->flush_at,
					   memory_order_acquire);

	if (at != 0 && now >= at)
		return atomic_load_explicit(&t->hdr->next_cas,
					    memory_order_relaxed) -
		       1;
	return atomic_load_explicit(&t->hdr->flush_cas, memory_order_acquire);
}

/*
 * The item a slot's ref names if it holds key: its header, key and value
 * inside the ring, checked with the lengths read once (a racing writer may
 * change them meanwhile; what is used is what was checked).  NULL if not.
 */
static inline __attribute__((always_inline)) const struct table_item *read_slot(
	const struct read_view *v, uint32_t ref, const struct table_read *rd,
	uint32_t *value_len)
{
	uint64_t size = v->t->arena_size;
	uint64_t off = (uint64_t)ref * TABLE_REF_UNIT;
	const struct table_item *it;
	uint32_t vlen;

	/* table_open checked size >= the header. */
	if (off > size - sizeof(struct table_item))
		return NULL;
	it = (const struct table_item *)(v->arena + off);
	if (__atomic_load_n(&it->key_len, __ATOMIC_RELAXED) != rd->key_len)
		return NULL;
	vlen = __atomic_load_n(&it->value_len, __ATOMIC_RELAXED);
	if (sizeof(struct table_item) + (uint64_t)rd->key_len + vlen > size - off)
		return NULL;
	if (memcmp(it + 1, rd->key, rd->key_len) != 0)
		return NULL;
	*value_len = vlen;
	return it;
}

/* Walk rd's chain for its key; every bucket index is checked before use. */
static inline __attribute__((always_inline)) const struct table_item *read_probe(
	const struct read_view *v, const struct table_read *rd,
	uint32_t *value_len, struct table_slot *where)
{
	const struct table *t = v->t;
	uint16_t tag = bucket_tag(rd->hash);
	uint32_t index = table_bucket_of(t, rd->hash);

	for (uint32_t hops = 0; hops < table_chain_max(t); hops++) {
		const struct table_bucket *b = &v->buckets[index];
		uint32_t next;

		for (uint32_t m = bucket_tag_matches(b, tag); m != 0;
		     m = bucket_next_match(m)) {
			uint32_t s = bucket_slot_of_match(m);
			const struct table_item *it =
				read_slot(v,
					  __atomic_load_n(&b->refs[s],
							  __ATOMIC_RELAXED),
					  rd, value_len);

			if (it != NULL) {
				*where = (struct table_slot){ index, s };
				return it;
			}
		}
		next = __atomic_load_n(&b->next, __ATOMIC_RELAXED);
		if (next == 0 || next > t->nbuckets_total)
			return NULL;
		index = next - 1;
	}
	return NULL;
}

/* Live, not expired, not flushed: ring_item_alive on the view. */
static inline __attribute__((always_inline)) bool read_alive(
	const struct read_view *v, const struct table_item *it)
{
	uint32_t exptime = __atomic_load_n(&it->exptime, __ATOMIC_RELAXED);

	return (item_state(it) & ITEM_KIND_MASK) == ITEM_LIVE &&
	       (exptime == 0 || exptime > v->now) &&
	       (v->flush_cas == 0 || item_cas(it) > v->flush_cas);
}

/* The CLOCK bit of a slot a read hit (bucket_mark_used's rule). */
static inline __attribute__((always_inline)) void read_mark_used(
	const struct table *t, uint32_t partition, struct table_slot where)
{
	_Atomic uint16_t *word = (_Atomic uint16_t *)(t->used_base +
						      (uint64_t)partition *
							      t->used_stride) +
				 where.bucket;
	uint16_t bit = (uint16_t)(1u << where.slot);
	uint16_t bits = atomic_load_explicit(word, memory_order_relaxed);

	/* A plain store when the bit is clear: see bucket_mark_used. */
	if ((bits & bit) == 0)
		atomic_store_explicit(word, (uint16_t)(bits | bit),
				      memory_order_relaxed);
}

/*
 * One key's sequence-checked read, with the clock and the flush cut-off
 * the caller read (once for a whole batch: both only ever move forward,
 * and a second's staleness is the clock's contract).
 */
static inline __attribute__((always_inline)) int read_one(const struct table *t,
							  struct table_read *rd,
							  uint32_t now,
							  uint64_t flush_cas)
{
	uint32_t p = table_partition_of(t, rd->hash);
	const _Atomic uint32_t *seq = &t->parts[p].seq;
	const unsigned char *base = t->part_base + (uint64_t)p * t->part_stride;
	const struct read_view v = {
		.t = t,
		.buckets = (const struct table_bucket *)base,
		.arena = base + t->bucket_bytes,
		.now = now,
		.flush_cas = flush_cas,
	};

	if (rd->key_len == 0 || rd->key_len > TABLE_KEY_MAX)
		return TABLE_BAD_KEY;
	/* The CLOCK bits of the primary bucket, which a hit reads: their line
	 * is in the control part, apart from the bucket, and in a table
	 * larger than the caches it misses too; warmed now, that miss
	 * overlaps the bucket's and the item's instead of following them. */
	__builtin_prefetch(t->used_base + (uint64_t)p * t->used_stride +
			   (uint64_t)table_bucket_of(t, rd->hash) *
				   sizeof(uint16_t));
	for (int tries = 0; tries < LOCKFREE_TRIES; tries++) {
		const struct table_item *it;
		struct table_slot where;
		uint32_t value_len = 0;
		int st = TABLE_NOT_FOUND;
		/* Acquire pairs with table_writer_end's release store: what
		 * the last writer wrote is visible before we read it. */
		uint32_t before = atomic_load_explicit(seq, memory_order_acquire);

		if (before & 1u)
			continue;
		it = read_probe(&v, rd, &value_len, &where);
		if (it != NULL && read_alive(&v, it)) {
			rd->cas = item_cas(it);
			rd->flags = __atomic_load_n(&it->flags, __ATOMIC_RELAXED);
			rd->value_len = value_len;
			st = TABLE_OK;
			if (rd->buf == NULL)
				;
			else if (value_len <= rd->cap)
				/* The value follows the key read_slot matched,
				 * checked with this very length. */
				memcpy(rd->buf,
				       (const unsigned char *)(it + 1) +
					       rd->key_len,
				       value_len);
			else
				st = TABLE_TOO_SMALL;
		} else {
			it = NULL;
		}
		/* Orders the reads above before the re-check; pairs with
		 * table_writer_begin's release fence, which orders a writer's
		 * odd store before its changes. */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(seq, memory_order_relaxed) != before)
			continue;
		if (it != NULL)
			read_mark_used(t, p, where);
		return st;
	}
	return -EAGAIN;
}

int table_get_lockfree(const struct table *t, struct table_read *rd)
{
	uint32_t now = segment_clock(t->seg);

	return read_one(t, rd, now, read_flush_cut(t, now));
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
	uint64_t flush_cas = read_flush_cut(t, now);
	const struct table_bucket *bucket[BATCH_RING];
	const unsigned char *arena[BATCH_RING];

	for (size_t i = 0; i < n + BATCH_READ_AHEAD; i++) {
		size_t m = i - BATCH_ITEM_AHEAD, g = i - BATCH_READ_AHEAD;

		if (i < n) {
			/* A bad key is not read at all (read_one refuses it). */
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
			st[g] = read_one(t, &rd[g], now, flush_cas);
	}
}
