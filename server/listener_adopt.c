/*
 * listener_adopt.c - listening sockets handed over by a live upgrade
 *
 * A successor does not bind: it inherits the running server's Unix socket
 * (upgrade.c) and must close and unlink it at its own stop exactly as if it
 * had bound it.  listener_close_unix unlinks the path only while the file
 * there is the socket we bound, known by device and inode; for a socket we
 * did not bind, that is the file found at the path when it was handed over.
 *
 * It inherits the TCP sockets too, and serves them under its own -l and -p,
 * so each must be bound where this start would have bound it: the address
 * the kernel reports for it (getsockname) is compared with what
 * listener_resolve_tcp makes of -l, the same list listener_open_tcp binds
 * from, so that "127.1" and "127.0.0.1", or two spellings of one IPv6
 * address, are one address here as they are to bind.
 *
 * Kept apart from listener.c, which binds: this one only records and checks.
 *
 * Interface routines:
 *   listener_adopt_unix, listener_tcp_bound_in, listener_tcp_name
 */
#include "listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

/*
 * listener_adopt_unix - fill *l for the listening socket fd, inherited and
 * already bound at path
 *
 * Records the socket file at path, if it is one, as ours to unlink at
 * close; if none is there (someone removed it), close unlinks nothing.
 */
void listener_adopt_unix(struct listener_unix *l, int fd, const char *path)
{
	struct stat st;

	memset(l, 0, sizeof(*l));
	l->fd = fd;
	snprintf(l->path, sizeof(l->path), "%s", path);
	if (lstat(l->path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		l->dev = st.st_dev;
		l->ino = st.st_ino;
	}
}

/* same_ip_address - a and b name one IP address and port (an IPv6 scope
 * included: fe80::1%1 is not fe80::1%2; the flow label is no part of it). */
static bool same_ip_address(const struct sockaddr *a, const struct sockaddr *b)
{
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)a;
	const struct sockaddr_in *b4 = (const struct sockaddr_in *)b;
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)a;
	const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)b;

	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return a4->sin_port == b4->sin_port &&
		       a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return a6->sin6_port == b6->sin6_port &&
		       a6->sin6_scope_id == b6->sin6_scope_id &&
		       memcmp(&a6->sin6_addr, &b6->sin6_addr,
			      sizeof(a6->sin6_addr)) == 0;
	return false;
}

/*
 * NOTE: any entry of res will do, not only the first.  A name that resolves
 * to several addresses was bound on the first of them that took the bind,
 * which depended on that moment's interfaces; every one of them is what
 * this -l asks for.
 */
bool listener_tcp_bound_in(int fd, const struct addrinfo *res)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const struct addrinfo *ai;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return false;
	for (ai = res; ai != NULL; ai = ai->ai_next)
		if (same_ip_address((const struct sockaddr *)&ss, ai->ai_addr))
			return true;
	return false;
}

void listener_tcp_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
	char ip[INET6_ADDRSTRLEN];

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		snprintf(buf, len, "no address it will tell");
	else if (ss.ss_family == AF_INET &&
		 inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip)) != NULL)
		snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
	else if (ss.ss_family == AF_INET6 &&
		 inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip)) != NULL)
		/* "%.0u" writes no digit for scope 0, the common case */
		snprintf(buf, len, "[%s%s%.0u]:%u", ip,
			 s6->sin6_scope_id != 0 ? "%" : "", s6->sin6_scope_id,
			 ntohs(s6->sin6_port));
	else
		snprintf(buf, len, "no IP address (family %d)",
			 (int)ss.ss_family);
}
