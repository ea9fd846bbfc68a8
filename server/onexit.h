/*
 * onexit.h - the stack of undo callbacks run when the supervisor exits
 *
 * As PostgreSQL's on_shmem_exit (storage/ipc/ipc.c): each step that creates
 * something outside the process (the interlock's lock file and shim, the
 * segment, the Unix socket) pushes the callback that undoes it, and
 * onexit_run_all() runs them newest first, on a clean exit and on a fatal
 * error alike, so each thing is undone while what it depends on still exists.
 *
 * A forked worker inherits the stack along with the rest of the memory, but
 * it must never undo what the supervisor created.  It calls
 * onexit_cancel_all() right after fork.  As a second line of defence every
 * entry remembers the PID that pushed it, and onexit_run_all() skips entries
 * pushed by another process, so a child that forgets to cancel still does
 * no harm.
 *
 * The stack is a fixed array: pushing must work when memory is short, and
 * the supervisor registers only a handful of undos.  It is not thread-safe
 * and not async-signal-safe; call it from the supervisor's main loop.
 *
 * Interface routines:
 *   onexit_push        register an undo callback (-ENOSPC when full)
 *   onexit_run_all     run this process's callbacks newest first, each once
 *   onexit_cancel_all  forget every callback without running it (after fork)
 */
#ifndef SHMKV_ONEXIT_H
#define SHMKV_ONEXIT_H

#define ONEXIT_MAX 32

typedef void (*onexit_fn)(void *arg);

int onexit_push(onexit_fn fn, void *arg);
void onexit_run_all(void);
void onexit_cancel_all(void);

#endif /* SHMKV_ONEXIT_H */
