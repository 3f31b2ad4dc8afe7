/* demand_http: a bare number, JSON at a pointer, per_instance rounding up; failures leave the
 * demand unknown; one request at a time. Against a scripted server on the test's own loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

#include "demand_helper.h"
#include "fake_server.h"

struct fixture {
	struct ev_loop *loop;
	struct fetch_loop *fl;
	struct fake srv;
	struct demand_env env;
	struct test_app t;
	struct demand *d;
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
	f->env = (struct demand_env){.loop = f->loop,
				     .fl = f->fl,
				     .interval_ms = 100,
				     .capacity = 100,
				     .changed = on_changed,
				     .arg = f};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	demand_free(f->d);
	test_app_free(&f->t);
	fake_stop(&f->srv);
	fetch_loop_free(f->fl);
	free(f);
	return 0;
}

/* A demand reading f->srv's /q, with the given extra settings ("" or ", \"k\": v…"). */
static void make(struct fixture *f, const char *extra)
{
	char json[512];

	snprintf(json, sizeof(json), "{\"type\": \"http\", \"url\": \"%s/q\"%s}", f->srv.url,
		 extra);
	assert_int_equal(test_app_parse(&f->t, json, 0, 100), 0);
	f->d = demand_new(&f->t.app, &f->env);
	assert_non_null(f->d);
}

static long long reading(struct fixture *f)
{
	int want = f->changed + 1;

	demand_poll(f->d);
	assert_true(run_until(f->loop, &f->changed, want, 5));
	return f->d->value;
}

static void test_bare_number(void **state)
{
	struct fixture *f = *state;

	make(f, "");
	fake_push(&f->srv, 200, "42\n");
	assert_int_equal(reading(f), 42);
	assert_string_equal(f->srv.req[0].method, "GET");
	assert_string_equal(f->srv.req[0].path, "/q");
	fake_push(&f->srv, 200, " 7.2 ");
	assert_int_equal(reading(f), 8); /* rounded up */
}

static void test_json_pointer_per_instance(void **state)
{
	struct fixture *f = *state;

	make(f, ", \"json_pointer\": \"/depth\", \"per_instance\": 50");
	fake_push(&f->srv, 200, "{\"depth\": 120}");
	assert_int_equal(reading(f), 3);
	fake_push(&f->srv, 200, "{\"depth\": 100}");
	assert_int_equal(reading(f), 2);
	fake_push(&f->srv, 200, "{\"depth\": 0}");
	assert_int_equal(reading(f), 0);
}

static void test_failures_leave_unknown(void **state)
{
	struct fixture *f = *state;

	make(f, ", \"json_pointer\": \"/depth\"");
	fake_push(&f->srv, 200, "{\"depth\": 5}");
	assert_int_equal(reading(f), 5);
	fake_push(&f->srv, 500, "oops");
	assert_int_equal(reading(f), DEMAND_UNKNOWN);
	assert_non_null(strstr(f->d->err, "answered 500"));
	fake_push(&f->srv, 200, "{\"other\": 5}");
	assert_int_equal(reading(f), DEMAND_UNKNOWN);
	assert_non_null(strstr(f->d->err, "nothing at json_pointer /depth"));
	fake_push(&f->srv, 200, "{\"depth\": \"5\"}");
	assert_int_equal(reading(f), DEMAND_UNKNOWN);
	fake_push(&f->srv, 200, "{\"depth\": -1}");
	assert_int_equal(reading(f), DEMAND_UNKNOWN);
	fake_push(&f->srv, 200, "not json");
	assert_int_equal(reading(f), DEMAND_UNKNOWN);
	fake_push(&f->srv, 200, "{\"depth\": 6}");
	assert_int_equal(reading(f), 6);
	assert_string_equal(f->d->err, "");
}

static void test_refused(void **state)
{
	struct fixture *f = *state;

	make(f, "");
	fake_stop(&f->srv); /* nobody listens there now */
	assert_int_equal(reading(f), DEMAND_UNKNOWN);
	assert_true(f->d->err[0] != '\0');
}

static void test_one_request_at_a_time(void **state)
{
	struct fixture *f = *state;

	make(f, "");
	fake_default(&f->srv, 200, "3");
	demand_poll(f->d);
	demand_poll(f->d); /* the first is still out: skipped */
	demand_poll(f->d);
	assert_true(run_until(f->loop, &f->changed, 1, 5));
	run_for(f->loop, 0.1);
	assert_int_equal(f->srv.nreq, 1);
	assert_int_equal(f->d->value, 3);
}

static void test_value_parser(void **state)
{
	const char *doc = "{\"a\":{\"b/c\":[1,{\"~k\":9}]}}";
	char err[128];
	long long v;

	(void)state;
	assert_int_equal(
	    demand_http_value(doc, strlen(doc), "/a/b~1c/1/~0k", 2, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 5);
	assert_int_equal(demand_http_value("[4]", 3, "/0", 1, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 4);
	assert_int_equal(demand_http_value("[4]", 3, "/01", 1, &v, err, sizeof(err)), -1);
	assert_int_equal(demand_http_value("12", 2, "", 5, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 3);
	assert_int_equal(demand_http_value("nan", 3, NULL, 1, &v, err, sizeof(err)), -1);
	assert_int_equal(demand_http_value("1e300", 5, NULL, 1, &v, err, sizeof(err)), 0);
	assert_int_equal(v, SCALER_INSTANCES_MAX);
	assert_int_equal(demand_http_value("", 0, NULL, 1, &v, err, sizeof(err)), -1);
	assert_int_equal(demand_http_value("4x", 2, NULL, 1, &v, err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_bare_number, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_json_pointer_per_instance, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failures_leave_unknown, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_one_request_at_a_time, setup, teardown),
	    cmocka_unit_test(test_value_parser),
	};
	int rc;

	log_init("test", LOG_ERROR);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
