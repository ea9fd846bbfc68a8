/*
 * worker.h - one worker process: a libuv loop serving connections
 *
 * A worker is forked by the supervisor and inherits the segment at the same
 * address, the Unix listening socket and its slot's TCP listening socket
 * (listener.c).  It claims a proc slot of its own, accepts on both, tells
 * the supervisor it is serving, and serves until SIGTERM.
 *
 * The connections see only what struct conn_ctx gives them (connection.h).
 *
 * Interface routines:
 *   worker_run            serve until told to stop; the exit status
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
	struct cache *cache;		       /* inherited mapping */
	const struct server_stats_view *stats; /* every worker's slot */
	const struct server_settings *settings;
	uint32_t index;	    /* 0..workers-1, its stats slot */
	int unix_fd;	    /* listening, inherited */
	const int *tcp_fds; /* this slot's, one per -l address */
	uint32_t ntcp;	    /* 0 with -p 0 */
	int ready_fd;	    /* our pid goes here once serving */
};

#define WORKER_LISTENERS ((int)(1 + CONFIG_MAX_LISTEN))

/* A listening socket the worker accepts on itself (see worker.c). */
struct worker_listener {
	uv_poll_t poll;
	int fd; /* inherited; -1 when this kind is not served */
	bool tcp;
	bool open; /* poll handle initialised */
	struct worker *w;
};

struct worker {
	uv_loop_t loop;
	/* The Unix socket, then TCP on each -l address. */
	struct worker_listener listeners[WORKER_LISTENERS];
	uv_timer_t accept_timer; /* resumes after EMFILE */
	uv_signal_t sigterm;
	uv_signal_t sigretire; /* SIGUSR2: a live upgrade */
	uv_timer_t stop_timer;
	uv_timer_t retire_timer;
	bool accept_paused;
	bool stopping;
	uint32_t index;
	int verbosity; /* the log level; `verbosity` changes it */
	struct proto_ctx ctx;
	struct server_stats *stats; /* this worker's slot */
	const struct server_stats_view *all;
	struct conn_ctx net;	     /* what its connections share */
	struct attach_server attach; /* for client programs */
};

/*
 * worker_run - claim a proc slot, listen, serve until SIGTERM, then stop
 * accepting, finish the replies in flight and return 0 (the worker's exit
 * status); 1 if it could not start.  Called in the forked child only.
 */
int worker_run(const struct worker_args *args);

#endif
