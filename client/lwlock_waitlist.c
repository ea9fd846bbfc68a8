/*
 * lwlock_waitlist.c - a lock's wait list, the futex sleep, and the wakeup
 *
 * The half of lwlock.c that runs only when a lock is contended.  A process
 * that must wait puts its proc slot on the lock's wait list (a singly
 * linked list of proc numbers through proc->wait_next), sets its futex
 * word proc->waiting to 1 and sleeps on it with FUTEX_WAIT.  The futex is
 * not FUTEX_PRIVATE_FLAG: the word is in a shared mapping and the waker is
 * another process, which the kernel can only match by the physical page.
 * Releasing the last hold on a lock that has waiters wakes every shared
 * waiter, or the one exclusive waiter at the front.
 *
 * The list is guarded by LOCKED, a spinlock bit in the lock's state word.
 * The bit alone does not say who holds it, and crash recovery
 * (lwlock_recover.c) must know: so a process first takes
 * lock->waitlist_owner (its proc number + 1) by compare-and-swap and only
 * then the bit, and gives them back in the other order.  A dead process
 * whose number is in the owner word may have left the bit set and the list
 * half changed; one whose number is not there holds neither.
 *
 * Every proc number read from shared memory (list heads, tails and links)
 * is bounds-checked, and list walks stop after nprocs steps: the control
 * part is writable by client programs, and garbage there must cost at most
 * a lost waiter, never a crash or an endless loop in a server process.
 *
 * Interface routines (lwlock_waitlist.h, for lwlock.c and lwlock_recover.c):
 *   lwlock_queue_self     put our slot on the lock's wait list
 *   lwlock_dequeue_self   take it off again after our retry got the lock
 *   lwlock_sleep_marked   sleep until woken, telling recovery how
 *   lwlock_wakeup         wake the waiters a free lock lets in
 *   lwlock_wake_list_append  add an unlinked waiter to a private wake list
 *   lwlock_wake_chain     wake everybody on a private wake list
 *   lwlock_wake_proc      wake one proc's futex, its waiting word untouched
 */
#include "lwlock_waitlist.h"

#include <linux/futex.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Backoff for the wait-list bit: pauses double up to this, then yield. */
#define WAITLIST_MAX_PAUSES 1024u

_Static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t),
	       "the futex word must be a plain 32-bit word");

static inline void futex_wait(_Atomic uint32_t *word, uint32_t expected)
{
	/*
	 * EAGAIN (the word already changed) and EINTR (a signal) both send the
	 * caller back to re-check the word, which is all we would do anyway.
	 */
	(void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, NULL,
		      NULL, 0);
}

static inline void futex_wake(_Atomic uint32_t *word)
{
	/* Only the slot's owner ever sleeps on its own word: wake one. */
	(void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/*
 * sleep_until_woken - return once our waiting word is 0.  Whoever removed
 * us from the wait list stores the 0 and then wakes the futex.
 */
static void sleep_until_woken(struct proc *self)
{
	/*
	 * Acquire pairs with the release store of 0 in lwlock_wake_chain:
	 * what the waker did to our slot (wait_next) is visible once we see
	 * the 0.
	 */
	while (atomic_load_explicit(&self->waiting, memory_order_acquire) == 1)
		futex_wait(&self->waiting, 1);
}

/*
 * lwlock_sleep_marked - sleep until woken, with wait_sleep = marker
 * meanwhile: the lock's offset for "asleep in the wait loop, my hold is not
 * in the state word", offset | 1 for "asleep in dequeue, my hold is in it",
 * which recovery cannot otherwise tell apart.
 */
void lwlock_sleep_marked(struct proc *self, uint32_t marker)
{
	/*
	 * Relaxed, then a compiler barrier, as begin_transition in lwlock.c:
	 * the reader is the supervisor after our death.
	 */
	atomic_store_explicit(&self->wait_sleep, marker, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	sleep_until_woken(self);
	atomic_store_explicit(&self->wait_sleep, 0, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
}

/* backoff - one round of spinning: pauses double, then yield the CPU. */
static inline void backoff(unsigned int *pauses)
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
static uint32_t waitlist_lock(const struct lwlock_owner *me, struct lwlock *lock)
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
		if (atomic_compare_exchange_weak_explicit(&lock->waitlist_owner,
							  &expected, mine,
							  memory_order_acquire,
							  memory_order_relaxed))
			break;
		while (atomic_load_explicit(&lock->waitlist_owner,
					    memory_order_relaxed) != 0)
			backoff(&pauses);
	}
	pauses = 1;
	for (;;) {
		/*
		 * Acquire pairs with the release in waitlist_unlock and in
		 * waitlist_unlock_after_wakeup's CAS: the previous holder's
		 * list changes are visible to us.
		 */
		uint32_t old = atomic_fetch_or_explicit(&lock->state,
							LW_FLAG_LOCKED,
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
static inline void waitlist_release_owner(struct lwlock *lock)
{
	/* Release pairs with the acquire CAS in waitlist_lock. */
	atomic_store_explicit(&lock->waitlist_owner, 0, memory_order_release);
}

static inline void waitlist_unlock(struct lwlock *lock)
{
	/* Release pairs with the acquire fetch_or in waitlist_lock. */
	atomic_fetch_and_explicit(&lock->state, ~LW_FLAG_LOCKED,
				  memory_order_release);
	waitlist_release_owner(lock);
}

/*
 * lwlock_queue_self - append our slot to the lock's wait list and mark us
 * waiting.  The caller must attempt the lock once more afterwards (see the
 * race described at the top of lwlock.c).
 */
void lwlock_queue_self(const struct lwlock_owner *me, struct lwlock *lock,
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
static void waitlist_unlink(struct lwlock *lock, struct proc *prevp,
			    uint32_t prev, uint32_t next)
{
	if (prevp == NULL)
		atomic_store_explicit(&lock->wait_head, next,
				      memory_order_relaxed);
	else
		atomic_store_explicit(&prevp->wait_next, next,
				      memory_order_relaxed);
	if (next == PROC_NONE)
		atomic_store_explicit(&lock->wait_tail, prev,
				      memory_order_relaxed);
}

/*
 * waitlist_remove_self - unlink our slot from the lock's list if it is
 * there, clearing HAS_WAITERS if that empties it.  Returns whether we were
 * found.  Caller holds the wait-list bit.
 */
static bool waitlist_remove_self(const struct lwlock_owner *me,
				 struct lwlock *lock)
{
	struct proc *prevp = NULL;
	uint32_t prev = PROC_NONE;
	uint32_t cur;
	bool found = false;

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
		/* Relaxed: still under the wait-list bit, released after. */
		atomic_fetch_and_explicit(&lock->state, ~LW_FLAG_HAS_WAITERS,
					  memory_order_relaxed);
	}
	return found;
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
void lwlock_dequeue_self(const struct lwlock_owner *me, struct lwlock *lock,
			 uint32_t offset)
{
	struct proc *self = lw_self(me);
	bool found;

	waitlist_lock(me, lock);
	found = waitlist_remove_self(me, lock);
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
	 * We sleep holding the lock: if our waker dies, recovery must wake
	 * us, and count our hold.
	 */
	lwlock_sleep_marked(self, offset | 1u);
}

/*
 * lwlock_wake_chain - wake every proc on a private wake list threaded
 * through wait_next (unlinked from the lock's list already), clearing the
 * links.  The walk stops after nprocs steps or at a bad number.  Shared by
 * lwlock_wakeup and by recovery (lwlock_recover.c).
 */
void lwlock_wake_chain(const struct lwlock_owner *me, uint32_t head)
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
void lwlock_wake_proc(struct proc *p)
{
	futex_wake(&p->waiting);
}

/*
 * lwlock_wake_list_append - put n (slot p), unlinked from the lock's list
 * already, at the end of wl.  Shared by lwlock_wakeup and by recovery.
 */
void lwlock_wake_list_append(struct lwlock_wake_list *wl, uint32_t n,
			     struct proc *p)
{
	/*
	 * Reuse wait_next for our private wake list, as PostgreSQL reuses
	 * lwWaitLink: n is on no lock's list now, and it will not touch
	 * wait_next until it sees waiting == 0.
	 */
	atomic_store_explicit(&p->wait_next, PROC_NONE, memory_order_relaxed);
	if (wl->tailp == NULL)
		wl->head = n;
	else
		atomic_store_explicit(&wl->tailp->wait_next, n,
				      memory_order_relaxed);
	wl->tailp = p;
}

/*
 * waitlist_cut - end the lock's list after prevp (prev's slot; NULL: make
 * it empty), where a walk found it bad.  Caller holds the wait-list bit.
 */
static void waitlist_cut(struct lwlock *lock, struct proc *prevp, uint32_t prev)
{
	if (prevp == NULL)
		atomic_store_explicit(&lock->wait_head, PROC_NONE,
				      memory_order_relaxed);
	else
		atomic_store_explicit(&prevp->wait_next, PROC_NONE,
				      memory_order_relaxed);
	atomic_store_explicit(&lock->wait_tail, prev, memory_order_relaxed);
}

/*
 * waitlist_take_wakeable - move the waiters a free lock lets in from the
 * lock's list to wl: every shared waiter (skipping exclusive ones behind
 * the first shared), or the one exclusive waiter at the front.  The list
 * keeps its order otherwise.  Caller holds the wait-list bit.
 */
static void waitlist_take_wakeable(const struct lwlock_owner *me,
				   struct lwlock *lock,
				   struct lwlock_wake_list *wl)
{
	struct proc *prevp = NULL;
	uint32_t prev = PROC_NONE;
	uint32_t cur;
	uint32_t steps;
	bool garbage = false;

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

		if (wl->tailp != NULL && mode != LW_SHARED) {
			/* Shared waiters are being let in: this one stays. */
			prev = cur;
			prevp = p;
			cur = next;
			continue;
		}
		waitlist_unlink(lock, prevp, prev, next);
		lwlock_wake_list_append(wl, cur, p);
		/* An exclusive waiter (or garbage mode) goes in alone. */
		if (mode != LW_SHARED)
			break;
		cur = next;
	}
	/*
	 * A head that names no proc, or a list longer than there are procs
	 * (a scribbled cycle): end the list where it went bad.
	 */
	if (garbage || (cur != PROC_NONE && steps >= me->nprocs))
		waitlist_cut(lock, prevp, prev);
}

/*
 * waitlist_unlock_after_wakeup - update the flags and drop the wait-list
 * bit in one CAS, old being the state waitlist_lock returned.  Whoever we
 * woke will retry and set RELEASE_OK again; until then a release wakes
 * nobody more, which keeps a stream of releases from waking every waiter
 * while the first woken has not even run yet.
 */
static void waitlist_unlock_after_wakeup(struct lwlock *lock, uint32_t old,
					 bool woke_somebody)
{
	bool empty = atomic_load_explicit(&lock->wait_head,
					  memory_order_relaxed) == PROC_NONE;
	uint32_t desired;

	/* The CAS refreshes old whenever another bit moved meanwhile. */
	do {
		desired = old & ~LW_FLAG_LOCKED;
		if (woke_somebody)
			desired &= ~LW_FLAG_RELEASE_OK;
		else
			desired |= LW_FLAG_RELEASE_OK;
		if (empty)
			desired &= ~LW_FLAG_HAS_WAITERS;
		/* Release pairs with the acquire in waitlist_lock. */
	} while (!atomic_compare_exchange_weak_explicit(&lock->state, &old,
							desired,
							memory_order_release,
							memory_order_relaxed));
	waitlist_release_owner(lock);
}

/*
 * lwlock_wakeup - take waiters off the list and wake them: every shared
 * waiter (skipping exclusive ones behind the first shared), or the one
 * exclusive waiter at the front.  Called by a release that left the lock
 * free with HAS_WAITERS and RELEASE_OK set.
 */
void lwlock_wakeup(const struct lwlock_owner *me, struct lwlock *lock)
{
	struct lwlock_wake_list wl = { .head = PROC_NONE, .tailp = NULL };
	uint32_t old = waitlist_lock(me, lock);

	waitlist_take_wakeable(me, lock, &wl);
	waitlist_unlock_after_wakeup(lock, old, wl.tailp != NULL);
	/* Outside the list bit: the woken are on no list any more. */
	lwlock_wake_chain(me, wl.head);
}
