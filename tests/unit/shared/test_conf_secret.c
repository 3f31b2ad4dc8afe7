/* conf_secret: a secret file's first line, and the user:password rules both daemons share. */
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

struct fixture {
	char dir[64];
	char path[128]; /* the secret file */
	struct conf c;
	char *out;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ms-test-secret.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/secret", f->dir);
	f->c.file = "F";
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	conf_secret_free(f->out);
	json_decref(f->c.root);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void write_secret(struct fixture *f, const char *text, size_t len)
{
	FILE *fp = fopen(f->path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

/* Reads the file after writing TEXT; the error (after "F: k: ") or the secret into *got. */
static int read_text(struct fixture *f, const char *text, const char **got)
{
	int rc;

	write_secret(f, text, strlen(text));
	conf_secret_free(f->out);
	f->out = NULL;
	rc = conf_secret_read(&f->c, "k", f->path, "a test secret", &f->out);
	if (rc == 0) {
		*got = f->out;
	} else {
		assert_null(f->out);
		assert_int_equal(strncmp(f->c.err, "F: k: ", 6), 0);
		assert_null(strstr(f->c.err, "s3cret"));
		*got = f->c.err + 6;
	}
	return rc;
}

static void test_read_first_line_trimmed(void **state)
{
	struct fixture *f = *state;
	const char *got;

	assert_int_equal(read_text(f, "s3cret", &got), 0);
	assert_string_equal(got, "s3cret");
	assert_int_equal(read_text(f, " \ts3 cret\t \r\nsecond\n", &got), 0);
	assert_string_equal(got, "s3 cret");
	assert_int_equal(read_text(f, "u:p\n", &got), 0);
	assert_string_equal(got, "u:p");
}

static void test_read_errors(void **state)
{
	struct fixture *f = *state;
	char want[256], big[CONF_SECRET_MAX + 10];
	const char *got;

	assert_int_equal(read_text(f, "", &got), -1);
	snprintf(want, sizeof(want), "%s is empty", f->path);
	assert_string_equal(got, want);
	assert_int_equal(read_text(f, " \t\r\ns3cret\n", &got), -1);
	snprintf(want, sizeof(want), "%s: the first line is empty", f->path);
	assert_string_equal(got, want);
	/* one byte short of the bound is whole; at the bound it would be cut */
	memset(big, 's', sizeof(big));
	big[CONF_SECRET_MAX - 2] = '\n';
	big[CONF_SECRET_MAX - 1] = '\0';
	assert_int_equal(read_text(f, big, &got), 0);
	assert_int_equal(strlen(got), CONF_SECRET_MAX - 2);
	big[CONF_SECRET_MAX - 2] = 's';
	big[CONF_SECRET_MAX + 8] = '\n';
	big[CONF_SECRET_MAX + 9] = '\0';
	assert_int_equal(read_text(f, big, &got), -1);
	snprintf(want, sizeof(want), "%s: the first line is too long", f->path);
	assert_string_equal(got, want);
	assert_int_equal(conf_secret_read(&f->c, "k", "/nonexistent/s", "x", &f->out), -1);
	assert_string_equal(f->c.err,
			    "F: k: cannot read /nonexistent/s: No such file or directory");
	assert_int_equal(conf_secret_read(&f->c, "k", f->dir, "x", &f->out), -1);
	snprintf(want, sizeof(want), "F: k: cannot read %s: Is a directory", f->dir);
	assert_string_equal(f->c.err, want);
	assert_null(f->out);
}

static void test_pair(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(conf_secret_pair(&f->c, "k", "u", "p:w", &f->out), 0);
	assert_string_equal(f->out, "u:p:w");
	assert_int_equal(conf_secret_pair(&f->c, "k", "", "s3cret", &f->out), -1);
	assert_string_equal(f->c.err, "F: k: the user name is empty");
	assert_int_equal(conf_secret_pair(&f->c, "k", "a:b", "s3cret", &f->out), -1);
	assert_string_equal(f->c.err, "F: k: the user name must not contain ':'");
	assert_int_equal(conf_secret_pair(&f->c, "k", "u", "", &f->out), -1);
	assert_string_equal(f->c.err, "F: k: the password is empty");
}

/* conf_secret_userpwd on JSON (PATH in it replaced by the secret file): 0 with the pair (or NULL)
 * in f->out, or -1 with the error in f->c.err. */
static int userpwd(struct fixture *f, const char *json)
{
	char buf[512];
	const char *at = strstr(json, "PATH");

	if (at)
		snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - json), json, f->path, at + 4);
	else
		snprintf(buf, sizeof(buf), "%s", json);
	json_decref(f->c.root);
	f->c.root = json_loads(buf, 0, NULL);
	assert_non_null(f->c.root);
	conf_secret_free(f->out);
	f->out = NULL;
	return conf_secret_userpwd(&f->c, json_object_get(f->c.root, "m"), "m", "a test password",
				   &f->out);
}

static void test_userpwd(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(userpwd(f, "{\"m\": {}}"), 0);
	assert_null(f->out);
	assert_int_equal(userpwd(f, "{\"m\": {\"username\": \"\", \"password\": \"\", "
				    "\"password_file\": \"\"}}"),
			 0);
	assert_null(f->out);
	assert_int_equal(userpwd(f, "{\"m\": {\"username\": \"u\", \"password\": \"p\"}}"), 0);
	assert_string_equal(f->out, "u:p");
	write_secret(f, "from-file\n", 10);
	assert_int_equal(userpwd(f, "{\"m\": {\"username\": \"u\", \"password_file\": \"PATH\"}}"),
			 0);
	assert_string_equal(f->out, "u:from-file");
}

static void test_userpwd_errors(void **state)
{
	static const struct {
		const char *json, *err;
	} cases[] = {
	    {"{\"m\": {\"username\": \"u\"}}", "F: m.username: needs a password or password_file"},
	    {"{\"m\": {\"username\": \"u\", \"password\": \"\"}}",
	     "F: m.username: needs a password or password_file"},
	    {"{\"m\": {\"password\": \"s3cret\"}}", "F: m.password: needs a username"},
	    {"{\"m\": {\"username\": \"\", \"password\": \"s3cret\"}}",
	     "F: m.password: needs a username"},
	    {"{\"m\": {\"password_file\": \"PATH\"}}", "F: m.password_file: needs a username"},
	    {"{\"m\": {\"username\": \"u\", \"password\": \"s3cret\", \"password_file\": "
	     "\"PATH\"}}",
	     "F: m.password_file: not allowed together with password"},
	    {"{\"m\": {\"username\": \"a:b\", \"password\": \"s3cret\"}}",
	     "F: m.username: the user name must not contain ':'"},
	    {"{\"m\": {\"username\": 1, \"password\": \"s3cret\"}}",
	     "F: m.username: expected a string"},
	    {"{\"m\": {\"username\": \"u\", \"password_file\": \"/nonexistent/p\"}}",
	     "F: m.password_file: cannot read /nonexistent/p: No such file or directory"},
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (userpwd(f, cases[i].json) != -1)
			fail_msg("accepted %s", cases[i].json);
		if (strcmp(f->c.err, cases[i].err) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].json, f->c.err,
				 cases[i].err);
		assert_null(f->out);
	}
}

static void test_secret_file(void **state)
{
	struct fixture *f = *state;
	json_t *o = json_pack("{s:s, s:s, s:s}", "t", f->path, "e", "", "n", "/nonexistent/t");

	assert_non_null(o);
	write_secret(f, "tok\n", 4);
	assert_int_equal(conf_secret_file(&f->c, o, "g", "e", "x", &f->out), 0);
	assert_null(f->out);
	assert_int_equal(conf_secret_file(&f->c, o, "g", "absent", "x", &f->out), 0);
	assert_null(f->out);
	assert_int_equal(conf_secret_file(&f->c, o, "g", "t", "x", &f->out), 0);
	assert_string_equal(f->out, "tok");
	conf_secret_free(f->out);
	f->out = NULL;
	assert_int_equal(conf_secret_file(&f->c, o, "g", "n", "x", &f->out), -1);
	assert_string_equal(f->c.err,
			    "F: g.n: cannot read /nonexistent/t: No such file or directory");
	json_decref(o);
	conf_secret_free(NULL);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_read_first_line_trimmed), T(test_read_errors), T(test_pair), T(test_userpwd),
	    T(test_userpwd_errors),	     T(test_secret_file),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
