/*
 * api.c - the public client library (include/shmkv.h)
 *
 * A handle is a connection to the server's Unix socket plus the segment the
 * server handed over on it.  Lookups run table_get on the read-only mapping
 * with the proc slot the server claimed for us; writes are meta commands on
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
 * to attach again at its next call.
 *
 * Interface routines: see include/shmkv.h.
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

#define LIVENESS_EVERY 256u
#define LIVENESS_MS 100
#define ERR_MAX 512


/*
 * The calling thread's last message, and whether the call now running
 * wrote it (api_fail) or it is left over from an earlier call.
 */
static _Thread_local struct {
	bool fresh;
	char text[ERR_MAX];
} last_error;

enum shmkv_status api_fail(enum shmkv_status st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errbuf_vset(last_error.text, sizeof(last_error.text), fmt, ap);
	va_end(ap);
	last_error.fresh = true;
	return st;
}

enum shmkv_status api_result(enum shmkv_status st)
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
	case SHMKV_EXISTS: return "the item changed since it was read (CAS mismatch)";
	case SHMKV_BAD_KEY: return "bad key: empty or longer than 250 bytes";
	case SHMKV_TOO_LARGE: return "value larger than the server's item size limit";
	case SHMKV_NO_MEMORY: return "the server is out of memory for this item";
	case SHMKV_NON_NUMERIC: return "cannot increment or decrement a non-numeric value";
	case SHMKV_NO_SERVER: return "no shmkv-server listening at that socket";
	case SHMKV_PERMISSION: return "the server does not let this user attach";
	case SHMKV_VERSION_MISMATCH: return "the server's segment layout version differs from the library's";
	case SHMKV_NO_PROC_SLOTS: return "the server has no proc slot left for another client";
	case SHMKV_SERVER_GONE: return "the server stopped; the next call reattaches";
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
	/* The slot is the server's to release when our connection closes. */
	kv->cache.self = PROC_NONE;
	cache_destroy(&kv->cache);
	close(kv->sock);
	kv->sock = -1;
	kv->attached = false;
}

static enum shmkv_status attach(shmkv *kv)
{
	struct attach_result res;
	char err[ERR_MAX];
	enum shmkv_status st;
	int rc;

	st = attach_connect(kv->path, kv->layout_version, &res, err,
			    sizeof(err));
	if (st != SHMKV_OK)
		return api_fail(st, "%s", err);
	rc = cache_attach(&kv->cache, res.data_fd, res.ctl_fd, err, sizeof(err));
	if (rc < 0) {
		close(res.sock);
		return api_fail(rc == -EPROTO ? SHMKV_VERSION_MISMATCH : SHMKV_PROTOCOL,
			    "cannot map the server's segment: %s", err);
	}
	/* The slot the server claimed in our name: the server releases it
	 * when our connection closes, never we (see api_detach). */
	if (cache_adopt_proc(&kv->cache, res.slot) < 0) {
		cache_destroy(&kv->cache);
		close(res.sock);
		return api_fail(SHMKV_PROTOCOL, "the server gave proc slot %u of %u",
			    res.slot, kv->cache.nprocs);
	}
	kv->sock = res.sock;
	kv->at_attach = kv->counters;
	wire_init(&kv->wire, kv->sock);
	kv->attached = true;
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
	return api_result(shmkv_open_version(socket_path,
					     SEGMENT_LAYOUT_VERSION, out));
}

void shmkv_close(shmkv *kv)
{
	if (kv == NULL)
		return;
	api_detach(kv);
	pthread_mutex_destroy(&kv->mu);
	free(kv->path);
	free(kv);
}

static int64_t coarse_ms(void)
{
	return (int64_t)(monotonic_coarse_ns() / 1000000);
}

/*
 * Is the server still there?  Called with the mutex held before every
 * call; attaches again if an earlier call found the server gone.
 */
enum shmkv_status api_ensure_live(shmkv *kv)
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
		return api_fail(SHMKV_SERVER_GONE, "the server is gone and no new "
				"one answers at %s yet (%s)", kv->path, why);
	}
	struct segment_header *h = segment_header(&kv->cache.seg);
	bool gone = atomic_load_explicit(&h->state, memory_order_acquire) !=
		    SEGMENT_STATE_RUNNING;
	if (!gone && (++kv->calls % LIVENESS_EVERY == 0 ||
		      coarse_ms() - kv->polled_ms >= LIVENESS_MS)) {
		struct pollfd p = { .fd = kv->sock, .events = POLLIN | POLLRDHUP };

		/* The server never speaks unasked: anything readable here is
		 * its connection closing. */
		gone = poll(&p, 1, 0) > 0;
		kv->polled_ms = coarse_ms();
	}
	if (gone) {
		/* RUNNING with the connection closed: our worker went (a live
		 * upgrade retired it, or it died) but the server serves; attach
		 * again at once, so that the program's call does not fail. */
		bool serving = atomic_load_explicit(&h->state, memory_order_acquire) ==
			       SEGMENT_STATE_RUNNING;

		api_detach(kv);
		if (serving && attach(kv) == SHMKV_OK)
			return SHMKV_OK;
		return api_fail(SHMKV_SERVER_GONE, "the server at %s stopped; the "
			    "next call reattaches", kv->path);
	}
	return SHMKV_OK;
}

static void count(shmkv *kv, bool hit)
{
	struct proc *p = proc_get(kv->cache.procs, kv->cache.nprocs,
				  kv->cache.self);
	uint64_t n = hit ? ++kv->counters.hits : ++kv->counters.misses;

	/* This process is the slot's only writer, so a plain store of its own
	 * count is enough (no locked add on the hot path); readers (the
	 * server's stats) take relaxed loads. */
	if (p != NULL)
		atomic_store_explicit(hit ? &p->hits : &p->misses,
				      n - (hit ? kv->at_attach.hits
					       : kv->at_attach.misses),
				      memory_order_relaxed);
}

static enum shmkv_status from_table(enum table_status st)
{
	switch (st) {
	case TABLE_OK: return SHMKV_OK;
	case TABLE_NOT_FOUND: return SHMKV_NOT_FOUND;
	case TABLE_TOO_SMALL: return SHMKV_TOO_SMALL;
	case TABLE_BAD_KEY: return SHMKV_BAD_KEY;
	case TABLE_NOT_STORED: return SHMKV_NOT_STORED;
	case TABLE_EXISTS: return SHMKV_EXISTS;
	case TABLE_TOO_LARGE: return SHMKV_TOO_LARGE;
	case TABLE_NO_MEMORY: return SHMKV_NO_MEMORY;
	case TABLE_NON_NUMERIC: return SHMKV_NON_NUMERIC;
	}
	return SHMKV_PROTOCOL;
}

static enum shmkv_status lookup(shmkv *kv, uint64_t hash, const void *key,
				size_t key_len, void *buf, size_t cap,
				size_t *value_len, uint32_t *flags, uint64_t *cas)
{
	struct table_item_info info;
	enum table_status st;

	st = table_get_hashed(&kv->cache.table, hash, key, key_len, NULL, buf,
			      cap, &info);
	if (st == TABLE_OK || st == TABLE_TOO_SMALL) {
		if (value_len != NULL)
			*value_len = info.value_len;
		if (flags != NULL)
			*flags = info.flags;
		if (cas != NULL)
			*cas = info.cas;
	}
	if (st != TABLE_BAD_KEY)
		count(kv, st != TABLE_NOT_FOUND);
	return from_table(st);
}

static enum shmkv_status get_one(shmkv *kv, const void *key, size_t key_len,
				 void *buf, size_t cap, size_t *value_len,
				 uint32_t *flags, uint64_t *cas)
{
	enum shmkv_status st;

	pthread_mutex_lock(&kv->mu);
	st = api_ensure_live(kv);
	if (st == SHMKV_OK)
		st = lookup(kv, table_hash(key, key_len), key, key_len, buf, cap,
			    value_len, flags, cas);
	pthread_mutex_unlock(&kv->mu);
	return st;
}

enum shmkv_status shmkv_get(shmkv *kv, const void *key, size_t key_len,
			    void *buf, size_t cap, size_t *value_len,
			    uint32_t *flags)
{
	return api_result(get_one(kv, key, key_len, buf, cap, value_len, flags,
				  NULL));
}

enum shmkv_status shmkv_gets(shmkv *kv, const void *key, size_t key_len,
			     void *buf, size_t cap, size_t *value_len,
			     uint32_t *flags, uint64_t *cas)
{
	return api_result(get_one(kv, key, key_len, buf, cap, value_len, flags,
				  cas));
}

static enum shmkv_status get_alloc(shmkv *kv, const void *key, size_t key_len,
				   void **value, size_t *value_len,
				   uint32_t *flags)
{
	size_t cap = 256, len = 0;
	enum shmkv_status st;

	*value = NULL;
	for (int tries = 0; tries < 8; tries++) {
		void *buf = malloc(cap ? cap : 1);

		if (buf == NULL)
			return api_fail(SHMKV_OUT_OF_MEMORY, "out of memory");
		st = get_one(kv, key, key_len, buf, cap, &len, flags, NULL);
		if (st == SHMKV_OK) {
			*value = buf;
			if (value_len != NULL)
				*value_len = len;
			return st;
		}
		free(buf);
		if (st != SHMKV_TOO_SMALL)
			return st;
		cap = len;      /* it may grow again before the next try */
	}
	return api_fail(SHMKV_TOO_SMALL, "the value kept growing while read");
}

enum shmkv_status shmkv_get_alloc(shmkv *kv, const void *key, size_t key_len,
				  void **value, size_t *value_len,
				  uint32_t *flags)
{
	return api_result(get_alloc(kv, key, key_len, value, value_len, flags));
}

static bool key_fits(const struct shmkv_item *it)
{
	return it->key_len > 0 && it->key_len <= SHMKV_KEY_MAX;
}

enum shmkv_status shmkv_get_many(shmkv *kv, struct shmkv_item *items,
				 size_t n)
{
	enum shmkv_status st;

	pthread_mutex_lock(&kv->mu);
	st = api_ensure_live(kv);
	if (st == SHMKV_OK) {
		/* Three stages, each a few keys ahead of the next: hash and
		 * warm the bucket, then warm the items its tags point at, then
		 * look up.  R must exceed BUCKET_AHEAD. */
		enum { BUCKET_AHEAD = 8, ITEM_AHEAD = 4, R = 16 };
		uint64_t hashes[R];
		struct table *t = &kv->cache.table;

		for (size_t i = 0; i < n + BUCKET_AHEAD; i++) {
			size_t b = i, m = i - (BUCKET_AHEAD - ITEM_AHEAD);
			size_t g = i - BUCKET_AHEAD;

			if (b < n && key_fits(&items[b])) {
				hashes[b % R] = table_hash(items[b].key,
							   items[b].key_len);
				table_prefetch_bucket(t, hashes[b % R]);
			}
			if (i >= BUCKET_AHEAD - ITEM_AHEAD && m < n &&
			    key_fits(&items[m]))
				table_prefetch_items(t, hashes[m % R]);
			if (i < BUCKET_AHEAD || g >= n)
				continue;
			struct shmkv_item *it = &items[g];

			it->value_len = 0;
			it->flags = 0;
			it->status = key_fits(it)
				     ? lookup(kv, hashes[g % R], it->key,
					      it->key_len, it->buf, it->cap,
					      &it->value_len, &it->flags, NULL)
				     : SHMKV_BAD_KEY;
		}
	} else {
		/* No item may be left with a status from an earlier batch. */
		for (size_t i = 0; i < n; i++) {
			items[i].value_len = 0;
			items[i].flags = 0;
			items[i].status = st;
		}
	}
	pthread_mutex_unlock(&kv->mu);
	return api_result(st);
}

void shmkv_counters(const shmkv *kv, struct shmkv_counters *out)
{
	/* Other threads may be counting: read under the handle's mutex (the
	 * handle is const to the caller, not to its lock). */
	pthread_mutex_t *mu = (pthread_mutex_t *)&kv->mu;

	pthread_mutex_lock(mu);
	*out = kv->counters;
	pthread_mutex_unlock(mu);
}
