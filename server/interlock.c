/*
 * interlock.c - no two servers on one port, no server beside orphans
 *
 * Two locks, as PostgreSQL takes them (miscinit.c CreateLockFile,
 * sysv_shmem.c PGSharedMemoryCreate / PGSharedMemoryIsInUse):
 *
 * The lock file <run_dir>/shmkv.pid (interlock_lock_file.c) is created with
 * O_EXCL and names the supervisor.  If it exists and its PID is alive,
 * another server owns the run directory.  If its PID is dead, the file is
 * stale, but the server's workers may not be: a SIGKILLed supervisor leaves
 * its workers serving from the old segment.  The lock file cannot tell,
 * because it is the supervisor's alone.
 *
 * The shim (interlock_shim.c) can.  It is a tiny System V segment that the
 * supervisor attaches and never detaches; fork() inherits the attachment,
 * so each worker holds it too and the kernel keeps shm_nattch equal to the
 * number of the server's live processes, whoever of them dies first.  (A
 * memfd cannot do this: nothing reports how many processes map it.)  A shim
 * of ours with nattch > 0 therefore means a live server or its orphans, and
 * start-up refuses; nattch == 0 means nobody is left and the shim can be
 * removed.
 *
 * NOTE: as in PostgreSQL, two servers that find the same stale lock file at
 * the same moment can both remove it; the shim then stops the second one,
 * which is why the shim is checked even when the lock file was created
 * without trouble.  flock() on the lock file was rejected: it is released
 * when the supervisor dies, exactly when we still need to see the orphans.
 *
 * A live upgrade's successor does not acquire: it adopts the interlock the
 * running server holds (interlock_adopt), renaming a lock file naming
 * itself over the old one and attaching the same shim, so that at every
 * moment the lock file names a live supervisor and the shim has processes
 * attached.
 *
 * Interface routines:
 *   interlock_default_run_dir  "/tmp/shmkv-<port>"
 *   interlock_acquire          create run dir, lock file and shim, or refuse
 *   interlock_adopt            take over a running server's, for an upgrade
 *   interlock_reclaim          name this process again after a failed one
 *   interlock_release          remove shim and lock file (acquiring process only)
 *   interlock_release_cb       interlock_release as an onexit_fn
 * (interlock_shim.c: interlock_shim_key; interlock_lock_file.c:
 * interlock_rewrite_lock_file, interlock_holder_pid)
 */
#include "interlock_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errbuf.h"

/*
 * interlock_default_run_dir - the run directory used when none is given
 *
 * Writes "/tmp/shmkv-<port>" into buf.  Returns 0, or -ENAMETOOLONG if buf
 * is too small (buf then holds an empty string).
 */
int interlock_default_run_dir(int port, char *buf, size_t len)
{
	int n;

	if (buf == NULL || len == 0)
		return -ENAMETOOLONG;
	n = snprintf(buf, len, "/tmp/shmkv-%d", port);
	if (n < 0 || (size_t)n >= len) {
		buf[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

/*
 * run_dir_prepare - make sure the run directory exists and is ours alone
 *
 * Creates the last component with mode 0700 if missing (the parent must
 * exist), noting in il->created_run_dir that it is ours to remove.  Refuses a non-directory, a directory of another user, and one
 * that group or others may write: anyone who can write there could replace
 * our lock file or socket.
 */
static int run_dir_prepare(struct interlock *il, char *err, size_t errlen)
{
	const char *dir = il->run_dir;
	struct stat st;
	int rc;

	if (mkdir(dir, 0700) == 0) {
		il->created_run_dir = true;
		/* The umask may have taken bits away; the owner needs all three. */
		if (chmod(dir, 0700) != 0) {
			rc = -errno;
			errbuf_set(err, errlen,
				   "could not set mode 0700 on run directory %s: %s",
				   dir, strerror(-rc));
			return rc;
		}
	} else if (errno != EEXIST) {
		rc = -errno;
		errbuf_set(err, errlen,
			   "could not create run directory %s: %s; create its parent "
			   "directory or use another --run-dir",
			   dir, strerror(-rc));
		return rc;
	}
	if (stat(dir, &st) != 0) {
		rc = -errno;
		errbuf_set(err, errlen, "could not stat run directory %s: %s",
			   dir, strerror(-rc));
		return rc;
	}
	if (!S_ISDIR(st.st_mode)) {
		errbuf_set(err, errlen,
			   "run directory %s exists but is not a directory; remove it "
			   "or use another --run-dir",
			   dir);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid()) {
		errbuf_set(err, errlen,
			   "run directory %s is owned by user %u, not by this user (%u); "
			   "use another --run-dir or run the server as its owner",
			   dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		errbuf_set(err, errlen,
			   "run directory %s has mode %04o, writable by group or others; "
			   "run \"chmod 700 %s\" or use another --run-dir",
			   dir, (unsigned)(st.st_mode & 07777), dir);
		return -EPERM;
	}
	return 0;
}

/*
 * run_dir_remove_if_ours - remove the run directory if this acquire created
 * it.  rmdir removes only an empty directory: whatever someone else put
 * there since keeps it, and is never deleted.
 */
static void run_dir_remove_if_ours(struct interlock *il)
{
	if (il->created_run_dir && rmdir(il->run_dir) == 0)
		il->created_run_dir = false;
}

/* Copy src into dst of size len, or fail with a message naming what. */
static int copy_path(char *dst, size_t len, const char *src, const char *what,
		     char *err, size_t errlen)
{
	size_t n = strlen(src);

	if (n >= len) {
		errbuf_set(err, errlen,
			   "%s %.64s... is %zu bytes long, more than the %zu "
			   "allowed; use a shorter path",
			   what, src, n, len - 1);
		return -ENAMETOOLONG;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

/*
 * interlock_set_paths - check the arguments and fill in il's names
 *
 * Zeroes il (nothing held), then sets its port, run directory, socket path
 * and lock file path.  Returns 0, or -EINVAL / -ENAMETOOLONG with a message.
 */
static int interlock_set_paths(struct interlock *il, const char *run_dir,
			       int port, const char *socket_path, char *err,
			       size_t errlen)
{
	int rc, n;

	memset(il, 0, sizeof(*il));
	il->shim_id = -1;
	if (run_dir == NULL || run_dir[0] == '\0') {
		errbuf_set(err, errlen, "no run directory given; pass --run-dir");
		return -EINVAL;
	}
	if (port < 0 || port > 65535) {
		errbuf_set(err, errlen,
			   "port %d is out of range; use a port from 1 to 65535, "
			   "or 0 for no TCP",
			   port);
		return -EINVAL;
	}
	if (socket_path == NULL)
		socket_path = "";
	if (strchr(socket_path, '\n') != NULL) {
		errbuf_set(err, errlen,
			   "socket path \"%s\" contains a newline; use another "
			   "path",
			   socket_path);
		return -EINVAL;
	}
	il->port = port;
	rc = copy_path(il->run_dir, sizeof(il->run_dir), run_dir,
		       "run directory", err, errlen);
	if (rc == 0)
		rc = copy_path(il->socket_path, sizeof(il->socket_path),
			       socket_path, "socket path", err, errlen);
	if (rc < 0)
		return rc;
	n = snprintf(il->lock_path, sizeof(il->lock_path), "%s/%s", run_dir,
		     INTERLOCK_LOCK_FILE);
	if (n < 0 || (size_t)n >= sizeof(il->lock_path)) {
		errbuf_set(err, errlen,
			   "run directory %.64s... is too long for its lock file "
			   "path; use a shorter --run-dir",
			   run_dir);
		return -ENAMETOOLONG;
	}
	return 0;
}

/*
 * interlock_acquire - take the run directory and the port for this process
 *
 * Creates run_dir (mode 0700) if missing, the lock file in it, and the shim,
 * and leaves the shim attached so that children forked later inherit it.
 * Removes a dead server's lock file and unused shim on the way, reporting
 * them in il->stale_pid and il->stale_shims_removed.
 *
 * Returns 0 with *il filled in, or a negative errno with nothing created
 * and a message in err: -EBUSY while another server is alive, -EAGAIN
 * while processes of a dead one are still attached (its workers, which
 * exit by themselves once their supervisor is gone: worth trying again),
 * -ENOTDIR / -EPERM for an unusable run directory, -EINVAL for a bad
 * argument, and others from the system calls.
 */
int interlock_acquire(struct interlock *il, const char *run_dir, int port,
		      const char *socket_path, char *err, size_t errlen)
{
	int fd, rc;

	rc = interlock_set_paths(il, run_dir, port, socket_path, err, errlen);
	if (rc < 0)
		return rc;
	rc = run_dir_prepare(il, err, errlen);
	if (rc < 0) {
		run_dir_remove_if_ours(il);
		return rc;
	}
	fd = interlock_lock_file_create(il, err, errlen);
	if (fd < 0) {
		run_dir_remove_if_ours(il);
		return fd;
	}

	rc = interlock_shim_create(il, err, errlen);
	if (rc == 0) {
		rc = interlock_lock_file_add_key(fd, il, err, errlen);
		if (rc < 0)
			interlock_shim_destroy(il);
	}
	close(fd);
	if (rc < 0) {
		unlink(il->lock_path);
		run_dir_remove_if_ours(il);
		return rc;
	}
	il->owner_pid = getpid();
	return 0;
}

/*
 * interlock_adopt - take over the interlock a running server holds
 *
 * For a live upgrade's successor: the server whose supervisor is holder
 * took run_dir's interlock with interlock_acquire (or adopted it), and its
 * shim sits at shim_key.  Checks that the lock file names holder and that
 * the segment at shim_key is our shim for port, attaches it, and renames a
 * lock file naming this process over the old one; the shim's creator
 * becomes this process too, since it is whom a later refusal names.
 * created_run_dir says whether the first server made the run directory, so
 * that the last one to release removes it.
 *
 * Returns 0 with *il held by this process (interlock_release undoes it),
 * or a negative errno with a message and the running server's interlock
 * untouched: -ESTALE if the lock file names another PID, -EINVAL if the
 * shim is not there or not ours.
 */
int interlock_adopt(struct interlock *il, const char *run_dir, int port,
		    const char *socket_path, key_t shim_key, pid_t holder,
		    bool created_run_dir, char *err, size_t errlen)
{
	struct lock_info li;
	struct shim_seen seen;
	const char *why;
	void *shim;
	int rc;

	rc = interlock_set_paths(il, run_dir, port, socket_path, err, errlen);
	if (rc < 0)
		return rc;
	il->shim_key = shim_key;
	if (interlock_lock_file_read(il->lock_path, &li) != 0 ||
	    li.pid != holder) {
		errbuf_set(err, errlen,
			   "the lock file %s does not name the server that "
			   "started this upgrade (pid %d)",
			   il->lock_path, (int)holder);
		return -ESTALE;
	}
	rc = interlock_shim_inspect(shim_key, port, &seen);
	if (rc == SHIM_OURS_IN_USE || rc == SHIM_OURS_UNUSED) {
		shim = shmat(seen.shmid, NULL, 0);
		why = shim == (void *)-1 ? strerror(errno) : NULL;
	} else {
		shim = (void *)-1;
		why = rc < 0 ? strerror(-rc) : "not ours";
	}
	if (shim == (void *)-1) {
		errbuf_set(err, errlen,
			   "cannot attach the running server's shared memory "
			   "interlock 0x%08x: %s",
			   (unsigned)shim_key, why);
		return -EINVAL;
	}
	il->shim = shim;
	il->shim_id = seen.shmid;
	rc = interlock_rewrite_lock_file(il);
	if (rc < 0) {
		errbuf_set(err, errlen, "cannot rewrite the lock file %s: %s",
			   il->lock_path, strerror(-rc));
		shmdt(shim);
		il->shim = NULL;
		il->shim_id = -1;
		return rc;
	}
	il->shim->creator_pid = getpid();
	il->created_run_dir = created_run_dir;
	il->owner_pid = getpid();
	return 0;
}

/*
 * interlock_reclaim - name this process again as the interlock's holder
 *
 * For the old server of a live upgrade whose successor adopted the
 * interlock and died before serving: the lock file and the shim named the
 * successor, and name this process again.  The shim is this process's all
 * along (it never detached).  Returns 0, or -errno if the lock file could
 * not be rewritten (the shim names this process either way).
 */
int interlock_reclaim(struct interlock *il)
{
	int rc = interlock_rewrite_lock_file(il);

	if (il->shim != NULL)
		il->shim->creator_pid = getpid();
	return rc;
}

/*
 * interlock_release - give up the interlock taken by interlock_acquire
 *
 * Only the process that acquired it releases it: in any other process
 * (a forked worker) this returns -EPERM and changes nothing.  Releasing
 * one not held returns 0, so it is safe to call twice.
 *
 * Call it after the workers are reaped.  If other processes are still
 * attached to the shim, this detaches but leaves shim and lock file in
 * place and returns -EBUSY: they are exactly what stops a new server from
 * starting beside those processes, and the next acquire removes them once
 * the processes are gone.  Otherwise removes the shim first, then the lock
 * file, so that no new server can see a lock file without its shim, then
 * the run directory if acquire created it and nothing else is left in it.
 */
int interlock_release(struct interlock *il, char *err, size_t errlen)
{
	struct shmid_ds ds;
	int rc = 0;

	if (il == NULL || il->owner_pid == 0)
		return 0;
	if (il->owner_pid != getpid()) {
		errbuf_set(err, errlen,
			   "process %d may not release the interlock of PID %d "
			   "on port %d",
			   (int)getpid(), (int)il->owner_pid, il->port);
		return -EPERM;
	}

	if (shmctl(il->shim_id, IPC_STAT, &ds) == 0 && ds.shm_nattch > 1) {
		errbuf_set(err, errlen,
			   "%lu other processes are still attached to the shared memory "
			   "interlock 0x%08x of port %d; left it and lock file %s in place so "
			   "that no new server starts beside them; kill them, then start again",
			   (unsigned long)ds.shm_nattch - 1,
			   (unsigned)il->shim_key, il->port, il->lock_path);
		shmdt(il->shim);
		il->shim = NULL;
		il->shim_id = -1;
		il->owner_pid = 0;
		return -EBUSY;
	}

	if (shmdt(il->shim) != 0) {
		rc = -errno;
		errbuf_set(err, errlen,
			   "could not detach shared memory interlock 0x%08x: %s",
			   (unsigned)il->shim_key, strerror(-rc));
	}
	if (shmctl(il->shim_id, IPC_RMID, NULL) != 0 && rc == 0) {
		rc = -errno;
		errbuf_set(err, errlen,
			   "could not remove shared memory interlock 0x%08x: "
			   "%s; remove it with ipcrm -M 0x%08x",
			   (unsigned)il->shim_key, strerror(-rc),
			   (unsigned)il->shim_key);
	}
	if (unlink(il->lock_path) != 0 && rc == 0) {
		rc = -errno;
		errbuf_set(err, errlen,
			   "could not remove lock file %s: %s; remove it by hand",
			   il->lock_path, strerror(-rc));
	}
	run_dir_remove_if_ours(il);
	il->shim = NULL;
	il->shim_id = -1;
	il->owner_pid = 0;
	return rc;
}

/*
 * interlock_release_cb - interlock_release for the onexit stack
 *
 * Takes a struct interlock *.  At exit there is nobody left to report a
 * failure to, so errors are dropped; what is left behind is what the next
 * acquire cleans up or refuses on.
 */
void interlock_release_cb(void *il)
{
	(void)interlock_release(il, NULL, 0);
}
