/*
 * mcreply.c - parse memcached text-protocol replies, one element at a time
 *
 * An element is everything one reply line stands for: for VALUE that is the
 * line, the data block and its CR LF, so the caller sees a value only when
 * all of it has arrived and can check it in place, without copying.  The
 * parser is strict where leniency would hide a server bug (the data block
 * must be followed by CR LF, flags and length must be numbers) and returns
 * MC_MALFORMED rather than guessing where the next reply starts.
 *
 * Interface routines:
 *   mcreply_next - parse the element at the start of a buffer
 */
#include "mcreply.h"

#include <string.h>

static int line_is(const char *line, size_t len, const char *word)
{
	size_t wl = strlen(word);

	return len == wl && memcmp(line, word, wl) == 0;
}

static int line_starts(const char *line, size_t len, const char *word)
{
	size_t wl = strlen(word);

	return len >= wl && memcmp(line, word, wl) == 0 &&
	       (len == wl || line[wl] == ' ');
}

/* Parse a decimal number at *p (before end) into *out; advance *p. */
static int parse_u64(const char **p, const char *end, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (s >= end || *s < '0' || *s > '9')
		return -1;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*out = v;
	return 0;
}

/* "VALUE <key> <flags> <bytes> [<cas>]"; line is the start of the buffer,
 * head the length of the line with its CR LF, len what the buffer holds. */
static enum mcreply_kind parse_value(const char *line, size_t line_len,
				     size_t head, size_t len, struct mcreply *r)
{
	const char *p = line + 6, *end = line + line_len, *k;
	uint64_t flags, bytes, cas;

	k = p;
	while (p < end && *p != ' ')
		p++;
	if (p == k || p >= end)
		return MC_MALFORMED;
	r->key = k;
	r->key_len = (size_t)(p - k);
	p++;
	if (parse_u64(&p, end, &flags) != 0 || flags > UINT32_MAX)
		return MC_MALFORMED;
	if (p >= end || *p++ != ' ')
		return MC_MALFORMED;
	if (parse_u64(&p, end, &bytes) != 0 || bytes > MCREPLY_DATA_MAX)
		return MC_MALFORMED;
	if (p < end) {
		if (*p++ != ' ' || parse_u64(&p, end, &cas) != 0 || p != end)
			return MC_MALFORMED;
	}
	r->flags = (uint32_t)flags;
	r->data = line + head;
	r->data_len = (size_t)bytes;
	if (len < head + bytes + 2) {
		r->need = head + bytes + 2;
		return MC_NEED_MORE;
	}
	if (line[head + bytes] != '\r' || line[head + bytes + 1] != '\n')
		return MC_MALFORMED;
	r->consumed = head + bytes + 2;
	return MC_VALUE;
}

enum mcreply_kind mcreply_next(const char *buf, size_t len, struct mcreply *r)
{
	const char *nl = memchr(buf, '\n',
				len < MCREPLY_LINE_MAX ? len : MCREPLY_LINE_MAX);
	size_t line_len, head;

	memset(r, 0, sizeof(*r));
	if (nl == NULL) {
		if (len >= MCREPLY_LINE_MAX)
			return r->kind = MC_MALFORMED;
		r->need = len + 1;
		return r->kind = MC_NEED_MORE;
	}
	head = (size_t)(nl - buf) + 1;
	line_len = head - 1;
	if (line_len == 0 || buf[line_len - 1] != '\r')
		return r->kind = MC_MALFORMED;
	line_len--;
	r->line = buf;
	r->line_len = line_len;
	r->consumed = head;

	if (line_starts(buf, line_len, "VALUE"))
		return r->kind = parse_value(buf, line_len, head, len, r);
	if (line_is(buf, line_len, "END"))
		return r->kind = MC_END;
	if (line_is(buf, line_len, "STORED"))
		return r->kind = MC_STORED;
	if (line_is(buf, line_len, "NOT_STORED"))
		return r->kind = MC_NOT_STORED;
	if (line_is(buf, line_len, "EXISTS"))
		return r->kind = MC_EXISTS;
	if (line_is(buf, line_len, "NOT_FOUND"))
		return r->kind = MC_NOT_FOUND;
	if (line_starts(buf, line_len, "ERROR") ||
	    line_starts(buf, line_len, "CLIENT_ERROR") ||
	    line_starts(buf, line_len, "SERVER_ERROR"))
		return r->kind = MC_ERROR;
	return r->kind = MC_OTHER;
}
