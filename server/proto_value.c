/*
 * proto_value.c - what the text and meta handlers both write for a value
 *
 * A hit's reply is a header line, the value, "\r\n".  proto_fetch_value
 * does the lookup once and lets the table copy the value once, straight
 * from the segment to its place in the reply: the table calls back, under
 * the partition lock, with the item's length, flags and CAS; the callback
 * grows the reply for header and value, writes the header and says where
 * the value goes.  NOTE: the alternatives cost more per request: copying
 * into a guessed-size buffer and looking up again when the value is larger
 * (two lookups), or copying past room for the longest header and moving
 * the value back behind the real one (two copies).  The price is that the
 * header is formatted and the buffer may grow while the lock is held; the
 * header is a few digits, and a realloc is rare once the reply buffer has
 * grown to the connection's usual size.
 *
 * A store's outcome maps to counters and to the same reply in both
 * protocols (STORED/HD, NOT_STORED/NS, ...): proto_store_outcome.
 *
 * Interface routines:
 *   proto_fetch_value    one lookup, one copy, header and value appended
 *   proto_store_outcome  a store's counters and reply words
 */
#include <string.h>

#include "protocol_internal.h"

struct fetch {
	struct proto_req *req;
	proto_header_fn header;
	void *header_arg;
	size_t header_len;
};

/* reserve_reply - the table's callback: room, header, value's place. */
static void *reserve_reply(void *arg, const struct table_item_info *info)
{
	struct fetch *f = arg;
	struct proto_out *out = f->req->out;
	char *base;

	if (proto_out_reserve(out, PROTO_HEADER_MAX + info->value_len + 2) != 0)
		return NULL;
	base = out->data + out->len;
	f->header_len = f->header(base, info, f->header_arg);
	return base + f->header_len;
}

enum table_status proto_fetch_value(struct proto_req *req, const void *key,
				    size_t key_len,
				    const struct table_get_opts *opts,
				    proto_header_fn header, void *header_arg,
				    struct table_item_info *info)
{
	struct fetch f = { req, header, header_arg, 0 };
	struct table_value_sink sink = { reserve_reply, &f };
	struct proto_out *out = req->out;
	const struct proto_conn *pc = req->conn;
	enum table_status st;
	/* The very bytes proto_peek_key hashed for this call, or not. */
	uint64_t hash = key == pc->peek_key && key_len == pc->peek_len
				? pc->peek_hash
				: table_hash(key, key_len);

	st = table_get_into(req->ctx->table, hash, key, key_len, opts,
			    header != NULL ? &sink : NULL, info);
	if (st == TABLE_TOO_SMALL) {
		/* Only reserve_reply refuses room: the reply cannot grow. */
		req->oom = true;
		return TABLE_NO_MEMORY;
	}
	if (st == TABLE_OK && header != NULL) {
		out->len += f.header_len + info->value_len;
		memcpy(out->data + out->len, "\r\n", 2);
		out->len += 2;
	}
	return st;
}

static const struct proto_store_words words_stored = { "STORED", "HD" };
static const struct proto_store_words words_not_stored = { "NOT_STORED", "NS" };
static const struct proto_store_words words_exists = { "EXISTS", "EX" };
static const struct proto_store_words words_not_found = { "NOT_FOUND", "NF" };
static const struct proto_store_words words_too_large = {
	"SERVER_ERROR object too large for cache", NULL
};
static const struct proto_store_words words_no_memory = {
	"SERVER_ERROR out of memory storing object", NULL
};
static const struct proto_store_words words_bad_format = {
	"CLIENT_ERROR bad command line format", NULL
};

const struct proto_store_words *proto_store_outcome(struct proto_req *req,
						    enum table_store_mode mode,
						    bool compare_cas,
						    enum table_status *st)
{
	/* memcached's cas counters are its cas command's: a set or replace
	 * with a CAS (an append's CAS check counts nothing). */
	bool cas_cmd = mode == TABLE_CAS ||
		       (compare_cas &&
			(mode == TABLE_SET || mode == TABLE_REPLACE));

	/* memcached 1.6 answers an append or prepend whose new item cannot
	 * be allocated (past -I, or no memory) NOT_STORED, not an error. */
	if (*st == TABLE_NO_MEMORY &&
	    (mode == TABLE_APPEND || mode == TABLE_PREPEND)) {
		PROTO_STAT(req, store_no_memory);
		*st = TABLE_NOT_STORED;
	}
	switch (*st) {
	case TABLE_OK:
		if (cas_cmd)
			PROTO_STAT(req, cas_hits);
		return &words_stored;
	case TABLE_NOT_STORED: return &words_not_stored;
	case TABLE_EXISTS:
		if (cas_cmd)
			PROTO_STAT(req, cas_badval);
		return &words_exists;
	case TABLE_NOT_FOUND: /* only a store with a CAS misses */
		PROTO_STAT(req, cas_misses);
		return &words_not_found;
	case TABLE_TOO_LARGE:
		PROTO_STAT(req, store_too_large);
		return &words_too_large;
	case TABLE_NO_MEMORY:
		PROTO_STAT(req, store_no_memory);
		return &words_no_memory;
	default: return &words_bad_format;
	}
}
