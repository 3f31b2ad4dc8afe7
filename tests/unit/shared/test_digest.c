/* digest: the OCI digest grammar and SHA-256 against known vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "digest.h"

#define HEX64 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define EMPTY_SHA256 "sha256:" HEX64

static void test_check_valid(void **state)
{
	(void)state;
	assert_int_equal(digest_check(EMPTY_SHA256), 0);
	assert_string_equal(digest_hex(EMPTY_SHA256), HEX64);
}

static void test_check_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "sha256",
	    "sha256:",
	    ":" HEX64,
	    "SHA256:" HEX64,
	    "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
	    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
	    "sha256:" HEX64 "5",
	    "sha256:" HEX64 "/",
	    "sha256:../../etc/passwd",
	    "../" HEX64,
	    "sha256:" HEX64 "\n",
	    "sha256 :" HEX64,
	    "sha256::" HEX64,
	    "sha256+:abc",
	    "+sha256:abc",
	    "sha__256:abc",
	    "sha256:abc:def",
	    "sha512:abc",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (digest_check(bad[i]) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_int_equal(digest_check(NULL), -1);
}

static void test_check_unsupported(void **state)
{
	char sha512[7 + 128 + 1];

	(void)state;
	memcpy(sha512, "sha512:", 7);
	memset(sha512 + 7, 'a', 128);
	sha512[7 + 128] = '\0';
	assert_int_equal(digest_check(sha512), -2);
	sha512[7] = 'A'; /* upper-case hex is malformed for sha512 too */
	assert_int_equal(digest_check(sha512), -1);
	assert_int_equal(
	    digest_check("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"), -2);
	assert_int_equal(digest_check("sha256.v2:abc_DEF="), -2);
}

static void test_check_length_bound(void **state)
{
	char big[400];

	(void)state;
	memcpy(big, "foo:", 4);
	memset(big + 4, 'a', 200);
	big[204] = '\0';
	assert_int_equal(digest_check(big), -2);
	memset(big + 4, 'a', sizeof(big) - 5);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(digest_check(big), -1);
}

static void test_buffer_vectors(void **state)
{
	char out[DIGEST_STR_SIZE];

	(void)state;
	assert_int_equal(digest_buffer("", 0, out), 0);
	assert_string_equal(out, EMPTY_SHA256);
	assert_int_equal(digest_buffer("abc", 3, out), 0);
	assert_string_equal(
	    out, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_streaming_matches_one_shot(void **state)
{
	struct digest_ctx *ctx = digest_new();
	char a[DIGEST_STR_SIZE], b[DIGEST_STR_SIZE];
	static const char msg[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

	(void)state;
	assert_non_null(ctx);
	assert_int_equal(digest_update(ctx, "garbage", 7), 0);
	assert_int_equal(digest_reset(ctx), 0);
	for (size_t i = 0; i < sizeof(msg) - 1; i += 5) {
		size_t n = sizeof(msg) - 1 - i < 5 ? sizeof(msg) - 1 - i : 5;
		assert_int_equal(digest_update(ctx, msg + i, n), 0);
	}
	assert_int_equal(digest_final(ctx, a), 0);
	assert_int_equal(digest_buffer(msg, sizeof(msg) - 1, b), 0);
	assert_string_equal(a, b);
	assert_string_equal(
	    a, "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	assert_int_equal(digest_check(a), 0);
	digest_free(ctx);
	digest_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_valid),
	    cmocka_unit_test(test_check_malformed),
	    cmocka_unit_test(test_check_unsupported),
	    cmocka_unit_test(test_check_length_bound),
	    cmocka_unit_test(test_buffer_vectors),
	    cmocka_unit_test(test_streaming_matches_one_shot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
