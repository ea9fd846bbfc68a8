/*
 * stats_conns.h - every worker's connections, for `stats conns` (see
 * stats_conns.c)
 *
 * Interface routines:
 *   server_conn_claim    a record for a new connection, addresses filled
 *   server_conn_state    its state, and with a command its time
 *   server_conn_release  free it
 *   server_conns_reap    free the records a dead worker of a slot left
 *   server_conns_list    copy the live records out
 *   server_conn_format   memcached's text for a socket address
 */
#ifndef SHMKV_STATS_CONNS_H
#define SHMKV_STATS_CONNS_H

#include <sys/socket.h>

#include "stats.h"

/* Ids of `stats conns`: the listening sockets first (TCP on each of at
 * most CONFIG_MAX_LISTEN -l addresses, then the Unix socket), then the
 * records: a connection's fd is its worker's, and two workers' may be
 * equal, so memcached's fd numbers would not tell them apart. */
#define SERVER_CONN_UNIX_ID 4u
#define SERVER_CONN_FIRST_ID 5u

/* One record as listed, copied out of shared memory. */
struct server_conn_entry {
	uint32_t id;
	uint32_t owner;
	uint32_t state;
	uint64_t last_cmd;
	char addr[SERVER_CONN_ADDR];
	char listen_addr[SERVER_CONN_ADDR];
};

/* NULL when every record is taken (the connection is then not listed). */
struct server_conn_record *server_conn_claim(const struct server_stats_view *all,
					     uint32_t worker, int fd);
/* r may be NULL; command: a command was answered now. */
void server_conn_state(struct server_conn_record *r,
		       enum server_conn_state state, bool command);
void server_conn_release(struct server_conn_record *r);
void server_conns_reap(const struct server_stats_view *all, uint32_t worker);
size_t server_conns_list(const struct server_stats_view *all,
			 struct server_conn_entry *out, size_t max);
void server_conn_format(const struct sockaddr *sa, socklen_t len, char *out,
			size_t cap);

#endif
