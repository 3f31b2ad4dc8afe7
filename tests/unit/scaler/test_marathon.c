/* marathon: reads, PUTs, auth headers, 404 never PUT, 409 (hold, or force), 5xx and refused
 * connections backing off and recovering, what counts against the capacity. Against a scripted
 * server on the test's own loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

#include "fake_server.h"

#define APP(inst, run, staged, deps)                                                               \
	"{\"app\": {\"id\": \"/g/a\", \"instances\": " #inst ", \"tasksRunning\": " #run           \
	", \"tasksStaged\": " #staged ", \"deployments\": " deps                                   \
	", \"container\": {\"docker\": {\"image\": \"library/x:1\"}}}}"

struct fixture {
	struct ev_loop *loop;
	struct fetch_loop *fl;
	struct fake srv;
	struct marathon_conf mc;
	struct app_conf apps[1];
	struct marathon *m;
	unsigned tick;
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
	if (!f->fl || fake_start(&f->srv, f->loop) < 0)
		return -1;
	f->mc = (struct marathon_conf){
	    .url = f->srv.url, .timeout_ms = 2000, .resync_ms = 60000, .backoff_max_ms = 400};
	f->apps[0].id = "/g/a";
	*state = f;
	return 0;
}

static void start(struct fixture *f)
{
	f->m = marathon_new(f->loop, f->fl, &f->mc, f->apps, 1, NULL, on_changed, f);
	assert_non_null(f->m);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	marathon_free(f->m);
	fake_stop(&f->srv);
	fetch_loop_free(f->fl);
	free(f);
	return 0;
}

/* One tick; waits for the call it starts (if any) to be answered. */
static void tick(struct fixture *f)
{
	int want = f->changed + 1, before = f->srv.nreq;

	ev_now_update(f->loop);
	marathon_tick(f->m, ++f->tick);
	if (fetch_loop_active(f->fl) > 0 || f->srv.nreq > before)
		assert_true(run_until(f->loop, &f->changed, want, 5));
}

static void scale(struct fixture *f, long long n)
{
	int want = f->changed + 1;

	assert_int_equal(marathon_scale(f->m, 0, n), 0);
	assert_true(run_until(f->loop, &f->changed, want, 5));
}

static void test_read(void **state)
{
	struct fixture *f = *state;
	const struct marathon_app *a;

	start(f);
	a = marathon_app(f->m, 0);
	assert_int_equal(a->state, MAPP_UNKNOWN);
	assert_false(marathon_can_put(f->m, 0));
	fake_push(&f->srv, 200, APP(3, 2, 1, "[{\"id\": \"d1\"}]"));
	tick(f);
	assert_string_equal(f->srv.req[0].method, "GET");
	assert_string_equal(f->srv.req[0].path, "/v2/apps/g/a");
	assert_string_equal(f->srv.req[0].auth, "");
	assert_int_equal(a->state, MAPP_KNOWN);
	assert_int_equal(a->instances, 3);
	assert_int_equal(a->running, 2);
	assert_int_equal(a->staged, 1);
	assert_int_equal(a->deploying, 1);
	assert_string_equal(a->image, "library/x:1");
	assert_int_equal(marathon_occupancy(f->m, 0), 3);
	assert_false(marathon_can_put(f->m, 0)); /* Marathon would answer 409 */
	assert_string_equal(marathon_health(f->m), "ok");
}

static void test_put_and_reread(void **state)
{
	struct fixture *f = *state;
	const struct marathon_app *a;

	start(f);
	a = marathon_app(f->m, 0);
	fake_push(&f->srv, 200, APP(2, 2, 0, "[]"));
	tick(f);
	fake_push(&f->srv, 200, "{\"version\": \"v\", \"deploymentId\": \"d\"}");
	f->srv.queue[f->srv.nqueue - 1].hname[0] = '\0';
	scale(f, 5);
	assert_string_equal(f->srv.req[1].method, "PUT");
	assert_string_equal(f->srv.req[1].path, "/v2/apps/g/a");
	assert_string_equal(f->srv.req[1].query, "");
	assert_string_equal(f->srv.req[1].body, "{\"instances\":5}");
	assert_int_equal(a->instances, 5);
	assert_true(a->last_up > 0);
	/* not twice in one tick */
	assert_false(marathon_can_put(f->m, 0));
	/* the next tick reads it again */
	fake_push(&f->srv, 200, APP(5, 2, 3, "[{\"id\": \"d\"}]"));
	tick(f);
	assert_string_equal(f->srv.req[2].method, "GET");
	assert_int_equal(a->staged, 3);
	assert_false(marathon_can_put(f->m, 0)); /* its deployment runs */
	fake_push(&f->srv, 200, APP(5, 5, 0, "[]"));
	run_for(f->loop, 0.21); /* read again while it moves */
	tick(f);
	/* a scale-down: the old instances count until a read shows the tasks gone */
	fake_push(&f->srv, 200, "{\"version\": \"v\", \"deploymentId\": \"e\"}");
	scale(f, 1);
	assert_int_equal(a->instances, 1);
	assert_int_equal(marathon_occupancy(f->m, 0), 5);
	fake_push(&f->srv, 200, APP(1, 1, 0, "[]"));
	tick(f);
	assert_int_equal(marathon_occupancy(f->m, 0), 1);
}

/* No PUT while a deployment runs (Marathon would refuse it), unless forced; an accepted PUT that
 * names its deployment holds the next until a read says it ended; an event naming the app makes
 * it read at once. */
static void test_deployment_holds_puts(void **state)
{
	struct fixture *f = *state;
	const struct marathon_app *a;
	json_t *ev;
	int want;

	start(f);
	a = marathon_app(f->m, 0);
	fake_push(&f->srv, 200, APP(2, 2, 0, "[]"));
	tick(f);
	fake_push(&f->srv, 200, "{\"version\": \"v\", \"deploymentId\": \"d\"}");
	snprintf(f->srv.queue[f->srv.nqueue - 1].hname, 64, "Marathon-Deployment-Id");
	snprintf(f->srv.queue[f->srv.nqueue - 1].hvalue, 128, "d");
	scale(f, 4);
	assert_int_equal(a->deploying, 1);
	ev_now_update(f->loop);
	marathon_tick(f->m, ++f->tick); /* reads: the deployment still runs */
	fake_push(&f->srv, 200, APP(4, 2, 2, "[{\"id\": \"d\"}]"));
	assert_true(run_until(f->loop, &f->changed, f->changed + 1, 5));
	assert_false(marathon_can_put(f->m, 0));
	assert_int_equal(marathon_scale(f->m, 0, 1), -1);
	/* the stream says it succeeded: read at once, and the PUT may go */
	ev = json_loads("{\"id\": \"d\", \"plan\": {\"id\": \"d\", \"steps\": [{\"actions\": "
			"[{\"action\": \"ScaleApplication\", \"app\": \"/g/a\"}]}]}}",
			0, NULL);
	assert_int_equal(marathon_event(f->m, "deployment_success", ev), 1);
	json_decref(ev);
	ev = json_loads("{\"appId\": \"/other\"}", 0, NULL);
	assert_int_equal(marathon_event(f->m, "status_update_event", ev), 0);
	json_decref(ev);
	fake_push(&f->srv, 200, APP(4, 4, 0, "[]"));
	want = f->changed + 1;
	marathon_read_due(f->m);
	assert_true(run_until(f->loop, &f->changed, want, 5));
	assert_true(marathon_can_put(f->m, 0));
}

static void test_deployment_forced_when_configured(void **state)
{
	struct fixture *f = *state;

	f->mc.force = 1;
	start(f);
	fake_push(&f->srv, 200, APP(2, 1, 1, "[{\"id\": \"d\"}]"));
	tick(f);
	assert_true(marathon_can_put(f->m, 0));
	fake_push(&f->srv, 200, "{}");
	scale(f, 1);
	assert_string_equal(f->srv.req[1].query, "force=true"); /* no 409 first */
}

static void test_basic_auth(void **state)
{
	struct fixture *f = *state;

	f->mc.userpwd = "u:p";
	start(f);
	fake_push(&f->srv, 200, APP(1, 1, 0, "[]"));
	tick(f);
	assert_string_equal(f->srv.req[0].auth, "Basic dTpw");
}

static void test_token_auth(void **state)
{
	struct fixture *f = *state;

	f->mc.token = "abc.def";
	start(f);
	fake_push(&f->srv, 200, APP(1, 1, 0, "[]"));
	tick(f);
	assert_string_equal(f->srv.req[0].auth, "token=abc.def");
}

static void test_401_is_auth_failure(void **state)
{
	struct fixture *f = *state;

	start(f);
	fake_push(&f->srv, 401, "{\"message\": \"Invalid username or password.\"}");
	tick(f);
	assert_int_equal(marathon_app(f->m, 0)->state, MAPP_UNKNOWN);
	assert_string_equal(marathon_health(f->m), "auth_failed");
	/* backing off: the next tick sends nothing */
	tick(f);
	assert_int_equal(f->srv.nreq, 1);
}

static void test_404_missing_never_put(void **state)
{
	struct fixture *f = *state;

	start(f);
	fake_push(&f->srv, 404, "{\"message\": \"App '/g/a' does not exist\"}");
	tick(f);
	assert_int_equal(marathon_app(f->m, 0)->state, MAPP_MISSING);
	assert_false(marathon_can_put(f->m, 0));
	assert_int_equal(marathon_scale(f->m, 0, 3), -1);
	assert_int_equal(marathon_occupancy(f->m, 0), 0);
	assert_int_equal(f->srv.nreq, 1);
}

static void test_409_holds_until_next_tick(void **state)
{
	struct fixture *f = *state;
	const struct marathon_app *a;

	start(f);
	a = marathon_app(f->m, 0);
	fake_push(&f->srv, 200, APP(2, 2, 0, "[]"));
	tick(f);
	fake_push(&f->srv, 409, "{\"message\": \"App is locked by one or more deployments.\"}");
	scale(f, 4);
	assert_int_equal(a->locked, 1);
	assert_int_equal(a->instances, 2);
	assert_false(marathon_can_put(f->m, 0));
	fake_push(&f->srv, 200, APP(2, 2, 0, "[]")); /* the read after the 409 */
	tick(f);
	assert_true(marathon_can_put(f->m, 0));
	fake_push(&f->srv, 200, "{}");
	scale(f, 4);
	assert_string_equal(f->srv.req[3].query, "");
	assert_int_equal(a->instances, 4);
}

static void test_409_forced_when_configured(void **state)
{
	struct fixture *f = *state;

	f->mc.force = 1;
	start(f);
	fake_push(&f->srv, 200, APP(2, 2, 0, "[]"));
	tick(f);
	fake_push(&f->srv, 409, "{\"message\": \"locked\"}");
	scale(f, 4);
	assert_string_equal(f->srv.req[1].query, ""); /* not forced the first time */
	assert_true(marathon_can_put(f->m, 0));	      /* at once */
	fake_push(&f->srv, 200, "{}");
	scale(f, 4);
	assert_string_equal(f->srv.req[2].query, "force=true");
	assert_int_equal(marathon_app(f->m, 0)->instances, 4);
}

static void test_5xx_backs_off_and_recovers(void **state)
{
	struct fixture *f = *state;

	start(f);
	fake_push(&f->srv, 200, APP(2, 2, 0, "[]"));
	tick(f);
	fake_push(&f->srv, 503, "{\"message\": \"down\"}");
	scale(f, 6);
	/* it may have landed: 6 counts until a read */
	assert_int_equal(marathon_occupancy(f->m, 0), 6);
	assert_string_equal(marathon_health(f->m), "backoff");
	assert_false(marathon_can_put(f->m, 0));
	tick(f);
	assert_int_equal(f->srv.nreq, 2); /* nothing during the backoff */
	run_for(f->loop, 0.25);		  /* first backoff: at most 0.2 s */
	fake_push(&f->srv, 500, "{}");
	tick(f);
	assert_int_equal(f->srv.nreq, 3);
	run_for(f->loop, 0.45);
	fake_push(&f->srv, 200, APP(2, 2, 0, "[]"));
	tick(f);
	assert_string_equal(marathon_health(f->m), "ok");
	assert_int_equal(marathon_occupancy(f->m, 0), 2);
	assert_true(marathon_can_put(f->m, 0));
}

static void test_refused_backs_off(void **state)
{
	struct fixture *f = *state;

	start(f);
	fake_stop(&f->srv);
	ev_now_update(f->loop);
	marathon_tick(f->m, ++f->tick);
	assert_true(run_until(f->loop, &f->changed, 1, 5));
	assert_string_equal(marathon_health(f->m), "backoff");
	assert_int_equal(marathon_app(f->m, 0)->state, MAPP_UNKNOWN);
}

static void test_parse_app(void **state)
{
	struct marathon_app a = {0};

	(void)state;
	assert_int_equal(marathon_parse_app("{\"app\": {\"instances\": 2}}", 25, &a), 0);
	assert_int_equal(a.instances, 2);
	assert_null(a.image);
	assert_int_equal(marathon_parse_app("{\"apps\": []}", 12, &a), -1);
	assert_int_equal(marathon_parse_app("{\"app\": {\"instances\": -2}}", 26, &a), -1);
	assert_int_equal(marathon_parse_app("junk", 4, &a), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_put_and_reread, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deployment_holds_puts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deployment_forced_when_configured, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_basic_auth, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_auth, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_401_is_auth_failure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_404_missing_never_put, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_409_holds_until_next_tick, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_409_forced_when_configured, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_5xx_backs_off_and_recovers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_backs_off, setup, teardown),
	    cmocka_unit_test(test_parse_app),
	};
	int rc;

	log_init("test", LOG_ERROR);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
