/*
 * supervisor.h - the server's first process: creates, forks, restarts, undoes
 *
 * As PostgreSQL's postmaster: it takes the interlock, creates the shared
 * segment and the Unix socket, forks the workers and restarts any that
 * dies, and on SIGTERM or SIGINT stops them and undoes what it created.  It
 * never serves a request, so a bug in request handling can only kill a
 * worker, never the segment's owner.
 *
 * Interface routines:
 *   supervisor_run   run the server until told to stop; the exit status
 */
#ifndef SHMKV_SUPERVISOR_H
#define SHMKV_SUPERVISOR_H

#include "config.h"

/*
 * supervisor_run - start the server described by cfg and run it until
 * SIGTERM or SIGINT.  Returns the process exit status: 0 after a clean
 * stop, 1 if start-up failed (with the reason logged).
 */
int supervisor_run(const struct server_config *cfg);

#endif
