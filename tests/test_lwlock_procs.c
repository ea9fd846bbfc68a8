/*
 * test_lwlock_procs.c - client/lwlock.c with real processes waiting
 *
 * Multi-process tests fork real processes that each claim their own proc
 * slot, as workers and client programs do, and check what only contention
 * can show: shared waiters are woken together, an exclusive waiter queued
 * behind shared holders waits its turn, a mixed queue is woken in
 * PostgreSQL's order, a release between a waiter's failed attempt and its
 * queueing loses no wakeup, many processes hammering a few locks keep the
 * counters they protect consistent, and a wait list a client program
 * scribbled on neither hangs nor breaks the lock.
 *
 * The fake control part and the child helpers are lwlock_fixture.c.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lwlock_fixture.h"

/* ---- several processes --------------------------------------------- */

/* Child: take lock 0 shared, hold it until every sibling holds it too. */
static int shared_waiter_child(struct fixture *f, int idx,
			       const struct lwlock_owner *me)
{
	struct lwlock *l = lock_n(f, 0);
	int want = (int)atomic_load(&f->sh->go[0]); /* number of siblings */

	(void)idx;
	lwlock_acquire(me, l, LW_SHARED);
	atomic_fetch_add(&f->sh->in_shared, 1);
	/*
	 * All of us must get in while none has let go: had release woken only
	 * one, the others would still sleep and we would time out here.
	 */
	CHILD_CHECK(wait_flag(&f->sh->in_shared, want));
	CHILD_CHECK(atomic_load(&f->sh->excl_holders[0]) == 0);
	lwlock_release(me, l);
	return 0;
}

static void test_shared_waiters_woken_together(void **state)
{
	struct fixture *f = *state;
	struct lwlock *l = lock_n(f, 0);
	const int n = 4;

	atomic_store(&f->sh->go[0], n);
	lwlock_acquire(&f->me, l, LW_EXCLUSIVE);
	atomic_store(&f->sh->excl_holders[0], 1);
	for (int i = 0; i < n; i++)
		spawn(f, i, shared_waiter_child);
	for (int i = 0; i < n; i++)
		wait_queued(f, i);
	assert_true(state_of(f, 0) & LW_FLAG_HAS_WAITERS);
	assert_int_equal(atomic_load(&f->sh->in_shared), 0);

	atomic_store(&f->sh->excl_holders[0], 0);
	lwlock_release(&f->me, l);
	assert_int_equal(reap_all(f), 0);

	assert_int_equal(atomic_load(&f->sh->in_shared), n);
	/* Every child found it taken and slept: each counts as contended. */
	assert_int_equal(atomic_load(&l->contended), n);
	assert_true(atomic_load(&l->wait_ns) > 0);
	assert_int_equal(atomic_load(&l->acquisitions), n + 1);
	assert_int_equal(state_of(f, 0), LW_FLAG_RELEASE_OK);
	assert_int_equal(atomic_load(&l->wait_head), PROC_NONE);
	assert_int_equal(atomic_load(&l->wait_tail), PROC_NONE);
}

/* Child: take lock 0 in the mode go[idx] says, report, wait to be let go. */
static int mode_child(struct fixture *f, int idx, const struct lwlock_owner *me)
{
	struct lwlock *l = lock_n(f, 0);
	enum lwlock_mode mode = atomic_load(&f->sh->go[idx]) == LW_EXCLUSIVE
					? LW_EXCLUSIVE
					: LW_SHARED;

	lwlock_acquire(me, l, mode);
	CHILD_CHECK(lwlock_held_by_me(me, l));
	if (mode == LW_EXCLUSIVE)
		CHILD_CHECK(atomic_fetch_add(&f->sh->excl_holders[0], 1) == 0);
	else
		CHILD_CHECK(atomic_load(&f->sh->excl_holders[0]) == 0);
	atomic_store(&f->sh->got[idx], 1);
	/* The parent looks at the lock while we hold it, then lets us go. */
	CHILD_CHECK(wait_flag(&f->sh->go[idx], 10));
	if (mode == LW_EXCLUSIVE)
		atomic_fetch_sub(&f->sh->excl_holders[0], 1);
	lwlock_release(me, l);
	return 0;
}

static void test_exclusive_waiter_behind_shared(void **state)
{
	struct fixture *f = *state;
	struct lwlock_owner b = owner(f);
	struct lwlock *l = lock_n(f, 0);
	struct proc *kid;

	lwlock_acquire(&f->me, l, LW_SHARED);
	lwlock_acquire(&b, l, LW_SHARED);
	atomic_store(&f->sh->go[0], LW_EXCLUSIVE);
	spawn(f, 0, mode_child);
	wait_queued(f, 0);
	kid = kid_proc(f, 0);

	/* One shared holder left: the exclusive waiter must stay asleep. */
	lwlock_release(&b, l);
	sleep_ms(20);
	assert_int_equal(atomic_load(&f->sh->got[0]), 0);
	assert_int_equal(atomic_load(&kid->waiting), 1);

	/* The last one goes: the waiter gets it, and it is exclusive. */
	lwlock_release(&f->me, l);
	assert_true(wait_flag(&f->sh->got[0], 1));
	assert_false(lwlock_conditional_acquire(&f->me, l, LW_SHARED));
	assert_false(lwlock_conditional_acquire(&b, l, LW_EXCLUSIVE));
	assert_int_equal(atomic_load(&kid->nheld), 1);
	assert_int_equal(kid->held[0].mode, LW_EXCLUSIVE);
	atomic_store(&f->sh->go[0], 10);
	assert_int_equal(reap_all(f), 0);

	assert_int_equal(atomic_load(&l->contended), 1);
	assert_int_equal(state_of(f, 0), LW_FLAG_RELEASE_OK);
}

/*
 * Queue shared, exclusive, shared behind an exclusive holder.  Release
 * lets both shared waiters in together (PostgreSQL's order: the exclusive
 * one is skipped once a shared one is woken), then the exclusive one.
 */
static void test_mixed_queue_order(void **state)
{
	struct fixture *f = *state;
	struct lwlock *l = lock_n(f, 0);
	const enum lwlock_mode modes[3] = { LW_SHARED, LW_EXCLUSIVE, LW_SHARED };

	lwlock_acquire(&f->me, l, LW_EXCLUSIVE);
	for (int i = 0; i < 3; i++) {
		atomic_store(&f->sh->go[i], modes[i]);
		spawn(f, i, mode_child);
		wait_queued(f, i); /* one at a time: fixes the queue order */
	}
	lwlock_release(&f->me, l);

	assert_true(wait_flag(&f->sh->got[0], 1));
	assert_true(wait_flag(&f->sh->got[2], 1));
	sleep_ms(20);
	assert_int_equal(atomic_load(&f->sh->got[1]), 0);
	assert_int_equal(atomic_load(&kid_proc(f, 1)->waiting), 1);
	/* The exclusive waiter is all that is left on the list. */
	assert_int_equal(atomic_load(&l->wait_head),
			 atomic_load(&f->sh->slot_of[1]));
	assert_int_equal(atomic_load(&l->wait_tail),
			 atomic_load(&f->sh->slot_of[1]));

	atomic_store(&f->sh->go[0], 10);
	atomic_store(&f->sh->go[2], 10);
	assert_true(wait_flag(&f->sh->got[1], 1));
	atomic_store(&f->sh->go[1], 10);
	assert_int_equal(reap_all(f), 0);
	assert_int_equal(atomic_load(&l->contended), 3);
	assert_int_equal(state_of(f, 0), LW_FLAG_RELEASE_OK);
}

/* Child: take lock 0 exclusive once; the parent plays with the list bit. */
static int late_release_child(struct fixture *f, int idx,
			      const struct lwlock_owner *me)
{
	lwlock_acquire(me, lock_n(f, 0), LW_EXCLUSIVE);
	atomic_store(&f->sh->got[idx], 1);
	lwlock_release(me, lock_n(f, 0));
	return 0;
}

/*
 * The race every sleeping lock must close: the holder releases after the
 * waiter's failed attempt but before the waiter is on the list, so the
 * release sees no waiters and wakes nobody.  We hold the wait-list bit
 * ourselves to keep the child at exactly that point, release, then let it
 * queue.  Its attempt after queueing must find the lock free; a waiter that
 * went to sleep instead would sleep for ever.
 */
static void test_release_before_queueing(void **state)
{
	struct fixture *f = *state;
	struct lwlock *l = lock_n(f, 0);
	struct proc *kid;
	uint64_t deadline = now_ms() + DEADLINE_MS;

	lwlock_acquire(&f->me, l, LW_EXCLUSIVE);
	atomic_fetch_or(&l->state, LW_FLAG_LOCKED);
	spawn(f, 0, late_release_child);
	kid = kid_proc(f, 0);
	/* acquiring is set before the child's first attempt. */
	while (atomic_load(&kid->acquiring) == 0) {
		if (now_ms() > deadline)
			fail_msg("child never started acquiring");
		sleep_ms(1);
	}
	sleep_ms(20); /* past its spin: now it waits for the list bit */
	lwlock_release(&f->me, l);
	assert_int_equal(state_of(f, 0) & LW_FLAG_HAS_WAITERS, 0);
	atomic_fetch_and(&l->state, ~LW_FLAG_LOCKED);

	assert_int_equal(reap_all(f), 0);
	assert_int_equal(atomic_load(&f->sh->got[0]), 1);
	assert_int_equal(atomic_load(&l->contended), 0); /* it never slept */
	assert_int_equal(state_of(f, 0), LW_FLAG_RELEASE_OK);
	assert_int_equal(atomic_load(&l->wait_head), PROC_NONE);
}

/* enter - checks and bookkeeping right after taking lock li in mode. */
static void enter(struct fixture *f, int li, enum lwlock_mode mode, bool dawdle)
{
	struct shared *sh = f->sh;

	if (mode == LW_EXCLUSIVE) {
		CHILD_CHECK(atomic_fetch_add(&sh->excl_holders[li], 1) == 0);
		CHILD_CHECK(atomic_load(&sh->shared_holders[li]) == 0);
		CHILD_CHECK(sh->count_a[li] == sh->count_b[li]);
		sh->count_a[li]++;
		if (dawdle)
			sched_yield(); /* let others pile up behind us */
		sh->count_b[li]++;
		atomic_fetch_add(&sh->excl_iters[li], 1);
	} else {
		atomic_fetch_add(&sh->shared_holders[li], 1);
		CHILD_CHECK(atomic_load(&sh->excl_holders[li]) == 0);
		CHILD_CHECK(sh->count_a[li] == sh->count_b[li]);
		if (dawdle)
			sched_yield();
		CHILD_CHECK(sh->count_a[li] == sh->count_b[li]);
	}
}

static void leave(struct fixture *f, int li, enum lwlock_mode mode)
{
	if (mode == LW_EXCLUSIVE)
		atomic_fetch_sub(&f->sh->excl_holders[li], 1);
	else
		atomic_fetch_sub(&f->sh->shared_holders[li], 1);
}

static void take(struct fixture *f, const struct lwlock_owner *me, int li,
		 enum lwlock_mode mode, bool conditional_first)
{
	struct lwlock *l = lock_n(f, li);

	if (!conditional_first || !lwlock_conditional_acquire(me, l, mode))
		lwlock_acquire(me, l, mode);
	CHILD_CHECK(lwlock_held_by_me(me, l));
	CHILD_CHECK(atomic_load(&proc_get(f->procs, NPROCS, me->self)->acquiring) ==
		    0);
}

/* Child: mixed modes over three locks, sometimes two at once. */
static int hammer_child(struct fixture *f, int idx, const struct lwlock_owner *me)
{
	uint32_t rng = 0x9e3779b9u * (uint32_t)(idx + 1);
	uint64_t acq = 0;

	for (int i = 0; i < HAMMER_ITERS; i++) {
		int li;
		int lj;
		enum lwlock_mode mi;
		enum lwlock_mode mj;

		rng = rng * 1103515245u + 12345u;
		li = (int)((rng >> 8) % NLOCKS);
		mi = (rng >> 12) % 3 == 0 ? LW_EXCLUSIVE : LW_SHARED;
		take(f, me, li, mi, (rng >> 14) % 8 == 0);
		acq++;
		enter(f, li, mi, (rng >> 17) % 4 == 0);

		/* Now and then a second, higher lock: ordered, no deadlock. */
		if ((rng >> 20) % 8 == 0 && li + 1 < NLOCKS) {
			lj = li + 1;
			mj = (rng >> 24) % 2 ? LW_EXCLUSIVE : LW_SHARED;
			take(f, me, lj, mj, false);
			acq++;
			enter(f, lj, mj, false);
			/* Release the first first: held[] loses its front. */
			leave(f, li, mi);
			lwlock_release(me, lock_n(f, li));
			CHILD_CHECK(!lwlock_held_by_me(me, lock_n(f, li)));
			CHILD_CHECK(lwlock_held_by_me(me, lock_n(f, lj)));
			leave(f, lj, mj);
			lwlock_release(me, lock_n(f, lj));
		} else {
			leave(f, li, mi);
			lwlock_release(me, lock_n(f, li));
		}
		CHILD_CHECK(
			atomic_load(&proc_get(f->procs, NPROCS, me->self)->nheld) ==
			0);
	}
	atomic_fetch_add(&f->sh->total_acq, acq);
	proc_release(f->procs, NPROCS, me->self);
	return 0;
}

static void test_hammer(void **state)
{
	struct fixture *f = *state;
	uint64_t acquisitions = 0;

	for (int i = 0; i < HAMMER_KIDS; i++)
		spawn(f, i, hammer_child);
	assert_int_equal(reap_all(f), 0);

	for (int i = 0; i < NLOCKS; i++) {
		struct lwlock *l = lock_n(f, i);

		/* Exclusive holders really were alone: no increment lost. */
		assert_int_equal(f->sh->count_a[i],
				 atomic_load(&f->sh->excl_iters[i]));
		assert_int_equal(f->sh->count_b[i], f->sh->count_a[i]);
		assert_true(f->sh->count_a[i] > 0);
		/* Free, nobody queued, nobody left behind. */
		assert_int_equal(state_of(f, i) & ~LW_FLAG_RELEASE_OK, 0);
		assert_int_equal(atomic_load(&l->wait_head), PROC_NONE);
		acquisitions += atomic_load(&l->acquisitions);
		assert_true(atomic_load(&l->contended) <=
			    atomic_load(&l->acquisitions));
	}
	assert_int_equal(acquisitions, atomic_load(&f->sh->total_acq));
	/* Every kid gave its slot back: all but the test's are free. */
	assert_int_equal(atomic_load(&f->procs->slots[f->me.self].proc.pid),
			 getpid());
	for (uint32_t s = 0; s < NPROCS; s++)
		if (s != f->me.self)
			assert_int_equal(atomic_load(&f->procs->slots[s].proc.pid),
					 0);
}

/*
 * Child: a client program scribbled on the wait list (a head past the
 * array, then a cycle).  Release must come back and the lock still work.
 */
static int garbage_child(struct fixture *f, int idx, const struct lwlock_owner *me)
{
	struct lwlock *l = lock_n(f, 1);
	struct proc *p5 = proc_get(f->procs, NPROCS, 5);
	struct proc *p6 = proc_get(f->procs, NPROCS, 6);

	(void)idx;
	lwlock_acquire(me, l, LW_EXCLUSIVE);
	atomic_store(&l->wait_head, 12345);
	atomic_store(&l->wait_tail, 99999);
	atomic_fetch_or(&l->state, LW_FLAG_HAS_WAITERS);
	lwlock_release(me, l);
	CHILD_CHECK(atomic_load(&l->wait_head) == PROC_NONE);
	CHILD_CHECK((atomic_load(&l->state) & LW_FLAG_HAS_WAITERS) == 0);

	/* Slots 5 and 6 are unclaimed: a cycle of "shared waiters". */
	lwlock_acquire(me, l, LW_EXCLUSIVE);
	atomic_store(&p5->wait_mode, LW_SHARED);
	atomic_store(&p6->wait_mode, LW_SHARED);
	atomic_store(&p5->wait_next, 6);
	atomic_store(&p6->wait_next, 5);
	atomic_store(&l->wait_head, 5);
	atomic_store(&l->wait_tail, 6);
	atomic_fetch_or(&l->state, LW_FLAG_HAS_WAITERS);
	lwlock_release(me, l);

	/* Garbage in our own held count must not send us off the array. */
	memset(proc_get(f->procs, NPROCS, me->self)->held, 0, sizeof(p5->held));
	atomic_store(&proc_get(f->procs, NPROCS, me->self)->nheld, 1000);
	CHILD_CHECK(!lwlock_held_by_me(me, l));
	atomic_store(&proc_get(f->procs, NPROCS, me->self)->nheld, 0);

	/* The lock still works, and a queue on it works again. */
	CHILD_CHECK(lwlock_conditional_acquire(me, l, LW_EXCLUSIVE));
	lwlock_release(me, l);
	lwlock_acquire(me, l, LW_SHARED);
	lwlock_release(me, l);
	return 0;
}

static void test_scribbled_wait_list(void **state)
{
	struct fixture *f = *state;

	spawn(f, 0, garbage_child);
	assert_int_equal(reap_all(f), 0);
	assert_int_equal(state_of(f, 1) & LW_LOCK_MASK, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_shared_waiters_woken_together),
		TEST(test_exclusive_waiter_behind_shared),
		TEST(test_mixed_queue_order),
		TEST(test_release_before_queueing),
		TEST(test_hammer),
		TEST(test_scribbled_wait_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
