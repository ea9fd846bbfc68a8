/*
 * stats_conns.c - memcached's `stats conns` over every worker's connections
 *
 * A connection lives in one worker process, and `stats conns` may be
 * answered by any: so each worker publishes a small record per open
 * connection in the shared stats region (stats.h), and the answering
 * worker reads them all.  NOTE: asking the other workers (a message to
 * each, replies gathered) was rejected: it would make one `stats conns`
 * wait for every worker's loop, and a busy or stopped worker would hold
 * the reply up; a record costs its worker two relaxed stores per read.
 *
 * A record is claimed by a compare-and-swap of its owner word from 0 to
 * the worker's PID and freed by storing 0.  The addresses, written once at
 * the claim, sit inside a seqlock (seq odd while they change); the state
 * and last command time are single atomic words, stored as they change.
 * A lister copies a record, checks seq did not move meanwhile, and skips a
 * record whose owner is not alive (a worker killed with its connections
 * open); the next worker in that slot frees such records when it starts.
 * With every record taken, further connections are served but not listed.
 *
 * Interface routines:
 *   server_conn_claim    a record for a new connection, addresses filled
 *   server_conn_state    its state, and with a command its time
 *   server_conn_release  free it
 *   server_conns_reap    free the records a dead worker of a slot left
 *   server_conns_list    copy the live records out
 *   server_conn_format   memcached's text for a socket address
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "stats_conns.h"

static bool owner_alive(uint32_t pid)
{
	return pid != 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

void server_conn_format(const struct sockaddr *sa, socklen_t len, char *out,
			size_t cap)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(out, cap, "tcp:%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, cap, "tcp6:[%s]:%u", host, ntohs(in6->sin6_port));
	} else if (sa->sa_family == AF_UNIX &&
		   len > offsetof(struct sockaddr_un, sun_path) &&
		   ((const struct sockaddr_un *)sa)->sun_path[0] != '\0') {
		const struct sockaddr_un *un = (const void *)sa;
		size_t n = len - offsetof(struct sockaddr_un, sun_path);

		snprintf(out, cap, "unix:%.*s", (int)strnlen(un->sun_path, n),
			 un->sun_path);
	} else {
		/* memcached's words for a peer with no name (a Unix client):
		 * it keeps no address for one, so the family reads 0. */
		snprintf(out, cap, "?:<AF %d>",
			 sa->sa_family == AF_UNIX ? 0 : (int)sa->sa_family);
	}
}

/* fill - the connection's peer and the address it connected to. */
static void fill(struct server_conn_record *r, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		len = 0;
	server_conn_format((struct sockaddr *)&ss, len, r->addr, sizeof(r->addr));
	len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		len = 0;
	server_conn_format((struct sockaddr *)&ss, len, r->listen_addr,
			   sizeof(r->listen_addr));
}

struct server_conn_record *server_conn_claim(const struct server_stats_view *all,
					     uint32_t worker, int fd)
{
	uint32_t me = (uint32_t)getpid();

	if (all == NULL || all->conns == NULL)
		return NULL;
	for (uint32_t i = 0; i < SERVER_CONN_RECORDS; i++) {
		struct server_conn_record *r = &all->conns[i];
		uint32_t expect = 0;

		if (atomic_load_explicit(&r->owner, memory_order_relaxed) != 0 ||
		    !atomic_compare_exchange_strong(&r->owner, &expect, me))
			continue;
		/* Odd: readers skip it until the addresses are written;
		 * the release below pairs with server_conns_list's acquire. */
		atomic_fetch_add_explicit(&r->seq, 1, memory_order_acq_rel);
		atomic_store_explicit(&r->worker, worker, memory_order_relaxed);
		atomic_store_explicit(&r->state, SERVER_CONN_NEW_CMD,
				      memory_order_relaxed);
		atomic_store_explicit(&r->last_cmd, (uint64_t)time(NULL),
				      memory_order_relaxed);
		fill(r, fd);
		atomic_fetch_add_explicit(&r->seq, 1, memory_order_release);
		return r;
	}
	return NULL;
}

void server_conn_state(struct server_conn_record *r,
		       enum server_conn_state state, bool command)
{
	if (r == NULL)
		return;
	atomic_store_explicit(&r->state, state, memory_order_relaxed);
	if (command)
		atomic_store_explicit(&r->last_cmd, (uint64_t)time(NULL),
				      memory_order_relaxed);
}

void server_conn_release(struct server_conn_record *r)
{
	if (r == NULL)
		return;
	atomic_fetch_add_explicit(&r->seq, 1, memory_order_acq_rel);
	atomic_store_explicit(&r->owner, 0, memory_order_release);
	atomic_fetch_add_explicit(&r->seq, 1, memory_order_release);
}

void server_conns_reap(const struct server_stats_view *all, uint32_t worker)
{
	if (all == NULL || all->conns == NULL)
		return;
	for (uint32_t i = 0; i < SERVER_CONN_RECORDS; i++) {
		struct server_conn_record *r = &all->conns[i];
		uint32_t owner = atomic_load_explicit(&r->owner,
						      memory_order_relaxed);

		/* Another server's worker of the same slot (an upgrade) is
		 * alive: only a dead owner's records are freed. */
		if (owner != 0 &&
		    atomic_load_explicit(&r->worker, memory_order_relaxed) ==
			    worker &&
		    !owner_alive(owner))
			atomic_compare_exchange_strong(&r->owner, &owner, 0);
	}
}

/* copy_record - r into e if it is in use and did not change meanwhile. */
static bool copy_record(struct server_conn_record *r, struct server_conn_entry *e)
{
	uint32_t s1 = atomic_load_explicit(&r->seq, memory_order_acquire);

	if (s1 & 1)
		return false;
	e->owner = atomic_load_explicit(&r->owner, memory_order_relaxed);
	e->state = atomic_load_explicit(&r->state, memory_order_relaxed);
	e->last_cmd = atomic_load_explicit(&r->last_cmd, memory_order_relaxed);
	memcpy(e->addr, r->addr, sizeof(e->addr));
	memcpy(e->listen_addr, r->listen_addr, sizeof(e->listen_addr));
	e->addr[sizeof(e->addr) - 1] = '\0';
	e->listen_addr[sizeof(e->listen_addr) - 1] = '\0';
	/* Pairs with the writer's release increments: the copy above is
	 * ordered before this second read of seq. */
	atomic_thread_fence(memory_order_acquire);
	return e->owner != 0 &&
	       atomic_load_explicit(&r->seq, memory_order_relaxed) == s1;
}

size_t server_conns_list(const struct server_stats_view *all,
			 struct server_conn_entry *out, size_t max)
{
	size_t n = 0;

	if (all == NULL || all->conns == NULL)
		return 0;
	for (uint32_t i = 0; i < SERVER_CONN_RECORDS && n < max; i++) {
		struct server_conn_entry *e = &out[n];

		if (atomic_load_explicit(&all->conns[i].owner,
					 memory_order_relaxed) == 0)
			continue;
		if (!copy_record(&all->conns[i], e) &&
		    !copy_record(&all->conns[i], e))
			continue;
		if (!owner_alive(e->owner))
			continue;
		e->id = SERVER_CONN_FIRST_ID + i;
		n++;
	}
	return n;
}
