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
 * (table_warm_lookup), a batch in its first loop (table_read.h).  A server
 * worker warms the items of the reads it holds with that batch's second
 * stage (table_warm_item).
 *
 * NOTE: the LWLock taken shared would do too, but costs two atomic
 * read-modify-writes on a line every reader of the partition shares, and a
 * client killed inside it would block writers until the supervisor
 * recovers the lock.  The sequence check costs two plain loads.  After
 * LOCKFREE_TRIES failures (a partition under a storm of writes) it gives
 * up and the caller reads with the lock (table_get_lockfree's contract),
 * so a reader cannot starve.
 *
 * Interface routines: table_get_lockfree, table_warm_item (see table.h);
 * table_read_chain, table_read_again for table_read.h, whose inline core
 * is the rest: the single read and the one batch loop (table_read_batch).
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

/* The tries after a first that raced a writer or met an overflow chain
 * (table_read_try says why): out of line, and rare. */
__attribute__((noinline, cold)) int table_read_again(const struct table *t,
						     struct table_read *rd,
						     uint32_t now,
						     uint64_t flush_cas)
{
	struct table_read_view v;

	table_read_view_of(t, table_read_at_of(t, rd->hash), now, flush_cas, &v);
	for (int tries = 1; tries < LOCKFREE_TRIES; tries++) {
		int st = table_read_try(&v, rd, true);

		if (st != -EAGAIN)
			return st;
	}
	return -EAGAIN;
}

int table_get_lockfree(const struct table *t, struct table_read *rd)
{
	return table_read_single(t, rd);
}

const void *table_warm_item(const struct table *t, uint64_t hash)
{
	return table_read_warm_items(t, table_read_at_of(t, hash), hash);
}
