/*
 * connection.h - one client connection of a worker: bytes in, replies out
 *
 * A connection buffers what it reads, hands every unused byte and a reply
 * budget to proto_process, keeps the incomplete tail, and writes the
 * replies of one read with one write; the reads of one wake-up are
 * answered together after the poll (connection_batch.c).  It stops
 * reading while too many reply bytes are unsent, so a client that never
 * reads cannot grow the worker's memory.  What the connections of a worker share is a struct
 * conn_ctx, which the worker fills in; connection.c sees nothing else of it.
 *
 * Interface routines:
 *   conn_accept      accept one pending connection (or refuse it when the
 *                    server is at --max-connections, as memcached does)
 *   conn_drain_all   stop reading; close each once its replies are sent
 *   conn_abort_all   close every connection now
 *   conn_ctx_release free the buffers the connections shared
 */
#ifndef SHMKV_CONNECTION_H
#define SHMKV_CONNECTION_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "attach_server.h"
#include "protocol.h"
#include "stats.h"

struct conn;

/* What a worker's connections share; the worker owns and fills it in. */
struct conn_ctx {
	uv_loop_t *loop;
	const struct proto_ctx *proto;	     /* the parser's context */
	struct attach_server *attach;	     /* for client programs */
	struct server_stats *stats;	     /* this worker's counters */
	const struct server_stats_view *all; /* every worker's (the limit) */
	const int *verbosity;	  /* log level; `verbosity` sets it */
	uint32_t index;		  /* the worker's, for log lines */
	uint32_t max_connections; /* for the whole server */
	uint32_t idle_timeout;	  /* seconds; 0 = never */
	struct conn *conns;	  /* open connections (a list) */
	/* The reads of one wake-up, answered together once the poll is done
	 * (connection_batch.c): they go into read_buf[0, read_used), and the
	 * connections they came from wait in pending[0, npending).  Allocated
	 * on first use, freed by conn_ctx_release. */
	char *read_buf;
	size_t read_used;
	struct conn **pending;
	size_t npending;
	size_t pending_cap;
	uv_check_t check; /* answers the pending ones after the poll */
	bool check_ready;
	/* Lent to one reply batch at a time (connection.c). */
	struct proto_out reply;
};

/* Above this many unsent reply bytes a connection stops reading. */
#define CONN_OUT_HIGH (4u * 1024u * 1024u)
/* ... and it resumes below this many. */
#define CONN_OUT_LOW (1u * 1024u * 1024u)

/*
 * conn_accept - serve fd, a connection the worker has just accepted on a
 * TCP (tcp) or Unix listening socket; it is ours to close.  Over the
 * server's connection limit the client gets "ERROR Too many open
 * connections" and is closed.  Failures are counted and logged, not
 * returned: the listener goes on either way.
 */
void conn_accept(struct conn_ctx *cc, int fd, bool tcp);

/* conn_drain_all - for a stopping worker: read nothing more, close each
 * connection once the replies already produced have been written. */
void conn_drain_all(struct conn_ctx *cc);

/* conn_abort_all - close every connection at once, replies or not. */
void conn_abort_all(struct conn_ctx *cc);

/* conn_ctx_release - free cc's shared buffers, once its loop has ended. */
void conn_ctx_release(struct conn_ctx *cc);

#endif
