/*
 * interlock_shim.h - the interlock's System V shim (internal to interlock.c)
 *
 * The second of the interlock's two locks (see interlock.c for why there
 * are two): a tiny SysV segment whose shm_nattch counts a server's live
 * processes.  Only interlock.c uses these.
 *
 * Interface routines:
 *   shim_inspect   whose segment is at a key, and is it in use
 *   shim_refuse    the refusal for a shim of ours still attached
 *   shim_create    create and attach the shim at the port's first free key
 *   shim_destroy   detach and remove it
 *   il_err, pid_alive  helpers both halves share (interlock.c)
 */
#ifndef SHMKV_INTERLOCK_SHIM_H
#define SHMKV_INTERLOCK_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "interlock.h"

enum shim_state {
	SHIM_ABSENT,      /* no segment at the key */
	SHIM_FOREIGN,     /* some other program's segment: step over it */
	SHIM_OURS_UNUSED, /* ours, nobody attached: stale, remove it */
	SHIM_OURS_IN_USE, /* ours, attached: a live server or its orphans */
};

struct shim_seen {
	int shmid;
	pid_t creator;
	unsigned long nattch;
};

/* shim_inspect - an enum shim_state for the segment at key, or -errno. */
int shim_inspect(key_t key, int port, struct shim_seen *seen);

/* shim_refuse - fill err; -EBUSY for a live server, -EAGAIN for orphans. */
int shim_refuse(const struct interlock *il, key_t key, const struct shim_seen *seen,
		pid_t lock_pid, char *err, size_t errlen);

/* shim_create - 0 with il->shim_key, shim_id and shim set, or -errno. */
int shim_create(struct interlock *il, char *err, size_t errlen);

/* shim_destroy - undo shim_create. */
void shim_destroy(struct interlock *il);

/* il_err - format a message into err (NULL or 0 length: nothing). */
void il_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* pid_alive - true if pid exists (ours to signal or another user's). */
bool pid_alive(pid_t pid);

#endif
