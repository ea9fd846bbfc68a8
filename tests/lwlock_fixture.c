/*
 * lwlock_fixture.c - the fake control part, and the children, of the LWLock tests
 *
 * test_lwlock.c (one process, several owners) and test_lwlock_procs.c
 * (real forked processes) share this fixture: a control part of their own,
 * mapped shared and anonymous, laid out as the server's is (locks, then
 * a proc array), and the helpers that fork children onto it and wait for
 * them with deadlines, so that a lost wakeup fails a test rather than
 * hanging it.  See lwlock_fixture.h for the layout and the rules children
 * follow.
 *
 * Interface routines (see lwlock_fixture.h): setup, teardown, owner, lock_n,
 * state_of, spawn, reap_all, kid_proc, wait_queued, wait_flag, now_ms,
 * sleep_ms.
 */
#include "lwlock_fixture.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000u,
			       .tv_nsec = (long)(ms % 1000u) * 1000000L };

	nanosleep(&ts, NULL);
}

static size_t round_up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	size_t procs_off = round_up(sizeof(struct shared), 128);
	uint32_t slot;

	if (f == NULL)
		return -1;
	f->size = procs_off + proc_array_size(NPROCS);
	f->base = mmap(NULL, f->size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (f->base == MAP_FAILED) {
		free(f);
		return -1;
	}
	f->sh = (struct shared *)f->base;
	f->procs = (struct proc_array *)(f->base + procs_off);
	proc_array_init(f->procs, NPROCS);
	for (int i = 0; i < NLOCKS; i++)
		lwlock_init(&f->sh->locks[i].lock);
	for (int i = 0; i < MAXKIDS; i++)
		atomic_init(&f->sh->slot_of[i], NO_SLOT);
	if (proc_claim(f->procs, NPROCS, getpid(), &slot) != 0)
		return -1;
	f->me = (struct lwlock_owner){ .ctl_base = f->base,
				       .ctl_size = f->size,
				       .procs = f->procs,
				       .nprocs = NPROCS,
				       .self = slot };
	*state = f;
	return 0;
}

/* teardown - kill and reap every child still there, then unmap. */
int teardown(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < f->nkids; i++) {
		if (f->kids[i] > 0) {
			kill(f->kids[i], SIGKILL);
			waitpid(f->kids[i], NULL, 0);
		}
	}
	munmap(f->base, f->size);
	free(f);
	return 0;
}

/* owner - another owner in this process, on its own claimed slot. */
struct lwlock_owner owner(struct fixture *f)
{
	struct lwlock_owner o = f->me;

	assert_int_equal(proc_claim(f->procs, NPROCS, getpid(), &o.self), 0);
	return o;
}

struct lwlock *lock_n(struct fixture *f, int i)
{
	return &f->sh->locks[i].lock;
}

uint32_t state_of(struct fixture *f, int i)
{
	return atomic_load(&lock_n(f, i)->state);
}

/* spawn - fork a child that claims a slot and runs fn; records its pid. */
void spawn(struct fixture *f, int idx, child_fn fn)
{
	pid_t pid;

	assert_true(f->nkids < MAXKIDS);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct lwlock_owner me = f->me;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(CHILD_ALARM_S);
		CHILD_CHECK(proc_claim(f->procs, NPROCS, getpid(), &me.self) == 0);
		atomic_store(&f->sh->slot_of[idx], me.self);
		_exit(fn(f, idx, &me));
	}
	f->kids[f->nkids++] = pid;
}

/*
 * reap_all - wait for every child, at most DEADLINE_MS.  Returns the number
 * of children that failed; on timeout kills them all and fails the test.
 */
int reap_all(struct fixture *f)
{
	uint64_t deadline = now_ms() + DEADLINE_MS;
	int failed = 0;
	int left = 0;

	for (int i = 0; i < f->nkids; i++)
		left += f->kids[i] > 0;
	while (left > 0) {
		for (int i = 0; i < f->nkids; i++) {
			int status;

			if (f->kids[i] <= 0 ||
			    waitpid(f->kids[i], &status, WNOHANG) != f->kids[i])
				continue;
			f->kids[i] = 0;
			left--;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				fprintf(stderr, "child %d failed (status 0x%x)\n",
					i, status);
				failed++;
			}
		}
		if (left > 0 && now_ms() > deadline) {
			for (int i = 0; i < f->nkids; i++)
				if (f->kids[i] > 0)
					kill(f->kids[i], SIGKILL);
			fail_msg("%d children still running after %d ms: "
				 "lost wakeup or deadlock",
				 left, DEADLINE_MS);
		}
		if (left > 0)
			sleep_ms(2);
	}
	return failed;
}

/* kid_proc - kid idx's proc slot, waiting until it has claimed one. */
struct proc *kid_proc(struct fixture *f, int idx)
{
	uint64_t deadline = now_ms() + DEADLINE_MS;
	uint32_t slot;

	while ((slot = atomic_load(&f->sh->slot_of[idx])) == NO_SLOT) {
		if (now_ms() > deadline)
			fail_msg("child %d never claimed a slot", idx);
		sleep_ms(1);
	}
	return proc_get(f->procs, NPROCS, slot);
}

/*
 * wait_queued - wait until kid idx is committed to sleeping in a lock's
 * wait list.  Being on the list (waiting == 1) is not enough: the kid
 * attempts the lock once more after queueing, and a release that comes
 * before that attempt lets it in without sleeping.  wait_sleep is set only
 * once that attempt has failed, so from then on the kid sleeps (or finds
 * itself already woken) and counts as contended.  Its low bit marks the
 * other sleep, in dequeue, which these tests do not wait for.
 */
void wait_queued(struct fixture *f, int idx)
{
	struct proc *p = kid_proc(f, idx);
	uint64_t deadline = now_ms() + DEADLINE_MS;
	uint32_t sleep_word;

	assert_non_null(p);
	for (;;) {
		sleep_word = atomic_load(&p->wait_sleep);
		if (atomic_load(&p->waiting) == 1 && sleep_word != 0 &&
		    (sleep_word & 1u) == 0)
			break;
		if (now_ms() > deadline)
			fail_msg("child %d never queued for the lock", idx);
		sleep_ms(1);
	}
}

/* wait_flag - wait until *flag reaches at least want; false on timeout. */
bool wait_flag(_Atomic int *flag, int want)
{
	uint64_t deadline = now_ms() + DEADLINE_MS;

	while (atomic_load(flag) < want) {
		if (now_ms() > deadline)
			return false;
		sleep_ms(1);
	}
	return true;
}
