/*
 * lwlock_waitlist.h - a lock's wait list and wake-up, inside the lock
 *
 * Internal to the lock (lwlock.c, lwlock_waitlist.c and lwlock_recover.c);
 * nothing else includes it.  lwlock.c decides when to queue, retry and
 * wake; lwlock_waitlist.c owns the list itself, the futex sleep and the
 * wakeup; recovery wakes through the same private wake lists.
 *
 * Interface routines:
 *   lwlock_queue_self     put our slot on the lock's wait list
 *   lwlock_dequeue_self   take it off again after our retry got the lock
 *   lwlock_sleep_marked   sleep until woken, telling recovery how
 *   lwlock_wakeup         wake the waiters a free lock lets in
 *   lwlock_wake_list_append  add an unlinked waiter to a private wake list
 *   lwlock_wake_chain     wake everybody on a private wake list
 *   lwlock_wake_proc      wake one proc's futex, its waiting word untouched
 */
#ifndef SHMKV_LWLOCK_WAITLIST_H
#define SHMKV_LWLOCK_WAITLIST_H

#include <assert.h>
#include <stdint.h>

#include "lwlock.h"
#include "proc.h"

/* cpu_relax - tell the CPU we are spinning (frees the sibling hyperthread). */
static inline void cpu_relax(void)
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
static inline struct proc *lw_proc(const struct lwlock_owner *me, uint32_t n)
{
	return proc_get(me->procs, me->nprocs, n);
}

/* lw_self - the owner's own slot; the owner struct is private, so trusted. */
static inline struct proc *lw_self(const struct lwlock_owner *me)
{
	struct proc *self = lw_proc(me, me->self);

	assert(self != NULL);
	return self;
}

/*
 * lwlock_queue_self - append our slot to the lock's wait list and mark us
 * waiting.  The caller must attempt the lock once more afterwards.
 */
void lwlock_queue_self(const struct lwlock_owner *me, struct lwlock *lock,
		       enum lwlock_mode mode);

/*
 * lwlock_dequeue_self - undo lwlock_queue_self after our second attempt got
 * the lock (offset is the lock's).  On return we are on no wait list and
 * our waiting word is 0.
 */
void lwlock_dequeue_self(const struct lwlock_owner *me, struct lwlock *lock,
			 uint32_t offset);

/*
 * lwlock_sleep_marked - sleep until our waiting word is 0, with wait_sleep
 * set to marker meanwhile (what crash recovery reads of a sleeper).
 */
void lwlock_sleep_marked(struct proc *self, uint32_t marker);

/*
 * lwlock_wakeup - take the waiters a free lock lets in off its list and
 * wake them.  For a release that left the lock free with HAS_WAITERS and
 * RELEASE_OK set.
 */
void lwlock_wakeup(const struct lwlock_owner *me, struct lwlock *lock);

/* A private list of procs to wake, threaded through their wait_next. */
struct lwlock_wake_list {
	uint32_t head;	    /* PROC_NONE while empty */
	struct proc *tailp; /* NULL while empty */
};

/*
 * lwlock_wake_list_append - put proc n (slot p), on no lock's wait list,
 * at the end of wl.
 */
void lwlock_wake_list_append(struct lwlock_wake_list *wl, uint32_t n,
			     struct proc *p);

/*
 * lwlock_wake_chain - wake every proc on the private wake list starting at
 * head, clearing the links.
 */
void lwlock_wake_chain(const struct lwlock_owner *me, uint32_t head);

void lwlock_wake_proc(struct proc *p);

#endif
