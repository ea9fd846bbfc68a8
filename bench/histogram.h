/*
 * histogram.h - log-linear latency histogram (after HdrHistogram)
 *
 * Values are nanoseconds.  Below 64 every value has its own bucket; above,
 * each power of two is cut into 64 equal sub-buckets, so a reported value is
 * within 1/64 (1.6 %) of the true one at any scale, in a fixed 17 KiB array
 * that is cheap to record into and to merge across threads and processes.
 *
 * Interface routines:
 *   hist_reset    - empty a histogram
 *   hist_record   - count a value n times
 *   hist_merge    - add one histogram into another
 *   hist_value_at - the value at a percentile (0..100)
 */
#ifndef BENCH_HISTOGRAM_H
#define BENCH_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB_BITS 6 /* 64 sub-buckets */
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_BITS 40 /* ~18 minutes in ns */
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	uint64_t sum;
	uint64_t buckets[HIST_BUCKETS];
};

void hist_reset(struct hist *h);
void hist_record(struct hist *h, uint64_t value, uint64_t n);
void hist_merge(struct hist *into, const struct hist *from);
uint64_t hist_value_at(const struct hist *h, double percentile);

#endif
