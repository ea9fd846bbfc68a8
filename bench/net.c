/*
 * net.c - network mode: drive a memcached-protocol server over TCP or a
 * Unix socket with libuv, checking every reply
 *
 * Each thread runs its own uv loop with its share of the connections, so
 * threads share nothing while the clock runs; they meet only twice, under
 * one mutex: after the preload (so the timed phase starts on a full cache,
 * on every thread at once) and at the end.
 *
 * Connections themselves (requests, replies, checks) are net_conn.c.  A
 * connection that waits too long for a reply is given up by a once-a-second
 * check here, so a server that stops answering ends the run instead of
 * hanging it.
 *
 * Interface routines:
 *   net_run - preload, run the timed phase, fill in the result
 */
#include "net.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"
#include "util.h"

/* --duration is up: send nothing more; the run ends when the replies in
 * flight are in. */
static void on_deadline(uv_timer_t *timer)
{
	struct net_thread *t = timer->data;

	t->stopping = true;
	for (unsigned i = 0; i < t->nconns; i++)
		if (!t->conns[i].dead && t->conns[i].inflight == 0)
			conn_set_idle(&t->conns[i]);
}

/* Once a second: a connection that has waited STALL_NS for a reply will
 * not get one; without this a silent server would hang the run. */
static void on_watch(uv_timer_t *timer)
{
	struct net_thread *t = timer->data;
	uint64_t now = now_ns();

	for (unsigned i = 0; i < t->nconns; i++) {
		struct net_conn *c = &t->conns[i];

		if (!c->dead && c->inflight > 0 && now - c->last_reply > STALL_NS)
			conn_fail(c, "no reply for 5 s; closing the connection");
	}
}

/* Run the loop until every connection is idle for this phase.
 * NOTE: not uv_run(UV_RUN_DEFAULT) with uv_stop from the last connection to
 * go idle: that connection may go idle outside uv_run (failing to start,
 * or with nothing to send), and a uv_stop made there would cut the next
 * phase's uv_run short instead. */
static void loop_until_idle(struct net_thread *t)
{
	while (t->active > 0)
		uv_run(&t->loop, UV_RUN_ONCE);
}

static void thread_phase_done(struct net_thread *t, unsigned *counter)
{
	pthread_mutex_lock(&t->sh->mu);
	(*counter)++;
	pthread_cond_broadcast(&t->sh->cond);
	if (counter == &t->sh->preloaded)
		while (!t->sh->go)
			pthread_cond_wait(&t->sh->cond, &t->sh->mu);
	pthread_mutex_unlock(&t->sh->mu);
}

static void *thread_main(void *arg)
{
	struct net_thread *t = arg;
	const struct bench_options *o = t->sh->o;

	t->phase = PHASE_PRELOAD;
	t->active = t->nconns;
	t->pre_start = now_ns();
	uv_timer_start(&t->watch, on_watch, 1000, 1000);
	for (unsigned i = 0; i < t->nconns; i++)
		conn_start(&t->conns[i]);
	loop_until_idle(t);
	t->pre_end = now_ns();
	live_publish(&t->live, &t->pre, 0);
	thread_phase_done(t, &t->sh->preloaded);

	t->phase = PHASE_RUN;
	t->start = now_ns();
	t->active = 0;
	for (unsigned i = 0; i < t->nconns; i++) {
		t->conns[i].idle = t->conns[i].dead;
		t->active += !t->conns[i].dead;
	}
	if (o->duration > 0)
		uv_timer_start(&t->deadline, on_deadline,
			       (uint64_t)(o->duration * 1000.0 + 0.5), 0);
	for (unsigned i = 0; i < t->nconns; i++)
		if (!t->conns[i].dead)
			conn_fill(&t->conns[i], t->start);
	loop_until_idle(t);
	t->end = now_ns();
	live_publish(&t->live, &t->run, 2);

	uv_close((uv_handle_t *)&t->deadline, NULL);
	uv_close((uv_handle_t *)&t->watch, NULL);
	for (unsigned i = 0; i < t->nconns; i++)
		conn_close(&t->conns[i]);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	thread_phase_done(t, &t->sh->finished);
	return NULL;
}

static int resolve(const struct bench_options *o, struct net_shared *sh,
		   char *target, size_t target_len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	char port[8];
	int rc;

	if (o->unix_path != NULL) {
		snprintf(target, target_len, "unix %s", o->unix_path);
		return 0;
	}
	snprintf(target, target_len, "tcp %s:%u", o->host, o->port);
	snprintf(port, sizeof(port), "%u", o->port);
	rc = getaddrinfo(o->host, port, &hints, &ai);
	if (rc != 0) {
		fprintf(stderr, "shmkv-bench: cannot resolve --host %s: %s\n",
			o->host, gai_strerror(rc));
		return -1;
	}
	memcpy(&sh->addr, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return 0;
}

/* Wait until *counter reaches n, printing progress once a second. */
static void wait_threads(struct net_shared *sh, struct net_thread *threads,
			 unsigned n, const unsigned *counter, uint64_t t0,
			 uint64_t *last_print, uint64_t *last_ops)
{
	pthread_mutex_lock(&sh->mu);
	while (*counter < n) {
		struct timespec ts;
		struct bench_live sum = { 0 }, one;
		uint64_t now;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&sh->cond, &sh->mu, &ts);
		now = now_ns();
		if (!sh->o->progress || now - *last_print < 1000000000ull ||
		    *counter >= n)
			continue;
		sum.phase = 2;
		for (unsigned i = 0; i < sh->o->threads; i++) {
			live_read(&threads[i].live, &one);
			sum.ops += one.ops;
			sum.errors += one.errors;
			sum.wrong += one.wrong;
			if (one.phase < sum.phase)
				sum.phase = one.phase;
		}
		if (sum.ops < *last_ops) /* the run's counts start from 0 */
			*last_ops = 0;
		report_progress(&sum, *last_ops,
				(double)(now - *last_print) / 1e9,
				(double)(now - t0) / 1e9);
		*last_ops = sum.ops;
		*last_print = now;
	}
	pthread_mutex_unlock(&sh->mu);
}

static void setup_threads(const struct bench_options *o, struct net_shared *sh,
			  struct net_thread *threads)
{
	uint64_t per = o->requests / o->connections;
	uint64_t extra = o->requests % o->connections;
	unsigned g = 0;

	for (unsigned i = 0; i < o->threads; i++) {
		struct net_thread *t = &threads[i];

		t->sh = sh;
		t->nconns = o->connections / o->threads +
			    (i < o->connections % o->threads);
		t->conns = xcalloc(t->nconns, sizeof(*t->conns));
		hist_reset(&t->get_lat);
		hist_reset(&t->set_lat);
		uv_loop_init(&t->loop);
		uv_timer_init(&t->loop, &t->deadline);
		uv_timer_init(&t->loop, &t->watch);
		t->deadline.data = t;
		t->watch.data = t;
		for (unsigned j = 0; j < t->nconns; j++, g++) {
			struct net_conn *c = &t->conns[j];

			c->t = t;
			c->index = g;
			rng_seed(&c->rng, o->seed, g);
			c->ring_size = o->pipeline > PRELOAD_DEPTH
					       ? o->pipeline
					       : PRELOAD_DEPTH;
			c->ring = xrealloc(NULL, c->ring_size * sizeof(*c->ring));
			c->ring_keys = xrealloc(NULL, (size_t)c->ring_size *
							      o->multiget *
							      sizeof(uint64_t));
			c->quota = o->preload_only ? 0
				   : o->requests   ? per + (g < extra)
						   : UINT64_MAX;
			if (o->preload) {
				c->preload_next = o->keys * g / o->connections;
				c->preload_end = o->keys * (g + 1) /
						 o->connections;
			}
		}
	}
}

static void merge_threads(const struct bench_options *o,
			  struct net_thread *threads, struct bench_result *res)
{
	uint64_t pre_start = UINT64_MAX, pre_end = 0;
	uint64_t start = UINT64_MAX, end = 0;

	for (unsigned i = 0; i < o->threads; i++) {
		struct net_thread *t = &threads[i];

		counters_add(&res->run, &t->run);
		counters_add(&res->preload, &t->pre);
		hist_merge(&res->get_latency, &t->get_lat);
		hist_merge(&res->set_latency, &t->set_lat);
		res->conns_lost += t->lost;
		if (t->pre_start < pre_start)
			pre_start = t->pre_start;
		if (t->pre_end > pre_end)
			pre_end = t->pre_end;
		if (t->start < start)
			start = t->start;
		if (t->end > end)
			end = t->end;
	}
	res->preload_elapsed = (double)(pre_end - pre_start) / 1e9;
	res->elapsed = (double)(end - start) / 1e9;
}

int net_run(const struct bench_options *o, const struct keyspace *ks,
	    struct bench_result *res)
{
	static struct net_shared sh;
	struct net_thread *threads;
	pthread_condattr_t ca;
	uint64_t t0, last_print, last_ops = 0;
	unsigned started = 0;
	int rc = 0;

	sh.o = o;
	sh.ks = ks;
	res->mode = "network";
	res->timing = "clock_gettime(CLOCK_MONOTONIC) once per read and per batch sent; latency per request, queueing in the pipeline included";
	res->timer_overhead_ns = timer_overhead_ns();
	if (resolve(o, &sh, res->target, sizeof(res->target)) != 0)
		return -1;
	sh.target = res->target;
	pthread_mutex_init(&sh.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sh.cond, &ca);
	pthread_condattr_destroy(&ca);

	threads = xcalloc(o->threads, sizeof(*threads));
	setup_threads(o, &sh, threads);
	t0 = last_print = now_ns();
	for (; started < o->threads; started++) {
		int err = pthread_create(&threads[started].tid, NULL,
					 thread_main, &threads[started]);

		if (err != 0) {
			fprintf(stderr,
				"shmkv-bench: cannot start thread %u: %s\n",
				started, strerror(err));
			exit(1);
		}
	}
	wait_threads(&sh, threads, o->threads, &sh.preloaded, t0, &last_print,
		     &last_ops);
	pthread_mutex_lock(&sh.mu);
	sh.go = true;
	pthread_cond_broadcast(&sh.cond);
	pthread_mutex_unlock(&sh.mu);
	wait_threads(&sh, threads, o->threads, &sh.finished, t0, &last_print,
		     &last_ops);

	for (unsigned i = 0; i < o->threads; i++) {
		struct net_thread *t = &threads[i];

		pthread_join(t->tid, NULL);
		uv_loop_close(&t->loop);
	}
	merge_threads(o, threads, res);
	if (res->conns_lost == o->connections && res->run.requests == 0 &&
	    res->preload.requests == 0) {
		fprintf(stderr,
			"shmkv-bench: no connection to %s worked; nothing measured\n",
			res->target);
		rc = -1;
	}
	for (unsigned i = 0; i < o->threads; i++) {
		for (unsigned j = 0; j < threads[i].nconns; j++) {
			struct net_conn *c = &threads[i].conns[j];

			free(c->rbuf);
			free(c->wb[0].p);
			free(c->wb[1].p);
			free(c->ring);
			free(c->ring_keys);
		}
		free(threads[i].conns);
	}
	free(threads);
	pthread_cond_destroy(&sh.cond);
	pthread_mutex_destroy(&sh.mu);
	return rc;
}
