/* events: the server-sent events parser as Marathon's stream feeds it: events split anywhere
 * across reads, CRLF line ends, comments, multi-line data, an event without a name, bad JSON
 * dropped, and a line or an event over its bound skipped whole without taking the next. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"

struct seen {
	int n;
	char type[8][64];
	char data[8][256];
};

static void on_event(const char *type, json_t *data, void *arg)
{
	struct seen *s = arg;
	char *text = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);

	if (s->n < 8) {
		snprintf(s->type[s->n], sizeof(s->type[0]), "%s", type);
		snprintf(s->data[s->n], sizeof(s->data[0]), "%s", text ? text : "");
	}
	s->n++;
	free(text);
}

static struct events *parser(struct seen *s)
{
	static const struct marathon_conf conf = {.url = "http://unused"};
	struct events *e = events_new(NULL, NULL, &conf, NULL, on_event, NULL, s);

	assert_non_null(e);
	memset(s, 0, sizeof(*s));
	return e;
}

static void feed(struct events *e, const char *text)
{
	assert_int_equal(events_feed(e, text, strlen(text)), 0);
}

static void test_events_in_pieces(void **state)
{
	struct seen s;
	struct events *e = parser(&s);
	const char *stream =
	    "event: event_stream_attached\r\ndata: {\"remoteAddress\": \"x\"}\r\n\r\n"
	    ": a comment\n"
	    "event: deployment_success\ndata: {\"id\": \"d1\",\n"
	    "data: \"plan\": {}}\n\n"
	    "data: {\"unnamed\": true}\n\n"
	    "event: status_update_event\ndata: not json\n\n"
	    "event: status_update_event\ndata:{\"appId\":\"/a\"}\n\n";

	(void)state;
	/* one byte at a time: every boundary falls inside some read */
	for (const char *p = stream; *p != '\0'; p++)
		assert_int_equal(events_feed(e, p, 1), 0);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.type[0], "event_stream_attached");
	assert_string_equal(s.type[1], "deployment_success");
	assert_string_equal(s.data[1], "{\"id\":\"d1\",\"plan\":{}}");
	assert_string_equal(s.type[2], "message");
	assert_string_equal(s.type[3], "status_update_event");
	assert_string_equal(s.data[3], "{\"appId\":\"/a\"}");
	events_free(e);
}

static void test_bounds(void **state)
{
	struct seen s;
	struct events *e = parser(&s);
	size_t big = 2 * 1024 * 1024;
	char *line = malloc(big);

	(void)state;
	assert_non_null(line);
	/* one line over the line bound: its event is skipped, the next one is not */
	memset(line, 'x', big);
	feed(e, "event: deployment_info\ndata: ");
	assert_int_equal(events_feed(e, line, big), 0);
	feed(e, "\n\nevent: deployment_success\ndata: {\"id\": \"ok\"}\n\n");
	assert_int_equal(s.n, 1);
	assert_string_equal(s.type[0], "deployment_success");
	/* many lines, each under the bound, over the event bound together */
	feed(e, "event: deployment_info\n");
	memset(line, 'y', 60000);
	line[60000] = '\n';
	for (int i = 0; i < 40; i++) {
		feed(e, "data: ");
		assert_int_equal(events_feed(e, line, 60001), 0);
	}
	feed(e, "\nevent: status_update_event\ndata: {\"appId\": \"/b\"}\n\n");
	assert_int_equal(s.n, 2);
	assert_string_equal(s.type[1], "status_update_event");
	free(line);
	events_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_events_in_pieces),
	    cmocka_unit_test(test_bounds),
	};

	log_init("test", LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
