#include <string.h>

#include "httpd_strict.h"

void httpd_strict_init(struct httpd_strict *s)
{
	memset(s, 0, sizeof(*s));
	s->state = STRICT_REQUEST_LINE;
}

static int fail(struct httpd_strict *s, int status, const char *why)
{
	s->state = STRICT_FAILED;
	s->status = status;
	s->why = why;
	return -1;
}

/* The request line ended: it must end in " HTTP/1.0" or " HTTP/1.1". */
static int request_line_end(struct httpd_strict *s)
{
	const char *t = s->tail;

	if (s->line_len < HTTPD_STRICT_TAIL || strncmp(t, " HTTP/", 6) != 0 || t[7] != '.' ||
	    t[6] < '0' || t[6] > '9' || t[8] < '0' || t[8] > '9')
		return fail(s, 400, "request line without an HTTP version");
	if (t[6] != '1' || (t[8] != '0' && t[8] != '1'))
		return fail(s, 505, "HTTP version not supported");
	s->state = STRICT_LINE_START;
	return 0;
}

static void request_line_byte(struct httpd_strict *s, char ch)
{
	size_t keep = s->line_len < HTTPD_STRICT_TAIL ? s->line_len : HTTPD_STRICT_TAIL - 1;

	if (s->line_len >= HTTPD_STRICT_TAIL)
		memmove(s->tail, s->tail + 1, keep);
	s->tail[keep] = ch;
	s->line_len++;
}

/* A line feed: it must follow a CR, and it ends whatever line it closes. */
static int line_feed(struct httpd_strict *s, int after_cr)
{
	if (!after_cr)
		return fail(s, 400, "bare LF in the request head");
	switch (s->state) {
	case STRICT_REQUEST_LINE:
		/* Empty lines before the request line are ignored (RFC 9112 section 2.2). */
		return s->line_len == 0 ? 0 : request_line_end(s);
	case STRICT_FIELD_NAME:
		return fail(s, 400, "header field without a colon");
	case STRICT_END_CR:
		s->state = STRICT_DONE;
		return 1;
	default:
		s->state = STRICT_LINE_START;
		return 0;
	}
}

static int head_byte(struct httpd_strict *s, char ch)
{
	int was_cr = s->cr;

	s->cr = ch == '\r';
	if (ch == '\n')
		return line_feed(s, was_cr);
	if (was_cr)
		return fail(s, 400, "CR not followed by LF in the request head");
	switch (s->state) {
	case STRICT_REQUEST_LINE:
		if (ch != '\r')
			request_line_byte(s, ch);
		return 0;
	case STRICT_LINE_START:
		if (ch == ' ' || ch == '\t')
			return fail(s, 400, "obsolete line folding in the request head");
		s->state = ch == '\r' ? STRICT_END_CR : STRICT_FIELD_NAME;
		return 0;
	case STRICT_FIELD_NAME:
		if (ch == ' ' || ch == '\t')
			return fail(s, 400, "whitespace between a header field name and its colon");
		if (ch == ':')
			s->state = STRICT_FIELD_VALUE;
		return 0;
	default:
		return 0;
	}
}

/* The bulk of a head is the request line and the field values, where only CR and LF matter:
 * skip such a run with memchr rather than byte by byte (this runs for every request). Returns
 * how many bytes it took; the bytes at and after the first CR or LF are left to head_byte. */
static size_t skip_run(struct httpd_strict *s, const char *buf, size_t len)
{
	const char *cr, *lf;
	size_t n;

	if (s->cr || (s->state != STRICT_REQUEST_LINE && s->state != STRICT_FIELD_VALUE))
		return 0;
	cr = memchr(buf, '\r', len);
	lf = memchr(buf, '\n', cr ? (size_t)(cr - buf) : len);
	n = lf ? (size_t)(lf - buf) : cr ? (size_t)(cr - buf) : len;
	if (s->state == STRICT_REQUEST_LINE) {
		size_t from = n > HTTPD_STRICT_TAIL ? n - HTTPD_STRICT_TAIL : 0;

		for (size_t i = from; i < n; i++)
			request_line_byte(s, buf[i]);
		s->line_len += from;
	}
	return n;
}

int httpd_strict_feed(struct httpd_strict *s, const char *buf, size_t len)
{
	size_t i = 0;

	if (s->state == STRICT_DONE)
		return 1;
	if (s->state == STRICT_FAILED)
		return -1;
	while (i < len) {
		int r;

		i += skip_run(s, buf + i, len - i);
		if (i == len)
			break;
		r = head_byte(s, buf[i++]);
		if (r != 0)
			return r;
	}
	return 0;
}
