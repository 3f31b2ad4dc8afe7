/* demand_static: the configured number, every tick. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "demand_helper.h"

static void test_static(void **state)
{
	struct test_app t;
	struct demand_env env = {.loop = EV_DEFAULT, .interval_ms = 100, .capacity = 9};
	struct demand *d;

	(void)state;
	assert_int_equal(test_app_parse(&t, "{\"type\": \"static\", \"instances\": 7}", 0, 9), 0);
	d = demand_new(&t.app, &env);
	assert_non_null(d);
	for (int i = 0; i < 3; i++) {
		demand_poll(d);
		assert_int_equal(d->value, 7);
		assert_int_equal(d->fill, 0);
	}
	demand_free(d);
	test_app_free(&t);
}

static void test_static_bad(void **state)
{
	struct test_app t;

	(void)state;
	assert_int_equal(test_app_parse(&t, "{\"type\": \"static\", \"instances\": \"7\"}", 0, 9),
			 -1);
	assert_string_equal(t.c.err, "t.json: apps[0].demand.instances: expected an integer");
	test_app_free(&t);
	assert_int_equal(test_app_parse(&t, "{\"type\": \"static\"}", 0, 9), -1);
	assert_string_equal(t.c.err, "t.json: apps[0].demand.instances: missing");
	test_app_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_static),
	    cmocka_unit_test(test_static_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
