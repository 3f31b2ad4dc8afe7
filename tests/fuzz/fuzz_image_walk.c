/* fuzz_image_walk: the manifest and index fields the cache reads (registry/image.c's image_walk:
 * config and layer descriptors, index entries and their platforms, nesting), from manifests put
 * in a real store on tmpfs. Input: up to four JSON documents separated by a line "====", all
 * stored under their digests; the first is walked for linux/amd64 and linux/arm64/v8, so an
 * index can name the others. Two blobs are in the store (the empty one and "{}") so that
 * presence counts. Beyond not crashing or leaking: the walk's totals are consistent (present <=
 * total, no negative size) and every digest it reports is a valid one. */
#include "fuzz.h"

#include "registry.h"

#define DOCS_MAX 4
#define SEPARATOR "\n====\n"

static struct store store;
static char manifests_dir[PATH_MAX];

static void put_blob(const char *bytes)
{
	struct store_tmp t;
	char digest[DIGEST_STR_SIZE], err[256];

	if (digest_buffer(bytes, strlen(bytes), digest) != 0 || store_tmp_begin(&store, &t) != 0 ||
	    store_tmp_write(&t, bytes, strlen(bytes)) != 0 ||
	    store_tmp_verify(&t, digest, (long long)strlen(bytes), err, sizeof(err)) != 0 ||
	    store_tmp_commit_blob(&store, &t, digest, err, sizeof(err)) != 0)
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	log_init("fuzz", LOG_ERROR);
	if (store_open(&store, fuzz_scratch_dir(), err, sizeof(err)) != 0) {
		fprintf(stderr, "store_open: %s\n", err);
		abort();
	}
	snprintf(manifests_dir, sizeof(manifests_dir), "%s/manifests/sha256", store.root);
	put_blob("");
	put_blob("{}");
	return 0;
}

static void check(const struct image_walk *w)
{
	int layers = 0, present = 0;

	FUZZ_ASSERT(w->nblobs <= 4096 && (w->nblobs == 0 || w->blobs));
	for (size_t i = 0; i < w->nblobs; i++) {
		const struct image_blob *b = &w->blobs[i];

		FUZZ_ASSERT(digest_check(b->digest) == 0 && b->size >= 0);
		layers += b->is_layer;
		present += b->is_layer && b->present;
	}
	FUZZ_ASSERT(w->layers_total == layers && w->layers_present == present);
	FUZZ_ASSERT(w->bytes_present >= 0 && w->bytes_present <= w->bytes_total);
	FUZZ_ASSERT(w->missing_manifest[0] == '\0' || digest_check(w->missing_manifest) == 0);
	if (w->complete)
		FUZZ_ASSERT(w->missing_manifest[0] == '\0' && present == layers);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const platforms[] = {"linux/amd64", "linux/arm64/v8", NULL};
	char digests[DOCS_MAX][DIGEST_STR_SIZE], err[256];
	const char *doc = (const char *)data, *end = doc + size, *sep;
	struct image_walk w;
	int ndocs = 0, rc;

	if (size > MANIFEST_MAX_BYTES)
		return 0;
	while (ndocs < DOCS_MAX) {
		size_t len;

		sep = ndocs + 1 < DOCS_MAX
			  ? memmem(doc, (size_t)(end - doc), SEPARATOR, strlen(SEPARATOR))
			  : NULL;
		len = sep ? (size_t)(sep - doc) : (size_t)(end - doc);
		if (digest_buffer(doc, len, digests[ndocs]) != 0 ||
		    store_manifest_put(&store, digests[ndocs], doc, len,
				       "application/vnd.oci.image.manifest.v1+json", NULL, NULL,
				       err, sizeof(err)) != 0) {
			fprintf(stderr, "store_manifest_put: %s\n", err);
			abort();
		}
		ndocs++;
		if (!sep)
			break;
		doc = sep + strlen(SEPARATOR);
	}
	rc = image_walk(&store, digests[0], platforms, &w);
	if (rc == 0)
		check(&w);
	else
		FUZZ_ASSERT(rc == -1 && w.error[0] != '\0');
	image_walk_free(&w);
	fuzz_empty_dir(manifests_dir);
	return 0;
}
