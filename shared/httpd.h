/* httpd: an HTTP/1.1 server on libev. Strict, bounded request parsing (http-parser), keep-alive,
 * header/idle/send timeouts, a connection limit, and response bodies from memory or from a file
 * with sendfile(2) -- including a file that is still growing while it is being sent. */
#ifndef MS_HTTPD_H
#define MS_HTTPD_H

#include <ev.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

struct httpd;
struct httpd_conn;

struct httpd_header {
	const char *name;
	const char *value;
};

/* One parsed request. Valid until the response to it has been handed to httpd_respond*(): its
 * strings live in a buffer the connection gives back (to be another request's) once that
 * response has been sent. */
struct httpd_req {
	const char *method; /* "GET", "HEAD", … */
	const char *path;   /* raw path, without the query */
	const char *query;  /* raw query without '?', "" when none */
	const struct httpd_header *headers;
	size_t nheaders;
	const char *body; /* NULL when the request had no body or it was not read */
	size_t body_len;
	int is_head;
};

typedef void (*httpd_handler)(struct httpd_conn *conn, const struct httpd_req *req, void *arg);

struct httpd_opts {
	size_t max_head_bytes; /* request line + headers; past it: 431 */
	size_t max_body_bytes; /* bodies up to this are read; larger ones close after the reply */
	unsigned max_conns;    /* past it: 503 and close */
	double head_timeout_s; /* to receive a whole request head (slowloris) */
	double idle_timeout_s; /* between keep-alive requests */
	double send_timeout_s; /* a client that reads nothing for this long is dropped */
};
void httpd_opts_default(struct httpd_opts *o);

struct httpd *httpd_new(struct ev_loop *loop, const struct httpd_opts *opts, httpd_handler handler,
			void *arg);
/* Listens on "ADDR:PORT" ("127.0.0.1:5000", "[::1]:0"). Returns -1 with err set. */
int httpd_listen(struct httpd *h, const char *addr_port, char *err, size_t errlen);
int httpd_port(const struct httpd *h);
/* Stops accepting; open connections finish their current response and then close. */
void httpd_shutdown(struct httpd *h);
unsigned httpd_conn_count(const struct httpd *h);
/* Closes every connection and the listener. */
void httpd_free(struct httpd *h);

/* Request helpers. */
const char *httpd_req_header(const struct httpd_req *req, const char *name);
/* Every value of a repeated header (Docker sends one Accept line per media type), joined with
 * ", " into out. 0, or -1 when absent or too long for out. */
int httpd_req_header_all(const struct httpd_req *req, const char *name, char *out, size_t outlen);
/* Percent-decodes the first query parameter NAME into out. 0 found, -1 absent, -2 present but
 * malformed (bad %-escape, NUL) or too long for out. */
int httpd_query_param(const struct httpd_req *req, const char *name, char *out, size_t outlen);
int httpd_peer_is_loopback(const struct httpd_conn *conn);

/* Responding: add headers, then exactly one httpd_respond*() per request. For HEAD requests the
 * body is left out and Content-Length still describes it. */
void httpd_add_header(struct httpd_conn *conn, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void httpd_respond(struct httpd_conn *conn, int status, const char *body, size_t len);
/* A body-less answer to a HEAD request that still announces Content-Length: LENGTH. */
void httpd_respond_head(struct httpd_conn *conn, int status, long long length);
/* Sends bytes [offset, offset+length) of fd, which httpd now owns. Bytes at or past avail_end
 * are held back until httpd_file_avail() raises it; that is how a client streams a file that is
 * still being written. */
void httpd_respond_file(struct httpd_conn *conn, int status, int fd, off_t offset, off_t length,
			off_t avail_end);
void httpd_file_avail(struct httpd_conn *conn, off_t avail_end);
/* A body with no end (server-sent events): the head goes out with no Content-Length and
 * "Connection: close", and httpd_stream_write adds to the body for as long as the connection
 * lives. What the socket does not take at once waits in a queue of at most max_queued bytes; a
 * write that would pass it drops the connection (a slow reader is cut off, never buffered
 * without bound). 0: streaming; the release function (httpd_set_release, set after this call)
 * runs when the connection ends, whoever ends it. -1: no stream (a HEAD request gets the head
 * alone; or the connection failed at once and is closed). httpd_shutdown closes streams. */
int httpd_respond_stream(struct httpd_conn *conn, int status, size_t max_queued);
/* 0: sent or queued. -1: the connection is not streaming, or was dropped by this call (a full
 * queue, a write error): its release function has run. */
int httpd_stream_write(struct httpd_conn *conn, const char *buf, size_t len);
/* Bytes waiting in the stream's queue. */
size_t httpd_stream_queued(const struct httpd_conn *conn);
/* Aborts the connection at once (a stream cut short before its last byte). */
void httpd_close(struct httpd_conn *conn);
/* fn runs once when the current response has been sent or the connection goes away, whichever
 * comes first; NULL clears it. A handler waiting on something else sets it to learn that. */
void httpd_set_release(struct httpd_conn *conn, void (*fn)(struct httpd_conn *, void *), void *arg);

const char *httpd_status_text(int status);
/* fn sees every answered request: its status and the body bytes announced. */
void httpd_set_observer(struct httpd *h,
			void (*fn)(const struct httpd_req *req, int status, long long bytes,
				   void *arg),
			void *arg);
/* The request being answered on conn. */
const struct httpd_req *httpd_request(const struct httpd_conn *conn);

#endif
