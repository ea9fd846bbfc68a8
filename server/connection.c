/*
 * connection.c - one client connection: buffering, replies, back-pressure
 *
 * The protocol engine is a pure function of bytes (protocol.h) and owns the
 * framing, so this file is all the transport: it reads, hands every unused
 * byte to proto_process with a reply budget, keeps the incomplete tail for
 * the next read, and writes the replies one read produced with a single
 * write.  A pipelined batch of 1000 commands thus costs one read and one
 * write, not 1000 of each.  A connection with nothing buffered reads into a
 * buffer all the worker's connections share, and its replies are built in
 * another; only an incomplete tail, or replies the socket did not take, are
 * copied into memory of the connection's own.  At pipeline depth 1 a
 * request is then one read, one write and no allocation.  Such a read is
 * not answered in its callback: the reads of one wake-up are answered
 * together once libuv's poll is done, so that their misses in the table
 * overlap (connection_batch.c).
 * proto_conn.need says how many bytes must be buffered before the parser
 * can progress, so a 1 MiB value arriving in 64 KiB reads is parsed once,
 * not sixteen times, and read in as few calls as the kernel allows.
 *
 * Back-pressure: the unsent reply bytes of a connection are counted
 * (unsent), and above CONN_OUT_HIGH the connection stops both reading and
 * answering commands it has already buffered; it resumes below
 * CONN_OUT_LOW.  The reply budget handed to the parser is what is left
 * under that bound (at most CONN_FLUSH_AT at a time); the parser checks it
 * between commands, so even a buffer full of "get" of 1 MiB values
 * overshoots the bound by one command's replies at most.  A client that
 * sends and never reads therefore costs about CONN_OUT_HIGH plus one reply,
 * and the kernel's socket buffers hold the rest.
 *
 * Idle and stalled connections: a connection makes progress when bytes are
 * read from it or its replies are taken by the kernel.  One without
 * progress for --idle-timeout seconds is closed: an idle client, one that
 * stopped in the middle of a data block, and one that sends without reading
 * its replies (held at CONN_OUT_HIGH, it reads nothing, and its writes do
 * not move).  With --idle-timeout 0 (memcached's default: idle clients stay)
 * only the last kind is closed, after CONFIG_STALLED_WRITE_TIMEOUT: its
 * memory is bounded already, but it should not hold ~4 MiB for ever.  The
 * connection of an attached client program is never idle-closed.  Each
 * connection has a timer armed lazily: progress only records the time
 * (uv_now, no system call), and the timer, when it fires, re-arms itself for
 * what remains.  NOTE: restarting a timer on every read would cost a heap
 * update per read; a worker-wide sweep would need the worker to walk its
 * list of connections each second.
 *
 * Closing: quit, an error after which memcached closes (PROTO_CLOSE), EOF
 * and a stopping worker all "finish" a connection: read no more, and close
 * once the writes in flight have completed.  A reset or write error closes
 * at once.  The connection's memory is freed in the close callback, after
 * libuv has cancelled any write still queued.
 *
 * A client program's attach request is found by the parser (PROTO_ATTACH)
 * and answered here, where the socket is.
 *
 * Interface routines:
 *   conn_accept, conn_drain_all, conn_abort_all, conn_ctx_release (see
 *   connection.h)
 */
#include "connection.h"
#include "connection_internal.h"
#include "stats_conns.h"

#include <assert.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static const char too_many[] = "ERROR Too many open connections\r\n";

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void on_close(uv_handle_t *handle)
{
	struct conn *c = handle->data;

	if (--c->handles > 0)
		return;
	free(c->in);
	free(c->out.data);
	free(c);
}

/*
 * conn_timeout_ms - how long c may go without progress: the idle timeout,
 * or with none the stalled-write timeout while replies are unsent; 0 when
 * nothing would close it.  NOTE: an attached client program is idle on its
 * connection by design (its lookups go to the segment, not the socket), and
 * closing the connection would detach it; only stalled writes close it.
 */
static uint64_t conn_timeout_ms(const struct conn *c)
{
	uint64_t idle = (uint64_t)c->cc->idle_timeout * 1000;

	if (c->unsent > 0)
		return idle ? idle
			    : (uint64_t)CONFIG_STALLED_WRITE_TIMEOUT * 1000;
	return c->attached ? 0 : idle;
}

static void on_timer(uv_timer_t *timer)
{
	struct conn *c = timer->data;
	uint64_t now = uv_now(c->cc->loop), limit = conn_timeout_ms(c);
	size_t queued = uv_stream_get_write_queue_size(&c->h.stream);

	if (c->closing || limit == 0)
		return;
	/* The kernel took part of a queued write: the client is reading,
	 * slowly perhaps, but it is not stuck. */
	if (queued != c->write_queue) {
		c->write_queue = queued;
		c->progress = now;
	}
	if (now - c->progress >= limit) {
		if (server_verbosity(c->cc->all, *c->cc->verbosity) >= 1)
			SERVER_LOG("worker %u: closing a connection without progress "
				   "for %" PRIu64 " s (%zu reply bytes unsent)",
				   c->cc->index, limit / 1000, c->unsent);
		atomic_fetch_add_explicit(&c->cc->stats->idle_kicks, 1,
					  memory_order_relaxed);
		conn_close(c);
		return;
	}
	uv_timer_start(timer, on_timer, limit - (now - c->progress), 0);
}

/* conn_arm - make sure the timer runs when a timeout applies to c. */
void conn_arm(struct conn *c)
{
	uint64_t limit, idle;

	if (c->closing || c->handles < 2 ||
	    uv_is_active((uv_handle_t *)&c->timer))
		return;
	limit = conn_timeout_ms(c);
	if (limit == 0)
		return;
	idle = uv_now(c->cc->loop) - c->progress;
	uv_timer_start(&c->timer, on_timer, idle < limit ? limit - idle : 1, 0);
}

/* conn_close - close now; pending writes are cancelled by libuv. */
void conn_close(struct conn *c)
{
	struct conn_ctx *cc = c->cc;

	if (c->closing)
		return;
	c->closing = true;
	c->pending = false; /* a request read but not answered goes too */
	if (c->attached)
		attach_release(cc->attach, c->client_slot);
	if (c->prev)
		c->prev->next = c->next;
	else if (cc->conns == c)
		cc->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	server_conn_release(c->record);
	c->record = NULL;
	if (c->counted) {
		/* Relaxed: a counter only this worker writes; `stats` and the
		 * connection limit tolerate a read that is a moment old. */
		atomic_fetch_sub_explicit(&cc->stats->curr_connections, 1,
					  memory_order_relaxed);
		c->counted = false;
	}
	if (server_verbosity(cc->all, *cc->verbosity) >= 2)
		SERVER_LOG("worker %u: connection closed", cc->index);
	if (c->handles == 2)
		uv_close((uv_handle_t *)&c->timer, on_close);
	uv_close(&c->h.handle, on_close);
}

/* conn_finish - read no more; close once the writes in flight are done. */
static void conn_finish(struct conn *c)
{
	if (c->closing)
		return;
	/* A read waiting for the pass is answered first, as it would have
	 * been before whatever ends the connection (connection_batch.c). */
	if (c->pending) {
		conn_answer_read(c);
		if (c->closing || c->finishing)
			return;
	}
	c->finishing = true;
	c->backlog = false;
	if (c->reading) {
		uv_read_stop(&c->h.stream);
		c->reading = false;
	}
	if (c->writes == 0)
		conn_close(c);
}

/*
 * on_alloc - where the next read goes: with nothing buffered, into the
 * worker's shared read buffer (the free tail the wake-up's reads before it
 * left, connection_batch.c; only an incomplete tail is kept afterwards);
 * otherwise behind what c has buffered, in its own buffer.  A read c made
 * earlier in this wake-up and not yet answered moves to c's buffer first,
 * so the bytes stay in order.  NOTE: a buffer per connection for every
 * read would spread the reads of a worker's connections over as many cache
 * lines and pages; the shared one stays hot, and an idle connection holds
 * no input memory.
 */
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = handle->data;
	struct conn_ctx *cc = c->cc;
	size_t want;
	char *p;

	(void)suggested;
	if (c->pending && c->pend != NULL && conn_unpend(c) < 0) {
		*buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
		return;
	}
	want = c->in_len + CONN_READ_SIZE; /* in_len as unpending left it */
	/* A value being awaited is read in as few calls as the kernel allows. */
	if (c->pc.need > c->in_len && c->pc.need - c->in_len > CONN_READ_SIZE)
		want = c->pc.need;
	if (c->in_len == 0 && want == CONN_READ_SIZE && conn_arena_lend(cc, buf))
		return;
	if (want > c->in_cap) {
		p = realloc(c->in, want);
		if (p == NULL) {
			*buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
			return;
		}
		c->in = p;
		c->in_cap = want;
	}
	*buf = uv_buf_init(c->in + c->in_len,
			   (unsigned int)(c->in_cap - c->in_len));
}

/*
 * conn_update_reading - read while the unsent replies are under the bound
 * and nothing buffered is held back; otherwise let the kernel's buffers
 * (and then TCP's window) push back on the client.
 */
void conn_update_reading(struct conn *c)
{
	bool want;

	if (c->closing || c->finishing)
		return;
	want = c->unsent < CONN_OUT_HIGH && !c->backlog;
	if (want && !c->reading) {
		if (uv_read_start(&c->h.stream, on_alloc, on_read) == 0)
			c->reading = true;
	} else if (!want && c->reading) {
		uv_read_stop(&c->h.stream);
		c->reading = false;
	}
}

/* conn_add_line - append a fixed reply line to out (dropped if no room). */
static void conn_add_line(struct proto_out *out, const char *line, size_t len)
{
	if (proto_out_reserve(out, len) == 0) {
		memcpy(out->data + out->len, line, len);
		out->len += len;
	}
}

/*
 * conn_attach - a client program asks for the segment (the parser found
 * the line).  Only as the first command on the Unix socket: the
 * descriptors travel beside libuv's write queue, which must therefore be
 * empty, and TCP cannot carry them at all.
 */
static void conn_attach(struct conn *c, const char *line, size_t len,
			struct proto_out *out)
{
	static const char not_here[] = "SERVER_ERROR attach refused: only as the "
				       "first command on the Unix socket\r\n";
	uv_os_fd_t fd;
	uint32_t slot;

	if (c->h.handle.type != UV_NAMED_PIPE || c->attached || c->unsent != 0 ||
	    out->len != 0 || uv_fileno(&c->h.handle, &fd) != 0) {
		conn_add_line(out, not_here, sizeof(not_here) - 1);
		return;
	}
	if (attach_serve(c->cc->attach, fd, line, len, &slot) == 0) {
		c->attached = true;
		c->client_slot = slot;
	}
}

/*
 * conn_budget - the reply bytes this connection may still produce before
 * they go to the kernel: up to CONN_FLUSH_AT at a time, and none once the
 * unsent ones reach CONN_OUT_HIGH.
 */
static size_t conn_budget(const struct conn *c, const struct proto_out *out)
{
	size_t room = CONN_OUT_HIGH - c->unsent;

	if (c->unsent >= CONN_OUT_HIGH)
		return 0;
	return out->len + (room < CONN_FLUSH_AT ? room : CONN_FLUSH_AT);
}

/*
 * conn_run_parser - hand the bytes in[0, len) to the parser until it has
 * answered every whole command or the reply bound holds it back.  Returns
 * the bytes used; *close_after after quit or a fatal error.
 */
static size_t conn_run_parser(struct conn *c, const char *in, size_t len,
			      struct proto_out *out, bool *close_after)
{
	enum proto_action action;
	size_t off = 0;

	/* A command still waiting for its data block (need counts from the
	 * buffer's start) is not parsed again on every partial read. */
	if (len < c->pc.need) {
		c->backlog = false;
		return 0;
	}
	for (;;) {
		out->limit = conn_budget(c, out);
		if (out->limit == 0) {
			c->backlog = off < len;
			return off;
		}
		off += proto_process(c->cc->proto, &c->pc, in + off, len - off,
				     out, &action);
		switch (action) {
		case PROTO_CONTINUE: return off;
		case PROTO_CLOSE: *close_after = true; return off;
		case PROTO_ATTACH:
			conn_attach(c, in + off - c->pc.attach_len,
				    c->pc.attach_len, out);
			break;
		case PROTO_FULL:
			if (c->unsent + out->len >= CONN_OUT_HIGH) {
				c->backlog = true;
				return off;
			}
			conn_send(c, out);
			if (c->closing)
				return off;
			break;
		}
	}
}

/*
 * conn_close_oom - no memory for this connection's input: tell the client
 * (from static memory, best effort) and close it, as memcached does when
 * it cannot grow a connection's buffer; the other connections go on.
 */
static void conn_close_oom(struct conn *c, size_t wanted)
{
	static const char oom[] = "SERVER_ERROR out of memory\r\n";

	SERVER_LOG("worker %u: out of memory for a connection's %zu-byte "
		   "buffer; closing it",
		   c->cc->index, wanted);
	if (c->writes == 0)
		(void)conn_write_now(c, oom, sizeof(oom) - 1);
	conn_close(c);
}

/*
 * conn_keep_tail - after the parser used in[0, off) of in[0, len), keep
 * the rest at the front of c's own buffer, copying it there if in is the
 * worker's shared read buffer.  False if there is no memory for it.
 */
bool conn_keep_tail(struct conn *c, const char *in, size_t len, size_t off)
{
	size_t rest = len - off, cap = rest + CONN_READ_SIZE;
	char *p;

	if (in == c->in) {
		if (off > 0)
			memmove(c->in, c->in + off, rest);
		c->in_len = rest;
		return true;
	}
	if (rest == 0)
		return true;
	/* Room for the next read too, which goes behind the tail. */
	if (cap > c->in_cap) {
		p = realloc(c->in, cap);
		if (p == NULL)
			return false;
		c->in = p;
		c->in_cap = cap;
	}
	memcpy(c->in, in + off, rest);
	c->in_len = rest;
	return true;
}

/*
 * conn_show_waiting - `stats conns` state of a connection whose replies are
 * out: memcached's conn_nread for a line read whose data block is still
 * coming, conn_read for anything else (the command time was taken before
 * the parser ran).
 */
void conn_show_waiting(struct conn *c)
{
	server_conn_state(c->record,
			  !c->backlog && c->in_len > 0 &&
					  memchr(c->in, '\n', c->in_len)
				  ? SERVER_CONN_NREAD
				  : SERVER_CONN_READ,
			  false);
}

/*
 * conn_process - answer the whole commands in in[0, len) -- c's own
 * buffer, or the worker's read buffer that a read has just filled -- as far
 * as the reply bound allows; keep the incomplete tail (and any held-back
 * commands) at the front of c's own buffer.
 */
void conn_process(struct conn *c, char *in, size_t len)
{
	/*
	 * NOTE: replies are built in the worker's reply buffer, kept from
	 * read to read, rather than in one malloc'd and freed per read (a
	 * fifth of a small request's instructions); what the socket does not
	 * take at once is copied out of it.  While a write of c is queued,
	 * c's own buffer is used, which goes to uv_write without a copy.
	 */
	struct proto_out *out = c->writes == 0 ? &c->cc->reply : &c->out;
	bool close_after = false, kept;
	size_t off;

	if (c->closing || c->finishing)
		return;
	assert(!c->pending);
	c->backlog = false;
	/* The command's time is taken here, once: whatever the parser uses
	 * ends in a newline, so a read that holds none answers nothing. */
	server_conn_state(c->record, SERVER_CONN_PARSE,
			  len > 0 && memchr(in, '\n', len));
	off = conn_run_parser(c, in, len, out, &close_after);
	kept = c->closing || conn_keep_tail(c, in, len, off);
	conn_show_waiting(c);
	if (!c->closing)
		conn_send(c, out);
	/* memcached's conn_mwrite, until the socket has taken them all
	 * (connection_write.c's on_write shows the waiting state again). */
	if (!c->closing && c->writes > 0)
		server_conn_state(c->record, SERVER_CONN_MWRITE, false);
	out->len = 0; /* sent, or dropped with a closed connection */
	if (out->cap > CONN_KEEP_OUT) { /* grown for a large value */
		free(out->data);
		memset(out, 0, sizeof(*out));
	}
	if (c->closing)
		return;
	if (!kept) {
		conn_close_oom(c, len - off + CONN_READ_SIZE);
		return;
	}
	if (close_after) {
		conn_finish(c);
		return;
	}
	/*
	 * The parser should answer an over-long line with an error itself;
	 * this is the transport's own bound, so that a client sending bytes
	 * that never form a command cannot grow the buffer for ever.
	 */
	if (!c->backlog &&
	    c->in_len > (size_t)c->cc->proto->max_item_size + CONN_LINE_SLACK &&
	    c->pc.need <= c->in_len) {
		SERVER_LOG("worker %u: closing a connection that sent %zu bytes "
			   "without a complete command",
			   c->cc->index, c->in_len);
		conn_close(c);
		return;
	}
	/* Give the read buffer back after a large value has gone through. */
	if (c->in_len == 0 && c->in_cap > 4 * CONN_READ_SIZE) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
	conn_update_reading(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = stream->data;

	if (nread > 0) {
		c->progress = uv_now(c->cc->loop);
		server_stats_add(&c->cc->stats->bytes_read, (uint64_t)nread);
		if (conn_in_arena(c->cc, buf->base)) {
			conn_read_arena(c, buf->base, (size_t)nread,
					(size_t)nread == buf->len);
		} else {
			c->in_len += (size_t)nread;
			c->pending = false; /* conn_unpend put its bytes here */
			conn_process(c, c->in, c->in_len);
		}
	} else if (nread == UV_EOF) {
		/* The client may have half-closed after its last command:
		 * its replies are still written. */
		conn_finish(c);
	} else if (nread == UV_ENOBUFS) {
		conn_close_oom(c, c->in_len + CONN_READ_SIZE);
	} else if (nread < 0) {
		conn_close(c);
	}
}

/*
 * conn_refuse_oom - no memory for a new connection: tell the client so, in
 * memcached's words, and close it.  The worker accepted the fd itself
 * (worker.c), so the listener goes on whatever happens here; the send is
 * best-effort and never blocks the loop.
 */
static void conn_refuse_oom(int fd)
{
	static const char oom[] = "SERVER_ERROR out of memory\r\n";

	(void)send(fd, oom, sizeof(oom) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

/* connections_open - the whole server's open connections, every worker's
 * slot summed; a moment stale at worst, which a limit can live with. */
static uint64_t connections_open(const struct conn_ctx *cc)
{
	uint64_t n = 0;
	uint32_t i;

	for (i = 0; i < cc->all->count; i++)
		n += atomic_load_explicit(&cc->all->slots[i].curr_connections,
					  memory_order_relaxed);
	return n;
}

void conn_accept(struct conn_ctx *cc, int fd, bool tcp)
{
	struct conn *c;
	struct proto_out out = { 0 };
	int rc;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		SERVER_LOG("worker %u: out of memory accepting a connection",
			   cc->index);
		conn_refuse_oom(fd);
		return;
	}
	c->cc = cc;
	c->h.handle.data = c;
	if (tcp)
		rc = uv_tcp_init(cc->loop, &c->h.tcp);
	else
		rc = uv_pipe_init(cc->loop, &c->h.pipe, 0);
	if (rc < 0) {
		close(fd);
		free(c);
		return;
	}
	c->h.handle.data = c;
	c->closing = false;
	c->handles = 1;
	c->fd = fd;
	rc = tcp ? uv_tcp_open(&c->h.tcp, fd) : uv_pipe_open(&c->h.pipe, fd);
	if (rc < 0) {
		close(fd);
		c->closing = true;
		uv_close(&c->h.handle, on_close);
		return;
	}
	if (uv_timer_init(cc->loop, &c->timer) == 0) {
		c->timer.data = c;
		c->handles = 2;
		/* Connections keep the loop running, not their timers (a
		 * stopping worker ends when its last connection closes). */
		uv_unref((uv_handle_t *)&c->timer);
	}
	c->progress = uv_now(cc->loop);
	proto_conn_init(&c->pc);
	c->next = cc->conns;
	if (cc->conns)
		cc->conns->prev = c;
	cc->conns = c;
	if (tcp)
		uv_tcp_nodelay(&c->h.tcp, 1);

	if (connections_open(cc) >= cc->max_connections) {
		atomic_fetch_add_explicit(&cc->stats->rejected_connections, 1,
					  memory_order_relaxed);
		if (server_verbosity(cc->all, *cc->verbosity) >= 1)
			SERVER_LOG("worker %u: refused a connection: %u open",
				   cc->index, cc->max_connections);
		conn_add_line(&out, too_many, sizeof(too_many) - 1);
		conn_send(c, &out);
		free(out.data);
		conn_finish(c);
		return;
	}
	c->counted = true;
	c->record = server_conn_claim(cc->all, cc->index, fd);
	atomic_fetch_add_explicit(&cc->stats->curr_connections, 1,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&cc->stats->total_connections, 1,
				  memory_order_relaxed);
	if (server_verbosity(cc->all, *cc->verbosity) >= 2)
		SERVER_LOG("worker %u: new %s connection", cc->index,
			   tcp ? "TCP" : "Unix socket");
	conn_update_reading(c);
	if (!c->reading) {
		conn_close(c);
		return;
	}
	conn_arm(c);
}

void conn_drain_all(struct conn_ctx *cc)
{
	struct conn *c = cc->conns, *next;

	/* conn_finish may unlink c; take the successor first. */
	for (; c != NULL; c = next) {
		next = c->next;
		conn_finish(c);
	}
}

void conn_abort_all(struct conn_ctx *cc)
{
	struct conn *c = cc->conns, *next;

	for (; c != NULL; c = next) {
		next = c->next;
		conn_close(c);
	}
}

void conn_ctx_release(struct conn_ctx *cc)
{
	free(cc->read_buf);
	cc->read_buf = NULL;
	free(cc->pending);
	cc->pending = NULL;
	cc->npending = cc->pending_cap = 0;
	free(cc->reply.data);
	memset(&cc->reply, 0, sizeof(cc->reply));
}
