/* httpd_range: the single-range subset of RFC 9110 Range headers. */
#ifndef MS_HTTPD_RANGE_H
#define MS_HTTPD_RANGE_H

#include <sys/types.h>

enum httpd_range_result {
	HTTPD_RANGE_NONE,    /* no header, or one we ignore (multi-range, other unit): send all */
	HTTPD_RANGE_OK,	     /* *start..*end inclusive, within size */
	HTTPD_RANGE_INVALID, /* malformed bytes= header: 416, as Go's ServeContent (the reference)
				does */
	HTTPD_RANGE_UNSATISFIABLE /* 416 with Content-Range: bytes * / size */
};

/* Parses "bytes=A-B", "bytes=A-", "bytes=-N" against a resource of SIZE bytes. */
enum httpd_range_result httpd_range_parse(const char *header, off_t size, off_t *start, off_t *end);

#endif
