/*
 * supervisor.c - the first process: create, fork, watch, restart, undo
 *
 * As PostgreSQL's postmaster, the supervisor owns everything shared and
 * serves nothing.  In order it takes the interlock (run directory, lock
 * file, SysV shim), binds the TCP listening sockets (one per worker slot,
 * see listener.c), creates the cache (segment, proc slots, table) with room
 * for the workers' counters, or with --memory-file adopts the one a previous
 * server left (memory_file.c: recovered first if that server died), claims a
 * proc slot of its own (table_tick may take partition locks), creates the
 * Unix listening socket, and forks the workers.  Each creation pushes its
 * undo on the onexit stack, so a failure half way and a clean stop undo
 * exactly what exists, newest first.  The listening sockets stay open here
 * for the server's life: a worker that dies leaves its connections queued
 * on them for the next one.
 *
 * The main loop is poll() on a self-pipe with a timeout: signal handlers
 * only set a flag and write a byte to the pipe (the only async-signal-safe
 * work they do); waitpid, logging, restarts and the 1-second clock tick all
 * happen in the loop.  NOTE: a libuv loop with uv_signal_t would do the
 * same, but every worker would then inherit that loop's epoll and signal
 * descriptors through fork; poll() and a pipe are two fds the child closes.
 *
 * A worker that dies is logged (its exit status or signal) and restarted
 * in the same stats slot.  Its proc slot is recovered here (recovery.c:
 * the locks it died in are made whole, a partition it was changing is
 * dropped) and released, since the worker could not do it, and its
 * curr_connections zeroed, since its connections died with it.  The loop
 * also wakes every RECOVERY_POLL_MS to find client programs that died
 * (they are not our children) and recover their slots the same way, so
 * that no process waits on a dead one's lock for longer than that.
 *
 * A worker that had said it was serving (a message on the ready pipe once
 * it listens) is restarted at once, however often it dies: its slot's
 * connections are waiting.  Only a worker that dies before it is ready is
 * restarted after a delay that doubles from 100 ms up to 5 s, so a worker
 * that cannot start does not spin; and when that would leave no worker at
 * all, the earliest one comes back within SUPERVISOR_FIRST_DELAY_MS.
 *
 * Stopping on SIGTERM or SIGINT: SIGTERM to every worker, wait for them
 * (SIGKILL after SUPERVISOR_STOP_WAIT_MS), run the onexit stack, exit 0.
 *
 * SIGUSR2 starts a live upgrade (supervisor_upgrade.c, upgrade.c): the
 * binary at our program path is started with the sockets and the segment;
 * once its workers serve, ours retire and we exit undoing nothing.  A
 * server started that way takes the running one's sockets, segment and
 * interlock over instead of creating them.
 *
 * Interface routines:
 *   supervisor_run (see supervisor.h)
 */
#include "supervisor.h"
#include "supervisor_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "clock.h"
#include "interlock.h"
#include "listener.h"
#include "memory_file.h"
#include "onexit.h"
#include "recovery.h"
#include "stats.h"
#include "worker.h"

#define SUPERVISOR_STOP_WAIT_MS 10000
#define SUPERVISOR_FIRST_DELAY_MS 100
#define SUPERVISOR_MAX_DELAY_MS 5000
#define SUPERVISOR_TICK_MS 1000

static struct supervisor sup;
static volatile sig_atomic_t got_stop;
static volatile sig_atomic_t got_child;
static volatile sig_atomic_t got_upgrade;
static int sig_pipe[2] = { -1, -1 };

/* on_signal - note the signal and wake the loop; nothing more is safe here. */
static void on_signal(int signo)
{
	int saved = errno;

	if (signo == SIGCHLD)
		got_child = 1;
	else if (signo == SIGUSR2)
		got_upgrade = 1;
	else
		got_stop = 1;
	/* The pipe is non-blocking: when full, the loop is already awake. */
	(void)!write(sig_pipe[1], "", 1);
	errno = saved;
}

static int install_signals(void)
{
	struct sigaction sa;

	if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	if (sigaction(SIGTERM, &sa, NULL) < 0 ||
	    sigaction(SIGINT, &sa, NULL) < 0 ||
	    sigaction(SIGCHLD, &sa, NULL) < 0 ||
	    sigaction(SIGUSR2, &sa, NULL) < 0)
		return -errno;
	/* A write to a closed connection must be an EPIPE, not a death;
	 * the workers inherit this. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static void drain_sig_pipe(void)
{
	char buf[64];

	while (read(sig_pipe[0], buf, sizeof(buf)) > 0)
		;
}

static void undo_ready_pipe(void *arg)
{
	struct supervisor *s = arg;

	close(s->ready_pipe[0]);
	close(s->ready_pipe[1]);
	s->ready_pipe[0] = s->ready_pipe[1] = -1;
}

static void undo_sig_pipe(void *arg)
{
	(void)arg;
	signal(SIGCHLD, SIG_DFL);
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	sig_pipe[0] = sig_pipe[1] = -1;
}

static void free_workers(void *arg)
{
	struct supervisor *s = arg;

	free(s->workers);
	s->workers = NULL;
}

/*
 * spawn_worker - fork worker i.  The child drops everything of the
 * supervisor's that is not its to use, then runs worker_run and exits.
 */
static int spawn_worker(struct supervisor *s, uint32_t i)
{
	struct worker_args args = {
		.cfg = s->cfg,
		.cache = &s->cache,
		.stats = &s->stats,
		.settings = &s->settings,
		.index = i,
		.unix_fd = s->unix_sock.fd,
		.tcp_fds = s->tcp_fds != NULL ? &s->tcp_fds[i * s->tcp_per_slot]
					      : NULL,
		.ntcp = s->tcp_fds != NULL ? s->tcp_per_slot : 0,
		.ready_fd = s->ready_pipe[1],
	};
	sigset_t block, old;
	pid_t pid, parent;
	uint32_t j;

	/* The child must not run our handlers before it has reset them. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, &old);
	fflush(NULL);
	parent = getpid();
	pid = fork();
	if (pid == 0) {
		onexit_cancel_all();
		/* A worker outliving a SIGKILLed supervisor would keep serving
		 * a segment nobody owns; have the kernel tell it, and check for
		 * a supervisor that died before the request was made. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			raise(SIGTERM);
		signal(SIGTERM, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		signal(SIGUSR2, SIG_IGN); /* until worker_run retires on it */
		/* ^C reaches the whole process group; the supervisor alone
		 * decides how the workers stop. */
		signal(SIGINT, SIG_IGN);
		close(sig_pipe[0]);
		close(sig_pipe[1]);
		close(s->ready_pipe[0]);
		if (s->up.old.chan >= 0)
			close(s->up.old.chan);
		if (s->up.inh.chan >= 0)
			close(s->up.inh.chan);
		/* The other slots' sockets stay the supervisor's. */
		for (j = 0; s->tcp_fds != NULL && j < s->ntcp; j++)
			if (j / s->tcp_per_slot != i)
				close(s->tcp_fds[j]);
		sigprocmask(SIG_SETMASK, &old, NULL);
		/* The cache is the supervisor's: only the worker's own proc
		 * slot is released by it, never the mapping undone. */
		exit(worker_run(&args));
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		return -errno;
	s->workers[i].pid = pid;
	s->workers[i].ready = false;
	s->workers[i].started_ms = monotonic_ms();
	if (s->cfg->verbosity >= 1)
		SERVER_LOG("started worker %u (pid %d)", i, (int)pid);
	return 0;
}

/*
 * release_dead_proc - make whole the locks a dead worker was in (dropping
 * a partition it may have been changing) and give its proc slot back;
 * what cannot be finished now, recovery_poll finishes.
 */
static void release_dead_proc(struct supervisor *s, pid_t pid)
{
	recovery_worker_died(&s->recovery, pid);
}

/* describe_status - "exited with status 3" or "was killed by signal 9 (Killed)". */
static void describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d (%s)",
			 WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "ended with wait status 0x%x",
			 (unsigned)status);
}

/*
 * keep_one_coming - with no worker running, the back-off must not leave the
 * server deaf: bring the slot due first forward to SUPERVISOR_FIRST_DELAY_MS
 * from now.
 */
static void keep_one_coming(struct supervisor *s)
{
	int64_t soon = monotonic_ms() + SUPERVISOR_FIRST_DELAY_MS;
	struct sup_worker *first = NULL;
	uint32_t i;

	for (i = 0; i < s->nworkers; i++) {
		if (s->workers[i].pid != 0)
			return;
		if (first == NULL ||
		    s->workers[i].restart_at_ms < first->restart_at_ms)
			first = &s->workers[i];
	}
	if (first != NULL && first->restart_at_ms > soon)
		first->restart_at_ms = soon;
}

/*
 * note_ready_workers - read the pids workers wrote on the ready pipe once
 * they were serving.  A message of a worker already dead and reaped, or of
 * a previous one in its slot, matches no running pid and is dropped.
 */
static void note_ready_workers(struct supervisor *s)
{
	int32_t pids[64];
	ssize_t n;
	size_t k;
	uint32_t i;

	while ((n = read(s->ready_pipe[0], pids, sizeof(pids))) > 0) {
		/* Every write is one whole int32 (atomic below PIPE_BUF). */
		for (k = 0; k < (size_t)n / sizeof(pids[0]); k++)
			for (i = 0; i < s->nworkers; i++)
				if (s->workers[i].pid == pids[k]) {
					s->workers[i].ready = true;
					s->workers[i].delay_ms = 0;
				}
	}
}

/*
 * reap_workers - collect every dead child.  While running, schedule each
 * dead worker's restart; while stopping, just note that it is gone.
 */
static void reap_workers(struct supervisor *s, bool stopping)
{
	struct sup_worker *sw;
	char how[96];
	int status;
	int64_t now, lived;
	pid_t pid;
	uint32_t i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == s->up.old.child)
			s->up.old.child = 0;
		for (i = 0; i < s->nworkers; i++)
			if (s->workers[i].pid == pid)
				break;
		if (i == s->nworkers)
			continue;
		sw = &s->workers[i];
		sw->pid = 0;
		release_dead_proc(s, pid);
		/* After a hand-over the slot is the new worker's too. */
		if (!s->up.old.adopted)
			atomic_store_explicit(&s->stats.slots[i].curr_connections,
					      0, memory_order_relaxed);
		describe_status(status, how, sizeof(how));
		if (stopping) {
			if (s->cfg->verbosity >= 1 || !WIFEXITED(status) ||
			    WEXITSTATUS(status) != 0)
				SERVER_LOG("worker %u (pid %d) %s", i, (int)pid,
					   how);
			continue;
		}
		now = monotonic_ms();
		lived = now - sw->started_ms;
		if (!sw->ready) {
			sw->delay_ms = sw->delay_ms == 0
					       ? SUPERVISOR_FIRST_DELAY_MS
					       : sw->delay_ms * 2;
			if (sw->delay_ms > SUPERVISOR_MAX_DELAY_MS)
				sw->delay_ms = SUPERVISOR_MAX_DELAY_MS;
		} else {
			sw->delay_ms = 0;
		}
		sw->ready = false;
		sw->restart_at_ms = now + sw->delay_ms;
		s->restarts++;
		atomic_fetch_add_explicit(&s->stats.slots[0].worker_restarts, 1,
					  memory_order_relaxed);
		SERVER_LOG("worker %u (pid %d) %s after %" PRId64
			   " ms; restarting it%s",
			   i, (int)pid, how, lived,
			   sw->delay_ms ? " after a back-off (it died before "
					  "it was serving)"
					: "");
	}
	if (!stopping)
		keep_one_coming(s);
}

/* restart_due - fork the workers whose restart time has come; the delay
 * until the next one, or -1. */
static int64_t restart_due(struct supervisor *s)
{
	int64_t now = monotonic_ms(), next = -1, left;
	uint32_t i;
	int rc;

	for (i = 0; i < s->nworkers; i++) {
		if (s->workers[i].pid != 0)
			continue;
		left = s->workers[i].restart_at_ms - now;
		if (left <= 0) {
			rc = spawn_worker(s, i);
			if (rc < 0) {
				SERVER_LOG("cannot fork worker %u: %s; retrying in 1 s",
					   i, strerror(-rc));
				s->workers[i].restart_at_ms = now + 1000;
				left = 1000;
			} else {
				continue;
			}
		}
		if (next < 0 || left < next)
			next = left;
	}
	return next;
}

static uint32_t live_workers(const struct supervisor *s)
{
	uint32_t i, n = 0;

	for (i = 0; i < s->nworkers; i++)
		n += s->workers[i].pid != 0;
	return n;
}

/* sup_stop_workers - signo (SIGTERM: stop, SIGUSR2: retire) to them all
 * and wait; SIGKILL any that outstays. */
void sup_stop_workers(struct supervisor *s, int signo)
{
	struct pollfd pfd = { .fd = sig_pipe[0], .events = POLLIN };
	int64_t deadline = monotonic_ms() + SUPERVISOR_STOP_WAIT_MS;
	bool killed = false;
	uint32_t i;

	for (i = 0; i < s->nworkers; i++)
		if (s->workers[i].pid != 0)
			kill(s->workers[i].pid, signo);
	reap_workers(s, true);
	while (live_workers(s) > 0) {
		int64_t left = deadline - monotonic_ms();

		if (left <= 0 && !killed) {
			SERVER_LOG("%u worker(s) still running after %d ms; killing them",
				   live_workers(s), SUPERVISOR_STOP_WAIT_MS);
			for (i = 0; i < s->nworkers; i++)
				if (s->workers[i].pid != 0)
					kill(s->workers[i].pid, SIGKILL);
			killed = true;
		}
		(void)poll(&pfd, 1,
			   left > 0 ? (left > 100 ? 100 : (int)left) : 100);
		drain_sig_pipe();
		reap_workers(s, true);
	}
}

/*
 * supervisor_start_up - every start-up step, each pushing its undo.
 * -errno with the reason already logged.
 */
static int supervisor_start_up(struct supervisor *s)
{
	const struct server_config *cfg = s->cfg;
	char err[1024];
	uint64_t size;
	int rc;

	rc = upgrade_inherited(&s->up.inh, err, sizeof(err));
	if (rc < 0) {
		SERVER_LOG("%s", err);
		return rc;
	}
	s->up.inherited = rc == 1;
	if (!s->up.inherited)
		s->up.inh.chan = -1;
	rc = sup_take_interlock_and_sockets(s);
	if (rc < 0)
		return rc;
	if (pipe2(s->ready_pipe, O_CLOEXEC) < 0 ||
	    fcntl(s->ready_pipe[0], F_SETFL, O_NONBLOCK) < 0) {
		rc = -errno;
		SERVER_LOG("cannot create a pipe: %s", strerror(-rc));
		return rc;
	}
	onexit_push(undo_ready_pipe, s);

	rc = install_signals();
	onexit_push(undo_sig_pipe, NULL);
	if (rc < 0) {
		SERVER_LOG("cannot install signal handlers: %s", strerror(-rc));
		return rc;
	}

	/* A memory file outlives this start: room for any later -t. */
	size = server_stats_region_size(cfg->memory_file[0] ? CONFIG_MAX_WORKERS
							    : cfg->workers);
	rc = sup_open_cache(s, size);
	if (rc == 0)
		rc = sup_open_rest(s, size);
	if (rc < 0)
		return rc;

	s->settings = (struct server_settings){
		.port = cfg->port,
		.listen = cfg->listen,
		.unix_socket = cfg->unix_socket,
		.memory = cfg->memory_mib << 20,
		.workers = cfg->workers,
		.max_connections = cfg->max_connections,
		.max_item_size = cfg->max_item_size,
		.partitions = cfg->partitions,
		.huge_pages = config_huge_pages_name(cfg->huge_pages),
		.page_size = s->cache.seg.page_size,
		.verbosity = cfg->verbosity,
		.idle_timeout = cfg->idle_timeout,
		.shutdown_command = cfg->shutdown_command,
		.flush_disabled = cfg->flush_disabled,
		.evict_disabled = cfg->evict_disabled,
		.cas_disabled = cfg->cas_disabled,
		.started = (int64_t)time(NULL),
		.pid = (int)getpid(),
	};
	s->nworkers = cfg->workers;
	s->workers = calloc(s->nworkers, sizeof(*s->workers));
	if (s->workers == NULL) {
		SERVER_LOG("out of memory");
		return -ENOMEM;
	}
	onexit_push(free_workers, s);
	sup_log_start(s);
	if (cfg->port != 0 && !config_listen_is_loopback(cfg->listen))
		SERVER_LOG("WARNING: listening on %s, which is not a loopback address: "
			   "anyone who can reach this machine on port %d can read and "
			   "overwrite the cache (there is no authentication); use "
			   "-l 127.0.0.1 unless that is intended",
			   cfg->listen, cfg->port);
	return 0;
}

/* loop_once - one round of the main loop: wait, then whatever is due. */
static void loop_once(struct supervisor *s, int64_t *next_tick)
{
	struct pollfd pfd[3];
	int64_t wait, restart_wait;

	wait = *next_tick - monotonic_ms();
	restart_wait = restart_due(s);
	if (restart_wait >= 0 && restart_wait < wait)
		wait = restart_wait;
	if (wait > RECOVERY_POLL_MS)
		wait = RECOVERY_POLL_MS;
	if (wait < 0)
		wait = 0;
	pfd[0] = (struct pollfd){ .fd = sig_pipe[0], .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = s->ready_pipe[0], .events = POLLIN };
	pfd[2] = (struct pollfd){ .fd = s->up.old.chan, .events = POLLIN };
	(void)poll(pfd, 3, (int)wait);
	drain_sig_pipe();
	/* Before reaping: a worker that said it was serving and died
	 * since is restarted at once, not after a back-off. */
	note_ready_workers(s);
	if (got_child) {
		got_child = 0;
		reap_workers(s, false);
	}
	if (got_upgrade) {
		got_upgrade = 0;
		sup_upgrade_begin(s);
	}
	if (s->up.old.chan >= 0 && (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)))
		sup_upgrade_event(s);
	if (s->up.inh.chan >= 0)
		sup_upgrade_serving(s);
	/* Once a successor adopted the segment, it alone recovers and ticks. */
	if (s->up.old.adopted)
		return;
	recovery_poll(&s->recovery);
	if (monotonic_ms() >= *next_tick) {
		/* The coarse clock every process judges expiry by. */
		table_tick(&s->cache.table, (uint32_t)time(NULL));
		*next_tick += SUPERVISOR_TICK_MS;
		if (*next_tick < monotonic_ms())
			*next_tick = monotonic_ms() + SUPERVISOR_TICK_MS;
	}
}

int supervisor_run(const struct server_config *cfg)
{
	struct supervisor *s = &sup;
	int64_t next_tick;
	int rc;

	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	s->unix_sock.fd = -1;
	s->ready_pipe[0] = s->ready_pipe[1] = -1;
	s->up.old.chan = -1;
	rc = supervisor_start_up(s);
	if (rc < 0) {
		onexit_run_all();
		return 1;
	}
	/* Every worker starts "due now". */
	restart_due(s);
	next_tick = monotonic_ms() + SUPERVISOR_TICK_MS;
	while (!got_stop && !s->up.retire)
		loop_once(s, &next_tick);
	/* The segment, sockets and lock file are a successor's now (or still
	 * the old server's, while we are a successor not yet serving). */
	if (s->up.retire || s->up.old.adopted || s->up.inh.chan >= 0)
		return sup_upgrade_exit(s, s->up.retire ? SIGUSR2 : SIGTERM);
	SERVER_LOG("stopping: %u worker(s) running, %" PRIu64 " restart(s)",
		   live_workers(s), s->restarts);
	/* A successor that has not adopted yet must not take over what we
	 * are about to undo. */
	if (s->up.old.chan >= 0 && s->up.old.child > 0) {
		kill(s->up.old.child, SIGKILL);
		(void)waitpid(s->up.old.child, NULL, 0);
	}
	sup_stop_workers(s, SIGTERM);
	memory_file_stopped(&s->mfile, s->recovery.pending == 0);
	sup_upgrade_note_failed(s, NULL);
	onexit_run_all();
	SERVER_LOG("stopped");
	return 0;
}
