/*
 * rawprobe.c - shmkv-rawprobe: the floor a direct lookup is measured against
 *
 * Builds, in this process's own memory, a hash table of the shape shmkv's
 * segment has (64-byte buckets of ten 16-bit tags and ten 32-bit item
 * references plus an overflow link, items of a 24-byte header, key and
 * value appended to one ring, XXH3_64 as the hash, inline as shmkv's
 * lookups compute it, the same bucket and tag bits), then times hash +
 * probe + copy-out for single gets and for prefetched batches of 16.  With --direct it times shmkv_get and
 * shmkv_get_many on a running server's segment in the same run, the cases
 * interleaved round by round, and reports each case's median.
 *
 * Timing is a throughput loop: the clock is read once per CHUNK keys, not
 * per get, so the figure is time per key with no clock call in it.  The
 * keys come from a pre-generated stream in random order that is read
 * sequentially, so fetching the next key costs no cache miss of its own;
 * both the raw table and shmkv read the same stream.
 *
 * With --procs N every case runs in N forked processes at once (each with
 * its own shmkv handle: a handle may not cross fork), and the figure is
 * their total throughput.  The raw table is built before fork and only
 * read, so the processes share its pages.
 *
 * Output: a line per case and round on stderr, one JSON object on stdout.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* xxhash inline, as shmkv's lookups have it (client/table_read.h). */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "keyspace.h"
#include "table_internal.h" /* the table's shape, tag compare and prefetch size */
#include "shmkv.h"
#include "util.h"

#define CHUNK 4096u /* keys between clock reads */
#define BATCH 16u
#define STREAM_KEYS (1u << 20) /* keys in the pre-generated stream */
#define MAX_ROUNDS 64
#define MAX_PROCS 64

struct raw_table {
	struct table_bucket *buckets;
	uint32_t nbuckets, noverflow, used_overflow;
	unsigned char *ring;
	uint64_t head;
	void *map;
	size_t map_size;
	const char *pages;
};

struct options {
	uint64_t keys;
	uint64_t buckets; /* primary buckets; 0 = keys / 8 */
	unsigned key_size;
	size_t value_size;
	double seconds;
	unsigned rounds, procs;
	const char *direct;
	bool preload, huge;
};

enum kind {
	RAW_GET,
	RAW_BATCH,
	SHMKV_GET,
	SHMKV_BATCH,
	KINDS
};
static const char *const kind_name[KINDS] = {
	"raw get",
	"raw get_many 16",
	"shmkv_get",
	"shmkv_get_many 16",
};

struct run_shared { /* MAP_SHARED before fork */
	int ready, go;
	uint64_t keys[MAX_PROCS], ns[MAX_PROCS], wrong[MAX_PROCS];
};

static uint32_t bucket_of(const struct raw_table *t, uint64_t hash)
{
	return (uint32_t)(((uint64_t)(uint32_t)hash * t->nbuckets) >> 32);
}

static size_t item_size(const struct options *o)
{
	return (size_t)item_total_size((uint32_t)o->key_size, o->value_size);
}

static void table_map(struct raw_table *t, const struct options *o)
{
	size_t huge = 2u << 20;

	/* As many primary buckets as the shmkv segment beside it has
	 * (probe_bench.py passes its count), so both probe tables of one
	 * load; a third more for overflow, as table.c reserves. */
	t->nbuckets = (uint32_t)(o->buckets    ? o->buckets
				 : o->keys / 8 ? o->keys / 8
					       : 1);
	t->noverflow = t->nbuckets / 3 + 1;
	t->map_size = (size_t)(t->nbuckets + t->noverflow) *
			      sizeof(struct table_bucket) +
		      o->keys * item_size(o);
	t->map_size = (t->map_size + huge - 1) & ~(huge - 1);
	t->map = MAP_FAILED;
	if (o->huge) {
		t->map = mmap(NULL, t->map_size, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		t->pages = "2 MiB";
		if (t->map == MAP_FAILED)
			fprintf(stderr,
				"shmkv-rawprobe: no 2 MiB pages (%s): using 4 KiB pages\n",
				strerror(errno));
	}
	if (t->map == MAP_FAILED) {
		t->map = mmap(NULL, t->map_size, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		/* 4 KiB pages, as a segment without huge pages has them. */
		if (t->map != MAP_FAILED)
			madvise(t->map, t->map_size, MADV_NOHUGEPAGE);
		t->pages = "4 KiB";
	}
	if (t->map == MAP_FAILED) {
		fprintf(stderr, "shmkv-rawprobe: cannot map %zu bytes: %s\n",
			t->map_size, strerror(errno));
		exit(1);
	}
	t->buckets = t->map;
	t->ring = (unsigned char *)(t->buckets + t->nbuckets + t->noverflow);
}

/*
 * dependent_load_ns - the machine's memory latency on the table's kind of
 * pages: a chase through one random cycle of the cache lines of a region
 * the table's size (at most 1 GiB), each load's address read by the one
 * before.  A hit needs at least two such loads in a row (bucket, then
 * item), so this says what time a single get can reach here at best.
 */
static volatile size_t chase_end;

static double dependent_load_ns(const struct raw_table *t)
{
	size_t size = t->map_size < (1ul << 30) ? t->map_size : 1ul << 30;
	size_t lines = size / 64, steps = 4000000, at = 0;
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	struct timespec t0, t1;
	uint64_t *m;
	uint32_t *order;
	struct rng rng;

	if (strcmp(t->pages, "2 MiB") == 0)
		flags |= MAP_HUGETLB;
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (m == MAP_FAILED)
		return 0;
	if (!(flags & MAP_HUGETLB))
		madvise(m, size, MADV_NOHUGEPAGE);
	order = xcalloc(lines, sizeof(*order));
	for (size_t i = 0; i < lines; i++)
		order[i] = (uint32_t)i;
	rng_seed(&rng, 7, 0);
	for (size_t i = lines - 1; i > 0; i--) {
		size_t j = rng_below(&rng, i + 1);
		uint32_t x = order[i];

		order[i] = order[j];
		order[j] = x;
	}
	for (size_t i = 0; i < lines; i++)
		m[(size_t)order[i] * 8] = (uint64_t)order[(i + 1) % lines] * 8;
	free(order);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < steps; i++)
		at = m[at];
	clock_gettime(CLOCK_MONOTONIC, &t1);
	munmap(m, size);
	chase_end = at; /* so that the chase is not optimised away */
	return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
		(double)(t1.tv_nsec - t0.tv_nsec)) /
	       (double)steps;
}

static void table_insert(struct raw_table *t, const struct options *o,
			 const char *key, const char *value, uint32_t flags)
{
	uint64_t hash = XXH3_64bits(key, o->key_size);
	struct table_bucket *b = &t->buckets[bucket_of(t, hash)];
	struct table_item *it = (struct table_item *)(t->ring + t->head);

	*it = (struct table_item){ .value_len = (uint32_t)o->value_size,
				   .flags = flags,
				   .key_len = (uint8_t)o->key_size,
				   .state = 1 };
	memcpy(it + 1, key, o->key_size);
	memcpy((char *)(it + 1) + o->key_size, value, o->value_size);
	for (;;) {
		for (unsigned s = 0; s < TABLE_BUCKET_SLOTS; s++) {
			if (b->tags[s] == 0) {
				b->tags[s] = bucket_tag(hash);
				b->refs[s] = (uint32_t)(t->head / TABLE_REF_UNIT);
				t->head += item_size(o);
				return;
			}
		}
		if (b->next == 0) {
			if (t->used_overflow == t->noverflow) {
				fprintf(stderr,
					"shmkv-rawprobe: out of overflow buckets\n");
				exit(1);
			}
			b->next = t->nbuckets + ++t->used_overflow;
		}
		b = &t->buckets[b->next - 1];
	}
}

static const struct table_item *raw_find(const struct raw_table *t, uint64_t hash,
					 const char *key, size_t key_len)
{
	const struct table_bucket *b = &t->buckets[bucket_of(t, hash)];
	uint16_t tag = bucket_tag(hash);

	for (;;) {
		for (uint32_t m = bucket_tag_matches(b, tag); m != 0;
		     m = bucket_next_match(m)) {
			uint32_t s = bucket_slot_of_match(m);
			const struct table_item *it =
				(const struct table_item *)(t->ring +
							    (uint64_t)b->refs[s] *
								    TABLE_REF_UNIT);

			if (it->key_len == key_len &&
			    memcmp(it + 1, key, key_len) == 0)
				return it;
		}
		if (b->next == 0)
			return NULL;
		b = &t->buckets[b->next - 1];
	}
}

static bool raw_copy(const struct table_item *it, char *buf, size_t cap,
		     size_t *len)
{
	if (it == NULL || it->value_len > cap)
		return false;
	memcpy(buf, (const char *)(it + 1) + it->key_len, it->value_len);
	*len = it->value_len;
	return true;
}

static void raw_prefetch_items(const struct raw_table *t, uint64_t hash)
{
	const struct table_bucket *b = &t->buckets[bucket_of(t, hash)];
	uint16_t tag = bucket_tag(hash);

	/* The lines of the item's first TABLE_PREFETCH_ITEM_BYTES, as shmkv's batch. */
	for (uint32_t m = bucket_tag_matches(b, tag); m != 0;
	     m = bucket_next_match(m)) {
		const unsigned char *it =
			t->ring + (uint64_t)b->refs[bucket_slot_of_match(m)] *
					  TABLE_REF_UNIT;

		__builtin_prefetch(it);
		__builtin_prefetch(it + 64);
		__builtin_prefetch(it + 128);
		__builtin_prefetch(it + TABLE_PREFETCH_ITEM_BYTES - 1);
	}
}

/* The three-stage pipeline shmkv_get_many uses, over BATCH keys. */
static unsigned raw_get_batch(const struct raw_table *t, const char *keys,
			      size_t key_size, char *bufs, size_t cap)
{
	enum {
		BUCKET_AHEAD = 8,
		ITEM_AHEAD = 4
	};
	uint64_t hashes[BATCH];
	unsigned hits = 0;
	size_t len;

	for (unsigned i = 0; i < BATCH + BUCKET_AHEAD; i++) {
		unsigned m = i - (BUCKET_AHEAD - ITEM_AHEAD),
			 g = i - BUCKET_AHEAD;

		if (i < BATCH) {
			hashes[i] = XXH3_64bits(keys + i * key_size, key_size);
			__builtin_prefetch(&t->buckets[bucket_of(t, hashes[i])]);
		}
		if (i >= BUCKET_AHEAD - ITEM_AHEAD && m < BATCH)
			raw_prefetch_items(t, hashes[m]);
		if (i < BUCKET_AHEAD)
			continue;
		hits += raw_copy(raw_find(t, hashes[g], keys + g * key_size,
					  key_size),
				 bufs + g * cap, cap, &len);
	}
	return hits;
}

/* CHUNK keys of the stream from pos; the number found.  Not inlined, so
 * that callgrind's inclusive cost of it over CHUNK is instructions a key. */
static __attribute__((noinline)) unsigned run_chunk(enum kind k,
						    const struct raw_table *t,
						    shmkv *kv,
						    const struct options *o,
						    const char *keys, char *bufs,
						    struct shmkv_item *items)
{
	size_t cap = o->value_size, ks = o->key_size, len;
	unsigned hits = 0;
	uint32_t flags;

	for (unsigned i = 0; i < CHUNK;
	     i += k == RAW_GET || k == SHMKV_GET ? 1 : BATCH) {
		const char *key = keys + (size_t)i * ks;

		switch (k) {
		case RAW_GET:
			hits += raw_copy(raw_find(t, XXH3_64bits(key, ks), key,
						  ks),
					 bufs, cap, &len);
			break;
		case RAW_BATCH:
			hits += raw_get_batch(t, key, ks, bufs, cap);
			break;
		case SHMKV_GET:
			hits += shmkv_get(kv, key, ks, bufs, cap, &len,
					  &flags) == SHMKV_OK;
			break;
		case SHMKV_BATCH:
			for (unsigned j = 0; j < BATCH; j++)
				items[j] = (struct shmkv_item){
					.key = key + j * ks,
					.key_len = ks,
					.buf = bufs + j * cap,
					.cap = cap
				};
			shmkv_get_many(kv, items, BATCH);
			for (unsigned j = 0; j < BATCH; j++)
				hits += items[j].status == SHMKV_OK;
			break;
		case KINDS: break;
		}
	}
	return hits;
}

static void __attribute__((noreturn))
child(enum kind k, unsigned index, const struct raw_table *t,
      const struct options *o, const struct keyspace *ksp, const char *stream,
      struct run_shared *sh)
{
	char *bufs = xcalloc(BATCH, o->value_size);
	struct shmkv_item items[BATCH];
	uint64_t pos = (uint64_t)index * (STREAM_KEYS / MAX_PROCS), done = 0,
		 wrong = 0;
	uint64_t start, end, deadline;
	shmkv *kv = NULL;

	if ((k == SHMKV_GET || k == SHMKV_BATCH) &&
	    shmkv_open(o->direct, &kv) != SHMKV_OK) {
		fprintf(stderr, "shmkv-rawprobe: process %u: %s\n", index,
			shmkv_last_error());
		_exit(1);
	}
	__atomic_add_fetch(&sh->ready, 1, __ATOMIC_ACQ_REL);
	while (!__atomic_load_n(&sh->go, __ATOMIC_ACQUIRE))
		;
	start = now_ns();
	deadline = start + (uint64_t)(o->seconds * 1e9);
	do {
		const char *keys = stream + (pos % (STREAM_KEYS / CHUNK)) *
						    CHUNK * o->key_size;
		uint64_t idx = 0;

		wrong += CHUNK - run_chunk(k, t, kv, o, keys, bufs, items);
		/* The last value copied must be its key's: the copies are real. */
		if (!keyspace_key_index(ksp, keys + (CHUNK - 1) * o->key_size,
					o->key_size, &idx) ||
		    !keyspace_value_matches(ksp, idx,
					    bufs + (k == RAW_GET || k == SHMKV_GET
							    ? 0
							    : (BATCH -
							       1) * o->value_size),
					    o->value_size))
			wrong++;
		pos++;
		done += CHUNK;
		end = now_ns();
	} while (end < deadline);
	sh->keys[index] = done;
	sh->ns[index] = end - start;
	sh->wrong[index] = wrong;
	if (kv != NULL)
		shmkv_close(kv);
	_exit(0);
}

/* One case in o->procs processes at once: total keys per second, or -1. */
static double run_case(enum kind k, const struct raw_table *t,
		       const struct options *o, const struct keyspace *ks,
		       const char *stream, struct run_shared *sh, uint64_t *wrong)
{
	pid_t pids[MAX_PROCS];
	double total = 0;
	int bad = 0;

	memset(sh, 0, sizeof(*sh));
	fflush(stderr);
	for (unsigned i = 0; i < o->procs; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			fprintf(stderr, "shmkv-rawprobe: fork: %s\n",
				strerror(errno));
			exit(1);
		}
		if (pids[i] == 0)
			child(k, i, t, o, ks, stream, sh);
	}
	for (;;) {
		int status;
		pid_t p = waitpid(-1, &status, WNOHANG);

		if (p > 0) { /* a child that died before it got ready */
			bad = 1;
			break;
		}
		if (__atomic_load_n(&sh->ready, __ATOMIC_ACQUIRE) == (int)o->procs)
			break;
		usleep(1000);
	}
	__atomic_store_n(&sh->go, 1, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < o->procs; i++) {
		int status;

		if (waitpid(pids[i], &status, 0) != pids[i] ||
		    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad = 1;
	}
	for (unsigned i = 0; i < o->procs && !bad; i++) {
		total += (double)sh->keys[i] * 1e9 / (double)sh->ns[i];
		*wrong += sh->wrong[i];
	}
	return bad ? -1 : total;
}

static void preload(const struct options *o, const struct keyspace *ks)
{
	enum {
		N = 1000
	};
	struct shmkv_write w[N];
	char *keys = xcalloc(N, o->key_size), *values = xcalloc(N, o->value_size);
	shmkv *kv;

	if (shmkv_open(o->direct, &kv) != SHMKV_OK) {
		fprintf(stderr, "shmkv-rawprobe: cannot attach to %s: %s\n",
			o->direct, shmkv_last_error());
		exit(1);
	}
	for (uint64_t first = 0; first < o->keys; first += N) {
		size_t n = o->keys - first < N ? o->keys - first : N;

		for (size_t j = 0; j < n; j++) {
			keyspace_key(ks, first + j, keys + j * o->key_size);
			keyspace_value(ks, first + j, values + j * o->value_size);
			w[j] = (struct shmkv_write){
				.key = keys + j * o->key_size,
				.key_len = o->key_size,
				.value = values + j * o->value_size,
				.value_len = o->value_size,
				.flags = keyspace_flags(first + j)
			};
		}
		if (shmkv_set_many(kv, w, n) != SHMKV_OK) {
			fprintf(stderr, "shmkv-rawprobe: preload: %s\n",
				shmkv_last_error());
			exit(1);
		}
	}
	shmkv_close(kv);
	free(keys);
	free(values);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: shmkv-rawprobe [--keys N] [--buckets N] [--key-size B] [--value-size B]\n"
		"         [--seconds S] [--rounds R] [--procs N] [--huge-pages]\n"
		"         [--direct SOCKET [--no-preload]]\n");
	exit(status);
}

static void parse(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{ "keys", 1, NULL, 'k' },     { "buckets", 1, NULL, 'b' },
		{ "key-size", 1, NULL, 'K' }, { "value-size", 1, NULL, 'V' },
		{ "seconds", 1, NULL, 's' },  { "rounds", 1, NULL, 'r' },
		{ "procs", 1, NULL, 'P' },    { "huge-pages", 0, NULL, 'H' },
		{ "direct", 1, NULL, 'd' },   { "no-preload", 0, NULL, 'n' },
		{ "help", 0, NULL, 'h' },     { 0 }
	};
	int c;

	*o = (struct options){ .keys = 1000000,
			       .key_size = 32,
			       .value_size = 100,
			       .seconds = 1.0,
			       .rounds = 5,
			       .procs = 1,
			       .preload = true };
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case 'k': o->keys = strtoull(optarg, NULL, 10); break;
		case 'b': o->buckets = strtoull(optarg, NULL, 10); break;
		case 'K': o->key_size = (unsigned)atoi(optarg); break;
		case 'V': o->value_size = (size_t)atol(optarg); break;
		case 's': o->seconds = atof(optarg); break;
		case 'r': o->rounds = (unsigned)atoi(optarg); break;
		case 'P': o->procs = (unsigned)atoi(optarg); break;
		case 'H': o->huge = true; break;
		case 'd': o->direct = optarg; break;
		case 'n': o->preload = false; break;
		case 'h': usage(0); break;
		default: usage(2);
		}
	}
	if (optind < argc || o->keys == 0 || o->buckets > UINT32_MAX / 2 ||
	    o->key_size == 0 || o->key_size > 250 || o->value_size == 0 ||
	    o->value_size > (1u << 20) || o->seconds <= 0 || o->rounds == 0 ||
	    o->rounds > MAX_ROUNDS || o->procs == 0 || o->procs > MAX_PROCS) {
		fprintf(stderr,
			"shmkv-rawprobe: bad arguments (--help says which)\n");
		exit(2);
	}
}

int main(int argc, char **argv)
{
	struct options o;
	struct keyspace ks;
	struct raw_table t = { 0 };
	struct run_shared *sh;
	struct rng rng;
	char err[200];
	char *stream, *key, *value;
	double per[KINDS][MAX_ROUNDS];
	uint64_t wrong[KINDS] = { 0 };
	int failed[KINDS] = { 0 };
	unsigned nkinds;

	parse(argc, argv, &o);
	if (keyspace_init(&ks, o.keys, o.key_size, o.value_size, 0, err,
			  sizeof(err)) < 0) {
		fprintf(stderr, "shmkv-rawprobe: %s\n", err);
		return 2;
	}
	nkinds = o.direct ? KINDS : SHMKV_GET;
	key = xcalloc(1, o.key_size);
	value = xcalloc(1, o.value_size);
	table_map(&t, &o);
	for (uint64_t i = 0; i < o.keys; i++) {
		keyspace_key(&ks, i, key);
		keyspace_value(&ks, i, value);
		table_insert(&t, &o, key, value, keyspace_flags(i));
	}
	stream = xcalloc(STREAM_KEYS, o.key_size);
	rng_seed(&rng, 42, 0);
	for (uint64_t i = 0; i < STREAM_KEYS; i++)
		keyspace_key(&ks, rng_below(&rng, o.keys),
			     stream + i * o.key_size);
	if (o.direct && o.preload)
		preload(&o, &ks);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		fprintf(stderr, "shmkv-rawprobe: mmap: %s\n", strerror(errno));
		return 1;
	}
	for (unsigned r = 0; r < o.rounds; r++) {
		for (unsigned k = 0; k < nkinds; k++) {
			double kps = run_case(k, &t, &o, &ks, stream, sh,
					      &wrong[k]);

			failed[k] |= kps < 0;
			per[k][r] = kps > 0 ? 1e9 * o.procs / kps : 0;
			fprintf(stderr,
				"round %u: %-18s %8.1f ns a key a process, %6.2f M keys/s in all\n",
				r + 1, kind_name[k], per[k][r], kps / 1e6);
		}
	}
	printf("{\"keys\": %llu, \"key_size\": %u, \"value_size\": %zu, \"procs\": %u, "
	       "\"rounds\": %u, \"seconds\": %g, \"raw_pages\": \"%s\", "
	       "\"dependent_load_ns\": %.1f, \"cases\": {",
	       (unsigned long long)o.keys, o.key_size, o.value_size, o.procs,
	       o.rounds, o.seconds, t.pages, dependent_load_ns(&t));
	for (unsigned k = 0; k < nkinds; k++) {
		qsort(per[k], o.rounds, sizeof(double), cmp_double);
		printf("%s\"%s\": {\"ns_per_key\": %.1f, \"keys_per_sec\": %.0f, \"wrong\": %llu, "
		       "\"failed\": %s}",
		       k ? ", " : "", kind_name[k], per[k][o.rounds / 2],
		       per[k][o.rounds / 2] > 0
			       ? 1e9 * o.procs / per[k][o.rounds / 2]
			       : 0,
		       (unsigned long long)wrong[k],
		       failed[k] ? "true" : "false");
	}
	printf("}}\n");
	return 0;
}
