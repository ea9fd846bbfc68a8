/*
 * shmkv.h - the shmkv client library: lookups straight from shared memory
 *
 * A program on the same machine as shmkv-server attaches to the server's
 * shared segment over its Unix socket and then looks keys up by reading the
 * segment itself: no system call, no copy through the kernel.  Writes go to
 * the server over the same connection (memcached's meta protocol), and once
 * a write call returns, a lookup from the same process sees it.
 *
 *     shmkv *kv;
 *     if (shmkv_open("/tmp/shmkv-11211/shmkv.sock", &kv) != SHMKV_OK)
 *         errx(1, "%s", shmkv_last_error());
 *     shmkv_set(kv, "k", 1, "v", 1, 0, 0);
 *     char buf[64]; size_t len; uint32_t flags;
 *     if (shmkv_get(kv, "k", 1, buf, sizeof buf, &len, &flags) == SHMKV_OK)
 *         printf("%.*s\n", (int)len, buf);
 *     shmkv_close(kv);
 *
 * Threads: a handle may be shared by threads.  Lookups (shmkv_get,
 * shmkv_gets, shmkv_get_alloc, shmkv_get_many) on one handle run in
 * parallel and take no lock; the other calls on one handle are serialised
 * by a mutex inside it (open a handle per thread to write in parallel).
 *
 * fork: a handle is not usable across fork().  The child must not use the
 * parent's handle (not even to close it: call nothing on it); it opens its
 * own.
 *
 * Server restarts: when the server stops, calls return SHMKV_SERVER_GONE
 * instead of reading the abandoned segment; the next call reattaches by
 * itself once a server is listening on the socket again.  A server that
 * was killed rather than stopped is noticed within about 100 ms (or 256
 * lookups, whichever comes first).  If the new server refuses the handle,
 * calls return its reason (SHMKV_PERMISSION, SHMKV_VERSION_MISMATCH,
 * SHMKV_NO_PROC_SLOTS) instead.
 *
 * Errors: every call returns an enum shmkv_status; shmkv_strerror() names
 * it, and shmkv_last_error() gives the calling thread's message about its
 * last call with the details (which versions mismatched, which user was
 * refused): every call that fails sets it, every call that succeeds
 * clears it to "".
 */
#ifndef SHMKV_H
#define SHMKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * SHMKV_API - marks what the shared library exports.  libshmkv is built with
 * -fvisibility=hidden, so everything else in it (the table, the segment,
 * the locks) stays internal and cannot clash with a program's own symbols;
 * only the shmkv_* calls below are visible.
 */
#if defined(__GNUC__) || defined(__clang__)
#define SHMKV_API __attribute__((visibility("default")))
#else
#define SHMKV_API
#endif

#define SHMKV_KEY_MAX 250
#define SHMKV_KEY_BINARY_MAX 186

typedef struct shmkv shmkv;

enum shmkv_status {
	SHMKV_OK = 0,
	SHMKV_NOT_FOUND,  /* no such key (or it expired) */
	SHMKV_TOO_SMALL,  /* buffer too small; *value_len says how big */
	SHMKV_NOT_STORED, /* add of an existing key, replace of a missing one */
	SHMKV_EXISTS,	  /* compare-and-swap lost */
	SHMKV_BAD_KEY,	  /* empty, or longer than SHMKV_KEY_MAX */
	SHMKV_TOO_LARGE,  /* value longer than the server's item size limit */
	SHMKV_NO_MEMORY,  /* the server could not make room */
	SHMKV_NON_NUMERIC,	/* incr/decr of a value that is not a number */
	SHMKV_NO_SERVER,	/* nothing is listening at the socket path */
	SHMKV_PERMISSION,	/* the server does not let this user attach */
	SHMKV_VERSION_MISMATCH, /* the server's segment layout is another version */
	SHMKV_NO_PROC_SLOTS, /* the server has no proc slot left for us */
	SHMKV_SERVER_GONE,   /* the server stopped; the next call reattaches */
	SHMKV_PROTOCOL,	     /* the server answered something unexpected */
	SHMKV_SYSTEM,	     /* a system call failed; see shmkv_last_error() */
	SHMKV_OUT_OF_MEMORY, /* malloc failed in this process */
};

/* shmkv_strerror - a short description of a status; never NULL. */
SHMKV_API
const char *shmkv_strerror(enum shmkv_status status);

/* shmkv_last_error - the calling thread's message about its last call
 * ("" after a success); never NULL. */
SHMKV_API
const char *shmkv_last_error(void);

/*
 * shmkv_open - connect to the server's Unix socket and attach to its
 * segment.  On success *out is a handle to pass to the other calls.
 */
SHMKV_API
enum shmkv_status shmkv_open(const char *socket_path, shmkv **out);

/* shmkv_close - detach and free the handle; NULL is fine. */
SHMKV_API
void shmkv_close(shmkv *kv);

/*
 * shmkv_get - copy key's value into buf (capacity cap).  *value_len gets its
 * length (also on SHMKV_TOO_SMALL, when nothing is copied); *flags its
 * client flags.  value_len and flags may be NULL.
 */
SHMKV_API
enum shmkv_status shmkv_get(shmkv *kv, const void *key, size_t key_len, void *buf,
			    size_t cap, size_t *value_len, uint32_t *flags);

/*
 * shmkv_gets - as shmkv_get, and *cas (may be NULL) gets the item's CAS
 * unique, for a later shmkv_cas.  Also read straight from shared memory.
 */
SHMKV_API
enum shmkv_status shmkv_gets(shmkv *kv, const void *key, size_t key_len,
			     void *buf, size_t cap, size_t *value_len,
			     uint32_t *flags, uint64_t *cas);

/*
 * shmkv_get_alloc - as shmkv_get, into a buffer from malloc() that the
 * caller frees.
 */
SHMKV_API
enum shmkv_status shmkv_get_alloc(shmkv *kv, const void *key, size_t key_len,
				  void **value, size_t *value_len,
				  uint32_t *flags);

/* One key of a batch, and what became of it. */
struct shmkv_item {
	const void *key;
	size_t key_len;
	void *buf; /* where to copy the value */
	size_t cap;
	size_t value_len;	  /* out */
	uint32_t flags;		  /* out */
	enum shmkv_status status; /* out: OK, NOT_FOUND, TOO_SMALL, BAD_KEY */
};

/*
 * shmkv_get_many - look up n keys.  Fetches the next keys' buckets while it
 * copies the current value.  Returns SHMKV_OK when every key was looked up
 * (each item has its own status), or an error that stopped the batch (the
 * server is gone, say), which every item's status then repeats.
 */
SHMKV_API
enum shmkv_status shmkv_get_many(shmkv *kv, struct shmkv_item *items, size_t n);

/*
 * Writes, over the socket.  ttl follows memcached: 0 = never expires, up to
 * 30 days relative, beyond that an absolute Unix time, negative = expired.
 * A key of printable ASCII may have up to SHMKV_KEY_MAX bytes; a key with
 * any other byte (space, control, non-ASCII) travels base64-encoded and may
 * have up to SHMKV_KEY_BINARY_MAX, since memcached's protocol limits the
 * encoded form to 250 characters.  Longer keys give SHMKV_BAD_KEY.
 */
SHMKV_API
enum shmkv_status shmkv_set(shmkv *kv, const void *key, size_t key_len,
			    const void *value, size_t value_len, uint32_t flags,
			    int64_t ttl);
SHMKV_API
enum shmkv_status shmkv_add(shmkv *kv, const void *key, size_t key_len,
			    const void *value, size_t value_len, uint32_t flags,
			    int64_t ttl);
SHMKV_API
enum shmkv_status shmkv_replace(shmkv *kv, const void *key, size_t key_len,
				const void *value, size_t value_len,
				uint32_t flags, int64_t ttl);
SHMKV_API
enum shmkv_status shmkv_delete(shmkv *kv, const void *key, size_t key_len);
SHMKV_API
enum shmkv_status shmkv_touch(shmkv *kv, const void *key, size_t key_len,
			      int64_t ttl);
/*
 * shmkv_cas - store only if the item still has the CAS unique cas (from
 * shmkv_gets): SHMKV_EXISTS if someone changed it since, SHMKV_NOT_FOUND
 * if it is gone.
 */
SHMKV_API
enum shmkv_status shmkv_cas(shmkv *kv, const void *key, size_t key_len,
			    const void *value, size_t value_len, uint32_t flags,
			    int64_t ttl, uint64_t cas);
/* Add bytes after (append) or before (prepend) an existing value; the
 * item keeps its flags and TTL.  SHMKV_NOT_STORED if there is no item. */
SHMKV_API
enum shmkv_status shmkv_append(shmkv *kv, const void *key, size_t key_len,
			       const void *value, size_t value_len);
SHMKV_API
enum shmkv_status shmkv_prepend(shmkv *kv, const void *key, size_t key_len,
				const void *value, size_t value_len);
/*
 * shmkv_flush - memcached's flush_all: every item stored until now is
 * gone, at once (delay 0) or in delay seconds (memcached's TTL rule).
 */
SHMKV_API
enum shmkv_status shmkv_flush(shmkv *kv, int64_t delay);
/* incr wraps at 2^64; decr stops at 0.  *value (may be NULL) gets the result. */
SHMKV_API
enum shmkv_status shmkv_incr(shmkv *kv, const void *key, size_t key_len,
			     uint64_t delta, uint64_t *value);
SHMKV_API
enum shmkv_status shmkv_decr(shmkv *kv, const void *key, size_t key_len,
			     uint64_t delta, uint64_t *value);

/* One write of a batch, and what became of it. */
struct shmkv_write {
	const void *key;
	size_t key_len;
	const void *value; /* set_many only */
	size_t value_len;
	uint32_t flags;		  /* set_many only */
	int64_t ttl;		  /* set_many only */
	enum shmkv_status status; /* out */
};

/*
 * shmkv_set_many, shmkv_delete_many - set (or delete) n keys, pipelined:
 * about one round trip per thousand keys instead of one a key.  Each
 * item's status says what became of it (delete: SHMKV_OK or
 * SHMKV_NOT_FOUND; a bad key or a value over the server's limit is not
 * sent).  Returns SHMKV_OK when every item was carried out, or the error
 * that stopped the batch (the server went away, say), which the status of
 * every item not known to be applied then repeats.
 */
SHMKV_API
enum shmkv_status shmkv_set_many(shmkv *kv, struct shmkv_write *items, size_t n);
SHMKV_API
enum shmkv_status shmkv_delete_many(shmkv *kv, struct shmkv_write *items,
				    size_t n);

/* What shmkv_scan shows of a key; key points into the scan's own copy. */
struct shmkv_key_info {
	const void *key;
	size_t key_len;
	size_t value_len;
	uint32_t flags;
	int64_t ttl; /* seconds left; -1 = never expires */
	uint64_t cas;
};

/* Called for each key; return nonzero to stop the scan. */
typedef int (*shmkv_scan_fn)(const struct shmkv_key_info *key, void *arg);

/*
 * shmkv_scan - call fn for every live key that starts with prefix
 * (prefix_len 0: every key), read straight from shared memory: the server
 * does no work for it, and no lock is taken unless a part of the table is
 * being written without a pause.  Each key is seen as one consistent
 * state: a key that changes while visited is read again, never reported
 * half-written.  A key written or deleted during the scan may or may not
 * be seen; none is seen twice.  Keys come in no particular order.
 *
 * fn runs while the handle is busy: it must not call into the same handle
 * (collect what it needs, act after).  Returns SHMKV_OK, also when fn
 * stopped the scan.
 */
SHMKV_API
enum shmkv_status shmkv_scan(shmkv *kv, const void *prefix, size_t prefix_len,
			     shmkv_scan_fn fn, void *arg);

/*
 * shmkv_delete_prefix - delete every key that starts with prefix (a scan,
 * then shmkv_delete_many through the server).  *deleted (may be NULL) gets
 * how many were deleted.  prefix_len 0 is refused (SHMKV_BAD_KEY): use
 * shmkv_flush to empty the cache.
 */
SHMKV_API
enum shmkv_status shmkv_delete_prefix(shmkv *kv, const void *prefix,
				      size_t prefix_len, size_t *deleted);

/*
 * shmkv_server_stats - the server's `stats` report, as memcached prints it
 * ("STAT name value" lines, without the final END), in a malloc'd string
 * the caller frees.
 */
SHMKV_API
enum shmkv_status shmkv_server_stats(shmkv *kv, char **text);

/* This process's direct lookups so far (also summed in the server's stats). */
struct shmkv_counters {
	uint64_t hits;
	uint64_t misses;
};
SHMKV_API
void shmkv_counters(const shmkv *kv, struct shmkv_counters *out);

#ifdef __cplusplus
}
#endif

#endif
