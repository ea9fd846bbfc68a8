/*
 * client_fixture.c - a real shmkv-server for the client library's tests
 *
 * The server runs in a session of its own so that one killpg reaches the
 * supervisor and every worker if it must be killed, and with
 * PR_SET_PDEATHSIG so that a crash of the test process still stops it
 * (SIGTERM: the server then removes its socket, lock file and segment
 * itself).  A server that had to be killed leaves its SysV shim behind;
 * the key is in the lock file's fourth line, and it is removed here.
 *
 * See client_fixture.h for the interface.
 */
#include "client_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define START_TIMEOUT 15.0
#define STOP_TIMEOUT 15.0

const char *fix_server_path(void)
{
	const char *p = getenv("SHMKV_SERVER");

	return p != NULL && *p != '\0' ? p : NULL;
}

bool fix_have_server(void)
{
	if (fix_server_path() != NULL)
		return true;
	fprintf(stderr, "SHMKV_SERVER is not set to the shmkv-server binary\n");
	return false;
}

double fix_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void fix_sleep(double seconds)
{
	struct timespec ts = {
		.tv_sec = (time_t)seconds,
		.tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9),
	};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A port nobody listens on now (the kernel's pick). */
static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

int fix_tcp_quiet(const struct server *s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)s->port);
	if (fd < 0)
		return -1;
	/* A reply that never comes fails the test instead of hanging it. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int fix_tcp(const struct server *s)
{
	int fd = fix_tcp_quiet(s);

	if (fd < 0)
		fail_msg("cannot connect to 127.0.0.1:%d: %s", s->port,
			 strerror(errno));
	return fd;
}

static bool unix_answers(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void print_log(const struct server *s)
{
	char buf[4096];
	int fd = open(s->log, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return;
	fprintf(stderr, "--- %s ---\n", s->log);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stderr);
	close(fd);
}

void fix_server_start(struct server *s, const char *dir, const char *const *extra)
{
	const char *argv[26] = {
		"shmkv-server", "-p",		NULL, "--run-dir",
		NULL,		"-t",		"2",  "-m",
		"64",		"--huge-pages", "off"
	};
	int argc = 11;
	char port[16];

	if (dir == NULL) {
		memset(s, 0, sizeof(*s));
		snprintf(s->dir, sizeof(s->dir), "/tmp/shmkv-client-XXXXXX");
		if (mkdtemp(s->dir) == NULL)
			fail_msg("mkdtemp: %s", strerror(errno));
		/* Others may pass through (not list) to reach a run directory
		 * the server opens to a group. */
		chmod(s->dir, 0711);
	} else if (dir != s->dir) {
		snprintf(s->dir, sizeof(s->dir), "%s", dir);
	}
	snprintf(s->run, sizeof(s->run), "%s/run", s->dir);
	snprintf(s->sock, sizeof(s->sock), "%s/shmkv.sock", s->run);
	snprintf(s->log, sizeof(s->log), "%s/server.log", s->dir);
	s->port = free_port();
	snprintf(port, sizeof(port), "%d", s->port);
	argv[2] = port;
	argv[4] = s->run;
	/* As memcached, the server runs as root only when told so. */
	if (geteuid() == 0) {
		argv[argc++] = "-u";
		argv[argc++] = "root";
	}
	/* Later flags win: extra may override the defaults. */
	for (int i = 0; extra != NULL && extra[i] != NULL && argc < 25; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;

	pid_t parent = getpid();
	s->pid = fork();
	if (s->pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (s->pid == 0) {
		int log = open(s->log,
			       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		setsid();
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		if (log >= 0) {
			dup2(log, STDOUT_FILENO);
			dup2(log, STDERR_FILENO);
		}
		execv(fix_server_path(), (char *const *)argv);
		_exit(127);
	}

	double deadline = fix_now() + START_TIMEOUT;
	while (fix_now() < deadline) {
		int status, fd;

		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			s->pid = 0;
			print_log(s);
			fail_msg("shmkv-server exited during start-up (status "
				 "0x%x)",
				 status);
		}
		if (unix_answers(s->sock) && (fd = fix_tcp_quiet(s)) >= 0) {
			close(fd);
			return;
		}
		fix_sleep(0.02);
	}
	print_log(s);
	fix_server_stop(s);
	fail_msg("shmkv-server did not answer within %.0f s", START_TIMEOUT);
}

/* Remove the SysV shim a killed server left (key: the lock file's 4th line). */
static void remove_shim(const struct server *s)
{
	char path[224], buf[512], *line = buf;
	FILE *f;

	snprintf(path, sizeof(path), "%s/shmkv.pid", s->run);
	f = fopen(path, "re");
	if (f == NULL)
		return;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (int i = 0; i < 3 && line != NULL; i++) {
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	if (line == NULL)
		return;
	key_t key = (key_t)strtol(line, NULL, 0);
	int id = key != 0 ? shmget(key, 0, 0) : -1;
	if (id >= 0)
		shmctl(id, IPC_RMID, NULL);
	unlink(path);
}

int fix_server_stop(struct server *s)
{
	double deadline = fix_now() + STOP_TIMEOUT;
	int status = 0;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, SIGTERM);
	while (fix_now() < deadline) {
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			s->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		}
		fix_sleep(0.01);
	}
	fprintf(stderr,
		"shmkv-server %d ignored SIGTERM for %.0f s; killing it\n",
		(int)s->pid, STOP_TIMEOUT);
	killpg(s->pid, SIGKILL);
	waitpid(s->pid, &status, 0);
	s->pid = 0;
	remove_shim(s);
	return -1;
}

void fix_server_kill(struct server *s)
{
	int status;

	if (s->pid <= 0)
		return;
	killpg(s->pid, SIGKILL);
	waitpid(s->pid, &status, 0);
	s->pid = 0;
}

static int remove_one(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

void fix_server_cleanup(struct server *s)
{
	if (s->dir[0] != '\0')
		nftw(s->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	s->dir[0] = '\0';
}

int fix_tcp_send_quiet(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t k = send(fd, c, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

int fix_tcp_line_quiet(int fd, char *out, size_t cap)
{
	size_t len = 0;

	while (len + 1 < cap) {
		ssize_t k = recv(fd, out + len, 1, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		len++;
		if (len >= 2 && out[len - 2] == '\r' && out[len - 1] == '\n') {
			out[len - 2] = '\0';
			return 0;
		}
	}
	return -1;
}

int fix_tcp_store_quiet(int fd, const char *head, const void *data, size_t n,
			const char *want)
{
	char line[256];

	if (fix_tcp_send_quiet(fd, head, strlen(head)) < 0 ||
	    fix_tcp_send_quiet(fd, "\r\n", 2) < 0 ||
	    fix_tcp_send_quiet(fd, data, n) < 0 ||
	    fix_tcp_send_quiet(fd, "\r\n", 2) < 0 ||
	    fix_tcp_line_quiet(fd, line, sizeof(line)) < 0)
		return -1;
	return strcmp(line, want) == 0 ? 0 : -1;
}

void fix_tcp_store_n(int fd, const char *head, const void *data, size_t n,
		     const char *want)
{
	if (fix_tcp_store_quiet(fd, head, data, n, want) < 0)
		fail_msg("'%s' over TCP did not answer %s", head, want);
}

void fix_tcp_store(int fd, const char *head, const char *data, const char *want)
{
	fix_tcp_store_n(fd, head, data, strlen(data), want);
}

long long fix_tcp_stat(int fd, const char *name)
{
	char line[512];
	long long v = -1;
	size_t n = strlen(name);

	if (fix_tcp_send_quiet(fd, "stats\r\n", 7) < 0)
		fail_msg("stats: cannot send");
	for (;;) {
		if (fix_tcp_line_quiet(fd, line, sizeof(line)) < 0)
			fail_msg("stats: no END");
		if (strcmp(line, "END") == 0)
			return v;
		if (strncmp(line, "STAT ", 5) == 0 &&
		    strncmp(line + 5, name, n) == 0 && line[5 + n] == ' ')
			v = strtoll(line + 6 + n, NULL, 10);
	}
}

enum shmkv_status fix_get_str(shmkv *kv, const char *key, char *buf, size_t cap,
			      uint32_t *flags)
{
	size_t len = 0;
	enum shmkv_status st = shmkv_get(kv, key, strlen(key), buf, cap - 1,
					 &len, flags);

	buf[st == SHMKV_OK ? len : 0] = '\0';
	return st;
}

shmkv *fix_open(const struct server *s)
{
	shmkv *kv = NULL;
	enum shmkv_status st = shmkv_open(s->sock, &kv);

	if (st != SHMKV_OK)
		fail_msg("shmkv_open(%s): %s: %s", s->sock, shmkv_strerror(st),
			 shmkv_last_error());
	return kv;
}

int fix_setup(void **state)
{
	struct server *s = calloc(2, sizeof(*s));

	if (s == NULL)
		return -1;
	fix_server_start(s, NULL, NULL);
	*state = s;
	return 0;
}

int fix_teardown(void **state)
{
	struct server *s = *state;

	for (int i = 0; i < 2; i++) {
		fix_server_stop(&s[i]);
		fix_server_cleanup(&s[i]);
	}
	free(s);
	return 0;
}
