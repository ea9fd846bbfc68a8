/*
 * connection_internal.h - a connection as connection.c (reading, parsing,
 * closing) and connection_write.c (writing replies) both see it
 */
#ifndef SHMKV_CONNECTION_INTERNAL_H
#define SHMKV_CONNECTION_INTERNAL_H

#include "connection.h"

/* Bytes asked of the kernel per read when nothing bigger is awaited. */
#define CONN_READ_SIZE (64u * 1024u)
/* The worker's read buffer, which one wake-up's reads share... */
#define CONN_ARENA_SIZE (256u * 1024u)
/* ... and the least of it lent to a read (less left: answer, start over). */
#define CONN_ARENA_MIN (16u * 1024u)
/* Replies buffered before they are handed to uv_write mid-batch. */
#define CONN_FLUSH_AT (1024u * 1024u)
/* A reply buffer larger than this is freed once its replies are sent. */
#define CONN_KEEP_OUT (64u * 1024u)
/* Beyond a value of max_item_size, a command line is never this long. */
#define CONN_LINE_SLACK (64u * 1024u)

struct conn {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	uv_timer_t timer; /* idle and stalled-write timeout */
	uv_os_fd_t fd;	  /* the socket, for writes that libuv need not queue */
	struct conn_ctx *cc;
	struct conn *prev;
	struct conn *next;
	char *in; /* buffered input; in[0, in_len) is unconsumed */
	size_t in_len;
	size_t in_cap;
	struct proto_conn pc;
	struct proto_out out; /* replies built while a write is queued */
	size_t unsent;	      /* bytes handed to uv_write, not yet written */
	unsigned writes;      /* uv_write requests in flight */
	bool reading;	      /* uv_read_start is in effect */
	bool backlog;	      /* whole commands remain in `in`, held back */
	bool finishing;	      /* close once the writes in flight are done */
	bool closing;	      /* uv_close has been called */
	bool counted;	      /* included in curr_connections */
	bool attached; /* a client program attached: client_slot is its */
	uint32_t client_slot;
	unsigned handles;   /* libuv handles not yet closed (h, timer) */
	uint64_t progress;  /* uv_now of the last read or write progress */
	size_t write_queue; /* the write queue's size when last looked at */
	struct server_conn_record *record; /* for `stats conns`, or NULL */
	/* A read not answered yet (connection_batch.c): pend[0, pend_len) in
	 * the worker's read_buf, or with pend NULL in[0, in_len); its first
	 * command's key is pc.peek_key's, if any. */
	bool pending;
	char *pend;
	size_t pend_len;
};

/* A reply batch on its way; the data is the proto_out buffer handed over. */
struct conn_write {
	uv_write_t req;
	struct conn *c;
	char *data;
	size_t len;
};

/* connection.c */
void conn_process(struct conn *c, char *in, size_t len);
/* After the parser used in[0, off) of in[0, len), keep the rest at the
 * front of c's own buffer (connection.c).  False if there is no memory. */
bool conn_keep_tail(struct conn *c, const char *in, size_t len, size_t off);
void conn_update_reading(struct conn *c);
void conn_close(struct conn *c);
void conn_arm(struct conn *c);
void conn_show_waiting(struct conn *c);

/* connection_batch.c */
bool conn_arena_lend(struct conn_ctx *cc, uv_buf_t *buf);
bool conn_in_arena(const struct conn_ctx *cc, const char *p);
void conn_read_arena(struct conn *c, char *data, size_t len, bool full);
int conn_unpend(struct conn *c);
void conn_answer_read(struct conn *c);
void conn_answer_pending(struct conn_ctx *cc);

/* connection_write.c */
ssize_t conn_write_now(const struct conn *c, const char *data, size_t len);
void conn_send(struct conn *c, struct proto_out *out);

#endif
