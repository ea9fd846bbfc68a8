/*
 * protocol.h - memcached's text and meta protocols, bytes in, replies out
 *
 * The parser knows nothing of sockets or libuv.  A connection hands it every
 * byte it has buffered and a reply budget; the parser owns the framing: it
 * finds each command line, takes the command's data block with it, answers
 * the whole commands in order (appending the replies to an output buffer),
 * and says how many bytes it used and how many must be buffered before a
 * call can progress, so a 1 MiB value arriving in 64 KiB reads is parsed
 * once, not sixteen times.  The transport never looks inside the bytes.
 *
 * Reply bytes are memcached 1.6's (doc/protocol.txt), errors included.
 *
 * Interface routines:
 *   proto_out_reserve  make room in an output buffer
 *   proto_process      answer the whole commands in a buffer
 *   proto_conn_init    a new connection's parser state
 *   proto_peek_key     the key the next command will look up, if any
 */
#ifndef SHMKV_PROTOCOL_H
#define SHMKV_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"
#include "table.h"

/*
 * A growable reply buffer owned by the connection (malloc'd).  limit is the
 * reply budget: once len reaches it the parser starts no further command
 * (the one under way may overshoot it by its own replies).  0: no limit.
 */
struct proto_out {
	char *data;
	size_t len;
	size_t cap;
	size_t limit;
};

/* proto_out_reserve - room for n more bytes; -ENOMEM on failure. */
int proto_out_reserve(struct proto_out *out, size_t n);

/* What the server tells the parser; one per worker, read-only to it. */
struct proto_ctx {
	struct table *table;
	struct server_stats *stats;	     /* this worker's counters */
	const struct server_stats_view *all; /* every worker's, for `stats` */
	uint32_t max_item_size;
	const char *version; /* for `version` */
	/* For `stats settings` and `stats`. */
	const struct server_settings *settings;
	/* The worker's log level, which `verbosity` sets; NULL: ignored. */
	int *verbosity;
};

enum proto_action {
	PROTO_CONTINUE = 0, /* all whole commands answered; need says what's next */
	PROTO_FULL,   /* the reply budget is spent: send, then call again */
	PROTO_ATTACH, /* the last command used asks to attach (see below) */
	PROTO_CLOSE,  /* quit, or an error after which memcached closes */
};

/* A connection's parser state, carried from one call to the next. */
struct proto_conn {
	size_t need;	  /* bytes to buffer before another call can progress */
	uint64_t swallow; /* bytes of a refused data block still to skip */
	/* With PROTO_ATTACH: the attach command line, its newline included,
	 * is the last attach_len bytes the call used. */
	size_t attach_len;
	bool past_first_byte; /* the protocol was chosen (text, or binary refused) */
	/* What proto_peek_key named, for the next proto_process call only. */
	const char *peek_key;
	size_t peek_len;
	uint64_t peek_hash;
};

void proto_conn_init(struct proto_conn *conn);

/*
 * proto_process - answer the whole commands at the start of in[0, len).
 * Returns the number of bytes used: whole commands only, each with its
 * data block; the rest is the start of an incomplete command, to present
 * again with more bytes after it, and conn->need is the length that rest
 * must reach before a call can progress.  *action says why it stopped:
 * PROTO_CONTINUE (nothing more to do until more bytes come), PROTO_FULL
 * (out->len reached out->limit; call again with the rest once the replies
 * are on their way), PROTO_ATTACH (the last command used is a client
 * program's request for the segment, which only the transport can answer)
 * or PROTO_CLOSE (close the connection once out has been sent).
 */
size_t proto_process(const struct proto_ctx *ctx, struct proto_conn *conn,
		     const char *in, size_t len, struct proto_out *out,
		     enum proto_action *action);

/*
 * proto_peek_key - name, in conn's peek_key, peek_len and peek_hash, the
 * key of the command at the start of in[0, len), when it names one key to look up or store (get, gets, gat,
 * gats, touch, set and the other stores, delete, incr, decr and the meta
 * commands) and that key is whole in the buffer.  A hint, so that the
 * transport can warm the key's lines of the table before the command is
 * answered: it decides nothing, and the next proto_process call parses the
 * command in full.  That call, if it is on the same bytes, reuses the hash
 * for the key's lookup instead of computing it again; any call forgets it.
 */
bool proto_peek_key(struct proto_conn *conn, const char *in, size_t len);

#endif
