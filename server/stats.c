/*
 * stats.c - the per-worker counters region
 *
 * Each worker counts into its own struct server_stats in the control part,
 * so no cache line is written by two processes on a hot path; readers
 * (`stats`) add the slots up.  A slot is written by one process only, with
 * relaxed atomics, and read by others with relaxed loads: a sum may lag a
 * counter by a few increments, which statistics tolerate, and nothing is
 * ordered by these values.
 *
 * The slot after the last worker's is the baseline of `stats reset`: the
 * sums at the reset, which `stats` subtracts.  It is the one slot more
 * than one process may write (whichever worker answers a reset); two
 * resets at once leave one of their sums, which is what either asked for.
 * NOTE: zeroing every worker's slot instead would break the one-writer
 * rule on the hot path; a baseline costs a subtraction per `stats`.
 *
 * Interface routines:
 *   server_stats_region_size  bytes the region needs for n workers
 *   server_stats_sum          add up every worker's slot
 * (server_stats_baseline, the `stats reset` slot of a view, is inline in
 * stats.h, for server_detail_enabled)
 */
#include <string.h>

#include "stats.h"

/* The counters are summed field by field as an array of this. */
#define STATS_NCOUNTERS \
	(offsetof(struct server_stats, verbosity_set) / sizeof(_Atomic uint64_t))

/*
 * A slot is a whole number of 128-byte units (PostgreSQL's padding for
 * adjacent-line prefetch), so in an array of slots no two workers ever
 * write the same cache line pair.  The reserved words keep it so.
 */
_Static_assert(sizeof(struct server_stats) % 128 == 0,
	       "server_stats slots must not share cache lines");

/* server_stats_region_size - bytes for one slot per worker, and the
 * baseline slot after them. */
size_t server_stats_region_size(uint32_t workers)
{
	return ((size_t)workers + 1) * sizeof(struct server_stats) +
	       sizeof(struct server_prefix_table) +
	       SERVER_CONN_RECORDS * sizeof(struct server_conn_record);
}

/* The prefix and connection tables sit at the region's end, so that a
 * memory file sized for more workers than run finds them where a later
 * start with another -t does. */
void server_stats_view_init(struct server_stats_view *all, void *base,
			    size_t size, uint32_t count)
{
	size_t conns = SERVER_CONN_RECORDS * sizeof(struct server_conn_record);
	size_t tail = sizeof(struct server_prefix_table) + conns;

	memset(all, 0, sizeof(*all));
	if (base == NULL ||
	    size < ((size_t)count + 1) * sizeof(struct server_stats) + tail)
		return;
	all->slots = base;
	all->count = count;
	all->prefixes = (void *)((char *)base + size - tail);
	all->conns = (void *)((char *)base + size - conns);
}

int server_verbosity(const struct server_stats_view *all, int dflt)
{
	const struct server_stats *b = server_stats_baseline(all);
	uint64_t v;

	if (b == NULL)
		return dflt;
	v = atomic_load_explicit(&b->verbosity_set, memory_order_relaxed);
	return v == 0 ? dflt : (int)(v - 1);
}

/* server_set_verbosity - any worker may set it; the last store wins, as
 * the last `verbosity` command does in memcached. */
void server_set_verbosity(const struct server_stats_view *all, int level)
{
	struct server_stats *b = server_stats_baseline(all);

	if (b != NULL)
		atomic_store_explicit(&b->verbosity_set, (uint64_t)level + 1,
				      memory_order_relaxed);
}

/*
 * server_stats_sum - total = the sum of all->count slots.  total may be
 * process memory; it is written with relaxed stores.
 */
void server_stats_sum(const struct server_stats_view *all,
		      struct server_stats *total)
{
	_Atomic uint64_t *dst = (_Atomic uint64_t *)total;
	uint32_t w;
	size_t i;

	for (i = 0; i < STATS_NCOUNTERS; i++)
		atomic_store_explicit(&dst[i], 0, memory_order_relaxed);
	for (w = 0; w < all->count; w++) {
		_Atomic uint64_t *src = (_Atomic uint64_t *)&all->slots[w];

		for (i = 0; i < STATS_NCOUNTERS; i++)
			atomic_store_explicit(
				&dst[i],
				atomic_load_explicit(&dst[i],
						     memory_order_relaxed) +
					atomic_load_explicit(&src[i],
							     memory_order_relaxed),
				memory_order_relaxed);
	}
}
