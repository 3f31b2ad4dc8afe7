/* httpd_range: every branch of the single-range parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "httpd_range.h"

struct range_case {
	const char *header;
	off_t size;
	enum httpd_range_result want;
	off_t start, end; /* when want is HTTPD_RANGE_OK */
};

static void check(const struct range_case *c)
{
	off_t start = -7, end = -7;
	enum httpd_range_result r = httpd_range_parse(c->header, c->size, &start, &end);

	if (r != c->want)
		fail_msg("\"%s\" size %lld: got %d, want %d", c->header ? c->header : "(null)",
			 (long long)c->size, r, c->want);
	if (r == HTTPD_RANGE_OK && (start != c->start || end != c->end))
		fail_msg("\"%s\": got %lld-%lld, want %lld-%lld", c->header, (long long)start,
			 (long long)end, (long long)c->start, (long long)c->end);
	if (r != HTTPD_RANGE_OK && (start != -7 || end != -7))
		fail_msg("\"%s\": outputs written on failure", c->header);
}

#define RUN(cases)                                                                                 \
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)                              \
	check(&cases[i])

static void test_ok(void **state)
{
	static const struct range_case cases[] = {
	    {"bytes=0-0", 10, HTTPD_RANGE_OK, 0, 0},
	    {"bytes=0-9", 10, HTTPD_RANGE_OK, 0, 9},
	    {"bytes=2-5", 10, HTTPD_RANGE_OK, 2, 5},
	    {"bytes=5-100", 10, HTTPD_RANGE_OK, 5, 9}, /* end clamped */
	    {"bytes=9-", 10, HTTPD_RANGE_OK, 9, 9},
	    {"bytes=0-", 10, HTTPD_RANGE_OK, 0, 9},
	    {"bytes=-3", 10, HTTPD_RANGE_OK, 7, 9},
	    {"bytes=-10", 10, HTTPD_RANGE_OK, 0, 9},
	    {"bytes=-11", 10, HTTPD_RANGE_OK, 0, 9},   /* suffix longer: the whole */
	    {"bytes=  1-2", 10, HTTPD_RANGE_OK, 1, 2}, /* spaces after '=' */
	    {"Bytes=1-2", 10, HTTPD_RANGE_OK, 1, 2},   /* the unit is case-insensitive */
	    {"bytes=1-2 ", 10, HTTPD_RANGE_OK, 1, 2},
	    {"bytes=0-99999999999999999", 10, HTTPD_RANGE_OK, 0, 9},
	    {"bytes=9223372036854775806-9223372036854775807", INT64_MAX, HTTPD_RANGE_OK,
	     INT64_MAX - 1, INT64_MAX - 1},
	};

	(void)state;
	RUN(cases);
}

static void test_none(void **state)
{
	static const struct range_case cases[] = {
	    {NULL, 10, HTTPD_RANGE_NONE, 0, 0},
	    {"", 10, HTTPD_RANGE_NONE, 0, 0},
	    {"items=0-1", 10, HTTPD_RANGE_NONE, 0, 0},
	    {"bytes 0-1", 10, HTTPD_RANGE_NONE, 0, 0},
	    {"bytes=0-1,3-4", 10, HTTPD_RANGE_NONE, 0, 0},
	    {"bytes=0-1, -2", 10, HTTPD_RANGE_NONE, 0, 0},
	};

	(void)state;
	RUN(cases);
}

static void test_invalid(void **state)
{
	static const struct range_case cases[] = {
	    {"bytes=", 10, HTTPD_RANGE_INVALID, 0, 0},
	    {"bytes=-", 10, HTTPD_RANGE_INVALID, 0, 0},
	    {"bytes=a-b", 10, HTTPD_RANGE_INVALID, 0, 0},
	    {"bytes=1", 10, HTTPD_RANGE_INVALID, 0, 0},
	    {"bytes=5-2", 10, HTTPD_RANGE_INVALID, 0, 0},
	    {"bytes=1-2x", 10, HTTPD_RANGE_INVALID, 0, 0},
	    {"bytes=1x-2", 10, HTTPD_RANGE_INVALID, 0, 0},
	    {"bytes=-3x", 10, HTTPD_RANGE_INVALID, 0, 0},
	    {"bytes=--3", 10, HTTPD_RANGE_INVALID, 0, 0},
	    {"bytes=+1-2", 10, HTTPD_RANGE_INVALID, 0, 0},
	    {"bytes=1 -2", 10, HTTPD_RANGE_INVALID, 0, 0},
	    {"bytes=99999999999999999999-", 10, HTTPD_RANGE_INVALID, 0, 0},
	    {"bytes=0-99999999999999999999", 10, HTTPD_RANGE_INVALID, 0, 0},
	    {"bytes=-99999999999999999999", 10, HTTPD_RANGE_INVALID, 0, 0},
	    {"bytes=a-b", 0, HTTPD_RANGE_INVALID, 0, 0}, /* syntax before size */
	};

	(void)state;
	RUN(cases);
}

static void test_unsatisfiable(void **state)
{
	static const struct range_case cases[] = {
	    {"bytes=10-", 10, HTTPD_RANGE_UNSATISFIABLE, 0, 0},
	    {"bytes=10-20", 10, HTTPD_RANGE_UNSATISFIABLE, 0, 0},
	    {"bytes=-0", 10, HTTPD_RANGE_UNSATISFIABLE, 0, 0},
	    {"bytes=0-", 0, HTTPD_RANGE_UNSATISFIABLE, 0, 0},
	    {"bytes=0-0", 0, HTTPD_RANGE_UNSATISFIABLE, 0, 0},
	    {"bytes=-5", 0, HTTPD_RANGE_UNSATISFIABLE, 0, 0},
	};

	(void)state;
	RUN(cases);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ok),
	    cmocka_unit_test(test_none),
	    cmocka_unit_test(test_invalid),
	    cmocka_unit_test(test_unsatisfiable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
