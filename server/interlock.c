/*
 * interlock.c - no two servers on one port, no server beside orphans
 *
 * Two locks, as PostgreSQL takes them (miscinit.c CreateLockFile,
 * sysv_shmem.c PGSharedMemoryCreate / PGSharedMemoryIsInUse):
 *
 * The lock file <run_dir>/shmkv.pid is created with O_EXCL and names the
 * supervisor.  If it exists and its PID is alive, another server owns the
 * run directory.  If its PID is dead, the file is stale, but the server's
 * workers may not be: a SIGKILLed supervisor leaves its workers serving from
 * the old segment.  The lock file cannot tell, because it is the
 * supervisor's alone.
 *
 * The shim can.  It is a tiny System V segment that the supervisor attaches
 * and never detaches; fork() inherits the attachment, so each worker holds
 * it too and the kernel keeps shm_nattch equal to the number of the
 * server's live processes, whoever of them dies first.  (A memfd cannot do
 * this: nothing reports how many processes map it.)  A shim of ours with
 * nattch > 0 therefore means a live server or its orphans, and start-up
 * refuses; nattch == 0 means nobody is left and the shim can be removed.
 *
 * NOTE: as in PostgreSQL, two servers that find the same stale lock file at
 * the same moment can both remove it; the shim then stops the second one,
 * which is why the shim is checked even when the lock file was created
 * without trouble.  flock() on the lock file was rejected: it is released
 * when the supervisor dies, exactly when we still need to see the orphans.
 *
 * Interface routines:
 *   interlock_default_run_dir  "/tmp/shmkv-<port>"
 *   interlock_shim_key         the key of a port's n-th shim candidate
 *   interlock_acquire          create run dir, lock file and shim, or refuse
 *   interlock_release          remove shim and lock file (acquiring process only)
 *   interlock_release_cb       interlock_release as an onexit_fn
 */
#include "interlock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "errbuf.h"

/* How often acquire goes round after removing stale state or finding the
 * lock file half-written, before it gives up (PostgreSQL tries 100 times). */
#define LOCK_FILE_TRIES 100
/* How long to wait for a starting server to finish writing its lock file. */
#define LOCK_FILE_EMPTY_WAIT_NS (10 * 1000 * 1000L)
#define LOCK_FILE_EMPTY_TRIES 50

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

struct lock_info {
	pid_t pid;
	int port;
	bool has_key;
	key_t key;
};

/* A PID is alive if we may signal it, or if it exists but is someone
 * else's (EPERM).  A zombie counts as alive; its parent must reap it. */
static bool
pid_alive(pid_t pid)
{
	if (pid <= 0)
		return false;
	return kill(pid, 0) == 0 || errno == EPERM;
}

/*
 * interlock_default_run_dir - the run directory used when none is given
 *
 * Writes "/tmp/shmkv-<port>" into buf.  Returns 0, or -ENAMETOOLONG if buf
 * is too small (buf then holds an empty string).
 */
int
interlock_default_run_dir(int port, char *buf, size_t len)
{
	int n;

	if (buf == NULL || len == 0)
		return -ENAMETOOLONG;
	n = snprintf(buf, len, "/tmp/shmkv-%d", port);
	if (n < 0 || (size_t) n >= len) {
		buf[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

/*
 * interlock_shim_key - the System V key of the attempt-th shim of a port
 *
 * Keys of different ports never overlap (see interlock.h).  Returns
 * IPC_PRIVATE for a port or attempt out of range, which no caller of
 * shmget with a fixed key would mistake for a real key.
 */
key_t
interlock_shim_key(int port, int attempt)
{
	if (port < 1 || port > INTERLOCK_NO_TCP_BASE + 0x7fff || attempt < 0 ||
	    attempt >= INTERLOCK_KEY_TRIES)
		return IPC_PRIVATE;
	return (key_t) (INTERLOCK_KEY_BASE | (port << 4) | attempt);
}

/*
 * run_dir_prepare - make sure the run directory exists and is ours alone
 *
 * Creates the last component with mode 0700 if missing (the parent must
 * exist), noting in il->created_run_dir that it is ours to remove.  Refuses a non-directory, a directory of another user, and one
 * that group or others may write: anyone who can write there could replace
 * our lock file or socket.
 */
static int
run_dir_prepare(struct interlock *il, char *err, size_t errlen)
{
	const char *dir = il->run_dir;
	struct stat st;
	int rc;

	if (mkdir(dir, 0700) == 0) {
		il->created_run_dir = true;
		/* The umask may have taken bits away; the owner needs all three. */
		if (chmod(dir, 0700) != 0) {
			rc = -errno;
			errbuf_set(err, errlen, "could not set mode 0700 on run directory %s: %s",
			       dir, strerror(-rc));
			return rc;
		}
	} else if (errno != EEXIST) {
		rc = -errno;
		errbuf_set(err, errlen,
		       "could not create run directory %s: %s; create its parent "
		       "directory or use another --run-dir", dir, strerror(-rc));
		return rc;
	}
	if (stat(dir, &st) != 0) {
		rc = -errno;
		errbuf_set(err, errlen, "could not stat run directory %s: %s", dir, strerror(-rc));
		return rc;
	}
	if (!S_ISDIR(st.st_mode)) {
		errbuf_set(err, errlen,
		       "run directory %s exists but is not a directory; remove it "
		       "or use another --run-dir", dir);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid()) {
		errbuf_set(err, errlen,
		       "run directory %s is owned by user %u, not by this user (%u); "
		       "use another --run-dir or run the server as its owner",
		       dir, (unsigned) st.st_uid, (unsigned) geteuid());
		return -EPERM;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		errbuf_set(err, errlen,
		       "run directory %s has mode %04o, writable by group or others; "
		       "run \"chmod 700 %s\" or use another --run-dir",
		       dir, (unsigned) (st.st_mode & 07777), dir);
		return -EPERM;
	}
	return 0;
}

/*
 * run_dir_remove_if_ours - remove the run directory if this acquire created
 * it.  rmdir removes only an empty directory: whatever someone else put
 * there since keeps it, and is never deleted.
 */
static void
run_dir_remove_if_ours(struct interlock *il)
{
	if (il->created_run_dir && rmdir(il->run_dir) == 0)
		il->created_run_dir = false;
}

/*
 * lock_file_read - parse an existing lock file
 *
 * Returns 0, -ENOENT if it vanished, -ENODATA if it is empty or its first
 * three lines are incomplete (a server is still writing it, or crashed
 * while doing so), -EINVAL if it is not a lock file of ours, or another
 * -errno if it cannot be read.
 */
static int
lock_file_read(const char *path, struct lock_info *li)
{
	char buf[3 * INTERLOCK_PATH_MAX];
	char *line, *nl, *end;
	size_t used = 0;
	int fd;
	long v;

	memset(li, 0, sizeof(*li));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (used < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + used, sizeof(buf) - 1 - used);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int rc = -errno;

			close(fd);
			return rc;
		}
		if (n == 0)
			break;
		used += (size_t) n;
	}
	close(fd);
	buf[used] = '\0';

	/* Line 1: PID. */
	line = buf;
	nl = strchr(line, '\n');
	if (nl == NULL)
		return -ENODATA;
	*nl = '\0';
	errno = 0;
	v = strtol(line, &end, 10);
	if (errno != 0 || end == line || *end != '\0' || v <= 0 || v > INT32_MAX)
		return -EINVAL;
	li->pid = (pid_t) v;

	/* Line 2: port. */
	line = nl + 1;
	nl = strchr(line, '\n');
	if (nl == NULL)
		return -ENODATA;
	*nl = '\0';
	errno = 0;
	v = strtol(line, &end, 10);
	/* 0: a server without TCP (-p 0). */
	if (errno != 0 || end == line || *end != '\0' || v < 0 || v > 65535)
		return -EINVAL;
	li->port = (int) v;

	/* Line 3: socket path; we need only skip it. */
	line = nl + 1;
	nl = strchr(line, '\n');
	if (nl == NULL)
		return -ENODATA;

	/* Line 4: shim key, written only once the shim exists. */
	line = nl + 1;
	nl = strchr(line, '\n');
	if (nl != NULL) {
		unsigned long k;

		*nl = '\0';
		errno = 0;
		k = strtoul(line, &end, 0);
		if (errno != 0 || end == line || *end != '\0' || k == 0 || k > UINT32_MAX)
			return -EINVAL;
		li->has_key = true;
		li->key = (key_t) k;
	}
	return 0;
}

/*
 * shim_inspect - say whose segment sits at key, and whether it is in use
 *
 * Ours means: owned by this user, large enough, and carrying our magic and
 * the expected port.  nattch is read before we attach to check the magic,
 * so our own look does not count.  Returns an enum shim_state, or -errno.
 */
static int
shim_inspect(key_t key, int port, struct shim_seen *seen)
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
	if (p == (void *) -1) {
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
	seen->creator = (pid_t) hdr.creator_pid;
	seen->nattch = (unsigned long) ds.shm_nattch;
	return seen->nattch == 0 ? SHIM_OURS_UNUSED : SHIM_OURS_IN_USE;
}

/* The refusal for a shim of ours that is still attached: -EBUSY for a live
 * server, -EAGAIN for the orphans of a dead one. */
static int
shim_refuse(const struct interlock *il, key_t key, const struct shim_seen *seen,
	    pid_t lock_pid, char *err, size_t errlen)
{
	pid_t who = seen->creator > 0 ? seen->creator : lock_pid;

	if (who == getpid()) {
		errbuf_set(err, errlen,
		       "this process (PID %d) already holds the interlock for port %d; "
		       "release it before acquiring it again", (int) who, il->port);
	} else if (pid_alive(who)) {
		errbuf_set(err, errlen,
		       "another shmkv-server (PID %d) is running on port %d (its shared "
		       "memory interlock 0x%08x has %lu processes attached); stop it "
		       "first, or use another --port",
		       (int) who, il->port, (unsigned) key, seen->nattch);
	} else {
		errbuf_set(err, errlen,
		       "processes of a previous server (PID %d) are still attached to its "
		       "shared memory (interlock key 0x%08x, %lu processes attached); kill "
		       "them (e.g. pkill -f shmkv-server) and start again",
		       (int) who, (unsigned) key, seen->nattch);
		return -EAGAIN;
	}
	return -EBUSY;
}

/* Write all of buf at offset off, or return -errno. */
static int
write_all(int fd, const char *buf, size_t len, off_t off)
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
		len -= (size_t) n;
		off += n;
	}
	return 0;
}

/*
 * lock_file_create - create the lock file, clearing a dead server's first
 *
 * On success returns the open descriptor with the first three lines
 * written.  Refuses (-EBUSY) while the PID in an existing file is alive, or
 * while the shim it names still has processes attached.
 */
static int
lock_file_create(struct interlock *il, char *err, size_t errlen)
{
	char buf[INTERLOCK_PATH_MAX + 64];
	int empty_seen = 0;
	int tries, rc, n;

	n = snprintf(buf, sizeof(buf), "%d\n%d\n%s\n", (int) getpid(), il->port,
		     il->socket_path);
	if (n < 0 || (size_t) n >= sizeof(buf)) {
		errbuf_set(err, errlen, "lock file contents for %s too long", il->lock_path);
		return -ENAMETOOLONG;
	}

	for (tries = 0; tries < LOCK_FILE_TRIES; tries++) {
		struct lock_info li;
		struct shim_seen seen;
		int fd;

		fd = open(il->lock_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			rc = write_all(fd, buf, (size_t) n, 0);
			if (rc < 0) {
				errbuf_set(err, errlen, "could not write lock file %s: %s; "
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
			errbuf_set(err, errlen, "could not create lock file %s: %s; check the "
			       "permissions of run directory %s",
			       il->lock_path, strerror(-rc), il->run_dir);
			return rc;
		}

		rc = lock_file_read(il->lock_path, &li);
		if (rc == -ENOENT)
			continue; /* removed under us: try to create it again */
		if (rc == -ENODATA) {
			/* A server writes its first lines right after creating the
			 * file; give it a moment before calling the file a wreck. */
			struct timespec ts = { 0, LOCK_FILE_EMPTY_WAIT_NS };

			if (++empty_seen < LOCK_FILE_EMPTY_TRIES) {
				nanosleep(&ts, NULL);
				tries--;
				continue;
			}
			errbuf_set(err, errlen,
			       "lock file %s is empty or incomplete; either another "
			       "shmkv-server is starting with run directory %s, or the file "
			       "was left by a crash during start-up; if no server is "
			       "starting, remove it", il->lock_path, il->run_dir);
			return -EBUSY;
		}
		if (rc == -EINVAL) {
			errbuf_set(err, errlen,
			       "lock file %s is not a shmkv lock file; if no shmkv-server "
			       "uses run directory %s, remove it", il->lock_path, il->run_dir);
			return -EINVAL;
		}
		if (rc < 0) {
			errbuf_set(err, errlen, "could not read lock file %s: %s",
			       il->lock_path, strerror(-rc));
			return rc;
		}

		/* Our own PID in the file can only be left from before a PID
		 * wrap or a container restart (or from this very process, which
		 * the shim check below reports); treat it as stale, as
		 * PostgreSQL does. */
		if (li.pid != getpid() && pid_alive(li.pid)) {
			char where[32] = "without TCP";

			if (li.port != 0)
				snprintf(where, sizeof(where), "on port %d", li.port);
			errbuf_set(err, errlen,
			       "another shmkv-server (PID %d) is running %s with run "
			       "directory %s; stop it first, or use another --port / "
			       "--run-dir (if PID %d is no shmkv-server, remove %s)",
			       (int) li.pid, where, il->run_dir, (int) li.pid,
			       il->lock_path);
			return -EBUSY;
		}

		if (li.has_key) {
			rc = shim_inspect(li.key, li.port, &seen);
			if (rc == SHIM_OURS_IN_USE)
				return shim_refuse(il, li.key, &seen, li.pid, err, errlen);
			if (rc == SHIM_OURS_UNUSED) {
				if (shmctl(seen.shmid, IPC_RMID, NULL) == 0)
					il->stale_shims_removed++;
				else if (errno != EINVAL && errno != EIDRM) {
					rc = -errno;
					errbuf_set(err, errlen, "could not remove stale shared memory "
					       "interlock 0x%08x of dead server PID %d: %s; remove it "
					       "with ipcrm -M 0x%08x", (unsigned) li.key,
					       (int) li.pid, strerror(-rc), (unsigned) li.key);
					return rc;
				}
			} else if (rc < 0) {
				errbuf_set(err, errlen, "could not inspect shared memory interlock "
				       "0x%08x named in %s: %s", (unsigned) li.key,
				       il->lock_path, strerror(-rc));
				return rc;
			}
		}

		if (unlink(il->lock_path) != 0 && errno != ENOENT) {
			rc = -errno;
			errbuf_set(err, errlen, "could not remove stale lock file %s of dead "
			       "server PID %d: %s; remove it by hand",
			       il->lock_path, (int) li.pid, strerror(-rc));
			return rc;
		}
		il->stale_pid = li.pid;
	}
	errbuf_set(err, errlen, "could not create lock file %s after %d attempts; "
	       "another server seems to be starting and stopping there",
	       il->lock_path, LOCK_FILE_TRIES);
	return -EBUSY;
}

/*
 * key_port - the number the shim keys derive from: the TCP port, or for a
 * server without TCP (port 0) one derived from its run directory's inode,
 * above every real port so the two kinds of key never meet.
 */
static int
key_port(const struct interlock *il)
{
	struct stat st;

	if (il->port != 0)
		return il->port;
	if (stat(il->run_dir, &st) < 0)
		return INTERLOCK_NO_TCP_BASE;
	return INTERLOCK_NO_TCP_BASE + (int) (st.st_ino & 0x7fff);
}

/*
 * shim_create - create and attach the shim at the first free key of the port
 *
 * Steps over keys held by other programs, removes stale shims of ours and
 * refuses (-EBUSY) at a shim of ours that is still attached.  On success
 * fills il->shim_key, il->shim_id and il->shim.
 */
static int
shim_create(struct interlock *il, char *err, size_t errlen)
{
	int attempt, again = 0, rc;

	for (attempt = 0; attempt < INTERLOCK_KEY_TRIES; attempt++) {
		key_t key = interlock_shim_key(key_port(il), attempt);
		struct shim_seen seen;
		void *p;
		int id;

		id = shmget(key, INTERLOCK_SHIM_SIZE, IPC_CREAT | IPC_EXCL | 0600);
		if (id >= 0) {
			p = shmat(id, NULL, 0);
			if (p == (void *) -1) {
				rc = -errno;
				shmctl(id, IPC_RMID, NULL);
				errbuf_set(err, errlen, "could not attach shared memory interlock "
				       "0x%08x: %s", (unsigned) key, strerror(-rc));
				return rc;
			}
			il->shim = p;
			il->shim->magic = INTERLOCK_SHIM_MAGIC;
			il->shim->creator_pid = getpid();
			il->shim->port = il->port;
			il->shim->data_ino = 0;
			il->shim_key = key;
			il->shim_id = id;
			return 0;
		}
		if (errno != EEXIST) {
			rc = -errno;
			errbuf_set(err, errlen, "could not create shared memory interlock 0x%08x "
			       "for port %d: %s; check kernel.shmmni and ipcs -m",
			       (unsigned) key, il->port, strerror(-rc));
			return rc;
		}

		rc = shim_inspect(key, il->port, &seen);
		if (rc < 0) {
			errbuf_set(err, errlen, "could not inspect shared memory segment 0x%08x: "
			       "%s", (unsigned) key, strerror(-rc));
			return rc;
		}
		if (rc == SHIM_OURS_IN_USE)
			return shim_refuse(il, key, &seen, 0, err, errlen);
		if (rc == SHIM_FOREIGN)
			continue;
		/* Absent now, or stale: take the same key again, a bounded number
		 * of times in case it keeps changing under us. */
		if (rc == SHIM_OURS_UNUSED && shmctl(seen.shmid, IPC_RMID, NULL) == 0)
			il->stale_shims_removed++;
		if (++again < LOCK_FILE_TRIES)
			attempt--;
	}
	errbuf_set(err, errlen,
	       "all %d shared memory keys for port %d (0x%08x to 0x%08x) are taken by "
	       "other programs' segments; see ipcs -m, or use another --port",
	       INTERLOCK_KEY_TRIES, il->port, (unsigned) interlock_shim_key(key_port(il), 0),
	       (unsigned) interlock_shim_key(key_port(il), INTERLOCK_KEY_TRIES - 1));
	return -EADDRINUSE;
}

/* Undo shim_create: detach and remove. */
static void
shim_destroy(struct interlock *il)
{
	if (il->shim != NULL)
		shmdt(il->shim);
	if (il->shim_id >= 0)
		shmctl(il->shim_id, IPC_RMID, NULL);
	il->shim = NULL;
	il->shim_id = -1;
}

/* Copy src into dst of size len, or fail with a message naming what. */
static int
copy_path(char *dst, size_t len, const char *src, const char *what,
	  char *err, size_t errlen)
{
	size_t n = strlen(src);

	if (n >= len) {
		errbuf_set(err, errlen, "%s %.64s... is %zu bytes long, more than the %zu "
		       "allowed; use a shorter path", what, src, n, len - 1);
		return -ENAMETOOLONG;
	}
	memcpy(dst, src, n + 1);
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
int
interlock_acquire(struct interlock *il, const char *run_dir, int port,
		  const char *socket_path, char *err, size_t errlen)
{
	char line[32];
	int fd, rc, n;

	memset(il, 0, sizeof(*il));
	il->shim_id = -1;
	if (run_dir == NULL || run_dir[0] == '\0') {
		errbuf_set(err, errlen, "no run directory given; pass --run-dir");
		return -EINVAL;
	}
	if (port < 0 || port > 65535) {
		errbuf_set(err, errlen, "port %d is out of range; use a port from 1 to 65535, "
		       "or 0 for no TCP", port);
		return -EINVAL;
	}
	if (socket_path == NULL)
		socket_path = "";
	if (strchr(socket_path, '\n') != NULL) {
		errbuf_set(err, errlen, "socket path \"%s\" contains a newline; use another "
		       "path", socket_path);
		return -EINVAL;
	}
	il->port = port;
	rc = copy_path(il->run_dir, sizeof(il->run_dir), run_dir, "run directory",
		       err, errlen);
	if (rc == 0)
		rc = copy_path(il->socket_path, sizeof(il->socket_path), socket_path,
			       "socket path", err, errlen);
	if (rc < 0)
		return rc;
	n = snprintf(il->lock_path, sizeof(il->lock_path), "%s/%s", run_dir,
		     INTERLOCK_LOCK_FILE);
	if (n < 0 || (size_t) n >= sizeof(il->lock_path)) {
		errbuf_set(err, errlen, "run directory %.64s... is too long for its lock file "
		       "path; use a shorter --run-dir", run_dir);
		return -ENAMETOOLONG;
	}

	rc = run_dir_prepare(il, err, errlen);
	if (rc < 0) {
		run_dir_remove_if_ours(il);
		return rc;
	}
	fd = lock_file_create(il, err, errlen);
	if (fd < 0) {
		run_dir_remove_if_ours(il);
		return fd;
	}

	rc = shim_create(il, err, errlen);
	if (rc == 0) {
		/* Now that the key is known, complete the lock file, so that a
		 * later server can look for our orphans at the right key. */
		n = snprintf(line, sizeof(line), "0x%08x\n", (unsigned) il->shim_key);
		rc = write_all(fd, line, (size_t) n, lseek(fd, 0, SEEK_END));
		if (rc < 0) {
			errbuf_set(err, errlen, "could not write lock file %s: %s; check the "
			       "free space of its file system", il->lock_path, strerror(-rc));
			shim_destroy(il);
		}
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
int
interlock_release(struct interlock *il, char *err, size_t errlen)
{
	struct shmid_ds ds;
	int rc = 0;

	if (il == NULL || il->owner_pid == 0)
		return 0;
	if (il->owner_pid != getpid()) {
		errbuf_set(err, errlen, "process %d may not release the interlock of PID %d "
		       "on port %d", (int) getpid(), (int) il->owner_pid, il->port);
		return -EPERM;
	}

	if (shmctl(il->shim_id, IPC_STAT, &ds) == 0 && ds.shm_nattch > 1) {
		errbuf_set(err, errlen,
		       "%lu other processes are still attached to the shared memory "
		       "interlock 0x%08x of port %d; left it and lock file %s in place so "
		       "that no new server starts beside them; kill them, then start again",
		       (unsigned long) ds.shm_nattch - 1, (unsigned) il->shim_key,
		       il->port, il->lock_path);
		shmdt(il->shim);
		il->shim = NULL;
		il->shim_id = -1;
		il->owner_pid = 0;
		return -EBUSY;
	}

	if (shmdt(il->shim) != 0) {
		rc = -errno;
		errbuf_set(err, errlen, "could not detach shared memory interlock 0x%08x: %s",
		       (unsigned) il->shim_key, strerror(-rc));
	}
	if (shmctl(il->shim_id, IPC_RMID, NULL) != 0 && rc == 0) {
		rc = -errno;
		errbuf_set(err, errlen, "could not remove shared memory interlock 0x%08x: "
		       "%s; remove it with ipcrm -M 0x%08x", (unsigned) il->shim_key,
		       strerror(-rc), (unsigned) il->shim_key);
	}
	if (unlink(il->lock_path) != 0 && rc == 0) {
		rc = -errno;
		errbuf_set(err, errlen, "could not remove lock file %s: %s; remove it by hand",
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
void
interlock_release_cb(void *il)
{
	(void) interlock_release(il, NULL, 0);
}
