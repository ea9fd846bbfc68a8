/*
 * protocol_stats.c - the `stats` family
 *
 * `stats` prints memcached's general fields, in memcached's order and under
 * memcached's names wherever we have the same quantity, so that monitoring
 * written for memcached (and load tools that read curr_items or evictions)
 * works unchanged; the counters are the sum of every worker's slot
 * (server_stats_sum) and the table's totals (table_stats_total).  Fields
 * of ours follow memcached's: partitions, huge pages, the page size the
 * segment really got, worker restarts, and crash recovery's counters
 * (crash_recoveries, locks_recovered, partitions_dropped: recovery.c).
 *
 * `stats items` uses partitions where memcached uses slab classes:
 * "items:<partition>:number" and so on, for partitions holding items, so a
 * script that sums items:*:number still gets curr_items.  `stats locks` is
 * ours: per-partition LWLock acquisitions, contended acquisitions and time
 * waited, as PostgreSQL's wait events show where backends wait.
 * `stats settings` prints what the server was started with.
 *
 * `stats reset` is not implemented (it answers ERROR like any unknown
 * subcommand): the counters are written by one process each, so resetting
 * every worker's slot from one of them would break that rule, and a shared
 * baseline to subtract is more than this file should own.
 *
 * Interface routines:
 *   proto_stats_command  answer a `stats ...` line
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "protocol_internal.h"

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void stat_u64(struct proto_req *req, const char *name, uint64_t v)
{
	proto_addf(req, "STAT %s %llu\r\n", name, (unsigned long long)v);
}

static void stat_str(struct proto_req *req, const char *name, const char *v)
{
	proto_addf(req, "STAT %s %s\r\n", name, v ? v : "NULL");
}

/* stats_sum - every worker's counters, or this worker's if no view. */
static void stats_sum(const struct proto_ctx *ctx, struct server_stats *tot)
{
	memset(tot, 0, sizeof(*tot));
	if (ctx->all != NULL && ctx->all->slots != NULL)
		server_stats_sum(ctx->all, tot);
	else if (ctx->stats != NULL)
		server_stats_sum(&(struct server_stats_view){ ctx->stats, 1 },
				 tot);
}

/*
 * Lookups client programs made straight in shared memory, summed over the
 * proc slots: each program counts its own in its slot, as workers count
 * theirs in the stats region.
 */
static void stats_direct(struct proto_req *req, const struct proto_ctx *ctx,
			 const struct server_stats *closed)
{
	const struct lwlock_owner *o = &ctx->table->owner;
	uint64_t hits = LOAD(closed->direct_get_hits);
	uint64_t misses = LOAD(closed->direct_get_misses);

	for (uint32_t i = 0; o->procs != NULL && i < o->nprocs; i++) {
		const struct proc *p = proc_get(o->procs, o->nprocs, i);

		hits += atomic_load_explicit(&p->hits, memory_order_relaxed);
		misses += atomic_load_explicit(&p->misses, memory_order_relaxed);
	}
	stat_u64(req, "direct_get_hits", hits);
	stat_u64(req, "direct_get_misses", misses);
}

static void stats_general(struct proto_req *req)
{
	const struct proto_ctx *ctx = req->ctx;
	const struct server_settings *set = ctx->settings;
	struct server_stats s;
	struct table_stats ts;
	struct rusage ru;
	time_t now = time(NULL);
	size_t page_size = 0;

	stats_sum(ctx, &s);
	memset(&ts, 0, sizeof(ts));
	table_stats_total(ctx->table, &ts);
	if (set != NULL && set->page_size != 0)
		page_size = set->page_size;
	else if (ctx->table->seg != NULL)
		page_size = ctx->table->seg->page_size;
	memset(&ru, 0, sizeof(ru));
	getrusage(RUSAGE_SELF, &ru);

	stat_u64(req, "pid", set != NULL && set->pid > 0 ? (uint64_t)set->pid :
			     (uint64_t)getpid());
	stat_u64(req, "uptime", set != NULL && set->started > 0 &&
				now >= set->started ?
				(uint64_t)(now - set->started) : 0);
	stat_u64(req, "time", (uint64_t)now);
	stat_str(req, "version", ctx->version);
	stat_u64(req, "pointer_size", 8 * sizeof(void *));
	proto_addf(req, "STAT rusage_user %ld.%06ld\r\n",
		   (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec);
	proto_addf(req, "STAT rusage_system %ld.%06ld\r\n",
		   (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec);
	stat_u64(req, "max_connections", set ? set->max_connections : 0);
	stat_u64(req, "curr_connections", LOAD(s.curr_connections));
	stat_u64(req, "total_connections", LOAD(s.total_connections));
	stat_u64(req, "rejected_connections", LOAD(s.rejected_connections));
	stat_u64(req, "listen_disabled_num", LOAD(s.listen_disabled_num));
	stat_u64(req, "cmd_get", LOAD(s.cmd_get));
	stat_u64(req, "cmd_set", LOAD(s.cmd_set));
	stat_u64(req, "cmd_flush", LOAD(s.cmd_flush));
	stat_u64(req, "cmd_touch", LOAD(s.cmd_touch));
	stat_u64(req, "cmd_meta", LOAD(s.cmd_meta));
	stat_u64(req, "get_hits", LOAD(s.get_hits));
	stat_u64(req, "get_misses", LOAD(s.get_misses));
	stat_u64(req, "get_expired", LOAD(s.get_expired));
	stat_u64(req, "delete_misses", LOAD(s.delete_misses));
	stat_u64(req, "delete_hits", LOAD(s.delete_hits));
	stat_u64(req, "incr_misses", LOAD(s.incr_misses));
	stat_u64(req, "incr_hits", LOAD(s.incr_hits));
	stat_u64(req, "decr_misses", LOAD(s.decr_misses));
	stat_u64(req, "decr_hits", LOAD(s.decr_hits));
	stat_u64(req, "cas_misses", LOAD(s.cas_misses));
	stat_u64(req, "cas_hits", LOAD(s.cas_hits));
	stat_u64(req, "cas_badval", LOAD(s.cas_badval));
	stat_u64(req, "touch_hits", LOAD(s.touch_hits));
	stat_u64(req, "touch_misses", LOAD(s.touch_misses));
	stat_u64(req, "store_too_large", LOAD(s.store_too_large));
	stat_u64(req, "store_no_memory", LOAD(s.store_no_memory));
	stat_u64(req, "bytes_read", LOAD(s.bytes_read));
	stat_u64(req, "bytes_written", LOAD(s.bytes_written));
	/* As memcached: the -m the server was given.  It bounds buckets and
	 * items together here, so this is the figure to divide by items. */
	stat_u64(req, "limit_maxbytes", set != NULL && set->memory != 0
					 ? set->memory
					 : ts.mem_limit + ts.bucket_bytes);
	stat_u64(req, "item_bytes_limit", ts.mem_limit);
	stat_u64(req, "threads", set ? set->workers : 1);
	stat_u64(req, "hash_bytes", ts.bucket_bytes);
	stat_u64(req, "bytes", ts.bytes);
	stat_u64(req, "curr_items", ts.items);
	stat_u64(req, "total_items", ts.total_items);
	stat_u64(req, "evictions", ts.evictions);
	stat_u64(req, "reclaimed", ts.expirations);
	/* Ours, after memcached's. */
	stat_u64(req, "partitions", ctx->table->npartitions);
	stat_u64(req, "mem_used", ts.mem_used);
	stat_u64(req, "reinserted", ts.reinserted);
	stat_str(req, "huge_pages", set ? set->huge_pages : NULL);
	stat_u64(req, "page_size", page_size);
	stat_u64(req, "worker_restarts", LOAD(s.worker_restarts));
	stat_u64(req, "crash_recoveries", LOAD(s.crash_recoveries));
	stat_u64(req, "locks_recovered", LOAD(s.locks_recovered));
	stat_u64(req, "partitions_dropped", LOAD(s.partitions_dropped));
	stats_direct(req, ctx, &s);
	proto_adds(req, "END\r\n");
}

static void stats_settings(struct proto_req *req)
{
	const struct server_settings *set = req->ctx->settings;
	struct server_settings none;

	if (set == NULL) {
		memset(&none, 0, sizeof(none));
		set = &none;
	}
	stat_u64(req, "maxbytes", set->memory);
	stat_u64(req, "maxconns", set->max_connections);
	stat_u64(req, "tcpport", set->port > 0 ? (uint64_t)set->port : 0);
	stat_str(req, "inter", set->listen);
	stat_u64(req, "verbosity", set->verbosity > 0 ? (uint64_t)set->verbosity : 0);
	stat_str(req, "evictions", "on");
	stat_str(req, "domain_socket", set->unix_socket);
	stat_u64(req, "num_threads", set->workers);
	stat_str(req, "cas_enabled", "yes");
	stat_u64(req, "item_size_max", req->ctx->max_item_size);
	stat_str(req, "flush_enabled", "yes");
	stat_str(req, "hash_algorithm", "xxh3");
	stat_u64(req, "partitions", set->partitions ? set->partitions :
				     req->ctx->table->npartitions);
	stat_str(req, "huge_pages", set->huge_pages);
	stat_u64(req, "page_size", set->page_size);
	proto_adds(req, "END\r\n");
}

static void stats_items(struct proto_req *req)
{
	const struct table *t = req->ctx->table;
	uint32_t p;

	for (p = 0; p < t->npartitions; p++) {
		struct table_stats ps;

		memset(&ps, 0, sizeof(ps));
		table_stats_partition(t, p, &ps);
		if (ps.items == 0)
			continue;
		proto_addf(req, "STAT items:%u:number %llu\r\n", p,
			   (unsigned long long)ps.items);
		proto_addf(req, "STAT items:%u:mem_requested %llu\r\n", p,
			   (unsigned long long)ps.bytes);
		proto_addf(req, "STAT items:%u:evicted %llu\r\n", p,
			   (unsigned long long)ps.evictions);
		proto_addf(req, "STAT items:%u:reclaimed %llu\r\n", p,
			   (unsigned long long)ps.expirations);
		proto_addf(req, "STAT items:%u:mem_used %llu\r\n", p,
			   (unsigned long long)ps.mem_used);
		proto_addf(req, "STAT items:%u:mem_limit %llu\r\n", p,
			   (unsigned long long)ps.mem_limit);
	}
	proto_adds(req, "END\r\n");
}

/*
 * stats_locks - totals first, then every partition; wait time in
 * microseconds, which is what a person compares with request latency.
 */
static void stats_locks(struct proto_req *req)
{
	const struct table *t = req->ctx->table;
	struct table_stats ts;
	uint32_t p;

	memset(&ts, 0, sizeof(ts));
	table_stats_total(t, &ts);
	stat_u64(req, "locks:acquisitions", ts.lock_acquisitions);
	stat_u64(req, "locks:contended", ts.lock_contended);
	stat_u64(req, "locks:wait_us", ts.lock_wait_ns / 1000);
	for (p = 0; p < t->npartitions; p++) {
		struct table_stats ps;

		memset(&ps, 0, sizeof(ps));
		table_stats_partition(t, p, &ps);
		proto_addf(req, "STAT locks:%u:acquisitions %llu\r\n", p,
			   (unsigned long long)ps.lock_acquisitions);
		proto_addf(req, "STAT locks:%u:contended %llu\r\n", p,
			   (unsigned long long)ps.lock_contended);
		proto_addf(req, "STAT locks:%u:wait_us %llu\r\n", p,
			   (unsigned long long)(ps.lock_wait_ns / 1000));
	}
	proto_adds(req, "END\r\n");
}

/* proto_stats_command - answer `stats [settings|items|locks]`. */
int proto_stats_command(struct proto_req *req)
{
	const struct proto_token *sub = &req->tokens[1];

	if (req->ntokens < 3)
		stats_general(req);
	else if (proto_tok_is(sub, "settings"))
		stats_settings(req);
	else if (proto_tok_is(sub, "items"))
		stats_items(req);
	else if (proto_tok_is(sub, "locks"))
		stats_locks(req);
	else
		proto_reply(req, "ERROR");
	return 0;
}
