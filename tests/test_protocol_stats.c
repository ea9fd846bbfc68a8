/*
 * test_protocol_stats.c - tests of server/protocol_stats*.c and protocol_dump.c
 *
 * Against a real cache (protocol_fixture.c): `stats` and `stats settings`
 * print every field memcached 1.6.18 prints, in its order (the lists below
 * are memcached 1.6.18's own output, field by field); `stats reset`,
 * `cache_memlimit` and `shutdown` answer with memcached's lines; the key
 * listings (`lru_crawler metadump`, `stats cachedump`) print memcached's
 * line formats for what the cache holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "protocol_fixture.h"
#include "stats_detail.h"

/* `stats` of memcached 1.6.18 (Debian 12), in its order. */
static const char *const memcached_stats[] = {
	"pid",
	"uptime",
	"time",
	"version",
	"libevent",
	"pointer_size",
	"rusage_user",
	"rusage_system",
	"max_connections",
	"curr_connections",
	"total_connections",
	"rejected_connections",
	"connection_structures",
	"response_obj_oom",
	"response_obj_count",
	"response_obj_bytes",
	"read_buf_count",
	"read_buf_bytes",
	"read_buf_bytes_free",
	"read_buf_oom",
	"reserved_fds",
	"cmd_get",
	"cmd_set",
	"cmd_flush",
	"cmd_touch",
	"cmd_meta",
	"get_hits",
	"get_misses",
	"get_expired",
	"get_flushed",
	"delete_misses",
	"delete_hits",
	"incr_misses",
	"incr_hits",
	"decr_misses",
	"decr_hits",
	"cas_misses",
	"cas_hits",
	"cas_badval",
	"touch_hits",
	"touch_misses",
	"store_too_large",
	"store_no_memory",
	"auth_cmds",
	"auth_errors",
	"bytes_read",
	"bytes_written",
	"limit_maxbytes",
	"accepting_conns",
	"listen_disabled_num",
	"time_in_listen_disabled_us",
	"threads",
	"conn_yields",
	"hash_power_level",
	"hash_bytes",
	"hash_is_expanding",
	"slab_reassign_rescues",
	"slab_reassign_chunk_rescues",
	"slab_reassign_evictions_nomem",
	"slab_reassign_inline_reclaim",
	"slab_reassign_busy_items",
	"slab_reassign_busy_deletes",
	"slab_reassign_running",
	"slabs_moved",
	"lru_crawler_running",
	"lru_crawler_starts",
	"lru_maintainer_juggles",
	"malloc_fails",
	"log_worker_dropped",
	"log_worker_written",
	"log_watcher_skipped",
	"log_watcher_sent",
	"log_watchers",
	"unexpected_napi_ids",
	"round_robin_fallback",
	"bytes",
	"curr_items",
	"total_items",
	"slab_global_page_pool",
	"expired_unfetched",
	"evicted_unfetched",
	"evicted_active",
	"evictions",
	"reclaimed",
	"crawler_reclaimed",
	"crawler_items_checked",
	"lrutail_reflocked",
	"moves_to_cold",
	"moves_to_warm",
	"moves_within_lru",
	"direct_reclaims",
	"lru_bumps_dropped",
};

/* `stats settings` of memcached 1.6.18, in its order. */
static const char *const memcached_settings[] = {
	"maxbytes",
	"maxconns",
	"tcpport",
	"udpport",
	"inter",
	"verbosity",
	"oldest",
	"evictions",
	"domain_socket",
	"umask",
	"shutdown_command",
	"growth_factor",
	"chunk_size",
	"num_threads",
	"num_threads_per_udp",
	"stat_key_prefix",
	"detail_enabled",
	"reqs_per_event",
	"cas_enabled",
	"tcp_backlog",
	"binding_protocol",
	"auth_enabled_sasl",
	"auth_enabled_ascii",
	"item_size_max",
	"maxconns_fast",
	"hashpower_init",
	"slab_reassign",
	"slab_automove",
	"slab_automove_ratio",
	"slab_automove_window",
	"slab_chunk_max",
	"lru_crawler",
	"lru_crawler_sleep",
	"lru_crawler_tocrawl",
	"tail_repair_time",
	"flush_enabled",
	"dump_enabled",
	"hash_algorithm",
	"lru_maintainer_thread",
	"lru_segmented",
	"hot_lru_pct",
	"warm_lru_pct",
	"hot_max_factor",
	"warm_max_factor",
	"temp_lru",
	"temporary_ttl",
	"idle_timeout",
	"watcher_logbuf_size",
	"worker_logbuf_size",
	"read_buf_mem_limit",
	"track_sizes",
	"inline_ascii_response",
	"ext_item_size",
	"ext_item_age",
	"ext_low_ttl",
	"ext_recache_rate",
	"ext_wbuf_size",
	"ext_compact_under",
	"ext_drop_under",
	"ext_max_sleep",
	"ext_max_frag",
	"slab_automove_freeratio",
	"ext_drop_unread",
	"ssl_enabled",
	"ssl_chain_cert",
	"ssl_key",
	"ssl_verify_mode",
	"ssl_keyformat",
	"ssl_ciphers",
	"ssl_ca_cert",
	"ssl_wbuf_size",
	"ssl_session_cache",
	"ssl_kernel_tls",
	"ssl_min_version",
	"num_napi_ids",
	"memory_file",
};

/* in_order - every name is a "STAT name " line of s, in this order. */
static void in_order(const char *s, const char *const *names, size_t n)
{
	const char *at = s;

	for (size_t i = 0; i < n; i++) {
		char want[64];
		const char *hit;

		snprintf(want, sizeof(want), "STAT %s ", names[i]);
		hit = strstr(at, want);
		if (hit == NULL) {
			fail_msg("missing or out of order: %s", names[i]);
			return;
		}
		at = hit + strlen(want);
	}
}

/* stat_value - the value of STAT name in s, as a number. */
static unsigned long long stat_value(const char *s, const char *name)
{
	char want[128];
	const char *hit;
	int n = snprintf(want, sizeof(want), "STAT %s ", name);

	assert_true(n > 0 && (size_t)n < sizeof(want));
	hit = strstr(s, want);
	assert_non_null(hit);
	return strtoull(hit + strlen(want), NULL, 10);
}

static void test_every_memcached_field(void **state)
{
	struct fx *f = *state;
	const char *s;

	s = feed(f, "stats\r\n", 7);
	in_order(s, memcached_stats,
		 sizeof(memcached_stats) / sizeof(*memcached_stats));
	assert_non_null(strstr(s, "\r\nSTAT version 1.6.18\r\n"));
	assert_non_null(
		strstr(s, "\r\nSTAT shmkv_version 1.6.18\r\n")); /* ctx->version */
	assert_non_null(strstr(s, "\r\nSTAT accepting_conns 1\r\n"));
	s = feed(f, "stats settings\r\n", 16);
	in_order(s, memcached_settings,
		 sizeof(memcached_settings) / sizeof(*memcached_settings));
	assert_non_null(strstr(s, "\r\nSTAT shutdown_command no\r\n"));
	expect(f, "stats sizes\r\n", "STAT sizes_status disabled\r\nEND\r\n");
}

static void test_reset(void **state)
{
	struct fx *f = *state;
	const char *s;

	expect(f, "set a 0 0 1\r\n1\r\nget a\r\nget b\r\n",
	       "STORED\r\nVALUE a 0 1\r\n1\r\nEND\r\nEND\r\n");
	s = feed(f, "stats\r\n", 7);
	assert_int_equal(stat_value(s, "get_hits"), 1);
	expect(f, "stats reset\r\n", "RESET\r\n");
	s = feed(f, "stats\r\n", 7);
	assert_int_equal(stat_value(s, "get_hits"), 0);
	assert_int_equal(stat_value(s, "get_misses"), 0);
	assert_int_equal(stat_value(s, "cmd_set"), 0);
	assert_int_equal(stat_value(s, "curr_items"), 1); /* a gauge */
	expect(f, "stats reset now\r\n", "ERROR\r\n");
}

static void test_memlimit_and_shutdown(void **state)
{
	struct fx *f = *state;

	/* A parser on its own has no settings: no size to keep. */
	expect(f, "cache_memlimit 64\r\n",
	       "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust\r\n");
	expect(f, "cache_memlimit 7\r\n",
	       "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n");
	expect(f, "cache_memlimit 2000000000\r\n",
	       "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n");
	expect(f, "cache_memlimit abc\r\n", "ERROR\r\n");
	expect(f, "cache_memlimit\r\n", "ERROR\r\n");
	expect(f, "cache_memlimit 7 noreply\r\nmn\r\n", "MN\r\n");
	expect(f, "shutdown\r\n", "ERROR: shutdown not enabled\r\n");
	expect(f, "shutdown graceful\r\n", "ERROR: shutdown not enabled\r\n");
	expect(f, "shutdown a b\r\n", "ERROR\r\n");
}

/* The class (partition + 1) stats items puts the only item in. */
static unsigned only_class(struct fx *f)
{
	const char *s = feed(f, "stats items\r\n", 13);
	unsigned cls = 0;

	assert_int_equal(sscanf(s, "STAT items:%u:number 1\r\n", &cls), 1);
	return cls;
}

static void test_metadump(void **state)
{
	struct fx *f = *state;
	char want[256], all[512];
	const char *s;
	unsigned cls;
	long exp;

	expect(f, "set a%b 0 0 1\r\nx\r\n", "STORED\r\n");
	cls = only_class(f);
	s = feed(f, "lru_crawler metadump all\r\n", 26);
	assert_int_equal(strncmp(s, "key=a%25b exp=-1 la=", 20), 0);
	assert_non_null(strstr(s, " fetch=no cls="));
	snprintf(want, sizeof(want), " cls=%u size=28\r\nEND\r\n", cls);
	assert_non_null(strstr(s, want));
	/* Read since stored: fetch=yes; the same listing by class id. */
	expect(f, "get a%b\r\n", "VALUE a%b 0 1\r\nx\r\nEND\r\n");
	snprintf(want, sizeof(want), "lru_crawler metadump %u\r\n", cls);
	s = feed(f, want, strlen(want));
	assert_non_null(strstr(s, " fetch=yes "));
	snprintf(all, sizeof(all), "%s",
		 feed(f, "lru_crawler metadump all\r\n", 26));
	expect(f, "lru_crawler metadump hash\r\n", all);
	/* An expiry is absolute Unix time. */
	expect(f, "flush_all\r\nset t 0 1000 2\r\nab\r\n", "OK\r\nSTORED\r\n");
	s = feed(f, "lru_crawler metadump all\r\n", 26);
	assert_int_equal(sscanf(s, "key=t exp=%ld ", &exp), 1);
	assert_true(exp >= (long)time(NULL) + 990 &&
		    exp <= (long)time(NULL) + 1000);
	expect(f, "lru_crawler metadump 0\r\n", "CLIENT_ERROR bad class id\r\n");
	expect(f, "lru_crawler metadump 1,x\r\n",
	       "CLIENT_ERROR bad class id\r\n");
	expect(f, "lru_crawler metadump\r\n", "ERROR\r\n");
	expect(f, "lru_crawler crawl all\r\n", "ERROR\r\n");
	expect(f, "flush_all\r\nlru_crawler metadump all\r\n", "OK\r\nEND\r\n");
}

static void test_cachedump(void **state)
{
	struct fx *f = *state;
	char cmd[64];
	unsigned cls;

	expect(f, "set k 0 0 3\r\nabc\r\n", "STORED\r\n");
	cls = only_class(f);
	snprintf(cmd, sizeof(cmd), "stats cachedump %u 0\r\n", cls);
	expect(f, cmd, "ITEM k [3 b; 0 s]\r\nEND\r\n");
	snprintf(cmd, sizeof(cmd), "stats cachedump %u 1\r\n", cls);
	expect(f, cmd, "ITEM k [3 b; 0 s]\r\nEND\r\n");
	expect(f, "stats cachedump 99 0\r\n", "CLIENT_ERROR Illegal slab id\r\n");
	expect(f, "stats cachedump 1\r\n", "CLIENT_ERROR bad command line\r\n");
	expect(f, "stats cachedump x 0\r\n",
	       "CLIENT_ERROR bad command line format\r\n");
	/* An empty class, as memcached's, is just END. */
	snprintf(cmd, sizeof(cmd), "stats cachedump %u 0\r\n",
		 cls == 1 ? 2u : 1u);
	expect(f, cmd, "END\r\n");
}

static void test_items_and_slabs(void **state)
{
	struct fx *f = *state;
	char want[64];
	const char *s;
	unsigned cls;

	expect(f, "set k 0 0 3\r\nabc\r\n", "STORED\r\n");
	cls = only_class(f);
	s = feed(f, "stats items\r\n", 13);
	snprintf(want, sizeof(want), "STAT items:%u:age ", cls);
	assert_non_null(strstr(s, want));
	snprintf(want, sizeof(want), "STAT items:%u:hits_to_temp 0\r\n", cls);
	assert_non_null(strstr(s, want));
	/* age: how long the item it would evict next has been idle. */
	table_tick(&f->c.table, (uint32_t)time(NULL) + 100);
	s = feed(f, "stats items\r\n", 13);
	snprintf(want, sizeof(want), "items:%u:age", cls);
	assert_in_range(stat_value(s, want), 99, 101);
	expect(f, "get k\r\n", "VALUE k 0 3\r\nabc\r\nEND\r\n");
	s = feed(f, "stats items\r\n", 13);
	assert_in_range(stat_value(s, want), 0, 1);
	s = feed(f, "stats slabs\r\n", 13);
	snprintf(want, sizeof(want), "STAT %u:used_chunks 1\r\n", cls);
	assert_non_null(strstr(s, want));
	assert_non_null(strstr(s, "STAT active_slabs 1\r\n"));
}

/* A stats region in process memory, as a worker maps it, for f. */
static struct server_stats_view *with_region(struct fx *f)
{
	static struct server_stats_view view;
	size_t size = server_stats_region_size(1);
	void *base = calloc(1, size);

	assert_non_null(base);
	server_stats_view_init(&view, base, size, 1);
	assert_non_null(view.prefixes);
	f->ctx.all = &view;
	return &view;
}

/* The value of "STAT <cls>:<name>" (stats slabs) or "STAT items:<cls>:<name>". */
static unsigned long long class_value(const char *s, const char *prefix,
				      unsigned cls, const char *name)
{
	char want[96];

	snprintf(want, sizeof(want), "%s%u:%s", prefix, cls, name);
	return stat_value(s, want);
}

/* stats slabs' command counters are the partition's, counted where
 * memcached counts its class's (numbers checked against memcached 1.6.18:
 * tests/e2e/test_stats_counters.py). */
static void test_slabs_command_hits(void **state)
{
	struct fx *f = *state;
	char cmd[96], key[16] = "";
	unsigned long long cas, used;
	const char *s;
	unsigned cls;

	expect(f, "set x 0 0 1\r\n5\r\n", "STORED\r\n");
	cls = only_class(f);
	/* A second key in x's class, so that deleting it keeps the class. */
	for (unsigned i = 0; key[0] == '\0'; i++) {
		assert_true(i < 1000);
		snprintf(cmd, sizeof(cmd), "set d%u 0 0 1\r\n1\r\n", i);
		expect(f, cmd, "STORED\r\n");
		s = feed(f, "stats items\r\n", 13);
		if (class_value(s, "items:", cls, "number") == 2)
			snprintf(key, sizeof(key), "d%u", i);
	}
	expect(f, "incr x 2\r\ndecr x 1\r\nma x\r\nma x MD\r\nma v N0 J7\r\n",
	       "7\r\n6\r\nHD\r\nHD\r\nHD\r\n");
	expect(f, "touch x 100\r\ngat 100 x\r\nmg x T30 v\r\nmg x v\r\n",
	       "TOUCHED\r\nVALUE x 0 1\r\n6\r\nEND\r\nVA 1\r\n6\r\n"
	       "VA 1\r\n6\r\n");
	s = feed(f, "gets x\r\n", 8);
	assert_int_equal(sscanf(s, "VALUE x 0 1 %llu", &cas), 1);
	snprintf(cmd, sizeof(cmd), "cas x 0 0 1 %llu\r\n9\r\n", cas + 1000);
	expect(f, cmd, "EXISTS\r\n");
	snprintf(cmd, sizeof(cmd), "cas x 0 0 1 %llu\r\n8\r\n", cas);
	expect(f, cmd, "STORED\r\n");
	/* md I leaves the item stale: no delete hit, as in memcached. */
	snprintf(cmd, sizeof(cmd), "md x I\r\ndelete %s\r\n", key);
	expect(f, cmd, "HD\r\nDELETED\r\n");
	s = feed(f, "stats slabs\r\n", 13);
	assert_int_equal(class_value(s, "", cls, "get_hits"), 2);
	assert_int_equal(class_value(s, "", cls, "incr_hits"), 2);
	assert_int_equal(class_value(s, "", cls, "decr_hits"), 2);
	assert_int_equal(class_value(s, "", cls, "touch_hits"), 3);
	assert_int_equal(class_value(s, "", cls, "cas_hits"), 1);
	assert_int_equal(class_value(s, "", cls, "cas_badval"), 1);
	assert_int_equal(class_value(s, "", cls, "delete_hits"), 1);
	used = class_value(s, "", cls, "used_chunks");
	/* The server's totals agree: gat and mg T are touches, not gets,
	 * and the number ma N created is neither hit nor miss. */
	s = feed(f, "stats\r\n", 7);
	assert_int_equal(stat_value(s, "get_hits"), 2);
	assert_int_equal(stat_value(s, "touch_hits"), 3);
	assert_int_equal(stat_value(s, "cmd_touch"), 3);
	assert_int_equal(stat_value(s, "incr_hits"), 2);
	assert_int_equal(stat_value(s, "incr_misses"), 0);
	assert_int_equal(stat_value(s, "delete_hits"), 1);
	/* memcached's stats reset zeroes the per-class counters too. */
	expect(f, "stats reset\r\n", "RESET\r\n");
	s = feed(f, "stats slabs\r\n", 13);
	assert_int_equal(class_value(s, "", cls, "get_hits"), 0);
	assert_int_equal(class_value(s, "", cls, "touch_hits"), 0);
	assert_int_equal(class_value(s, "", cls, "delete_hits"), 0);
	assert_int_equal(class_value(s, "", cls, "cmd_set"), 0);
	assert_int_equal(class_value(s, "", cls, "used_chunks"), used);
}

/* get_expired and get_flushed: lookups that found their item expired or
 * flushed, once per item; `stats reset` starts them again from 0. */
static void test_get_expired_and_flushed(void **state)
{
	struct fx *f = *state;
	struct server_stats_view *view = with_region(f);
	const char *s;

	expect(f, "set e 0 1 1\r\n1\r\nset g 0 1 1\r\n1\r\nset k 0 0 1\r\n1\r\n",
	       "STORED\r\nSTORED\r\nSTORED\r\n");
	table_tick(&f->c.table, (uint32_t)time(NULL) + 5);
	expect(f, "get e\r\nget e\r\nincr g 1\r\n",
	       "END\r\nEND\r\nNOT_FOUND\r\n");
	expect(f, "flush_all\r\nmg k v\r\nmg k v\r\n", "OK\r\nEN\r\nEN\r\n");
	s = feed(f, "stats\r\n", 7);
	assert_int_equal(stat_value(s, "get_expired"), 2);
	assert_int_equal(stat_value(s, "get_flushed"), 1);
	/* Each also a miss, in this worker's slot. */
	assert_int_equal(f->stats->get_misses, 4);
	expect(f, "stats reset\r\n", "RESET\r\n");
	s = feed(f, "stats\r\n", 7);
	assert_int_equal(stat_value(s, "get_expired"), 0);
	assert_int_equal(stat_value(s, "get_flushed"), 0);
	expect(f, "set n 0 1 1\r\n1\r\n", "STORED\r\n");
	table_tick(&f->c.table, (uint32_t)time(NULL) + 10);
	expect(f, "touch n 10\r\n", "NOT_FOUND\r\n");
	s = feed(f, "stats\r\n", 7);
	assert_int_equal(stat_value(s, "get_expired"), 1);
	free(view->slots);
	f->ctx.all = NULL;
}

/* stats items' eviction fields, and stats' evicted_active their sum. */
static void test_items_evictions(void **state)
{
	struct fx *f = *state;
	static char big[256 * 1024 + 64];
	unsigned long long evicted = 0, active = 0, nonzero = 0;
	char line[64];
	const char *s;
	int n;

	/* 75 MiB of values in a 64 MiB cache of 16 partitions: evictions in
	 * most of them, of items with a TTL. */
	for (unsigned i = 0; i < 300; i++) {
		n = snprintf(big, sizeof(big), "set big%u 0 1000 %u\r\n", i,
			     256u * 1024u);
		memset(big + n, 'v', 256u * 1024u);
		memcpy(big + n + 256u * 1024u, "\r\n", 2);
		assert_string_equal(feed(f, big, (size_t)n + 256u * 1024u + 2),
				    "STORED\r\n");
	}
	s = feed(f, "stats items\r\n", 13);
	for (unsigned c = 1; c <= 16; c++) {
		snprintf(line, sizeof(line), "STAT items:%u:number ", c);
		if (strstr(s, line) == NULL)
			continue;
		assert_int_equal(class_value(s, "items:", c, "evicted_nonzero"),
				 class_value(s, "items:", c, "evicted"));
		assert_int_equal(class_value(s, "items:", c, "evicted_time"), 0);
		evicted += class_value(s, "items:", c, "evicted");
		nonzero += class_value(s, "items:", c, "evicted_nonzero");
		active += class_value(s, "items:", c, "evicted_active");
	}
	assert_true(evicted > 0);
	s = feed(f, "stats\r\n", 7);
	assert_int_equal(stat_value(s, "evictions"), evicted);
	assert_int_equal(stat_value(s, "evicted_active"), active);
	assert_int_equal(nonzero, evicted);
	expect(f, "stats reset\r\n", "RESET\r\n");
	s = feed(f, "stats items\r\n", 13);
	for (unsigned c = 1; c <= 16; c++) {
		snprintf(line, sizeof(line), "STAT items:%u:number ", c);
		if (strstr(s, line) == NULL)
			continue;
		assert_int_equal(class_value(s, "items:", c, "evicted"), 0);
		assert_int_equal(class_value(s, "items:", c, "evicted_nonzero"),
				 0);
	}
	assert_int_equal(stat_value(feed(f, "stats\r\n", 7), "evictions"), 0);
}

static void test_detail(void **state)
{
	struct fx *f = *state;
	struct server_stats_view *view = with_region(f);

	expect(f, "stats detail\r\n",
	       "CLIENT_ERROR usage: stats detail on|off|dump\r\n");
	expect(f, "get a:1\r\nstats detail dump\r\n", "END\r\nEND\r\n");
	expect(f, "stats detail on\r\n", "OK\r\n");
	assert_true(server_detail_enabled(view));
	expect(f,
	       "set a:1 0 0 1\r\nx\r\nget a:1 b:1 c\r\ndelete b:1\r\n"
	       "set a:2 0 0 1 noreply\r\ny\r\n",
	       "STORED\r\nVALUE a:1 0 1\r\nx\r\nEND\r\nNOT_FOUND\r\n");
	/* memcached's order: by MurmurHash3 bucket of the prefix. */
	expect(f, "stats detail dump\r\n",
	       "PREFIX b get 1 hit 0 set 0 del 1\r\n"
	       "PREFIX a get 1 hit 1 set 2 del 0\r\nEND\r\n");
	expect(f, "stats detail off\r\nget a:1\r\n",
	       "OK\r\nVALUE a:1 0 1\r\nx\r\nEND\r\n");
	assert_non_null(strstr(feed(f, "stats detail dump\r\n", 19),
			       "PREFIX a get 1 hit 1 set 2"));
	expect(f, "stats reset\r\nstats detail dump\r\n", "RESET\r\nEND\r\n");
	/* MurmurHash3_x86_32, seed 0: its published values. */
	assert_int_equal(server_detail_hash("", 0), 0);
	assert_int_equal(server_detail_hash("hello", 5), 0x248bfa47u);
	free(view->slots);
	f->ctx.all = NULL;
}

static void test_verbosity_is_the_servers(void **state)
{
	struct fx *f = *state;
	struct server_stats_view *view = with_region(f);

	assert_int_equal(server_verbosity(view, 1), 1);
	expect(f, "verbosity 5\r\n", "OK\r\n");
	/* Every worker reads it from the shared slot, whatever its own -v. */
	assert_int_equal(server_verbosity(view, 0), 2);
	expect(f, "verbosity 0 noreply\r\n", "");
	assert_int_equal(server_verbosity(view, 1), 0);
	free(view->slots);
	f->ctx.all = NULL;
}

static void test_no_cas_no_flush(void **state)
{
	struct fx *f = *state;
	struct server_settings set = { .cas_disabled = true,
				       .flush_disabled = true };

	f->ctx.settings = &set;
	expect(f, "set k 0 0 1\r\nv\r\ngets k\r\nmg k c\r\n",
	       "STORED\r\nVALUE k 0 1 0\r\nv\r\nEND\r\nHD c0\r\n");
	expect(f, "cas k 0 0 1 0\r\nw\r\nms k 1 C0\r\nw\r\n", "EXISTS\r\nEX\r\n");
	expect(f, "md k C1\r\nmd k C0\r\nmd k C0\r\n", "EX\r\nHD\r\nNF\r\n");
	expect(f, "flush_all\r\nflush_all noreply\r\n",
	       "CLIENT_ERROR flush_all not allowed\r\n");
	f->ctx.settings = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		T(test_every_memcached_field),
		T(test_reset),
		T(test_memlimit_and_shutdown),
		T(test_metadump),
		T(test_cachedump),
		T(test_items_and_slabs),
		T(test_detail),
		T(test_verbosity_is_the_servers),
		T(test_no_cas_no_flush),
		T(test_slabs_command_hits),
		T(test_get_expired_and_flushed),
		T(test_items_evictions),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
