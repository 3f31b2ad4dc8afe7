/* demand_remainder: a fill app asking for as much as its bounds allow; with the allocation, it
 * gets what the others leave. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "demand_helper.h"

static void test_remainder(void **state)
{
	struct test_app t;
	struct demand_env env = {.loop = EV_DEFAULT, .interval_ms = 100, .capacity = 10};
	struct alloc_app a[2] = {
	    {.priority = 1, .min = 0, .max = 10, .demand = 6},
	    {.priority = 2, .min = 1, .max = 10},
	};
	struct demand *d;

	(void)state;
	assert_int_equal(test_app_parse(&t, "{\"type\": \"remainder\"}", 1, 10), 0);
	d = demand_new(&t.app, &env);
	assert_non_null(d);
	demand_poll(d);
	assert_int_equal(d->fill, 1);
	assert_int_equal(d->value, 10);
	a[1].demand = d->value;
	a[1].fill = d->fill;
	alloc_run(a, 2, 10);
	assert_int_equal(a[1].target, 4);
	a[0].demand = 10;
	alloc_run(a, 2, 10);
	assert_int_equal(a[1].target, 1); /* its min */
	demand_free(d);
	test_app_free(&t);
}

static void test_remainder_takes_no_keys(void **state)
{
	struct test_app t;

	(void)state;
	assert_int_equal(test_app_parse(&t, "{\"type\": \"remainder\", \"instances\": 1}", 0, 9),
			 -1);
	assert_string_equal(t.c.err, "t.json: apps[0].demand.instances: unknown key");
	test_app_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_remainder),
	    cmocka_unit_test(test_remainder_takes_no_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
