/*
 * protocol_text.c - memcached's classic text protocol
 *
 * set add replace append prepend cas, get gets gat gats, touch, delete,
 * incr decr, flush_all, version, verbosity, quit.  Each handler follows
 * memcached 1.6's proto_text.c check for check and in the same order: the
 * token count first (a wrong count is a bare "ERROR"), then noreply, then
 * the key length, then the numbers.  The order matters because it decides
 * which error a client sees for a line with several faults, and whether the
 * data block after a bad storage line is skipped or parsed as commands
 * (memcached skips it only once the line was good enough to know the
 * length: "object too large", never "bad command line format").
 *
 * Replies to noreply commands are suppressed, errors included, as
 * memcached's out_string does.
 *
 * Interface routines:
 *   proto_text_dispatch  answer one text command line
 */
#include <stdio.h>
#include <string.h>

#include "protocol_internal.h"

#define KEY_TOKEN 1
/* "VALUE " key " " flags " " bytes " " cas "\r\n" fits a reply header. */
_Static_assert(6 + PROTO_KEY_MAX + 1 + 10 + 1 + 10 + 1 + PROTO_U64_DIGITS + 2 <=
		       PROTO_HEADER_MAX,
	       "a VALUE line fits PROTO_HEADER_MAX");

/*
 * set_noreply_maybe - memcached's rule: the last real token is "noreply".
 */
static void set_noreply_maybe(struct proto_req *req)
{
	const struct proto_token *last;

	if (req->ntokens < 2)
		return;
	last = &req->tokens[req->ntokens - 2];
	if (proto_tok_is(last, "noreply"))
		req->noreply = true;
}

static bool want_tokens(struct proto_req *req, size_t lo, size_t hi)
{
	if (req->ntokens < lo || req->ntokens > hi) {
		proto_reply(req, "ERROR");
		return false;
	}
	return true;
}

/* store_reply - the reply line for a table outcome of a storage command. */
static void store_reply(struct proto_req *req, enum table_store_mode mode,
			enum table_status st)
{
	proto_reply(req,
		    proto_store_outcome(req, mode, mode == TABLE_CAS, &st)->text);
}

/*
 * process_update - set/add/replace/append/prepend/cas.  Returns PROTO_WAIT
 * until the data block and its "\r\n" are buffered.
 */
static int process_update(struct proto_req *req, enum table_store_mode mode)
{
	const struct proto_token *t = req->tokens;
	struct table_store_req sr;
	uint32_t flags;
	int32_t exptime, vlen;
	uint64_t cas = 0;
	enum table_status st;

	set_noreply_maybe(req);
	if (!proto_key_ok(&t[KEY_TOKEN])) {
		proto_reply(req, "CLIENT_ERROR bad command line format");
		return 0;
	}
	if (!proto_num_u32(&t[2], &flags) || !proto_num_i32(&t[3], &exptime) ||
	    !proto_num_i32(&t[4], &vlen) ||
	    (mode == TABLE_CAS && !proto_num_u64(&t[5], &cas)) || vlen < 0 ||
	    vlen > PROTO_VLEN_MAX) {
		proto_reply(req, "CLIENT_ERROR bad command line format");
		return 0;
	}
	if ((uint32_t)vlen > req->ctx->max_item_size) {
		PROTO_DETAIL(req, &t[KEY_TOKEN], SERVER_DETAIL_SET, false);
		PROTO_STAT(req, store_too_large);
		proto_reply(req, "SERVER_ERROR object too large for cache");
		/* memcached drops the old value of a failed set: no stale reads. */
		if (mode == TABLE_SET)
			table_delete(req->ctx->table, t[KEY_TOKEN].value,
				     t[KEY_TOKEN].length, NULL);
		req->conn->swallow = (uint64_t)vlen + 2;
		return 0;
	}
	if (req->data_avail < (size_t)vlen + 2) {
		req->data_need = (size_t)vlen + 2;
		return PROTO_WAIT;
	}
	req->data_used = (size_t)vlen + 2;
	PROTO_STAT(req, cmd_set);
	PROTO_DETAIL(req, &t[KEY_TOKEN], SERVER_DETAIL_SET, false);
	if (memcmp(req->data + vlen, "\r\n", 2) != 0) {
		proto_reply(req, "CLIENT_ERROR bad data chunk");
		return 0;
	}
	memset(&sr, 0, sizeof(sr));
	sr.mode = mode;
	sr.key = t[KEY_TOKEN].value;
	sr.key_len = t[KEY_TOKEN].length;
	sr.value = req->data;
	sr.value_len = (size_t)vlen;
	sr.flags = flags;
	sr.exptime = exptime;
	sr.compare_cas = mode == TABLE_CAS;
	/* -C: no item's CAS (never 0 in the table) matches. */
	sr.cas = proto_cas_off(req->ctx) ? 0 : cas;
	st = table_store(req->ctx->table, &sr, NULL);
	store_reply(req, mode, st);
	return 0;
}

struct value_header {
	const struct proto_token *key;
	bool with_cas;
	bool cas_off; /* -C: the CAS shown is 0 */
};

/* value_header - "VALUE <key> <flags> <bytes>[ <cas>]\r\n" at dst. */
static size_t value_header(char *dst, const struct table_item_info *info,
			   void *arg)
{
	const struct value_header *vh = arg;
	size_t n = 0;

	memcpy(dst, "VALUE ", 6);
	n += 6;
	memcpy(dst + n, vh->key->value, vh->key->length);
	n += vh->key->length;
	dst[n++] = ' ';
	n += proto_put_u64(dst + n, info->flags);
	dst[n++] = ' ';
	n += proto_put_u64(dst + n, info->value_len);
	if (vh->with_cas) {
		dst[n++] = ' ';
		n += proto_put_u64(dst + n, vh->cas_off ? 0 : info->cas);
	}
	dst[n++] = '\r';
	dst[n++] = '\n';
	return n;
}

/*
 * append_value - add "VALUE key flags bytes [cas]\r\n<data>\r\n" for key,
 * or nothing on a miss.  Returns true on a hit.
 */
static bool append_value(struct proto_req *req, const struct proto_token *key,
			 bool with_cas, const struct table_get_opts *opts)
{
	struct value_header vh = { key, with_cas, proto_cas_off(req->ctx) };
	struct table_item_info info;

	return proto_fetch_value(req, key->value, key->length, opts,
				 value_header, &vh, &info) == TABLE_OK;
}

/*
 * process_get - get, gets, gat, gats over any number of keys.  A key too
 * long fails the whole command and, as in memcached, discards the values
 * already added for it.
 */
static int process_get(struct proto_req *req, bool with_cas, bool touch)
{
	struct table_get_opts opts, *optp = NULL;
	struct proto_token more[PROTO_MAX_TOKENS];
	const struct proto_token *t = req->tokens;
	size_t start = req->out->len, ntok = req->ntokens, i = 1;
	int32_t exptime;

	if (touch) {
		if (!proto_num_i32(&t[1], &exptime)) {
			proto_reply(req, "CLIENT_ERROR invalid exptime argument");
			return 0;
		}
		memset(&opts, 0, sizeof(opts));
		opts.touch = true;
		opts.exptime = exptime;
		optp = &opts;
		i = 2;
	}
	for (;;) {
		for (; i < ntok - 1; i++) {
			bool hit;

			if (!proto_key_ok(&t[i])) {
				req->out->len = start;
				proto_reply(req,
					    "CLIENT_ERROR bad command line format");
				return 0;
			}
			hit = append_value(req, &t[i], with_cas, optp);
			if (req->oom)
				return 0;
			PROTO_DETAIL(req, &t[i], SERVER_DETAIL_GET, hit);
			/* As memcached: gat and gats count as touches
			 * only, not as gets. */
			if (touch) {
				PROTO_STAT(req, cmd_touch);
				if (hit)
					PROTO_STAT(req, touch_hits);
				else
					PROTO_STAT(req, touch_misses);
			} else {
				PROTO_STAT(req, cmd_get);
				if (hit)
					PROTO_STAT(req, get_hits);
				else
					PROTO_STAT(req, get_misses);
			}
		}
		/* More than 23 tokens: the terminal token holds the rest. */
		if (t[ntok - 1].value == NULL)
			break;
		{
			const char *rest = t[ntok - 1].value;

			ntok = proto_tokenize(rest,
					      (size_t)(req->line_end - rest),
					      more, PROTO_MAX_TOKENS);
			t = more;
			i = 0;
		}
	}
	proto_adds(req, "END\r\n");
	return 0;
}

static int process_arith(struct proto_req *req, bool incr)
{
	const struct proto_token *t = req->tokens;
	struct table_arith_req ar;
	uint64_t delta, value = 0;
	enum table_status st;
	char num[24];

	set_noreply_maybe(req);
	if (!proto_key_ok(&t[KEY_TOKEN])) {
		proto_reply(req, "CLIENT_ERROR bad command line format");
		return 0;
	}
	if (!proto_num_u64(&t[2], &delta)) {
		proto_reply(req, "CLIENT_ERROR invalid numeric delta argument");
		return 0;
	}
	memset(&ar, 0, sizeof(ar));
	ar.key = t[KEY_TOKEN].value;
	ar.key_len = t[KEY_TOKEN].length;
	ar.incr = incr;
	ar.delta = delta;
	st = table_arith(req->ctx->table, &ar, &value, NULL);
	switch (st) {
	case TABLE_OK:
		if (incr)
			PROTO_STAT(req, incr_hits);
		else
			PROTO_STAT(req, decr_hits);
		snprintf(num, sizeof(num), "%llu", (unsigned long long)value);
		proto_reply(req, num);
		break;
	case TABLE_NOT_FOUND:
		if (incr)
			PROTO_STAT(req, incr_misses);
		else
			PROTO_STAT(req, decr_misses);
		proto_reply(req, "NOT_FOUND");
		break;
	case TABLE_NON_NUMERIC:
		proto_reply(req,
			    "CLIENT_ERROR cannot increment or decrement non-numeric value");
		break;
	case TABLE_NO_MEMORY:
		proto_reply(req, "SERVER_ERROR out of memory");
		break;
	default:
		proto_reply(req, "CLIENT_ERROR bad command line format");
		break;
	}
	return 0;
}

static int process_touch(struct proto_req *req)
{
	const struct proto_token *t = req->tokens;
	struct table_get_opts opts;
	struct table_item_info info;
	int32_t exptime;

	set_noreply_maybe(req);
	if (!proto_key_ok(&t[KEY_TOKEN])) {
		proto_reply(req, "CLIENT_ERROR bad command line format");
		return 0;
	}
	if (!proto_num_i32(&t[2], &exptime)) {
		proto_reply(req, "CLIENT_ERROR invalid exptime argument");
		return 0;
	}
	memset(&opts, 0, sizeof(opts));
	opts.touch = true;
	opts.exptime = exptime;
	PROTO_STAT(req, cmd_touch);
	if (table_get(req->ctx->table, t[KEY_TOKEN].value, t[KEY_TOKEN].length,
		      &opts, NULL, 0, &info) == TABLE_OK) {
		PROTO_STAT(req, touch_hits);
		proto_reply(req, "TOUCHED");
	} else {
		PROTO_STAT(req, touch_misses);
		proto_reply(req, "NOT_FOUND");
	}
	return 0;
}

/*
 * process_delete - "delete <key> [0] [noreply]"; the 0 is the hold time
 * memcached dropped long ago and still accepts for old clients.
 */
static int process_delete(struct proto_req *req)
{
	const struct proto_token *t = req->tokens;
	size_t n = req->ntokens;

	if (n > 3) {
		bool hold_is_zero = proto_tok_is(&t[2], "0");
		bool valid;

		set_noreply_maybe(req);
		valid = (n == 4 && (hold_is_zero || req->noreply)) ||
			(n == 5 && hold_is_zero && req->noreply);
		if (!valid) {
			proto_reply(req, "CLIENT_ERROR bad command line format.  "
					 "Usage: delete <key> [noreply]");
			return 0;
		}
	}
	if (!proto_key_ok(&t[KEY_TOKEN])) {
		proto_reply(req, "CLIENT_ERROR bad command line format");
		return 0;
	}
	PROTO_DETAIL(req, &t[KEY_TOKEN], SERVER_DETAIL_DELETE, false);
	if (table_delete(req->ctx->table, t[KEY_TOKEN].value,
			 t[KEY_TOKEN].length, NULL) == TABLE_OK) {
		PROTO_STAT(req, delete_hits);
		proto_reply(req, "DELETED");
	} else {
		PROTO_STAT(req, delete_misses);
		proto_reply(req, "NOT_FOUND");
	}
	return 0;
}

static int process_flush_all(struct proto_req *req)
{
	int32_t exptime = 0;

	set_noreply_maybe(req);
	if (req->ctx->settings != NULL && req->ctx->settings->flush_disabled) {
		proto_reply(req, "CLIENT_ERROR flush_all not allowed");
		return 0;
	}
	PROTO_STAT(req, cmd_flush);
	if (req->ntokens != (req->noreply ? 3u : 2u) &&
	    !proto_num_i32(&req->tokens[1], &exptime)) {
		proto_reply(req, "CLIENT_ERROR invalid exptime argument");
		return 0;
	}
	/* memcached treats a negative delay as now. */
	table_flush(req->ctx->table, exptime > 0 ? exptime : 0);
	proto_reply(req, "OK");
	return 0;
}

static int process_verbosity(struct proto_req *req)
{
	uint32_t level;

	set_noreply_maybe(req);
	if (!proto_num_u32(&req->tokens[1], &level)) {
		proto_reply(req, "CLIENT_ERROR bad command line format");
		return 0;
	}
	/* As memcached: the level, at most 2, is what logging tests; it is
	 * the whole server's (every worker reads it), not this worker's. */
	if (level > 2)
		level = 2;
	if (req->ctx->verbosity != NULL)
		*req->ctx->verbosity = (int)level;
	server_set_verbosity(req->ctx->all, (int)level);
	proto_reply(req, "OK");
	return 0;
}

/* store_mode_of - the store mode a storage command other than cas names. */
static bool store_mode_of(const struct proto_token *cmd,
			  enum table_store_mode *mode)
{
	static const struct {
		const char *name;
		enum table_store_mode mode;
	} modes[] = {
		{ "set", TABLE_SET },	      { "add", TABLE_ADD },
		{ "replace", TABLE_REPLACE }, { "append", TABLE_APPEND },
		{ "prepend", TABLE_PREPEND },
	};
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (proto_tok_is(cmd, modes[i].name)) {
			*mode = modes[i].mode;
			return true;
		}
	}
	return false;
}

/*
 * proto_text_dispatch - answer one text protocol line.  Returns 0, or
 * PROTO_WAIT while a storage command's data block is incomplete.
 */
int proto_text_dispatch(struct proto_req *req)
{
	const struct proto_token *cmd = &req->tokens[0];
	size_t n = req->ntokens;
	enum table_store_mode mode;

	if (proto_tok_is(cmd, "get") || proto_tok_is(cmd, "gets") ||
	    proto_tok_is(cmd, "gat") || proto_tok_is(cmd, "gats")) {
		bool touch = cmd->value[1] == 'a';

		if (!want_tokens(req, 3, PROTO_MAX_TOKENS))
			return 0;
		return process_get(req, cmd->length == 4, touch);
	}
	if (store_mode_of(cmd, &mode)) {
		if (!want_tokens(req, 6, 7))
			return 0;
		return process_update(req, mode);
	}
	if (proto_tok_is(cmd, "cas")) {
		if (!want_tokens(req, 7, 8))
			return 0;
		return process_update(req, TABLE_CAS);
	}
	if (proto_tok_is(cmd, "incr") || proto_tok_is(cmd, "decr")) {
		if (!want_tokens(req, 4, 5))
			return 0;
		return process_arith(req, cmd->value[0] == 'i');
	}
	if (proto_tok_is(cmd, "delete")) {
		if (!want_tokens(req, 3, 5))
			return 0;
		return process_delete(req);
	}
	if (proto_tok_is(cmd, "touch")) {
		if (!want_tokens(req, 4, 5))
			return 0;
		return process_touch(req);
	}
	if (proto_tok_is(cmd, "flush_all")) {
		if (!want_tokens(req, 2, 4))
			return 0;
		return process_flush_all(req);
	}
	if (proto_tok_is(cmd, "version")) {
		proto_adds(req, "VERSION ");
		proto_adds(req, SHMKV_MEMCACHED_VERSION);
		proto_add(req, "\r\n", 2);
		return 0;
	}
	if (proto_tok_is(cmd, "quit")) {
		req->close = true;
		return 0;
	}
	if (proto_tok_is(cmd, "verbosity")) {
		if (!want_tokens(req, 3, 4))
			return 0;
		return process_verbosity(req);
	}
	/* An HTTP request line: memcached hangs up without a word. */
	if (n >= 2 && req->tokens[n - 2].length >= 5 &&
	    memcmp(req->tokens[n - 2].value, "HTTP/", 5) == 0) {
		req->close = true;
		return 0;
	}
	proto_reply(req, "ERROR");
	return 0;
}
