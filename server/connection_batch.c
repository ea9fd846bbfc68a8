/*
 * connection_batch.c - the reads of one wake-up, answered together
 *
 * At pipeline depth 1 one epoll wake-up of a worker finds some twenty
 * connections with one small request each.  Answered one by one as they
 * are read, each request would wait for its own misses in the table, one
 * after another: its bucket's line, the line of the bucket's CLOCK bits,
 * then the item (most of what the server spends outside the kernel).  So a
 * read is not answered at once: the parser names its first command's key
 * (proto_peek_key), the key's bucket and CLOCK-bit lines are prefetched
 * (table_warm_lookup), and the connection waits in the worker's pending
 * list.  A uv_check handle, which libuv runs right after its poll phase,
 * then answers the pending connections in the order they were read: it
 * first prefetches each one's item (table_warm_item; the bucket lines have
 * had the other connections' read calls to arrive), then answers and
 * writes each exactly as a connection always has (conn_process).  No system
 * call is added, and the replies of each connection keep their order.
 * NOTE: the item's pass is what pays.  Profiled (perf, cpu-clock) at depth
 * 1, warming the buckets alone left the item's miss exposed (ring_item 4%
 * of the worker's time, against 3% before); with both, the table's
 * functions and the value's copy fell from 8% to 5% of it, the prefetches
 * included.  (Warming a key only as the parser reaches it was not
 * measured: it leaves the line a few hundred instructions to arrive, where
 * here it has the other connections' read calls.)
 *
 * The reads of a wake-up go into one worker buffer, read_buf, each into
 * the free tail the ones before it left, so nothing is allocated per
 * request.  When less than CONN_ARENA_MIN is left, the pending connections
 * are answered first and the buffer starts over.  A read that fills what
 * it was lent (a pipelined burst: libuv reads again at once) is answered at
 * once, as before: its commands are many, there is nothing to overlap, and
 * its bytes need not stay in the buffer.
 *
 * What can happen to a pending connection before the check pass:
 *   - it is read again (libuv polls once more when a poll filled its whole
 *     event array): its pending bytes move to its own buffer first
 *     (conn_unpend), and the new ones go behind them and are answered with
 *     them at once (or in the pass, if the read found nothing);
 *   - it is finished (EOF, a stopping worker's conn_drain_all): it is
 *     answered first, as it would have been before the read that ends it;
 *   - it is closed (a reset, a write error, conn_abort_all): its request is
 *     dropped with its replies.  Its memory stays until libuv's closing
 *     phase, which comes after the check phase, so the pass has only to
 *     skip it (pending is false).
 *
 * Interface routines (connection_internal.h):
 *   conn_arena_lend      where a read with nothing buffered goes
 *   conn_in_arena        does a read's buffer lie in read_buf
 *   conn_read_arena      a read into read_buf: answer now or wait for the pass
 *   conn_unpend          move a pending read into the connection's buffer
 *   conn_answer_read     answer one pending connection now
 *   conn_answer_pending  answer every pending connection now
 */
#include "connection_internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CONN_PENDING_FIRST 64u /* pending slots first allocated */

static void on_check(uv_check_t *check)
{
	conn_answer_pending(check->data);
}

/*
 * conn_pend_slot - room in cc's pending list for one more connection, and
 * the check handle that empties it running.  False if there is no memory
 * for either, or the worker's loop is closing its handles: the caller then
 * answers at once.
 */
static bool conn_pend_slot(struct conn_ctx *cc)
{
	struct conn **p;
	size_t cap;

	if (!cc->check_ready) {
		if (uv_check_init(cc->loop, &cc->check) != 0)
			return false;
		cc->check.data = cc;
		cc->check_ready = true;
		uv_check_start(&cc->check, on_check);
		/* Connections keep the loop running, not this handle. */
		uv_unref((uv_handle_t *)&cc->check);
	}
	if (uv_is_closing((uv_handle_t *)&cc->check))
		return false;
	if (cc->npending < cc->pending_cap)
		return true;
	cap = cc->pending_cap ? 2 * cc->pending_cap : CONN_PENDING_FIRST;
	p = realloc(cc->pending, cap * sizeof(*p));
	if (p == NULL)
		return false;
	cc->pending = p;
	cc->pending_cap = cap;
	return true;
}

/*
 * conn_arena_lend - lend a read the free tail of cc's read buffer, up to
 * CONN_READ_SIZE; when less than CONN_ARENA_MIN is left, answer the pending
 * connections first (the caller is not one of them: on_alloc unpends it)
 * and start the buffer over.  False if there is no memory for the buffer.
 */
bool conn_arena_lend(struct conn_ctx *cc, uv_buf_t *buf)
{
	size_t left;

	if (cc->read_buf == NULL) {
		cc->read_buf = malloc(CONN_ARENA_SIZE);
		if (cc->read_buf == NULL)
			return false;
		cc->read_used = 0;
	}
	if (CONN_ARENA_SIZE - cc->read_used < CONN_ARENA_MIN)
		conn_answer_pending(cc);
	left = CONN_ARENA_SIZE - cc->read_used;
	*buf = uv_buf_init(cc->read_buf + cc->read_used,
			   (unsigned int)(left < CONN_READ_SIZE ? left
								: CONN_READ_SIZE));
	return true;
}

bool conn_in_arena(const struct conn_ctx *cc, const char *p)
{
	return cc->read_buf != NULL && p >= cc->read_buf &&
	       p < cc->read_buf + CONN_ARENA_SIZE;
}

/*
 * conn_read_arena - c read data[0, len) into the buffer conn_arena_lend
 * lent it; full: the read filled it.  Answered now when full (or when it
 * cannot wait); otherwise the bytes stay, the first command's key lines are
 * warmed, and c waits for the pass.
 */
void conn_read_arena(struct conn *c, char *data, size_t len, bool full)
{
	struct conn_ctx *cc = c->cc;
	size_t end;

	if (full || c->closing || c->finishing || !conn_pend_slot(cc)) {
		conn_process(c, data, len);
		return;
	}
	/* The next read starts on a cache line of its own. */
	end = (size_t)(data - cc->read_buf) + len;
	end = (end + 63) & ~(size_t)63;
	cc->read_used = end < CONN_ARENA_SIZE ? end : CONN_ARENA_SIZE;
	c->pending = true;
	c->pend = data;
	c->pend_len = len;
	if (proto_peek_key(&c->pc, data, len))
		table_warm_lookup(cc->proto->table, c->pc.peek_hash);
	cc->pending[cc->npending++] = c;
}

/*
 * conn_unpend - c is pending and about to read again: its pending bytes go
 * to the front of its own buffer (it buffered nothing else: they were read
 * into read_buf), so the next read lands behind them.  c stays pending (a
 * read may find nothing after all): pend is then NULL, and the bytes are
 * c->in's.  -ENOMEM if there is no memory for them.
 */
int conn_unpend(struct conn *c)
{
	assert(c->pending && c->pend != NULL && c->in_len == 0);
	if (!conn_keep_tail(c, c->pend, c->pend_len, 0))
		return -ENOMEM;
	c->pend = NULL;
	return 0;
}

/* conn_answer_read - answer what c read and has not answered yet. */
void conn_answer_read(struct conn *c)
{
	assert(c->pending);
	c->pending = false;
	if (c->pend != NULL)
		conn_process(c, c->pend, c->pend_len);
	else
		conn_process(c, c->in, c->in_len);
}

/*
 * conn_answer_pending - answer every pending connection, in the order they
 * were read, and give the read buffer back whole.  First the items their
 * keys' buckets name are warmed, all of them, then each is answered.
 * Nothing answered here reads, so the list does not grow meanwhile.
 */
void conn_answer_pending(struct conn_ctx *cc)
{
	size_t i, n = cc->npending;

	/* A pending connection's parser state is its peek's until answered:
	 * nothing else parses for it meanwhile. */
	for (i = 0; i < n; i++)
		if (cc->pending[i]->pending && cc->pending[i]->pc.peek_key != NULL)
			table_warm_item(cc->proto->table,
					cc->pending[i]->pc.peek_hash);
	for (i = 0; i < n; i++) {
		struct conn *c = cc->pending[i];

		/* Answered or closed since its read (or listed twice). */
		if (c->pending)
			conn_answer_read(c);
	}
	cc->npending = 0;
	cc->read_used = 0;
}
