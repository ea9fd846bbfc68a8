/*
 * listener.h - the server's listening sockets, made once by the supervisor
 *
 * The supervisor creates every listening socket before it forks a worker
 * and keeps them open for the server's life: one TCP socket per worker
 * slot (SO_REUSEPORT, so the kernel spreads connections over the slots)
 * and one Unix socket that every worker shares.  A worker inherits its
 * slot's socket, so a restarted worker accepts the connections that queued
 * while its slot was empty, instead of the kernel refusing them.
 *
 * The Unix socket's path is not ours until we have made it so: a file
 * there that is not a socket, or a socket a live server answers on, is
 * refused and left alone; only a stale socket (nobody answers) is removed.
 * On the way out the path is unlinked only if it is still the socket we
 * bound.
 *
 * Interface routines:
 *   listener_resolve_tcp  the socket addresses one -l address and -p stand for
 *   listener_open_tcp    a bound, listening SO_REUSEPORT socket on -l:-p
 *   listener_open_unix   bind and listen on a Unix path that is safe to take
 *   listener_close_unix  close it and unlink the path if it is still ours
 *   listener_adopt_unix  one a live upgrade handed over (listener_adopt.c)
 *   listener_tcp_bound_in  whether a handed-over TCP socket is one -l asks for
 *   listener_tcp_name    the address a TCP socket is bound to, for a message
 */
#ifndef SHMKV_LISTENER_H
#define SHMKV_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A listening Unix socket and what identifies its path as ours. */
struct listener_unix {
	int fd;	   /* -1 when not open */
	dev_t dev; /* of the socket file we bound */
	ino_t ino;
	char path[108];
};

struct addrinfo;

/*
 * listener_resolve_tcp - what listener_open_tcp binds for listen:port: a
 * list (getaddrinfo's, passive, numeric port) whose first entry that binds
 * wins.  0 with *res to freeaddrinfo, or -EINVAL with err naming listen.
 */
int listener_resolve_tcp(const char *listen, int port, struct addrinfo **res,
			 char *err, size_t errlen);

/*
 * listener_open_tcp - a TCP socket with SO_REUSEADDR and SO_REUSEPORT bound
 * to listen:port and listening with the given backlog.  Returns the fd
 * (close-on-exec) or a negative errno, with err naming the address.
 */
int listener_open_tcp(const char *listen, int port, int backlog, char *err,
		      size_t errlen);

/*
 * listener_open_unix - bind path and listen on it, mode applied to the
 * socket file.  Refuses -EEXIST for a path that exists and is not a
 * socket, -EADDRINUSE for a socket a server answers on; removes a socket
 * nobody answers on first.  0 with *l filled in, or -errno with err saying
 * why and what to do, and nothing at path touched.
 */
int listener_open_unix(struct listener_unix *l, const char *path, unsigned mode,
		       int backlog, char *err, size_t errlen);

/* listener_close_unix - close the socket; unlink its path only if the file
 * there is still the one we bound (someone may have replaced it). */
void listener_close_unix(struct listener_unix *l);

/* listener_adopt_unix - *l for fd, a listening socket inherited from the
 * server a live upgrade takes over, bound at path; closed as if bound here. */
void listener_adopt_unix(struct listener_unix *l, int fd, const char *path);

/* listener_tcp_bound_in - whether the TCP socket fd is bound to one of the
 * addresses of res (listener_resolve_tcp's): family, address and port. */
bool listener_tcp_bound_in(int fd, const struct addrinfo *res);

/* listener_tcp_name - "ADDR:PORT" ("[ADDR]:PORT" for IPv6) that fd is bound
 * to, into buf; says so when it has no IP address. */
void listener_tcp_name(int fd, char *buf, size_t len);

#endif
