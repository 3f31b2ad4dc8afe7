/* gate: ready in every cache or held; prewarm asked once (not in a dry run); re-checked while
 * held; errors hold; held time; the caches as a changing fleet: a new cache asked at once, a
 * removed one's calls cancelled, a silent one left out after the grace and counted again when
 * it answers, constraints leaving agents out, the admin token sent. Against scripted caches on
 * the test's own loop. */
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

	if (!f)
		return -1;
	f->loop = EV_DEFAULT;
	f->fl = fetch_loop_new(f->loop);
	if (!f->fl || fake_start(&f->c1, f->loop) < 0 || fake_start(&f->c2, f->loop) < 0)
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

static struct gate *make_opts(struct fixture *f, const struct gate_opts *o)
{
	f->g = gate_new(f->loop, f->fl, o, f->apps, 1, on_changed, f);
	assert_non_null(f->g);
	return f->g;
}

/* Static caches (no agent behind them): the first ncaches of f->caches. */
static void make(struct fixture *f, size_t ncaches, int dry_run)
{
	struct gate_opts o = {.recheck_s = 0.05, .grace_s = 10, .dry_run = dry_run};
	struct gate_cache_spec spec[2] = {{.url = f->caches[0]}, {.url = f->caches[1]}};

	make_opts(f, &o);
	assert_int_equal(gate_set_caches(f->g, spec, ncaches), 0);
}

static void wait_calls(struct fixture *f)
{
	while (fetch_loop_active(f->fl) > 0)
		run_for(f->loop, 0.01);
}

/* Decides once as the scaler does (track, then ask); waits for the calls that started. */
static int ask_image(struct fixture *f, const char *image, const char **why)
{
	int r;

	ev_now_update(f->loop);
	gate_track(f->g, 0, image, NULL);
	r = gate_ready(f->g, 0, why);
	wait_calls(f);
	return r;
}

static int ask(struct fixture *f, const char **why)
{
	return ask_image(f, "library/x:1", why);
}

static void test_no_caches_or_no_image(void **state)
{
	struct fixture *f = *state;
	struct gate_opts o = {.recheck_s = 0.05, .grace_s = 10};
	const char *why;

	make(f, 0, 0);
	assert_int_equal(ask(f, &why), 1);
	assert_string_equal(why, "no caches configured");
	gate_free(f->g);
	make(f, 1, 0);
	assert_int_equal(ask_image(f, NULL, &why), 1);
	assert_string_equal(why, "no image");
	assert_int_equal(f->c1.nreq, 0);
	gate_free(f->g);
	/* a fleet not read yet holds every rise */
	make_opts(f, &o);
	assert_int_equal(ask(f, &why), 0);
	assert_non_null(strstr(why, "waiting for the fleet"));
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
	assert_string_equal(f->c1.req[0].auth, ""); /* no token configured */
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

/* Listens again on the port the fake had, as a restarted cache would. */
static void fake_back(struct fake *c, struct ev_loop *loop)
{
	struct httpd_opts o;
	char addr[64], err[256];
	int port = c->port;

	httpd_opts_default(&o);
	c->h = httpd_new(loop, &o, fake_handle, c);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	assert_non_null(c->h);
	assert_int_equal(httpd_listen(c->h, addr, err, sizeof(err)), 0);
}

static void test_silent_cache_left_out_then_back(void **state)
{
	struct fixture *f = *state;
	struct gate_opts o = {.recheck_s = 0.02, .grace_s = 0.15};
	struct gate_cache_spec spec[2] = {{.url = f->caches[0]}, {.url = f->caches[1]}};
	size_t n[GATE_AGENT_STATES];
	const char *why;

	make_opts(f, &o);
	assert_int_equal(gate_set_caches(f->g, spec, 2), 0);
	fake_default(&f->c1, 200, READY);
	fake_default(&f->c2, 200, READY);
	fake_stop(&f->c2);
	ask(f, &why);
	assert_int_equal(ask(f, &why), 0);
	assert_non_null(strstr(why, "unreachable"));
	gate_agent_counts(f->g, 0, n);
	assert_int_equal(n[GATE_AGENT_READY], 1);
	assert_int_equal(n[GATE_AGENT_UNREACHABLE], 1);
	run_for(f->loop, 0.2);
	assert_int_equal(ask(f, &why), 1); /* left out: one dead node does not hold the fleet */
	gate_agent_counts(f->g, 0, n);
	assert_int_equal(n[GATE_AGENT_UNREACHABLE], 1);
	/* back: it is asked again and counts from its first answer */
	fake_back(&f->c2, f->loop);
	fake_default(&f->c2, 200, NOT_READY);
	run_for(f->loop, 1.1);
	ask(f, &why);
	assert_int_equal(ask(f, &why), 0);
	assert_non_null(strstr(why, f->c2.url));
	gate_agent_counts(f->g, 0, n);
	assert_int_equal(n[GATE_AGENT_NOT_READY], 1);
	assert_int_equal(n[GATE_AGENT_UNREACHABLE], 0);
}

static void test_new_cache_warmed_at_once_removed_cancelled(void **state)
{
	struct fixture *f = *state;
	struct gate_opts o = {.recheck_s = 0.05, .grace_s = 10, .token = "0123456789abcdef"};
	struct gate_cache_spec spec[2] = {{.url = f->caches[0]}, {.url = f->caches[1]}};
	const char *why;

	make_opts(f, &o);
	assert_int_equal(gate_set_caches(f->g, spec, 1), 0);
	fake_default(&f->c1, 200, READY);
	assert_int_equal(ask(f, &why), 0);
	assert_int_equal(ask(f, &why), 1);
	assert_string_equal(f->c1.req[0].auth, "Bearer 0123456789abcdef");
	/* c2 joins: asked about the image and told to prewarm it, though nothing rises */
	fake_push(&f->c2, 200, NOT_READY);
	fake_push(&f->c2, 202, "{}");
	assert_int_equal(gate_set_caches(f->g, spec, 2), 0);
	gate_track(f->g, 0, "library/x:1", NULL);
	wait_calls(f);
	assert_int_equal(f->c2.nreq, 2);
	assert_string_equal(f->c2.req[1].path, "/_microscale/v1/prewarm");
	assert_int_equal(gate_ready(f->g, 0, &why), 0);
	/* c2 goes while a check of it is out: the call is cancelled, the rest holds */
	gate_track(f->g, 0, "library/y:1", NULL);
	assert_true(fetch_loop_active(f->fl) > 0);
	assert_int_equal(gate_set_caches(f->g, spec, 1), 0);
	wait_calls(f);
	ask_image(f, "library/y:1", &why);
	assert_int_equal(ask_image(f, "library/y:1", &why), 1);
}

/* A cache that reports the node's Docker: ready only once the image is there too, unless
 * gate.require_runtime is false; one that reports none (or "off") needs only its store. */
static void test_runtime(void **state)
{
	struct fixture *f = *state;
	struct gate_opts o = {.recheck_s = 0.01, .grace_s = 10, .require_runtime = -1};
	struct gate_cache_spec spec[1] = {{.url = f->caches[0]}};
	const char *why;

	make_opts(f, &o);
	assert_int_equal(gate_set_caches(f->g, spec, 1), 0);
	fake_default(&f->c1, 200,
		     "{\"ready\": true, \"layers_present\": 2, \"layers_total\": 2, \"runtime\": "
		     "\"pulling\"}");
	ask(f, &why);
	assert_int_equal(ask(f, &why), 0);
	assert_non_null(strstr(why, "not in its node's Docker (pulling)"));
	fake_default(&f->c1, 200, "{\"ready\": true, \"runtime\": \"present\"}");
	run_for(f->loop, 0.02);
	ask(f, &why);
	assert_int_equal(ask(f, &why), 1);
	gate_free(f->g);
	/* off in the cache, or not asked for */
	fake_default(&f->c1, 200, "{\"ready\": true, \"runtime\": \"off\"}");
	make_opts(f, &o);
	assert_int_equal(gate_set_caches(f->g, spec, 1), 0);
	ask(f, &why);
	assert_int_equal(ask(f, &why), 1);
	gate_free(f->g);
	o.require_runtime = 0;
	fake_default(&f->c1, 200, "{\"ready\": true, \"runtime\": \"failed\"}");
	make_opts(f, &o);
	assert_int_equal(gate_set_caches(f->g, spec, 1), 0);
	ask(f, &why);
	assert_int_equal(ask(f, &why), 1);
}

static void test_constraints_leave_agents_out(void **state)
{
	struct fixture *f = *state;
	struct gate_opts o = {.recheck_s = 0.05, .grace_s = 10};
	json_t *a1 = json_pack("{s:s}", "rack", "r1"), *a2 = json_pack("{s:s}", "rack", "r2");
	json_t *like = json_pack("[[s, s, s]]", "hostname", "LIKE", "agent-(1|3)");
	json_t *rack = json_pack("[[s, s, s]]", "rack", "UNLIKE", "r1");
	struct gate_cache_spec spec[2] = {
	    {.url = f->caches[0], .hostname = "agent-1", .attributes = a1},
	    {.url = f->caches[1], .hostname = "agent-2", .attributes = a2}};
	size_t n[GATE_AGENT_STATES];
	const char *why;

	make_opts(f, &o);
	assert_int_equal(gate_set_caches(f->g, spec, 2), 0);
	fake_default(&f->c1, 200, READY);
	fake_default(&f->c2, 200, NOT_READY);
	gate_track(f->g, 0, "library/x:1", like);
	gate_ready(f->g, 0, &why);
	wait_calls(f);
	assert_int_equal(f->c2.nreq, 0); /* agent-2 may not run it: never asked */
	assert_int_equal(gate_ready(f->g, 0, &why), 1);
	gate_agent_counts(f->g, 0, n);
	assert_int_equal(n[GATE_AGENT_READY] + n[GATE_AGENT_NOT_READY] + n[GATE_AGENT_UNREACHABLE],
			 1);
	/* on rack r2 only: agent-2, not ready, holds it */
	gate_track(f->g, 0, "library/x:1", rack);
	gate_ready(f->g, 0, &why);
	wait_calls(f);
	assert_int_equal(gate_ready(f->g, 0, &why), 0);
	assert_non_null(strstr(why, f->c2.url));
	json_decref(a1);
	json_decref(a2);
	json_decref(like);
	json_decref(rack);
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
	    cmocka_unit_test_setup_teardown(test_silent_cache_left_out_then_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_new_cache_warmed_at_once_removed_cancelled, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_constraints_leave_agents_out, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_runtime, setup, teardown),
	};
	int rc;

	log_init("test", LOG_ERROR);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
