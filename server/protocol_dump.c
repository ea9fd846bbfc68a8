/*
 * protocol_dump.c - memcached's key listings: `lru_crawler metadump` and
 * `stats cachedump`
 *
 * Both list live items with memcached's line formats, which memcached-tool
 * (dump, keys), libmemcached's memcdump and pymemcache's
 * stats('cachedump', ...) parse.  The walk (client/table_walk.c) holds one
 * partition's lock shared over DUMP_BUCKETS buckets at a time, so writers
 * get in between however large the cache; the lines go to the reply as
 * they are found.  A "class" is a partition, numbered from 1 as in `stats
 * items`.  As memcached, cachedump stops at 2 MiB of reply; metadump lists
 * everything.
 *
 * Interface routines:
 *   proto_dump_metadump   answer `lru_crawler ...`
 *   proto_dump_cachedump  answer `stats cachedump <class> <limit>`
 */
#include <stdio.h>
#include <string.h>

#include "protocol_stats.h"
#include "table_walk.h"

#define DUMP_BUCKETS 64u
#define CACHEDUMP_MAX_BYTES (2u * 1024u * 1024u)  /* memcached's limit */

struct dump {
	struct proto_req *req;
	unsigned cls;
	uint32_t limit;         /* cachedump: 0 = all */
	uint32_t shown;
	size_t start;           /* out->len when the listing began */
	bool full;
};

/* memcached's uriencode: what is not alphanumeric nor -._~ as %XX. */
static void add_key_encoded(struct proto_req *req, const unsigned char *k,
			    size_t n)
{
	char buf[3 * 250 + 1];
	size_t o = 0;

	for (size_t i = 0; i < n && o + 4 <= sizeof(buf); i++) {
		unsigned char c = k[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
		    c == '~')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%%%02X", c);
	}
	proto_add(req, buf, o);
}

static void meta_line(void *arg, const struct table_walk_entry *e)
{
	struct dump *d = arg;

	proto_adds(d->req, "key=");
	add_key_encoded(d->req, e->key, e->key_len);
	proto_addf(d->req, " exp=%lld la=%u cas=%llu fetch=%s cls=%u size=%llu\r\n",
		   e->exptime ? (long long)e->exptime : -1LL, e->last_access,
		   (unsigned long long)e->cas, e->fetched ? "yes" : "no", d->cls,
		   (unsigned long long)e->total_size);
}

static void cache_line(void *arg, const struct table_walk_entry *e)
{
	struct dump *d = arg;

	if (d->full || (d->limit != 0 && d->shown >= d->limit) ||
	    d->req->out->len - d->start >= CACHEDUMP_MAX_BYTES) {
		d->full = true;
		return;
	}
	proto_adds(d->req, "ITEM ");
	proto_add(d->req, e->key, e->key_len);
	proto_addf(d->req, " [%u b; %u s]\r\n", e->value_len, e->exptime);
	d->shown++;
}

/* walk_partition - every bucket of partition p, DUMP_BUCKETS a hold. */
static void walk_partition(struct dump *d, uint32_t p, table_walk_fn fn)
{
	struct table *t = d->req->ctx->table;
	uint32_t end = table_walk_buckets(t), b = 0;

	d->cls = p + 1;
	while (b < end && !d->full && !d->req->oom)
		b = table_walk(t, p, b, DUMP_BUCKETS, fn, d);
}

/*
 * proto_dump_metadump - `lru_crawler metadump all|hash|<classes>`: every
 * live key with its expiry, last access, CAS, fetched bit, class and
 * size, then END.  Classes are "1,3,5" (partitions + 1).  Other
 * lru_crawler subcommands drive memcached's crawler, which shmkv does not
 * have: ERROR.
 */
void proto_dump_metadump(struct proto_req *req)
{
	struct table *t = req->ctx->table;
	struct dump d = { .req = req };
	const struct proto_token *what = &req->tokens[2];

	if (req->ntokens != 4 || !proto_tok_is(&req->tokens[1], "metadump")) {
		proto_reply(req, "ERROR");
		return;
	}
	if (proto_tok_is(what, "all") || proto_tok_is(what, "hash")) {
		for (uint32_t p = 0; p < t->npartitions; p++)
			walk_partition(&d, p, meta_line);
	} else {
		const char *s = what->value, *end = what->value + what->length;

		while (s < end) {
			const char *comma = memchr(s, ',', (size_t)(end - s));
			size_t len = comma ? (size_t)(comma - s) : (size_t)(end - s);
			uint32_t cls;

			if (!proto_num_u32_str(s, len, &cls) || cls == 0 ||
			    cls > t->npartitions) {
				proto_reply(req, "CLIENT_ERROR bad class id");
				return;
			}
			walk_partition(&d, cls - 1, meta_line);
			s += len + (comma != NULL);
		}
	}
	proto_adds(req, "END\r\n");
}

/* proto_dump_cachedump - `stats cachedump <class> <limit>`, memcached's. */
void proto_dump_cachedump(struct proto_req *req)
{
	struct table *t = req->ctx->table;
	struct dump d = { .req = req, .start = req->out->len };
	uint32_t cls;

	if (req->ntokens < 5) {
		proto_reply(req, "CLIENT_ERROR bad command line");
		return;
	}
	if (!proto_num_u32(&req->tokens[2], &cls) ||
	    !proto_num_u32(&req->tokens[3], &d.limit)) {
		proto_reply(req, "CLIENT_ERROR bad command line format");
		return;
	}
	/* memcached: ids from 64 on are illegal, lower ones may be empty. */
	if (cls >= 64 && cls > t->npartitions) {
		proto_reply(req, "CLIENT_ERROR Illegal slab id");
		return;
	}
	if (cls >= 1 && cls <= t->npartitions)
		walk_partition(&d, cls - 1, cache_line);
	proto_adds(req, "END\r\n");
}
