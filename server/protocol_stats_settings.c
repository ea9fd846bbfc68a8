/*
 * protocol_stats_settings.c - `stats settings`
 *
 * Every field memcached 1.6.18 prints, in its order, then ours.  What the
 * server was started with comes from its settings (stats.h); fields of
 * memcached mechanisms shmkv does not have say so where memcached has a
 * word for "off" (slab_reassign no, lru_crawler no, ssl_enabled no, ...)
 * and otherwise show memcached's default, which is inert here: scripts
 * that read them find them, and nothing they control exists to be tuned.
 *
 * Interface routines:
 *   proto_stats_settings  answer `stats settings`
 */
#include <string.h>
#include <sys/stat.h>

#include "protocol_stats.h"

#define WORKER_BACKLOG 1024 /* worker.c's listen backlog */

/* A setting that does not depend on how the server was started. */
struct fixed_setting {
	const char *name;
	const char *value;
};

static void settings_fixed(struct proto_req *req, const struct fixed_setting *f,
			   size_t n)
{
	for (size_t i = 0; i < n; i++)
		stat_str(req, f[i].name, f[i].value);
}

#define SETTINGS_FIXED(req, table) \
	settings_fixed(req, table, sizeof(table) / sizeof(table[0]))

static const struct fixed_setting slabs[] = {
	{ "growth_factor", "1.25" },
	{ "chunk_size", "48" },
};
static const struct fixed_setting protocols[] = {
	{ "binding_protocol", "ascii" },
	{ "auth_enabled_sasl", "no" },
	{ "auth_enabled_ascii", "no" },
};

/* The listening side: memcached's first block. */
static void settings_listen(struct proto_req *req,
			    const struct server_settings *set)
{
	struct stat st;
	unsigned mode = 0700;

	stat_u64(req, "maxbytes", set->memory);
	stat_u64(req, "maxconns", set->max_connections);
	stat_u64(req, "tcpport", set->port > 0 ? (uint64_t)set->port : 0);
	stat_u64(req, "udpport", 0);
	stat_str(req, "inter", set->listen);
	stat_u64(req, "verbosity",
		 (uint64_t)server_verbosity(req->ctx->all,
					    set->verbosity > 0 ? set->verbosity
							       : 0));
	/* memcached: seconds since flush_all's oldest_live; flushes here are
	 * judged per item, so there is no such age to show. */
	stat_u64(req, "oldest", 0);
	stat_str(req, "evictions", set->evict_disabled ? "off" : "on");
	stat_str(req, "domain_socket", set->unix_socket);
	/* memcached's -a, which is the socket's mode: read it back. */
	if (set->unix_socket != NULL && stat(set->unix_socket, &st) == 0)
		mode = (unsigned)st.st_mode & 0777;
	proto_addf(req, "STAT umask %o\r\n", mode);
	stat_str(req, "shutdown_command", set->shutdown_command ? "yes" : "no");
	SETTINGS_FIXED(req, slabs);
	stat_u64(req, "num_threads", set->workers);
	stat_u64(req, "num_threads_per_udp", set->workers);
	stat_str(req, "stat_key_prefix", ":");
	stat_str(req, "detail_enabled",
		 server_detail_enabled(req->ctx->all) ? "yes" : "no");
	stat_str(req, "reqs_per_event", "20");
	stat_str(req, "cas_enabled", set->cas_disabled ? "no" : "yes");
	stat_u64(req, "tcp_backlog", WORKER_BACKLOG);
	SETTINGS_FIXED(req, protocols);
}

/* Slab rebalancing, the LRU crawler and maintainer: absent here. */
static const struct fixed_setting slab_and_lru[] = {
	{ "hashpower_init", "0" },	  { "slab_reassign", "no" },
	{ "slab_automove", "0" },	  { "slab_automove_ratio", "0.80" },
	{ "slab_automove_window", "30" },
};
static const struct fixed_setting crawler_and_lru_before_flush[] = {
	{ "lru_crawler", "no" },
	{ "lru_crawler_sleep", "100" },
	{ "lru_crawler_tocrawl", "0" },
	{ "tail_repair_time", "0" },
};
static const struct fixed_setting crawler_and_lru[] = {
	{ "dump_enabled", "yes" },
	{ "hash_algorithm", "xxh3" },
	{ "lru_maintainer_thread", "no" },
	{ "lru_segmented", "no" },
	{ "hot_lru_pct", "20" },
	{ "warm_lru_pct", "40" },
	{ "hot_max_factor", "0.20" },
	{ "warm_max_factor", "2.00" },
	{ "temp_lru", "no" },
	{ "temporary_ttl", "61" },
};
static const struct fixed_setting logs_and_buffers[] = {
	{ "watcher_logbuf_size", "262144" }, { "worker_logbuf_size", "65536" },
	{ "read_buf_mem_limit", "0" },	     { "track_sizes", "no" },
	{ "inline_ascii_response", "no" },
};
/* extstore and TLS, which shmkv does not have; memcached's defaults. */
static const struct fixed_setting extstore_and_tls[] = {
	{ "ext_item_size", "512" },	{ "ext_item_age", "4294967295" },
	{ "ext_low_ttl", "0" },		{ "ext_recache_rate", "2000" },
	{ "ext_wbuf_size", "4194304" }, { "ext_compact_under", "0" },
	{ "ext_drop_under", "0" },	{ "ext_max_sleep", "1000000" },
	{ "ext_max_frag", "0.80" },	{ "slab_automove_freeratio", "0.010" },
	{ "ext_drop_unread", "no" },	{ "ssl_enabled", "no" },
	{ "ssl_chain_cert", "(null)" }, { "ssl_key", "(null)" },
	{ "ssl_verify_mode", "0" },	{ "ssl_keyformat", "1" },
	{ "ssl_ciphers", "NULL" },	{ "ssl_ca_cert", "NULL" },
	{ "ssl_wbuf_size", "16384" },	{ "ssl_session_cache", "no" },
	{ "ssl_kernel_tls", "no" },	{ "ssl_min_version", "tlsv1.2" },
	{ "num_napi_ids", "(null)" },	{ "memory_file", "(null)" },
};

/* Items, slabs and the LRU: memcached's second block. */
static void settings_memory(struct proto_req *req,
			    const struct server_settings *set, uint32_t max_item)
{
	stat_u64(req, "item_size_max", max_item);
	/* Past -c a connection gets "ERROR Too many open connections" at
	 * once, which is what memcached's maxconns_fast does. */
	stat_str(req, "maxconns_fast", "yes");
	SETTINGS_FIXED(req, slab_and_lru);
	stat_u64(req, "slab_chunk_max", max_item / 2);
	SETTINGS_FIXED(req, crawler_and_lru_before_flush);
	stat_str(req, "flush_enabled", set->flush_disabled ? "no" : "yes");
	SETTINGS_FIXED(req, crawler_and_lru);
	stat_u64(req, "idle_timeout", set->idle_timeout);
	SETTINGS_FIXED(req, logs_and_buffers);
	SETTINGS_FIXED(req, extstore_and_tls);
}

/* proto_stats_settings - what the server was started with. */
void proto_stats_settings(struct proto_req *req)
{
	const struct server_settings *set = req->ctx->settings;
	struct server_settings none;

	if (set == NULL) {
		memset(&none, 0, sizeof(none));
		set = &none;
	}
	settings_listen(req, set);
	settings_memory(req, set, req->ctx->max_item_size);
	/* Ours. */
	stat_u64(req, "partitions",
		 set->partitions ? set->partitions
				 : req->ctx->table->npartitions);
	stat_str(req, "huge_pages", set->huge_pages);
	stat_u64(req, "page_size", set->page_size);
	proto_adds(req, "END\r\n");
}
