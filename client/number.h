/*
 * number.h - memcached's number grammar, in one place
 *
 * memcached reads every number with strtoull or strtol (safe_strtoull,
 * safe_strtol): the numbers of a command line, and the value incr and decr
 * change.  The server's parser (server/proto_helpers.c) and the table's
 * arithmetic (client/table_ops.c) both read numbers through this, so the
 * two cannot come to disagree about what a number is.
 *
 * Interface routines:
 *   number_parse      strtoull's grammar: the digits and whether '-' came first
 *   number_parse_u64  memcached's safe_strtoull
 */
#ifndef SHMKV_NUMBER_H
#define SHMKV_NUMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * number_parse - strtoull's grammar on s[0, len), in the C locale: leading
 * white space, a sign, decimal digits, then the end or white space (what
 * follows that white space is not looked at).  *neg says a '-' was seen;
 * *out is the value negated modulo 2^64 then, as strtoull gives it.  False
 * on no digits, other bytes after them, or overflow (strtoull's ERANGE).
 */
bool number_parse(const char *s, size_t len, uint64_t *out, bool *neg);

/*
 * number_parse_u64 - memcached's safe_strtoull: number_parse, refusing a
 * '-' whose wrapped result looks negative (so "-0" is 0, "-1" an error).
 */
bool number_parse_u64(const char *s, size_t len, uint64_t *out);

#endif
