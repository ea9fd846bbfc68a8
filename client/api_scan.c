/*
 * api_scan.c - listing keys straight from the shared segment
 *
 * memcached cannot list its keys without stopping to walk its own memory;
 * here a client program walks the table itself, through the read-only
 * mapping it already has, and the server does nothing at all.
 *
 * The walk goes partition by partition, bucket chain by bucket chain.  A
 * chain is read the way a lock-free lookup reads (table_ops.c): read the
 * partition's sequence word, copy out what the chain's live items show
 * (key, sizes, flags, TTL, CAS) into process memory, and keep the copy
 * only if the word is the same even number afterwards, i.e. no writer ran
 * in the partition meanwhile; otherwise read the chain again.  Only a kept
 * copy reaches the callback, so a key is never reported half-written.
 * Every reference, link and length followed on the way is bounds-checked,
 * because a copy that races a writer may read anything before it is
 * thrown away.  A key lives in one chain only, so no key is seen twice.
 *
 * NOTE: reading the partition under its lock held shared would be simpler,
 * but every scan would then slow the server's writers down, and a client
 * killed mid-scan would hold a lock the supervisor has to recover.  After
 * SCAN_TRIES failed reads of one chain (a partition written without
 * pause) it does take the lock shared for that chain, so a scan finishes.
 *
 * Interface routines: shmkv_scan, shmkv_delete_prefix.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "table_internal.h"

#define SCAN_TRIES 8

/* One key as a chain read found it, in process memory. */
struct scan_entry {
	struct shmkv_key_info info;
	unsigned char key[SHMKV_KEY_MAX];
};

/* What one chain read found; grows to the longest chain seen. */
struct scan_buf {
	struct scan_entry *e;
	size_t n, cap;
};

struct scan_want {
	const unsigned char *prefix;
	size_t prefix_len;
};

static struct scan_entry *scan_buf_next(struct scan_buf *sb)
{
	if (sb->n == sb->cap) {
		size_t cap = sb->cap ? sb->cap * 2 : 32;
		struct scan_entry *bigger = realloc(sb->e, cap * sizeof(*bigger));

		if (bigger == NULL)
			return NULL;
		sb->e = bigger;
		sb->cap = cap;
	}
	return &sb->e[sb->n];
}

/* Copy out one slot's item if it is live and has the prefix; -1 on OOM. */
static int copy_slot(const struct table_part_ref *pr, uint32_t ref,
		     const struct scan_want *w, struct scan_buf *sb)
{
	struct table_item *it = ring_item(pr, ref);
	struct scan_entry *e;
	uint32_t key_len;

	if (it == NULL || !ring_item_alive(pr, it))
		return 0;
	key_len = it->key_len;
	/* ring_item checked the item's extent with the header it read; a
	 * racing writer may have changed key_len since, so check again with
	 * the copy used, against the ring and against our buffer (the field
	 * holds up to 255). */
	if (key_len == 0 || key_len > SHMKV_KEY_MAX ||
	    !ring_range_ok(pr, item_key(it), key_len) || key_len < w->prefix_len ||
	    memcmp(item_key(it), w->prefix, w->prefix_len) != 0)
		return 0;
	e = scan_buf_next(sb);
	if (e == NULL)
		return -1;
	memcpy(e->key, item_key(it), key_len);
	e->info.key_len = key_len;
	e->info.value_len = it->value_len;
	e->info.flags = it->flags;
	e->info.ttl = it->exptime == 0 ? -1
				       : (int64_t)it->exptime - (int64_t)pr->now;
	e->info.cas = item_cas(it);
	sb->n++;
	return 0;
}

/* Copy out chain b's matching items; racy unless the caller validates. */
static int copy_chain(const struct table_part_ref *pr, uint32_t b,
		      const struct scan_want *w, struct scan_buf *sb)
{
	sb->n = 0;
	/* A longer walk than a chain can have is a loop that a racing
	 * writer's half-made link showed us. */
	for (uint32_t hops = 0;
	     b < pr->nbuckets_total && hops < table_chain_max(pr->t); hops++) {
		const struct table_bucket *bk = &pr->buckets[b];

		for (uint32_t s = 0; s < TABLE_BUCKET_SLOTS; s++)
			if (bk->tags[s] != 0 &&
			    copy_slot(pr, bk->refs[s], w, sb) < 0)
				return -1;
		if (bk->next == 0 || bk->next > pr->nbuckets_total)
			break;
		b = bk->next - 1;
	}
	return 0;
}

/* Read chain b consistently into sb: lock-free if it can, else locked. */
static int read_chain(struct table_part_ref *pr, uint32_t b,
		      const struct scan_want *w, struct scan_buf *sb)
{
	for (int tries = 0; tries < SCAN_TRIES; tries++) {
		/* Acquire pairs with table_part_unlock's release store. */
		uint32_t before = atomic_load_explicit(&pr->part->seq,
						       memory_order_acquire);

		if (before & 1u)
			continue;
		if (copy_chain(pr, b, w, sb) < 0)
			return -1;
		/* Orders the copy before the re-check; pairs with the release
		 * fence in table_part_lock after a writer's odd store. */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&pr->part->seq, memory_order_relaxed) ==
		    before)
			return 0;
	}
	table_part_lock(pr, LW_SHARED);
	int rc = copy_chain(pr, b, w, sb);
	table_part_unlock(pr, LW_SHARED);
	return rc;
}

static enum shmkv_status scan_table(shmkv *kv, const struct scan_want *w,
				    shmkv_scan_fn fn, void *arg)
{
	struct table *t = &kv->cache->table;
	struct scan_buf sb = { 0 };
	enum shmkv_status st = SHMKV_OK;
	bool stop = false;

	for (uint32_t p = 0; p < t->npartitions && !stop; p++) {
		struct table_part_ref pr;

		table_part_resolve_index(t, p, &pr);
		for (uint32_t b = 0; b < t->nbuckets && !stop; b++) {
			if (read_chain(&pr, b, w, &sb) < 0) {
				st = api_fail(SHMKV_OUT_OF_MEMORY,
					      "out of memory");
				stop = true;
				break;
			}
			for (size_t i = 0; i < sb.n && !stop; i++) {
				sb.e[i].info.key = sb.e[i].key;
				stop = fn(&sb.e[i].info, arg) != 0;
			}
		}
	}
	free(sb.e);
	return st;
}

static enum shmkv_status scan(shmkv *kv, const void *prefix, size_t prefix_len,
			      shmkv_scan_fn fn, void *arg)
{
	/* memcmp must not see NULL, even for no bytes. */
	struct scan_want w = { prefix_len > 0 ? prefix : "", prefix_len };
	enum shmkv_status st;

	if (prefix_len > SHMKV_KEY_MAX)
		return api_fail(SHMKV_BAD_KEY,
				"a prefix of %zu bytes is longer "
				"than any key (%d)",
				prefix_len, SHMKV_KEY_MAX);
	pthread_mutex_lock(&kv->mu);
	st = api_ensure_live(kv);
	if (st == SHMKV_OK)
		st = scan_table(kv, &w, fn, arg);
	pthread_mutex_unlock(&kv->mu);
	return st;
}

enum shmkv_status shmkv_scan(shmkv *kv, const void *prefix, size_t prefix_len,
			     shmkv_scan_fn fn, void *arg)
{
	return api_result(scan(kv, prefix, prefix_len, fn, arg));
}

/* The keys a scan found, each in memory of its own, for a delete batch. */
struct key_list {
	struct shmkv_write *w;
	size_t n, cap;
	bool oom;
};

static int collect_key(const struct shmkv_key_info *k, void *arg)
{
	struct key_list *l = arg;
	void *copy;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct shmkv_write *bigger = realloc(l->w, cap * sizeof(*bigger));

		if (bigger == NULL)
			return l->oom = true, 1;
		l->w = bigger;
		l->cap = cap;
	}
	copy = malloc(k->key_len);
	if (copy == NULL)
		return l->oom = true, 1;
	memcpy(copy, k->key, k->key_len);
	l->w[l->n++] = (struct shmkv_write){ .key = copy, .key_len = k->key_len };
	return 0;
}

static enum shmkv_status delete_prefix(shmkv *kv, const void *prefix,
				       size_t prefix_len, size_t *deleted)
{
	struct key_list l = { 0 };
	enum shmkv_status st;
	size_t gone = 0;

	if (prefix_len == 0)
		return api_fail(SHMKV_BAD_KEY,
				"an empty prefix would delete "
				"every key; use shmkv_flush for that");
	st = scan(kv, prefix, prefix_len, collect_key, &l);
	if (st == SHMKV_OK && l.oom)
		st = api_fail(SHMKV_OUT_OF_MEMORY, "out of memory");
	if (st == SHMKV_OK)
		st = api_delete_many(kv, l.w, l.n);
	for (size_t i = 0; i < l.n; i++) {
		gone += st == SHMKV_OK && l.w[i].status == SHMKV_OK;
		free((void *)l.w[i].key);
	}
	free(l.w);
	if (deleted != NULL)
		*deleted = gone;
	return st;
}

enum shmkv_status shmkv_delete_prefix(shmkv *kv, const void *prefix,
				      size_t prefix_len, size_t *deleted)
{
	return api_result(delete_prefix(kv, prefix, prefix_len, deleted));
}
