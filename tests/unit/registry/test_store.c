/* store: verified blobs, manifests with media types, tags and tag lists, no litter on failure,
 * no path out of the root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry.h"

#define ABC_DIGEST "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define ABC_PATH "blobs/sha256/ba/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define EMPTY_DIGEST "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MT "application/vnd.oci.image.manifest.v1+json"

struct fixture {
	char dir[64];  /* the mkdtemp directory */
	char root[96]; /* the store's root inside it */
	struct store s;
	char err[256];
};

static int rm_rf(const char *path)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	return system(cmd);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ms-test-store.XXXXXX");
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

	store_close(&f->s);
	rm_rf(f->dir);
	free(f);
	return 0;
}

/* ROOT/REL, in a static buffer. */
static const char *at(struct fixture *f, const char *rel)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "%s/%s", f->root, rel);
	return buf;
}

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Entries in DIR besides "." and "..". */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

static void write_blob(struct fixture *f, struct store_tmp *t, const char *data)
{
	assert_int_equal(store_tmp_begin(&f->s, t), 0);
	assert_int_equal(count_entries(at(f, "tmp")), 1);
	for (const char *p = data; *p != '\0'; p++)
		assert_int_equal(store_tmp_write(t, p, 1), 0);
	assert_int_equal(t->written, (long long)strlen(data));
}

/* Verify, then commit: what the pull does once the last byte is in. */
static int commit(struct fixture *f, struct store_tmp *t, const char *digest, long long size)
{
	if (store_tmp_verify(t, digest, size, f->err, sizeof(f->err)) != 0)
		return -1;
	return store_tmp_commit_blob(&f->s, t, digest, f->err, sizeof(f->err));
}

static void test_open_layout_and_tmp_cleared(void **state)
{
	struct fixture *f = *state;
	static const char *const dirs[] = {"blobs/sha256", "manifests/sha256", "tags", "taglists",
					   "tmp"};
	FILE *fp;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		assert_true(exists(at(f, dirs[i])));
	/* Litter from a crash. */
	fp = fopen(at(f, "tmp/leftover"), "w");
	assert_non_null(fp);
	fclose(fp);
	store_close(&f->s);
	assert_int_equal(store_open(&f->s, f->root, f->err, sizeof(f->err)), 0);
	assert_int_equal(count_entries(at(f, "tmp")), 0);
}

static void test_open_fails_with_reason(void **state)
{
	struct fixture *f = *state;
	struct store s2;
	char root[128];
	FILE *fp;

	/* A regular file where the root's directory must go. */
	snprintf(root, sizeof(root), "%s/file", f->dir);
	fp = fopen(root, "w");
	assert_non_null(fp);
	fclose(fp);
	snprintf(root, sizeof(root), "%s/file/root", f->dir);
	assert_int_equal(store_open(&s2, root, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "cannot create"));
	assert_null(s2.root);
}

static void test_blob_commit_and_open(void **state)
{
	struct fixture *f = *state;
	struct store_tmp t;
	char buf[8] = {0};
	off_t size = -1;
	int fd;

	write_blob(f, &t, "abc");
	assert_int_equal(commit(f, &t, ABC_DIGEST, 3), 0);
	assert_int_equal(t.fd, -1);
	assert_true(exists(at(f, ABC_PATH)));
	assert_int_equal(count_entries(at(f, "tmp")), 0);
	fd = store_blob_open(&f->s, ABC_DIGEST, &size);
	assert_true(fd >= 0);
	assert_int_equal(size, 3);
	assert_int_equal(read(fd, buf, sizeof(buf)), 3);
	assert_string_equal(buf, "abc");
	close(fd);
	/* Size unchecked (-1), and the blob already there: a no-op success. */
	write_blob(f, &t, "abc");
	assert_int_equal(commit(f, &t, ABC_DIGEST, -1), 0);
	assert_int_equal(count_entries(at(f, "tmp")), 0);
	store_tmp_abort(&t); /* harmless after a commit */
}

static void test_blob_digest_mismatch(void **state)
{
	struct fixture *f = *state;
	struct store_tmp t;
	off_t size;

	write_blob(f, &t, "abd");
	assert_int_equal(commit(f, &t, ABC_DIGEST, 3), -1);
	assert_string_equal(f->err,
			    "digest mismatch: expected " ABC_DIGEST ", got sha256:"
			    "a52d159f262b2c6ddb724a61840befc36eb30c88877a4030b65cbe86298449c9");
	assert_false(exists(at(f, ABC_PATH)));
	assert_int_equal(count_entries(at(f, "tmp")), 0);
	assert_int_equal(store_blob_open(&f->s, ABC_DIGEST, &size), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_blob_size_mismatch(void **state)
{
	struct fixture *f = *state;
	struct store_tmp t;

	write_blob(f, &t, "abc");
	assert_int_equal(commit(f, &t, ABC_DIGEST, 4), -1);
	assert_string_equal(f->err, "size mismatch: expected 4, got 3");
	assert_false(exists(at(f, ABC_PATH)));
	assert_int_equal(count_entries(at(f, "tmp")), 0);

	write_blob(f, &t, "abc");
	assert_int_equal(commit(f, &t, "sha256:../../x", 3), -1);
	assert_string_equal(f->err, "invalid digest");
	assert_int_equal(count_entries(at(f, "tmp")), 0);
}

static void test_blob_abort_and_enospc(void **state)
{
	struct fixture *f = *state;
	struct store_tmp t;
	int full;

	write_blob(f, &t, "ab");
	store_tmp_abort(&t);
	assert_int_equal(count_entries(at(f, "tmp")), 0);
	store_tmp_abort(&t); /* twice is harmless */

	/* /dev/full answers every write with ENOSPC. */
	full = open("/dev/full", O_WRONLY | O_CLOEXEC);
	if (full < 0)
		skip();
	assert_int_equal(store_tmp_begin(&f->s, &t), 0);
	assert_true(dup2(full, t.fd) >= 0);
	close(full);
	errno = 0;
	assert_int_equal(store_tmp_write(&t, "abc", 3), -1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(t.on_disk, 0);
	store_tmp_abort(&t);
	assert_int_equal(count_entries(at(f, "tmp")), 0);
}

static void test_blob_open_rejects_bad_digests(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
	    "sha256:../../../etc/passwd",
	    "../" ABC_PATH,
	    "sha256:",
	    "",
	    "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
	};
	off_t size;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		assert_int_equal(store_blob_open(&f->s, bad[i], &size), -1);
		assert_int_equal(errno, EINVAL);
	}
	assert_int_equal(store_blob_open(&f->s, EMPTY_DIGEST, &size), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_manifest_put_get(void **state)
{
	struct fixture *f = *state;
	const char *m = "{\"schemaVersion\":2}";
	char digest[DIGEST_STR_SIZE], mt[MEDIA_TYPE_MAX];
	char path[160];
	char *data = NULL;
	size_t len = 0;

	assert_int_equal(digest_buffer(m, strlen(m), digest), 0);
	errno = 0;
	assert_int_equal(store_manifest_get(&f->s, digest, &data, &len, mt), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(
	    store_manifest_put(&f->s, digest, m, strlen(m), MT, NULL, NULL, f->err, sizeof(f->err)),
	    0);
	assert_int_equal(store_manifest_get(&f->s, digest, &data, &len, mt), 0);
	assert_int_equal(len, strlen(m));
	assert_memory_equal(data, m, len);
	assert_string_equal(mt, MT);
	free(data);
	snprintf(path, sizeof(path), "manifests/sha256/%.2s/%s", digest + 7, digest + 7);
	assert_true(exists(at(f, path)));
	/* Again, even with another media type: already present, a no-op. */
	assert_int_equal(store_manifest_put(&f->s, digest, m, strlen(m), "x/y", NULL, NULL, f->err,
					    sizeof(f->err)),
			 0);
	assert_int_equal(store_manifest_get(&f->s, digest, &data, &len, mt), 0);
	assert_string_equal(mt, MT);
	free(data);
	assert_int_equal(count_entries(at(f, "tmp")), 0);
}

static void test_manifest_put_rejects(void **state)
{
	struct fixture *f = *state;
	const char *m = "{}";
	char digest[DIGEST_STR_SIZE], longmt[MEDIA_TYPE_MAX + 1], mt[MEDIA_TYPE_MAX];
	char *big, *data;
	size_t len;

	assert_int_equal(digest_buffer(m, 2, digest), 0);
	assert_int_equal(
	    store_manifest_put(&f->s, ABC_DIGEST, m, 2, MT, NULL, NULL, f->err, sizeof(f->err)),
	    -1);
	assert_non_null(strstr(f->err, "digest mismatch: expected " ABC_DIGEST));
	assert_int_equal(
	    store_manifest_put(&f->s, "sha256:x", m, 2, MT, NULL, NULL, f->err, sizeof(f->err)),
	    -1);
	assert_string_equal(f->err, "invalid digest");
	assert_int_equal(
	    store_manifest_put(&f->s, digest, m, 2, "a b", NULL, NULL, f->err, sizeof(f->err)), -1);
	assert_string_equal(f->err, "invalid media type");
	assert_int_equal(
	    store_manifest_put(&f->s, digest, m, 2, "a\nb", NULL, NULL, f->err, sizeof(f->err)),
	    -1);
	assert_int_equal(
	    store_manifest_put(&f->s, digest, m, 2, "", NULL, NULL, f->err, sizeof(f->err)), -1);
	memset(longmt, 'a', MEDIA_TYPE_MAX);
	longmt[MEDIA_TYPE_MAX] = '\0';
	assert_int_equal(
	    store_manifest_put(&f->s, digest, m, 2, longmt, NULL, NULL, f->err, sizeof(f->err)),
	    -1);
	longmt[MEDIA_TYPE_MAX - 1] = '\0'; /* 127 characters: the longest that fits */
	assert_int_equal(
	    store_manifest_put(&f->s, digest, m, 2, longmt, NULL, NULL, f->err, sizeof(f->err)), 0);
	assert_int_equal(store_manifest_get(&f->s, digest, &data, &len, mt), 0);
	assert_string_equal(mt, longmt);
	assert_int_equal(len, 2);
	free(data);
	big = calloc(1, MANIFEST_MAX_BYTES + 1);
	assert_non_null(big);
	assert_int_equal(digest_buffer(big, MANIFEST_MAX_BYTES + 1, digest), 0);
	assert_int_equal(store_manifest_put(&f->s, digest, big, MANIFEST_MAX_BYTES + 1, MT, NULL,
					    NULL, f->err, sizeof(f->err)),
			 -1);
	assert_string_equal(f->err, "manifest too large");
	free(big);
	assert_int_equal(count_entries(at(f, "tmp")), 0);
}

static void test_manifest_corrupt_on_disk(void **state)
{
	struct fixture *f = *state;
	const char *m = "{\"a\":1}";
	char digest[DIGEST_STR_SIZE], mt[MEDIA_TYPE_MAX], path[160];
	char *data;
	size_t len;
	FILE *fp;

	assert_int_equal(digest_buffer(m, strlen(m), digest), 0);
	assert_int_equal(
	    store_manifest_put(&f->s, digest, m, strlen(m), MT, NULL, NULL, f->err, sizeof(f->err)),
	    0);
	snprintf(path, sizeof(path), "manifests/sha256/%.2s/%s", digest + 7, digest + 7);
	fp = fopen(at(f, path), "w");
	assert_non_null(fp);
	fputs(MT "\n{\"a\":2}", fp);
	fclose(fp);
	assert_int_equal(store_manifest_get(&f->s, digest, &data, &len, mt), -1);
	assert_int_equal(errno, EIO);
	assert_false(exists(at(f, path))); /* removed, so it is fetched again */
}

static void test_tags(void **state)
{
	struct fixture *f = *state;
	char digest[DIGEST_STR_SIZE];
	time_t at_time = 0;

	errno = 0;
	assert_int_equal(
	    store_tag_get(&f->s, "docker.io", "library/busybox", "latest", digest, &at_time), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(store_tag_put(&f->s, "docker.io", "library/busybox", "latest", ABC_DIGEST,
				       1764072000, NULL, NULL),
			 0);
	assert_true(exists(at(f, "tags/docker.io/library/busybox/_tags/latest")));
	assert_int_equal(
	    store_tag_get(&f->s, "docker.io", "library/busybox", "latest", digest, &at_time), 0);
	assert_string_equal(digest, ABC_DIGEST);
	assert_int_equal(at_time, 1764072000);
	/* A tag moves. */
	assert_int_equal(store_tag_put(&f->s, "docker.io", "library/busybox", "latest",
				       EMPTY_DIGEST, 1764072060, NULL, NULL),
			 0);
	assert_int_equal(
	    store_tag_get(&f->s, "docker.io", "library/busybox", "latest", digest, &at_time), 0);
	assert_string_equal(digest, EMPTY_DIGEST);
	assert_int_equal(at_time, 1764072060);
	assert_int_equal(
	    store_tag_put(&f->s, "127.0.0.1:5001", "a/b/c", "_v1.0", ABC_DIGEST, 5, NULL, NULL), 0);
	assert_true(exists(at(f, "tags/127.0.0.1:5001/a/b/c/_tags/_v1.0")));
	assert_int_equal(
	    store_tag_put(&f->s, "docker.io", "x", "t", "sha256:../../x", 5, NULL, NULL), -1);
	assert_int_equal(count_entries(at(f, "tmp")), 0);
}

static void test_tag_file_corrupt(void **state)
{
	struct fixture *f = *state;
	char digest[DIGEST_STR_SIZE];
	time_t t;
	FILE *fp;

	assert_int_equal(store_tag_put(&f->s, "docker.io", "x", "t", ABC_DIGEST, 5, NULL, NULL), 0);
	fp = fopen(at(f, "tags/docker.io/x/_tags/t"), "w");
	assert_non_null(fp);
	fputs("sha256:../../etc 5\n", fp);
	fclose(fp);
	usleep(1100 * 1000); /* past the memo of the tag just written */
	assert_int_equal(store_tag_get(&f->s, "docker.io", "x", "t", digest, &t), -1);
	assert_int_equal(errno, EIO);
}

/* A manifest once read is answered from memory, even if its file goes; a tag that another
 * process (import) moves is seen within a second. */
static void test_memo(void **state)
{
	struct fixture *f = *state;
	const char *m = "{\"memo\":1}";
	char digest[DIGEST_STR_SIZE], mt[MEDIA_TYPE_MAX], path[160], err[128];
	struct store other;
	char *data;
	size_t len;
	time_t t;

	assert_int_equal(digest_buffer(m, strlen(m), digest), 0);
	assert_int_equal(
	    store_manifest_put(&f->s, digest, m, strlen(m), MT, NULL, NULL, f->err, sizeof(f->err)),
	    0);
	assert_int_equal(store_manifest_get(&f->s, digest, &data, &len, mt), 0);
	free(data);
	snprintf(path, sizeof(path), "manifests/sha256/%.2s/%s", digest + 7, digest + 7);
	assert_int_equal(unlink(at(f, path)), 0);
	assert_int_equal(store_manifest_get(&f->s, digest, &data, &len, mt), 0);
	assert_int_equal(len, strlen(m));
	assert_memory_equal(data, m, len);
	assert_string_equal(mt, MT);
	free(data);

	assert_int_equal(store_tag_put(&f->s, "docker.io", "x", "t", ABC_DIGEST, 5, NULL, NULL), 0);
	assert_int_equal(store_open(&other, f->root, err, sizeof(err)), 0);
	assert_int_equal(store_tag_put(&other, "docker.io", "x", "t", EMPTY_DIGEST, 6, NULL, NULL),
			 0);
	store_close(&other);
	assert_int_equal(store_tag_get(&f->s, "docker.io", "x", "t", digest, &t), 0);
	assert_string_equal(digest, ABC_DIGEST); /* the memo, for up to a second */
	usleep(1100 * 1000);
	assert_int_equal(store_tag_get(&f->s, "docker.io", "x", "t", digest, &t), 0);
	assert_string_equal(digest, EMPTY_DIGEST);
	assert_int_equal(t, 6);
}

static void test_path_traversal(void **state)
{
	struct fixture *f = *state;
	static const char *const regs[] = {"..", "../x", "docker.io/..", "/etc", "a/b", ""};
	static const char *const repos[] = {
	    "..", "../x", "a/../../b", "/abs", "a//b", "A", "a/", "", "a/./b",
	};
	static const char *const tags[] = {"..", ".x", "a/b", "", "-x"};
	char digest[DIGEST_STR_SIZE], link[STORE_LINK_MAX];
	char *data;
	size_t len;
	time_t t;

	for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
		errno = 0;
		assert_int_equal(store_tag_put(&f->s, regs[i], "x", "t", ABC_DIGEST, 1, NULL, NULL),
				 -1);
		assert_int_equal(errno, EINVAL);
		assert_int_equal(store_tag_get(&f->s, regs[i], "x", "t", digest, &t), -1);
		assert_int_equal(store_taglist_put(&f->s, regs[i], "x", "", "[]", 2), -1);
	}
	for (size_t i = 0; i < sizeof(repos) / sizeof(repos[0]); i++) {
		assert_int_equal(
		    store_tag_put(&f->s, "docker.io", repos[i], "t", ABC_DIGEST, 1, NULL, NULL),
		    -1);
		assert_int_equal(store_taglist_put(&f->s, "docker.io", repos[i], "", "[]", 2), -1);
		assert_int_equal(store_taglist_get(&f->s, "docker.io", repos[i], link, &data, &len),
				 -1);
	}
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		assert_int_equal(
		    store_tag_put(&f->s, "docker.io", "x", tags[i], ABC_DIGEST, 1, NULL, NULL), -1);
	/* A Link is one line: it could not be told from the body otherwise. */
	assert_int_equal(store_taglist_put(&f->s, "docker.io", "x", "a\nb", "[]", 2), -1);
	assert_int_equal(store_tag_put(&f->s, NULL, "x", "t", ABC_DIGEST, 1, NULL, NULL), -1);
	/* Nothing was written anywhere. */
	assert_int_equal(count_entries(at(f, "tags")), 0);
	assert_int_equal(count_entries(at(f, "taglists")), 0);
	assert_int_equal(count_entries(f->dir), 1);
}

static void test_taglists(void **state)
{
	struct fixture *f = *state;
	const char *body = "{\"name\":\"library/busybox\",\"tags\":[\"1\",\"latest\"]}";
	char link[STORE_LINK_MAX], *data = NULL;
	size_t len = 0;

	errno = 0;
	assert_int_equal(
	    store_taglist_get(&f->s, "docker.io", "library/busybox", link, &data, &len), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(
	    store_taglist_put(&f->s, "docker.io", "library/busybox", "", body, strlen(body)), 0);
	assert_int_equal(
	    store_taglist_get(&f->s, "docker.io", "library/busybox", link, &data, &len), 0);
	assert_int_equal(len, strlen(body));
	assert_string_equal(data, body); /* NUL-terminated for convenience */
	assert_string_equal(link, "");
	free(data);
	/* One per repository: the next answer replaces it, with its Link. */
	assert_int_equal(store_taglist_put(&f->s, "docker.io", "library/busybox", "<next>", "1", 1),
			 0);
	assert_int_equal(
	    store_taglist_get(&f->s, "docker.io", "library/busybox", link, &data, &len), 0);
	assert_memory_equal(data, "1", 1);
	assert_string_equal(link, "<next>");
	free(data);
	/* Next to a repository under it ("…/busybox/all"). */
	assert_int_equal(store_taglist_put(&f->s, "docker.io", "library/busybox/all", "", "2", 1),
			 0);
	assert_int_equal(
	    store_taglist_get(&f->s, "docker.io", "library/busybox", link, &data, &len), 0);
	assert_memory_equal(data, "1", 1);
	free(data);
	/* Empty answers are stored too. */
	assert_int_equal(store_taglist_put(&f->s, "docker.io", "x", "", "", 0), 0);
	assert_int_equal(store_taglist_get(&f->s, "docker.io", "x", link, &data, &len), 0);
	assert_int_equal(len, 0);
	free(data);
	assert_int_equal(count_entries(at(f, "tmp")), 0);
}

/* What the store did not put there: a link, a FIFO, a directory at a blob path. Never followed
 * nor waited on; moved to quarantine; the blob counts as absent, and a commit puts it in place. */
static void test_foreign_at_object_paths(void **state)
{
	struct fixture *f = *state;
	char secret[160], dir[512];
	struct store_tmp t;
	off_t size;
	FILE *fp;

	snprintf(secret, sizeof(secret), "%s/secret", f->dir);
	fp = fopen(secret, "w");
	assert_non_null(fp);
	fputs("abc", fp); /* the blob's very bytes: a link is refused for what it is */
	fclose(fp);
	snprintf(dir, sizeof(dir), "%s", at(f, "blobs/sha256/ba"));
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(symlink(secret, at(f, ABC_PATH)), 0);
	errno = 0;
	assert_false(store_blob_exists(&f->s, ABC_DIGEST, NULL));
	assert_false(exists(at(f, ABC_PATH)));
	assert_int_equal(count_entries(at(f, "quarantine")), 1);
	assert_true(exists(secret));
	/* A FIFO: the open does not wait for a writer. */
	assert_int_equal(mkfifo(at(f, ABC_PATH), 0644), 0);
	assert_int_equal(store_blob_open(&f->s, ABC_DIGEST, &size), -1);
	assert_int_equal(errno, ENOENT);
	assert_false(exists(at(f, ABC_PATH)));
	/* A directory: the real blob is committed in its place. */
	assert_int_equal(mkdir(at(f, ABC_PATH), 0755), 0);
	write_blob(f, &t, "abc");
	assert_int_equal(commit(f, &t, ABC_DIGEST, 3), 0);
	assert_true(store_blob_exists(&f->s, ABC_DIGEST, NULL));
	assert_int_equal(count_entries(at(f, "quarantine")), 3);
}

/* A store directory that is a link refuses the open, and nothing is cleared through it. */
static void test_open_refuses_linked_dirs(void **state)
{
	struct fixture *f = *state;
	char victim[160], keep[200];
	FILE *fp;

	snprintf(victim, sizeof(victim), "%s/victim", f->dir);
	snprintf(keep, sizeof(keep), "%s/keep", victim);
	assert_int_equal(mkdir(victim, 0755), 0);
	fp = fopen(keep, "w");
	assert_non_null(fp);
	fclose(fp);
	store_close(&f->s);
	assert_int_equal(rmdir(at(f, "tmp")), 0);
	assert_int_equal(symlink(victim, at(f, "tmp")), 0);
	assert_int_equal(store_open(&f->s, f->root, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "/tmp is a symbolic link, not a directory"));
	assert_true(exists(keep));
	/* Inside a path too: ROOT/blobs a link, ROOT/blobs/sha256 would be made in its target. */
	assert_int_equal(unlink(at(f, "tmp")), 0);
	assert_int_equal(rmdir(at(f, "blobs/sha256")), 0);
	assert_int_equal(rmdir(at(f, "blobs")), 0);
	assert_int_equal(symlink(victim, at(f, "blobs")), 0);
	assert_int_equal(store_open(&f->s, f->root, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "/blobs is a symbolic link"));
	assert_int_equal(count_entries(victim), 1);
	assert_int_equal(unlink(at(f, "blobs")), 0);
	assert_int_equal(store_open(&f->s, f->root, f->err, sizeof(f->err)), 0);
}

/* store_manifest_open: a small manifest comes in memory (and from the memo after), a large one
 * as its open file at the offset past the media type's line, never read into memory; absent
 * and corrupt files are refused. */

/* A JSON manifest of about LEN bytes, stored; its digest into digest. Returns the bytes. */
static char *put_manifest_of(struct fixture *f, size_t len, char digest[DIGEST_STR_SIZE])
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

static void test_manifest_open_small_in_memory(void **state)
{
	struct fixture *f = *state;
	char digest[DIGEST_STR_SIZE], *doc = put_manifest_of(f, 1000, digest);
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

static void test_manifest_open_large_as_file(void **state)
{
	struct fixture *f = *state;
	size_t len = MEMO_MAX_BYTES * 4;
	char digest[DIGEST_STR_SIZE], *doc = put_manifest_of(f, len, digest), *back = malloc(len);
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

static void test_manifest_open_absent_and_invalid(void **state)
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
static void test_manifest_open_corrupt_head(void **state)
{
	struct fixture *f = *state;
	size_t len = MEMO_MAX_BYTES * 2;
	char digest[DIGEST_STR_SIZE], *doc = put_manifest_of(f, len, digest), path[256];
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
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_open_layout_and_tmp_cleared),
	    T(test_open_fails_with_reason),
	    T(test_blob_commit_and_open),
	    T(test_blob_digest_mismatch),
	    T(test_blob_size_mismatch),
	    T(test_blob_abort_and_enospc),
	    T(test_blob_open_rejects_bad_digests),
	    T(test_manifest_put_get),
	    T(test_memo),
	    T(test_manifest_put_rejects),
	    T(test_manifest_corrupt_on_disk),
	    T(test_tags),
	    T(test_tag_file_corrupt),
	    T(test_path_traversal),
	    T(test_taglists),
	    T(test_foreign_at_object_paths),
	    T(test_open_refuses_linked_dirs),
	    T(test_manifest_open_small_in_memory),
	    T(test_manifest_open_large_as_file),
	    T(test_manifest_open_absent_and_invalid),
	    T(test_manifest_open_corrupt_head),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
