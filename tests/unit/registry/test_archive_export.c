/* archive_export: image names as docker save writes them, and v1 layer ids chained so that
 * images sharing a base share its ids but never their top. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "archive_export.c"

#define L1 "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define L2 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void assert_familiar(const char *ref, const char *want)
{
	struct image_ref r;
	char err[128], out[512];

	assert_int_equal(ref_parse(ref, &r, err, sizeof(err)), 0);
	familiar_name(&r, out, sizeof(out));
	assert_string_equal(out, want);
}

static void test_familiar_name(void **state)
{
	(void)state;
	assert_familiar("busybox", "busybox:latest");
	assert_familiar("docker.io/library/redis:7", "redis:7");
	assert_familiar("docker.io/org/app:1", "org/app:1");
	assert_familiar("ghcr.io/org/app:1.2", "ghcr.io/org/app:1.2");
	assert_familiar("127.0.0.1:5001/library/x:1", "127.0.0.1:5001/library/x:1");
}

static void test_v1_id(void **state)
{
	char a[DIGEST_HEX_LEN + 1], b[DIGEST_HEX_LEN + 1], top1[DIGEST_HEX_LEN + 1],
	    top2[DIGEST_HEX_LEN + 1];

	(void)state;
	v1_id("", L1, NULL, a);
	v1_id("", L1, NULL, b);
	assert_int_equal(strlen(a), DIGEST_HEX_LEN);
	assert_string_equal(a, b);
	v1_id(a, L2, L1, top1);
	v1_id(a, L2, L2, top2);
	assert_string_not_equal(top1, top2);
	v1_id("", L2, NULL, b);
	assert_string_not_equal(a, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_familiar_name),
	    cmocka_unit_test(test_v1_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
