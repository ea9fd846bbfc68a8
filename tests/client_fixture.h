/*
 * client_fixture.h - a real shmkv-server for the client library's tests
 *
 * test_client.c needs what tests/e2e/harness.py gives the Python tests: the
 * real server on a free port with a run directory of its own, stopped
 * whatever happens, and a plain TCP connection to write through as any
 * memcached client would.  Kept apart from the tests so that they read as
 * what they check.
 *
 * Functions named fix_*_quiet return -1 instead of failing the test, for
 * use in forked children, where a cmocka failure would unwind into the
 * parent's test runner.
 *
 * Interface routines:
 *   fix_server_path     $SHMKV_SERVER, or NULL
 *   fix_server_start    start it (a fresh directory, or again in an old one)
 *   fix_server_stop     SIGTERM, wait; SIGKILL and clean up if it hangs
 *   fix_server_kill     SIGKILL, as a crash
 *   fix_server_cleanup  remove the temporary directory
 *   fix_tcp, fix_tcp_quiet              connect over TCP
 *   fix_tcp_send_quiet, fix_tcp_line_quiet  raw bytes out, one line in
 *   fix_tcp_store, fix_tcp_store_n, fix_tcp_store_quiet  one storage command
 *   fix_tcp_stat        one number of `stats`
 *   fix_now, fix_sleep  monotonic seconds
 *   fix_setup, fix_teardown  cmocka: a server per test, always stopped
 *   fix_open, fix_get_str    open a handle or fail; a lookup as a string
 */
#ifndef SHMKV_CLIENT_FIXTURE_H
#define SHMKV_CLIENT_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shmkv.h"

struct server {
	pid_t pid; /* the supervisor, 0 when not running */
	int port;
	char dir[64];	/* temporary; holds run/ and server.log */
	char run[80];	/* --run-dir */
	char sock[100]; /* run/shmkv.sock */
	char log[100];
};

const char *fix_server_path(void);

/* fix_have_server - main's check: is $SHMKV_SERVER set?  Says so if not. */
bool fix_have_server(void);

/*
 * fix_server_start - start shmkv-server (-t 2 -m 64 --huge-pages off) in
 * dir (NULL: a new temporary one), with the NULL-terminated flags in extra
 * after those (may be NULL), and wait until TCP and the Unix socket answer.
 * Fails the test (with the server's log) if it does not come up.
 */
void fix_server_start(struct server *s, const char *dir,
		      const char *const *extra);

/* fix_server_stop - the exit status of a clean stop, or -1. */
int fix_server_stop(struct server *s);

/* fix_server_kill - SIGKILL the supervisor and its workers, as a crash
 * would; leaves the lock file and shim for the next server to clear. */
void fix_server_kill(struct server *s);
void fix_server_cleanup(struct server *s);

int fix_tcp_quiet(const struct server *s);
int fix_tcp(const struct server *s);

/* fix_tcp_send_quiet - send all n bytes; 0 or -1. */
int fix_tcp_send_quiet(int fd, const void *p, size_t n);

/* fix_tcp_line_quiet - read one line; out holds it without its \r\n. */
int fix_tcp_line_quiet(int fd, char *out, size_t cap);

/* head is the command line without \r\n; want the whole reply line. */
int fix_tcp_store_quiet(int fd, const char *head, const void *data, size_t n,
			const char *want);
void fix_tcp_store_n(int fd, const char *head, const void *data, size_t n,
		     const char *want);
void fix_tcp_store(int fd, const char *head, const char *data, const char *want);

/* fix_tcp_stat - the value of `STAT name` in the server's stats, or -1. */
long long fix_tcp_stat(int fd, const char *name);

double fix_now(void);
void fix_sleep(double seconds);

/*
 * fix_setup - *state is an array of two struct server, the first running;
 * the second is for a test that needs another server (fix_server_start
 * it).  fix_teardown stops and removes both, whatever the test did.
 */
int fix_setup(void **state);
int fix_teardown(void **state);

/* fix_open - a handle on s, or fail the test with the library's message. */
shmkv *fix_open(const struct server *s);

/* fix_get_str - shmkv_get into buf as a string ("" unless SHMKV_OK). */
enum shmkv_status fix_get_str(shmkv *kv, const char *key, char *buf, size_t cap,
			      uint32_t *flags);

#endif
