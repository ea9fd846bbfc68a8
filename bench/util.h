/*
 * util.h - small helpers shared by the bench's modes
 *
 * Interface routines:
 *   xrealloc    - realloc, or exit with a message (a load generator that
 *                 cannot get memory has nothing sensible left to measure)
 *   xcalloc      - calloc, likewise
 *   fmt_u64     - decimal digits of v at out; returns their count
 *   timer_overhead_ns - the cost of one clock_gettime(CLOCK_MONOTONIC)
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "report.h"

static inline void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL) {
		fprintf(stderr,
			"shmkv-bench: out of memory (wanted %zu bytes)\n", n);
		exit(1);
	}
	return q;
}

static inline void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL) {
		fprintf(stderr,
			"shmkv-bench: out of memory (wanted %zu x %zu bytes)\n",
			n, size);
		exit(1);
	}
	return p;
}

static inline size_t fmt_u64(char *out, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

/* The smallest gap between two back-to-back clock reads, over a few
 * hundred tries: what timing one operation adds to its measured latency. */
static inline uint64_t timer_overhead_ns(void)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < 500; i++) {
		uint64_t a = now_ns(), b = now_ns();

		if (b - a < best)
			best = b - a;
	}
	return best;
}

#endif
