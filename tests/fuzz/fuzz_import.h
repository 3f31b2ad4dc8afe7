/* fuzz_import.h: the harness fuzz_archive and fuzz_import_json share. It runs
 * registry/archive_import.c's import_file (included, it is static) on an archive held in a
 * memory file, into a scratch store on tmpfs that is emptied after every run, and then checks
 * the promises "import" makes:
 *   - all or nothing: a refused archive leaves no file at all in the store (no blob, manifest,
 *     tag or temp file);
 *   - an accepted one leaves no temp file, and every stored blob and manifest hashes to its
 *     name, and every tag names a stored manifest. */
#ifndef MS_FUZZ_IMPORT_H
#define MS_FUZZ_IMPORT_H

#include "fuzz.h"

#include "archive_import.c"

static struct store import_store;
static struct image_ref import_name; /* --name fuzz/named:latest */

static void import_open(void)
{
	char err[256];

	if (store_open(&import_store, fuzz_scratch_dir(), err, sizeof(err)) != 0) {
		fprintf(stderr, "store_open: %s\n", err);
		abort();
	}
}

static void import_setup(void)
{
	char err[128];

	log_init("fuzz", LOG_ERROR);
	if (ref_parse("fuzz/named:latest", &import_name, err, sizeof(err)) != 0)
		abort();
	import_open();
}

/* --- walking the store (nftw callbacks take no argument: the state is here) --- */

static size_t import_nfiles;
static const char *import_bad; /* the first file that broke a promise */

static int import_count_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)st;
	(void)ftw;
	import_nfiles += flag == FTW_F;
	return 0;
}

static size_t import_count(const char *sub)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", import_store.root, sub);
	import_nfiles = 0;
	nftw(path, import_count_cb, 16, FTW_PHYS);
	return import_nfiles;
}

/* "sha256:" and the file's base name, when that is 64 hex digits. */
static int import_digest_of_name(const char *path, char digest[DIGEST_STR_SIZE])
{
	const char *base = strrchr(path, '/');

	snprintf(digest, DIGEST_STR_SIZE, "sha256:%s", base ? base + 1 : path);
	return digest_check(digest);
}

static int import_blob_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	char want[DIGEST_STR_SIZE], got[DIGEST_STR_SIZE], *buf;
	int fd;

	(void)ftw;
	if (flag != FTW_F)
		return 0;
	buf = malloc((size_t)st->st_size + 1);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (!buf || fd < 0 || store_read_exact(fd, buf, (size_t)st->st_size) != 0)
		abort();
	close(fd);
	if (import_digest_of_name(path, want) != 0 ||
	    digest_buffer(buf, (size_t)st->st_size, got) != 0 || strcmp(want, got) != 0)
		import_bad = "a blob that does not hash to its name";
	free(buf);
	return 0;
}

static int import_manifest_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	char digest[DIGEST_STR_SIZE], got[DIGEST_STR_SIZE], type[MEDIA_TYPE_MAX], *data;
	size_t len;

	(void)st;
	(void)ftw;
	if (flag != FTW_F)
		return 0;
	if (import_digest_of_name(path, digest) != 0 ||
	    store_manifest_get(&import_store, digest, &data, &len, type) != 0) {
		import_bad = "a manifest the store cannot read back";
		return 0;
	}
	if (digest_buffer(data, len, got) != 0 || strcmp(got, digest) != 0)
		import_bad = "a manifest that does not hash to its name";
	free(data);
	return 0;
}

/* ROOT/tags/REGISTRY/REPO…/_tags/TAG */
static int import_tag_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	char rel[PATH_MAX], digest[DIGEST_STR_SIZE], type[MEDIA_TYPE_MAX], *repo, *tags, *data;
	size_t len, rootlen = strlen(import_store.root) + strlen("/tags/");
	time_t at;

	(void)st;
	(void)ftw;
	if (flag != FTW_F)
		return 0;
	snprintf(rel, sizeof(rel), "%s", path + rootlen);
	repo = strchr(rel, '/');
	tags = strstr(rel, "/_tags/");
	if (!repo || !tags || tags <= repo) {
		import_bad = "a tag file outside tags/REGISTRY/REPO/_tags/";
		return 0;
	}
	*repo++ = '\0';
	*tags = '\0';
	if (store_tag_get(&import_store, rel, repo, tags + 7, digest, &at) != 0)
		import_bad = "a tag the store cannot read back";
	else if (store_manifest_get(&import_store, digest, &data, &len, type) != 0)
		import_bad = "a tag naming a manifest that is not stored";
	else
		free(data);
	return 0;
}

static void import_walk(const char *sub,
			int (*fn)(const char *, const struct stat *, int, struct FTW *))
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", import_store.root, sub);
	nftw(path, fn, 16, FTW_PHYS);
}

/* Imports the archive in DATA and checks the store; then empties it for the next run. */
static void import_run(const uint8_t *data, size_t size, const struct image_ref *name)
{
	const char *file = fuzz_file(data, size);
	int rc = import_file(&import_store, file, name);

	import_bad = NULL;
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "import: %s\n", rc == 0 ? "accepted" : "refused");
	if (rc != 0) {
		FUZZ_ASSERT(import_count("") == 0); /* all or nothing */
	} else {
		FUZZ_ASSERT(import_count("tmp") == 0);
		import_walk("blobs", import_blob_cb);
		import_walk("manifests", import_manifest_cb);
		import_walk("tags", import_tag_cb);
		if (import_bad)
			fprintf(stderr, "store after import: %s\n", import_bad);
		FUZZ_ASSERT(!import_bad);
	}
	store_close(&import_store);
	fuzz_empty_dir(fuzz_scratch_dir());
	import_open();
}

#endif
