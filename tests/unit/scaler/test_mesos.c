/* mesos: /master/slaves parsed into the fleet (malformed agents and hostnames that could bend a
 * URL skipped, bounds), the capacity its resources hold, cache URLs from the template; the
 * client against a scripted master: a read at once, a change handed on, the last fleet kept
 * while the master does not answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdlib.h>

#include "fake_server.h"

#define AGENT(id, host, active, cpus, mem)                                                         \
	"{\"id\": \"" id "\", \"hostname\": \"" host "\", \"port\": 5051, \"active\": " active     \
	", \"attributes\": {\"rack\": \"r1\"}, \"resources\": {\"cpus\": " cpus ", \"mem\": " mem  \
	"}}"

static int parse(const char *body, struct fleet *f, size_t *skipped)
{
	char err[200];

	return mesos_parse_slaves(body, strlen(body), f, skipped, err, sizeof(err));
}

static void test_parse(void **state)
{
	struct fleet f;
	size_t skipped;
	const char *body =
	    "{\"slaves\": [" AGENT("S1", "10.0.0.11", "true", "2", "1024") ", " AGENT(
		"S2", "agent-2.example", "false", "4", "512") "]}";

	(void)state;
	assert_int_equal(parse(body, &f, &skipped), 0);
	assert_int_equal(f.n, 2);
	assert_int_equal(skipped, 0);
	assert_string_equal(f.agents[0].id, "S1");
	assert_string_equal(f.agents[0].hostname, "10.0.0.11");
	assert_true(f.agents[0].active);
	assert_false(f.agents[1].active);
	assert_true(f.agents[0].cpus == 2 && f.agents[0].mem == 1024);
	assert_string_equal(json_string_value(json_object_get(f.agents[0].attributes, "rack")),
			    "r1");
	/* 0.5 cpus and 256 MB a task: the active agent holds 4; the inactive one none */
	assert_int_equal(fleet_capacity(&f, 0.5, 256), 4);
	assert_int_equal(fleet_capacity(&f, 0.5, 0), 4);
	assert_int_equal(fleet_capacity(&f, 0, 100), 10);
	fleet_free(&f);
}

static void test_hostile_agents_skipped(void **state)
{
	struct fleet f;
	size_t skipped;
	const char *body =
	    "{\"slaves\": [" AGENT("S1", "evil.host/v2?x=", "true", "2", "1") ", " AGENT(
		"S2", "a@b", "true", "2",
		"1") ", " AGENT("S 3", "h3", "true", "2",
				"1") ", " AGENT("S4", "", "true", "2",
						"1") ", {\"id\": \"S5\"}, " AGENT("S6", "h6", "1",
										  "2",
										  "1") ", " AGENT("S7",
												  "h7",
												  "true",
												  "-5",
												  "1e308") "]}";

	(void)state;
	assert_int_equal(parse(body, &f, &skipped), 0);
	assert_int_equal(f.n, 1);
	assert_int_equal(skipped, 6);
	assert_string_equal(f.agents[0].hostname, "h7");
	assert_true(f.agents[0].cpus == 0); /* a negative resource counts as none */
	fleet_free(&f);
}

static void test_bad_answers(void **state)
{
	static const char *const bad[] = {
	    "", "[]", "{\"slaves\": {}}", "{\"slaves\": 1}",
	    "{\"slaves\": [" AGENT("S1", "h", "true", "1", "1") ", " AGENT("S1", "h2", "true", "1",
									   "1") "]}"};
	struct fleet f;
	size_t skipped;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], &f, &skipped), -1);
		assert_int_equal(f.n, 0);
	}
}

static void test_cache_url(void **state)
{
	struct agent a = {.hostname = "10.0.0.11"};
	char out[64];

	(void)state;
	assert_int_equal(fleet_cache_url("http://{hostname}:5000", &a, out, sizeof(out)), 0);
	assert_string_equal(out, "http://10.0.0.11:5000");
	assert_int_equal(
	    fleet_cache_url("http://{hostname}:5000/a-rather-long-path-to-overflow", &a, out, 20),
	    -1);
}

struct client {
	int changes;
	size_t last_n;
};

static void on_fleet(const struct fleet *fleet, void *arg)
{
	struct client *c = arg;

	c->changes++;
	c->last_n = fleet->n;
}

static void test_client(void **state)
{
	struct ev_loop *loop = EV_DEFAULT;
	struct fetch_loop *fl = fetch_loop_new(loop);
	struct fake master;
	struct client c = {0};
	struct mesos_conf conf = {.refresh_ms = 50};
	struct mesos *m;
	const char *one = "{\"slaves\": [" AGENT("S1", "h1", "true", "1", "1") "]}";
	const char *two = "{\"slaves\": [" AGENT("S1", "h1", "true", "1",
						 "1") ", " AGENT("S2", "h2", "true", "1", "1") "]}";

	(void)state;
	assert_int_equal(fake_start(&master, loop), 0);
	conf.url = master.url;
	conf.userpwd = "u:p";
	fake_default(&master, 200, one);
	m = mesos_new(loop, fl, &conf, on_fleet, &c);
	assert_null(mesos_fleet(m));
	assert_true(run_until(loop, &c.changes, 1, 2));
	assert_string_equal(master.req[0].path, "/master/slaves");
	assert_string_equal(master.req[0].auth, "Basic dTpw");
	assert_int_equal(mesos_fleet(m)->n, 1);
	run_for(loop, 0.12); /* the same fleet again: no change handed on */
	assert_int_equal(c.changes, 1);
	fake_default(&master, 200, two);
	assert_true(run_until(loop, &c.changes, 2, 2));
	assert_int_equal(c.last_n, 2);
	/* the master fails: the last fleet stands */
	fake_default(&master, 500, "{}");
	run_for(loop, 0.12);
	assert_int_equal(c.changes, 2);
	assert_int_equal(mesos_fleet(m)->n, 2);
	mesos_free(m);
	fake_stop(&master);
	fetch_loop_free(fl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),	cmocka_unit_test(test_hostile_agents_skipped),
	    cmocka_unit_test(test_bad_answers), cmocka_unit_test(test_cache_url),
	    cmocka_unit_test(test_client),
	};
	int rc;

	log_init("test", LOG_ERROR);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
