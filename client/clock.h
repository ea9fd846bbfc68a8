/*
 * clock.h - the one monotonic clock everything times itself with
 *
 * Timeouts, lock wait times and start-up durations are measured on
 * CLOCK_MONOTONIC, which no one can set back; the coarse variant is for a
 * check made on every call (the library's liveness probe), where a
 * resolution of a few milliseconds is enough and the read is cheaper.
 *
 * Interface routines:
 *   monotonic_ns         nanoseconds on CLOCK_MONOTONIC
 *   monotonic_coarse_ns  the same on CLOCK_MONOTONIC_COARSE
 *   monotonic_ms, monotonic_coarse_ms  the two in milliseconds, signed, for
 *                        deadlines and intervals that may come out negative
 */
#ifndef SHMKV_CLOCK_H
#define SHMKV_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static inline uint64_t monotonic_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static inline uint64_t monotonic_coarse_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC_COARSE);
}

static inline int64_t monotonic_ms(void)
{
	return (int64_t)(monotonic_ns() / 1000000);
}

static inline int64_t monotonic_coarse_ms(void)
{
	return (int64_t)(monotonic_coarse_ns() / 1000000);
}

#endif
