/*
 * test_interlock.c - tests of server/interlock.c: acquire and release
 *
 * The interlock is about other processes, so these tests fork real ones: a
 * second server that must be refused, a server killed with SIGKILL whose
 * lock file and shim stay behind, and a killed server whose forked worker
 * keeps the shim attached (an orphan).  Children report over a pipe and
 * never call cmocka; the test process is a child subreaper so that it can
 * reap orphaned grandchildren too.  Teardown kills and reaps every child,
 * removes any shim at the test port's keys and the temporary directory,
 * whether the test passed or not.
 *
 * Ports are picked at random in 40000-59999 among those whose shim keys are
 * all free, so the tests do not meet a real server.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "interlock_fixture.h"
#include "onexit.h" /* children cancel the stack they inherit */

/* ---- interlock -------------------------------------------------------- */

static void test_acquire_release(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", want[512], got[512], lock[256];
	struct shmid_ds ds;
	struct stat st;
	key_t key;

	assert_int_equal(interlock_acquire(&f->il, f->run_dir, f->port, f->sock,
					   err, sizeof(err)),
			 0);
	assert_int_equal(f->il.stale_pid, 0);
	assert_int_equal(f->il.stale_shims_removed, 0);

	assert_int_equal(stat(f->run_dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);

	key = f->il.shim_key;
	assert_int_equal(key, interlock_shim_key(f->port, 0));
	lock_path_of(f->run_dir, lock, sizeof(lock));
	read_file(lock, got, sizeof(got));
	snprintf(want, sizeof(want), "%d\n%d\n%s\n0x%08x\n", (int)getpid(),
		 f->port, f->sock, (unsigned)key);
	assert_string_equal(got, want);

	/* The shim exists, is ours and only this process is attached. */
	assert_int_equal(shmget(key, 0, 0), f->il.shim_id);
	assert_int_equal(shmctl(f->il.shim_id, IPC_STAT, &ds), 0);
	assert_int_equal(ds.shm_nattch, 1);
	assert_int_equal(ds.shm_perm.mode & 0777, 0600);
	assert_true(f->il.shim->magic == INTERLOCK_SHIM_MAGIC);
	assert_int_equal(f->il.shim->creator_pid, getpid());

	/* Acquiring again in the same process is refused and harms nothing. */
	{
		struct interlock again;

		assert_int_equal(interlock_acquire(&again, f->run_dir, f->port,
						   f->sock, err, sizeof(err)),
				 -EBUSY);
		assert_contains(err, "already holds");
		read_file(lock, got, sizeof(got));
		assert_string_equal(got, want);
	}

	assert_int_equal(interlock_release(&f->il, err, sizeof(err)), 0);
	assert_false(exists(lock));
	assert_int_equal(shmget(key, 0, 0), -1);
	assert_int_equal(errno, ENOENT);
	/* A second release is harmless. */
	assert_int_equal(interlock_release(&f->il, err, sizeof(err)), 0);
}

static void test_run_dir_mode_despite_umask(void **state)
{
	struct fixture *f = *state;
	char err[512] = "";
	struct stat st;
	mode_t old = umask(0277);
	int rc;

	/* A umask that takes the owner's write bit must not leave a run
	 * directory the server cannot create its lock file in. */
	rc = interlock_acquire(&f->il, f->run_dir, f->port, f->sock, err,
			       sizeof(err));
	umask(old);
	assert_int_equal(rc, 0);
	assert_int_equal(stat(f->run_dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
}

static void test_second_server_refused(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", lock[256], other[128], other_lock[256], before[512],
	     after[512];
	struct child_report rep;

	assert_int_equal(interlock_acquire(&f->il, f->run_dir, f->port, f->sock,
					   err, sizeof(err)),
			 0);
	lock_path_of(f->run_dir, lock, sizeof(lock));
	read_file(lock, before, sizeof(before));

	/* Same run directory: refused by the lock file. */
	spawn(f, CHILD_TRY, f->run_dir, &rep);
	assert_int_equal(rep.rc, -EBUSY);
	assert_contains(rep.err, "PID %d", (int)getpid());
	assert_contains(rep.err, "port %d", f->port);
	assert_contains(rep.err, "stop it first");

	/* Another run directory, same port: refused by the shim, and the
	 * refused server leaves no lock file of its own behind. */
	path_in(f, "other", other, sizeof(other));
	spawn(f, CHILD_TRY, other, &rep);
	assert_int_equal(rep.rc, -EBUSY);
	assert_contains(rep.err, "PID %d", (int)getpid());
	lock_path_of(other, other_lock, sizeof(other_lock));
	assert_false(exists(other_lock));

	/* The refusals did not disturb the holder. */
	read_file(lock, after, sizeof(after));
	assert_string_equal(before, after);
	assert_int_equal(shmget(f->il.shim_key, 0, 0), f->il.shim_id);
}

/*
 * A server without TCP (-p 0) writes port 0 in its lock file: a second one
 * must read it back as a live server's, and once that server is killed,
 * as stale state to remove.
 */
static void test_port_zero_second_refused_then_stale_removed(void **state)
{
	struct fixture *f = *state;
	char err[512] = "";
	struct child_report rep;
	pid_t child;

	f->port = 0;
	child = spawn(f, CHILD_HOLD, f->run_dir, &rep);
	assert_int_equal(rep.rc, 0);
	spawn(f, CHILD_TRY, f->run_dir, &rep);
	assert_int_equal(rep.rc, -EBUSY);
	assert_contains(rep.err,
			"another shmkv-server (PID %d) is running without TCP",
			(int)child);

	kill_and_reap(child);
	assert_int_equal(interlock_acquire(&f->il, f->run_dir, 0, f->sock, err,
					   sizeof(err)),
			 0);
	assert_int_equal(f->il.stale_pid, child);
	assert_int_equal(f->il.stale_shims_removed, 1);
}

/* The run directory goes with the interlock if acquire made it, and only
 * then; one that holds something else stays. */
static void test_run_dir_removed_only_if_ours(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", keep[256];
	int fd;

	assert_int_equal(interlock_acquire(&f->il, f->run_dir, f->port, f->sock,
					   err, sizeof(err)),
			 0);
	assert_int_equal(interlock_release(&f->il, err, sizeof(err)), 0);
	assert_false(exists(f->run_dir));

	assert_int_equal(mkdir(f->run_dir, 0700), 0);
	assert_int_equal(interlock_acquire(&f->il, f->run_dir, f->port, f->sock,
					   err, sizeof(err)),
			 0);
	assert_int_equal(interlock_release(&f->il, err, sizeof(err)), 0);
	assert_true(exists(f->run_dir));
	assert_int_equal(rmdir(f->run_dir), 0);

	/* Ours, but someone put a file in it meanwhile: it stays, file too. */
	assert_int_equal(interlock_acquire(&f->il, f->run_dir, f->port, f->sock,
					   err, sizeof(err)),
			 0);
	snprintf(keep, sizeof(keep), "%s/keep", f->run_dir);
	fd = open(keep, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(interlock_release(&f->il, err, sizeof(err)), 0);
	assert_true(exists(keep));
}

static void test_release_only_by_owner(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", lock[256];
	int status;
	pid_t pid;

	assert_int_equal(interlock_acquire(&f->il, f->run_dir, f->port, f->sock,
					   err, sizeof(err)),
			 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int rc = interlock_release(&f->il, err, sizeof(err));

		_exit(rc == -EPERM ? 0 : 1);
	}
	track(f, pid);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	lock_path_of(f->run_dir, lock, sizeof(lock));
	assert_true(exists(lock));
	assert_int_equal(shmget(f->il.shim_key, 0, 0), f->il.shim_id);
}

static void test_stale_cleaned(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", lock[256], got[512], want[64];
	struct child_report rep;
	pid_t child;

	child = spawn(f, CHILD_HOLD, f->run_dir, &rep);
	assert_int_equal(rep.rc, 0);
	kill_and_reap(child);
	lock_path_of(f->run_dir, lock, sizeof(lock));
	assert_true(exists(lock)); /* SIGKILL left it behind */
	assert_false(key_free(interlock_shim_key(f->port, 0)));

	assert_int_equal(interlock_acquire(&f->il, f->run_dir, f->port, f->sock,
					   err, sizeof(err)),
			 0);
	assert_int_equal(f->il.stale_pid, child);
	assert_int_equal(f->il.stale_shims_removed, 1);
	read_file(lock, got, sizeof(got));
	snprintf(want, sizeof(want), "%d\n", (int)getpid());
	assert_true(strncmp(got, want, strlen(want)) == 0);
}

static void test_orphan_refused(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", lock[256];
	struct child_report rep;
	struct interlock il2;
	pid_t child;

	child = spawn(f, CHILD_HOLD_GRAND, f->run_dir, &rep);
	assert_int_equal(rep.rc, 0);
	assert_true(rep.grandchild > 0);
	kill_and_reap(child);

	assert_int_equal(interlock_acquire(&il2, f->run_dir, f->port, f->sock,
					   err, sizeof(err)),
			 -EAGAIN);
	assert_contains(err, "still attached");
	assert_contains(err, "PID %d", (int)child);
	assert_contains(err, "pkill");
	lock_path_of(f->run_dir, lock, sizeof(lock));
	assert_true(exists(lock)); /* the evidence stays until the orphan is gone */

	kill_and_reap(rep.grandchild);
	assert_int_equal(interlock_acquire(&f->il, f->run_dir, f->port, f->sock,
					   err, sizeof(err)),
			 0);
	assert_int_equal(f->il.stale_pid, child);
	assert_int_equal(f->il.stale_shims_removed, 1);
}

static void test_release_with_worker_alive(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", lock[256];
	pid_t worker;

	assert_int_equal(interlock_acquire(&f->il, f->run_dir, f->port, f->sock,
					   err, sizeof(err)),
			 0);
	worker = fork();
	assert_true(worker >= 0);
	if (worker == 0) {
		onexit_cancel_all();
		for (;;)
			pause();
	}
	track(f, worker);

	/* The worker still holds the shim: release must leave the evidence. */
	assert_int_equal(interlock_release(&f->il, err, sizeof(err)), -EBUSY);
	assert_contains(err, "1 other processes");
	lock_path_of(f->run_dir, lock, sizeof(lock));
	assert_true(exists(lock));
	assert_false(key_free(f->il.shim_key));

	kill_and_reap(worker);
	assert_int_equal(interlock_acquire(&f->il, f->run_dir, f->port, f->sock,
					   err, sizeof(err)),
			 0);
	assert_int_equal(f->il.stale_shims_removed, 1);
}

static void test_lock_file_of_live_stranger(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", lock[256];
	FILE *fp;

	/* PID 1 is always alive, and not ours to signal (EPERM) or ours. */
	assert_int_equal(mkdir(f->run_dir, 0700), 0);
	lock_path_of(f->run_dir, lock, sizeof(lock));
	fp = fopen(lock, "w");
	assert_non_null(fp);
	fprintf(fp, "1\n%d\n\n", f->port);
	fclose(fp);
	assert_int_equal(interlock_acquire(&f->il, f->run_dir, f->port, f->sock,
					   err, sizeof(err)),
			 -EBUSY);
	assert_contains(err, "PID 1)");
	assert_contains(err, f->run_dir);

	fp = fopen(lock, "w");
	assert_non_null(fp);
	fprintf(fp, "not a pid\n");
	fclose(fp);
	assert_int_equal(interlock_acquire(&f->il, f->run_dir, f->port, f->sock,
					   err, sizeof(err)),
			 -EINVAL);
	assert_contains(err, "not a shmkv lock file");
	assert_true(exists(lock)); /* never removes what it does not understand */
}

static void test_run_dir_not_dir(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", path[128];
	FILE *fp;

	path_in(f, "file", path, sizeof(path));
	fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(interlock_acquire(&f->il, path, f->port, f->sock, err,
					   sizeof(err)),
			 -ENOTDIR);
	assert_contains(err, "%s exists but is not a directory", path);
	assert_true(key_free(interlock_shim_key(f->port, 0)));
}

static void test_run_dir_open_mode(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", path[128], lock[256];

	path_in(f, "open", path, sizeof(path));
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(chmod(path, 0777), 0);
	assert_int_equal(interlock_acquire(&f->il, path, f->port, f->sock, err,
					   sizeof(err)),
			 -EPERM);
	assert_contains(err, "mode 0777");
	assert_contains(err, "chmod 700 %s", path);
	lock_path_of(path, lock, sizeof(lock));
	assert_false(exists(lock));
	assert_true(key_free(interlock_shim_key(f->port, 0)));
}

static void test_run_dir_other_owner(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", path[128];

	if (geteuid() != 0)
		skip(); /* only root can give a directory away */
	path_in(f, "theirs", path, sizeof(path));
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(chown(path, 65534, 65534), 0);
	assert_int_equal(interlock_acquire(&f->il, path, f->port, f->sock, err,
					   sizeof(err)),
			 -EPERM);
	assert_contains(err, "%s is owned by user 65534", path);
	assert_true(key_free(interlock_shim_key(f->port, 0)));
}

static void test_bad_arguments(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", buf[64], path[128];

	assert_int_equal(interlock_acquire(&f->il, f->run_dir, -1, f->sock, err,
					   sizeof(err)),
			 -EINVAL);
	assert_contains(err, "port -1");
	assert_int_equal(interlock_acquire(&f->il, f->run_dir, 70000, f->sock,
					   err, sizeof(err)),
			 -EINVAL);
	assert_contains(err, "port 70000");

	path_in(f, "missing/run", path, sizeof(path));
	assert_int_equal(interlock_acquire(&f->il, path, f->port, f->sock, err,
					   sizeof(err)),
			 -ENOENT);
	assert_contains(err, path);

	assert_int_equal(interlock_default_run_dir(11211, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/tmp/shmkv-11211");
	assert_int_equal(interlock_default_run_dir(11211, buf, 8), -ENAMETOOLONG);
	assert_int_equal(interlock_shim_key(11211, 0),
			 (key_t)(INTERLOCK_KEY_BASE | 11211 << 4));
	assert_int_not_equal(interlock_shim_key(11211, 0),
			     interlock_shim_key(11212, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_acquire_release, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_run_dir_mode_despite_umask,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_server_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_only_by_owner,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_port_zero_second_refused_then_stale_removed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_dir_removed_only_if_ours,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_cleaned, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_orphan_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_release_with_worker_alive,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_file_of_live_stranger,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_dir_not_dir, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_run_dir_open_mode, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_run_dir_other_owner, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup,
						teardown),
	};

	/* Orphaned grandchildren are reparented to us, so we can reap them. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
		perror("prctl(PR_SET_CHILD_SUBREAPER)");
		return 1;
	}
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
