/*
 * upgrade.h - live upgrade: a new binary takes over a running server
 *
 * `kill -USR2 <supervisor>` (nginx's convention) or `shmkv-server --upgrade`
 * makes the running supervisor fork and exec its own program path again,
 * with its command line, handing over what must not be recreated: the
 * listening sockets (so that no connection attempt is refused) and the
 * segment's two descriptors (so that no key is lost).  See upgrade.c for
 * the exchange between the two supervisors.
 *
 * Interface routines:
 *   upgrade_save_argv       remember the command line (main, before parsing)
 *   upgrade_request         --upgrade: signal the running server, report
 *   upgrade_start_new       old side: fork and exec the new binary
 *   upgrade_old_read        old side: what the new one said
 *   upgrade_inherited       new side: the handover from the environment
 *   upgrade_tell            new side: one message to the old supervisor
 *   upgrade_wait_ack        new side: until the old one stopped recovering
 */
#ifndef SHMKV_UPGRADE_H
#define SHMKV_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "interlock.h"

#define UPGRADE_ENV "SHMKV_UPGRADE"
#define UPGRADE_FAILED_FILE "upgrade.failed"

/* Messages on the channel, new -> old except UPGRADE_ACK. */
#define UPGRADE_ADOPTED 'A' /* segment adopted, interlock taken over */
#define UPGRADE_ACK 'K'	    /* old: stopped recovering, ticking */
#define UPGRADE_READY 'R'   /* every new worker serves: retire yours */
#define UPGRADE_REFUSED 'F' /* followed by the reason, then EOF */

/* Every worker slot's TCP sockets, one per -l address. */
#define UPGRADE_MAX_TCP (CONFIG_MAX_WORKERS * CONFIG_MAX_LISTEN)

/* What the old server hands over, as descriptors open in the new one. */
struct upgrade_handover {
	pid_t old_pid;
	int chan; /* socketpair end to the old supervisor */
	int data_fd;
	int ctl_fd;
	int unix_fd;
	key_t shim_key;
	bool run_dir_created; /* the first server made it: the last removes it */
	unsigned ntcp;
	int tcp_fds[UPGRADE_MAX_TCP];
};

/* The old supervisor's view of an upgrade in progress. */
struct upgrade_old {
	pid_t child; /* 0 when none is running */
	int chan;    /* -1 when none */
	/* It said UPGRADE_ADOPTED and has not died since: it recovers and
	 * ticks, not we. */
	bool adopted;
};

enum upgrade_event {
	UPGRADE_EV_NONE,
	UPGRADE_EV_ADOPTED,
	UPGRADE_EV_READY,
	UPGRADE_EV_FAILED, /* refused, or gone before adopting */
	UPGRADE_EV_LOST,   /* gone after adopting, before its workers served */
};

void upgrade_save_argv(int argc, char **argv);

/* upgrade_request - --upgrade: SIGUSR2 to the supervisor the lock file of
 * cfg's run directory names, and wait for the outcome.  Exit status. */
int upgrade_request(const struct server_config *cfg);

/* upgrade_start_new - fork and exec the saved command line with h's
 * descriptors inherited; 0 with u filled in, or -errno. */
int upgrade_start_new(struct upgrade_old *u, const struct upgrade_handover *h);

/* upgrade_old_read - read what arrived on u->chan; why gets a refusal's
 * reason.  On FAILED and LOST the channel is closed. */
enum upgrade_event upgrade_old_read(struct upgrade_old *u, char *why, size_t len);

/* upgrade_inherited - 1 if this process was started by an upgrade (h filled
 * in, the variable removed), 0 if not, -EINVAL with err set if the variable
 * is malformed. */
int upgrade_inherited(struct upgrade_handover *h, char *err, size_t len);

void upgrade_tell(int chan, char what, const char *why);
void upgrade_wait_ack(int chan);

#endif
