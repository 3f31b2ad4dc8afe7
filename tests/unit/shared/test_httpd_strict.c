/* httpd_strict: the RFC 9112 checks on a raw request head, whole and split at every byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "httpd_strict.h"

struct strict_case {
	const char *head;
	int want;	 /* 1 complete, -1 rejected, 0 needs more */
	int status;	 /* when rejected */
	const char *why; /* a word of the reason, when rejected */
};

static const struct strict_case cases[] = {
    {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1, 0, NULL},
    {"GET / HTTP/1.0\r\n\r\n", 1, 0, NULL},
    {"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 1, 0, NULL},
    {"GET / HTTP/1.1\r\nX: a b\tc\r\nY:\r\n\r\n", 1, 0, NULL},
    {"GET / HTTP/1.1\r\nHost: a\r\n", 0, 0, NULL},
    {"GET /", 0, 0, NULL},
    {"GET /\r\n", -1, 400, "version"},
    {"GET / FTP/1.1\r\n", -1, 400, "version"},
    {"GET / HTTP/x.1\r\n", -1, 400, "version"},
    {"GET / HTTP/9.9\r\n", -1, 505, "not supported"},
    {"GET / HTTP/2.0\r\n", -1, 505, "not supported"},
    {"GET / HTTP/1.2\r\n", -1, 505, "not supported"},
    {"GET / HTTP/1.1\n", -1, 400, "bare LF"},
    {"GET / HTTP/1.1\r\nHost: a\n\r\n", -1, 400, "bare LF"},
    {"GET / HTTP/1.1\r\nHost: a\r\n\n", -1, 400, "bare LF"},
    {"GET / HTTP/1.1\rX", -1, 400, "CR"},
    {"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", -1, 400, "folding"},
    {"GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", -1, 400, "folding"},
    {"GET / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", -1, 400, "colon"},
    {"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", -1, 400, "colon"},
    {"GET / HTTP/1.1\r\nno colon\r\n\r\n", -1, 400, "colon"},
};

static void check_result(const struct strict_case *c, const struct httpd_strict *s, int r,
			 const char *how)
{
	if (r != c->want)
		fail_msg("%s \"%s\": got %d, want %d", how, c->head, r, c->want);
	if (r < 0 && (s->status != c->status || !s->why || !strstr(s->why, c->why)))
		fail_msg("%s \"%s\": got %d \"%s\"", how, c->head, s->status,
			 s->why ? s->why : "(null)");
}

static void test_whole(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct httpd_strict s;

		httpd_strict_init(&s);
		check_result(&cases[i], &s,
			     httpd_strict_feed(&s, cases[i].head, strlen(cases[i].head)), "whole");
	}
}

/* One byte at a time: the verdict must not depend on where the reads split the head. */
static void test_bytewise(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *h = cases[i].head;
		struct httpd_strict s;
		int r = 0;

		httpd_strict_init(&s);
		for (size_t k = 0; h[k] && r == 0; k++)
			r = httpd_strict_feed(&s, h + k, 1);
		check_result(&cases[i], &s, r, "bytewise");
	}
}

/* What follows the head (a body, the next request) is not the scanner's business. */
static void test_after_head(void **state)
{
	static const char data[] = "GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\n\n \t";
	struct httpd_strict s;

	(void)state;
	httpd_strict_init(&s);
	assert_int_equal(httpd_strict_feed(&s, data, sizeof(data) - 1), 1);
	assert_int_equal(httpd_strict_feed(&s, "\n\n", 2), 1);
}

static void test_long_request_line(void **state)
{
	char line[9000];
	struct httpd_strict s;

	(void)state;
	memset(line, 'a', sizeof(line));
	memcpy(line, "GET /", 5);
	memcpy(line + sizeof(line) - 13, " HTTP/1.1\r\n\r\n", 13);
	httpd_strict_init(&s);
	assert_int_equal(httpd_strict_feed(&s, line, sizeof(line)), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_whole),
	    cmocka_unit_test(test_bytewise),
	    cmocka_unit_test(test_after_head),
	    cmocka_unit_test(test_long_request_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
