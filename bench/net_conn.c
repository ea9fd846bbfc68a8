/*
 * net_conn.c - one network-mode connection: send requests, check replies
 *
 * A connection keeps up to --pipeline requests in flight in a ring, in the
 * order it sent them; memcached answers in order, so the reply at the head
 * of the stream always belongs to the request at the head of the ring.
 * Requests made while a write is in flight are appended to a second buffer
 * and sent when the write completes, so one read callback's worth of
 * replies becomes one write of new requests, not one write each.
 *
 * Time is read once per read callback and once per batch of requests sent:
 * every reply parsed in one callback arrived in the same read, so they share
 * its arrival time, and a request's latency runs from when it was queued
 * for writing to when its reply was read (queueing behind the pipeline
 * included, as a client would see it).
 *
 * A reply that cannot belong to the request at the head (STORED for a get,
 * anything with no request outstanding, unparseable bytes) means the stream
 * is lost: the connection is closed and counted, its outstanding requests
 * counted as errors.  It is not reopened; the report says how many were
 * lost.
 *
 * Interface routines: see net_internal.h.
 */
#include "net_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcreply.h"
#include "util.h"

static struct bench_counters *counters(struct net_thread *t)
{
	return t->phase == PHASE_RUN ? &t->run : &t->pre;
}

/* One line on stderr about connection c, for the first NOTES_MAX events
 * of the whole run: enough to see what went wrong, not a flood. */
static void note(struct net_conn *c, const char *what, const char *line,
		 size_t len)
{
	unsigned n = __atomic_fetch_add(&c->t->sh->notes, 1, __ATOMIC_RELAXED);
	char shown[81];
	size_t k = 0;

	if (n >= NOTES_MAX) {
		if (n == NOTES_MAX)
			fprintf(stderr,
				"shmkv-bench: further messages suppressed (see the counts in the report)\n");
		return;
	}
	for (size_t i = 0; i < len && k < sizeof(shown) - 1; i++)
		shown[k++] = line[i] >= 0x20 && line[i] < 0x7f ? line[i] : '.';
	shown[k] = '\0';
	if (line != NULL)
		fprintf(stderr, "shmkv-bench: connection %u: %s: '%s'\n",
			c->index, what, shown);
	else
		fprintf(stderr, "shmkv-bench: connection %u: %s\n", c->index,
			what);
}

void conn_set_idle(struct net_conn *c)
{
	if (c->idle)
		return;
	c->idle = true;
	c->t->active--;
}

static void on_close(uv_handle_t *h)
{
	(void)h;
}

void conn_close(struct net_conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	uv_close((uv_handle_t *)c->stream, on_close);
}

/* conn_fail - give up on connection c: its outstanding requests count as
 * errors, and it no longer takes part.  Safe to call more than once. */
void conn_fail(struct net_conn *c, const char *why)
{
	if (c->dead)
		return;
	note(c, why, NULL, 0);
	c->dead = true;
	counters(c->t)->errors += c->inflight;
	c->inflight = 0;
	c->t->lost++;
	conn_close(c);
	conn_set_idle(c);
}

static char *wbuf_reserve(struct wbuf *b, size_t n)
{
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap - b->len < n)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	return b->p + b->len;
}

static void on_write(uv_write_t *req, int status);

static void conn_flush(struct net_conn *c)
{
	struct wbuf *b = &c->wb[c->wfill];
	uv_buf_t buf;
	int rc;

	if (c->writing || c->dead || b->len == 0)
		return;
	buf = uv_buf_init(b->p, (unsigned)b->len);
	c->wfill ^= 1;
	c->wb[c->wfill].len = 0;
	c->writing = true;
	rc = uv_write(&c->write_req, c->stream, &buf, 1, on_write);
	if (rc < 0) {
		c->writing = false;
		conn_fail(c, uv_strerror(rc));
	}
}

static void on_write(uv_write_t *req, int status)
{
	struct net_conn *c = req->data;

	c->writing = false;
	if (status < 0) {
		conn_fail(c, uv_strerror(status));
		return;
	}
	conn_flush(c);
}

/* "set KEY FLAGS 0 LEN\r\nVALUE\r\n" for key idx. */
static void emit_set(struct net_conn *c, uint64_t idx)
{
	const struct keyspace *ks = c->t->sh->ks;
	struct wbuf *b = &c->wb[c->wfill];
	char *p = wbuf_reserve(b, ks->key_size + ks->value_size + 64), *s = p;

	memcpy(p, "set ", 4);
	p += 4;
	keyspace_key(ks, idx, p);
	p += ks->key_size;
	*p++ = ' ';
	p += fmt_u64(p, keyspace_flags(idx));
	memcpy(p, " 0 ", 3);
	p += 3;
	p += fmt_u64(p, ks->value_size);
	*p++ = '\r';
	*p++ = '\n';
	keyspace_value(ks, idx, p);
	p += ks->value_size;
	*p++ = '\r';
	*p++ = '\n';
	b->len += (size_t)(p - s);
}

static void emit_get(struct net_conn *c, const uint64_t *keys, unsigned n)
{
	const struct keyspace *ks = c->t->sh->ks;
	struct wbuf *b = &c->wb[c->wfill];
	char *p = wbuf_reserve(b, (size_t)n * (ks->key_size + 1) + 8), *s = p;

	memcpy(p, "get", 3);
	p += 3;
	for (unsigned j = 0; j < n; j++) {
		*p++ = ' ';
		keyspace_key(ks, keys[j], p);
		p += ks->key_size;
	}
	*p++ = '\r';
	*p++ = '\n';
	b->len += (size_t)(p - s);
}

static bool conn_can_issue(const struct net_conn *c)
{
	if (c->dead)
		return false;
	if (c->t->phase == PHASE_PRELOAD)
		return c->preload_next < c->preload_end;
	return !c->t->stopping && c->quota > 0;
}

static void conn_issue(struct net_conn *c, uint64_t now)
{
	const struct bench_options *o = c->t->sh->o;
	unsigned slot = (c->head + c->inflight) % c->ring_size;
	struct net_req *req = &c->ring[slot];
	uint64_t *keys = &c->ring_keys[(size_t)slot * o->multiget];

	req->t0 = now;
	if (c->t->phase == PHASE_PRELOAD) {
		req->nkeys = 0;
		emit_set(c, c->preload_next++);
	} else {
		c->quota--;
		if (rng_below(&c->rng, o->ratio_get + o->ratio_set) <
		    o->ratio_get) {
			req->nkeys = o->multiget;
			for (unsigned j = 0; j < o->multiget; j++)
				keys[j] = keyspace_pick(c->t->sh->ks, &c->rng);
			emit_get(c, keys, o->multiget);
		} else {
			req->nkeys = 0;
			emit_set(c, keyspace_pick(c->t->sh->ks, &c->rng));
		}
	}
	if (c->inflight == 0)
		c->last_reply = now; /* the stall clock starts now */
	c->inflight++;
}

/* conn_fill - send requests until the pipeline is full or there is
 * nothing left to send; a connection with neither requests in flight nor
 * any to send is idle for this phase. */
void conn_fill(struct net_conn *c, uint64_t now)
{
	unsigned depth = c->t->sh->o->pipeline;

	if (c->t->phase == PHASE_PRELOAD && depth < PRELOAD_DEPTH)
		depth = PRELOAD_DEPTH;
	while (c->inflight < depth && conn_can_issue(c))
		conn_issue(c, now);
	conn_flush(c);
	if (c->inflight == 0 && !conn_can_issue(c))
		conn_set_idle(c);
}

static void conn_complete(struct net_conn *c, uint64_t now, bool get)
{
	struct net_thread *t = c->t;

	if (t->phase == PHASE_RUN)
		hist_record(get ? &t->get_lat : &t->set_lat,
			    now - c->ring[c->head].t0, 1);
	counters(t)->requests++;
	c->head = (c->head + 1) % c->ring_size;
	c->inflight--;
	c->kpos = 0;
	c->got = 0;
	c->last_reply = now;
}

/* A VALUE for the head get: it must name one of the keys asked for, after
 * the last one answered (memcached answers in the order asked), and hold
 * exactly what is stored under that key. */
static void conn_value(struct net_conn *c, const struct mcreply *r, uint32_t nkeys)
{
	const struct keyspace *ks = c->t->sh->ks;
	const uint64_t *keys =
		&c->ring_keys[(size_t)c->head * c->t->sh->o->multiget];
	struct bench_counters *ctr = counters(c->t);
	uint64_t idx;
	unsigned j;

	if (!keyspace_key_index(ks, r->key, r->key_len, &idx)) {
		ctr->wrong++;
		note(c, "VALUE for a key not asked for", r->line, r->line_len);
		return;
	}
	for (j = c->kpos; j < nkeys && keys[j] != idx; j++)
		;
	if (j == nkeys) {
		ctr->wrong++;
		note(c, "VALUE for a key not asked for", r->line, r->line_len);
		return;
	}
	c->kpos = j + 1;
	c->got++;
	if (r->flags != keyspace_flags(idx) ||
	    !keyspace_value_matches(ks, idx, r->data, r->data_len)) {
		ctr->wrong++;
		note(c, "wrong flags, length or bytes", r->line, r->line_len);
		return;
	}
	ctr->hits++;
}

/* conn_reply - account one reply element to the head request; 0, or -1
 * when the connection was given up. */
static int conn_reply(struct net_conn *c, const struct mcreply *r, uint64_t now)
{
	struct bench_counters *ctr = counters(c->t);
	const struct net_req *req;

	if (c->inflight == 0) {
		note(c, "reply with no request outstanding", r->line,
		     r->line_len);
		conn_fail(c, "protocol out of step; closing the connection");
		return -1;
	}
	req = &c->ring[c->head];
	if (req->nkeys > 0) {
		switch (r->kind) {
		case MC_VALUE: conn_value(c, r, req->nkeys); return 0;
		case MC_END:
			ctr->gets += req->nkeys;
			ctr->misses += req->nkeys - c->got;
			conn_complete(c, now, true);
			return 0;
		case MC_ERROR:
			ctr->gets += req->nkeys;
			ctr->errors++;
			note(c, "error reply to a get", r->line, r->line_len);
			conn_complete(c, now, true);
			return 0;
		default:
			note(c, "unexpected reply to a get", r->line,
			     r->line_len);
			break;
		}
	} else {
		switch (r->kind) {
		case MC_STORED:
			ctr->sets++;
			conn_complete(c, now, false);
			return 0;
		case MC_NOT_STORED:
		case MC_EXISTS:
		case MC_NOT_FOUND:
		case MC_ERROR:
			ctr->sets++;
			ctr->errors++;
			note(c, "set not stored", r->line, r->line_len);
			conn_complete(c, now, false);
			return 0;
		default:
			note(c, "unexpected reply to a set", r->line,
			     r->line_len);
			break;
		}
	}
	conn_fail(c, "protocol out of step; closing the connection");
	return -1;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct net_conn *c = h->data;

	(void)suggested;
	if (c->rcap - c->rlen < READ_MIN) {
		size_t cap = c->rcap ? c->rcap * 2 : 65536;

		while (cap - c->rlen < READ_MIN)
			cap *= 2;
		c->rbuf = xrealloc(c->rbuf, cap);
		c->rcap = cap;
	}
	*buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct net_conn *c = s->data;
	struct mcreply r;
	uint64_t now;
	size_t pos = 0;

	(void)buf;
	if (nread < 0) {
		conn_fail(c, nread == UV_EOF ? "the server closed the connection"
					     : uv_strerror((int)nread));
		return;
	}
	if (nread == 0 || c->dead)
		return;
	c->rlen += (size_t)nread;
	now = now_ns();
	while (pos < c->rlen) {
		enum mcreply_kind k = mcreply_next(c->rbuf + pos, c->rlen - pos,
						   &r);

		if (k == MC_NEED_MORE)
			break;
		if (k == MC_MALFORMED) {
			note(c, "reply is not memcached's text protocol",
			     c->rbuf + pos, c->rlen - pos);
			conn_fail(c,
				  "protocol out of step; closing the connection");
			return;
		}
		if (conn_reply(c, &r, now) != 0)
			return;
		pos += r.consumed;
	}
	memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
	c->rlen -= pos;
	live_publish(&c->t->live, counters(c->t), c->t->phase);
	conn_fill(c, now);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct net_conn *c = req->data;
	char why[400];
	int rc;

	if (status < 0) {
		snprintf(why, sizeof(why), "cannot connect to %s: %s",
			 c->t->sh->target, uv_strerror(status));
		conn_fail(c, why);
		return;
	}
	if (c->t->sh->o->unix_path == NULL)
		uv_tcp_nodelay(&c->h.tcp, 1);
	rc = uv_read_start(c->stream, on_alloc, on_read);
	if (rc < 0) {
		conn_fail(c, uv_strerror(rc));
		return;
	}
	conn_fill(c, now_ns());
}

void conn_start(struct net_conn *c)
{
	const struct net_shared *sh = c->t->sh;
	int rc;

	c->connect_req.data = c;
	c->write_req.data = c;
	if (sh->o->unix_path != NULL) {
		c->stream = (uv_stream_t *)&c->h.pipe;
		rc = uv_pipe_init(&c->t->loop, &c->h.pipe, 0);
	} else {
		c->stream = (uv_stream_t *)&c->h.tcp;
		rc = uv_tcp_init(&c->t->loop, &c->h.tcp);
	}
	if (rc < 0) {
		c->closed = true; /* nothing to close */
		conn_fail(c, uv_strerror(rc));
		return;
	}
	c->stream->data = c;
	if (sh->o->unix_path != NULL) {
		uv_pipe_connect(&c->connect_req, &c->h.pipe, sh->o->unix_path,
				on_connect);
		return;
	}
	rc = uv_tcp_connect(&c->connect_req, &c->h.tcp,
			    (const struct sockaddr *)&sh->addr, on_connect);
	if (rc < 0)
		conn_fail(c, uv_strerror(rc));
}
