/* backoff: doubling from the base, the cap, and jitter that only ever shortens a delay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "backoff.h"

/* The random source: whatever *arg says. */
static double fixed(void *arg)
{
	return *(double *)arg;
}

static double delay_at(double base, double cap, double jitter, double r, unsigned n)
{
	struct backoff b = {base, cap, jitter, fixed, &r};

	return backoff_delay(&b, n);
}

static void test_doubles_to_the_cap(void **state)
{
	(void)state;
	assert_true(delay_at(0.5, 8, 0.25, 0, 1) == 0.5);
	assert_true(delay_at(0.5, 8, 0.25, 0, 2) == 1);
	assert_true(delay_at(0.5, 8, 0.25, 0, 5) == 8);
	assert_true(delay_at(0.5, 8, 0.25, 0, 6) == 8);
	assert_true(delay_at(2, 300, 0.25, 0, 8) == 256);
	assert_true(delay_at(2, 300, 0.25, 0, 9) == 300);
	/* n = 0 is the first failure too; a very long run costs no more than the cap */
	assert_true(delay_at(0.2, 5, 0.5, 0, 0) == 0.2);
	assert_true(delay_at(0.2, 5, 0.5, 0, 4000000000u) == 5);
	/* a base above the cap is cut to it */
	assert_true(delay_at(10, 5, 0, 0, 1) == 5);
}

static void test_jitter_shortens(void **state)
{
	(void)state;
	assert_true(delay_at(0.2, 5, 0.5, 1, 1) == 0.1);
	assert_true(delay_at(0.2, 5, 0.5, 0.5, 100000) == 3.75);
	assert_true(delay_at(0.5, 8, 0.25, 1, 5) == 6);
	assert_true(delay_at(0.5, 8, 0, 1, 5) == 8);
	/* a source out of [0, 1] is held to it, so no delay passes the cap or goes below zero */
	assert_true(delay_at(0.5, 8, 0.25, 7, 5) == 6);
	assert_true(delay_at(0.5, 8, 0.25, -3, 5) == 8);
}

static void test_degenerate(void **state)
{
	(void)state;
	assert_true(delay_at(0, 8, 0.25, 0, 3) == 0);
	assert_true(delay_at(-1, 8, 0.25, 0, 3) == 0);
	assert_true(delay_at(1, 0, 0.25, 0, 3) == 0);
}

/* Without a source of its own, rand() decides: always within [(1 - jitter) * d, d]. */
static void test_default_source(void **state)
{
	struct backoff b = {.base_s = 1, .cap_s = 4, .jitter = 0.5};

	(void)state;
	srand(1);
	for (int i = 0; i < 1000; i++) {
		double d = backoff_delay(&b, 3);

		assert_true(d >= 2 && d <= 4);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_doubles_to_the_cap),
	    cmocka_unit_test(test_jitter_shortens),
	    cmocka_unit_test(test_degenerate),
	    cmocka_unit_test(test_default_source),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
