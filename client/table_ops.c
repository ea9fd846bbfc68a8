/*
 * table_ops.c - memcached's operations on the table
 *
 * Each operation resolves its partition from the key's hash, takes the
 * partition lock (shared for a plain lookup, exclusive for anything that
 * changes the partition), and reports exactly which outcome happened.
 *
 * Writers allocate ring space first and look the old item up again after:
 * the allocation may have evicted or moved it.  A value is copied out while
 * the lock is held, so no reader can see it half overwritten.
 *
 * Interface routines: table_get, table_store, table_delete, table_arith
 * (see table.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "number.h"
#include "table_internal.h"

#define TABLE_NUMBER_MAX 20u /* digits of UINT64_MAX */

static bool key_ok(size_t key_len)
{
	return key_len > 0 && key_len <= TABLE_KEY_MAX;
}

static uint64_t next_cas(struct table *t)
{
	/* Unique across partitions: one counter for the whole table. */
	return atomic_fetch_add_explicit(&t->hdr->next_cas, 1,
					 memory_order_relaxed);
}

static void info_fill(const struct table_part_ref *pr,
		      const struct table_item *it, struct table_item_info *info)
{
	uint8_t st = item_state(it);

	info->cas = item_cas(it);
	info->value_len = it->value_len;
	info->flags = it->flags;
	info->exptime = it->exptime;
	info->prev_exptime = it->exptime;
	info->last_access = (uint16_t)((uint16_t)pr->now - it->atime);
	info->fetched = (st & ITEM_FETCHED) != 0;
	info->stale = (st & ITEM_STALE) != 0;
	info->key_binary = (st & ITEM_KEY_BINARY) != 0;
}

/*
 * Write a fresh item at offset.  The header is complete before the item is
 * linked, so the tail walk and readers never meet a half-written header.
 */
static struct table_item *item_write(struct table_part_ref *pr, uint64_t offset,
				     const void *key, size_t key_len,
				     uint32_t value_len, uint32_t flags,
				     uint32_t exptime, uint64_t cas)
{
	struct table_item *it = (struct table_item *)(pr->arena + offset);

	it->value_len = value_len;
	it->flags = flags;
	it->exptime = exptime;
	item_set_cas(it, cas);
	it->key_len = (uint8_t)key_len;
	it->state = ITEM_LIVE;
	it->atime = (uint16_t)pr->now;
	memcpy(item_key(it), key, key_len);
	return it;
}

/* Give back space reserved by ring_alloc that will not hold an item. */
static void item_abandon(struct table_part_ref *pr, uint64_t offset,
			 uint64_t total)
{
	struct table_item *it = (struct table_item *)(pr->arena + offset);

	memset(it, 0, sizeof(*it));
	it->value_len = (uint32_t)(total - sizeof(*it));
	it->state = ITEM_DEAD;
	pr->part->dead_bytes += total;
}

/* Find key and report it only if alive; a dead one is still returned in
 * where/item so a writer can reuse its slot. */
static bool find_alive(struct table_part_ref *pr, uint64_t hash,
		       const void *key, size_t key_len,
		       struct table_slot *where, struct table_item **item)
{
	*item = NULL;
	if (bucket_find(pr, hash, key, key_len, where, item) < 0)
		return false;
	return ring_item_alive(pr, *item);
}

/*
 * table_count_found_dead - a locked lookup found its key's item expired or
 * flushed: memcached's get_expired or get_flushed (flushed judged first, as
 * memcached does), which memcached counts on every lookup (get, touch,
 * store, delete, arith) and follows by unlinking the item.  shmkv leaves
 * the item linked until a store of the key or the ring's tail reclaims it,
 * so it marks the item counted: a second lookup then misses plainly, and
 * the reclaim is not counted (table_count_expired), as in memcached there
 * would be nothing left to reclaim.  Under the lock held shared several
 * lookups may meet the item at once: the fetch_or lets one count it, and
 * the add is atomic because others may count other items meanwhile; this
 * happens once per item, never on a hit.  A client program's mapping of
 * the data part is read-only: its lookups count nothing.
 */
static void table_count_found_dead(const struct table_part_ref *pr,
				   struct table_item *it)
{
	bool flushed = pr->flush_cas != 0 && item_cas(it) <= pr->flush_cas;
	uint8_t old;

	table_assert_locked(pr);
	if (!pr->t->seg->writable ||
	    (item_state(it) & (ITEM_KIND_MASK | ITEM_MISS_COUNTED)) != ITEM_LIVE)
		return;
	old = __atomic_fetch_or(&it->state, ITEM_MISS_COUNTED, __ATOMIC_RELAXED);
	if (old & ITEM_MISS_COUNTED)
		return;
	atomic_fetch_add_explicit(flushed ? &pr->part->get_flushed
					  : &pr->part->get_expired,
				  1, memory_order_relaxed);
}

/* find_alive for a locked operation: a dead find is counted. */
static bool find_alive_locked(struct table_part_ref *pr, uint64_t hash,
			      const void *key, size_t key_len,
			      struct table_slot *where, struct table_item **item)
{
	if (find_alive(pr, hash, key, key_len, where, item))
		return true;
	if (*item != NULL)
		table_count_found_dead(pr, *item);
	return false;
}

/* Link a freshly written item, over old's slot if old is still present. */
static int item_link(struct table_part_ref *pr, uint64_t hash, const void *key,
		     size_t key_len, uint64_t offset)
{
	struct table_slot where;
	struct table_item *old = NULL;

	if (bucket_find(pr, hash, key, key_len, &where, &old) == 0 &&
	    (pr->arena + offset) != (unsigned char *)old) {
		if (!ring_item_alive(pr, old))
			table_count_expired(pr->part, old);
		bucket_replace(pr, where, old, offset);
		return 0;
	}
	return bucket_link(pr, hash, offset);
}

/*
 * An explicit CAS (ms E) is used as given, and the counter is moved past it
 * so that flush_all's cut-off, the counter's value, still covers every item.
 */
static uint64_t explicit_cas(struct table *t, uint64_t cas)
{
	uint64_t next = atomic_load_explicit(&t->hdr->next_cas,
					     memory_order_relaxed);

	while (next <= cas &&
	       !atomic_compare_exchange_weak(&t->hdr->next_cas, &next, cas + 1))
		;
	return cas;
}

/* Decide mg's W/Z flags: the first fetcher of a stale or soon-expiring item
 * wins the right to recache it.  fetch_or makes the win unique even among
 * holders of the shared lock.  As memcached's, R compares the TTL as it
 * stands at R's place in the request: a T before it has already applied,
 * and one that expires the item ("T-1 R30") makes it win. */
static void decide_win(const struct table_part_ref *pr, struct table_item *it,
		       const struct table_get_opts *opts, bool writable,
		       struct table_item_info *info)
{
	uint8_t st = item_state(it);
	bool wants = (st & ITEM_STALE) != 0;

	if (opts != NULL && opts->recache) {
		uint32_t exp = opts->recache_sees_touch
				       ? table_exptime(pr->t, opts->exptime)
				       : it->exptime;

		if (exp != 0 &&
		    (uint64_t)exp < (uint64_t)pr->now + opts->recache_below)
			wants = true;
	}
	if (wants && writable && opts != NULL && opts->win) {
		uint8_t old = __atomic_fetch_or(&it->state, ITEM_TOKEN_SENT,
						__ATOMIC_RELAXED);
		info->won = (old & ITEM_TOKEN_SENT) == 0;
		info->token_sent = !info->won;
	} else {
		info->token_sent = (st & ITEM_TOKEN_SENT) != 0;
	}
}

/* mg N on a miss: an empty item whose creator holds the recache token. */
static enum table_status vivify(struct table_part_ref *pr, uint64_t hash,
				const void *key, size_t key_len,
				const struct table_get_opts *opts,
				struct table_item_info *info)
{
	uint64_t total = item_total_size((uint32_t)key_len, 0);
	uint64_t off = 0;
	struct table_item *it;

	if (ring_alloc(pr, total, &off, NULL) < 0)
		return TABLE_NO_MEMORY;
	it = item_write(pr, off, key, key_len, 0, 0,
			table_exptime(pr->t, opts->vivify_exptime),
			next_cas(pr->t));
	if (opts->win)
		it->state |= ITEM_TOKEN_SENT;
	if (item_link(pr, hash, key, key_len, off) < 0) {
		item_abandon(pr, off, total);
		return TABLE_NO_MEMORY;
	}
	pr->part->total_items++;
	info_fill(pr, it, info);
	/* As memcached's mg N: the creator's fetch counts (h1 next time),
	 * after its own reply saw h0; u leaves it unfetched. */
	if (!opts->no_bump)
		it->state |= ITEM_FETCHED;
	info->won = opts->win;
	info->vivified = true;
	return TABLE_OK;
}

/* A caller's fixed buffer, as table_get and table_get_hashed take one. */
struct table_fixed_buf {
	void *buf;
	size_t cap;
};

/*
 * sink_copy - copy value (info->value_len bytes, already bounds-checked)
 * where the sink says, once info is complete.  TABLE_TOO_SMALL when the
 * sink has no room for it.
 */
static enum table_status sink_copy(const struct table_value_sink *sink,
				   const struct table_item_info *info,
				   const void *value)
{
	void *dst = sink->reserve(sink->arg, info);

	if (dst == NULL)
		return TABLE_TOO_SMALL;
	memcpy(dst, value, info->value_len);
	return TABLE_OK;
}

/* fixed_reserve - a caller's buffer of fixed size: room, or none. */
static void *fixed_reserve(void *arg, const struct table_item_info *info)
{
	const struct table_fixed_buf *fb = arg;

	return info->value_len <= fb->cap ? fb->buf : NULL;
}

enum table_status table_get(struct table *t, const void *key, size_t key_len,
			    const struct table_get_opts *opts, void *buf,
			    size_t cap, struct table_item_info *info)
{
	return table_get_hashed(t, table_hash(key, key_len), key, key_len, opts,
				buf, cap, info);
}

enum table_status table_get_hashed(struct table *t, uint64_t hash,
				   const void *key, size_t key_len,
				   const struct table_get_opts *opts, void *buf,
				   size_t cap, struct table_item_info *info)
{
	struct table_fixed_buf fb = { buf, cap };
	struct table_value_sink sink = { fixed_reserve, &fb };

	return table_get_into(t, hash, key, key_len, opts,
			      buf != NULL ? &sink : NULL, info);
}

enum table_status table_get_into(struct table *t, uint64_t hash,
				 const void *key, size_t key_len,
				 const struct table_get_opts *opts,
				 const struct table_value_sink *sink,
				 struct table_item_info *info)
{
	struct table_item_info scratch;
	struct table_part_ref pr;
	struct table_slot where;
	struct table_item *it;
	enum table_status st;
	bool writable = t->seg->writable;
	/* A client program cannot change the data part: it reads only. */
	bool change = writable && opts != NULL && (opts->touch || opts->vivify);
	enum lwlock_mode mode = change ? LW_EXCLUSIVE : LW_SHARED;

	if (info == NULL)
		info = &scratch;
	memset(info, 0, sizeof(*info));
	if (!key_ok(key_len))
		return TABLE_BAD_KEY;
	table_part_resolve(t, hash, &pr);
	table_part_lock(&pr, mode);

	if (!find_alive_locked(&pr, hash, key, key_len, &where, &it)) {
		if (change && opts->vivify) {
			st = vivify(&pr, hash, key, key_len, opts, info);
			/* The new item is empty; the sink still hears of it. */
			if (st == TABLE_OK && sink != NULL)
				st = sink_copy(sink, info, "");
		} else {
			st = TABLE_NOT_FOUND;
		}
		atomic_fetch_add_explicit(&pr.ctl->c.misses, 1,
					  memory_order_relaxed);
		table_part_unlock(&pr, mode);
		return st;
	}

	info_fill(&pr, it, info);
	decide_win(&pr, it, opts, writable, info);
	if (change && opts->touch) {
		it->exptime = table_exptime(t, opts->exptime);
		info->exptime = it->exptime;
	}
	if (opts == NULL || !opts->no_bump) {
		bucket_mark_used(&pr, where);
		if (writable) {
			item_set_state_flag(it, ITEM_FETCHED);
			/* Within a second of the last access the line stays
			 * clean: no store, no line for another core to fetch. */
			if (__atomic_load_n(&it->atime, __ATOMIC_RELAXED) !=
			    (uint16_t)pr.now)
				__atomic_store_n(&it->atime, (uint16_t)pr.now,
						 __ATOMIC_RELAXED);
		}
	}
	st = TABLE_OK;
	/* The lock word is in the control part, which every client can write:
	 * the range is checked against the ring with the length copied into
	 * info, as the lock-free read does, not trusted to the lock. */
	if (sink != NULL) {
		const unsigned char *value = item_key(it) + key_len;

		st = ring_range_ok(&pr, value, info->value_len)
			     ? sink_copy(sink, info, value)
			     : TABLE_NOT_FOUND;
	}
	/* As memcached's per-class counts: a fetch that touches is a touch
	 * hit, not a get hit. */
	if (change && opts->touch)
		pr.part->touch_hits++;
	else
		atomic_fetch_add_explicit(&pr.ctl->c.hits, 1,
					  memory_order_relaxed);
	table_part_unlock(&pr, mode);
	return st;
}

/* What a store will write, decided before any memory is taken. */
struct store_plan {
	uint64_t value_len;
	uint32_t flags;
	uint32_t exptime;
	bool stale;	 /* ms I with an older CAS */
	bool token_sent; /* the stale item it replaces had sent one */
};

static enum table_status store_plan(struct table_part_ref *pr,
				    const struct table_store_req *req,
				    bool alive, struct table_item *old,
				    struct store_plan *plan)
{
	bool concat = req->mode == TABLE_APPEND || req->mode == TABLE_PREPEND;
	bool compare = req->mode == TABLE_CAS || req->compare_cas;

	plan->value_len = req->value_len;
	plan->flags = req->flags;
	plan->exptime = table_exptime(pr->t, req->exptime);
	plan->stale = false;
	plan->token_sent = false;
	if (!alive) {
		/* memcached: an append or prepend to a missing key is
		 * NOT_STORED, with a CAS to compare too. */
		if (concat && (compare || !req->vivify))
			return TABLE_NOT_STORED;
		if (compare)
			return TABLE_NOT_FOUND;
		if (req->mode == TABLE_REPLACE)
			return TABLE_NOT_STORED;
		if (concat)
			plan->exptime = table_exptime(pr->t, req->vivify_exptime);
		return TABLE_OK;
	}
	if (req->mode == TABLE_ADD)
		return TABLE_NOT_STORED;
	if (compare && item_cas(old) != req->cas) {
		if (!req->invalidate || req->cas > item_cas(old))
			return TABLE_EXISTS;
		/* memcached's stale store keeps the old TTL and whether a
		 * recache token went out, and takes a new CAS. */
		plan->stale = true;
		plan->exptime = old->exptime;
		plan->token_sent = (item_state(old) & ITEM_TOKEN_SENT) != 0;
	}
	if (concat) {
		plan->value_len += old->value_len;
		plan->flags = old->flags;
		plan->exptime = old->exptime;
		/* Past the item limit: the protocol answers NOT_STORED, as
		 * memcached 1.6 does for an append it cannot allocate. */
		if (plan->value_len > pr->t->hdr->max_item_size)
			return TABLE_NO_MEMORY;
	}
	return TABLE_OK;
}

/* memcached's cas_hits and cas_badval: its cas command (a set or replace
 * with a CAS) that found the item, whether the store then succeeds or not
 * (an append's CAS check counts neither).  Lock exclusive. */
static void count_cas(struct table_partition *p,
		      const struct table_store_req *req, enum table_status st)
{
	if (req->mode != TABLE_CAS &&
	    !(req->compare_cas &&
	      (req->mode == TABLE_SET || req->mode == TABLE_REPLACE)))
		return;
	if (st == TABLE_OK)
		p->cas_hits++;
	else if (st == TABLE_EXISTS)
		p->cas_badval++;
}

enum table_status table_store(struct table *t, const struct table_store_req *req,
			      uint64_t *cas_out)
{
	struct table_part_ref pr;
	struct table_slot where;
	struct table_item *old;
	struct table_item *it;
	struct store_plan plan;
	enum table_status st;
	uint64_t hash, total, off = 0;
	bool alive;

	if (!key_ok(req->key_len))
		return TABLE_BAD_KEY;
	if (req->value_len > t->hdr->max_item_size)
		return TABLE_TOO_LARGE;
	if (!t->seg->writable)
		return TABLE_NO_MEMORY;
	hash = table_hash(req->key, req->key_len);
	table_part_resolve(t, hash, &pr);
	table_part_lock(&pr, LW_EXCLUSIVE);

	alive = find_alive_locked(&pr, hash, req->key, req->key_len, &where,
				  &old);
	st = store_plan(&pr, req, alive, old, &plan);
	if (alive)
		count_cas(pr.part, req, st);
	if (st != TABLE_OK)
		goto out;
	total = item_total_size((uint32_t)req->key_len, plan.value_len);
	bool concat = (req->mode == TABLE_APPEND || req->mode == TABLE_PREPEND) &&
		      alive;
	/* An append needs the old value after making room: pin it, so the
	 * allocation moves it instead of evicting it. */
	uint64_t old_off = concat ? (uint64_t)((unsigned char *)old - pr.arena)
				  : 0;
	if (ring_alloc(&pr, total, &off, concat ? &old_off : NULL) < 0) {
		st = TABLE_NO_MEMORY;
		goto out;
	}
	if (concat)
		old = (struct table_item *)(pr.arena + old_off);

	uint64_t cas = req->new_cas ? explicit_cas(t, req->new_cas) : next_cas(t);
	it = item_write(&pr, off, req->key, req->key_len,
			(uint32_t)plan.value_len, plan.flags, plan.exptime, cas);
	unsigned char *v = item_value(it);
	if (concat && req->mode == TABLE_APPEND) {
		memcpy(v, item_value(old), old->value_len);
		memcpy(v + old->value_len, req->value, req->value_len);
	} else if (concat) {
		memcpy(v, req->value, req->value_len);
		memcpy(v + req->value_len, item_value(old), old->value_len);
	} else {
		memcpy(v, req->value, req->value_len);
	}
	if (plan.stale)
		it->state |= ITEM_STALE;
	if (plan.token_sent)
		it->state |= ITEM_TOKEN_SENT;
	/* memcached: an append's new item does not inherit the bit. */
	if (req->key_binary && !concat)
		it->state |= ITEM_KEY_BINARY;
	if (item_link(&pr, hash, req->key, req->key_len, off) < 0) {
		item_abandon(&pr, off, total);
		st = TABLE_NO_MEMORY;
		goto out;
	}
	pr.part->total_items++;
	if (cas_out != NULL)
		*cas_out = cas;
out:
	table_part_unlock(&pr, LW_EXCLUSIVE);
	return st;
}

enum table_status table_delete(struct table *t, const void *key, size_t key_len,
			       const struct table_delete_opts *opts)
{
	struct table_part_ref pr;
	struct table_slot where;
	struct table_item *it;
	enum table_status st = TABLE_OK;
	uint64_t hash;

	if (!key_ok(key_len))
		return TABLE_BAD_KEY;
	if (!t->seg->writable)
		return TABLE_NOT_FOUND;
	hash = table_hash(key, key_len);
	table_part_resolve(t, hash, &pr);
	table_part_lock(&pr, LW_EXCLUSIVE);
	if (!find_alive_locked(&pr, hash, key, key_len, &where, &it)) {
		st = TABLE_NOT_FOUND;
	} else if (opts != NULL && opts->compare_cas &&
		   item_cas(it) != opts->cas) {
		st = TABLE_EXISTS;
	} else if (opts != NULL && opts->invalidate) {
		/* Stale, with a new CAS, and the next fetcher wins the right
		 * to recache it. */
		uint8_t s = item_state(it);

		s = (uint8_t)((s | ITEM_STALE) & ~ITEM_TOKEN_SENT);
		__atomic_store_n(&it->state, s, __ATOMIC_RELAXED);
		item_set_cas(it, next_cas(t));
		if (opts->touch)
			it->exptime = table_exptime(t, opts->exptime);
	} else {
		/* memcached counts a delete hit only for an item removed, not
		 * one md I leaves stale. */
		pr.part->delete_hits++;
		bucket_unlink(&pr, where, it);
	}
	table_part_unlock(&pr, LW_EXCLUSIVE);
	return st;
}

/* Write number as a new item (it does not fit the old one in place). */
static enum table_status arith_new_item(struct table_part_ref *pr, uint64_t hash,
					const struct table_arith_req *req,
					const char *digits, size_t ndigits,
					uint32_t flags, uint32_t exptime,
					struct table_item_info *info)
{
	uint64_t total = item_total_size((uint32_t)req->key_len, ndigits);
	uint64_t off = 0;
	struct table_item *it;

	if (ring_alloc(pr, total, &off, NULL) < 0)
		return TABLE_NO_MEMORY;
	it = item_write(pr, off, req->key, req->key_len, (uint32_t)ndigits,
			flags, exptime, next_cas(pr->t));
	memcpy(item_value(it), digits, ndigits);
	if (item_link(pr, hash, req->key, req->key_len, off) < 0) {
		item_abandon(pr, off, total);
		return TABLE_NO_MEMORY;
	}
	pr->part->total_items++;
	info_fill(pr, it, info);
	return TABLE_OK;
}

enum table_status table_arith(struct table *t, const struct table_arith_req *req,
			      uint64_t *value, struct table_item_info *info)
{
	struct table_item_info scratch;
	struct table_part_ref pr;
	struct table_slot where;
	struct table_item *it;
	enum table_status st = TABLE_OK;
	char digits[TABLE_NUMBER_MAX + 1];
	uint64_t hash, v = 0;
	int n;

	if (info == NULL)
		info = &scratch;
	memset(info, 0, sizeof(*info));
	if (!key_ok(req->key_len))
		return TABLE_BAD_KEY;
	if (!t->seg->writable)
		return TABLE_NOT_FOUND;
	hash = table_hash(req->key, req->key_len);
	table_part_resolve(t, hash, &pr);
	table_part_lock(&pr, LW_EXCLUSIVE);

	if (!find_alive_locked(&pr, hash, req->key, req->key_len, &where, &it)) {
		if (!req->vivify) {
			st = TABLE_NOT_FOUND;
			goto out;
		}
		v = req->initial;
		n = snprintf(digits, sizeof(digits), "%" PRIu64, v);
		st = arith_new_item(&pr, hash, req, digits, (size_t)n, 0,
				    table_exptime(t, req->vivify_exptime), info);
		info->vivified = st == TABLE_OK;
		goto out;
	}
	/* memcached's order: an empty value is not a number, whatever C says. */
	if (it->value_len == 0) {
		st = TABLE_NON_NUMERIC;
		goto out;
	}
	if (req->compare_cas && item_cas(it) != req->cas) {
		st = TABLE_EXISTS;
		goto out;
	}
	/* As memcached's safe_strtoull on the value: white space ends the
	 * number, so "304   12" (a number decr padded, then an append) is
	 * 304. */
	if (!number_parse_u64((const char *)item_value(it), it->value_len, &v)) {
		st = TABLE_NON_NUMERIC;
		goto out;
	}
	if (req->incr)
		v += req->delta; /* wraps at 2^64, as memcached */
	else
		v = req->delta > v ? 0 : v - req->delta;
	/* memcached counts the hit here: a number found, a vivified one not. */
	*(req->incr ? &pr.part->incr_hits : &pr.part->decr_hits) += 1;
	n = snprintf(digits, sizeof(digits), "%" PRIu64, v);
	uint32_t prev_exptime = it->exptime;
	uint32_t exptime = req->touch ? table_exptime(t, req->exptime)
				      : it->exptime;
	if ((uint32_t)n <= it->value_len) {
		/* In place, padded with spaces, as memcached does. */
		memcpy(item_value(it), digits, (size_t)n);
		memset(item_value(it) + n, ' ', it->value_len - (uint32_t)n);
		item_set_cas(it, next_cas(t));
		it->exptime = exptime;
		info_fill(&pr, it, info);
	} else {
		st = arith_new_item(&pr, hash, req, digits, (size_t)n,
				    it->flags, exptime, info);
	}
	info->prev_exptime = prev_exptime;
out:
	if (value != NULL)
		*value = v;
	table_part_unlock(&pr, LW_EXCLUSIVE);
	return st;
}
