/*
 * recovery.h - the supervisor's crash recovery: dead processes' locks
 *
 * The supervisor is the one recoverer.  It learns that a worker died from
 * SIGCHLD (reap_workers) and that a client program died by looking, every
 * RECOVERY_POLL_MS, at the proc slots claimed for client programs: a PID
 * that is gone, or that now names a process started at another time.  For
 * each dead slot it repairs every lock the slot names (lwlock_recover),
 * drops a partition whose lock a dead process held exclusive
 * (table_partition_reset), counts what it did in the stats, and frees the
 * slot.  See recovery.c.
 *
 * Interface routines:
 *   recovery_init         set up, with the cache and the counters to bump
 *   recovery_worker_died  a reaped worker's slot: recover it now
 *   recovery_poll         find dead clients; retry unfinished recoveries
 *   recovery_adopted      every slot a crashed server left in its memory file
 *   recovery_free         release what recovery_init allocated
 */
#ifndef SHMKV_RECOVERY_H
#define SHMKV_RECOVERY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache.h"
#include "stats.h"

/* How often the supervisor looks for dead client programs. */
#define RECOVERY_POLL_MS 50

struct recovery {
	struct cache *cache;
	struct server_stats *counters; /* where recovery counts (slot 0) */
	bool *dead;		       /* per slot: dead, not yet recovered */
	uint16_t *done;	  /* per slot: which of its locks are done */
	pid_t *dead_pid;  /* per slot: the PID that died */
	uint32_t pending; /* slots with dead set */
	uint32_t polls;	  /* recovery_poll calls so far */
	int verbosity;
};

/* recovery_init - 0, or -ENOMEM. */
int recovery_init(struct recovery *r, struct cache *cache,
		  struct server_stats *counters, int verbosity);

/*
 * recovery_worker_died - worker pid was reaped: mark its proc slot dead and
 * recover it.  Whatever cannot be finished now is retried by recovery_poll.
 */
void recovery_worker_died(struct recovery *r, pid_t pid);

/*
 * recovery_poll - mark the slots of client programs that are gone, and
 * recover every dead slot not yet recovered.  Call at least every
 * RECOVERY_POLL_MS.
 */
void recovery_poll(struct recovery *r);

/*
 * recovery_adopted - the segment was adopted from a memory file whose
 * server died without a clean stop: mark dead every slot of a server
 * process (none of that server is left) and of a client that is gone, and
 * recover them all.  The caller has claimed its own slot already.
 */
void recovery_adopted(struct recovery *r);

void recovery_free(struct recovery *r);

#endif
