/*
 * supervisor_listen.c - the supervisor's listening sockets
 *
 * Opened by a new server before any worker starts, and kept for the
 * server's life (listener.c says why): one TCP socket per worker slot and
 * the Unix socket.  A server started by a live upgrade opens none: it
 * inherits the running server's, which must be the ones its own flags name
 * (sup_inherit_listeners), so that not one connection attempt is refused
 * while the servers change.
 *
 * Interface routines: sup_open_tcp_sockets, sup_open_unix_socket,
 * sup_inherit_listeners, sup_share_with_group, sup_undo_tcp_sockets,
 * sup_undo_unix_socket (see supervisor_internal.h).
 */
#include "supervisor_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "onexit.h"

/*
 * With --attach-group, the group's members must reach the socket: search
 * permission on the run directory and write permission on the socket.
 * Neither becomes writable for anyone else, and the lock file stays ours.
 */
void sup_share_with_group(const struct server_config *cfg)
{
	if (chown(cfg->run_dir, (uid_t)-1, cfg->attach_gid) < 0 ||
	    chmod(cfg->run_dir, 0710) < 0 ||
	    chown(cfg->unix_socket, (uid_t)-1, cfg->attach_gid) < 0 ||
	    chmod(cfg->unix_socket, 0770) < 0)
		SERVER_LOG("cannot open %s to group %s: %s; its members will not "
			   "reach the socket",
			   cfg->run_dir, cfg->attach_group, strerror(errno));
}

void sup_undo_unix_socket(void *arg)
{
	struct supervisor *s = arg;

	listener_close_unix(&s->unix_sock);
}

void sup_undo_tcp_sockets(void *arg)
{
	struct supervisor *s = arg;
	uint32_t i;

	for (i = 0; i < s->ntcp; i++)
		if (s->tcp_fds[i] >= 0)
			close(s->tcp_fds[i]);
	free(s->tcp_fds);
	s->tcp_fds = NULL;
	s->ntcp = 0;
}

/*
 * sup_open_unix_socket - bind and listen on the Unix socket (listener.c refuses
 * a path that is not a stale socket), and open the run directory as far as
 * --socket-mode asks.
 */
int sup_open_unix_socket(struct supervisor *s)
{
	char err[512];
	int rc;

	rc = listener_open_unix(&s->unix_sock, s->cfg->unix_socket,
				s->cfg->socket_mode, SUPERVISOR_BACKLOG, err,
				sizeof(err));
	if (rc < 0) {
		SERVER_LOG("%s", err);
		return rc;
	}
	/* --socket-mode opening the socket to others: they also need to
	 * reach it through the run directory (created 0700). */
	if (config_run_dir_mode(s->cfg->socket_mode) != 0700 &&
	    chmod(s->cfg->run_dir, config_run_dir_mode(s->cfg->socket_mode)) < 0)
		SERVER_LOG("cannot set mode %04o on %s: %s; --socket-mode %04o "
			   "will not let others reach the socket",
			   config_run_dir_mode(s->cfg->socket_mode),
			   s->cfg->run_dir, strerror(errno), s->cfg->socket_mode);
	return 0;
}

/*
 * sup_open_tcp_sockets - every worker slot's listening socket on each -l
 * address, bound now so that a taken port stops the start here, not in
 * every worker.
 */
int sup_open_tcp_sockets(struct supervisor *s)
{
	char err[512], addr[256];
	uint32_t i, per = config_listen_count(s->cfg->listen);
	int fd;

	s->tcp_per_slot = per;
	if (s->cfg->port == 0)
		return 0;
	s->tcp_fds = malloc(s->cfg->workers * per * sizeof(*s->tcp_fds));
	if (s->tcp_fds == NULL) {
		SERVER_LOG("out of memory");
		return -ENOMEM;
	}
	s->ntcp = s->cfg->workers * per;
	for (i = 0; i < s->ntcp; i++)
		s->tcp_fds[i] = -1;
	onexit_push(sup_undo_tcp_sockets, s);
	for (i = 0; i < s->ntcp; i++) {
		if (config_listen_addr(s->cfg->listen, i % per, addr,
				       sizeof(addr)) < 0)
			return -EINVAL;
		fd = listener_open_tcp(addr, s->cfg->port, SUPERVISOR_BACKLOG,
				       err, sizeof(err));
		if (fd < 0) {
			SERVER_LOG("%s", err);
			return fd;
		}
		s->tcp_fds[i] = fd;
	}
	return 0;
}

/* tcp_port - the port a listening TCP socket is bound to, or -1. */
static int tcp_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

/* listeners_differ - why the handed sockets are not this start's, or NULL. */
static const char *listeners_differ(const struct supervisor *s, char *why,
				    size_t len)
{
	const struct server_config *cfg = s->cfg;
	const struct upgrade_handover *h = &s->up.inh;
	struct sockaddr_un su;
	socklen_t sl = sizeof(su);

	uint32_t want = cfg->port != 0
				? cfg->workers * config_listen_count(cfg->listen)
				: 0;

	memset(&su, 0, sizeof(su));
	if (h->ntcp != want)
		snprintf(why, len,
			 "the running server listens on %u TCP socket(s), one "
			 "per worker and -l address, and this start asks for %u (-t and -p cannot "
			 "change in an upgrade, nor -l's addresses)",
			 h->ntcp, want);
	else if (h->ntcp > 0 && tcp_port(h->tcp_fds[0]) != cfg->port)
		snprintf(why, len,
			 "the running server listens on port %d, this start "
			 "on %d",
			 tcp_port(h->tcp_fds[0]), cfg->port);
	else if (getsockname(h->unix_fd, (struct sockaddr *)&su, &sl) < 0 ||
		 su.sun_family != AF_UNIX ||
		 strncmp(su.sun_path, cfg->unix_socket, sizeof(su.sun_path)) != 0)
		snprintf(why, len,
			 "the running server's Unix socket is %.108s, this "
			 "start's %s",
			 su.sun_path, cfg->unix_socket);
	else
		return NULL;
	return why;
}

int sup_inherit_listeners(struct supervisor *s)
{
	const struct upgrade_handover *h = &s->up.inh;
	char why[512];

	if (listeners_differ(s, why, sizeof(why)) != NULL) {
		SERVER_LOG("cannot take over the running server: %s", why);
		upgrade_tell(h->chan, UPGRADE_REFUSED, why);
		return -EINVAL;
	}
	if (h->ntcp > 0) {
		s->tcp_fds = malloc(h->ntcp * sizeof(*s->tcp_fds));
		if (s->tcp_fds == NULL) {
			upgrade_tell(h->chan, UPGRADE_REFUSED, "out of memory");
			return -ENOMEM;
		}
		memcpy(s->tcp_fds, h->tcp_fds, h->ntcp * sizeof(*s->tcp_fds));
		s->ntcp = h->ntcp;
		onexit_push(sup_undo_tcp_sockets, s);
	}
	s->tcp_per_slot = config_listen_count(s->cfg->listen);
	/* Ours to unlink at our stop once we own it (open_rest pushes that). */
	listener_adopt_unix(&s->unix_sock, h->unix_fd, s->cfg->unix_socket);
	return 0;
}
