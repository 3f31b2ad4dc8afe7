/* httpd's pool of request buffers: a buffer given back is the next one lent (no malloc for a
 * warm request), no more than HTTPD_SPARE_BUFS are kept, the arena has the size asked for, and
 * under AddressSanitizer a spare cannot be touched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sanitizer/asan_interface.h>
#include <string.h>

#include "httpd_internal.h"

#define ARENA 100

static void test_reuse(void **state)
{
	struct httpd_buf_pool p;
	struct httpd_buf *a, *b;

	(void)state;
	httpd_buf_pool_init(&p, ARENA);
	a = httpd_buf_get(&p);
	assert_non_null(a);
	memset(a->arena, 'x', ARENA); /* the whole arena is there */
	memset(a->in, 'x', sizeof(a->in));
	httpd_buf_put(&p, a);
	assert_int_equal(p.nspares, 1);
	b = httpd_buf_get(&p);
	assert_ptr_equal(a, b); /* the spare, not a new one */
	assert_int_equal(p.nspares, 0);
	httpd_buf_put(&p, b);
	httpd_buf_pool_free(&p);
	assert_int_equal(p.nspares, 0);
	assert_null(SLIST_FIRST(&p.spares));
}

static void test_bounded(void **state)
{
	struct httpd_buf_pool p;
	struct httpd_buf *b[HTTPD_SPARE_BUFS + 5];
	size_t i, n = sizeof(b) / sizeof(b[0]);

	(void)state;
	httpd_buf_pool_init(&p, ARENA);
	for (i = 0; i < n; i++) {
		b[i] = httpd_buf_get(&p);
		assert_non_null(b[i]);
		for (size_t j = 0; j < i; j++)
			assert_ptr_not_equal(b[i], b[j]); /* each holder its own */
	}
	for (i = 0; i < n; i++)
		httpd_buf_put(&p, b[i]);
	assert_int_equal(p.nspares, HTTPD_SPARE_BUFS); /* the rest were freed */
	httpd_buf_pool_free(&p);
	assert_int_equal(p.nspares, 0);
}

static void test_spare_poisoned(void **state)
{
#if defined(__SANITIZE_ADDRESS__)
	struct httpd_buf_pool p;
	struct httpd_buf *b;

	(void)state;
	httpd_buf_pool_init(&p, ARENA);
	b = httpd_buf_get(&p);
	assert_false(__asan_address_is_poisoned(b->in));
	httpd_buf_put(&p, b);
	assert_true(__asan_address_is_poisoned(b->in));
	assert_true(__asan_address_is_poisoned(b->arena + ARENA - 1));
	assert_false(__asan_address_is_poisoned(&b->spare)); /* the pool's own link */
	assert_ptr_equal(httpd_buf_get(&p), b);
	assert_false(__asan_address_is_poisoned(b->arena + ARENA - 1));
	httpd_buf_put(&p, b);
	httpd_buf_pool_free(&p);
#else
	(void)state;
	skip(); /* only AddressSanitizer poisons */
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reuse),
	    cmocka_unit_test(test_bounded),
	    cmocka_unit_test(test_spare_poisoned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
