/* wwwauth: real challenges, escapes, case, bounds, several challenges in one header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

static void test_docker_hub(void **state)
{
	struct wwwauth w;

	(void)state;
	assert_int_equal(wwwauth_parse("Bearer realm=\"https://auth.docker.io/token\","
				       "service=\"registry.docker.io\","
				       "scope=\"repository:library/busybox:pull\"",
				       &w),
			 0);
	assert_string_equal(w.scheme, "Bearer");
	assert_string_equal(w.realm, "https://auth.docker.io/token");
	assert_string_equal(w.service, "registry.docker.io");
	assert_string_equal(w.scope, "repository:library/busybox:pull");
}

static void test_ghcr_spacing_and_case(void **state)
{
	struct wwwauth w;

	(void)state;
	assert_int_equal(wwwauth_parse("  bearer  REALM = \"https://ghcr.io/token\" ,  "
				       "Service=ghcr.io , scope=\"repository:a/b:pull\"  ",
				       &w),
			 0);
	assert_string_equal(w.scheme, "bearer");
	assert_string_equal(w.realm, "https://ghcr.io/token");
	assert_string_equal(w.service, "ghcr.io");
	assert_string_equal(w.scope, "repository:a/b:pull");
}

static void test_basic_and_bare(void **state)
{
	struct wwwauth w;

	(void)state;
	assert_int_equal(wwwauth_parse("Basic realm=\"x\"", &w), 0);
	assert_string_equal(w.scheme, "Basic");
	assert_string_equal(w.realm, "x");
	assert_string_equal(w.service, "");
	assert_int_equal(wwwauth_parse("Basic", &w), 0);
	assert_string_equal(w.scheme, "Basic");
	assert_string_equal(w.realm, "");
	assert_int_equal(wwwauth_parse("Bearer realm=https://h/token,service=h", &w), 0);
	assert_string_equal(w.realm, "https://h/token");
	assert_string_equal(w.service, "h");
}

static void test_escapes_and_unknown(void **state)
{
	struct wwwauth w;

	(void)state;
	assert_int_equal(wwwauth_parse("Bearer error=\"insufficient_scope\", "
				       "realm=\"a\\\"b\\\\c\\d\", charset=UTF-8, scope=\"s,t\"",
				       &w),
			 0);
	assert_string_equal(w.realm, "a\"b\\cd");
	assert_string_equal(w.scope, "s,t");
	assert_int_equal(wwwauth_parse("Bearer realm=\"\"", &w), 0);
	assert_string_equal(w.realm, "");
}

static void test_first_challenge_only(void **state)
{
	struct wwwauth w;

	(void)state;
	assert_int_equal(
	    wwwauth_parse("Bearer realm=\"r1\", service=\"s1\", Basic realm=\"r2\"", &w), 0);
	assert_string_equal(w.scheme, "Bearer");
	assert_string_equal(w.realm, "r1");
	assert_string_equal(w.service, "s1");
	assert_int_equal(wwwauth_parse("Basic realm=\"r2\", Bearer realm=\"r1\"", &w), 0);
	assert_string_equal(w.scheme, "Basic");
	assert_string_equal(w.realm, "r2");
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "   ",
	    "=x",
	    "Bearer realm=\"unterminated",
	    "Bearer realm=\"ends in backslash\\",
	    "Bearer realm=",
	    "Bearer realm=\"a\" service=\"b\"", /* no comma */
	    "Bearer realm=\"a\"x",
	    "Bearer,realm=\"a\"",
	    "Bearer realm=\"a\nb\"",
	    "Bearer realm=\"a\x7f\"",
	    "Be(arer realm=\"a\"",
	    "Bearerrrrrrrrrrrrrr realm=\"a\"",
	};
	struct wwwauth w;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (wwwauth_parse(bad[i], &w) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_int_equal(wwwauth_parse(NULL, &w), -1);
}

/* A value that fills its field exactly fits; one byte more does not. */
static void test_bounds(void **state)
{
	struct wwwauth w;
	char *hdr = malloc(2000);
	const size_t realm = sizeof(w.realm) - 1;

	(void)state;
	assert_non_null(hdr);
	memcpy(hdr, "Bearer realm=\"", 14);
	memset(hdr + 14, 'r', realm);
	memcpy(hdr + 14 + realm, "\"", 2);
	assert_int_equal(wwwauth_parse(hdr, &w), 0);
	assert_int_equal(strlen(w.realm), realm);
	memset(hdr + 14, 'r', realm + 1);
	memcpy(hdr + 14 + realm + 1, "\"", 2);
	assert_int_equal(wwwauth_parse(hdr, &w), -1);
	/* Unknown parameters are not stored, so they have no bound of ours. */
	memcpy(hdr, "Bearer other=\"", 14);
	memset(hdr + 14, 'o', 1500);
	memcpy(hdr + 14 + 1500, "\",realm=x", 10);
	assert_int_equal(wwwauth_parse(hdr, &w), 0);
	assert_string_equal(w.realm, "x");
	free(hdr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_docker_hub),
	    cmocka_unit_test(test_ghcr_spacing_and_case),
	    cmocka_unit_test(test_basic_and_bare),
	    cmocka_unit_test(test_escapes_and_unknown),
	    cmocka_unit_test(test_first_challenge_only),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
