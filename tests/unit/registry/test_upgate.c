/* upgate: the cap on requests at once, the FIFO behind it and its bound, a slot handed on, and
 * the upstream's Retry-After. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "registry.h"

#define WAITERS 8

static int order[WAITERS]; /* which waiter got a slot, in turn */
static int norder;

struct waiter {
	struct upgate_wait w; /* first: the callback finds its waiter from it */
	int id;
};

static void granted(struct upgate_wait *w)
{
	order[norder++] = ((struct waiter *)w)->id;
}

static void init_waiters(struct waiter *ws, int n)
{
	norder = 0;
	for (int i = 0; i < n; i++) {
		ws[i].w = (struct upgate_wait){.granted = granted};
		ws[i].id = i;
	}
}

static void test_cap_and_fifo(void **state)
{
	struct waiter ws[WAITERS];
	struct upgate g;

	(void)state;
	init_waiters(ws, WAITERS);
	upgate_init(&g, 2, 3);
	assert_int_equal(upgate_enter(&g, &ws[0].w, 0), UPGATE_GO);
	assert_int_equal(upgate_enter(&g, &ws[1].w, 0), UPGATE_GO);
	for (int i = 2; i < 5; i++)
		assert_int_equal(upgate_enter(&g, &ws[i].w, 0), UPGATE_QUEUED);
	assert_int_equal(upgate_enter(&g, &ws[5].w, 0), UPGATE_FULL);
	assert_int_equal(g.active, 2);
	assert_int_equal(g.queued, 3);
	/* a retry, let in before, waits whatever the queue's length */
	assert_int_equal(upgate_enter(&g, &ws[6].w, 1), UPGATE_QUEUED);
	/* each slot given up goes to the first waiter, never back to the pool */
	upgate_leave(&g);
	upgate_leave(&g);
	assert_int_equal(norder, 2);
	assert_int_equal(order[0], 2);
	assert_int_equal(order[1], 3);
	assert_int_equal(g.active, 2);
	/* a newcomer does not overtake the ones still waiting */
	assert_int_equal(upgate_enter(&g, &ws[7].w, 0), UPGATE_QUEUED);
	for (int i = 0; i < 5; i++)
		upgate_leave(&g);
	assert_int_equal(norder, 5);
	assert_int_equal(order[2], 4);
	assert_int_equal(order[3], 6);
	assert_int_equal(order[4], 7);
	assert_int_equal(g.active, 0);
	assert_int_equal(g.queued, 0);
}

static void test_cancel(void **state)
{
	struct waiter ws[4];
	struct upgate g;

	(void)state;
	init_waiters(ws, 4);
	upgate_init(&g, 1, 0); /* no queue at all */
	assert_int_equal(upgate_enter(&g, &ws[0].w, 0), UPGATE_GO);
	assert_int_equal(upgate_enter(&g, &ws[1].w, 0), UPGATE_FULL);
	upgate_init(&g, 1, 4);
	assert_int_equal(upgate_enter(&g, &ws[0].w, 0), UPGATE_GO);
	assert_int_equal(upgate_enter(&g, &ws[1].w, 0), UPGATE_QUEUED);
	assert_int_equal(upgate_enter(&g, &ws[2].w, 0), UPGATE_QUEUED);
	upgate_cancel(&g, &ws[1].w);
	upgate_cancel(&g, &ws[1].w); /* twice is harmless */
	upgate_cancel(&g, &ws[3].w); /* never queued: harmless */
	assert_int_equal(g.queued, 1);
	upgate_leave(&g);
	assert_int_equal(norder, 1);
	assert_int_equal(order[0], 2);
	upgate_leave(&g);
	assert_int_equal(g.active, 0);
	assert_int_equal(upgate_enter(&g, &ws[3].w, 0), UPGATE_GO);
}

static void test_retry_after(void **state)
{
	struct upgate g;

	(void)state;
	upgate_init(&g, 4, 4);
	assert_true(upgate_closed_for(&g, 100.0) == 0);
	upgate_close(&g, 130.0);
	assert_true(upgate_closed_for(&g, 100.0) == 30.0);
	upgate_close(&g, 110.0); /* a shorter one does not reopen it early */
	assert_true(upgate_closed_for(&g, 120.0) == 10.0);
	upgate_close(&g, 140.0);
	assert_true(upgate_closed_for(&g, 130.0) == 10.0);
	assert_true(upgate_closed_for(&g, 140.0) == 0);
	assert_true(upgate_closed_for(&g, 150.0) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cap_and_fifo),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_retry_after),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
