/*
 * proto_meta_flags.c - a meta command's flags, checked and parsed once
 *
 * memcached's _meta_flag_preparse: one pass over the flag tokens that
 * rejects duplicates and unknown flags and parses the numbers, in
 * memcached's order, so that a line with several faults gets the error
 * memcached would give.
 *
 * Also the order memcached applies mg's and ma's T and N in, and where a
 * long opaque stops it.
 *
 * The pass records where each flag is and where a long opaque stops the
 * flags (struct meta_flags at, end), so that the order questions after it
 * read those instead of the tokens again.
 *
 * Interface routines (proto_meta.h): meta_preparse, meta_final_viv_ttl,
 * meta_ttl_plan, meta_ttl_before.
 */
#include <string.h>

#include "proto_meta.h"
#include "wire.h"

enum meta_flag_result {
	META_OK,
	META_STOP,
	META_BAD_TOKEN
};

/* meta_decode_key - b: the key token is base64 of the real key. */
static void meta_decode_key(struct meta_flags *of, const struct proto_token *key)
{
	of->nkey = wire_base64_decode(key->value, key->length, of->keybuf,
				      sizeof(of->keybuf));
	of->key = (const char *)of->keybuf;
	if (of->nkey == 0) {
		of->errstr = "CLIENT_ERROR error decoding key";
		of->has_error = true;
	}
	of->key_binary = true;
}

/*
 * meta_flag - parse one flag token t (its first byte o) into of.  key is
 * the command's key token, which b decodes.  META_STOP with of->errstr set
 * ends the scan; META_BAD_TOKEN is a number memcached could not read.
 */
static enum meta_flag_result meta_flag(struct meta_flags *of,
				       const struct proto_token *t,
				       const struct proto_token *key)
{
	unsigned char o = (unsigned char)t->value[0];
	const char *arg = t->value + 1;
	size_t alen = t->length - 1;

	switch (o) {
	case 'b': meta_decode_key(of, key); break;
	case 'N':
		of->vivify = true;
		if (!proto_num_i32_str(arg, alen, &of->autoviv_exptime))
			return META_BAD_TOKEN;
		break;
	case 'T':
		of->new_ttl = true;
		if (!proto_num_i32_str(arg, alen, &of->exptime))
			return META_BAD_TOKEN;
		break;
	case 'R':
		of->recache = true;
		if (!proto_num_i32_str(arg, alen, &of->recache_time))
			return META_BAD_TOKEN;
		break;
	case 'C':
		of->has_cas = true;
		if (!proto_num_u64_str(arg, alen, &of->req_cas))
			return META_BAD_TOKEN;
		break;
	case 'F':
		if (!proto_num_u32_str(arg, alen, &of->client_flags))
			of->has_error = true;
		break;
	case 'M':
		if (t->length != 2) {
			of->errstr = "CLIENT_ERROR incorrect length for M token";
			of->has_error = true;
		} else {
			of->mode = t->value[1];
		}
		break;
	case 'J':
		if (!proto_num_u64_str(arg, alen, &of->initial)) {
			of->errstr = "CLIENT_ERROR invalid numeric initial value";
			of->has_error = true;
		}
		break;
	case 'D':
		if (!proto_num_u64_str(arg, alen, &of->delta)) {
			of->errstr = "CLIENT_ERROR invalid numeric delta value";
			of->has_error = true;
		}
		break;
	case 'I': of->set_stale = true; break;
	case 'v': of->value = true; break;
	case 'u': of->no_update = true; break;
	case 'q': of->no_reply = true; break;
	case 'O':
	case 'P':
	case 'L':
	case 'k':
	case 's':
	case 't':
	case 'c':
	case 'f':
	case 'l':
	case 'h': break;
	default: of->errstr = "CLIENT_ERROR invalid flag"; return META_STOP;
	}
	return META_OK;
}

/*
 * meta_preparse - check and parse the flags tokens[start..].  Returns 0,
 * or -1 with of->errstr set.  A duplicate or unknown flag stops at once;
 * a bad number is remembered and the scan goes on (its message may be
 * overwritten by a later one), as memcached does.
 */
int meta_preparse(const struct proto_req *req, size_t start, struct meta_flags *of)
{
	const struct proto_token *t = req->tokens;
	size_t i;

	of->key = t[KEY_TOKEN].value;
	of->nkey = t[KEY_TOKEN].length;
	of->delta = 1;
	memset(of->at, 0, sizeof(of->at));
	of->opaque_too_long = false;
	for (i = start; i < req->ntokens && t[i].length != 0; i++) {
		unsigned char o = (unsigned char)t[i].value[0];

		if (o >= 127 || of->at[o] != 0) {
			of->errstr = "CLIENT_ERROR duplicate flag";
			return -1;
		}
		of->at[o] = (uint8_t)i; /* i < META_MAX_TOKENS, checked first */
		if (o == 'O' && t[i].length > META_OPAQUE_MAX) {
			of->opaque_too_long = true;
			of->end = i;
		}
		switch (meta_flag(of, &t[i], &t[KEY_TOKEN])) {
		case META_OK: break;
		case META_STOP: return -1;
		case META_BAD_TOKEN:
			of->errstr = "CLIENT_ERROR bad token in command line format";
			of->has_error = true;
			break;
		}
	}
	if (!of->opaque_too_long)
		of->end = i;
	return of->has_error ? -1 : 0;
}

/* meta_ttl_plan - T's and N's absolute exptimes for of. */
void meta_ttl_plan(const struct proto_req *req, const struct meta_flags *of,
		   struct meta_ttls *m)
{
	memset(m, 0, sizeof(*m));
	m->touch_at = table_exptime(req->ctx->table, of->exptime);
	m->viv_at = table_exptime(req->ctx->table, of->autoviv_exptime);
}

/*
 * meta_final_viv_ttl - the TTL an item N creates ends with: the later of T
 * and N before of->end; none (0, as memcached allocates it) if neither is.
 */
int64_t meta_final_viv_ttl(const struct meta_flags *of)
{
	bool t = meta_has(of, 'T', of->end), n = meta_has(of, 'N', of->end);

	if (t && (!n || of->at['T'] > of->at['N']))
		return of->exptime;
	return n ? of->autoviv_exptime : 0;
}

/* meta_ttl_before - the item's exptime once the flags before tokens[at] ran:
 * the later of T and (if it made the item) N, else the item's own. */
uint32_t meta_ttl_before(const struct meta_flags *of, size_t at,
			 const struct meta_ttls *m)
{
	bool t = meta_has(of, 'T', at), n = m->created && meta_has(of, 'N', at);

	if (t && (!n || of->at['T'] > of->at['N']))
		return m->touch_at;
	return n ? m->viv_at : m->before;
}
