/* image_index_child: an index's manifest for a platform, of a media type the caller takes; what
 * is not an index, or has no such manifest, gives none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "registry.h"

#define D_MF "application/vnd.docker.distribution.manifest.v2+json"
#define OCI_MF "application/vnd.oci.image.manifest.v1+json"
#define A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define C "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

/* The caller takes exactly the media type ARG. */
static int takes(void *arg, const char *mediatype)
{
	return strcmp(arg, mediatype) == 0;
}

static const char index_json[] =
    "{\"schemaVersion\":2,\"manifests\":["
    "{\"mediaType\":\"" D_MF "\",\"digest\":\"" A "\",\"size\":1,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
    "{\"mediaType\":\"" OCI_MF "\",\"digest\":\"" B "\",\"size\":1,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
    "{\"mediaType\":\"" D_MF "\",\"digest\":\"" C "\",\"size\":1,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";

static void picks_platform_and_type(void **state)
{
	char digest[DIGEST_STR_SIZE];

	(void)state;
	assert_int_equal(
	    image_index_child(index_json, strlen(index_json), "linux/amd64", takes, D_MF, digest),
	    0);
	assert_string_equal(digest, C); /* B is amd64 too, but not a type the caller takes */
	assert_int_equal(
	    image_index_child(index_json, strlen(index_json), "linux/amd64", takes, OCI_MF, digest),
	    0);
	assert_string_equal(digest, B);
	assert_int_equal(
	    image_index_child(index_json, strlen(index_json), "linux/arm64", takes, D_MF, digest),
	    0);
	assert_string_equal(digest, A);
}

static void none_fits(void **state)
{
	char digest[DIGEST_STR_SIZE];
	const char *manifest = "{\"schemaVersion\":2,\"config\":{},\"layers\":[]}";
	const char *bad_digest = "{\"manifests\":[{\"mediaType\":\"" D_MF "\",\"digest\":\"../x\","
				 "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";
	const char *no_type = "{\"manifests\":[{\"digest\":\"" A "\","
			      "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";

	(void)state;
	assert_int_equal(
	    image_index_child(index_json, strlen(index_json), "linux/s390x", takes, D_MF, digest),
	    -1);
	assert_int_equal(image_index_child(index_json, strlen(index_json), "linux/amd64", takes,
					   "application/json", digest),
			 -1);
	assert_int_equal(
	    image_index_child(manifest, strlen(manifest), "linux/amd64", takes, D_MF, digest), -1);
	assert_int_equal(
	    image_index_child(bad_digest, strlen(bad_digest), "linux/amd64", takes, D_MF, digest),
	    -1);
	assert_int_equal(
	    image_index_child(no_type, strlen(no_type), "linux/amd64", takes, D_MF, digest), -1);
	assert_int_equal(image_index_child("not json", 8, "linux/amd64", takes, D_MF, digest), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(picks_platform_and_type),
	    cmocka_unit_test(none_fits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
