/*
 * test_table_meta.c - the meta protocol's options in the table (client/table.c)
 *
 * The meta commands (mg, ms, md, ma) add options that plain memcached
 * commands lack: vivify on miss (N), recache when the TTL runs low (R),
 * invalidate instead of delete (I) with the stale and win flags that let
 * exactly one client refresh an item, append with vivify, CAS given
 * explicitly on store, and arithmetic that creates its key.  These tests
 * pin down the flags and outcomes the protocol layer turns into replies.
 *
 * The fixture (a fresh cache per test, clock at T0) is table_fixture.c.
 */
#include <stdio.h>
#include <string.h>

#include "table_fixture.h"

/* ---- meta options ----------------------------------------------------- */

static void test_meta_vivify(void **state)
{
	struct table *t = tbl(state);
	struct table_get_opts o;
	struct table_item_info info;

	memset(&o, 0, sizeof(o));
	o.vivify = true;
	o.vivify_exptime = 30;
	o.win = true;

	/* mg N on a miss: an empty stub, and this caller wins ("VA 0 W"). */
	assert_status(get_opts(t, "viv", &o, &info), TABLE_OK);
	assert_true(info.won);
	assert_true(info.vivified);
	assert_false(info.token_sent);
	assert_int_equal(info.value_len, 0);

	/* Everyone after sees Z and does not win. */
	assert_status(get_opts(t, "viv", &o, &info), TABLE_OK);
	assert_false(info.won);
	assert_true(info.token_sent);
	assert_false(info.vivified);
	assert_status(get_opts(t, "viv", NULL, &info), TABLE_OK);
	assert_false(info.won);
	assert_true(info.token_sent);

	/* The stub has the TTL given with N. */
	set_clock(state, T0 + 29);
	assert_status(exists(t, "viv"), TABLE_OK);
	set_clock(state, T0 + 30);
	assert_status(exists(t, "viv"), TABLE_NOT_FOUND);

	/* The winner's set replaces the stub: no token any more. */
	set_clock(state, T0);
	assert_status(get_opts(t, "viv2", &o, &info), TABLE_OK);
	assert_true(info.won);
	assert_status(set_str(t, "viv2", "real", 0, 0), TABLE_OK);
	assert_status(get_opts(t, "viv2", &o, &info), TABLE_OK);
	assert_int_equal(info.value_len, 4);
	assert_false(info.won);
	assert_false(info.token_sent);
	assert_false(info.vivified);
}

static void test_meta_recache(void **state)
{
	struct table *t = tbl(state);
	struct table_get_opts o;
	struct table_item_info info;

	memset(&o, 0, sizeof(o));
	o.recache = true;
	o.recache_below = 30;
	o.win = true;

	assert_status(set_str(t, "rc", "v", 0, 100), TABLE_OK);
	set_clock(state, T0 + 10); /* 90 s left: no win */
	assert_status(get_opts(t, "rc", &o, &info), TABLE_OK);
	assert_false(info.won);
	assert_false(info.token_sent);

	set_clock(state, T0 + 80); /* 20 s left: one winner */
	assert_status(get_opts(t, "rc", &o, &info), TABLE_OK);
	assert_true(info.won);
	assert_status(get_opts(t, "rc", &o, &info), TABLE_OK);
	assert_false(info.won);
	assert_true(info.token_sent);

	/* An item that never expires never needs recaching. */
	assert_status(set_str(t, "rc0", "v", 0, 0), TABLE_OK);
	assert_status(get_opts(t, "rc0", &o, &info), TABLE_OK);
	assert_false(info.won);
}

static void test_meta_invalidate(void **state)
{
	struct table *t = tbl(state);
	struct table_delete_opts d;
	struct table_item_info info;
	char buf[32];
	uint64_t cas1 = 0;

	assert_status(store_mode(t, TABLE_SET, "inv", "old", 3, 0, 0, &cas1),
		      TABLE_OK);
	memset(&d, 0, sizeof(d));
	d.invalidate = true;
	assert_status(table_delete(t, "inv", 3, &d), TABLE_OK);

	/* md I: still there, stale, with a new CAS; a plain get (memcached's
	 * text get) takes no token, the first fetcher that may win does. */
	struct table_get_opts mg = { .win = true };

	memset(&info, 0, sizeof(info));
	assert_status(table_get(t, "inv", 3, NULL, buf, sizeof(buf), &info),
		      TABLE_OK);
	assert_int_equal(info.value_len, 3);
	assert_memory_equal(buf, "old", 3);
	assert_true(info.stale);
	assert_false(info.won);
	assert_false(info.token_sent);
	assert_true(info.cas != cas1);
	assert_status(get_opts(t, "inv", &mg, &info), TABLE_OK);
	assert_true(info.won);
	assert_status(get_opts(t, "inv", &mg, &info), TABLE_OK);
	assert_true(info.stale);
	assert_false(info.won);
	assert_true(info.token_sent);

	/* ms I with a CAS older than the item's: stored, but still stale. */
	struct table_store_req req = {
		.mode = TABLE_SET,
		.key = "inv",
		.key_len = 3,
		.value = "late",
		.value_len = 4,
		.compare_cas = true,
		.cas = cas1,
		.invalidate = true,
	};
	assert_status(table_store(t, &req, NULL), TABLE_OK);
	assert_status(get_str(t, "inv", buf, sizeof(buf), &info), TABLE_OK);
	assert_string_equal(buf, "late");
	assert_true(info.stale);

	/* Without I an old CAS is just a mismatch. */
	req.invalidate = false;
	req.value = "nope";
	assert_status(table_store(t, &req, NULL), TABLE_EXISTS);

	/* A plain set makes it fresh again. */
	assert_status(set_str(t, "inv", "new", 0, 0), TABLE_OK);
	assert_status(get_str(t, "inv", buf, sizeof(buf), &info), TABLE_OK);
	assert_string_equal(buf, "new");
	assert_false(info.stale);
	assert_false(info.won);
	assert_false(info.token_sent);

	assert_status(table_delete(t, "missing", 7, &d), TABLE_NOT_FOUND);

	/* md I T: the stale item gets the TTL given. */
	assert_status(set_str(t, "inv-ttl", "v", 0, 0), TABLE_OK);
	d.touch = true;
	d.exptime = 30;
	assert_status(table_delete(t, "inv-ttl", 7, &d), TABLE_OK);
	assert_status(get_opts(t, "inv-ttl", NULL, &info), TABLE_OK);
	assert_true(info.stale);
	assert_int_equal(info.exptime, T0 + 30);
	set_clock(state, T0 + 30);
	assert_status(exists(t, "inv-ttl"), TABLE_NOT_FOUND);
}

static void test_meta_append_vivify(void **state)
{
	struct table *t = tbl(state);
	struct table_item_info info;
	char buf[32];
	struct table_store_req req = {
		.mode = TABLE_APPEND,
		.key = "av",
		.key_len = 2,
		.value = "abc",
		.value_len = 3,
		.flags = 9,
		.exptime = 1000,
		.vivify = true,
		.vivify_exptime = 20,
	};

	/* ms MA N: on a miss the append creates the item, with N's TTL. */
	assert_status(table_store(t, &req, NULL), TABLE_OK);
	assert_status(get_str(t, "av", buf, sizeof(buf), &info), TABLE_OK);
	assert_string_equal(buf, "abc");
	assert_int_equal(info.exptime, T0 + 20);
	/* On a hit it is an ordinary append. */
	req.value = "def";
	assert_status(table_store(t, &req, NULL), TABLE_OK);
	assert_value(t, "av", "abcdef");
	assert_status(get_opts(t, "av", NULL, &info), TABLE_OK);
	assert_int_equal(info.exptime, T0 + 20);
	set_clock(state, T0 + 20);
	assert_status(exists(t, "av"), TABLE_NOT_FOUND);
}

/* An append or prepend with a CAS to compare, on a missing key, is
 * NOT_STORED as without one (memcached's NS), vivify or not. */
static void test_meta_concat_cas_missing(void **state)
{
	struct table *t = tbl(state);
	struct table_store_req req = {
		.mode = TABLE_APPEND,
		.key = "cm",
		.key_len = 2,
		.value = "abc",
		.value_len = 3,
		.compare_cas = true,
		.cas = 5,
	};

	assert_status(table_store(t, &req, NULL), TABLE_NOT_STORED);
	req.mode = TABLE_PREPEND;
	assert_status(table_store(t, &req, NULL), TABLE_NOT_STORED);
	req.vivify = true;
	assert_status(table_store(t, &req, NULL), TABLE_NOT_STORED);
	assert_status(exists(t, "cm"), TABLE_NOT_FOUND);
	/* A CAS store of a missing key is still NOT_FOUND. */
	req.mode = TABLE_CAS;
	req.vivify = false;
	assert_status(table_store(t, &req, NULL), TABLE_NOT_FOUND);
}

static void test_meta_store_cas(void **state)
{
	struct table *t = tbl(state);
	struct table_item_info info;
	uint64_t cas = 0;
	uint64_t out = 0;
	struct table_store_req req = {
		.mode = TABLE_SET,
		.key = "ms",
		.key_len = 2,
		.value = "v2",
		.value_len = 2,
		.compare_cas = true,
	};

	req.cas = 1;
	assert_status(table_store(t, &req, NULL), TABLE_NOT_FOUND);

	assert_status(store_mode(t, TABLE_SET, "ms", "v1", 2, 0, 0, &cas),
		      TABLE_OK);
	req.cas = cas + 1000;
	assert_status(table_store(t, &req, NULL), TABLE_EXISTS);
	assert_value(t, "ms", "v1");
	req.cas = cas;
	assert_status(table_store(t, &req, &out), TABLE_OK);
	assert_value(t, "ms", "v2");
	assert_true(out != cas);

	/* ms E: the caller picks the new CAS. */
	const uint64_t mine = UINT64_C(9000000000000000001);
	struct table_store_req e = {
		.mode = TABLE_SET,
		.key = "me",
		.key_len = 2,
		.value = "x",
		.value_len = 1,
		.new_cas = mine,
	};
	assert_status(table_store(t, &e, &out), TABLE_OK);
	assert_true(out == mine);
	assert_status(get_opts(t, "me", NULL, &info), TABLE_OK);
	assert_true(info.cas == mine);
	/* and a compare against it works */
	e.compare_cas = true;
	e.cas = mine;
	e.new_cas = 0;
	assert_status(table_store(t, &e, &out), TABLE_OK);
	assert_true(out != mine);
}

static void test_meta_arith_vivify(void **state)
{
	struct table *t = tbl(state);
	struct table_arith_req req;
	struct table_item_info info;
	uint64_t v = 0;
	char buf[32];

	memset(&req, 0, sizeof(req));
	req.key = "ctr";
	req.key_len = 3;
	req.incr = true;
	req.delta = 5;
	req.vivify = true;
	req.initial = 100;
	req.vivify_exptime = 60;

	/* ma N J: a miss creates the number with the initial value as is. */
	assert_status(table_arith(t, &req, &v, NULL), TABLE_OK);
	assert_true(v == 100);
	assert_status(get_str(t, "ctr", buf, sizeof(buf), &info), TABLE_OK);
	assert_string_equal(buf, "100");
	assert_int_equal(info.exptime, T0 + 60);

	assert_status(table_arith(t, &req, &v, NULL), TABLE_OK);
	assert_true(v == 105);
	req.vivify = false;
	req.incr = false;
	req.delta = 106;
	assert_status(table_arith(t, &req, &v, NULL), TABLE_OK);
	assert_true(v == 0);

	/* ma C: compare the CAS first. */
	assert_status(table_get(t, "ctr", 3, NULL, NULL, 0, &info), TABLE_OK);
	req.incr = true;
	req.delta = 1;
	req.compare_cas = true;
	req.cas = info.cas + 1;
	assert_status(table_arith(t, &req, &v, NULL), TABLE_EXISTS);
	req.cas = info.cas;
	assert_status(table_arith(t, &req, &v, NULL), TABLE_OK);
	assert_true(v == 1);

	/* ma T: a new TTL with the update, in place or not. */
	req.compare_cas = false;
	req.touch = true;
	req.exptime = 10;
	assert_status(table_arith(t, &req, &v, &info), TABLE_OK);
	assert_true(v == 2);
	assert_int_equal(info.exptime, T0 + 10);
	set_clock(state, T0 + 10);
	assert_status(exists(t, "ctr"), TABLE_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_meta_vivify),
		T(test_meta_recache),
		T(test_meta_invalidate),
		T(test_meta_append_vivify),
		T(test_meta_concat_cas_missing),
		T(test_meta_store_cas),
		T(test_meta_arith_vivify),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
