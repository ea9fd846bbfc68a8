/*
 * recovery.c - the supervisor's crash recovery: dead processes' locks
 *
 * A process attached to the segment can die at any instruction: a worker
 * killed by a signal or a bug, a client program killed in the middle of a
 * direct lookup.  Its proc slot still says which locks it held or was in
 * the middle of acquiring or releasing (lwlock.c keeps that exact), and
 * until those are repaired every other process that needs them waits for
 * ever.  The supervisor repairs them: it is single-threaded, so recoveries
 * never race each other, and it never serves requests, so it is never
 * itself inside a lock when it recovers.
 *
 * Finding the dead.  Workers are the supervisor's children: reap_workers
 * calls recovery_worker_died after waitpid.  Client programs are not: each
 * slot claimed for one records the client's PID (SO_PEERCRED) and its
 * start time (/proc/PID/stat), and recovery_poll, every RECOVERY_POLL_MS,
 * calls a client dead when kill(pid, 0) says ESRCH or the PID now names a
 * process that started at another time (the PID was reused).  A slot is
 * taken for recovery by compare-and-swap of its pid from the dead PID to
 * minus it (proc_take_dead): the worker that serves the client's connection
 * releases the slot with the same CAS (attach_release), so exactly one of
 * the two frees it (proc_retire), and never after someone else has claimed
 * it anew.
 *
 * Recovering.  Every dead slot stays marked in dead[] until each lock it
 * names is repaired, and every call of lwlock_recover sees them all: a
 * lock two dead processes touched is repaired for both at once, and a live
 * process's hold is never mistaken for a dead one's.  When a dead process
 * held a partition's lock exclusive, it may have been half way through a
 * change, so the partition is emptied (table_partition_reset) before
 * anyone can take the lock again: it is a cache, and a miss is better than
 * a torn value.  A dead reader damages nothing: its hold is just given
 * back.  A lock that cannot be repaired yet (a live process stays inside
 * an operation on it for RECOVERY_LOCK_TIMEOUT_MS, usually one that has
 * died too and is not yet known to have) is retried at the next poll, with
 * the newly found dead marked as well.
 *
 * Counted in `stats`: crash_recoveries (dead slots that had a lock to
 * repair), locks_recovered (lock repairs for a dead slot) and
 * partitions_dropped; each is also logged.
 *
 * After a crash of the whole server on a memory file, the next server runs
 * the same recovery for every slot the dead tree left (recovery_adopted):
 * the slots of server processes are all dead (the memory file's lock says
 * no process of that tree is left), a client's is dead if its process is
 * gone; a client program that outlived the crash keeps its slot, and
 * recovery_poll frees it when it goes.
 *
 * Interface routines: recovery_init, recovery_worker_died, recovery_poll,
 * recovery_adopted, recovery_free (see recovery.h).
 */
#include "recovery.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "lwlock_recover.h"

/* Polls between looks at the start times of live clients (about 1 s). */
#define RECOVERY_START_CHECK_POLLS (1000 / RECOVERY_POLL_MS)

/* How long one lock's repair may wait for live processes to move on. */
#define RECOVERY_LOCK_TIMEOUT_MS 100

#define BUMP(r, field) \
	atomic_fetch_add_explicit(&(r)->counters->field, 1, memory_order_relaxed)

int recovery_init(struct recovery *r, struct cache *cache,
		  struct server_stats *counters, int verbosity)
{
	memset(r, 0, sizeof(*r));
	r->cache = cache;
	r->counters = counters;
	r->verbosity = verbosity;
	r->dead = calloc(cache->nprocs, sizeof(*r->dead));
	r->done = calloc(cache->nprocs, sizeof(*r->done));
	r->dead_pid = calloc(cache->nprocs, sizeof(*r->dead_pid));
	if (r->dead == NULL || r->done == NULL || r->dead_pid == NULL) {
		recovery_free(r);
		return -ENOMEM;
	}
	return 0;
}

void recovery_free(struct recovery *r)
{
	free(r->dead);
	free(r->done);
	free(r->dead_pid);
	r->dead = NULL;
	r->done = NULL;
	r->dead_pid = NULL;
}

/*
 * mark_dead - take slot i, whose process pid died, for recovery.  False if
 * the slot no longer belongs to pid (its worker released it first).
 */
static bool mark_dead(struct recovery *r, uint32_t i, struct proc *p, int32_t pid)
{
	if (r->dead[i])
		return true;
	if (!proc_take_dead(p, pid))
		return false;
	r->dead[i] = true;
	r->done[i] = 0;
	r->dead_pid[i] = pid;
	r->pending++;
	return true;
}

struct repair_arg {
	struct recovery *r;
	uint32_t partition;
	pid_t pid;
};

/* repair_partition - lwlock_recover's repair step: drop the partition. */
static void repair_partition(void *arg)
{
	struct repair_arg *ra = arg;
	int rc = table_partition_reset(&ra->r->cache->table, ra->partition);

	if (rc < 0) {
		SERVER_LOG("cannot drop partition %u after the death of pid %d: %s",
			   ra->partition, (int)ra->pid, strerror(-rc));
		return;
	}
	BUMP(ra->r, partitions_dropped);
	SERVER_LOG("dropped partition %u: pid %d died while it held the "
		   "partition's lock exclusive, so its items may be torn",
		   ra->partition, (int)ra->pid);
}

/* free_slot - every lock of slot i is repaired: give the slot back. */
static void free_slot(struct recovery *r, uint32_t i, uint32_t nlocks)
{
	proc_retire(r->cache->procs, r->cache->nprocs, i,
		    &r->counters->direct_get_hits,
		    &r->counters->direct_get_misses);
	r->dead[i] = false;
	r->pending--;
	if (nlocks > 0) {
		BUMP(r, crash_recoveries);
		SERVER_LOG("recovered the proc slot %u of pid %d, which died in "
			   "%u lock(s)",
			   i, (int)r->dead_pid[i], nlocks);
	}
}

/*
 * recover_slot - repair every lock dead slot i names that is not repaired
 * yet.  False if one could not be repaired now (retry later).
 */
static bool recover_slot(struct recovery *r, uint32_t i, struct proc *p)
{
	struct table *t = &r->cache->table;
	uint32_t offs[PROC_MAX_HELD + 1];
	uint32_t n = lwlock_proc_locks(p, offs, PROC_MAX_HELD + 1);

	for (uint32_t k = 0; k < n; k++) {
		struct lwlock_recover_result res;
		struct repair_arg ra = { r, 0, r->dead_pid[i] };
		int rc;

		if (r->done[i] & (1u << k))
			continue;
		/* The slot is client-writable: only a partition's lock counts. */
		if (table_partition_of_lock(t, offs[k], &ra.partition) < 0) {
			SERVER_LOG("pid %d's proc slot %u names a lock at offset %u, "
				   "which is no partition's; ignored",
				   (int)r->dead_pid[i], i, offs[k]);
			r->done[i] |= (uint16_t)(1u << k);
			continue;
		}
		rc = lwlock_recover(&t->owner,
				    (struct lwlock *)(r->cache->seg.ctl + offs[k]),
				    r->dead, repair_partition, &ra,
				    RECOVERY_LOCK_TIMEOUT_MS, &res);
		if (rc == -EAGAIN) {
			if (r->verbosity >= 1)
				SERVER_LOG("partition %u's lock is busy; recovering "
					   "it for pid %d again shortly",
					   ra.partition, (int)r->dead_pid[i]);
			return false;
		}
		if (rc < 0) {
			SERVER_LOG("cannot recover partition %u's lock for pid %d: %s",
				   ra.partition, (int)r->dead_pid[i],
				   strerror(-rc));
		} else {
			BUMP(r, locks_recovered);
			if (r->verbosity >= 1)
				SERVER_LOG("recovered partition %u's lock for pid %d: "
					   "%s%u shared hold(s) given back, "
					   "%u waiter(s) woken%s",
					   ra.partition, (int)r->dead_pid[i],
					   res.dead_exclusive
						   ? "exclusive hold and "
						   : "",
					   res.dead_shared, res.woken,
					   res.waitlist_taken ? ", wait list freed"
							      : "");
		}
		r->done[i] |= (uint16_t)(1u << k);
	}
	free_slot(r, i, n);
	return true;
}

/* recover_pending - recover every dead slot; stop at the first busy lock. */
static void recover_pending(struct recovery *r)
{
	for (uint32_t i = 0; i < r->cache->nprocs && r->pending > 0; i++) {
		struct proc *p = proc_get(r->cache->procs, r->cache->nprocs, i);

		if (p != NULL && r->dead[i] && !recover_slot(r, i, p))
			return;
	}
}

void recovery_worker_died(struct recovery *r, pid_t pid)
{
	for (uint32_t i = 0; i < r->cache->nprocs; i++) {
		struct proc *p = proc_get(r->cache->procs, r->cache->nprocs, i);

		if (p != NULL && atomic_load(&p->pid) == (int32_t)pid)
			mark_dead(r, i, p, (int32_t)pid);
	}
	recover_pending(r);
}

/*
 * client_gone - is the client program that claimed a slot as (pid,
 * start) gone?  EPERM means it lives (as another user); a PID whose start
 * time changed was reused by a new process.  Never one of our own
 * processes (us, or a child: a worker), whatever the slot says: its
 * fields are client-writable, and recovering a live process's slot would
 * take its holds from under it.
 */
static bool client_gone(int32_t pid, uint64_t start, bool check_start)
{
	pid_t now_ppid = 0;

	if (pid == (int32_t)getpid())
		return false;
	return proc_owner_gone(pid, start, check_start, &now_ppid) &&
	       now_ppid != getpid();
}

void recovery_adopted(struct recovery *r)
{
	for (uint32_t i = 0; i < r->cache->nprocs; i++) {
		struct proc *p = proc_get(r->cache->procs, r->cache->nprocs, i);
		int32_t pid;
		uint64_t start;

		if (p == NULL || i == r->cache->self)
			continue;
		pid = atomic_load_explicit(&p->pid, memory_order_acquire);
		start = atomic_load_explicit(&p->start_time,
					     memory_order_relaxed);
		/* -pid: the dead server was recovering it; 0: free. */
		if (pid < 0)
			atomic_store_explicit(&p->pid, pid = -pid,
					      memory_order_relaxed);
		if (pid == 0 || (start != 0 && !client_gone(pid, start, true)))
			continue;
		mark_dead(r, i, p, pid);
	}
	recover_pending(r);
}

void recovery_poll(struct recovery *r)
{
	/*
	 * kill(pid, 0) on every poll; the start time (a file read per client)
	 * about once a second: a PID is reused only after the kernel has gone
	 * round the whole PID space, which takes far longer.
	 */
	bool check_start = r->polls++ % RECOVERY_START_CHECK_POLLS == 0;

	for (uint32_t i = 0; i < r->cache->nprocs; i++) {
		struct proc *p = proc_get(r->cache->procs, r->cache->nprocs, i);
		int32_t pid;
		uint64_t start;

		if (p == NULL || r->dead[i])
			continue;
		pid = atomic_load_explicit(&p->pid, memory_order_acquire);
		/* Only client programs' slots carry a start time. */
		start = atomic_load_explicit(&p->start_time,
					     memory_order_relaxed);
		if (pid <= 0 || start == 0 ||
		    !client_gone(pid, start, check_start))
			continue;
		mark_dead(r, i, p, pid);
	}
	if (r->pending > 0)
		recover_pending(r);
}
