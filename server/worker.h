/*
 * worker.h - one worker process: a libuv loop serving connections
 *
 * A worker is forked by the supervisor and inherits the segment at the same
 * address and the Unix listening socket.  It claims a proc slot of its own,
 * opens its own TCP listening socket with SO_REUSEPORT (the kernel spreads
 * connections over the workers), and serves until SIGTERM.
 *
 * The connections see only what struct conn_ctx gives them (connection.h).
 *
 * Interface routines:
 *   worker_run            serve until told to stop; the exit status
 *   worker_open_tcp       a bound SO_REUSEPORT socket on -l:-p (also used by
 *                         the supervisor to test the port before forking)
 */
#ifndef SHMKV_WORKER_H
#define SHMKV_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "attach_server.h"
#include "cache.h"
#include "config.h"
#include "connection.h"
#include "protocol.h"
#include "stats.h"

/* What the supervisor hands a worker it forks. */
struct worker_args {
	const struct server_config *cfg;
	struct cache *cache;                    /* inherited mapping */
	const struct server_stats_view *stats;  /* every worker's slot */
	const struct server_settings *settings;
	uint32_t index;                         /* 0..workers-1, its stats slot */
	int unix_fd;                            /* listening, inherited */
};

struct worker {
	uv_loop_t loop;
	uv_tcp_t tcp;
	uv_pipe_t unix_listener;
	uv_signal_t sigterm;
	uv_timer_t stop_timer;
	bool tcp_open;
	bool stopping;
	uint32_t index;
	int verbosity;              /* the log level; `verbosity` changes it */
	struct proto_ctx ctx;
	struct server_stats *stats;              /* this worker's slot */
	const struct server_stats_view *all;
	struct conn_ctx net;                     /* what its connections share */
	struct attach_server attach;             /* for client programs */
};

/*
 * worker_run - claim a proc slot, listen, serve until SIGTERM, then stop
 * accepting, finish the replies in flight and return 0 (the worker's exit
 * status); 1 if it could not start.  Called in the forked child only.
 */
int worker_run(const struct worker_args *args);

/*
 * worker_open_tcp - a TCP socket with SO_REUSEADDR and SO_REUSEPORT bound to
 * listen:port (not yet listening).  Returns the fd or a negative errno, with
 * err saying which address failed.
 */
int worker_open_tcp(const char *listen, int port, char *err, size_t errlen);

#endif
