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

/* One key's partition as a lookup sees it, from the handle's copies. */
struct read_view {
	const struct table *t;
	const _Atomic uint32_t *seq;
	const struct table_bucket *buckets;
	const unsigned char *arena;
	_Atomic uint16_t *used; /* the partition's CLOCK bits */
	uint32_t bucket;	/* the key's primary bucket */
	uint32_t now;
	uint64_t flush_cas;
};

static inline __attribute__((always_inline)) void read_view_of(
	const struct table *t, uint64_t hash, uint32_t now, uint64_t flush_cas,
	struct read_view *v)
{
	uint32_t p = table_partition_of(t, hash);
	const unsigned char *base = t->part_base + (uint64_t)p * t->part_stride;

	*v = (struct read_view){
		.t = t,
		.seq = &t->parts[p].seq,
		.buckets = (const struct table_bucket *)base,
		.arena = base + t->bucket_bytes,
		.used = (_Atomic uint16_t *)(t->used_base +
					     (uint64_t)p * t->used_stride),
		.bucket = table_bucket_of(t, hash),
		.now = now,
		.flush_cas = flush_cas,
	};
}

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

/* Do 16 bytes at a and b match?  Unaligned loads. */
static inline __attribute__((always_inline)) bool bytes16_equal(
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
static inline __attribute__((always_inline)) bool key_equal(
	const unsigned char *a, const unsigned char *b, size_t n)
{
	uint64_t x, y, u, w;
	uint32_t h, k, l, m;

	if (n >= 16) {
		for (size_t i = 0; i + 16 < n; i += 16)
			if (!bytes16_equal(a + i, b + i))
				return false;
		return bytes16_equal(a + n - 16, b + n - 16);
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
static inline __attribute__((always_inline)) const struct table_item *read_slot(
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
	if (!key_equal((const unsigned char *)(it + 1), rd->key, rd->key_len))
		return NULL;
	*value_len = vlen;
	return it;
}

/* The slot of bucket b that holds rd's key, or -1. */
static inline __attribute__((always_inline)) int read_bucket(
	const struct table *t, const unsigned char *arena,
	const struct table_bucket *b, uint16_t tag, const struct table_read *rd,
	uint32_t *value_len, const struct table_item **item)
{
	for (uint32_t m = bucket_tag_matches(b, tag); m != 0;
	     m = bucket_next_match(m)) {
		uint32_t s = bucket_slot_of_match(m);
		uint32_t ref = __atomic_load_n(&b->refs[s], __ATOMIC_RELAXED);

		*item = read_slot(t, arena, ref, rd, value_len);
		if (*item != NULL)
			return (int)s;
	}
	return -1;
}

/*
 * The rest of a chain, from the overflow bucket link names (a bucket
 * index + 1, checked before use): out of line, since most chains end at
 * their primary bucket.
 */
static __attribute__((noinline)) const struct table_item *read_chain(
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
		s = read_bucket(t, arena, b, tag, rd, value_len, &it);
		if (s >= 0) {
			*where = (struct table_slot){ link - 1, (uint32_t)s };
			return it;
		}
		link = __atomic_load_n(&b->next, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* Walk rd's chain for its key, from its primary bucket. */
static inline __attribute__((always_inline)) const struct table_item *read_probe(
	const struct read_view *v, const struct table_read *rd,
	uint32_t *value_len, struct table_slot *where)
{
	const struct table_bucket *b = &v->buckets[v->bucket];
	const struct table_item *it;
	int s = read_bucket(v->t, v->arena, b, bucket_tag(rd->hash), rd,
			    value_len, &it);

	if (s >= 0) {
		*where = (struct table_slot){ v->bucket, (uint32_t)s };
		return it;
	}
	if (__atomic_load_n(&b->next, __ATOMIC_RELAXED) == 0)
		return NULL;
	return read_chain(v->t, (const unsigned char *)v->buckets,
			  __atomic_load_n(&b->next, __ATOMIC_RELAXED), rd,
			  value_len, where);
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
	const struct read_view *v, struct table_slot where)
{
	_Atomic uint16_t *word = v->used + where.bucket;
	uint16_t bit = (uint16_t)(1u << where.slot);
	uint16_t bits = atomic_load_explicit(word, memory_order_relaxed);

	/* A plain store when the bit is clear: see bucket_mark_used. */
	if ((bits & bit) == 0)
		atomic_store_explicit(word, (uint16_t)(bits | bit),
				      memory_order_relaxed);
}

/* One sequence-checked try: a table_status, or -EAGAIN if it raced. */
static inline __attribute__((always_inline)) int read_try(const struct read_view *v,
							  struct table_read *rd)
{
	const struct table_item *it;
	struct table_slot where;
	uint32_t value_len = 0;
	int st = TABLE_NOT_FOUND;
	/* Acquire pairs with table_writer_end's release store: what the last
	 * writer wrote is visible before we read it. */
	uint32_t before = atomic_load_explicit(v->seq, memory_order_acquire);

	if (before & 1u)
		return -EAGAIN;
	it = read_probe(v, rd, &value_len, &where);
	if (it != NULL && read_alive(v, it)) {
		rd->cas = item_cas(it);
		rd->flags = __atomic_load_n(&it->flags, __ATOMIC_RELAXED);
		rd->value_len = value_len;
		st = TABLE_OK;
		if (rd->buf == NULL)
			;
		else if (value_len <= rd->cap)
			/* The value follows the key read_slot matched, checked
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
		read_mark_used(v, where);
	return st;
}

/* The tries after a first that raced a writer: out of line (rare). */
static __attribute__((noinline, cold)) int read_again(const struct table *t,
						      struct table_read *rd,
						      uint32_t now,
						      uint64_t flush_cas)
{
	struct read_view v;

	read_view_of(t, rd->hash, now, flush_cas, &v);
	for (int tries = 1; tries < LOCKFREE_TRIES; tries++) {
		int st = read_try(&v, rd);

		if (st != -EAGAIN)
			return st;
	}
	return -EAGAIN;
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
	struct read_view v;
	int st;

	if (rd->key_len == 0 || rd->key_len > TABLE_KEY_MAX)
		return TABLE_BAD_KEY;
	read_view_of(t, rd->hash, now, flush_cas, &v);
	/* The CLOCK bits of the primary bucket, which a hit reads: their line
	 * is in the control part, apart from the bucket, and in a table
	 * larger than the caches it misses too; warmed now, that miss
	 * overlaps the bucket's and the item's instead of following them. */
	__builtin_prefetch(v.used + v.bucket);
	st = read_try(&v, rd);
	if (__builtin_expect(st == -EAGAIN, 0))
		return read_again(t, rd, now, flush_cas);
	return st;
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
