/*
 * protocol_fixture.c - the protocol tests' shared set-up (see the header).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "protocol_fixture.h"

int fx_setup(void **state)
{
	struct cache_config cfg;
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	memset(&cfg, 0, sizeof(cfg));
	cfg.table.memory = 64u << 20;
	cfg.table.partitions = 16;
	cfg.table.max_item_size = MAX_ITEM;
	cfg.seg.huge_pages = SEGMENT_HUGE_OFF;
	if (cache_create(&f->c, &cfg, err, sizeof(err)) != 0)
		fail_msg("cache_create: %s", err);
	assert_int_equal(cache_claim_proc(&f->c), 0);
	table_tick(&f->c.table, (uint32_t)time(NULL));
	f->stats = calloc(1, sizeof(*f->stats));
	assert_non_null(f->stats);
	f->ctx.table = &f->c.table;
	f->ctx.stats = f->stats;
	f->ctx.max_item_size = MAX_ITEM;
	f->ctx.version = "1.6.18";
	f->ctx.verbosity = &f->verbosity;
	proto_conn_init(&f->conn);
	*state = f;
	return 0;
}

int fx_teardown(void **state)
{
	struct fx *f = *state;

	cache_destroy(&f->c);
	free(f->stats);
	free(f->out.data);
	free(f);
	return 0;
}

/* feed - process in (all of it must be consumed); return the replies. */
const char *feed(struct fx *f, const char *in, size_t len)
{
	size_t used;

	f->out.len = 0;
	used = proto_process(&f->ctx, &f->conn, in, len, &f->out, &f->action);
	assert_int_equal(used, len);
	if (proto_out_reserve(&f->out, 1) != 0)
		fail();
	f->out.data[f->out.len] = '\0';
	return f->out.data;
}

/* expect - in gives exactly want, byte for byte. */
void expect(struct fx *f, const char *in, const char *want)
{
	const char *got = feed(f, in, strlen(in));

	assert_int_equal(f->out.len, strlen(want));
	assert_string_equal(got, want);
}
