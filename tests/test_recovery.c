/*
 * test_recovery.c - crash recovery of LWLocks and partitions
 * (client/lwlock_recover.c, client/table_recover.c)
 *
 * Each test forks a child onto a real cache (the segment is shared, as a
 * worker's is), lets it stop at one precise point of a lock operation -
 * holding a partition exclusive in the middle of a change, holding it
 * shared, asleep in the wait list, owning the wait list, or releasing with
 * waiters unlinked but not woken - and SIGKILLs it there.  The test process
 * then runs lwlock_recover as the supervisor does, from a proc slot of its
 * own, and checks what a user would: the lock can be taken again in both
 * modes, waiters that were stuck behind the dead process get the lock, a
 * partition a dead writer held was emptied (and only that one), and one a
 * dead reader held kept its items.
 *
 * Children die with the test (PR_SET_PDEATHSIG, and an alarm); the parent
 * waits for them with deadlines, so a lost wakeup fails a test instead of
 * hanging it, and teardown kills and reaps every child, pass or fail.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache.h"
#include "lwlock_recover.h"
#include "table.h"
#include "table_internal.h"

#define MIB (1024u * 1024u)
#define NKEYS 64
#define MAXKIDS 4
#define STORM_MS 2000
/* ... and at least this many kills, however slow the machine (valgrind on a
 * shared box manages a handful a second), within STORM_DEADLINE_MS. */
#define STORM_MIN_KILLS 20
#define STORM_DEADLINE_MS 120000
#define DEADLINE_MS 10000
#define RECOVER_TIMEOUT_MS 2000

/* What parent and children share besides the segment. */
struct shared {
	_Atomic int ready[MAXKIDS]; /* child i reached its point */
	_Atomic uint32_t slot[MAXKIDS];
	_Atomic int got[MAXKIDS];	 /* child i got the lock */
	_Atomic uint32_t in_cs[MAXKIDS]; /* storm: mode child i is inside in */
	_Atomic int stop;		 /* storm: finish now */
	_Atomic int violations;		 /* storm: exclusion broken */
	_Atomic uint64_t entries;	 /* storm: critical sections entered */
};

struct fixture {
	struct cache c;
	struct shared *sh;
	struct lwlock_owner rec; /* the recoverer: a slot of its own */
	bool *dead;
	pid_t kids[MAXKIDS];
};

typedef void (*child_fn)(struct fixture *f, int idx);

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000u, (long)(ms % 1000u) * 1000000L };

	nanosleep(&ts, NULL);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct cache_config cfg;
	char err[256];
	uint32_t slot;

	if (f == NULL)
		return -1;
	memset(&cfg, 0, sizeof(cfg));
	cfg.table.memory = 8 * MIB;
	cfg.table.partitions = 4;
	cfg.seg.huge_pages = SEGMENT_HUGE_OFF;
	cfg.max_procs = 16;
	if (cache_create(&f->c, &cfg, err, sizeof(err)) != 0 ||
	    cache_claim_proc(&f->c) != 0) {
		fprintf(stderr, "cache: %s\n", err);
		return -1;
	}
	f->sh = mmap(NULL, sizeof(*f->sh), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (f->sh == MAP_FAILED)
		return -1;
	/* The supervisor's role: a second slot, never holding a lock. */
	if (proc_claim(f->c.procs, f->c.nprocs, getpid(), &slot) != 0)
		return -1;
	f->rec = f->c.table.owner;
	f->rec.self = slot;
	f->dead = calloc(f->c.nprocs, sizeof(bool));
	*state = f;
	return f->dead != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < MAXKIDS; i++) {
		if (f->kids[i] > 0) {
			kill(f->kids[i], SIGKILL);
			waitpid(f->kids[i], NULL, 0);
		}
	}
	munmap(f->sh, sizeof(*f->sh));
	free(f->dead);
	cache_destroy(&f->c);
	free(f);
	return 0;
}

/* spawn - fork child idx running fn on a proc slot of its own. */
static void spawn(struct fixture *f, int idx, child_fn fn)
{
	pid_t parent = getpid();
	uint64_t deadline = now_ms() + DEADLINE_MS;
	pid_t pid;

	atomic_store(&f->sh->slot[idx], PROC_NONE);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(2);
		alarm(30);
		f->c.self = PROC_NONE;
		if (cache_claim_proc(&f->c) != 0)
			_exit(3);
		atomic_store(&f->sh->slot[idx], f->c.self);
		fn(f, idx);
		_exit(0);
	}
	f->kids[idx] = pid;
	/* Its slot must be known before anyone may kill it. */
	while (atomic_load(&f->sh->slot[idx]) == PROC_NONE) {
		if (now_ms() > deadline)
			fail_msg("child %d never claimed a proc slot", idx);
		sleep_ms(1);
	}
}

/* wait_ready - until child idx says it is at its point. */
static void wait_ready(struct fixture *f, int idx)
{
	uint64_t deadline = now_ms() + DEADLINE_MS;

	while (atomic_load(&f->sh->ready[idx]) == 0) {
		if (now_ms() > deadline)
			fail_msg("child %d never got to its point", idx);
		sleep_ms(1);
	}
}

/* wait_sleeping - until child idx sleeps in a wait list. */
static void wait_sleeping(struct fixture *f, int idx, uint32_t offset)
{
	uint64_t deadline = now_ms() + DEADLINE_MS;
	struct proc *p;

	while ((p = proc_get(f->c.procs, f->c.nprocs,
			     atomic_load(&f->sh->slot[idx]))) == NULL ||
	       atomic_load(&p->wait_sleep) != offset) {
		if (now_ms() > deadline)
			fail_msg("child %d never slept in the wait list", idx);
		sleep_ms(1);
	}
	sleep_ms(5); /* into the futex for real */
}

/* kill_kid - SIGKILL child idx, reap it, and mark its slot dead. */
static void kill_kid(struct fixture *f, int idx)
{
	int status;

	kill(f->kids[idx], SIGKILL);
	assert_int_equal(waitpid(f->kids[idx], &status, 0), f->kids[idx]);
	assert_true(WIFSIGNALED(status));
	f->kids[idx] = 0;
	f->dead[atomic_load(&f->sh->slot[idx])] = true;
}

/* reap_ok - child idx exits 0 before the deadline. */
static void reap_ok(struct fixture *f, int idx)
{
	uint64_t deadline = now_ms() + DEADLINE_MS;
	int status;
	pid_t r;

	while ((r = waitpid(f->kids[idx], &status, WNOHANG)) == 0) {
		if (now_ms() > deadline)
			fail_msg("child %d is stuck: it never got the lock", idx);
		sleep_ms(1);
	}
	assert_int_equal(r, f->kids[idx]);
	f->kids[idx] = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void park(void)
{
	for (;;)
		pause();
}

/* The partition a key falls in, and its lock. */
static uint32_t key_partition(const struct fixture *f, const char *key)
{
	return table_partition_of(&f->c.table, table_hash(key, strlen(key)));
}

static struct lwlock *part_lock(struct fixture *f, uint32_t p)
{
	return &f->c.table.pctl[p].c.lock;
}

static uint32_t lock_offset(struct fixture *f, uint32_t p)
{
	return (uint32_t)((unsigned char *)part_lock(f, p) - f->c.seg.ctl);
}

static void store_keys(struct fixture *f)
{
	char key[32];

	for (int i = 0; i < NKEYS; i++) {
		struct table_store_req req = { .mode = TABLE_SET,
					       .key = key,
					       .value = "value",
					       .value_len = 5 };

		req.key_len = (size_t)snprintf(key, sizeof(key), "key%d", i);
		assert_int_equal(table_store(&f->c.table, &req, NULL), TABLE_OK);
	}
}

/* count_keys - how many of the stored keys in partition p (or, with
 * others, outside it) are still found. */
static int count_keys(struct fixture *f, uint32_t p, bool others)
{
	char key[32], buf[16];
	int n = 0;

	for (int i = 0; i < NKEYS; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		if ((key_partition(f, key) == p) == others)
			continue;
		n += table_get(&f->c.table, key, strlen(key), NULL, buf,
			       sizeof(buf), NULL) == TABLE_OK;
	}
	return n;
}

/* The lock is free, and free of flags, and can be had in both modes. */
static void assert_lock_whole(struct fixture *f, uint32_t p)
{
	struct lwlock *l = part_lock(f, p);
	const struct lwlock_owner *me = &f->c.table.owner;

	assert_int_equal(atomic_load(&l->state), LW_FLAG_RELEASE_OK);
	assert_int_equal(atomic_load(&l->wait_head), PROC_NONE);
	assert_int_equal(atomic_load(&l->waitlist_owner), 0);
	assert_true(lwlock_conditional_acquire(me, l, LW_EXCLUSIVE));
	lwlock_release(me, l);
	assert_true(lwlock_conditional_acquire(me, l, LW_SHARED));
	lwlock_release(me, l);
}

static void repair(void *arg)
{
	struct fixture *f = ((void **)arg)[0];
	uint32_t p = *(uint32_t *)((void **)arg)[1];

	assert_int_equal(table_partition_reset(&f->c.table, p), 0);
}

static void recover(struct fixture *f, uint32_t p, bool drop,
		    struct lwlock_recover_result *res)
{
	void *arg[2] = { f, &p };

	assert_int_equal(lwlock_recover(&f->rec, part_lock(f, p), f->dead,
					drop ? repair : NULL, arg,
					RECOVER_TIMEOUT_MS, res),
			 0);
}

/* ---- children ---- */

static uint32_t target; /* the partition the children work on */

/* A writer half way through a change: lock held, seq odd, counts torn. */
static void child_writer(struct fixture *f, int idx)
{
	struct table_part_ref pr;

	table_part_resolve_index(&f->c.table, target, &pr);
	table_part_lock(&pr, LW_EXCLUSIVE);
	pr.buckets[0].tags[0] = 0xdead; /* a bucket naming nothing written */
	pr.buckets[0].refs[0] = 0x7fffffff;
	pr.part->items += 1000;
	atomic_store(&f->sh->ready[idx], 1);
	park();
}

static void child_reader(struct fixture *f, int idx)
{
	lwlock_acquire(&f->c.table.owner, part_lock(f, target), LW_SHARED);
	atomic_store(&f->sh->ready[idx], 1);
	park();
}

/* Acquire in exclusive mode (sleeping as long as it takes), then say so. */
static void child_waiter(struct fixture *f, int idx)
{
	lwlock_acquire(&f->c.table.owner, part_lock(f, target), LW_EXCLUSIVE);
	atomic_store(&f->sh->got[idx], 1);
	lwlock_release(&f->c.table.owner, part_lock(f, target));
}

/* Dies owning the wait list, as if inside lwlock_queue_self. */
static void child_list_owner(struct fixture *f, int idx)
{
	struct lwlock *l = part_lock(f, target);
	struct proc *self = proc_get(f->c.procs, f->c.nprocs, f->c.self);

	atomic_store(&self->wait_mode, LW_EXCLUSIVE);
	atomic_store(&self->acquiring, lock_offset(f, target));
	atomic_store(&l->waitlist_owner, f->c.self + 1);
	atomic_fetch_or(&l->state, LW_FLAG_LOCKED | LW_FLAG_HAS_WAITERS);
	atomic_store(&f->sh->ready[idx], 1);
	park();
}

/*
 * Dies releasing, as if inside lwlock_wakeup after unlinking every waiter
 * and giving the list back, before waking them.
 */
static void child_dead_waker(struct fixture *f, int idx)
{
	struct lwlock *l = part_lock(f, target);
	struct proc *self = proc_get(f->c.procs, f->c.nprocs, f->c.self);

	atomic_store(&self->wait_mode, LW_SHARED);
	atomic_store(&self->acquiring, lock_offset(f, target));
	atomic_store(&l->waitlist_owner, f->c.self + 1);
	atomic_fetch_or(&l->state, LW_FLAG_LOCKED);
	atomic_store(&l->wait_head, PROC_NONE);
	atomic_store(&l->wait_tail, PROC_NONE);
	atomic_fetch_and(&l->state, ~(LW_FLAG_LOCKED | LW_FLAG_HAS_WAITERS |
				      LW_FLAG_RELEASE_OK));
	atomic_store(&l->waitlist_owner, 0);
	atomic_store(&f->sh->ready[idx], 1);
	park();
}

/*
 * Takes the lock over and over in random modes, checking exclusion against
 * the other children's in_cs marks, until told to stop.
 */
static void child_storm(struct fixture *f, int idx)
{
	struct lwlock *l = part_lock(f, target);
	unsigned int seed = (unsigned int)getpid();

	while (!atomic_load(&f->sh->stop)) {
		enum lwlock_mode mode = (rand_r(&seed) & 1) ? LW_SHARED
							    : LW_EXCLUSIVE;

		lwlock_acquire(&f->c.table.owner, l, mode);
		atomic_store(&f->sh->in_cs[idx], mode);
		for (int i = 0; i < MAXKIDS; i++) {
			uint32_t other = atomic_load(&f->sh->in_cs[i]);

			if (i != idx && other != 0 &&
			    (mode == LW_EXCLUSIVE || other == LW_EXCLUSIVE))
				atomic_fetch_add(&f->sh->violations, 1);
		}
		atomic_fetch_add(&f->sh->entries, 1);
		for (int i = rand_r(&seed) % 200; i > 0; i--)
			__asm__ __volatile__("" ::: "memory");
		atomic_store(&f->sh->in_cs[idx], 0);
		lwlock_release(&f->c.table.owner, l);
	}
}

/* ---- tests ---- */

static void pick_target(struct fixture *f)
{
	target = key_partition(f, "key0");
	/* The test needs keys both in and outside the target partition. */
	assert_true(count_keys(f, target, false) > 0);
	assert_true(count_keys(f, target, true) > 0);
}

/* Whether lwlock_recover found anything of a dead process to undo. */
static bool recovered_anything(const struct lwlock_recover_result *res)
{
	return res->dead_exclusive || res->dead_shared > 0 || res->waitlist_taken;
}

/* A writer killed mid-change: partition dropped, others kept, lock whole. */
static void test_killed_writing(void **state)
{
	struct fixture *f = *state;
	struct lwlock_recover_result res;
	int outside;

	store_keys(f);
	pick_target(f);
	outside = count_keys(f, target, true);
	spawn(f, 0, child_writer);
	wait_ready(f, 0);
	kill_kid(f, 0);
	assert_true(atomic_load(&part_lock(f, target)->state) & LW_VAL_EXCLUSIVE);

	recover(f, target, true, &res);
	assert_true(res.dead_exclusive);
	assert_int_equal(res.dead_shared, 0);
	assert_true(recovered_anything(&res));
	assert_lock_whole(f, target);
	/* Dropped: nothing of it found, and a consistent empty partition. */
	assert_int_equal(count_keys(f, target, false), 0);
	assert_int_equal(count_keys(f, target, true), outside);
	assert_int_equal(f->c.table.parts[target].items, 0);
	assert_int_equal(atomic_load(&f->c.table.parts[target].seq) % 2, 0);
	/* Usable again: store and find the keys of it. */
	store_keys(f);
	assert_true(count_keys(f, target, false) > 0);
	/* Recovering again finds nothing more to do. */
	recover(f, target, true, &res);
	assert_false(recovered_anything(&res));
}

/* A reader killed holding the lock shared: nothing dropped, lock whole. */
static void test_killed_reading(void **state)
{
	struct fixture *f = *state;
	struct lwlock_recover_result res;
	int inside;

	store_keys(f);
	pick_target(f);
	inside = count_keys(f, target, false);
	/* A live reader keeps its hold through the recovery. */
	lwlock_acquire(&f->c.table.owner, part_lock(f, target), LW_SHARED);
	spawn(f, 0, child_reader);
	wait_ready(f, 0);
	kill_kid(f, 0);
	assert_int_equal(atomic_load(&part_lock(f, target)->state) & LW_LOCK_MASK,
			 2);

	recover(f, target, true, &res);
	assert_false(res.dead_exclusive);
	assert_int_equal(res.dead_shared, 1);
	assert_int_equal(atomic_load(&part_lock(f, target)->state) & LW_LOCK_MASK,
			 1);
	lwlock_release(&f->c.table.owner, part_lock(f, target));
	assert_lock_whole(f, target);
	assert_int_equal(count_keys(f, target, false), inside);
}

/*
 * A waiter killed in the wait list, in front of a live one: after recovery
 * the holder's release must still wake the live one.  Without recovery
 * the release wakes the dead slot only and the live waiter sleeps for ever.
 */
static void test_killed_queued(void **state)
{
	struct fixture *f = *state;
	struct lwlock_recover_result res;
	const struct lwlock_owner *me = &f->c.table.owner;

	store_keys(f);
	pick_target(f);
	lwlock_acquire(me, part_lock(f, target), LW_EXCLUSIVE);
	spawn(f, 0, child_waiter);
	wait_sleeping(f, 0, lock_offset(f, target));
	spawn(f, 1, child_waiter);
	wait_sleeping(f, 1, lock_offset(f, target));
	kill_kid(f, 0);

	recover(f, target, true, &res);
	assert_false(res.dead_exclusive); /* ours is a live hold */
	assert_int_equal(res.dead_shared, 0);
	sleep_ms(20); /* the woken waiter retries and queues again */
	assert_int_equal(atomic_load(&f->sh->got[1]), 0);
	lwlock_release(me, part_lock(f, target));
	reap_ok(f, 1);
	assert_int_equal(atomic_load(&f->sh->got[1]), 1);
	assert_lock_whole(f, target);
}

/*
 * A process killed owning the wait list: a live acquirer spins on it for
 * ever until recovery frees it, then queues and gets the lock.
 */
static void test_killed_owning_wait_list(void **state)
{
	struct fixture *f = *state;
	struct lwlock_recover_result res;
	const struct lwlock_owner *me = &f->c.table.owner;

	store_keys(f);
	pick_target(f);
	spawn(f, 0, child_list_owner);
	wait_ready(f, 0);
	lwlock_acquire(me, part_lock(f, target), LW_EXCLUSIVE);
	spawn(f, 1, child_waiter);
	sleep_ms(50); /* it is spinning on the wait list's owner */
	kill_kid(f, 0);

	recover(f, target, true, &res);
	assert_true(res.waitlist_taken);
	assert_false(res.dead_exclusive);
	assert_int_equal(atomic_load(&f->sh->got[1]), 0);
	lwlock_release(me, part_lock(f, target));
	reap_ok(f, 1);
	assert_lock_whole(f, target);
}

/*
 * A releaser killed after unlinking the waiters and before waking them:
 * they sleep off the list, and only recovery can wake them.
 */
static void test_killed_waking(void **state)
{
	struct fixture *f = *state;
	struct lwlock_recover_result res;
	const struct lwlock_owner *me = &f->c.table.owner;

	store_keys(f);
	pick_target(f);
	lwlock_acquire(me, part_lock(f, target), LW_EXCLUSIVE);
	spawn(f, 1, child_waiter);
	wait_sleeping(f, 1, lock_offset(f, target));
	lwlock_release(me, part_lock(f, target));
	reap_ok(f, 1); /* the ordinary path first: it works */

	lwlock_acquire(me, part_lock(f, target), LW_EXCLUSIVE);
	atomic_store(&f->sh->got[1], 0);
	spawn(f, 1, child_waiter);
	wait_sleeping(f, 1, lock_offset(f, target));
	spawn(f, 0, child_dead_waker);
	wait_ready(f, 0);
	kill_kid(f, 0);
	lwlock_release(me, part_lock(f, target)); /* wakes nobody: list empty */
	sleep_ms(20);
	assert_int_equal(atomic_load(&f->sh->got[1]), 0);

	recover(f, target, true, &res);
	assert_int_equal(res.woken, 1);
	reap_ok(f, 1);
	assert_int_equal(atomic_load(&f->sh->got[1]), 1);
	assert_lock_whole(f, target);
}

/*
 * Children hammer one lock in both modes while the test kills them at
 * random instants - inside acquire, release, the wait list, the critical
 * section - recovers as the supervisor does, frees the slot and starts a
 * new child, for STORM_MS and at least STORM_MIN_KILLS kills (a slow
 * machine gets fewer kills per second, not a failure).  Exclusion must hold
 * throughout, every recovery must finish, and at the end every child must
 * get through (no lost waiter).
 */
static void test_kill_storm(void **state)
{
	struct fixture *f = *state;
	uint64_t end, deadline;
	unsigned int seed = 12345;
	int kills = 0, drops = 0;

	store_keys(f);
	pick_target(f);
	for (int i = 0; i < MAXKIDS; i++)
		spawn(f, i, child_storm);
	end = now_ms() + STORM_MS;
	deadline = now_ms() + STORM_DEADLINE_MS;
	while (now_ms() < end || kills < STORM_MIN_KILLS) {
		struct lwlock_recover_result res;
		int victim = (int)(rand_r(&seed) % MAXKIDS);
		uint32_t slot;

		sleep_ms(1 + rand_r(&seed) % 10);
		kill_kid(f, victim);
		/* Its mark would look like a holder to the others. */
		atomic_store(&f->sh->in_cs[victim], 0);
		slot = atomic_load(&f->sh->slot[victim]);
		recover(f, target, true, &res);
		drops += res.dead_exclusive;
		kills++;
		/* Give the slot back, as the supervisor does (the release
		 * clears all of it, wait_sleep included). */
		proc_release(f->c.procs, f->c.nprocs, slot);
		f->dead[slot] = false;
		spawn(f, victim, child_storm);
		if (now_ms() > deadline)
			fail_msg("only %d kills in %d ms", kills,
				 STORM_DEADLINE_MS);
	}
	atomic_store(&f->sh->stop, 1);
	for (int i = 0; i < MAXKIDS; i++)
		reap_ok(f, i);
	print_message("storm: %d kills, %d partition drops, %llu sections\n",
		      kills, drops,
		      (unsigned long long)atomic_load(&f->sh->entries));
	assert_int_equal(atomic_load(&f->sh->violations), 0);
	assert_true(atomic_load(&f->sh->entries) > (uint64_t)kills);
	assert_lock_whole(f, target);
}

/* The supervisor's helpers: which locks a slot names, whose lock it is. */
static void test_proc_locks_and_partition_of_lock(void **state)
{
	struct fixture *f = *state;
	const struct lwlock_owner *me = &f->c.table.owner;
	struct proc *self = proc_get(f->c.procs, f->c.nprocs, me->self);
	uint32_t offs[PROC_MAX_HELD + 1], p = 99;

	assert_int_equal(lwlock_proc_locks(self, offs, PROC_MAX_HELD + 1), 0);
	lwlock_acquire(me, part_lock(f, 2), LW_SHARED);
	lwlock_acquire(me, part_lock(f, 3), LW_EXCLUSIVE);
	assert_int_equal(lwlock_proc_locks(self, offs, PROC_MAX_HELD + 1), 2);
	assert_int_equal(table_partition_of_lock(&f->c.table, offs[0], &p), 0);
	assert_int_equal(p, 2);
	assert_int_equal(table_partition_of_lock(&f->c.table, offs[1], &p), 0);
	assert_int_equal(p, 3);
	assert_int_equal(table_partition_of_lock(&f->c.table, offs[1] + 4, &p),
			 -ENOENT);
	assert_int_equal(table_partition_of_lock(&f->c.table, 0, &p), -ENOENT);
	lwlock_release(me, part_lock(f, 3));
	lwlock_release(me, part_lock(f, 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_killed_writing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_killed_reading, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_killed_queued, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_killed_owning_wait_list,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_waking, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_proc_locks_and_partition_of_lock,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill_storm, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
