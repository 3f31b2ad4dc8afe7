/* image: what an image is made of, read from the store alone: its manifest (or index, of which
 * only the wanted platforms count), config and layers, and which of them are present. Readiness,
 * prewarm, pinning and export all walk images this way. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "registry.h"

#define IMAGE_MAX_BLOBS 4096
#define IMAGE_MAX_BLOB_SIZE (1LL << 50) /* 1 PiB: far past any layer, far from overflow */

void image_walk_free(struct image_walk *w)
{
	free(w->blobs);
	memset(w, 0, sizeof(*w));
}

static int add_blob(struct image_walk *w, json_t *desc, int is_layer)
{
	json_t *digest = json_object_get(desc, "digest"), *size = json_object_get(desc, "size");
	struct image_blob *b;

	/* Sizes come from the upstream: bounded so that no sum of them can overflow. */
	if (!json_is_string(digest) || digest_check(json_string_value(digest)) != 0 ||
	    !json_is_integer(size) || json_integer_value(size) < 0 ||
	    json_integer_value(size) > IMAGE_MAX_BLOB_SIZE || w->nblobs == IMAGE_MAX_BLOBS)
		return -1;
	if (w->nblobs % 64 == 0) {
		b = realloc(w->blobs, (w->nblobs + 64) * sizeof(*b));
		if (!b)
			return -1;
		w->blobs = b;
	}
	b = &w->blobs[w->nblobs++];
	snprintf(b->digest, sizeof(b->digest), "%s", json_string_value(digest));
	b->size = json_integer_value(size);
	b->is_layer = is_layer;
	return 0;
}

/* "linux/arm64/v8" against a descriptor's platform object; no variant wanted matches any. */
static int platform_matches(json_t *platform, const char *want)
{
	const char *os = json_string_value(json_object_get(platform, "os"));
	const char *arch = json_string_value(json_object_get(platform, "architecture"));
	const char *variant = json_string_value(json_object_get(platform, "variant"));
	char buf[128];

	if (!os || !arch)
		return 0;
	snprintf(buf, sizeof(buf), "%s/%s", os, arch);
	if (strncmp(want, buf, strlen(buf)) != 0)
		return 0;
	want += strlen(buf);
	if (*want == '\0')
		return 1;
	return *want == '/' && variant && strcmp(want + 1, variant) == 0;
}

static int wanted(json_t *desc, const char *const *platforms)
{
	for (; *platforms; platforms++)
		if (platform_matches(json_object_get(desc, "platform"), *platforms))
			return 1;
	return 0;
}

static int walk_manifest(struct store *s, const char *digest, const char *const *platforms,
			 struct image_walk *w, int depth);

static int walk_index(struct store *s, json_t *manifests, const char *const *platforms,
		      struct image_walk *w, int depth)
{
	size_t i;
	json_t *desc;
	int found = 0;

	json_array_foreach(manifests, i, desc)
	{
		const char *child = json_string_value(json_object_get(desc, "digest"));

		if (!child || !wanted(desc, platforms))
			continue;
		if (digest_check(child) != 0) { /* it would go upstream as a reference */
			snprintf(w->error, sizeof(w->error), "index entry with an invalid digest");
			return -1;
		}
		found = 1;
		if (walk_manifest(s, child, platforms, w, depth + 1) < 0)
			return -1;
		if (w->missing_manifest[0])
			return 0;
	}
	if (!found)
		snprintf(w->error, sizeof(w->error), "no manifest for the wanted platform");
	return found ? 0 : -1;
}

static int walk_image_manifest(json_t *doc, struct image_walk *w)
{
	json_t *layers = json_object_get(doc, "layers"), *desc;
	size_t i;

	if (add_blob(w, json_object_get(doc, "config"), 0) < 0 || !json_is_array(layers)) {
		snprintf(w->error, sizeof(w->error), "manifest without config or layers");
		return -1;
	}
	json_array_foreach(layers, i, desc)
	{
		if (add_blob(w, desc, 1) < 0) {
			snprintf(w->error, sizeof(w->error), "bad layer descriptor");
			return -1;
		}
	}
	return 0;
}

static int walk_manifest(struct store *s, const char *digest, const char *const *platforms,
			 struct image_walk *w, int depth)
{
	char type[MEDIA_TYPE_MAX], *data;
	size_t len;
	json_t *doc, *manifests;
	int rc;

	if (depth > 2) { /* an index of indexes of indexes: not an image */
		snprintf(w->error, sizeof(w->error), "manifests nested too deep");
		return -1;
	}
	if (store_manifest_get(s, digest, &data, &len, type) < 0) {
		snprintf(w->missing_manifest, sizeof(w->missing_manifest), "%s", digest);
		return 0;
	}
	if (w->nmanifests < IMAGE_WALK_MANIFESTS)
		snprintf(w->manifests[w->nmanifests++], DIGEST_STR_SIZE, "%s", digest);
	doc = json_loadb(data, len, 0, NULL);
	free(data);
	manifests = json_object_get(doc, "manifests");
	if (!doc) {
		snprintf(w->error, sizeof(w->error), "manifest %s is not JSON", digest);
		rc = -1;
	} else if (json_is_array(manifests)) {
		rc = walk_index(s, manifests, platforms, w, depth);
	} else {
		rc = walk_image_manifest(doc, w);
	}
	json_decref(doc);
	return rc;
}

int image_walk(struct store *s, const char *digest, const char *const *platforms,
	       struct image_walk *w)
{
	size_t i;

	memset(w, 0, sizeof(*w));
	if (walk_manifest(s, digest, platforms, w, 0) < 0)
		return -1;
	w->complete = !w->missing_manifest[0];
	for (i = 0; i < w->nblobs; i++) {
		struct image_blob *b = &w->blobs[i];

		b->present = store_blob_exists(s, b->digest, NULL);
		w->bytes_total += b->size;
		w->bytes_present += b->present ? b->size : 0;
		w->layers_total += b->is_layer;
		w->layers_present += b->is_layer && b->present;
		w->complete &= b->present;
	}
	return 0;
}

int image_index_child(const char *data, size_t len, const char *platform,
		      int (*takes)(void *arg, const char *mediatype), void *arg,
		      char digest[DIGEST_STR_SIZE])
{
	json_t *doc = json_loadb(data, len, 0, NULL), *desc;
	size_t i;
	int rc = -1;

	json_array_foreach(json_object_get(doc, "manifests"), i, desc)
	{
		const char *child = json_string_value(json_object_get(desc, "digest"));
		const char *mt = json_string_value(json_object_get(desc, "mediaType"));

		if (child && mt && digest_check(child) == 0 &&
		    platform_matches(json_object_get(desc, "platform"), platform) &&
		    takes(arg, mt)) {
			snprintf(digest, DIGEST_STR_SIZE, "%s", child);
			rc = 0;
			break;
		}
	}
	json_decref(doc);
	return rc;
}

/* The one answer to "which platforms of this image": OWN (a platform= override) alone when set,
 * else the configured ones. ONE is the caller's storage for the first case. */
const char *const *image_platforms(char *const *configured, const char *own, const char *one[2])
{
	if (!own || !own[0])
		return (const char *const *)configured;
	one[0] = own;
	one[1] = NULL;
	return one;
}

/* This node's platform, the way image indexes name it. */
const char *image_node_platform(void)
{
	static char platform[sizeof((struct utsname){0}.machine) + 8];
	struct utsname u;
	const char *arch = "amd64";

	if (platform[0])
		return platform;
	if (uname(&u) == 0) {
		if (strcmp(u.machine, "aarch64") == 0 || strcmp(u.machine, "arm64") == 0)
			arch = "arm64";
		else if (strncmp(u.machine, "armv7", 5) == 0)
			arch = "arm/v7";
		else if (strcmp(u.machine, "x86_64") != 0)
			arch = u.machine;
	}
	snprintf(platform, sizeof(platform), "linux/%s", arch);
	return platform;
}

/* "os/arch" or "os/arch/variant", lower-case letters and digits. */
int image_platform_valid(const char *p)
{
	int parts = 1;

	if (!*p || strlen(p) >= IMAGE_PLATFORM_MAX)
		return 0;
	for (; *p; p++) {
		if (*p == '/' && p[1] && p[1] != '/')
			parts++;
		else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			return 0;
	}
	return parts == 2 || parts == 3;
}
