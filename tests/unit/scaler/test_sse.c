/* sse: the event text the dashboard's stream carries. One data line per line of data, whatever
 * ends it (LF, CR, CRLF), so that data can never end the event early or smuggle in a field; a
 * type that is not one plain word is refused; JSON goes out compact, on one line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "scaler.h"

static void expect(const char *type, const char *data, long retry_ms, const char *want)
{
	size_t len = 0;
	char *ev = sse_frame(type, data, strlen(data), retry_ms, &len);

	assert_non_null(ev);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(ev, want, len);
	free(ev);
}

static void test_frame(void **state)
{
	(void)state;
	expect("tick", "{}", 0, "event: tick\ndata: {}\n\n");
	expect("snapshot", "x", 2000, "event: snapshot\nretry: 2000\ndata: x\n\n");
	expect("tick", "", 0, "event: tick\ndata: \n\n");
	expect("t", "a\nb\r\nc\rd", 0, "event: t\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
	/* a blank line in the data does not end the event; a field name in it stays data */
	expect("t", "a\n\nevent: evil\nretry: 1", 0,
	       "event: t\ndata: a\ndata: \ndata: event: evil\ndata: retry: 1\n\n");
	expect("t", "\n\n\n", 0, "event: t\ndata: \ndata: \ndata: \ndata: \n\n");
}

static void test_bad_type(void **state)
{
	size_t len;

	(void)state;
	assert_null(sse_frame("", "x", 1, 0, &len));
	assert_null(sse_frame("a b", "x", 1, 0, &len));
	assert_null(sse_frame("a\ndata: x", "x", 1, 0, &len));
	assert_null(sse_frame("tick\r", "x", 1, 0, &len));
}

static void test_json(void **state)
{
	json_t *doc = json_pack("{s:s, s:f, s:I}", "why", "line one\nline two", "held_s", 1.0 / 3,
				"t_ms", (json_int_t)1718000000123LL);
	size_t len;
	char *ev = sse_event("tick", doc, 0, &len);

	(void)state;
	assert_non_null(ev);
	assert_string_equal(ev, "event: tick\ndata: {\"why\":\"line one\\nline two\",\"held_s\":"
				"0.333333,\"t_ms\":1718000000123}\n\n");
	free(ev);
	json_decref(doc);
	doc = json_null();
	ev = sse_event("tick", doc, 0, &len);
	assert_string_equal(ev, "event: tick\ndata: null\n\n");
	free(ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_frame),
	    cmocka_unit_test(test_bad_type),
	    cmocka_unit_test(test_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
