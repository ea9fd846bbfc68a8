/*
 * api_read.c - lookups that take no lock: shmkv_get, shmkv_gets,
 * shmkv_get_alloc, shmkv_get_many, shmkv_counters
 *
 * A lookup reads the shared segment and the calling thread's own memory,
 * and nothing else: no mutex, no locked instruction, no line another
 * thread writes.  Every thread that looks up on a handle has a struct
 * api_reader of its own (found through a small thread-local table) with
 * its counters, its liveness countdown and its active word; the table read
 * is table_get_lockfree's sequence-checked one.  So threads sharing a
 * handle look up in parallel, as processes do.
 *
 * What needs the handle's mutex happens outside a lookup, every
 * LIVENESS_EVERY lookups of the thread or LIVENESS_MS milliseconds after
 * its last poll: polling the connection (a killed server), attaching again
 * after a restart, putting the counters in the proc slot.  It only tries
 * the mutex (but to attach): a thread that holds it is talking to the
 * server and would hear of its death itself.  A lookup that
 * raced writers several times in a row falls back to the locked read under
 * the mutex (the proc slot's lock records are not for threads to share).
 *
 * The mapping's lifetime: lookups read kv->live, which a detach (under the
 * mutex) clears before it unmaps.  A lookup that loaded it before may still
 * be reading, so the detach waits for it: a reader makes its active word
 * odd with a plain store before it loads kv->live and even after its last
 * read of the segment; the detach clears kv->live, runs membarrier(2),
 * which makes every thread of the process pass a full fence (so either it
 * sees a reader's odd word, or that reader sees kv->live cleared), then
 * waits for each reader it saw odd to move on.  Readers never block while
 * odd, so that is a wait of microseconds.  NOTE: a fence in every lookup
 * would do it without membarrier, at the cost of a locked instruction per
 * lookup; where membarrier is refused (old kernels, seccomp filters,
 * valgrind) detached mappings are instead kept until shmkv_close.
 *
 * Counters: each reader counts its own hits and misses.  The proc slot
 * (the server's direct_get_hits) is counted into by the only reader at
 * once (api_readers_rebind says which reader that is), and written by the
 * slow path with the sum when several threads share the handle (so then it
 * may lag by up to LIVENESS_EVERY lookups a thread).  NOTE: a
 * reader exists for every thread that ever looked up on the handle; a
 * thread's state goes to the next thread that gets its thread-local
 * address, and all are freed by shmkv_close.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "api_internal.h"
#include "clock.h"
#include "table_read.h"

#define TLS_HANDLES 4u

/* Its address names the thread (unique among the threads alive). */
static _Thread_local char thread_token;
static _Thread_local struct {
	shmkv *kv;
	uint64_t id;
	struct api_reader *r;
} tls_readers[TLS_HANDLES];

static int barrier_cmd = -1; /* the membarrier command, -1 = none */
static pthread_once_t barrier_once = PTHREAD_ONCE_INIT;

static void barrier_setup(void)
{
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
		    0, 0) == 0) {
		barrier_cmd = MEMBARRIER_CMD_PRIVATE_EXPEDITED;
		return;
	}
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

	if (cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL))
		barrier_cmd = MEMBARRIER_CMD_GLOBAL;
}

void api_barrier_init(void)
{
	pthread_once(&barrier_once, barrier_setup);
}

void api_retire(shmkv *kv, struct cache *c)
{
	struct api_retired *keep;

	if (barrier_cmd >= 0 && syscall(SYS_membarrier, barrier_cmd, 0, 0) == 0) {
		for (struct api_reader *r = kv->readers; r != NULL; r = r->next) {
			uint64_t seen = atomic_load_explicit(&r->active,
							     memory_order_acquire);

			/* Acquire pairs with reader_leave's release: its
			 * reads of the segment are over. */
			while ((seen & 1u) &&
			       atomic_load_explicit(&r->active,
						    memory_order_acquire) == seen)
				sched_yield();
		}
		cache_destroy(c);
		free(c);
		return;
	}
	keep = malloc(sizeof(*keep));
	if (keep == NULL)
		return; /* leaked rather than unmapped under a reader */
	keep->cache = c;
	keep->next = kv->retired;
	kv->retired = keep;
}

void api_readers_sum(shmkv *kv, struct shmkv_counters *out)
{
	memset(out, 0, sizeof(*out));
	for (struct api_reader *r = kv->readers; r != NULL; r = r->next) {
		out->hits += atomic_load_explicit(&r->hits, memory_order_relaxed);
		out->misses += atomic_load_explicit(&r->misses,
						    memory_order_relaxed);
	}
}

void api_readers_free(shmkv *kv)
{
	while (kv->readers != NULL) {
		struct api_reader *r = kv->readers;

		kv->readers = r->next;
		free(r);
	}
	while (kv->retired != NULL) {
		struct api_retired *old = kv->retired;

		kv->retired = old->next;
		cache_destroy(old->cache);
		free(old->cache);
		free(old);
	}
}

/* With kv->mu held: the reader's copy of the geometry (get_one's warm). */
static void reader_rewarm(shmkv *kv, struct api_reader *r)
{
	if (kv->cache != NULL)
		r->warm = kv->cache->table;
}

/*
 * The calling thread's reader on kv, made on its first lookup: the
 * thread's entries are kept most recent first, so a loop on one handle
 * finds it at once (reader_of).
 */
static __attribute__((noinline)) struct api_reader *reader_find(shmkv *kv)
{
	struct api_reader *r = NULL;
	unsigned i;

	for (i = 1; i < TLS_HANDLES && r == NULL; i++)
		if (tls_readers[i].kv == kv && tls_readers[i].id == kv->id)
			r = tls_readers[i].r;
	if (r == NULL) {
		pthread_mutex_lock(&kv->mu);
		for (r = kv->readers; r != NULL && r->thread != &thread_token;)
			r = r->next;
		if (r == NULL && (r = calloc(1, sizeof(*r))) != NULL) {
			r->thread = &thread_token;
			r->polled_ns = monotonic_coarse_ns();
			reader_rewarm(kv, r);
			r->next = kv->readers;
			kv->readers = r;
			atomic_store_explicit(&kv->nreaders,
					      atomic_load(&kv->nreaders) + 1,
					      memory_order_relaxed);
			api_readers_rebind(kv);
		}
		pthread_mutex_unlock(&kv->mu);
		if (r == NULL)
			return NULL;
		i = TLS_HANDLES; /* the least recent entry goes */
	}
	/* Entries 0 .. i-2 move down one; this one goes first. */
	memmove(&tls_readers[1], &tls_readers[0],
		(i - 1) * sizeof(tls_readers[0]));
	tls_readers[0].kv = kv;
	tls_readers[0].id = kv->id;
	tls_readers[0].r = r;
	return r;
}

static inline __attribute__((always_inline)) struct api_reader *reader_of(shmkv *kv)
{
	if (__builtin_expect(tls_readers[0].kv == kv && tls_readers[0].id == kv->id,
			     1))
		return tls_readers[0].r;
	return reader_find(kv);
}

static void reader_enter(struct api_reader *r)
{
	uint64_t a = atomic_load_explicit(&r->active, memory_order_relaxed);

	atomic_store_explicit(&r->active, a + 1, memory_order_relaxed);
	/* Only the compiler is kept from moving the loads that follow above
	 * the store; the CPU is fenced by api_retire's membarrier. */
	atomic_signal_fence(memory_order_seq_cst);
}

static void reader_leave(struct api_reader *r)
{
	uint64_t a = atomic_load_explicit(&r->active, memory_order_relaxed);

	atomic_store_explicit(&r->active, a + 1, memory_order_release);
}

/* Put the counts in the proc slot; with kv->mu held, or as the only reader. */
static void publish(shmkv *kv, struct cache *c, uint64_t hits, uint64_t misses)
{
	/* Resolved and bounds-checked once, when the slot was adopted; NULL
	 * once api_detach has given the slot up. */
	struct proc *p = __atomic_load_n(&c->self_proc, __ATOMIC_RELAXED);

	/* The slot's only writer: plain stores; the server loads relaxed. */
	if (p == NULL)
		return;
	atomic_store_explicit(&p->hits,
			      hits - atomic_load_explicit(&kv->base_hits,
							  memory_order_relaxed),
			      memory_order_relaxed);
	atomic_store_explicit(&p->misses,
			      misses - atomic_load_explicit(&kv->base_misses,
							    memory_order_relaxed),
			      memory_order_relaxed);
}

/*
 * api_readers_rebind - with kv->mu held, whenever the mapping or the set of
 * readers changes: the proc slot the handle's only reader counts into at
 * once (its counts put there first), or none when threads share the
 * handle, whose sums the slow path puts there instead (publish).
 */
void api_readers_rebind(shmkv *kv)
{
	struct proc *p = NULL;
	struct shmkv_counters sum;

	if (kv->cache != NULL &&
	    atomic_load_explicit(&kv->nreaders, memory_order_relaxed) == 1) {
		p = __atomic_load_n(&kv->cache->self_proc, __ATOMIC_RELAXED);
		api_readers_sum(kv, &sum);
		publish(kv, kv->cache, sum.hits, sum.misses);
	}
	/* Relaxed: the owner may be inside a lookup; one that loaded the
	 * slot before api_detach cleared it is waited for (api_retire). */
	for (struct api_reader *r = kv->readers; r != NULL; r = r->next)
		atomic_store_explicit(&r->solo, p, memory_order_relaxed);
}

/* Add n to a counter that only the calling thread writes. */
static inline __attribute__((always_inline)) void counter_add(_Atomic uint64_t *c,
							      uint64_t n)
{
	atomic_store_explicit(c,
			      atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/*
 * Inside a lookup: add a lookup's (or a batch's) hits and misses to the
 * reader's counts and, as the handle's only reader, to the proc slot's,
 * which then hold publish's values already.  NOTE: storing the reader's
 * count less the base each time would do too, but costs the handle's
 * reader count, the mapping's slot and the base, three loads and two
 * branches more, between one get's item and the next get's bucket.
 */
static inline __attribute__((always_inline)) void count_add(struct api_reader *r,
							    uint64_t hits,
							    uint64_t misses)
{
	struct proc *p = atomic_load_explicit(&r->solo, memory_order_relaxed);

	counter_add(&r->hits, hits);
	counter_add(&r->misses, misses);
	if (p != NULL) {
		counter_add(&p->hits, hits);
		counter_add(&p->misses, misses);
	}
}

/* count_add for one lookup: one counter of each. */
static inline __attribute__((always_inline)) void count(struct api_reader *r,
							bool hit)
{
	struct proc *p = atomic_load_explicit(&r->solo, memory_order_relaxed);

	counter_add(hit ? &r->hits : &r->misses, 1);
	if (p != NULL)
		counter_add(hit ? &p->hits : &p->misses, 1);
}

/*
 * The slow path, outside any lookup: poll the connection, attach again if
 * detached, and put every thread's counts in the proc slot.
 */
static __attribute__((noinline, cold)) enum shmkv_status reader_check(
	shmkv *kv, struct api_reader *r)
{
	struct shmkv_counters sum;
	enum shmkv_status st;

	/* A thread holding the mutex is talking to the server, so this
	 * poll can wait for the next round; a lookup never waits for it but
	 * to attach. */
	if (atomic_load_explicit(&kv->live, memory_order_relaxed) != NULL) {
		if (pthread_mutex_trylock(&kv->mu) != 0) {
			r->calls = 0;
			r->polled_ns = monotonic_coarse_ns();
			return SHMKV_OK;
		}
	} else {
		pthread_mutex_lock(&kv->mu);
	}
	st = api_poll_live(kv);
	if (st == SHMKV_OK) {
		api_readers_sum(kv, &sum);
		publish(kv, kv->cache, sum.hits, sum.misses);
		reader_rewarm(kv, r);
	}
	pthread_mutex_unlock(&kv->mu);
	r->calls = 0;
	r->polled_ns = monotonic_coarse_ns();
	return st;
}

/* Poll now?  The clock is the vDSO's coarse one, compared in ns (no
 * division); the call counter bounds a fast loop without it. */
static inline __attribute__((always_inline)) bool reader_due(shmkv *kv,
							     struct api_reader *r)
{
	return ++r->calls >= LIVENESS_EVERY ||
	       monotonic_coarse_ns() - r->polled_ns >=
		       (uint64_t)LIVENESS_MS * 1000000u ||
	       atomic_load_explicit(&kv->live, memory_order_relaxed) == NULL;
}

/* Inside a lookup: the mapping to read, or NULL (leave and report). */
static struct cache *reader_mapping(shmkv *kv)
{
	struct cache *c = atomic_load_explicit(&kv->live, memory_order_acquire);

	if (c == NULL ||
	    atomic_load_explicit(&segment_header(&c->seg)->state,
				 memory_order_acquire) != SEGMENT_STATE_RUNNING)
		return NULL;
	return c;
}

/* After reader_mapping said no: detach if the server stopped. */
static __attribute__((noinline, cold)) enum shmkv_status reader_gone(shmkv *kv)
{
	pthread_mutex_lock(&kv->mu);
	if (kv->attached &&
	    atomic_load_explicit(&segment_header(&kv->cache->seg)->state,
				 memory_order_acquire) != SEGMENT_STATE_RUNNING)
		api_detach(kv);
	pthread_mutex_unlock(&kv->mu);
	return api_fail(SHMKV_SERVER_GONE,
			"the server at %s stopped; the next "
			"call reattaches",
			kv->path);
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

/* One key's lookup: the table's request, and where the caller wants the
 * results besides its buffer. */
struct lookup {
	struct table_read rd;
	size_t *value_len;
	uint32_t *flags;
	uint64_t *cas;
};

/*
 * A lookup's outputs and count from its table_status, for the lock-free
 * and the locked read alike.  NOTE: the caller's outputs come as arguments,
 * not in a struct lookup: a get that built one to pass here ran 14
 * instructions more (callgrind: 382 against 368 a get).
 */
static inline __attribute__((always_inline)) enum shmkv_status lookup_done(
	struct api_reader *r, const struct table_read *rd, size_t *value_len,
	uint32_t *flags, uint64_t *cas, enum table_status st)
{
	if (st == TABLE_OK || st == TABLE_TOO_SMALL) {
		if (value_len != NULL)
			*value_len = rd->value_len;
		if (flags != NULL)
			*flags = rd->flags;
		if (cas != NULL)
			*cas = rd->cas;
	}
	if (st != TABLE_BAD_KEY)
		count(r, st != TABLE_NOT_FOUND);
	return from_table(st);
}

/* Outside a lookup: the locked read, under the mutex, on mapping c. */
static __attribute__((noinline, cold)) enum shmkv_status lookup_locked(
	shmkv *kv, struct api_reader *r, struct cache *c, struct lookup *l)
{
	struct table_item_info info;
	enum table_status tst;
	enum shmkv_status st;

	pthread_mutex_lock(&kv->mu);
	if (kv->cache != c) {
		pthread_mutex_unlock(&kv->mu);
		return api_fail(SHMKV_SERVER_GONE,
				"the server at %s stopped; "
				"the next call reattaches",
				kv->path);
	}
	tst = table_get_hashed(&c->table, l->rd.hash, l->rd.key, l->rd.key_len,
			       NULL, l->rd.buf, l->rd.cap, &info);
	l->rd.cas = info.cas;
	l->rd.value_len = info.value_len;
	l->rd.flags = info.flags;
	st = lookup_done(r, &l->rd, l->value_len, l->flags, l->cas, tst);
	pthread_mutex_unlock(&kv->mu);
	return st;
}

/* Liveness and the reader, before a lookup; SHMKV_OK to go on. */
static inline __attribute__((always_inline)) enum shmkv_status reader_ready(
	shmkv *kv, struct api_reader **out)
{
	struct api_reader *r = reader_of(kv);

	*out = r;
	if (r == NULL)
		return api_fail(SHMKV_OUT_OF_MEMORY, "out of memory");
	return reader_due(kv, r) ? reader_check(kv, r) : SHMKV_OK;
}

/* After a lock-free read that raced writers too often, outside the lookup:
 * the locked read (lookup_locked) with the caller's outputs. */
static __attribute__((noinline, cold)) enum shmkv_status get_locked(
	shmkv *kv, struct api_reader *r, struct cache *c,
	const struct table_read *rd, size_t *value_len, uint32_t *flags,
	uint64_t *cas)
{
	struct lookup l = {
		.rd = *rd, .value_len = value_len, .flags = flags, .cas = cas
	};

	return lookup_locked(kv, r, c, &l);
}

/*
 * One get.  The bucket's miss starts first, from the thread's copy of the
 * geometry, so that entering the lookup, the liveness check and the
 * table's own preparation run while the line is on its way: then a loop's
 * get is short enough, from one item's miss to the next bucket's, for the
 * CPU to overlap the two.  NOTE: warming from the mapping itself would
 * need the lookup entered and the mapping loaded first, a dozen
 * instructions more in that stretch; a copy that a reattach made stale
 * (until this thread's next poll) costs only useless prefetches, which
 * never fault.
 */
static inline __attribute__((always_inline)) enum shmkv_status get_one(
	shmkv *kv, const void *key, size_t key_len, void *buf, size_t cap,
	size_t *value_len, uint32_t *flags, uint64_t *cas)
{
	uint64_t hash = table_read_hash(key, key_len);
	struct api_reader *r = reader_of(kv);
	struct table_read rd;
	enum shmkv_status ret;
	struct cache *c;
	int st;

	if (r == NULL)
		return api_fail(SHMKV_OUT_OF_MEMORY, "out of memory");
	table_warm_lookup(&r->warm, hash);
	reader_enter(r);
	c = reader_mapping(kv);
	if (__builtin_expect(reader_due(kv, r), 0)) {
		/* reader_check takes the mutex and may detach: outside. */
		enum shmkv_status due;

		reader_leave(r);
		due = reader_check(kv, r);
		if (due != SHMKV_OK)
			return due;
		reader_enter(r);
		c = reader_mapping(kv);
	}
	if (__builtin_expect(c == NULL, 0)) {
		reader_leave(r);
		return reader_gone(kv);
	}
	rd = (struct table_read){
		.hash = hash, .key = key, .key_len = key_len, .buf = buf, .cap = cap
	};
	/* table_get_lockfree, inline (table_read.h says why). */
	st = table_read_single(&c->table, &rd);
	if (__builtin_expect(st < 0, 0)) {
		reader_leave(r);
		return get_locked(kv, r, c, &rd, value_len, flags, cas);
	}
	/* Counted before leaving: the count goes to the mapping's proc slot. */
	ret = lookup_done(r, &rd, value_len, flags, cas, (enum table_status)st);
	reader_leave(r);
	return ret;
}

enum shmkv_status shmkv_get(shmkv *kv, const void *key, size_t key_len, void *buf,
			    size_t cap, size_t *value_len, uint32_t *flags)
{
	return api_result(
		get_one(kv, key, key_len, buf, cap, value_len, flags, NULL));
}

enum shmkv_status shmkv_gets(shmkv *kv, const void *key, size_t key_len,
			     void *buf, size_t cap, size_t *value_len,
			     uint32_t *flags, uint64_t *cas)
{
	return api_result(
		get_one(kv, key, key_len, buf, cap, value_len, flags, cas));
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
		cap = len; /* it may grow again before the next try */
	}
	return api_fail(SHMKV_TOO_SMALL, "the value kept growing while read");
}

enum shmkv_status shmkv_get_alloc(shmkv *kv, const void *key, size_t key_len,
				  void **value, size_t *value_len,
				  uint32_t *flags)
{
	return api_result(get_alloc(kv, key, key_len, value, value_len, flags));
}

static void items_fail(struct shmkv_item *items, size_t n, enum shmkv_status st)
{
	/* No item may be left with a status from an earlier batch. */
	for (size_t i = 0; i < n; i++) {
		items[i].value_len = 0;
		items[i].flags = 0;
		items[i].status = st;
	}
}

/*
 * A batch on mapping c, as its per-key work (batch_key, batch_item) sees
 * it: the items, the clock and flush cut-off read once (both only move
 * forward, and a second's staleness is the clock's contract), and the hits
 * and misses, added to the reader's once at the end.
 */
struct batch {
	shmkv *kv;
	struct api_reader *r;
	struct cache *c;
	struct shmkv_item *items;
	uint32_t now;
	uint64_t flush_cas;
	uint64_t hits, misses;
};

/*
 * One item of a batch that raced writers too often: the locked read, which
 * leaves the lookup and enters it again (and counts itself).  Inside a
 * lookup; false if c went away meanwhile.
 */
static __attribute__((noinline, cold)) bool batch_item_locked(
	shmkv *kv, struct api_reader *r, struct cache *c, struct shmkv_item *it,
	const struct table_read *rd)
{
	struct lookup l = { .rd = *rd,
			    .value_len = &it->value_len,
			    .flags = &it->flags };

	reader_leave(r);
	it->status = lookup_locked(kv, r, c, &l);
	reader_enter(r);
	return atomic_load_explicit(&kv->live, memory_order_acquire) == c;
}

/* table_read_batch's key_of: item i's key. */
static inline __attribute__((always_inline)) const void *batch_key(void *ctx,
								   size_t i,
								   size_t *key_len)
{
	const struct shmkv_item *it = &((struct batch *)ctx)->items[i];

	*key_len = it->key_len;
	return it->key;
}

/* table_read_batch's finish: read item g, its hash computed and its lines
 * warmed, and fill its outputs.  Inside a lookup; false if the mapping
 * went away meanwhile. */
static inline __attribute__((always_inline)) bool batch_item(
	void *ctx, size_t g, uint64_t hash, struct table_read_at at)
{
	struct batch *b = ctx;
	struct shmkv_item *it = &b->items[g];
	struct table_read rd = { .hash = hash,
				 .key = it->key,
				 .key_len = it->key_len,
				 .buf = it->buf,
				 .cap = it->cap };
	int st = table_read_one_at(&b->c->table, &rd, at, b->now, b->flush_cas);
	bool found = st == TABLE_OK || st == TABLE_TOO_SMALL;

	if (__builtin_expect(st < 0, 0))
		return batch_item_locked(b->kv, b->r, b->c, it, &rd);
	it->value_len = found ? rd.value_len : 0;
	it->flags = found ? rd.flags : 0;
	it->status = from_table((enum table_status)st);
	b->hits += found;
	b->misses += st == TABLE_NOT_FOUND;
	return true;
}

/*
 * The batch, through table_read_batch's one loop.  Inside a lookup;
 * returns how many items it finished (n unless c went away), their hits
 * and misses added to the reader's.
 */
static size_t batch_run(shmkv *kv, struct api_reader *r, struct cache *c,
			struct shmkv_item *items, size_t n)
{
	uint32_t now = segment_clock(c->table.seg);
	struct batch b = { .kv = kv,
			   .r = r,
			   .c = c,
			   .items = items,
			   .now = now,
			   .flush_cas = table_read_flush_cut(&c->table, now) };
	size_t done = table_read_batch(&c->table, n, &b, batch_key, batch_item);

	count_add(r, b.hits, b.misses);
	return done;
}

static enum shmkv_status get_many(shmkv *kv, struct shmkv_item *items, size_t n)
{
	struct api_reader *r;
	struct cache *c;
	size_t done = 0;
	enum shmkv_status st = reader_ready(kv, &r);

	if (st != SHMKV_OK) {
		items_fail(items, n, st);
		return st;
	}
	reader_enter(r);
	c = reader_mapping(kv);
	if (c != NULL)
		done = batch_run(kv, r, c, items, n);
	reader_leave(r);
	if (done == n)
		return SHMKV_OK;
	st = c == NULL ? reader_gone(kv)
		       : api_fail(SHMKV_SERVER_GONE,
				  "the server at %s stopped "
				  "during the batch",
				  kv->path);
	items_fail(items + done, n - done, st);
	return st;
}

enum shmkv_status shmkv_get_many(shmkv *kv, struct shmkv_item *items, size_t n)
{
	return api_result(get_many(kv, items, n));
}

void shmkv_counters(const shmkv *kv, struct shmkv_counters *out)
{
	/* The list of readers changes under the mutex (the handle is const
	 * to the caller, not to its lock). */
	shmkv *k = (shmkv *)kv;

	pthread_mutex_lock(&k->mu);
	api_readers_sum(k, out);
	pthread_mutex_unlock(&k->mu);
}
