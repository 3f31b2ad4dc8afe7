/* conf: loading, syntax errors with line numbers, typed getters, dotted keys, unknown keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

struct fixture {
	char dir[64];
	char file[128];
	struct conf c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ms-test-conf.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->file, sizeof(f->file), "%s/c.json", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	conf_free(&f->c);
	unlink(f->file);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Writes TEXT to the fixture's file and loads it. */
static int load(struct fixture *f, const char *text)
{
	FILE *fp = fopen(f->file, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	return conf_load(&f->c, f->file);
}

/* The message is "FILE" followed by SUFFIX. */
static void assert_err(struct fixture *f, const char *suffix)
{
	size_t n = strlen(f->file);

	if (strncmp(f->c.err, f->file, n) != 0 || strcmp(f->c.err + n, suffix) != 0)
		fail_msg("err \"%s\", want \"%s%s\"", f->c.err, f->file, suffix);
}

static void test_defaults(void **state)
{
	struct fixture *f = *state;
	const char *s = "unchanged";

	assert_int_equal(conf_load(&f->c, NULL), 0);
	assert_string_equal(f->c.file, "(defaults)");
	assert_true(json_is_object(f->c.root));
	assert_int_equal(conf_string(&f->c, f->c.root, NULL, "listen", &s), 0);
	assert_string_equal(s, "unchanged");
}

static void test_syntax_error_names_line(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "{\n  \"a\": 1,\n  \"b\": ,\n}\n"), -1);
	assert_null(f->c.root);
	/* "FILE:3:…: reason" */
	assert_int_equal(strncmp(f->c.err, f->file, strlen(f->file)), 0);
	assert_int_equal(strncmp(f->c.err + strlen(f->file), ":3:", 3), 0);
}

static void test_duplicate_key(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "{\"a\": 1,\n \"a\": 2}"), -1);
	assert_non_null(strstr(f->c.err, ":2:"));
	assert_non_null(strstr(f->c.err, "duplicate"));
}

static void test_missing_file(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(conf_load(&f->c, f->file), -1);
	assert_int_equal(strncmp(f->c.err, f->file, strlen(f->file)), 0);
	assert_non_null(strstr(f->c.err, "No such file"));
}

static void test_top_level_not_object(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "[1, 2]"), -1);
	assert_err(f, ": the top level must be an object");
	assert_null(f->c.root);
}

static void test_getters(void **state)
{
	struct fixture *f = *state;
	const char *s = NULL;
	long long n = -1;
	int b = -1;
	json_t *o = NULL;

	assert_int_equal(load(f, "{\"s\": \"x\", \"n\": 7, \"b\": true, \"o\": {\"k\": 1}, "
				 "\"a\": [1], \"r\": 1.5}"),
			 0);
	assert_int_equal(conf_string(&f->c, f->c.root, NULL, "s", &s), 0);
	assert_string_equal(s, "x");
	assert_int_equal(conf_int(&f->c, f->c.root, NULL, "n", 0, 10, &n), 0);
	assert_int_equal(n, 7);
	assert_int_equal(conf_bool(&f->c, f->c.root, NULL, "b", &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(conf_object(&f->c, f->c.root, NULL, "o", &o), 0);
	assert_non_null(o);
	assert_int_equal(conf_int(&f->c, f->c.root, NULL, "o.k", 0, 10, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(conf_array(&f->c, f->c.root, NULL, "a", &o), 0);
	assert_true(json_is_array(o));
	assert_int_equal(conf_object(&f->c, f->c.root, NULL, "absent", &o), 0);
	assert_null(o);

	assert_int_equal(conf_int(&f->c, f->c.root, NULL, "n", 8, 10, &n), -1);
	assert_err(f, ": n: must be between 8 and 10");
	assert_int_equal(conf_int(&f->c, f->c.root, NULL, "r", 0, 10, &n), -1);
	assert_err(f, ": r: expected an integer");
	assert_int_equal(conf_string(&f->c, f->c.root, NULL, "n", &s), -1);
	assert_err(f, ": n: expected a string");
	assert_int_equal(conf_bool(&f->c, f->c.root, NULL, "s", &b), -1);
	assert_err(f, ": s: expected true or false");
	assert_int_equal(conf_object(&f->c, f->c.root, NULL, "a", &o), -1);
	assert_err(f, ": a: expected an object");
	assert_int_equal(conf_array(&f->c, f->c.root, NULL, "o", &o), -1);
	assert_err(f, ": o: expected an array");
	assert_int_equal(n, 1); /* untouched by the failures */
}

static void test_dotted_keys(void **state)
{
	struct fixture *f = *state;
	const char *s = NULL;

	assert_int_equal(load(f, "{\"upstreams\": {\"docker.io\": {\"url\": \"u1\"},"
				 " \"docker\": {\"io\": {}}, \"a.b.c\": {\"url\": \"u2\"}}}"),
			 0);
	/* "docker" exists too, without a url: the lookup backs off to "docker.io". */
	assert_int_equal(conf_string(&f->c, f->c.root, NULL, "upstreams.docker.io.url", &s), 0);
	assert_string_equal(s, "u1");
	assert_int_equal(conf_string(&f->c, f->c.root, NULL, "upstreams.a.b.c.url", &s), 0);
	assert_string_equal(s, "u2");
	assert_null(conf_lookup(f->c.root, "upstreams.a.b"));
	assert_null(conf_lookup(f->c.root, "upstreams..url"));
	assert_null(conf_lookup(f->c.root, ""));
}

static void test_known_keys(void **state)
{
	struct fixture *f = *state;
	static const char *const keys[] = {"a", "b", NULL};
	json_t *o;

	assert_int_equal(load(f, "{\"a\": 1, \"b\": {\"x\": 1, \"zz\": 2}}"), 0);
	assert_int_equal(conf_known_keys(&f->c, f->c.root, NULL, keys), 0);
	assert_int_equal(conf_object(&f->c, f->c.root, NULL, "b", &o), 0);
	assert_int_equal(conf_known_keys(&f->c, o, "b", (const char *const[]){"x", NULL}), -1);
	assert_err(f, ": b.zz: unknown key");
	assert_int_equal(conf_known_keys(&f->c, o, "", (const char *const[]){"zz", NULL}), -1);
	assert_err(f, ": x: unknown key");
}

static void test_fail_bounded(void **state)
{
	struct fixture *f = *state;
	char big[2000];

	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	f->c.file = "f.json";
	assert_int_equal(conf_fail(&f->c, big, "reason %d", 1), -1);
	assert_int_equal(strlen(f->c.err), sizeof(f->c.err) - 1);
	assert_int_equal(conf_fail(&f->c, "key", "reason %d", 2), -1);
	assert_string_equal(f->c.err, "f.json: key: reason 2");
}

static void test_url(void **state)
{
	static const char *const bad[] = {
	    "ftp://x",	      "http://",  "https:///x", "http://a b", "http://user:pw@host",
	    "http://@host/x", "host:5000"};
	char *out = NULL;
	size_t i;

	(void)state;
	assert_int_equal(conf_url_dup("https://registry-1.docker.io//", &out), 0);
	assert_string_equal(out, "https://registry-1.docker.io");
	free(out);
	assert_int_equal(conf_url_dup("http://127.0.0.1:5000/path@v1", &out), 0);
	free(out);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(conf_url_dup(bad[i], &out), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_syntax_error_names_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_top_level_not_object, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_getters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dotted_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_known_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fail_bounded, setup, teardown),
	    cmocka_unit_test(test_url),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
