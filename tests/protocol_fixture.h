/*
 * protocol_fixture.h - a real cache and a protocol context for the
 * protocol tests (test_protocol_text.c, test_protocol_meta.c): commands go
 * through proto_process with no sockets, replies come back as a string.
 */
#ifndef SHMKV_PROTOCOL_FIXTURE_H
#define SHMKV_PROTOCOL_FIXTURE_H

#include <stddef.h>

#include "cache.h"
#include "protocol.h"

#define MAX_ITEM (1024u * 1024u)

struct fx {
	struct cache c;
	struct server_stats *stats;
	struct proto_ctx ctx;
	struct proto_conn conn;
	struct proto_out out;
	enum proto_action action;
	int verbosity; /* what `verbosity` sets */
};

/* A 64 MiB cache of 16 partitions, this process's proc slot, a context. */
int fx_setup(void **state);
int fx_teardown(void **state);

/* feed - process in (all of it must be consumed); return the replies. */
const char *feed(struct fx *f, const char *in, size_t len);

/* expect - in gives exactly want, byte for byte. */
void expect(struct fx *f, const char *in, const char *want);

#endif
