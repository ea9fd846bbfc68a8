/*
 * test_table_procs.c - the table under several processes and random load
 *
 * Workers and client programs use one table at once, with nothing between
 * them but LWLocks in shared memory.  These tests fork real processes onto
 * one small table and hammer it: no process may ever read a torn value or
 * another key's value, and of many clients racing to recache one key
 * exactly one may win.  Then randomized commands run against a model of
 * what memcached would hold, with few buckets (long overflow chains) and
 * under memory pressure (the ring wraps, evicts and moves items): every
 * lookup must return exactly the latest value, and every key the model
 * misses must be covered by an eviction the table counted.
 *
 * The fixture (a fresh cache per test, clock at T0) is table_fixture.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "table_fixture.h"

/*
 * A value is a run of records, each self-checking and naming its key:
 *   LLLL KKK VVVVVVVV payload... CCCCCCCC
 * L = record length (hex), K = key index, V = writer's version, C = XXH32 of
 * everything before it in the record.  set writes one record; append and
 * prepend add one, so any concatenation the table makes stays checkable,
 * and a torn or misplaced value cannot pass.
 */
#define MP_KEYS 500
#define MP_PROCS 4
#define MP_OPS 20000
#define MP_MAX_ITEM 4096
#define REC_MIN 23

/* Small, so that the children evict each other's items as they go. */
static int setup_mp(void **state)
{
	*state = cache_new(256 * 1024, 4, MP_MAX_ITEM, 0);
	return 0;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static size_t make_record(unsigned char *out, size_t len, unsigned key,
			  uint32_t version)
{
	char head[16];
	uint64_t s = ((uint64_t)version << 20) ^ key ^ 0x9e3779b97f4a7c15ull;

	snprintf(head, sizeof(head), "%04zx%03x%08x", len, key, version);
	memcpy(out, head, 15);
	for (size_t i = 15; i < len - 8; i++)
		out[i] = (unsigned char)xorshift(&s);
	snprintf(head, sizeof(head), "%08x", XXH32(out, len - 8, 0));
	memcpy(out + len - 8, head, 8);
	return len;
}

static unsigned hexval(const unsigned char *p, size_t n, bool *ok)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned d;
		if (p[i] >= '0' && p[i] <= '9')
			d = p[i] - '0';
		else if (p[i] >= 'a' && p[i] <= 'f')
			d = p[i] - 'a' + 10;
		else {
			*ok = false;
			return 0;
		}
		v = v * 16 + d;
	}
	return v;
}

/* NULL if value is a well-formed run of records of key, else why not. */
static const char *check_value(const unsigned char *v, size_t len, unsigned key,
			       uint32_t flags)
{
	size_t pos = 0;
	bool ok = true;

	if (flags != key)
		return "flags belong to another key";
	if (len == 0)
		return "empty value";
	while (pos < len) {
		if (len - pos < REC_MIN)
			return "truncated record";
		size_t rlen = hexval(v + pos, 4, &ok);
		unsigned rkey = hexval(v + pos + 4, 3, &ok);
		if (!ok || rlen < REC_MIN || rlen > len - pos)
			return "bad record length";
		if (rkey != key)
			return "record of another key";
		uint32_t sum = hexval(v + pos + rlen - 8, 8, &ok);
		if (!ok || sum != XXH32(v + pos, rlen - 8, 0))
			return "checksum mismatch (torn value)";
		pos += rlen;
	}
	return NULL;
}

/* One random operation of child id on the table: 0, or its exit status
 * (1 a torn or foreign value, 2 an unexpected status). */
static int mp_child_op(struct table *t, int id, uint32_t op, uint64_t *rng)
{
	unsigned char val[MP_MAX_ITEM];
	unsigned char buf[MP_MAX_ITEM];
	char key[16];
	unsigned k = (unsigned)(xorshift(rng) % MP_KEYS);
	unsigned what = (unsigned)(xorshift(rng) % 100);
	uint32_t version = ((uint32_t)id << 24) | op;
	struct table_item_info info;
	enum table_status st;
	size_t len;

	snprintf(key, sizeof(key), "mp:%u", k);
	if (what < 40) {
		memset(&info, 0, sizeof(info));
		st = table_get(t, key, strlen(key), NULL, buf, sizeof(buf),
			       &info);
		if (st == TABLE_NOT_FOUND)
			return 0;
		if (st != TABLE_OK) {
			fprintf(stderr, "child %d: get %s: %s\n", id, key,
				table_status_name(st));
			return 2;
		}
		const char *why = check_value(buf, info.value_len, k, info.flags);
		if (why != NULL) {
			fprintf(stderr,
				"child %d: get %s (%u bytes): "
				"%s\n",
				id, key, info.value_len, why);
			return 1;
		}
	} else if (what < 70) {
		len = REC_MIN + xorshift(rng) % (2000 - REC_MIN + 1);
		make_record(val, len, k, version);
		st = table_store(t,
				 &(struct table_store_req){ .mode = TABLE_SET,
							    .key = key,
							    .key_len = strlen(key),
							    .value = val,
							    .value_len = len,
							    .flags = k },
				 NULL);
		if (st != TABLE_OK) {
			fprintf(stderr, "child %d: set %s: %s\n", id, key,
				table_status_name(st));
			return 2;
		}
	} else if (what < 90) {
		len = REC_MIN + xorshift(rng) % 64;
		make_record(val, len, k, version);
		st = table_store(t,
				 &(struct table_store_req){
					 .mode = what < 80 ? TABLE_APPEND
							   : TABLE_PREPEND,
					 .key = key,
					 .key_len = strlen(key),
					 .value = val,
					 .value_len = len },
				 NULL);
		/* Past max_item_size an append is refused. */
		if (st != TABLE_OK && st != TABLE_NOT_STORED &&
		    st != TABLE_TOO_LARGE && st != TABLE_NO_MEMORY) {
			fprintf(stderr, "child %d: append %s: %s\n", id, key,
				table_status_name(st));
			return 2;
		}
	} else {
		st = table_delete(t, key, strlen(key), NULL);
		if (st != TABLE_OK && st != TABLE_NOT_FOUND) {
			fprintf(stderr, "child %d: delete %s: %s\n", id, key,
				table_status_name(st));
			return 2;
		}
	}
	return 0;
}

static int mp_child(struct cache *c, int id, int gate)
{
	struct table *t = &c->table;
	uint64_t rng = 0x1234567ull * (uint64_t)(id + 1) + 99;

	alarm(20); /* a deadlock kills us instead of hanging the suite */
	if (cache_claim_proc(c) != 0) {
		fprintf(stderr, "child %d: no proc slot\n", id);
		return 3;
	}
	/* Start together (EOF when the parent closes the gate), so the
	 * children really overlap instead of running one after another. */
	char g;
	if (read(gate, &g, 1) != 0)
		return 4;
	close(gate);
	for (uint32_t op = 0; op < MP_OPS; op++) {
		int rc = mp_child_op(t, id, op, &rng);

		if (rc != 0)
			return rc;
	}
	cache_release_proc(c);
	return 0;
}

/* Wait for every child until deadline, then kill the rest; 0 if all ok. */
static int reap_children(const pid_t *pids, int n, int seconds)
{
	int failed = 0;
	int left = n;
	int status[MP_PROCS];
	bool done[MP_PROCS] = { false };
	time_t deadline = time(NULL) + seconds;

	while (left > 0) {
		for (int i = 0; i < n; i++) {
			if (done[i])
				continue;
			pid_t r = waitpid(pids[i], &status[i], WNOHANG);
			if (r == pids[i] || (r < 0 && errno != EINTR)) {
				done[i] = true;
				left--;
				if (r < 0 || !WIFEXITED(status[i]) ||
				    WEXITSTATUS(status[i]) != 0) {
					fprintf(stderr, "child %d: %s %d\n", i,
						r < 0		       ? "lost"
						: WIFEXITED(status[i]) ? "exit"
								       : "signal",
						r < 0 ? 0
						: WIFEXITED(status[i])
							? WEXITSTATUS(status[i])
							: WTERMSIG(status[i]));
					failed++;
				}
			}
		}
		if (left > 0 && time(NULL) > deadline) {
			for (int i = 0; i < n; i++) {
				if (!done[i]) {
					kill(pids[i], SIGKILL);
					waitpid(pids[i], NULL, 0);
					fprintf(stderr,
						"child %d: killed "
						"after %d s (deadlock?)\n",
						i, seconds);
					failed++;
				}
			}
			break;
		}
		if (left > 0)
			usleep(10000);
	}
	return failed;
}

static void test_multiprocess_consistency(void **state)
{
	struct cache *c = *state;
	pid_t pids[MP_PROCS];
	int started = 0;
	int gate[2];

	assert_int_equal(pipe(gate), 0);
	fflush(stdout);
	fflush(stderr);
	for (int i = 0; i < MP_PROCS; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			close(gate[1]);
			_exit(mp_child(c, i, gate[0]));
		}
		if (pid < 0)
			break;
		pids[started++] = pid;
	}
	close(gate[0]);
	close(gate[1]);
	int failed = reap_children(pids, started, 40);
	assert_int_equal(started, MP_PROCS);
	assert_int_equal(failed, 0);

	/* What the children left behind is consistent too. */
	unsigned char buf[MP_MAX_ITEM];
	int present = 0;
	for (unsigned k = 0; k < MP_KEYS; k++) {
		struct table_item_info info;
		char key[16];
		snprintf(key, sizeof(key), "mp:%u", k);
		enum table_status st = table_get(&c->table, key, strlen(key),
						 NULL, buf, sizeof(buf), &info);
		if (st == TABLE_NOT_FOUND)
			continue;
		assert_status(st, TABLE_OK);
		const char *why = check_value(buf, info.value_len, k, info.flags);
		if (why != NULL)
			fail_msg("after the run, %s: %s", key, why);
		present++;
	}
	struct table_stats s = stats(&c->table);
	printf("multiprocess: %d keys present, %llu evictions, %llu "
	       "contended of %llu lock acquisitions\n",
	       present, (unsigned long long)s.evictions,
	       (unsigned long long)s.lock_contended,
	       (unsigned long long)s.lock_acquisitions);
	assert_true(s.evictions > 0);
	assert_true(s.mem_used <= s.mem_limit);
}

/*
 * mg N and the stale flag exist so that of many clients missing the same key
 * at once exactly one recaches it (the others back off).  Several processes
 * race through the same keys, some missing (vivify), some invalidated (md
 * I): for every key exactly one process must win.
 */
#define WIN_ROUNDS 200

static int win_child(struct cache *c, int gate, int out)
{
	unsigned char won[WIN_ROUNDS];
	struct table_get_opts o;
	char key[32];
	char g;

	alarm(20);
	if (cache_claim_proc(c) != 0)
		return 3;
	if (read(gate, &g, 1) != 0)
		return 4;
	memset(&o, 0, sizeof(o));
	o.vivify = true;
	o.vivify_exptime = 60;
	o.win = true; /* as mg asks: may take the recache token */
	for (int r = 0; r < WIN_ROUNDS; r++) {
		struct table_item_info info;

		snprintf(key, sizeof(key), "win-%d", r);
		memset(&info, 0, sizeof(info));
		if (table_get(&c->table, key, strlen(key), &o, NULL, 0, &info) !=
		    TABLE_OK)
			return 2;
		won[r] = info.won;
	}
	if (write(out, won, sizeof(won)) != (ssize_t)sizeof(won))
		return 5;
	cache_release_proc(c);
	return 0;
}

static void test_multiprocess_single_winner(void **state)
{
	struct cache *c = *state;
	struct table *t = &c->table;
	struct table_delete_opts inv = { .invalidate = true };
	pid_t pids[MP_PROCS];
	int outs[MP_PROCS];
	int started = 0;
	int gate[2];
	char key[32];

	for (int r = 1; r < WIN_ROUNDS; r += 2) {
		snprintf(key, sizeof(key), "win-%d", r);
		assert_status(set_str(t, key, "old", 0, 0), TABLE_OK);
		assert_status(table_delete(t, key, strlen(key), &inv), TABLE_OK);
	}
	assert_int_equal(pipe(gate), 0);
	fflush(stdout);
	fflush(stderr);
	for (int i = 0; i < MP_PROCS; i++) {
		int out[2];
		if (pipe(out) != 0)
			break;
		pid_t pid = fork();
		if (pid == 0) {
			close(gate[1]);
			close(out[0]);
			_exit(win_child(c, gate[0], out[1]));
		}
		close(out[1]);
		if (pid < 0) {
			close(out[0]);
			break;
		}
		outs[started] = out[0];
		pids[started++] = pid;
	}
	close(gate[0]);
	close(gate[1]);
	int failed = reap_children(pids, started, 40);

	int wins[WIN_ROUNDS] = { 0 };
	int short_reads = 0;
	for (int i = 0; i < started; i++) {
		unsigned char won[WIN_ROUNDS];
		if (read(outs[i], won, sizeof(won)) != (ssize_t)sizeof(won))
			short_reads++;
		else
			for (int r = 0; r < WIN_ROUNDS; r++)
				wins[r] += won[r];
		close(outs[i]);
	}
	assert_int_equal(started, MP_PROCS);
	assert_int_equal(failed, 0);
	assert_int_equal(short_reads, 0);
	for (int r = 0; r < WIN_ROUNDS; r++)
		if (wins[r] != 1)
			fail_msg("win-%d (%s): %d winners", r,
				 r % 2 ? "stale" : "missing", wins[r]);
}

/*
 * Random commands against a model of what memcached would hold.  A value
 * is a few segments, each generated from a seed, so the model stays small
 * while values are checked byte for byte: a lookup must return exactly the
 * latest value, never an older version, never bytes moved to the wrong
 * place.  A key may be missing only if the table counted an eviction for
 * it: each loss the model discovers must be covered by one more eviction
 * in the stats.
 */
#define MODEL_SEGS 4
#define MODEL_VMAX 2000

struct model_key {
	bool present;
	uint32_t flags;
	uint32_t nseg;
	struct {
		uint32_t seed;
		uint32_t len;
	} seg[MODEL_SEGS];
};

static void model_bytes(uint32_t seed, uint32_t len, unsigned char *out)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (uint32_t i = 0; i < len; i++)
		out[i] = (unsigned char)(xorshift(&x) >> 24);
}

static size_t model_value(const struct model_key *mk, unsigned char *out)
{
	size_t n = 0;

	for (uint32_t i = 0; i < mk->nseg; i++) {
		model_bytes(mk->seg[i].seed, mk->seg[i].len, out + n);
		n += mk->seg[i].len;
	}
	return n;
}

static bool loss_covered(struct table *t, uint64_t *explained)
{
	struct table_stats s = stats(t);

	if (s.evictions <= *explained)
		return false;
	(*explained)++;
	return true;
}

/* What the model holds after operation what (a store, append, prepend or
 * delete of key k) succeeded. */
static void model_note(struct model_key *mk, unsigned what, unsigned k,
		       uint32_t seed, uint32_t len)
{
	if (what < 4) {
		mk->present = true;
		mk->flags = k;
		mk->nseg = 1;
		mk->seg[0].seed = seed;
		mk->seg[0].len = len;
	} else if (what < 6) {
		if (what == 5)
			memmove(&mk->seg[1], &mk->seg[0],
				mk->nseg * sizeof(mk->seg[0]));
		uint32_t at = what == 4 ? mk->nseg : 0;
		mk->seg[at].seed = seed;
		mk->seg[at].len = len;
		mk->nseg++;
	} else {
		mk->present = false;
	}
}

/* Whatever the model holds is there, byte for byte, and the stats
 * count exactly what is there. */
static void check_model_whole(struct table *t, const struct model_key *m,
			      unsigned keys, uint64_t *explained)
{
	static unsigned char want_v[MODEL_VMAX * MODEL_SEGS];
	static unsigned char buf[MODEL_VMAX * MODEL_SEGS];
	struct table_item_info info;
	char key[32];
	uint64_t items = 0, bytes = 0;

	for (unsigned k = 0; k < keys; k++) {
		if (!m[k].present)
			continue;
		snprintf(key, sizeof(key), "model-key-%u", k);
		enum table_status st = table_get(t, key, strlen(key), NULL, buf,
						 sizeof(buf), &info);
		if (st == TABLE_NOT_FOUND && loss_covered(t, explained))
			continue;
		assert_status(st, TABLE_OK);
		size_t n = model_value(&m[k], want_v);
		assert_int_equal(info.value_len, n);
		assert_memory_equal(buf, want_v, n);
		items++;
		bytes += strlen(key) + n;
	}
	struct table_stats s = stats(t);
	printf("model: %llu items, %llu evictions, %llu reinserted\n",
	       (unsigned long long)s.items, (unsigned long long)s.evictions,
	       (unsigned long long)s.reinserted);
	assert_int_equal(s.items, items);
	assert_int_equal(s.bytes, bytes);
	assert_true(s.mem_used <= s.mem_limit);
}

static void run_model(struct table *t, struct model_key *m, unsigned keys,
		      int ops, uint32_t vmax, uint64_t rng)
{
	static unsigned char val[MODEL_VMAX];
	static unsigned char want_v[MODEL_VMAX * MODEL_SEGS];
	static unsigned char buf[MODEL_VMAX * MODEL_SEGS];
	uint64_t explained = 0;
	char key[32];
	struct table_item_info info;

	memset(m, 0, keys * sizeof(*m));
	for (int op = 0; op < ops; op++) {
		unsigned k = (unsigned)(xorshift(&rng) % keys);
		unsigned what = (unsigned)(xorshift(&rng) % 10);
		uint32_t len = (uint32_t)(xorshift(&rng) % (vmax + 1));
		uint32_t seed = (uint32_t)xorshift(&rng);
		struct model_key *mk = &m[k];
		bool concat = what == 4 || what == 5;
		enum table_status st;
		enum table_status want;

		snprintf(key, sizeof(key), "model-key-%u", k);
		model_bytes(seed, len, val);
		if (concat && mk->present && mk->nseg == MODEL_SEGS)
			what = 0; /* full: overwrite instead */
		if (what < 3) {
			st = store_mode(t, TABLE_SET, key, val, len, k, 0, NULL);
			want = TABLE_OK;
		} else if (what < 4) {
			st = store_mode(t, TABLE_ADD, key, val, len, k, 0, NULL);
			want = mk->present ? TABLE_NOT_STORED : TABLE_OK;
		} else if (what < 6) {
			st = store_mode(t,
					what == 4 ? TABLE_APPEND : TABLE_PREPEND,
					key, val, len, 0, 0, NULL);
			want = mk->present ? TABLE_OK : TABLE_NOT_STORED;
		} else if (what < 7) {
			st = table_delete(t, key, strlen(key), NULL);
			want = mk->present ? TABLE_OK : TABLE_NOT_FOUND;
		} else {
			memset(&info, 0, sizeof(info));
			st = table_get(t, key, strlen(key), NULL, buf,
				       sizeof(buf), &info);
			want = mk->present ? TABLE_OK : TABLE_NOT_FOUND;
		}
		if (st != want) {
			/* Only "it was evicted" may explain a difference. */
			if (!mk->present || !loss_covered(t, &explained))
				fail_msg("op %d on %s: %s, model says %s", op,
					 key, table_status_name(st),
					 table_status_name(want));
			mk->present = false;
		}
		if (st != TABLE_OK)
			continue;
		if (what < 7) {
			model_note(mk, what, k, seed, len);
		} else {
			size_t n = model_value(mk, want_v);
			if (info.value_len != n || info.flags != mk->flags ||
			    memcmp(buf, want_v, n) != 0)
				fail_msg("op %d: %s holds %u bytes (flags %u), "
					 "model %zu bytes (flags %u)%s",
					 op, key, info.value_len, info.flags, n,
					 mk->flags,
					 info.value_len == n ? ", contents differ"
							     : "");
		}
	}
	check_model_whole(t, m, keys, &explained);
}

/* Few buckets (a large item_size_hint) force long chains through the
 * overflow buckets, and deletes give overflow buckets back. */
static void test_random_ops_match_model(void **state)
{
	static struct model_key m[240];

	run_model(tbl(state), m, 240, 30000, 64, 42);
}

/* Memory pressure: the ring wraps, evicts, and moves items that were read
 * (or that sit before enough dead space) to its head, many times over. */
static void test_random_ops_match_model_evicting(void **state)
{
	static struct model_key m[4000];

	run_model(tbl(state), m, 4000, 60000, MODEL_VMAX, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		cmocka_unit_test_setup_teardown(test_multiprocess_consistency,
						setup_mp, teardown),
		T(test_multiprocess_single_winner),
		cmocka_unit_test_setup_teardown(test_random_ops_match_model,
						setup_few_buckets, teardown),
		cmocka_unit_test_setup_teardown(test_random_ops_match_model_evicting,
						setup_small, teardown),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
