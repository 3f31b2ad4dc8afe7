/* memo: exact keys only, the latest value per key, nothing too large, stamps kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "registry.h"

static void test_empty(void **state)
{
	size_t len;
	double stamp;

	(void)state;
	assert_null(memo_get(NULL, "a", &len, &stamp));
	memo_free(NULL);
}

static void test_put_get_replace(void **state)
{
	struct memo *m = NULL;
	const char *v;
	size_t len;
	double stamp;

	(void)state;
	memo_put(&m, "/store/tags/x", "one", 3, 1.5);
	assert_non_null(m);
	v = memo_get(m, "/store/tags/x", &len, &stamp);
	assert_non_null(v);
	assert_int_equal(len, 3);
	assert_string_equal(v, "one"); /* NUL-terminated */
	assert_true(stamp == 1.5);
	assert_null(memo_get(m, "/store/tags/y", &len, &stamp));
	assert_null(memo_get(m, "/store/tags/", &len, &stamp));
	memo_put(&m, "/store/tags/x", "two!", 4, 2.5);
	v = memo_get(m, "/store/tags/x", &len, &stamp);
	assert_int_equal(len, 4);
	assert_string_equal(v, "two!");
	assert_true(stamp == 2.5);
	memo_free(m);
}

/* Many keys share slots: each get answers its own key's value or nothing, never another's. */
static void test_collisions(void **state)
{
	struct memo *m = NULL;
	char key[32], val[32];
	const char *v;
	size_t len;
	double stamp;
	int found = 0;

	(void)state;
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		snprintf(val, sizeof(val), "v%d", i);
		memo_put(&m, key, val, strlen(val), i);
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		snprintf(val, sizeof(val), "v%d", i);
		v = memo_get(m, key, &len, &stamp);
		if (!v)
			continue;
		found++;
		assert_string_equal(v, val);
		assert_true(stamp == i);
	}
	assert_true(found > 0 && found <= 1000);
	assert_non_null(memo_get(m, "k999", &len, &stamp)); /* the last put is always there */
	memo_free(m);
}

static void test_too_large_not_kept(void **state)
{
	static char big[64 * 1024];
	struct memo *m = NULL;
	size_t len;
	double stamp;

	(void)state;
	memo_put(&m, "big", big, sizeof(big), 0);
	assert_null(memo_get(m, "big", &len, &stamp));
	memo_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_put_get_replace),
	    cmocka_unit_test(test_collisions),
	    cmocka_unit_test(test_too_large_not_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
