/* realm: which token realms may get an upstream's credentials, and the token request's URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

static int allowed(const char *up, char *const *list, const char *realm)
{
	char why[256] = "";
	int ok = realm_allowed(up, list, realm, why, sizeof(why));

	assert_true(ok ? why[0] == '\0' : why[0] != '\0'); /* a refusal always says why */
	return ok;
}

static void test_own_host(void **state)
{
	(void)state;
	assert_true(allowed("http://127.0.0.1:5001", NULL, "http://127.0.0.1:5001/token"));
	assert_true(allowed("https://ghcr.io", NULL, "https://ghcr.io/token?x=1"));
	assert_true(allowed("https://ghcr.io", NULL, "https://GHCR.io:443/token"));
	/* an https:// realm on an http:// upstream's host:port only adds TLS */
	assert_true(allowed("http://r.test:8080", NULL, "https://r.test:8080/token"));
}

static void test_elsewhere(void **state)
{
	char why[256];

	(void)state;
	assert_false(allowed("http://127.0.0.1:5001", NULL, "http://127.0.0.1:5002/token"));
	assert_false(allowed("http://127.0.0.1:5001", NULL, "http://localhost:5001/token"));
	assert_false(allowed("https://ghcr.io", NULL, "https://ghcr.io:8443/token"));
	assert_false(allowed("https://ghcr.io", NULL, "https://ghcr.io.evil.test/token"));
	/* userinfo: the host is what follows the @ */
	assert_false(allowed("https://ghcr.io", NULL, "https://ghcr.io@evil.test/token"));
	assert_false(allowed("https://ghcr.io", NULL, "/token"));
	assert_false(allowed("https://ghcr.io", NULL, "ftp://ghcr.io/token"));
	assert_false(allowed("https://ghcr.io", NULL, ""));
	assert_int_equal(realm_allowed("http://127.0.0.1:5001", NULL, "http://127.0.0.1:5002/t",
				       why, sizeof(why)),
			 0);
	assert_string_equal(
	    why, "realm http://127.0.0.1:5002 is not the upstream's and not in auth_realms");
}

static void test_plain_http(void **state)
{
	char *list[] = {"http://ghcr.io/token", NULL};
	char why[256];

	(void)state;
	assert_false(allowed("https://ghcr.io", NULL, "http://ghcr.io/token"));
	assert_false(allowed("https://ghcr.io", NULL, "http://ghcr.io:443/token"));
	assert_false(allowed("https://ghcr.io", list, "http://ghcr.io/token")); /* listed or not */
	assert_int_equal(
	    realm_allowed("https://ghcr.io", NULL, "http://ghcr.io/t", why, sizeof(why)), 0);
	assert_string_equal(why, "plain http:// realm ghcr.io:80 for an https:// upstream");
}

static void test_listed(void **state)
{
	char *hub[] = {"https://auth.docker.io/token", NULL};
	char *two[] = {"https://a.test", "http://b.test:81/t/", NULL};

	(void)state;
	assert_true(allowed("https://registry-1.docker.io", hub, "https://auth.docker.io/token"));
	assert_true(
	    allowed("https://registry-1.docker.io", hub, "https://auth.docker.io/token?service=x"));
	assert_true(
	    allowed("https://registry-1.docker.io", hub, "https://auth.docker.io/token/v2"));
	assert_false(allowed("https://registry-1.docker.io", hub, "https://auth.docker.io/tokens"));
	assert_false(allowed("https://registry-1.docker.io", hub, "https://auth.docker.io/"));
	assert_false(
	    allowed("https://registry-1.docker.io", hub, "https://auth.docker.io:444/token"));
	assert_false(allowed("https://registry-1.docker.io", hub, "https://evil.test/token"));
	/* a host entry covers all its paths; scheme and port must match the entry's */
	assert_true(allowed("http://r.test", two, "https://a.test/anything"));
	assert_false(allowed("http://r.test", two, "http://a.test/anything"));
	assert_true(allowed("http://r.test", two, "http://b.test:81/t"));
	assert_true(allowed("http://r.test", two, "http://b.test:81/t/x"));
	assert_false(allowed("http://r.test", two, "http://b.test/t"));
}

static void test_entry_check(void **state)
{
	char why[128];

	(void)state;
	assert_int_equal(
	    realm_entry_check("https://r.test", "https://auth.test/token", why, sizeof(why)), 0);
	assert_int_equal(
	    realm_entry_check("http://r.test", "http://auth.test/token", why, sizeof(why)), 0);
	assert_int_equal(
	    realm_entry_check("https://r.test", "http://auth.test/token", why, sizeof(why)), -1);
	assert_string_equal(why, "a plain http:// realm for an https:// upstream");
	assert_int_equal(realm_entry_check("https://r.test", "auth.test", why, sizeof(why)), -1);
	assert_string_equal(why, "expected an http:// or https:// URL");
}

static void test_token_url(void **state)
{
	char *url;

	(void)state;
	url = realm_token_url("https://auth.docker.io/token", "registry.docker.io",
			      "repository:library/busybox:pull");
	assert_non_null(url);
	assert_string_equal(url, "https://auth.docker.io/token?service=registry.docker.io&"
				 "scope=repository%3alibrary%2fbusybox%3apull");
	free(url);
	/* the realm's own query is kept; its user:password@ and fragment are not */
	url = realm_token_url("https://u:p@a.test/t?x=1#f", "", "a b&c=d");
	assert_non_null(url);
	assert_string_equal(url, "https://a.test/t?x=1&service=&scope=a+b%26c%3dd");
	free(url);
	assert_null(realm_token_url("/token", "s", "x"));
	assert_null(realm_token_url("ftp://a.test/t", "s", "x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_own_host),	cmocka_unit_test(test_elsewhere),
	    cmocka_unit_test(test_plain_http),	cmocka_unit_test(test_listed),
	    cmocka_unit_test(test_entry_check), cmocka_unit_test(test_token_url),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
