/*
 * keyspace.h - the keys a run uses, the values they hold, and which to pick
 *
 * Key i is "k" followed by i in decimal, zero-padded to the key size; its
 * value is a pattern generated from i alone, and its client flags are i's
 * low 32 bits.  So any reply can be checked against the key it names,
 * without remembering what was stored, and every set of key i stores the
 * same bytes: a run can overwrite, or verify what an earlier run loaded.
 *
 * Interface routines:
 *   rng_seed, rng_next      - xoshiro256** streams, seeded deterministically
 *   rng_below               - uniform in [0, n)
 *   keyspace_init           - check sizes and set up the distribution
 *   keyspace_pick           - draw a key index from the distribution
 *   keyspace_key            - write key i (key_size bytes)
 *   keyspace_key_index      - parse a key back to its index
 *   keyspace_value          - write key i's value (value_size bytes)
 *   keyspace_value_matches  - whether bytes are key i's value
 *   keyspace_flags          - key i's client flags
 */
#ifndef BENCH_KEYSPACE_H
#define BENCH_KEYSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rng {
	uint64_t s[4];
};

void rng_seed(struct rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_next(struct rng *r);
uint64_t rng_below(struct rng *r, uint64_t n);

struct keyspace {
	uint64_t nkeys;
	unsigned key_size;
	size_t value_size;
	double zipf_s; /* 0 = uniform */
	/* rejection-inversion sampler constants (zipf only) */
	double h_x1;
	double h_n;
	double squeeze;
};

/* 0, or -1 with a message in err when key_size cannot hold nkeys. */
int keyspace_init(struct keyspace *ks, uint64_t nkeys, unsigned key_size,
		  size_t value_size, double zipf_s, char *err, size_t errlen);
uint64_t keyspace_pick(const struct keyspace *ks, struct rng *r);
void keyspace_key(const struct keyspace *ks, uint64_t i, char *out);
bool keyspace_key_index(const struct keyspace *ks, const char *key, size_t len,
			uint64_t *i);
void keyspace_value(const struct keyspace *ks, uint64_t i, char *out);
bool keyspace_value_matches(const struct keyspace *ks, uint64_t i,
			    const char *data, size_t len);

static inline uint32_t keyspace_flags(uint64_t i)
{
	return (uint32_t)i;
}

#endif
