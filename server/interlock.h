/*
 * interlock.h - no two servers on one port, no server beside orphans
 *
 * The supervisor calls interlock_acquire() before it creates anything else,
 * and pushes interlock_release_cb with onexit_push() right after.  Acquire
 * takes two locks, as PostgreSQL does (miscinit.c CreateLockFile and
 * sysv_shmem.c PGSharedMemoryCreate):
 *
 *  - the lock file <run_dir>/shmkv.pid, created O_EXCL, four lines:
 *        PID of the supervisor
 *        port
 *        Unix socket path (may be empty)
 *        shim key, as 0x%08x (absent while acquire is still running)
 *    It stops a second server with the same run directory, and tells an
 *    operator who holds it.
 *
 *  - the shim: a 64-byte System V shared memory segment, kept attached for
 *    the server's life.  fork() inherits SysV attachments, so every worker
 *    holds it too, and shm_nattch counts the server's live processes even
 *    after the supervisor is gone.  A new server refuses to start while a
 *    shim of its port has nattch > 0: those are orphaned workers still
 *    serving from the old segment.  The shim also stops a second server on
 *    the same port with another run directory, since the key is per port.
 *
 * Shim key: INTERLOCK_KEY_BASE | port << 4 | attempt, attempt 0..15.  The
 * top byte 0x53 ('S') keeps us out of PostgreSQL's port*1000 range, and each
 * port has 16 keys of its own, so stepping past a key that another program
 * took (as PostgreSQL does) never lands on a key of a neighbouring port.
 * The key actually used is recorded in the lock file and in il->shim_key.
 *
 * Stale state of a dead server (its lock file, its shim with nattch 0) is
 * removed by acquire; il->stale_pid and il->stale_shims_removed say what
 * was removed so that the caller can log it.  Nothing here prints.
 *
 * A live upgrade's successor adopts the interlock of the server it takes
 * over from (interlock_adopt) instead of acquiring one; the lock file's
 * format is read and written only by interlock_lock_file.c.
 *
 * Interface routines:
 *   interlock_default_run_dir  "/tmp/shmkv-<port>"
 *   interlock_shim_key         the key of a port's n-th shim candidate
 *   interlock_acquire          create run dir, lock file and shim, or refuse
 *   interlock_adopt            take over a running server's, for an upgrade
 *   interlock_reclaim          name this process again after a failed one
 *   interlock_rewrite_lock_file  name this process in the lock file, atomically
 *   interlock_holder_pid       the PID a run directory's lock file names
 *   interlock_release          remove shim and lock file (acquiring process only)
 *   interlock_release_cb       interlock_release as an onexit_fn
 */
#ifndef SHMKV_INTERLOCK_H
#define SHMKV_INTERLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define INTERLOCK_PATH_MAX 512
#define INTERLOCK_LOCK_FILE "shmkv.pid"
#define INTERLOCK_KEY_BASE 0x53000000
/* Servers without TCP (port 0) key their shim on the run directory's inode,
 * as pseudo-ports from here on (see interlock.c key_port). */
#define INTERLOCK_NO_TCP_BASE 65536
#define INTERLOCK_KEY_TRIES 16
#define INTERLOCK_SHIM_SIZE 64
#define INTERLOCK_SHIM_MAGIC UINT64_C(0x6d696873766b6d73) /* "smkvshim" */

/* What the shim holds: what a later server reads to tell a shim of ours for
 * its port from another program's segment, and whom to name in a refusal.
 * Its attach count, which the kernel keeps, is the rest. */
struct interlock_shim {
	uint64_t magic;
	int64_t creator_pid;
	int32_t port;
	uint32_t reserved; /* padding, zero */
};

_Static_assert(sizeof(struct interlock_shim) <= INTERLOCK_SHIM_SIZE,
	       "shim header larger than the shim");

struct interlock {
	char run_dir[INTERLOCK_PATH_MAX];
	char lock_path[INTERLOCK_PATH_MAX];
	char socket_path[INTERLOCK_PATH_MAX];
	int port;
	key_t shim_key;
	int shim_id;		     /* -1 when not held */
	struct interlock_shim *shim; /* attached shim, NULL when not held */
	pid_t owner_pid;	     /* 0 when not held */
	pid_t stale_pid; /* dead server whose lock file we removed, or 0 */
	int stale_shims_removed; /* stale shims of ours removed by acquire */
	bool created_run_dir; /* acquire made it: release removes it if empty */
};

int interlock_default_run_dir(int port, char *buf, size_t len);
key_t interlock_shim_key(int port, int attempt);
int interlock_acquire(struct interlock *il, const char *run_dir, int port,
		      const char *socket_path, char *err, size_t errlen);
int interlock_adopt(struct interlock *il, const char *run_dir, int port,
		    const char *socket_path, key_t shim_key, pid_t holder,
		    bool created_run_dir, char *err, size_t errlen);
int interlock_reclaim(struct interlock *il);
int interlock_rewrite_lock_file(const struct interlock *il);
pid_t interlock_holder_pid(const char *run_dir);
int interlock_release(struct interlock *il, char *err, size_t errlen);
void interlock_release_cb(void *il);

#endif /* SHMKV_INTERLOCK_H */
