/*
 * wire.c - a blocking meta-protocol conversation on one socket
 *
 * Replies are read through a small buffer so that a reply line costs one
 * recv, not one per byte.  Sends use MSG_NOSIGNAL: a server that went away
 * must surface as an error status, never as SIGPIPE in the user's program.
 *
 * Interface routines: see wire.h.
 */
#include "wire.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

void wire_init(struct wire *w, int fd)
{
	w->fd = fd;
	w->off = 0;
	w->len = 0;
}

int wire_send_all(struct wire *w, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		struct msghdr msg = { .msg_iov = iov,
				      .msg_iovlen = (size_t)iovcnt };
		ssize_t n = sendmsg(w->fd, &msg, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

static int wire_refill(struct wire *w)
{
	ssize_t n;

	if (w->off > 0) {
		memmove(w->buf, w->buf + w->off, w->len - w->off);
		w->len -= w->off;
		w->off = 0;
	}
	if (w->len == sizeof(w->buf))
		return -EMSGSIZE;
	do {
		n = recv(w->fd, w->buf + w->len, sizeof(w->buf) - w->len, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EPIPE;
	w->len += (size_t)n;
	return 0;
}

int wire_read_line(struct wire *w, char *line, size_t cap)
{
	for (;;) {
		char *start = w->buf + w->off;
		char *nl = memchr(start, '\n', w->len - w->off);

		if (nl != NULL) {
			size_t n = (size_t)(nl - start);

			if (n > 0 && start[n - 1] == '\r')
				n--;
			if (n + 1 > cap)
				return -EMSGSIZE;
			memcpy(line, start, n);
			line[n] = '\0';
			w->off += (size_t)(nl - start) + 1;
			return 0;
		}
		int rc = wire_refill(w);
		if (rc < 0)
			return rc;
	}
}

static const char base64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t wire_base64(const void *in, size_t n, char *out)
{
	const unsigned char *s = in;
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16;

		if (i + 1 < n)
			v |= (unsigned)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		out[o++] = base64_alphabet[(v >> 18) & 63];
		out[o++] = base64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < n ? base64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? base64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

static int base64_value(char c)
{
	const char *p;

	if (c == '\0')
		return -1;
	p = strchr(base64_alphabet, c);
	return p ? (int)(p - base64_alphabet) : -1;
}

size_t wire_base64_decode(const char *in, size_t len, unsigned char *out,
			  size_t cap)
{
	size_t n = 0;

	if (len == 0 || len % 4 != 0)
		return 0;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;
		uint32_t w;

		for (int k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad)
				return 0;
			v[k] = base64_value(in[i + k]);
			if (v[k] < 0)
				return 0;
		}
		w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
		    (uint32_t)v[2] << 6 | (uint32_t)v[3];
		if (n + 3 - (size_t)pad > cap)
			return 0;
		out[n++] = (unsigned char)(w >> 16);
		if (pad < 2)
			out[n++] = (unsigned char)(w >> 8);
		if (pad < 1)
			out[n++] = (unsigned char)w;
	}
	return n;
}
