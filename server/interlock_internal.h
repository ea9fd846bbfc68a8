/*
 * interlock_internal.h - what the three interlock files share
 *
 * interlock.c takes, adopts and releases the interlock; interlock_shim.c
 * owns the System V shim (its key, what a found one says, creating one);
 * interlock_lock_file.c owns the lock file's format (reading, creating,
 * rewriting it).  Nothing outside them includes this header.
 *
 * Interface routines (interlock_shim.c):
 *   interlock_pid_alive       whether a PID names a live process
 *   interlock_shim_inspect    whose segment sits at a key, and is it in use
 *   interlock_shim_refuse     the refusal for a shim of ours still in use
 *   interlock_shim_create     create and attach the shim of a port
 *   interlock_shim_destroy    detach and remove it
 * (interlock_lock_file.c):
 *   interlock_lock_file_read     parse an existing lock file
 *   interlock_lock_file_create   create it, clearing a dead server's first
 *   interlock_lock_file_add_key  append the shim key, once it is known
 */
#ifndef SHMKV_INTERLOCK_INTERNAL_H
#define SHMKV_INTERLOCK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "interlock.h"

/* How often acquire goes round after removing stale state or finding the
 * lock file half-written, before it gives up (PostgreSQL tries 100 times). */
#define LOCK_FILE_TRIES 100

enum shim_state {
	SHIM_ABSENT,	  /* no segment at the key */
	SHIM_FOREIGN,	  /* some other program's segment: step over it */
	SHIM_OURS_UNUSED, /* ours, nobody attached: stale, remove it */
	SHIM_OURS_IN_USE, /* ours, attached: a live server or its orphans */
};

struct shim_seen {
	int shmid;
	pid_t creator;
	unsigned long nattch;
};

/* A lock file's four lines, the socket path skipped. */
struct lock_info {
	pid_t pid;
	int port;
	bool has_key;
	key_t key;
};

bool interlock_pid_alive(pid_t pid);
int interlock_shim_inspect(key_t key, int port, struct shim_seen *seen);
int interlock_shim_refuse(const struct interlock *il, key_t key,
			  const struct shim_seen *seen, pid_t lock_pid,
			  char *err, size_t errlen);
int interlock_shim_create(struct interlock *il, char *err, size_t errlen);
void interlock_shim_destroy(struct interlock *il);

int interlock_lock_file_read(const char *path, struct lock_info *li);
int interlock_lock_file_create(struct interlock *il, char *err, size_t errlen);
int interlock_lock_file_add_key(int fd, const struct interlock *il, char *err,
				size_t errlen);

#endif /* SHMKV_INTERLOCK_INTERNAL_H */
