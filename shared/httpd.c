/* httpd: the listener and the life of a connection (accept, read, timeouts, close, reap): the owner
 * of the state machine. It hands requests the parser reports ready to the handler, answers the
 * errors it reports, and acts on what the writer and the stream report; the public responding
 * calls live here because each of them changes the state. */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpd_internal.h"
#include "log.h"

static const char *const state_names[CONN_STATES] = {"reading", "handling",  "writing",
						     "waiting", "streaming", "closed"};

/* The transitions httpd_conn_set_state allows: bit T of allowed[F] is set when F -> T is one. A new
 * connection starts READING; every state may close. */
#define TO(s) (1u << (s))
static const unsigned allowed[CONN_STATES] = {
    [CONN_READING] = TO(CONN_READING) | TO(CONN_HANDLING) | TO(CONN_CLOSED),
    [CONN_HANDLING] = TO(CONN_WRITING) | TO(CONN_STREAMING) | TO(CONN_CLOSED),
    [CONN_WRITING] = TO(CONN_WAITING) | TO(CONN_READING) | TO(CONN_CLOSED),
    [CONN_WAITING] = TO(CONN_WRITING) | TO(CONN_CLOSED),
    [CONN_STREAMING] = TO(CONN_CLOSED),
    [CONN_CLOSED] = 0,
};

void httpd_opts_default(struct httpd_opts *o)
{
	o->max_head_bytes = 16384;
	o->max_body_bytes = 65536;
	o->max_conns = 1024;
	o->head_timeout_s = 10;
	o->idle_timeout_s = 60;
	o->send_timeout_s = 60;
}

/* Everything a response holds: head, memory or file body, a stream's queue. */
static void conn_response_free(struct httpd_conn *c)
{
	httpd_conn_response_free(c);
	httpd_conn_stream_free(c);
}

/* A connection borrows its buffers only while a request is under way (struct httpd_buf). */
static int conn_buf_take(struct httpd_conn *c)
{
	if (!c->buf)
		c->buf = httpd_buf_get(&c->h->pool);
	return c->buf ? 0 : -1;
}

static void conn_buf_give(struct httpd_conn *c)
{
	if (c->buf)
		httpd_buf_put(&c->h->pool, c->buf);
	c->buf = NULL;
}

/* The one destructor, run by the reaper once the connection is off the loop (httpd_close): the
 * response first (it may hold a file), then the request's body, then the buffers the request
 * pointed into (the log line and the release function, both run by httpd_close, read them),
 * then the struct. */
static void conn_free(struct httpd_conn *c)
{
	conn_response_free(c);
	free(c->body);
	conn_buf_give(c);
	free(c);
}

void httpd_conn_set_state(struct httpd_conn *c, enum conn_state s)
{
	log_debug("http_conn_state", "fd=%d from=%s to=%s", c->fd, state_names[c->state],
		  state_names[s]);
	assert(allowed[c->state] & TO(s));
	c->state = s;
}

void httpd_conn_run_release(struct httpd_conn *c)
{
	void (*fn)(struct httpd_conn *, void *) = c->release;

	c->release = NULL;
	if (fn)
		fn(c, c->release_arg);
}

/* Connections are freed by the reaper, never inside one of their own callbacks, so a handler
 * or a producer may close a connection and still touch it until it returns. */
void httpd_close(struct httpd_conn *c)
{
	struct httpd *h = c->h;

	if (c->state == CONN_CLOSED)
		return;
	if ((c->state == CONN_WRITING || c->state == CONN_WAITING) && c->head_len > 0)
		httpd_conn_log_request(c, "cut"); /* a response was under way */
	if (c->state == CONN_STREAMING) {
		c->resp_length = c->streamed;
		httpd_conn_log_request(c, "stream_end"); /* a stream only ever ends this way */
	}
	httpd_conn_set_state(c, CONN_CLOSED);
	ev_io_stop(h->loop, &c->io);
	ev_timer_stop(h->loop, &c->timer);
	close(c->fd);
	conn_response_free(c);
	httpd_conn_run_release(c);
	LIST_REMOVE(c, link);
	LIST_INSERT_HEAD(&h->graveyard, c, link);
	h->nconns--;
	ev_check_start(h->loop, &h->reaper);
}

static void reap_cb(struct ev_loop *loop, ev_check *w, int revents)
{
	struct httpd *h = w->data;
	struct httpd_conn *c;

	(void)revents;
	while ((c = LIST_FIRST(&h->graveyard))) {
		LIST_REMOVE(c, link);
		conn_free(c);
	}
	ev_check_stop(loop, w);
}

/* One watcher serves both directions: a connection either reads or writes, never both. */
void httpd_conn_watch(struct httpd_conn *c, int events, double timeout_s)
{
	struct ev_loop *loop = c->h->loop;

	/* ev_io_modify, not ev_io_set: the fd stays the same, and libev then skips the epoll_ctl
	 * when a request ends with the events it started with (read, then read again). */
	ev_io_stop(loop, &c->io);
	if (events) {
		ev_io_modify(&c->io, events);
		ev_io_start(loop, &c->io);
	}
	ev_timer_stop(loop, &c->timer);
	if (timeout_s > 0) {
		ev_timer_set(&c->timer, timeout_s, 0);
		ev_timer_start(loop, &c->timer);
	}
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct httpd_conn *c = w->data;

	(void)loop;
	(void)revents;
	if (c->state == CONN_READING && c->head_bytes == 0)
		log_debug("http_idle_close", "fd=%d", c->fd);
	else
		log_info("http_timeout", "fd=%d state=%s head_bytes=%zu", c->fd,
			 state_names[c->state], c->head_bytes);
	httpd_close(c);
}

static void read_more(struct httpd_conn *c)
{
	ssize_t n;

	if (conn_buf_take(c) < 0) {
		log_error("http_read", "fd=%d error=\"out of memory\"", c->fd);
		httpd_close(c);
		return;
	}
	if (c->in_len == HTTPD_INBUF)
		return; /* the parser has not consumed what is here yet */
	n = read(c->fd, c->buf->in + c->in_len, HTTPD_INBUF - c->in_len);
	if (n > 0) {
		c->in_len += (size_t)n;
		if (c->head_bytes == 0) /* a request began: the head timeout replaces idle */
			httpd_conn_watch(c, EV_READ, c->h->opts.head_timeout_s);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (c->in_len == 0 && c->head_bytes == 0)
			conn_buf_give(c); /* woken with nothing to read: still idle */
		return;
	}
	if (n < 0)
		log_debug("http_read_error", "fd=%d error=\"%s\"", c->fd, strerror(errno));
	httpd_close(c);
}

static void conn_dispatch(struct httpd_conn *c)
{
	c->req_start = ev_now(c->h->loop);
	httpd_conn_set_state(c, CONN_HANDLING);
	httpd_conn_watch(c, 0, 0);
	c->h->handler(c, &c->req, c->h->arg);
}

static void conn_parse(struct httpd_conn *c)
{
	struct httpd_parse_error err;

	switch (httpd_conn_parse(c, &err)) {
	case HTTPD_PARSE_REQUEST:
		conn_dispatch(c);
		break;
	case HTTPD_PARSE_ERROR:
		httpd_conn_error(c, err.status, err.reason);
		break;
	case HTTPD_PARSE_MORE:
		break;
	}
}

static void response_done(struct httpd_conn *c)
{
	httpd_conn_log_request(c, "done");
	conn_response_free(c);
	httpd_conn_run_release(c);
	if (c->state != CONN_CLOSED)
		httpd_conn_next_request(c);
}

static void conn_write(struct httpd_conn *c)
{
	switch (httpd_conn_write(c)) {
	case HTTPD_WRITE_DONE:
		response_done(c);
		break;
	case HTTPD_WRITE_AGAIN:
		httpd_conn_watch(c, EV_WRITE, c->h->opts.send_timeout_s);
		break;
	case HTTPD_WRITE_CAUGHT_UP:
		httpd_conn_set_state(c, CONN_WAITING);
		httpd_conn_watch(c, 0, 0);
		break;
	case HTTPD_WRITE_ERROR:
		log_debug("http_write_error", "fd=%d error=\"%s\"", c->fd, strerror(errno));
		httpd_close(c);
		break;
	}
}

/* Acts on what a stream reported: 0, or -1 when the connection has been closed. */
static int conn_stream(struct httpd_conn *c, enum httpd_stream_verdict v)
{
	switch (v) {
	case HTTPD_STREAM_OK:
		break;
	case HTTPD_STREAM_BLOCKED:
		httpd_conn_watch(c, EV_WRITE, c->h->opts.send_timeout_s);
		break;
	case HTTPD_STREAM_DRAINED:
		httpd_conn_watch(c, EV_READ, 0);
		break;
	case HTTPD_STREAM_END:
		httpd_close(c);
		return -1;
	}
	return 0;
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct httpd_conn *c = w->data;

	(void)loop;
	if (c->state == CONN_READING && (revents & EV_READ)) {
		read_more(c);
		if (c->state == CONN_READING && c->in_len > 0)
			conn_parse(c);
	} else if (c->state == CONN_WRITING && (revents & EV_WRITE)) {
		conn_write(c);
	} else if (c->state == CONN_STREAMING) {
		conn_stream(c, httpd_conn_stream_io(c, revents));
	}
}

/* After a response: close, or wait for the next request (maybe already buffered: pipelining). */
void httpd_conn_next_request(struct httpd_conn *c)
{
	struct httpd *h = c->h;

	if (!c->keep_alive || c->must_close || h->shutting_down) {
		httpd_close(c);
		return;
	}
	httpd_conn_parser_reset(c);
	httpd_conn_set_state(c, CONN_READING);
	httpd_conn_watch(c, EV_READ, h->opts.idle_timeout_s);
	/* Parse leftovers on the next loop turn, not here, so pipelined requests never recurse. */
	if (c->in_len > 0)
		ev_feed_event(h->loop, &c->io, EV_READ);
	else
		conn_buf_give(c); /* idle: the next request's first byte takes one again */
}

static struct httpd_conn *conn_new(struct httpd *h, int fd, const struct sockaddr_storage *peer)
{
	struct httpd_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->h = h;
	c->fd = fd;
	c->file_fd = -1;
	c->peer = *peer;
	ev_io_init(&c->io, io_cb, fd, EV_READ);
	c->io.data = c;
	ev_timer_init(&c->timer, timeout_cb, 0, 0);
	c->timer.data = c;
	httpd_conn_parser_reset(c);
	LIST_INSERT_HEAD(&h->conns, c, link);
	h->nconns++;
	httpd_conn_set_state(c, CONN_READING);
	httpd_conn_watch(c, EV_READ, h->opts.idle_timeout_s);
	return c;
}

/* Over the limit: tell the client why, best effort, and hang up. TOOMANYREQUESTS is the
 * spec's code nearest to it; the 503 and Retry-After say it is the server's limit. */
static void refuse_busy(int fd)
{
	static const char body[] = "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"too "
				   "many open connections\"}]}\n";
	char msg[512];
	int len = snprintf(msg, sizeof(msg),
			   "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
			   "Retry-After: 1\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
			   sizeof(body) - 1, body);
	ssize_t n = send(fd, msg, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);

	(void)n;
	close(fd);
}

static void accept_one(struct httpd *h, int fd, struct sockaddr_storage *peer)
{
	int one = 1;

	if (h->nconns >= h->opts.max_conns) {
		log_warn("http_conn_limit", "max_connections=%u", h->opts.max_conns);
		refuse_busy(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!conn_new(h, fd, peer)) {
		log_error("http_accept", "error=\"out of memory\"");
		close(fd);
	}
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct httpd *h = w->data;
	struct sockaddr_storage peer;
	socklen_t len;
	int fd, i;

	(void)revents;
	for (i = 0; i < 64; i++) {
		len = sizeof(peer);
		fd = accept4(h->lfd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			if (h->accept_starved)
				log_info("http_accept_resumed", "fds=available");
			h->accept_starved = 0;
			accept_one(h, fd, &peer);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE) {
			/* Out of descriptors: pause accepting rather than spin on the ready socket,
			 * and say so once per episode, not ten times a second. */
			if (!h->accept_starved)
				log_error("http_accept", "error=\"%s\" retry_s=0.1",
					  strerror(errno));
			h->accept_starved = 1;
			ev_io_stop(loop, w);
			/* A fired one-shot timer keeps its spent expiry: set it again, or it fires
			 * at once. */
			ev_timer_set(&h->accept_retry, 0.1, 0);
			ev_timer_start(loop, &h->accept_retry);
		} else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
			log_error("http_accept", "error=\"%s\"", strerror(errno));
		}
		return;
	}
}

static void accept_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct httpd *h = w->data;

	(void)revents;
	if (!h->shutting_down)
		ev_io_start(loop, &h->accept_io);
}

struct httpd *httpd_new(struct ev_loop *loop, const struct httpd_opts *opts, httpd_handler handler,
			void *arg)
{
	struct httpd *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->loop = loop;
	h->opts = *opts;
	h->handler = handler;
	h->arg = arg;
	h->lfd = -1;
	LIST_INIT(&h->conns);
	LIST_INIT(&h->graveyard);
	httpd_buf_pool_init(&h->pool, opts->max_head_bytes + 1);
	ev_check_init(&h->reaper, reap_cb);
	h->reaper.data = h;
	ev_timer_init(&h->accept_retry, accept_retry_cb, 0.1, 0);
	h->accept_retry.data = h;
	return h;
}

/* "127.0.0.1:5000", "[::1]:0", "0.0.0.0:5000": numeric only, never a DNS lookup. */
static int parse_addr(const char *addr_port, struct addrinfo **res, char *err, size_t errlen)
{
	char host[128];
	const char *colon = strrchr(addr_port, ':');
	const char *start = addr_port;
	size_t hlen;
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
				 .ai_socktype = SOCK_STREAM};
	int rc;

	if (!colon || colon[1] == '\0')
		goto bad;
	hlen = (size_t)(colon - addr_port);
	if (*start == '[') {
		if (hlen < 2 || addr_port[hlen - 1] != ']')
			goto bad;
		start++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		goto bad;
	memcpy(host, start, hlen);
	host[hlen] = '\0';
	rc = getaddrinfo(host, colon + 1, &hints, res);
	if (rc == 0)
		return 0;
	snprintf(err, errlen, "%s: %s", addr_port, gai_strerror(rc));
	return -1;
bad:
	snprintf(err, errlen, "%s: expected ADDR:PORT or [ADDR]:PORT", addr_port);
	return -1;
}

int httpd_listen(struct httpd *h, const char *addr_port, char *err, size_t errlen)
{
	struct addrinfo *ai;
	int fd, one = 1;

	if (parse_addr(addr_port, &ai, err, errlen) < 0)
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 511) < 0) {
		snprintf(err, errlen, "%s: %s", addr_port, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	h->lfd = fd;
	ev_io_init(&h->accept_io, accept_cb, fd, EV_READ);
	h->accept_io.data = h;
	ev_io_start(h->loop, &h->accept_io);
	return 0;
}

int httpd_port(const struct httpd *h)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (h->lfd < 0 || getsockname(h->lfd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void stop_listening(struct httpd *h)
{
	ev_io_stop(h->loop, &h->accept_io);
	ev_timer_stop(h->loop, &h->accept_retry);
	if (h->lfd >= 0)
		close(h->lfd);
	h->lfd = -1;
}

void httpd_shutdown(struct httpd *h)
{
	struct httpd_conn *c, *next;

	h->shutting_down = 1;
	stop_listening(h);
	for (c = LIST_FIRST(&h->conns); c; c = next) {
		next = LIST_NEXT(c, link);
		if ((c->state == CONN_READING && c->in_len == 0) || c->state == CONN_STREAMING)
			httpd_close(c); /* idle keep-alive, or a stream that would never finish */
	}
}

unsigned httpd_conn_count(const struct httpd *h)
{
	return h->nconns;
}

void httpd_free(struct httpd *h)
{
	if (!h)
		return;
	h->shutting_down = 1;
	stop_listening(h);
	while (!LIST_EMPTY(&h->conns))
		httpd_close(LIST_FIRST(&h->conns));
	reap_cb(h->loop, &h->reaper, 0);
	httpd_buf_pool_free(&h->pool); /* after the reaper gave the connections' back */
	free(h);
}

int httpd_peer_is_loopback(const struct httpd_conn *c)
{
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)&c->peer;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&c->peer;

	if (c->peer.ss_family == AF_INET)
		return (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
	if (c->peer.ss_family == AF_INET6) {
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}

void httpd_set_observer(struct httpd *h,
			void (*fn)(const struct httpd_req *req, int status, long long bytes,
				   void *arg),
			void *arg)
{
	h->observer = fn;
	h->observer_arg = arg;
}

const struct httpd_req *httpd_request(const struct httpd_conn *c)
{
	return &c->req;
}

void httpd_set_release(struct httpd_conn *c, void (*fn)(struct httpd_conn *, void *), void *arg)
{
	c->release = fn;
	c->release_arg = arg;
}

/* 0 when a response may start now (the state is HANDLING, the added headers fit); else -1, and
 * the connection has been answered 500 or left alone as it was. */
static int response_ready(struct httpd_conn *c)
{
	if (c->state != CONN_HANDLING) {
		log_error("http_respond", "fd=%d error=\"response in wrong state\"", c->fd);
		return -1;
	}
	if (c->extra_overflow) {
		log_error("http_respond", "fd=%d error=\"response headers too large\"", c->fd);
		c->extra_len = 0;
		c->extra_overflow = 0;
		c->must_close = 1;
		httpd_respond(c, 500, "", 0);
		return -1;
	}
	return 0;
}

static void start_writing(struct httpd_conn *c)
{
	httpd_conn_set_state(c, CONN_WRITING);
	conn_write(c);
}

void httpd_respond(struct httpd_conn *c, int status, const char *body, size_t len)
{
	if (response_ready(c) < 0)
		return;
	httpd_conn_build_head(c, status, (long long)len);
	if (!c->req.is_head && len > 0) {
		c->mem = malloc(len);
		if (!c->mem) {
			httpd_close(c);
			return;
		}
		memcpy(c->mem, body, len);
		c->mem_len = len;
	}
	start_writing(c);
}

void httpd_respond_head(struct httpd_conn *c, int status, long long length)
{
	if (response_ready(c) < 0)
		return;
	httpd_conn_build_head(c, status, length);
	start_writing(c);
}

void httpd_respond_file(struct httpd_conn *c, int status, int fd, off_t offset, off_t length,
			off_t avail_end)
{
	if (response_ready(c) < 0) {
		close(fd);
		return;
	}
	httpd_conn_build_head(c, status, (long long)length);
	if (c->req.is_head) {
		close(fd);
	} else {
		c->file_fd = fd;
		c->file_off = offset;
		c->file_end = offset + length;
		c->avail_end = avail_end;
	}
	start_writing(c);
}

void httpd_file_avail(struct httpd_conn *c, off_t avail_end)
{
	if (avail_end <= c->avail_end)
		return;
	c->avail_end = avail_end;
	if (c->state == CONN_WAITING)
		start_writing(c);
}

int httpd_respond_stream(struct httpd_conn *c, int status, size_t max_queued)
{
	if (response_ready(c) < 0)
		return -1;
	c->must_close = 1;
	httpd_conn_build_head(c, status, -1);
	if (c->req.is_head) { /* the head alone, then the connection closes */
		start_writing(c);
		return -1;
	}
	httpd_conn_set_state(c, CONN_STREAMING);
	c->sq_max = c->head_len + max_queued;
	c->streamed = 0;
	httpd_conn_watch(c, EV_READ, 0);
	/* The head goes the way the body does; buf->head is left to what it says for the log. */
	return httpd_stream_write(c, c->buf->head, c->head_len);
}

int httpd_stream_write(struct httpd_conn *c, const char *buf, size_t len)
{
	if (c->state != CONN_STREAMING)
		return -1;
	return conn_stream(c, httpd_conn_stream_put(c, buf, len));
}

void httpd_conn_error(struct httpd_conn *c, int status, const char *message)
{
	char body[512];
	int n = snprintf(body, sizeof(body),
			 "{\"errors\":[{\"code\":\"UNSUPPORTED\",\"message\":\"%s\"}]}\n", message);

	log_info("http_bad_request", "fd=%d status=%d reason=\"%s\"", c->fd, status, message);
	c->must_close = 1;
	c->extra_len = 0;
	c->extra_overflow = 0;
	c->req.is_head = 0;
	if (c->state == CONN_READING)
		c->req_start = ev_now(c->h->loop);
	httpd_conn_set_state(c, CONN_HANDLING);
	httpd_add_header(c, "Content-Type", "application/json");
	httpd_respond(c, status, body, (size_t)n);
}
