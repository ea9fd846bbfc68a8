/*
 * connection_write.c - a connection's replies on their way to the socket
 *
 * The replies one read produced go out with one write(2) when libuv has
 * nothing queued for the connection (so bytes stay in order); what the
 * socket does not take is queued with uv_write, in a buffer of the
 * connection's own: the worker's shared reply buffer is copied out while
 * small, or handed over whole once it grew large.  unsent counts the bytes
 * queued; below CONN_OUT_LOW a connection held back by back-pressure
 * reads and answers again (connection.c).
 *
 * Interface routines (connection_internal.h):
 *   conn_send, conn_write_now
 */
#include "connection_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void on_write(uv_write_t *req, int status)
{
	struct conn_write *wr = req->data;
	struct conn *c = wr->c;
	struct conn_ctx *cc = c->cc;

	c->unsent -= wr->len;
	c->writes--;
	if (status == 0) {
		server_stats_add(&cc->stats->bytes_written, wr->len);
		c->progress = uv_now(cc->loop);
	}
	free(wr->data);
	free(wr);
	if (c->closing)
		return;
	if (status < 0) {
		conn_close(c);
		return;
	}
	if (c->finishing) {
		if (c->writes == 0)
			conn_close(c);
		return;
	}
	if (c->writes == 0 && !c->backlog)
		conn_show_waiting(c);
	if (c->unsent >= CONN_OUT_LOW)
		return;
	if (c->backlog)
		conn_process(c, c->in, c->in_len);
	else
		conn_update_reading(c);
}

/*
 * conn_write_now - write what the socket takes of data[0, len) at once.
 * Returns the bytes written (0 if none fit), or -errno.  NOTE: only while
 * libuv has no write of c queued, or bytes would go out of order; this is
 * the write uv_try_write makes, without its bookkeeping, which at pipeline
 * depth 1 is a tenth of a request's instructions.  (uv_write would do the
 * same write, but libuv re-registers the socket with epoll when the request
 * drains: an epoll_ctl per reply.)
 */
ssize_t conn_write_now(const struct conn *c, const char *data, size_t len)
{
	ssize_t n;

	do
		n = write(c->fd, data, len);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return n;
	return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
}

/*
 * conn_queue - hand out[done, len) to uv_write, which writes it once the
 * socket takes it.  out is left empty: its buffer goes with the request,
 * except the worker's shared reply buffer while small, whose bytes are
 * copied (this happens only when the socket is full).  False (and the
 * bytes dropped) when there is no memory or libuv refuses.
 */
static bool conn_queue(struct conn *c, struct proto_out *out, size_t done)
{
	struct conn_write *wr = malloc(sizeof(*wr));
	size_t len = out->len - done;
	uv_buf_t buf;

	if (wr == NULL)
		return false;
	if (out == &c->cc->reply && out->cap <= CONN_KEEP_OUT) {
		wr->data = malloc(len);
		if (wr->data == NULL) {
			free(wr);
			return false;
		}
		memcpy(wr->data, out->data + done, len);
		out->len = 0;
	} else {
		memmove(out->data, out->data + done, len);
		wr->data = out->data;
		memset(out, 0, sizeof(*out));
	}
	wr->c = c;
	wr->len = len;
	wr->req.data = wr;
	buf = uv_buf_init(wr->data, (unsigned int)len);
	c->unsent += len;
	c->writes++;
	if (uv_write(&wr->req, &c->h.stream, &buf, 1, on_write) < 0) {
		c->unsent -= len;
		c->writes--;
		free(wr->data);
		free(wr);
		return false;
	}
	return true;
}

/*
 * conn_send - write out's bytes: at once what the socket takes, through
 * uv_write the rest.  out is left empty.  A failure closes the connection.
 */
void conn_send(struct conn *c, struct proto_out *out)
{
	ssize_t done = 0;

	if (out->len == 0)
		return;
	if (c->writes == 0) {
		done = conn_write_now(c, out->data, out->len);
		if (done < 0) {
			out->len = 0;
			conn_close(c);
			return;
		}
		if (done > 0) {
			server_stats_add(&c->cc->stats->bytes_written,
					 (uint64_t)done);
			c->progress = uv_now(c->cc->loop);
		}
		if ((size_t)done == out->len) {
			out->len = 0; /* the caller frees or reuses the buffer */
			return;
		}
	}
	if (!conn_queue(c, out, (size_t)done)) {
		if (out != &c->cc->reply) {
			free(out->data);
			memset(out, 0, sizeof(*out));
		}
		out->len = 0;
		conn_close(c);
		return;
	}
	conn_arm(c);
}
