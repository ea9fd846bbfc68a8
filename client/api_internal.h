/*
 * api_internal.h - the client handle, shared by api.c and api_write.c
 *
 * Not installed: a user sees only include/shmkv.h.  shmkv_open_version is
 * here so that tests can attach claiming another layout version.
 */
#ifndef SHMKV_API_INTERNAL_H
#define SHMKV_API_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "shmkv.h"
#include "wire.h"

struct shmkv {
	pthread_mutex_t mu;
	char *path;
	uint32_t layout_version;
	bool attached;
	int sock;
	struct wire wire;
	struct cache cache;
	uint32_t calls;
	int64_t polled_ms;      /* CLOCK_MONOTONIC_COARSE of the last poll */
	struct shmkv_counters counters;
	struct shmkv_counters at_attach;   /* counters when this slot was given */
};

enum shmkv_status shmkv_open_version(const char *socket_path,
				     uint32_t layout_version, shmkv **out);

/* api_fail - record the calling thread's message and return st. */
enum shmkv_status api_fail(enum shmkv_status st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * api_result - every public call returns through here: success clears the
 * thread's message; a failure that did not write one (api_fail) during
 * this call gets the status's words, so no message outlives its call.
 */
enum shmkv_status api_result(enum shmkv_status st);

/* api_ensure_live - with kv->mu held: attached to a running server? */
enum shmkv_status api_ensure_live(shmkv *kv);

/* api_detach - with kv->mu held: forget the segment and the connection. */
void api_detach(shmkv *kv);

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
enum shmkv_status api_delete_many(shmkv *kv, struct shmkv_write *items,
				  size_t n);

#endif
