/*
 * protocol.c - frame bytes into commands, pick the protocol
 *
 * proto_process is the whole interface the connection layer sees: bytes
 * and a reply budget in, replies out, bytes used and bytes needed next.  It
 * finds each line, tokenizes it the way memcached 1.6's tokenize_command
 * does (split on spaces only, at most 23 tokens then the rest of the line,
 * a NUL ends the line) and dispatches: a two-letter command starting with
 * 'm' to the meta protocol, "stats" to protocol_stats.c, everything else to
 * the text protocol.  A handler whose command has a data block takes it
 * from the bytes after the line, or asks for them (PROTO_WAIT), so a
 * command is used whole or not at all.  Matching memcached's tokenizer
 * rather than writing a stricter one is deliberate: the replies to odd
 * input ("get a  b", "set a 0 0 1 foo", a flags value of 2^32) are part of
 * what clients and proxies already depend on.
 *
 * Two pieces of state live across calls, in struct proto_conn:
 *   - an incomplete line or data block is simply not used; need says how
 *     long the unused tail must grow before a call can progress;
 *   - swallow counts the bytes of a refused data block (a value too large)
 *     still to be skipped, since memcached skips them rather than parse
 *     the value as commands, and they may arrive over many reads.
 *
 * The reply budget (proto_out.limit) is checked between commands, so a
 * buffer full of "get" of 1 MiB values overshoots it by one command's
 * replies at most: the connection's bound on unsent replies holds without
 * the transport having to find where commands end.
 *
 * A client program's "shmkv_attach" line is recognised here too and handed
 * back (PROTO_ATTACH): answering it means passing descriptors over the
 * socket, which is the transport's business.
 *
 * Lines longer than PROTO_LINE_MAX without a newline close the connection
 * without a reply, as memcached 1.6 does (it does not say "line too long");
 * get and gets may be longer, their key lists being unbounded there.
 *
 * memcached picks the protocol by a connection's first byte; 0x80 is the
 * binary protocol's request magic, which shmkv does not speak: it answers
 * that request in binary, "Unknown command" with the request's opcode and
 * opaque, and closes, so a binary client fails at once instead of waiting
 * for a reply that never comes.
 *
 * Interface routines:
 *   proto_conn_init    a new connection's parser state
 *   proto_process      answer the whole commands in a buffer
 *   proto_peek_key     the key the next command will look up, if any
 */
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "attach.h"
#include "protocol_internal.h"

/* proto_conn_init - the state of a connection that has sent nothing yet. */
void proto_conn_init(struct proto_conn *conn)
{
	memset(conn, 0, sizeof(*conn));
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

/* is_attach_request - the line (with its newline) asks for the segment. */
static bool is_attach_request(const char *line, size_t len)
{
	size_t n = sizeof(ATTACH_COMMAND) - 1;

	return len > n && memcmp(line, ATTACH_COMMAND, n) == 0 &&
	       (line[n] == ' ' || line[n] == '\r' || line[n] == '\n');
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
 * swallow_block - skip what has arrived of a refused data block.  Returns
 * the bytes skipped; any byte lets the skip progress, so it never asks for
 * the whole block.
 */
static size_t swallow_block(struct proto_conn *conn, size_t avail)
{
	size_t n = avail;

	if (n > conn->swallow)
		n = (size_t)conn->swallow;
	conn->swallow -= n;
	if (conn->swallow > 0)
		conn->need = 1;
	return n;
}

/*
 * run_line - tokenize the line in[0, line_len) (total bytes with its
 * newline, avail bytes buffered from its start) and answer it.  Returns
 * the bytes used (0 if its data block is incomplete: conn->need says how
 * many bytes from the line's start are wanted).
 */
static size_t run_line(const struct proto_ctx *ctx, struct proto_conn *conn,
		       const char *line, size_t line_len, size_t total,
		       size_t avail, struct proto_out *out,
		       enum proto_action *action)
{
	struct proto_req req;

	memset(&req, 0, offsetof(struct proto_req, tokens));
	req.ctx = ctx;
	req.conn = conn;
	req.out = out;
	req.ntokens = proto_tokenize(line, line_len, req.tokens,
				     PROTO_MAX_TOKENS);
	req.line_end = line + line_len;
	req.data = line + total;
	req.data_avail = avail - total;
	req.data_used = 0;
	req.data_need = 0;
	req.noreply = false;
	req.close = false;
	req.oom = false;
	if (dispatch(&req) == PROTO_WAIT) {
		conn->need = total + req.data_need;
		return 0;
	}
	if (req.close || req.oom)
		*action = PROTO_CLOSE;
	return total + req.data_used;
}

#define BINARY_REQUEST_MAGIC 0x80
#define BINARY_RESPONSE_MAGIC 0x81
#define BINARY_HEADER_LEN 24
#define BINARY_UNKNOWN_COMMAND 0x0081

/*
 * refuse_binary - the reply to a binary request header hdr (24 bytes): its
 * opcode and opaque echoed, status "Unknown command", the status text as
 * the body.
 */
static void refuse_binary(const char *hdr, struct proto_out *out,
			  enum proto_action *action)
{
	static const char text[] = "Unknown command";
	unsigned char r[BINARY_HEADER_LEN + sizeof(text) - 1];
	struct proto_req req = { .out = out };

	memset(r, 0, sizeof(r));
	r[0] = BINARY_RESPONSE_MAGIC;
	r[1] = (unsigned char)hdr[1];
	r[6] = BINARY_UNKNOWN_COMMAND >> 8;
	r[7] = BINARY_UNKNOWN_COMMAND & 0xff;
	r[11] = sizeof(text) - 1; /* total body length, big-endian */
	memcpy(r + 12, hdr + 12, 4);
	memcpy(r + BINARY_HEADER_LEN, text, sizeof(text) - 1);
	proto_add(&req, r, sizeof(r));
	*action = PROTO_CLOSE;
}

size_t proto_process(const struct proto_ctx *ctx, struct proto_conn *conn,
		     const char *in, size_t len, struct proto_out *out,
		     enum proto_action *action)
{
	size_t pos = 0;

	*action = PROTO_CONTINUE;
	conn->need = 0;
	if (!conn->past_first_byte && len > 0) {
		if ((unsigned char)in[0] != BINARY_REQUEST_MAGIC) {
			conn->past_first_byte = true;
		} else if (len < BINARY_HEADER_LEN) {
			conn->need = BINARY_HEADER_LEN;
			return 0;
		} else {
			conn->past_first_byte = true;
			refuse_binary(in, out, action);
			return len;
		}
	}
	while (pos < len && *action == PROTO_CONTINUE) {
		const char *line = in + pos, *nl, *nul;
		size_t line_len, total, used;

		if (conn->swallow > 0) {
			pos += swallow_block(conn, len - pos);
			continue;
		}
		if (out->limit != 0 && out->len >= out->limit) {
			*action = PROTO_FULL;
			break;
		}
		nl = memchr(line, '\n', len - pos);
		if (nl == NULL) {
			size_t tail = len - pos;

			if (tail > PROTO_GET_LINE_MAX ||
			    (tail > PROTO_LINE_MAX &&
			     !line_may_be_long(line, tail))) {
				*action = PROTO_CLOSE;
				pos = len;
				break;
			}
			conn->need = tail + 1;
			break;
		}
		total = (size_t)(nl - line) + 1;
		if (is_attach_request(line, total)) {
			conn->attach_len = total;
			*action = PROTO_ATTACH;
			pos += total;
			break;
		}
		line_len = total - 1;
		if (line_len > 1 && line[line_len - 1] == '\r')
			line_len--;
		/* memcached works on a C string: a NUL ends the command. */
		nul = memchr(line, '\0', line_len);
		if (nul != NULL)
			line_len = (size_t)(nul - line);
		used = run_line(ctx, conn, line, line_len, total, len - pos,
				out, action);
		if (used == 0)
			break;
		pos += used;
	}
	/* The peeked key's hash was for this call's bytes (proto_peek_key). */
	conn->peek_key = NULL;
	return pos;
}

/*
 * peek_token_end - where the token starting at in[i] ends: the first byte
 * of in[i, len) that is a space or a control character (len if none).
 * memcached splits on spaces only, but a key holds no control characters
 * that a client would send, and a hint cut short costs only a useless
 * prefetch.
 */
static size_t peek_token_end(const char *in, size_t i, size_t len)
{
#if defined(__SSE2__)
	const __m128i above = _mm_set1_epi8(' ' + 1);

	for (; i + 16 <= len; i += 16) {
		__m128i v = _mm_loadu_si128(
			(const __m128i *)(const void *)(in + i));
		/* v >= ' ' + 1, unsigned, where max(v, ' ' + 1) == v. */
		unsigned m = (unsigned)_mm_movemask_epi8(
			_mm_cmpeq_epi8(_mm_max_epu8(v, above), v));

		if (m != 0xffffu)
			return i + (size_t)__builtin_ctz(~m);
	}
#endif
	while (i < len && (unsigned char)in[i] > ' ')
		i++;
	return i;
}

/* peek_key_token - which token of a command line of cmd[0, n) is its key
 * (1, or 2 for gat and gats, whose first is the TTL); 0: not one whose key
 * proto_peek_key names. */
static unsigned peek_key_token(const char *cmd, size_t n)
{
	switch (n) {
	case 2:
		return cmd[0] == 'm' && (cmd[1] == 'g' || cmd[1] == 's' ||
					 cmd[1] == 'd' || cmd[1] == 'a');
	case 3:
		if (memcmp(cmd, "gat", 3) == 0)
			return 2;
		return memcmp(cmd, "get", 3) == 0 || memcmp(cmd, "set", 3) == 0 ||
		       memcmp(cmd, "add", 3) == 0 || memcmp(cmd, "cas", 3) == 0;
	case 4:
		if (memcmp(cmd, "gats", 4) == 0)
			return 2;
		return memcmp(cmd, "gets", 4) == 0 ||
		       memcmp(cmd, "incr", 4) == 0 ||
		       memcmp(cmd, "decr", 4) == 0;
	case 5: return memcmp(cmd, "touch", 5) == 0;
	case 6:
		return memcmp(cmd, "delete", 6) == 0 ||
		       memcmp(cmd, "append", 6) == 0;
	case 7:
		return memcmp(cmd, "replace", 7) == 0 ||
		       memcmp(cmd, "prepend", 7) == 0;
	default: return 0;
	}
}

bool proto_peek_key(struct proto_conn *conn, const char *in, size_t len)
{
	size_t i, start = 0, end;
	unsigned at;

	conn->peek_key = NULL;
	if (conn->swallow > 0 || len == 0 ||
	    (!conn->past_first_byte &&
	     (unsigned char)in[0] == BINARY_REQUEST_MAGIC))
		return false;
	end = peek_token_end(in, 0, len < 8 ? len : 8);
	at = peek_key_token(in, end);
	for (i = end; at > 0; at--) {
		if (i >= len || in[i] != ' ')
			return false;
		while (i < len && in[i] == ' ')
			i++;
		start = i;
		i = peek_token_end(in, i, len);
	}
	/* A key cut off by the buffer's end is not named. */
	if (start == 0 || i == start || i == len || i - start > TABLE_KEY_MAX)
		return false;
	conn->peek_key = in + start;
	conn->peek_len = i - start;
	conn->peek_hash = table_hash(conn->peek_key, conn->peek_len);
	return true;
}
