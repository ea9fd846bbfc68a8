/*
 * interlock_fixture.c - the interlock tests' fixture (see interlock_fixture.h)
 */
#include "interlock_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "onexit.h" /* children cancel the stack they inherit */

/* ---- helpers ---------------------------------------------------------- */

void track(struct fixture *f, pid_t pid)
{
	if (pid > 0 && f->nchildren < MAX_CHILDREN)
		f->children[f->nchildren++] = pid;
}

void kill_and_reap(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

bool key_free(key_t key)
{
	return shmget(key, 0, 0) < 0 && errno == ENOENT;
}

static int pick_port(void)
{
	for (int tries = 0; tries < 1000; tries++) {
		int port = 40000 + rand() % 20000;
		bool free_ = true;

		for (int i = 0; i < INTERLOCK_KEY_TRIES && free_; i++)
			free_ = key_free(interlock_shim_key(port, i));
		if (free_)
			return port;
	}
	return -1;
}

static void remove_port_shims(int port)
{
	for (int i = 0; i < INTERLOCK_KEY_TRIES; i++) {
		struct shmid_ds ds;
		int id = shmget(interlock_shim_key(port, i), 0, 0);

		if (id >= 0 && shmctl(id, IPC_STAT, &ds) == 0 &&
		    ds.shm_perm.uid == geteuid() &&
		    ds.shm_segsz == INTERLOCK_SHIM_SIZE)
			shmctl(id, IPC_RMID, NULL);
	}
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void read_file(const char *path, char *buf, size_t len)
{
	FILE *fp = fopen(path, "r");
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, len - 1, fp);
	buf[n] = '\0';
	fclose(fp);
}

void path_in(const struct fixture *f, const char *name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", f->base, name);

	assert_true(n > 0 && (size_t)n < len);
}

void lock_path_of(const char *run_dir, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", run_dir, INTERLOCK_LOCK_FILE);

	assert_true(n > 0 && (size_t)n < len);
}

bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

void assert_contains(const char *haystack, const char *fmt, ...)
{
	char needle[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(needle, sizeof(needle), fmt, ap);
	va_end(ap);
	if (strstr(haystack, needle) == NULL)
		fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

static void write_all_or_die(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(3);
		p += n;
		len -= (size_t)n;
	}
}

/* The child's side: never returns, never touches cmocka. */
static void __attribute__((noreturn))
child_main(int wfd, enum child_mode mode, const char *run_dir, int port,
	   const char *sock)
{
	struct child_report rep;
	struct interlock il;

	onexit_cancel_all();
	memset(&rep, 0, sizeof(rep));
	rep.rc = interlock_acquire(&il, run_dir, port, sock, rep.err,
				   sizeof(rep.err));
	if (mode == CHILD_HOLD_GRAND && rep.rc == 0) {
		pid_t g = fork();

		if (g == 0) {
			/* The orphan: holds the inherited shim attachment. */
			close(wfd);
			for (;;)
				pause();
		}
		rep.grandchild = g;
	}
	write_all_or_die(wfd, &rep, sizeof(rep));
	close(wfd);
	if (mode == CHILD_TRY)
		_exit(0);
	for (;;)
		pause();
}

/* Fork a child in mode, wait for its report; the child (and grandchild)
 * are tracked for teardown before anything is asserted. */
pid_t spawn(struct fixture *f, enum child_mode mode, const char *run_dir,
	    struct child_report *rep)
{
	size_t got = 0;
	int fds[2];
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		child_main(fds[1], mode, run_dir, f->port, f->sock);
	}
	track(f, pid);
	close(fds[1]);
	while (got < sizeof(*rep)) {
		ssize_t n = read(fds[0], (char *)rep + got, sizeof(*rep) - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fds[0]);
	if (got == sizeof(*rep))
		track(f, rep->grandchild);
	assert_int_equal(got, sizeof(*rep));
	if (mode == CHILD_TRY) {
		int status;

		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	return pid;
}

/* ---- fixture ---------------------------------------------------------- */

int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->base, sizeof(f->base), "/tmp/shmkv-il-XXXXXX");
	if (mkdtemp(f->base) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->run_dir, sizeof(f->run_dir), "%s/run", f->base);
	snprintf(f->sock, sizeof(f->sock), "%s/run/shmkv.sock", f->base);
	f->port = pick_port();
	f->il.shim_id = -1;
	*state = f;
	return f->port > 0 ? 0 : -1;
}

int teardown(void **state)
{
	struct fixture *f = *state;

	onexit_cancel_all();
	for (int i = f->nchildren - 1; i >= 0; i--)
		kill_and_reap(f->children[i]);
	/* Anything else reparented to us (we are a subreaper). */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	interlock_release(&f->il, NULL, 0);
	if (f->port > 0) {
		remove_port_shims(f->port);
	} else {
		struct stat st;

		/* A -p 0 server's keys derive from its run directory. */
		if (stat(f->run_dir, &st) == 0)
			remove_port_shims(INTERLOCK_NO_TCP_BASE +
					  (int)(st.st_ino & 0x7fff));
	}
	chmod(f->base, 0700);
	nftw(f->base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}
