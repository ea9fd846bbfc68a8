/*
 * report.h - what a run measured, and how it is shown
 *
 * Both modes (network and direct) fill one struct bench_result, merged from
 * their threads or processes, and report_print turns it into the human
 * table or the --json object, so scripts see the same fields either way.
 *
 * Interface routines:
 *   counters_add    - add one set of counters into another
 *   live_publish    - a worker publishes its running totals for progress
 *   live_read       - the main thread reads them
 *   report_progress - one progress line on stderr
 *   report_print    - the final report on stdout
 *   report_failed   - whether the run saw errors, wrong values or lost
 *                     connections (exit status 1)
 *   now_ns          - CLOCK_MONOTONIC in nanoseconds
 */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "histogram.h"
#include "options.h"

struct bench_counters {
	uint64_t requests; /* completed; a multiget or a batch is one */
	uint64_t gets;	   /* keys asked for */
	uint64_t sets;
	uint64_t hits;
	uint64_t misses;
	uint64_t wrong;	 /* key, flags, length or bytes not as stored */
	uint64_t errors; /* error replies, NOT_STORED, lost requests */
};

/* Running totals a worker publishes for the progress line: written by its
 * owner only, read by the main thread, both with relaxed atomics (a line
 * a moment stale is fine; torn values are not). */
struct bench_live {
	uint64_t ops;
	uint64_t errors;
	uint64_t wrong;
	uint64_t phase; /* 0 connecting/preloading, 1 timed run, 2 done */
};

struct bench_result {
	const char *mode;   /* "network" or "direct" */
	char target[300];   /* "tcp 127.0.0.1:11211", "unix PATH" */
	const char *timing; /* how latency was measured */
	uint64_t timer_overhead_ns;
	struct bench_counters run;
	struct bench_counters preload;
	double elapsed; /* seconds of the timed phase */
	double preload_elapsed;
	uint64_t conns_lost; /* connections (or processes) that failed */
	struct hist get_latency;
	struct hist set_latency;
};

void counters_add(struct bench_counters *into, const struct bench_counters *from);

static inline void live_publish(struct bench_live *l,
				const struct bench_counters *c, uint64_t phase)
{
	__atomic_store_n(&l->ops, c->gets + c->sets, __ATOMIC_RELAXED);
	__atomic_store_n(&l->errors, c->errors, __ATOMIC_RELAXED);
	__atomic_store_n(&l->wrong, c->wrong, __ATOMIC_RELAXED);
	__atomic_store_n(&l->phase, phase, __ATOMIC_RELAXED);
}

static inline void live_read(const struct bench_live *l, struct bench_live *out)
{
	out->ops = __atomic_load_n(&l->ops, __ATOMIC_RELAXED);
	out->errors = __atomic_load_n(&l->errors, __ATOMIC_RELAXED);
	out->wrong = __atomic_load_n(&l->wrong, __ATOMIC_RELAXED);
	out->phase = __atomic_load_n(&l->phase, __ATOMIC_RELAXED);
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void report_progress(const struct bench_live *sum, uint64_t prev_ops,
		     double interval, double since_start);
void report_print(const struct bench_options *o, const struct bench_result *r);
bool report_failed(const struct bench_result *r);

#endif
