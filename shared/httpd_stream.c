/* httpd_stream: a response whose body is written for as long as the connection lives (server-sent
 * events). The head says no length and "Connection: close": the body ends with the connection.
 *
 * Bytes go to the socket at once; what it does not take waits in one queue per connection of at
 * most max_queued bytes (plus the head). A write that would pass that drops the connection: a
 * reader that stops reading costs its queue and no more, never a buffer that grows with it. While
 * the queue is empty the connection watches for the peer closing (what it sends is read and
 * discarded: nothing may follow a response that ends with the connection); while it is not, for
 * room to send, with the send timeout, which only progress restarts. Which of those to watch,
 * and when to close, httpd.c decides from the verdicts this file returns. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd_internal.h"
#include "log.h"

#define STREAM_QUEUE_MIN 4096

void httpd_conn_stream_free(struct httpd_conn *c)
{
	free(c->sq);
	c->sq = NULL;
	c->sq_off = c->sq_len = c->sq_size = 0;
}

static size_t pending(const struct httpd_conn *c)
{
	return c->sq_len - c->sq_off;
}

/* Appends to the queue; -1 when it would pass sq_max (or out of memory). */
static int queue_put(struct httpd_conn *c, const char *buf, size_t len)
{
	size_t need, size;
	char *q;

	if (len > c->sq_max - pending(c))
		return -1;
	if (c->sq_off > 0) { /* the front was sent: move the rest there first */
		memmove(c->sq, c->sq + c->sq_off, pending(c));
		c->sq_len = pending(c);
		c->sq_off = 0;
	}
	need = c->sq_len + len;
	if (need > c->sq_size) {
		for (size = c->sq_size ? c->sq_size : STREAM_QUEUE_MIN; size < need; size *= 2)
			;
		if (size > c->sq_max)
			size = c->sq_max;
		if (!(q = realloc(c->sq, size)))
			return -1;
		c->sq = q;
		c->sq_size = size;
	}
	memcpy(c->sq + c->sq_len, buf, len);
	c->sq_len += len;
	return 0;
}

/* Bytes the socket took (0 when it is full), or -1 on error. */
static ssize_t send_some(struct httpd_conn *c, const char *buf, size_t len)
{
	ssize_t n;

	do
		n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	c->streamed += n;
	return n;
}

static enum httpd_stream_verdict stream_fail(struct httpd_conn *c, const char *why)
{
	log_debug("http_stream_error", "fd=%d error=\"%s\"", c->fd, why);
	return HTTPD_STREAM_END;
}

enum httpd_stream_verdict httpd_conn_stream_put(struct httpd_conn *c, const char *buf, size_t len)
{
	enum httpd_stream_verdict v = HTTPD_STREAM_OK;
	ssize_t n = 0;

	if (pending(c) == 0 && len > 0) { /* nothing waits: straight to the socket */
		if ((n = send_some(c, buf, len)) < 0)
			return stream_fail(c, strerror(errno));
		if ((size_t)n == len)
			return HTTPD_STREAM_OK;
		v = HTTPD_STREAM_BLOCKED;
	}
	if (queue_put(c, buf + n, len - (size_t)n) < 0) {
		log_info("http_stream_dropped", "fd=%d queued=%zu max=%zu reason=\"slow reader\"",
			 c->fd, pending(c), c->sq_max);
		return HTTPD_STREAM_END;
	}
	return v;
}

size_t httpd_stream_queued(const struct httpd_conn *c)
{
	return c->state == CONN_STREAMING ? pending(c) : 0;
}

static enum httpd_stream_verdict stream_send(struct httpd_conn *c)
{
	ssize_t n = send_some(c, c->sq + c->sq_off, pending(c));

	if (n < 0)
		return stream_fail(c, strerror(errno));
	c->sq_off += (size_t)n;
	if (pending(c) == 0) {
		c->sq_off = c->sq_len = 0;
		return HTTPD_STREAM_DRAINED;
	}
	/* progress: the send timeout starts again */
	return n > 0 ? HTTPD_STREAM_BLOCKED : HTTPD_STREAM_OK;
}

/* The peer has nothing to say on a streamed connection but its end. */
static enum httpd_stream_verdict stream_read(struct httpd_conn *c)
{
	ssize_t n = read(c->fd, c->buf->in, HTTPD_INBUF);

	if (n == 0)
		return HTTPD_STREAM_END;
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return stream_fail(c, strerror(errno));
	return HTTPD_STREAM_OK;
}

enum httpd_stream_verdict httpd_conn_stream_io(struct httpd_conn *c, int revents)
{
	if ((revents & EV_WRITE) && pending(c) > 0)
		return stream_send(c);
	if (revents & EV_READ)
		return stream_read(c);
	return HTTPD_STREAM_OK;
}
