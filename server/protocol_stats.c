/*
 * protocol_stats.c - the `stats` family, `cache_memlimit` and `shutdown`
 *
 * `stats` prints every field memcached 1.6.18 prints, in its order and
 * under its names, so that monitoring written for memcached (and tools
 * such as memcached-tool, memcstat, load generators reading curr_items)
 * works unchanged; the counters are the sum of every worker's slot
 * (server_stats_sum) and the table's totals (table_stats_total).  Fields
 * that count a mechanism shmkv does not have (slab rebalancing, the LRU
 * maintainer and crawler, log watchers, read-buffer pools, SASL) are 0,
 * because what they count never happens here; the fields memcached counts
 * and shmkv does not count yet are listed in docs/compatibility.md.
 * Fields of ours follow memcached's: shmkv_version, partitions, huge pages,
 * the page size the segment really got, worker restarts, and crash
 * recovery's counters (recovery.c).
 *
 * `stats items` and `stats slabs` use partitions where memcached uses slab
 * classes, numbered from 1 as its classes are ("items:<partition+1>:..."),
 * for partitions holding items: a script that sums items:*:number still
 * gets curr_items, and memcached-tool's display reads its columns.  `stats
 * locks` is ours: per-partition LWLock acquisitions, contended acquisitions
 * and time waited, as PostgreSQL's wait events show where backends wait.
 * `stats settings` (protocol_stats_settings.c) prints the settings.
 *
 * `stats reset` subtracts instead of zeroing: it stores the sums of the
 * moment in the baseline slot (stats.c), so each worker's slot keeps its
 * single writer.  The table's counters, written under each partition's
 * lock, are zeroed under it (table_stats_reset), per partition as
 * memcached zeroes its per-class ones.
 *
 * Interface routines:
 *   proto_stats_command  answer `stats ...`, `cache_memlimit`, `shutdown`
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "protocol_stats.h"
#include "stats_conns.h"
#include "table_walk.h"

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define STORE(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)
#define MIB (1024u * 1024u)
/* memcached's slab page: what `stats slabs` counts pages in. */
#define SLAB_PAGE_BYTES MIB

void stat_u64(struct proto_req *req, const char *name, uint64_t v)
{
	proto_addf(req, "STAT %s %llu\r\n", name, (unsigned long long)v);
}

void stat_str(struct proto_req *req, const char *name, const char *v)
{
	proto_addf(req, "STAT %s %s\r\n", name, v ? v : "NULL");
}

/* stat_zeros - fields counting what never happens in shmkv. */
void stat_zeros(struct proto_req *req, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		stat_u64(req, names[i], 0);
}

/*
 * The workers' counters since the last `stats reset`: every worker's slot
 * (or this worker's if there is no view) less the baseline.  Gauges are
 * not reset; a counter below its baseline (a slot zeroed since) reads 0.
 */
static void stats_sum(const struct proto_ctx *ctx, struct server_stats *tot)
{
	const struct server_stats *base = server_stats_baseline(ctx->all);
	_Atomic uint64_t *t = (_Atomic uint64_t *)tot;
	const _Atomic uint64_t *b = (const _Atomic uint64_t *)base;
	size_t i, n = offsetof(struct server_stats, verbosity_set) / sizeof(*t);

	memset(tot, 0, sizeof(*tot));
	if (ctx->all != NULL && ctx->all->slots != NULL)
		server_stats_sum(ctx->all, tot);
	else if (ctx->stats != NULL)
		server_stats_sum(&(struct server_stats_view){ ctx->stats, 1 },
				 tot);
	if (base == NULL)
		return;
	for (i = 0; i < n; i++) {
		uint64_t v = LOAD(t[i]), z = LOAD(b[i]);

		if (&t[i] == &tot->curr_connections)
			continue;
		STORE(t[i], v > z ? v - z : 0);
	}
}

static uint64_t since(uint64_t v, const struct server_stats *base,
		      const _Atomic uint64_t *field)
{
	uint64_t z = base != NULL ? LOAD(*field) : 0;

	return v > z ? v - z : 0;
}

/*
 * Lookups client programs made straight in shared memory: the closed
 * connections' (in the summed slots) plus every live proc slot's.
 */
static void direct_totals(const struct proto_ctx *ctx,
			  const struct server_stats *closed, uint64_t *hits,
			  uint64_t *misses)
{
	const struct lwlock_owner *o = &ctx->table->owner;

	*hits = LOAD(closed->direct_get_hits);
	*misses = LOAD(closed->direct_get_misses);
	for (uint32_t i = 0; o->procs != NULL && i < o->nprocs; i++) {
		const struct proc *p = proc_get(o->procs, o->nprocs, i);

		*hits += atomic_load_explicit(&p->hits, memory_order_relaxed);
		*misses += atomic_load_explicit(&p->misses, memory_order_relaxed);
	}
}

/*
 * cpu_of - user and system CPU of one process from /proc/PID/stat, in
 * clock ticks; false if it is gone.  Fields 14 and 15, counted after the
 * ")" that ends the command name (which may itself hold spaces).
 */
static bool cpu_of(int pid, uint64_t *user, uint64_t *sys)
{
	char path[64], buf[1024];
	unsigned long long u, s;
	const char *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		   &u, &s) != 2)
		return false;
	*user += u;
	*sys += s;
	return true;
}

/*
 * server_cpu - CPU time of the whole server, as memcached's rusage_* are
 * for its one process: the supervisor and every worker it has (its
 * children, from /proc/PID/task/PID/children).  Without a supervisor PID
 * (a parser on its own) or /proc, this process's getrusage.
 */
static void server_cpu(const struct proto_ctx *ctx, struct timeval *user,
		       struct timeval *sys)
{
	const struct server_settings *set = ctx->settings;
	uint64_t u = 0, s = 0;
	long hz = sysconf(_SC_CLK_TCK);
	char path[64];
	FILE *f;
	int child;

	if (set != NULL && set->pid > 0 && hz > 0 && cpu_of(set->pid, &u, &s)) {
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children",
			 set->pid, set->pid);
		f = fopen(path, "r");
		while (f != NULL && fscanf(f, "%d", &child) == 1)
			cpu_of(child, &u, &s);
		if (f != NULL)
			fclose(f);
		user->tv_sec = (time_t)(u / (uint64_t)hz);
		user->tv_usec = (suseconds_t)(u % (uint64_t)hz * 1000000 /
					      (uint64_t)hz);
		sys->tv_sec = (time_t)(s / (uint64_t)hz);
		sys->tv_usec = (suseconds_t)(s % (uint64_t)hz * 1000000 /
					     (uint64_t)hz);
		return;
	}
	{
		struct rusage ru;

		memset(&ru, 0, sizeof(ru));
		getrusage(RUSAGE_SELF, &ru);
		*user = ru.ru_utime;
		*sys = ru.ru_stime;
	}
}

/* The first block: who we are, time, CPU and connections. */
static void general_process(struct proto_req *req, const struct server_stats *s)
{
	const struct proto_ctx *ctx = req->ctx;
	const struct server_settings *set = ctx->settings;
	time_t now = time(NULL);
	struct timeval ru_user, ru_sys;

	server_cpu(ctx, &ru_user, &ru_sys);
	stat_u64(req, "pid",
		 set != NULL && set->pid > 0 ? (uint64_t)set->pid
					     : (uint64_t)getpid());
	stat_u64(req, "uptime",
		 set != NULL && set->started > 0 && now >= set->started
			 ? (uint64_t)(now - set->started)
			 : 0);
	stat_u64(req, "time", (uint64_t)now);
	stat_str(req, "version", SHMKV_MEMCACHED_VERSION);
	/* memcached's event library; ours is libuv. */
	stat_str(req, "libevent", "libuv");
	stat_u64(req, "pointer_size", 8 * sizeof(void *));
	proto_addf(req, "STAT rusage_user %ld.%06ld\r\n", (long)ru_user.tv_sec,
		   (long)ru_user.tv_usec);
	proto_addf(req, "STAT rusage_system %ld.%06ld\r\n", (long)ru_sys.tv_sec,
		   (long)ru_sys.tv_usec);
	stat_u64(req, "max_connections", set ? set->max_connections : 0);
	stat_u64(req, "curr_connections", LOAD(s->curr_connections));
	stat_u64(req, "total_connections", LOAD(s->total_connections));
	stat_u64(req, "rejected_connections", LOAD(s->rejected_connections));
	stat_u64(req, "connection_structures", LOAD(s->curr_connections));
	STAT_ZEROS(req, "response_obj_oom", "response_obj_count",
		   "response_obj_bytes", "read_buf_count", "read_buf_bytes",
		   "read_buf_bytes_free", "read_buf_oom", "reserved_fds");
}

/* The command counters, as memcached orders them; the table counts
 * lookups that found their item expired or flushed (any command's). */
static void general_commands(struct proto_req *req, const struct server_stats *s,
			     const struct table_stats *ts)
{
	stat_u64(req, "cmd_get", LOAD(s->cmd_get));
	stat_u64(req, "cmd_set", LOAD(s->cmd_set));
	stat_u64(req, "cmd_flush", LOAD(s->cmd_flush));
	stat_u64(req, "cmd_touch", LOAD(s->cmd_touch));
	stat_u64(req, "cmd_meta", LOAD(s->cmd_meta));
	stat_u64(req, "get_hits", LOAD(s->get_hits));
	stat_u64(req, "get_misses", LOAD(s->get_misses));
	stat_u64(req, "get_expired", ts->get_expired);
	stat_u64(req, "get_flushed", ts->get_flushed);
	stat_u64(req, "delete_misses", LOAD(s->delete_misses));
	stat_u64(req, "delete_hits", LOAD(s->delete_hits));
	stat_u64(req, "incr_misses", LOAD(s->incr_misses));
	stat_u64(req, "incr_hits", LOAD(s->incr_hits));
	stat_u64(req, "decr_misses", LOAD(s->decr_misses));
	stat_u64(req, "decr_hits", LOAD(s->decr_hits));
	stat_u64(req, "cas_misses", LOAD(s->cas_misses));
	stat_u64(req, "cas_hits", LOAD(s->cas_hits));
	stat_u64(req, "cas_badval", LOAD(s->cas_badval));
	stat_u64(req, "touch_hits", LOAD(s->touch_hits));
	stat_u64(req, "touch_misses", LOAD(s->touch_misses));
	stat_u64(req, "store_too_large", LOAD(s->store_too_large));
	stat_u64(req, "store_no_memory", LOAD(s->store_no_memory));
	STAT_ZEROS(req, "auth_cmds", "auth_errors");
	/* As memcached: only when connections can be idle-closed. */
	if (req->ctx->settings != NULL && req->ctx->settings->idle_timeout != 0)
		stat_u64(req, "idle_kicks", LOAD(s->idle_kicks));
	stat_u64(req, "bytes_read", LOAD(s->bytes_read));
	stat_u64(req, "bytes_written", LOAD(s->bytes_written));
}

/* Memory, the table, and what memcached's background threads count. */
static void general_memory(struct proto_req *req, const struct server_stats *s,
			   const struct table_stats *ts)
{
	const struct proto_ctx *ctx = req->ctx;
	const struct server_settings *set = ctx->settings;

	/* As memcached: the -m the server was given.  It bounds buckets and
	 * items together here, so this is the figure to divide by items. */
	stat_u64(req, "limit_maxbytes",
		 set != NULL && set->memory != 0
			 ? set->memory
			 : ts->mem_limit + ts->bucket_bytes);
	/* Past -c shmkv answers memcached's "Too many open connections"
	 * (rejected_connections); it pauses accepting only when out of file
	 * descriptors, for a few milliseconds at a time (worker.c). */
	stat_u64(req, "accepting_conns", 1);
	stat_u64(req, "listen_disabled_num", LOAD(s->listen_disabled_num));
	STAT_ZEROS(req, "time_in_listen_disabled_us");
	stat_u64(req, "threads", set ? set->workers : 1);
	STAT_ZEROS(req, "conn_yields");
	/* The hash table is partitioned and never grows: no power of two
	 * to report beyond the buckets' bytes. */
	STAT_ZEROS(req, "hash_power_level");
	stat_u64(req, "hash_bytes", ts->bucket_bytes);
	STAT_ZEROS(req, "hash_is_expanding", "slab_reassign_rescues",
		   "slab_reassign_chunk_rescues", "slab_reassign_evictions_nomem",
		   "slab_reassign_inline_reclaim", "slab_reassign_busy_items",
		   "slab_reassign_busy_deletes", "slab_reassign_running",
		   "slabs_moved", "lru_crawler_running", "lru_crawler_starts",
		   "lru_maintainer_juggles", "malloc_fails",
		   "log_worker_dropped", "log_worker_written",
		   "log_watcher_skipped", "log_watcher_sent", "log_watchers",
		   "unexpected_napi_ids", "round_robin_fallback");
	stat_u64(req, "bytes", ts->bytes);
	stat_u64(req, "curr_items", ts->items);
	stat_u64(req, "total_items", ts->total_items);
	STAT_ZEROS(req, "slab_global_page_pool");
	stat_u64(req, "expired_unfetched", ts->expired_unfetched);
	stat_u64(req, "evicted_unfetched", ts->evicted_unfetched);
	/* A read item at the ring's tail is moved, not evicted, while the
	 * allocation's copy budget lasts (table_ring.c); past it, evicted
	 * although read: memcached's active item evicted from its cold LRU. */
	stat_u64(req, "evicted_active", ts->evicted_active);
	stat_u64(req, "evictions", ts->evictions);
	stat_u64(req, "reclaimed", ts->expirations);
	STAT_ZEROS(req, "crawler_reclaimed", "crawler_items_checked",
		   "lrutail_reflocked", "moves_to_cold", "moves_to_warm");
	/* An item read since it was written is moved to the ring's head
	 * instead of evicted: memcached's move within an LRU. */
	stat_u64(req, "moves_within_lru", ts->reinserted);
	STAT_ZEROS(req, "direct_reclaims", "lru_bumps_dropped");
}

static void stats_general(struct proto_req *req)
{
	const struct proto_ctx *ctx = req->ctx;
	const struct server_settings *set = ctx->settings;
	struct server_stats s;
	struct table_stats ts;
	size_t page_size = 0;
	uint64_t hits, misses;
	const struct server_stats *base = server_stats_baseline(ctx->all);

	stats_sum(ctx, &s);
	table_stats_total(ctx->table, &ts);
	if (set != NULL && set->page_size != 0)
		page_size = set->page_size;
	else if (ctx->table->seg != NULL)
		page_size = ctx->table->seg->page_size;

	general_process(req, &s);
	general_commands(req, &s, &ts);
	general_memory(req, &s, &ts);
	/* Ours, after memcached's. */
	stat_str(req, "shmkv_version", ctx->version);
	stat_u64(req, "partitions", ctx->table->npartitions);
	stat_u64(req, "mem_used", ts.mem_used);
	stat_u64(req, "reinserted", ts.reinserted);
	stat_str(req, "huge_pages", set ? set->huge_pages : NULL);
	stat_u64(req, "page_size", page_size);
	stat_u64(req, "worker_restarts", LOAD(s.worker_restarts));
	stat_u64(req, "crash_recoveries", LOAD(s.crash_recoveries));
	stat_u64(req, "locks_recovered", LOAD(s.locks_recovered));
	stat_u64(req, "partitions_dropped", LOAD(s.partitions_dropped));
	/* stats_sum took the baseline off the closed connections' part
	 * only; the live proc slots' part is taken off here. */
	{
		struct server_stats raw;

		memset(&raw, 0, sizeof(raw));
		if (ctx->all != NULL && ctx->all->slots != NULL)
			server_stats_sum(ctx->all, &raw);
		direct_totals(ctx, &raw, &hits, &misses);
		if (base != NULL) {
			hits = since(hits, base, &base->direct_get_hits);
			misses = since(misses, base, &base->direct_get_misses);
		}
	}
	stat_u64(req, "direct_get_hits", hits);
	stat_u64(req, "direct_get_misses", misses);
	proto_adds(req, "END\r\n");
}

/*
 * stats_reset - memcached's `stats reset`: the counters start again from
 * 0 (gauges such as curr_connections and curr_items stay).  Without a
 * view of every worker (a parser on its own) it zeroes this worker's
 * slot, which only this process writes.
 */
static void stats_reset(struct proto_req *req)
{
	const struct proto_ctx *ctx = req->ctx;
	struct server_stats *base = server_stats_baseline(ctx->all);
	struct server_stats raw;
	_Atomic uint64_t *dst, *src;
	uint64_t hits, misses;
	size_t i, n = offsetof(struct server_stats, verbosity_set) /
		      sizeof(_Atomic uint64_t);

	/* memcached zeroes its per-class counters too: the table's are. */
	table_stats_reset(ctx->table);
	if (base == NULL) {
		if (ctx->stats != NULL) {
			dst = (_Atomic uint64_t *)ctx->stats;
			for (i = 0; i < n; i++)
				if (&dst[i] != &ctx->stats->curr_connections)
					STORE(dst[i], 0);
		}
		proto_reply(req, "RESET");
		return;
	}
	memset(&raw, 0, sizeof(raw));
	server_stats_sum(ctx->all, &raw);
	direct_totals(ctx, &raw, &hits, &misses);
	STORE(raw.direct_get_hits, hits);
	STORE(raw.direct_get_misses, misses);
	dst = (_Atomic uint64_t *)base;
	src = (_Atomic uint64_t *)&raw;
	for (i = 0; i < n; i++)
		STORE(dst[i], LOAD(src[i]));
	server_detail_reset(ctx->all);
	proto_reply(req, "RESET");
}

/*
 * stats_items - memcached's per-class fields for each partition holding
 * items.  One ring per partition is one LRU: its items count as cold,
 * its reads as hits to cold, its second chances as moves within the LRU,
 * and its age is the idle time of the item it would evict next.
 */
static void stats_items(struct proto_req *req)
{
	struct table *t = req->ctx->table;
	/* tailrepairs, the crawler's and the segmented LRU's moves never
	 * happen here. */
	static const char *const zero2[] = {
		"crawler_reclaimed", "crawler_items_checked",
		"lrutail_reflocked", "moves_to_cold",
		"moves_to_warm",
	};

	for (uint32_t p = 0; p < t->npartitions; p++) {
		struct table_stats ps;
		unsigned c = p + 1;
		size_t i;

		memset(&ps, 0, sizeof(ps));
		table_stats_partition(t, p, &ps);
		if (ps.items == 0)
			continue;
#define ITEM(name, v) \
	proto_addf(req, "STAT items:%u:%s %llu\r\n", c, name, \
		   (unsigned long long)(v))
		ITEM("number", ps.items);
		ITEM("number_hot", 0);
		ITEM("number_warm", 0);
		ITEM("number_cold", ps.items);
		ITEM("age_hot", 0);
		ITEM("age_warm", 0);
		ITEM("age", table_walk_oldest(req->ctx->table, p));
		ITEM("mem_requested", ps.bytes);
		ITEM("evicted", ps.evictions);
		ITEM("evicted_nonzero", ps.evicted_nonzero);
		ITEM("evicted_time", ps.evicted_time);
		ITEM("outofmemory", ps.outofmemory);
		ITEM("tailrepairs", 0);
		ITEM("reclaimed", ps.expirations);
		ITEM("expired_unfetched", ps.expired_unfetched);
		ITEM("evicted_unfetched", ps.evicted_unfetched);
		ITEM("evicted_active", ps.evicted_active);
		for (i = 0; i < sizeof(zero2) / sizeof(zero2[0]); i++)
			ITEM(zero2[i], 0);
		ITEM("moves_within_lru", ps.reinserted);
		ITEM("direct_reclaims", 0);
		ITEM("hits_to_hot", 0);
		ITEM("hits_to_warm", 0);
		ITEM("hits_to_cold", ps.hits);
		ITEM("hits_to_temp", 0);
		ITEM("mem_used", ps.mem_used);
		ITEM("mem_limit", ps.mem_limit);
#undef ITEM
	}
	proto_adds(req, "END\r\n");
}

/*
 * stats_slabs - memcached's per-class memory fields for each partition
 * holding items.  A partition's items are not of one size: chunk_size is
 * the mean memory an item takes there, and pages are the partition's
 * memory in memcached's 1 MiB slab pages.  The command counters are the
 * partition's, counted where memcached counts its class's.
 */
static void stats_slabs(struct proto_req *req)
{
	const struct table *t = req->ctx->table;
	uint64_t active = 0, malloced = 0;

	for (uint32_t p = 0; p < t->npartitions; p++) {
		struct table_stats ps;
		unsigned c = p + 1;
		uint64_t chunk, chunks;

		memset(&ps, 0, sizeof(ps));
		table_stats_partition(t, p, &ps);
		if (ps.items == 0)
			continue;
		active++;
		malloced += ps.mem_limit;
		chunk = ps.mem_used / ps.items;
		if (chunk == 0)
			chunk = 1;
		chunks = ps.mem_limit / chunk;
		if (chunks < ps.items)
			chunks = ps.items;
#define SLAB(name, v) \
	proto_addf(req, "STAT %u:%s %llu\r\n", c, name, (unsigned long long)(v))
		SLAB("chunk_size", chunk);
		SLAB("chunks_per_page",
		     SLAB_PAGE_BYTES / chunk ? SLAB_PAGE_BYTES / chunk : 1);
		SLAB("total_pages",
		     (ps.mem_limit + SLAB_PAGE_BYTES - 1) / SLAB_PAGE_BYTES);
		SLAB("total_chunks", chunks);
		SLAB("used_chunks", ps.items);
		SLAB("free_chunks", chunks - ps.items);
		SLAB("free_chunks_end", 0);
		SLAB("get_hits", ps.hits);
		SLAB("cmd_set", ps.total_items);
		SLAB("delete_hits", ps.delete_hits);
		SLAB("incr_hits", ps.incr_hits);
		SLAB("decr_hits", ps.decr_hits);
		SLAB("cas_hits", ps.cas_hits);
		SLAB("cas_badval", ps.cas_badval);
		SLAB("touch_hits", ps.touch_hits);
#undef SLAB
	}
	stat_u64(req, "active_slabs", active);
	stat_u64(req, "total_malloced", malloced);
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

/*
 * stats_detail - memcached's `stats detail on|off|dump`: on and off apply
 * to every worker (the switch is shared); dump lists every prefix counted
 * since the last `stats reset`, with memcached's line format.
 */
static void stats_detail(struct proto_req *req)
{
	const struct proto_token *what = &req->tokens[2];
	struct server_detail_entry *e;
	size_t n;

	if (req->ntokens < 4) {
		proto_reply(req, "CLIENT_ERROR usage: stats detail on|off|dump");
	} else if (proto_tok_is(what, "on") || proto_tok_is(what, "off")) {
		server_detail_set(req->ctx->all, what->value[1] == 'n');
		proto_reply(req, "OK");
	} else if (proto_tok_is(what, "dump")) {
		e = malloc(SERVER_PREFIX_RECORDS * sizeof(*e));
		if (e == NULL) {
			req->oom = true;
			return;
		}
		n = server_detail_snapshot(req->ctx->all, e,
					   SERVER_PREFIX_RECORDS);
		for (size_t i = 0; i < n; i++)
			proto_addf(req,
				   "PREFIX %s get %llu hit %llu set %llu del %llu\r\n",
				   e[i].prefix, (unsigned long long)e[i].gets,
				   (unsigned long long)e[i].hits,
				   (unsigned long long)e[i].sets,
				   (unsigned long long)e[i].dels);
		free(e);
		proto_adds(req, "END\r\n");
	} else {
		proto_reply(req, "CLIENT_ERROR usage: stats detail on|off|dump");
	}
}

static void conn_block(struct proto_req *req, unsigned id, const char *addr,
		       const char *listen_addr, const char *state,
		       uint64_t since, time_t now)
{
	proto_addf(req, "STAT %u:addr %s\r\n", id, addr);
	if (listen_addr != NULL)
		proto_addf(req, "STAT %u:listen_addr %s\r\n", id, listen_addr);
	proto_addf(req, "STAT %u:state %s\r\n", id, state);
	proto_addf(req, "STAT %u:secs_since_last_cmd %llu\r\n", id,
		   (unsigned long long)((uint64_t)now > since ? (uint64_t)now - since
							      : 0));
}

/*
 * stats_conns - memcached's `stats conns`: a block per listening socket
 * (stats_conns.h numbers them), then one per client connection of any worker
 * (from the shared records, stats_conns.c), in memcached's fields.
 */
static void stats_conns(struct proto_req *req)
{
	static const char *const states[] = {
		[SERVER_CONN_NEW_CMD] = "conn_new_cmd",
		[SERVER_CONN_PARSE] = "conn_parse_cmd",
		[SERVER_CONN_READ] = "conn_read",
		[SERVER_CONN_NREAD] = "conn_nread",
		[SERVER_CONN_MWRITE] = "conn_mwrite",
	};
	const struct server_settings *set = req->ctx->settings;
	struct server_conn_entry *e;
	time_t now = time(NULL);
	char addr[SERVER_CONN_ADDR];
	const char *p, *end;
	unsigned id = 0;
	size_t n;

	/* One block per -l address, as memcached has a socket for each. */
	for (p = set != NULL && set->port > 0 ? set->listen : NULL;
	     p != NULL && id < SERVER_CONN_UNIX_ID; p = end ? end + 1 : NULL) {
		end = strchr(p, ',');
		n = end != NULL ? (size_t)(end - p) : strlen(p);
		snprintf(addr, sizeof(addr),
			 memchr(p, ':', n) ? "tcp6:[%.*s]:%d" : "tcp:%.*s:%d",
			 (int)n, p, set->port);
		conn_block(req, id++, addr, NULL, "conn_listening",
			   (uint64_t)set->started, now);
	}
	if (set != NULL && set->unix_socket != NULL) {
		snprintf(addr, sizeof(addr), "unix:%s", set->unix_socket);
		conn_block(req, SERVER_CONN_UNIX_ID, addr, NULL,
			   "conn_listening", (uint64_t)set->started, now);
	}
	e = malloc(SERVER_CONN_RECORDS * sizeof(*e));
	if (e == NULL) {
		req->oom = true;
		return;
	}
	n = server_conns_list(req->ctx->all, e, SERVER_CONN_RECORDS);
	for (size_t i = 0; i < n; i++)
		conn_block(req, e[i].id, e[i].addr, e[i].listen_addr,
			   e[i].state < sizeof(states) / sizeof(states[0])
				   ? states[e[i].state]
				   : "conn_read",
			   e[i].last_cmd, now);
	free(e);
	proto_adds(req, "END\r\n");
}

/*
 * cache_memlimit - memcached's `cache_memlimit <MiB> [noreply]`, with its
 * replies.  The shared segment is sized once, at start-up, and client
 * programs map it at that size, so the limit cannot move: asking for the
 * size it has is OK, any other is memcached's "unable to adjust".
 */
static void cache_memlimit(struct proto_req *req)
{
	const struct server_settings *set = req->ctx->settings;
	uint32_t mib;

	if (req->ntokens == 4 && proto_tok_is(&req->tokens[2], "noreply"))
		req->noreply = true;
	if (!proto_num_u32(&req->tokens[1], &mib))
		proto_reply(req, "ERROR");
	else if (mib < 8)
		proto_reply(req,
			    "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m");
	else if (mib > 1000000000)
		proto_reply(req,
			    "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes");
	else if (set != NULL && (uint64_t)mib * MIB == set->memory)
		proto_reply(req, "OK");
	else
		proto_reply(req,
			    "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust");
}

/*
 * shutdown_command - memcached's `shutdown [graceful]`, honoured only with
 * -A: the connection closes without a reply and the supervisor gets
 * SIGTERM, its clean stop (workers finish the replies in flight), which
 * is what memcached's graceful shutdown does; plain `shutdown` stops the
 * same way, since a stop here is always orderly.
 */
static void shutdown_command(struct proto_req *req)
{
	const struct server_settings *set = req->ctx->settings;

	if (req->ntokens != 2 && req->ntokens != 3) {
		proto_reply(req, "ERROR");
	} else if (set == NULL || !set->shutdown_command || set->pid <= 0) {
		proto_reply(req, "ERROR: shutdown not enabled");
	} else if (req->ntokens == 3 &&
		   !proto_tok_is(&req->tokens[1], "graceful")) {
		proto_reply(req, "CLIENT_ERROR invalid shutdown mode");
	} else {
		kill(set->pid, SIGTERM);
		req->close = true;
	}
}

/* proto_stats_command - answer `stats [sub]`, `cache_memlimit`, `shutdown`
 * and `lru_crawler` (protocol_dump.c). */
int proto_stats_command(struct proto_req *req)
{
	const struct proto_token *cmd = &req->tokens[0];
	const struct proto_token *sub = &req->tokens[1];

	if (proto_tok_is(cmd, "cache_memlimit")) {
		if (req->ntokens == 3 || req->ntokens == 4)
			cache_memlimit(req);
		else
			proto_reply(req, "ERROR");
		return 0;
	}
	if (proto_tok_is(cmd, "shutdown")) {
		shutdown_command(req);
		return 0;
	}
	if (proto_tok_is(cmd, "lru_crawler")) {
		proto_dump_metadump(req);
		return 0;
	}
	if (req->ntokens < 3)
		stats_general(req);
	else if (proto_tok_is(sub, "settings"))
		proto_stats_settings(req);
	else if (proto_tok_is(sub, "items"))
		stats_items(req);
	else if (proto_tok_is(sub, "slabs"))
		stats_slabs(req);
	else if (proto_tok_is(sub, "sizes"))
		proto_adds(req, "STAT sizes_status disabled\r\nEND\r\n");
	else if (proto_tok_is(sub, "reset") && req->ntokens == 3)
		stats_reset(req);
	else if (proto_tok_is(sub, "cachedump"))
		proto_dump_cachedump(req);
	else if (proto_tok_is(sub, "locks"))
		stats_locks(req);
	else if (proto_tok_is(sub, "detail"))
		stats_detail(req);
	else if (proto_tok_is(sub, "conns"))
		stats_conns(req);
	else
		proto_reply(req, "ERROR");
	return 0;
}
