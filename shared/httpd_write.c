/* httpd_write: building a response head and sending it with a body from memory or from a file
 * (sendfile), including a file whose readable end (avail_end) still grows. What a send achieved
 * goes back to httpd.c as a verdict; the state and the watchers are its business. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "httpd_internal.h"
#include "log.h"

/* One sendfile call moves at most this much, so one fast client cannot hog the loop. */
#define SENDFILE_CHUNK (1 << 20)

const char *httpd_status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 206:
		return "Partial Content";
	case 304:
		return "Not Modified";
	case 307:
		return "Temporary Redirect";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 413:
		return "Content Too Large";
	case 416:
		return "Range Not Satisfiable";
	case 422:
		return "Unprocessable Content";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

void httpd_add_header(struct httpd_conn *c, const char *name, const char *fmt, ...)
{
	char *at;
	size_t room = HTTPD_RESP_HEAD - c->extra_len;
	va_list ap;
	int n;

	if (c->state != CONN_HANDLING) { /* no request being answered, maybe no buffer */
		log_error("http_add_header", "fd=%d error=\"no request being answered\"", c->fd);
		return;
	}
	at = c->buf->extra + c->extra_len;
	n = snprintf(at, room, "%s: ", name);
	if (n >= 0 && (size_t)n < room) {
		va_start(ap, fmt);
		n += vsnprintf(at + n, room - (size_t)n, fmt, ap);
		va_end(ap);
	}
	if (n < 0 || (size_t)n + 2 >= room || strpbrk(at, "\r\n")) {
		/* Never send a header cut short, or one that could split the response. */
		c->extra_overflow = 1;
		*at = '\0';
		return;
	}
	c->extra_len += (size_t)n;
	memcpy(c->buf->extra + c->extra_len, "\r\n", 2);
	c->extra_len += 2;
}

void httpd_conn_response_free(struct httpd_conn *c)
{
	free(c->mem);
	c->mem = NULL;
	c->mem_len = c->mem_sent = 0;
	if (c->file_fd >= 0)
		close(c->file_fd);
	c->file_fd = -1;
	c->head_len = c->head_sent = 0;
}

void httpd_conn_build_head(struct httpd_conn *c, int status, long long length)
{
	char clen[48] = "";
	size_t size = sizeof(c->buf->head);
	int n;

	if (c->h->shutting_down)
		c->must_close = 1;
	c->status = status;
	c->resp_length = length;
	if (length >= 0)
		snprintf(clen, sizeof(clen), "Content-Length: %lld\r\n", length);
	n = snprintf(c->buf->head, size, "HTTP/1.1 %d %s\r\n%sConnection: %s\r\n%.*s\r\n", status,
		     httpd_status_text(status), clen,
		     c->keep_alive && !c->must_close ? "keep-alive" : "close", (int)c->extra_len,
		     c->buf->extra);
	c->head_len = (size_t)n < size ? (size_t)n : size - 1;
	c->head_sent = 0;
}

/* Sends what is left of the head and of a memory body in one sendmsg per round (a small
 * response is one syscall); MSG_MORE when a file body follows. Returns 1 when all of it went,
 * 0 when the socket is full, -1 on error. */
static int send_head_and_mem(struct httpd_conn *c)
{
	int flags = MSG_NOSIGNAL | (c->file_fd >= 0 ? MSG_MORE : 0);

	while (c->head_sent < c->head_len || c->mem_sent < c->mem_len) {
		struct iovec iov[2];
		struct msghdr msg = {.msg_iov = iov};
		size_t head_left = c->head_len - c->head_sent;
		ssize_t n;

		if (head_left > 0)
			iov[msg.msg_iovlen++] =
			    (struct iovec){c->buf->head + c->head_sent, head_left};
		if (c->mem_sent < c->mem_len)
			iov[msg.msg_iovlen++] =
			    (struct iovec){c->mem + c->mem_sent, c->mem_len - c->mem_sent};
		n = sendmsg(c->fd, &msg, flags);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		if ((size_t)n <= head_left) {
			c->head_sent += (size_t)n;
		} else {
			c->head_sent = c->head_len;
			c->mem_sent += (size_t)n - head_left;
		}
	}
	return 1;
}

/* Returns 1 when the file body is complete, 0 when the socket is full, 2 when it caught up with
 * avail_end, -1 on error. */
static int send_file(struct httpd_conn *c)
{
	while (c->file_off < c->file_end) {
		off_t limit = c->avail_end < c->file_end ? c->avail_end : c->file_end;
		size_t chunk;
		ssize_t n;

		if (c->file_off >= limit)
			return 2;
		chunk = (size_t)(limit - c->file_off);
		if (chunk > SENDFILE_CHUNK)
			chunk = SENDFILE_CHUNK;
		n = sendfile(c->fd, c->file_fd, &c->file_off, chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		if (n == 0) /* the file is shorter than promised: never pretend it is complete */
			return -1;
	}
	return 1;
}

void httpd_conn_log_request(struct httpd_conn *c, const char *outcome)
{
	char path[256], query[128];

	if (c->h->observer)
		c->h->observer(&c->req, c->status, c->resp_length, c->h->observer_arg);
	if (!log_enabled(LOG_INFO))
		return;
	log_info("http_request",
		 "method=%s path=\"%s\" query=\"%s\" status=%d bytes=%lld ms=%.1f fd=%d outcome=%s",
		 c->req.method ? c->req.method : "-",
		 log_quote(path, sizeof(path), c->req.path ? c->req.path : "-"),
		 log_quote(query, sizeof(query), c->req.query), c->status, c->resp_length,
		 (ev_now(c->h->loop) - c->req_start) * 1000, c->fd, outcome);
}

enum httpd_write_verdict httpd_conn_write(struct httpd_conn *c)
{
	int r = send_head_and_mem(c);

	if (r > 0 && c->file_fd >= 0)
		r = send_file(c);
	if (r < 0)
		return HTTPD_WRITE_ERROR;
	if (r == 2)
		return HTTPD_WRITE_CAUGHT_UP;
	return r > 0 ? HTTPD_WRITE_DONE : HTTPD_WRITE_AGAIN;
}
