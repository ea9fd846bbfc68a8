/*
 * api_internal.h - the client handle, shared by api.c and api_write.c
 *
 * Not installed: a user sees only include/shmkv.h.  shmkv_open_version is
 * here so that tests can attach claiming another layout version.
 */
#ifndef SHMKV_API_INTERNAL_H
#define SHMKV_API_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "shmkv.h"
#include "wire.h"

/* How often a handle polls its connection: every LIVENESS_EVERY calls or
 * LIVENESS_MS milliseconds (api.c for writes, api_read.c per thread). */
#define LIVENESS_EVERY 256u
#define LIVENESS_MS 100

/*
 * One thread's lookups on one handle (api_read.c): written by that thread
 * alone, but for next, which changes under kv->mu.
 */
struct api_reader {
	struct api_reader *next;       /* kv->readers */
	const void *thread;	       /* the owning thread's token */
	_Atomic uint64_t active;       /* odd while inside a lookup */
	_Atomic uint64_t hits, misses; /* since the handle was opened */
	uint32_t calls;		       /* lookups since the last poll */
	/* The proc slot it counts into too, as the handle's only reader;
	 * written under kv->mu by any thread (api_readers_rebind). */
	_Atomic(struct proc *) solo;
	uint64_t polled_ns; /* CLOCK_MONOTONIC_COARSE of it */
	/* The mapping's geometry when this thread last polled, for prefetch
	 * addresses only (api_read.c's get_one); never read through. */
	struct table warm;
};

/* A mapping detached while lookups may still read it (api_retire). */
struct api_retired {
	struct api_retired *next;
	struct cache *cache;
};

struct shmkv {
	pthread_mutex_t mu;
	char *path;
	uint32_t layout_version;
	uint64_t id; /* unique per handle opened in this process */
	bool attached;
	int sock;
	struct wire wire;
	struct cache *cache; /* under mu: the mapping, NULL when detached */
	_Atomic(struct cache *) live; /* the same, for lookups (no mu) */
	uint32_t calls;	   /* writes' liveness countdown (api_ensure_live) */
	int64_t polled_ms; /* CLOCK_MONOTONIC_COARSE of the last poll */
	struct api_reader *readers; /* under mu */
	_Atomic uint32_t nreaders;
	struct api_retired *retired; /* under mu: freed at close */
	/* the handle's counters when this proc slot was given */
	_Atomic uint64_t base_hits, base_misses;
};

enum shmkv_status shmkv_open_version(const char *socket_path,
				     uint32_t layout_version, shmkv **out);

/* api_fail - record the calling thread's message and return st. */
enum shmkv_status api_fail(enum shmkv_status st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * The calling thread's last message, and whether the call now running
 * wrote it (api_fail) or it is left over from an earlier call (api.c).
 */
#define API_ERR_MAX 512
struct api_error {
	bool fresh;
	char text[API_ERR_MAX];
};
extern _Thread_local struct api_error api_last_error
	__attribute__((visibility("hidden")));

/* api_result_set - api_result's work (api.c). */
enum shmkv_status api_result_set(enum shmkv_status st);

/*
 * api_result - every public call returns through here: success clears the
 * thread's message; a failure that did not write one (api_fail) during
 * this call gets the status's words, so no message outlives its call.  A
 * success with nothing to clear (a loop of lookups) writes nothing.
 */
static inline enum shmkv_status api_result(enum shmkv_status st)
{
	if (st == SHMKV_OK && !api_last_error.fresh &&
	    api_last_error.text[0] == '\0')
		return st;
	return api_result_set(st);
}

/* api_ensure_live - with kv->mu held: attached to a running server? */
enum shmkv_status api_ensure_live(shmkv *kv);

/* api_poll_live - with kv->mu held: api_ensure_live, polling the
 * connection now whatever the countdown says. */
enum shmkv_status api_poll_live(shmkv *kv);

/* api_detach - with kv->mu held: forget the segment and the connection. */
void api_detach(shmkv *kv);

/* api_read.c */

/* api_retire - with kv->mu held: unmap c once no lookup can be reading it. */
void api_retire(shmkv *kv, struct cache *c);

/* api_readers_sum - with kv->mu held: the handle's hits and misses. */
void api_readers_sum(shmkv *kv, struct shmkv_counters *out);

/* api_readers_rebind - with kv->mu held, after the mapping or the readers
 * changed: which proc slot the only reader counts into. */
void api_readers_rebind(shmkv *kv);

/* api_readers_free - at close: every thread's state, every retired map. */
void api_readers_free(shmkv *kv);

/* api_barrier_init - once per process: can api_retire fence other threads? */
void api_barrier_init(void);

/* api_write.c, shared with api_batch.c */

/* base64 of a SHMKV_KEY_MAX-byte key, and its NUL */
#define API_KEY64_MAX (4 * ((SHMKV_KEY_MAX + 2) / 3) + 1)

/*
 * api_wire_key - the key as the meta protocol carries it: itself, or
 * base64 with " b" in *bflag (else ""); SHMKV_BAD_KEY if it cannot go.
 */
enum shmkv_status api_wire_key(const void *key, size_t key_len,
			       char out[API_KEY64_MAX], const char **bflag);

/* api_reply_status - a meta reply line's status (HD, NS, EX, NF, ...). */
enum shmkv_status api_reply_status(const char *line);

/* api_batch.c: shmkv_delete_many for api_scan.c (no api_result). */
enum shmkv_status api_delete_many(shmkv *kv, struct shmkv_write *items, size_t n);

/* A growable buffer (malloc'd): api_batch.c's requests, stats text. */
struct api_outbuf {
	char *p;
	size_t len, cap;
};
int api_outbuf_add(struct api_outbuf *b, const void *data, size_t n);

#endif
