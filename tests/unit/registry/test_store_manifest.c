/* store_manifest_open: a small manifest comes in memory (and from the memo after), a large one
 * as its open file at the offset past the media type's line, never read into memory; absent
 * and corrupt files are refused. */
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

#include "registry.h"

#define MT "application/vnd.oci.image.manifest.v1+json"

struct fixture {
	char dir[64];
	char root[96];
	struct store s;
	char err[256];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ms-test-store-manifest.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->root, sizeof(f->root), "%s/root", f->dir);
	if (store_open(&f->s, f->root, f->err, sizeof(f->err)) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	store_close(&f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* A JSON manifest of about LEN bytes, stored; its digest into digest. Returns the bytes. */
static char *put(struct fixture *f, size_t len, char digest[DIGEST_STR_SIZE])
{
	char *doc = malloc(len + 1);

	assert_non_null(doc);
	memset(doc, 'x', len);
	memcpy(doc, "{\"pad\":\"", 8);
	memcpy(doc + len - 2, "\"}", 2);
	doc[len] = '\0';
	assert_int_equal(digest_buffer(doc, len, digest), 0);
	assert_int_equal(
	    store_manifest_put(&f->s, digest, doc, len, MT, NULL, NULL, f->err, sizeof(f->err)), 0);
	return doc;
}

static void small_in_memory(void **state)
{
	struct fixture *f = *state;
	char digest[DIGEST_STR_SIZE], *doc = put(f, 1000, digest);
	struct store_manifest m;

	for (int i = 0; i < 2; i++) { /* read, then from the memo */
		assert_int_equal(store_manifest_open(&f->s, digest, MEMO_MAX_BYTES, &m), 0);
		assert_int_equal(m.fd, -1);
		assert_non_null(m.data);
		assert_int_equal(m.len, 1000);
		assert_memory_equal(m.data, doc, 1000);
		assert_string_equal(m.type, MT);
		store_manifest_close(&m);
		assert_null(m.data);
	}
	free(doc);
}

static void large_as_file(void **state)
{
	struct fixture *f = *state;
	size_t len = MEMO_MAX_BYTES * 4;
	char digest[DIGEST_STR_SIZE], *doc = put(f, len, digest), *back = malloc(len);
	struct store_manifest m;

	assert_non_null(back);
	assert_int_equal(store_manifest_open(&f->s, digest, MEMO_MAX_BYTES, &m), 0);
	assert_null(m.data);
	assert_true(m.fd >= 0);
	assert_int_equal(m.len, len);
	assert_int_equal(m.body_at, strlen(MT) + 1);
	assert_string_equal(m.type, MT);
	assert_int_equal(pread(m.fd, back, len, m.body_at), (ssize_t)len);
	assert_memory_equal(back, doc, len);
	store_manifest_close(&m);
	assert_int_equal(m.fd, -1);
	/* The same manifest, for a caller that may copy more: in memory. */
	assert_int_equal(store_manifest_open(&f->s, digest, MANIFEST_MAX_BYTES, &m), 0);
	assert_int_equal(m.fd, -1);
	assert_memory_equal(m.data, doc, len);
	store_manifest_close(&m);
	free(back);
	free(doc);
}

static void absent_and_invalid(void **state)
{
	struct fixture *f = *state;
	struct store_manifest m;

	assert_int_equal(store_manifest_open(&f->s,
					     "sha256:0000000000000000000000000000000000000000000000"
					     "000000000000000000",
					     MEMO_MAX_BYTES, &m),
			 -1);
	assert_int_equal(m.fd, -1);
	assert_null(m.data);
	assert_int_equal(store_manifest_open(&f->s, "sha256:../../etc", MEMO_MAX_BYTES, &m), -1);
	assert_int_equal(errno, EINVAL);
}

/* A large file whose first line is no media type is not the store's: refused, and removed. */
static void corrupt_head(void **state)
{
	struct fixture *f = *state;
	size_t len = MEMO_MAX_BYTES * 2;
	char digest[DIGEST_STR_SIZE], *doc = put(f, len, digest), path[256];
	struct store_manifest m;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/manifests/sha256/%.2s/%s", f->root, digest_hex(digest),
		 digest_hex(digest));
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(doc, 1, len, fp), len); /* no "<media type>\n" first */
	fclose(fp);
	assert_int_equal(store_manifest_open(&f->s, digest, MEMO_MAX_BYTES, &m), -1);
	assert_int_equal(m.fd, -1);
	assert_int_equal(access(path, F_OK), -1);
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(small_in_memory, setup, teardown),
	    cmocka_unit_test_setup_teardown(large_as_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(absent_and_invalid, setup, teardown),
	    cmocka_unit_test_setup_teardown(corrupt_head, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
