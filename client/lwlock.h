/*
 * lwlock.h - lightweight shared/exclusive locks across processes
 *
 * PostgreSQL's design (src/backend/storage/lmgr/lwlock.c): one 32-bit atomic
 * state word carries the exclusive bit, the count of shared holders, and the
 * has-waiters and release-ok flags, plus a bit that guards the wait list.
 * Acquire spins briefly, then queues its proc slot on the lock's wait list
 * and sleeps on a futex in shared memory (not FUTEX_PRIVATE_FLAG: the
 * waiters are other processes).  Release wakes every shared waiter at the
 * front of the list, or the one exclusive waiter there.
 *
 * Locks live in the control part and are named by their offset in it; proc
 * slots by their number.  Each lock counts acquisitions, contended
 * acquisitions and nanoseconds waited.
 *
 * Interface routines:
 *   lwlock_init                 initialise a lock in shared memory
 *   lwlock_acquire              acquire in a mode, sleeping if need be
 *   lwlock_conditional_acquire  acquire if free now, else return false
 *   lwlock_release              release a lock this process holds
 *   lwlock_held_by_me           is it in my proc slot's held list
 * Repairing a lock after a holder died is lwlock_recover.h's.
 */
#ifndef SHMKV_LWLOCK_H
#define SHMKV_LWLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proc.h"

/* PostgreSQL pads to 128 bytes: adjacent cache lines are prefetched in pairs. */
#define LWLOCK_PADDED_SIZE 128u

enum lwlock_mode {
	LW_SHARED = 1,
	LW_EXCLUSIVE = 2,
};

#define LW_FLAG_HAS_WAITERS (UINT32_C(1) << 30)
#define LW_FLAG_RELEASE_OK (UINT32_C(1) << 29)
#define LW_FLAG_LOCKED (UINT32_C(1) << 28) /* wait list is being changed */
/* Crash recovery is repairing the lock (lwlock_recover.c): no attempt
 * succeeds and no release wakes anybody until it is done. */
#define LW_FLAG_RECOVERING (UINT32_C(1) << 27)
#define LW_VAL_EXCLUSIVE (UINT32_C(1) << 24)
#define LW_VAL_SHARED UINT32_C(1)
#define LW_LOCK_MASK ((UINT32_C(1) << 25) - 1)
#define LW_SHARED_MASK (LW_VAL_EXCLUSIVE - 1)

struct lwlock {
	_Atomic uint32_t state;
	_Atomic uint32_t wait_head; /* first queued proc, PROC_NONE if none */
	_Atomic uint32_t wait_tail;
	/*
	 * Proc number + 1 of the process that owns the wait list (0 = none).
	 * Taken by compare-and-swap before LW_FLAG_LOCKED, so that crash
	 * recovery can tell whose the list bit is (see lwlock_waitlist.c).
	 */
	_Atomic uint32_t waitlist_owner;
	_Atomic uint64_t acquisitions;
	_Atomic uint64_t contended; /* acquisitions that had to sleep */
	_Atomic uint64_t wait_ns;   /* total time slept waiting */
};

union lwlock_padded {
	struct lwlock lock;
	char pad[LWLOCK_PADDED_SIZE];
};

/*
 * Who is locking: the control part (to name locks by offset) and this
 * process's proc slot.  One per process, or per thread with its own slot.
 */
struct lwlock_owner {
	unsigned char *ctl_base;
	size_t ctl_size;
	struct proc_array *procs;
	uint32_t nprocs;
	uint32_t self; /* this process's slot number */
};

void lwlock_init(struct lwlock *lock);

/*
 * lwlock_acquire - acquire a lightweight lock in the given mode.
 * If the lock is not available, sleep until it is.  Records the lock in the
 * owner's proc slot.  At most PROC_MAX_HELD locks may be held at once.
 */
void lwlock_acquire(const struct lwlock_owner *me, struct lwlock *lock,
		    enum lwlock_mode mode);

/*
 * lwlock_conditional_acquire - acquire the lock if it is free now.
 * Returns true if it was acquired, false with no side-effects otherwise.
 */
bool lwlock_conditional_acquire(const struct lwlock_owner *me,
				struct lwlock *lock, enum lwlock_mode mode);

/* lwlock_release - release a lock held by this process, waking waiters. */
void lwlock_release(const struct lwlock_owner *me, struct lwlock *lock);

bool lwlock_held_by_me(const struct lwlock_owner *me, const struct lwlock *lock);

#endif
