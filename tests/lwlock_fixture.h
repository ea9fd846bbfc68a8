/*
 * lwlock_fixture.h - the fake control part the LWLock tests share
 *
 * Each test maps its own fake control part with mmap(MAP_SHARED |
 * MAP_ANONYMOUS): a 128-byte header (offset 0 never names a lock), a few
 * padded LWLocks, some bookkeeping the tests share between processes
 * (struct shared), and a proc array.  *state is the struct fixture.
 *
 * Children never call cmocka: they check with CHILD_CHECK, which prints and
 * _exits non-zero.  They die with the test process (PR_SET_PDEATHSIG) and
 * on an alarm of their own.  The parent waits for them with a deadline and
 * polling waitpid(WNOHANG), so a lost wakeup fails the test instead of
 * hanging it; teardown kills and reaps every child whether the test passed
 * or not.
 *
 * Interface routines:
 *   setup, teardown   map the fake control part, claim the test's slot
 *   owner             another owner in this process, on a slot of its own
 *   lock_n, state_of  lock i and its state word
 *   spawn, reap_all   fork a child on its own slot; wait for all, with deadline
 *   kid_proc          a child's proc slot, once it has claimed one
 *   wait_queued       wait until a child is committed to sleep on a lock
 *   wait_flag         wait until a shared counter reaches a value
 *   now_ms, sleep_ms  the monotonic clock and a short sleep
 */
#ifndef SHMKV_TESTS_LWLOCK_FIXTURE_H
#define SHMKV_TESTS_LWLOCK_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "lwlock.h"
#include "proc.h"

#define NLOCKS 3
#define NPROCS 16
#define MAXKIDS 8
#define CHILD_ALARM_S 60  /* a child never outlives a hung test by more */
#define DEADLINE_MS 20000 /* what a phase may take before we call it lost */
#define HAMMER_KIDS 6
#define HAMMER_ITERS 20000
#define NO_SLOT UINT32_MAX

/* What the processes of one test share, besides locks and procs. */
struct shared {
	unsigned char header[128]; /* offset 0: never a lock */
	union lwlock_padded locks[NLOCKS];
	_Atomic int shared_holders[NLOCKS];
	_Atomic int excl_holders[NLOCKS];
	uint64_t count_a[NLOCKS];	     /* protected by locks[i] */
	uint64_t count_b[NLOCKS];	     /* kept equal to count_a */
	_Atomic uint64_t excl_iters[NLOCKS]; /* exclusive sections done */
	_Atomic uint64_t total_acq;	     /* acquisitions the kids made */
	_Atomic int in_shared;		     /* kids holding shared now */
	_Atomic int got[MAXKIDS];	     /* kid i holds its lock */
	_Atomic int go[MAXKIDS];	     /* parent lets kid i go on */
	_Atomic uint32_t slot_of[MAXKIDS];
};

struct fixture {
	unsigned char *base;
	size_t size;
	struct shared *sh;
	struct proc_array *procs;
	struct lwlock_owner me; /* the test process, slot claimed in setup */
	pid_t kids[MAXKIDS];
	int nkids;
};

typedef int (*child_fn)(struct fixture *f, int idx,
			const struct lwlock_owner *me);

#define CHILD_CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "child %d: line %d: check failed: %s\n", \
				(int)getpid(), __LINE__, #cond); \
			_exit(1); \
		} \
	} while (0)

uint64_t now_ms(void);
void sleep_ms(unsigned int ms);
int setup(void **state);
int teardown(void **state);
struct lwlock_owner owner(struct fixture *f);
struct lwlock *lock_n(struct fixture *f, int i);
uint32_t state_of(struct fixture *f, int i);
void spawn(struct fixture *f, int idx, child_fn fn);
int reap_all(struct fixture *f);
struct proc *kid_proc(struct fixture *f, int idx);
void wait_queued(struct fixture *f, int idx);
bool wait_flag(_Atomic int *flag, int want);

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

#endif
