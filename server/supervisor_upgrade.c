/*
 * supervisor_upgrade.c - the supervisor's side of a live upgrade
 *
 * The old supervisor, on SIGUSR2, starts its successor (upgrade.c) and
 * goes on serving until the successor says its workers serve; then it
 * retires its own and exits without undoing anything, because everything
 * it would undo is the successor's now: the segment (which therefore stays
 * RUNNING for attached client programs, and is not marked clean), the
 * socket file, the lock file and the shim.  A refusal is logged, written to
 * <run_dir>/upgrade.failed for `shmkv-server --upgrade`, and changes nothing.
 *
 * The successor starts as any server does, except that it checks instead
 * of creating: the sockets it was handed must be the ones its flags name
 * (supervisor_listen.c: -s, and one TCP socket per worker and -l address,
 * each bound to that address and -p, so neither -t nor -l's addresses can
 * change), and the segment must fit its settings (memory_file_adopt_running).  Only then does it
 * take the interlock over, so that a refused successor has touched nothing.
 *
 * NOTE: between the successor's A and the retirement the old supervisor
 * still recovers its own workers should one die (their slots carry no
 * start time, so the successor would never look at them), while the
 * successor recovers client programs.  Two recoverers could then meet on
 * one lock; it takes an old worker dying inside a lock during the second
 * or so of the hand-over, and leaving its slot unrecovered would be worse.
 *
 * Interface routines: see supervisor_internal.h.
 */
#include "supervisor_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/shm.h>
#include <unistd.h>

#include "onexit.h"

void sup_upgrade_note_failed(const struct supervisor *s, const char *why)
{
	char path[CONFIG_PATH_MAX + 32];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", s->cfg->run_dir,
		 UPGRADE_FAILED_FILE);
	if (why == NULL) {
		(void)unlink(path);
		return;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return;
	(void)!write(fd, why, strlen(why));
	close(fd);
}

void sup_upgrade_begin(struct supervisor *s)
{
	struct upgrade_handover h;
	char why[256];
	int rc;

	if (s->up.old.chan >= 0 || s->up.inh.chan >= 0 || s->up.old.adopted) {
		SERVER_LOG("upgrade: one is in progress already; SIGUSR2 ignored");
		return;
	}
	sup_upgrade_note_failed(s, NULL);
	memset(&h, 0, sizeof(h));
	h.data_fd = s->cache.seg.data_fd;
	h.ctl_fd = s->cache.seg.ctl_fd;
	h.unix_fd = s->unix_sock.fd;
	h.shim_key = s->il.shim_key;
	h.run_dir_created = s->il.created_run_dir;
	h.ntcp = s->ntcp;
	for (unsigned i = 0; i < h.ntcp; i++)
		h.tcp_fds[i] = s->tcp_fds[i];
	rc = upgrade_start_new(&s->up.old, &h);
	if (rc < 0) {
		snprintf(why, sizeof(why), "cannot start the new binary: %s",
			 strerror(-rc));
		SERVER_LOG("upgrade: %s; going on serving", why);
		sup_upgrade_note_failed(s, why);
	}
}

void sup_upgrade_event(struct supervisor *s)
{
	char why[1024];

	switch (upgrade_old_read(&s->up.old, why, sizeof(why))) {
	case UPGRADE_EV_NONE: return;
	case UPGRADE_EV_ADOPTED:
		upgrade_tell(s->up.old.chan, UPGRADE_ACK, NULL);
		SERVER_LOG("upgrade: pid %d took over the segment and the interlock; "
			   "waiting for its workers",
			   (int)s->up.old.child);
		return;
	case UPGRADE_EV_READY:
		s->up.retire = true;
		SERVER_LOG("upgrade: the workers of pid %d serve; retiring ours",
			   (int)s->up.old.child);
		return;
	case UPGRADE_EV_FAILED:
		SERVER_LOG("upgrade refused; going on serving: %s", why);
		sup_upgrade_note_failed(s, why);
		return;
	case UPGRADE_EV_LOST:
		/* The successor named itself in the lock file: name us again. */
		if (interlock_reclaim(&s->il) < 0)
			SERVER_LOG("upgrade: cannot rewrite the lock file %s",
				   s->il.lock_path);
		SERVER_LOG("upgrade failed after the hand-over; took the interlock "
			   "back, going on serving: %s",
			   why);
		sup_upgrade_note_failed(s, why);
		return;
	}
}

int sup_upgrade_exit(struct supervisor *s, int signo)
{
	SERVER_LOG("upgrade: %s; stopping our %s worker(s)",
		   s->up.inherited && s->up.inh.chan >= 0
			   ? "told to stop before our workers served: the old server goes on"
			   : "the new server serves",
		   signo == SIGUSR2 ? "retiring" : "stopping");
	sup_stop_workers(s, signo);
	if (s->up.old.chan >= 0)
		close(s->up.old.chan);
	if (s->up.inh.chan >= 0)
		close(s->up.inh.chan);
	/* Our proc slot back, the mappings gone; the segment stays RUNNING. */
	cache_destroy(&s->cache);
	if (s->il.shim != NULL)
		shmdt(s->il.shim);
	onexit_cancel_all();
	SERVER_LOG("exited without undoing anything: it is all in use");
	return 0;
}

int sup_take_over(struct supervisor *s)
{
	char err[1024];
	int rc;

	rc = interlock_adopt(&s->il, s->cfg->run_dir, s->cfg->port,
			     s->cfg->unix_socket, s->up.inh.shim_key,
			     s->up.inh.old_pid, s->up.inh.run_dir_created, err,
			     sizeof(err));
	if (rc < 0) {
		SERVER_LOG("cannot take over the running server's interlock: %s",
			   err);
		upgrade_tell(s->up.inh.chan, UPGRADE_REFUSED, err);
		return rc;
	}
	onexit_push(interlock_release_cb, &s->il);
	upgrade_tell(s->up.inh.chan, UPGRADE_ADOPTED, NULL);
	upgrade_wait_ack(s->up.inh.chan);
	SERVER_LOG("upgrade: took over the sockets, the segment and the interlock "
		   "of pid %d",
		   (int)s->up.inh.old_pid);
	return 0;
}

void sup_upgrade_serving(struct supervisor *s)
{
	for (uint32_t i = 0; i < s->nworkers; i++)
		if (s->workers[i].pid == 0 || !s->workers[i].ready)
			return;
	upgrade_tell(s->up.inh.chan, UPGRADE_READY, NULL);
	close(s->up.inh.chan);
	s->up.inh.chan = -1;
	SERVER_LOG("upgrade: our %u worker(s) serve; the old server retires",
		   s->nworkers);
}
