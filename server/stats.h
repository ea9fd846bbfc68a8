/*
 * stats.h - per-worker counters in the control part, and the settings
 *
 * Each worker counts its own commands in its own slot of a region of the
 * control part ("server.stats"), so no counter is shared between processes
 * on a hot path; `stats` sums the slots.  Counters are written by one
 * process only and read by others, hence relaxed atomics.  One more slot
 * after the workers' is the baseline `stats reset` takes: what the sums
 * were then, subtracted from every sum shown since.
 *
 * Interface routines:
 *   server_stats_add          count on a counter of this process's slot
 *   server_stats_region_size  bytes the region needs for n workers
 *   server_stats_sum          add up every worker's slot
 *   server_stats_baseline     the `stats reset` slot of a view
 */
#ifndef SHMKV_STATS_H
#define SHMKV_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The memcached release whose protocol we follow, as `version` and stats'
 * "version" report it: clients read it to choose what to expect
 * (libmemcached's memccapable takes anything before 1.6 for the older,
 * stricter parser), so it reads as memcached's.  shmkv's own version is in
 * stats' "shmkv_version".
 */
#define SHMKV_MEMCACHED_VERSION "1.6.18"

/* One worker's counters; memcached's names for memcached's fields. */
struct server_stats {
	_Atomic uint64_t curr_connections;
	_Atomic uint64_t total_connections;
	_Atomic uint64_t rejected_connections;
	_Atomic uint64_t cmd_get;
	_Atomic uint64_t cmd_set;
	_Atomic uint64_t cmd_flush;
	_Atomic uint64_t cmd_touch;
	_Atomic uint64_t get_hits;
	_Atomic uint64_t get_misses;
	_Atomic uint64_t get_expired;
	_Atomic uint64_t delete_hits;
	_Atomic uint64_t delete_misses;
	_Atomic uint64_t incr_hits;
	_Atomic uint64_t incr_misses;
	_Atomic uint64_t decr_hits;
	_Atomic uint64_t decr_misses;
	_Atomic uint64_t cas_hits;
	_Atomic uint64_t cas_misses;
	_Atomic uint64_t cas_badval;
	_Atomic uint64_t touch_hits;
	_Atomic uint64_t touch_misses;
	_Atomic uint64_t bytes_read;
	_Atomic uint64_t bytes_written;
	_Atomic uint64_t worker_restarts; /* counted by the supervisor in slot 0 */
	_Atomic uint64_t store_too_large;
	_Atomic uint64_t store_no_memory;
	_Atomic uint64_t cmd_meta;
	/* Direct lookups of client programs whose connections have closed
	 * (live ones are still counted in their proc slots). */
	_Atomic uint64_t direct_get_hits;
	_Atomic uint64_t direct_get_misses;
	/* Crash recovery, counted by the supervisor in slot 0 (recovery.c). */
	_Atomic uint64_t crash_recoveries;   /* dead procs that were in locks */
	_Atomic uint64_t locks_recovered;    /* locks repaired for them */
	_Atomic uint64_t partitions_dropped; /* emptied: a dead writer's */
	_Atomic uint64_t listen_disabled_num; /* accepting paused: out of fds */
	_Atomic uint64_t idle_kicks;	      /* closed by --idle-timeout */
	/* In the baseline slot only: the table's totals at `stats reset`
	 * (the table counts these itself, not the workers). */
	_Atomic uint64_t base_evictions;
	_Atomic uint64_t base_total_items;
	_Atomic uint64_t base_reclaimed;
	_Atomic uint64_t base_reinserted;
	uint64_t reserved[10]; /* keeps 128-byte multiples */
};

/* Every worker's slot, as mapped in this process. */
struct server_stats_view {
	struct server_stats *slots;
	uint32_t count;
};

/* What the server was started with, for `stats settings` and `stats`. */
struct server_settings {
	int port;
	const char *listen;
	const char *unix_socket;
	uint64_t memory; /* bytes of item memory (-m) */
	uint32_t workers;
	uint32_t max_connections;
	uint32_t max_item_size;
	uint32_t partitions;
	const char *huge_pages; /* on | off | try */
	uint64_t page_size;	/* what the segment really got */
	int verbosity;
	uint32_t idle_timeout; /* seconds; 0 = never */
	bool shutdown_command; /* -A */
	int64_t started;       /* Unix time the server started */
	int pid;
};

/*
 * server_stats_add - add n to counter, in this process's own slot.  NOTE: a
 * relaxed load and store, not an atomic add: the slot has one writer, so no
 * count is lost, and readers see a whole value either way; a locked add
 * would cost tens of cycles on every request for nothing.
 */
static inline void server_stats_add(_Atomic uint64_t *counter, uint64_t n)
{
	atomic_store_explicit(counter,
			      atomic_load_explicit(counter, memory_order_relaxed) +
				      n,
			      memory_order_relaxed);
}

size_t server_stats_region_size(uint32_t workers);
void server_stats_sum(const struct server_stats_view *all,
		      struct server_stats *total);
struct server_stats *server_stats_baseline(const struct server_stats_view *all);

#endif
