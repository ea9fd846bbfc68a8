/*
 * mcreply.h - parse memcached text-protocol replies, one element at a time
 *
 * The parser takes bytes and returns the next complete element (a VALUE
 * block with its data, or a one-line reply), or says how many bytes it
 * still needs.  It knows nothing of sockets, so the network code can feed
 * it whatever arrived and it can be tested on strings.
 *
 * Interface routines:
 *   mcreply_next - parse the element at the start of a buffer
 */
#ifndef BENCH_MCREPLY_H
#define BENCH_MCREPLY_H

#include <stddef.h>
#include <stdint.h>

/* A line longer than this, without its end, is not memcached talking. */
#define MCREPLY_LINE_MAX 2048
/* Nor is a value longer than this (memcached's -I tops out at 1 GiB). */
#define MCREPLY_DATA_MAX (1024ull * 1024 * 1024)

enum mcreply_kind {
	MC_NEED_MORE = 0, /* incomplete; need says how many bytes in all */
	MC_VALUE,	  /* key, flags, data */
	MC_END,
	MC_STORED,
	MC_NOT_STORED,
	MC_EXISTS,
	MC_NOT_FOUND,
	MC_ERROR,     /* ERROR, CLIENT_ERROR ..., SERVER_ERROR ... */
	MC_OTHER,     /* a well-formed line we do not expect */
	MC_MALFORMED, /* cannot be memcached: the stream is lost */
};

struct mcreply {
	enum mcreply_kind kind;
	size_t consumed;  /* bytes of this element, data block included */
	size_t need;	  /* MC_NEED_MORE: at least this many bytes */
	const char *line; /* the first line, without its CR LF */
	size_t line_len;
	const char *key; /* MC_VALUE: pointers into the buffer */
	size_t key_len;
	uint32_t flags;
	const char *data;
	size_t data_len;
};

enum mcreply_kind mcreply_next(const char *buf, size_t len, struct mcreply *r);

#endif
