/*
 * protocol_stats.h - what the files of the `stats` family share
 *
 * Interface routines:
 *   stat_u64, stat_str, stat_zeros  one "STAT name value" line, or several
 *   proto_stats_settings            answer `stats settings`
 */
#ifndef SHMKV_PROTOCOL_STATS_H
#define SHMKV_PROTOCOL_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "protocol_internal.h"

void stat_u64(struct proto_req *req, const char *name, uint64_t v);
void stat_str(struct proto_req *req, const char *name, const char *v);
void stat_zeros(struct proto_req *req, const char *const *names, size_t n);

/* STAT_ZEROS(req, "a", "b") - fields counting what never happens here. */
#define STAT_ZEROS(req, ...) do { \
		static const char *const names_[] = { __VA_ARGS__ }; \
		stat_zeros(req, names_, sizeof(names_) / sizeof(names_[0])); \
	} while (0)

void proto_stats_settings(struct proto_req *req);
void proto_dump_metadump(struct proto_req *req);
void proto_dump_cachedump(struct proto_req *req);

#endif
