/*
 * stats_detail.c - memcached's `stats detail`: counters per key prefix
 *
 * With `stats detail on`, every text get, set and delete counts in the
 * record of its key's prefix (the bytes before the first ':', memcached's
 * default -D; a key without one is not counted).  Any worker may count any
 * prefix, so the records live in the shared stats region (stats.h): a
 * fixed table, claimed slot by slot and never moved, found by open
 * addressing on the prefix's hash.  Counting is a relaxed atomic add,
 * since several workers add to one record.
 *
 * A claim is a compare-and-swap of state from 0 (free) to 1; the claimer
 * writes the prefix and then publishes state 2 with release, which pairs
 * with the acquire load of every reader before it compares or copies the
 * prefix.  A claimer that died in between leaves a record in state 1 that
 * others step over after a bounded wait.  NOTE: a lock-free table, not a
 * lock, because the hot path (a get with detail on) must not wait for a
 * worker that is being killed.  When every record is taken, prefixes not
 * seen yet are not counted (memcached would allocate more).
 *
 * The dump lists prefixes in memcached's order: by MurmurHash3 bucket
 * (its hash, 256 buckets), newest first within one.  `stats reset` zeroes
 * the counters; a record whose counters are all 0 is not listed, so a
 * reset dump is empty, as memcached's.
 *
 * Interface routines:
 *   server_detail_set       `stats detail on|off`
 *   server_detail_count     count one get, set or delete of a key
 *   server_detail_snapshot  the records to dump, in memcached's order
 *   server_detail_reset     zero every record's counters
 */
#include <stdlib.h>
#include <string.h>

#include "stats_detail.h"

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define DETAIL_DELIMITER ':'
#define DETAIL_BUCKETS 256u	 /* memcached's PREFIX_HASH_SIZE */
#define DETAIL_CLAIM_WAIT 100000 /* reads of a record being written */

static uint32_t rotl32(uint32_t x, int r)
{
	return (x << r) | (x >> (32 - r));
}

/* murmur3_32 - MurmurHash3_x86_32 with seed 0, memcached's default hash
 * (its prefix buckets follow it). */
uint32_t server_detail_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	const uint32_t c1 = 0xcc9e2d51u, c2 = 0x1b873593u;
	uint32_t h = 0, k;
	size_t i, blocks = len / 4;

	for (i = 0; i < blocks; i++) {
		memcpy(&k, p + i * 4, 4); /* little-endian, as on x86 */
		k *= c1;
		k = rotl32(k, 15);
		k *= c2;
		h ^= k;
		h = rotl32(h, 13);
		h = h * 5 + 0xe6546b64u;
	}
	k = 0;
	switch (len & 3) {
	case 3: k ^= (uint32_t)p[blocks * 4 + 2] << 16; /* fall through */
	case 2: k ^= (uint32_t)p[blocks * 4 + 1] << 8;	/* fall through */
	case 1:
		k ^= p[blocks * 4];
		k *= c1;
		k = rotl32(k, 15);
		k *= c2;
		h ^= k;
	}
	h ^= (uint32_t)len;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

void server_detail_set(const struct server_stats_view *all, bool on)
{
	struct server_stats *b = server_stats_baseline(all);

	if (b != NULL)
		atomic_store_explicit(&b->detail_on, on ? 1 : 0,
				      memory_order_relaxed);
}

/* record_matches - wait out a claim in progress, then compare. */
static bool record_matches(struct server_prefix *r, uint32_t state,
			   const char *prefix, size_t len)
{
	for (int i = 0; state == 1 && i < DETAIL_CLAIM_WAIT; i++)
		state = atomic_load_explicit(&r->state, memory_order_acquire);
	return state == 2 && r->len == len && memcmp(r->prefix, prefix, len) == 0;
}

/* find_or_claim - prefix's record, claimed if it has none; NULL if the
 * table is full. */
static struct server_prefix *find_or_claim(struct server_prefix_table *pt,
					   const char *prefix, size_t len)
{
	uint32_t start = server_detail_hash(prefix, len) % SERVER_PREFIX_RECORDS;

	for (uint32_t i = 0; i < SERVER_PREFIX_RECORDS; i++) {
		struct server_prefix *r =
			&pt->rec[(start + i) % SERVER_PREFIX_RECORDS];
		uint32_t state = atomic_load_explicit(&r->state,
						      memory_order_acquire);

		if (state == 0) {
			uint32_t expect = 0;

			if (atomic_compare_exchange_strong(&r->state, &expect, 1)) {
				r->len = (uint32_t)len;
				memcpy(r->prefix, prefix, len);
				atomic_store_explicit(&r->seq,
						      atomic_fetch_add(&pt->next_seq,
								       1),
						      memory_order_relaxed);
				/* Pairs with the readers' acquire of state. */
				atomic_store_explicit(&r->state, 2,
						      memory_order_release);
				return r;
			}
			state = expect;
		}
		if (record_matches(r, state, prefix, len))
			return r;
	}
	return NULL;
}

void server_detail_count(const struct server_stats_view *all, const void *key,
			 size_t key_len, enum server_detail_kind kind, bool hit)
{
	const char *k = key, *colon;
	struct server_prefix *r;

	if (all == NULL || all->prefixes == NULL || !server_detail_enabled(all))
		return;
	colon = memchr(k, DETAIL_DELIMITER, key_len);
	if (colon == NULL || (size_t)(colon - k) >= SERVER_PREFIX_MAX)
		return;
	r = find_or_claim(all->prefixes, k, (size_t)(colon - k));
	if (r == NULL)
		return;
	switch (kind) {
	case SERVER_DETAIL_GET:
		atomic_fetch_add_explicit(&r->gets, 1, memory_order_relaxed);
		if (hit)
			atomic_fetch_add_explicit(&r->hits, 1,
						  memory_order_relaxed);
		break;
	case SERVER_DETAIL_SET:
		atomic_fetch_add_explicit(&r->sets, 1, memory_order_relaxed);
		break;
	case SERVER_DETAIL_DELETE:
		atomic_fetch_add_explicit(&r->dels, 1, memory_order_relaxed);
		break;
	}
}

static int entry_order(const void *a, const void *b)
{
	const struct server_detail_entry *x = a, *y = b;

	if (x->bucket != y->bucket)
		return x->bucket < y->bucket ? -1 : 1;
	return x->seq > y->seq ? -1 : x->seq < y->seq ? 1 : 0;
}

size_t server_detail_snapshot(const struct server_stats_view *all,
			      struct server_detail_entry *out, size_t max)
{
	size_t n = 0;

	if (all == NULL || all->prefixes == NULL)
		return 0;
	for (uint32_t i = 0; i < SERVER_PREFIX_RECORDS && n < max; i++) {
		struct server_prefix *r = &all->prefixes->rec[i];
		struct server_detail_entry *e = &out[n];

		if (atomic_load_explicit(&r->state, memory_order_acquire) != 2)
			continue;
		e->len = r->len < SERVER_PREFIX_MAX ? r->len : 0;
		memcpy(e->prefix, r->prefix, e->len);
		e->prefix[e->len] = '\0';
		e->gets = LOAD(r->gets);
		e->hits = LOAD(r->hits);
		e->sets = LOAD(r->sets);
		e->dels = LOAD(r->dels);
		e->seq = LOAD(r->seq);
		e->bucket = server_detail_hash(e->prefix, e->len) %
			    DETAIL_BUCKETS;
		if ((e->gets | e->hits | e->sets | e->dels) != 0)
			n++;
	}
	qsort(out, n, sizeof(*out), entry_order);
	return n;
}

void server_detail_reset(const struct server_stats_view *all)
{
	if (all == NULL || all->prefixes == NULL)
		return;
	for (uint32_t i = 0; i < SERVER_PREFIX_RECORDS; i++) {
		struct server_prefix *r = &all->prefixes->rec[i];

		atomic_store_explicit(&r->gets, 0, memory_order_relaxed);
		atomic_store_explicit(&r->hits, 0, memory_order_relaxed);
		atomic_store_explicit(&r->sets, 0, memory_order_relaxed);
		atomic_store_explicit(&r->dels, 0, memory_order_relaxed);
	}
}
