/*
 * stats_detail.h - memcached's `stats detail` counters per key prefix,
 * shared by every worker (see stats_detail.c)
 *
 * Interface routines:
 *   server_detail_set       `stats detail on|off`
 *   server_detail_count     count one get, set or delete of a key
 *   server_detail_snapshot  the records to dump, in memcached's order
 *   server_detail_reset     zero every record's counters (`stats reset`)
 *   server_detail_hash      MurmurHash3_x86_32, seed 0 (memcached's)
 */
#ifndef SHMKV_STATS_DETAIL_H
#define SHMKV_STATS_DETAIL_H

#include "stats.h"

enum server_detail_kind {
	SERVER_DETAIL_GET,
	SERVER_DETAIL_SET,
	SERVER_DETAIL_DELETE,
};

/* One record as dumped, copied out of shared memory. */
struct server_detail_entry {
	char prefix[SERVER_PREFIX_MAX + 1];
	size_t len;
	uint64_t gets, hits, sets, dels;
	uint64_t seq;
	uint32_t bucket;
};

void server_detail_set(const struct server_stats_view *all, bool on);
/* A no-op unless detail is on and the key has a prefix. */
void server_detail_count(const struct server_stats_view *all, const void *key,
			 size_t key_len, enum server_detail_kind kind, bool hit);
/* server_detail_snapshot - up to max records with a count, sorted; the
 * number written. */
size_t server_detail_snapshot(const struct server_stats_view *all,
			      struct server_detail_entry *out, size_t max);
void server_detail_reset(const struct server_stats_view *all);
uint32_t server_detail_hash(const void *key, size_t len);

#endif
