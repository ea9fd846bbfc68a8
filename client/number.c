/*
 * number.c - memcached's number grammar (see number.h)
 *
 * Written out rather than calling strtoull: the bytes are not
 * NUL-terminated (a token in the read buffer, a value in the segment),
 * and the locale must not matter.
 *
 * Interface routines: see number.h.
 */
#include "number.h"

/* is_c_space - isspace in the C locale. */
static inline bool is_c_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

bool number_parse(const char *s, size_t len, uint64_t *out, bool *neg)
{
	size_t i = 0, first;
	uint64_t v = 0;

	*neg = false;
	while (i < len && is_c_space(s[i]))
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
	if (i < len && !is_c_space(s[i]))
		return false;
	*out = *neg ? (uint64_t)0 - v : v;
	return true;
}

bool number_parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v;
	bool neg;

	if (!number_parse(s, len, &v, &neg))
		return false;
	if (neg && (int64_t)v < 0)
		return false;
	*out = v;
	return true;
}
