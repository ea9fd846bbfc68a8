/*
 * histogram.c - log-linear latency histogram (after HdrHistogram)
 *
 * A value v >= 64 with its highest set bit at position m falls in group
 * m - 5, sub-bucket (v >> (m - 6)) - 64: the top seven bits of v pick the
 * bucket, the rest is the precision we give up.  A percentile is reported
 * as the highest value its bucket can hold (HdrHistogram's "highest
 * equivalent value"), capped by the true maximum, so a percentile is never
 * under-reported and p100 is exactly the max.
 *
 * NOTE: one array covers everything up to 2^40 ns; a larger value is
 * counted in the last bucket and still sets max exactly.  Growing buckets on
 * demand would save memory nobody misses and cost a branch per record.
 *
 * Interface routines: see histogram.h.
 */
#include "histogram.h"

#include <string.h>

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static unsigned bucket_of(uint64_t v)
{
	unsigned msb, shift;

	if (v < HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	if (msb >= HIST_MAX_BITS)
		return HIST_BUCKETS - 1;
	shift = msb - HIST_SUB_BITS;
	return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

/* The highest value that falls into bucket b. */
static uint64_t bucket_top(unsigned b)
{
	unsigned shift;

	if (b < HIST_SUB)
		return b;
	shift = b / HIST_SUB - 1;
	return (((uint64_t)(b % HIST_SUB + HIST_SUB) + 1) << shift) - 1;
}

void hist_record(struct hist *h, uint64_t value, uint64_t n)
{
	if (n == 0)
		return;
	h->buckets[bucket_of(value)] += n;
	h->count += n;
	h->sum += value * n;
	if (value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
}

void hist_merge(struct hist *into, const struct hist *from)
{
	if (from->count == 0)
		return;
	for (unsigned b = 0; b < HIST_BUCKETS; b++)
		into->buckets[b] += from->buckets[b];
	into->count += from->count;
	into->sum += from->sum;
	if (from->min < into->min)
		into->min = from->min;
	if (from->max > into->max)
		into->max = from->max;
}

/*
 * hist_value_at - the smallest recorded value v such that at least
 * percentile % of the values are <= v (to bucket precision); 0 when empty.
 * Monotone in percentile, so p50 <= p90 <= ... <= max always holds.
 */
uint64_t hist_value_at(const struct hist *h, double percentile)
{
	uint64_t want, seen = 0;

	if (h->count == 0)
		return 0;
	if (percentile >= 100.0)
		return h->max;
	want = (uint64_t)(percentile / 100.0 * (double)h->count + 0.999999);
	if (want == 0)
		want = 1;
	for (unsigned b = 0; b < HIST_BUCKETS; b++) {
		seen += h->buckets[b];
		if (seen >= want) {
			uint64_t top = bucket_top(b);

			if (top > h->max)
				top = h->max;
			if (top < h->min)
				top = h->min;
			return top;
		}
	}
	return h->max;
}
