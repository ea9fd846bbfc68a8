/*
 * supervisor_internal.h - the supervisor's state, shared by its two files
 *
 * supervisor.c runs the server; supervisor_listen.c opens (or inherits) its
 * listening sockets; supervisor_upgrade.c is the supervisor's side of a
 * live upgrade (upgrade.c has the exchange itself): starting the successor
 * and retiring, or starting as the successor of a running server.
 *
 * Interface routines (supervisor_listen.c):
 *   sup_open_tcp_sockets   one listening socket per worker slot
 *   sup_open_unix_socket   the Unix socket, and --socket-mode's run dir
 *   sup_share_with_group   --attach-group: run dir and socket to the group
 *   sup_inherit_listeners  the successor: the sockets it was handed
 *   sup_undo_tcp_sockets, sup_undo_unix_socket   their onexit undos
 * (supervisor_upgrade.c):
 *   sup_upgrade_begin      SIGUSR2: start the new binary
 *   sup_upgrade_event      what the new binary said
 *   sup_upgrade_exit       stop the workers and exit, undoing nothing
 *   sup_take_over          the successor: interlock, then tell the old one
 *   sup_upgrade_serving    the successor: tell the old one once all serve
 *   sup_upgrade_note_failed  record a refusal for `shmkv-server --upgrade`
 * and (supervisor.c, for supervisor_upgrade.c):
 *   sup_stop_workers       signal every worker and wait for them
 */
#ifndef SHMKV_SUPERVISOR_INTERNAL_H
#define SHMKV_SUPERVISOR_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache.h"
#include "config.h"
#include "interlock.h"
#include "listener.h"
#include "memory_file.h"
#include "recovery.h"
#include "stats.h"
#include "upgrade.h"

struct sup_worker {
	pid_t pid;  /* 0 when not running */
	bool ready; /* it said it is serving */
	int64_t started_ms;
	int64_t restart_at_ms; /* when pid == 0: when to fork it again */
	uint32_t delay_ms;     /* current back-off */
};

/* The live upgrade, as the old server and as the new one. */
struct sup_upgrade {
	/* We started a successor; old.adopted: it recovers and ticks, not we. */
	struct upgrade_old old;
	bool retire;	/* its workers serve: ours retire, we exit */
	bool inherited; /* we are the successor */
	struct upgrade_handover inh; /* inh.chan: -1 once we told READY */
};

struct supervisor {
	const struct server_config *cfg;
	struct interlock il;
	struct cache cache;
	struct memory_file mfile; /* --memory-file, or plain memfds */
	struct server_stats_view stats;
	struct server_settings settings;
	struct listener_unix unix_sock;
	/* Each -l address's listening socket for each worker slot, slot by
	 * slot (slot i's are tcp_fds[i * per_slot ...]), or NULL. */
	int *tcp_fds;
	uint32_t ntcp;	       /* in tcp_fds */
	uint32_t tcp_per_slot; /* addresses of -l */
	int ready_pipe[2];     /* workers write their pid once serving */
	struct sup_worker *workers;
	uint32_t nworkers;
	uint64_t restarts;
	struct recovery recovery;
	struct sup_upgrade up;
};

#define SUPERVISOR_BACKLOG 1024

int sup_take_interlock_and_sockets(struct supervisor *s);
int sup_open_cache(struct supervisor *s, uint64_t stats_size);
int sup_open_rest(struct supervisor *s, uint64_t size);
void sup_log_start(const struct supervisor *s);
int sup_open_tcp_sockets(struct supervisor *s);
int sup_open_unix_socket(struct supervisor *s);
void sup_share_with_group(const struct server_config *cfg);
void sup_undo_unix_socket(void *arg);
void sup_upgrade_begin(struct supervisor *s);
void sup_upgrade_event(struct supervisor *s);
int sup_upgrade_exit(struct supervisor *s, int signo);
int sup_inherit_listeners(struct supervisor *s);
int sup_take_over(struct supervisor *s);
void sup_upgrade_serving(struct supervisor *s);
void sup_upgrade_note_failed(const struct supervisor *s, const char *why);
void sup_stop_workers(struct supervisor *s, int signo);
void sup_undo_tcp_sockets(void *arg);

#endif
