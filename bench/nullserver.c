/*
 * nullserver.c - a do-nothing memcached: the kernel's share of a request
 *
 * A benchmark tool, not a server: it answers memcached's text protocol as
 * cheaply as a server can while still reading and writing every request,
 * so that its throughput and CPU per request are the limit a real server
 * is measured against on the same machine.  Each thread has its own
 * SO_REUSEPORT listening socket and epoll set; a readable connection gets
 * one read, every whole command in it is answered without a table
 * ("get" -> "END", "set" and its data block -> "STORED", "version" ->
 * "VERSION", anything else -> "ERROR"), and the replies go out in one
 * write.  That is the system-call pattern of shmkv-server and memcached at
 * pipeline depth 1 (one read and one write per request), minus all work.
 *
 * Usage: shmkv-nullserver -p PORT [-l ADDR] [-t THREADS]
 * It serves until SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define NULL_BUF (64 * 1024)
#define NULL_EVENTS 64
#define NULL_MAX_THREADS 64

struct null_conn {
	int fd;
	size_t in_len;
	size_t skip; /* bytes of a set's data block still to skip */
	char in[NULL_BUF];
	char out[NULL_BUF];
};

static const char *listen_addr = "127.0.0.1";
static int listen_port;

static int open_listener(void)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)listen_port);
	if (inet_pton(AF_INET, listen_addr, &sa.sin_addr) != 1 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fd, 1024) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* set_block_len - the <bytes> field of "set <key> <flags> <exp> <bytes>". */
static size_t set_block_len(const char *line, size_t len)
{
	size_t field = 0, i = 0, v = 0;

	for (; i < len && field < 4; i++)
		if (line[i] == ' ')
			field++;
	for (; i < len && line[i] >= '0' && line[i] <= '9'; i++)
		v = v * 10 + (size_t)(line[i] - '0');
	return v + 2;
}

/* answer - the replies to every whole command in c->in; their length. */
static size_t answer(struct null_conn *c)
{
	size_t pos = 0, out = 0;

	while (pos < c->in_len && out + 16 < sizeof(c->out)) {
		const char *line = c->in + pos, *nl;
		size_t len;

		if (c->skip > 0) {
			size_t n = c->in_len - pos < c->skip ? c->in_len - pos
							     : c->skip;

			pos += n;
			c->skip -= n;
			continue;
		}
		nl = memchr(line, '\n', c->in_len - pos);
		if (nl == NULL)
			break;
		len = (size_t)(nl - line);
		if (len >= 4 && memcmp(line, "get ", 4) == 0) {
			memcpy(c->out + out, "END\r\n", 5);
			out += 5;
		} else if (len >= 4 && memcmp(line, "set ", 4) == 0) {
			c->skip = set_block_len(line, len);
			memcpy(c->out + out, "STORED\r\n", 8);
			out += 8;
		} else if (len >= 7 && memcmp(line, "version", 7) == 0) {
			memcpy(c->out + out, "VERSION 0\r\n", 11);
			out += 11;
		} else {
			memcpy(c->out + out, "ERROR\r\n", 7);
			out += 7;
		}
		pos += len + 1;
	}
	memmove(c->in, c->in + pos, c->in_len - pos);
	c->in_len -= pos;
	return out;
}

static void conn_close(int ep, struct null_conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

/* serve_readable - one read, the answers, one write. */
static void serve_readable(int ep, struct null_conn *c)
{
	ssize_t n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
	size_t out;

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		conn_close(ep, c);
		return;
	}
	if (n < 0)
		return;
	c->in_len += (size_t)n;
	out = answer(c);
	/* A benchmark client reads its replies: a short write is not
	 * worth a write queue here, and it would only hide the cost. */
	if (out > 0 && write(c->fd, c->out, out) < 0 && errno != EAGAIN) {
		conn_close(ep, c);
		return;
	}
	if (c->in_len == sizeof(c->in))
		conn_close(ep, c); /* a line longer than the buffer */
}

static void accept_all(int ep, int lfd)
{
	struct epoll_event ev;
	int fd, one = 1;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
		struct null_conn *c = malloc(sizeof(*c));

		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->in_len = 0;
		c->skip = 0;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
			conn_close(ep, c);
	}
}

static void *serve(void *arg)
{
	struct epoll_event evs[NULL_EVENTS], ev;
	int lfd = (int)(intptr_t)arg, ep = epoll_create1(0);

	if (ep < 0)
		return NULL;
	ev.events = EPOLLIN;
	ev.data.ptr = NULL; /* the listener */
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, NULL_EVENTS, -1);

		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				accept_all(ep, lfd);
			else
				serve_readable(ep, evs[i].data.ptr);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t tids[NULL_MAX_THREADS];
	int threads = 1, opt, sig;
	sigset_t set;

	while ((opt = getopt(argc, argv, "p:l:t:")) != -1) {
		if (opt == 'p')
			listen_port = atoi(optarg);
		else if (opt == 'l')
			listen_addr = optarg;
		else if (opt == 't')
			threads = atoi(optarg);
		else
			goto usage;
	}
	if (listen_port <= 0 || listen_port > 65535 || threads < 1 ||
	    threads > NULL_MAX_THREADS)
		goto usage;
	/* The threads inherit the mask: only sigwait below sees the signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (int i = 0; i < threads; i++) {
		int lfd = open_listener();

		if (lfd < 0) {
			fprintf(stderr,
				"shmkv-nullserver: cannot listen on %s:%d: %s\n",
				listen_addr, listen_port, strerror(errno));
			return 1;
		}
		if (pthread_create(&tids[i], NULL, serve,
				   (void *)(intptr_t)lfd) != 0) {
			fprintf(stderr,
				"shmkv-nullserver: cannot start a thread\n");
			return 1;
		}
	}
	sigwait(&set, &sig);
	return 0;
usage:
	fprintf(stderr,
		"usage: shmkv-nullserver -p PORT [-l ADDR] [-t THREADS]\n");
	return 2;
}
