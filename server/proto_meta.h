/*
 * proto_meta.h - what the meta protocol's files share
 *
 * A meta command's flags are parsed once, into struct meta_flags, by
 * proto_meta_flags.c; protocol_meta.c runs the command and writes its
 * reply.
 *
 * Interface routines (proto_meta_flags.c):
 *   meta_preparse       check and parse a command's flags
 *   meta_has            whether a flag came before a token
 *   meta_final_viv_ttl  the TTL an item N creates ends with
 *   meta_ttl_plan       T's and N's exptimes
 *   meta_ttl_before     the exptime at a token's place
 */
#ifndef SHMKV_PROTO_META_H
#define SHMKV_PROTO_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol_internal.h"

#define KEY_TOKEN 1	   /* the key is the command's second token */
#define META_MAX_TOKENS 20 /* memcached's MFLAG_MAX_OPT_LENGTH */
#define META_OPAQUE_MAX 32 /* the O token, O included */
#define META_LINE_MAX 1024 /* a reply line's flags, at most */

/* What a meta command's flags asked for, parsed. */
struct meta_flags {
	const char *errstr;
	bool has_error;
	bool key_binary;
	bool value, no_update, no_reply, set_stale;
	bool vivify, new_ttl, recache, has_cas;
	int32_t autoviv_exptime, exptime, recache_time;
	uint32_t client_flags;
	uint64_t req_cas, initial, delta;
	char mode;
	const char *key; /* the key the table sees (decoded if b) */
	size_t nkey;
	unsigned char keybuf[PROTO_KEY_MAX];
	/* Each flag's token index, 0 if absent (a flag appears once). */
	uint8_t at[128];
	/* memcached applies flags in order and errs at the first opaque over
	 * META_OPAQUE_MAX, so what follows it never happens: end is that
	 * token's index, else the end of the flags. */
	bool opaque_too_long;
	size_t end;
};

/*
 * meta_preparse - check and parse the flags tokens[start..] of req into of
 * (zeroed by the caller).  Returns 0, or -1 with of->errstr set.
 */
int meta_preparse(const struct proto_req *req, size_t start,
		  struct meta_flags *of);

/* meta_has - whether flag is among of's flags before token index before. */
static inline bool meta_has(const struct meta_flags *of, char flag, size_t before)
{
	uint8_t i = of->at[(unsigned char)flag & 127];

	return i != 0 && i < before;
}

/*
 * memcached applies T, and N when the command created the item, as it
 * meets them in the request, so a t reports the TTL as it stands at its
 * place: "mg k t N30" answers t-1 for a new item, "mg k N30 T60 t" t60.
 */
struct meta_ttls {
	bool created;	   /* N made the item */
	uint32_t before;   /* the item's exptime before T and N */
	uint32_t touch_at; /* T's exptime */
	uint32_t viv_at;   /* N's exptime */
};

int64_t meta_final_viv_ttl(const struct meta_flags *of);
void meta_ttl_plan(const struct proto_req *req, const struct meta_flags *of,
		   struct meta_ttls *m);
/* meta_ttl_before - the item's exptime once the flags before tokens[at] ran. */
uint32_t meta_ttl_before(const struct meta_flags *of, size_t at,
			 const struct meta_ttls *m);

#endif
