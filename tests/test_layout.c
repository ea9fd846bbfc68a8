/*
 * test_layout.c - the shared structs may change only with the layout version
 *
 * A memory file outlives the server that made it (server/memory_file.c),
 * and client programs map the segment of a server built apart from them:
 * both trust SEGMENT_LAYOUT_VERSION to say that every struct in shared
 * memory is laid out alike.  This test holds the version to the layout:
 * it records the size of each shared struct, the offset and size of each
 * field, and the constants that shape the segment, for the current
 * version.  Change any of them without bumping SEGMENT_LAYOUT_VERSION and
 * it fails; bump the version without recording the new layout and it fails
 * too.  On failure it prints the table as it now is, ready to paste.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lwlock.h"
#include "proc.h"
#include "segment.h"
#include "stats.h"
#include "table_internal.h"

struct layout_entry {
	const char *name;
	uint64_t a; /* offset, size of a struct, or a constant's value */
	uint64_t b; /* size of a field, else 0 */
};

#define SHARED_LAYOUT(SIZE, FIELD, CONST) \
	SIZE(struct segment_settings) \
	FIELD(struct segment_settings, memory) \
	FIELD(struct segment_settings, partitions) \
	FIELD(struct segment_settings, max_item_size) \
	FIELD(struct segment_settings, item_size_hint) \
	FIELD(struct segment_settings, max_procs) \
	FIELD(struct segment_settings, extra_ctl_bytes) \
	FIELD(struct segment_settings, port) \
	FIELD(struct segment_settings, reserved) \
	FIELD(struct segment_settings, run_dir_hash) \
	FIELD(struct segment_settings, run_dir) \
	SIZE(struct segment_dir_entry) \
	FIELD(struct segment_dir_entry, name) \
	FIELD(struct segment_dir_entry, part) \
	FIELD(struct segment_dir_entry, reserved) \
	FIELD(struct segment_dir_entry, offset) \
	FIELD(struct segment_dir_entry, size) \
	SIZE(struct segment_header) \
	FIELD(struct segment_header, magic) \
	FIELD(struct segment_header, layout_version) \
	FIELD(struct segment_header, header_size) \
	FIELD(struct segment_header, creator_pid) \
	FIELD(struct segment_header, dir_capacity) \
	FIELD(struct segment_header, data_size) \
	FIELD(struct segment_header, ctl_size) \
	FIELD(struct segment_header, free_offset) \
	FIELD(struct segment_header, ctl_free_offset) \
	FIELD(struct segment_header, dir_offset) \
	FIELD(struct segment_header, dir_count) \
	FIELD(struct segment_header, huge) \
	FIELD(struct segment_header, page_size) \
	FIELD(struct segment_header, rundir_dev) \
	FIELD(struct segment_header, rundir_ino) \
	FIELD(struct segment_header, clock) \
	FIELD(struct segment_header, state) \
	FIELD(struct segment_header, backing) \
	FIELD(struct segment_header, clean_stop) \
	FIELD(struct segment_header, settings) \
	SIZE(struct segment_ctl_header) \
	FIELD(struct segment_ctl_header, magic) \
	FIELD(struct segment_ctl_header, layout_version) \
	FIELD(struct segment_ctl_header, reserved) \
	FIELD(struct segment_ctl_header, size) \
	SIZE(struct table_header) \
	FIELD(struct table_header, magic) \
	FIELD(struct table_header, npartitions) \
	FIELD(struct table_header, nbuckets) \
	FIELD(struct table_header, noverflow) \
	FIELD(struct table_header, max_item_size) \
	FIELD(struct table_header, arena_size) \
	FIELD(struct table_header, region_size) \
	FIELD(struct table_header, partitions_offset) \
	FIELD(struct table_header, ctl_offset) \
	FIELD(struct table_header, used_offset) \
	FIELD(struct table_header, used_stride) \
	FIELD(struct table_header, next_cas) \
	FIELD(struct table_header, flush_cas) \
	FIELD(struct table_header, flush_at) \
	FIELD(struct table_header, reserved) \
	SIZE(struct table_partition) \
	FIELD(struct table_partition, seq) \
	FIELD(struct table_partition, free_overflow) \
	FIELD(struct table_partition, buckets_offset) \
	FIELD(struct table_partition, arena_offset) \
	FIELD(struct table_partition, head) \
	FIELD(struct table_partition, tail) \
	FIELD(struct table_partition, used) \
	FIELD(struct table_partition, dead_bytes) \
	FIELD(struct table_partition, items) \
	FIELD(struct table_partition, bytes) \
	FIELD(struct table_partition, evictions) \
	FIELD(struct table_partition, expirations) \
	FIELD(struct table_partition, reinserted) \
	FIELD(struct table_partition, total_items) \
	FIELD(struct table_partition, evicted_unfetched) \
	FIELD(struct table_partition, expired_unfetched) \
	FIELD(struct table_partition, outofmemory) \
	FIELD(struct table_partition, get_expired) \
	FIELD(struct table_partition, get_flushed) \
	FIELD(struct table_partition, evicted_nonzero) \
	FIELD(struct table_partition, evicted_active) \
	FIELD(struct table_partition, evicted_time) \
	FIELD(struct table_partition, delete_hits) \
	FIELD(struct table_partition, incr_hits) \
	FIELD(struct table_partition, decr_hits) \
	FIELD(struct table_partition, cas_hits) \
	FIELD(struct table_partition, cas_badval) \
	FIELD(struct table_partition, touch_hits) \
	FIELD(struct table_partition, reserved) \
	SIZE(struct table_bucket) \
	FIELD(struct table_bucket, tags) \
	FIELD(struct table_bucket, refs) \
	FIELD(struct table_bucket, next) \
	SIZE(union table_partition_ctl) \
	FIELD(union table_partition_ctl, c.lock) \
	FIELD(union table_partition_ctl, c.hits) \
	FIELD(union table_partition_ctl, c.misses) \
	SIZE(struct table_item) \
	FIELD(struct table_item, value_len) \
	FIELD(struct table_item, flags) \
	FIELD(struct table_item, exptime) \
	FIELD(struct table_item, cas_lo) \
	FIELD(struct table_item, cas_hi) \
	FIELD(struct table_item, key_len) \
	FIELD(struct table_item, state) \
	FIELD(struct table_item, atime) \
	SIZE(struct lwlock) \
	FIELD(struct lwlock, state) \
	FIELD(struct lwlock, wait_head) \
	FIELD(struct lwlock, wait_tail) \
	FIELD(struct lwlock, waitlist_owner) \
	FIELD(struct lwlock, acquisitions) \
	FIELD(struct lwlock, contended) \
	FIELD(struct lwlock, wait_ns) \
	SIZE(struct proc_held_lock) \
	FIELD(struct proc_held_lock, lock_offset) \
	FIELD(struct proc_held_lock, mode) \
	SIZE(struct proc) \
	FIELD(struct proc, pid) \
	FIELD(struct proc, waiting) \
	FIELD(struct proc, wait_mode) \
	FIELD(struct proc, wait_next) \
	FIELD(struct proc, acquiring) \
	FIELD(struct proc, nheld) \
	FIELD(struct proc, held) \
	FIELD(struct proc, hits) \
	FIELD(struct proc, misses) \
	FIELD(struct proc, wait_sleep) \
	FIELD(struct proc, spare) \
	FIELD(struct proc, start_time) \
	SIZE(union proc_padded) \
	FIELD(union proc_padded, proc) \
	SIZE(struct proc_array) \
	FIELD(struct proc_array, count) \
	FIELD(struct proc_array, reserved) \
	FIELD(struct proc_array, slots[0]) \
	SIZE(struct server_stats) \
	FIELD(struct server_stats, curr_connections) \
	FIELD(struct server_stats, total_connections) \
	FIELD(struct server_stats, rejected_connections) \
	FIELD(struct server_stats, cmd_get) \
	FIELD(struct server_stats, cmd_set) \
	FIELD(struct server_stats, cmd_flush) \
	FIELD(struct server_stats, cmd_touch) \
	FIELD(struct server_stats, get_hits) \
	FIELD(struct server_stats, get_misses) \
	FIELD(struct server_stats, delete_hits) \
	FIELD(struct server_stats, delete_misses) \
	FIELD(struct server_stats, incr_hits) \
	FIELD(struct server_stats, incr_misses) \
	FIELD(struct server_stats, decr_hits) \
	FIELD(struct server_stats, decr_misses) \
	FIELD(struct server_stats, cas_hits) \
	FIELD(struct server_stats, cas_misses) \
	FIELD(struct server_stats, cas_badval) \
	FIELD(struct server_stats, touch_hits) \
	FIELD(struct server_stats, touch_misses) \
	FIELD(struct server_stats, bytes_read) \
	FIELD(struct server_stats, bytes_written) \
	FIELD(struct server_stats, worker_restarts) \
	FIELD(struct server_stats, store_too_large) \
	FIELD(struct server_stats, store_no_memory) \
	FIELD(struct server_stats, cmd_meta) \
	FIELD(struct server_stats, direct_get_hits) \
	FIELD(struct server_stats, direct_get_misses) \
	FIELD(struct server_stats, crash_recoveries) \
	FIELD(struct server_stats, locks_recovered) \
	FIELD(struct server_stats, partitions_dropped) \
	FIELD(struct server_stats, listen_disabled_num) \
	FIELD(struct server_stats, idle_kicks) \
	FIELD(struct server_stats, verbosity_set) \
	FIELD(struct server_stats, detail_on) \
	FIELD(struct server_stats, reserved) \
	SIZE(struct server_prefix) \
	FIELD(struct server_prefix, state) \
	FIELD(struct server_prefix, len) \
	FIELD(struct server_prefix, seq) \
	FIELD(struct server_prefix, gets) \
	FIELD(struct server_prefix, hits) \
	FIELD(struct server_prefix, sets) \
	FIELD(struct server_prefix, dels) \
	FIELD(struct server_prefix, prefix) \
	SIZE(struct server_prefix_table) \
	FIELD(struct server_prefix_table, next_seq) \
	FIELD(struct server_prefix_table, rec) \
	SIZE(struct server_conn_record) \
	FIELD(struct server_conn_record, owner) \
	FIELD(struct server_conn_record, seq) \
	FIELD(struct server_conn_record, worker) \
	FIELD(struct server_conn_record, state) \
	FIELD(struct server_conn_record, last_cmd) \
	FIELD(struct server_conn_record, addr) \
	FIELD(struct server_conn_record, listen_addr) \
	CONST(SERVER_CONN_RECORDS) \
	CONST(SERVER_PREFIX_RECORDS) \
	CONST(SEGMENT_MAGIC) \
	CONST(SEGMENT_CTL_MAGIC) \
	CONST(SEGMENT_ALIGN) \
	CONST(SEGMENT_NAME_MAX) \
	CONST(SEGMENT_DIR_CAPACITY) \
	CONST(TABLE_MAGIC) \
	CONST(TABLE_BUCKET_SLOTS) \
	CONST(TABLE_ITEM_ALIGN) \
	CONST(TABLE_REF_UNIT) \
	CONST(LWLOCK_PADDED_SIZE) \
	CONST(PROC_MAX_HELD) \
	CONST(PROC_SLOT_SIZE) \
	CONST(LW_FLAG_HAS_WAITERS) \
	CONST(LW_FLAG_RELEASE_OK) \
	CONST(LW_FLAG_LOCKED) \
	CONST(LW_FLAG_RECOVERING) \
	CONST(LW_VAL_EXCLUSIVE) \
	CONST(ITEM_LIVE) \
	CONST(ITEM_DEAD) \
	CONST(ITEM_PAD) \
	CONST(ITEM_FETCHED) \
	CONST(ITEM_STALE) \
	CONST(ITEM_TOKEN_SENT) \
	CONST(ITEM_MISS_COUNTED)

#define AS_SIZE(t) { #t, sizeof(t), 0 },
#define AS_FIELD(t, f) { #t "." #f, offsetof(t, f), sizeof(((t *)0)->f) },
#define AS_CONST(c) { #c, (uint64_t)(c), 0 },

static const struct layout_entry actual[] = { SHARED_LAYOUT(AS_SIZE, AS_FIELD,
							    AS_CONST) };

/* The layout of version RECORDED_VERSION, as the test printed it. */
#define RECORDED_VERSION 7u
static const struct layout_entry recorded[] = {
#include "test_layout_v7.inc"
};

static void print_actual(void)
{
	fprintf(stderr, "the layout now (for tests/test_layout_vN.inc):\n");
	for (size_t i = 0; i < sizeof(actual) / sizeof(actual[0]); i++)
		fprintf(stderr, "\t{ \"%s\", %" PRIu64 "u, %" PRIu64 "u },\n",
			actual[i].name, actual[i].a, actual[i].b);
}

static void test_layout_matches_its_version(void **state)
{
	size_t n = sizeof(actual) / sizeof(actual[0]);
	bool same = n == sizeof(recorded) / sizeof(recorded[0]);

	(void)state;
	for (size_t i = 0; same && i < n; i++)
		same = strcmp(actual[i].name, recorded[i].name) == 0 &&
		       actual[i].a == recorded[i].a &&
		       actual[i].b == recorded[i].b;
	if (SEGMENT_LAYOUT_VERSION != RECORDED_VERSION) {
		print_actual();
		fail_msg("SEGMENT_LAYOUT_VERSION is %u but the recorded layout is "
			 "version %u's: record the new version's layout (above) in "
			 "tests/test_layout_v%u.inc and include it",
			 SEGMENT_LAYOUT_VERSION, RECORDED_VERSION,
			 SEGMENT_LAYOUT_VERSION);
	}
	if (!same) {
		print_actual();
		for (size_t i = 0;
		     i < n && i < sizeof(recorded) / sizeof(recorded[0]); i++)
			if (strcmp(actual[i].name, recorded[i].name) != 0 ||
			    actual[i].a != recorded[i].a ||
			    actual[i].b != recorded[i].b) {
				fprintf(stderr,
					"first difference: %s (recorded %s)\n",
					actual[i].name, recorded[i].name);
				break;
			}
		fail_msg("a shared struct or constant changed but SEGMENT_LAYOUT_VERSION "
			 "is still %u: bump it (client/segment.h) and record the new "
			 "layout (above)",
			 SEGMENT_LAYOUT_VERSION);
	}
}

/* The version must sit where every version has had it: a server reads it
 * there before it trusts anything else in a memory file. */
static void test_version_is_where_every_version_has_it(void **state)
{
	(void)state;
	assert_int_equal(offsetof(struct segment_header, magic), 0);
	assert_int_equal(offsetof(struct segment_header, layout_version), 8);
	assert_int_equal(offsetof(struct segment_ctl_header, layout_version), 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_matches_its_version),
		cmocka_unit_test(test_version_is_where_every_version_has_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
