/* ref: repository names, tags and registry hosts against the Distribution grammar. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ref.h"

#define DIGEST64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int name_ok(const char *s)
{
	return ref_name_valid(s, strlen(s));
}

static void test_name_valid(void **state)
{
	static const char *const good[] = {
	    "a",
	    "busybox",
	    "library/busybox",
	    "a/b/c/d",
	    "a.b",
	    "a_b",
	    "a__b",
	    "a-b",
	    "a--b",
	    "a---b",
	    "0",
	    "9a/b0",
	    "foo.bar/baz-qux_1",
	    "localhost.x/y",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!name_ok(good[i]))
			fail_msg("rejected \"%s\"", good[i]);
	}
}

static void test_name_invalid(void **state)
{
	static const char *const bad[] = {
	    "",	    "A",     "Library/busybox",
	    "../x", "x/..",  "a/../b",
	    "./a",  "a//b",  "/a",
	    "a/",   "a__b_", "a___b",
	    "a_.b", "a._b",  "-a",
	    "a-",   ".a",    "a.",
	    "_a",   "a..b",  "a b",
	    "a:b",  "a@b",   "a\\b",
	    "a/-b", "a/.b/", "a/b\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (name_ok(bad[i]))
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_false(ref_name_valid(NULL, 0));
}

static void test_name_length(void **state)
{
	char name[300];

	(void)state;
	memset(name, 'a', sizeof(name));
	assert_true(ref_name_valid(name, 255));
	assert_false(ref_name_valid(name, 256));
	/* len bounds the scan: "ab" followed by garbage is valid at len 2. */
	assert_true(ref_name_valid("ab/../x", 2));
	assert_false(ref_name_valid("ab/../x", 3));
	/* An embedded NUL is not a name character. */
	assert_false(ref_name_valid("a\0b", 3));
}

static void test_tag(void **state)
{
	char tag[200];

	(void)state;
	assert_true(ref_tag_valid("latest"));
	assert_true(ref_tag_valid("_x"));
	assert_true(ref_tag_valid("1.36.1-musl"));
	assert_true(ref_tag_valid("A_b.C-d"));
	assert_false(ref_tag_valid(""));
	assert_false(ref_tag_valid(NULL));
	assert_false(ref_tag_valid(".hidden"));
	assert_false(ref_tag_valid(".."));
	assert_false(ref_tag_valid("-x"));
	assert_false(ref_tag_valid("a/b"));
	assert_false(ref_tag_valid("a:b"));
	assert_false(ref_tag_valid("a b"));
	memset(tag, 'a', sizeof(tag));
	tag[128] = '\0';
	assert_true(ref_tag_valid(tag));
	tag[128] = 'a';
	tag[129] = '\0';
	assert_false(ref_tag_valid(tag));
}

static void test_host_valid(void **state)
{
	static const char *const good[] = {
	    "docker.io", "registry-1.docker.io", "localhost",	      "localhost:5000",
	    "127.0.0.1", "127.0.0.1:1",		 "Ghcr.IO",	      "a:65535",
	    "[::1]",	 "[::1]:5001",		 "[2001:db8::1]:443", "x--y.z",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!ref_host_valid(good[i]))
			fail_msg("rejected \"%s\"", good[i]);
	}
}

static void test_host_invalid(void **state)
{
	static const char *const bad[] = {
	    "",		"-a.io", "a-.io", "a..io",	 ".io",		"io.",	 "a_b.io",
	    "a/b",	"..",	 "a:0",	  "a:65536",	 "a:",		"a:+80", "a:123456",
	    "a:80:80",	"a:8 0", "[::1",  "[::1]x",	 "[::1]:0",	"[]",	 "[zz::1]",
	    "[::1%lo]", "::1",	 "a b",	  "[127.0.0.1]", "docker.io/x",
	};
	char big[300];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ref_host_valid(bad[i]))
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_false(ref_host_valid(NULL));
	memset(big, 'a', 64);
	big[64] = '\0';
	assert_false(ref_host_valid(big)); /* a label of 64 */
	big[63] = '\0';
	assert_true(ref_host_valid(big));
	for (size_t i = 0; i < 299; i++)
		big[i] = i % 2 ? '.' : 'a';
	big[299] = '\0';
	assert_false(ref_host_valid(big)); /* over 253 */
}

static void expect_ref(const char *in, const char *canonical)
{
	struct image_ref r;
	char err[128], out[512];

	assert_int_equal(ref_parse(in, &r, err, sizeof(err)), 0);
	assert_int_equal(ref_format(&r, out, sizeof(out)), 0);
	assert_string_equal(out, canonical);
}

static void test_image_ref_normalised(void **state)
{
	(void)state;
	expect_ref("busybox", "docker.io/library/busybox:latest");
	expect_ref("library/redis:7", "docker.io/library/redis:7");
	expect_ref("org/app", "docker.io/org/app:latest");
	expect_ref("index.docker.io/library/busybox:1", "docker.io/library/busybox:1");
	expect_ref("ghcr.io/org/app:1.2", "ghcr.io/org/app:1.2");
	expect_ref("localhost/app", "localhost/app:latest");
	expect_ref("127.0.0.1:5001/library/x:1", "127.0.0.1:5001/library/x:1");
	expect_ref("127.0.0.1:5001/x", "127.0.0.1:5001/x:latest");
	expect_ref("busybox@sha256:" DIGEST64, "docker.io/library/busybox@sha256:" DIGEST64);
	expect_ref("busybox:1@sha256:" DIGEST64, "docker.io/library/busybox:1@sha256:" DIGEST64);
}

static void test_image_ref_invalid(void **state)
{
	static const char *const bad[] = {
	    "",		"Busybox",  "busybox:",	  "busybox:-x", "a//b",	 "busybox@sha256:abc",
	    "ghcr.io/", "/busybox", "ghcr..io/x", "busybox@",	"x/../y"};
	struct image_ref r;
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(ref_parse(bad[i], &r, err, sizeof(err)), -1);
		assert_true(err[0] != '\0');
	}
	assert_string_equal(ref_reference(&(struct image_ref){.tag = "1", .digest = ""}), "1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name_valid),		 cmocka_unit_test(test_name_invalid),
	    cmocka_unit_test(test_name_length),		 cmocka_unit_test(test_tag),
	    cmocka_unit_test(test_host_valid),		 cmocka_unit_test(test_host_invalid),
	    cmocka_unit_test(test_image_ref_normalised), cmocka_unit_test(test_image_ref_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
