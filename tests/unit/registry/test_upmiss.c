/* upmiss: a miss is remembered until its TTL ends, the newest answer wins, and the cache holds
 * at most its bound, dropping the oldest first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "registry.h"

static void test_remembered_until_ttl(void **state)
{
	struct upmiss *m = upmiss_new(16);

	(void)state;
	assert_non_null(m);
	assert_int_equal(upmiss_get(m, "http://u/v2/a/manifests/x\n", 10.0), 0);
	upmiss_put(m, "http://u/v2/a/manifests/x\n", 404, 10.0, 5.0);
	assert_int_equal(upmiss_get(m, "http://u/v2/a/manifests/x\n", 10.0), 404);
	assert_int_equal(upmiss_get(m, "http://u/v2/a/manifests/x\n", 14.9), 404);
	/* the Accept is part of the key: another one is asked again */
	assert_int_equal(upmiss_get(m, "http://u/v2/a/manifests/x\napplication/json", 11.0), 0);
	assert_int_equal(upmiss_get(m, "http://u/v2/a/manifests/x\n", 15.0), 0);
	assert_int_equal(upmiss_count(m), 0); /* an expired entry is dropped when found */
	upmiss_free(m);
}

static void test_put_again(void **state)
{
	struct upmiss *m = upmiss_new(16);

	(void)state;
	upmiss_put(m, "k", 404, 0.0, 5.0);
	upmiss_put(m, "k", 401, 3.0, 5.0);
	assert_int_equal(upmiss_count(m), 1);
	assert_int_equal(upmiss_get(m, "k", 7.0), 401);
	assert_int_equal(upmiss_get(m, "k", 8.0), 0);
	upmiss_free(m);
}

static void test_bounded(void **state)
{
	struct upmiss *m = upmiss_new(100);
	char key[32];

	(void)state;
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		upmiss_put(m, key, 404, 1.0, 60.0);
	}
	assert_int_equal(upmiss_count(m), 100);
	assert_int_equal(upmiss_get(m, "key899", 2.0), 0); /* the oldest went */
	assert_int_equal(upmiss_get(m, "key900", 2.0), 404);
	assert_int_equal(upmiss_get(m, "key999", 2.0), 404);
	/* the expired ones go first, on the next put */
	upmiss_put(m, "late", 404, 100.0, 60.0);
	assert_int_equal(upmiss_count(m), 1);
	upmiss_free(m);
	upmiss_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_remembered_until_ttl),
	    cmocka_unit_test(test_put_again),
	    cmocka_unit_test(test_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
