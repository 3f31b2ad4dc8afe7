/* demand_conf: the source table and parsing through it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "demand_helper.h"

static void test_source_names(void **state)
{
	(void)state;
	assert_string_equal(demand_conf_sources(), "random, static, http, remainder");
}

static void test_parse_picks_source(void **state)
{
	struct test_app t;

	(void)state;
	assert_int_equal(test_app_parse(&t, "{\"type\": \"static\", \"instances\": 3}", 0, 9), 0);
	assert_ptr_equal(t.app.demand.src, &demand_static_source);
	test_app_free(&t);
	assert_null(t.app.demand.src);
	assert_int_equal(test_app_parse(&t, "{\"type\": \"nope\"}", 0, 9), -1);
	assert_string_equal(t.c.err, "t.json: apps[0].demand.type: unknown source \"nope\" (one "
				     "of random, static, http, remainder)");
	test_app_free(&t);
	assert_int_equal(test_app_parse(&t, "{\"type\": 3}", 0, 9), -1);
	assert_string_equal(t.c.err, "t.json: apps[0].demand.type: expected a string");
	test_app_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_source_names),
	    cmocka_unit_test(test_parse_picks_source),
	};

	log_init("test", LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
