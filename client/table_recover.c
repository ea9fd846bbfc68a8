/*
 * table_recover.c - drop a partition a dead writer may have left torn
 *
 * A process killed while it held a partition's lock exclusive may have
 * stopped half way through a change: a bucket naming an item not yet
 * written, a ring head past a half-copied value, counters that disagree.
 * Rather than try to tell which (no undo log is kept), crash recovery
 * empties the partition: it is a cache, so losing its items costs misses,
 * while keeping a torn one could hand a reader a value that was never
 * stored.  Readers copy values under the lock held shared and writers hold
 * it exclusive, so once the partition is emptied before anyone can take
 * the lock again, no reader can see a torn value.
 *
 * The caller (lwlock_recover's repair step) guarantees that nobody holds
 * or can take the partition's lock while table_partition_reset runs.
 *
 * Interface routines:
 *   table_partition_of_lock  which partition a lock offset guards
 *   table_partition_reset    empty one partition as table_create left it
 *   table_partition_drop_if_torn  empty it if a writer stopped mid-change
 */
#include "table.h"

#include <errno.h>
#include <string.h>

#include "table_internal.h"

/*
 * table_partition_of_lock - the partition whose LWLock lies at offset in
 * the control part.  0 and *partition, or -ENOENT for an offset that names
 * no partition's lock (the value may come from a client-writable slot).
 */
int table_partition_of_lock(const struct table *t, uint32_t offset,
			    uint32_t *partition)
{
	uintptr_t first, at;
	size_t stride = sizeof(union table_partition_ctl);

	if (t->pctl == NULL || t->seg == NULL || t->seg->ctl == NULL)
		return -ENOENT;
	first = (uintptr_t)&t->pctl[0].c.lock - (uintptr_t)t->seg->ctl;
	at = (uintptr_t)offset;
	if (at < first || (at - first) % stride != 0 ||
	    (at - first) / stride >= t->npartitions)
		return -ENOENT;
	*partition = (uint32_t)((at - first) / stride);
	return 0;
}

/*
 * table_partition_reset - empty partition p: no bucket refers to an item,
 * the ring is empty, the overflow buckets are all free again and the
 * "used" bits clear, as table_create left them; items and bytes drop to 0.
 * The cumulative counters (evictions, total_items, ...) are kept, so
 * `stats` never goes backwards.  The sequence word ends even and past any
 * value a lock-free reader saw.  -EINVAL for a bad p, -EFAULT if the
 * partition's memory is not inside the segment.
 */
int table_partition_reset(struct table *t, uint32_t p)
{
	struct table_part_ref pr;
	uint64_t bucket_bytes;

	if (p >= t->npartitions || t->hdr == NULL || !t->seg->writable)
		return -EINVAL;
	table_part_resolve_index(t, p, &pr);
	bucket_bytes = (uint64_t)pr.nbuckets_total * sizeof(struct table_bucket);
	if (segment_ptr(t->seg, SEGMENT_DATA, pr.part->buckets_offset,
			bucket_bytes) == NULL ||
	    segment_ptr(t->seg, SEGMENT_CTL,
			(uint64_t)((unsigned char *)pr.used - t->seg->ctl),
			(uint64_t)pr.nbuckets_total * sizeof(uint16_t)) == NULL)
		return -EFAULT;

	/* The writer bracket every writer opens; recovery holds no lock (the
	 * repair state keeps everyone out), so it cannot assert one. */
	table_writer_begin(pr.part);

	memset(pr.buckets, 0, bucket_bytes);
	for (uint32_t index = t->nbuckets; index < t->nbuckets_total; index++)
		pr.buckets[index].next = index + 1 < t->nbuckets_total ? index + 2
								       : 0;
	pr.part->free_overflow = t->nbuckets + 1;
	for (uint32_t i = 0; i < pr.nbuckets_total; i++)
		atomic_store_explicit(&pr.used[i], 0, memory_order_relaxed);
	pr.part->head = 0;
	pr.part->tail = 0;
	pr.part->used = 0;
	pr.part->dead_bytes = 0;
	pr.part->items = 0;
	pr.part->bytes = 0;

	/* The lock's release in lwlock_recover orders the reset before the
	 * next holder. */
	table_writer_end(pr.part);
	return 0;
}

/*
 * table_partition_drop_if_torn - empty partition p if its sequence word is
 * odd: a writer stopped inside a change (table_part_lock makes it odd
 * before the first store and even after the last).  For a segment adopted
 * after a crash, once the proc slots are recovered: a partition a dead
 * writer held is already reset, so this catches only a control part whose
 * record was lost.  Takes p's lock exclusive if it is free (never waits:
 * the caller may be the one recoverer a held lock waits for); no server
 * process may be writing meanwhile.  1 if dropped, 0 if not, -EBUSY if the
 * lock is held, -errno.
 */
int table_partition_drop_if_torn(struct table *t, uint32_t p)
{
	struct lwlock *lock;
	int rc = 0;

	if (p >= t->npartitions || t->hdr == NULL || !t->seg->writable)
		return -EINVAL;
	/* Only a writer changes seq, and none runs: no lock needed to look. */
	if ((atomic_load_explicit(&t->parts[p].seq, memory_order_acquire) &
	     1u) == 0)
		return 0;
	lock = &t->pctl[p].c.lock;
	if (!lwlock_conditional_acquire(&t->owner, lock, LW_EXCLUSIVE))
		return -EBUSY;
	rc = table_partition_reset(t, p);
	lwlock_release(&t->owner, lock);
	return rc < 0 ? rc : 1;
}
