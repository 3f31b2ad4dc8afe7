/* httpd_internal: the connection object shared by httpd.c (lifecycle, reading, dispatch),
 * httpd_parse.c (request parsing), httpd_write.c (sending responses), httpd_stream.c (streamed
 * bodies) and httpd_buf.c (the buffers a request borrows). Not for users of httpd.h. */
#ifndef MS_HTTPD_INTERNAL_H
#define MS_HTTPD_INTERNAL_H

#include <http_parser.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "httpd.h"
#include "httpd_strict.h"

#define HTTPD_MAX_HEADERS 64
#define HTTPD_INBUF 16384
#define HTTPD_RESP_HEAD 8192
/* Buffers given back and kept for the next request rather than freed, per server. */
#define HTTPD_SPARE_BUFS 16

/* A connection moves READING -> HANDLING -> WRITING (<-> WAITING) -> READING … -> CLOSED, or
 * HANDLING -> STREAMING -> CLOSED. Every change goes through httpd_conn_set_state, which asserts
 * that it is one of these. */
enum conn_state {
	CONN_READING,	/* reading a request head and a small body; head or idle timer runs */
	CONN_HANDLING,	/* the handler owns the request; no reading, no timer */
	CONN_WRITING,	/* sending the response; send timer runs while the socket is full */
	CONN_WAITING,	/* a file body caught up with avail_end; waiting for httpd_file_avail() */
	CONN_STREAMING, /* a streamed body (httpd_respond_stream) until the connection ends: with
			   an empty queue it watches for the peer closing, else for room to send
			   (send timer); never back to READING */
	CONN_CLOSED,	/* off the loop, in the graveyard until the reaper frees it */
};
#define CONN_STATES 6

/* What a request needs while it is under way, and an idle connection does not: lent to a
 * connection when its first byte arrives (read_more) and given back when its response is done
 * and no pipelined byte waits (httpd_conn_next_request), or when the connection is freed. An
 * idle keep-alive connection so holds only its struct httpd_conn. Valid in READING (while
 * bytes of a request are buffered or parsed), HANDLING, WRITING, WAITING and STREAMING. */
struct httpd_buf {
	SLIST_ENTRY(httpd_buf) spare; /* in the pool, while no connection holds it */
	struct httpd_header headers[HTTPD_MAX_HEADERS];
	char extra[HTTPD_RESP_HEAD];	  /* headers added by httpd_add_header */
	char head[HTTPD_RESP_HEAD + 256]; /* the response head, extra included */
	char in[HTTPD_INBUF];		  /* bytes read and not yet parsed */
	char arena[]; /* max_head_bytes + 1: NUL-terminated copies of the URL and header fields */
};

/* The server's spare buffers: at most HTTPD_SPARE_BUFS, so a warm keep-alive GET costs no
 * malloc and what is kept stays bounded. */
struct httpd_buf_pool {
	SLIST_HEAD(, httpd_buf) spares;
	unsigned nspares;
	size_t arena_size;
};

struct httpd {
	struct ev_loop *loop;
	struct httpd_opts opts;
	httpd_handler handler;
	void *arg;
	int lfd;
	ev_io accept_io;
	ev_timer accept_retry; /* restarts accepting after EMFILE */
	int accept_starved;    /* out of descriptors since the last accept */
	ev_check reaper;       /* frees closed connections outside any of their callbacks */
	LIST_HEAD(, httpd_conn) conns, graveyard;
	unsigned nconns;
	struct httpd_buf_pool pool;
	int shutting_down;
	void (*observer)(const struct httpd_req *, int, long long, void *);
	void *observer_arg;
};

struct httpd_conn {
	struct httpd *h;
	LIST_ENTRY(httpd_conn) link; /* in conns, then in graveyard */
	int fd;
	enum conn_state state;
	struct sockaddr_storage peer;
	ev_io io;
	ev_timer timer;

	/* request side */
	http_parser parser;
	struct httpd_strict strict; /* what http-parser lets through and RFC 9112 does not */
	struct httpd_buf *buf;	    /* NULL while idle; see struct httpd_buf */
	size_t in_len;		    /* bytes in buf->in */
	size_t head_bytes;	    /* bytes of the current request head so far */
	size_t arena_len;	    /* bytes used of buf->arena */
	int piece; /* which kind of piece the parser sent last (enum in httpd_parse.c) */
	char *url; /* in the arena */
	int head_too_large;
	int headers_done;
	int message_done;
	size_t nheaders; /* in buf->headers */
	char *body;
	size_t body_len;
	int keep_alive;
	int must_close; /* the request body was not read, or we said Connection: close */
	struct httpd_req req;

	/* response side */
	int status;
	long long resp_length;
	ev_tstamp req_start;
	size_t extra_len; /* of buf->extra */
	int extra_overflow;
	size_t head_len, head_sent; /* of buf->head */
	char *mem;		    /* memory body */
	size_t mem_len, mem_sent;
	int file_fd; /* file body, or -1 */
	off_t file_off, file_end, avail_end;
	void (*release)(struct httpd_conn *, void *);
	void *release_arg;

	/* streamed body (CONN_STREAMING): bytes the socket has not taken yet, sq[sq_off, sq_len) */
	char *sq;
	size_t sq_off, sq_len, sq_size;
	size_t sq_max;	    /* the most that may wait; past it the reader is dropped */
	long long streamed; /* bytes sent so far, head included */
};

/* The files call one way: httpd.c (lifecycle, the state machine, dispatch and the public
 * responding calls) -> httpd_stream.c, httpd_write.c -> httpd_parse.c, httpd_strict.c, and
 * httpd.c -> httpd_buf.c. A lower file reports what happened by its return value and never
 * changes the state itself. */

/* httpd.c */
void httpd_conn_set_state(struct httpd_conn *c, enum conn_state s);
void httpd_conn_watch(struct httpd_conn *c, int events, double timeout_s);
void httpd_conn_next_request(struct httpd_conn *c);
void httpd_conn_run_release(struct httpd_conn *c);
/* Errors found by httpd itself, in the OCI error format; the connection closes afterwards. */
/* Answers a request head that could not be taken, and closes. The body is an OCI error whose
 * code is the spec's UNSUPPORTED ("an invalid set of parameters"): the spec has none for a bad
 * head, and a client must see no code it does not know; the status says what was wrong. */
void httpd_conn_error(struct httpd_conn *c, int status, const char *message);

/* httpd_buf.c */
void httpd_buf_pool_init(struct httpd_buf_pool *p, size_t arena_size);
/* A spare buffer, or a new one; NULL when out of memory. Its contents are undefined. */
struct httpd_buf *httpd_buf_get(struct httpd_buf_pool *p);
/* Back to the spares, or freed when HTTPD_SPARE_BUFS are kept already. */
void httpd_buf_put(struct httpd_buf_pool *p, struct httpd_buf *b);
void httpd_buf_pool_free(struct httpd_buf_pool *p);

/* httpd_parse.c */
enum httpd_parse_verdict {
	HTTPD_PARSE_MORE,    /* every buffered byte is consumed; read more */
	HTTPD_PARSE_REQUEST, /* c->req holds a complete request (or its head): dispatch it */
	HTTPD_PARSE_ERROR,   /* a bad or too large head: answer the httpd_parse_error */
};
struct httpd_parse_error {
	int status; /* 400, 431, 505 */
	const char *reason;
};
void httpd_conn_parser_reset(struct httpd_conn *c);
/* Feeds buffered bytes to the parser; err is set on HTTPD_PARSE_ERROR. */
enum httpd_parse_verdict httpd_conn_parse(struct httpd_conn *c, struct httpd_parse_error *err);

/* httpd_write.c */
enum httpd_write_verdict {
	HTTPD_WRITE_DONE,      /* the whole response went */
	HTTPD_WRITE_AGAIN,     /* the socket is full: wait for room */
	HTTPD_WRITE_CAUGHT_UP, /* a file body reached avail_end: wait for httpd_file_avail() */
	HTTPD_WRITE_ERROR,     /* errno says why */
};
/* The response head into c->head; length < 0: no Content-Length (the body ends with the
 * connection). */
void httpd_conn_build_head(struct httpd_conn *c, int status, long long length);
enum httpd_write_verdict httpd_conn_write(struct httpd_conn *c);
/* Frees the head, memory and file bodies (not a stream's queue). */
void httpd_conn_response_free(struct httpd_conn *c);
/* One access-log line for the request just answered (or cut off). */
void httpd_conn_log_request(struct httpd_conn *c, const char *outcome);

/* httpd_stream.c */
enum httpd_stream_verdict {
	HTTPD_STREAM_OK,      /* nothing for the owner to change */
	HTTPD_STREAM_BLOCKED, /* bytes wait for room: watch for writing, (re)start the send timer */
	HTTPD_STREAM_DRAINED, /* the queue emptied: watch for the peer closing */
	HTTPD_STREAM_END,     /* the peer closed, a send failed or the queue is full (logged) */
};
/* Sends buf, or queues what the socket does not take. */
enum httpd_stream_verdict httpd_conn_stream_put(struct httpd_conn *c, const char *buf, size_t len);
/* The socket is readable or writable while CONN_STREAMING. */
enum httpd_stream_verdict httpd_conn_stream_io(struct httpd_conn *c, int revents);
void httpd_conn_stream_free(struct httpd_conn *c);

#endif
