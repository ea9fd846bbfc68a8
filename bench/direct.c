/*
 * direct.c - direct mode: forked processes look keys up in shmkv's shared
 * segment through libshmkv, checking every value
 *
 * Processes, not threads, because that is how the library is meant to be
 * used at scale (one handle, one proc slot per process) and because it
 * keeps the measurement honest: nothing is shared between the workers but
 * the segment itself and a results page mapped MAP_SHARED before fork.
 *
 * The parent attaches once before forking, so a server that is not there
 * (or will not let us attach) is reported once, with shmkv_strerror and
 * shmkv_last_error, and exit status 1.  Each child then opens its own
 * handle (a handle may not cross fork), preloads its slice of the key
 * space with shmkv_set (or the parent preloads over the network first, when
 * given an address: much faster), says it is ready, and spins on a flag the parent
 * raises when all are ready, so the timed phase starts together.
 * NOTE: a process-shared pthread barrier would be simpler, but a child
 * that dies before reaching it would hang every other process; the parent
 * instead polls with waitpid and notices the dead.
 *
 * Every call is timed with clock_gettime(CLOCK_MONOTONIC) on both sides;
 * the report says so, with the clock's own cost.  A batch (--batch K) is
 * timed as a whole and recorded as K samples of a K-th of its time, so
 * latency is per key either way.
 *
 * Interface routines:
 *   direct_run - attach, fork, preload, run, merge the processes' results
 */
#include "direct.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net.h"
#include "shmkv.h"
#include "util.h"

#define NOTES_MAX 5	   /* messages per process */
#define PUBLISH_EVERY 1024 /* requests between progress updates */

struct direct_slot {
	struct bench_counters pre, run;
	struct hist get_lat, set_lat;
	struct bench_live live;
	uint64_t pre_start, pre_end, start, end;
	int ready;    /* atomic: preloaded (or failed), waiting */
	int finished; /* atomic: results written */
	int failed;   /* could not attach; error says why */
	char error[512];
};

struct direct_shared {
	int go; /* atomic: the parent says start */
	struct direct_slot slots[];
};

struct direct_worker {
	const struct bench_options *o;
	const struct keyspace *ks;
	struct direct_slot *slot;
	shmkv *kv;
	unsigned index;
	unsigned notes;
};

static void child_note(struct direct_worker *w, const char *what,
		       enum shmkv_status st)
{
	if (w->notes++ >= NOTES_MAX)
		return;
	fprintf(stderr, "shmkv-bench: process %u: %s: %s (%s)\n", w->index,
		what, shmkv_strerror(st), shmkv_last_error());
}

static void child_preload(struct direct_worker *w, char *key, char *value)
{
	const struct bench_options *o = w->o;
	uint64_t first = o->keys * w->index / o->procs;
	uint64_t end = o->keys * (w->index + 1) / o->procs;
	struct bench_counters *c = &w->slot->pre;

	w->slot->pre_start = now_ns();
	for (uint64_t i = first; o->preload && !o->preload_net && i < end; i++) {
		enum shmkv_status st;

		keyspace_key(w->ks, i, key);
		keyspace_value(w->ks, i, value);
		st = shmkv_set(w->kv, key, w->ks->key_size, value,
			       w->ks->value_size, keyspace_flags(i), 0);
		c->sets++;
		c->requests++;
		if (st != SHMKV_OK) {
			c->errors++;
			child_note(w, "preload shmkv_set", st);
		}
		if (c->requests % PUBLISH_EVERY == 0)
			live_publish(&w->slot->live, c, 0);
	}
	w->slot->pre_end = now_ns();
	live_publish(&w->slot->live, c, 0);
}

/* Account one looked-up value of key idx. */
static void check_value(struct direct_worker *w, uint64_t idx,
			enum shmkv_status st, const char *buf, size_t len,
			uint32_t flags)
{
	struct bench_counters *c = &w->slot->run;

	switch (st) {
	case SHMKV_OK:
		if (flags == keyspace_flags(idx) &&
		    keyspace_value_matches(w->ks, idx, buf, len)) {
			c->hits++;
		} else {
			c->wrong++;
			if (w->notes++ < NOTES_MAX)
				fprintf(stderr,
					"shmkv-bench: process %u: wrong flags, length or bytes for key %llu\n",
					w->index, (unsigned long long)idx);
		}
		break;
	case SHMKV_NOT_FOUND: c->misses++; break;
	case SHMKV_TOO_SMALL: /* longer than any value we store */
		c->wrong++;
		child_note(w, "value too long", st);
		break;
	default:
		c->errors++;
		child_note(w, "shmkv_get", st);
		break;
	}
}

/* The buffers one child's requests use. */
struct child_bufs {
	char *key, *value; /* one key and value */
	size_t cap;	   /* a value buffer's size */
	struct shmkv_item *items;
	uint64_t *idx;
	char *keys, *bufs; /* o->batch keys and value buffers */
};

/* child_set - one timed shmkv_set of a random key; the time after it. */
static uint64_t child_set(struct direct_worker *w, struct rng *rng,
			  struct child_bufs *b)
{
	const struct keyspace *ks = w->ks;
	struct direct_slot *slot = w->slot;
	uint64_t i = keyspace_pick(ks, rng), t0, t;
	enum shmkv_status st;

	keyspace_key(ks, i, b->key);
	keyspace_value(ks, i, b->value);
	t0 = now_ns();
	st = shmkv_set(w->kv, b->key, ks->key_size, b->value, ks->value_size,
		       keyspace_flags(i), 0);
	t = now_ns();
	hist_record(&slot->set_lat, t - t0, 1);
	slot->run.sets++;
	if (st != SHMKV_OK) {
		slot->run.errors++;
		child_note(w, "shmkv_set", st);
	}
	return t;
}

/* child_get - one timed shmkv_get of a random key, its value checked. */
static uint64_t child_get(struct direct_worker *w, struct rng *rng,
			  struct child_bufs *b)
{
	const struct keyspace *ks = w->ks;
	uint64_t i = keyspace_pick(ks, rng), t0, t;
	size_t len = 0;
	uint32_t flags = 0;
	enum shmkv_status st;

	keyspace_key(ks, i, b->key);
	t0 = now_ns();
	st = shmkv_get(w->kv, b->key, ks->key_size, b->bufs, b->cap, &len,
		       &flags);
	t = now_ns();
	hist_record(&w->slot->get_lat, t - t0, 1);
	w->slot->run.gets++;
	check_value(w, i, st, b->bufs, len, flags);
	return t;
}

/* child_get_many - one timed shmkv_get_many of o->batch random keys. */
static uint64_t child_get_many(struct direct_worker *w, struct rng *rng,
			       struct child_bufs *b)
{
	const struct keyspace *ks = w->ks;
	struct bench_counters *c = &w->slot->run;
	unsigned k = w->o->batch;
	enum shmkv_status st;
	uint64_t t0, t;

	for (unsigned j = 0; j < k; j++) {
		b->idx[j] = keyspace_pick(ks, rng);
		keyspace_key(ks, b->idx[j], b->keys + (size_t)j * ks->key_size);
		b->items[j] = (struct shmkv_item){
			.key = b->keys + (size_t)j * ks->key_size,
			.key_len = ks->key_size,
			.buf = b->bufs + (size_t)j * b->cap,
			.cap = b->cap,
		};
	}
	t0 = now_ns();
	st = shmkv_get_many(w->kv, b->items, k);
	t = now_ns();
	hist_record(&w->slot->get_lat, (t - t0) / k, k);
	c->gets += k;
	if (st != SHMKV_OK) {
		c->errors += k;
		child_note(w, "shmkv_get_many", st);
		return t;
	}
	for (unsigned j = 0; j < k; j++)
		check_value(w, b->idx[j], b->items[j].status, b->items[j].buf,
			    b->items[j].value_len, b->items[j].flags);
	return t;
}

static void child_run(struct direct_worker *w, char *key, char *value)
{
	const struct bench_options *o = w->o;
	const struct keyspace *ks = w->ks;
	struct direct_slot *slot = w->slot;
	struct bench_counters *c = &slot->run;
	unsigned k = o->batch;
	struct child_bufs b = { .key = key, .value = value };
	uint64_t quota, deadline, t;
	struct rng rng;

	b.cap = ks->value_size ? ks->value_size : 1;
	b.items = xcalloc(k, sizeof(*b.items));
	b.idx = xcalloc(k, sizeof(*b.idx));
	b.keys = xcalloc(k, ks->key_size);
	b.bufs = xcalloc(k, b.cap);
	rng_seed(&rng, o->seed, w->index);
	quota = o->requests ? o->requests / o->procs +
				      (w->index < o->requests % o->procs)
			    : UINT64_MAX;
	t = slot->start = now_ns();
	deadline = t + (uint64_t)(o->duration * 1e9);
	while (quota > 0 && (o->requests || t < deadline)) {
		quota--;
		if (rng_below(&rng, o->ratio_get + o->ratio_set) >= o->ratio_get)
			t = child_set(w, &rng, &b);
		else if (k == 1)
			t = child_get(w, &rng, &b);
		else
			t = child_get_many(w, &rng, &b);
		c->requests++;
		if (c->requests % PUBLISH_EVERY == 0)
			live_publish(&slot->live, c, 1);
	}
	slot->end = t;
	live_publish(&slot->live, c, 2);
	free(b.items);
	free(b.idx);
	free(b.keys);
	free(b.bufs);
}

static void __attribute__((noreturn))
child_main(const struct bench_options *o, const struct keyspace *ks,
	   struct direct_shared *sh, unsigned index)
{
	struct direct_worker w = {
		.o = o,
		.ks = ks,
		.slot = &sh->slots[index],
		.index = index,
	};
	char *key = xcalloc(1, ks->key_size);
	char *value = xcalloc(1, ks->value_size);
	enum shmkv_status st;

	hist_reset(&w.slot->get_lat);
	hist_reset(&w.slot->set_lat);
	st = shmkv_open(o->direct, &w.kv);
	if (st != SHMKV_OK) {
		snprintf(w.slot->error, sizeof(w.slot->error), "%s (%s)",
			 shmkv_strerror(st), shmkv_last_error());
		w.slot->failed = 1;
		/* Pairs with the parent's acquire load of ready: the error
		 * text is written before the parent may read it. */
		__atomic_store_n(&w.slot->ready, 1, __ATOMIC_RELEASE);
		_exit(1);
	}
	child_preload(&w, key, value);
	/* Pairs with the parent's acquire load: preload counts first. */
	__atomic_store_n(&w.slot->ready, 1, __ATOMIC_RELEASE);
	/* Pairs with the parent's release store of go. */
	while (!__atomic_load_n(&sh->go, __ATOMIC_ACQUIRE))
		usleep(200);
	child_run(&w, key, value);
	shmkv_close(w.kv);
	free(key);
	free(value);
	/* Pairs with the parent's acquire load of finished. */
	__atomic_store_n(&w.slot->finished, 1, __ATOMIC_RELEASE);
	fflush(stderr);
	_exit(0);
}

static void progress(const struct bench_options *o, struct direct_shared *sh,
		     uint64_t t0, uint64_t *last_print, uint64_t *last_ops)
{
	struct bench_live sum = { .phase = 2 }, one;
	uint64_t now = now_ns();

	if (!o->progress || now - *last_print < 1000000000ull)
		return;
	for (unsigned i = 0; i < o->procs; i++) {
		live_read(&sh->slots[i].live, &one);
		sum.ops += one.ops;
		sum.errors += one.errors;
		sum.wrong += one.wrong;
		if (one.phase < sum.phase)
			sum.phase = one.phase;
	}
	if (sum.ops < *last_ops)
		*last_ops = 0;
	report_progress(&sum, *last_ops, (double)(now - *last_print) / 1e9,
			(double)(now - t0) / 1e9);
	*last_ops = sum.ops;
	*last_print = now;
}

/* Reap children that exited; returns how many are still running. */
static unsigned reap(pid_t *pids, unsigned n, int *bad)
{
	unsigned running = 0;

	for (unsigned i = 0; i < n; i++) {
		int status;

		if (pids[i] <= 0)
			continue;
		if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				bad[i] = 1;
				if (WIFSIGNALED(status))
					fprintf(stderr,
						"shmkv-bench: process %u died of signal %d\n",
						i, WTERMSIG(status));
			}
			pids[i] = 0;
		} else {
			running++;
		}
	}
	return running;
}

/* The preload, done by network mode's preload-only run: pipelined sets on a
 * few connections instead of one shmkv_set round trip per key. */
static int preload_over_network(const struct bench_options *o,
				const struct keyspace *ks,
				struct bench_result *res)
{
	static struct bench_result nres;
	struct bench_options no = *o;

	no.direct = NULL;
	no.preload_only = true;
	no.threads = 1;
	no.pipeline = 1;
	no.multiget = 1;
	hist_reset(&nres.get_latency);
	hist_reset(&nres.set_latency);
	if (net_run(&no, ks, &nres) != 0)
		return -1;
	res->preload = nres.preload;
	res->preload_elapsed = nres.preload_elapsed;
	res->conns_lost += nres.conns_lost;
	return 0;
}

static void merge(const struct bench_options *o, struct direct_shared *sh,
		  const int *bad, struct bench_result *res)
{
	uint64_t pre_start = UINT64_MAX, pre_end = 0;
	uint64_t start = UINT64_MAX, end = 0;

	for (unsigned i = 0; i < o->procs; i++) {
		struct direct_slot *s = &sh->slots[i];

		if (s->failed)
			fprintf(stderr,
				"shmkv-bench: process %u could not attach: %s\n",
				i, s->error);
		if (bad[i] || s->failed ||
		    !__atomic_load_n(&s->finished, __ATOMIC_ACQUIRE)) {
			res->conns_lost++;
			continue;
		}
		counters_add(&res->run, &s->run);
		counters_add(&res->preload, &s->pre);
		hist_merge(&res->get_latency, &s->get_lat);
		hist_merge(&res->set_latency, &s->set_lat);
		if (s->pre_start < pre_start)
			pre_start = s->pre_start;
		if (s->pre_end > pre_end)
			pre_end = s->pre_end;
		if (s->start < start)
			start = s->start;
		if (s->end > end)
			end = s->end;
	}
	if (end > 0 && !o->preload_net)
		res->preload_elapsed = (double)(pre_end - pre_start) / 1e9;
	if (end > 0)
		res->elapsed = (double)(end - start) / 1e9;
}

/* fork_children - one child a process, each running child_main; -1 (the
 * ones forked killed and reaped) if a fork fails. */
static int fork_children(const struct bench_options *o, const struct keyspace *ks,
			 struct direct_shared *sh, pid_t *pids, int *bad)
{
	struct timespec tick = { 0, 20 * 1000 * 1000 };

	fflush(stdout);
	fflush(stderr);
	for (unsigned i = 0; i < o->procs; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			child_main(o, ks, sh, i);
		if (pids[i] < 0) {
			fprintf(stderr, "shmkv-bench: fork of process %u: %s\n",
				i, strerror(errno));
			for (unsigned j = 0; j < i; j++)
				kill(pids[j], SIGKILL);
			while (reap(pids, i, bad) > 0)
				nanosleep(&tick, NULL);
			return -1;
		}
	}
	return 0;
}

int direct_run(const struct bench_options *o, const struct keyspace *ks,
	       struct bench_result *res)
{
	size_t size = sizeof(struct direct_shared) +
		      o->procs * sizeof(struct direct_slot);
	struct direct_shared *sh;
	uint64_t t0, last_print, last_ops = 0;
	pid_t *pids;
	int *bad;
	shmkv *kv;
	enum shmkv_status st;
	struct timespec tick = { 0, 20 * 1000 * 1000 };

	res->mode = "direct";
	snprintf(res->target, sizeof(res->target), "unix %s", o->direct);
	res->timing =
		o->batch > 1
			? "clock_gettime(CLOCK_MONOTONIC) around every shmkv_get_many (and shmkv_set) call; get latency per key (batch time / batch size)"
			: "clock_gettime(CLOCK_MONOTONIC) around every shmkv_get and shmkv_set call";
	res->timer_overhead_ns = timer_overhead_ns();

	st = shmkv_open(o->direct, &kv);
	if (st != SHMKV_OK) {
		fprintf(stderr, "shmkv-bench: cannot attach to %s: %s (%s)\n",
			o->direct, shmkv_strerror(st), shmkv_last_error());
		return -1;
	}
	shmkv_close(kv);
	if (o->preload && o->preload_net && preload_over_network(o, ks, res) != 0)
		return -1;

	sh = mmap(NULL, size, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		fprintf(stderr,
			"shmkv-bench: cannot map %zu bytes for results: %s\n",
			size, strerror(errno));
		return -1;
	}
	pids = xcalloc(o->procs, sizeof(*pids));
	bad = xcalloc(o->procs, sizeof(*bad));
	if (fork_children(o, ks, sh, pids, bad) < 0)
		return -1;

	t0 = last_print = now_ns();
	for (;;) {
		unsigned ready = 0;

		reap(pids, o->procs, bad);
		for (unsigned i = 0; i < o->procs; i++)
			ready += pids[i] == 0 ||
				 __atomic_load_n(&sh->slots[i].ready,
						 __ATOMIC_ACQUIRE);
		if (ready == o->procs)
			break;
		progress(o, sh, t0, &last_print, &last_ops);
		nanosleep(&tick, NULL);
	}
	/* Pairs with the children's acquire loads of go. */
	__atomic_store_n(&sh->go, 1, __ATOMIC_RELEASE);
	while (reap(pids, o->procs, bad) > 0) {
		progress(o, sh, t0, &last_print, &last_ops);
		nanosleep(&tick, NULL);
	}
	merge(o, sh, bad, res);
	free(pids);
	free(bad);
	munmap(sh, size);
	return 0;
}
