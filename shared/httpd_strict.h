/* httpd_strict: what RFC 9112 says a server must reject in a request head and http-parser lets
 * through, checked on the raw bytes before they reach it: a request line without "HTTP/1.x" at
 * its end (HTTP/0.9, or another version: 505), a bare LF, obs-fold (a line that starts with
 * whitespace), and whitespace between a field name and its colon (section 5.1: "Transfer-Encoding
 * : chunked" must not be taken as chunked). A pure scanner: bytes in, a verdict out. */
#ifndef MS_HTTPD_STRICT_H
#define MS_HTTPD_STRICT_H

#include <stddef.h>

#define HTTPD_STRICT_TAIL 9 /* " HTTP/1.1" */

enum httpd_strict_state {
	STRICT_REQUEST_LINE, /* before and in the request line */
	STRICT_LINE_START,   /* after a field line's CRLF */
	STRICT_FIELD_NAME,
	STRICT_FIELD_VALUE,
	STRICT_END_CR, /* the CR of the empty line that ends the head */
	STRICT_DONE,   /* the head is complete: what follows is a body or the next request */
	STRICT_FAILED,
};

struct httpd_strict {
	enum httpd_strict_state state;
	int cr;				  /* the previous byte was a CR */
	size_t line_len;		  /* bytes of the request line so far */
	char tail[HTTPD_STRICT_TAIL + 1]; /* its last bytes */
	int status;			  /* when failed: 400 or 505 */
	const char *why;		  /* when failed: the reason, a constant string */
};

void httpd_strict_init(struct httpd_strict *s);
/* Scans the next bytes of a head, split anywhere. 0: need more; 1: the head is complete (bytes
 * after its end are not looked at); -1: to be rejected with s->status and s->why. */
int httpd_strict_feed(struct httpd_strict *s, const char *buf, size_t len);

#endif
