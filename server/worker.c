/*
 * worker.c - a worker process: its loop, its listeners, its orderly stop
 *
 * The supervisor forks a worker with the segment mapped and the Unix
 * listening socket open; everything else the worker makes for itself, after
 * fork, so that nothing of one worker's libuv state is shared with another:
 * a fresh uv_loop_t, its own proc slot, its own TCP listening socket.
 *
 * NOTE: each worker binds its own TCP socket with SO_REUSEPORT rather than
 * inheriting one socket from the supervisor.  With one shared socket every
 * worker's epoll wakes for each connection and all but one find nothing to
 * accept; with SO_REUSEPORT the kernel hashes each connection to one
 * socket, so the load spreads without a thundering herd.  The Unix socket
 * is shared instead, because its path can be bound only once; a worker that
 * loses the race for a connection there just sees EAGAIN.
 *
 * Stopping (SIGTERM): close the listeners, so the kernel sends new
 * connections to the other workers or refuses them; let each connection
 * finish writing the replies it has produced; then the loop runs out of
 * handles and the worker exits 0.  A client that does not read its replies
 * could hold that up for ever, so after WORKER_STOP_GRACE_MS whatever is
 * left is closed regardless.
 *
 * Interface routines:
 *   worker_run, worker_open_tcp (see worker.h)
 */
#include "worker.h"

#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connection.h"

#define WORKER_BACKLOG 1024
#define WORKER_STOP_GRACE_MS 5000

int worker_open_tcp(const char *listen, int port, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	char service[16];
	int fd = -1, rc, one = 1, saved = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%d", port);
	rc = getaddrinfo(listen, service, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve --listen '%s': %s", listen,
			 gai_strerror(rc));
		return -EINVAL;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
		    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == 0 &&
		    bind(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen, "cannot bind %s:%d: %s%s", listen, port,
			 strerror(saved),
			 saved == EADDRINUSE ? " (another program has the port; "
					       "stop it or choose another --port)" : "");
		return -(saved ? saved : EADDRNOTAVAIL);
	}
	return fd;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct worker *w = server->data;

	if (status < 0) {
		SERVER_LOG("worker %u: accept failed: %s", w->index, uv_strerror(status));
		return;
	}
	conn_accept(&w->net, server);
}

static void on_stop_timer(uv_timer_t *timer)
{
	struct worker *w = timer->data;

	SERVER_LOG("worker %u: replies still unsent after %d ms; closing", w->index,
		   WORKER_STOP_GRACE_MS);
	conn_abort_all(&w->net);
	uv_close((uv_handle_t *)timer, NULL);
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
	if (w->verbosity >= 1)
		SERVER_LOG("worker %u: stopping", w->index);
	if (w->tcp_open)
		uv_close((uv_handle_t *)&w->tcp, NULL);
	uv_close((uv_handle_t *)&w->unix_listener, NULL);
	uv_close((uv_handle_t *)&w->sigterm, NULL);
	conn_drain_all(&w->net);
	if (w->net.conns != NULL) {
		uv_timer_init(&w->loop, &w->stop_timer);
		w->stop_timer.data = w;
		uv_timer_start(&w->stop_timer, on_stop_timer, WORKER_STOP_GRACE_MS, 0);
		/* Only connections keep the loop alive, not the grace timer. */
		uv_unref((uv_handle_t *)&w->stop_timer);
	}
}

static void on_sigterm(uv_signal_t *sig, int signum)
{
	(void)signum;
	worker_stop(sig->data);
}

static void close_any(uv_handle_t *handle, void *arg)
{
	(void)arg;
	if (!uv_is_closing(handle))
		uv_close(handle, NULL);
}

/* worker_listen - the Unix socket, and TCP unless -p 0. */
static int worker_listen(struct worker *w, const struct worker_args *a)
{
	char err[256];
	int fd, rc;

	rc = uv_pipe_init(&w->loop, &w->unix_listener, 0);
	if (rc == 0)
		rc = uv_pipe_open(&w->unix_listener, a->unix_fd);
	w->unix_listener.data = w;
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&w->unix_listener, WORKER_BACKLOG,
			       on_connection);
	if (rc < 0) {
		SERVER_LOG("worker %u: cannot listen on %s: %s", w->index,
			   a->cfg->unix_socket, uv_strerror(rc));
		return rc;
	}
	if (a->cfg->port == 0)
		return 0;
	fd = worker_open_tcp(a->cfg->listen, a->cfg->port, err, sizeof(err));
	if (fd < 0) {
		SERVER_LOG("worker %u: %s", w->index, err);
		return fd;
	}
	rc = uv_tcp_init(&w->loop, &w->tcp);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	w->tcp_open = true;
	w->tcp.data = w;
	rc = uv_tcp_open(&w->tcp, fd);
	if (rc < 0) {
		close(fd);
	} else {
		rc = uv_listen((uv_stream_t *)&w->tcp, WORKER_BACKLOG, on_connection);
	}
	if (rc < 0)
		SERVER_LOG("worker %u: cannot listen on %s:%d: %s", w->index,
			   a->cfg->listen, a->cfg->port, uv_strerror(rc));
	return rc;
}

int worker_run(const struct worker_args *a)
{
	static struct worker w; /* one per process; static keeps it off the stack */
	int rc, status = 0;

	memset(&w, 0, sizeof(w));
	w.index = a->index;
	w.verbosity = a->cfg->verbosity;
	w.all = a->stats;
	w.stats = &a->stats->slots[a->index];
	w.ctx.table = &a->cache->table;
	w.ctx.stats = w.stats;
	w.ctx.all = a->stats;
	w.ctx.max_item_size = a->cfg->max_item_size;
	w.ctx.version = SERVER_VERSION;
	w.ctx.settings = a->settings;
	w.ctx.verbosity = &w.verbosity;
	w.net.loop = &w.loop;
	w.net.proto = &w.ctx;
	w.net.attach = &w.attach;
	w.net.stats = w.stats;
	w.net.all = a->stats;
	w.net.verbosity = &w.verbosity;
	w.net.index = a->index;
	w.net.max_connections = a->cfg->max_connections;
	w.net.idle_timeout = a->cfg->idle_timeout;

	rc = cache_claim_proc(a->cache);
	if (rc < 0) {
		SERVER_LOG("worker %u: no free proc slot: %s", a->index, strerror(-rc));
		return 1;
	}
	/* Read buffers and reply batches are freed as fast as they are taken;
	 * without this glibc gives the top of the heap back and takes it again
	 * with brk every few requests. */
	mallopt(M_TRIM_THRESHOLD, 32 << 20);
	w.attach.cache = a->cache;
	w.attach.stats = w.stats;
	w.attach.policy.group_set = a->cfg->attach_group_set;
	w.attach.policy.group = a->cfg->attach_gid;
	w.attach.policy.group_name = a->cfg->attach_group;
	/* One read-only descriptor per worker, handed to every client. */
	w.attach.data_ro_fd = segment_readonly_fd(&a->cache->seg);
	if (w.attach.data_ro_fd < 0)
		SERVER_LOG("worker %u: client programs cannot attach: %s",
			   a->index, strerror(-w.attach.data_ro_fd));
	rc = uv_loop_init(&w.loop);
	if (rc < 0) {
		SERVER_LOG("worker %u: cannot create its event loop: %s", a->index,
			   uv_strerror(rc));
		cache_release_proc(a->cache);
		return 1;
	}
	rc = uv_signal_init(&w.loop, &w.sigterm);
	w.sigterm.data = &w;
	if (rc == 0)
		rc = uv_signal_start(&w.sigterm, on_sigterm, SIGTERM);
	if (rc == 0)
		rc = worker_listen(&w, a);
	if (rc == 0) {
		if (w.verbosity >= 1)
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
	if (w.attach.data_ro_fd >= 0)
		close(w.attach.data_ro_fd);
	cache_release_proc(a->cache);
	return status;
}
