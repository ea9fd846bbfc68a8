/*
 * wire.h - a blocking meta-protocol conversation on one socket
 *
 * The client library sends its writes to the server as memcached meta
 * commands with base64 keys (so any key bytes travel safely) and reads the
 * one reply each gets.  This is the buffered reading and the encoding;
 * the server's meta parser decodes and encodes its b keys with the same
 * base64.
 *
 * Interface routines:
 *   wire_init, wire_send_all, wire_read_line, wire_base64,
 *   wire_base64_decode
 */
#ifndef SHMKV_WIRE_H
#define SHMKV_WIRE_H

#include <stddef.h>
#include <sys/uio.h>

#define WIRE_BUF 4096

struct wire {
	int fd;
	size_t off;
	size_t len;
	char buf[WIRE_BUF];
};

void wire_init(struct wire *w, int fd);

/* wire_send_all - write every byte of iov; 0 or -errno. */
int wire_send_all(struct wire *w, struct iovec *iov, int iovcnt);

/* wire_read_line - one line without its \r\n; 0, -EPIPE at EOF, -EMSGSIZE. */
int wire_read_line(struct wire *w, char *line, size_t cap);

/* wire_base64 - encode n bytes into out (room for 4*ceil(n/3)+1); length. */
size_t wire_base64(const void *in, size_t n, char *out);

/*
 * wire_base64_decode - standard base64 with padding (memcached's b flag).
 * Returns the decoded length, or 0 if in is not valid base64 or more than
 * cap bytes would come out.
 */
size_t wire_base64_decode(const char *in, size_t len, unsigned char *out,
			  size_t cap);

#endif
