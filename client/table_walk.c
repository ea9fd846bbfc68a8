/*
 * table_walk.c - visit the live items of a partition, a few buckets at a time
 *
 * The walk follows the hash table, not the ring: buckets hold only linked
 * items, so dead ones and padding in the ring are never read, and a
 * bucket's references are bounds-checked (ring_item) like any lookup's.
 * Each call takes the partition's lock shared once; the caller chooses how
 * many buckets a hold covers (see table_walk.h).
 *
 * table_walk_oldest reads the ring from its tail instead, item by item, as
 * the reclaimer does (table_ring.c), with the same bounds checks.
 *
 * Interface routines:
 *   table_walk_buckets, table_walk, table_walk_oldest
 */
#include "table_walk.h"

#include "table_internal.h"

static void visit_bucket(const struct table_part_ref *pr,
			 const struct table_bucket *b, table_walk_fn fn,
			 void *arg)
{
	for (uint32_t s = 0; s < TABLE_BUCKET_SLOTS; s++) {
		struct table_walk_entry e;
		struct table_item *it;

		if (b->tags[s] == 0)
			continue;
		it = ring_item(pr, b->refs[s]);
		if (it == NULL || !ring_item_alive(pr, it))
			continue;
		e.key = item_key(it);
		e.key_len = it->key_len;
		e.value_len = it->value_len;
		/* One copy of the lengths, checked against the ring before the
		 * key is read through it (the lock alone is not trusted). */
		if (!ring_range_ok(pr, e.key, (uint64_t)e.key_len + e.value_len))
			continue;
		e.exptime = it->exptime;
		/* atime keeps the low 16 bits of the clock at the last access. */
		e.last_access = pr->now -
				(uint16_t)((uint16_t)pr->now - it->atime);
		e.cas = item_cas(it);
		e.total_size = item_total_size(it->key_len, it->value_len);
		e.fetched = (item_state(it) & ITEM_FETCHED) != 0;
		fn(arg, &e);
	}
}

uint32_t table_walk_buckets(const struct table *t)
{
	return t->nbuckets;
}

uint32_t table_walk(struct table *t, uint32_t p, uint32_t from, uint32_t n,
		    table_walk_fn fn, void *arg)
{
	struct table_part_ref pr;
	uint32_t end, i;

	/* The bound is the handle's validated copy, never the header's
	 * field: buckets past it are not known to be mapped. */
	if (p >= t->npartitions || from >= t->nbuckets)
		return t->nbuckets;
	end = n > t->nbuckets - from ? t->nbuckets : from + n;
	table_part_resolve_index(t, p, &pr);
	table_part_lock(&pr, LW_SHARED);
	for (i = from; i < end; i++) {
		uint32_t b = i, hops = 0;

		for (;;) {
			const struct table_bucket *bucket = &pr.buckets[b];

			visit_bucket(&pr, bucket, fn, arg);
			if (bucket->next == 0 ||
			    bucket->next > pr.nbuckets_total ||
			    ++hops >= table_chain_max(t))
				break;
			b = bucket->next - 1;
		}
	}
	table_part_unlock(&pr, LW_SHARED);
	return end;
}

/* How many dead items or pads the age may look past at the tail. */
#define OLDEST_SCAN 64u

static uint32_t age_of(const struct table_part_ref *pr,
		       const struct table_item *it)
{
	return (uint16_t)((uint16_t)pr->now - it->atime);
}

uint32_t table_walk_oldest(struct table *t, uint32_t p)
{
	struct table_part_ref pr;
	uint64_t at, seen = 0;
	uint32_t age = 0;

	if (p >= t->npartitions)
		return 0;
	table_part_resolve_index(t, p, &pr);
	table_part_lock(&pr, LW_SHARED);
	at = pr.part->tail;
	for (uint32_t i = 0; i < OLDEST_SCAN && seen < pr.part->used; i++) {
		uint64_t rest = pr.arena_size > at ? pr.arena_size - at : 0;
		const struct table_item *it;
		uint64_t total;

		if (rest < sizeof(struct table_item)) {
			/* The ring's end, too short for a header: wrap. */
			seen += rest;
			at = 0;
			continue;
		}
		it = ring_item(&pr, (uint32_t)(at / TABLE_REF_UNIT));
		if (it == NULL)
			break;
		if (ring_item_alive(&pr, it)) {
			age = age_of(&pr, it);
			break;
		}
		total = item_total_size(it->key_len, it->value_len);
		seen += total;
		at += total;
		if (at >= pr.arena_size)
			at = 0;
	}
	table_part_unlock(&pr, LW_SHARED);
	return age;
}
