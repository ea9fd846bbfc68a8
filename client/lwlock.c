/*
 * lwlock.c - lightweight shared/exclusive locks across processes
 *
 * This is PostgreSQL's LWLock (src/backend/storage/lmgr/lwlock.c) moved to
 * processes that share only a memory segment.  A lock is one 32-bit atomic
 * state word: the exclusive bit, a count of shared holders, HAS_WAITERS,
 * RELEASE_OK, and LOCKED, a spinlock bit guarding the lock's wait list.
 * Taking a free lock is one compare-and-swap; nothing else is touched.
 *
 * A process that must wait puts its proc slot on the lock's wait list (a
 * singly linked list of proc numbers through proc->wait_next), sets its
 * futex word proc->waiting to 1 and sleeps on it with FUTEX_WAIT.  The
 * futex is not FUTEX_PRIVATE_FLAG: the word is in a shared mapping and the
 * waker is another process, which the kernel can only match by the
 * physical page.  Releasing the last hold on a lock that has waiters wakes
 * every shared waiter, or the one exclusive waiter at the front.
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
 *   - the wait list's owner.  The list bit alone does not say who holds
 *     it, so a process first takes lock->waitlist_owner (its proc number
 *     + 1) by compare-and-swap and only then the bit, and gives them back
 *     in the other order.  A dead process whose number is in the owner
 *     word may have left the bit set and the list half changed; one whose
 *     number is not there holds neither.
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
 * Every proc number read from shared memory (list heads, tails and links)
 * is bounds-checked, and list walks stop after nprocs steps: the control
 * part is writable by client programs, and garbage there must cost at most
 * a lost waiter, never a crash or an endless loop in a server process.
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
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

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

/* Backoff for the wait-list bit: pauses double up to this, then yield. */
#define WAITLIST_MAX_PAUSES 1024u

_Static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t),
	       "the futex word must be a plain 32-bit word");

/* cpu_relax - tell the CPU we are spinning (frees the sibling hyperthread). */
static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* lw_proc - slot n of the owner's array, or NULL if n is garbage. */
static inline struct proc *
lw_proc(const struct lwlock_owner *me, uint32_t n)
{
	return proc_get(me->procs, me->nprocs, n);
}

/* lw_self - the owner's own slot; the owner struct is private, so trusted. */
static inline struct proc *
lw_self(const struct lwlock_owner *me)
{
	struct proc *self = lw_proc(me, me->self);

	assert(self != NULL);
	return self;
}

/*
 * lwlock_offset - the lock's offset in the control part, or 0 if the lock
 * does not lie inside it.  Offset 0 is the control part's header, so it
 * never names a lock and can mean "none" in proc->acquiring.
 */
static uint32_t
lwlock_offset(const struct lwlock_owner *me, const struct lwlock *lock)
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
static inline uint32_t
held_count(const struct proc *self)
{
	uint32_t n = atomic_load_explicit(&self->nheld, memory_order_relaxed);

	return n > PROC_MAX_HELD ? PROC_MAX_HELD : n;
}

/* held_find - index of offset in self's held[], or -1. */
static int
held_find(const struct proc *self, uint32_t offset)
{
	/* Backwards: locks are usually released in reverse order of taking. */
	for (int i = (int)held_count(self) - 1; i >= 0; i--)
		if (self->held[i].lock_offset == offset)
			return i;
	return -1;
}

static inline void
futex_wait(_Atomic uint32_t *word, uint32_t expected)
{
	/*
	 * EAGAIN (the word already changed) and EINTR (a signal) both send the
	 * caller back to re-check the word, which is all we would do anyway.
	 */
	(void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, NULL,
		      NULL, 0);
}

static inline void
futex_wake(_Atomic uint32_t *word)
{
	/* Only the slot's owner ever sleeps on its own word: wake one. */
	(void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/*
 * sleep_until_woken - return once our waiting word is 0.  Whoever removed
 * us from the wait list stores the 0 and then wakes the futex.
 */
static void
sleep_until_woken(struct proc *self)
{
	/*
	 * Acquire pairs with the release store of 0 in lwlock_wakeup: what the
	 * waker did to our slot (wait_next) is visible once we see the 0.
	 */
	while (atomic_load_explicit(&self->waiting, memory_order_acquire) == 1)
		futex_wait(&self->waiting, 1);
}

/* backoff - one round of spinning: pauses double, then yield the CPU. */
static inline void
backoff(unsigned int *pauses)
{
	if (*pauses <= WAITLIST_MAX_PAUSES) {
		for (unsigned int i = 0; i < *pauses; i++)
			cpu_relax();
		*pauses *= 2;
	} else {
		/* The holder may be descheduled: let it run. */
		sched_yield();
	}
}

/*
 * waitlist_lock - take the wait list: first its owner word, then the
 * LOCKED bit of the state word, spinning with backoff; return the state as
 * of taking the bit.  Held only for a few list operations, never across a
 * sleep.
 *
 * NOTE: the owner word exists for crash recovery only (see the top of the
 * file).  Storing the owner after taking the bit was rejected: a process
 * killed between the two would leave a bit nobody can be shown to hold.
 * Taking the owner first costs one more atomic operation, on the slow path
 * only, and the same cache line.
 */
static uint32_t
waitlist_lock(const struct lwlock_owner *me, struct lwlock *lock)
{
	unsigned int pauses = 1;
	uint32_t mine = me->self + 1;

	for (;;) {
		uint32_t expected = 0;

		/*
		 * Acquire pairs with the release store of 0 in
		 * waitlist_release_owner: the previous owner's list changes
		 * are visible to us.
		 */
		if (atomic_compare_exchange_weak_explicit(
			    &lock->waitlist_owner, &expected, mine,
			    memory_order_acquire, memory_order_relaxed))
			break;
		while (atomic_load_explicit(&lock->waitlist_owner,
					    memory_order_relaxed) != 0)
			backoff(&pauses);
	}
	pauses = 1;
	for (;;) {
		/*
		 * Acquire pairs with the release in waitlist_unlock and in
		 * lwlock_wakeup's final CAS: the previous holder's list
		 * changes are visible to us.
		 */
		uint32_t old = atomic_fetch_or_explicit(&lock->state, LW_FLAG_LOCKED,
							memory_order_acquire);

		if ((old & LW_FLAG_LOCKED) == 0)
			return old | LW_FLAG_LOCKED;
		/*
		 * Only the owner sets the bit, so it is normally clear here;
		 * it is set only by someone who scribbled on the word (or a
		 * test that holds it by hand).  Spin on plain loads so waiting
		 * costs no cache-line writes.
		 */
		while (atomic_load_explicit(&lock->state, memory_order_relaxed) &
		       LW_FLAG_LOCKED)
			backoff(&pauses);
	}
}

/* waitlist_release_owner - give the owner word back, after the bit. */
static inline void
waitlist_release_owner(struct lwlock *lock)
{
	/* Release pairs with the acquire CAS in waitlist_lock. */
	atomic_store_explicit(&lock->waitlist_owner, 0, memory_order_release);
}

static inline void
waitlist_unlock(struct lwlock *lock)
{
	/* Release pairs with the acquire fetch_or in waitlist_lock. */
	atomic_fetch_and_explicit(&lock->state, ~LW_FLAG_LOCKED,
				  memory_order_release);
	waitlist_release_owner(lock);
}

/* lwlock_free_for - could a holder in mode be added to state? */
static inline bool
lwlock_free_for(uint32_t state, enum lwlock_mode mode)
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
static bool
lwlock_attempt(struct lwlock *lock, enum lwlock_mode mode)
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
static bool
lwlock_spin(struct lwlock *lock, enum lwlock_mode mode)
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
 * lwlock_queue_self - append our slot to the lock's wait list and mark us
 * waiting.  The caller must attempt the lock once more afterwards (see the
 * race described at the top of the file).
 */
static void
lwlock_queue_self(const struct lwlock_owner *me, struct lwlock *lock,
		  enum lwlock_mode mode)
{
	struct proc *self = lw_self(me);
	struct proc *tailp;
	uint32_t tail;

	/* Queued twice would put a cycle in a list: PostgreSQL PANICs here. */
	assert(atomic_load_explicit(&self->waiting, memory_order_relaxed) == 0);

	waitlist_lock(me, lock);
	/*
	 * Relaxed is enough for ordering the list (the wait-list bit does
	 * that); what matters is that this is a read-modify-write of the
	 * state word, so it is ordered against the releaser's fetch_sub.
	 */
	atomic_fetch_or_explicit(&lock->state, LW_FLAG_HAS_WAITERS,
				 memory_order_relaxed);

	/* Relaxed: published to wakers by waitlist_unlock's release. */
	atomic_store_explicit(&self->wait_next, PROC_NONE, memory_order_relaxed);
	atomic_store_explicit(&self->wait_mode, (uint32_t)mode,
			      memory_order_relaxed);
	atomic_store_explicit(&self->waiting, 1, memory_order_relaxed);

	tail = atomic_load_explicit(&lock->wait_tail, memory_order_relaxed);
	tailp = lw_proc(me, tail);
	if (tailp == NULL || tail == me->self) {
		/*
		 * Empty list, or a garbage tail: start a fresh list.  Waiters
		 * on a scribbled list are lost to it, but we never follow it.
		 */
		atomic_store_explicit(&lock->wait_head, me->self,
				      memory_order_relaxed);
	} else {
		atomic_store_explicit(&tailp->wait_next, me->self,
				      memory_order_relaxed);
	}
	atomic_store_explicit(&lock->wait_tail, me->self, memory_order_relaxed);
	waitlist_unlock(lock);
}

/*
 * waitlist_unlink - take the entry after prevp (prev's slot; NULL when it
 * is the head) out of the lock's list, next being what followed it.
 * Caller holds the wait-list bit.
 */
static void
waitlist_unlink(struct lwlock *lock, struct proc *prevp, uint32_t prev,
		uint32_t next)
{
	if (prevp == NULL)
		atomic_store_explicit(&lock->wait_head, next, memory_order_relaxed);
	else
		atomic_store_explicit(&prevp->wait_next, next, memory_order_relaxed);
	if (next == PROC_NONE)
		atomic_store_explicit(&lock->wait_tail, prev, memory_order_relaxed);
}

/*
 * lwlock_dequeue_self - undo lwlock_queue_self after our second attempt got
 * the lock.  On return we are on no wait list and our waiting word is 0.
 *
 * Between our queueing and now, a releaser may already have taken us off
 * the list and be about to wake us.  Then we must wait for that wakeup
 * (it is near: the waker has left the wait list and is storing our 0), or
 * its store would land later, in the middle of our next wait for a lock.
 *
 * NOTE: PostgreSQL learns "already dequeued" from a third value of
 * lwWaiting (PENDING_WAKEUP) and unlinks in O(1) from a doubly linked
 * list.  We look for ourselves in the list instead.  The slot layout
 * (proc.h, shared with other code) has one link, and a futex word that
 * means "1 while queued"; growing either was rejected because this path
 * runs only when the lock came free in the instant between our queueing
 * and our retry, and then a walk of at most nprocs slots under the list
 * bit is cheap.
 */
static void
lwlock_dequeue_self(const struct lwlock_owner *me, struct lwlock *lock,
		    uint32_t offset)
{
	struct proc *self = lw_self(me);
	struct proc *prevp = NULL;
	uint32_t prev = PROC_NONE;
	uint32_t cur;
	bool found = false;

	waitlist_lock(me, lock);
	cur = atomic_load_explicit(&lock->wait_head, memory_order_relaxed);
	for (uint32_t steps = 0; steps < me->nprocs; steps++) {
		struct proc *p = lw_proc(me, cur);
		uint32_t next;

		if (p == NULL)
			break;
		next = atomic_load_explicit(&p->wait_next, memory_order_relaxed);
		if (lw_proc(me, next) == NULL)
			next = PROC_NONE;
		if (cur == me->self) {
			waitlist_unlink(lock, prevp, prev, next);
			found = true;
			break;
		}
		prev = cur;
		prevp = p;
		cur = next;
	}
	if (atomic_load_explicit(&lock->wait_head, memory_order_relaxed) ==
	    PROC_NONE) {
		/* Relaxed: still under the wait-list bit, released below. */
		atomic_fetch_and_explicit(&lock->state, ~LW_FLAG_HAS_WAITERS,
					  memory_order_relaxed);
	}
	waitlist_unlock(lock);

	if (found) {
		/* Nobody else can reach our slot now: plain bookkeeping. */
		atomic_store_explicit(&self->wait_next, PROC_NONE,
				      memory_order_relaxed);
		atomic_store_explicit(&self->waiting, 0, memory_order_relaxed);
		return;
	}
	/*
	 * Somebody dequeued us and cleared RELEASE_OK on the strength of
	 * waking us; we will not retry, so set it back, as PostgreSQL does,
	 * or the next release would wake nobody.  Relaxed: an RMW of the
	 * state word, ordered against releasers by the word itself.
	 */
	atomic_fetch_or_explicit(&lock->state, LW_FLAG_RELEASE_OK,
				 memory_order_relaxed);
	/*
	 * Tell crash recovery that we sleep holding the lock: if our waker
	 * dies, it must wake us, and count our hold.  Relaxed, then a
	 * compiler barrier, as begin_transition: read after the waker's death.
	 */
	atomic_store_explicit(&self->wait_sleep, offset | 1u,
			      memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	sleep_until_woken(self);
	atomic_store_explicit(&self->wait_sleep, 0, memory_order_relaxed);
}

/*
 * lwlock_wake_chain - wake every proc on a private wake list threaded
 * through wait_next (unlinked from the lock's list already), clearing the
 * links.  The walk stops after nprocs steps or at a bad number.  Shared by
 * lwlock_wakeup and by recovery (lwlock_recover.c).
 */
void
lwlock_wake_chain(const struct lwlock_owner *me, uint32_t head)
{
	uint32_t cur = head;

	for (uint32_t steps = 0; cur != PROC_NONE && steps < me->nprocs; steps++) {
		struct proc *p = lw_proc(me, cur);
		uint32_t next;

		if (p == NULL)
			break;
		/* Read the link before the 0: after it the slot is not ours. */
		next = atomic_load_explicit(&p->wait_next, memory_order_relaxed);
		atomic_store_explicit(&p->wait_next, PROC_NONE,
				      memory_order_relaxed);
		/*
		 * Release pairs with the acquire load in sleep_until_woken.
		 * The futex word stays mapped even if the waiter exits before
		 * our wake: it is shared memory, so the late wake is harmless.
		 */
		atomic_store_explicit(&p->waiting, 0, memory_order_release);
		futex_wake(&p->waiting);
		cur = next;
	}
}

/* lwlock_wake_proc - wake p's futex without touching its waiting word. */
void
lwlock_wake_proc(struct proc *p)
{
	futex_wake(&p->waiting);
}

/*
 * lwlock_wakeup - take waiters off the list and wake them: every shared
 * waiter (skipping exclusive ones behind the first shared), or the one
 * exclusive waiter at the front.  Called by a release that left the lock
 * free with HAS_WAITERS and RELEASE_OK set.
 */
static void
lwlock_wakeup(const struct lwlock_owner *me, struct lwlock *lock)
{
	bool woke_somebody = false;
	uint32_t wake_head = PROC_NONE;
	struct proc *wake_tailp = NULL;
	struct proc *prevp = NULL;
	uint32_t prev = PROC_NONE;
	uint32_t cur;
	uint32_t steps;
	uint32_t old;
	bool garbage = false;

	old = waitlist_lock(me, lock);
	cur = atomic_load_explicit(&lock->wait_head, memory_order_relaxed);
	for (steps = 0; cur != PROC_NONE && steps < me->nprocs; steps++) {
		struct proc *p = lw_proc(me, cur);
		uint32_t next;
		uint32_t mode;

		if (p == NULL) {
			garbage = true;
			break;
		}
		next = atomic_load_explicit(&p->wait_next, memory_order_relaxed);
		if (lw_proc(me, next) == NULL)
			next = PROC_NONE;
		mode = atomic_load_explicit(&p->wait_mode, memory_order_relaxed);

		if (woke_somebody && mode != LW_SHARED) {
			/* Shared waiters are being let in: this one stays. */
			prev = cur;
			prevp = p;
			cur = next;
			continue;
		}

		/* Unlink cur; the list keeps its order otherwise. */
		waitlist_unlink(lock, prevp, prev, next);

		/*
		 * Reuse wait_next for our private wake list, as PostgreSQL
		 * reuses lwWaitLink: cur is on no lock's list now, and it
		 * will not touch wait_next until it sees waiting == 0.
		 */
		atomic_store_explicit(&p->wait_next, PROC_NONE,
				      memory_order_relaxed);
		if (wake_tailp == NULL)
			wake_head = cur;
		else
			atomic_store_explicit(&wake_tailp->wait_next, cur,
					      memory_order_relaxed);
		wake_tailp = p;
		woke_somebody = true;

		/* An exclusive waiter (or garbage mode) goes in alone. */
		if (mode != LW_SHARED)
			break;
		cur = next;
	}
	if (garbage || (cur != PROC_NONE && steps >= me->nprocs)) {
		/*
		 * A head that names no proc, or a list longer than there are
		 * procs (a scribbled cycle): end the list where it went bad.
		 */
		if (prevp == NULL)
			atomic_store_explicit(&lock->wait_head, PROC_NONE,
					      memory_order_relaxed);
		else
			atomic_store_explicit(&prevp->wait_next, PROC_NONE,
					      memory_order_relaxed);
		atomic_store_explicit(&lock->wait_tail, prev,
				      memory_order_relaxed);
	}

	/*
	 * Update the flags and drop the wait-list bit in one CAS.  Whoever we
	 * woke will retry and set RELEASE_OK again; until then a release
	 * wakes nobody more, which keeps a stream of releases from waking
	 * every waiter while the first woken has not even run yet.
	 */
	{
		bool empty = atomic_load_explicit(&lock->wait_head,
						  memory_order_relaxed) ==
			     PROC_NONE;
		uint32_t desired;

		/* old is the state waitlist_lock saw; the CAS refreshes it. */
		do {
			desired = old & ~LW_FLAG_LOCKED;
			if (woke_somebody)
				desired &= ~LW_FLAG_RELEASE_OK;
			else
				desired |= LW_FLAG_RELEASE_OK;
			if (empty)
				desired &= ~LW_FLAG_HAS_WAITERS;
			/* Release pairs with the acquire in waitlist_lock. */
		} while (!atomic_compare_exchange_weak_explicit(
			&lock->state, &old, desired, memory_order_release,
			memory_order_relaxed));
		waitlist_release_owner(lock);
	}

	lwlock_wake_chain(me, wake_head);
}

/*
 * held_record - add (offset, mode) to our held[] list.  The entry is
 * written before nheld covers it, so a reader never sees a half entry.
 */
static void
held_record(struct proc *self, uint32_t offset, enum lwlock_mode mode)
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
static inline void
begin_transition(struct proc *self, uint32_t offset, enum lwlock_mode mode)
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
static inline void
end_transition(struct proc *self)
{
	/* Compiler barrier: pairs as in begin_transition, other direction. */
	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&self->acquiring, 0, memory_order_release);
}

/*
 * lwlock_init - make lock free, with no waiters and zero counters.  For
 * the creator, before other processes can reach the lock.
 */
void
lwlock_init(struct lwlock *lock)
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
void
lwlock_acquire(const struct lwlock_owner *me, struct lwlock *lock,
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
		 * certainly not in the state word.  Compiler barrier as in
		 * begin_transition; cleared before the retry below.
		 */
		atomic_store_explicit(&self->wait_sleep, offset,
				      memory_order_relaxed);
		atomic_signal_fence(memory_order_seq_cst);
		sleep_until_woken(self);
		atomic_store_explicit(&self->wait_sleep, 0, memory_order_relaxed);
		atomic_signal_fence(memory_order_seq_cst);
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
bool
lwlock_conditional_acquire(const struct lwlock_owner *me, struct lwlock *lock,
			   enum lwlock_mode mode)
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
void
lwlock_release(const struct lwlock_owner *me, struct lwlock *lock)
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
	if ((now & (LW_FLAG_HAS_WAITERS | LW_FLAG_RELEASE_OK |
		    LW_FLAG_RECOVERING)) ==
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
bool
lwlock_held_by_me(const struct lwlock_owner *me, const struct lwlock *lock)
{
	const struct proc *self = lw_proc(me, me->self);
	uint32_t offset = lwlock_offset(me, lock);

	if (self == NULL || offset == 0)
		return false;
	return held_find(self, offset) >= 0;
}
