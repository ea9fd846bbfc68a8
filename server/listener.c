/*
 * listener.c - the listening sockets, created by the supervisor before fork
 *
 * NOTE: the supervisor, not each worker, binds the TCP sockets, one per
 * worker slot with SO_REUSEPORT.  A socket bound by a worker died with it,
 * and the kernel reset every connection queued on it; a socket the
 * supervisor holds outlives any worker, so a connection that arrives while
 * its slot's worker is being restarted waits in the backlog and is
 * accepted by the next one.  One socket shared by all workers would
 * survive too, but then every worker's epoll wakes for each connection and
 * all but one find nothing to accept; with one socket per slot the kernel
 * hashes each connection to one socket.
 *
 * The Unix socket's path is checked before bind as a user would want: a
 * regular file given to -s by mistake is not deleted, and a socket that a
 * running server answers on is not taken from it.  connect() tells a live
 * socket (it succeeds, or the backlog is full) from a stale one
 * (ECONNREFUSED: nobody listens); only the stale one is removed.
 *
 * Interface routines:
 *   listener_resolve_tcp, listener_open_tcp, listener_open_unix,
 *   listener_close_unix (see listener.h)
 */
#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int listener_resolve_tcp(const char *listen_addr, int port,
			 struct addrinfo **res, char *err, size_t errlen)
{
	struct addrinfo hints;
	char service[16];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%d", port);
	*res = NULL;
	rc = getaddrinfo(listen_addr, service, &hints, res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve --listen '%s': %s",
			 listen_addr, gai_strerror(rc));
		return -EINVAL;
	}
	return 0;
}

int listener_open_tcp(const char *listen_addr, int port, int backlog, char *err,
		      size_t errlen)
{
	struct addrinfo *res, *ai;
	int fd = -1, rc, one = 1, saved = 0;

	rc = listener_resolve_tcp(listen_addr, port, &res, err, errlen);
	if (rc < 0)
		return rc;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
			       sizeof(one)) == 0 &&
		    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
			       sizeof(one)) == 0 &&
		    bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, backlog) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen, "cannot bind %s:%d: %s%s", listen_addr,
			 port, strerror(saved),
			 saved == EADDRINUSE ? " (another program has the port; "
					       "stop it or choose another --port)"
					     : "");
		return -(saved ? saved : EADDRNOTAVAIL);
	}
	return fd;
}

/*
 * unix_path_answers - does a server accept connections on the socket at
 * sa?  1 yes, 0 no (stale), or -errno when we cannot tell.
 */
static int unix_path_answers(const struct sockaddr_un *sa)
{
	int fd, rc;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS)
		rc = 1; /* accepted, or a live listener with a full backlog */
	else if (errno == ECONNREFUSED)
		rc = 0;
	else
		rc = -errno;
	close(fd);
	return rc;
}

/* take_unix_path - make path free to bind, removing only a stale socket. */
static int take_unix_path(const struct sockaddr_un *sa, char *err, size_t errlen)
{
	const char *path = sa->sun_path;
	struct stat st;
	int live;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot look at %s: %s", path,
			 strerror(errno));
		return -errno;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen,
			 "%s exists and is not a socket; not touching it: "
			 "remove it or give -s another path",
			 path);
		return -EEXIST;
	}
	live = unix_path_answers(sa);
	if (live == 1) {
		snprintf(err, errlen,
			 "a server is answering on %s; stop it first or "
			 "give -s another path",
			 path);
		return -EADDRINUSE;
	}
	if (live < 0) {
		snprintf(err, errlen,
			 "cannot tell whether a server answers on %s (%s); "
			 "not touching it",
			 path, strerror(-live));
		return live;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove the stale socket %s: %s",
			 path, strerror(errno));
		return -errno;
	}
	return 0;
}

int listener_open_unix(struct listener_unix *l, const char *path, unsigned mode,
		       int backlog, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, rc;

	l->fd = -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path %s is longer than %zu bytes",
			 path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	rc = take_unix_path(&sa, err, errlen);
	if (rc < 0)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto failed;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto failed;
	/* From here the file is ours, and removed if we go no further. */
	if (stat(sa.sun_path, &st) < 0 || chmod(sa.sun_path, mode) < 0 ||
	    listen(fd, backlog) < 0) {
		rc = -errno;
		unlink(sa.sun_path);
		close(fd);
		snprintf(err, errlen, "cannot listen on Unix socket %s: %s",
			 path, strerror(-rc));
		return rc;
	}
	l->fd = fd;
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	snprintf(l->path, sizeof(l->path), "%s", path);
	return 0;

failed:
	rc = -errno;
	if (fd >= 0)
		close(fd);
	snprintf(err, errlen, "cannot listen on Unix socket %s: %s", path,
		 strerror(-rc));
	return rc;
}

void listener_close_unix(struct listener_unix *l)
{
	struct stat st;

	if (l->fd < 0)
		return;
	close(l->fd);
	l->fd = -1;
	if (lstat(l->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == l->dev && st.st_ino == l->ino)
		unlink(l->path);
}
