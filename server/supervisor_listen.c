/*
 * supervisor_listen.c - the supervisor's listening sockets
 *
 * Opened by a new server before any worker starts, and kept for the
 * server's life (listener.c says why): one TCP socket per worker slot and
 * -l address, slot-major (slot i's are tcp_fds[i * per ...], one per -l
 * address in -l's order), and the Unix socket.  A server started by a live
 * upgrade opens none: it inherits the running server's, so that not one
 * connection attempt is refused while the servers change.  They must be
 * the ones its own flags name (sup_inherit_listeners): every TCP socket
 * bound to the address and port this start would bind in its place, or the
 * successor would serve the old addresses while its settings and logs name
 * the new ones.
 *
 * Interface routines: sup_open_tcp_sockets, sup_open_unix_socket,
 * sup_inherit_listeners, sup_share_with_group, sup_undo_tcp_sockets,
 * sup_undo_unix_socket (see supervisor_internal.h).
 */
#include "supervisor_internal.h"

#include <errno.h>
#include <netdb.h>
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

/* tcp_count_differs - why the number of handed TCP sockets is not this
 * start's (one per worker and -l address, none with -p 0), or NULL. */
static const char *tcp_count_differs(const struct supervisor *s, char *why,
				     size_t len)
{
	const struct server_config *cfg = s->cfg;
	uint32_t want = cfg->port != 0
				? cfg->workers * config_listen_count(cfg->listen)
				: 0;

	if (s->up.inh.ntcp == want)
		return NULL;
	snprintf(why, len,
		 "the running server listens on %u TCP socket(s), one per worker "
		 "and -l address, and this start asks for %u (-t and -p cannot "
		 "change in an upgrade, nor -l's addresses)",
		 s->up.inh.ntcp, want);
	return why;
}

/* resolve_listen - want[j] for -l's address j, as sup_open_tcp_sockets
 * would bind it; NULL, or why not (want[] to free either way). */
static const char *resolve_listen(const struct server_config *cfg,
				  struct addrinfo **want, char *why, size_t len)
{
	char addr[256];
	uint32_t j, per = config_listen_count(cfg->listen);

	for (j = 0; j < per; j++) {
		if (config_listen_addr(cfg->listen, j, addr, sizeof(addr)) < 0) {
			snprintf(why, len, "cannot read -l '%s'", cfg->listen);
			return why;
		}
		if (listener_resolve_tcp(addr, cfg->port, &want[j], why, len) < 0)
			return why;
	}
	return NULL;
}

/*
 * order_slot_sockets - put one worker slot's per handed sockets in this
 * start's order, fds[j] bound to want[j], as sup_open_tcp_sockets opens
 * them; per, or the first j that no socket left is bound to.
 */
static uint32_t order_slot_sockets(int *fds, uint32_t per,
				   struct addrinfo *const *want)
{
	uint32_t j, m;
	int fd;

	for (j = 0; j < per; j++) {
		for (m = j; m < per && !listener_tcp_bound_in(fds[m], want[j]);
		     m++)
			;
		if (m == per)
			return j;
		fd = fds[j];
		fds[j] = fds[m];
		fds[m] = fd;
	}
	return per;
}

/*
 * unasked_socket - the first of fds[from..per) bound to none of
 * want[from..per): the socket a refusal names.  from itself when each is
 * some address's, which only an address -l repeats allows.
 */
static uint32_t unasked_socket(const int *fds, uint32_t from, uint32_t per,
			       struct addrinfo *const *want)
{
	uint32_t j, m;

	for (m = from; m < per; m++) {
		for (j = from;
		     j < per && !listener_tcp_bound_in(fds[m], want[j]); j++)
			;
		if (j == per)
			return m;
	}
	return from;
}

/* refuse_socket - why handed socket i (fd) is not this start's, which asks
 * for -l's address `asked` in its place. */
static const char *refuse_socket(const struct supervisor *s, uint32_t i, int fd,
				 uint32_t asked, char *why, size_t len)
{
	const struct server_config *cfg = s->cfg;
	char bound[80], addr[256] = "";
	bool v6;

	(void)config_listen_addr(cfg->listen, asked, addr, sizeof(addr));
	v6 = strchr(addr, ':') != NULL;
	listener_tcp_name(fd, bound, sizeof(bound));
	snprintf(why, len,
		 "the running server's TCP socket %u of %u is bound to %s, "
		 "which this start does not ask for: it asks for %s%s%s:%d "
		 "(-t, -p and -l's addresses cannot change in an upgrade, only "
		 "the order of -l's addresses)",
		 i + 1, s->up.inh.ntcp, bound, v6 ? "[" : "", addr,
		 v6 ? "]" : "", cfg->port);
	return why;
}

/*
 * tcp_sockets_differ - why a handed TCP socket is not bound where this
 * start would bind it (family, address and port), or NULL; puts them in
 * this start's order on the way.
 *
 * NOTE: -l's addresses in another order are accepted, as nginx matches the
 * sockets it inherits to its listen directives by address and not by
 * place: they are the same sockets, and refusing would leave an operator
 * who only reordered -l a restart, which refuses connections.  Each slot's
 * sockets are put in the new order, so that tcp_fds[i] is -l's address
 * i % per as sup_open_tcp_sockets makes it, for the worker given the
 * slot's and for the socket order the next upgrade hands on.
 */
static const char *tcp_sockets_differ(struct supervisor *s, char *why, size_t len)
{
	struct upgrade_handover *h = &s->up.inh;
	struct addrinfo *want[CONFIG_MAX_LISTEN] = { NULL };
	uint32_t per = config_listen_count(s->cfg->listen), base, j, m;
	const char *differ;

	if (h->ntcp == 0) /* -p 0: -l is not resolved, as no start binds it */
		return NULL;
	differ = resolve_listen(s->cfg, want, why, len);
	for (base = 0; differ == NULL && base < h->ntcp; base += per) {
		j = order_slot_sockets(&h->tcp_fds[base], per, want);
		if (j == per)
			continue;
		m = unasked_socket(&h->tcp_fds[base], j, per, want);
		differ = refuse_socket(s, base + m, h->tcp_fds[base + m], j,
				       why, len);
	}
	for (j = 0; j < per; j++)
		if (want[j] != NULL)
			freeaddrinfo(want[j]);
	return differ;
}

/* unix_socket_differs - why the handed Unix socket is not at -s, or NULL. */
static const char *unix_socket_differs(const struct supervisor *s, char *why,
				       size_t len)
{
	struct sockaddr_un su;
	socklen_t sl = sizeof(su);

	memset(&su, 0, sizeof(su));
	if (getsockname(s->up.inh.unix_fd, (struct sockaddr *)&su, &sl) == 0 &&
	    su.sun_family == AF_UNIX &&
	    strncmp(su.sun_path, s->cfg->unix_socket, sizeof(su.sun_path)) == 0)
		return NULL;
	snprintf(why, len,
		 "the running server's Unix socket is %.108s, this start's %s",
		 su.sun_path, s->cfg->unix_socket);
	return why;
}

/* listeners_differ - why the handed sockets are not this start's, or NULL;
 * the TCP ones put in this start's order when they are. */
static const char *listeners_differ(struct supervisor *s, char *why, size_t len)
{
	const char *differ = tcp_count_differs(s, why, len);

	if (differ == NULL)
		differ = tcp_sockets_differ(s, why, len);
	if (differ == NULL)
		differ = unix_socket_differs(s, why, len);
	return differ;
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
