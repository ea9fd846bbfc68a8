/*
 * stats.h - per-worker counters in the control part, and the settings
 *
 * Each worker counts its own commands in its own slot of a region of the
 * control part ("server.stats"), so no counter is shared between processes
 * on a hot path; `stats` sums the slots.  Counters are written by one
 * process only and read by others, hence relaxed atomics.  One more slot
 * after the workers' is the baseline `stats reset` takes: what the sums
 * were then, subtracted from every sum shown since.  (The table counts
 * its own counters, and table_stats_reset zeroes them.)
 *
 * Interface routines:
 *   server_stats_add          count on a counter of this process's slot
 *   server_stats_region_size  bytes the region needs for n workers
 *   server_stats_sum          add up every worker's slot
 *   server_stats_baseline     the `stats reset` slot of a view
 *   server_stats_view_init    find the slots and the shared tables
 *   server_verbosity, server_set_verbosity, server_detail_enabled
 *                             run-time settings of the whole server
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
	/* In the baseline slot only: what the whole server was told at run
	 * time.  verbosity_set is `verbosity N`'s N + 1 (0: none yet, the
	 * command line's -v holds); detail_on is `stats detail on|off`. */
	_Atomic uint64_t verbosity_set;
	_Atomic uint64_t detail_on;
	uint64_t reserved[13]; /* keeps 128-byte multiples */
};

/*
 * `stats detail`: one record per key prefix, shared by every worker (any
 * of them may count a prefix), claimed once and never moved.  state is 0
 * (free), 1 (being written by whoever claimed it) or 2 (len and prefix
 * are final); seq orders records by creation, for memcached's dump order.
 */
#define SERVER_PREFIX_RECORDS 512u
#define SERVER_PREFIX_MAX 250u /* a key's length: a prefix is shorter */
struct server_prefix {
	_Atomic uint32_t state;
	uint32_t len;
	_Atomic uint64_t seq;
	_Atomic uint64_t gets;
	_Atomic uint64_t hits;
	_Atomic uint64_t sets;
	_Atomic uint64_t dels;
	char prefix[SERVER_PREFIX_MAX];
	char pad[6]; /* 304 bytes */
};
struct server_prefix_table {
	_Atomic uint64_t next_seq;
	uint64_t reserved[7];
	struct server_prefix rec[SERVER_PREFIX_RECORDS];
};

/*
 * `stats conns`: one record per open client connection of any worker.
 * owner is the PID of the worker serving it (0: free), claimed with a
 * compare-and-swap; that worker alone writes the rest.  The addresses are
 * written inside an odd seq (a seqlock: a reader that sees seq change, or
 * odd, skips the record).  A worker that dies leaves records whose owner
 * is gone: listers skip them and its successor in the slot frees them.
 */
#define SERVER_CONN_RECORDS 2048u
#define SERVER_CONN_ADDR 120u
enum server_conn_state {
	SERVER_CONN_NEW_CMD = 0, /* connected, no command yet */
	SERVER_CONN_PARSE,	 /* its commands are being answered */
	SERVER_CONN_READ,	 /* waiting for its next command */
	SERVER_CONN_NREAD,	 /* a command's data block is coming */
	SERVER_CONN_MWRITE,	 /* its replies wait for the socket */
};
struct server_conn_record {
	_Atomic uint32_t owner;
	_Atomic uint32_t seq;
	_Atomic uint32_t worker;
	_Atomic uint32_t state;
	_Atomic uint64_t last_cmd; /* Unix time of its last command */
	char addr[SERVER_CONN_ADDR];
	char listen_addr[SERVER_CONN_ADDR];
};

/* Every worker's slot and the shared tables, as mapped in this process. */
struct server_stats_view {
	struct server_stats *slots;
	uint32_t count;
	struct server_prefix_table *prefixes; /* NULL: no `stats detail` */
	struct server_conn_record *conns;     /* NULL: no `stats conns` */
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
	bool flush_disabled;   /* -F */
	bool evict_disabled;   /* -M */
	bool cas_disabled;     /* -C */
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
/* server_stats_view_init - a view of the region at base, of size bytes
 * (server_stats_region_size), for count workers. */
void server_stats_view_init(struct server_stats_view *all, void *base,
			    size_t size, uint32_t count);

/* The whole server's log level: `verbosity N`'s if one was given, else
 * dflt (the command line's). */
int server_verbosity(const struct server_stats_view *all, int dflt);
void server_set_verbosity(const struct server_stats_view *all, int level);

/* server_stats_baseline - the baseline slot, after all->count workers'
 * (a view without slots has none: NULL). */
static inline struct server_stats *server_stats_baseline(
	const struct server_stats_view *all)
{
	if (all == NULL || all->slots == NULL)
		return NULL;
	return &all->slots[all->count];
}

/* server_detail_enabled - `stats detail on` is in effect.  Inline: every
 * get, set and delete asks, and with detail off (the usual case) the answer
 * is one load of a line every worker reads. */
static inline bool server_detail_enabled(const struct server_stats_view *all)
{
	const struct server_stats *b = server_stats_baseline(all);

	return b != NULL &&
	       atomic_load_explicit(&b->detail_on, memory_order_relaxed) != 0;
}
void server_stats_sum(const struct server_stats_view *all,
		      struct server_stats *total);

#endif
