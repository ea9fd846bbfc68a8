/*
 * attach_server.h - the server side of a client program attaching
 *
 * A client program sends "shmkv_attach <layout-version>" as the first
 * command on a Unix-socket connection (client/attach.h has the exchange;
 * the parser recognises the line, protocol.c).
 * The worker that owns the connection checks who is on the other end with
 * SO_PEERCRED, claims a proc slot in the peer's name and sends the
 * segment's descriptors with SCM_RIGHTS: the data part read-only, so the
 * kernel, not our good manners, keeps the client from writing it.
 *
 * Interface routines:
 *   attach_serve        answer it, on the connection's fd, at once
 *   attach_release      give the slot back when the connection closes
 */
#ifndef SHMKV_ATTACH_SERVER_H
#define SHMKV_ATTACH_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache.h"

/* Who may attach besides the server's own user and root. */
struct attach_policy {
	bool group_set;
	gid_t group;          /* members of this group may attach too */
	const char *group_name;
};

struct server_stats;

struct attach_server {
	struct cache *cache;
	struct server_stats *stats; /* this worker's: keeps closed clients' counts */
	int data_ro_fd;       /* read-only descriptor of the data part */
	struct attach_policy policy;
};

/*
 * attach_serve - answer the attach request in line on fd (a connected Unix
 * socket with nothing else pending).  Returns 0 with *slot claimed for the
 * peer, or -1 when it refused (the refusal was sent) or could not send.
 */
int attach_serve(const struct attach_server *as, int fd, const char *line,
		 size_t len, uint32_t *slot);

/*
 * attach_release - the client's connection closed: free its proc slot,
 * unless the client died in a lock, which crash recovery must undo first
 * (then the slot is left claimed for the supervisor, and 1 is returned),
 * or the supervisor already took the slot of the dead client (0).
 */
int attach_release(const struct attach_server *as, uint32_t slot);

#endif
