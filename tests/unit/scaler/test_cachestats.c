/* cachestats: what the dashboard reads of a cache's /metrics. Hits and misses summed over every
 * kind, bytes by source; HELP/TYPE lines, other families, labels in any order, escaped label
 * values and CRLF line ends do not confuse it; a text without the families is refused, a fresh
 * cache (families declared, no sample yet) is zero. Then the JSON of a followed cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "scaler.h"

static int parse(const char *text, struct cachestats_values *v)
{
	return cachestats_parse(text, strlen(text), v);
}

static void test_parse(void **state)
{
	const char *text =
	    "# HELP microscale_cache_requests_total Manifest and blob requests\n"
	    "# TYPE microscale_cache_requests_total counter\n"
	    "microscale_cache_requests_total{kind=\"blob\",result=\"hit\"} 30\n"
	    "microscale_cache_requests_total{kind=\"blob\",result=\"miss\"} 6\n"
	    "microscale_cache_requests_total{result=\"hit\",kind=\"manifest\"} 10\r\n"
	    "microscale_cache_requests_total{kind=\"manifest\",result=\"miss\"} 4\n"
	    "microscale_cache_requests_total_other{kind=\"blob\",result=\"hit\"} 1000\n"
	    "microscale_bytes_total{source=\"store\"} 123456789\n"
	    "microscale_bytes_total{source=\"upstream\"} 2.5e+07\n"
	    "microscale_http_requests_total{method=\"GET\",status=\"200\"} 99\n"
	    "microscale_bytes_total{x=\"a\\\"b,source=\\\"store\",source=\"upstream\"} 1\n"
	    "microscale_store_bytes 5\n";
	struct cachestats_values v;

	(void)state;
	assert_int_equal(parse(text, &v), 0);
	assert_true(v.hits == 40);
	assert_true(v.misses == 10);
	assert_true(v.bytes_local == 123456789);
	assert_true(v.bytes_upstream == 25000001); /* the escaped value is not a label of its own */
	assert_int_equal(v.found, 3);
}

static void test_refused_and_fresh(void **state)
{
	struct cachestats_values v;

	(void)state;
	assert_int_equal(parse("", &v), -1);
	assert_int_equal(parse("<html>not metrics</html>\n", &v), -1);
	assert_int_equal(parse("microscale_http_requests_total{method=\"GET\"} 3\n", &v), -1);
	assert_int_equal(parse("microscale_bytes_total{source=\"store\"} many\n"
			       "microscale_bytes_total{source=\"store\" 5\n"
			       "microscale_bytes_total{source=store} 5\n",
			       &v),
			 -1);
	assert_int_equal(parse("# HELP microscale_bytes_total Blob bytes\n"
			       "# TYPE microscale_bytes_total counter\n",
			       &v),
			 0);
	assert_true(v.hits == 0 && v.bytes_local == 0);
	/* no newline at the end */
	assert_int_equal(parse("microscale_bytes_total{source=\"store\"} 7", &v), 0);
	assert_true(v.bytes_local == 7);
}

static void test_json(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct fetch_loop *fl = fetch_loop_new(loop);
	struct cachestats *cs = cachestats_new(loop, fl);
	const char *urls[] = {"http://127.0.0.1:1", "http://127.0.0.1:1", "http://127.0.0.1:2"};
	json_t *j;

	(void)state;
	assert_non_null(cs);
	assert_int_equal(cachestats_track(cs, urls, 3), 0);
	j = cachestats_json(cs, urls[0]); /* not read yet */
	assert_true(json_is_null(j));
	json_decref(j);
	j = cachestats_json(cs, "http://elsewhere");
	assert_true(json_is_null(j));
	json_decref(j);
	cachestats_poll(cs); /* reads go out; freeing cancels them */
	assert_int_equal(cachestats_track(cs, urls + 2, 1), 0);
	cachestats_free(cs);
	fetch_loop_free(fl);
	ev_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_refused_and_fresh),
	    cmocka_unit_test(test_json),
	};

	log_init("test", LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
