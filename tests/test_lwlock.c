/*
 * test_lwlock.c - tests of client/lwlock.c and client/proc.c in one process
 *
 * The lock's and the proc array's promises that one process can check by
 * itself, using several proc slots as several owners: each slot is given
 * out once and comes back clean when released, an exclusive holder
 * excludes everyone, shared holders admit each other but not an exclusive
 * one, each owner's list of held locks is right, and the counters count
 * acquisitions and, without contention, no waits.  Waiting, waking and
 * contention between real processes are test_lwlock_procs.c.
 *
 * The fake control part these tests run on is lwlock_fixture.c.
 */
#include <errno.h>
#include <string.h>

#include "lwlock_fixture.h"

/* ---- proc slots ---------------------------------------------------- */

static void test_proc_slots(void **state)
{
	struct fixture *f = *state;
	struct proc_array *procs = f->procs;
	uint32_t slots[NPROCS];
	uint32_t slot;
	uint32_t n = 1; /* setup claimed one for the test process */

	assert_int_equal(procs->count, NPROCS);
	for (uint32_t i = 0; i < NPROCS; i++)
		assert_int_equal(atomic_load(&procs->slots[i].proc.wait_next),
				 PROC_NONE);
	while (proc_claim(procs, NPROCS, 4242, &slot) == 0) {
		assert_true(slot < NPROCS);
		assert_int_equal(atomic_load(&procs->slots[slot].proc.pid), 4242);
		slots[n - 1] = slot;
		n++;
		assert_true(n <= NPROCS);
	}
	assert_int_equal(n, NPROCS);
	assert_int_equal(proc_claim(procs, NPROCS, 4242, &slot), -EAGAIN);
	/* Every slot given out once: none twice, the test's own excluded. */
	for (uint32_t i = 0; i + 1 < n; i++) {
		assert_int_not_equal(slots[i], f->me.self);
		for (uint32_t j = i + 1; j + 1 < n; j++)
			assert_int_not_equal(slots[i], slots[j]);
	}

	/* A released slot is free again, and comes back clean. */
	atomic_store(&procs->slots[slots[3]].proc.nheld, 5);
	atomic_store(&procs->slots[slots[3]].proc.acquiring, 999);
	proc_release(procs, NPROCS, slots[3]);
	assert_int_equal(atomic_load(&procs->slots[slots[3]].proc.pid), 0);
	assert_int_equal(proc_claim(procs, NPROCS, 777, &slot), 0);
	assert_int_equal(slot, slots[3]);
	assert_int_equal(atomic_load(&procs->slots[slot].proc.nheld), 0);
	assert_int_equal(atomic_load(&procs->slots[slot].proc.acquiring), 0);
	assert_int_equal(atomic_load(&procs->slots[slot].proc.wait_next),
			 PROC_NONE);
	assert_int_equal(proc_claim(procs, NPROCS, 777, &slot), -EAGAIN);

	/* A scribbled pid is still "taken"; only our count bounds the scan. */
	procs->count = 1000000;
	assert_int_equal(proc_claim(procs, NPROCS, 777, &slot), -EAGAIN);

	assert_int_equal(proc_claim(procs, NPROCS, 0, &slot), -EINVAL);
	assert_int_equal(proc_claim(procs, NPROCS, -5, &slot), -EINVAL);

	assert_non_null(proc_get(procs, NPROCS, 0));
	assert_ptr_equal(proc_get(procs, NPROCS, NPROCS - 1),
			 &procs->slots[NPROCS - 1].proc);
	assert_null(proc_get(procs, NPROCS, NPROCS));
	assert_null(proc_get(procs, NPROCS, PROC_NONE));
	assert_null(proc_get(procs, 4, 4));  /* the caller's count rules */
	proc_release(procs, NPROCS, NPROCS); /* out of range: ignored */
	proc_release(procs, NPROCS, PROC_NONE);
}

/* ---- single process ------------------------------------------------ */

static void test_exclusive_excludes(void **state)
{
	struct fixture *f = *state;
	struct lwlock_owner b = owner(f);
	struct lwlock *l = lock_n(f, 0);
	struct proc *pa = proc_get(f->procs, NPROCS, f->me.self);

	assert_int_equal(state_of(f, 0), LW_FLAG_RELEASE_OK);
	lwlock_acquire(&f->me, l, LW_EXCLUSIVE);
	assert_true(lwlock_held_by_me(&f->me, l));
	assert_false(lwlock_held_by_me(&b, l));
	assert_int_equal(state_of(f, 0) & LW_LOCK_MASK, LW_VAL_EXCLUSIVE);

	/* The slot records the lock by offset and mode; nothing in flight. */
	assert_int_equal(atomic_load(&pa->nheld), 1);
	assert_int_equal(pa->held[0].lock_offset,
			 (uint32_t)((unsigned char *)l - f->base));
	assert_int_equal(pa->held[0].mode, LW_EXCLUSIVE);
	assert_int_equal(atomic_load(&pa->acquiring), 0);

	assert_false(lwlock_conditional_acquire(&b, l, LW_EXCLUSIVE));
	assert_false(lwlock_conditional_acquire(&b, l, LW_SHARED));
	/* Failing left nothing behind: not held, not counted, no waiters. */
	assert_false(lwlock_held_by_me(&b, l));
	assert_int_equal(state_of(f, 0), LW_FLAG_RELEASE_OK | LW_VAL_EXCLUSIVE);
	assert_int_equal(atomic_load(&l->acquisitions), 1);
	assert_int_equal(atomic_load(&l->wait_head), PROC_NONE);

	/* Another lock is independent. */
	assert_true(lwlock_conditional_acquire(&b, lock_n(f, 1), LW_EXCLUSIVE));
	lwlock_release(&b, lock_n(f, 1));

	lwlock_release(&f->me, l);
	assert_false(lwlock_held_by_me(&f->me, l));
	assert_int_equal(atomic_load(&pa->nheld), 0);
	assert_int_equal(state_of(f, 0), LW_FLAG_RELEASE_OK);

	assert_true(lwlock_conditional_acquire(&b, l, LW_EXCLUSIVE));
	assert_true(lwlock_held_by_me(&b, l));
	lwlock_release(&b, l);
	assert_int_equal(atomic_load(&l->acquisitions), 2);
	assert_int_equal(atomic_load(&l->contended), 0);
}

static void test_shared_holders(void **state)
{
	struct fixture *f = *state;
	struct lwlock_owner b = owner(f);
	struct lwlock_owner c = owner(f);
	struct lwlock_owner x = owner(f);
	struct lwlock *l = lock_n(f, 2);

	lwlock_acquire(&f->me, l, LW_SHARED);
	lwlock_acquire(&b, l, LW_SHARED); /* must not block */
	assert_true(lwlock_conditional_acquire(&c, l, LW_SHARED));
	assert_int_equal(state_of(f, 2) & LW_LOCK_MASK, 3 * LW_VAL_SHARED);
	assert_true(lwlock_held_by_me(&f->me, l));
	assert_true(lwlock_held_by_me(&b, l));
	assert_true(lwlock_held_by_me(&c, l));
	assert_false(lwlock_conditional_acquire(&x, l, LW_EXCLUSIVE));

	/* Releasing one of several shared holders leaves the others. */
	lwlock_release(&b, l);
	assert_false(lwlock_held_by_me(&b, l));
	assert_true(lwlock_held_by_me(&c, l));
	assert_int_equal(state_of(f, 2) & LW_LOCK_MASK, 2 * LW_VAL_SHARED);
	assert_false(lwlock_conditional_acquire(&x, l, LW_EXCLUSIVE));
	lwlock_release(&f->me, l);
	assert_false(lwlock_conditional_acquire(&x, l, LW_EXCLUSIVE));
	lwlock_release(&c, l);
	assert_int_equal(state_of(f, 2), LW_FLAG_RELEASE_OK);
	assert_true(lwlock_conditional_acquire(&x, l, LW_EXCLUSIVE));
	assert_false(lwlock_conditional_acquire(&b, l, LW_SHARED));
	lwlock_release(&x, l);
	assert_int_equal(atomic_load(&l->acquisitions), 4);
}

static void test_held_list(void **state)
{
	struct fixture *f = *state;
	struct proc *p = proc_get(f->procs, NPROCS, f->me.self);
	uint32_t off[NLOCKS];

	for (int i = 0; i < NLOCKS; i++) {
		off[i] = (uint32_t)((unsigned char *)lock_n(f, i) - f->base);
		lwlock_acquire(&f->me, lock_n(f, i),
			       i == 1 ? LW_SHARED : LW_EXCLUSIVE);
	}
	assert_int_equal(atomic_load(&p->nheld), NLOCKS);

	/* Out of order: the middle one goes, the others keep their modes. */
	lwlock_release(&f->me, lock_n(f, 1));
	assert_int_equal(atomic_load(&p->nheld), 2);
	assert_int_equal(p->held[0].lock_offset, off[0]);
	assert_int_equal(p->held[0].mode, LW_EXCLUSIVE);
	assert_int_equal(p->held[1].lock_offset, off[2]);
	assert_int_equal(p->held[1].mode, LW_EXCLUSIVE);
	assert_false(lwlock_held_by_me(&f->me, lock_n(f, 1)));
	assert_int_equal(state_of(f, 1), LW_FLAG_RELEASE_OK);

	lwlock_release(&f->me, lock_n(f, 0));
	assert_int_equal(p->held[0].lock_offset, off[2]);
	lwlock_release(&f->me, lock_n(f, 2));
	assert_int_equal(atomic_load(&p->nheld), 0);
	assert_int_equal(atomic_load(&p->acquiring), 0);
	for (int i = 0; i < NLOCKS; i++)
		assert_int_equal(state_of(f, i), LW_FLAG_RELEASE_OK);
}

static void test_counters(void **state)
{
	struct fixture *f = *state;
	struct lwlock *l = lock_n(f, 1);

	for (int i = 0; i < 100; i++) {
		lwlock_acquire(&f->me, l, (i & 1) ? LW_SHARED : LW_EXCLUSIVE);
		lwlock_release(&f->me, l);
	}
	for (int i = 0; i < 10; i++) {
		assert_true(lwlock_conditional_acquire(&f->me, l, LW_SHARED));
		lwlock_release(&f->me, l);
	}
	assert_int_equal(atomic_load(&l->acquisitions), 110);
	/* Nobody else wanted it: nobody slept or waited. */
	assert_int_equal(atomic_load(&l->contended), 0);
	assert_int_equal(atomic_load(&l->wait_ns), 0);
	assert_int_equal(atomic_load(&lock_n(f, 0)->acquisitions), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_proc_slots),	   TEST(test_exclusive_excludes),
		TEST(test_shared_holders), TEST(test_held_list),
		TEST(test_counters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
