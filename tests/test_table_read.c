/*
 * test_table_read.c - the lock-free read (client/table_read.c), the batch
 * loop every batch runs (table_read.h's table_read_batch), and the
 * geometry they trust (table_open's checks, struct table's copies)
 *
 * The lock-free read must answer exactly as the locked read does, for
 * single keys and for batches, through overflow chains, for misses, short
 * buffers, bad keys, expired and flushed items; it must give up rather than
 * return what a writer is changing; and nothing that reads the table may
 * take a bound from the shared header after table_open checked it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table_fixture.h"
#include "table_internal.h"
#include "table_read.h"
#include "table_walk.h"

#define KEYS 3000
#define BATCH 45 /* longer than the batch's ring, not a multiple of it */

static void key_of(int i, char *key, size_t cap)
{
	snprintf(key, cap, "read-key-%d", i);
}

static void value_of(int i, char *val, size_t cap)
{
	snprintf(val, cap, "value %d of a few bytes more", i * 7);
}

/* Every even key stored, every odd one missing; 0 with how many stored. */
static int fill(struct table *t)
{
	char key[32], val[64];
	int stored = 0;

	for (int i = 0; i < KEYS; i += 2) {
		key_of(i, key, sizeof(key));
		value_of(i, val, sizeof(val));
		assert_status(set_str(t, key, val, (uint32_t)i, 0), TABLE_OK);
		stored++;
	}
	return stored;
}

/* Do some chains run through overflow buckets?  Else the test is weak. */
static bool has_overflow_chain(const struct table *t)
{
	for (uint32_t p = 0; p < t->npartitions; p++) {
		const struct table_bucket *b =
			(const struct table_bucket *)(t->part_base +
						      (uint64_t)p *
							      t->part_stride);

		for (uint32_t i = 0; i < t->nbuckets; i++)
			if (b[i].next != 0)
				return true;
	}
	return false;
}

static struct table_read read_of(const char *key, char *buf, size_t cap)
{
	return (struct table_read){ .hash = table_hash(key, strlen(key)),
				    .key = key,
				    .key_len = strlen(key),
				    .buf = buf,
				    .cap = cap };
}

/* A batch at the table's level: rd[0..n) through table_read_batch, the
 * loop shmkv_get_many runs, each rd[g].hash set and st[g] its read's
 * result (-EAGAIN where shmkv_get_many takes the locked read); the batch
 * stops after key stop_at, as shmkv_get_many's does where its mapping
 * went away. */
struct many {
	const struct table *t;
	struct table_read *rd;
	int *st;
	size_t stop_at;
	uint32_t now;
	uint64_t flush_cas;
};

static inline __attribute__((always_inline)) const void *many_key(void *ctx,
								  size_t i,
								  size_t *key_len)
{
	const struct table_read *rd = &((struct many *)ctx)->rd[i];

	*key_len = rd->key_len;
	return rd->key;
}

static inline __attribute__((always_inline)) bool many_read(
	void *ctx, size_t g, uint64_t hash, struct table_read_at at)
{
	struct many *b = ctx;

	b->rd[g].hash = hash;
	b->st[g] = table_read_one_at(b->t, &b->rd[g], at, b->now, b->flush_cas);
	return g != b->stop_at;
}

/* How many keys the batch finished. */
static size_t read_many_until(const struct table *t, struct table_read *rd,
			      int *st, size_t n, size_t stop_at)
{
	uint32_t now = segment_clock(t->seg);
	struct many b = { .t = t,
			  .rd = rd,
			  .st = st,
			  .stop_at = stop_at,
			  .now = now,
			  .flush_cas = table_read_flush_cut(t, now) };

	return table_read_batch(t, n, &b, many_key, many_read);
}

static void read_many(const struct table *t, struct table_read *rd, int *st,
		      size_t n)
{
	assert_int_equal(read_many_until(t, rd, st, n, SIZE_MAX), n);
}

/* The lock-free read agrees with the locked one on every key. */
static void test_lockfree_matches_locked(void **state)
{
	struct cache *c = *state;
	struct table *t = &c->table;
	char key[32], val[64], buf[64];
	struct table_item_info info;

	fill(t);
	assert_true(has_overflow_chain(t));
	assert_int_equal(stats(t).evictions, 0);
	for (int i = 0; i < KEYS; i++) {
		key_of(i, key, sizeof(key));
		struct table_read rd = read_of(key, buf, sizeof(buf));
		int st = table_get_lockfree(t, &rd);
		enum table_status locked = table_get(t, key, strlen(key), NULL,
						     NULL, 0, &info);

		assert_int_equal(st, (int)locked);
		if (i % 2) {
			assert_int_equal(st, TABLE_NOT_FOUND);
			continue;
		}
		value_of(i, val, sizeof(val));
		assert_int_equal(st, TABLE_OK);
		assert_int_equal(rd.value_len, strlen(val));
		assert_memory_equal(buf, val, strlen(val));
		assert_int_equal(rd.flags, (uint32_t)i);
		assert_true(rd.cas == info.cas);
	}
}

/* Every partition's CLOCK bits cleared, as the eviction hand leaves them. */
static void clear_used_bits(struct table *t)
{
	for (uint32_t p = 0; p < t->npartitions; p++) {
		struct table_part_ref pr;

		table_part_resolve_index(t, p, &pr);
		memset((void *)pr.used, 0,
		       (size_t)pr.nbuckets_total * sizeof(*pr.used));
	}
}

/* Is the CLOCK bit of key's slot set?  Found with the locked code's walk;
 * *overflow counts the keys found past their primary bucket. */
static bool used_bit_of(struct table *t, const char *key, int *overflow)
{
	uint64_t hash = table_hash(key, strlen(key));
	struct table_part_ref pr;
	struct table_slot where;
	struct table_item *it;

	table_part_resolve(t, hash, &pr);
	assert_int_equal(bucket_find(&pr, hash, key, strlen(key), &where, &it),
			 0);
	*overflow += where.bucket >= t->nbuckets;
	return (atomic_load(&pr.used[where.bucket]) >> where.slot) & 1u;
}

/*
 * A hit sets its slot's CLOCK bit, in a primary bucket and past it in an
 * overflow one, so that eviction gives what direct readers use a second
 * chance; a miss sets none.
 */
static void test_lockfree_hit_marks_its_slot(void **state)
{
	struct cache *c = *state;
	struct table *t = &c->table;
	char key[32], buf[64];
	int overflow = 0;

	fill(t);
	assert_true(has_overflow_chain(t));
	clear_used_bits(t);
	for (int i = 1; i < KEYS; i += 2) {
		key_of(i, key, sizeof(key));
		struct table_read rd = read_of(key, buf, sizeof(buf));
		assert_int_equal(table_get_lockfree(t, &rd), TABLE_NOT_FOUND);
	}
	for (int i = 0; i < KEYS; i += 2) {
		key_of(i, key, sizeof(key));
		assert_false(used_bit_of(t, key, &overflow));
	}
	for (int i = 0; i < KEYS; i += 2) {
		key_of(i, key, sizeof(key));
		struct table_read rd = read_of(key, buf, sizeof(buf));
		assert_int_equal(table_get_lockfree(t, &rd), TABLE_OK);
		assert_true(used_bit_of(t, key, &overflow));
	}
	assert_true(overflow > 0); /* both paths were taken */
	/* And the same through a batch. */
	clear_used_bits(t);
	for (int i = 0; i < KEYS; i += 2 * BATCH) {
		static char keys[BATCH][32], bufs[BATCH][64];
		struct table_read rd[BATCH];
		int st[BATCH], n = 0;

		for (int j = i; j < KEYS && n < BATCH; j += 2, n++) {
			key_of(j, keys[n], sizeof(keys[n]));
			rd[n] = read_of(keys[n], bufs[n], sizeof(bufs[n]));
		}
		read_many(t, rd, st, (size_t)n);
		for (int j = 0; j < n; j++) {
			assert_int_equal(st[j], TABLE_OK);
			assert_true(used_bit_of(t, keys[j], &overflow));
		}
	}
}

/* Short buffer, no buffer, bad keys: the same outcomes as table_get. */
static void test_lockfree_edges(void **state)
{
	struct cache *c = *state;
	struct table *t = &c->table;
	char buf[8], long_key[TABLE_KEY_MAX + 2];

	assert_status(set_str(t, "edge", "0123456789", 3, 0), TABLE_OK);
	struct table_read rd = read_of("edge", buf, 4);
	assert_int_equal(table_get_lockfree(t, &rd), TABLE_TOO_SMALL);
	assert_int_equal(rd.value_len, 10);
	assert_int_equal(rd.flags, 3);
	rd = read_of("edge", NULL, 0);
	assert_int_equal(table_get_lockfree(t, &rd), TABLE_OK);
	assert_int_equal(rd.value_len, 10);

	rd = read_of("", buf, sizeof(buf));
	assert_int_equal(table_get_lockfree(t, &rd), TABLE_BAD_KEY);
	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	rd = read_of(long_key, buf, sizeof(buf));
	assert_int_equal(table_get_lockfree(t, &rd), TABLE_BAD_KEY);
}

/*
 * Every key length, 1 to TABLE_KEY_MAX: the read compares keys in pieces
 * of 16, 8, 4 or single bytes by length, so each length finds its key and
 * misses a key one byte off at its start, middle or end.
 */
static void test_lockfree_every_key_length(void **state)
{
	struct cache *c = *state;
	struct table *t = &c->table;
	char key[TABLE_KEY_MAX + 1], off[TABLE_KEY_MAX + 1], val[16], buf[16];

	for (size_t len = 1; len <= TABLE_KEY_MAX; len++) {
		for (size_t i = 0; i < len; i++)
			key[i] = (char)('a' + (i * 7 + len) % 26);
		key[len] = '\0';
		snprintf(val, sizeof(val), "len %zu", len);
		assert_status(set_str(t, key, val, 0, 0), TABLE_OK);
		struct table_read rd = read_of(key, buf, sizeof(buf));
		assert_int_equal(table_get_lockfree(t, &rd), TABLE_OK);
		assert_int_equal(rd.value_len, strlen(val));
		assert_memory_equal(buf, val, rd.value_len);

		size_t at[3] = { 0, len / 2, len - 1 };
		for (int k = 0; k < 3; k++) {
			memcpy(off, key, len + 1);
			off[at[k]] = 'A'; /* stored keys are all lower case */
			rd = read_of(off, buf, sizeof(buf));
			assert_int_equal(table_get_lockfree(t, &rd),
					 TABLE_NOT_FOUND);
		}
	}
}

/*
 * The lookups hash with xxhash inline (table_read_hash), the server with
 * libxxhash (table_hash): the two must agree on every key length, each of
 * XXH3's length classes included (up to 16, 128, 240 bytes and beyond), or
 * a client would miss what the server stored.
 */
static void test_inline_hash_is_table_hash(void **state)
{
	unsigned char key[TABLE_KEY_MAX + 1];

	(void)state;
	for (int fill = 0; fill < 3; fill++) {
		for (size_t i = 0; i < sizeof(key); i++)
			key[i] = (unsigned char)(fill == 0   ? 'k'
						 : fill == 1 ? i * 131 + 7
							     : 255 - i);
		for (size_t len = 0; len <= TABLE_KEY_MAX; len++)
			assert_true(table_read_hash(key, len) ==
				    table_hash(key, len));
		/* Unaligned starts: the inline copy loads unaligned too. */
		for (size_t len = 0; len < TABLE_KEY_MAX; len += 7)
			assert_true(table_read_hash(key + 1, len) ==
				    table_hash(key + 1, len));
	}
}

/* Expired and flushed items are gone for the lock-free read too. */
static void test_lockfree_expiry_and_flush(void **state)
{
	struct cache *c = *state;
	struct table *t = &c->table;
	char buf[16];

	assert_status(set_str(t, "soon", "s", 0, 10), TABLE_OK);
	assert_status(set_str(t, "kept", "k", 0, 0), TABLE_OK);
	struct table_read rd = read_of("soon", buf, sizeof(buf));
	assert_int_equal(table_get_lockfree(t, &rd), TABLE_OK);
	set_clock(state, T0 + 10);
	rd = read_of("soon", buf, sizeof(buf));
	assert_int_equal(table_get_lockfree(t, &rd), TABLE_NOT_FOUND);

	/* A delayed flush counts from the second it is due, applied or not. */
	table_flush(t, 5);
	rd = read_of("kept", buf, sizeof(buf));
	assert_int_equal(table_get_lockfree(t, &rd), TABLE_OK);
	set_clock(state, T0 + 15);
	rd = read_of("kept", buf, sizeof(buf));
	assert_int_equal(table_get_lockfree(t, &rd), TABLE_NOT_FOUND);
}

/* A batch answers as single reads do, over several chunks and any order. */
static void test_many_matches_single(void **state)
{
	struct cache *c = *state;
	struct table *t = &c->table;
	static char keys[BATCH][32], bufs[BATCH][64], one[64];
	struct table_read rd[BATCH];
	int st[BATCH];

	fill(t);
	for (int round = 0; round < 20; round++) {
		for (int j = 0; j < BATCH; j++) {
			key_of((round * 131 + j * 17) % KEYS, keys[j],
			       sizeof(keys[j]));
			rd[j] = read_of(keys[j], bufs[j],
					j == 5 ? 3 : sizeof(bufs[j]));
			rd[j].hash = 0; /* the batch computes it */
			st[j] = -1000;
		}
		rd[9].key_len = 0; /* a bad key in the middle */
		read_many(t, rd, st, BATCH);
		for (int j = 0; j < BATCH; j++) {
			struct table_read r1 = read_of(keys[j], one,
						       j == 5 ? 3 : sizeof(one));

			if (j == 9) {
				assert_int_equal(st[j], TABLE_BAD_KEY);
				continue;
			}
			assert_int_equal(st[j], table_get_lockfree(t, &r1));
			assert_true(rd[j].hash == r1.hash);
			if (st[j] != TABLE_OK)
				continue;
			assert_int_equal(rd[j].value_len, r1.value_len);
			assert_memory_equal(bufs[j], one, r1.value_len);
			assert_int_equal(rd[j].flags, r1.flags);
		}
	}
}

/*
 * A batch whose per-key work says stop (shmkv_get_many's, when the mapping
 * goes away) ends there: every key up to that one read, none after it, and
 * the count finished says so; the first key and the last stop it too.
 */
static void test_many_stops_where_told(void **state)
{
	struct cache *c = *state;
	struct table *t = &c->table;
	static char keys[BATCH][32], bufs[BATCH][64];
	struct table_read rd[BATCH];
	int st[BATCH];

	fill(t);
	for (size_t stop = 0; stop < BATCH; stop += stop < 20 ? 3 : 7) {
		for (int j = 0; j < BATCH; j++) {
			key_of(2 * j, keys[j], sizeof(keys[j])); /* all stored */
			rd[j] = read_of(keys[j], bufs[j], sizeof(bufs[j]));
			st[j] = -1000;
		}
		assert_int_equal(read_many_until(t, rd, st, BATCH, stop),
				 stop + 1);
		for (size_t j = 0; j < BATCH; j++)
			assert_int_equal(st[j], j <= stop ? TABLE_OK : -1000);
	}
	assert_int_equal(read_many_until(t, rd, st, BATCH, BATCH - 1), BATCH);
}

/* A writer inside its bracket: the read gives up instead of guessing, and
 * reads again once the bracket closes. */
static void test_lockfree_gives_up_while_a_writer_runs(void **state)
{
	struct cache *c = *state;
	struct table *t = &c->table;
	char buf[16];
	struct table_read rd = read_of("busy", buf, sizeof(buf));
	uint32_t p = table_partition_of(t, rd.hash);
	int st[1];

	assert_status(set_str(t, "busy", "b", 0, 0), TABLE_OK);
	table_writer_begin(&t->parts[p]);
	assert_int_equal(table_get_lockfree(t, &rd), -EAGAIN);
	read_many(t, &rd, st, 1);
	assert_int_equal(st[0], -EAGAIN);
	table_writer_end(&t->parts[p]);
	assert_int_equal(table_get_lockfree(t, &rd), TABLE_OK);
}

/* table_open refuses partitions off their stride and a ring too small for
 * an item header: lookups derive every address from the first and the
 * stride, and check a ref with one comparison. */
static void test_open_checks_the_geometry(void **state)
{
	struct cache *c = *state;
	struct table t2;

	assert_int_equal(table_open(&t2, &c->seg), 0);
	assert_true(t2.part_base == c->table.part_base &&
		    t2.part_stride == c->table.part_stride &&
		    t2.nbuckets == c->table.nbuckets);

	c->table.parts[3].buckets_offset += 64;
	c->table.parts[3].arena_offset += 64;
	assert_int_equal(table_open(&t2, &c->seg), -EPROTO);
	c->table.parts[3].buckets_offset -= 64;
	c->table.parts[3].arena_offset -= 64;

	uint64_t arena = c->table.hdr->arena_size;
	c->table.hdr->arena_size = sizeof(struct table_item) - 4;
	assert_int_equal(table_open(&t2, &c->seg), -EPROTO);
	c->table.hdr->arena_size = arena;
	assert_int_equal(table_open(&t2, &c->seg), 0);
}

struct walk_count {
	uint64_t items;
};

static void count_item(void *arg, const struct table_walk_entry *e)
{
	(void)e;
	((struct walk_count *)arg)->items++;
}

/* A header scribbled on after open cannot move the walk's bound: it stays
 * the validated copy, so the walk never reads past the buckets. */
static void test_walk_bound_is_the_validated_copy(void **state)
{
	struct cache *c = *state;
	struct table *t = &c->table;
	struct walk_count before = { 0 }, after = { 0 };
	uint32_t nb = t->nbuckets;
	int stored = fill(t);

	for (uint32_t p = 0; p < t->npartitions; p++)
		assert_int_equal(table_walk(t, p, 0, UINT32_MAX, count_item,
					    &before),
				 nb);
	assert_int_equal(before.items, stored);
	t->hdr->nbuckets = nb * 16;
	assert_int_equal(table_walk_buckets(t), nb);
	for (uint32_t p = 0; p < t->npartitions; p++)
		assert_int_equal(table_walk(t, p, 0, UINT32_MAX, count_item,
					    &after),
				 nb);
	t->hdr->nbuckets = nb;
	assert_int_equal(after.items, stored);
}

/*
 * table_warm_item names the item a lookup will read: for every stored key
 * found in its primary bucket at the first slot with its tag, the very item
 * the lookup finds; for a missing key, NULL or some other item of the ring
 * (a tag shared by chance), never an address outside it.
 */
static void test_warm_item_names_the_item(void **state)
{
	struct cache *c = *state;
	struct table *t = &c->table;
	char key[32];
	int primary_first = 0;

	fill(t);
	for (int i = 0; i < KEYS; i++) {
		struct table_part_ref pr;
		struct table_slot where;
		struct table_item *it = NULL;
		uint64_t hash;
		const void *warm;
		bool first = false;

		key_of(i, key, sizeof(key));
		hash = table_hash(key, strlen(key));
		warm = table_warm_item(t, hash);
		table_part_resolve(t, hash, &pr);
		if (warm != NULL)
			assert_true(ring_range_ok(&pr, warm,
						  TABLE_PREFETCH_ITEM_BYTES));
		if (bucket_find(&pr, hash, key, strlen(key), &where, &it) < 0) {
			assert_true(i % 2 == 1);
			continue;
		}
		if (where.bucket == table_bucket_of(t, hash)) {
			uint32_t m = bucket_tag_matches(&pr.buckets[where.bucket],
							bucket_tag(hash));

			first = bucket_slot_of_match(m) == where.slot;
		}
		/* The warm reads TABLE_PREFETCH_ITEM_BYTES: not at the ring's end. */
		if (!first || (unsigned char *)it + TABLE_PREFETCH_ITEM_BYTES >
				      pr.arena + pr.arena_size)
			continue;
		primary_first++;
		assert_ptr_equal(warm, it);
	}
	/* Most keys sit where the lookup looks first. */
	assert_true(primary_first > KEYS / 4);
}

/* About eight items a primary bucket, as in a full cache, so that a good
 * share of the chains run through overflow buckets. */
static int setup_loaded(void **state)
{
	*state = cache_new(16 * MIB, 8, 64 * 1024, 11000);
	return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_loaded, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_lockfree_matches_locked),
		T(test_lockfree_hit_marks_its_slot),
		T(test_lockfree_edges),
		T(test_lockfree_every_key_length),
		T(test_inline_hash_is_table_hash),
		T(test_lockfree_expiry_and_flush),
		T(test_many_matches_single),
		T(test_many_stops_where_told),
		T(test_lockfree_gives_up_while_a_writer_runs),
		T(test_open_checks_the_geometry),
		T(test_walk_bound_is_the_validated_copy),
		T(test_warm_item_names_the_item),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
