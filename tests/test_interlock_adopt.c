/*
 * test_interlock_adopt.c - tests of a live upgrade's side of the interlock:
 * interlock_adopt, interlock_reclaim, interlock_holder_pid
 *
 * The running server is a forked child that acquired the interlock and
 * holds it; this process plays the successor that adopts it.  At every
 * moment the lock file must name a live supervisor and the shim must have
 * processes attached, so a third server is refused throughout; a refused
 * adoption must leave the running server's interlock as it was.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
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

/* The shim key on line 4 of the lock file at path. */
static key_t key_in_lock_file(const char *path)
{
	char text[1024], *line = text;
	unsigned long key;

	read_file(path, text, sizeof(text));
	for (int i = 0; i < 3 && line != NULL; i++) {
		line = strchr(line, '\n');
		line = line != NULL ? line + 1 : NULL;
	}
	assert_non_null(line);
	key = strtoul(line, NULL, 0);
	assert_true(key != 0);
	return (key_t)key;
}

/* The whole lock file at path says pid, the fixture's port and socket, key. */
static void assert_lock_file_names(const struct fixture *f, const char *path,
				   pid_t pid, key_t key)
{
	char text[1024], want[1024];

	read_file(path, text, sizeof(text));
	snprintf(want, sizeof(want), "%d\n%d\n%s\n0x%08x\n", (int)pid, f->port,
		 f->sock, (unsigned)key);
	assert_string_equal(text, want);
}

/* The running server: a child that acquired the interlock and holds it.
 * Its PID; its lock file's path in lock, the shim key in *key. */
static pid_t start_running_server(struct fixture *f, char *lock, size_t len,
				  key_t *key)
{
	struct child_report rep;
	pid_t pid = spawn(f, CHILD_HOLD, f->run_dir, &rep);

	assert_int_equal(rep.rc, 0);
	lock_path_of(f->run_dir, lock, len);
	*key = key_in_lock_file(lock);
	return pid;
}

/* A running server's interlock becomes ours: lock file and shim name us,
 * a third server is refused, and our release undoes it all once the old
 * server is gone. */
static void test_adopt_takes_over_a_running_server(void **state)
{
	struct fixture *f = *state;
	struct child_report third;
	char err[512] = "", lock[256], renamed[300];
	pid_t old;
	key_t key;

	old = start_running_server(f, lock, sizeof(lock), &key);
	assert_int_equal(interlock_holder_pid(f->run_dir), old);

	assert_int_equal(interlock_adopt(&f->il, f->run_dir, f->port, f->sock,
					 key, old, true, err, sizeof(err)),
			 0);
	assert_lock_file_names(f, lock, getpid(), key);
	assert_int_equal(interlock_holder_pid(f->run_dir), getpid());
	assert_int_equal(f->il.shim_key, key);
	assert_int_equal(f->il.shim->creator_pid, getpid());
	assert_int_equal(f->il.owner_pid, getpid());
	snprintf(renamed, sizeof(renamed), "%s.new", lock);
	assert_false(exists(renamed));

	/* No third server beside the two: the lock file names us, alive. */
	spawn(f, CHILD_TRY, f->run_dir, &third);
	assert_int_equal(third.rc, -EBUSY);
	assert_contains(third.err, "PID %d", (int)getpid());

	/* The old server exits; release removes shim, lock file and the run
	 * directory the first server made (created_run_dir handed over). */
	kill_and_reap(old);
	assert_int_equal(interlock_release(&f->il, err, sizeof(err)), 0);
	assert_false(exists(lock));
	assert_true(key_free(key));
	assert_false(exists(f->run_dir));
}

/* A lock file that names another process than the one handing over:
 * refused, and the running server's lock file is left as it was. */
static void test_adopt_refuses_another_holder(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", lock[256];
	pid_t old;
	key_t key;

	old = start_running_server(f, lock, sizeof(lock), &key);

	assert_int_equal(interlock_adopt(&f->il, f->run_dir, f->port, f->sock,
					 key, getpid(), false, err, sizeof(err)),
			 -ESTALE);
	assert_contains(err, "%s does not name the server", lock);
	assert_contains(err, "pid %d", (int)getpid());
	assert_int_equal(f->il.owner_pid, 0);
	assert_null(f->il.shim);
	assert_lock_file_names(f, lock, old, key);
}

/* A key with no segment, or another program's segment there: refused,
 * nothing attached, the lock file untouched. */
static void test_adopt_refuses_a_shim_not_ours(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", lock[256];
	key_t key, absent, foreign;
	pid_t old;
	int id;

	old = start_running_server(f, lock, sizeof(lock), &key);
	absent = interlock_shim_key(f->port, INTERLOCK_KEY_TRIES - 2);
	foreign = interlock_shim_key(f->port, INTERLOCK_KEY_TRIES - 1);
	assert_true(key_free(absent));
	/* Zeroes where our magic would be: some other program's segment. */
	id = shmget(foreign, INTERLOCK_SHIM_SIZE, IPC_CREAT | IPC_EXCL | 0600);
	assert_true(id >= 0);

	assert_int_equal(interlock_adopt(&f->il, f->run_dir, f->port, f->sock,
					 absent, old, false, err, sizeof(err)),
			 -EINVAL);
	assert_contains(err, "interlock 0x%08x: not ours", (unsigned)absent);
	assert_int_equal(interlock_adopt(&f->il, f->run_dir, f->port, f->sock,
					 foreign, old, false, err, sizeof(err)),
			 -EINVAL);
	assert_contains(err, "interlock 0x%08x: not ours", (unsigned)foreign);
	assert_null(f->il.shim);
	assert_int_equal(f->il.owner_pid, 0);
	assert_lock_file_names(f, lock, old, key);
	assert_int_equal(shmctl(id, IPC_RMID, NULL), 0);
}

/* A successor that adopted and died before serving: the old server names
 * itself again in the lock file and the shim. */
static void test_reclaim_after_a_lost_successor(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", lock[256];
	int status;
	pid_t successor;

	assert_int_equal(interlock_acquire(&f->il, f->run_dir, f->port, f->sock,
					   err, sizeof(err)),
			 0);
	lock_path_of(f->run_dir, lock, sizeof(lock));
	successor = fork();
	assert_true(successor >= 0);
	if (successor == 0) {
		f->il.shim->creator_pid = getpid();
		_exit(interlock_rewrite_lock_file(&f->il) == 0 ? 0 : 1);
	}
	track(f, successor);
	assert_int_equal(waitpid(successor, &status, 0), successor);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(interlock_holder_pid(f->run_dir), successor);
	assert_int_equal(f->il.shim->creator_pid, successor);

	assert_int_equal(interlock_reclaim(&f->il), 0);
	assert_lock_file_names(f, lock, getpid(), f->il.shim_key);
	assert_int_equal(f->il.shim->creator_pid, getpid());
	assert_int_equal(interlock_release(&f->il, err, sizeof(err)), 0);
	assert_false(exists(lock));
}

/* holder_pid names nobody where there is no whole lock file of ours. */
static void test_holder_pid_of_no_server(void **state)
{
	struct fixture *f = *state;
	char lock[256];
	FILE *fp;

	assert_int_equal(interlock_holder_pid(f->run_dir), 0); /* no dir */
	assert_int_equal(mkdir(f->run_dir, 0700), 0);
	assert_int_equal(interlock_holder_pid(f->run_dir), 0); /* no file */
	lock_path_of(f->run_dir, lock, sizeof(lock));
	fp = fopen(lock, "w");
	assert_non_null(fp);
	fputs("12345\n", fp); /* half written */
	fclose(fp);
	assert_int_equal(interlock_holder_pid(f->run_dir), 0);
	fp = fopen(lock, "w");
	assert_non_null(fp);
	fputs("not a pid\n11211\n\n", fp);
	fclose(fp);
	assert_int_equal(interlock_holder_pid(f->run_dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_adopt_takes_over_a_running_server,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt_refuses_another_holder,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt_refuses_a_shim_not_ours,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_reclaim_after_a_lost_successor,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_holder_pid_of_no_server,
						setup, teardown),
	};

	/* Orphaned grandchildren are reparented to us, so we can reap them. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
		perror("prctl(PR_SET_CHILD_SUBREAPER)");
		return 1;
	}
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
