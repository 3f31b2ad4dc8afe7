/* httpd_parse: http-parser callbacks that copy one request head into a bounded arena, and the
 * request accessors. A leaf: it tells httpd.c what it found (need more, a request, an error) and
 * leaves the state, the dispatch and the answers to it. */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "httpd_internal.h"
#include "log.h"

enum piece { P_NONE, P_URL, P_FIELD, P_VALUE };

static int arena_put(struct httpd_conn *c, const char *at, size_t len)
{
	if (c->arena_len + len + 1 > c->h->opts.max_head_bytes) {
		c->head_too_large = 1;
		return -1;
	}
	memcpy(c->buf->arena + c->arena_len, at, len);
	c->arena_len += len;
	return 0;
}

/* The parser hands over the URL and each header field and value in pieces, alternating; a
 * change of kind ends the previous string. */
static int piece_begin(struct httpd_conn *c, enum piece p)
{
	char *start;

	if (c->piece == (int)p)
		return 0;
	if (c->piece != P_NONE && arena_put(c, "", 1) < 0)
		return -1;
	if (c->piece == P_VALUE)
		c->nheaders++;
	c->piece = p;
	start = c->buf->arena + c->arena_len;
	if (p == P_URL) {
		c->url = start;
	} else if (p == P_FIELD) {
		if (c->nheaders == HTTPD_MAX_HEADERS) {
			c->head_too_large = 1;
			return -1;
		}
		c->buf->headers[c->nheaders].name = start;
	} else if (p == P_VALUE) {
		c->buf->headers[c->nheaders].value = start;
	}
	return 0;
}

static struct httpd_conn *conn_of(http_parser *p)
{
	return p->data;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct httpd_conn *c = conn_of(p);

	return piece_begin(c, P_URL) < 0 || arena_put(c, at, len) < 0 ? -1 : 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
	struct httpd_conn *c = conn_of(p);

	return piece_begin(c, P_FIELD) < 0 || arena_put(c, at, len) < 0 ? -1 : 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
	struct httpd_conn *c = conn_of(p);

	return piece_begin(c, P_VALUE) < 0 || arena_put(c, at, len) < 0 ? -1 : 0;
}

/* A client that sent "Expect: 100-continue" waits for this before its body (curl for a second).
 * Sent only for a body that will be read; one that will not gets the final answer instead. A
 * full socket buffer is no harm: the client sends its body after its own timeout. */
static void expect_continue(struct httpd_conn *c)
{
	static const char interim[] = "HTTP/1.1 100 Continue\r\n\r\n";
	const struct httpd_header *hd = c->buf->headers;

	for (size_t i = 0; i < c->nheaders; i++) {
		if (strcasecmp(hd[i].name, "Expect") == 0 &&
		    strcasecmp(hd[i].value, "100-continue") == 0 && c->parser.http_minor == 1) {
			(void)!send(c->fd, interim, sizeof(interim) - 1,
				    MSG_NOSIGNAL | MSG_DONTWAIT);
			return;
		}
	}
}

/* Small bodies are read before the handler runs; a large or chunked one is not read at all:
 * the handler answers at once and the connection closes after the answer. */
static int on_headers_complete(http_parser *p)
{
	struct httpd_conn *c = conn_of(p);
	int has_length = p->content_length != ULLONG_MAX; /* http-parser's "no Content-Length" */

	if (piece_begin(c, P_NONE) < 0)
		return -1;
	c->headers_done = 1;
	if ((p->flags & F_CHUNKED) ||
	    (has_length && p->content_length > c->h->opts.max_body_bytes)) {
		http_parser_pause(p, 1);
		return 0;
	}
	if (has_length && p->content_length > 0) {
		c->body = malloc(p->content_length);
		if (!c->body)
			return -1;
		expect_continue(c);
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct httpd_conn *c = conn_of(p);

	if (!c->body || c->body_len + len > c->h->opts.max_body_bytes)
		return -1;
	memcpy(c->body + c->body_len, at, len);
	c->body_len += len;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	conn_of(p)->message_done = 1;
	http_parser_pause(p, 1); /* one request at a time; the rest waits in the buffer */
	return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void httpd_conn_parser_reset(struct httpd_conn *c)
{
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	httpd_strict_init(&c->strict);
	c->head_bytes = 0;
	c->arena_len = 0;
	c->piece = P_NONE;
	c->url = NULL;
	c->head_too_large = 0;
	c->headers_done = 0;
	c->message_done = 0;
	c->nheaders = 0;
	free(c->body);
	c->body = NULL;
	c->body_len = 0;
	c->keep_alive = 0;
	c->must_close = 0;
	c->extra_len = 0;
	c->extra_overflow = 0;
	c->req = (struct httpd_req){0};
	c->status = 0;
	c->resp_length = 0;
}

static enum httpd_parse_verdict parse_error(struct httpd_parse_error *err, int status,
					    const char *reason)
{
	*err = (struct httpd_parse_error){.status = status, .reason = reason};
	return HTTPD_PARSE_ERROR;
}

/* The parser paused on a complete head (and a body read, or one left unread): c->req. */
static enum httpd_parse_verdict request_ready(struct httpd_conn *c, struct httpd_parse_error *err)
{
	struct httpd_req *r = &c->req;
	char *q;

	c->keep_alive = http_should_keep_alive(&c->parser);
	if (!c->message_done)
		c->must_close = 1;
	if (!c->url || c->url[0] != '/')
		return parse_error(err, 400, "request target must be an absolute path");
	q = strchr(c->url, '?');
	if (q)
		*q++ = '\0';
	*r = (struct httpd_req){
	    .method = http_method_str(c->parser.method),
	    .path = c->url,
	    .query = q ? q : "",
	    .headers = c->buf->headers,
	    .nheaders = c->nheaders,
	    .body = c->message_done ? c->body : NULL,
	    .body_len = c->message_done ? c->body_len : 0,
	    .is_head = c->parser.method == HTTP_HEAD,
	};
	return HTTPD_PARSE_REQUEST;
}

/* What the strict scanner rejects in head bytes that http-parser would let through. */
static enum httpd_parse_verdict strict_error(struct httpd_conn *c, struct httpd_parse_error *err)
{
	return parse_error(err, c->strict.status, c->strict.why);
}

/* Feeds the parser no more head bytes than the limit allows, so a head one byte too long is
 * caught however the bytes arrived. */
enum httpd_parse_verdict httpd_conn_parse(struct httpd_conn *c, struct httpd_parse_error *err)
{
	size_t max = c->h->opts.max_head_bytes;
	char *in = c->buf ? c->buf->in : NULL; /* no buffer: nothing was read */

	while (c->in_len > 0) {
		size_t feed = c->in_len, n;
		enum http_errno e;

		if (!c->headers_done && c->head_bytes >= max)
			c->head_too_large = 1;
		else if (!c->headers_done && feed > max - c->head_bytes)
			feed = max - c->head_bytes;
		if (!c->headers_done && httpd_strict_feed(&c->strict, in, feed) < 0)
			return strict_error(c, err);
		n = c->head_too_large ? 0 : http_parser_execute(&c->parser, &settings, in, feed);
		e = HTTP_PARSER_ERRNO(&c->parser);
		if (!c->headers_done)
			c->head_bytes += n;
		memmove(in, in + n, c->in_len - n);
		c->in_len -= n;
		if (c->head_too_large || e == HPE_HEADER_OVERFLOW)
			return parse_error(err, 431, "request header fields too large");
		if (e == HPE_PAUSED)
			return request_ready(c, err);
		if (e != HPE_OK)
			return parse_error(err, 400, http_errno_description(e));
		if (n == 0)
			return HTTPD_PARSE_MORE;
	}
	return HTTPD_PARSE_MORE;
}

const char *httpd_req_header(const struct httpd_req *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

int httpd_req_header_all(const struct httpd_req *req, const char *name, char *out, size_t outlen)
{
	size_t i, used = 0;
	int n;

	for (i = 0; i < req->nheaders; i++) {
		if (strcasecmp(req->headers[i].name, name) != 0)
			continue;
		n = snprintf(out + used, outlen - used, "%s%s", used ? ", " : "",
			     req->headers[i].value);
		if (n < 0 || (size_t)n >= outlen - used)
			return -1;
		used += (size_t)n;
	}
	return used ? 0 : -1;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Decodes src[0..len) into out; -1 when it does not fit or holds a bad %-escape. */
static int percent_decode(const char *src, size_t len, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		int ch = (unsigned char)src[i];

		if (ch == '%') {
			if (i + 2 >= len || hexval(src[i + 1]) < 0 || hexval(src[i + 2]) < 0)
				return -1;
			ch = hexval(src[i + 1]) * 16 + hexval(src[i + 2]);
			i += 2;
		} else if (ch == '+') {
			ch = ' ';
		}
		if (o + 1 >= outlen || ch == '\0')
			return -1;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return 0;
}

int httpd_query_param(const struct httpd_req *req, const char *name, char *out, size_t outlen)
{
	const char *p = req->query;
	size_t nlen = strlen(name);

	while (*p) {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=')
			return percent_decode(p + nlen + 1, len - nlen - 1, out, outlen) < 0 ? -2
											     : 0;
		if (len == nlen && strncmp(p, name, nlen) == 0)
			return percent_decode("", 0, out, outlen) < 0 ? -2 : 0;
		p += len + (end ? 1 : 0);
	}
	return -1;
}
