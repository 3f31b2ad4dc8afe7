/* fuzz_image_index: an index's manifest for a platform, as the cache picks it for a client that
 * takes no index (registry/image.c's image_index_child: index entries, their platforms, media
 * types and digests, from the upstream). The input is one JSON document; it is asked for
 * linux/amd64 and linux/arm64/v8 by a caller that takes Docker's and OCI's image manifest types.
 * Beyond not crashing or leaking: a manifest picked is a valid digest that the input names, of a
 * type the caller was asked about and said it takes. */
#include "fuzz.h"

#include "registry.h"

struct asked {
	int taken; /* times takes() said yes */
};

static int takes(void *arg, const char *mediatype)
{
	struct asked *a = arg;
	int yes = strcmp(mediatype, "application/vnd.docker.distribution.manifest.v2+json") == 0 ||
		  strcmp(mediatype, "application/vnd.oci.image.manifest.v1+json") == 0;

	a->taken += yes;
	return yes;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz", LOG_ERROR);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const platforms[] = {"linux/amd64", "linux/arm64/v8"};
	const char *doc = (const char *)data;

	if (size > MANIFEST_MAX_BYTES)
		return 0;
	for (size_t i = 0; i < sizeof(platforms) / sizeof(platforms[0]); i++) {
		char digest[DIGEST_STR_SIZE] = "";
		struct asked a = {0};
		int rc = image_index_child(doc, size, platforms[i], takes, &a, digest);

		FUZZ_ASSERT(rc == 0 || rc == -1);
		if (rc == 0) {
			FUZZ_ASSERT(digest_check(digest) == 0);
			FUZZ_ASSERT(a.taken == 1); /* the first yes ends the search */
			/* JSON may spell the digest with escapes: only an unescaped one is in DATA
			 */
			if (!memchr(doc, '\\', size))
				FUZZ_ASSERT(memmem(doc, size, digest, strlen(digest)));
		}
	}
	return 0;
}
