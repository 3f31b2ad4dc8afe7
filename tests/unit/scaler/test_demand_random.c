/* demand_random: deterministic for a seed, within min..max, at most step per move, one move per
 * period. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "demand_helper.h"

#define TICKS 5000

static void walk(const char *json, long long min, long long max, long interval_ms, long long *out,
		 int n)
{
	struct test_app t;
	struct demand_env env = {.loop = EV_DEFAULT, .interval_ms = interval_ms, .capacity = max};
	struct demand *d;

	assert_int_equal(test_app_parse(&t, json, min, max), 0);
	d = demand_new(&t.app, &env);
	assert_non_null(d);
	for (int i = 0; i < n; i++) {
		demand_poll(d);
		out[i] = d->value;
	}
	demand_free(d);
	test_app_free(&t);
}

static void test_same_seed_same_walk(void **state)
{
	static long long a[TICKS], b[TICKS], c[TICKS];
	int differ = 0;

	(void)state;
	walk("{\"type\": \"random\", \"seed\": 42, \"step\": 2, \"period_ms\": 100}", 1, 10, 100, a,
	     TICKS);
	walk("{\"type\": \"random\", \"seed\": 42, \"step\": 2, \"period_ms\": 100}", 1, 10, 100, b,
	     TICKS);
	walk("{\"type\": \"random\", \"seed\": 43, \"step\": 2, \"period_ms\": 100}", 1, 10, 100, c,
	     TICKS);
	for (int i = 0; i < TICKS; i++) {
		assert_int_equal(a[i], b[i]);
		differ |= a[i] != c[i];
	}
	assert_true(differ);
}

static void test_bounds_and_step(void **state)
{
	static long long v[TICKS];
	int seen_min = 0, seen_max = 0, moves = 0;

	(void)state;
	walk("{\"type\": \"random\", \"seed\": 7, \"step\": 3, \"period_ms\": 100}", 2, 12, 100, v,
	     TICKS);
	for (int i = 0; i < TICKS; i++) {
		assert_true(v[i] >= 2 && v[i] <= 12);
		seen_min |= v[i] == 2;
		seen_max |= v[i] == 12;
		if (i > 0) {
			assert_true(llabs(v[i] - v[i - 1]) <= 3);
			moves += v[i] != v[i - 1];
		}
	}
	/* a walk this long visits both ends and moves most of the time */
	assert_true(seen_min && seen_max);
	assert_true(moves > TICKS / 2);
}

static void test_period(void **state)
{
	long long v[100];

	(void)state;
	/* 1000 ms at 100 ms a tick: a move on every tenth tick at most */
	walk("{\"type\": \"random\", \"seed\": 5, \"step\": 5, \"period_ms\": 1000}", 0, 100, 100,
	     v, 100);
	for (int i = 1; i < 100; i++) {
		if (i % 10 != 0)
			assert_int_equal(v[i], v[i - 1]);
	}
}

static void test_defaults_and_bad(void **state)
{
	struct test_app t;

	(void)state;
	assert_int_equal(test_app_parse(&t, "{\"type\": \"random\"}", 0, 5), 0);
	test_app_free(&t);
	assert_int_equal(test_app_parse(&t, "{\"type\": \"random\", \"seed\": -1}", 0, 5), -1);
	assert_string_equal(
	    t.c.err, "t.json: apps[0].demand.seed: must be between 0 and 9223372036854775807");
	test_app_free(&t);
	assert_int_equal(test_app_parse(&t, "{\"type\": \"random\", \"speed\": 1}", 0, 5), -1);
	assert_string_equal(t.c.err, "t.json: apps[0].demand.speed: unknown key");
	test_app_free(&t);
}

static void test_single_value_range(void **state)
{
	long long v[50];

	(void)state;
	walk("{\"type\": \"random\", \"seed\": 9, \"step\": 4, \"period_ms\": 10}", 3, 3, 100, v,
	     50);
	for (int i = 0; i < 50; i++)
		assert_int_equal(v[i], 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_same_seed_same_walk),
	    cmocka_unit_test(test_bounds_and_step),
	    cmocka_unit_test(test_period),
	    cmocka_unit_test(test_defaults_and_bad),
	    cmocka_unit_test(test_single_value_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
