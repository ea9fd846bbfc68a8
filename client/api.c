/*
 * api.c - the public client library (include/shmkv.h)
 *
 * A handle is a connection to the server's Unix socket plus the segment the
 * server handed over on it.  Lookups (api_read.c) read the read-only
 * mapping without a lock, the proc slot the server claimed for us counting
 * their hits; writes are meta commands on
 * the connection, answered after the server applied them, which is why a
 * lookup right after a write sees it.
 *
 * Noticing a stopped server must cost a lookup nothing measurable: each
 * lookup reads the segment's state word (the supervisor marks it shut down
 * before it exits), and the connection is polled without blocking every
 * LIVENESS_EVERY lookups or LIVENESS_MS milliseconds, whichever comes
 * first, which also catches a server that died without marking anything
 * (killed, crashed).  A closed connection while the segment still says
 * RUNNING is a worker that went while the server serves (a live upgrade
 * retires every worker): the handle attaches again within the same call.
 * NOTE: counting lookups alone was not enough: a
 * program that looks up a key a second would read a killed server's data
 * for minutes.  The clock is CLOCK_MONOTONIC_COARSE, read from the vDSO
 * without a system call.  A handle that noticed detaches at once and tries
 * to attach again at its next call.  Lookups keep that countdown per
 * thread (api_read.c); the calls here keep one for the handle.
 *
 * Interface routines: see include/shmkv.h; the lookups are in api_read.c.
 */
#include "shmkv.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_internal.h"
#include "attach.h"
#include "cache.h"
#include "clock.h"
#include "errbuf.h"
#include "wire.h"

#define ERR_MAX API_ERR_MAX

static _Atomic uint64_t handles_opened;

/* The calling thread's last message (api_internal.h). */
_Thread_local struct api_error api_last_error;
#define last_error api_last_error

enum shmkv_status api_fail(enum shmkv_status st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errbuf_vset(last_error.text, sizeof(last_error.text), fmt, ap);
	va_end(ap);
	last_error.fresh = true;
	return st;
}

enum shmkv_status api_result_set(enum shmkv_status st)
{
	if (st == SHMKV_OK)
		last_error.text[0] = '\0';
	else if (!last_error.fresh)
		snprintf(last_error.text, sizeof(last_error.text), "%s",
			 shmkv_strerror(st));
	last_error.fresh = false;
	return st;
}

const char *shmkv_last_error(void)
{
	return last_error.text;
}

const char *shmkv_strerror(enum shmkv_status status)
{
	switch (status) {
	case SHMKV_OK: return "ok";
	case SHMKV_NOT_FOUND: return "not found";
	case SHMKV_TOO_SMALL: return "buffer too small for the value";
	case SHMKV_NOT_STORED: return "not stored";
	case SHMKV_EXISTS:
		return "the item changed since it was read (CAS mismatch)";
	case SHMKV_BAD_KEY: return "bad key: empty or longer than 250 bytes";
	case SHMKV_TOO_LARGE:
		return "value larger than the server's item size limit";
	case SHMKV_NO_MEMORY:
		return "the server is out of memory for this item";
	case SHMKV_NON_NUMERIC:
		return "cannot increment or decrement a non-numeric value";
	case SHMKV_NO_SERVER: return "no shmkv-server listening at that socket";
	case SHMKV_PERMISSION:
		return "the server does not let this user attach";
	case SHMKV_VERSION_MISMATCH:
		return "the server's segment layout version differs from the library's";
	case SHMKV_NO_PROC_SLOTS:
		return "the server has no proc slot left for another client";
	case SHMKV_SERVER_GONE:
		return "the server stopped; the next call reattaches";
	case SHMKV_PROTOCOL: return "unexpected reply from the server";
	case SHMKV_SYSTEM: return "a system call failed";
	case SHMKV_OUT_OF_MEMORY: return "out of memory in the client";
	}
	return "unknown status";
}

void api_detach(shmkv *kv)
{
	if (!kv->attached)
		return;
	struct cache *c = kv->cache;

	/* Lookups stop using it from here; api_retire waits for those that
	 * started before.  The slot is the server's to release when our
	 * connection closes. */
	atomic_store_explicit(&kv->live, NULL, memory_order_release);
	kv->cache = NULL;
	api_readers_rebind(kv); /* no reader counts into the slot now */
	close(kv->sock);
	kv->sock = -1;
	kv->attached = false;
	c->self = PROC_NONE;
	/* A lookup still inside may have loaded it: see publish. */
	__atomic_store_n(&c->self_proc, NULL, __ATOMIC_RELAXED);
	api_retire(kv, c);
}

static enum shmkv_status attach(shmkv *kv)
{
	struct attach_result res;
	struct shmkv_counters now;
	char err[ERR_MAX];
	enum shmkv_status st;
	struct cache *c;
	int rc;

	st = attach_connect(kv->path, kv->layout_version, &res, err, sizeof(err));
	if (st != SHMKV_OK)
		return api_fail(st, "%s", err);
	c = calloc(1, sizeof(*c));
	rc = c == NULL
		     ? -ENOMEM
		     : cache_attach(c, res.data_fd, res.ctl_fd, err, sizeof(err));
	if (rc < 0) {
		free(c);
		close(res.sock);
		if (rc == -ENOMEM)
			return api_fail(SHMKV_OUT_OF_MEMORY, "out of memory");
		return api_fail(rc == -EPROTO ? SHMKV_VERSION_MISMATCH
					      : SHMKV_PROTOCOL,
				"cannot map the server's segment: %s", err);
	}
	/* The slot the server claimed in our name: the server releases it
	 * when our connection closes, never we (see api_detach). */
	if (cache_adopt_proc(c, res.slot) < 0) {
		uint32_t nprocs = c->nprocs;

		cache_destroy(c);
		free(c);
		close(res.sock);
		return api_fail(SHMKV_PROTOCOL,
				"the server gave proc slot %u of %u", res.slot,
				nprocs);
	}
	kv->sock = res.sock;
	api_readers_sum(kv, &now);
	atomic_store_explicit(&kv->base_hits, now.hits, memory_order_relaxed);
	atomic_store_explicit(&kv->base_misses, now.misses, memory_order_relaxed);
	wire_init(&kv->wire, kv->sock);
	kv->cache = c;
	kv->attached = true;
	api_readers_rebind(kv);
	/* Release: lookups that load it see the mapping complete. */
	atomic_store_explicit(&kv->live, c, memory_order_release);
	return SHMKV_OK;
}

enum shmkv_status shmkv_open_version(const char *socket_path,
				     uint32_t layout_version, shmkv **out)
{
	shmkv *kv = calloc(1, sizeof(*kv));
	enum shmkv_status st;

	*out = NULL;
	if (kv == NULL || (kv->path = strdup(socket_path)) == NULL) {
		free(kv);
		return api_fail(SHMKV_OUT_OF_MEMORY, "out of memory");
	}
	pthread_mutex_init(&kv->mu, NULL);
	api_barrier_init();
	kv->id = atomic_fetch_add(&handles_opened, 1) + 1;
	kv->sock = -1;
	kv->layout_version = layout_version;
	st = attach(kv);
	if (st != SHMKV_OK) {
		pthread_mutex_destroy(&kv->mu);
		free(kv->path);
		free(kv);
		return st;
	}
	*out = kv;
	return SHMKV_OK;
}

enum shmkv_status shmkv_open(const char *socket_path, shmkv **out)
{
	return api_result(
		shmkv_open_version(socket_path, SEGMENT_LAYOUT_VERSION, out));
}

void shmkv_close(shmkv *kv)
{
	if (kv == NULL)
		return;
	api_detach(kv);
	api_readers_free(kv);
	pthread_mutex_destroy(&kv->mu);
	free(kv->path);
	free(kv);
}

static enum shmkv_status check_live(shmkv *kv, bool poll_now);

enum shmkv_status api_ensure_live(shmkv *kv)
{
	return check_live(kv, false);
}

enum shmkv_status api_poll_live(shmkv *kv)
{
	return check_live(kv, true);
}

/*
 * Is the server still there?  Called with the mutex held before every
 * call but lookups (which call it every LIVENESS_EVERY lookups or
 * LIVENESS_MS, with poll_now); attaches again if an earlier call found the
 * server gone.
 */
static enum shmkv_status check_live(shmkv *kv, bool poll_now)
{
	if (!kv->attached) {
		enum shmkv_status st = attach(kv);
		char why[ERR_MAX];

		if (st == SHMKV_OK)
			return SHMKV_OK;
		/* A new server that answers but refuses us says why, so that
		 * the program can act on it instead of waiting in vain. */
		if (st == SHMKV_PERMISSION || st == SHMKV_VERSION_MISMATCH ||
		    st == SHMKV_NO_PROC_SLOTS)
			return st;
		snprintf(why, sizeof(why), "%s", last_error.text);
		return api_fail(SHMKV_SERVER_GONE,
				"the server is gone and no new "
				"one answers at %s yet (%s)",
				kv->path, why);
	}
	struct segment_header *h = segment_header(&kv->cache->seg);
	bool gone = atomic_load_explicit(&h->state, memory_order_acquire) !=
		    SEGMENT_STATE_RUNNING;
	if (!gone && (poll_now || ++kv->calls % LIVENESS_EVERY == 0 ||
		      monotonic_coarse_ms() - kv->polled_ms >= LIVENESS_MS)) {
		struct pollfd p = { .fd = kv->sock, .events = POLLIN | POLLRDHUP };

		/* The server never speaks unasked: anything readable here is
		 * its connection closing. */
		gone = poll(&p, 1, 0) > 0;
		kv->polled_ms = monotonic_coarse_ms();
	}
	if (gone) {
		/* RUNNING with the connection closed: our worker went (a live
		 * upgrade retired it, or it died) but the server serves; attach
		 * again at once, so that the program's call does not fail. */
		bool serving = atomic_load_explicit(&h->state,
						    memory_order_acquire) ==
			       SEGMENT_STATE_RUNNING;

		api_detach(kv);
		if (serving && attach(kv) == SHMKV_OK)
			return SHMKV_OK;
		return api_fail(SHMKV_SERVER_GONE,
				"the server at %s stopped; the "
				"next call reattaches",
				kv->path);
	}
	return SHMKV_OK;
}
