/* archive_import: archive paths cleaned as tar would extract them, names that are digests,
 * duplicate members (the later one counts) and links followed, but never out of the archive. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "archive_import.c"

#define HEX "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void assert_clean(const char *dir, const char *path, const char *want)
{
	char out[ARCHIVE_PATH_MAX];

	assert_int_equal(import_path_clean(dir, path, out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

static void test_path_clean(void **state)
{
	char out[ARCHIVE_PATH_MAX], small[8];

	(void)state;
	assert_clean("", "manifest.json", "manifest.json");
	assert_clean("", "./manifest.json", "manifest.json");
	assert_clean("", "/blobs//sha256/./x", "blobs/sha256/x");
	assert_clean("abc", "../" HEX ".tar", HEX ".tar");
	assert_clean("a/b", "../c/./d", "a/c/d");
	assert_clean("a/b", "/top", "top");
	assert_int_equal(import_path_clean("", "..", out, sizeof(out)), -1);
	assert_int_equal(import_path_clean("a", "../../etc/passwd", out, sizeof(out)), -1);
	assert_int_equal(import_path_clean("", "./", out, sizeof(out)), -1);
	assert_int_equal(import_path_clean("", "", out, sizeof(out)), -1);
	assert_int_equal(import_path_clean("", "abcdefghij", small, sizeof(small)), -1);
}

static void test_name_digest(void **state)
{
	char d[DIGEST_STR_SIZE];

	(void)state;
	assert_int_equal(name_digest("blobs/sha256/" HEX, d), 1);
	assert_string_equal(d, "sha256:" HEX);
	assert_int_equal(name_digest(HEX ".json", d), 1);
	assert_int_equal(name_digest(HEX ".tar", d), 1);
	assert_string_equal(d, "sha256:" HEX);
	/* legacy layer directories are v1 ids, not digests */
	assert_int_equal(name_digest(HEX "/layer.tar", d), 0);
	assert_int_equal(name_digest("blobs/sha256/" HEX "0", d), 0);
	assert_int_equal(name_digest("blobs/sha512/" HEX, d), 0);
	assert_int_equal(name_digest("manifest.json", d), 0);
	assert_int_equal(
	    name_digest("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD.tar", d),
	    0);
}

static void add(struct import *im, const char *name, const char *target, long long size)
{
	struct entry *e = import_entry_add(im, name);

	assert_non_null(e);
	e->size = size;
	if (target)
		e->target = strdup(target);
}

static void test_entries(void **state)
{
	struct import im = {.file = "t.tar"};

	(void)state;
	add(&im, "b/layer.tar", "a.tar", 0);
	add(&im, "a.tar", NULL, 1);
	add(&im, "loop1", "loop2", 0);
	add(&im, "loop2", "loop1", 0);
	add(&im, "a.tar", NULL, 2); /* a second member of that name: this one counts */
	add(&im, "dangling", "nothere", 0);
	import_entries_index(&im);
	assert_int_equal(im.nentries, 5);
	assert_non_null(import_entry(&im, "a.tar"));
	assert_int_equal(import_entry(&im, "a.tar")->size, 2);
	assert_ptr_equal(import_entry(&im, "b/layer.tar"), import_entry(&im, "a.tar"));
	assert_ptr_equal(import_entry_path(&im, "./b/../b/layer.tar"), import_entry(&im, "a.tar"));
	assert_null(import_entry(&im, "loop1"));
	assert_null(import_entry(&im, "dangling"));
	assert_null(import_entry(&im, "c"));
	assert_null(import_entry_path(&im, "../a.tar"));
	import_free(&im);
}

static void test_entries_bounded(void **state)
{
	struct import im = {.file = "t.tar"};
	char name[32];

	(void)state;
	for (int i = 0; i < ENTRIES_MAX; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		if (!import_entry_add(&im, name))
			fail_msg("entry %d refused", i);
	}
	assert_null(import_entry_add(&im, "one-too-many"));
	assert_string_equal(im.err, "more than 65536 members");
	import_free(&im);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_path_clean),
	    cmocka_unit_test(test_name_digest),
	    cmocka_unit_test(test_entries),
	    cmocka_unit_test(test_entries_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
