/*
 * table_read.h - the lock-free read's inline core (table_read.c has the
 * rest), for table*.c and the client's lookups only
 *
 * A single get is a throughput loop's unit: what lies between one get's
 * item miss and the next get's bucket miss decides whether the CPU can
 * overlap the two, so the read is inlined into the caller's get rather
 * than called (client/api_read.c).  The rules are table_read.c's: every
 * offset and length read from the segment is checked once, on the copy
 * then used, and a read that raced a writer is thrown away.
 *
 * The key's hash is inline too (table_read_hash): libxxhash's XXH3_64bits
 * is a call through the PLT and a length dispatch on every lookup, while
 * the same function from Debian's xxhash.h with XXH_INLINE_ALL is a few
 * straight-line instructions for the usual key.  Both compute XXH3_64, so
 * a lookup finds what the server stored (test_table_read.c checks it on
 * every key length).
 *
 * Interface routines: table_read_hash, table_read_single
 * (table_get_lockfree inline), table_read_one and table_read_one_at (with
 * the clock and flush cut-off given, for batches), table_read_at_of,
 * table_read_warm, table_read_warm_items (a batch's stages) and
 * table_read_batch (the one loop that runs them, for shmkv_get_many and
 * the tests alike); the flush cut-off they take is table_internal.h's
 * table_read_flush_cut.
 */
#ifndef SHMKV_TABLE_READ_H
#define SHMKV_TABLE_READ_H

#include <errno.h>
#include <string.h>

#include "table_internal.h"

/* The static inline copy of xxhash (its own names: no clash with the
 * library that table.c calls). */
#define XXH_INLINE_ALL
#include <xxhash.h>

/* table_read_hash - table_hash (the key's XXH3_64), inline. */
static inline __attribute__((always_inline)) uint64_t table_read_hash(
	const void *key, size_t key_len)
{
	return XXH3_64bits(key, key_len);
}

/* The rest of a chain from its first overflow bucket (link = index + 1). */
const struct table_item *table_read_chain(const struct table *t,
					  const unsigned char *buckets,
					  uint32_t link,
					  const struct table_read *rd,
					  uint32_t *value_len,
					  struct table_slot *where);

/* The tries after a first one that raced a writer or met a chain. */
int table_read_again(const struct table *t, struct table_read *rd, uint32_t now,
		     uint64_t flush_cas);

/* One key's partition as a lookup sees it, from the handle's copies. */
struct table_read_view {
	const struct table *t;
	const _Atomic uint32_t *seq;
	const struct table_bucket *buckets;
	const unsigned char *arena;
	_Atomic uint16_t *used; /* the partition's CLOCK bits */
	uint32_t bucket;	/* the key's primary bucket */
	uint32_t now;
	uint64_t flush_cas;
};

/* Where a hash's key lives: its partition and primary bucket, computed
 * once a lookup (a batch keeps them from stage to stage). */
struct table_read_at {
	uint32_t part, bucket;
};

static inline __attribute__((always_inline)) struct table_read_at table_read_at_of(
	const struct table *t, uint64_t hash)
{
	return (struct table_read_at){ table_partition_of(t, hash),
				       table_bucket_of(t, hash) };
}

/* The partition's buckets (its ring follows them). */
static inline __attribute__((always_inline)) const unsigned char *table_read_base(
	const struct table *t, struct table_read_at at)
{
	return t->part_base + (uint64_t)at.part * t->part_stride;
}

static inline __attribute__((always_inline)) void table_read_view_of(
	const struct table *t, struct table_read_at at, uint32_t now,
	uint64_t flush_cas, struct table_read_view *v)
{
	const unsigned char *base = table_read_base(t, at);

	*v = (struct table_read_view){
		.t = t,
		.seq = &t->parts[at.part].seq,
		.buckets = (const struct table_bucket *)base,
		.arena = base + t->bucket_bytes,
		.used = (_Atomic uint16_t *)(t->used_base +
					     (uint64_t)at.part * t->used_stride),
		.bucket = at.bucket,
		.now = now,
		.flush_cas = flush_cas,
	};
}

/* Can key_len name a key at all?  A lookup refuses others unread. */
static inline bool table_read_key_ok(size_t key_len)
{
	return key_len != 0 && key_len <= TABLE_KEY_MAX;
}

/*
 * A batch runs three stages a few keys apart, in one loop
 * (table_read_batch, below): hash key i and warm its bucket and CLOCK bits
 * (table_read_warm); warm the items whose tags match in key
 * i - TABLE_READ_ITEM_AHEAD's bucket, which has had time to arrive
 * (table_read_warm_items); read key i - TABLE_READ_AHEAD
 * (table_read_one_at), the key's place computed once.  So the misses of
 * about eight keys are in flight at once instead of two dependent ones a
 * key.  NOTE: three loops over 16 keys
 * (every bucket, then every item, then the reads) run about 30 fewer
 * instructions a key but measured 25% slower: 16 keys' prefetches, 5 or 6
 * lines each, are more misses than a core keeps outstanding, and the
 * prefetches then wait in the pipeline.
 */
enum {
	TABLE_READ_ITEM_AHEAD = 4,
	TABLE_READ_AHEAD = 8,
	TABLE_READ_RING = 16 /* a power of two above TABLE_READ_AHEAD */
};
_Static_assert(TABLE_READ_RING > TABLE_READ_AHEAD &&
		       (TABLE_READ_RING & (TABLE_READ_RING - 1)) == 0,
	       "a key's hash outlives the read stage");

/*
 * table_read_warm_items - a batch's second stage: prefetch the lines of the
 * first TABLE_PREFETCH_ITEM_BYTES of each item the key's primary bucket's
 * matching tags name.  Only address arithmetic on the handle's copies and
 * refs checked against the ring, so a racing writer costs at worst a
 * useless prefetch.
 */
static inline __attribute__((always_inline)) const unsigned char *table_read_warm_items(
	const struct table *t, struct table_read_at at, uint64_t hash)
{
	const unsigned char *base = table_read_base(t, at);
	const struct table_bucket *b = (const struct table_bucket *)base +
				       at.bucket;
	const unsigned char *arena = base + t->bucket_bytes;
	const unsigned char *first = NULL;

	for (uint32_t m = bucket_tag_matches(b, bucket_tag(hash)); m != 0;
	     m = bucket_next_match(m)) {
		uint64_t off =
			(uint64_t)__atomic_load_n(&b->refs[bucket_slot_of_match(m)],
						  __ATOMIC_RELAXED) *
			TABLE_REF_UNIT;

		if (off + TABLE_PREFETCH_ITEM_BYTES > t->arena_size)
			continue;
		if (first == NULL)
			first = arena + off;
		/* Every line the first TABLE_PREFETCH_ITEM_BYTES touch: each
		 * of these is less than a line from the next. */
		table_prefetch(arena + off);
		table_prefetch(arena + off + 64);
		table_prefetch(arena + off + 128);
		table_prefetch(arena + off + TABLE_PREFETCH_ITEM_BYTES - 1);
	}
	return first;
}

/*
 * table_read_warm - a batch's first stage: table_warm_lookup on a key's
 * place already computed, which the later stages use again.
 */
static inline __attribute__((always_inline)) void table_read_warm(
	const struct table *t, struct table_read_at at)
{
	table_warm_place(t, at.part, at.bucket);
}

/*
 * table_read_batch - n keys through the batch's three stages, in the one
 * loop every batch runs (shmkv_get_many's and the tests' alike).  It owns
 * the stages and the ring of the keys' hashes and places; the caller gives
 * the per-key work: key_of(ctx, i, &key_len) names key i, and finish(ctx,
 * g, hash, at) reads key g (table_read_one_at on that place) and fills in
 * what the caller keeps of it, returning false to stop the batch there.
 * A key that table_read_key_ok refuses gets hash 0: warmed for nothing,
 * finish's read refuses it.  Returns how many keys were finished: n, or
 * g + 1 if finish stopped at g.
 *
 * NOTE: both callbacks must be always_inline static functions passed by
 * name: this driver is inlined too, so each pointer is a constant at the
 * call and gcc inlines the callee, and the loop makes no indirect call
 * (checked with objdump on shmkv_get_many).  A macro would do the same
 * without the promise, and one loop copied per caller is what this
 * replaces.
 */
static inline __attribute__((always_inline)) size_t table_read_batch(
	const struct table *t, size_t n, void *ctx,
	const void *(*key_of)(void *ctx, size_t i, size_t *key_len),
	bool (*finish)(void *ctx, size_t g, uint64_t hash,
		       struct table_read_at at))
{
	uint64_t hash[TABLE_READ_RING];
	struct table_read_at at[TABLE_READ_RING];

	/* m and g wrap below 0 for the first keys: then m, g >= n. */
	for (size_t i = 0; i < n + TABLE_READ_AHEAD; i++) {
		size_t m = i - TABLE_READ_ITEM_AHEAD, g = i - TABLE_READ_AHEAD;

		if (i < n) {
			size_t key_len;
			const void *key = key_of(ctx, i, &key_len);
			uint64_t h = table_read_key_ok(key_len)
					     ? table_read_hash(key, key_len)
					     : 0;

			hash[i % TABLE_READ_RING] = h;
			at[i % TABLE_READ_RING] = table_read_at_of(t, h);
			table_read_warm(t, at[i % TABLE_READ_RING]);
		}
		if (m < n)
			table_read_warm_items(t, at[m % TABLE_READ_RING],
					      hash[m % TABLE_READ_RING]);
		if (g < n && !finish(ctx, g, hash[g % TABLE_READ_RING],
				     at[g % TABLE_READ_RING]))
			return g + 1;
	}
	return n;
}

/* Do 16 bytes at a and b match?  Unaligned loads. */
static inline __attribute__((always_inline)) bool table_bytes16_equal(
	const unsigned char *a, const unsigned char *b)
{
#if defined(__SSE2__)
	__m128i x = _mm_loadu_si128((const __m128i *)(const void *)a);
	__m128i y = _mm_loadu_si128((const __m128i *)(const void *)b);

	return _mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) == 0xffff;
#else
	uint64_t x[2], y[2];

	memcpy(x, a, 16);
	memcpy(y, b, 16);
	return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
#endif
}

/*
 * Do the n bytes at a and b match?  memcmp but inline for the usual key
 * (16 to 32 bytes: two overlapping 16-byte compares), which saves a call
 * and its length dispatch on every hit.  Every load stays inside the n
 * bytes of each side.
 */
static inline __attribute__((always_inline)) bool table_key_equal(
	const unsigned char *a, const unsigned char *b, size_t n)
{
	uint64_t x, y, u, w;
	uint32_t h, k, l, m;

	if (n >= 16 && n <= 32)
		/* The usual key: two compares that overlap, no loop. */
		return table_bytes16_equal(a, b) &&
		       table_bytes16_equal(a + n - 16, b + n - 16);
	if (n > 32) {
		for (size_t i = 0; i + 16 < n; i += 16)
			if (!table_bytes16_equal(a + i, b + i))
				return false;
		return table_bytes16_equal(a + n - 16, b + n - 16);
	}
	if (n >= 8) {
		memcpy(&x, a, 8), memcpy(&y, b, 8);
		memcpy(&u, a + n - 8, 8), memcpy(&w, b + n - 8, 8);
		return ((x ^ y) | (u ^ w)) == 0;
	}
	if (n >= 4) {
		memcpy(&h, a, 4), memcpy(&k, b, 4);
		memcpy(&l, a + n - 4, 4), memcpy(&m, b + n - 4, 4);
		return ((h ^ k) | (l ^ m)) == 0;
	}
	return memcmp(a, b, n) == 0;
}

/*
 * The item a slot's ref names if it holds key: its header, key and value
 * inside the ring, checked with the lengths read once (a racing writer may
 * change them meanwhile; what is used is what was checked).  NULL if not.
 */
static inline __attribute__((always_inline)) const struct table_item *table_read_slot(
	const struct table *t, const unsigned char *arena, uint32_t ref,
	const struct table_read *rd, uint32_t *value_len)
{
	uint64_t size = t->arena_size;
	uint64_t off = (uint64_t)ref * TABLE_REF_UNIT;
	const struct table_item *it;
	uint32_t vlen;

	/* table_open checked size >= the header. */
	if (off > size - sizeof(struct table_item))
		return NULL;
	it = (const struct table_item *)(arena + off);
	if (__atomic_load_n(&it->key_len, __ATOMIC_RELAXED) != rd->key_len)
		return NULL;
	vlen = __atomic_load_n(&it->value_len, __ATOMIC_RELAXED);
	if (sizeof(struct table_item) + (uint64_t)rd->key_len + vlen > size - off)
		return NULL;
	if (!table_key_equal((const unsigned char *)(it + 1), rd->key,
			     rd->key_len))
		return NULL;
	*value_len = vlen;
	return it;
}

/* The slot of bucket b that holds rd's key, or -1. */
static inline __attribute__((always_inline)) int table_read_bucket(
	const struct table *t, const unsigned char *arena,
	const struct table_bucket *b, uint16_t tag, const struct table_read *rd,
	uint32_t *value_len, const struct table_item **item)
{
	for (uint32_t m = bucket_tag_matches(b, tag); m != 0;
	     m = bucket_next_match(m)) {
		uint32_t s = bucket_slot_of_match(m);
		uint32_t ref = __atomic_load_n(&b->refs[s], __ATOMIC_RELAXED);

		*item = table_read_slot(t, arena, ref, rd, value_len);
		if (*item != NULL)
			return (int)s;
	}
	return -1;
}

/* Live, not expired, not flushed: ring_item_alive on the view. */
static inline __attribute__((always_inline)) bool table_read_alive(
	const struct table_read_view *v, const struct table_item *it)
{
	uint32_t exptime = __atomic_load_n(&it->exptime, __ATOMIC_RELAXED);

	/* exptime 0 (never) wraps to the largest value: one comparison for
	 * exptime == 0 || exptime > now, since now never reaches it. */
	return (item_state(it) & ITEM_KIND_MASK) == ITEM_LIVE &&
	       exptime - 1u >= v->now &&
	       (v->flush_cas == 0 || item_cas(it) > v->flush_cas);
}

/* The CLOCK bit of a slot a read hit (bucket_mark_used's rule), given the
 * bits of its bucket as loaded before. */
static inline __attribute__((always_inline)) void table_read_mark_used(
	const struct table_read_view *v, struct table_slot where, uint16_t bits)
{
	_Atomic uint16_t *word = v->used + where.bucket;
	uint16_t bit = (uint16_t)(1u << where.slot);

	/* A plain store when the bit is clear: see bucket_mark_used. */
	if ((bits & bit) == 0)
		atomic_store_explicit(word, (uint16_t)(bits | bit),
				      memory_order_relaxed);
}

/*
 * One sequence-checked try: a table_status, or -EAGAIN if it raced a
 * writer, or if chains is false and the key may lie past its primary
 * bucket.  NOTE: a first try (chains false) leaves overflow chains to the
 * retries, so that nothing of its own escapes to a call and the compiler
 * keeps it in registers; most keys live in their primary bucket.
 */
static inline __attribute__((always_inline)) int table_read_try(
	const struct table_read_view *v, struct table_read *rd, bool chains)
{
	const struct table_bucket *b = &v->buckets[v->bucket];
	const struct table_item *it;
	struct table_slot where = { v->bucket, 0 };
	uint32_t value_len = 0;
	int st = TABLE_NOT_FOUND, s;
	/* Acquire pairs with table_writer_end's release store: what the last
	 * writer wrote is visible before we read it. */
	uint32_t before = atomic_load_explicit(v->seq, memory_order_acquire);
	/* The primary bucket's CLOCK bits, loaded here rather than after the
	 * copy: fewer instructions after the item's miss (table_read.h's top
	 * says why that matters).  A hint only, so a stale load is harmless. */
	uint16_t bits = atomic_load_explicit(v->used + v->bucket,
					     memory_order_relaxed);

	if (before & 1u)
		return -EAGAIN;
	s = table_read_bucket(v->t, v->arena, b, bucket_tag(rd->hash), rd,
			      &value_len, &it);
	if (s >= 0) {
		where.slot = (uint32_t)s;
	} else if (__atomic_load_n(&b->next, __ATOMIC_RELAXED) == 0) {
		it = NULL;
	} else if (!chains) {
		return -EAGAIN;
	} else {
		it = table_read_chain(v->t, (const unsigned char *)v->buckets,
				      __atomic_load_n(&b->next, __ATOMIC_RELAXED),
				      rd, &value_len, &where);
	}
	if (it != NULL && table_read_alive(v, it)) {
		rd->cas = item_cas(it);
		rd->flags = __atomic_load_n(&it->flags, __ATOMIC_RELAXED);
		rd->value_len = value_len;
		st = TABLE_OK;
		if (rd->buf == NULL)
			;
		else if (value_len <= rd->cap)
			/* The value follows the key table_read_slot matched, checked
			 * with this very length. */
			memcpy(rd->buf,
			       (const unsigned char *)(it + 1) + rd->key_len,
			       value_len);
		else
			st = TABLE_TOO_SMALL;
	} else {
		it = NULL;
	}
	/* Orders the reads above before the re-check; pairs with
	 * table_writer_begin's release fence, which orders a writer's odd
	 * store before its changes. */
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(v->seq, memory_order_relaxed) != before)
		return -EAGAIN;
	if (it != NULL)
		table_read_mark_used(
			v, where,
			where.bucket == v->bucket
				? bits
				: atomic_load_explicit(v->used + where.bucket,
						       memory_order_relaxed));
	return st;
}

/*
 * One key's sequence-checked read, with the clock and the flush cut-off
 * the caller read (once for a whole batch: both only ever move forward,
 * and a second's staleness is the clock's contract).
 */
static inline __attribute__((always_inline)) int table_read_one_at(
	const struct table *t, struct table_read *rd, struct table_read_at at,
	uint32_t now, uint64_t flush_cas)
{
	struct table_read_view v;
	int st;

	if (!table_read_key_ok(rd->key_len))
		return TABLE_BAD_KEY;
	table_read_view_of(t, at, now, flush_cas, &v);
	st = table_read_try(&v, rd, false);
	if (__builtin_expect(st == -EAGAIN, 0)) {
		/* A copy goes to the call, so that rd itself may live in the
		 * caller's registers. */
		struct table_read again = *rd;

		st = table_read_again(t, &again, now, flush_cas);
		*rd = again;
	}
	return st;
}

static inline __attribute__((always_inline)) int table_read_one(
	const struct table *t, struct table_read *rd, uint32_t now,
	uint64_t flush_cas)
{
	return table_read_one_at(t, rd, table_read_at_of(t, rd->hash), now,
				 flush_cas);
}

/*
 * table_read_single - table_get_lockfree itself, inline for the client's
 * single gets: one call less between one get's item and the next get's
 * bucket (client/api_read.c).
 */
static inline __attribute__((always_inline)) int table_read_single(
	const struct table *t, struct table_read *rd)
{
	uint32_t now = segment_clock(t->seg);

	return table_read_one(t, rd, now, table_read_flush_cut(t, now));
}

#endif
