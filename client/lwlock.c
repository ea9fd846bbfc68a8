/*
 * lwlock.c - lightweight shared/exclusive locks across processes
 *
 * This is PostgreSQL's LWLock (src/backend/storage/lmgr/lwlock.c) moved to
 * processes that share only a memory segment.  A lock is one 32-bit atomic
 * state word: the exclusive bit, a count of shared holders, HAS_WAITERS,
 * RELEASE_OK, and LOCKED, a spinlock bit guarding the lock's wait list.
 * Taking a free lock is one compare-and-swap; nothing else is touched.
 *
 * A process that must wait queues its proc slot on the lock's wait list and
 * sleeps on a futex in its slot; the wait list, the sleep and the wakeup
 * are lwlock_waitlist.c's.  This file decides when to spin, queue, retry
 * and wake.
 *
 * The race every sleeping lock must close is "the holder releases between
 * my failed attempt and my going to sleep".  As in PostgreSQL we queue
 * first and then attempt once more: the queueing sets HAS_WAITERS with an
 * atomic read-modify-write of the state word, and the release is another
 * such operation on the same word, so one of the two comes first in the
 * word's modification order.  If the release came first, our second
 * attempt sees the lock free; if our queueing came first, the releaser sees
 * HAS_WAITERS and wakes us.  Either way nobody sleeps on a free lock.
 *
 * Crash recovery (lwlock_recover.c) must know, for a dead process, which locks
 * it held.  The proc slot says so at every instant, in three states:
 *   - the lock is in held[0..nheld), whatever acquiring says: the
 *     process's hold (in the recorded mode) is in the state word;
 *   - the lock is named by acquiring (with wait_mode) but not in held[]: the
 *     process was between deciding and recording; its hold may or may not be
 *     in the state word, and it may be on the lock's wait list;
 *   - neither: the process has nothing in the lock.
 * Acquire goes neither -> acquiring -> held -> held only; release goes
 * held -> held and acquiring -> acquiring -> neither, and the state word
 * changes only inside the "acquiring" step.  atomic_signal_fence keeps the
 * compiler from moving the bookkeeping across the state-word update.  A
 * compiler barrier is enough: the reader is the supervisor after
 * waitpid(), and a killed process stops at an instruction boundary, so
 * what it wrote is exactly what it executed.
 *
 * What crash recovery (lwlock_recover.c) needs besides those three states:
 *   - the wait list's owner, lock->waitlist_owner (lwlock_waitlist.c).
 *   - release keeps acquiring set until its wakeup is done, so that a
 *     process that dies with a private list of waiters it unlinked but has
 *     not woken yet is known to have been releasing that lock.
 *   - proc->wait_sleep says "asleep in the wait loop, my hold is not in
 *     the state word" (the lock's offset) or "asleep in dequeue, my hold
 *     is in it" (offset | 1), which recovery cannot otherwise tell apart.
 *   - LW_FLAG_RECOVERING makes every attempt fail, so newcomers queue and
 *     sleep, and keeps releases from waking anybody, while recovery counts
 *     the holders; it wakes every waiter when it is done.
 * None of this touches the fast path: a free lock is still one CAS.
 *
 * Interface routines:
 *   lwlock_init                 initialise a lock in shared memory
 *   lwlock_acquire              acquire in a mode, sleeping if need be
 *   lwlock_conditional_acquire  acquire if free now, else return false
 *   lwlock_release              release a lock this process holds
 *   lwlock_held_by_me           is it in my proc slot's held list
 */
#include "lwlock.h"

#include <assert.h>

#include "clock.h"
#include "lwlock_waitlist.h"

/*
 * How often acquire looks at a busy lock before queueing.
 *
 * NOTE: PostgreSQL does not spin at all before queueing; we spin a little
 * because our critical sections (one bucket probe) are far shorter than a
 * futex sleep and wake.  A long spin was rejected: on a machine with few
 * cores the holder is often not running at all, and then every pause only
 * delays it further.
 */
#define LWLOCK_SPINS 64

/*
 * lwlock_offset - the lock's offset in the control part, or 0 if the lock
 * does not lie inside it.  Offset 0 is the control part's header, so it
 * never names a lock and can mean "none" in proc->acquiring.
 */
static uint32_t lwlock_offset(const struct lwlock_owner *me,
			      const struct lwlock *lock)
{
	uintptr_t base = (uintptr_t)me->ctl_base;
	uintptr_t addr = (uintptr_t)lock;

	if (me->ctl_base == NULL || me->ctl_size < sizeof(struct lwlock) ||
	    addr <= base || addr - base > me->ctl_size - sizeof(struct lwlock) ||
	    addr - base > UINT32_MAX)
		return 0;
	return (uint32_t)(addr - base);
}

/* held_count - own nheld, clamped: our slot is client-writable too. */
static inline uint32_t held_count(const struct proc *self)
{
	uint32_t n = atomic_load_explicit(&self->nheld, memory_order_relaxed);

	return n > PROC_MAX_HELD ? PROC_MAX_HELD : n;
}

/* held_find - index of offset in self's held[], or -1. */
static int held_find(const struct proc *self, uint32_t offset)
{
	/* Backwards: locks are usually released in reverse order of taking. */
	for (int i = (int)held_count(self) - 1; i >= 0; i--)
		if (self->held[i].lock_offset == offset)
			return i;
	return -1;
}

/* lwlock_free_for - could a holder in mode be added to state? */
static inline bool lwlock_free_for(uint32_t state, enum lwlock_mode mode)
{
	/* Recovery is counting the holders: newcomers queue (see top). */
	if (state & LW_FLAG_RECOVERING)
		return false;
	if (mode == LW_EXCLUSIVE)
		return (state & LW_LOCK_MASK) == 0;
	return (state & LW_VAL_EXCLUSIVE) == 0;
}

/*
 * lwlock_attempt - try once to add our hold to the state word.
 * Returns true if we must wait (the lock is taken in a conflicting mode),
 * false if we now hold it.
 */
static bool lwlock_attempt(struct lwlock *lock, enum lwlock_mode mode)
{
	uint32_t old = atomic_load_explicit(&lock->state, memory_order_relaxed);

	for (;;) {
		if (!lwlock_free_for(old, mode))
			return true;
		/*
		 * Acquire pairs with the release fetch_sub in lwlock_release:
		 * what the previous holder wrote under the lock is visible to
		 * us.  The CAS fails, and we re-judge, whenever any bit moved
		 * (another holder, a flag, the wait-list bit).  Release too
		 * (free on x86): a crash recoverer that reads our hold in the
		 * word also sees our acquiring and cleared wait_sleep, which
		 * we stored before (lwlock_recover.c, step (c)).
		 */
		if (atomic_compare_exchange_weak_explicit(
			    &lock->state, &old,
			    old + (mode == LW_EXCLUSIVE ? LW_VAL_EXCLUSIVE
							: LW_VAL_SHARED),
			    memory_order_acq_rel, memory_order_relaxed))
			return false;
	}
}

/*
 * lwlock_spin - look at a busy lock a bounded number of times, attempting
 * whenever it looks free.  Returns true if it got the lock.
 */
static bool lwlock_spin(struct lwlock *lock, enum lwlock_mode mode)
{
	for (int i = 0; i < LWLOCK_SPINS; i++) {
		uint32_t state = atomic_load_explicit(&lock->state,
						      memory_order_relaxed);

		if (lwlock_free_for(state, mode) && !lwlock_attempt(lock, mode))
			return true;
		cpu_relax();
	}
	return false;
}

/*
 * held_record - add (offset, mode) to our held[] list.  The entry is
 * written before nheld covers it, so a reader never sees a half entry.
 */
static void held_record(struct proc *self, uint32_t offset, enum lwlock_mode mode)
{
	uint32_t n = held_count(self);

	/* Every operation takes one lock; more than a few is a bug. */
	assert(n < PROC_MAX_HELD);
	if (n >= PROC_MAX_HELD)
		return; /* the lock still works; recovery cannot see it */
	self->held[n].lock_offset = offset;
	self->held[n].mode = (uint32_t)mode;
	/* Release pairs with the supervisor's reading after our death. */
	atomic_store_explicit(&self->nheld, n + 1, memory_order_release);
}

/* begin_transition - name the lock and mode we are about to change. */
static inline void begin_transition(struct proc *self, uint32_t offset,
				    enum lwlock_mode mode)
{
	atomic_store_explicit(&self->wait_mode, (uint32_t)mode,
			      memory_order_relaxed);
	atomic_store_explicit(&self->acquiring, offset, memory_order_relaxed);
	/*
	 * Compiler barrier: pairs with the supervisor's reading after our
	 * death.  The marker must be in memory before the state word moves.
	 */
	atomic_signal_fence(memory_order_seq_cst);
}

/* end_transition - the state word and held[] agree again. */
static inline void end_transition(struct proc *self)
{
	/* Compiler barrier: pairs as in begin_transition, other direction. */
	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&self->acquiring, 0, memory_order_release);
}

/*
 * lwlock_init - make lock free, with no waiters and zero counters.  For
 * the creator, before other processes can reach the lock.
 */
void lwlock_init(struct lwlock *lock)
{
	atomic_init(&lock->state, LW_FLAG_RELEASE_OK);
	atomic_init(&lock->wait_head, PROC_NONE);
	atomic_init(&lock->wait_tail, PROC_NONE);
	atomic_init(&lock->waitlist_owner, 0);
	atomic_init(&lock->acquisitions, 0);
	atomic_init(&lock->contended, 0);
	atomic_init(&lock->wait_ns, 0);
}

/*
 * lwlock_acquire - acquire a lightweight lock in the given mode.
 *
 * If the lock is not available, sleep until it is.  On return the lock is
 * held and recorded in our proc slot's held[] list.  The caller must not
 * already hold it (that would deadlock, as in PostgreSQL).  A woken waiter
 * retries from the start (see the NOTE at lwlock_release).
 */
void lwlock_acquire(const struct lwlock_owner *me, struct lwlock *lock,
		    enum lwlock_mode mode)
{
	struct proc *self = lw_self(me);
	uint32_t offset = lwlock_offset(me, lock);
	uint64_t wait_start = 0;
	bool slept = false;

	assert(mode == LW_SHARED || mode == LW_EXCLUSIVE);
	assert(offset != 0);
	assert(!lwlock_held_by_me(me, lock));

	begin_transition(self, offset, mode);

	if (!lwlock_attempt(lock, mode) || lwlock_spin(lock, mode))
		goto acquired;

	wait_start = monotonic_ns();
	for (;;) {
		if (!lwlock_attempt(lock, mode))
			break;
		lwlock_queue_self(me, lock, mode);
		if (!lwlock_attempt(lock, mode)) {
			lwlock_dequeue_self(me, lock, offset);
			break;
		}
		/*
		 * For crash recovery: from here until we retry, our hold is
		 * certainly not in the state word.
		 */
		lwlock_sleep_marked(self, offset);
		slept = true;
		/*
		 * We were woken and will retry: allow releases to wake
		 * waiters again (lwlock_wakeup cleared the flag for us).
		 * Relaxed: an RMW of the state word, ordered by the word.
		 */
		atomic_fetch_or_explicit(&lock->state, LW_FLAG_RELEASE_OK,
					 memory_order_relaxed);
	}

acquired:
	held_record(self, offset, mode);
	end_transition(self);

	/* Statistics: relaxed, readers take a snapshot that may lag. */
	atomic_fetch_add_explicit(&lock->acquisitions, 1, memory_order_relaxed);
	if (slept)
		atomic_fetch_add_explicit(&lock->contended, 1,
					  memory_order_relaxed);
	if (wait_start != 0)
		atomic_fetch_add_explicit(&lock->wait_ns,
					  monotonic_ns() - wait_start,
					  memory_order_relaxed);
}

/*
 * lwlock_conditional_acquire - acquire the lock if it is free now.
 * Returns true if it was acquired (and recorded, as lwlock_acquire), or
 * false with no side-effects on the lock: no queueing, no spinning.
 */
bool lwlock_conditional_acquire(const struct lwlock_owner *me,
				struct lwlock *lock, enum lwlock_mode mode)
{
	struct proc *self = lw_self(me);
	uint32_t offset = lwlock_offset(me, lock);

	assert(mode == LW_SHARED || mode == LW_EXCLUSIVE);
	assert(offset != 0);

	begin_transition(self, offset, mode);
	if (lwlock_attempt(lock, mode)) {
		end_transition(self);
		return false;
	}
	held_record(self, offset, mode);
	end_transition(self);
	/* Statistics: relaxed, as in lwlock_acquire. */
	atomic_fetch_add_explicit(&lock->acquisitions, 1, memory_order_relaxed);
	return true;
}

/*
 * lwlock_release - release a lock held by this process.  If that leaves it
 * free and processes wait for it, wake them (see lwlock_wakeup).
 *
 * NOTE: release does not hand the lock over to the waiters it wakes; they
 * retry, and a process that arrived meanwhile may beat them.  That is
 * unfair, but handing over would cost a process switch per acquisition
 * under contention: nobody could take the lock until the woken process got
 * a CPU, which on a busy machine is a whole scheduling slice.  PostgreSQL
 * chose the same.
 */
void lwlock_release(const struct lwlock_owner *me, struct lwlock *lock)
{
	struct proc *self = lw_self(me);
	uint32_t offset = lwlock_offset(me, lock);
	int idx = held_find(self, offset);
	enum lwlock_mode mode;
	uint32_t val;
	uint32_t old;
	uint32_t now;

	assert(idx >= 0 && "lwlock_release: lock not held by this process");
	if (idx >= 0) {
		mode = self->held[idx].mode == LW_EXCLUSIVE ? LW_EXCLUSIVE
							    : LW_SHARED;
	} else {
		/*
		 * Not recorded (held[] was full, or the caller is wrong).  If
		 * we hold it at all, the exclusive bit says in which mode.
		 */
		mode = (atomic_load_explicit(&lock->state, memory_order_relaxed) &
			LW_VAL_EXCLUSIVE)
			       ? LW_EXCLUSIVE
			       : LW_SHARED;
	}

	/* Leave held[] first: see the three states at the top of the file. */
	begin_transition(self, offset, mode);
	if (idx >= 0) {
		uint32_t n = held_count(self);

		for (uint32_t i = (uint32_t)idx; i + 1 < n; i++)
			self->held[i] = self->held[i + 1];
		/*
		 * Release: a live recoverer that reads the smaller nheld
		 * (acquire) also sees acquiring set, so it never takes us for
		 * a process with nothing in the lock (lwlock_recover.c).
		 */
		atomic_store_explicit(&self->nheld, n - 1, memory_order_release);
		atomic_signal_fence(memory_order_seq_cst);
	}

	val = mode == LW_EXCLUSIVE ? LW_VAL_EXCLUSIVE : LW_VAL_SHARED;
	/*
	 * Release pairs with the acquire CAS in lwlock_attempt of the next
	 * holder: our writes under the lock happen before its reads.
	 */
	old = atomic_fetch_sub_explicit(&lock->state, val, memory_order_release);

	/* During recovery nobody is woken: the recoverer wakes them all. */
	now = old - val;
	if ((now &
	     (LW_FLAG_HAS_WAITERS | LW_FLAG_RELEASE_OK | LW_FLAG_RECOVERING)) ==
		    (LW_FLAG_HAS_WAITERS | LW_FLAG_RELEASE_OK) &&
	    (now & LW_LOCK_MASK) == 0)
		lwlock_wakeup(me, lock);
	/* Only now: a death inside wakeup must be seen as "releasing". */
	end_transition(self);
}

/*
 * lwlock_held_by_me - true if our proc slot records lock as held, in any
 * mode.  For assertions; other processes' holds are not visible here.
 */
bool lwlock_held_by_me(const struct lwlock_owner *me, const struct lwlock *lock)
{
	const struct proc *self = lw_proc(me, me->self);
	uint32_t offset = lwlock_offset(me, lock);

	if (self == NULL || offset == 0)
		return false;
	return held_find(self, offset) >= 0;
}
