/*
 * table.c - the partitioned hash table: layout and memcached's operations
 *
 * Every operation hashes the key once (XXH3_64), takes its partition's
 * LWLock (shared to read, exclusive to change anything) and works inside
 * that one partition; table_ring.c does the bucket and memory work.  Writers
 * also bump the partition's sequence word around their changes, so that a
 * reader that does not lock (a client program) can tell that it raced one.
 *
 * Time is the segment's coarse clock.  flush_all is O(1): it records the
 * CAS counter's value (or the time at which to record it), and every item
 * with a CAS at or below it is treated as gone; the ring reclaims its memory
 * when the tail reaches it.
 *
 * Interface routines: see table.h.
 */
#include "table.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <xxhash.h>

#include "table_internal.h"

#define TABLE_REGION "table"
#define TABLE_CTL_REGION "table.ctl"
#define TABLE_DEFAULT_HINT 128u

struct table_layout {
	uint32_t npartitions;
	uint32_t nbuckets;
	uint32_t noverflow;
	uint32_t max_item_size;
	uint64_t arena_size;
	uint64_t bucket_bytes;
	uint64_t part_bytes;
	uint64_t used_stride;
	uint64_t head_bytes; /* header + partition array */
	uint64_t data_bytes;
	uint64_t ctl_bytes;
};

static uint64_t align64(uint64_t n)
{
	return (n + 63) & ~(uint64_t)63;
}

static bool is_pow2(uint32_t n)
{
	return n != 0 && (n & (n - 1)) == 0;
}

/*
 * Size the buckets for the items the memory can hold at the hinted size,
 * at 80% of their slots, and give what is left to the ring.
 */
static int layout_compute(const struct table_config *cfg, struct table_layout *l)
{
	uint64_t hint = cfg->item_size_hint ? cfg->item_size_hint
					    : TABLE_DEFAULT_HINT;
	uint64_t per;
	uint64_t items;

	memset(l, 0, sizeof(*l));
	l->npartitions = cfg->partitions ? cfg->partitions
					 : TABLE_DEFAULT_PARTITIONS;
	l->max_item_size = cfg->max_item_size ? cfg->max_item_size
					      : TABLE_DEFAULT_MAX_ITEM;
	if (!is_pow2(l->npartitions) || l->npartitions > TABLE_MAX_PARTITIONS)
		return -EINVAL;
	per = cfg->memory / l->npartitions;
	items = per / (hint + sizeof(struct table_item) + 8);
	l->nbuckets = (uint32_t)(items / 8 > UINT32_MAX / 2 ? UINT32_MAX / 2
							    : items / 8);
	if (l->nbuckets == 0)
		l->nbuckets = 1;
	l->noverflow = l->nbuckets / 3 + 1;
	l->bucket_bytes = (uint64_t)(l->nbuckets + l->noverflow) *
			  sizeof(struct table_bucket);
	if (l->bucket_bytes >= per)
		return -EINVAL;
	l->arena_size = (per - l->bucket_bytes) & ~(uint64_t)63;
	if (l->arena_size < item_total_size(TABLE_KEY_MAX, l->max_item_size))
		return -EINVAL;
	if (l->arena_size / TABLE_REF_UNIT > UINT32_MAX)
		return -EINVAL;
	l->part_bytes = l->bucket_bytes + l->arena_size;
	l->used_stride = align64((uint64_t)(l->nbuckets + l->noverflow) *
				 sizeof(uint16_t));
	l->head_bytes = align64(sizeof(struct table_header)) +
			align64((uint64_t)l->npartitions *
				sizeof(struct table_partition));
	l->data_bytes = l->head_bytes + l->npartitions * l->part_bytes;
	l->ctl_bytes = (uint64_t)l->npartitions *
		       (sizeof(union table_partition_ctl) + l->used_stride);
	return 0;
}

int table_layout_size(const struct table_config *cfg, uint64_t *data_bytes,
		      uint64_t *ctl_bytes)
{
	struct table_layout l;
	int rc = layout_compute(cfg, &l);

	if (rc < 0)
		return rc;
	*data_bytes = l.data_bytes;
	*ctl_bytes = l.ctl_bytes;
	return 0;
}

/*
 * The handle's copies of the geometry (struct table); the caller has
 * checked that every partition lies at its stride from the first.
 */
static void handle_init(struct table *t, struct segment *seg,
			struct table_header *hdr, uint64_t ctl_off)
{
	t->seg = seg;
	t->hdr = hdr;
	t->parts = (struct table_partition *)((unsigned char *)hdr +
					      align64(sizeof(struct table_header)));
	t->pctl = (union table_partition_ctl *)(seg->ctl + ctl_off);
	t->npartitions = hdr->npartitions;
	t->nbuckets = hdr->nbuckets;
	t->nbuckets_total = hdr->nbuckets + hdr->noverflow;
	t->chain_max = hdr->noverflow + 1;
	t->arena_size = hdr->arena_size;
	t->bucket_bytes = (uint64_t)t->nbuckets_total *
			  sizeof(struct table_bucket);
	t->part_stride = t->bucket_bytes + hdr->arena_size;
	t->part_base = seg->data + t->parts[0].buckets_offset;
	t->used_base = seg->ctl + hdr->used_offset;
	t->used_stride = hdr->used_stride;
}

/*
 * table_create - carve the table out of seg and initialise every partition
 * empty.  Creator only, before any other process can see the segment.
 */
int table_create(struct table *t, struct segment *seg,
		 const struct table_config *cfg)
{
	struct table_layout l;
	uint64_t data_off = 0;
	uint64_t ctl_off = 0;
	int rc;

	memset(t, 0, sizeof(*t));
	rc = layout_compute(cfg, &l);
	if (rc < 0)
		return rc;
	rc = segment_alloc(seg, SEGMENT_DATA, TABLE_REGION, l.data_bytes,
			   &data_off);
	if (rc < 0)
		return rc;
	rc = segment_alloc(seg, SEGMENT_CTL, TABLE_CTL_REGION, l.ctl_bytes,
			   &ctl_off);
	if (rc < 0)
		return rc;

	struct table_header *hdr = segment_ptr(seg, SEGMENT_DATA, data_off,
					       l.data_bytes);
	if (hdr == NULL ||
	    segment_ptr(seg, SEGMENT_CTL, ctl_off, l.ctl_bytes) == NULL)
		return -EFAULT;
	hdr->npartitions = l.npartitions;
	hdr->nbuckets = l.nbuckets;
	hdr->noverflow = l.noverflow;
	hdr->max_item_size = l.max_item_size;
	hdr->arena_size = l.arena_size;
	hdr->region_size = l.data_bytes;
	hdr->partitions_offset = data_off + align64(sizeof(struct table_header));
	hdr->ctl_offset = ctl_off;
	hdr->used_offset = ctl_off + (uint64_t)l.npartitions *
					     sizeof(union table_partition_ctl);
	hdr->used_stride = l.used_stride;
	atomic_init(&hdr->next_cas, 1);
	atomic_init(&hdr->flush_cas, 0);
	atomic_init(&hdr->flush_at, 0);

	struct table_partition *parts =
		(struct table_partition *)((unsigned char *)hdr +
					   align64(sizeof(struct table_header)));

	for (uint32_t p = 0; p < l.npartitions; p++) {
		uint64_t base = data_off + l.head_bytes + p * l.part_bytes;

		parts[p].buckets_offset = base;
		parts[p].arena_offset = base + l.bucket_bytes;
	}
	handle_init(t, seg, hdr, ctl_off);
	for (uint32_t p = 0; p < l.npartitions; p++) {
		struct table_partition *part = &t->parts[p];
		struct table_bucket *b = segment_ptr(seg, SEGMENT_DATA,
						     part->buckets_offset,
						     l.bucket_bytes);

		/* Thread the overflow buckets into the free list. */
		for (uint32_t i = 0; i < l.noverflow; i++) {
			uint32_t index = l.nbuckets + i;

			b[index].next = i + 1 < l.noverflow ? index + 2 : 0;
		}
		part->free_overflow = l.nbuckets + 1;
		lwlock_init(&t->pctl[p].c.lock);
	}
	/* Written last, so a reader that finds the magic finds the rest. */
	atomic_thread_fence(memory_order_release);
	hdr->magic = TABLE_MAGIC;
	return 0;
}

/*
 * table_open - find the table in a segment created elsewhere, checking
 * every size and offset against the regions before any is used.
 */
int table_open(struct table *t, struct segment *seg)
{
	enum segment_part part;
	uint64_t data_off = 0, data_size = 0, ctl_off = 0, ctl_size = 0;
	struct table_header *hdr;
	struct table_layout l;

	memset(t, 0, sizeof(*t));
	if (segment_find(seg, TABLE_REGION, &part, &data_off, &data_size) < 0 ||
	    part != SEGMENT_DATA)
		return -ENOENT;
	if (segment_find(seg, TABLE_CTL_REGION, &part, &ctl_off, &ctl_size) < 0 ||
	    part != SEGMENT_CTL)
		return -ENOENT;
	hdr = segment_ptr(seg, SEGMENT_DATA, data_off, data_size);
	if (hdr == NULL || data_size < sizeof(*hdr) || hdr->magic != TABLE_MAGIC)
		return -EPROTO;
	if (!is_pow2(hdr->npartitions) ||
	    hdr->npartitions > TABLE_MAX_PARTITIONS || hdr->nbuckets == 0 ||
	    hdr->noverflow > UINT32_MAX - hdr->nbuckets)
		return -EPROTO;

	l.npartitions = hdr->npartitions;
	l.bucket_bytes = (uint64_t)(hdr->nbuckets + hdr->noverflow) *
			 sizeof(struct table_bucket);
	l.used_stride = hdr->used_stride;
	if (l.used_stride < (uint64_t)(hdr->nbuckets + hdr->noverflow) * 2 ||
	    hdr->ctl_offset != ctl_off ||
	    hdr->used_offset !=
		    ctl_off + (uint64_t)l.npartitions *
				      sizeof(union table_partition_ctl) ||
	    ctl_size < (uint64_t)l.npartitions *
			       (sizeof(union table_partition_ctl) + l.used_stride))
		return -EPROTO;
	if (hdr->partitions_offset !=
		    data_off + align64(sizeof(struct table_header)) ||
	    data_size < align64(sizeof(struct table_header)) +
				(uint64_t)l.npartitions *
					sizeof(struct table_partition))
		return -EPROTO;

	/* The ring must hold an item header and its refs must reach all of
	 * it, which the lookups' single bound checks rely on. */
	if (hdr->arena_size < sizeof(struct table_item) ||
	    hdr->arena_size / TABLE_REF_UNIT > UINT32_MAX)
		return -EPROTO;
	/* Every partition at its stride from the first, as table_create lays
	 * them out: the handle keeps only the first and the stride. */
	const struct table_partition *parts =
		(const struct table_partition *)((const unsigned char *)hdr +
						 align64(sizeof(
							 struct table_header)));
	uint64_t first = parts[0].buckets_offset;
	uint64_t stride = l.bucket_bytes + hdr->arena_size;

	for (uint32_t p = 0; p < l.npartitions; p++) {
		const struct table_partition *tp = &parts[p];

		if (first < data_off ||
		    tp->buckets_offset != first + (uint64_t)p * stride ||
		    tp->arena_offset != tp->buckets_offset + l.bucket_bytes ||
		    segment_ptr(seg, SEGMENT_DATA, tp->buckets_offset,
				l.bucket_bytes + hdr->arena_size) == NULL ||
		    tp->arena_offset + hdr->arena_size > data_off + data_size)
			return -EPROTO;
	}
	handle_init(t, seg, hdr, ctl_off);
	return 0;
}

void table_set_owner(struct table *t, const struct lwlock_owner *owner)
{
	t->owner = *owner;
}

uint32_t table_exptime(const struct table *t, int64_t ttl)
{
	int64_t now = segment_clock(t->seg);

	if (ttl == 0)
		return 0;
	if (ttl < 0)
		return 1; /* long past: expired */
	if (ttl > TABLE_RELATIVE_EXPTIME_MAX)
		return ttl <= now
			       ? 1
			       : (ttl > UINT32_MAX ? UINT32_MAX : (uint32_t)ttl);
	return now + ttl > UINT32_MAX ? UINT32_MAX : (uint32_t)(now + ttl);
}

/* A delayed flush that has come due becomes an ordinary one, once. */
static void apply_due_flush(struct table *t, uint32_t now)
{
	uint32_t at = atomic_load_explicit(&t->hdr->flush_at,
					   memory_order_acquire);

	if (at == 0 || now < at || !t->seg->writable)
		return;
	/* Whoever clears flush_at records the cut; pairs with table_flush. */
	if (atomic_compare_exchange_strong(&t->hdr->flush_at, &at, 0)) {
		uint64_t cut = atomic_load(&t->hdr->next_cas) - 1;
		uint64_t old = atomic_load(&t->hdr->flush_cas);

		while (old < cut &&
		       !atomic_compare_exchange_weak(&t->hdr->flush_cas, &old,
						     cut))
			;
	}
}

/*
 * The CAS at or below which items are flushed, as of now.  A delayed
 * flush that has come due is applied here by a server process; a client
 * program, which may not write the header, honours it all the same.
 */
static uint64_t flush_cut(struct table *t, uint32_t now)
{
	apply_due_flush(t, now);
	return table_read_flush_cut(t, now);
}

void table_part_resolve_index(struct table *t, uint32_t index,
			      struct table_part_ref *pr)
{
	unsigned char *base = t->part_base + (uint64_t)index * t->part_stride;

	pr->now = segment_clock(t->seg);
	pr->flush_cas = flush_cut(t, pr->now);
	pr->t = t;
	pr->index = index;
	pr->part = &t->parts[index];
	pr->ctl = &t->pctl[index];
	pr->buckets = (struct table_bucket *)base;
	pr->arena = base + t->bucket_bytes;
	pr->arena_size = t->arena_size;
	pr->nbuckets_total = t->nbuckets_total;
	pr->used = (_Atomic uint16_t *)(t->used_base +
					(uint64_t)index * t->used_stride);
}

void table_part_resolve(struct table *t, uint64_t hash, struct table_part_ref *pr)
{
	table_part_resolve_index(t, table_partition_of(t, hash), pr);
}

uint64_t table_hash(const void *key, size_t key_len)
{
	return XXH3_64bits(key, key_len);
}

/*
 * The writer bracket: the sequence word odd from before the first store of
 * a change to after its last.  Every writer opens it, table_part_lock's
 * exclusive holders and crash recovery's reset alike, so that the
 * lock-free read (table_get_lockfree, the scan) can trust an unchanged
 * even word.  A word left odd by a writer that died stays odd until the
 * next bracket closes it past every value seen.
 */
void table_writer_begin(struct table_partition *part)
{
	uint32_t s = atomic_load_explicit(&part->seq, memory_order_relaxed);

	atomic_store_explicit(&part->seq, s | 1u, memory_order_relaxed);
	/* Orders the odd store before the changes, pairing with a lock-free
	 * reader's acquire fence before its second load. */
	atomic_thread_fence(memory_order_release);
}

void table_writer_end(struct table_partition *part)
{
	uint32_t s = atomic_load_explicit(&part->seq, memory_order_relaxed);

	/* Even again; release orders the changes before it. */
	atomic_store_explicit(&part->seq, (s | 1u) + 1, memory_order_release);
}

void table_part_lock(struct table_part_ref *pr, enum lwlock_mode mode)
{
	lwlock_acquire(&pr->t->owner, &pr->ctl->c.lock, mode);
	if (mode == LW_EXCLUSIVE)
		table_writer_begin(pr->part);
}

void table_part_unlock(struct table_part_ref *pr, enum lwlock_mode mode)
{
	if (mode == LW_EXCLUSIVE)
		table_writer_end(pr->part);
	lwlock_release(&pr->t->owner, &pr->ctl->c.lock);
}

#ifndef NDEBUG
void table_assert_writer(const struct table_part_ref *pr)
{
	assert(lwlock_held_by_me(&pr->t->owner, &pr->ctl->c.lock));
	assert(atomic_load_explicit(&pr->part->seq, memory_order_relaxed) & 1u);
}

void table_assert_locked(const struct table_part_ref *pr)
{
	assert(lwlock_held_by_me(&pr->t->owner, &pr->ctl->c.lock));
}
#endif

/*
 * table_flush - memcached's flush_all: every item stored before the moment
 * `when` names (0 or a time already past = now) is gone from then on.
 */
void table_flush(struct table *t, int64_t when)
{
	uint32_t now = segment_clock(t->seg);
	uint32_t at = when > 0 ? table_exptime(t, when) : 0;

	if (at > now) {
		/* Applied by the first writer or tick that sees it due;
		 * pairs with apply_due_flush. */
		atomic_store_explicit(&t->hdr->flush_at, at,
				      memory_order_release);
		return;
	}
	atomic_store(&t->hdr->flush_at, 0);
	uint64_t cut = atomic_load(&t->hdr->next_cas) - 1;
	uint64_t old = atomic_load(&t->hdr->flush_cas);

	while (old < cut &&
	       !atomic_compare_exchange_weak(&t->hdr->flush_cas, &old, cut))
		;
}

/* table_tick - advance the coarse clock; apply a delayed flush now due. */
void table_tick(struct table *t, uint32_t now)
{
	segment_set_clock(t->seg, now);
	apply_due_flush(t, now);
}

/*
 * table_stats_partition - one partition's counters, read under its lock
 * held shared so that they are consistent with each other.
 */
void table_stats_partition(const struct table *t, uint32_t partition,
			   struct table_stats *out)
{
	struct table_part_ref pr;
	const struct lwlock *lock;

	memset(out, 0, sizeof(*out));
	if (partition >= t->npartitions)
		return;
	table_part_resolve_index((struct table *)t, partition, &pr);
	table_part_lock(&pr, LW_SHARED);
	out->items = pr.part->items;
	out->bytes = pr.part->bytes;
	out->mem_used = pr.part->used;
	out->mem_limit = pr.arena_size;
	out->bucket_bytes = (uint64_t)pr.nbuckets_total *
			    sizeof(struct table_bucket);
	out->evictions = pr.part->evictions;
	out->expirations = pr.part->expirations;
	out->reinserted = pr.part->reinserted;
	out->total_items = pr.part->total_items;
	out->evicted_unfetched = pr.part->evicted_unfetched;
	out->expired_unfetched = pr.part->expired_unfetched;
	out->outofmemory = pr.part->outofmemory;
	out->get_expired = atomic_load_explicit(&pr.part->get_expired,
						memory_order_relaxed);
	out->get_flushed = atomic_load_explicit(&pr.part->get_flushed,
						memory_order_relaxed);
	out->evicted_nonzero = pr.part->evicted_nonzero;
	out->evicted_active = pr.part->evicted_active;
	out->evicted_time = pr.part->evicted_time;
	out->delete_hits = pr.part->delete_hits;
	out->incr_hits = pr.part->incr_hits;
	out->decr_hits = pr.part->decr_hits;
	out->cas_hits = pr.part->cas_hits;
	out->cas_badval = pr.part->cas_badval;
	out->touch_hits = pr.part->touch_hits;
	table_part_unlock(&pr, LW_SHARED);

	lock = &pr.ctl->c.lock;
	out->hits = atomic_load_explicit(&pr.ctl->c.hits, memory_order_relaxed);
	out->misses = atomic_load_explicit(&pr.ctl->c.misses,
					   memory_order_relaxed);
	out->lock_acquisitions = atomic_load_explicit(&lock->acquisitions,
						      memory_order_relaxed);
	out->lock_contended = atomic_load_explicit(&lock->contended,
						   memory_order_relaxed);
	out->lock_wait_ns = atomic_load_explicit(&lock->wait_ns,
						 memory_order_relaxed);
}

void table_stats_total(const struct table *t, struct table_stats *out)
{
	struct table_stats one;

	memset(out, 0, sizeof(*out));
	for (uint32_t p = 0; p < t->npartitions; p++) {
		table_stats_partition(t, p, &one);
		out->items += one.items;
		out->bytes += one.bytes;
		out->mem_used += one.mem_used;
		out->mem_limit += one.mem_limit;
		out->bucket_bytes += one.bucket_bytes;
		out->hits += one.hits;
		out->misses += one.misses;
		out->evictions += one.evictions;
		out->expirations += one.expirations;
		out->reinserted += one.reinserted;
		out->total_items += one.total_items;
		out->evicted_unfetched += one.evicted_unfetched;
		out->expired_unfetched += one.expired_unfetched;
		out->outofmemory += one.outofmemory;
		out->get_expired += one.get_expired;
		out->get_flushed += one.get_flushed;
		out->evicted_nonzero += one.evicted_nonzero;
		out->evicted_active += one.evicted_active;
		out->delete_hits += one.delete_hits;
		out->incr_hits += one.incr_hits;
		out->decr_hits += one.decr_hits;
		out->cas_hits += one.cas_hits;
		out->cas_badval += one.cas_badval;
		out->touch_hits += one.touch_hits;
		out->lock_acquisitions += one.lock_acquisitions;
		out->lock_contended += one.lock_contended;
		out->lock_wait_ns += one.lock_wait_ns;
	}
}

void table_stats_reset(struct table *t)
{
	/* The cumulative counters lie together, evictions to touch_hits
	 * (table_internal.h); items and bytes before them are contents. */
	size_t from = offsetof(struct table_partition, evictions);
	size_t to = offsetof(struct table_partition, reserved);
	struct table_part_ref pr;

	if (!t->seg->writable)
		return;
	for (uint32_t p = 0; p < t->npartitions; p++) {
		table_part_resolve_index(t, p, &pr);
		table_part_lock(&pr, LW_EXCLUSIVE);
		/* The atomic ones among them are added to under the lock held
		 * shared, which this excludes, as are the control part's. */
		memset((unsigned char *)pr.part + from, 0, to - from);
		atomic_store_explicit(&pr.ctl->c.hits, 0, memory_order_relaxed);
		atomic_store_explicit(&pr.ctl->c.misses, 0, memory_order_relaxed);
		table_part_unlock(&pr, LW_EXCLUSIVE);
	}
}
