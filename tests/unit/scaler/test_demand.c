/* demand: demand_set (unknown on error, the time of the last change). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "demand_helper.h"

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
	    cmocka_unit_test(test_set_and_unknown),
	};

	log_init("test", LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
