/*
 * table.h - the partitioned hash table in the shared segment
 *
 * P partitions (a power of two).  The top bits of the key's XXH3_64 pick the
 * partition, the low bits the bucket.  A partition owns its LWLock (in the
 * control part), its bucket array and its own ring of item memory (in the
 * data part), so every operation takes exactly one lock and no global lock
 * is on any hot path.
 *
 * Semantics are memcached's: expiry (0 = never, up to 30 days relative,
 * beyond that absolute Unix time, negative = already expired), 64-bit CAS
 * unique across the table, append/prepend keep the old flags and TTL,
 * incr wraps at 2^64 and decr stops at 0, flush_all with a delay.  The meta
 * protocol's extras (vivify on miss, recache wins, invalidation to stale,
 * explicit CAS) are options of the same calls.
 *
 * Time is the coarse clock in the segment header (segment_clock), which the
 * supervisor advances with table_tick; tests set it directly.
 *
 * Every operation returns an enum table_status saying exactly which outcome
 * happened.  Nothing here prints, allocates process memory, or exits.
 *
 * The read contract.  A partition is changed only inside the writer
 * bracket: its LWLock held exclusive and its sequence word odd from before
 * the first store to after the last (table_part_lock/unlock; crash
 * recovery's table_partition_reset opens the same bracket, without the
 * lock, which the repair state stands in for).  The changing routines
 * assert it in debug builds.  There are two reads, and the caller picks:
 *   - the locked read (table_get, table_get_hashed, table_get_into, the
 *     stats and walks): the LWLock held shared, or exclusive when the
 *     options change the item; it always succeeds, and it may update the
 *     item's access state.  Any process with a proc slot may take it.
 *   - the lock-free read (table_get_lockfree in table_read.c, the
 *     batches of table_read.h's table_read_batch, and client/api_scan.c's
 *     walk): read the sequence word, read and copy, read the word again,
 *     and keep the copy only if it is the same even number: no writer ran
 *     meanwhile.  It writes no shared memory but the CLOCK bit, follows
 *     only bounds-checked offsets while it may be racing a writer, and
 *     gives up after a few races, when the caller takes the locked read.
 * Whether the mapping is writable decides nothing but whether an option
 * may change the item (a client program's mapping of the data part is
 * read-only).
 *
 * Interface routines:
 *   table_layout_size     bytes of data and control part a config needs
 *   table_create          carve the table out of a new segment
 *   table_open            find the table in an existing segment
 *   table_set_owner       which proc slot this process locks as
 *   table_get             lookup, copy out; gat/touch/mg options
 *   table_get_into        the same, the copy's destination chosen on a hit
 *   table_get_lockfree    the lock-free read (batches: table_read.h)
 *   table_warm_lookup     prefetch the lines a lookup reads first
 *   table_warm_item       then prefetch the item the bucket names
 *   table_store           set/add/replace/append/prepend/cas; ms options
 *   table_delete          delete; md options
 *   table_arith           incr/decr; ma options
 *   table_flush           flush_all [delay]
 *   table_tick            advance the clock, apply a delayed flush
 *   table_stats_*         per-partition and total counters, reset
 *   table_partition_of_lock, table_partition_reset,
 *   table_partition_drop_if_torn                     crash recovery
 */
#ifndef SHMKV_TABLE_H
#define SHMKV_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lwlock.h"
#include "segment.h"

#define TABLE_KEY_MAX 250u
#define TABLE_BUCKET_BYTES 64u /* one cache line: struct table_bucket */
#define TABLE_DEFAULT_PARTITIONS 128u
#define TABLE_DEFAULT_MAX_ITEM (1024u * 1024u)
#define TABLE_RELATIVE_EXPTIME_MAX (60 * 60 * 24 * 30) /* memcached's 30 days */

enum table_status {
	TABLE_OK = 0,	 /* found, stored, deleted, touched */
	TABLE_NOT_FOUND, /* no such key (or expired, or flushed) */
	TABLE_NOT_STORED, /* add of an existing key, replace/append of a missing one */
	TABLE_EXISTS,	 /* CAS mismatch */
	TABLE_TOO_LARGE, /* value longer than max_item_size */
	TABLE_NO_MEMORY, /* could not make room (item bigger than a partition) */
	TABLE_NON_NUMERIC, /* incr/decr on a value that is not a decimal number */
	TABLE_TOO_SMALL, /* caller's buffer too small; info.value_len says how much */
	TABLE_BAD_KEY, /* key length 0 or over TABLE_KEY_MAX */
};

struct table_config {
	uint32_t partitions;	/* power of two; 0 = TABLE_DEFAULT_PARTITIONS */
	uint64_t memory;	/* bytes for buckets and items together */
	uint32_t max_item_size; /* largest value; 0 = TABLE_DEFAULT_MAX_ITEM */
	uint32_t item_size_hint; /* typical key+value bytes, sizes the buckets; 0 = 128 */
};

/* What a lookup learns about the item besides its value. */
struct table_item_info {
	uint64_t cas;
	uint32_t value_len;
	uint32_t flags;	       /* the client's 32 opaque bits */
	uint32_t exptime;      /* absolute Unix seconds, 0 = never */
	uint32_t prev_exptime; /* exptime before this call's touch (ma/mg T) */
	uint32_t last_access;  /* seconds since it was last fetched or stored */
	bool fetched;	       /* it had been fetched before this call */
	bool stale;	       /* invalidated (md/ms with I): value is old */
	bool won;	       /* this caller won the right to recache (mg W) */
	bool token_sent;       /* someone else already won it (mg Z) */
	bool vivified;	       /* the item was created by this call (mg N) */
	bool key_binary;       /* stored with a binary key (ms b) */
};

struct table_get_opts {
	bool touch;	 /* set a new TTL (gat, touch, mg T) */
	int64_t exptime; /* the new TTL, memcached's rule */
	bool no_bump;	 /* do not mark fetched nor update access (mg u) */
	bool vivify;	 /* on a miss create an empty item and win (mg N) */
	int64_t vivify_exptime;
	bool recache; /* win if the TTL ends before now + recache_below (mg R) */
	uint32_t recache_below;
	bool recache_sees_touch; /* R after T in the request: R judges T's TTL */
	bool win; /* mg: may take the recache token (W); get never does */
};

enum table_store_mode {
	TABLE_SET,
	TABLE_ADD,
	TABLE_REPLACE,
	TABLE_APPEND,
	TABLE_PREPEND,
	TABLE_CAS, /* TABLE_SET with compare_cas */
};

struct table_store_req {
	enum table_store_mode mode;
	const void *key;
	size_t key_len;
	const void *value;
	size_t value_len;
	uint32_t flags;
	int64_t exptime;  /* memcached's rule */
	bool compare_cas; /* store only if the item's CAS equals cas (ms C) */
	uint64_t cas;
	uint64_t new_cas; /* 0 = the next value of the table's counter (ms E) */
	bool invalidate; /* ms I: a CAS older than the item's stores it stale */
	bool key_binary; /* ms b: remember the key was sent base64 */
	bool vivify;	 /* append/prepend on a miss create the item (ms N) */
	int64_t vivify_exptime;
};

struct table_delete_opts {
	bool compare_cas; /* md C */
	uint64_t cas;
	bool invalidate; /* md I: mark stale instead of removing */
	bool touch;	 /* md T: with invalidate, the stale item's TTL */
	int64_t exptime;
};

struct table_arith_req {
	const void *key;
	size_t key_len;
	bool incr; /* else decr */
	uint64_t delta;
	bool compare_cas; /* ma C */
	uint64_t cas;
	bool vivify; /* ma N: on a miss create it with initial */
	int64_t vivify_exptime;
	uint64_t initial; /* ma J */
	bool touch;	  /* ma T */
	int64_t exptime;
};

struct table_stats {
	uint64_t items;	       /* live items linked in buckets */
	uint64_t bytes;	       /* their key + value bytes */
	uint64_t mem_used;     /* item memory in use, dead items included */
	uint64_t mem_limit;    /* item memory of the partition(s) */
	uint64_t bucket_bytes; /* memory spent on buckets */
	uint64_t hits;
	uint64_t misses;
	uint64_t evictions;   /* live items dropped to make room */
	uint64_t expirations; /* expired items reclaimed */
	uint64_t reinserted;  /* items kept alive by the LRU approximation */
	uint64_t total_items; /* successful stores */
	uint64_t evicted_unfetched; /* evictions of items never read */
	uint64_t expired_unfetched; /* expirations of items never read */
	uint64_t outofmemory;	    /* allocations that found no room */
	uint64_t get_expired;	    /* lookups that found it expired */
	uint64_t get_flushed;	    /* lookups that found it flushed */
	uint64_t evicted_nonzero;   /* evictions of items with a TTL */
	uint64_t evicted_active;    /* evictions of items read since moved */
	uint64_t evicted_time;	    /* idle seconds of the last evicted (a
				      * partition's; a total has none) */
	uint64_t delete_hits;
	uint64_t incr_hits;
	uint64_t decr_hits;
	uint64_t cas_hits;
	uint64_t cas_badval;
	uint64_t touch_hits; /* gat, touch, mg T: not in hits */
	uint64_t lock_acquisitions;
	uint64_t lock_contended;
	uint64_t lock_wait_ns;
};

struct table_header;
struct table_partition;
union table_partition_ctl;

/* A process's handle on the table; process memory, never shared. */
struct table {
	struct segment *seg;
	struct table_header *hdr;	 /* data part */
	struct table_partition *parts;	 /* data part */
	union table_partition_ctl *pctl; /* control part */
	uint32_t npartitions;
	/*
	 * The geometry, copied from the header and checked against the
	 * regions once, by table_create or table_open: every operation
	 * derives its partition's addresses from these, never from the
	 * shared fields again.  Partition p's buckets start at
	 * part_base + p * part_stride, its ring bucket_bytes later, its used
	 * bits at used_base + p * used_stride.
	 */
	uint32_t nbuckets;	 /* primary buckets per partition */
	uint32_t nbuckets_total; /* with the overflow buckets */
	uint32_t chain_max;	 /* buckets a chain can have */
	uint64_t arena_size;	 /* ring bytes per partition */
	uint64_t bucket_bytes;
	uint64_t part_stride;
	unsigned char *part_base; /* data part */
	unsigned char *used_base; /* control part */
	uint64_t used_stride;
	struct lwlock_owner owner;
	/* memcached's -M: a store that would evict a live item fails with
	 * TABLE_NO_MEMORY instead (expired and dead items are still reused). */
	bool no_evict;
};

/* table_layout_size - bytes of each part the config needs (regions only). */
int table_layout_size(const struct table_config *cfg, uint64_t *data_bytes,
		      uint64_t *ctl_bytes);

/*
 * table_create - allocate and initialise the table's regions ("table",
 * "table.ctl") in seg.  -EINVAL if the config cannot work (a partition too
 * small for one item of max_item_size), -ENOSPC if seg is too small.
 */
int table_create(struct table *t, struct segment *seg,
		 const struct table_config *cfg);

/* table_open - find and validate the table's regions in an existing seg. */
int table_open(struct table *t, struct segment *seg);

void table_set_owner(struct table *t, const struct lwlock_owner *owner);

/*
 * table_get - look key up.  If buf is not NULL the value is copied into it
 * (TABLE_TOO_SMALL, with info->value_len set and nothing copied, when cap is
 * too small).  opts may be NULL.  The locked read: takes the partition lock
 * shared, or exclusive when opts ask for a change (touch, vivify, recache)
 * and the mapping is writable.
 */
enum table_status table_get(struct table *t, const void *key, size_t key_len,
			    const struct table_get_opts *opts, void *buf,
			    size_t cap, struct table_item_info *info);

/* table_hash - the key's XXH3_64: its top bits pick the partition, its
 * low bits the bucket, bits 32-47 the tag. */
uint64_t table_hash(const void *key, size_t key_len);
enum table_status table_get_hashed(struct table *t, uint64_t hash,
				   const void *key, size_t key_len,
				   const struct table_get_opts *opts, void *buf,
				   size_t cap, struct table_item_info *info);

/*
 * table_get_lockfree - table_get_hashed's read without any lock, for a
 * reader that must not take one (a client program's lookup), and lean: it
 * reports only what a get returns.  The caller fills hash (table_hash of
 * the key), key, key_len, buf and cap (buf may be NULL: no copy); on
 * TABLE_OK and TABLE_TOO_SMALL it sets cas, value_len and flags (and
 * copies the value on TABLE_OK).  Returns a table_status, or -EAGAIN after
 * a few reads that each raced a writer, when the caller must read with a
 * lock (table_get_hashed) instead.  Takes no lock and writes no shared
 * memory but the slot's CLOCK bit (a plain store); buf may have been
 * written even when it does not return TABLE_OK.
 */
struct table_read {
	uint64_t hash;
	const void *key;
	size_t key_len;
	void *buf;
	size_t cap;
	uint64_t cas;	    /* out */
	uint32_t value_len; /* out */
	uint32_t flags;	    /* out */
};
int table_get_lockfree(const struct table *t, struct table_read *rd);

/* The partition a hash picks: its top bits.  With P = 2^k partitions,
 * (hash >> 32) * P >> 32 is hash >> (64 - k), without the shift by 64
 * that P = 1 would need (undefined in C) or a branch around it. */
static inline uint32_t table_partition_of(const struct table *t, uint64_t hash)
{
	return (uint32_t)(((hash >> 32) * t->npartitions) >> 32);
}

/* The primary bucket a hash picks: multiply-shift, so any count works;
 * always below t->nbuckets. */
static inline uint32_t table_bucket_of(const struct table *t, uint64_t hash)
{
	return (uint32_t)(((uint64_t)(uint32_t)hash * t->nbuckets) >> 32);
}

/*
 * table_warm_lookup - start the misses a lookup of hash takes first: its
 * primary bucket's line and the line of that bucket's CLOCK bits.  Only
 * arithmetic on the handle's copies and two prefetches, which never fault,
 * so it is safe on any hash; a caller issues it as soon as it has the hash
 * and does its own bookkeeping while the lines come (table_get_lockfree
 * does not warm by itself).
 */
static inline void table_prefetch(const void *at)
{
#if defined(__x86_64__) || defined(__i386__)
	/* NOTE: gcc 12 at -O3 dropped both __builtin_prefetch calls of
	 * table_warm_lookup once inlined into client/api_read.c's get (the
	 * function loads the bucket later), which defeats issuing them
	 * early; an asm statement it keeps. */
	__asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)at));
#else
	__builtin_prefetch(at);
#endif
}

/* The two lines of partition p's bucket b (table_warm_lookup's). */
static inline void table_warm_place(const struct table *t, uint64_t p, uint64_t b)
{
	table_prefetch(t->part_base + p * t->part_stride + b * TABLE_BUCKET_BYTES);
	table_prefetch(t->used_base + p * t->used_stride + b * sizeof(uint16_t));
}

static inline void table_warm_lookup(const struct table *t, uint64_t hash)
{
	table_warm_place(t, table_partition_of(t, hash),
			 table_bucket_of(t, hash));
}

/*
 * table_warm_item - the miss a lookup of hash takes next, once its bucket's
 * line is in (issue table_warm_lookup first, and this some time later):
 * the lines of the first TABLE_PREFETCH_ITEM_BYTES of each item that a slot
 * of the primary bucket with the key's tag refers to, as a batch's second
 * stage warms them (table_read.h).  Returns the first such item's address,
 * or NULL when no slot has the tag (or its reference is out of the ring).
 * Like table_warm_lookup it takes no lock and is safe on any hash: it reads
 * the bucket with relaxed loads (a racing writer costs a useless
 * prefetch), checks each reference against the ring's size from the
 * handle, and only prefetches.
 */
const void *table_warm_item(const struct table *t, uint64_t hash);

/*
 * table_get_into - the lookup itself, with the copy's destination chosen
 * once the item is found: sink->reserve(arg, info) gets the item's
 * description (info complete but for token_sent) and returns room for
 * info->value_len bytes, or NULL (the lookup then returns TABLE_TOO_SMALL
 * and copies nothing).  A reply can thus put its header and the value in
 * place with one lookup and one copy whatever the value's size.  reserve
 * runs under the partition lock, so it must be short and take no lock.
 * sink may be NULL.
 */
struct table_value_sink {
	void *(*reserve)(void *arg, const struct table_item_info *info);
	void *arg;
};
enum table_status table_get_into(struct table *t, uint64_t hash,
				 const void *key, size_t key_len,
				 const struct table_get_opts *opts,
				 const struct table_value_sink *sink,
				 struct table_item_info *info);

/* table_store - cas_out (may be NULL) receives the stored item's CAS. */
enum table_status table_store(struct table *t, const struct table_store_req *req,
			      uint64_t *cas_out);

/* table_delete - opts may be NULL. */
enum table_status table_delete(struct table *t, const void *key, size_t key_len,
			       const struct table_delete_opts *opts);

/* table_arith - value receives the new number; info (may be NULL) the rest. */
enum table_status table_arith(struct table *t, const struct table_arith_req *req,
			      uint64_t *value, struct table_item_info *info);

/*
 * table_flush - invalidate every item stored before the moment given by
 * when (memcached's rule; 0 = now).  Takes effect lazily, in O(1).
 */
void table_flush(struct table *t, int64_t when);

/* table_tick - set the clock to now and apply a delayed flush that is due. */
void table_tick(struct table *t, uint32_t now);

/* table_exptime - memcached's TTL rule to absolute seconds (0 = never). */
uint32_t table_exptime(const struct table *t, int64_t ttl);

void table_stats_partition(const struct table *t, uint32_t partition,
			   struct table_stats *out);

/* table_recover.c: crash recovery's side of the table. */

/* table_partition_of_lock - 0 and the partition whose lock is at offset in
 * the control part, or -ENOENT. */
int table_partition_of_lock(const struct table *t, uint32_t offset,
			    uint32_t *partition);

/*
 * table_partition_reset - empty partition p as table_create left it (items
 * gone, cumulative counters kept).  The caller guarantees that nobody holds
 * or can take p's lock meanwhile (lwlock_recover's repair step).
 */
int table_partition_reset(struct table *t, uint32_t p);

/* table_partition_drop_if_torn - reset p if a writer stopped inside a
 * change (its sequence word is odd); 1 if it did, -EBUSY if p's lock is
 * held (it never waits for it). */
int table_partition_drop_if_torn(struct table *t, uint32_t p);
void table_stats_total(const struct table *t, struct table_stats *out);

/*
 * table_stats_reset - memcached's `stats reset` for the table: every
 * partition's counters start again from 0 (what it holds, its items and
 * bytes, and the lock statistics stay).  Takes each partition's lock
 * exclusive in turn; does nothing on a read-only mapping.
 */
void table_stats_reset(struct table *t);

#endif
