/*
 * test_table_expiry.c - the table's notion of time (client/table.c)
 *
 * Expiry and flush_all are judged by the segment clock, which these tests
 * set, so that time is deterministic.  They pin down memcached's rules:
 * relative TTLs up to 30 days and absolute Unix times beyond, negative
 * TTLs that expire at once, touch and gat-style TTL changes, the fetched
 * flag and last-access time, and flush_all now, delayed, and with an
 * explicit CAS.
 *
 * The fixture (a fresh cache per test, clock at T0) is table_fixture.c.
 */
#include <stdio.h>
#include <string.h>

#include "table_fixture.h"

/* ---- expiry ----------------------------------------------------------- */

static void test_expiry_relative_and_never(void **state)
{
	struct table *t = tbl(state);
	struct table_item_info info;
	char buf[16];

	assert_status(set_str(t, "ttl10", "x", 0, 10), TABLE_OK);
	assert_status(set_str(t, "forever", "y", 0, 0), TABLE_OK);
	assert_status(get_str(t, "ttl10", buf, sizeof(buf), &info), TABLE_OK);
	assert_int_equal(info.exptime, T0 + 10);

	set_clock(state, T0 + 9);
	assert_status(exists(t, "ttl10"), TABLE_OK);
	set_clock(state, T0 + 10);
	assert_status(exists(t, "ttl10"), TABLE_NOT_FOUND);
	/* An expired item behaves as missing for every command. */
	assert_status(store_mode(t, TABLE_APPEND, "ttl10", "z", 1, 0, 0, NULL),
		      TABLE_NOT_STORED);
	assert_status(table_delete(t, "ttl10", 5, NULL), TABLE_NOT_FOUND);

	set_clock(state, T0 + 100000000u);
	assert_status(exists(t, "forever"), TABLE_OK);
}

static void test_expiry_negative_and_absolute(void **state)
{
	struct table *t = tbl(state);
	struct table_item_info info;
	char buf[16];

	assert_status(set_str(t, "neg", "x", 0, -1), TABLE_OK);
	assert_status(exists(t, "neg"), TABLE_NOT_FOUND);
	/* A negative TTL on an existing key removes what was there. */
	assert_status(set_str(t, "was", "x", 0, 0), TABLE_OK);
	assert_status(set_str(t, "was", "y", 0, -1), TABLE_OK);
	assert_status(exists(t, "was"), TABLE_NOT_FOUND);

	assert_status(set_str(t, "abs", "x", 0, (int64_t)T0 + 100), TABLE_OK);
	assert_status(get_str(t, "abs", buf, sizeof(buf), &info), TABLE_OK);
	assert_int_equal(info.exptime, T0 + 100);
	set_clock(state, T0 + 99);
	assert_status(exists(t, "abs"), TABLE_OK);
	set_clock(state, T0 + 100);
	assert_status(exists(t, "abs"), TABLE_NOT_FOUND);

	/* Exactly 30 days is still relative; one more second is absolute
	 * (1970 here), so already expired. */
	set_clock(state, T0);
	assert_status(set_str(t, "30d", "x", 0, TABLE_RELATIVE_EXPTIME_MAX),
		      TABLE_OK);
	assert_status(exists(t, "30d"), TABLE_OK);
	assert_status(set_str(t, "30d+1", "x", 0, TABLE_RELATIVE_EXPTIME_MAX + 1),
		      TABLE_OK);
	assert_status(exists(t, "30d+1"), TABLE_NOT_FOUND);
}

static void test_exptime_conversion(void **state)
{
	struct table *t = tbl(state);
	uint32_t e;

	assert_int_equal(table_exptime(t, 0), 0);
	assert_int_equal(table_exptime(t, 1), T0 + 1);
	assert_int_equal(table_exptime(t, 10), T0 + 10);
	assert_int_equal(table_exptime(t, TABLE_RELATIVE_EXPTIME_MAX),
			 T0 + TABLE_RELATIVE_EXPTIME_MAX);
	assert_int_equal(table_exptime(t, (int64_t)T0 + 100), T0 + 100);

	/* Already expired: in the past, but not 0, which means "never". */
	e = table_exptime(t, -1);
	assert_true(e != 0 && e <= T0);
	e = table_exptime(t, -1000000);
	assert_true(e != 0 && e <= T0);
	e = table_exptime(t, TABLE_RELATIVE_EXPTIME_MAX + 1);
	assert_true(e != 0 && e <= T0);

	/* Judged by the segment clock, not the wall clock. */
	set_clock(state, T0 + 500);
	assert_int_equal(table_exptime(t, 10), T0 + 510);
}

static void test_touch(void **state)
{
	struct table *t = tbl(state);
	struct table_get_opts o;
	struct table_item_info info;

	memset(&o, 0, sizeof(o));
	o.touch = true;

	o.exptime = 100;
	assert_status(get_opts(t, "none", &o, &info), TABLE_NOT_FOUND);

	/* Extend: ttl 10 at T0, touched at T0+5 to 100. */
	assert_status(set_str(t, "ext", "v", 3, 10), TABLE_OK);
	set_clock(state, T0 + 5);
	assert_status(get_opts(t, "ext", &o, &info), TABLE_OK);
	assert_int_equal(info.exptime, T0 + 105);
	assert_int_equal(info.flags, 3);
	set_clock(state, T0 + 104);
	assert_status(exists(t, "ext"), TABLE_OK);
	set_clock(state, T0 + 105);
	assert_status(exists(t, "ext"), TABLE_NOT_FOUND);

	/* Shorten: ttl 1000, touched to 5. */
	set_clock(state, T0);
	assert_status(set_str(t, "short", "v", 0, 1000), TABLE_OK);
	o.exptime = 5;
	assert_status(get_opts(t, "short", &o, &info), TABLE_OK);
	set_clock(state, T0 + 4);
	assert_status(exists(t, "short"), TABLE_OK);
	set_clock(state, T0 + 5);
	assert_status(exists(t, "short"), TABLE_NOT_FOUND);

	/* Touch to 0: never expires. */
	set_clock(state, T0);
	assert_status(set_str(t, "keep", "v", 0, 10), TABLE_OK);
	o.exptime = 0;
	assert_status(get_opts(t, "keep", &o, &info), TABLE_OK);
	set_clock(state, T0 + 1000000);
	assert_status(exists(t, "keep"), TABLE_OK);

	/* Touching an expired item does not revive it. */
	set_clock(state, T0);
	assert_status(set_str(t, "dead", "v", 0, 10), TABLE_OK);
	set_clock(state, T0 + 10);
	o.exptime = 100;
	assert_status(get_opts(t, "dead", &o, &info), TABLE_NOT_FOUND);
}

static void test_fetched_and_last_access(void **state)
{
	struct table *t = tbl(state);
	struct table_get_opts peek;
	struct table_item_info info;

	memset(&peek, 0, sizeof(peek));
	peek.no_bump = true;

	assert_status(set_str(t, "h", "v", 0, 0), TABLE_OK);
	set_clock(state, T0 + 7);
	/* mg u: look without counting as a fetch or an access. */
	assert_status(get_opts(t, "h", &peek, &info), TABLE_OK);
	assert_false(info.fetched);
	assert_int_equal(info.last_access, 7);
	/* mg h: the first real fetch reports "not fetched before"... */
	assert_status(get_opts(t, "h", NULL, &info), TABLE_OK);
	assert_false(info.fetched);
	assert_int_equal(info.last_access, 7);
	/* ...and every later one "fetched", with the access time renewed. */
	set_clock(state, T0 + 10);
	assert_status(get_opts(t, "h", &peek, &info), TABLE_OK);
	assert_true(info.fetched);
	assert_int_equal(info.last_access, 3);
	/* A new value starts unfetched. */
	assert_status(set_str(t, "h", "w", 0, 0), TABLE_OK);
	assert_status(get_opts(t, "h", NULL, &info), TABLE_OK);
	assert_false(info.fetched);
	assert_int_equal(info.last_access, 0);
}

/* ---- flush_all -------------------------------------------------------- */

static void test_flush_now(void **state)
{
	struct table *t = tbl(state);
	char key[32];

	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "f%d", i);
		assert_status(set_str(t, key, "v", 0, 0), TABLE_OK);
	}
	table_flush(t, 0);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "f%d", i);
		assert_status(exists(t, key), TABLE_NOT_FOUND);
	}
	/* Stored after the flush within the same second: visible. */
	assert_status(set_str(t, "after", "v", 0, 0), TABLE_OK);
	assert_status(exists(t, "after"), TABLE_OK);
	/* A flushed key can be added again. */
	assert_status(store_mode(t, TABLE_ADD, "f1", "w", 1, 0, 0, NULL),
		      TABLE_OK);
	assert_value(t, "f1", "w");
	assert_status(exists(t, "f2"), TABLE_NOT_FOUND);

	/* Later seconds do not bring flushed items back or flush new ones. */
	table_tick(t, T0 + 1);
	assert_status(exists(t, "f2"), TABLE_NOT_FOUND);
	assert_status(exists(t, "after"), TABLE_OK);
	assert_value(t, "f1", "w");
}

static void test_flush_delayed(void **state)
{
	struct table *t = tbl(state);

	assert_status(set_str(t, "a", "v", 0, 0), TABLE_OK);
	assert_status(set_str(t, "b", "v", 0, 0), TABLE_OK);
	table_flush(t, 5);
	assert_status(exists(t, "a"), TABLE_OK);

	/* Stored between the command and its time: flushed as well. */
	table_tick(t, T0 + 2);
	assert_status(set_str(t, "c", "v", 0, 0), TABLE_OK);

	table_tick(t, T0 + 4);
	assert_status(exists(t, "a"), TABLE_OK);
	assert_status(exists(t, "b"), TABLE_OK);
	assert_status(exists(t, "c"), TABLE_OK);

	table_tick(t, T0 + 5);
	assert_status(exists(t, "a"), TABLE_NOT_FOUND);
	assert_status(exists(t, "b"), TABLE_NOT_FOUND);
	assert_status(exists(t, "c"), TABLE_NOT_FOUND);

	assert_status(set_str(t, "d", "v", 0, 0), TABLE_OK);
	assert_status(exists(t, "d"), TABLE_OK);
	/* The flush happened once; it does not keep eating new items. */
	table_tick(t, T0 + 6);
	assert_status(exists(t, "d"), TABLE_OK);
	table_tick(t, T0 + 100);
	assert_status(exists(t, "d"), TABLE_OK);
}

static void test_flush_explicit_cas(void **state)
{
	struct table *t = tbl(state);
	uint64_t out = 0;

	/* ms E lets a client pick any CAS, e.g. one from another server's
	 * clock or version counter: far above this table's own counter. */
	struct table_store_req req = {
		.mode = TABLE_SET,
		.key = "e-high",
		.key_len = 6,
		.value = "x",
		.value_len = 1,
		.new_cas = UINT64_C(1) << 60,
	};
	assert_status(table_store(t, &req, &out), TABLE_OK);
	assert_true(out == UINT64_C(1) << 60);
	assert_status(set_str(t, "plain", "x", 0, 0), TABLE_OK);

	/* flush_all invalidates every item stored before it, whatever its
	 * CAS; memcached judges by the time the item was stored. */
	table_flush(t, 0);
	assert_status(exists(t, "plain"), TABLE_NOT_FOUND);
	assert_status(exists(t, "e-high"), TABLE_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_expiry_relative_and_never),
		T(test_expiry_negative_and_absolute),
		T(test_exptime_conversion),
		T(test_touch),
		T(test_fetched_and_last_access),
		T(test_flush_now),
		T(test_flush_delayed),
		T(test_flush_explicit_cas),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
