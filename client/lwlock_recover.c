/*
 * lwlock_recover.c - make an LWLock whole after processes died in it
 *
 * A process can die (SIGKILL, a crash) at any instruction of lwlock.c or
 * lwlock_waitlist.c.  What it leaves behind in a lock L, and how we find
 * out from its proc slot (see the top of lwlock.c for the record it keeps):
 *   1. a hold in the state word: L in held[], or L in acquiring with the
 *      hold already (or still) in the word;
 *   2. the wait list's owner word and LOCKED bit, with the list maybe half
 *      changed: the owner word holds its number + 1;
 *   3. its slot on L's wait list: L in acquiring;
 *   4. waiters it had unlinked to wake but had not woken (a release dies
 *      inside lwlock_wakeup): L in acquiring.  Such a waiter sleeps for
 *      ever, and with it RELEASE_OK stays clear, so later releases wake
 *      nobody either.
 * The one recoverer is the supervisor: it is single-threaded, so two
 * recoveries never race; it learns of a death from SIGCHLD (workers) or
 * from finding a client's PID gone, marks the dead slots, and calls
 * lwlock_recover for each lock any dead slot names.  Every other process
 * keeps running and may be acquiring and releasing L meanwhile; the steps:
 *
 *   (a) Block: set LW_FLAG_RECOVERING.  From then on every attempt fails
 *       (lwlock_free_for), so newcomers queue and sleep, and no release
 *       wakes anybody.  Safe against a concurrent acquirer: its CAS is on
 *       the whole word, so one that read the word before the flag fails and
 *       re-reads it.  Holders are unaffected and may still release.
 *   (b) Free the wait list if a dead process owns it: take the owner word
 *       over by CAS from dead to us, rebuild the list from its head keeping
 *       only live slots queued for L (a half-done append or unlink leaves a
 *       prefix of the list reachable and at worst a stale tail; slots left
 *       unreachable are found again in (e)), then give the list back.
 *       Safe: a dead owner changes nothing any more, and live processes
 *       only spin on the owner word until we give it back.
 *   (c) Drain: wait until no live slot is in the ambiguous window for L,
 *       i.e. every live slot that names L in acquiring without holding it
 *       is asleep in the wait loop (wait_sleep == L: its hold is certainly
 *       not in the word) or asleep in dequeue holding it (wait_sleep ==
 *       L | 1: certainly in the word).  Then count the live holds, with a
 *       read of the state word before and after: since no hold can be added
 *       while (a) lasts, an unchanged hold count means no release happened
 *       in between, so count and word describe the same instant.  We read a
 *       slot's nheld (acquire) before its acquiring: a releaser stores
 *       acquiring, then the smaller nheld (release), then subtracts; so a
 *       slot seen without L in held[] but not yet subtracted shows L in
 *       acquiring, and we wait.  Likewise an acquirer's CAS is a release
 *       (lwlock_attempt): once our acquire load of the word shows its hold,
 *       its acquiring and cleared wait_sleep are visible to us; only RMWs
 *       ever change the word, so the release sequence reaches any later
 *       value we read.  The dead share is then the word's holds
 *       minus the live ones: exclusive if the word says exclusive and no
 *       live slot holds it so; the rest in shared holds.  Bounded: a live
 *       slot that does not leave the window within timeout_ms (stopped, or
 *       dead and not yet known to be) makes us return -EAGAIN with (a) still
 *       in force; the caller retries, marking new deaths.
 *   (d) Repair the data: if a dead process held L exclusive, nobody else
 *       holds it (exclusive excludes all) and nobody can take it (a), so
 *       the caller's repair function has the data to itself, as if it held
 *       the lock exclusive.  A dead process that held L shared or was only
 *       acquiring it cannot have changed the data: nothing to repair.
 *   (e) Finish under the wait list: empty the list, and collect every live
 *       slot acquiring L with its waiting word at 1 (queued, or unlinked by
 *       a dead releaser and never woken); subtract the dead share from the
 *       word, clear RECOVERING and LOCKED and HAS_WAITERS and set
 *       RELEASE_OK in one CAS; give the list back; wake everyone collected,
 *       as lwlock_wakeup does (link first, then the 0, then FUTEX_WAKE).
 *       Safe against wakers: no live process is inside lwlock_wakeup for L
 *       (one that started before (a) was in the window and (c) waited for
 *       it; one after (a) saw RECOVERING and did not wake), so a slot with
 *       waiting == 1 off the list can only belong to a dead waker.  Every
 *       live slot acquiring L is also sent a FUTEX_WAKE: a dead waker may
 *       have stored the 0 and died before its wake.  Spurious wakes are
 *       harmless (the sleeper re-checks its word), and so is waking every
 *       waiter rather than the front one: they retry, as after any release.
 *
 * NOTE: a simpler scheme, "store the holder count recomputed from the live
 * slots", was rejected: a live process in the middle of acquiring or
 * releasing may or may not have its hold in the word, and no reading of
 * other processes' memory can tell which without the drain in (c).
 * Dropping the whole table on any death was rejected too: a reader that
 * dies (client programs read directly) never damages a partition.
 *
 * Interface routines:
 *   lwlock_proc_locks  the locks a (dead) proc slot may have touched
 *   lwlock_recover     repair one lock for a set of dead slots
 */
#include "lwlock_recover.h"

#include <errno.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "lwlock_waitlist.h"

/* How long the recoverer sleeps between looks at a lock it waits for. */
#define RECOVER_NAP_NS 100000L

/* wait_for_others - let the processes we wait for run; a yield first, then sleeps. */
static void wait_for_others(unsigned int *round)
{
	struct timespec ts = { 0, RECOVER_NAP_NS };

	if ((*round)++ < 16)
		sched_yield();
	else
		nanosleep(&ts, NULL);
}

/* lock_offset - the lock's offset in me's control part, 0 if outside. */
static uint32_t lock_offset(const struct lwlock_owner *me,
			    const struct lwlock *lock)
{
	uintptr_t base = (uintptr_t)me->ctl_base;
	uintptr_t addr = (uintptr_t)lock;

	if (me->ctl_base == NULL || me->ctl_size < sizeof(struct lwlock) ||
	    addr <= base || addr - base > me->ctl_size - sizeof(struct lwlock) ||
	    addr - base > UINT32_MAX || (addr - base) % sizeof(uint32_t) != 0)
		return 0;
	return (uint32_t)(addr - base);
}

/* is_live - slot i belongs to a process other than us not marked dead. */
static bool is_live(const struct lwlock_owner *me, const bool *dead, uint32_t i,
		    const struct proc *p)
{
	return p != NULL && i != me->self && !dead[i] &&
	       atomic_load_explicit(&p->pid, memory_order_relaxed) > 0;
}

/* held_mode_of - the mode p's held[] records offset in, 0 if not there. */
static uint32_t held_mode_of(const struct proc *p, uint32_t offset)
{
	/* Acquire pairs with the release store of nheld in lwlock_release. */
	uint32_t n = atomic_load_explicit(&p->nheld, memory_order_acquire);

	if (n > PROC_MAX_HELD)
		n = PROC_MAX_HELD;
	for (uint32_t i = 0; i < n; i++)
		if (p->held[i].lock_offset == offset)
			return p->held[i].mode == LW_EXCLUSIVE ? LW_EXCLUSIVE
							       : LW_SHARED;
	return 0;
}

/*
 * lwlock_proc_locks - held[] and acquiring of p, distinct, held[] first,
 * in the same order on every call for a slot that no longer changes (the
 * supervisor remembers which it has repaired by position).
 */
uint32_t lwlock_proc_locks(const struct proc *p, uint32_t *offsets, uint32_t max)
{
	uint32_t n = atomic_load_explicit(&p->nheld, memory_order_acquire);
	uint32_t count = 0;
	uint32_t cand[PROC_MAX_HELD + 1];
	uint32_t ncand = 0;

	if (n > PROC_MAX_HELD)
		n = PROC_MAX_HELD;
	for (uint32_t i = 0; i < n; i++)
		cand[ncand++] = p->held[i].lock_offset;
	cand[ncand++] = atomic_load_explicit(&p->acquiring, memory_order_acquire);
	for (uint32_t i = 0; i < ncand && count < max; i++) {
		bool seen = cand[i] == 0;

		for (uint32_t j = 0; j < count && !seen; j++)
			seen = offsets[j] == cand[i];
		if (!seen)
			offsets[count++] = cand[i];
	}
	return count;
}

/*
 * take_dead_waitlist - step (b): if a dead slot owns the wait list, take
 * it over, rebuild the list of live queued slots, and give it back.
 * Returns true if it did.
 */
static bool take_dead_waitlist(const struct lwlock_owner *me, struct lwlock *lock,
			       const bool *dead, uint32_t offset)
{
	uint32_t owner = atomic_load_explicit(&lock->waitlist_owner,
					      memory_order_relaxed);
	uint32_t head = PROC_NONE, tail = PROC_NONE;
	struct proc *tailp = NULL;
	uint32_t cur;

	if (owner == 0 || owner - 1 >= me->nprocs || !dead[owner - 1])
		return false;
	/* Acquire pairs with the dead owner's last stores to the list. */
	if (!atomic_compare_exchange_strong_explicit(&lock->waitlist_owner,
						     &owner, me->self + 1,
						     memory_order_acquire,
						     memory_order_relaxed))
		return false;

	cur = atomic_load_explicit(&lock->wait_head, memory_order_relaxed);
	for (uint32_t steps = 0; steps < me->nprocs; steps++) {
		struct proc *p = proc_get(me->procs, me->nprocs, cur);
		uint32_t next;

		if (p == NULL)
			break;
		next = atomic_load_explicit(&p->wait_next, memory_order_relaxed);
		if (is_live(me, dead, cur, p) &&
		    atomic_load_explicit(&p->acquiring, memory_order_relaxed) ==
			    offset &&
		    atomic_load_explicit(&p->waiting, memory_order_relaxed) == 1) {
			atomic_store_explicit(&p->wait_next, PROC_NONE,
					      memory_order_relaxed);
			if (tailp == NULL)
				head = cur;
			else
				atomic_store_explicit(&tailp->wait_next, cur,
						      memory_order_relaxed);
			tailp = p;
			tail = cur;
		}
		cur = next;
	}
	atomic_store_explicit(&lock->wait_head, head, memory_order_relaxed);
	atomic_store_explicit(&lock->wait_tail, tail, memory_order_relaxed);
	/*
	 * HAS_WAITERS as the list now is; LOCKED off if the dead owner had
	 * set it.  Release pairs with the next owner's acquire CAS.
	 */
	if (head == PROC_NONE)
		atomic_fetch_and_explicit(&lock->state,
					  ~(LW_FLAG_LOCKED | LW_FLAG_HAS_WAITERS),
					  memory_order_release);
	else
		atomic_fetch_and_explicit(&lock->state, ~LW_FLAG_LOCKED,
					  memory_order_release);
	atomic_store_explicit(&lock->waitlist_owner, 0, memory_order_release);
	return true;
}

/*
 * count_live_holds - step (c)'s look at every live slot.  Adds the live
 * exclusive and shared holds of lock; returns false if some live slot is
 * in the ambiguous window, so the count cannot be trusted yet.
 */
static bool count_live_holds(const struct lwlock_owner *me, const bool *dead,
			     uint32_t offset, uint32_t *excl, uint32_t *shared)
{
	*excl = 0;
	*shared = 0;
	for (uint32_t i = 0; i < me->nprocs; i++) {
		const struct proc *p = proc_get(me->procs, me->nprocs, i);
		uint32_t mode;
		uint32_t sleep;

		if (!is_live(me, dead, i, p))
			continue;
		/* held[] before acquiring: see (c) at the top. */
		mode = held_mode_of(p, offset);
		if (mode == 0) {
			if (atomic_load_explicit(&p->acquiring,
						 memory_order_acquire) != offset)
				continue;
			sleep = atomic_load_explicit(&p->wait_sleep,
						     memory_order_relaxed);
			if (sleep == offset)
				continue; /* asleep, no hold */
			if (sleep != (offset | 1u))
				return false; /* ambiguous: wait */
			mode = atomic_load_explicit(&p->wait_mode,
						    memory_order_relaxed);
		}
		if (mode == LW_EXCLUSIVE)
			(*excl)++;
		else
			(*shared)++;
	}
	return true;
}

/*
 * take_waitlist_owner - take the wait list's owner word for recovery;
 * false if it could not be had by the deadline.
 */
static bool take_waitlist_owner(const struct lwlock_owner *me,
				struct lwlock *lock, uint64_t deadline)
{
	uint32_t mine = me->self + 1;
	unsigned int round = 0;

	for (;;) {
		uint32_t expected = 0;

		/* Acquire pairs with the owner's release in lwlock_waitlist.c. */
		if (atomic_compare_exchange_weak_explicit(&lock->waitlist_owner,
							  &expected, mine,
							  memory_order_acquire,
							  memory_order_relaxed))
			return true;
		if (monotonic_ns() > deadline)
			return false;
		wait_for_others(&round);
	}
}

/*
 * take_live_waiters - move every live slot queued for the lock at offset
 * onto wl and leave the lock's list empty.  Found through the slots, not
 * the list: a dead process may have left the list half changed.  Caller
 * owns the wait list.
 */
static void take_live_waiters(const struct lwlock_owner *me,
			      struct lwlock *lock, const bool *dead,
			      uint32_t offset, struct lwlock_wake_list *wl,
			      struct lwlock_recover_result *res)
{
	for (uint32_t i = 0; i < me->nprocs; i++) {
		struct proc *p = proc_get(me->procs, me->nprocs, i);

		if (!is_live(me, dead, i, p) ||
		    atomic_load_explicit(&p->acquiring, memory_order_relaxed) !=
			    offset ||
		    atomic_load_explicit(&p->waiting, memory_order_relaxed) != 1)
			continue;
		lwlock_wake_list_append(wl, i, p);
		res->woken++;
	}
	atomic_store_explicit(&lock->wait_head, PROC_NONE, memory_order_relaxed);
	atomic_store_explicit(&lock->wait_tail, PROC_NONE, memory_order_relaxed);
}

/*
 * lift_recovering - take the dead share (take) out of the state word and
 * clear RECOVERING, the list bit and HAS_WAITERS in one CAS; then give the
 * wait list's owner word back.
 */
static void lift_recovering(struct lwlock *lock, uint32_t take)
{
	uint32_t old = atomic_load_explicit(&lock->state, memory_order_relaxed);
	uint32_t desired;

	do {
		uint32_t hold = old & LW_LOCK_MASK;

		/* Live releases only ever lowered the hold since (c). */
		hold = hold >= take ? hold - take : 0;
		desired = (old & ~(LW_LOCK_MASK | LW_FLAG_RECOVERING |
				   LW_FLAG_LOCKED | LW_FLAG_HAS_WAITERS)) |
			  hold | LW_FLAG_RELEASE_OK;
		/*
		 * Release pairs with the acquire CAS of the next holder in
		 * lwlock_attempt: the repair done in (d) is visible to it.
		 */
	} while (!atomic_compare_exchange_weak_explicit(&lock->state, &old,
							desired,
							memory_order_release,
							memory_order_relaxed));
	/* Release pairs with the next owner's acquire CAS in waitlist_lock. */
	atomic_store_explicit(&lock->waitlist_owner, 0, memory_order_release);
}

/*
 * release_dead_share - step (e): under the wait list, take the dead share out of the
 * word, lift RECOVERING, and wake every live slot queued for the lock.
 * Returns false (nothing changed) if the wait list could not be had by
 * the deadline.
 */
static bool release_dead_share(const struct lwlock_owner *me,
			       struct lwlock *lock, const bool *dead,
			       uint32_t offset, uint32_t take, uint64_t deadline,
			       struct lwlock_recover_result *res)
{
	struct lwlock_wake_list wl = { .head = PROC_NONE, .tailp = NULL };

	if (!take_waitlist_owner(me, lock, deadline))
		return false;
	take_live_waiters(me, lock, dead, offset, &wl, res);
	lift_recovering(lock, take);

	lwlock_wake_chain(me, wl.head);
	/* A dead waker may have stored a 0 and died before its wake. */
	for (uint32_t i = 0; i < me->nprocs; i++) {
		struct proc *p = proc_get(me->procs, me->nprocs, i);

		if (is_live(me, dead, i, p) &&
		    atomic_load_explicit(&p->acquiring, memory_order_relaxed) ==
			    offset)
			lwlock_wake_proc(p);
	}
	return true;
}

/*
 * lwlock_recover - steps (a) to (e) at the top of the file.
 */
int lwlock_recover(const struct lwlock_owner *me, struct lwlock *lock,
		   const bool *dead, lwlock_repair_fn repair, void *arg,
		   uint32_t timeout_ms, struct lwlock_recover_result *res)
{
	uint32_t offset = lock_offset(me, lock);
	uint64_t deadline = monotonic_ns() +
			    (uint64_t)timeout_ms * UINT64_C(1000000);
	unsigned int round = 0;
	uint32_t live_excl, live_shared, w1, w2, hold, take = 0;

	*res = (struct lwlock_recover_result){ 0 };
	if (offset == 0 || dead == NULL ||
	    proc_get(me->procs, me->nprocs, me->self) == NULL)
		return -EINVAL;

	/*
	 * (a) Seq_cst: an RMW of the state word, so every attempt or
	 * release after it in the word's order sees the flag.
	 */
	atomic_fetch_or_explicit(&lock->state, LW_FLAG_RECOVERING,
				 memory_order_seq_cst);

	/* (b) */
	res->waitlist_taken = take_dead_waitlist(me, lock, dead, offset);

	/* (c) Acquire pairs with the releasers' release fetch_sub. */
	for (;;) {
		w1 = atomic_load_explicit(&lock->state, memory_order_acquire);
		if (count_live_holds(me, dead, offset, &live_excl, &live_shared)) {
			w2 = atomic_load_explicit(&lock->state,
						  memory_order_acquire);
			if ((w1 & LW_LOCK_MASK) == (w2 & LW_LOCK_MASK))
				break;
		}
		if (monotonic_ns() > deadline)
			return -EAGAIN;
		wait_for_others(&round);
	}
	hold = w2 & LW_LOCK_MASK;
	if ((hold & LW_VAL_EXCLUSIVE) != 0 && live_excl == 0) {
		res->dead_exclusive = true;
		take += LW_VAL_EXCLUSIVE;
	}
	if ((hold & LW_SHARED_MASK) > live_shared) {
		res->dead_shared = (hold & LW_SHARED_MASK) - live_shared;
		take += res->dead_shared;
	}

	/* (d) */
	if (res->dead_exclusive && repair != NULL)
		repair(arg);

	/* (e) */
	if (!release_dead_share(me, lock, dead, offset, take, deadline, res))
		return -EAGAIN;
	return 0;
}
