/* plan: scale-downs before the scale-ups that use their room, the gate holding a rise (and
 * leaving the lower priority alone), unknown and missing apps, partial rises; then a simulation
 * of a Marathon that applies PUTs late and kills tasks later still, checking that the sum never
 * exceeds the capacity in any state it passes through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"

#define CAP 10

struct world {
	size_t n;
	struct alloc_app a[8];
	struct plan_app p[8];
	int ready[8]; /* the gate's answer per app */
	int asked[8]; /* how often the gate was asked */
};

static int gate(size_t i, void *arg)
{
	struct world *w = arg;

	w->asked[i]++;
	return w->ready[i];
}

/* Two apps, both known, idle, images ready: p1 (min 1) and p2 (a remainder, min 0). */
static void two_apps(struct world *w, long long p1, long long p2)
{
	memset(w, 0, sizeof(*w));
	w->n = 2;
	w->a[0] = (struct alloc_app){.priority = 1, .min = 1, .max = CAP, .demand = p1};
	w->a[1] = (struct alloc_app){.priority = 2, .min = 0, .max = CAP, .fill = 1};
	for (size_t i = 0; i < 2; i++) {
		w->p[i] = (struct plan_app){.known = 1, .can_put = 1};
		w->ready[i] = 1;
	}
	w->a[0].cur = w->p[0].occ = w->p[0].tasks = p1;
	w->a[1].cur = w->p[1].occ = w->p[1].tasks = p2;
}

static void decide(struct world *w)
{
	plan_decide(w->a, w->p, w->n, CAP, gate, w);
}

static void test_down_first_then_up(void **state)
{
	struct world w;

	(void)state;
	two_apps(&w, 2, 8);
	w.a[0].demand = 7;
	decide(&w);
	assert_int_equal(w.p[1].action, -1);
	assert_int_equal(w.p[1].to, 3);
	assert_int_equal(w.p[0].action, 0);
	assert_int_equal(w.p[0].why, PLAN_ROOM);
	/* The PUT is out: p2 still holds its 8. */
	w.a[1].cur = 3;
	w.p[1].can_put = 0;
	w.p[1].occ = 8;
	decide(&w);
	assert_int_equal(w.p[0].action, 0);
	/* Accepted, tasks still alive: still 8. */
	w.p[1].can_put = 1;
	decide(&w);
	assert_int_equal(w.p[0].action, 0);
	assert_int_equal(w.p[0].why, PLAN_ROOM);
	/* Tasks gone: room. */
	w.p[1].occ = w.p[1].tasks = 3;
	decide(&w);
	assert_int_equal(w.p[0].action, 1);
	assert_int_equal(w.p[0].to, 7);
	assert_int_equal(w.p[1].action, 0);
}

static void test_gate_holds_and_keeps_lower_priority(void **state)
{
	struct world w;

	(void)state;
	two_apps(&w, 2, 8);
	w.a[0].demand = 7;
	w.ready[0] = 0;
	decide(&w);
	assert_true(w.asked[0] > 0);
	assert_int_equal(w.p[0].gated, 1);
	assert_int_equal(w.p[0].why, PLAN_GATED);
	assert_int_equal(w.p[0].action, 0);
	/* The lower priority keeps its room while the image is not there. */
	assert_int_equal(w.p[1].action, 0);
	assert_int_equal(w.a[1].target, 8);
	w.ready[0] = 1;
	decide(&w);
	assert_int_equal(w.p[0].gated, 0);
	assert_int_equal(w.p[1].action, -1);
}

static void test_downs_never_gated(void **state)
{
	struct world w;

	(void)state;
	two_apps(&w, 6, 4);
	w.a[0].demand = 2;
	w.ready[0] = w.ready[1] = 0;
	decide(&w);
	assert_int_equal(w.p[0].action, -1);
	assert_int_equal(w.p[0].to, 2);
	assert_int_equal(w.asked[0], 0);
	/* p2 would rise into the room: gated */
	assert_int_equal(w.p[1].gated, 1);
}

static void test_unknown_blocks_ups_not_downs(void **state)
{
	struct world w;

	(void)state;
	two_apps(&w, 6, 0);
	w.a[0].demand = 3;
	w.p[1].known = 0;
	decide(&w);
	assert_int_equal(w.p[0].action, -1);
	w.a[0].demand = 9;
	w.a[0].cur = w.p[0].occ = w.p[0].tasks = 3;
	decide(&w);
	assert_int_equal(w.p[0].action, 0);
	assert_int_equal(w.p[0].why, PLAN_UNKNOWN);
}

static void test_missing_never_put(void **state)
{
	struct world w;

	(void)state;
	two_apps(&w, 2, 0);
	w.p[1].missing = 1;
	for (int k = 0; k < 3; k++) {
		decide(&w);
		assert_int_equal(w.p[1].action, 0);
		assert_int_equal(w.p[1].why, PLAN_MISSING);
	}
	/* and it holds no room: p1 may take everything */
	w.a[0].demand = 10;
	decide(&w);
	assert_int_equal(w.p[0].to, 10);
}

static void test_busy_app_waits(void **state)
{
	struct world w;

	(void)state;
	two_apps(&w, 2, 0);
	w.a[0].demand = 5;
	w.p[0].can_put = 0;
	decide(&w);
	assert_int_equal(w.p[0].action, 0);
	assert_int_equal(w.p[0].why, PLAN_BUSY);
}

static void test_partial_when_nothing_more_frees(void **state)
{
	struct world w;

	(void)state;
	/* p2 is locked at 6 (cannot be PUT), but a third app's tasks linger: nothing is pending
	 * except p2, so p1 waits; once p2 is the only holder and not shrinking, p1 takes what fits.
	 */
	two_apps(&w, 2, 6);
	w.a[0].demand = 8;
	w.a[1].fill = 0;
	w.a[1].demand = 6;
	w.a[1].cooldown = 1; /* p2 may not shrink */
	decide(&w);
	assert_int_equal(w.p[1].action, 0);
	assert_int_equal(w.p[0].action, 1);
	assert_int_equal(w.p[0].to, 4);
}

static void test_in_flight_counts(void **state)
{
	struct world w;

	(void)state;
	two_apps(&w, 2, 0);
	w.a[1].fill = 0;
	w.a[1].demand = 8;
	/* p2 has a PUT to 8 out: counted at 8 although Marathon says 0. */
	w.a[1].cur = 8;
	w.p[1].occ = 8;
	w.p[1].can_put = 0;
	w.a[0].demand = 5;
	decide(&w);
	assert_int_equal(w.p[0].action, 0);
	assert_true(w.a[0].target + w.a[1].target <= CAP);
}

/* --- simulation --- */

struct sim_app {
	long long m_inst, m_tasks; /* Marathon's truth */
	long long k_inst, k_tasks; /* as last read or answered */
	long long inflight;	   /* a PUT out, or -1 */
	long long uncertain;	   /* instances before an accepted scale-down, until a read */
};

static uint64_t rs = 0x9e3779b97f4a7c15ULL;

static long long rnd(long long n)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (long long)(rs % (uint64_t)n);
}

static long long lmax(long long a, long long b)
{
	return a > b ? a : b;
}

/* The most Marathon may ever come to hold, counting PUTs that may still land. */
static long long worst_sum(const struct sim_app *s, size_t n)
{
	long long sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += lmax(lmax(s[i].m_inst, s[i].m_tasks), s[i].inflight);
	return sum;
}

static void sim_plan(struct world *w, struct sim_app *s)
{
	for (size_t i = 0; i < w->n; i++) {
		w->a[i].cur = s[i].inflight >= 0 ? s[i].inflight : s[i].k_inst;
		w->p[i].can_put = s[i].inflight < 0;
		w->p[i].occ =
		    lmax(lmax(lmax(s[i].k_inst, s[i].k_tasks), s[i].inflight), s[i].uncertain);
		w->p[i].tasks = s[i].k_tasks;
		w->ready[i] = rnd(4) != 0;
	}
	decide(w);
	for (size_t i = 0; i < w->n; i++) {
		if (w->p[i].action != 0)
			s[i].inflight = w->p[i].to;
	}
}

static void sim_event(struct world *w, struct sim_app *s)
{
	size_t i = (size_t)rnd((long long)w->n);

	switch (rnd(5)) {
	case 0: /* a PUT lands and is answered */
		if (s[i].inflight >= 0) {
			/* as marathon.c does: the tasks known may predate the last rise */
			if (s[i].inflight < s[i].k_inst)
				s[i].uncertain = lmax(s[i].uncertain, s[i].k_inst);
			s[i].m_inst = s[i].k_inst = s[i].inflight;
			s[i].inflight = -1;
		}
		break;
	case 1: /* a task starts or dies */
		if (s[i].m_tasks < s[i].m_inst)
			s[i].m_tasks++;
		else if (s[i].m_tasks > s[i].m_inst)
			s[i].m_tasks--;
		break;
	case 2: /* a read */
		if (s[i].inflight < 0) {
			s[i].k_inst = s[i].m_inst;
			s[i].k_tasks = s[i].m_tasks;
			s[i].uncertain = -1;
		}
		break;
	case 3: /* demand moves */
		w->a[i].demand = rnd(CAP + 3);
		break;
	default:
		sim_plan(w, s);
	}
}

static void test_simulation_never_exceeds_capacity(void **state)
{
	struct world w;
	struct sim_app s[5];

	(void)state;
	for (int run = 0; run < 300; run++) {
		memset(&w, 0, sizeof(w));
		memset(s, 0, sizeof(s));
		w.n = 2 + (size_t)rnd(4);
		for (size_t i = 0; i < w.n; i++) {
			w.a[i] = (struct alloc_app){.priority = 1 + (int)rnd(2),
						    .min = 0,
						    .max = CAP,
						    .demand = rnd(CAP),
						    .fill = rnd(4) == 0,
						    .max_delta = rnd(3) == 0 ? 2 : 0};
			w.p[i].known = 1;
			s[i].inflight = s[i].uncertain = -1;
		}
		for (int step = 0; step < 3000; step++) {
			sim_event(&w, s);
			assert_true(worst_sum(s, w.n) <= CAP);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_down_first_then_up),
	    cmocka_unit_test(test_gate_holds_and_keeps_lower_priority),
	    cmocka_unit_test(test_downs_never_gated),
	    cmocka_unit_test(test_unknown_blocks_ups_not_downs),
	    cmocka_unit_test(test_missing_never_put),
	    cmocka_unit_test(test_busy_app_waits),
	    cmocka_unit_test(test_partial_when_nothing_more_frees),
	    cmocka_unit_test(test_in_flight_counts),
	    cmocka_unit_test(test_simulation_never_exceeds_capacity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
