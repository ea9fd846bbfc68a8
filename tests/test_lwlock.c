/*
 * test_lwlock.c - tests of client/lwlock.c and client/proc.c
 *
 * Each test maps its own fake control part with mmap(MAP_SHARED |
 * MAP_ANONYMOUS): a 128-byte header (offset 0 never names a lock), a few
 * padded LWLocks, some bookkeeping the tests share between processes, and
 * a proc array.  Single-process tests use several proc slots as several
 * owners; multi-process tests fork real processes that each claim their
 * own slot, as workers and client programs do.
 *
 * Children never call cmocka: they check with CHILD_CHECK, which prints and
 * _exits non-zero.  They die with the test process (PR_SET_PDEATHSIG) and
 * on an alarm of their own.  The parent waits for them with a deadline and
 * polling waitpid(WNOHANG), so a lost wakeup fails the test instead of
 * hanging it; teardown kills and reaps every child whether the test passed
 * or not.
 */
#include <errno.h>
#include <setjmp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
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

#include "lwlock.h"
#include "proc.h"

#define NLOCKS 3
#define NPROCS 16
#define MAXKIDS 8
#define CHILD_ALARM_S 60  /* a child never outlives a hung test by more */
#define DEADLINE_MS 20000 /* what a phase may take before we call it lost */
#define HAMMER_KIDS 6
#define HAMMER_ITERS 20000
#define NO_SLOT UINT32_MAX

/* What the processes of one test share, besides locks and procs. */
struct shared {
	unsigned char header[128]; /* offset 0: never a lock */
	union lwlock_padded locks[NLOCKS];
	_Atomic int shared_holders[NLOCKS];
	_Atomic int excl_holders[NLOCKS];
	uint64_t count_a[NLOCKS];            /* protected by locks[i] */
	uint64_t count_b[NLOCKS];            /* kept equal to count_a */
	_Atomic uint64_t excl_iters[NLOCKS]; /* exclusive sections done */
	_Atomic uint64_t total_acq;          /* acquisitions the kids made */
	_Atomic int in_shared;               /* kids holding shared now */
	_Atomic int got[MAXKIDS];            /* kid i holds its lock */
	_Atomic int go[MAXKIDS];             /* parent lets kid i go on */
	_Atomic uint32_t slot_of[MAXKIDS];
};

struct fixture {
	unsigned char *base;
	size_t size;
	struct shared *sh;
	struct proc_array *procs;
	struct lwlock_owner me; /* the test process, slot claimed in setup */
	pid_t kids[MAXKIDS];
	int nkids;
};

typedef int (*child_fn)(struct fixture *f, int idx,
			const struct lwlock_owner *me);

#define CHILD_CHECK(cond)                                                  \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "child %d: line %d: check failed: %s\n", \
				(int)getpid(), __LINE__, #cond);           \
			_exit(1);                                          \
		}                                                          \
	} while (0)

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000u,
			       .tv_nsec = (long)(ms % 1000u) * 1000000L };

	nanosleep(&ts, NULL);
}

static size_t
round_up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	size_t procs_off = round_up(sizeof(struct shared), 128);
	uint32_t slot;

	if (f == NULL)
		return -1;
	f->size = procs_off + proc_array_size(NPROCS);
	f->base = mmap(NULL, f->size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (f->base == MAP_FAILED) {
		free(f);
		return -1;
	}
	f->sh = (struct shared *)f->base;
	f->procs = (struct proc_array *)(f->base + procs_off);
	proc_array_init(f->procs, NPROCS);
	for (int i = 0; i < NLOCKS; i++)
		lwlock_init(&f->sh->locks[i].lock);
	for (int i = 0; i < MAXKIDS; i++)
		atomic_init(&f->sh->slot_of[i], NO_SLOT);
	if (proc_claim(f->procs, NPROCS, getpid(), &slot) != 0)
		return -1;
	f->me = (struct lwlock_owner){ .ctl_base = f->base,
				       .ctl_size = f->size,
				       .procs = f->procs,
				       .nprocs = NPROCS,
				       .self = slot };
	*state = f;
	return 0;
}

/* teardown - kill and reap every child still there, then unmap. */
static int
teardown(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < f->nkids; i++) {
		if (f->kids[i] > 0) {
			kill(f->kids[i], SIGKILL);
			waitpid(f->kids[i], NULL, 0);
		}
	}
	munmap(f->base, f->size);
	free(f);
	return 0;
}

/* owner - another owner in this process, on its own claimed slot. */
static struct lwlock_owner
owner(struct fixture *f)
{
	struct lwlock_owner o = f->me;

	assert_int_equal(proc_claim(f->procs, NPROCS, getpid(), &o.self), 0);
	return o;
}

static struct lwlock *
lock_n(struct fixture *f, int i)
{
	return &f->sh->locks[i].lock;
}

static uint32_t
state_of(struct fixture *f, int i)
{
	return atomic_load(&lock_n(f, i)->state);
}

/* spawn - fork a child that claims a slot and runs fn; records its pid. */
static void
spawn(struct fixture *f, int idx, child_fn fn)
{
	pid_t pid;

	assert_true(f->nkids < MAXKIDS);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct lwlock_owner me = f->me;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(CHILD_ALARM_S);
		CHILD_CHECK(proc_claim(f->procs, NPROCS, getpid(), &me.self) == 0);
		atomic_store(&f->sh->slot_of[idx], me.self);
		_exit(fn(f, idx, &me));
	}
	f->kids[f->nkids++] = pid;
}

/*
 * reap_all - wait for every child, at most DEADLINE_MS.  Returns the number
 * of children that failed; on timeout kills them all and fails the test.
 */
static int
reap_all(struct fixture *f)
{
	uint64_t deadline = now_ms() + DEADLINE_MS;
	int failed = 0;
	int left = 0;

	for (int i = 0; i < f->nkids; i++)
		left += f->kids[i] > 0;
	while (left > 0) {
		for (int i = 0; i < f->nkids; i++) {
			int status;

			if (f->kids[i] <= 0 ||
			    waitpid(f->kids[i], &status, WNOHANG) != f->kids[i])
				continue;
			f->kids[i] = 0;
			left--;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				fprintf(stderr, "child %d failed (status 0x%x)\n",
					i, status);
				failed++;
			}
		}
		if (left > 0 && now_ms() > deadline) {
			for (int i = 0; i < f->nkids; i++)
				if (f->kids[i] > 0)
					kill(f->kids[i], SIGKILL);
			fail_msg("%d children still running after %d ms: "
				 "lost wakeup or deadlock", left, DEADLINE_MS);
		}
		if (left > 0)
			sleep_ms(2);
	}
	return failed;
}

/* kid_proc - kid idx's proc slot, waiting until it has claimed one. */
static struct proc *
kid_proc(struct fixture *f, int idx)
{
	uint64_t deadline = now_ms() + DEADLINE_MS;
	uint32_t slot;

	while ((slot = atomic_load(&f->sh->slot_of[idx])) == NO_SLOT) {
		if (now_ms() > deadline)
			fail_msg("child %d never claimed a slot", idx);
		sleep_ms(1);
	}
	return proc_get(f->procs, NPROCS, slot);
}

/* wait_queued - wait until kid idx sleeps in a lock's wait list. */
static void
wait_queued(struct fixture *f, int idx)
{
	struct proc *p = kid_proc(f, idx);
	uint64_t deadline = now_ms() + DEADLINE_MS;

	assert_non_null(p);
	while (atomic_load(&p->waiting) != 1) {
		if (now_ms() > deadline)
			fail_msg("child %d never queued for the lock", idx);
		sleep_ms(1);
	}
}

/* wait_flag - wait until *flag reaches at least want; false on timeout. */
static bool
wait_flag(_Atomic int *flag, int want)
{
	uint64_t deadline = now_ms() + DEADLINE_MS;

	while (atomic_load(flag) < want) {
		if (now_ms() > deadline)
			return false;
		sleep_ms(1);
	}
	return true;
}

/* ---- proc slots ---------------------------------------------------- */

static void
test_proc_slots(void **state)
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
	assert_null(proc_get(procs, 4, 4)); /* the caller's count rules */
	proc_release(procs, NPROCS, NPROCS);  /* out of range: ignored */
	proc_release(procs, NPROCS, PROC_NONE);
}

/* ---- single process ------------------------------------------------ */

static void
test_exclusive_excludes(void **state)
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

static void
test_shared_holders(void **state)
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

static void
test_held_list(void **state)
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

static void
test_counters(void **state)
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

/* ---- several processes --------------------------------------------- */

/* Child: take lock 0 shared, hold it until every sibling holds it too. */
static int
shared_waiter_child(struct fixture *f, int idx, const struct lwlock_owner *me)
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

static void
test_shared_waiters_woken_together(void **state)
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
static int
mode_child(struct fixture *f, int idx, const struct lwlock_owner *me)
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

static void
test_exclusive_waiter_behind_shared(void **state)
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
static void
test_mixed_queue_order(void **state)
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
static int
late_release_child(struct fixture *f, int idx, const struct lwlock_owner *me)
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
static void
test_release_before_queueing(void **state)
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
static void
enter(struct fixture *f, int li, enum lwlock_mode mode, bool dawdle)
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

static void
leave(struct fixture *f, int li, enum lwlock_mode mode)
{
	if (mode == LW_EXCLUSIVE)
		atomic_fetch_sub(&f->sh->excl_holders[li], 1);
	else
		atomic_fetch_sub(&f->sh->shared_holders[li], 1);
}

static void
take(struct fixture *f, const struct lwlock_owner *me, int li,
     enum lwlock_mode mode, bool conditional_first)
{
	struct lwlock *l = lock_n(f, li);

	if (!conditional_first || !lwlock_conditional_acquire(me, l, mode))
		lwlock_acquire(me, l, mode);
	CHILD_CHECK(lwlock_held_by_me(me, l));
	CHILD_CHECK(atomic_load(&proc_get(f->procs, NPROCS, me->self)
					   ->acquiring) == 0);
}

/* Child: mixed modes over three locks, sometimes two at once. */
static int
hammer_child(struct fixture *f, int idx, const struct lwlock_owner *me)
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
		CHILD_CHECK(atomic_load(&proc_get(f->procs, NPROCS, me->self)
						   ->nheld) == 0);
	}
	atomic_fetch_add(&f->sh->total_acq, acq);
	proc_release(f->procs, NPROCS, me->self);
	return 0;
}

static void
test_hammer(void **state)
{
	struct fixture *f = *state;
	uint64_t acquisitions = 0;

	for (int i = 0; i < HAMMER_KIDS; i++)
		spawn(f, i, hammer_child);
	assert_int_equal(reap_all(f), 0);

	for (int i = 0; i < NLOCKS; i++) {
		struct lwlock *l = lock_n(f, i);

		/* Exclusive holders really were alone: no increment lost. */
		assert_int_equal(f->sh->count_a[i], atomic_load(&f->sh->excl_iters[i]));
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
			assert_int_equal(
				atomic_load(&f->procs->slots[s].proc.pid), 0);
}

/*
 * Child: a client program scribbled on the wait list (a head past the
 * array, then a cycle).  Release must come back and the lock still work.
 */
static int
garbage_child(struct fixture *f, int idx, const struct lwlock_owner *me)
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
	memset(proc_get(f->procs, NPROCS, me->self)->held, 0,
	       sizeof(p5->held));
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

static void
test_scribbled_wait_list(void **state)
{
	struct fixture *f = *state;

	spawn(f, 0, garbage_child);
	assert_int_equal(reap_all(f), 0);
	assert_int_equal(state_of(f, 1) & LW_LOCK_MASK, 0);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_proc_slots),
		TEST(test_exclusive_excludes),
		TEST(test_shared_holders),
		TEST(test_held_list),
		TEST(test_counters),
		TEST(test_shared_waiters_woken_together),
		TEST(test_exclusive_waiter_behind_shared),
		TEST(test_mixed_queue_order),
		TEST(test_release_before_queueing),
		TEST(test_hammer),
		TEST(test_scribbled_wait_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
