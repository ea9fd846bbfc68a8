/*
 * supervisor.c - the first process: create, fork, watch, restart, undo
 *
 * As PostgreSQL's postmaster, the supervisor owns everything shared and
 * serves nothing.  In order it takes the interlock (run directory, lock
 * file, SysV shim), checks that the TCP port can be bound, creates the
 * cache (segment, proc slots, table) with room for the workers' counters,
 * claims a proc slot of its own (table_tick may take partition locks),
 * creates the Unix listening socket, and forks the workers.  Each creation
 * pushes its undo on the onexit stack, so a failure half way and a clean
 * stop undo exactly what exists, newest first.
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
 * A worker that dies within a second of its start is restarted after a
 * delay that doubles from 100 ms up to 5 s, so a worker that cannot start
 * (say, its port was taken) does not spin.
 *
 * Stopping on SIGTERM or SIGINT: SIGTERM to every worker, wait for them
 * (SIGKILL after SUPERVISOR_STOP_WAIT_MS), run the onexit stack, exit 0.
 *
 * Interface routines:
 *   supervisor_run (see supervisor.h)
 */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "clock.h"
#include "interlock.h"
#include "onexit.h"
#include "recovery.h"
#include "stats.h"
#include "worker.h"

#define SUPERVISOR_STOP_WAIT_MS 10000
#define SUPERVISOR_QUICK_DEATH_MS 1000
#define SUPERVISOR_FIRST_DELAY_MS 100
#define SUPERVISOR_MAX_DELAY_MS 5000
#define SUPERVISOR_TICK_MS 1000
#define SUPERVISOR_UNIX_BACKLOG 1024

struct sup_worker {
	pid_t pid;             /* 0 when not running */
	int64_t started_ms;
	int64_t restart_at_ms; /* when pid == 0: when to fork it again */
	uint32_t delay_ms;     /* current back-off */
};

struct supervisor {
	const struct server_config *cfg;
	struct interlock il;
	struct cache cache;
	bool cache_created;
	struct server_stats_view stats;
	struct server_settings settings;
	int unix_fd;
	struct sup_worker *workers;
	uint32_t nworkers;
	uint64_t restarts;
	struct recovery recovery;
};

static struct supervisor sup;
static volatile sig_atomic_t got_stop;
static volatile sig_atomic_t got_child;
static int sig_pipe[2] = { -1, -1 };

/* on_signal - note the signal and wake the loop; nothing more is safe here. */
static void on_signal(int signo)
{
	int saved = errno;

	if (signo == SIGCHLD)
		got_child = 1;
	else
		got_stop = 1;
	/* The pipe is non-blocking: when full, the loop is already awake. */
	(void)!write(sig_pipe[1], "", 1);
	errno = saved;
}

static int64_t now_ms(void)
{
	return (int64_t)(monotonic_ns() / 1000000);
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
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
	    sigaction(SIGCHLD, &sa, NULL) < 0)
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

/* onexit callbacks: each undoes one step of start-up. */
static void undo_cache(void *arg)
{
	struct cache *c = arg;

	/* Client programs attached to the segment learn that it is gone. */
	atomic_store_explicit(&segment_header(&c->seg)->state, SEGMENT_STATE_SHUTDOWN,
			      memory_order_release);
	cache_destroy(c);
}

/*
 * With --attach-group, the group's members must reach the socket: search
 * permission on the run directory and write permission on the socket.
 * Neither becomes writable for anyone else, and the lock file stays ours.
 */
static void share_with_group(const struct server_config *cfg)
{
	if (chown(cfg->run_dir, (uid_t)-1, cfg->attach_gid) < 0 ||
	    chmod(cfg->run_dir, 0710) < 0 ||
	    chown(cfg->unix_socket, (uid_t)-1, cfg->attach_gid) < 0 ||
	    chmod(cfg->unix_socket, 0770) < 0)
		SERVER_LOG("cannot open %s to group %s: %s; its members will not "
			   "reach the socket", cfg->run_dir, cfg->attach_group,
			   strerror(errno));
}

static void undo_unix_socket(void *arg)
{
	struct supervisor *s = arg;

	if (s->unix_fd >= 0)
		close(s->unix_fd);
	s->unix_fd = -1;
	unlink(s->cfg->unix_socket);
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
 * open_unix_socket - bind and listen on the Unix socket.  A socket file
 * left there is removed first: the interlock has established that no
 * server of ours is alive, so nobody can be listening on it.
 */
static int open_unix_socket(struct supervisor *s)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->cfg->unix_socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void)unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(sa.sun_path, s->cfg->socket_mode) < 0 ||
	    listen(fd, SUPERVISOR_UNIX_BACKLOG) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	s->unix_fd = fd;
	/* --socket-mode opening the socket to others: they also need to
	 * reach it through the run directory (created 0700). */
	if (config_run_dir_mode(s->cfg->socket_mode) != 0700 &&
	    chmod(s->cfg->run_dir, config_run_dir_mode(s->cfg->socket_mode)) < 0)
		SERVER_LOG("cannot set mode %04o on %s: %s; --socket-mode %04o "
			   "will not let others reach the socket",
			   config_run_dir_mode(s->cfg->socket_mode), s->cfg->run_dir,
			   strerror(errno), s->cfg->socket_mode);
	return 0;
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
		.unix_fd = s->unix_fd,
	};
	sigset_t block, old;
	pid_t pid, parent;

	/* The child must not run our handlers before it has reset them. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGCHLD);
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
		/* ^C reaches the whole process group; the supervisor alone
		 * decides how the workers stop. */
		signal(SIGINT, SIG_IGN);
		close(sig_pipe[0]);
		close(sig_pipe[1]);
		sigprocmask(SIG_SETMASK, &old, NULL);
		/* The cache is the supervisor's: only the worker's own proc
		 * slot is released by it, never the mapping undone. */
		exit(worker_run(&args));
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		return -errno;
	s->workers[i].pid = pid;
	s->workers[i].started_ms = now_ms();
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

static void free_recovery(void *arg)
{
	recovery_free(arg);
}


/* describe_status - "exited with status 3" or "was killed by signal 9 (Killed)". */
static void describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "ended with wait status 0x%x", (unsigned)status);
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
		for (i = 0; i < s->nworkers; i++)
			if (s->workers[i].pid == pid)
				break;
		if (i == s->nworkers)
			continue;
		sw = &s->workers[i];
		sw->pid = 0;
		release_dead_proc(s, pid);
		atomic_store_explicit(&s->stats.slots[i].curr_connections, 0,
				      memory_order_relaxed);
		describe_status(status, how, sizeof(how));
		if (stopping) {
			if (s->cfg->verbosity >= 1 || !WIFEXITED(status) ||
			    WEXITSTATUS(status) != 0)
				SERVER_LOG("worker %u (pid %d) %s", i, (int)pid, how);
			continue;
		}
		now = now_ms();
		lived = now - sw->started_ms;
		if (lived < SUPERVISOR_QUICK_DEATH_MS) {
			sw->delay_ms = sw->delay_ms == 0 ? SUPERVISOR_FIRST_DELAY_MS
							 : sw->delay_ms * 2;
			if (sw->delay_ms > SUPERVISOR_MAX_DELAY_MS)
				sw->delay_ms = SUPERVISOR_MAX_DELAY_MS;
		} else {
			sw->delay_ms = 0;
		}
		sw->restart_at_ms = now + sw->delay_ms;
		s->restarts++;
		atomic_fetch_add_explicit(&s->stats.slots[0].worker_restarts, 1,
					  memory_order_relaxed);
		SERVER_LOG("worker %u (pid %d) %s after %" PRId64 " ms; restarting it%s",
			   i, (int)pid, how, lived,
			   sw->delay_ms ? " after a back-off" : "");
	}
}

/* restart_due - fork the workers whose restart time has come; the delay
 * until the next one, or -1. */
static int64_t restart_due(struct supervisor *s)
{
	int64_t now = now_ms(), next = -1, left;
	uint32_t i;
	int rc;

	for (i = 0; i < s->nworkers; i++) {
		if (s->workers[i].pid != 0)
			continue;
		left = s->workers[i].restart_at_ms - now;
		if (left <= 0) {
			rc = spawn_worker(s, i);
			if (rc < 0) {
				SERVER_LOG("cannot fork worker %u: %s; retrying in 1 s", i,
					   strerror(-rc));
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

/* stop_workers - SIGTERM them all and wait; SIGKILL any that outstays. */
static void stop_workers(struct supervisor *s)
{
	struct pollfd pfd = { .fd = sig_pipe[0], .events = POLLIN };
	int64_t deadline = now_ms() + SUPERVISOR_STOP_WAIT_MS;
	bool killed = false;
	uint32_t i;

	for (i = 0; i < s->nworkers; i++)
		if (s->workers[i].pid != 0)
			kill(s->workers[i].pid, SIGTERM);
	reap_workers(s, true);
	while (live_workers(s) > 0) {
		int64_t left = deadline - now_ms();

		if (left <= 0 && !killed) {
			SERVER_LOG("%u worker(s) still running after %d ms; killing them",
				   live_workers(s), SUPERVISOR_STOP_WAIT_MS);
			for (i = 0; i < s->nworkers; i++)
				if (s->workers[i].pid != 0)
					kill(s->workers[i].pid, SIGKILL);
			killed = true;
		}
		(void)poll(&pfd, 1, left > 0 ? (left > 100 ? 100 : (int)left) : 100);
		drain_sig_pipe();
		reap_workers(s, true);
	}
}

/* log_start - the one line saying what the server really got. */
static void log_start(const struct supervisor *s)
{
	const struct server_config *cfg = s->cfg;
	const struct segment *seg = &s->cache.seg;
	char tcp[300] = "";
	char page[32];

	if (seg->page_size >= (1u << 30))
		snprintf(page, sizeof(page), "%zu GiB", seg->page_size >> 30);
	else if (seg->page_size >= (1u << 20))
		snprintf(page, sizeof(page), "%zu MiB", seg->page_size >> 20);
	else
		snprintf(page, sizeof(page), "%zu KiB", seg->page_size >> 10);
	if (cfg->port != 0)
		snprintf(tcp, sizeof(tcp), "%s%s%s:%d and ",
			 strchr(cfg->listen, ':') ? "[" : "", cfg->listen,
			 strchr(cfg->listen, ':') ? "]" : "", cfg->port);
	SERVER_LOG("%s %s started: memory %" PRIu64 " MiB (segment ready in "
		   "%.2f s%s), pages of %s (%s%s), "
		   "%u workers, %u partitions, items up to %u bytes, "
		   "%u connections; listening on %s%s",
		   SERVER_NAME, SERVER_VERSION, cfg->memory_mib,
		   seg->create_seconds, cfg->prefault ? ", prefaulted" : "", page,
		   seg->huge ? "huge pages" : "normal pages",
		   seg->huge_fell_back ? ", huge pages unavailable: fell back" : "",
		   cfg->workers, cfg->partitions, cfg->max_item_size,
		   cfg->max_connections, tcp, cfg->unix_socket);
}

/*
 * supervisor_start_up - every start-up step, each pushing its undo.
 * -errno with the reason already logged.
 */
static int supervisor_start_up(struct supervisor *s)
{
	const struct server_config *cfg = s->cfg;
	struct cache_config cc;
	char err[1024];
	uint64_t off = 0, size;
	int rc, fd;

	rc = interlock_acquire(&s->il, cfg->run_dir, cfg->port, cfg->unix_socket,
			       err, sizeof(err));
	if (rc < 0) {
		SERVER_LOG("%s", err);
		return rc;
	}
	onexit_push(interlock_release_cb, &s->il);
	if (s->il.stale_pid != 0 || s->il.stale_shims_removed > 0)
		SERVER_LOG("removed what a dead server (pid %d) left in %s",
			   (int)s->il.stale_pid, cfg->run_dir);

	/* Find out now, not in every worker, that the port is taken. */
	if (cfg->port != 0) {
		fd = worker_open_tcp(cfg->listen, cfg->port, err, sizeof(err));
		if (fd < 0) {
			SERVER_LOG("%s", err);
			return fd;
		}
		close(fd);
	}

	rc = install_signals();
	onexit_push(undo_sig_pipe, NULL);
	if (rc < 0) {
		SERVER_LOG("cannot install signal handlers: %s", strerror(-rc));
		return rc;
	}

	size = server_stats_region_size(cfg->workers);
	memset(&cc, 0, sizeof(cc));
	cc.table.partitions = cfg->partitions;
	cc.table.memory = cfg->memory_mib << 20;
	cc.table.max_item_size = cfg->max_item_size;
	cc.seg.huge_pages = cfg->huge_pages;
	cc.seg.huge_page_size = cfg->huge_page_size;
	cc.seg.prefault = cfg->prefault;
	cc.extra_ctl_bytes = size + SEGMENT_ALIGN;
	{
		struct stat st;

		if (stat(cfg->run_dir, &st) == 0) {
			cc.seg.rundir_dev = (uint64_t)st.st_dev;
			cc.seg.rundir_ino = (uint64_t)st.st_ino;
		}
	}
	rc = cache_create(&s->cache, &cc, err, sizeof(err));
	if (rc < 0) {
		SERVER_LOG("cannot create the shared cache: %s", err);
		return rc;
	}
	s->cache_created = true;
	onexit_push(undo_cache, &s->cache);
	{
		struct stat st;

		/* Ties the shim to the segment for an operator's ipcs/ls. */
		if (s->il.shim != NULL && fstat(s->cache.seg.data_fd, &st) == 0)
			s->il.shim->data_ino = (uint64_t)st.st_ino;
	}

	rc = segment_alloc(&s->cache.seg, SEGMENT_CTL, "server.stats", size, &off);
	if (rc == 0) {
		s->stats.slots = segment_ptr(&s->cache.seg, SEGMENT_CTL, off, size);
		s->stats.count = cfg->workers;
		if (s->stats.slots == NULL)
			rc = -EFAULT;
	}
	if (rc < 0) {
		SERVER_LOG("cannot allocate the workers' counters (%" PRIu64 " bytes): %s",
			   size, strerror(-rc));
		return rc;
	}
	rc = cache_claim_proc(&s->cache);
	if (rc < 0) {
		SERVER_LOG("cannot claim a proc slot: %s", strerror(-rc));
		return rc;
	}
	rc = recovery_init(&s->recovery, &s->cache, &s->stats.slots[0],
			   cfg->verbosity);
	if (rc < 0) {
		SERVER_LOG("out of memory");
		return rc;
	}
	onexit_push(free_recovery, &s->recovery);
	table_tick(&s->cache.table, (uint32_t)time(NULL));

	s->unix_fd = -1;
	rc = open_unix_socket(s);
	if (rc < 0) {
		SERVER_LOG("cannot listen on Unix socket %s: %s", cfg->unix_socket,
			   strerror(-rc));
		return rc;
	}
	onexit_push(undo_unix_socket, s);
	if (cfg->attach_group_set)
		share_with_group(cfg);

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
	log_start(s);
	if (cfg->port != 0 && !config_listen_is_loopback(cfg->listen))
		SERVER_LOG("WARNING: listening on %s, which is not a loopback address: "
			   "anyone who can reach this machine on port %d can read and "
			   "overwrite the cache (there is no authentication); use "
			   "-l 127.0.0.1 unless that is intended", cfg->listen, cfg->port);
	return 0;
}

int supervisor_run(const struct server_config *cfg)
{
	struct supervisor *s = &sup;
	struct pollfd pfd;
	int64_t next_tick, wait, restart_wait;
	int rc;

	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	s->unix_fd = -1;
	rc = supervisor_start_up(s);
	if (rc < 0) {
		onexit_run_all();
		return 1;
	}
	/* Every worker starts "due now". */
	restart_due(s);
	next_tick = now_ms() + SUPERVISOR_TICK_MS;
	while (!got_stop) {
		wait = next_tick - now_ms();
		restart_wait = restart_due(s);
		if (restart_wait >= 0 && restart_wait < wait)
			wait = restart_wait;
		if (wait > RECOVERY_POLL_MS)
			wait = RECOVERY_POLL_MS;
		if (wait < 0)
			wait = 0;
		pfd.fd = sig_pipe[0];
		pfd.events = POLLIN;
		pfd.revents = 0;
		(void)poll(&pfd, 1, (int)wait);
		drain_sig_pipe();
		if (got_child) {
			got_child = 0;
			reap_workers(s, false);
		}
		recovery_poll(&s->recovery);
		if (now_ms() >= next_tick) {
			/* The coarse clock every process judges expiry by. */
			table_tick(&s->cache.table, (uint32_t)time(NULL));
			next_tick += SUPERVISOR_TICK_MS;
			if (next_tick < now_ms())
				next_tick = now_ms() + SUPERVISOR_TICK_MS;
		}
	}
	SERVER_LOG("stopping: %u worker(s) running, %" PRIu64 " restart(s)",
		   live_workers(s), s->restarts);
	stop_workers(s);
	onexit_run_all();
	SERVER_LOG("stopped");
	return 0;
}
