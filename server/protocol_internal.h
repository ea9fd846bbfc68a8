/*
 * protocol_internal.h - what the protocol files share and nobody else uses
 *
 * protocol.c frames the input into commands, tokenizes each line exactly as
 * memcached 1.6 does (tokenize_command in proto_text.c) and hands it to the
 * text, meta or stats handler.  A handler sees one struct proto_req: the
 * line's tokens, the bytes that follow the line (a data block, if the
 * command has one) and the output buffer.
 *
 * A handler returns 0 when the command is finished (req->data_used says how
 * many bytes after the line it consumed), or PROTO_WAIT when its data block
 * is not all buffered yet (req->data_need says how many bytes after the line
 * it needs).  The line is then left unused and tokenized again once the
 * block is there: that happens only when a block arrives in a later read
 * than its line, and a re-tokenize of a short line is cheaper than keeping
 * a per-connection copy of the parsed command for every command.
 *
 * Interface routines:
 *   proto_helpers.c  proto_add, proto_adds, proto_addf, proto_reply (output),
 *                    proto_tokenize, proto_tok_is (tokens),
 *                    proto_num_*, proto_put_u64 (numbers), proto_key_ok,
 *                    proto_now (the table's clock)
 *   proto_value.c    proto_fetch_value (a hit's header and value into the
 *                    reply, one lookup, one copy), proto_store_outcome (a
 *                    store's counters and reply words)
 *   protocol_text.c  proto_text_dispatch
 *   protocol_meta.c  proto_meta_dispatch
 *   protocol_stats.c proto_stats_command
 */
#ifndef SHMKV_PROTOCOL_INTERNAL_H
#define SHMKV_PROTOCOL_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "protocol.h"
#include "stats_detail.h"

/* memcached's MAX_TOKENS: 23 tokens, then the rest of the line. */
#define PROTO_MAX_TOKENS 24
/* memcached closes a connection with this much buffered and no newline... */
#define PROTO_LINE_MAX 2048u
/* ...unless the line is a get/gets, whose key lists are unbounded there. */
#define PROTO_GET_LINE_MAX (1u << 20)
#define PROTO_KEY_MAX 250u
/* memcached refuses a data length whose block ("\r\n" added) overflows an
 * int as a bad command line, before any "too large". */
#define PROTO_VLEN_MAX (INT32_MAX - 2)
#define PROTO_WAIT 1
/* Digits of UINT64_MAX. */
#define PROTO_U64_DIGITS 20

struct proto_token {
	const char *value; /* NULL only for a terminal token at the line's end */
	size_t length;	   /* 0 for the terminal token */
};

struct proto_req {
	const struct proto_ctx *ctx;
	struct proto_conn *conn;
	struct proto_out *out;
	struct proto_token tokens[PROTO_MAX_TOKENS];
	size_t ntokens;	      /* memcached's count: real tokens + terminal */
	const char *line_end; /* where the command line's text ends */
	const char *data;     /* the bytes after the line */
	size_t data_avail;
	size_t data_used; /* out: bytes after the line consumed */
	size_t data_need; /* out, with PROTO_WAIT: bytes after the line needed */
	bool noreply;	  /* text noreply: suppress this command's reply */
	bool close;	  /* out: close after the replies (quit, HTTP) */
	bool oom;	  /* an append to out failed */
};

size_t proto_tokenize(const char *s, size_t len, struct proto_token *tokens,
		      size_t max_tokens);

/* proto_tok_is - the token is word; inline so strlen of a literal folds. */
static inline bool proto_tok_is(const struct proto_token *t, const char *word)
{
	size_t n = __builtin_strlen(word);

	return t->length == n && __builtin_memcmp(t->value, word, n) == 0;
}

int proto_add(struct proto_req *req, const void *p, size_t n);
int proto_adds(struct proto_req *req, const char *s);
int proto_addf(struct proto_req *req, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void proto_reply(struct proto_req *req, const char *line);

bool proto_num_u32(const struct proto_token *t, uint32_t *out);
bool proto_num_i32(const struct proto_token *t, int32_t *out);
bool proto_num_u64(const struct proto_token *t, uint64_t *out);
bool proto_num_u32_str(const char *s, size_t len, uint32_t *out);
bool proto_num_i32_str(const char *s, size_t len, int32_t *out);
bool proto_num_u64_str(const char *s, size_t len, uint64_t *out);
/* proto_put_u64 - v in decimal at dst (room for PROTO_U64_DIGITS); length. */
size_t proto_put_u64(char *dst, uint64_t v);

bool proto_key_ok(const struct proto_token *key);

uint32_t proto_now(const struct proto_ctx *ctx);

/*
 * proto_header_fn - write a hit's reply line ("VALUE ...\r\n", "VA ...\r\n")
 * at dst, at most PROTO_HEADER_MAX bytes, from the item's description;
 * returns its length.  Runs under the partition lock: no lock, no I/O.
 */
#define PROTO_HEADER_MAX 1100u
typedef size_t (*proto_header_fn)(char *dst, const struct table_item_info *info,
				  void *arg);

/*
 * proto_fetch_value - look key up once; on a hit append header(info) then
 * the value and "\r\n" to the reply, the value copied once, straight from
 * the segment into place.  With header NULL nothing is appended (a lookup
 * for its description only).  Returns the table's status; req->oom is set
 * (and TABLE_NO_MEMORY returned) if the reply could not grow.
 */
enum table_status proto_fetch_value(struct proto_req *req, const void *key,
				    size_t key_len,
				    const struct table_get_opts *opts,
				    proto_header_fn header, void *header_arg,
				    struct table_item_info *info);

/* What a store's outcome looks like to a client, in each protocol. */
struct proto_store_words {
	const char *text; /* text protocol's reply line */
	const char *meta; /* meta's two letters; NULL: an error, send text */
};

/*
 * proto_store_outcome - count the outcome st of a store (mode; compare_cas
 * when the store carried a CAS) as memcached does and return its reply.
 * An append or prepend whose longer item cannot be allocated is NOT_STORED
 * there, not an error: *st is changed to TABLE_NOT_STORED then.
 */
const struct proto_store_words *proto_store_outcome(struct proto_req *req,
						    enum table_store_mode mode,
						    bool compare_cas,
						    enum table_status *st);

/* proto_stat_add - count n on this worker's counter (none in a parser
 * without a server, as in the fuzzer). */
static inline void proto_stat_add(const struct proto_ctx *ctx,
				  _Atomic uint64_t *counter, uint64_t n)
{
	if (ctx->stats == NULL)
		return;
	server_stats_add(counter, n);
}
#define PROTO_STAT(req, field) \
	do { \
		if ((req)->ctx->stats != NULL) \
			proto_stat_add((req)->ctx, &(req)->ctx->stats->field, \
				       1); \
	} while (0)

/*
 * proto_cas_off - memcached's -C: every CAS a reply shows is 0, so a
 * compare against an item's CAS matches only 0 (md, ma) and a store with
 * a CAS to compare never matches an item (its CAS is 0 only to the
 * client; the table's own CAS, which flush_all relies on, is kept).
 */
static inline bool proto_cas_off(const struct proto_ctx *ctx)
{
	return ctx->settings != NULL && ctx->settings->cas_disabled;
}

/* proto_cas_shown - an item's CAS as a reply shows it (0 with -C). */
static inline uint64_t proto_cas_shown(const struct proto_ctx *ctx, uint64_t cas)
{
	return proto_cas_off(ctx) ? 0 : cas;
}

/* PROTO_DETAIL - count a text get, set or delete for `stats detail`; with
 * detail off (the usual case) no call is made. */
#define PROTO_DETAIL(req, key, kind, hit) \
	do { \
		if (server_detail_enabled((req)->ctx->all)) \
			server_detail_count((req)->ctx->all, (key)->value, \
					    (key)->length, (kind), (hit)); \
	} while (0)

int proto_text_dispatch(struct proto_req *req);
int proto_meta_dispatch(struct proto_req *req);
int proto_stats_command(struct proto_req *req);

#endif
