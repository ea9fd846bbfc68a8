/*
 * supervisor_start.c - what the supervisor opens before it forks
 *
 * The steps of start-up that create or adopt something shared, each
 * pushing its undo on the onexit stack: the interlock and the listening
 * sockets, the cache (created, adopted from a memory file, or taken over
 * from the server a live upgrade replaces), then the workers' counters,
 * the supervisor's own proc slot, crash recovery and the Unix socket.
 * supervisor.c calls them in that order, and logs the start-up line.
 *
 * Interface routines (supervisor_internal.h):
 *   sup_take_interlock_and_sockets, sup_open_cache, sup_open_rest,
 *   sup_log_start
 */
#include "supervisor_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cache.h"
#include "clock.h"
#include "interlock.h"
#include "memory_file.h"
#include "onexit.h"
#include "recovery.h"
#include "stats.h"
#include "table.h"
#include "upgrade.h"

/* Longer than a worker's stop grace (worker.c WORKER_STOP_GRACE_MS). */
#define SUPERVISOR_ORPHAN_WAIT_MS 8000

static void free_recovery(void *arg)
{
	recovery_free(arg);
}

/* sup_log_start - the one line saying what the server really got. */
void sup_log_start(const struct supervisor *s)
{
	const struct server_config *cfg = s->cfg;
	const struct segment *seg = &s->cache.seg;
	char tcp[300] = "";
	char page[32];

	if (seg->page_size >= (1u << 30))
		snprintf(page, sizeof(page), "%zu GiB", seg->page_size >> 30);
	else if (seg->page_size >= (1u << 20))
		snprintf(page, sizeof(page), "%zu MiB", seg->page_size >> 20);
	else
		snprintf(page, sizeof(page), "%zu KiB", seg->page_size >> 10);
	if (cfg->port != 0 && strchr(cfg->listen, ',') != NULL)
		snprintf(tcp, sizeof(tcp), "%s, port %d, and ", cfg->listen,
			 cfg->port);
	else if (cfg->port != 0)
		snprintf(tcp, sizeof(tcp), "%s%s%s:%d and ",
			 strchr(cfg->listen, ':') ? "[" : "", cfg->listen,
			 strchr(cfg->listen, ':') ? "]" : "", cfg->port);
	SERVER_LOG("%s %s started: memory %" PRIu64 " MiB (segment ready in "
		   "%.2f s%s), pages of %s (%s%s), "
		   "%u workers, %u partitions, items up to %u bytes, "
		   "%u connections; listening on %s%s",
		   SERVER_NAME, SERVER_VERSION, cfg->memory_mib,
		   seg->create_seconds, cfg->prefault ? ", prefaulted" : "",
		   page, seg->huge ? "huge pages" : "normal pages",
		   seg->huge_fell_back ? ", huge pages unavailable: fell back"
				       : "",
		   cfg->workers, cfg->partitions, cfg->max_item_size,
		   cfg->max_connections, tcp, cfg->unix_socket);
}

/*
 * acquire_interlock - interlock_acquire, waiting up to
 * SUPERVISOR_ORPHAN_WAIT_MS for the workers of a dead server to go: they
 * got SIGTERM when it died (PR_SET_PDEATHSIG) and are finishing their
 * replies, which takes at most their stop grace.  So a server restarted
 * the moment the last one was killed starts without anyone's help.
 */
static int acquire_interlock(struct supervisor *s, char *err, size_t errlen)
{
	const struct server_config *cfg = s->cfg;
	int64_t deadline = monotonic_ms() + SUPERVISOR_ORPHAN_WAIT_MS;
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	bool told = false;
	int rc;

	for (;;) {
		rc = interlock_acquire(&s->il, cfg->run_dir, cfg->port,
				       cfg->unix_socket, err, errlen);
		if (rc != -EAGAIN || monotonic_ms() >= deadline)
			return rc;
		if (!told)
			SERVER_LOG("waiting up to %d s for the processes of a dead "
				   "server to exit: %s",
				   SUPERVISOR_ORPHAN_WAIT_MS / 1000, err);
		told = true;
		nanosleep(&pause, NULL);
	}
}

/* cache_config_for - the cache this start would create. */
static void cache_config_for(const struct supervisor *s, uint64_t stats_size,
			     struct cache_config *cc)
{
	const struct server_config *cfg = s->cfg;
	struct stat st;

	memset(cc, 0, sizeof(*cc));
	cc->table.partitions = cfg->partitions;
	cc->table.memory = cfg->memory_mib << 20;
	cc->table.max_item_size = cfg->max_item_size;
	cc->seg.huge_pages = cfg->huge_pages;
	cc->seg.huge_page_size = cfg->huge_page_size;
	cc->seg.prefault = cfg->prefault;
	cc->extra_ctl_bytes = stats_size + SEGMENT_ALIGN;
	if (stat(cfg->run_dir, &st) == 0) {
		cc->seg.rundir_dev = (uint64_t)st.st_dev;
		cc->seg.rundir_ino = (uint64_t)st.st_ino;
	}
}

/*
 * sup_open_cache - create or adopt the cache; a successor takes the running
 * server's over, and only then the interlock (sup_take_over): a refusal
 * leaves the running server exactly as it was.
 */
int sup_open_cache(struct supervisor *s, uint64_t stats_size)
{
	const struct server_config *cfg = s->cfg;
	struct cache_config cc;
	char err[1024];
	int rc;

	cache_config_for(s, stats_size, &cc);
	if (s->up.inherited)
		rc = memory_file_adopt_running(&s->mfile, cfg, &cc, &s->cache,
					       s->up.inh.data_fd,
					       s->up.inh.ctl_fd, err,
					       sizeof(err));
	else
		rc = memory_file_open_cache(&s->mfile, cfg, &cc, &s->cache, err,
					    sizeof(err));
	if (rc < 0) {
		SERVER_LOG("cannot %s: %s",
			   s->up.inherited ? "take over the running "
					     "server's segment"
					   : "create the shared cache",
			   err);
		if (s->up.inherited)
			upgrade_tell(s->up.inh.chan, UPGRADE_REFUSED, err);
		return rc;
	}
	if (s->up.inherited) {
		rc = sup_take_over(s);
		if (rc < 0) {
			cache_destroy(&s->cache);
			return rc;
		}
	}
	onexit_push(memory_file_close, &s->mfile);
	return 0;
}

/* sup_take_interlock_and_sockets - acquire the interlock and bind; a successor
 * checks the sockets it was handed (and takes the interlock in
 * sup_open_cache). */
int sup_take_interlock_and_sockets(struct supervisor *s)
{
	char err[1024];
	int rc;

	if (s->up.inherited)
		return sup_inherit_listeners(s);
	rc = acquire_interlock(s, err, sizeof(err));
	if (rc < 0) {
		SERVER_LOG("%s", err);
		return rc;
	}
	onexit_push(interlock_release_cb, &s->il);
	if (s->il.stale_pid != 0 || s->il.stale_shims_removed > 0)
		SERVER_LOG("removed what a dead server (pid %d) left in %s",
			   (int)s->il.stale_pid, s->cfg->run_dir);
	return sup_open_tcp_sockets(s);
}

/* sup_open_rest - counters, proc slot, recovery, Unix socket, settings. */
int sup_open_rest(struct supervisor *s, uint64_t size)
{
	const struct server_config *cfg = s->cfg;
	uint64_t off = 0;
	int rc;

	rc = memory_file_stats_region(&s->mfile, size, &off);
	if (rc == 0) {
		server_stats_view_init(&s->stats,
				       segment_ptr(&s->cache.seg, SEGMENT_CTL,
						   off, size),
				       size, cfg->workers);
		if (s->stats.slots == NULL)
			rc = -EFAULT;
	}
	if (rc < 0) {
		SERVER_LOG("cannot allocate the workers' counters (%" PRIu64
			   " bytes): %s",
			   size, strerror(-rc));
		return rc;
	}
	rc = cache_claim_proc(&s->cache);
	if (rc < 0) {
		SERVER_LOG("cannot claim a proc slot: %s", strerror(-rc));
		return rc;
	}
	rc = recovery_init(&s->recovery, &s->cache, &s->stats.slots[0],
			   cfg->verbosity);
	if (rc < 0) {
		SERVER_LOG("out of memory");
		return rc;
	}
	onexit_push(free_recovery, &s->recovery);
	memory_file_recover(&s->mfile, &s->recovery);
	table_tick(&s->cache.table, (uint32_t)time(NULL));

	rc = s->up.inherited ? 0 : sup_open_unix_socket(s);
	if (rc < 0)
		return rc;
	onexit_push(sup_undo_unix_socket, s);
	if (cfg->attach_group_set)
		sup_share_with_group(cfg);
	return 0;
}
