/*
 * interlock_lock_file.c - the lock file <run_dir>/shmkv.pid: its format,
 * and the only code that reads or writes it
 *
 * Four lines (interlock.h): the supervisor's PID, the port, the Unix socket
 * path, and the shim key once the shim exists.  It is created with O_EXCL,
 * as PostgreSQL's postmaster.pid (miscinit.c CreateLockFile): a file whose
 * PID is alive means another server owns the run directory; a dead PID's
 * file is stale and removed, after its shim was found unused.  A live
 * upgrade renames a whole new file over it, so that it names a live
 * supervisor at every moment.
 *
 * Interface routines:
 *   interlock_rewrite_lock_file  name this process, atomically (interlock.h)
 *   interlock_holder_pid         the PID a run directory's lock file names
 *   interlock_lock_file_read, interlock_lock_file_create,
 *   interlock_lock_file_add_key  (interlock_internal.h)
 */
#include "interlock_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#include "errbuf.h"

/* How long to wait for a starting server to finish writing its lock file. */
#define LOCK_FILE_EMPTY_WAIT_NS (10 * 1000 * 1000L)
#define LOCK_FILE_EMPTY_TRIES 50

/*
 * next_line - cut the line at *p off and advance *p past it
 *
 * Returns the line, NUL-terminated in place, or NULL if no newline ends it
 * (the file is still being written).
 */
static char *next_line(char **p)
{
	char *line = *p, *nl = strchr(line, '\n');

	if (nl == NULL)
		return NULL;
	*nl = '\0';
	*p = nl + 1;
	return line;
}

/* The whole line as a number from min to max, or -1. */
static long line_number(const char *line, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(line, &end, 10);
	if (errno != 0 || end == line || *end != '\0' || v < min || v > max)
		return -1;
	return v;
}

/* Read up to len - 1 bytes of path into buf, NUL-terminated; 0 or -errno. */
static int read_small_file(const char *path, char *buf, size_t len)
{
	size_t used = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (used < len - 1) {
		ssize_t n = read(fd, buf + used, len - 1 - used);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int rc = -errno;

			close(fd);
			return rc;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	close(fd);
	buf[used] = '\0';
	return 0;
}

/*
 * interlock_lock_file_read - parse an existing lock file
 *
 * Returns 0, -ENOENT if it vanished, -ENODATA if it is empty or its first
 * three lines are incomplete (a server is still writing it, or crashed
 * while doing so), -EINVAL if it is not a lock file of ours, or another
 * -errno if it cannot be read.
 */
int interlock_lock_file_read(const char *path, struct lock_info *li)
{
	char buf[3 * INTERLOCK_PATH_MAX];
	char *p = buf, *pid, *port, *key;
	long v;
	int rc;

	memset(li, 0, sizeof(*li));
	rc = read_small_file(path, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	pid = next_line(&p);
	if (pid == NULL)
		return -ENODATA;
	v = line_number(pid, 1, INT32_MAX);
	if (v < 0)
		return -EINVAL;
	li->pid = (pid_t)v;
	port = next_line(&p);
	if (port == NULL)
		return -ENODATA;
	v = line_number(port, 0, 65535); /* 0: a server without TCP (-p 0) */
	if (v < 0)
		return -EINVAL;
	li->port = (int)v;
	/* Line 3, the socket path: we need only skip it. */
	if (next_line(&p) == NULL)
		return -ENODATA;
	/* Line 4: shim key, written only once the shim exists. */
	key = next_line(&p);
	if (key != NULL) {
		char *end;
		unsigned long k;

		errno = 0;
		k = strtoul(key, &end, 0);
		if (errno != 0 || end == key || *end != '\0' || k == 0 ||
		    k > UINT32_MAX)
			return -EINVAL;
		li->has_key = true;
		li->key = (key_t)k;
	}
	return 0;
}

/* Write all of buf at offset off, or return -errno. */
static int write_all(int fd, const char *buf, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/*
 * stale_shim_remove - remove the shim a dead server's lock file names, if
 * nobody is attached to it any more
 *
 * Returns 0 when it is gone (or was never ours), the refusal of
 * interlock_shim_refuse while processes are still attached, or -errno.
 */
static int stale_shim_remove(struct interlock *il, const struct lock_info *li,
			     char *err, size_t errlen)
{
	struct shim_seen seen;
	int rc;

	rc = interlock_shim_inspect(li->key, li->port, &seen);
	if (rc == SHIM_OURS_IN_USE)
		return interlock_shim_refuse(il, li->key, &seen, li->pid, err,
					     errlen);
	if (rc == SHIM_OURS_UNUSED) {
		if (shmctl(seen.shmid, IPC_RMID, NULL) == 0)
			il->stale_shims_removed++;
		else if (errno != EINVAL && errno != EIDRM) {
			rc = -errno;
			errbuf_set(err, errlen,
				   "could not remove stale shared memory "
				   "interlock 0x%08x of dead server PID %d: %s; remove it "
				   "with ipcrm -M 0x%08x",
				   (unsigned)li->key, (int)li->pid,
				   strerror(-rc), (unsigned)li->key);
			return rc;
		}
	} else if (rc < 0) {
		errbuf_set(err, errlen,
			   "could not inspect shared memory interlock "
			   "0x%08x named in %s: %s",
			   (unsigned)li->key, il->lock_path, strerror(-rc));
		return rc;
	}
	return 0;
}

/* The refusal for a lock file that cannot be parsed (rc from
 * interlock_lock_file_read, not -ENOENT): always negative. */
static int lock_file_refuse_unread(const struct interlock *il, int rc,
				   char *err, size_t errlen)
{
	if (rc == -ENODATA) {
		errbuf_set(err, errlen,
			   "lock file %s is empty or incomplete; either another "
			   "shmkv-server is starting with run directory %s, or the file "
			   "was left by a crash during start-up; if no server is "
			   "starting, remove it",
			   il->lock_path, il->run_dir);
		return -EBUSY;
	}
	if (rc == -EINVAL) {
		errbuf_set(err, errlen,
			   "lock file %s is not a shmkv lock file; if no shmkv-server "
			   "uses run directory %s, remove it",
			   il->lock_path, il->run_dir);
		return -EINVAL;
	}
	errbuf_set(err, errlen, "could not read lock file %s: %s",
		   il->lock_path, strerror(-rc));
	return rc;
}

/*
 * lock_file_clear_stale - judge the lock file that is in the way, and
 * remove it if its server is dead
 *
 * Returns 0 when the file is gone (removed here, or under us), 1 when it
 * is still being written and was given a moment (*empty_seen counts those
 * moments), or a negative refusal with a message in err.
 */
static int lock_file_clear_stale(struct interlock *il, int *empty_seen,
				 char *err, size_t errlen)
{
	struct lock_info li;
	int rc;

	rc = interlock_lock_file_read(il->lock_path, &li);
	if (rc == -ENOENT)
		return 0; /* removed under us: try to create it again */
	if (rc == -ENODATA && ++*empty_seen < LOCK_FILE_EMPTY_TRIES) {
		/* A server writes its first lines right after creating the
		 * file; give it a moment before calling the file a wreck. */
		struct timespec ts = { 0, LOCK_FILE_EMPTY_WAIT_NS };

		nanosleep(&ts, NULL);
		return 1;
	}
	if (rc < 0)
		return lock_file_refuse_unread(il, rc, err, errlen);

	/* Our own PID in the file can only be left from before a PID
	 * wrap or a container restart (or from this very process, which
	 * the shim check below reports); treat it as stale, as
	 * PostgreSQL does. */
	if (li.pid != getpid() && interlock_pid_alive(li.pid)) {
		char where[32] = "without TCP";

		if (li.port != 0)
			snprintf(where, sizeof(where), "on port %d", li.port);
		errbuf_set(err, errlen,
			   "another shmkv-server (PID %d) is running %s with run "
			   "directory %s; stop it first, or use another --port / "
			   "--run-dir (if PID %d is no shmkv-server, remove %s)",
			   (int)li.pid, where, il->run_dir, (int)li.pid,
			   il->lock_path);
		return -EBUSY;
	}
	if (li.has_key) {
		rc = stale_shim_remove(il, &li, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (unlink(il->lock_path) != 0 && errno != ENOENT) {
		rc = -errno;
		errbuf_set(err, errlen,
			   "could not remove stale lock file %s of dead "
			   "server PID %d: %s; remove it by hand",
			   il->lock_path, (int)li.pid, strerror(-rc));
		return rc;
	}
	il->stale_pid = li.pid;
	return 0;
}

/*
 * interlock_lock_file_create - create the lock file, clearing a dead
 * server's first
 *
 * On success returns the open descriptor with the first three lines
 * written.  Refuses (-EBUSY) while the PID in an existing file is alive, or
 * while the shim it names still has processes attached.
 */
int interlock_lock_file_create(struct interlock *il, char *err, size_t errlen)
{
	char buf[INTERLOCK_PATH_MAX + 64];
	int empty_seen = 0;
	int tries, rc, n;

	n = snprintf(buf, sizeof(buf), "%d\n%d\n%s\n", (int)getpid(), il->port,
		     il->socket_path);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		errbuf_set(err, errlen, "lock file contents for %s too long",
			   il->lock_path);
		return -ENAMETOOLONG;
	}

	for (tries = 0; tries < LOCK_FILE_TRIES; tries++) {
		int fd;

		fd = open(il->lock_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			  0600);
		if (fd >= 0) {
			rc = write_all(fd, buf, (size_t)n, 0);
			if (rc < 0) {
				errbuf_set(err, errlen,
					   "could not write lock file %s: %s; "
					   "check the free space of its file system",
					   il->lock_path, strerror(-rc));
				close(fd);
				unlink(il->lock_path);
				return rc;
			}
			return fd;
		}
		if (errno != EEXIST) {
			rc = -errno;
			errbuf_set(err, errlen,
				   "could not create lock file %s: %s; check the "
				   "permissions of run directory %s",
				   il->lock_path, strerror(-rc), il->run_dir);
			return rc;
		}
		rc = lock_file_clear_stale(il, &empty_seen, err, errlen);
		if (rc < 0)
			return rc;
		if (rc == 1)
			tries--; /* a moment for a starting server is no try */
	}
	errbuf_set(err, errlen,
		   "could not create lock file %s after %d attempts; "
		   "another server seems to be starting and stopping there",
		   il->lock_path, LOCK_FILE_TRIES);
	return -EBUSY;
}

/*
 * interlock_lock_file_add_key - complete the lock file with line 4
 *
 * Written once the shim's key is known, so that a later server can look
 * for our orphans at the right key.  0, or -errno with a message.
 */
int interlock_lock_file_add_key(int fd, const struct interlock *il, char *err,
				size_t errlen)
{
	char line[32];
	int n, rc;

	n = snprintf(line, sizeof(line), "0x%08x\n", (unsigned)il->shim_key);
	rc = write_all(fd, line, (size_t)n, lseek(fd, 0, SEEK_END));
	if (rc < 0)
		errbuf_set(err, errlen,
			   "could not write lock file %s: %s; check the "
			   "free space of its file system",
			   il->lock_path, strerror(-rc));
	return rc;
}

/*
 * interlock_rewrite_lock_file - name this process in il's lock file
 *
 * Writes the whole file (all four lines) as <lock file>.new and renames it
 * over the old one, so that the lock file names a live supervisor at every
 * moment of a live upgrade.  Returns 0 or -errno; nothing is left behind
 * on failure.
 */
int interlock_rewrite_lock_file(const struct interlock *il)
{
	char tmp[INTERLOCK_PATH_MAX + 8], buf[INTERLOCK_PATH_MAX + 64];
	int fd, n, rc = 0;

	n = snprintf(buf, sizeof(buf), "%d\n%d\n%s\n0x%08x\n", (int)getpid(),
		     il->port, il->socket_path, (unsigned)il->shim_key);
	snprintf(tmp, sizeof(tmp), "%s.new", il->lock_path);
	(void)unlink(tmp); /* left by a server that died right here */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return -errno;
	if (n < 0 || (size_t)n >= sizeof(buf))
		rc = -ENAMETOOLONG;
	else
		rc = write_all(fd, buf, (size_t)n, 0);
	close(fd);
	if (rc == 0 && rename(tmp, il->lock_path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

/*
 * interlock_holder_pid - the supervisor the lock file of run_dir names
 *
 * Returns its PID, or 0 if there is no lock file, it cannot be read, or it
 * is not (yet) a whole lock file of ours.  Whether that PID is alive is the
 * caller's question.
 */
pid_t interlock_holder_pid(const char *run_dir)
{
	char path[INTERLOCK_PATH_MAX + sizeof("/" INTERLOCK_LOCK_FILE)];
	struct lock_info li;
	int n;

	n = snprintf(path, sizeof(path), "%s/%s", run_dir, INTERLOCK_LOCK_FILE);
	if (n < 0 || (size_t)n >= sizeof(path))
		return 0;
	return interlock_lock_file_read(path, &li) == 0 ? li.pid : 0;
}
