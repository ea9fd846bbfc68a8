/*
 * worker.c - a worker process: its loop, its listeners, its orderly stop
 *
 * The supervisor forks a worker with the segment mapped and the listening
 * sockets open (listener.c: its slot's TCP socket, the shared Unix one);
 * everything else the worker makes for itself, after fork, so that nothing
 * of one worker's libuv state is shared with another: a fresh uv_loop_t
 * and its own proc slot.  Once it listens it writes its pid on the ready
 * pipe: from then on the supervisor restarts it at once if it dies.
 *
 * NOTE: the worker accepts by hand (a uv_poll_t on each listening socket
 * and accept4) rather than with uv_listen.  Out of file descriptors, libuv
 * closes its reserve descriptor, accepts every pending connection and
 * closes it at once, so those clients are dropped.  We do as memcached
 * does instead: stop accepting (listen_disabled_num counts it) and try
 * again every WORKER_ACCEPT_RETRY_MS, so the connections wait in the
 * backlog until a descriptor is free, and nothing spins meanwhile.  The
 * Unix socket is shared by every worker: one that loses the race for a
 * connection there just sees EAGAIN.
 *
 * Stopping (SIGTERM): stop accepting, so that the kernel hands new
 * connections to the other workers or queues them for the next one; let
 * each connection finish writing the replies it has produced; then the
 * loop runs out of handles and the worker exits 0.  A client that does not
 * read its replies could hold that up for ever, so after
 * WORKER_STOP_GRACE_MS whatever is left is closed regardless.  A worker
 * whose supervisor dies gets the same SIGTERM from the kernel
 * (PR_SET_PDEATHSIG, set by the supervisor at fork).
 *
 * Retiring (SIGUSR2, from a supervisor whose successor serves: upgrade.c):
 * stop accepting, then go on serving the connections already accepted for
 * WORKER_RETIRE_LINGER_MS before stopping as above.  NOTE: stopping at
 * once would drop a request that a client sent on a connection accepted a
 * moment before, but not read yet; the new workers take every connection
 * that arrives meanwhile.
 *
 * Interface routines:
 *   worker_run (see worker.h)
 */
#include "worker.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connection.h"
#include "stats_conns.h"

_Static_assert(SERVER_CONN_UNIX_ID == CONFIG_MAX_LISTEN &&
		       SERVER_CONN_FIRST_ID == CONFIG_MAX_LISTEN + 1,
	       "stats conns ids: one per -l address, the Unix socket, then "
	       "the connections");

#define WORKER_STOP_GRACE_MS 5000
#define WORKER_RETIRE_LINGER_MS 1000
#define WORKER_ACCEPT_BATCH 64	  /* then let the loop serve the others */
#define WORKER_ACCEPT_RETRY_MS 10 /* out of fds: memcached's interval */

/*
 * accept_some - accept up to a batch of the connections pending on l.
 * Returns 0, or the errno that stops accepting for now: out of file
 * descriptors or memory, or a failure we do not know to be passing (which
 * would otherwise wake a level-triggered poll again at once).
 */
static int accept_some(struct worker_listener *l)
{
	int n, fd;

	for (n = 0; n < WORKER_ACCEPT_BATCH; n++) {
		fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			conn_accept(&l->w->net, fd, l->tcp);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		/* The client gave up, or a signal: the next one may be fine. */
		if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
			continue;
		return errno;
	}
	return 0;
}

static void on_accept_timer(uv_timer_t *timer);
static void on_listener(uv_poll_t *poll, int status, int events);

static void listeners_poll(struct worker *w, bool on)
{
	int i;

	for (i = 0; i < WORKER_LISTENERS; i++)
		if (w->listeners[i].open) {
			if (on)
				uv_poll_start(&w->listeners[i].poll,
					      UV_READABLE, on_listener);
			else
				uv_poll_stop(&w->listeners[i].poll);
		}
}

/* pause_accepting - stop polling the listeners and try again later. */
static void pause_accepting(struct worker *w, int err)
{
	if (!w->accept_paused) {
		w->accept_paused = true;
		listeners_poll(w, false);
		atomic_fetch_add_explicit(&w->stats->listen_disabled_num, 1,
					  memory_order_relaxed);
		if (err != EMFILE && err != ENFILE)
			SERVER_LOG("worker %u: accept failed: %s; retrying in %d ms",
				   w->index, strerror(err),
				   WORKER_ACCEPT_RETRY_MS);
		else if (server_verbosity(w->all, w->verbosity) >= 1)
			SERVER_LOG("worker %u: out of file descriptors; not accepting "
				   "for now",
				   w->index);
	}
	uv_timer_start(&w->accept_timer, on_accept_timer,
		       WORKER_ACCEPT_RETRY_MS, 0);
}

static void on_accept_timer(uv_timer_t *timer)
{
	struct worker *w = timer->data;
	int i, err;

	if (w->stopping)
		return;
	for (i = 0; i < WORKER_LISTENERS; i++) {
		if (!w->listeners[i].open)
			continue;
		err = accept_some(&w->listeners[i]);
		if (err != 0) {
			pause_accepting(w, err);
			return;
		}
	}
	w->accept_paused = false;
	listeners_poll(w, true);
}

static void on_listener(uv_poll_t *poll, int status, int events)
{
	struct worker_listener *l = poll->data;
	int err;

	(void)events;
	err = status < 0 ? -status : accept_some(l);
	if (err != 0)
		pause_accepting(l->w, err);
}

static void on_stop_timer(uv_timer_t *timer)
{
	struct worker *w = timer->data;

	SERVER_LOG("worker %u: replies still unsent after %d ms; closing",
		   w->index, WORKER_STOP_GRACE_MS);
	conn_abort_all(&w->net);
	uv_close((uv_handle_t *)timer, NULL);
}

/* listeners_close - accept no more.  The sockets stay open in the
 * supervisor, for the other workers and the next one in this slot. */
static void listeners_close(struct worker *w)
{
	int i;

	for (i = 0; i < WORKER_LISTENERS; i++)
		if (w->listeners[i].open) {
			uv_close((uv_handle_t *)&w->listeners[i].poll, NULL);
			w->listeners[i].open = false;
			close(w->listeners[i].fd);
		}
	/* Initialised with the listeners, before the loop ever ran; a retiring
	 * worker closed it already. */
	if (!uv_is_closing((uv_handle_t *)&w->accept_timer))
		uv_close((uv_handle_t *)&w->accept_timer, NULL);
}

/*
 * worker_stop - stop accepting and let the open connections finish.  The
 * loop ends by itself once the last handle is closed.
 */
static void worker_stop(struct worker *w)
{
	if (w->stopping)
		return;
	w->stopping = true;
	if (server_verbosity(w->all, w->verbosity) >= 1)
		SERVER_LOG("worker %u: stopping", w->index);
	listeners_close(w);
	uv_close((uv_handle_t *)&w->sigterm, NULL);
	if (!uv_is_closing((uv_handle_t *)&w->sigretire))
		uv_close((uv_handle_t *)&w->sigretire, NULL);
	conn_drain_all(&w->net);
	if (w->net.conns != NULL) {
		uv_timer_init(&w->loop, &w->stop_timer);
		w->stop_timer.data = w;
		uv_timer_start(&w->stop_timer, on_stop_timer,
			       WORKER_STOP_GRACE_MS, 0);
		/* Only connections keep the loop alive, not the grace timer. */
		uv_unref((uv_handle_t *)&w->stop_timer);
	}
}

static void on_sigterm(uv_signal_t *sig, int signum)
{
	(void)signum;
	worker_stop(sig->data);
}

static void on_retired(uv_timer_t *timer)
{
	uv_close((uv_handle_t *)timer, NULL);
	worker_stop(timer->data);
}

/* on_sigretire - accept no more now, stop after the linger (see the top). */
static void on_sigretire(uv_signal_t *sig, int signum)
{
	struct worker *w = sig->data;

	(void)signum;
	if (w->stopping)
		return;
	listeners_close(w);
	uv_close((uv_handle_t *)&w->sigretire, NULL);
	uv_timer_init(&w->loop, &w->retire_timer);
	w->retire_timer.data = w;
	uv_timer_start(&w->retire_timer, on_retired, WORKER_RETIRE_LINGER_MS, 0);
}

static void close_any(uv_handle_t *handle, void *arg)
{
	(void)arg;
	if (!uv_is_closing(handle))
		uv_close(handle, NULL);
}

/* worker_listen - accept on the inherited sockets: Unix, and TCP unless -p 0. */
static int worker_listen(struct worker *w, const struct worker_args *a)
{
	struct worker_listener *l;
	int i, rc;

	rc = uv_timer_init(&w->loop, &w->accept_timer);
	if (rc < 0)
		return rc;
	w->accept_timer.data = w;
	for (i = 0; i < WORKER_LISTENERS; i++) {
		l = &w->listeners[i];
		l->fd = i == 0			 ? a->unix_fd
			: (uint32_t)i <= a->ntcp ? a->tcp_fds[i - 1]
						 : -1;
		l->tcp = i > 0;
		l->w = w;
		if (l->fd < 0)
			continue;
		rc = uv_poll_init(&w->loop, &l->poll, l->fd);
		if (rc < 0) {
			SERVER_LOG("worker %u: cannot watch its %s listening socket: %s",
				   w->index, l->tcp ? "TCP" : "Unix",
				   uv_strerror(rc));
			return rc;
		}
		l->poll.data = l;
		l->open = true;
	}
	listeners_poll(w, true);
	return 0;
}

/* tell_ready - the supervisor restarts a serving worker without delay. */
static void tell_ready(int ready_fd)
{
	int32_t me = (int32_t)getpid();

	if (ready_fd < 0)
		return;
	/* One int32, written whole (below PIPE_BUF); should it fail, the
	 * supervisor just takes us for a worker that is still starting. */
	(void)!write(ready_fd, &me, sizeof(me));
	close(ready_fd);
}

/* worker_init - the worker's contexts for the parser and the transport,
 * from its arguments. */
static void worker_init(struct worker *w, const struct worker_args *a)
{
	memset(w, 0, sizeof(*w));
	w->index = a->index;
	w->verbosity = a->cfg->verbosity;
	w->all = a->stats;
	w->stats = &a->stats->slots[a->index];
	w->ctx.table = &a->cache->table;
	w->ctx.stats = w->stats;
	w->ctx.all = a->stats;
	w->ctx.max_item_size = a->cfg->max_item_size;
	w->ctx.version = SERVER_VERSION;
	w->ctx.settings = a->settings;
	w->ctx.verbosity = &w->verbosity;
	w->net.loop = &w->loop;
	w->net.proto = &w->ctx;
	w->net.attach = &w->attach;
	w->net.stats = w->stats;
	w->net.all = a->stats;
	w->net.verbosity = &w->verbosity;
	w->net.index = a->index;
	w->net.max_connections = a->cfg->max_connections;
	w->net.idle_timeout = a->cfg->idle_timeout;
	a->cache->table.no_evict = a->cfg->evict_disabled; /* -M */
}

/* worker_init_attach - what an attaching client program is handed. */
static void worker_init_attach(struct worker *w, const struct worker_args *a)
{
	w->attach.cache = a->cache;
	w->attach.stats = w->stats;
	w->attach.policy.group_set = a->cfg->attach_group_set;
	w->attach.policy.group = a->cfg->attach_gid;
	w->attach.policy.group_name = a->cfg->attach_group;
	/* One read-only descriptor per worker, handed to every client. */
	w->attach.data_ro_fd = segment_readonly_fd(&a->cache->seg);
	if (w->attach.data_ro_fd < 0)
		SERVER_LOG("worker %u: client programs cannot attach: %s",
			   a->index, strerror(-w->attach.data_ro_fd));
}

int worker_run(const struct worker_args *a)
{
	static struct worker w; /* one per process; static keeps it off the stack */
	int rc, status = 0;

	worker_init(&w, a);
	/* `stats conns` records a killed predecessor in this slot left. */
	server_conns_reap(a->stats, a->index);

	rc = cache_claim_proc(a->cache);
	if (rc < 0) {
		SERVER_LOG("worker %u: no free proc slot: %s", a->index,
			   strerror(-rc));
		return 1;
	}
	/* Reply batches and connections' own buffers are freed as fast as
	 * they are taken; without this glibc gives the top of the heap back
	 * and takes it again with brk every few requests. */
	mallopt(M_TRIM_THRESHOLD, 32 << 20);
	worker_init_attach(&w, a);
	rc = uv_loop_init(&w.loop);
	if (rc < 0) {
		SERVER_LOG("worker %u: cannot create its event loop: %s",
			   a->index, uv_strerror(rc));
		cache_release_proc(a->cache);
		return 1;
	}
	rc = uv_signal_init(&w.loop, &w.sigterm);
	w.sigterm.data = &w;
	if (rc == 0)
		rc = uv_signal_start(&w.sigterm, on_sigterm, SIGTERM);
	if (rc == 0)
		rc = uv_signal_init(&w.loop, &w.sigretire);
	w.sigretire.data = &w;
	if (rc == 0)
		rc = uv_signal_start(&w.sigretire, on_sigretire, SIGUSR2);
	if (rc == 0)
		rc = worker_listen(&w, a);
	if (rc == 0) {
		tell_ready(a->ready_fd);
		if (server_verbosity(w.all, w.verbosity) >= 1)
			SERVER_LOG("worker %u: serving", a->index);
		uv_run(&w.loop, UV_RUN_DEFAULT);
	} else {
		status = 1;
	}
	/* Close what is left (listeners after a failed start, the unref'd
	 * grace timer) so that the loop can be closed cleanly. */
	uv_walk(&w.loop, close_any, NULL);
	uv_run(&w.loop, UV_RUN_DEFAULT);
	rc = uv_loop_close(&w.loop);
	if (rc < 0)
		SERVER_LOG("worker %u: event loop not closed: %s", a->index,
			   uv_strerror(rc));
	conn_ctx_release(&w.net);
	if (w.attach.data_ro_fd >= 0)
		close(w.attach.data_ro_fd);
	cache_release_proc(a->cache);
	return status;
}
