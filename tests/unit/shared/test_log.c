/* log: the line format, level filtering, truncation of long lines, no forged lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* stderr goes to a temp file during each test; the saved fd puts it back. */
struct capture {
	FILE *f;
	int saved;
};

static int setup(void **state)
{
	struct capture *c = calloc(1, sizeof(*c));

	if (!c || !(c->f = tmpfile()))
		return -1;
	c->saved = dup(STDERR_FILENO);
	if (c->saved < 0 || dup2(fileno(c->f), STDERR_FILENO) < 0)
		return -1;
	log_init("test", LOG_DEBUG);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct capture *c = *state;

	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	fclose(c->f);
	free(c);
	return 0;
}

/* Everything written so far, NUL-terminated, malloc'd. */
static char *captured(struct capture *c, size_t *len)
{
	long n = lseek(fileno(c->f), 0, SEEK_END);
	char *buf;

	assert_true(n >= 0);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fileno(c->f), buf, (size_t)n, 0), n);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

static void test_format(void **state)
{
	size_t len;
	char *out;

	log_info("blob_stored", "digest=%s bytes=%d", "sha256:ab", 42);
	out = captured(*state, &len);
	/* ts=2026-11-25T12:00:00.123Z is 27 characters, then a space. */
	assert_true(len > 27);
	assert_memory_equal(out, "ts=", 3);
	assert_int_equal(out[7], '-');
	assert_int_equal(out[13], 'T');
	assert_int_equal(out[22], '.');
	assert_int_equal(out[26], 'Z');
	assert_string_equal(out + 27,
			    " level=info prog=test event=blob_stored digest=sha256:ab bytes=42\n");
	free(out);
}

static void test_levels(void **state)
{
	enum log_level l = LOG_ERROR;
	size_t len;
	char *out;

	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_DEBUG);
	assert_int_equal(log_level_parse("warn", &l), 0);
	assert_int_equal(l, LOG_WARN);
	assert_int_equal(log_level_parse("WARN", &l), -1);
	assert_int_equal(log_level_parse("", &l), -1);
	assert_int_equal(log_level_parse(NULL, &l), -1);
	assert_int_equal(l, LOG_WARN);

	log_init("test", LOG_WARN);
	assert_false(log_enabled(LOG_INFO));
	assert_true(log_enabled(LOG_ERROR));
	log_info("hidden", "k=v");
	log_debug("hidden", "k=v");
	log_error("shown", "k=v");
	out = captured(*state, &len);
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "level=error prog=test event=shown k=v\n"));
	free(out);
}

static void test_long_line_truncated(void **state)
{
	char *big = malloc(10000), *out;
	size_t len;

	assert_non_null(big);
	memset(big, 'x', 9999);
	big[9999] = '\0';
	log_warn("big", "v=%s", big);
	log_warn("after", "k=v");
	out = captured(*state, &len);
	/* The first line is cut to 4095 characters plus its newline; the next is whole. */
	assert_non_null(strchr(out, '\n'));
	assert_int_equal(strchr(out, '\n') - out, 4095);
	assert_non_null(strstr(out + 4096, "event=after k=v\n"));
	free(out);
	free(big);
}

static void test_no_forged_lines(void **state)
{
	size_t len;
	char *out;

	errno = ENOSPC;
	log_info("evil", "user=%s", "x\nts=0 level=error event=forged");
	assert_int_equal(errno, ENOSPC); /* logging keeps errno for the caller */
	out = captured(*state, &len);
	assert_int_equal(out[len - 1], '\n');
	assert_ptr_equal(strchr(out, '\n'), out + len - 1);
	assert_non_null(strstr(out, "user=x?ts=0"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_format, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long_line_truncated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_forged_lines, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
