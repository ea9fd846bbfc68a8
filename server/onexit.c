/*
 * onexit.c - the stack of undo callbacks run when the supervisor exits
 *
 * Modelled on PostgreSQL's on_shmem_exit / shmem_exit (storage/ipc/ipc.c).
 * Entries are popped before they are called, so a callback that fails by
 * calling exit(), or that calls onexit_run_all() itself, never causes an
 * entry to run twice, and calling onexit_run_all() a second time is a no-op.
 *
 * Each entry carries the PID of the process that pushed it.  fork() copies
 * the stack into the child; the child's getpid() differs, so its entries are
 * dropped unrun.  That is what keeps a worker that exits (or dies in a path
 * that reaches onexit_run_all) from unlinking the supervisor's lock file or
 * removing its shared memory.
 *
 * Interface routines:
 *   onexit_push        register an undo callback
 *   onexit_run_all     run this process's callbacks newest first, each once
 *   onexit_cancel_all  forget every callback without running it
 */
#include "onexit.h"

#include <errno.h>
#include <stddef.h>
#include <sys/types.h>
#include <unistd.h>

struct onexit_entry {
	onexit_fn fn;
	void *arg;
	pid_t owner; /* the process that pushed it; only it may run it */
};

static struct onexit_entry onexit_stack[ONEXIT_MAX];
static int onexit_depth;

/*
 * onexit_push - register fn(arg) to run when this process exits
 *
 * Returns 0, -EINVAL for a NULL fn, or -ENOSPC when ONEXIT_MAX callbacks
 * are already registered; in both failure cases nothing is registered, so
 * the caller should undo its step at once and fail.
 */
int onexit_push(onexit_fn fn, void *arg)
{
	if (fn == NULL)
		return -EINVAL;
	if (onexit_depth >= ONEXIT_MAX)
		return -ENOSPC;
	onexit_stack[onexit_depth].fn = fn;
	onexit_stack[onexit_depth].arg = arg;
	onexit_stack[onexit_depth].owner = getpid();
	onexit_depth++;
	return 0;
}

/*
 * onexit_run_all - run the registered callbacks, newest first
 *
 * Every callback runs at most once: it is removed before it is called.
 * Entries pushed by another process (inherited through fork) are dropped
 * without running.  Afterwards the stack is empty; a second call does
 * nothing.  Callbacks pushed by a running callback run in this same pass.
 */
void onexit_run_all(void)
{
	pid_t self = getpid();

	while (onexit_depth > 0) {
		struct onexit_entry e;

		onexit_depth--;
		e = onexit_stack[onexit_depth];
		onexit_stack[onexit_depth].fn = NULL;
		if (e.owner == self)
			e.fn(e.arg);
	}
}

/*
 * onexit_cancel_all - forget every registered callback without running it
 *
 * A forked worker calls this first thing, as PostgreSQL's children do
 * on_exit_reset(): what the supervisor created is the supervisor's to undo.
 */
void onexit_cancel_all(void)
{
	while (onexit_depth > 0) {
		onexit_depth--;
		onexit_stack[onexit_depth].fn = NULL;
	}
}
