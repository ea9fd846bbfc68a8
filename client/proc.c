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
 * A slot's whole life is here.  A server process claims its own slot
 * (proc_claim); a worker claims one in a client program's name and records
 * who the client is (proc_record_identity: its PID and start time, so that
 * a later process reusing the PID is not taken for it), and the client
 * adopts that slot (cache_adopt_proc).  When the owner has gone, whoever
 * frees the slot first takes it with proc_take_dead (a CAS of pid to minus
 * it: the worker whose client closed its connection, or the supervisor
 * recovering a dead process, never both), then proc_retire folds its
 * lookup counters into the server's and frees it.  proc_owner_gone is the
 * one test of "that process has ended" for all of them.
 *
 * NOTE: every routine takes the slot count from its caller (the count the
 * caller mapped) rather than from procs->count, because the control part is
 * writable by client programs: a scribbled count must not send us past the
 * end of the mapping.  procs->count is written for the benefit of readers
 * such as stats, which must bound it themselves.
 *
 * Interface routines:
 *   proc_array_size       bytes the array of n slots needs
 *   proc_array_init       zero the array (creator)
 *   proc_claim            take a free slot for pid
 *   proc_record_identity  note the start time of the slot's client program
 *   proc_owner_gone       has the process (pid, start time) ended?
 *   proc_take_dead        take a gone owner's slot, exactly one taker wins
 *   proc_retire           fold a taken slot's counters, then free it
 *   proc_release          give a slot back
 *   proc_get              bounds-checked slot by number
 *   proc_read_stat        a process's parent and start time (/proc/PID/stat)
 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * proc_slot_reset - put a slot's bookkeeping into the "owns nothing, waits
 * for nothing" state.  Leaves pid alone; the caller owns the slot.
 */
static void proc_slot_reset(struct proc *proc)
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
	atomic_store_explicit(&proc->wait_sleep, 0, memory_order_relaxed);
	proc->spare = 0;
	atomic_store_explicit(&proc->start_time, 0, memory_order_relaxed);
}

/*
 * proc_array_size - bytes an array of count slots occupies, header included.
 * The result is a multiple of PROC_SLOT_SIZE past a 128-byte header, so the
 * caller may place it on any 128-byte boundary and keep every slot aligned.
 */
size_t proc_array_size(uint32_t count)
{
	return offsetof(struct proc_array, slots) +
	       (size_t)count * sizeof(union proc_padded);
}

/*
 * proc_array_init - make every slot free.  Creator only, before any other
 * process can see the array (so plain stores are enough: the fork or the
 * descriptor hand-over that shares the memory orders them).
 */
void proc_array_init(struct proc_array *procs, uint32_t count)
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
int proc_claim(struct proc_array *procs, uint32_t count, pid_t pid, uint32_t *slot)
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
		if (!atomic_compare_exchange_strong_explicit(&proc->pid, &expected,
							     (int32_t)pid,
							     memory_order_acquire,
							     memory_order_relaxed))
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
void proc_release(struct proc_array *procs, uint32_t count, uint32_t slot)
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
struct proc *proc_get(struct proc_array *procs, uint32_t count, uint32_t n)
{
	if (procs == NULL || n >= count)
		return NULL;
	return &procs->slots[n].proc;
}

/*
 * proc_read_stat - fields 4 (parent PID) and 22 (start time, in clock ticks
 * since boot: with the PID it names one process for ever) of
 * /proc/PID/stat.  0, -ENOENT if there is no such process, -EIO if the file
 * cannot be parsed.  ppid may be NULL.
 */
int proc_read_stat(pid_t pid, pid_t *ppid, uint64_t *start)
{
	char path[64], buf[1024];
	const char *p;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n == 0 ? -ENOENT : -EIO;
	buf[n] = '\0';
	/* The name (field 2) may hold spaces and parentheses: skip past the
	 * last ')'; field 3 follows it. */
	p = strrchr(buf, ')');
	if (p == NULL)
		return -EIO;
	for (field = 2; field < 22 && p != NULL; field++) {
		p = strchr(p + 1, ' ');
		if (field == 3 && p != NULL && ppid != NULL)
			*ppid = (pid_t)strtol(p + 1, NULL, 10);
	}
	if (p == NULL)
		return -EIO;
	*start = strtoull(p + 1, NULL, 10);
	return *start != 0 ? 0 : -EIO;
}

/*
 * proc_record_identity - note in a slot just claimed for client program
 * pid when that process started, before the client can lock anything:
 * from then on proc_owner_gone can tell it from a process that later
 * reuses its PID.  An unreadable start time is recorded as
 * PROC_START_UNKNOWN ("judge by the PID alone").
 */
void proc_record_identity(struct proc *proc, pid_t pid)
{
	uint64_t start = 0;

	if (proc_read_stat(pid, NULL, &start) < 0)
		start = PROC_START_UNKNOWN;
	atomic_store_explicit(&proc->start_time, start, memory_order_relaxed);
}

/*
 * proc_owner_gone - has the process named by (pid, start) ended?  Yes if
 * no process has the PID, or (with check_start) if the PID now names a
 * process that started at another time; *now_ppid is then that process's
 * parent (0 when there is none), for callers that must not mistake one of
 * their own children for a stranger.  A process of another user (EPERM)
 * lives.
 */
bool proc_owner_gone(int32_t pid, uint64_t start, bool check_start,
		     pid_t *now_ppid)
{
	uint64_t now = 0;
	pid_t ppid = 0;
	int rc;

	if (now_ppid != NULL)
		*now_ppid = 0;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	if (!check_start || start == PROC_START_UNKNOWN)
		return false;
	rc = proc_read_stat(pid, &ppid, &now);
	if (rc == -ENOENT)
		return true;
	if (now_ppid != NULL)
		*now_ppid = ppid;
	return rc == 0 && now != start;
}

/*
 * proc_take_dead - take slot proc, whose owner pid has gone, for freeing:
 * swap its pid for minus it.  True if we took it; false if someone else
 * did first, or the slot no longer names pid.  Acquire pairs with the
 * owner's last stores (and with another taker's release): everything the
 * owner wrote to the slot is visible to us.
 */
bool proc_take_dead(struct proc *proc, int32_t pid)
{
	int32_t expected = pid;

	return pid > 0 &&
	       atomic_compare_exchange_strong_explicit(&proc->pid, &expected,
						       -pid, memory_order_acquire,
						       memory_order_relaxed);
}

/*
 * proc_retire - free slot, taken with proc_take_dead and holding no lock
 * (or its locks repaired), adding its direct lookups' counters to *hits
 * and *misses first: they would die with the slot.
 */
void proc_retire(struct proc_array *procs, uint32_t count, uint32_t slot,
		 _Atomic uint64_t *hits, _Atomic uint64_t *misses)
{
	struct proc *proc = proc_get(procs, count, slot);

	if (proc == NULL)
		return;
	atomic_fetch_add_explicit(hits, atomic_load(&proc->hits),
				  memory_order_relaxed);
	atomic_fetch_add_explicit(misses, atomic_load(&proc->misses),
				  memory_order_relaxed);
	proc_release(procs, count, slot);
}
