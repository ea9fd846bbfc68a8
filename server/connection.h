/*
 * connection.h - one client connection of a worker: bytes in, replies out
 *
 * A connection buffers what it reads, hands every unconsumed byte to
 * proto_process, keeps the incomplete tail, and writes the replies of one
 * read with one uv_write.  It stops reading while too many reply bytes are
 * unsent, so a client that never reads cannot grow the worker's memory.
 *
 * Interface routines:
 *   conn_accept      accept one pending connection (or refuse it when the
 *                    server is at --max-connections, as memcached does)
 *   conn_drain_all   stop reading; close each once its replies are sent
 *   conn_abort_all   close every connection now
 */
#ifndef SHMKV_CONNECTION_H
#define SHMKV_CONNECTION_H

#include <stdbool.h>

#include <uv.h>

struct worker;

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
void conn_accept(struct worker *w, int fd, bool tcp);

/* conn_drain_all - for a stopping worker: read nothing more, close each
 * connection once the replies already produced have been written. */
void conn_drain_all(struct worker *w);

/* conn_abort_all - close every connection at once, replies or not. */
void conn_abort_all(struct worker *w);

#endif
