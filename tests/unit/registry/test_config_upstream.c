/* config: an upstream's auth_realms, max_concurrent, max_queued and miss_ttl_s: defaults (Docker
 * Hub's auth host for docker.io), values, and each bad value with its message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry.h"

struct fixture {
	char file[64];
	struct conf c;
	struct registry_conf rc;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int fd;

	if (!f)
		return -1;
	snprintf(f->file, sizeof(f->file), "/tmp/ms-test-config-up.XXXXXX");
	fd = mkstemp(f->file);
	if (fd < 0)
		return -1;
	close(fd);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	registry_conf_free(&f->rc);
	conf_free(&f->c);
	unlink(f->file);
	free(f);
	return 0;
}

static int load(struct fixture *f, const char *text)
{
	FILE *fp = fopen(f->file, "w");

	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
	conf_free(&f->c);
	registry_conf_free(&f->rc);
	if (conf_load(&f->c, f->file) != 0)
		return -1;
	return registry_conf_load(&f->rc, &f->c);
}

static const struct upstream_conf *find(const struct registry_conf *rc, const char *host)
{
	for (size_t i = 0; i < rc->nupstreams; i++) {
		if (strcmp(rc->upstreams[i].host, host) == 0)
			return &rc->upstreams[i];
	}
	return NULL;
}

/* The message after "FILE: ". */
static const char *reason(const struct fixture *f)
{
	size_t n = strlen(f->file);

	assert_true(strncmp(f->c.err, f->file, n) == 0 && strncmp(f->c.err + n, ": ", 2) == 0);
	return f->c.err + n + 2;
}

static void test_defaults(void **state)
{
	struct fixture *f = *state;
	const struct upstream_conf *hub, *other;

	assert_int_equal(load(f, "{\"upstreams\": {\"ghcr.io\": {}}}"), 0);
	hub = find(&f->rc, "docker.io");
	other = find(&f->rc, "ghcr.io");
	assert_non_null(hub);
	assert_non_null(other);
	assert_non_null(hub->auth_realms);
	assert_string_equal(hub->auth_realms[0], "https://auth.docker.io/token");
	assert_null(hub->auth_realms[1]);
	assert_null(other->auth_realms); /* its own host only */
	assert_int_equal(other->max_concurrent, 32);
	assert_int_equal(other->max_queued, 1024);
	assert_int_equal(other->miss_ttl_s, 5);
	assert_int_equal(hub->max_concurrent, 32);
	/* --upstream keeps the defaults */
	assert_int_equal(registry_conf_set_upstream(&f->rc, "http://127.0.0.1:5001"), 0);
	assert_int_equal(find(&f->rc, "docker.io")->max_queued, 1024);
}

static void test_values(void **state)
{
	struct fixture *f = *state;
	const struct upstream_conf *u;

	assert_int_equal(load(f, "{\"upstreams\": {\"docker.io\": {"
				 "\"auth_realms\": [\"https://a.test/token\", \"https://b.test\"],"
				 "\"max_concurrent\": 4, \"max_queued\": 0, \"miss_ttl_s\": 0}}}"),
			 0);
	u = find(&f->rc, "docker.io");
	assert_string_equal(u->auth_realms[0], "https://a.test/token");
	assert_string_equal(u->auth_realms[1], "https://b.test");
	assert_null(u->auth_realms[2]);
	assert_int_equal(u->max_concurrent, 4);
	assert_int_equal(u->max_queued, 0);
	assert_int_equal(u->miss_ttl_s, 0);
	/* an empty list replaces Docker Hub's default: nothing but its own host */
	assert_int_equal(load(f, "{\"upstreams\": {\"docker.io\": {\"auth_realms\": []}}}"), 0);
	assert_null(find(&f->rc, "docker.io")->auth_realms[0]);
	/* an http:// upstream may list an http:// realm */
	assert_int_equal(load(f, "{\"upstreams\": {\"r.test\": {\"url\": \"http://r.test\","
				 "\"auth_realms\": [\"http://auth.test/t\"]}}}"),
			 0);
}

static void test_bad(void **state)
{
	static const struct {
		const char *config, *reason;
	} cases[] = {
	    {"{\"upstreams\": {\"a.test\": {\"auth_realms\": \"https://x\"}}}",
	     "upstreams.a.test.auth_realms: expected an array"},
	    {"{\"upstreams\": {\"a.test\": {\"auth_realms\": [1]}}}",
	     "upstreams.a.test.auth_realms: entry 0: expected a URL string"},
	    {"{\"upstreams\": {\"a.test\": {\"auth_realms\": [\"https://x\", \"x\"]}}}",
	     "upstreams.a.test.auth_realms: entry 1: expected an http:// or https:// URL"},
	    {"{\"upstreams\": {\"a.test\": {\"auth_realms\": [\"http://x/token\"]}}}",
	     "upstreams.a.test.auth_realms: entry 0: a plain http:// realm for an https:// "
	     "upstream"},
	    {"{\"upstreams\": {\"a.test\": {\"auth_realms\": [\"https://1\", \"https://2\", "
	     "\"https://3\", \"https://4\", \"https://5\", \"https://6\", \"https://7\", "
	     "\"https://8\", \"https://9\", \"https://10\", \"https://11\", \"https://12\", "
	     "\"https://13\", \"https://14\", \"https://15\", \"https://16\", \"https://17\"]}}}",
	     "upstreams.a.test.auth_realms: at most 16 realms"},
	    {"{\"upstreams\": {\"a.test\": {\"max_concurrent\": 0}}}",
	     "upstreams.a.test.max_concurrent: must be between 1 and 1024"},
	    {"{\"upstreams\": {\"a.test\": {\"max_queued\": -1}}}",
	     "upstreams.a.test.max_queued: must be between 0 and 100000"},
	    {"{\"upstreams\": {\"a.test\": {\"miss_ttl_s\": 3601}}}",
	     "upstreams.a.test.miss_ttl_s: must be between 0 and 3600"},
	    {"{\"upstreams\": {\"a.test\": {\"miss_ttl_s\": \"5\"}}}",
	     "upstreams.a.test.miss_ttl_s: expected an integer"},
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(load(f, cases[i].config), -1);
		assert_string_equal(reason(f), cases[i].reason);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_values, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
