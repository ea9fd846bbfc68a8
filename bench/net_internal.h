/*
 * net_internal.h - what net.c (threads and phases) and net_conn.c (one
 * connection) share: the state of a connection, of a thread and of the run
 *
 * Interface routines (net_conn.c):
 *   conn_start    - connect; preloading starts once connected
 *   conn_fill     - send requests until the pipeline is full
 *   conn_fail     - give up on a connection, counting what it had in flight
 *   conn_close    - close its handle (once)
 *   conn_set_idle - mark it done with the current phase
 */
#ifndef BENCH_NET_INTERNAL_H
#define BENCH_NET_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "histogram.h"
#include "keyspace.h"
#include "options.h"
#include "report.h"

#define PRELOAD_DEPTH 64 /* sets in flight per connection in preload */
#define READ_MIN 16384	 /* free space offered to each read */
#define STALL_NS (5ull * 1000000000ull) /* no reply for this long: give up */
#define NOTES_MAX 10			/* messages about bad replies, in all */

enum phase {
	PHASE_PRELOAD,
	PHASE_RUN
};

struct wbuf {
	char *p;
	size_t len;
	size_t cap;
};

struct net_req {
	uint64_t t0;
	uint32_t nkeys; /* 0 = a set */
};

struct net_thread;

struct net_conn {
	union {
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	uv_stream_t *stream;
	uv_connect_t connect_req;
	uv_write_t write_req;
	struct net_thread *t;
	unsigned index; /* among all connections, for messages */
	struct rng rng;
	char *rbuf;
	size_t rlen, rcap;
	struct wbuf wb[2];
	unsigned wfill; /* wb[wfill] collects, wb[!wfill] is written */
	bool writing;
	struct net_req *ring;
	uint64_t *ring_keys; /* ring_size * multiget key indexes */
	unsigned ring_size, head, inflight;
	unsigned kpos;	/* head request: next key a VALUE may be */
	unsigned got;	/* head request: VALUEs so far */
	uint64_t quota; /* requests left to send (--requests) */
	uint64_t preload_next, preload_end;
	uint64_t last_reply; /* for the stall check */
	bool dead, idle, closed;
};

struct net_shared {
	const struct bench_options *o;
	const struct keyspace *ks;
	struct sockaddr_storage addr;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	unsigned preloaded; /* threads done with the preload */
	unsigned finished;  /* threads done with the run */
	bool go;
	unsigned notes; /* atomic: messages printed */
	const char *target;
};

struct net_thread {
	uv_loop_t loop;
	uv_timer_t deadline;
	uv_timer_t watch;
	pthread_t tid;
	struct net_shared *sh;
	struct net_conn *conns;
	unsigned nconns;
	unsigned active; /* connections not yet idle in this phase */
	enum phase phase;
	bool stopping;
	struct bench_counters pre, run;
	struct hist get_lat, set_lat;
	uint64_t pre_start, pre_end, start, end;
	uint64_t lost;
	struct bench_live live;
};

void conn_start(struct net_conn *c);
void conn_fill(struct net_conn *c, uint64_t now);
void conn_fail(struct net_conn *c, const char *why);
void conn_close(struct net_conn *c);
void conn_set_idle(struct net_conn *c);

#endif
