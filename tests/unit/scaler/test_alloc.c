/* alloc: priorities, capacity, min/max, max_delta, cooldown, the gate's hold, and a property
 * loop over many random fleets checking every rule at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"

/* An app with everything neutral: priority P, bounds 0..100, at CUR, wanting DEMAND. */
static struct alloc_app app(int prio, long long cur, long long demand)
{
	return (struct alloc_app){
	    .priority = prio, .min = 0, .max = 100, .cur = cur, .demand = demand};
}

static void test_priority_one_first(void **state)
{
	struct alloc_app a[2] = {app(1, 1, 8), app(2, 2, 0)};

	(void)state;
	a[1].fill = 1;
	alloc_run(a, 2, 10);
	assert_int_equal(a[0].target, 8);
	assert_int_equal(a[1].target, 2);
}

static void test_order_in_config_does_not_matter_for_priority(void **state)
{
	struct alloc_app a[2] = {app(2, 0, 10), app(1, 0, 10)};

	(void)state;
	alloc_run(a, 2, 10);
	assert_int_equal(a[1].target, 10);
	assert_int_equal(a[0].target, 0);
}

static void test_higher_takes_down_to_min(void **state)
{
	struct alloc_app a[2] = {app(1, 2, 10), app(2, 8, 8)};

	(void)state;
	a[1].min = 3;
	alloc_run(a, 2, 10);
	assert_int_equal(a[0].target, 7);
	assert_int_equal(a[1].target, 3);
}

static void test_min_max_clamp(void **state)
{
	struct alloc_app a[2] = {app(1, 5, 50), app(2, 5, 0)};

	(void)state;
	a[0].max = 6;
	a[1].min = 2;
	alloc_run(a, 2, 20);
	assert_int_equal(a[0].want, 6);
	assert_int_equal(a[0].target, 6);
	assert_int_equal(a[1].target, 2);
}

static void test_max_delta(void **state)
{
	struct alloc_app a[2] = {app(1, 2, 10), app(1, 10, 0)};

	(void)state;
	a[0].max_delta = 3;
	a[1].max_delta = 3;
	alloc_run(a, 2, 100);
	assert_int_equal(a[0].target, 5);
	assert_int_equal(a[1].target, 7);
}

static void test_max_delta_limits_preemption(void **state)
{
	/* Priority 2 may only shrink by 2 per tick, so priority 1 gets only what that frees. */
	struct alloc_app a[2] = {app(1, 2, 10), app(2, 8, 8)};

	(void)state;
	a[1].max_delta = 2;
	alloc_run(a, 2, 10);
	assert_int_equal(a[1].target, 6);
	assert_int_equal(a[0].target, 4);
}

static void test_max_delta_yields_to_min(void **state)
{
	struct alloc_app a = app(1, 0, 0);

	(void)state;
	a.min = 5;
	a.max_delta = 1;
	alloc_run(&a, 1, 10);
	assert_int_equal(a.target, 5);
}

static void test_cooldown_holds_scale_down(void **state)
{
	struct alloc_app a = app(1, 5, 1);

	(void)state;
	a.cooldown = 1;
	alloc_run(&a, 1, 10);
	assert_int_equal(a.target, 5);
	a.cooldown = 0;
	alloc_run(&a, 1, 10);
	assert_int_equal(a.target, 1);
}

static void test_cooldown_holds_against_priority(void **state)
{
	struct alloc_app a[2] = {app(1, 0, 10), app(2, 6, 6)};

	(void)state;
	a[1].cooldown = 1;
	alloc_run(a, 2, 10);
	assert_int_equal(a[1].target, 6);
	assert_int_equal(a[0].target, 4);
}

static void test_cooldown_does_not_hold_rise(void **state)
{
	struct alloc_app a = app(1, 5, 9);

	(void)state;
	a.cooldown = 1;
	alloc_run(&a, 1, 10);
	assert_int_equal(a.target, 9);
}

static void test_unknown_demand_stays(void **state)
{
	struct alloc_app a = app(1, 4, DEMAND_UNKNOWN);

	(void)state;
	alloc_run(&a, 1, 10);
	assert_int_equal(a.target, 4);
}

static void test_equal_share_within_priority(void **state)
{
	struct alloc_app a[3] = {app(1, 0, 10), app(1, 0, 10), app(1, 0, 2)};

	(void)state;
	alloc_run(a, 3, 11);
	assert_int_equal(a[2].target, 2);
	assert_int_equal(a[0].target, 5);
	assert_int_equal(a[1].target, 4);
}

static void test_fill_after_others_of_its_level(void **state)
{
	struct alloc_app a[3] = {app(1, 0, 0), app(1, 0, 7), app(2, 0, 5)};

	(void)state;
	a[0].fill = 1;
	alloc_run(a, 3, 10);
	assert_int_equal(a[1].target, 7);
	assert_int_equal(a[0].target, 3);
	assert_int_equal(a[2].target, 0);
}

static void test_fill_waits_for_unknown_demand(void **state)
{
	/* p1's reading is not in yet: what is left is not known, so p2 (a fill app) stays. */
	struct alloc_app a[3] = {app(1, 1, DEMAND_UNKNOWN), app(2, 1, 0), app(3, 0, 0)};

	(void)state;
	a[1].fill = 1;
	a[2].fill = 1;
	a[2].min = 1;
	alloc_run(a, 3, 10);
	assert_int_equal(a[0].target, 1);
	assert_int_equal(a[1].target, 1);
	assert_int_equal(a[1].want, 100);
	assert_int_equal(a[2].target, 1); /* its min, still */
	a[0].demand = 2;
	alloc_run(a, 3, 10);
	assert_int_equal(a[1].target, 7);
	/* an unknown demand below a fill app's priority does not hold it */
	a[0].demand = 2;
	a[2].fill = 0;
	a[2].demand = DEMAND_UNKNOWN;
	alloc_run(a, 3, 10);
	assert_int_equal(a[1].target, 7);
}

static void test_hold_up_gives_room_to_others(void **state)
{
	struct alloc_app a[2] = {app(1, 1, 8), app(2, 9, 0)};

	(void)state;
	a[1].fill = 1;
	a[0].hold_up = 1;
	alloc_run(a, 2, 10);
	assert_int_equal(a[0].target, 1);
	assert_int_equal(a[1].target, 9);
}

static void test_hold_up_below_min(void **state)
{
	struct alloc_app a = app(1, 0, 5);

	(void)state;
	a.min = 2;
	a.hold_up = 1;
	alloc_run(&a, 1, 10);
	assert_int_equal(a.target, 0);
	assert_int_equal(a.want, 5); /* what it would have: for the log */
}

static void test_absent_gets_nothing(void **state)
{
	struct alloc_app a[2] = {app(1, 7, 7), app(2, 0, 10)};

	(void)state;
	a[0].absent = 1;
	a[0].min = 3;
	alloc_run(a, 2, 10);
	assert_int_equal(a[0].target, 0);
	assert_int_equal(a[1].target, 10);
}

static void test_over_capacity_now_comes_back_within(void **state)
{
	/* Marathon holds 16 of 10 (someone scaled by hand): floors give way, lowest first. */
	struct alloc_app a[2] = {app(1, 8, 8), app(2, 8, 8)};

	(void)state;
	a[0].max_delta = a[1].max_delta = 1;
	a[1].cooldown = 1;
	alloc_run(a, 2, 10);
	assert_true(a[0].target + a[1].target <= 10);
	assert_int_equal(a[0].target, 8);
	assert_int_equal(a[1].target, 2);
}

/* --- the property loop --- */

static uint64_t rng_state = 88172645463325252ULL;

static long long rnd(long long n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return n <= 0 ? 0 : (long long)(rng_state % (uint64_t)n);
}

static long long lmin(long long a, long long b)
{
	return a < b ? a : b;
}

static long long lmax(long long a, long long b)
{
	return a > b ? a : b;
}

static int unknown_prio;

/* The most app x may get: what it wants, but not above its instances while the gate holds it,
 * nor above max(instances, min) for a fill app while a more urgent demand is unknown. */
static long long ceil_of(const struct alloc_app *x)
{
	long long c = x->want;

	if (x->fill && x->priority >= unknown_prio && c > x->cur)
		c = lmax(x->cur, lmin(x->min, c));
	if (x->hold_up && c > x->cur)
		c = x->cur;
	return c;
}

/* What a floor of app x is before capacity makes it give way (see alloc.c). */
static long long own_floor(const struct alloc_app *x)
{
	long long cur_in = lmin(lmax(x->cur, x->min), x->max), f = x->min;

	if (x->cooldown)
		f = lmax(f, cur_in);
	else if (x->max_delta > 0)
		f = lmax(f, cur_in - x->max_delta);
	return lmin(f, ceil_of(x));
}

static void random_fleet(struct alloc_app *a, size_t n, long long cap)
{
	long long mins = 0;

	for (size_t i = 0; i < n; i++) {
		struct alloc_app *x = &a[i];

		memset(x, 0, sizeof(*x));
		x->priority = 1 + (int)rnd(3);
		x->min = rnd(4) == 0 ? lmin(rnd(4), cap - mins) : 0;
		mins += x->min;
		x->max = x->min + rnd(cap + 2);
		x->max_delta = rnd(3) == 0 ? 1 + rnd(4) : 0;
		x->demand = rnd(6) == 0 ? DEMAND_UNKNOWN : rnd(x->max + 5);
		x->fill = rnd(6) == 0;
		x->cur = rnd(x->max + 4);
		x->cooldown = rnd(5) == 0;
		x->hold_up = rnd(6) == 0;
		x->absent = rnd(10) == 0;
	}
}

static void check_fleet(const struct alloc_app *a, size_t n, long long cap)
{
	long long sum = 0, floors = 0;

	unknown_prio = 1 << 30;
	for (size_t i = 0; i < n; i++) {
		if (!a[i].absent && !a[i].fill && a[i].demand == DEMAND_UNKNOWN &&
		    a[i].priority < unknown_prio)
			unknown_prio = a[i].priority;
	}
	for (size_t i = 0; i < n; i++) {
		if (!a[i].absent) {
			sum += a[i].target;
			floors += own_floor(&a[i]);
		}
	}
	assert_true(sum <= cap);
	for (size_t i = 0; i < n; i++) {
		const struct alloc_app *x = &a[i];

		if (x->absent) {
			assert_int_equal(x->target, 0);
			continue;
		}
		assert_true(x->target <= x->want);
		assert_true(x->want <= x->max);
		assert_true(x->target >= 0);
		/* min holds unless the gate keeps the app below it */
		assert_true(x->target >= lmin(x->min, ceil_of(x)));
		if (x->hold_up)
			assert_true(x->target <= lmax(x->cur, 0) || x->target <= x->cur);
		if (x->max_delta > 0 && x->target > x->cur)
			assert_true(x->target <= lmax(x->cur + x->max_delta, x->min));
		/* Floors (max_delta, cooldown) give way only when they do not fit together. */
		if (floors <= cap) {
			assert_true(x->target >= own_floor(x));
			if (x->cooldown && x->cur <= x->max)
				assert_true(x->target >= lmin(x->cur, x->want));
		}
		/* Work conserving: room left means everyone has what it may have. */
		if (sum < cap)
			assert_int_equal(x->target, ceil_of(x));
		/* Priority: an app above its floor means every more urgent app is satisfied, and
		 * so is every non-fill app of its own level when it is a fill app. */
		if (floors <= cap && x->target > own_floor(x)) {
			for (size_t k = 0; k < n; k++) {
				const struct alloc_app *y = &a[k];

				if (y->absent)
					continue;
				if (y->priority < x->priority ||
				    (y->priority == x->priority && x->fill && !y->fill))
					assert_int_equal(y->target, ceil_of(y));
			}
		}
	}
}

static void test_property_random_fleets(void **state)
{
	struct alloc_app a[10];

	(void)state;
	for (int round = 0; round < 200000; round++) {
		size_t n = 1 + (size_t)rnd(10);
		long long cap = 1 + rnd(round % 7 == 0 ? 1000 : 30);

		random_fleet(a, n, cap);
		alloc_run(a, n, cap);
		check_fleet(a, n, cap);
	}
}

/* Iterating the allocation as a daemon would (targets become the next tick's instances) keeps
 * the sum within capacity on every step, and a steady demand settles. */
static void test_property_iterated(void **state)
{
	struct alloc_app a[6];

	(void)state;
	for (int round = 0; round < 2000; round++) {
		size_t n = 2 + (size_t)rnd(5);
		long long cap = 5 + rnd(40), prev_sum = -1;

		random_fleet(a, n, cap);
		for (size_t i = 0; i < n; i++) {
			a[i].cur = 0;
			a[i].hold_up = a[i].absent = 0;
		}
		for (int step = 0; step < 60; step++) {
			long long sum = 0;

			alloc_run(a, n, cap);
			for (size_t i = 0; i < n; i++) {
				sum += a[i].target;
				a[i].cur = a[i].target;
				a[i].cooldown = 0;
			}
			assert_true(sum <= cap);
			prev_sum = sum;
		}
		/* settled: one more run changes nothing */
		alloc_run(a, n, cap);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(a[i].target, a[i].cur);
		(void)prev_sum;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_priority_one_first),
	    cmocka_unit_test(test_order_in_config_does_not_matter_for_priority),
	    cmocka_unit_test(test_higher_takes_down_to_min),
	    cmocka_unit_test(test_min_max_clamp),
	    cmocka_unit_test(test_max_delta),
	    cmocka_unit_test(test_max_delta_limits_preemption),
	    cmocka_unit_test(test_max_delta_yields_to_min),
	    cmocka_unit_test(test_cooldown_holds_scale_down),
	    cmocka_unit_test(test_cooldown_holds_against_priority),
	    cmocka_unit_test(test_cooldown_does_not_hold_rise),
	    cmocka_unit_test(test_unknown_demand_stays),
	    cmocka_unit_test(test_equal_share_within_priority),
	    cmocka_unit_test(test_fill_after_others_of_its_level),
	    cmocka_unit_test(test_fill_waits_for_unknown_demand),
	    cmocka_unit_test(test_hold_up_gives_room_to_others),
	    cmocka_unit_test(test_hold_up_below_min),
	    cmocka_unit_test(test_absent_gets_nothing),
	    cmocka_unit_test(test_over_capacity_now_comes_back_within),
	    cmocka_unit_test(test_property_random_fleets),
	    cmocka_unit_test(test_property_iterated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
