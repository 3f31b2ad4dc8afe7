/* demand: the source table, parsing through it, and demand_set (unknown on error, the time of
 * the last change). */
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
	assert_string_equal(demand_source_names(), "random, static, http, remainder");
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

static void test_set_and_unknown(void **state)
{
	struct test_app t;
	struct demand_env env = {.loop = EV_DEFAULT, .interval_ms = 100, .capacity = 9};
	struct demand *d;

	(void)state;
	assert_int_equal(test_app_parse(&t, "{\"type\": \"static\", \"instances\": 3}", 0, 9), 0);
	d = demand_new(&t.app, &env);
	assert_non_null(d);
	assert_int_equal(d->value, DEMAND_UNKNOWN);
	demand_set(d, 4, NULL);
	assert_int_equal(d->value, 4);
	assert_true(d->changed_at > 0);
	demand_set(d, 5, "it broke");
	assert_int_equal(d->value, DEMAND_UNKNOWN);
	assert_string_equal(d->err, "it broke");
	demand_set(d, 5, NULL);
	assert_int_equal(d->value, 5);
	assert_string_equal(d->err, "");
	demand_free(d);
	test_app_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_source_names),
	    cmocka_unit_test(test_parse_picks_source),
	    cmocka_unit_test(test_set_and_unknown),
	};

	log_init("test", LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
