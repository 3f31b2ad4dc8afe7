/* httpd_range: one "bytes=" range out of a Range header (RFC 9110 section 14). Anything we do not
 * serve as a single range (other units, several ranges) is ignored: the whole body is a valid
 * answer to those. */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "httpd_range.h"

/* off_t is 64 bits under _FILE_OFFSET_BITS=64 and on every 64-bit Linux. */
#define RANGE_OFF_MAX ((off_t)INT64_MAX)

/* Parses [0-9]+ at *s into *out and advances *s. -1 when there are no digits or on overflow. */
static int range_number(const char **s, off_t *out)
{
	const char *p = *s;
	off_t n = 0;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (RANGE_OFF_MAX - (*p - '0')) / 10)
			return -1;
		n = n * 10 + (*p - '0');
	}
	*s = p;
	*out = n;
	return 0;
}

static const char *skip_spaces(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* "-N": the last N bytes. */
static enum httpd_range_result range_suffix(const char *p, off_t size, off_t *start, off_t *end)
{
	off_t n;

	if (range_number(&p, &n) != 0 || *skip_spaces(p) != '\0')
		return HTTPD_RANGE_INVALID;
	if (n == 0 || size == 0)
		return HTTPD_RANGE_UNSATISFIABLE;
	*start = n >= size ? 0 : size - n;
	*end = size - 1;
	return HTTPD_RANGE_OK;
}

/* "A-B" or "A-". */
static enum httpd_range_result range_span(const char *p, off_t size, off_t *start, off_t *end)
{
	off_t a, b = RANGE_OFF_MAX;

	if (range_number(&p, &a) != 0 || *p++ != '-')
		return HTTPD_RANGE_INVALID;
	if (*p >= '0' && *p <= '9' && range_number(&p, &b) != 0)
		return HTTPD_RANGE_INVALID;
	if (*skip_spaces(p) != '\0' || a > b)
		return HTTPD_RANGE_INVALID;
	if (a >= size)
		return HTTPD_RANGE_UNSATISFIABLE;
	*start = a;
	*end = b >= size ? size - 1 : b;
	return HTTPD_RANGE_OK;
}

enum httpd_range_result httpd_range_parse(const char *header, off_t size, off_t *start, off_t *end)
{
	const char *p;

	if (!header || strncasecmp(header, "bytes=", 6) != 0)
		return HTTPD_RANGE_NONE;
	p = skip_spaces(header + 6);
	if (strchr(p, ','))
		return HTTPD_RANGE_NONE;
	if (*p == '-')
		return range_suffix(p + 1, size, start, end);
	return range_span(p, size, start, end);
}
