/* config: defaults, a full good config, and each kind of bad config with its message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf_secret.h"
#include "registry.h"

struct fixture {
	char dir[64];
	char file[128];	 /* the config */
	char creds[128]; /* a credentials file */
	struct conf c;
	struct registry_conf rc;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ms-test-config.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->file, sizeof(f->file), "%s/registry.json", f->dir);
	snprintf(f->creds, sizeof(f->creds), "%s/creds", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	registry_conf_free(&f->rc);
	conf_free(&f->c);
	unlink(f->file);
	unlink(f->creds);
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

/* Writes TEXT as the config (with "CREDS" replaced by the credentials file) and loads it. */
static int load(struct fixture *f, const char *text)
{
	char buf[2048];
	const char *at = strstr(text, "CREDS");

	if (at)
		snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - text), text, f->creds, at + 5);
	else
		snprintf(buf, sizeof(buf), "%s", text);
	write_file(f->file, buf);
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

/* Field by field: the struct has padding that memcmp would see. */
static void assert_opts_equal(const struct httpd_opts *a, const struct httpd_opts *b)
{
	assert_int_equal(a->max_head_bytes, b->max_head_bytes);
	assert_int_equal(a->max_body_bytes, b->max_body_bytes);
	assert_int_equal(a->max_conns, b->max_conns);
	assert_true(a->head_timeout_s == b->head_timeout_s);
	assert_true(a->idle_timeout_s == b->idle_timeout_s);
	assert_true(a->send_timeout_s == b->send_timeout_s);
}

static void test_defaults(void **state)
{
	struct fixture *f = *state;
	struct httpd_opts want;

	assert_int_equal(conf_load(&f->c, NULL), 0);
	assert_int_equal(registry_conf_load(&f->rc, &f->c), 0);
	assert_string_equal(f->rc.listen, "127.0.0.1:5000");
	assert_string_equal(f->rc.root, "/var/lib/microscale");
	assert_int_equal(f->rc.log_level, LOG_INFO);
	assert_int_equal(f->rc.tag_ttl_s, 60);
	assert_int_equal(f->rc.connect_timeout_ms, 10000);
	assert_int_equal(f->rc.low_speed_time_s, 30);
	assert_int_equal(f->rc.retries, 3);
	httpd_opts_default(&want);
	assert_opts_equal(&f->rc.http, &want);
	assert_int_equal(f->rc.nupstreams, 1);
	assert_string_equal(f->rc.upstreams[0].host, "docker.io");
	assert_string_equal(f->rc.upstreams[0].url, "https://registry-1.docker.io");
	assert_null(f->rc.upstreams[0].userpwd);
	assert_false(f->rc.upstreams[0].insecure_tls);
}

static void test_full_config(void **state)
{
	struct fixture *f = *state;
	const struct upstream_conf *u;

	write_file(f->creds, "robot:t0k3n:with:colons\r\nignored second line\n");
	assert_int_equal(
	    load(f, "{\"listen\": \"[::1]:0\", \"root\": \"/srv/ms\", \"log_level\": \"debug\",\n"
		    " \"tag_ttl_s\": 0,\n"
		    " \"upstreams\": {\n"
		    "  \"Docker.IO\": {\"url\": \"http://127.0.0.1:5001//\", \"username\": \"u\","
		    "                 \"password\": \"p\"},\n"
		    "  \"GHCR.io\": {\"credentials_file\": \"CREDS\"},\n"
		    "  \"127.0.0.1:5002\": {\"url\": \"https://127.0.0.1:5002/v\","
		    "                      \"insecure_tls\": true}},\n"
		    " \"http\": {\"max_connections\": 10, \"max_header_bytes\": 1024,"
		    "          \"header_timeout_s\": 1, \"idle_timeout_s\": 3600,"
		    "          \"send_timeout_s\": 7},\n"
		    " \"fetch\": {\"connect_timeout_ms\": 100, \"low_speed_time_s\": 3600,"
		    "           \"retries\": 0}}\n"),
	    0);
	assert_string_equal(f->rc.listen, "[::1]:0");
	assert_string_equal(f->rc.root, "/srv/ms");
	assert_int_equal(f->rc.log_level, LOG_DEBUG);
	assert_int_equal(f->rc.tag_ttl_s, 0);
	/* Host names in one spelling, lower case; "Docker.IO" replaces docker.io, not added. */
	assert_int_equal(f->rc.nupstreams, 3);
	u = find(&f->rc, "docker.io");
	assert_non_null(u);
	assert_string_equal(u->url, "http://127.0.0.1:5001");
	assert_string_equal(u->userpwd, "u:p");
	u = find(&f->rc, "ghcr.io");
	assert_non_null(u);
	assert_string_equal(u->url, "https://ghcr.io");
	assert_string_equal(u->userpwd, "robot:t0k3n:with:colons");
	assert_false(u->insecure_tls);
	u = find(&f->rc, "127.0.0.1:5002");
	assert_non_null(u);
	assert_string_equal(u->url, "https://127.0.0.1:5002/v");
	assert_null(u->userpwd);
	assert_true(u->insecure_tls);
	assert_int_equal(f->rc.http.max_conns, 10);
	assert_int_equal(f->rc.http.max_head_bytes, 1024);
	assert_true(f->rc.http.head_timeout_s == 1.0);
	assert_true(f->rc.http.idle_timeout_s == 3600.0);
	assert_true(f->rc.http.send_timeout_s == 7.0);
	assert_int_equal(f->rc.connect_timeout_ms, 100);
	assert_int_equal(f->rc.low_speed_time_s, 3600);
	assert_int_equal(f->rc.retries, 0);
}

/* A partial http object leaves the other defaults. */
static void test_partial_sections(void **state)
{
	struct fixture *f = *state;
	struct httpd_opts want;

	assert_int_equal(load(f, "{\"http\": {\"idle_timeout_s\": 5}, \"fetch\": {}}"), 0);
	httpd_opts_default(&want);
	want.idle_timeout_s = 5;
	assert_opts_equal(&f->rc.http, &want);
	assert_int_equal(f->rc.retries, 3);
}

/* runtime: off by default; an absolute socket path of up to 107 bytes, which need not exist yet
 * (dockerd may start after the cache). */
#define LONG100                                                                                    \
	"0123456789012345678901234567890123456789012345678901234567890123456789"                   \
	"012345678901234567890123456789"

static void test_runtime(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(conf_load(&f->c, NULL), 0);
	assert_int_equal(registry_conf_load(&f->rc, &f->c), 0);
	assert_null(f->rc.docker_socket);
	assert_int_equal(f->rc.runtime_parallel, 2);
	assert_int_equal(load(f, "{\"runtime\": {}}"), 0);
	assert_null(f->rc.docker_socket);
	assert_int_equal(load(f, "{\"runtime\": {\"docker_socket\": \"/nonexistent/docker.sock\","
				 " \"parallel\": 16}}"),
			 0);
	assert_string_equal(f->rc.docker_socket, "/nonexistent/docker.sock");
	assert_int_equal(f->rc.runtime_parallel, 16);
	assert_int_equal(load(f, "{\"runtime\": {\"docker_socket\": \"/" LONG100 "123456\"}}"), 0);
	assert_int_equal(strlen(f->rc.docker_socket), 107);
}

struct bad_case {
	const char *json;
	const char *err; /* what follows "FILE" in the message */
};

static void test_bad_configs(void **state)
{
	static const struct bad_case cases[] = {
	    {"{\"listen\": 5}", ": listen: expected a string"},
	    {"{\"root\": \"\"}", ": root: must not be empty"},
	    {"{\"bogus\": 1}", ": bogus: unknown key"},
	    {"{\"log_level\": \"loud\"}", ": log_level: must be one of debug, info, warn, error"},
	    {"{\"tag_ttl_s\": -1}", ": tag_ttl_s: must be between 0 and 31536000"},
	    {"{\"tag_ttl_s\": 31536001}", ": tag_ttl_s: must be between 0 and 31536000"},
	    {"{\"tag_ttl_s\": \"60\"}", ": tag_ttl_s: expected an integer"},
	    {"{\"tag_ttl_s\": 1.5}", ": tag_ttl_s: expected an integer"},
	    {"{\"upstreams\": []}", ": upstreams: expected an object"},
	    {"{\"upstreams\": {\"a.io\": 5}}", ": upstreams.a.io: expected an object"},
	    {"{\"upstreams\": {\"bad_host\": {}}}",
	     ": upstreams.bad_host: not a valid registry host[:port]"},
	    {"{\"upstreams\": {\"a.io:99999\": {}}}",
	     ": upstreams.a.io:99999: not a valid registry host[:port]"},
	    {"{\"upstreams\": {\"../x\": {}}}",
	     ": upstreams.../x: not a valid registry host[:port]"},
	    {"{\"upstreams\": {\"a.io\": {}, \"A.IO\": {}}}", ": upstreams.A.IO: configured twice"},
	    {"{\"upstreams\": {\"a.io\": {\"urll\": \"x\"}}}",
	     ": upstreams.a.io.urll: unknown key"},
	    {"{\"upstreams\": {\"docker.io\": {\"url\": \"ftp://x\"}}}",
	     ": upstreams.docker.io.url: expected an http:// or https:// URL"},
	    {"{\"upstreams\": {\"docker.io\": {\"url\": \"https:///\"}}}",
	     ": upstreams.docker.io.url: expected an http:// or https:// URL"},
	    {"{\"upstreams\": {\"docker.io\": {\"url\": \"https://a b\"}}}",
	     ": upstreams.docker.io.url: expected an http:// or https:// URL"},
	    {"{\"upstreams\": {\"docker.io\": {\"url\": 1}}}",
	     ": upstreams.docker.io.url: expected a string"},
	    {"{\"upstreams\": {\"a.io\": {\"insecure_tls\": \"yes\"}}}",
	     ": upstreams.a.io.insecure_tls: expected true or false"},
	    {"{\"upstreams\": {\"a.io\": {\"username\": \"u\"}}}",
	     ": upstreams.a.io.username: needs a password or password_file"},
	    {"{\"upstreams\": {\"a.io\": {\"username\": \"u\", \"password\": \"\"}}}",
	     ": upstreams.a.io.username: needs a password or password_file"},
	    {"{\"upstreams\": {\"a.io\": {\"password\": \"s3cret\"}}}",
	     ": upstreams.a.io.password: needs a username"},
	    {"{\"upstreams\": {\"a.io\": {\"username\": \"\", \"password\": \"s3cret\"}}}",
	     ": upstreams.a.io.password: needs a username"},
	    {"{\"upstreams\": {\"a.io\": {\"password_file\": \"/x\"}}}",
	     ": upstreams.a.io.password_file: needs a username"},
	    {"{\"upstreams\": {\"a.io\": {\"username\": \"u\", \"password\": \"s3cret\","
	     " \"password_file\": \"/x\"}}}",
	     ": upstreams.a.io.password_file: not allowed together with password"},
	    {"{\"upstreams\": {\"a.io\": {\"username\": \"u:x\", \"password\": \"s3cret\"}}}",
	     ": upstreams.a.io.username: the user name must not contain ':'"},
	    {"{\"upstreams\": {\"a.io\": {\"username\": \"u\", \"password_file\": "
	     "\"/nonexistent/p\"}}}",
	     ": upstreams.a.io.password_file: cannot read /nonexistent/p: No such file or "
	     "directory"},
	    {"{\"upstreams\": {\"a.io\": {\"username\": \"u\", \"password\": \"s3cret\","
	     " \"credentials_file\": \"/x\"}}}",
	     ": upstreams.a.io.credentials_file: not allowed together with username and "
	     "password"},
	    {"{\"http\": 1}", ": http: expected an object"},
	    {"{\"http\": {\"x\": 1}}", ": http.x: unknown key"},
	    {"{\"http\": {\"max_connections\": 0}}",
	     ": http.max_connections: must be between 1 and 100000"},
	    {"{\"http\": {\"max_connections\": 100001}}",
	     ": http.max_connections: must be between 1 and 100000"},
	    {"{\"http\": {\"max_header_bytes\": 1023}}",
	     ": http.max_header_bytes: must be between 1024 and 1048576"},
	    {"{\"http\": {\"header_timeout_s\": 0}}",
	     ": http.header_timeout_s: must be between 1 and 3600"},
	    {"{\"http\": {\"send_timeout_s\": 3601}}",
	     ": http.send_timeout_s: must be between 1 and 3600"},
	    {"{\"fetch\": {\"connect_timeout_ms\": 99}}",
	     ": fetch.connect_timeout_ms: must be between 100 and 600000"},
	    {"{\"fetch\": {\"low_speed_time_s\": 0}}",
	     ": fetch.low_speed_time_s: must be between 1 and 3600"},
	    {"{\"fetch\": {\"retries\": 11}}", ": fetch.retries: must be between 0 and 10"},
	    {"{\"fetch\": {\"retry\": 1}}", ": fetch.retry: unknown key"},
	    {"{\"runtime\": 1}", ": runtime: expected an object"},
	    {"{\"runtime\": {\"socket\": \"/x\"}}", ": runtime.socket: unknown key"},
	    {"{\"runtime\": {\"docker_socket\": 1}}", ": runtime.docker_socket: expected a string"},
	    {"{\"runtime\": {\"docker_socket\": \"\"}}",
	     ": runtime.docker_socket: must be an absolute path"},
	    {"{\"runtime\": {\"docker_socket\": \"var/run/docker.sock\"}}",
	     ": runtime.docker_socket: must be an absolute path"},
	    {"{\"runtime\": {\"docker_socket\": \"unix:///var/run/docker.sock\"}}",
	     ": runtime.docker_socket: must be an absolute path"},
	    {"{\"runtime\": {\"docker_socket\": \"/" LONG100 "1234567\"}}",
	     ": runtime.docker_socket: longer than 107 bytes, the limit of a unix socket path"},
	    {"{\"runtime\": {\"parallel\": 0}}", ": runtime.parallel: must be between 1 and 16"},
	    {"{\"runtime\": {\"parallel\": 17}}", ": runtime.parallel: must be between 1 and 16"},

	    {"{\"upstreams\": {\"a.test\": {\"auth_realms\": \"https://x\"}}}",
	     ": upstreams.a.test.auth_realms: expected an array"},
	    {"{\"upstreams\": {\"a.test\": {\"auth_realms\": [1]}}}",
	     ": upstreams.a.test.auth_realms: entry 0: expected a URL string"},
	    {"{\"upstreams\": {\"a.test\": {\"auth_realms\": [\"https://x\", \"x\"]}}}",
	     ": upstreams.a.test.auth_realms: entry 1: expected an http:// or https:// URL"},
	    {"{\"upstreams\": {\"a.test\": {\"auth_realms\": [\"http://x/token\"]}}}",
	     ": upstreams.a.test.auth_realms: entry 0: a plain http:// realm for an https:// "
	     "upstream"},
	    {"{\"upstreams\": {\"a.test\": {\"auth_realms\": [\"https://1\", \"https://2\", "
	     "\"https://3\", \"https://4\", \"https://5\", \"https://6\", \"https://7\", "
	     "\"https://8\", \"https://9\", \"https://10\", \"https://11\", \"https://12\", "
	     "\"https://13\", \"https://14\", \"https://15\", \"https://16\", \"https://17\"]}}}",
	     ": upstreams.a.test.auth_realms: at most 16 realms"},
	    {"{\"upstreams\": {\"a.test\": {\"max_concurrent\": 0}}}",
	     ": upstreams.a.test.max_concurrent: must be between 1 and 1024"},
	    {"{\"upstreams\": {\"a.test\": {\"max_queued\": -1}}}",
	     ": upstreams.a.test.max_queued: must be between 0 and 100000"},
	    {"{\"upstreams\": {\"a.test\": {\"miss_ttl_s\": 3601}}}",
	     ": upstreams.a.test.miss_ttl_s: must be between 0 and 3600"},
	    {"{\"upstreams\": {\"a.test\": {\"miss_ttl_s\": \"5\"}}}",
	     ": upstreams.a.test.miss_ttl_s: expected an integer"},
	};
	struct fixture *f = *state;
	size_t n = strlen(f->file);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (load(f, cases[i].json) != -1)
			fail_msg("accepted %s", cases[i].json);
		if (strncmp(f->c.err, f->file, n) != 0 || strcmp(f->c.err + n, cases[i].err) != 0)
			fail_msg("%s: err \"%s\", want \"…%s\"", cases[i].json, f->c.err,
				 cases[i].err);
		assert_null(strstr(f->c.err, "s3cret"));
		/* A failed load leaves nothing to free. */
		assert_null(f->rc.upstreams);
		assert_null(f->rc.listen);
	}
}

/* An upstream's auth_realms, max_concurrent, max_queued and miss_ttl_s: defaults (Docker Hub's
 * auth host for docker.io) and values. */
static void test_upstream_limits_defaults(void **state)
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

static void test_upstream_limits_values(void **state)
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

static void test_credentials_file_errors(void **state)
{
	struct fixture *f = *state;
	const char *cfg = "{\"upstreams\": {\"a.io\": {\"credentials_file\": \"CREDS\"}}}";
	char big[CONF_SECRET_MAX + 100];

	/* Absent. */
	assert_int_equal(load(f, cfg), -1);
	assert_non_null(strstr(f->c.err, ": upstreams.a.io.credentials_file: cannot read "));
	assert_non_null(strstr(f->c.err, f->creds));
	assert_non_null(strstr(f->c.err, "No such file"));
	/* Empty. */
	write_file(f->creds, "");
	assert_int_equal(load(f, cfg), -1);
	assert_non_null(strstr(f->c.err, "is empty"));
	/* No colon: the secret is not repeated in the message. */
	write_file(f->creds, "s3cret\n");
	assert_int_equal(load(f, cfg), -1);
	assert_non_null(strstr(f->c.err, "expected user:password on the first line"));
	assert_null(strstr(f->c.err, "s3cret"));
	write_file(f->creds, ":s3cret\n");
	assert_int_equal(load(f, cfg), -1);
	assert_non_null(
	    strstr(f->c.err, ": upstreams.a.io.credentials_file: the user name is empty"));
	assert_null(strstr(f->c.err, "s3cret"));
	write_file(f->creds, "u:\n");
	assert_int_equal(load(f, cfg), -1);
	assert_non_null(
	    strstr(f->c.err, ": upstreams.a.io.credentials_file: the password is empty"));
	/* Too long to be taken whole. */
	memset(big, 'a', sizeof(big) - 2);
	big[5] = ':';
	big[sizeof(big) - 2] = '\n';
	big[sizeof(big) - 1] = '\0';
	write_file(f->creds, big);
	assert_int_equal(load(f, cfg), -1);
	assert_non_null(strstr(f->c.err, "the first line is too long"));
	/* A directory cannot be read. */
	unlink(f->creds);
	assert_int_equal(load(f, "{\"upstreams\": {\"a.io\": {\"credentials_file\": \"/\"}}}"), -1);
	assert_non_null(strstr(f->c.err, "cannot read /"));
}

/* The same user:password rules as the scaler's: a password from a file, "" taken as not set. */
static void test_password_file(void **state)
{
	struct fixture *f = *state;
	const struct upstream_conf *u;

	write_file(f->creds, "  pa:ss word \n");
	assert_int_equal(load(f,
			      "{\"upstreams\": {\"a.io\": {\"username\": \"u\", \"password\": \"\","
			      " \"password_file\": \"CREDS\", \"credentials_file\": \"\"},"
			      " \"b.io\": {\"username\": \"\", \"password\": \"\"}}}"),
			 0);
	u = find(&f->rc, "a.io");
	assert_non_null(u);
	assert_string_equal(u->userpwd, "u:pa:ss word");
	u = find(&f->rc, "b.io");
	assert_non_null(u);
	assert_null(u->userpwd);
	/* a credentials_file as well is one source of credentials too many, before it is read */
	assert_int_equal(load(f, "{\"upstreams\": {\"a.io\": {\"username\": \"u\", "
				 "\"password_file\": \"CREDS\", \"credentials_file\": \"/x\"}}}"),
			 -1);
	assert_non_null(
	    strstr(f->c.err, ": upstreams.a.io.credentials_file: not allowed together"));
}

static void test_syntax_error_names_line(void **state)
{
	struct fixture *f = *state;
	size_t n = strlen(f->file);

	assert_int_equal(
	    load(f, "{\n  \"listen\": \"x\",\n  \"root\": \"/r\"\n  \"log_level\": 1\n}\n"), -1);
	assert_int_equal(strncmp(f->c.err, f->file, n), 0);
	assert_int_equal(strncmp(f->c.err + n, ":4:", 3), 0);
}

static void test_set_upstream(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(conf_load(&f->c, NULL), 0);
	assert_int_equal(registry_conf_load(&f->rc, &f->c), 0);
	assert_int_equal(registry_conf_set_upstream(&f->rc, "http://127.0.0.1:5001/"), 0);
	assert_int_equal(f->rc.nupstreams, 1);
	assert_string_equal(f->rc.upstreams[0].url, "http://127.0.0.1:5001");
	assert_int_equal(registry_conf_set_upstream(&f->rc, "127.0.0.1:5001"), -1);
	assert_int_equal(registry_conf_set_upstream(&f->rc, "https://"), -1);
	assert_int_equal(registry_conf_set_upstream(&f->rc, "http://x\ny"), -1);
	assert_string_equal(f->rc.upstreams[0].url, "http://127.0.0.1:5001");
	registry_conf_free(&f->rc);
	registry_conf_free(&f->rc); /* a second free does nothing */
	assert_int_equal(f->rc.nupstreams, 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_defaults),
	    T(test_full_config),
	    T(test_partial_sections),
	    T(test_runtime),
	    T(test_bad_configs),
	    T(test_credentials_file_errors),
	    T(test_password_file),
	    T(test_syntax_error_names_line),
	    T(test_set_upstream),
	    T(test_upstream_limits_defaults),
	    T(test_upstream_limits_values),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
