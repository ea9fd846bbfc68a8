/*
 * table_internal.h - the table's shared-memory layout, for table*.c only
 *
 * Data part, region "table":
 *   struct table_header
 *   struct table_partition[P]                 four cache lines each
 *   per partition: buckets[nbuckets + noverflow], then the item ring
 * Control part, region "table.ctl":
 *   union table_partition_ctl[P]              LWLock and hit counters
 *   per partition: uint16_t used_bits[nbuckets + noverflow]
 *
 * A bucket is one cache line: ten 16-bit hash tags beside ten 32-bit item
 * references, and the index of an overflow bucket.  A miss usually reads one
 * line; a hit one line plus the item.
 *
 * Items live in a per-partition ring, appended at head and reclaimed at
 * tail: no allocator rounding beyond 4 bytes, no free lists, and eviction
 * order close to insertion order.  The LRU approximation is CLOCK on the
 * ring: an item read since it was written has its bit set in used_bits
 * (control part, so client programs reading directly can set it too) and is
 * copied to the head instead of being evicted when the tail reaches it.
 */
#ifndef SHMKV_TABLE_INTERNAL_H
#define SHMKV_TABLE_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "lwlock.h"
#include "table.h"

#define TABLE_MAGIC UINT64_C(0x656c6261746b7673) /* "svktable" */
#define TABLE_BUCKET_SLOTS 10u
#define TABLE_ITEM_ALIGN 4u
#define TABLE_REF_UNIT 4u /* item refs count 4-byte units of the ring */
#define TABLE_MAX_PARTITIONS 65536u
/* How much of an item a batch warms before it looks it up: header, a
 * 32-byte key and a 100-byte value, the benchmarks' and a typical size. */
#define TABLE_PREFETCH_ITEM_BYTES 160u
_Static_assert(TABLE_PREFETCH_ITEM_BYTES > 128 && TABLE_PREFETCH_ITEM_BYTES <= 192,
	       "batch_warm_items: 4 lines");

/* item state: a kind in the low bits, flags above */
#define ITEM_KIND_MASK 0x03u
#define ITEM_LIVE 0x01u
#define ITEM_DEAD 0x02u	      /* deleted, replaced or evicted: skip at tail */
#define ITEM_PAD 0x03u	      /* filler up to the ring's end */
#define ITEM_FETCHED 0x10u    /* fetched since stored (mg h) */
#define ITEM_STALE 0x20u      /* invalidated (md/ms I) */
#define ITEM_TOKEN_SENT 0x40u /* someone won the right to recache */
#define ITEM_KEY_BINARY 0x80u /* stored by ms with b: mg's k gives it base64 */
/* Expired or flushed, and a lookup has counted it (table_count_found_dead):
 * memcached would have unlinked it there, so nothing counts it again. */
#define ITEM_MISS_COUNTED 0x08u

struct table_header {
	uint64_t magic;
	uint32_t npartitions;
	uint32_t nbuckets;  /* primary buckets per partition */
	uint32_t noverflow; /* overflow buckets per partition */
	uint32_t max_item_size;
	uint64_t arena_size;	    /* ring bytes per partition */
	uint64_t region_size;	    /* bytes of the "table" region */
	uint64_t partitions_offset; /* data part */
	uint64_t ctl_offset;	    /* control part: table_partition_ctl[P] */
	uint64_t used_offset;	    /* control part: used bits, per partition */
	uint64_t used_stride;	    /* bytes of used bits per partition */
	_Atomic uint64_t flush_cas; /* items with cas <= flush_cas are flushed */
	_Atomic uint32_t flush_at;  /* a delayed flush pending at this time */
	uint32_t reserved;
	/* On a line of its own: every store bumps it, while every lookup
	 * reads flush_cas and flush_at, which would otherwise miss after
	 * each store of any process. */
	_Alignas(64) _Atomic uint64_t next_cas;
};

/* One partition's bookkeeping in the data part; written under its lock
 * held exclusive, read under it held shared. */
struct table_partition {
	_Atomic uint32_t seq;	 /* odd while a writer changes the partition */
	uint32_t free_overflow;	 /* first free overflow bucket index + 1 */
	uint64_t buckets_offset; /* data part */
	uint64_t arena_offset;	 /* data part */
	uint64_t head;		 /* next byte to write in the ring */
	uint64_t tail;		 /* oldest byte still in use */
	uint64_t used;		 /* bytes between tail and head */
	uint64_t dead_bytes;	 /* of those, bytes of dead items and pads */
	uint64_t items;
	uint64_t bytes;
	/* Cumulative counters from here to reserved (table_stats_reset). */
	uint64_t evictions;
	uint64_t expirations;
	uint64_t reinserted;
	uint64_t total_items;
	uint64_t evicted_unfetched; /* evictions of items never read */
	uint64_t expired_unfetched; /* expirations of items never read */
	uint64_t outofmemory;	    /* allocations that found no room */
	/* Lookups that found their key's item expired or flushed (memcached's
	 * get_expired, get_flushed): also counted under the lock held shared,
	 * hence atomic; see table_count_found_dead. */
	_Atomic uint64_t get_expired;
	_Atomic uint64_t get_flushed;
	/* Evictions (memcached's per class): of items with a TTL, of items read
	 * since their last second chance, and the idle seconds of the last. */
	uint64_t evicted_nonzero;
	uint64_t evicted_active;
	uint64_t evicted_time;
	/* Commands that found their item (memcached's per-class slab stats). */
	uint64_t delete_hits;
	uint64_t incr_hits;
	uint64_t decr_hits;
	uint64_t cas_hits;
	uint64_t cas_badval;
	uint64_t touch_hits;
	uint64_t reserved[5]; /* to 256 bytes */
};
_Static_assert(sizeof(struct table_partition) % 64 == 0,
	       "partitions start on cache lines");

struct table_bucket {
	uint16_t tags[TABLE_BUCKET_SLOTS]; /* 0 = empty slot */
	uint32_t refs[TABLE_BUCKET_SLOTS]; /* ring offset / TABLE_REF_UNIT */
	uint32_t next; /* overflow bucket index + 1, 0 = none */
};
_Static_assert(sizeof(struct table_bucket) == TABLE_BUCKET_BYTES,
	       "a bucket is a cache line");

union table_partition_ctl {
	struct {
		struct lwlock lock;
		_Atomic uint64_t hits;
		_Atomic uint64_t misses;
	} c;
	char pad[LWLOCK_PADDED_SIZE];
};

/*
 * An item in the ring, 4-byte aligned: 24 bytes of header, then the key,
 * then the value.  The CAS is split in two words so the header needs only
 * 4-byte alignment, which saves up to 4 bytes per item.
 */
struct table_item {
	uint32_t value_len;
	uint32_t flags;
	uint32_t exptime; /* absolute Unix seconds, 0 = never */
	uint32_t cas_lo;
	uint32_t cas_hi;
	uint8_t key_len;
	uint8_t state;	/* ITEM_* ; flags set by shared holders atomically */
	uint16_t atime; /* low 16 bits of the clock at last access */
};
_Static_assert(sizeof(struct table_item) == 24, "item header is 24 bytes");

/* Where an operation found its key: bucket index and slot. */
struct table_slot {
	uint32_t bucket;
	uint32_t slot;
};

/* Everything an operation needs about its partition, resolved once. */
struct table_part_ref {
	struct table *t;
	uint32_t index;
	struct table_partition *part;
	union table_partition_ctl *ctl;
	struct table_bucket *buckets;
	unsigned char *arena;
	_Atomic uint16_t *used;
	uint32_t nbuckets_total;
	uint64_t arena_size;
	uint32_t now;
	uint64_t flush_cas; /* effective now: pending delayed flush included */
};

static inline uint64_t item_cas(const struct table_item *it)
{
	return ((uint64_t)it->cas_hi << 32) | it->cas_lo;
}

static inline void item_set_cas(struct table_item *it, uint64_t cas)
{
	it->cas_lo = (uint32_t)cas;
	it->cas_hi = (uint32_t)(cas >> 32);
}

static inline uint64_t item_total_size(uint32_t key_len, uint64_t value_len)
{
	uint64_t n = sizeof(struct table_item) + key_len + value_len;

	return (n + TABLE_ITEM_ALIGN - 1) & ~(uint64_t)(TABLE_ITEM_ALIGN - 1);
}

static inline unsigned char *item_key(struct table_item *it)
{
	return (unsigned char *)(it + 1);
}

static inline unsigned char *item_value(struct table_item *it)
{
	return (unsigned char *)(it + 1) + it->key_len;
}

static inline uint8_t item_state(const struct table_item *it)
{
	/* Shared holders OR flags into state concurrently; pairs with
	 * item_set_state_flag. */
	return __atomic_load_n(&it->state, __ATOMIC_RELAXED);
}

/* An expired or flushed item is reclaimed (memcached's reclaimed and
 * expired_unfetched), unless a lookup has counted it already; the
 * partition's lock is held exclusive. */
static inline void table_count_expired(struct table_partition *p,
				       const struct table_item *it)
{
	if (item_state(it) & ITEM_MISS_COUNTED)
		return;
	p->expirations++;
	if (!(item_state(it) & ITEM_FETCHED))
		p->expired_unfetched++;
}

/* A live item is evicted (evictions and memcached's evicted_*); active: it
 * was read since its last second chance.  Lock exclusive. */
static inline void table_count_evicted(struct table_partition *p,
				       const struct table_item *it,
				       uint32_t now, bool active)
{
	p->evictions++;
	if (!(item_state(it) & ITEM_FETCHED))
		p->evicted_unfetched++;
	if (it->exptime != 0)
		p->evicted_nonzero++;
	if (active)
		p->evicted_active++;
	/* atime keeps the clock's low 16 bits: idle times wrap at 18 hours. */
	p->evicted_time = (uint16_t)((uint16_t)now - it->atime);
}

static inline void item_set_state_flag(struct table_item *it, uint8_t flag)
{
	/* Only ever sets bits, so concurrent setters under a shared lock cannot
	 * lose each other's work; the exclusive holder reads with item_state.
	 * Read first: every hit after an item's first sets FETCHED again, and
	 * a bit already set then costs no locked instruction. */
	if ((item_state(it) & flag) != flag)
		__atomic_fetch_or(&it->state, flag, __ATOMIC_RELAXED);
}

/*
 * The flush cut-off as a reader that may not write sees it: a delayed
 * flush that has come due counts as applied.  table.c's flush_cut applies
 * it first where the mapping may be written, then reads the same way.
 */
static inline uint64_t table_read_flush_cut(const struct table *t, uint32_t now)
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

/* The most buckets a chain can have: its primary and every overflow one.
 * A walk stops there, so a corrupt link cannot loop it. */
static inline uint32_t table_chain_max(const struct table *t)
{
	return t->chain_max;
}

/* bucket_tag - the 16 hash bits kept in a bucket slot; never 0 (= empty). */
static inline uint16_t bucket_tag(uint64_t hash)
{
	uint16_t tag = (uint16_t)(hash >> 32);

	return tag ? tag : 1;
}

/*
 * bucket_tag_matches - which slots of b hold tag: bit 2s (and 2s+1) for
 * slot s, so bucket_slot_of_match turns the lowest set bit into a slot.
 * Two 16-byte compares cover the ten tags (bytes 0-15 and 4-19, both inside
 * the bucket), with no branch per slot; the scalar loop builds the same
 * mask elsewhere.  The tags may be changing under a lock-free reader: a
 * torn mask only sends it to a slot it checks like any other.
 */
static inline uint32_t bucket_tag_matches(const struct table_bucket *b,
					  uint16_t tag)
{
#if defined(__SSE2__)
	__m128i want = _mm_set1_epi16((short)tag);
	__m128i lo = _mm_loadu_si128((const __m128i *)(const void *)b->tags);
	__m128i hi = _mm_loadu_si128((const __m128i *)(const void *)(b->tags + 2));
	uint32_t mlo = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi16(lo, want));
	uint32_t mhi = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi16(hi, want));

	return mlo | (mhi << 4);
#else
	uint32_t m = 0;

	for (uint32_t s = 0; s < TABLE_BUCKET_SLOTS; s++)
		m |= (uint32_t)(b->tags[s] == tag) << (2 * s);
	return m | (m << 1);
#endif
}

static inline uint32_t bucket_slot_of_match(uint32_t m)
{
	return (uint32_t)__builtin_ctz(m) / 2;
}

/* Drop the lowest match (both of its bits) from a bucket_tag_matches mask. */
static inline uint32_t bucket_next_match(uint32_t m)
{
	return m & ~(3u << (__builtin_ctz(m) & ~1u));
}

/* Does [at, at+len) lie inside the partition's ring? */
static inline bool ring_range_ok(const struct table_part_ref *pr,
				 const unsigned char *at, uint64_t len)
{
	return at >= pr->arena && at <= pr->arena + pr->arena_size &&
	       len <= (uint64_t)(pr->arena + pr->arena_size - at);
}

/* table.c */
void table_part_resolve_index(struct table *t, uint32_t index,
			      struct table_part_ref *pr);
void table_part_resolve(struct table *t, uint64_t hash,
			struct table_part_ref *pr);
void table_part_lock(struct table_part_ref *pr, enum lwlock_mode mode);
void table_part_unlock(struct table_part_ref *pr, enum lwlock_mode mode);
/* The writer bracket (table.h, "The read contract"). */
void table_writer_begin(struct table_partition *part);
void table_writer_end(struct table_partition *part);
/* Debug builds: the caller holds the partition's lock exclusive inside
 * the bracket (writer), or holds it at all (locked). */
#ifdef NDEBUG
static inline void table_assert_writer(const struct table_part_ref *pr)
{
	(void)pr;
}
static inline void table_assert_locked(const struct table_part_ref *pr)
{
	(void)pr;
}
#else
void table_assert_writer(const struct table_part_ref *pr);
void table_assert_locked(const struct table_part_ref *pr);
#endif

/* table_ring.c */
struct table_item *ring_item(const struct table_part_ref *pr, uint32_t ref);
int bucket_find(const struct table_part_ref *pr, uint64_t hash, const void *key,
		size_t key_len, struct table_slot *where,
		struct table_item **item);
bool ring_item_alive(const struct table_part_ref *pr,
		     const struct table_item *it);
int ring_alloc(struct table_part_ref *pr, uint64_t size, uint64_t *offset,
	       uint64_t *pinned);
int bucket_link(struct table_part_ref *pr, uint64_t hash, uint64_t offset);
void bucket_unlink(struct table_part_ref *pr, struct table_slot where,
		   struct table_item *it);
void bucket_replace(struct table_part_ref *pr, struct table_slot where,
		    struct table_item *old, uint64_t offset);
void bucket_mark_used(const struct table_part_ref *pr, struct table_slot where);
uint32_t bucket_index(const struct table_part_ref *pr, uint64_t hash);

#endif
