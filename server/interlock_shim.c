/*
 * interlock_shim.c - the shim: a System V segment that counts a server's
 * live processes
 *
 * The supervisor attaches the shim and never detaches it; fork() inherits
 * the attachment, so each worker holds it too and the kernel keeps
 * shm_nattch equal to the number of the server's live processes, whoever
 * of them dies first (see interlock.c for why the lock file alone cannot
 * tell).  This file says what a segment found at a key is, and creates the
 * shim at the first key of its port no other program holds.
 *
 * Interface routines:
 *   interlock_shim_key        the key of a port's n-th shim candidate
 *   interlock_pid_alive, interlock_shim_inspect, interlock_shim_refuse,
 *   interlock_shim_create, interlock_shim_destroy  (interlock_internal.h)
 */
#include "interlock_internal.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errbuf.h"

/* A PID is alive if we may signal it, or if it exists but is someone
 * else's (EPERM).  A zombie counts as alive; its parent must reap it. */
bool interlock_pid_alive(pid_t pid)
{
	if (pid <= 0)
		return false;
	return kill(pid, 0) == 0 || errno == EPERM;
}

/*
 * interlock_shim_key - the System V key of the attempt-th shim of a port
 *
 * Keys of different ports never overlap (see interlock.h).  Returns
 * IPC_PRIVATE for a port or attempt out of range, which no caller of
 * shmget with a fixed key would mistake for a real key.
 */
key_t interlock_shim_key(int port, int attempt)
{
	if (port < 1 || port > INTERLOCK_NO_TCP_BASE + 0x7fff || attempt < 0 ||
	    attempt >= INTERLOCK_KEY_TRIES)
		return IPC_PRIVATE;
	return (key_t)(INTERLOCK_KEY_BASE | (port << 4) | attempt);
}

/*
 * interlock_shim_inspect - say whose segment sits at key, and whether it is in use
 *
 * Ours means: owned by this user, large enough, and carrying our magic and
 * the expected port.  nattch is read before we attach to check the magic,
 * so our own look does not count.  Returns an enum shim_state, or -errno.
 */
int interlock_shim_inspect(key_t key, int port, struct shim_seen *seen)
{
	struct shmid_ds ds;
	struct interlock_shim hdr;
	void *p;
	int id;

	memset(seen, 0, sizeof(*seen));
	id = shmget(key, 0, 0);
	if (id < 0) {
		if (errno == ENOENT || errno == EIDRM)
			return SHIM_ABSENT;
		if (errno == EACCES)
			return SHIM_FOREIGN;
		return -errno;
	}
	if (shmctl(id, IPC_STAT, &ds) != 0) {
		if (errno == EINVAL || errno == EIDRM)
			return SHIM_ABSENT;
		if (errno == EACCES)
			return SHIM_FOREIGN;
		return -errno;
	}
	if (ds.shm_perm.uid != geteuid() || ds.shm_segsz < sizeof(hdr))
		return SHIM_FOREIGN;
	p = shmat(id, NULL, SHM_RDONLY);
	if (p == (void *)-1) {
		if (errno == EINVAL || errno == EIDRM)
			return SHIM_ABSENT;
		if (errno == EACCES)
			return SHIM_FOREIGN;
		return -errno;
	}
	memcpy(&hdr, p, sizeof(hdr));
	shmdt(p);
	if (hdr.magic != INTERLOCK_SHIM_MAGIC || hdr.port != port)
		return SHIM_FOREIGN;
	seen->shmid = id;
	seen->creator = (pid_t)hdr.creator_pid;
	seen->nattch = (unsigned long)ds.shm_nattch;
	return seen->nattch == 0 ? SHIM_OURS_UNUSED : SHIM_OURS_IN_USE;
}

/* The refusal for a shim of ours that is still attached: -EBUSY for a live
 * server, -EAGAIN for the orphans of a dead one. */
int interlock_shim_refuse(const struct interlock *il, key_t key,
			  const struct shim_seen *seen, pid_t lock_pid,
			  char *err, size_t errlen)
{
	pid_t who = seen->creator > 0 ? seen->creator : lock_pid;

	if (who == getpid()) {
		errbuf_set(err, errlen,
			   "this process (PID %d) already holds the interlock for port %d; "
			   "release it before acquiring it again",
			   (int)who, il->port);
	} else if (interlock_pid_alive(who)) {
		errbuf_set(err, errlen,
			   "another shmkv-server (PID %d) is running on port %d (its shared "
			   "memory interlock 0x%08x has %lu processes attached); stop it "
			   "first, or use another --port",
			   (int)who, il->port, (unsigned)key, seen->nattch);
	} else {
		errbuf_set(err, errlen,
			   "processes of a previous server (PID %d) are still attached to its "
			   "shared memory (interlock key 0x%08x, %lu processes attached); kill "
			   "them (e.g. pkill -f shmkv-server) and start again",
			   (int)who, (unsigned)key, seen->nattch);
		return -EAGAIN;
	}
	return -EBUSY;
}

/*
 * key_port - the number the shim keys derive from: the TCP port, or for a
 * server without TCP (port 0) one derived from its run directory's inode,
 * above every real port so the two kinds of key never meet.
 */
static int key_port(const struct interlock *il)
{
	struct stat st;

	if (il->port != 0)
		return il->port;
	if (stat(il->run_dir, &st) < 0)
		return INTERLOCK_NO_TCP_BASE;
	return INTERLOCK_NO_TCP_BASE + (int)(st.st_ino & 0x7fff);
}

/*
 * interlock_shim_create - create and attach the shim at the first free key of the port
 *
 * Steps over keys held by other programs, removes stale shims of ours and
 * refuses (-EBUSY) at a shim of ours that is still attached.  On success
 * fills il->shim_key, il->shim_id and il->shim.
 */
int interlock_shim_create(struct interlock *il, char *err, size_t errlen)
{
	int attempt, again = 0, rc;

	for (attempt = 0; attempt < INTERLOCK_KEY_TRIES; attempt++) {
		key_t key = interlock_shim_key(key_port(il), attempt);
		struct shim_seen seen;
		void *p;
		int id;

		id = shmget(key, INTERLOCK_SHIM_SIZE,
			    IPC_CREAT | IPC_EXCL | 0600);
		if (id >= 0) {
			p = shmat(id, NULL, 0);
			if (p == (void *)-1) {
				rc = -errno;
				shmctl(id, IPC_RMID, NULL);
				errbuf_set(err, errlen,
					   "could not attach shared memory interlock "
					   "0x%08x: %s",
					   (unsigned)key, strerror(-rc));
				return rc;
			}
			il->shim = p;
			il->shim->magic = INTERLOCK_SHIM_MAGIC;
			il->shim->creator_pid = getpid();
			il->shim->port = il->port;
			il->shim_key = key;
			il->shim_id = id;
			return 0;
		}
		if (errno != EEXIST) {
			rc = -errno;
			errbuf_set(err, errlen,
				   "could not create shared memory interlock 0x%08x "
				   "for port %d: %s; check kernel.shmmni and ipcs -m",
				   (unsigned)key, il->port, strerror(-rc));
			return rc;
		}

		rc = interlock_shim_inspect(key, il->port, &seen);
		if (rc < 0) {
			errbuf_set(err, errlen,
				   "could not inspect shared memory segment 0x%08x: "
				   "%s",
				   (unsigned)key, strerror(-rc));
			return rc;
		}
		if (rc == SHIM_OURS_IN_USE)
			return interlock_shim_refuse(il, key, &seen, 0, err,
						     errlen);
		if (rc == SHIM_FOREIGN)
			continue;
		/* Absent now, or stale: take the same key again, a bounded number
		 * of times in case it keeps changing under us. */
		if (rc == SHIM_OURS_UNUSED &&
		    shmctl(seen.shmid, IPC_RMID, NULL) == 0)
			il->stale_shims_removed++;
		if (++again < LOCK_FILE_TRIES)
			attempt--;
	}
	errbuf_set(err, errlen,
		   "all %d shared memory keys for port %d (0x%08x to 0x%08x) are taken by "
		   "other programs' segments; see ipcs -m, or use another --port",
		   INTERLOCK_KEY_TRIES, il->port,
		   (unsigned)interlock_shim_key(key_port(il), 0),
		   (unsigned)interlock_shim_key(key_port(il),
						INTERLOCK_KEY_TRIES - 1));
	return -EADDRINUSE;
}

/* Undo interlock_shim_create: detach and remove. */
void interlock_shim_destroy(struct interlock *il)
{
	if (il->shim != NULL)
		shmdt(il->shim);
	if (il->shim_id >= 0)
		shmctl(il->shim_id, IPC_RMID, NULL);
	il->shim = NULL;
	il->shim_id = -1;
}
