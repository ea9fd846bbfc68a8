/*
 * protocol_meta.c - memcached's meta protocol: mg ms md ma mn me
 *
 * A meta command is "<cm> <key> [<datalen>] <flag>*": each flag is one
 * character, optionally followed by a token ("T30", "Oabc").  The flags are
 * checked in one pass (meta_preparse in proto_meta_flags.c, memcached's
 * _meta_flag_preparse) that rejects duplicates and unknown flags and parses
 * the numbers; the command then runs once against the table and writes its reply, whose return
 * flags come back in the order the request gave them, followed by mg's
 * Z, X and W, as memcached 1.6 does.
 *
 * The error strings differ between commands in memcached ("duplicate flag"
 * from mg and ms, "invalid or duplicate flag" from md and ma; "options
 * flags are too long" from mg, "options flags too long" from the others)
 * and are copied as they are, since clients match on them.
 *
 * q hides only the reply that means "as expected": EN for mg, HD for ms
 * and md, any success for ma.  Errors are always sent.
 *
 * E<cas> (later 1.6 releases: store with this CAS) is an invalid flag
 * everywhere, as in 1.6.18.  Modes are upper case only ("Ms" is invalid).
 *
 * Interface routines:
 *   proto_meta_dispatch  answer one meta command line
 */
#include <stdio.h>
#include <string.h>

#include "proto_meta.h"
#include "wire.h"

/*
 * A reply line under construction in buf (cap bytes); flags are appended
 * with a space and numbers without printf: mg's header with v is written
 * straight into the reply, under the partition lock (proto_value.c).
 */
struct meta_line {
	char *buf;
	size_t cap;
	size_t len;
};

#define LINE_IN(array) \
	{ \
		(array), sizeof(array), 0 \
	}

static void line_add(struct meta_line *l, const char *p, size_t n)
{
	if (n > l->cap - l->len)
		n = l->cap - l->len;
	memcpy(l->buf + l->len, p, n);
	l->len += n;
}

/* line_num - prefix (" s", "VA ") and v in decimal. */
static void line_num(struct meta_line *l, const char *prefix, uint64_t v)
{
	char num[PROTO_U64_DIGITS];

	line_add(l, prefix, strlen(prefix));
	line_add(l, num, proto_put_u64(num, v));
}

/* line_addi - a signed number, with printf (me only). */
static void line_addi(struct meta_line *l, const char *fmt, long long v)
{
	int n = snprintf(l->buf + l->len, l->cap - l->len, fmt, v);

	if (n > 0)
		l->len += (size_t)n < l->cap - l->len ? (size_t)n
						      : l->cap - l->len - 1;
}

/* line_key - " k<key>", base64 again and followed by " b" for b keys. */
static void line_key(struct meta_line *l, const struct meta_flags *of, bool binary)
{
	char enc[(PROTO_KEY_MAX + 2) / 3 * 4 + 1];
	size_t n;

	line_add(l, " k", 2);
	if (!binary) {
		line_add(l, of->key, of->nkey);
		return;
	}
	n = wire_base64(of->key, of->nkey, enc);
	line_add(l, enc, n);
	line_add(l, " b", 2);
}

/*
 * line_ttl - " t<seconds left>", -1 for never.  An item a negative T or N
 * has just expired has none left: t0 (memcached 1.6.18 wraps the negative
 * difference to a 32-bit number that depends on its uptime; see
 * docs/compatibility.md).
 */
static void line_ttl(struct meta_line *l, uint32_t exptime, uint32_t now)
{
	if (exptime == 0)
		line_add(l, " t-1", 4);
	else if (exptime <= now)
		line_add(l, " t0", 3);
	else
		line_num(l, " t", (unsigned long long)(exptime - now));
}

/* What a reply has to say for the return flags it carries. */
struct meta_ret {
	const char *flags; /* the flags it answers besides O k */
	const struct table_item_info *info;
	uint64_t cas;		      /* for c */
	uint32_t now;		      /* for t */
	const struct meta_ttls *ttls; /* for t, if T or N may apply */
	/* k: as the item was stored (mg), not as this request sent it */
	bool item_key;
};

/*
 * line_flags - the return flags of the request's flags tokens[start..], in
 * the request's order: O and k on every reply, the others (those in
 * r->flags) only where r describes an item.  r may be NULL.
 */
static void line_flags(struct meta_line *l, const struct proto_req *req,
		       size_t start, const struct meta_flags *of,
		       const struct meta_ret *r)
{
	size_t i;

	for (i = start; i < req->ntokens && req->tokens[i].length != 0; i++) {
		const struct proto_token *t = &req->tokens[i];
		char f = t->value[0];

		if (f == 'O') {
			line_add(l, " ", 1);
			line_add(l, t->value, t->length);
			continue;
		}
		if (f == 'k') {
			line_key(l, of,
				 r != NULL && r->item_key ? r->info->key_binary
							  : of->key_binary);
			continue;
		}
		if (r == NULL || f == '\0' || strchr(r->flags, f) == NULL)
			continue;
		switch (f) {
		case 's': line_num(l, " s", r->info->value_len); break;
		case 't':
			line_ttl(l,
				 r->ttls != NULL ? meta_ttl_before(of, i, r->ttls)
						 : r->info->exptime,
				 r->now);
			break;
		case 'c':
			line_num(l, " c", proto_cas_shown(req->ctx, r->cas));
			break;
		case 'f': line_num(l, " f", r->info->flags); break;
		case 'l': line_num(l, " l", r->info->last_access); break;
		case 'h': line_num(l, " h", r->info->fetched ? 1 : 0); break;
		default: break;
		}
	}
}

static void line_send(struct proto_req *req, struct meta_line *l)
{
	if (proto_add(req, l->buf, l->len) == 0)
		proto_add(req, "\r\n", 2);
}

/* What mg's reply line needs besides the item. */
struct mg_reply {
	const struct proto_req *req;
	const struct meta_flags *of;
	uint32_t now;
	struct meta_ttls ttls; /* created and before are the item's */
};

/* mg_line - "VA <len>" or "HD", the return flags, then Z, X, W. */
static void mg_line(struct meta_line *l, const struct mg_reply *m,
		    const struct table_item_info *info)
{
	struct meta_ttls ttls = m->ttls;
	struct meta_ret r = { "stcflh", info, info->cas, m->now, &ttls, true };

	ttls.created = info->vivified;
	ttls.before = info->vivified ? 0 : info->prev_exptime;

	if (m->of->value)
		line_num(l, "VA ", info->value_len);
	else
		line_add(l, "HD", 2);
	line_flags(l, m->req, 2, m->of, &r);
	/* memcached's order: Z before X, and W last. */
	if (info->token_sent)
		line_add(l, " Z", 2);
	if (info->stale)
		line_add(l, " X", 2);
	if (info->won)
		line_add(l, " W", 2);
	line_add(l, "\r\n", 2);
}

_Static_assert(META_LINE_MAX <= PROTO_HEADER_MAX, "mg's header fits");

/* mg_header - proto_fetch_value's header for mg with v, written in place. */
static size_t mg_header(char *dst, const struct table_item_info *info, void *arg)
{
	struct meta_line l = { dst, META_LINE_MAX, 0 };

	mg_line(&l, arg, info);
	return l.len;
}

/* mg_bumps_late - memcached's "locked" mg: it bumps the item once the reply
 * is built, so that h and l see the state before this fetch. */
static bool mg_bumps_late(const struct meta_flags *of)
{
	return of->vivify || of->new_ttl || of->recache || of->at['h'] != 0 ||
	       of->at['l'] != 0;
}

static int process_mg(struct proto_req *req)
{
	struct meta_flags of;
	struct table_get_opts opts;
	struct table_item_info info;
	char lbuf[META_LINE_MAX];
	struct meta_line l = LINE_IN(lbuf);
	struct mg_reply m = { .req = req, .of = &of };
	enum table_status st;
	size_t mark = req->out->len;

	memset(&of, 0, sizeof(of));
	of.errstr = "CLIENT_ERROR bad command line format";
	if (!proto_key_ok(&req->tokens[KEY_TOKEN])) {
		proto_reply(req, "CLIENT_ERROR bad command line format");
		return 0;
	}
	if (req->ntokens > META_MAX_TOKENS) {
		proto_reply(req, "CLIENT_ERROR options flags are too long");
		return 0;
	}
	if (meta_preparse(req, 2, &of) != 0) {
		proto_reply(req, of.errstr);
		return 0;
	}
	memset(&opts, 0, sizeof(opts));
	opts.touch = meta_has(&of, 'T', of.end);
	opts.exptime = of.exptime;
	opts.vivify = of.vivify;
	opts.vivify_exptime = meta_final_viv_ttl(&of);
	opts.win = !of.opaque_too_long;
	/* With h l N R or T memcached marks the item fetched after the reply
	 * is built, which a long opaque's error skips. */
	opts.no_bump = of.no_update || (!opts.win && mg_bumps_late(&of));
	/* memcached's R0 (or below) never wins, even on an item T expired. */
	opts.recache = of.recache && of.recache_time > 0;
	opts.recache_below = opts.recache ? (uint32_t)of.recache_time : 0;
	opts.recache_sees_touch = opts.touch && of.at['T'] < of.at['R'];
	m.now = proto_now(req->ctx);
	meta_ttl_plan(req, &of, &m.ttls);
	st = proto_fetch_value(req, of.key, of.nkey, &opts,
			       of.value ? mg_header : NULL, &m, &info);
	if (req->oom)
		return 0;
	/* memcached fetches (touching, creating) before it looks at the
	 * opaque: the error replaces the reply, not what the fetch did, but
	 * the recache token is handed out only with a reply. */
	if (!opts.win) {
		req->out->len = mark;
		proto_reply(req, "CLIENT_ERROR opaque token too long");
		return 0;
	}
	/* As memcached: an mg with T counts as a touch only, not a get. */
	if (of.new_ttl)
		PROTO_STAT(req, cmd_touch);
	else
		PROTO_STAT(req, cmd_get);
	if (st != TABLE_OK) {
		if (of.new_ttl)
			PROTO_STAT(req, touch_misses);
		else
			PROTO_STAT(req, get_misses);
		if (of.no_reply)
			return 0;
		line_add(&l, "EN", 2);
		line_flags(&l, req, 2, &of, NULL);
		line_send(req, &l);
		return 0;
	}
	if (of.new_ttl)
		PROTO_STAT(req, touch_hits);
	else
		PROTO_STAT(req, get_hits);
	if (!of.value) {
		mg_line(&l, &m, &info);
		proto_add(req, l.buf, l.len);
	}
	return 0;
}

/* ms_store - store the data block (its "\r\n" checked) and reply. */
static void ms_store(struct proto_req *req, const struct meta_flags *of,
		     enum table_store_mode mode, size_t vlen)
{
	const struct proto_store_words *words;
	struct table_store_req sr;
	char lbuf[META_LINE_MAX];
	struct meta_line l = LINE_IN(lbuf);
	struct meta_ret r = { "c", NULL, 0, 0 };
	enum table_status st;
	uint64_t cas = 0;

	memset(&sr, 0, sizeof(sr));
	sr.mode = mode;
	sr.key = of->key;
	sr.key_len = of->nkey;
	sr.value = req->data;
	sr.value_len = vlen;
	sr.flags = of->client_flags;
	sr.key_binary = of->key_binary;
	sr.exptime = of->exptime;
	/* memcached's add ignores C; append and prepend compare it only with
	 * an item there (none: NS, not NF, table_store says) and ignore C0;
	 * I applies to set
	 * and replace, and not with C0, which no item's CAS is "older" than. */
	sr.compare_cas = of->has_cas && mode != TABLE_ADD &&
			 !(of->req_cas == 0 &&
			   (mode == TABLE_APPEND || mode == TABLE_PREPEND));
	sr.cas = of->req_cas;
	sr.invalidate = of->set_stale && sr.compare_cas && of->req_cas != 0 &&
			mode != TABLE_APPEND && mode != TABLE_PREPEND;
	if (proto_cas_off(req->ctx)) {
		/* -C: a CAS to compare matches no item, C0 included. */
		sr.compare_cas = of->has_cas && mode != TABLE_ADD;
		sr.cas = 0;
		sr.invalidate = false;
	}
	st = table_store(req->ctx->table, &sr, &cas);
	words = proto_store_outcome(req, sr.mode, sr.compare_cas, &st);
	if (words->meta == NULL) {
		proto_reply(req, words->text);
		return;
	}
	if (st == TABLE_OK && of->no_reply)
		return;
	line_add(&l, words->meta, 2);
	r.cas = st == TABLE_OK ? cas : 0;
	line_flags(&l, req, 3, of, &r);
	line_send(req, &l);
}

/* ms_mode - the store mode of ms's M flag; false if it names none. */
static bool ms_mode(const struct meta_flags *of, enum table_store_mode *mode)
{
	switch (of->mode) {
	case 0:
	case 'S': *mode = of->has_cas ? TABLE_CAS : TABLE_SET; return true;
	case 'E': *mode = TABLE_ADD; return true;
	case 'A': *mode = TABLE_APPEND; return true;
	case 'P': *mode = TABLE_PREPEND; return true;
	case 'R': *mode = TABLE_REPLACE; return true;
	default: return false;
	}
}

static int process_ms(struct proto_req *req)
{
	const struct proto_token *t = req->tokens;
	struct meta_flags of;
	enum table_store_mode mode;
	int32_t vlen;

	memset(&of, 0, sizeof(of));
	of.errstr = "CLIENT_ERROR bad command line format";
	if (!proto_key_ok(&t[KEY_TOKEN]) || req->ntokens == 3) {
		proto_reply(req, "CLIENT_ERROR bad command line format");
		return 0;
	}
	if (req->ntokens > META_MAX_TOKENS) {
		proto_reply(req, "CLIENT_ERROR options flags too long");
		return 0;
	}
	if (!proto_num_i32(&t[2], &vlen) || vlen < 0 || vlen > PROTO_VLEN_MAX) {
		proto_reply(req, "CLIENT_ERROR bad command line format");
		return 0;
	}
	/* From here on the length is known, so a refused block is skipped. */
	if (meta_preparse(req, 3, &of) != 0)
		goto refuse;
	/* memcached checks the mode before it reports a long opaque. */
	if (!ms_mode(&of, &mode)) {
		of.errstr = "CLIENT_ERROR invalid mode for ms M token";
		goto refuse;
	}
	if (of.opaque_too_long) {
		of.errstr = "CLIENT_ERROR opaque token too long";
		goto refuse;
	}
	if ((uint32_t)vlen > req->ctx->max_item_size) {
		PROTO_STAT(req, store_too_large);
		/* memcached drops the old value whatever the mode. */
		table_delete(req->ctx->table, of.key, of.nkey, NULL);
		of.errstr = "SERVER_ERROR object too large for cache";
		goto refuse;
	}
	if (req->data_avail < (size_t)vlen + 2) {
		req->data_need = (size_t)vlen + 2;
		return PROTO_WAIT;
	}
	req->data_used = (size_t)vlen + 2;
	PROTO_STAT(req, cmd_meta);
	PROTO_STAT(req, cmd_set);
	if (memcmp(req->data + vlen, "\r\n", 2) != 0) {
		proto_reply(req, "CLIENT_ERROR bad data chunk");
		return 0;
	}
	ms_store(req, &of, mode, (size_t)vlen);
	return 0;
refuse:
	req->conn->swallow = (uint64_t)vlen + 2;
	proto_reply(req, of.errstr);
	return 0;
}

/*
 * meta_common_checks - what md and ma check before running: key length,
 * flag count, the flags, and (md only: ma runs first) the opaque.  Returns
 * false after replying.
 */
static bool meta_common_checks(struct proto_req *req, struct meta_flags *of,
			       bool check_opaque)
{
	memset(of, 0, sizeof(*of));
	if (!proto_key_ok(&req->tokens[KEY_TOKEN])) {
		proto_reply(req, "CLIENT_ERROR bad command line format");
		return false;
	}
	if (req->ntokens > META_MAX_TOKENS) {
		proto_reply(req, "CLIENT_ERROR options flags too long");
		return false;
	}
	if (meta_preparse(req, 2, of) != 0) {
		proto_reply(req, "CLIENT_ERROR invalid or duplicate flag");
		return false;
	}
	if (check_opaque && of->opaque_too_long) {
		proto_reply(req, "CLIENT_ERROR opaque token too long");
		return false;
	}
	return true;
}

static int process_md(struct proto_req *req)
{
	struct meta_flags of;
	struct table_delete_opts opts;
	char lbuf[META_LINE_MAX];
	struct meta_line l = LINE_IN(lbuf);
	enum table_status st;

	if (!meta_common_checks(req, &of, true))
		return 0;
	memset(&opts, 0, sizeof(opts));
	opts.compare_cas = of.has_cas;
	opts.cas = of.req_cas;
	if (proto_cas_off(req->ctx)) {
		/* -C: every item's CAS is 0 to the client; C0 matches. */
		opts.compare_cas = of.has_cas && of.req_cas != 0;
		opts.cas = 0;
	}
	opts.invalidate = of.set_stale;
	opts.touch = of.new_ttl;
	opts.exptime = of.exptime;
	st = table_delete(req->ctx->table, of.key, of.nkey, &opts);
	switch (st) {
	case TABLE_OK:
		/* As memcached: marking stale (I) is not a delete hit. */
		if (!of.set_stale)
			PROTO_STAT(req, delete_hits);
		if (of.no_reply)
			return 0;
		line_add(&l, "HD", 2);
		break;
	case TABLE_EXISTS: line_add(&l, "EX", 2); break;
	default:
		PROTO_STAT(req, delete_misses);
		line_add(&l, "NF", 2);
		break;
	}
	line_flags(&l, req, 2, &of, NULL);
	line_send(req, &l);
	return 0;
}

/* ma_mode - incr or decr from ma's M flag; false if it names neither. */
static bool ma_mode(const struct meta_flags *of, bool *incr)
{
	switch (of->mode) {
	case 0:
	case 'I':
	case '+': *incr = true; return true;
	case 'D':
	case '-': *incr = false; return true;
	default: return false;
	}
}

/* ma_reply - the line (and with v the number) of an ma that found or
 * made its item. */
static void ma_reply(struct proto_req *req, const struct meta_flags *of,
		     const struct table_item_info *info,
		     const struct meta_ttls *ttls, uint64_t value)
{
	char lbuf[META_LINE_MAX];
	struct meta_line l = LINE_IN(lbuf);
	struct meta_ret r = { "ct", info, info->cas, proto_now(req->ctx), ttls };
	char num[PROTO_U64_DIGITS];
	size_t numlen = proto_put_u64(num, value);

	if (of->value)
		line_num(&l, "VA ", (unsigned long long)numlen);
	else
		line_add(&l, "HD", 2);
	line_flags(&l, req, 2, of, &r);
	line_send(req, &l);
	if (of->value && proto_add(req, num, numlen) == 0)
		proto_add(req, "\r\n", 2);
}

/* ma_request - the table's request for ma's flags (cas_off: -C). */
static void ma_request(const struct meta_flags *of, bool cas_off,
		       struct table_arith_req *ar)
{
	ar->key = of->key;
	ar->key_len = of->nkey;
	ar->delta = of->delta;
	/* memcached takes C0 for no CAS at all. */
	ar->compare_cas = of->has_cas && of->req_cas != 0;
	/* -C: a nonzero CAS matches no item (the table's are never 0). */
	ar->cas = cas_off ? 0 : of->req_cas;
	ar->vivify = of->vivify;
	ar->vivify_exptime = meta_final_viv_ttl(of);
	ar->initial = of->initial;
	ar->touch = meta_has(of, 'T', of->end);
	ar->exptime = of->exptime;
}

/*
 * process_ma - memcached runs the arithmetic before it looks at the opaque,
 * so a long one is an error after the fact (the item changed or created).
 * q hides the HD of an item found, not of one N created.
 */
static int process_ma(struct proto_req *req)
{
	struct meta_flags of;
	struct table_arith_req ar;
	struct table_item_info info;
	struct meta_ttls ttls;
	char lbuf[META_LINE_MAX];
	struct meta_line l = LINE_IN(lbuf);
	enum table_status st;
	uint64_t value = 0;

	if (!meta_common_checks(req, &of, false))
		return 0;
	memset(&ar, 0, sizeof(ar));
	if (!ma_mode(&of, &ar.incr)) {
		proto_reply(req, "CLIENT_ERROR invalid mode for ma M token");
		return 0;
	}
	ma_request(&of, proto_cas_off(req->ctx), &ar);
	memset(&info, 0, sizeof(info));
	st = table_arith(req->ctx->table, &ar, &value, &info);
	if (st == TABLE_NON_NUMERIC) {
		proto_reply(req,
			    "CLIENT_ERROR cannot increment or decrement non-numeric value");
		return 0;
	}
	if (st == TABLE_NO_MEMORY) {
		proto_reply(req, "SERVER_ERROR out of memory");
		return 0;
	}
	if (of.opaque_too_long) {
		proto_reply(req, "CLIENT_ERROR opaque token too long");
		return 0;
	}
	switch (st) {
	case TABLE_OK:
		/* As memcached: a number N created is neither hit nor miss. */
		if (info.vivified)
			;
		else if (ar.incr)
			PROTO_STAT(req, incr_hits);
		else
			PROTO_STAT(req, decr_hits);
		if (of.no_reply && !info.vivified)
			return 0;
		meta_ttl_plan(req, &of, &ttls);
		ttls.created = info.vivified;
		ttls.before = info.vivified ? 0 : info.prev_exptime;
		ma_reply(req, &of, &info, &ttls, value);
		return 0;
	case TABLE_EXISTS: line_add(&l, "EX", 2); break;
	case TABLE_NOT_STORED: line_add(&l, "NS", 2); break;
	default:
		if (ar.incr)
			PROTO_STAT(req, incr_misses);
		else
			PROTO_STAT(req, decr_misses);
		line_add(&l, "NF", 2);
		break;
	}
	line_flags(&l, req, 2, &of, NULL);
	line_send(req, &l);
	return 0;
}

/*
 * process_me - meta debug.  exp, la, cas and fetch are memcached's; we have
 * no slab classes, so cls is always 1, and size is key plus value bytes
 * (memcached adds its item header, which we do not have).
 */
static int process_me(struct proto_req *req)
{
	const struct proto_token *t = req->tokens;
	struct meta_flags of;
	struct table_get_opts opts;
	struct table_item_info info;
	char lbuf[META_LINE_MAX];
	struct meta_line l = LINE_IN(lbuf);
	uint32_t now;

	memset(&of, 0, sizeof(of));
	if (req->ntokens < 3 || !proto_key_ok(&t[KEY_TOKEN])) {
		proto_reply(req, "CLIENT_ERROR bad command line format");
		return 0;
	}
	of.key = t[KEY_TOKEN].value;
	of.nkey = t[KEY_TOKEN].length;
	if (req->ntokens > 3 && t[2].length > 0 && t[2].value[0] == 'b') {
		of.nkey = wire_base64_decode(t[KEY_TOKEN].value,
					     t[KEY_TOKEN].length, of.keybuf,
					     sizeof(of.keybuf));
		of.key = (const char *)of.keybuf;
		of.key_binary = true;
		if (of.nkey == 0) {
			proto_reply(req, "CLIENT_ERROR bad command line format");
			return 0;
		}
	}
	memset(&opts, 0, sizeof(opts));
	opts.no_bump = true;
	memset(&info, 0, sizeof(info));
	if (table_get(req->ctx->table, of.key, of.nkey, &opts, NULL, 0, &info) !=
	    TABLE_OK) {
		proto_reply(req, "EN");
		return 0;
	}
	now = proto_now(req->ctx);
	line_add(&l, "ME ", 3);
	line_add(&l, t[KEY_TOKEN].value, t[KEY_TOKEN].length);
	if (info.exptime == 0)
		line_add(&l, " exp=-1", 7);
	else
		line_addi(&l, " exp=%lld",
			  (long long)info.exptime - (long long)now);
	line_num(&l, " la=", info.last_access);
	line_num(&l, " cas=", proto_cas_shown(req->ctx, info.cas));
	line_add(&l, info.fetched ? " fetch=yes" : " fetch=no",
		 info.fetched ? 10 : 9);
	line_add(&l, " cls=1", 6);
	line_num(&l, " size=", (unsigned long long)of.nkey + info.value_len);
	line_send(req, &l);
	return 0;
}

/*
 * proto_meta_dispatch - answer one two-letter 'm' command.  Returns 0, or
 * PROTO_WAIT while an ms data block is incomplete.
 */
int proto_meta_dispatch(struct proto_req *req)
{
	char c = req->tokens[0].value[1];

	if (c == 'n') {
		PROTO_STAT(req, cmd_meta);
		proto_adds(req, "MN\r\n");
		return 0;
	}
	if (c == 'e') {
		PROTO_STAT(req, cmd_meta);
		return process_me(req);
	}
	if ((c != 'g' && c != 's' && c != 'd' && c != 'a') || req->ntokens < 3) {
		proto_reply(req, "ERROR");
		return 0;
	}
	if (c == 's')
		return process_ms(req); /* counted once its block is in */
	PROTO_STAT(req, cmd_meta);
	if (c == 'g')
		return process_mg(req);
	if (c == 'd')
		return process_md(req);
	return process_ma(req);
}
