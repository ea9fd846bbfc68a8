/*
 * api_write.c - the client library's writes, as meta commands
 *
 * A key of printable ASCII travels as it is; any other key travels
 * base64-encoded (the meta protocol's b flag), so a key may hold any bytes a
 * direct lookup can find.  NOTE: not every key is encoded, because the
 * server (as memcached) limits the key token on the wire to 250 characters:
 * base64 would cap every key at 186 bytes although lookups take 250.
 *
 * Each call sends one command and reads its one reply while holding the
 * handle's mutex, so replies cannot be paired with the wrong caller.  The
 * server applies a write before it replies: after a call returns, a direct
 * lookup sees its effect.
 *
 * Interface routines: shmkv_set, shmkv_add, shmkv_replace, shmkv_cas,
 * shmkv_append, shmkv_prepend, shmkv_delete, shmkv_touch, shmkv_incr,
 * shmkv_decr, shmkv_flush, shmkv_server_stats (see include/shmkv.h); for
 * api_batch.c, api_reply_status and api_wire_key.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "number.h"

#define CMD_MAX 512
#define LINE_MAX_REPLY 512
/* The longest key whose base64 fits the server's 250-character key token. */
#define KEY_BINARY_MAX SHMKV_KEY_BINARY_MAX
_Static_assert(4 * ((KEY_BINARY_MAX + 2) / 3) <= SHMKV_KEY_MAX &&
		       4 * ((KEY_BINARY_MAX + 3) / 3) > SHMKV_KEY_MAX,
	       "SHMKV_KEY_BINARY_MAX is the longest key base64 fits in 250");

/* memcached's reply lines, and what a caller of this library makes of them. */
enum shmkv_status api_reply_status(const char *line)
{
	static const struct {
		const char *prefix;
		enum shmkv_status st;
	} map[] = {
		{ "HD", SHMKV_OK },
		{ "NS", SHMKV_NOT_STORED },
		{ "EX", SHMKV_EXISTS },
		{ "NF", SHMKV_NOT_FOUND },
		{ "EN", SHMKV_NOT_FOUND },
		{ "SERVER_ERROR object too large", SHMKV_TOO_LARGE },
		{ "SERVER_ERROR out of memory", SHMKV_NO_MEMORY },
		{ "CLIENT_ERROR cannot increment or decrement non-numeric",
		  SHMKV_NON_NUMERIC },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		size_t n = strlen(map[i].prefix);

		if (strncmp(line, map[i].prefix, n) == 0 &&
		    (line[n] == '\0' || line[n] == ' '))
			return map[i].st;
	}
	return api_fail(SHMKV_PROTOCOL, "unexpected reply from the server: %s",
			line);
}

/*
 * Send a command (head, then an optional data block) and read its reply
 * line; a broken connection detaches so the next call reattaches.
 */
static enum shmkv_status roundtrip(shmkv *kv, const char *head, size_t head_len,
				   const void *data, size_t data_len,
				   char *line, size_t cap)
{
	struct iovec iov[3] = {
		{ (void *)head, head_len },
		{ (void *)data, data_len },
		{ (void *)"\r\n", 2 },
	};
	int rc = wire_send_all(&kv->wire, iov, data != NULL ? 3 : 1);

	if (rc == 0)
		rc = wire_read_line(&kv->wire, line, cap);
	if (rc < 0) {
		api_detach(kv);
		return api_fail(SHMKV_SERVER_GONE, "lost the server at %s: %s",
				kv->path, strerror(-rc));
	}
	return SHMKV_OK;
}

/*
 * The key as the meta protocol carries it: itself if every byte is
 * printable ASCII (the bytes a memcached key token may hold everywhere),
 * else base64 with the b flag in *bflag.  SHMKV_BAD_KEY if it cannot go.
 */
enum shmkv_status api_wire_key(const void *key, size_t key_len,
			       char out[API_KEY64_MAX], const char **bflag)
{
	const unsigned char *k = key;
	bool plain = true;

	if (key_len == 0 || key_len > SHMKV_KEY_MAX)
		return api_fail(SHMKV_BAD_KEY, "%s (this one has %zu)",
				shmkv_strerror(SHMKV_BAD_KEY), key_len);
	for (size_t i = 0; i < key_len && plain; i++)
		plain = k[i] > ' ' && k[i] < 0x7f;
	if (plain) {
		memcpy(out, key, key_len);
		out[key_len] = '\0';
		*bflag = "";
		return SHMKV_OK;
	}
	if (key_len > KEY_BINARY_MAX)
		return api_fail(SHMKV_BAD_KEY,
				"a key with spaces, control or "
				"non-ASCII bytes can be written only up to %d "
				"bytes (base64 of it must fit memcached's "
				"250-character key); this one has %zu",
				KEY_BINARY_MAX, key_len);
	wire_base64(key, key_len, out);
	*bflag = " b";
	return SHMKV_OK;
}

/* One command whose reply is one status line, under the handle's mutex. */
static enum shmkv_status status_command(shmkv *kv, const char *head,
					size_t head_len, const void *data,
					size_t data_len)
{
	char line[LINE_MAX_REPLY];
	enum shmkv_status st;

	pthread_mutex_lock(&kv->mu);
	st = api_ensure_live(kv);
	if (st == SHMKV_OK)
		st = roundtrip(kv, head, head_len, data, data_len, line,
			       sizeof(line));
	if (st == SHMKV_OK)
		st = api_reply_status(line);
	pthread_mutex_unlock(&kv->mu);
	return st;
}

/* ms with opts (its flags after the length), then the value. */
static enum shmkv_status store_with(shmkv *kv, const void *key, size_t key_len,
				    const void *value, size_t value_len,
				    const char *opts)
{
	char key64[API_KEY64_MAX], head[CMD_MAX];
	const char *b;
	enum shmkv_status st = api_wire_key(key, key_len, key64, &b);
	int n;

	if (st != SHMKV_OK)
		return st;
	n = snprintf(head, sizeof(head), "ms %s %zu%s%s\r\n", key64, value_len,
		     b, opts);
	/* A data block always follows ms, even an empty one: with value NULL
	 * (len 0) the server would wait for it forever. */
	return status_command(kv, head, (size_t)n, value != NULL ? value : "",
			      value_len);
}

static enum shmkv_status store_by_mode(shmkv *kv, char mode, const void *key,
				       size_t key_len, const void *value,
				       size_t value_len, uint32_t flags,
				       int64_t ttl)
{
	char opts[64];

	snprintf(opts, sizeof(opts), " F%" PRIu32 " T%" PRId64 " M%c", flags,
		 ttl, mode);
	return store_with(kv, key, key_len, value, value_len, opts);
}

enum shmkv_status shmkv_set(shmkv *kv, const void *key, size_t key_len,
			    const void *value, size_t value_len, uint32_t flags,
			    int64_t ttl)
{
	return api_result(store_by_mode(kv, 'S', key, key_len, value, value_len,
					flags, ttl));
}

enum shmkv_status shmkv_add(shmkv *kv, const void *key, size_t key_len,
			    const void *value, size_t value_len, uint32_t flags,
			    int64_t ttl)
{
	return api_result(store_by_mode(kv, 'E', key, key_len, value, value_len,
					flags, ttl));
}

enum shmkv_status shmkv_replace(shmkv *kv, const void *key, size_t key_len,
				const void *value, size_t value_len,
				uint32_t flags, int64_t ttl)
{
	return api_result(store_by_mode(kv, 'R', key, key_len, value, value_len,
					flags, ttl));
}

enum shmkv_status shmkv_cas(shmkv *kv, const void *key, size_t key_len,
			    const void *value, size_t value_len, uint32_t flags,
			    int64_t ttl, uint64_t cas)
{
	char opts[96];

	snprintf(opts, sizeof(opts), " F%" PRIu32 " T%" PRId64 " C%" PRIu64,
		 flags, ttl, cas);
	return api_result(store_with(kv, key, key_len, value, value_len, opts));
}

/* Append and prepend keep the item's flags and TTL, as memcached's do. */
enum shmkv_status shmkv_append(shmkv *kv, const void *key, size_t key_len,
			       const void *value, size_t value_len)
{
	return api_result(store_with(kv, key, key_len, value, value_len, " MA"));
}

enum shmkv_status shmkv_prepend(shmkv *kv, const void *key, size_t key_len,
				const void *value, size_t value_len)
{
	return api_result(store_with(kv, key, key_len, value, value_len, " MP"));
}

/* A command without a data block whose reply is one status line. */
static enum shmkv_status key_status_command(shmkv *kv, const char *fmt_cmd,
					    const void *key, size_t key_len,
					    const char *extra)
{
	char key64[API_KEY64_MAX], head[CMD_MAX];
	const char *b;
	enum shmkv_status st = api_wire_key(key, key_len, key64, &b);
	int n;

	if (st != SHMKV_OK)
		return st;
	n = snprintf(head, sizeof(head), "%s %s%s%s\r\n", fmt_cmd, key64, b,
		     extra);
	return status_command(kv, head, (size_t)n, NULL, 0);
}

enum shmkv_status shmkv_delete(shmkv *kv, const void *key, size_t key_len)
{
	return api_result(key_status_command(kv, "md", key, key_len, ""));
}

enum shmkv_status shmkv_touch(shmkv *kv, const void *key, size_t key_len,
			      int64_t ttl)
{
	char extra[32];

	snprintf(extra, sizeof(extra), " T%" PRId64, ttl);
	return api_result(key_status_command(kv, "mg", key, key_len, extra));
}

static enum shmkv_status arith(shmkv *kv, bool incr, const void *key,
			       size_t key_len, uint64_t delta, uint64_t *value)
{
	char key64[API_KEY64_MAX], head[CMD_MAX], line[LINE_MAX_REPLY];
	const char *b;
	enum shmkv_status st = api_wire_key(key, key_len, key64, &b);
	unsigned long long len = 0;
	int n;

	if (st != SHMKV_OK)
		return st;
	n = snprintf(head, sizeof(head), "ma %s%s M%c D%" PRIu64 " v\r\n",
		     key64, b, incr ? 'I' : 'D', delta);
	pthread_mutex_lock(&kv->mu);
	st = api_ensure_live(kv);
	if (st == SHMKV_OK)
		st = roundtrip(kv, head, (size_t)n, NULL, 0, line, sizeof(line));
	if (st == SHMKV_OK && sscanf(line, "VA %llu", &len) == 1) {
		char digits[32];
		uint64_t number;

		if (len >= sizeof(digits) ||
		    wire_read_line(&kv->wire, digits, sizeof(digits)) < 0 ||
		    !number_parse_u64(digits, strlen(digits), &number)) {
			api_detach(kv);
			st = api_fail(SHMKV_PROTOCOL,
				      "bad number from the server");
		} else if (value != NULL) {
			*value = number;
		}
	} else if (st == SHMKV_OK) {
		st = api_reply_status(line);
		if (st == SHMKV_OK)
			st = api_fail(SHMKV_PROTOCOL, "no value in: %s", line);
	}
	pthread_mutex_unlock(&kv->mu);
	return st;
}

enum shmkv_status shmkv_incr(shmkv *kv, const void *key, size_t key_len,
			     uint64_t delta, uint64_t *value)
{
	return api_result(arith(kv, true, key, key_len, delta, value));
}

enum shmkv_status shmkv_decr(shmkv *kv, const void *key, size_t key_len,
			     uint64_t delta, uint64_t *value)
{
	return api_result(arith(kv, false, key, key_len, delta, value));
}

enum shmkv_status shmkv_flush(shmkv *kv, int64_t delay)
{
	char head[64], line[LINE_MAX_REPLY];
	enum shmkv_status st;
	int n = snprintf(head, sizeof(head), "flush_all %" PRId64 "\r\n",
			 delay > 0 ? delay : 0);

	pthread_mutex_lock(&kv->mu);
	st = api_ensure_live(kv);
	if (st == SHMKV_OK)
		st = roundtrip(kv, head, (size_t)n, NULL, 0, line, sizeof(line));
	if (st == SHMKV_OK && strcmp(line, "OK") != 0)
		st = api_fail(SHMKV_PROTOCOL, "flush_all answered: %s", line);
	pthread_mutex_unlock(&kv->mu);
	return api_result(st);
}

static enum shmkv_status server_stats(shmkv *kv, char **text)
{
	static const char cmd[] = "stats\r\n";
	char line[LINE_MAX_REPLY];
	struct api_outbuf out = { 0 };
	enum shmkv_status st;

	*text = NULL;
	pthread_mutex_lock(&kv->mu);
	st = api_ensure_live(kv);
	if (st == SHMKV_OK)
		st = roundtrip(kv, cmd, sizeof(cmd) - 1, NULL, 0, line,
			       sizeof(line));
	while (st == SHMKV_OK && strcmp(line, "END") != 0) {
		size_t n = strlen(line);

		if (strncmp(line, "STAT ", 5) != 0) {
			st = api_fail(SHMKV_PROTOCOL,
				      "unexpected stats line: %s", line);
			break;
		}
		line[n] = '\n';
		if (api_outbuf_add(&out, line, n + 1) < 0) {
			st = api_fail(SHMKV_OUT_OF_MEMORY, "out of memory");
			break;
		}
		if (wire_read_line(&kv->wire, line, sizeof(line)) < 0) {
			api_detach(kv);
			st = api_fail(SHMKV_SERVER_GONE, "lost the server while "
							 "reading stats");
		}
	}
	pthread_mutex_unlock(&kv->mu);
	if (st == SHMKV_OK && api_outbuf_add(&out, "", 1) < 0)
		st = api_fail(SHMKV_OUT_OF_MEMORY, "out of memory");
	if (st != SHMKV_OK) {
		free(out.p);
		return st;
	}
	*text = out.p;
	return SHMKV_OK;
}

enum shmkv_status shmkv_server_stats(shmkv *kv, char **text)
{
	return api_result(server_stats(kv, text));
}
