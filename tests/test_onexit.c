/*
 * test_onexit.c - tests of server/onexit.c, the supervisor's undo stack
 *
 * Callbacks run newest first and once; a forked worker never runs the
 * supervisor's (whether it cancels the stack it inherited or forgets to);
 * the stack refuses to overflow.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "onexit.h"

static char onexit_log[64];

static void log_cb(void *arg)
{
	size_t n = strlen(onexit_log);

	if (n + 1 < sizeof(onexit_log)) {
		onexit_log[n] = *(const char *)arg;
		onexit_log[n + 1] = '\0';
	}
}

static void touch_cb(void *arg)
{
	int fd = open(arg, O_WRONLY | O_CREAT, 0600);

	if (fd >= 0)
		close(fd);
}

static void test_onexit_reverse_once(void **state)
{
	(void)state;
	onexit_log[0] = '\0';
	assert_int_equal(onexit_push(log_cb, "a"), 0);
	assert_int_equal(onexit_push(log_cb, "b"), 0);
	assert_int_equal(onexit_push(log_cb, "c"), 0);
	onexit_run_all();
	assert_string_equal(onexit_log, "cba");
	onexit_run_all();
	assert_string_equal(onexit_log, "cba");

	/* The stack is usable again afterwards. */
	assert_int_equal(onexit_push(log_cb, "d"), 0);
	onexit_run_all();
	assert_string_equal(onexit_log, "cbad");
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void test_onexit_not_in_child(void **state)
{
	char dir[] = "/tmp/shmkv-onexit-XXXXXX", path[64];
	int status;
	pid_t pid;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ran", dir);
	assert_int_equal(onexit_push(touch_cb, path), 0);

	/* A worker that cancels as it should. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		onexit_cancel_all();
		onexit_run_all();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_false(exists(path));

	/* A worker that forgot: the owner check still keeps it from running. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		onexit_run_all();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_false(exists(path));

	/* The supervisor itself does run it. */
	onexit_run_all();
	assert_true(exists(path));
	unlink(path);
	rmdir(dir);
}

static void test_onexit_full_and_cancel(void **state)
{
	(void)state;
	onexit_log[0] = '\0';
	for (int i = 0; i < ONEXIT_MAX; i++)
		assert_int_equal(onexit_push(log_cb, "x"), 0);
	assert_int_equal(onexit_push(log_cb, "y"), -ENOSPC);
	assert_int_equal(onexit_push(NULL, NULL), -EINVAL);
	onexit_cancel_all();
	onexit_run_all();
	assert_string_equal(onexit_log, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_onexit_reverse_once),
		cmocka_unit_test(test_onexit_not_in_child),
		cmocka_unit_test(test_onexit_full_and_cancel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
