/*
 * proto_helpers.c - the protocol files' tools: output, tokens, numbers
 *
 * What every handler uses and nothing in it calls back up into a
 * handler: appending to the reply buffer, memcached's tokenizer, its
 * number rules (safe_strtoul and friends, quirks included), the key rule,
 * and the table's clock.
 *
 * Interface routines:
 *   proto_out_reserve (protocol.h)
 *   proto_add, proto_adds, proto_addf, proto_reply
 *   proto_tokenize, proto_tok_is
 *   proto_num_u32/_i32/_u64 and their _str forms, proto_put_u64
 *   proto_key_ok, proto_now
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "number.h"
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
 * memchr finds each space: a request line is a few long tokens (a key of
 * tens of bytes), which a byte loop would walk one compare at a time.
 */
size_t proto_tokenize(const char *s, size_t len, struct proto_token *tokens,
		      size_t max_tokens)
{
	const char *p = s, *end = s + len;
	size_t n = 0;

	while (p < end) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		const char *stop = sp != NULL ? sp : end;

		if (stop > p) {
			tokens[n].value = p;
			tokens[n].length = (size_t)(stop - p);
			n++;
			if (n == max_tokens - 1 && sp != NULL) {
				p = sp + 1;
				tokens[n].value = p < end ? p : NULL;
				tokens[n].length = 0;
				return n + 1;
			}
		}
		if (sp == NULL)
			break;
		p = sp + 1;
	}
	tokens[n].value = NULL;
	tokens[n].length = 0;
	return n + 1;
}

/* proto_num_u64_str - memcached's safe_strtoull. */
bool proto_num_u64_str(const char *s, size_t len, uint64_t *out)
{
	return number_parse_u64(s, len, out);
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

	if (!number_parse(s, len, &v, &neg))
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

/*
 * proto_put_u64 - v in decimal, without printf: a reply header is written
 * under the partition lock (proto_fetch_value), where it should be quick.
 * The length is found first, so the digits go straight to dst, two per
 * division from the end (a get's flags are often ten digits long).
 */
size_t proto_put_u64(char *dst, uint64_t v)
{
	static const char pairs[] = "00010203040506070809"
				    "10111213141516171819"
				    "20212223242526272829"
				    "30313233343536373839"
				    "40414243444546474849"
				    "50515253545556575859"
				    "60616263646566676869"
				    "70717273747576777879"
				    "80818283848586878889"
				    "90919293949596979899";
	static const uint64_t pow10[PROTO_U64_DIGITS] = {
		1u,
		10u,
		100u,
		1000u,
		10000u,
		100000u,
		1000000u,
		10000000u,
		100000000u,
		1000000000u,
		10000000000u,
		100000000000u,
		1000000000000u,
		10000000000000u,
		100000000000000u,
		1000000000000000u,
		10000000000000000u,
		100000000000000000u,
		1000000000000000000u,
		10000000000000000000u,
	};
	size_t n, i;

	/* log10(2) ~ 1233/4096: from v's bit length, its digit count or one
	 * less; the table says which. */
	n = v ? (size_t)(64 - __builtin_clzll(v)) * 1233 >> 12 : 0;
	if (n < PROTO_U64_DIGITS && v >= pow10[n])
		n++;
	if (n == 0)
		n = 1;
	for (i = n; v >= 100; v /= 100) {
		i -= 2;
		memcpy(dst + i, pairs + 2 * (v % 100), 2);
	}
	if (v >= 10)
		memcpy(dst, pairs + 2 * v, 2);
	else
		dst[0] = (char)('0' + v);
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
