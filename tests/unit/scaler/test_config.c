/* config: the issue's example loads with every value in place; each kind of bad config fails
 * with "FILE: KEY: reason" naming the exact key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scaler.h"

struct fixture {
	char dir[64];
	char file[128];
	char token[128];
	struct conf c;
	struct scaler_conf sc;
	int loaded;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ms-test-sconf.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->file, sizeof(f->file), "%s/scaler.json", f->dir);
	snprintf(f->token, sizeof(f->token), "%s/token", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->loaded)
		scaler_conf_free(&f->sc);
	conf_free(&f->c);
	unlink(f->file);
	unlink(f->token);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
}

/* Writes TEXT ("TOKEN" replaced by the token file's path) and loads it. */
static int load(struct fixture *f, const char *text)
{
	char buf[8192];
	const char *tok = strstr(text, "TOKEN");

	if (tok)
		snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(tok - text), text, f->token, tok + 5);
	else
		snprintf(buf, sizeof(buf), "%s", text);
	write_file(f->file, buf);
	if (f->loaded)
		scaler_conf_free(&f->sc);
	conf_free(&f->c);
	if (conf_load(&f->c, f->file) < 0)
		return -1;
	f->loaded = 1;
	return scaler_conf_load(&f->sc, &f->c);
}

/* The error, with the file name replaced by "F". */
static const char *err(struct fixture *f)
{
	static char out[600];
	size_t n = strlen(f->file);

	if (strncmp(f->c.err, f->file, n) == 0)
		snprintf(out, sizeof(out), "F%s", f->c.err + n);
	else
		snprintf(out, sizeof(out), "%s", f->c.err);
	return out;
}

static const char *const example =
    "{\"marathon\": {\"url\": \"http://127.0.0.1:8080/\", \"username\": \"\", \"password\": \"\","
    "  \"token_file\": \"\", \"force\": false, \"timeout_ms\": 5000},"
    " \"caches\": [\"http://127.0.0.1:5000\"], \"capacity\": 10, \"interval_ms\": 100,"
    " \"listen\": \"127.0.0.1:9101\","
    " \"apps\": ["
    "  {\"id\": \"/demo/priority1\", \"priority\": 1, \"min\": 1, \"max\": 10,"
    "   \"demand\": {\"type\": \"random\", \"seed\": 42, \"step\": 2}},"
    "  {\"id\": \"/demo/priority2\", \"priority\": 2, \"min\": 0, \"max\": 10,"
    "   \"demand\": {\"type\": \"remainder\"}},"
    "  {\"id\": \"/web\", \"priority\": 1, \"min\": 1, \"max\": 20, \"max_delta\": 5,"
    "   \"down_cooldown_ms\": 2000, \"demand\": {\"type\": \"http\","
    "   \"url\": \"http://127.0.0.1:9000/queue\", \"json_pointer\": \"/depth\","
    "   \"per_instance\": 50}}]}";

static void test_issue_example(void **state)
{
	struct fixture *f = *state;
	struct scaler_conf *sc = &f->sc;

	assert_int_equal(load(f, example), 0);
	assert_string_equal(sc->marathon.url, "http://127.0.0.1:8080");
	assert_null(sc->marathon.userpwd);
	assert_null(sc->marathon.token);
	assert_int_equal(sc->marathon.force, 0);
	assert_int_equal(sc->marathon.timeout_ms, 5000);
	assert_int_equal(sc->ncaches, 1);
	assert_string_equal(sc->caches[0], "http://127.0.0.1:5000");
	assert_int_equal(sc->capacity, 10);
	assert_int_equal(sc->interval_ms, 100);
	assert_string_equal(sc->listen, "127.0.0.1:9101");
	assert_int_equal(sc->napps, 3);
	assert_string_equal(sc->apps[0].id, "/demo/priority1");
	assert_string_equal(sc->apps[0].demand.src->type, "random");
	assert_string_equal(sc->apps[1].demand.src->type, "remainder");
	assert_int_equal(sc->apps[1].priority, 2);
	assert_int_equal(sc->apps[2].max_delta, 5);
	assert_int_equal(sc->apps[2].down_cooldown_ms, 2000);
	assert_int_equal(sc->apps[2].max, 20);
	assert_string_equal(sc->apps[2].demand.src->type, "http");
	assert_null(sc->apps[0].image);
}

static void test_defaults(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "{\"capacity\": 4, \"apps\": [{\"id\": \"/a\", \"image\": "
				 "\"library/a:1\", \"demand\": {\"type\": \"static\", "
				 "\"instances\": 2}}]}"),
			 0);
	assert_string_equal(f->sc.marathon.url, "http://127.0.0.1:8080");
	assert_int_equal(f->sc.marathon.resync_ms, 5000);
	assert_int_equal(f->sc.ncaches, 0);
	assert_int_equal(f->sc.apps[0].priority, 1);
	assert_int_equal(f->sc.apps[0].min, 0);
	assert_int_equal(f->sc.apps[0].max, 4);
	assert_string_equal(f->sc.apps[0].image, "library/a:1");
}

static void test_basic_auth(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "{\"capacity\": 4, \"marathon\": {\"username\": \"u\", "
				 "\"password\": \"p:w\"}, \"apps\": [{\"id\": \"/a\", \"demand\": "
				 "{\"type\": \"remainder\"}}]}"),
			 0);
	assert_string_equal(f->sc.marathon.userpwd, "u:p:w");
}

#define APP_OK "{\"id\": \"/a\", \"demand\": {\"type\": \"remainder\"}}"

/* A password from a file: its first line, trimmed; "" is as if the key were absent. */
static void test_password_file(void **state)
{
	struct fixture *f = *state;

	write_file(f->token, " pw:1\t\r\nsecond\n");
	assert_int_equal(load(f,
			      "{\"capacity\": 4, \"marathon\": {\"username\": \"u\", "
			      "\"password\": \"\", \"password_file\": \"TOKEN\", \"token_file\": "
			      "\"\"}, \"mesos\": {\"url\": \"http://m\", \"username\": \"\"}, "
			      "\"apps\": [" APP_OK "]}"),
			 0);
	assert_string_equal(f->sc.marathon.userpwd, "u:pw:1");
	assert_null(f->sc.marathon.token);
	assert_null(f->sc.mesos.userpwd);
}

static void test_token_file(void **state)
{
	struct fixture *f = *state;

	write_file(f->token, "  s3cret-token \n second line\n");
	assert_int_equal(load(f, "{\"capacity\": 4, \"marathon\": {\"token_file\": \"TOKEN\"}, "
				 "\"apps\": [{\"id\": \"/a\", \"demand\": {\"type\": "
				 "\"remainder\"}}]}"),
			 0);
	assert_string_equal(f->sc.marathon.token, "s3cret-token");
}

static void test_fleet(void **state)
{
	struct fixture *f = *state;
	struct scaler_conf *sc = &f->sc;

	write_file(f->token, "0123456789abcdef\n");
	assert_int_equal(
	    load(f,
		 "{\"mesos\": {\"url\": \"http://10.0.0.1:5050/\", \"username\": \"m\", "
		 "\"password\": \"pw\", \"refresh_ms\": 500}, \"gate\": "
		 "{\"unreachable_grace_ms\": 3000, \"token_file\": \"TOKEN\"}, \"capacity\": "
		 "{\"task\": {\"cpus\": 0.5, \"mem\": 256}}, \"apps\": [{\"id\": \"/a\", \"min\": "
		 "50, \"demand\": {\"type\": \"remainder\"}}]}"),
	    0);
	assert_string_equal(sc->mesos.url, "http://10.0.0.1:5050");
	assert_string_equal(sc->mesos.userpwd, "m:pw");
	assert_string_equal(sc->mesos.cache_url, "http://{hostname}:5000");
	assert_int_equal(sc->mesos.refresh_ms, 500);
	assert_int_equal(sc->gate_grace_ms, 3000);
	assert_int_equal(sc->require_runtime, -1); /* when the cache reports a runtime */
	assert_string_equal(sc->cache_token, "0123456789abcdef");
	assert_int_equal(sc->capacity, 0);
	assert_true(sc->task_cpus == 0.5 && sc->task_mem == 256);
	assert_int_equal(sc->apps[0].max, SCALER_INSTANCES_MAX);
	assert_int_equal(sc->marathon.events, 1);
	assert_null(sc->zk.servers);
	/* the election */
	assert_int_equal(load(f, "{\"capacity\": 4, \"marathon\": {\"timeout_ms\": 5000}, "
				 "\"zookeeper\": {\"servers\": \"zk1:2181,zk2:2181\", "
				 "\"username\": \"u\", \"password\": \"p\"}, \"apps\": [{\"id\": "
				 "\"/a\", \"demand\": {\"type\": \"remainder\"}}]}"),
			 0);
	assert_string_equal(sc->zk.servers, "zk1:2181,zk2:2181");
	assert_string_equal(sc->zk.path, "/microscale/scaler");
	assert_int_equal(sc->zk.session_timeout_ms, 10000);
	assert_string_equal(sc->zk.auth, "u:p");
	assert_int_equal(sc->zk.settle_ms, 5000 - 10000 / 3);
	/* the defaults without them */
	assert_int_equal(load(f, "{\"capacity\": 4, \"apps\": ["
				 "{\"id\": \"/a\", \"demand\": "
				 "{\"type\": \"remainder\"}}"
				 "]}"),
			 0);
	assert_null(sc->mesos.url);
	assert_int_equal(sc->mesos.refresh_ms, 5000);
	assert_int_equal(sc->gate_grace_ms, 10000);
	assert_null(sc->cache_token);
}

struct bad {
	const char *json;
	const char *err;
};

static const struct bad bads[] = {
    {"{\"capacity\": 4, \"apps\": [" APP_OK "], \"bogus\": 1}", "F: bogus: unknown key"},
    {"{\"apps\": [" APP_OK "]}", "F: capacity: missing"},
    {"{\"capacity\": 0, \"apps\": [" APP_OK "]}", "F: capacity: must be between 1 and 1000000"},
    {"{\"capacity\": 4}", "F: apps: expected at least one app"},
    {"{\"capacity\": 4, \"apps\": {}}", "F: apps: expected an array"},
    {"{\"capacity\": 4, \"interval_ms\": 1, \"apps\": [" APP_OK "]}",
     "F: interval_ms: must be between 10 and 60000"},
    {"{\"capacity\": 4, \"log_level\": \"loud\", \"apps\": [" APP_OK "]}",
     "F: log_level: expected debug, info, warn or error"},
    {"{\"capacity\": 4, \"marathon\": {\"url\": \"ftp://x\"}, \"apps\": [" APP_OK "]}",
     "F: marathon.url: expected an http:// or https:// URL"},
    {"{\"capacity\": 4, \"marathon\": {\"retries\": 3}, \"apps\": [" APP_OK "]}",
     "F: marathon.retries: unknown key"},
    {"{\"capacity\": 4, \"marathon\": {\"force\": 1}, \"apps\": [" APP_OK "]}",
     "F: marathon.force: expected true or false"},
    {"{\"capacity\": 4, \"marathon\": {\"password\": \"p\"}, \"apps\": [" APP_OK "]}",
     "F: marathon.password: needs a username"},
    {"{\"capacity\": 4, \"marathon\": {\"username\": \"a:b\", \"password\": \"p\"}, "
     "\"apps\": [" APP_OK "]}",
     "F: marathon.username: the user name must not contain ':'"},
    {"{\"capacity\": 4, \"marathon\": {\"username\": \"u\"}, \"apps\": [" APP_OK "]}",
     "F: marathon.username: needs a password or password_file"},
    {"{\"capacity\": 4, \"marathon\": {\"username\": \"u\", \"password\": \"\"}, \"apps\": "
     "[" APP_OK "]}",
     "F: marathon.username: needs a password or password_file"},
    {"{\"capacity\": 4, \"marathon\": {\"password_file\": \"/x\"}, \"apps\": [" APP_OK "]}",
     "F: marathon.password_file: needs a username"},
    {"{\"capacity\": 4, \"marathon\": {\"username\": \"u\", \"password\": \"p\", "
     "\"password_file\": \"/x\"}, \"apps\": [" APP_OK "]}",
     "F: marathon.password_file: not allowed together with password"},
    {"{\"capacity\": 4, \"marathon\": {\"username\": \"u\", \"password_file\": "
     "\"/nonexistent/p\"}, "
     "\"apps\": [" APP_OK "]}",
     "F: marathon.password_file: cannot read /nonexistent/p: No such file or directory"},
    {"{\"capacity\": 4, \"zookeeper\": {\"servers\": \"zk:1\", \"username\": \"u\"}, "
     "\"apps\": [" APP_OK "]}",
     "F: zookeeper.username: needs a password or password_file"},
    {"{\"capacity\": 4, \"marathon\": {\"username\": \"u\", \"password\": \"p\", "
     "\"token_file\": \"/x\"}, \"apps\": [" APP_OK "]}",
     "F: marathon.token_file: not allowed together with username and password"},
    {"{\"capacity\": 4, \"marathon\": {\"token_file\": \"/nonexistent/t\"}, \"apps\": [" APP_OK
     "]}",
     "F: marathon.token_file: cannot read /nonexistent/t: No such file or directory"},
    {"{\"capacity\": 4, \"mesos\": {}, \"apps\": [" APP_OK "]}", "F: mesos.url: missing"},
    {"{\"capacity\": 4, \"mesos\": {\"url\": \"http://m\", \"cache_url\": \"http://c:5000\"}, "
     "\"apps\": [" APP_OK "]}",
     "F: mesos.cache_url: must contain {hostname}"},
    {"{\"capacity\": 4, \"mesos\": {\"url\": \"http://m\", \"cache_url\": \"{hostname}:5\"}, "
     "\"apps\": [" APP_OK "]}",
     "F: mesos.cache_url: expected an http:// or https:// URL"},
    {"{\"capacity\": 4, \"mesos\": {\"url\": \"http://m\", \"refresh_ms\": 5}, \"apps\": [" APP_OK
     "]}",
     "F: mesos.refresh_ms: must be between 100 and 3600000"},
    {"{\"capacity\": 4, \"mesos\": {\"url\": \"http://m\", \"password\": \"p\"}, \"apps\": [" APP_OK
     "]}",
     "F: mesos.password: needs a username"},
    {"{\"capacity\": 4, \"gate\": {\"require_runtime\": 1}, \"apps\": [" APP_OK "]}",
     "F: gate.require_runtime: expected true or false"},
    {"{\"capacity\": 4, \"zookeeper\": {}, \"apps\": [" APP_OK "]}",
     "F: zookeeper.servers: missing"},
    {"{\"capacity\": 4, \"zookeeper\": {\"servers\": \"zk1\"}, \"apps\": [" APP_OK "]}",
     "F: zookeeper.servers: expected host:port[,host:port…]"},
    {"{\"capacity\": 4, \"zookeeper\": {\"servers\": \"zk:1\", \"path\": \"/a/\"}, \"apps\": "
     "[" APP_OK "]}",
     "F: zookeeper.path: expected an absolute path like /microscale/scaler"},
    {"{\"capacity\": 4, \"zookeeper\": {\"servers\": \"zk:1\", \"session_timeout_ms\": 10}, "
     "\"apps\": [" APP_OK "]}",
     "F: zookeeper.session_timeout_ms: must be between 1000 and 600000"},
    {"{\"capacity\": 4, \"gate\": {\"grace\": 1}, \"apps\": [" APP_OK "]}",
     "F: gate.grace: unknown key"},
    {"{\"capacity\": 4, \"gate\": {\"unreachable_grace_ms\": -1}, \"apps\": [" APP_OK "]}",
     "F: gate.unreachable_grace_ms: must be between 0 and 86400000"},
    {"{\"capacity\": {\"task\": {\"cpus\": 1}}, \"apps\": [" APP_OK "]}",
     "F: capacity.task: needs \"mesos\": the fleet's resources"},
    {"{\"capacity\": {\"task\": {}}, \"mesos\": {\"url\": \"http://m\"}, \"apps\": [" APP_OK "]}",
     "F: capacity.task: needs cpus or mem above 0"},
    {"{\"capacity\": {\"task\": {\"disk\": 1}}, \"apps\": [" APP_OK "]}",
     "F: capacity.task.disk: unknown key"},
    {"{\"capacity\": {}, \"apps\": [" APP_OK "]}",
     "F: capacity: expected a number or {\"task\": {…}}"},
    {"{\"capacity\": 4, \"marathon\": {\"events\": \"yes\"}, \"apps\": [" APP_OK "]}",
     "F: marathon.events: expected true or false"},
    {"{\"capacity\": 4, \"caches\": [\"http://c\", 5], \"apps\": [" APP_OK "]}",
     "F: caches[1]: expected an http:// or https:// URL"},
    {"{\"capacity\": 4, \"caches\": [\"http://c\", \"http://c/\"], \"apps\": [" APP_OK "]}",
     "F: caches[1]: listed twice"},
    {"{\"capacity\": 4, \"caches\": [\"c:5000\"], \"apps\": [" APP_OK "]}",
     "F: caches[0]: expected an http:// or https:// URL"},
    {"{\"capacity\": 4, \"apps\": [" APP_OK ", {\"id\": \"/b\", \"prio\": 1, \"demand\": "
     "{\"type\": \"remainder\"}}]}",
     "F: apps[1].prio: unknown key"},
    {"{\"capacity\": 4, \"apps\": [{\"demand\": {\"type\": \"remainder\"}}]}",
     "F: apps[0].id: missing"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"web\", \"demand\": {\"type\": \"remainder\"}}]}",
     "F: apps[0].id: \"web\" is not an absolute Marathon app id like /group/app"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"/Web\", \"demand\": {\"type\": \"remainder\"}}]}",
     "F: apps[0].id: \"/Web\" is not an absolute Marathon app id like /group/app"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"/a//b\", \"demand\": {\"type\": "
     "\"remainder\"}}]}",
     "F: apps[0].id: \"/a//b\" is not an absolute Marathon app id like /group/app"},
    {"{\"capacity\": 4, \"apps\": [" APP_OK ", " APP_OK "]}", "F: apps[1].id: /a is listed twice"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"/a\", \"priority\": 0, \"demand\": {\"type\": "
     "\"remainder\"}}]}",
     "F: apps[0].priority: must be between 1 and 100"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"/a\", \"min\": 3, \"max\": 2, \"demand\": "
     "{\"type\": \"remainder\"}}]}",
     "F: apps[0].max: must be at least min (3)"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"/a\", \"min\": 5, \"demand\": {\"type\": "
     "\"remainder\"}}]}",
     "F: apps[0].min: must be between 0 and 4"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"/a\", \"min\": 3, \"demand\": {\"type\": "
     "\"remainder\"}}, {\"id\": \"/b\", \"min\": 2, \"demand\": {\"type\": \"remainder\"}}]}",
     "F: capacity: the apps' min add up to 5, more than 4"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"/a\", \"image\": \"\", \"demand\": {\"type\": "
     "\"remainder\"}}]}",
     "F: apps[0].image: must not be empty"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"/a\"}]}", "F: apps[0].demand: missing"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"/a\", \"demand\": {}}]}",
     "F: apps[0].demand.type: missing (one of random, static, http, remainder)"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"/a\", \"demand\": {\"type\": \"magic\"}}]}",
     "F: apps[0].demand.type: unknown source \"magic\" (one of random, static, http, "
     "remainder)"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"/a\", \"demand\": {\"type\": \"remainder\", "
     "\"seed\": 1}}]}",
     "F: apps[0].demand.seed: unknown key"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"/a\", \"demand\": {\"type\": \"static\"}}]}",
     "F: apps[0].demand.instances: missing"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"/a\", \"demand\": {\"type\": \"static\", "
     "\"instances\": -1}}]}",
     "F: apps[0].demand.instances: must be between 0 and 1000000"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"/a\", \"demand\": {\"type\": \"random\", "
     "\"step\": 0}}]}",
     "F: apps[0].demand.step: must be between 1 and 1000000"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"/a\", \"demand\": {\"type\": \"http\"}}]}",
     "F: apps[0].demand.url: missing"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"/a\", \"demand\": {\"type\": \"http\", "
     "\"url\": \"localhost:9\"}}]}",
     "F: apps[0].demand.url: expected an http:// or https:// URL"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"/a\", \"demand\": {\"type\": \"http\", "
     "\"url\": \"http://q\", \"per_instance\": 0}}]}",
     "F: apps[0].demand.per_instance: must be between 1e-09 and 1e+15"},
    {"{\"capacity\": 4, \"apps\": [{\"id\": \"/a\", \"demand\": {\"type\": \"http\", "
     "\"url\": \"http://q\", \"json_pointer\": \"depth\"}}]}",
     "F: apps[0].demand.json_pointer: must be empty or start with '/' (RFC 6901)"},
};

static void test_bad_configs(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		if (load(f, bads[i].json) == 0)
			fail_msg("loaded: %s", bads[i].json);
		if (strcmp(err(f), bads[i].err) != 0)
			fail_msg("config %zu: got \"%s\", want \"%s\"", i, err(f), bads[i].err);
	}
}

static void test_token_file_empty(void **state)
{
	struct fixture *f = *state;
	char want[300];

	write_file(f->token, "\n");
	assert_int_equal(load(f, "{\"capacity\": 4, \"marathon\": {\"token_file\": \"TOKEN\"}, "
				 "\"apps\": [" APP_OK "]}"),
			 -1);
	snprintf(want, sizeof(want), "F: marathon.token_file: %s: the first line is empty",
		 f->token);
	assert_string_equal(err(f), want);
}

static void test_syntax_error_has_line(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "{\"capacity\": 4,\n \"apps\": [}"), -1);
	assert_non_null(strstr(err(f), "F:2:"));
}

static void test_duplicate_key_rejected(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "{\"capacity\": 4, \"capacity\": 5, \"apps\": [" APP_OK "]}"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_issue_example, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_basic_auth, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_password_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fleet, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_configs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_file_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_syntax_error_has_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_key_rejected, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
