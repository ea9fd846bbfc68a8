/*
 * protocol.h - memcached's text and meta protocols, bytes in, replies out
 *
 * The parser knows nothing of sockets or libuv: a connection hands it the
 * bytes it has buffered, it answers every whole command among them in order
 * (appending the replies to an output buffer) and says how many bytes it
 * consumed.  A command split across reads is simply not consumed until the
 * rest arrives; proto_conn.need says how many bytes must be buffered before
 * calling again is worthwhile, so a 1 MiB value is not re-parsed per read.
 *
 * Reply bytes are memcached 1.6's (doc/protocol.txt), errors included.
 *
 * Interface routines:
 *   proto_out_reserve  make room in an output buffer
 *   proto_process      answer every whole command in a buffer
 *   proto_conn_init    a new connection's parser state
 */
#ifndef SHMKV_PROTOCOL_H
#define SHMKV_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"
#include "table.h"

/* A growable reply buffer owned by the connection (malloc'd). */
struct proto_out {
	char *data;
	size_t len;
	size_t cap;
};

/* proto_out_reserve - room for n more bytes; -ENOMEM on failure. */
int proto_out_reserve(struct proto_out *out, size_t n);

/* What the server tells the parser; one per worker, read-only to it. */
struct proto_ctx {
	struct table *table;
	struct server_stats *stats;       /* this worker's counters */
	const struct server_stats_view *all; /* every worker's, for `stats` */
	uint32_t max_item_size;
	const char *version;              /* for `version` */
	/* For `stats settings` and `stats`. */
	const struct server_settings *settings;
};

enum proto_action {
	PROTO_CONTINUE = 0,
	PROTO_CLOSE,        /* quit, or an error after which memcached closes */
};

struct proto_conn {
	size_t need;        /* bytes to buffer before another call can progress */
	bool noreply_seen;  /* internal: suppress the reply of the current command */
	int verbosity;
	uint64_t swallow;   /* internal: bytes of a refused data block still to skip */
	uint64_t reserved[3];
};

void proto_conn_init(struct proto_conn *conn);

/*
 * proto_process - answer every whole command in in[0, len).
 * Returns the number of bytes consumed (the unconsumed tail is the start of
 * an incomplete command and must be presented again with more bytes after
 * it).  *action is PROTO_CLOSE when the connection must be closed once the
 * replies in out have been sent.
 */
size_t proto_process(const struct proto_ctx *ctx, struct proto_conn *conn,
		     const char *in, size_t len, struct proto_out *out,
		     enum proto_action *action);

#endif
