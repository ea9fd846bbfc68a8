/*
 * upgrade.c - live upgrade: a new binary takes over a running server
 *
 * As nginx's binary upgrade (ngx_exec_new_binary): on SIGUSR2 the old
 * supervisor forks and execs its program path again with its command line,
 * and names the descriptors the new process inherits in an environment
 * variable, as nginx does with NGINX.  What is handed over is what cannot
 * be recreated without a loss: the listening sockets (one per worker slot
 * and the Unix one: the same socket objects, so a connection arriving at
 * any moment is queued on a socket somebody holds, never refused) and the
 * segment's two descriptors (memfds or the memory file; the memory file's
 * flock belongs to the open file, so the new process holds it from its
 * first instruction).  NOTE: inheriting across exec rather than SCM_RIGHTS
 * over a socket: the new process is a plain start with its flags parsed
 * as usual, and nothing has to listen for a second server.
 *
 * The exchange, on a socketpair named in the variable:
 *   new: checks the layout version and its settings against the segment
 *        (memory_file_adopt_running) and refuses with the reason (F...),
 *        after which the old server just goes on;
 *   new: adopts the interlock (interlock_adopt: renames a lock file
 *        naming itself over the old one and attaches the shim): the lock
 *        file names a live supervisor and the shim has processes attached
 *        at every moment, so no third server can start in between - then
 *        says A;
 *   old: stops recovering dead client programs and ticking the clock (one
 *        recoverer at a time, recovery.c) and answers K;
 *   new: forks its workers on the inherited sockets, says R once every one
 *        of them serves;
 *   old: tells its workers to retire (SIGUSR2: stop accepting, serve what
 *        was accepted a little longer, close), waits for them, and exits
 *        without undoing anything: the segment stays RUNNING for attached
 *        client programs, the socket file and lock file stay.
 * If the new supervisor dies after A and before R, the old one renames a
 * lock file naming itself back (interlock_reclaim) and goes on as before.
 *
 * Interface routines: see upgrade.h.
 */
#include "upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define UPGRADE_ACK_WAIT_MS 5000
#define UPGRADE_REQUEST_WAIT_MS 60000

static char **saved_argv;
static char exe_path[PATH_MAX];

void upgrade_save_argv(int argc, char **argv)
{
	char cwd[PATH_MAX];
	ssize_t n;

	/* getopt permutes argv; the new binary gets it as the user wrote it. */
	saved_argv = calloc((size_t)argc + 1, sizeof(*saved_argv));
	for (int i = 0; saved_argv != NULL && i < argc; i++)
		saved_argv[i] = strdup(argv[i]);
	/* The path the program was started by, as nginx execs argv[0]: a new
	 * binary installed there is what runs.  /proc/self/exe would name the
	 * old, deleted file. */
	if (argc > 0 && argv[0][0] == '/')
		snprintf(exe_path, sizeof(exe_path), "%s", argv[0]);
	else if (argc > 0 && strchr(argv[0], '/') != NULL &&
		 getcwd(cwd, sizeof(cwd)) != NULL)
		snprintf(exe_path, sizeof(exe_path), "%.2048s/%.2000s", cwd,
			 argv[0]);
	else if ((n = readlink("/proc/self/exe", exe_path,
			       sizeof(exe_path) - 1)) > 0)
		exe_path[n] = '\0';
}

/* clear_cloexec - keep fd open across exec (the new binary's copy). */
static void clear_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl >= 0)
		(void)fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
}

int upgrade_start_new(struct upgrade_old *u, const struct upgrade_handover *h)
{
	char env[64 + 12 * UPGRADE_MAX_TCP];
	sigset_t all, old;
	size_t n;
	pid_t pid;
	int sv[2];

	if (saved_argv == NULL || exe_path[0] == '\0')
		return -ENOEXEC;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	n = (size_t)snprintf(env, sizeof(env), "%d %d %d %d %d 0x%x %d %u",
			     (int)getpid(), sv[1], h->data_fd, h->ctl_fd,
			     h->unix_fd, (unsigned)h->shim_key,
			     h->run_dir_created, h->ntcp);
	for (unsigned i = 0; i < h->ntcp && n < sizeof(env); i++)
		n += (size_t)snprintf(env + n, sizeof(env) - n, " %d",
				      h->tcp_fds[i]);
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int fds[] = { sv[1], h->data_fd, h->ctl_fd, h->unix_fd };

		for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
			if (fds[i] >= 0)
				clear_cloexec(fds[i]);
		for (unsigned i = 0; i < h->ntcp; i++)
			clear_cloexec(h->tcp_fds[i]);
		setenv(UPGRADE_ENV, env, 1);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		execv(exe_path, saved_argv);
		SERVER_LOG("upgrade: cannot run %s: %s", exe_path,
			   strerror(errno));
		_exit(127);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(sv[1]);
	if (pid < 0) {
		int rc = -errno;

		close(sv[0]);
		return rc;
	}
	(void)fcntl(sv[0], F_SETFL, O_NONBLOCK);
	u->child = pid;
	u->chan = sv[0];
	u->adopted = false;
	SERVER_LOG("upgrade: started %s (pid %d) with the listening sockets and "
		   "the segment",
		   exe_path, (int)pid);
	return 0;
}

enum upgrade_event upgrade_old_read(struct upgrade_old *u, char *why, size_t len)
{
	char buf[1024];
	ssize_t n = read(u->chan, buf, sizeof(buf) - 1);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return UPGRADE_EV_NONE;
	if (n > 0 && buf[0] == UPGRADE_ADOPTED) {
		u->adopted = true;
		return UPGRADE_EV_ADOPTED;
	}
	if (n > 0 && buf[0] == UPGRADE_READY)
		return UPGRADE_EV_READY;
	if (n > 0 && buf[0] == UPGRADE_REFUSED) {
		buf[n] = '\0';
		snprintf(why, len, "%s", buf + 1);
	} else {
		snprintf(why, len,
			 "the new server (pid %d) exited before its "
			 "workers were serving; see its lines in the log",
			 (int)u->child);
	}
	close(u->chan);
	u->chan = -1;
	if (!u->adopted)
		return UPGRADE_EV_FAILED;
	u->adopted = false; /* what it took over is ours again */
	return UPGRADE_EV_LOST;
}

/* parse_fd - the next number of *p as an open descriptor, or -1. */
static int parse_fd(char **p, bool sock)
{
	struct stat st;
	char *end;
	long v = strtol(*p, &end, 0);

	if (end == *p || v < 0 || v > INT_MAX || fstat((int)v, &st) < 0 ||
	    (sock ? !S_ISSOCK(st.st_mode) : !S_ISREG(st.st_mode)))
		return -1;
	*p = end;
	return (int)v;
}

int upgrade_inherited(struct upgrade_handover *h, char *err, size_t len)
{
	const char *env = getenv(UPGRADE_ENV);
	char copy[64 + 12 * CONFIG_MAX_WORKERS], *p = copy, *end;
	long v;
	bool ok;

	if (env == NULL)
		return 0;
	snprintf(copy, sizeof(copy), "%s", env);
	unsetenv(UPGRADE_ENV); /* our own workers are no upgrade */
	memset(h, 0, sizeof(*h));
	v = strtol(p, &end, 10);
	h->old_pid = (pid_t)v;
	ok = end != p && v > 0 && v <= INT_MAX;
	p = end;
	ok = ok && (h->chan = parse_fd(&p, true)) >= 0;
	ok = ok && (h->data_fd = parse_fd(&p, false)) >= 0;
	ok = ok && (h->ctl_fd = parse_fd(&p, false)) >= 0;
	ok = ok && (h->unix_fd = parse_fd(&p, true)) >= 0;
	if (ok) {
		h->shim_key = (key_t)strtoul(p, &end, 0);
		ok = end != p;
		p = end;
	}
	if (ok) {
		h->run_dir_created = strtol(p, &end, 10) == 1;
		ok = end != p;
		p = end;
	}
	if (ok) {
		v = strtol(p, &end, 10);
		ok = end != p && v >= 0 && v <= (long)UPGRADE_MAX_TCP;
		h->ntcp = ok ? (unsigned)v : 0;
		p = end;
	}
	for (unsigned i = 0; ok && i < h->ntcp; i++)
		ok = (h->tcp_fds[i] = parse_fd(&p, true)) >= 0;
	if (!ok) {
		snprintf(err, len,
			 "%s is set but does not name the descriptors of "
			 "an upgrade; unset it to start a server",
			 UPGRADE_ENV);
		return -EINVAL;
	}
	return 1;
}

void upgrade_tell(int chan, char what, const char *why)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "%c%s", what, why != NULL ? why : "");

	if (chan >= 0 && n > 0)
		(void)!write(chan, buf,
			     (size_t)n < sizeof(buf) ? (size_t)n
						     : sizeof(buf) - 1);
}

void upgrade_wait_ack(int chan)
{
	struct pollfd p = { .fd = chan, .events = POLLIN };
	char c;

	/* EOF (the old supervisor died) or a timeout: nobody else recovers. */
	if (poll(&p, 1, UPGRADE_ACK_WAIT_MS) > 0)
		(void)!read(chan, &c, 1);
}

/* pid_gone - pid has exited (a zombie its parent has not reaped counts). */
static bool pid_gone(pid_t pid)
{
	char path[64], buf[256], *paren;
	ssize_t n;
	int fd;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	paren = strrchr(buf, ')');
	return paren != NULL && paren[1] == ' ' && paren[2] == 'Z';
}

/* read_failed - the refusal the old supervisor wrote, if any, into buf. */
static bool read_failed(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, len - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return n > 0;
}

int upgrade_request(const struct server_config *cfg)
{
	char lock[CONFIG_PATH_MAX + 16], failed[CONFIG_PATH_MAX + 32], why[1024];
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	int64_t deadline = monotonic_ms() + UPGRADE_REQUEST_WAIT_MS;
	pid_t old, now;

	snprintf(lock, sizeof(lock), "%s/%s", cfg->run_dir, INTERLOCK_LOCK_FILE);
	snprintf(failed, sizeof(failed), "%s/%s", cfg->run_dir,
		 UPGRADE_FAILED_FILE);
	old = interlock_holder_pid(cfg->run_dir);
	if (old == 0 || kill(old, 0) < 0) {
		fprintf(stderr,
			SERVER_NAME ": --upgrade: no server is running with "
				    "run directory %s (%s names none alive)\n",
			cfg->run_dir, lock);
		return 1;
	}
	(void)unlink(failed);
	if (kill(old, SIGUSR2) < 0) {
		fprintf(stderr,
			SERVER_NAME ": --upgrade: cannot signal pid %d: %s\n",
			(int)old, strerror(errno));
		return 1;
	}
	while (monotonic_ms() < deadline) {
		now = interlock_holder_pid(cfg->run_dir);
		if (now != 0 && now != old && !pid_gone(now) && pid_gone(old)) {
			printf(SERVER_NAME ": upgraded: pid %d serves (was %d)\n",
			       (int)now, (int)old);
			return 0;
		}
		if (read_failed(failed, why, sizeof(why))) {
			fprintf(stderr,
				SERVER_NAME ": --upgrade refused, pid %d goes "
					    "on serving: %s\n",
				(int)old, why);
			return 1;
		}
		if (now == old && pid_gone(old)) {
			fprintf(stderr,
				SERVER_NAME ": --upgrade: pid %d stopped\n",
				(int)old);
			return 1;
		}
		nanosleep(&pause, NULL);
	}
	fprintf(stderr,
		SERVER_NAME ": --upgrade: no outcome after %d s; see the "
			    "server's log\n",
		UPGRADE_REQUEST_WAIT_MS / 1000);
	return 1;
}
