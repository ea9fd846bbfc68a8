/*
 * lwlock_recover.h - make an LWLock whole after processes died in it
 *
 * A process killed at any instruction leaves behind, in its proc slot, the
 * locks it held (held[]) and the one it was acquiring or releasing
 * (acquiring); lwlock.c keeps that record exact at every instant.  The one
 * recoverer (the supervisor, single-threaded, so recoveries never race each
 * other) gives the dead processes' holds back, frees a wait list a dead
 * process owned, wakes waiters a dead releaser had unlinked but not woken,
 * and tells the caller whether a dead process held the lock exclusive, so
 * that the data it guards can be repaired before anyone sees it.  See the
 * top of lwlock_recover.c for the reasoning.
 *
 * Interface routines:
 *   lwlock_proc_locks  the locks a (dead) proc slot may have touched
 *   lwlock_recover     repair one lock for a set of dead slots
 */
#ifndef SHMKV_LWLOCK_RECOVER_H
#define SHMKV_LWLOCK_RECOVER_H

#include <stdbool.h>
#include <stdint.h>

#include "lwlock.h"

/* What lwlock_recover found and did. */
struct lwlock_recover_result {
	bool dead_exclusive;  /* a dead process held it exclusive: repaired */
	uint32_t dead_shared; /* shared holds of dead processes given back */
	bool waitlist_taken;  /* a dead process owned the wait list */
	uint32_t woken;	      /* waiters woken at the end */
};

/*
 * Called by lwlock_recover when a dead process held the lock exclusive,
 * while nobody can hold or take it; it must leave the guarded data
 * consistent (for the table: drop the partition).
 */
typedef void (*lwlock_repair_fn)(void *arg);

/*
 * lwlock_proc_locks - the offsets of the locks slot p may have a hold or a
 * half-done operation in: held[] and acquiring, distinct, at most max
 * (PROC_MAX_HELD + 1 is always enough).  Returns how many.  The slot's
 * owner must be dead or stopped; values are not validated here.
 */
uint32_t lwlock_proc_locks(const struct proc *p, uint32_t *offsets, uint32_t max);

/*
 * lwlock_recover - repair lock after the deaths of the processes whose
 * slots have dead[slot] set (an array of me->nprocs).  me is the
 * recoverer's own view and slot.  Afterwards the lock counts exactly the
 * live holders, no dead slot is on its wait list, its wait list is owned by
 * nobody dead, and every live waiter has been woken to retry.
 *
 * Returns 0 with *res filled in; -EINVAL if lock is not a lock in me's
 * control part; -EAGAIN if a live process stayed inside an operation on the
 * lock for timeout_ms (the lock stays blocked: call again soon, with any
 * further dead slots marked).  Idempotent: calling it again for the same
 * dead slots finds nothing more to do.
 */
int lwlock_recover(const struct lwlock_owner *me, struct lwlock *lock,
		   const bool *dead, lwlock_repair_fn repair, void *arg,
		   uint32_t timeout_ms, struct lwlock_recover_result *res);

#endif
