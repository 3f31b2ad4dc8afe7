/* gate: ready in every cache or held; prewarm asked once (not in a dry run); re-checked while
 * held; errors hold; held time. Against scripted caches on the test's own loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

#include "fake_server.h"

#define NOT_READY "{\"ready\": false, \"layers_present\": 0, \"layers_total\": 2}"
#define READY "{\"ready\": true, \"layers_present\": 2, \"layers_total\": 2}"

struct fixture {
	struct ev_loop *loop;
	struct fetch_loop *fl;
	struct fake c1, c2;
	char *caches[2];
	struct app_conf apps[1];
	struct gate *g;
	int changed;
};

static void on_changed(void *arg)
{
	((struct fixture *)arg)->changed++;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->loop = EV_DEFAULT;
	f->fl = fetch_loop_new(f->loop);
	if (f->fl == NULL || fake_start(&f->c1, f->loop) < 0 || fake_start(&f->c2, f->loop) < 0)
		return -1;
	f->caches[0] = f->c1.url;
	f->caches[1] = f->c2.url;
	f->apps[0].id = "/a";
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	gate_free(f->g);
	fake_stop(&f->c1);
	fake_stop(&f->c2);
	fetch_loop_free(f->fl);
	free(f);
	return 0;
}

static void make(struct fixture *f, size_t ncaches, int dry_run)
{
	f->g =
	    gate_new(f->loop, f->fl, f->caches, ncaches, f->apps, 1, 0.05, dry_run, on_changed, f);
	assert_non_null(f->g);
}

/* Asks; when that starts checks, waits for their answers (and whatever follows). */
static int ask(struct fixture *f, const char **why)
{
	int r;

	ev_now_update(f->loop);
	r = gate_ready(f->g, 0, "library/x:1", why);
	if (fetch_loop_active(f->fl) > 0) {
		while (fetch_loop_active(f->fl) > 0)
			run_for(f->loop, 0.01);
	}
	return r;
}

static void test_no_caches_or_no_image(void **state)
{
	struct fixture *f = *state;
	const char *why;

	make(f, 0, 0);
	assert_int_equal(gate_ready(f->g, 0, "library/x:1", &why), 1);
	assert_string_equal(why, "no caches configured");
	gate_free(f->g);
	make(f, 1, 0);
	assert_int_equal(gate_ready(f->g, 0, NULL, &why), 1);
	assert_string_equal(why, "no image");
	assert_int_equal(f->c1.nreq, 0);
}

static void test_not_ready_prewarm_then_ready(void **state)
{
	struct fixture *f = *state;
	const char *why;

	make(f, 1, 0);
	fake_push(&f->c1, 200, NOT_READY);
	fake_push(&f->c1, 202, "{}");
	assert_int_equal(ask(f, &why), 0);
	assert_string_equal(why, "checking the caches");
	assert_int_equal(f->c1.nreq, 2);
	assert_string_equal(f->c1.req[0].method, "GET");
	assert_string_equal(f->c1.req[0].path, "/_microscale/v1/ready");
	assert_string_equal(f->c1.req[0].query, "ref=library%2Fx%3A1");
	assert_string_equal(f->c1.req[1].method, "POST");
	assert_string_equal(f->c1.req[1].path, "/_microscale/v1/prewarm");
	assert_string_equal(f->c1.req[1].body, "{\"ref\":\"library/x:1\",\"pin\":false}");
	/* held: too soon to ask again */
	assert_int_equal(ask(f, &why), 0);
	assert_non_null(strstr(why, "image not ready in"));
	assert_non_null(strstr(why, "layers 0/2"));
	assert_int_equal(f->c1.nreq, 2);
	/* re-checked after the interval; still not ready: no second prewarm */
	run_for(f->loop, 0.06);
	fake_push(&f->c1, 200, NOT_READY);
	assert_int_equal(ask(f, &why), 0);
	assert_int_equal(f->c1.nreq, 3);
	run_for(f->loop, 0.06);
	fake_push(&f->c1, 200, READY);
	ask(f, &why);
	assert_int_equal(ask(f, &why), 1);
	assert_int_equal(f->c1.nreq, 4);
}

static void test_every_cache(void **state)
{
	struct fixture *f = *state;
	const char *why;

	make(f, 2, 0);
	fake_default(&f->c1, 200, READY);
	fake_push(&f->c2, 200, NOT_READY);
	fake_push(&f->c2, 202, "{}");
	ask(f, &why);
	assert_int_equal(ask(f, &why), 0);
	assert_non_null(strstr(why, f->c2.url));
	assert_int_equal(f->c1.nreq, 1); /* the ready one gets no prewarm */
	run_for(f->loop, 0.06);
	fake_default(&f->c2, 200, READY);
	ask(f, &why);
	assert_int_equal(ask(f, &why), 1);
}

static void test_dry_run_sends_no_prewarm(void **state)
{
	struct fixture *f = *state;
	const char *why;

	make(f, 1, 1);
	fake_default(&f->c1, 200, NOT_READY);
	ask(f, &why);
	run_for(f->loop, 0.05);
	assert_int_equal(f->c1.nreq, 1);
	assert_string_equal(f->c1.req[0].method, "GET");
}

static void test_cache_errors_hold(void **state)
{
	struct fixture *f = *state;
	const char *why;

	make(f, 1, 0);
	fake_push(&f->c1, 400, "{\"errors\": []}");
	ask(f, &why);
	assert_int_equal(ask(f, &why), 0);
	assert_non_null(strstr(why, "answered 400"));
	fake_stop(&f->c1);
	run_for(f->loop, 0.06);
	ask(f, &why);
	assert_int_equal(ask(f, &why), 0);
	assert_non_null(strstr(why, "unreachable"));
}

static void test_held_time(void **state)
{
	struct fixture *f = *state;

	make(f, 1, 0);
	assert_true(gate_held_s(f->g, 0) == 0);
	ev_now_update(f->loop);
	gate_note(f->g, 0, 1);
	run_for(f->loop, 0.05);
	ev_now_update(f->loop);
	assert_true(gate_held_s(f->g, 0) >= 0.04);
	gate_note(f->g, 0, 0);
	assert_true(gate_held_s(f->g, 0) == 0);
	assert_true(gate_held_total_s(f->g, 0) >= 0.04);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_no_caches_or_no_image, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_ready_prewarm_then_ready, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_every_cache, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dry_run_sends_no_prewarm, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cache_errors_hold, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_held_time, setup, teardown),
	};
	int rc;

	log_init("test", LOG_ERROR);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
