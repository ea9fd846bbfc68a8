/*
 * proc.c - proc slots: one per process attached to the segment
 *
 * The control part holds a fixed array of slots, as PostgreSQL's PGPROC
 * array.  A process owns its slot from proc_claim until proc_release; other
 * processes touch it only through the LWLock wait lists (wait_next, waiting)
 * and, once the owner is dead, the supervisor reads held[] and acquiring to
 * repair the locks the owner left behind.
 *
 * A slot is taken by compare-and-swap of its pid from 0 to the owner's PID,
 * so claiming needs no lock of its own and two claimants can never get the
 * same slot.  The array is scanned from the start on every claim: claims
 * happen once per process, and the array has at most a few hundred slots.
 *
 * NOTE: every routine takes the slot count from its caller (the count the
 * caller mapped) rather than from procs->count, because the control part is
 * writable by client programs: a scribbled count must not send us past the
 * end of the mapping.  procs->count is written for the benefit of readers
 * such as stats, which must bound it themselves.
 *
 * Interface routines:
 *   proc_array_size   bytes the array of n slots needs
 *   proc_array_init   zero the array (creator)
 *   proc_claim        take a free slot for pid
 *   proc_release      give a slot back
 *   proc_get          bounds-checked slot by number
 */
#include "proc.h"

#include <errno.h>
#include <string.h>

/*
 * proc_slot_reset - put a slot's bookkeeping into the "owns nothing, waits
 * for nothing" state.  Leaves pid alone; the caller owns the slot.
 */
static void
proc_slot_reset(struct proc *proc)
{
	/*
	 * Relaxed: these stores are published by the pid store or CAS that
	 * follows or precedes them (see the callers), never read on their own.
	 */
	atomic_store_explicit(&proc->waiting, 0, memory_order_relaxed);
	atomic_store_explicit(&proc->wait_mode, 0, memory_order_relaxed);
	atomic_store_explicit(&proc->wait_next, PROC_NONE, memory_order_relaxed);
	atomic_store_explicit(&proc->acquiring, 0, memory_order_relaxed);
	atomic_store_explicit(&proc->nheld, 0, memory_order_relaxed);
	memset(proc->held, 0, sizeof(proc->held));
	atomic_store_explicit(&proc->hits, 0, memory_order_relaxed);
	atomic_store_explicit(&proc->misses, 0, memory_order_relaxed);
}

/*
 * proc_array_size - bytes an array of count slots occupies, header included.
 * The result is a multiple of PROC_SLOT_SIZE past a 128-byte header, so the
 * caller may place it on any 128-byte boundary and keep every slot aligned.
 */
size_t
proc_array_size(uint32_t count)
{
	return offsetof(struct proc_array, slots) +
	       (size_t)count * sizeof(union proc_padded);
}

/*
 * proc_array_init - make every slot free.  Creator only, before any other
 * process can see the array (so plain stores are enough: the fork or the
 * descriptor hand-over that shares the memory orders them).
 */
void
proc_array_init(struct proc_array *procs, uint32_t count)
{
	memset(procs, 0, proc_array_size(count));
	procs->count = count;
	for (uint32_t i = 0; i < count; i++) {
		struct proc *proc = &procs->slots[i].proc;

		atomic_init(&proc->pid, 0);
		proc_slot_reset(proc);
	}
}

/*
 * proc_claim - take a free slot for pid.  Returns 0 and stores the slot
 * number in *slot, or -EAGAIN when every slot is taken (-EINVAL for a pid
 * that could be confused with "free").  The slot comes back with no locks
 * held and not queued anywhere.
 */
int
proc_claim(struct proc_array *procs, uint32_t count, pid_t pid, uint32_t *slot)
{
	if (procs == NULL || slot == NULL || pid <= 0)
		return -EINVAL;

	for (uint32_t i = 0; i < count; i++) {
		struct proc *proc = &procs->slots[i].proc;
		int32_t expected = 0;

		/* Cheap look first, so a full array costs loads, not CASes. */
		if (atomic_load_explicit(&proc->pid, memory_order_relaxed) != 0)
			continue;
		/*
		 * Acquire pairs with the release store of 0 in proc_release:
		 * the previous owner's last writes to the slot happen before
		 * ours, so our reset below is not overtaken by them.
		 */
		if (!atomic_compare_exchange_strong_explicit(
			    &proc->pid, &expected, (int32_t)pid,
			    memory_order_acquire, memory_order_relaxed))
			continue;
		/*
		 * proc_release left the slot clean, but a client program may
		 * have scribbled on it since; start from a known state.
		 */
		proc_slot_reset(proc);
		*slot = i;
		return 0;
	}
	return -EAGAIN;
}

/*
 * proc_release - clear slot and make it free.  Its owner must hold no lock
 * and wait for none.  An out-of-range slot number is ignored.
 */
void
proc_release(struct proc_array *procs, uint32_t count, uint32_t slot)
{
	struct proc *proc = proc_get(procs, count, slot);

	if (proc == NULL)
		return;
	proc_slot_reset(proc);
	/*
	 * Release pairs with the acquire CAS in proc_claim: the next owner sees
	 * the slot clean, never our stale held[] list.
	 */
	atomic_store_explicit(&proc->pid, 0, memory_order_release);
}

/*
 * proc_get - slot n, or NULL if n is not below count.  Use it for every
 * proc number read from shared memory: such numbers may be garbage.
 */
struct proc *
proc_get(struct proc_array *procs, uint32_t count, uint32_t n)
{
	if (procs == NULL || n >= count)
		return NULL;
	return &procs->slots[n].proc;
}
