/*
 * interlock_fixture.h - what the interlock's tests share
 *
 * test_interlock.c (acquire and release, refusals, stale state) and
 * test_interlock_adopt.c (a live upgrade's adoption) both fork real
 * servers' stand-ins that take the interlock and report over a pipe, on a
 * port picked at random whose shim keys are all free, in a temporary
 * directory that teardown removes with every shim of the port, whether the
 * test passed or not.
 *
 * Interface routines:
 *   setup, teardown   the fixture, for cmocka_unit_test_setup_teardown
 *   spawn             fork a child that acquires (and maybe holds), report
 *   track, kill_and_reap  children teardown kills, and killing one now
 *   key_free          no segment at a System V key
 *   read_file, path_in, lock_path_of, exists  files of the fixture
 *   assert_contains   a message contains a printf-made phrase, or fail
 */
#ifndef SHMKV_TESTS_INTERLOCK_FIXTURE_H
#define SHMKV_TESTS_INTERLOCK_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <cmocka.h>

#include "interlock.h"

#define MAX_CHILDREN 8

struct fixture {
	char base[64];
	char run_dir[128];
	char sock[160];
	int port;
	pid_t children[MAX_CHILDREN];
	int nchildren;
	struct interlock il;
};

enum child_mode {
	CHILD_TRY,	  /* acquire, report, exit */
	CHILD_HOLD,	  /* acquire, report, sleep until killed */
	CHILD_HOLD_GRAND, /* acquire, fork a grandchild that sleeps, report, sleep */
};

struct child_report {
	int rc;
	pid_t grandchild;
	char err[512];
};

int setup(void **state);
int teardown(void **state);
pid_t spawn(struct fixture *f, enum child_mode mode, const char *run_dir,
	    struct child_report *rep);
void track(struct fixture *f, pid_t pid);
void kill_and_reap(pid_t pid);
bool key_free(key_t key);
void read_file(const char *path, char *buf, size_t len);
void path_in(const struct fixture *f, const char *name, char *buf, size_t len);
void lock_path_of(const char *run_dir, char *buf, size_t len);
bool exists(const char *path);
void assert_contains(const char *haystack, const char *fmt, ...);

#endif
