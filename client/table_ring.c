/*
 * table_ring.c - one partition's buckets and its ring of item memory
 *
 * Items are appended at the ring's head and reclaimed at its tail.  When an
 * allocation does not fit, the tail item is examined: dead items and pads
 * are simply passed; expired or flushed items are unlinked and counted as
 * expirations; a live item that was read since it was written (its bit in
 * used_bits is set), or any live item while enough dead bytes lie further
 * on to satisfy the allocation, is copied to the head (CLOCK's second
 * chance, and compaction); any other live item is evicted.
 *
 * NOTE: a slab allocator with per-class LRU lists (memcached's way) was
 * rejected: it needs two list links per item and rounds every item up to a
 * slab class, while the ring costs nothing per item beyond the 4-byte
 * alignment and keeps eviction a sequential walk.  The price is that dead
 * space is reclaimed only when the tail reaches it; the compaction rule
 * above keeps live items from being evicted while dead space would do.
 *
 * Two prefixes, one per structure: bucket_* work on a bucket's chain of
 * slots (find a key, link, unlink or replace an item, the CLOCK bit, the
 * tag), ring_* on the ring of item memory (allocate, resolve a ref, check
 * an item).
 *
 * All of this runs with the partition's lock held exclusive, except
 * bucket_find, ring_item_alive and bucket_mark_used, which also run shared.
 *
 * Interface routines (table_internal.h): bucket_find, ring_item_alive,
 * ring_alloc, bucket_link, bucket_unlink, bucket_replace, bucket_mark_used,
 * bucket_index, ring_item (bucket_tag is inline, in table_internal.h).
 */
#include <errno.h>
#include <string.h>

#include "table_internal.h"

/* How much a single allocation may copy to keep items alive. */
#define RING_COMPACT_ITEMS 16u
#define RING_REINSERT_BYTES (256u * 1024u)
/* Dead space, as a fraction of the ring, that makes live items move. */
#define RING_COMPACT_FRACTION 8u

/* bucket_index - the primary bucket; multiply-shift so any count works. */
uint32_t bucket_index(const struct table_part_ref *pr, uint64_t hash)
{
	return table_bucket_of(pr->t, hash);
}

/*
 * ring_item - the item a slot refers to, or NULL if the reference or the
 * lengths in the item's header would reach past the ring.
 */
struct table_item *ring_item(const struct table_part_ref *pr, uint32_t ref)
{
	uint64_t off = (uint64_t)ref * TABLE_REF_UNIT;
	struct table_item *it;

	if (off > pr->arena_size ||
	    pr->arena_size - off < sizeof(struct table_item))
		return NULL;
	it = (struct table_item *)(pr->arena + off);
	if (item_total_size(it->key_len, it->value_len) > pr->arena_size - off)
		return NULL;
	return it;
}

static struct table_bucket *bucket_at(const struct table_part_ref *pr,
				      uint32_t index)
{
	return index < pr->nbuckets_total ? &pr->buckets[index] : NULL;
}

/* The next bucket of a chain, or NULL at its end (or on a bad link). */
static uint32_t bucket_next(const struct table_part_ref *pr,
			    const struct table_bucket *b)
{
	uint32_t next = b->next;

	if (next == 0 || next > pr->nbuckets_total)
		return UINT32_MAX;
	return next - 1;
}

/* ring_item_alive - live, not expired, not flushed. */
bool ring_item_alive(const struct table_part_ref *pr, const struct table_item *it)
{
	if ((item_state(it) & ITEM_KIND_MASK) != ITEM_LIVE)
		return false;
	if (it->exptime != 0 && it->exptime <= pr->now)
		return false;
	if (pr->flush_cas != 0 && item_cas(it) <= pr->flush_cas)
		return false;
	return true;
}

/* What chain_find looks for: a key, or the slot referring to an item. */
struct chain_target {
	const void *key; /* NULL: match by ref */
	size_t key_len;
	uint32_t ref;
	struct table_item *item; /* out, for a key */
};

static bool slot_matches(const struct table_part_ref *pr, uint32_t ref,
			 struct chain_target *want)
{
	struct table_item *it;

	if (want->key == NULL)
		return ref == want->ref;
	it = ring_item(pr, ref);
	/* A lock-free reader may race a writer: key_len can change after
	 * ring_item checked it, so the compare is bounded by the length it
	 * uses, not the one ring_item saw. */
	if (it == NULL || it->key_len != want->key_len ||
	    !ring_range_ok(pr, item_key(it), want->key_len) ||
	    memcmp(item_key(it), want->key, want->key_len) != 0)
		return false;
	want->item = it;
	return true;
}

/*
 * Walk hash's bucket chain for a slot with its tag that matches want.
 * The walk is bounded by the number of buckets, so a corrupt link cannot
 * loop forever.  0 with the slot, or -ENOENT.
 */
static int chain_find(const struct table_part_ref *pr, uint64_t hash,
		      struct chain_target *want, struct table_slot *where)
{
	uint16_t tag = bucket_tag(hash);
	uint32_t index = bucket_index(pr, hash);

	for (uint32_t hops = 0; hops < table_chain_max(pr->t); hops++) {
		const struct table_bucket *b = bucket_at(pr, index);

		if (b == NULL)
			break;
		for (uint32_t s = 0; s < TABLE_BUCKET_SLOTS; s++) {
			if (b->tags[s] != tag ||
			    !slot_matches(pr, b->refs[s], want))
				continue;
			where->bucket = index;
			where->slot = s;
			return 0;
		}
		index = bucket_next(pr, b);
		if (index == UINT32_MAX)
			break;
	}
	return -ENOENT;
}

/*
 * bucket_find - find key in its bucket chain.  Returns 0 with the slot and the
 * item (alive or not: callers judge), or -ENOENT.
 */
int bucket_find(const struct table_part_ref *pr, uint64_t hash, const void *key,
		size_t key_len, struct table_slot *where,
		struct table_item **item)
{
	struct chain_target want = { .key = key, .key_len = key_len };

	if (chain_find(pr, hash, &want, where) < 0)
		return -ENOENT;
	*item = want.item;
	return 0;
}

/* bucket_mark_used - set the slot's CLOCK bit, as a read does. */
void bucket_mark_used(const struct table_part_ref *pr, struct table_slot where)
{
	_Atomic uint16_t *word = &pr->used[where.bucket];
	uint16_t bit = (uint16_t)(1u << where.slot);

	uint16_t bits = atomic_load_explicit(word, memory_order_relaxed);

	/* Read first: a bit already set costs no write to a shared line.  A
	 * plain store, not a locked OR: the bits are only CLOCK's hint, so a
	 * store racing another reader's (a bit lost: that item one round
	 * older) or the exclusive holder's clear in slot_clear_used (a bit
	 * kept: one round younger) costs nothing that matters, and a lookup
	 * needs no locked instruction. */
	if ((bits & bit) == 0)
		atomic_store_explicit(word, (uint16_t)(bits | bit),
				      memory_order_relaxed);
}

static bool slot_used(const struct table_part_ref *pr, struct table_slot w)
{
	return (atomic_load_explicit(&pr->used[w.bucket], memory_order_relaxed) >>
		w.slot) &
	       1u;
}

static void slot_clear_used(const struct table_part_ref *pr, struct table_slot w)
{
	atomic_fetch_and_explicit(&pr->used[w.bucket], (uint16_t) ~(1u << w.slot),
				  memory_order_relaxed);
}

static void item_mark_dead(struct table_part_ref *pr, struct table_item *it)
{
	uint8_t st = item_state(it);

	__atomic_store_n(&it->state,
			 (uint8_t)((st & ~ITEM_KIND_MASK) | ITEM_DEAD),
			 __ATOMIC_RELAXED);
	pr->part->dead_bytes += item_total_size(it->key_len, it->value_len);
}

/* Empty a slot and count its item dead; the bucket stays where it is. */
static void slot_clear(struct table_part_ref *pr, struct table_slot where,
		       struct table_item *it)
{
	struct table_bucket *b = &pr->buckets[where.bucket];

	b->tags[where.slot] = 0;
	b->refs[where.slot] = 0;
	slot_clear_used(pr, where);
	pr->part->items--;
	pr->part->bytes -= it->key_len + (uint64_t)it->value_len;
	item_mark_dead(pr, it);
}

/*
 * An overflow bucket that became empty goes back to the free list, so that
 * overflow space follows the keys instead of staying with the chains that
 * once needed it.  hash is the hash of a key whose chain it is on.
 */
static void overflow_recycle(struct table_part_ref *pr, uint64_t hash,
			     uint32_t index)
{
	struct table_bucket *b = &pr->buckets[index];
	uint32_t prev = bucket_index(pr, hash);

	if (index < pr->t->nbuckets)
		return;
	for (uint32_t s = 0; s < TABLE_BUCKET_SLOTS; s++)
		if (b->tags[s] != 0)
			return;
	for (uint32_t hops = 0; hops < table_chain_max(pr->t); hops++) {
		struct table_bucket *pb = bucket_at(pr, prev);

		if (pb == NULL)
			return;
		if (pb->next == index + 1) {
			pb->next = b->next;
			b->next = pr->part->free_overflow;
			pr->part->free_overflow = index + 1;
			return;
		}
		prev = bucket_next(pr, pb);
		if (prev == UINT32_MAX)
			return;
	}
}

/* bucket_unlink - empty the slot, count the item dead, and give back an
 * overflow bucket left empty. */
void bucket_unlink(struct table_part_ref *pr, struct table_slot where,
		   struct table_item *it)
{
	uint64_t hash = table_hash(item_key(it), it->key_len);

	table_assert_writer(pr);
	slot_clear(pr, where, it);
	overflow_recycle(pr, hash, where.bucket);
}

/* bucket_replace - point the slot at a new item for the same key; the new
 * item starts unread, as a fresh one does. */
void bucket_replace(struct table_part_ref *pr, struct table_slot where,
		    struct table_item *old, uint64_t offset)
{
	struct table_item *it = (struct table_item *)(pr->arena + offset);

	table_assert_writer(pr);
	pr->buckets[where.bucket].refs[where.slot] = (uint32_t)(offset /
								TABLE_REF_UNIT);
	slot_clear_used(pr, where);
	pr->part->bytes -= old->key_len + (uint64_t)old->value_len;
	pr->part->bytes += it->key_len + (uint64_t)it->value_len;
	item_mark_dead(pr, old);
}

/* Locate the slot that refers to the item at offset, by its key's hash. */
static int slot_of(const struct table_part_ref *pr, struct table_item *it,
		   uint64_t offset, struct table_slot *where)
{
	struct chain_target want = {
		.ref = (uint32_t)(offset / TABLE_REF_UNIT),
	};

	return chain_find(pr, table_hash(item_key(it), it->key_len), &want,
			  where);
}

static void tail_advance(struct table_part_ref *pr, uint64_t n)
{
	struct table_partition *p = pr->part;

	p->tail += n;
	if (p->tail >= pr->arena_size)
		p->tail = 0;
	p->used -= n;
}

/* What one allocation may spend on keeping items alive. */
struct reclaim_budget {
	uint32_t compact_items; /* moves of unread items, for compaction */
	uint64_t bytes;		/* bytes all second-chance moves may copy */
	uint64_t *pinned;	/* an item that must survive, or NULL */
	uint32_t pinned_moves;
	uint64_t kept_bytes; /* with no_evict: live bytes moved, not evicted */
};

/* Move the tail item to the head: the head is at or before the tail and the
 * item ends inside the ring, so the move stays inside it; memmove because
 * the ranges overlap when the gap is smaller than the item. */
static uint64_t move_tail_to_head(struct table_part_ref *pr,
				  struct table_slot where, uint64_t total)
{
	struct table_partition *p = pr->part;
	uint64_t to = p->head;

	memmove(pr->arena + to, pr->arena + p->tail, total);
	pr->buckets[where.bucket].refs[where.slot] = (uint32_t)(to /
								TABLE_REF_UNIT);
	slot_clear_used(pr, where);
	p->head += total;
	p->tail += total;
	if (p->tail >= pr->arena_size)
		p->tail = 0;
	if (p->head >= pr->arena_size)
		p->head = 0;
	p->reinserted++;
	return to;
}

/*
 * Reclaim or move the item at the tail.  Called only when the ring is
 * wrapped (head <= tail) and the gap between them is too small.  Returns
 * -ENOMEM only with t->no_evict (-M), when the tail item is live and every
 * live byte has gone round the ring once already: there is no room that
 * evicting nothing could make.
 */
static int reclaim_tail(struct table_part_ref *pr, uint64_t want,
			struct reclaim_budget *budget)
{
	struct table_partition *p = pr->part;
	uint64_t at = p->tail;
	uint64_t rest = pr->arena_size - at;
	struct table_item *it;
	struct table_slot where;
	uint64_t total;

	if (rest < sizeof(struct table_item)) {
		/* An implicit pad: too short to hold a pad header. */
		p->dead_bytes -= rest;
		tail_advance(pr, rest);
		return 0;
	}
	it = ring_item(pr, (uint32_t)(at / TABLE_REF_UNIT));
	if (it == NULL) {
		/* A header that reaches past the ring: the partition's memory is
		 * not what this code wrote.  Drop everything from here to the end
		 * rather than trust it. */
		p->dead_bytes = p->dead_bytes > rest ? p->dead_bytes - rest : 0;
		tail_advance(pr, rest);
		return 0;
	}
	total = item_total_size(it->key_len, it->value_len);
	if ((item_state(it) & ITEM_KIND_MASK) != ITEM_LIVE ||
	    slot_of(pr, it, at, &where) < 0) {
		p->dead_bytes -= total <= p->dead_bytes ? total : p->dead_bytes;
		tail_advance(pr, total);
		return 0;
	}
	if (budget->pinned != NULL && *budget->pinned == at) {
		/* The caller still needs this item (an append's old value). */
		*budget->pinned = move_tail_to_head(pr, where, total);
		budget->pinned_moves++;
		return 0;
	}
	if (!ring_item_alive(pr, it)) {
		table_count_expired(p, it);
		bucket_unlink(pr, where, it);
		p->dead_bytes -= total;
		tail_advance(pr, total);
		return 0;
	}

	/* Read since written: a second chance.  Unread, but enough dead space
	 * lies ahead that moving it beats evicting it: compaction, which is
	 * only worth its copying when the dead space is a real share of the
	 * ring, and is limited separately so it cannot use up the budget
	 * that read items need. */
	bool used = slot_used(pr, where);
	bool compact = !used && budget->compact_items > 0 &&
		       p->dead_bytes >= want &&
		       p->dead_bytes >= pr->arena_size / RING_COMPACT_FRACTION;

	if ((used || compact) && budget->bytes >= total) {
		move_tail_to_head(pr, where, total);
		budget->bytes -= total;
		if (compact)
			budget->compact_items--;
		return 0;
	}
	if (pr->t->no_evict) {
		/* -M: move it instead (compaction); once every live byte has
		 * moved, the ring holds nothing but live items. */
		if (budget->kept_bytes > p->used)
			return -ENOMEM;
		budget->kept_bytes += total;
		move_tail_to_head(pr, where, total);
		return 0;
	}
	table_count_evicted(p, it, pr->now, used);
	bucket_unlink(pr, where, it);
	p->dead_bytes -= total;
	tail_advance(pr, total);
	return 0;
}

/* Fill the ring's end with a pad so the next item starts at offset 0. */
static void pad_to_end(struct table_part_ref *pr)
{
	struct table_partition *p = pr->part;
	uint64_t n = pr->arena_size - p->head;

	if (n >= sizeof(struct table_item)) {
		struct table_item *pad = (struct table_item *)(pr->arena +
							       p->head);

		memset(pad, 0, sizeof(*pad));
		pad->value_len = (uint32_t)(n - sizeof(struct table_item));
		pad->state = ITEM_PAD;
	}
	p->used += n;
	p->dead_bytes += n;
	p->head = 0;
}

/*
 * ring_alloc - reserve size bytes (a multiple of TABLE_ITEM_ALIGN) at the
 * head.  May evict, expire or move other items of the partition, so any item
 * address the caller held is stale afterwards: find it again.  If pinned is
 * not NULL it holds the offset of an item that must survive; it is moved
 * rather than evicted, and *pinned follows it.  -ENOMEM if size (with the
 * pinned item) exceeds the ring.
 */
int ring_alloc(struct table_part_ref *pr, uint64_t size, uint64_t *offset,
	       uint64_t *pinned)
{
	struct table_partition *p = pr->part;
	struct reclaim_budget budget = {
		.compact_items = RING_COMPACT_ITEMS,
		.bytes = size * 2 > RING_REINSERT_BYTES ? size * 2
							: RING_REINSERT_BYTES,
		.pinned = pinned,
	};

	table_assert_writer(pr);
	if (size > pr->arena_size)
		goto no_room;
	if (pinned != NULL) {
		const struct table_item *keep =
			ring_item(pr, (uint32_t)(*pinned / TABLE_REF_UNIT));

		if (keep == NULL ||
		    size + item_total_size(keep->key_len, keep->value_len) >
			    pr->arena_size)
			goto no_room;
	}
	for (;;) {
		if (p->used == 0) {
			p->head = 0;
			p->tail = 0;
			p->dead_bytes = 0;
		}
		if (p->used == 0 || p->head > p->tail) {
			if (pr->arena_size - p->head >= size)
				break;
			pad_to_end(pr);
			continue;
		}
		/* Wrapped, or full (head == tail): the gap is [head, tail). */
		if (p->tail - p->head >= size)
			break;
		/* Three trips round the ring with the pinned item in it place
		 * every other item behind it: more means the space is not
		 * there in one piece. */
		if (budget.pinned_moves > 3 ||
		    reclaim_tail(pr, size - (p->tail - p->head), &budget) < 0)
			goto no_room;
	}
	*offset = p->head;
	p->head += size;
	if (p->head >= pr->arena_size)
		p->head = 0;
	p->used += size;
	return 0;
no_room:
	p->outofmemory++;
	return -ENOMEM;
}

/* Take a free overflow bucket and hang it after last; UINT32_MAX if none. */
static uint32_t overflow_take(struct table_part_ref *pr, struct table_bucket *last)
{
	struct table_partition *p = pr->part;
	uint32_t index;
	struct table_bucket *b;

	if (p->free_overflow == 0 || p->free_overflow > pr->nbuckets_total)
		return UINT32_MAX;
	index = p->free_overflow - 1;
	b = &pr->buckets[index];
	p->free_overflow = b->next;
	memset(b, 0, sizeof(*b));
	last->next = index + 1;
	return index;
}

/* How far an item is from the tail: the smaller, the sooner it goes. */
static uint64_t ring_age_rank(const struct table_part_ref *pr, uint32_t ref)
{
	uint64_t off = (uint64_t)ref * TABLE_REF_UNIT;

	return (off + pr->arena_size - pr->part->tail) % pr->arena_size;
}

/* A better victim is unread rather than read, then nearer the tail. */
static bool victim_better(const struct table_part_ref *pr, struct table_slot a,
			  struct table_slot b)
{
	bool ua = slot_used(pr, a), ub = slot_used(pr, b);

	if (ua != ub)
		return !ua;
	return ring_age_rank(pr, pr->buckets[a.bucket].refs[a.slot]) <
	       ring_age_rank(pr, pr->buckets[b.bucket].refs[b.slot]);
}

/*
 * bucket_link - put the item at offset into a slot of its chain: an empty
 * slot, else one holding a dead item, else a new overflow bucket, else the
 * slot of the chain's item least recently used, which is evicted.
 */
int bucket_link(struct table_part_ref *pr, uint64_t hash, uint64_t offset)
{
	struct table_item *it = (struct table_item *)(pr->arena + offset);
	uint16_t tag = bucket_tag(hash);
	uint32_t index = bucket_index(pr, hash);
	struct table_slot victim = { UINT32_MAX, 0 };
	struct table_slot target = { UINT32_MAX, 0 };
	struct table_item *gone;

	table_assert_writer(pr);
	struct table_bucket *last = NULL;

	for (uint32_t hops = 0; hops < table_chain_max(pr->t); hops++) {
		struct table_bucket *b = bucket_at(pr, index);

		if (b == NULL)
			break;
		last = b;
		for (uint32_t s = 0; s < TABLE_BUCKET_SLOTS; s++) {
			struct table_slot w = { index, s };
			struct table_item *old;

			if (b->tags[s] == 0) {
				target = w;
				goto place;
			}
			old = ring_item(pr, b->refs[s]);
			if (old == NULL || !ring_item_alive(pr, old)) {
				if (old != NULL) {
					table_count_expired(pr->part, old);
					slot_clear(pr, w, old);
				}
				target = w;
				goto place;
			}
			if (victim.bucket == UINT32_MAX ||
			    victim_better(pr, w, victim))
				victim = w;
		}
		index = bucket_next(pr, b);
		if (index == UINT32_MAX)
			break;
	}
	if (last != NULL) {
		uint32_t fresh = overflow_take(pr, last);

		if (fresh != UINT32_MAX) {
			target.bucket = fresh;
			target.slot = 0;
			goto place;
		}
	}
	if (victim.bucket == UINT32_MAX || pr->t->no_evict) {
		pr->part->outofmemory++;
		return -ENOSPC;
	}
	gone = ring_item(pr, pr->buckets[victim.bucket].refs[victim.slot]);
	/* The victim is one of the items ring_item resolved above. */
	if (gone == NULL)
		return -ENOSPC;
	table_count_evicted(pr->part, gone, pr->now, slot_used(pr, victim));
	slot_clear(pr, victim, gone);
	target = victim;

place:
	pr->buckets[target.bucket].refs[target.slot] = (uint32_t)(offset /
								  TABLE_REF_UNIT);
	pr->buckets[target.bucket].tags[target.slot] = tag;
	slot_clear_used(pr, target);
	pr->part->items++;
	pr->part->bytes += it->key_len + (uint64_t)it->value_len;
	return 0;
}
