/*
 * api_batch.c - writes of many keys in one round trip per batch
 *
 * shmkv_set_many and shmkv_delete_many send their commands in the meta
 * protocol's quiet mode (the q flag: the server answers only what did not
 * succeed) with the item's index as the opaque token (O), closed by an mn
 * that the server answers MN once it has applied everything before it.
 * So a batch costs one send and one short read, not a round trip a key:
 * every item is OK unless a reply line names it.
 *
 * Commands go out in chunks of at most CHUNK_ITEMS items and about
 * CHUNK_BYTES bytes, each closed by its own mn.  NOTE: one unbounded
 * pipeline would be one round trip fewer, but the server's replies to it
 * could fill the socket while this process is still blocked sending, and
 * both would wait forever; a chunk's replies (at most one short line an
 * item) always fit in the socket's buffer.
 *
 * An error reply (SERVER_ERROR ...) carries no opaque token in memcached's
 * protocol, so it cannot be paired with its item.  Keys that cannot be sent
 * are caught here before they go; if the server answers an error (a value
 * over its item limit, out of memory), that chunk is sent once more without
 * q, where every command gets its reply in order.  Sending a set again is
 * harmless: it stores the same item.  NOTE: checking values against the
 * item limit here as well would save that resend, but the limit is the
 * server's to apply, and the resend is what makes the exact pairing hold
 * for every error the server may give.
 *
 * Interface routines: shmkv_set_many, shmkv_delete_many; api_delete_many
 * for api_scan.c.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

#define CHUNK_ITEMS 1024u
#define CHUNK_BYTES (256u * 1024u)
#define HEAD_MAX 400
#define REPLY_MAX 512

/* api_outbuf_add - append n bytes, growing b; 0 or -1 (out of memory). */
int api_outbuf_add(struct api_outbuf *b, const void *data, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 64 * 1024;
		char *bigger;

		while (cap < b->len + n)
			cap *= 2;
		bigger = realloc(b->p, cap);
		if (bigger == NULL)
			return -1;
		b->p = bigger;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	return 0;
}

/* One chunk's items: [first, first + n) of the caller's array. */
struct chunk {
	struct shmkv_write *items;
	size_t n;
	bool is_delete;
};

/* The chunk's commands, quiet or not, and the closing mn. */
static int chunk_encode(const struct chunk *c, bool quiet, struct api_outbuf *b)
{
	char key64[API_KEY64_MAX], head[HEAD_MAX];
	const char *q = quiet ? " q" : "";

	b->len = 0;
	for (size_t i = 0; i < c->n; i++) {
		struct shmkv_write *w = &c->items[i];
		const char *bflag;
		int n;

		/* A key that cannot be sent fails alone; the batch goes on. */
		w->status = api_wire_key(w->key, w->key_len, key64, &bflag);
		if (w->status != SHMKV_OK)
			continue;
		if (c->is_delete)
			n = snprintf(head, sizeof(head), "md %s%s%s O%zu\r\n",
				     key64, bflag, q, i);
		else
			n = snprintf(head, sizeof(head),
				     "ms %s %zu%s F%" PRIu32 " T%" PRId64
				     "%s O%zu\r\n",
				     key64, w->value_len, bflag, w->flags,
				     w->ttl, q, i);
		if (api_outbuf_add(b, head, (size_t)n) < 0)
			return -1;
		if (!c->is_delete &&
		    (api_outbuf_add(b, w->value != NULL ? w->value : "",
				    w->value_len) < 0 ||
		     api_outbuf_add(b, "\r\n", 2) < 0))
			return -1;
	}
	return api_outbuf_add(b, "mn\r\n", 4);
}

/*
 * The index in " O<i>" of a meta reply line (a two-letter code, then its
 * flags), or -1 for any other line (SERVER_ERROR ..., which has none).
 */
static long reply_opaque(const char *line, size_t n)
{
	const char *o;
	char *end;
	long i;

	if (strlen(line) < 2 || line[2] != ' ' || line[0] < 'A' || line[0] > 'Z')
		return -1;
	o = strstr(line, " O");
	if (o == NULL)
		return -1;
	i = strtol(o + 2, &end, 10);
	if (end == o + 2 || (*end != '\0' && *end != ' ') || i < 0 ||
	    (size_t)i >= n)
		return -1;
	return i;
}

/*
 * Read replies up to MN.  Quiet: each line names its item by opaque; an
 * error line that names none sets *unpaired.  Not quiet: one line per item
 * sent, in order.
 */
static enum shmkv_status chunk_replies(shmkv *kv, const struct chunk *c,
				       bool quiet, bool *unpaired)
{
	char line[REPLY_MAX];
	size_t next = 0;

	for (;;) {
		if (wire_read_line(&kv->wire, line, sizeof(line)) < 0) {
			api_detach(kv);
			return api_fail(SHMKV_SERVER_GONE,
					"lost the server at %s "
					"during a batch",
					kv->path);
		}
		if (strcmp(line, "MN") == 0)
			return SHMKV_OK;
		long i = reply_opaque(line, c->n);

		if (!quiet) {
			while (next < c->n && c->items[next].status != SHMKV_OK)
				next++;
			if (next == c->n)
				return api_fail(SHMKV_PROTOCOL,
						"more replies than "
						"commands: %s",
						line);
			i = (long)next++;
		} else if (i < 0) {
			*unpaired = true;
			continue;
		}
		c->items[i].status = api_reply_status(line);
	}
}

static enum shmkv_status chunk_run(shmkv *kv, const struct chunk *c,
				   struct api_outbuf *b)
{
	bool unpaired = false;
	enum shmkv_status st = SHMKV_OK;

	for (int pass = 0; pass < 2; pass++) {
		bool quiet = pass == 0;
		struct iovec iov;
		int rc;

		if (chunk_encode(c, quiet, b) < 0)
			return api_fail(SHMKV_OUT_OF_MEMORY, "out of memory");
		iov.iov_base = b->p;
		iov.iov_len = b->len;
		rc = wire_send_all(&kv->wire, &iov, 1);
		if (rc < 0) {
			api_detach(kv);
			return api_fail(SHMKV_SERVER_GONE,
					"lost the server at %s: "
					"%s",
					kv->path, strerror(-rc));
		}
		st = chunk_replies(kv, c, quiet, &unpaired);
		if (st != SHMKV_OK || !unpaired || c->is_delete)
			return st;
	}
	return st;
}

static enum shmkv_status write_many(shmkv *kv, struct shmkv_write *items,
				    size_t n, bool is_delete)
{
	struct api_outbuf b = { 0 };
	enum shmkv_status st;
	size_t done = 0;

	pthread_mutex_lock(&kv->mu);
	st = api_ensure_live(kv);
	while (st == SHMKV_OK && done < n) {
		struct chunk c = {
			.items = items + done,
			.is_delete = is_delete,
		};
		size_t bytes = 0;

		/* At least one item, however large its value. */
		while (c.n < CHUNK_ITEMS && done + c.n < n && bytes < CHUNK_BYTES)
			bytes += HEAD_MAX / 4 +
				 (is_delete ? 0 : items[done + c.n].value_len),
				c.n++;
		st = chunk_run(kv, &c, &b);
		if (st == SHMKV_OK)
			done += c.n;
	}
	pthread_mutex_unlock(&kv->mu);
	free(b.p);
	/* What was not applied for certain says why, as shmkv_get_many does. */
	for (size_t i = done; st != SHMKV_OK && i < n; i++)
		items[i].status = st;
	return st;
}

enum shmkv_status shmkv_set_many(shmkv *kv, struct shmkv_write *items, size_t n)
{
	return api_result(write_many(kv, items, n, false));
}

enum shmkv_status api_delete_many(shmkv *kv, struct shmkv_write *items, size_t n)
{
	return write_many(kv, items, n, true);
}

enum shmkv_status shmkv_delete_many(shmkv *kv, struct shmkv_write *items, size_t n)
{
	return api_result(api_delete_many(kv, items, n));
}
