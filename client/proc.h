/*
 * proc.h - proc slots: one per process attached to the segment
 *
 * A fixed array in the control part, as PostgreSQL's PGPROC array.  A slot
 * holds what other processes need to know about its owner: its PID, the
 * futex word it sleeps on while queued for an LWLock, its link in that
 * lock's wait list, and the locks it holds or is acquiring, so that the
 * supervisor can make them whole again when the owner dies.
 *
 * Slots are claimed by compare-and-swap on the pid field (0 = free): by
 * each server process for itself, and by a worker for each attaching
 * client program, which adopts it.  A slot whose owner has gone is taken
 * by one of the worker and the supervisor (proc_take_dead) and retired
 * (proc_retire); proc.c tells the whole story.
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
#ifndef SHMKV_PROC_H
#define SHMKV_PROC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROC_NONE UINT32_MAX
#define PROC_MAX_HELD 8u
#define PROC_SLOT_SIZE 256u
/* start_time of a client program whose start time could not be read. */
#define PROC_START_UNKNOWN UINT64_MAX

struct proc_held_lock {
	uint32_t lock_offset; /* the lock's offset in the control part */
	uint32_t mode;	      /* enum lwlock_mode */
};

struct proc {
	_Atomic int32_t pid;	    /* 0 = free; -pid: dead, being freed */
	_Atomic uint32_t waiting;   /* futex word: 1 while queued for a lock */
	_Atomic uint32_t wait_mode; /* mode it is queued for */
	_Atomic uint32_t wait_next; /* next proc on the same wait list */
	_Atomic uint32_t acquiring; /* lock being acquired or released, 0 = none */
	_Atomic uint32_t nheld;
	struct proc_held_lock held[PROC_MAX_HELD];
	_Atomic uint64_t hits; /* direct lookups by a client program */
	_Atomic uint64_t misses;
	/*
	 * Crash recovery (lwlock_recover.c): the lock this process sleeps
	 * for after a failed second attempt (its hold is not in the state
	 * word), or that offset | 1 while it sleeps in dequeue holding the
	 * lock; 0 otherwise.  Cleared by the owner when it wakes.
	 */
	_Atomic uint32_t wait_sleep;
	uint32_t spare;
	/* A client program's start time (/proc/PID/stat field 22), set by
	 * the worker that claimed the slot for it; 0 for server processes.
	 * With pid it tells a dead client from one whose PID was reused. */
	_Atomic uint64_t start_time;
};

_Static_assert(sizeof(struct proc) <= PROC_SLOT_SIZE, "proc slot too big");

/* Each slot on its own lines, so that one process's bookkeeping never
 * bounces another's cache line. */
union proc_padded {
	struct proc proc;
	char pad[PROC_SLOT_SIZE];
};

struct proc_array {
	uint32_t count;
	uint32_t reserved[31]; /* keeps slots on a 128-byte boundary */
	union proc_padded slots[];
};

size_t proc_array_size(uint32_t count);
void proc_array_init(struct proc_array *procs, uint32_t count);

/* proc_claim - 0 and the slot number, or -EAGAIN when every slot is taken. */
int proc_claim(struct proc_array *procs, uint32_t count, pid_t pid,
	       uint32_t *slot);

/* proc_release - clears the slot; its owner must hold no lock. */
void proc_release(struct proc_array *procs, uint32_t count, uint32_t slot);

/* proc_get - slot n, or NULL if n is out of range of the mapped count. */
struct proc *proc_get(struct proc_array *procs, uint32_t count, uint32_t n);

/* proc_record_identity - set the slot's start_time from pid's (proc.c). */
void proc_record_identity(struct proc *proc, pid_t pid);

/*
 * proc_owner_gone - true if no process has pid, or (check_start) pid now
 * names a process started at another time than start; *now_ppid (may be
 * NULL) gets the parent of the process that has the PID now, or 0.
 */
bool proc_owner_gone(int32_t pid, uint64_t start, bool check_start,
		     pid_t *now_ppid);

/* proc_take_dead - swap pid for -pid; true if this caller took the slot. */
bool proc_take_dead(struct proc *proc, int32_t pid);

/* proc_retire - add the slot's hits and misses to *hits and *misses, then
 * free it.  Only after proc_take_dead, with no lock left to repair. */
void proc_retire(struct proc_array *procs, uint32_t count, uint32_t slot,
		 _Atomic uint64_t *hits, _Atomic uint64_t *misses);

/* proc_read_stat - parent PID and start time of pid; 0, -ENOENT, -EIO. */
int proc_read_stat(pid_t pid, pid_t *ppid, uint64_t *start);

#endif
