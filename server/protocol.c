/*
 * protocol.c - split bytes into commands, pick the protocol, shared helpers
 *
 * proto_process is the whole interface the connection layer sees: bytes in,
 * replies out, bytes consumed.  It finds each line, tokenizes it the way
 * memcached 1.6's tokenize_command does (split on spaces only, at most 23
 * tokens then the rest of the line, a NUL ends the line) and dispatches: a
 * two-letter command starting with 'm' to the meta protocol, "stats" to
 * protocol_stats.c, everything else to the text protocol.  Matching
 * memcached's tokenizer rather than writing a stricter one is deliberate:
 * the replies to odd input ("get a  b", "set a 0 0 1 foo", a flags value of
 * 2^32) are part of what clients and proxies already depend on.
 *
 * Three pieces of state live across calls, in struct proto_conn:
 *   - an incomplete line or data block is simply not consumed; need says
 *     how long the unconsumed tail must grow before a call can progress;
 *   - swallow counts the bytes of a refused data block (a value too large)
 *     still to be skipped, since memcached skips them rather than parse
 *     the value as commands, and they may arrive over many reads;
 *   - verbosity, which only `verbosity` sets.
 *
 * Lines longer than PROTO_LINE_MAX without a newline close the connection
 * without a reply, as memcached 1.6 does (it does not say "line too long");
 * get and gets may be longer, their key lists being unbounded there.
 *
 * Interface routines:
 *   proto_out_reserve  make room in an output buffer
 *   proto_conn_init    a new connection's parser state
 *   proto_process      answer every whole command in a buffer
 * and the helpers of protocol_internal.h.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocol_internal.h"

/*
 * proto_out_reserve - make out->cap at least out->len + n.  Grows by
 * doubling so that appending a pipelined batch's replies is amortised
 * linear.  Returns 0, or -ENOMEM with out unchanged.
 */
int proto_out_reserve(struct proto_out *out, size_t n)
{
	size_t cap;
	char *p;

	if (n <= out->cap - out->len)
		return 0;
	if (n > SIZE_MAX / 2 - out->len)
		return -ENOMEM;
	cap = out->cap ? out->cap : 1024;
	while (cap < out->len + n)
		cap *= 2;
	p = realloc(out->data, cap);
	if (p == NULL)
		return -ENOMEM;
	out->data = p;
	out->cap = cap;
	return 0;
}

/* proto_conn_init - the state of a connection that has sent nothing yet. */
void proto_conn_init(struct proto_conn *conn)
{
	memset(conn, 0, sizeof(*conn));
}

/* proto_add - append n bytes; on failure mark the request out of memory. */
int proto_add(struct proto_req *req, const void *p, size_t n)
{
	if (proto_out_reserve(req->out, n) != 0) {
		req->oom = true;
		return -ENOMEM;
	}
	memcpy(req->out->data + req->out->len, p, n);
	req->out->len += n;
	return 0;
}

int proto_adds(struct proto_req *req, const char *s)
{
	return proto_add(req, s, strlen(s));
}

/* proto_addf - append printf output (no terminating NUL is kept). */
int proto_addf(struct proto_req *req, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (proto_out_reserve(req->out, 256) != 0)
		goto oom;
	va_start(ap, fmt);
	n = vsnprintf(req->out->data + req->out->len,
		      req->out->cap - req->out->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= req->out->cap - req->out->len) {
		if (proto_out_reserve(req->out, (size_t)n + 1) != 0)
			goto oom;
		va_start(ap, fmt);
		vsnprintf(req->out->data + req->out->len,
			  req->out->cap - req->out->len, fmt, ap);
		va_end(ap);
	}
	req->out->len += (size_t)n;
	return 0;
oom:
	req->oom = true;
	return -ENOMEM;
}

/*
 * proto_reply - a one-line reply, "\r\n" added; suppressed under noreply,
 * which in memcached's text protocol hides errors too (out_string).
 */
void proto_reply(struct proto_req *req, const char *line)
{
	if (req->noreply)
		return;
	if (proto_adds(req, line) == 0)
		proto_add(req, "\r\n", 2);
}

/*
 * proto_tokenize - memcached's tokenize_command over s[0, len).  Fills at
 * most max_tokens - 1 real tokens; if the line has more, the terminal token
 * points at the unparsed rest (with length 0), else its value is NULL.
 * Returns the count including the terminal token, as memcached does.
 */
size_t proto_tokenize(const char *s, size_t len, struct proto_token *tokens,
		      size_t max_tokens)
{
	size_t n = 0, start = 0, i;

	for (i = 0; i < len; i++) {
		if (s[i] != ' ')
			continue;
		if (i > start) {
			tokens[n].value = s + start;
			tokens[n].length = i - start;
			n++;
			if (n == max_tokens - 1) {
				start = i + 1;
				tokens[n].value = start < len ? s + start : NULL;
				tokens[n].length = 0;
				return n + 1;
			}
		}
		start = i + 1;
	}
	if (len > start) {
		tokens[n].value = s + start;
		tokens[n].length = len - start;
		n++;
	}
	tokens[n].value = NULL;
	tokens[n].length = 0;
	return n + 1;
}

bool proto_tok_is(const struct proto_token *t, const char *word)
{
	size_t n = strlen(word);

	return t->length == n && memcmp(t->value, word, n) == 0;
}

/*
 * parse_digits - strtoull's grammar on s[0, len): leading white space, a
 * sign, decimal digits, then the end or white space.  neg says a '-' was
 * seen; the value is negated modulo 2^64 as strtoull does.  False on no
 * digits, trailing junk, or overflow (ERANGE).
 */
static bool parse_digits(const char *s, size_t len, uint64_t *out, bool *neg)
{
	size_t i = 0, first;
	uint64_t v = 0;

	*neg = false;
	while (i < len && isspace((unsigned char)s[i]))
		i++;
	if (i < len && (s[i] == '+' || s[i] == '-'))
		*neg = s[i++] == '-';
	first = i;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (i == first)
		return false;
	if (i < len && !isspace((unsigned char)s[i]))
		return false;
	*out = *neg ? (uint64_t)0 - v : v;
	return true;
}

/* proto_num_u64_str - memcached's safe_strtoull. */
bool proto_num_u64_str(const char *s, size_t len, uint64_t *out)
{
	uint64_t v;
	bool neg;

	if (!parse_digits(s, len, &v, &neg))
		return false;
	if ((int64_t)v < 0 && neg)
		return false;
	*out = v;
	return true;
}

/*
 * proto_num_u32_str - memcached's safe_strtoul: an unsigned long, "-n"
 * refused only when it would look negative, then truncated to 32 bits (so
 * "4294967296" is 0, as memcached 1.6 stores it).
 */
bool proto_num_u32_str(const char *s, size_t len, uint32_t *out)
{
	uint64_t v;

	if (!proto_num_u64_str(s, len, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

/*
 * proto_num_i32_str - memcached's safe_strtol: a long (ERANGE outside
 * int64), truncated to 32 bits.  So an exptime of 2^31 is negative and
 * stores an already expired item, exactly as memcached does.
 */
bool proto_num_i32_str(const char *s, size_t len, int32_t *out)
{
	uint64_t v;
	bool neg;

	if (!parse_digits(s, len, &v, &neg))
		return false;
	if (neg ? v != 0 && v < (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
		return false;
	*out = (int32_t)(uint32_t)v;
	return true;
}

bool proto_num_u32(const struct proto_token *t, uint32_t *out)
{
	return proto_num_u32_str(t->value, t->length, out);
}

bool proto_num_i32(const struct proto_token *t, int32_t *out)
{
	return proto_num_i32_str(t->value, t->length, out);
}

bool proto_num_u64(const struct proto_token *t, uint64_t *out)
{
	return proto_num_u64_str(t->value, t->length, out);
}

/* proto_key_ok - memcached's only key rule on the wire: at most 250 bytes. */
bool proto_key_ok(const struct proto_token *key)
{
	return key->length > 0 && key->length <= PROTO_KEY_MAX;
}

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64value(char c)
{
	const char *p;

	if (c == '\0')
		return -1;
	p = strchr(b64chars, c);
	return p ? (int)(p - b64chars) : -1;
}

/*
 * proto_base64_decode - standard base64 with padding, as memcached's b
 * flag uses.  Returns the decoded length, or 0 if in is not valid base64
 * (memcached answers "error decoding key" then) or out is too small.
 */
size_t proto_base64_decode(const char *in, size_t len, unsigned char *out,
			   size_t cap)
{
	size_t i, n = 0;

	if (len == 0 || len % 4 != 0)
		return 0;
	for (i = 0; i < len; i += 4) {
		int v[4], k, pad = 0;
		uint32_t w = 0;

		for (k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad)
				return 0;
			v[k] = b64value(in[i + k]);
			if (v[k] < 0)
				return 0;
		}
		w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
		    (uint32_t)v[2] << 6 | (uint32_t)v[3];
		if (n + 3 - (size_t)pad > cap)
			return 0;
		out[n++] = (unsigned char)(w >> 16);
		if (pad < 2)
			out[n++] = (unsigned char)(w >> 8);
		if (pad < 1)
			out[n++] = (unsigned char)w;
	}
	return n;
}

/* proto_base64_encode - returns the encoded length, 0 if cap is too small. */
size_t proto_base64_encode(const unsigned char *in, size_t len, char *out,
			   size_t cap)
{
	size_t i, n = 0;

	if ((len + 2) / 3 * 4 > cap)
		return 0;
	for (i = 0; i < len; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			w |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			w |= in[i + 2];
		out[n++] = b64chars[(w >> 18) & 63];
		out[n++] = b64chars[(w >> 12) & 63];
		out[n++] = i + 1 < len ? b64chars[(w >> 6) & 63] : '=';
		out[n++] = i + 2 < len ? b64chars[w & 63] : '=';
	}
	return n;
}

/*
 * proto_now - the table's clock, so that TTLs we print agree with the
 * expiry the table applies; the wall clock if the segment's is not set.
 */
uint32_t proto_now(const struct proto_ctx *ctx)
{
	uint32_t now = 0;

	if (ctx->table != NULL && ctx->table->seg != NULL)
		now = segment_clock(ctx->table->seg);
	return now ? now : (uint32_t)time(NULL);
}

/*
 * line_may_be_long - memcached lets a line without a newline grow past
 * PROTO_LINE_MAX only for get and gets (after at most 100 spaces).
 */
static bool line_may_be_long(const char *p, size_t len)
{
	size_t i = 0;

	while (i < len && p[i] == ' ')
		i++;
	if (i > 100)
		return false;
	return (len - i >= 4 && memcmp(p + i, "get ", 4) == 0) ||
	       (len - i >= 5 && memcmp(p + i, "gets ", 5) == 0);
}

static int dispatch(struct proto_req *req)
{
	const struct proto_token *cmd = &req->tokens[0];

	/* memcached: no valid command is shorter than two bytes. */
	if (req->ntokens < 2 || cmd->length < 2) {
		proto_reply(req, "ERROR");
		return 0;
	}
	if (cmd->length == 2 && cmd->value[0] == 'm')
		return proto_meta_dispatch(req);
	if (proto_tok_is(cmd, "stats") || proto_tok_is(cmd, "cache_memlimit") ||
	    proto_tok_is(cmd, "shutdown") || proto_tok_is(cmd, "lru_crawler"))
		return proto_stats_command(req);
	return proto_text_dispatch(req);
}

/*
 * proto_process - answer every whole command in in[0, len).
 *
 * Returns the bytes consumed; the rest is an incomplete command to present
 * again with more bytes after it, and conn->need is the length that rest
 * must reach before a call can progress.  *action becomes PROTO_CLOSE after
 * quit, an over-long line, or an output buffer that cannot grow; nothing
 * after that command is consumed.
 */
size_t proto_process(const struct proto_ctx *ctx, struct proto_conn *conn,
		     const char *in, size_t len, struct proto_out *out,
		     enum proto_action *action)
{
	size_t pos = 0;

	*action = PROTO_CONTINUE;
	conn->need = 0;
	while (pos < len) {
		struct proto_req req;
		const char *line = in + pos, *nl, *nul;
		size_t line_len, total;
		int rc;

		if (conn->swallow > 0) {
			size_t n = len - pos;

			if (n > conn->swallow)
				n = (size_t)conn->swallow;
			pos += n;
			conn->swallow -= n;
			/* Any byte lets the skip progress; never ask for the whole block. */
			if (conn->swallow > 0)
				conn->need = 1;
			continue;
		}
		nl = memchr(line, '\n', len - pos);
		if (nl == NULL) {
			size_t tail = len - pos;

			if (tail > PROTO_GET_LINE_MAX ||
			    (tail > PROTO_LINE_MAX && !line_may_be_long(line, tail))) {
				*action = PROTO_CLOSE;
				pos = len;
				break;
			}
			conn->need = tail + 1;
			break;
		}
		total = (size_t)(nl - line) + 1;
		line_len = total - 1;
		if (line_len > 1 && line[line_len - 1] == '\r')
			line_len--;
		/* memcached works on a C string: a NUL ends the command. */
		nul = memchr(line, '\0', line_len);
		if (nul != NULL)
			line_len = (size_t)(nul - line);

		memset(&req, 0, offsetof(struct proto_req, tokens));
		req.ctx = ctx;
		req.conn = conn;
		req.out = out;
		req.ntokens = proto_tokenize(line, line_len, req.tokens,
					     PROTO_MAX_TOKENS);
		req.line_end = line + line_len;
		req.data = nl + 1;
		req.data_avail = len - pos - total;
		req.data_used = 0;
		req.data_need = 0;
		req.noreply = false;
		req.close = false;
		req.oom = false;
		conn->noreply_seen = false;
		rc = dispatch(&req);
		if (rc == PROTO_WAIT) {
			conn->need = total + req.data_need;
			break;
		}
		pos += total + req.data_used;
		if (req.close || req.oom) {
			*action = PROTO_CLOSE;
			break;
		}
	}
	return pos;
}
