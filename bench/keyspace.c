/*
 * keyspace.c - the keys a run uses, the values they hold, and which to pick
 *
 * Random numbers come from xoshiro256** seeded through splitmix64 with
 * (seed, stream), so every connection or process has its own reproducible
 * sequence and a run with the same flags asks for the same keys.
 *
 * Zipf keys use Hörmann and Derflinger's rejection-inversion sampler
 * ("Rejection-inversion to generate variates from monotone discrete
 * distributions", 1996), as Apache Commons RNG does: O(1) memory and
 * set-up for any key count, about 1.1 draws per sample.
 * NOTE: a precomputed CDF would make a sample a binary search, but costs
 * 8 bytes per key and a pass over the whole key space before the run.
 * Rank 1, the hottest, is key 0; the table hashes keys, so hot keys sitting
 * next to each other in the key space puts them nowhere near each other in
 * the server.
 *
 * Values: 8 bytes at a time from splitmix64 of the key index, mapped into a
 * 64-character printable alphabet, so a value read in a packet dump or a
 * telnet session still looks like text.
 *
 * Interface routines: see keyspace.h.
 */
#include "keyspace.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char alphabet[65] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void rng_seed(struct rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1342543de82ef95ull);

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Lemire's multiply-shift: no division, bias below 2^-64 * n. */
uint64_t rng_below(struct rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* A double in [0, 1) from the top 53 bits. */
static double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* log1p(x)/x, with its series near 0 where the quotient loses precision. */
static double helper1(double x)
{
	if (fabs(x) > 1e-8)
		return log1p(x) / x;
	return 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

/* expm1(x)/x, likewise. */
static double helper2(double x)
{
	if (fabs(x) > 1e-8)
		return expm1(x) / x;
	return 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}

/* The integral of the hat function x^-s, shifted so that it is smooth at
 * s = 1 (where it becomes log x). */
static double h_integral(double s, double x)
{
	double lx = log(x);

	return helper2((1.0 - s) * lx) * lx;
}

static double h(double s, double x)
{
	return exp(-s * log(x));
}

static double h_integral_inverse(double s, double x)
{
	double t = x * (1.0 - s);

	if (t < -1.0)
		t = -1.0; /* rounding can push it just past the pole */
	return exp(helper1(t) * x);
}

static unsigned digits(uint64_t v)
{
	unsigned n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

int keyspace_init(struct keyspace *ks, uint64_t nkeys, unsigned key_size,
		  size_t value_size, double zipf_s, char *err, size_t errlen)
{
	unsigned need = 1 + digits(nkeys - 1);

	memset(ks, 0, sizeof(*ks));
	if (key_size < need) {
		snprintf(err, errlen,
			 "--key-size %u is too small for %llu keys (need at least %u)",
			 key_size, (unsigned long long)nkeys, need);
		return -1;
	}
	ks->nkeys = nkeys;
	ks->key_size = key_size;
	ks->value_size = value_size;
	ks->zipf_s = zipf_s;
	if (zipf_s > 0) {
		double n = (double)nkeys;

		ks->h_x1 = h_integral(zipf_s, 1.5) - 1.0;
		ks->h_n = h_integral(zipf_s, n + 0.5);
		ks->squeeze = 2.0 - h_integral_inverse(zipf_s,
						       h_integral(zipf_s, 2.5) -
							       h(zipf_s, 2.0));
	}
	return 0;
}

uint64_t keyspace_pick(const struct keyspace *ks, struct rng *r)
{
	double s = ks->zipf_s;

	if (s <= 0)
		return rng_below(r, ks->nkeys);
	for (;;) {
		double u = ks->h_n + rng_unit(r) * (ks->h_x1 - ks->h_n);
		double x = h_integral_inverse(s, u);
		double kd = x + 0.5;
		uint64_t k;

		if (kd < 1.0)
			k = 1;
		else if (kd > (double)ks->nkeys)
			k = ks->nkeys;
		else
			k = (uint64_t)kd;
		if ((double)k - x <= ks->squeeze ||
		    u >= h_integral(s, (double)k + 0.5) - h(s, (double)k))
			return k - 1;
	}
}

void keyspace_key(const struct keyspace *ks, uint64_t i, char *out)
{
	char *p = out + ks->key_size;

	out[0] = 'k';
	while (p > out + 1) {
		*--p = (char)('0' + i % 10);
		i /= 10;
	}
}

bool keyspace_key_index(const struct keyspace *ks, const char *key, size_t len,
			uint64_t *i)
{
	uint64_t v = 0;

	if (len != ks->key_size || key[0] != 'k')
		return false;
	for (size_t j = 1; j < len; j++) {
		if (key[j] < '0' || key[j] > '9')
			return false;
		v = v * 10 + (uint64_t)(key[j] - '0');
	}
	if (v >= ks->nkeys)
		return false;
	*i = v;
	return true;
}

/* The 8 pattern bytes of key i at offset 8*word, from one splitmix64 step. */
static void pattern_word(uint64_t i, uint64_t word, char out[8])
{
	uint64_t x = i ^ (word * 0xd1342543de82ef95ull) ^ 0x5eedull;
	uint64_t z = splitmix64(&x);

	for (int b = 0; b < 8; b++, z >>= 8)
		out[b] = alphabet[z & 63];
}

void keyspace_value(const struct keyspace *ks, uint64_t i, char *out)
{
	size_t n = ks->value_size, off = 0;
	char w[8];

	for (uint64_t word = 0; off < n; word++, off += 8) {
		pattern_word(i, word, w);
		memcpy(out + off, w, n - off < 8 ? n - off : 8);
	}
}

bool keyspace_value_matches(const struct keyspace *ks, uint64_t i,
			    const char *data, size_t len)
{
	size_t off = 0;
	char w[8];

	if (len != ks->value_size)
		return false;
	for (uint64_t word = 0; off < len; word++, off += 8) {
		size_t k = len - off < 8 ? len - off : 8;

		pattern_word(i, word, w);
		if (memcmp(data + off, w, k) != 0)
			return false;
	}
	return true;
}
