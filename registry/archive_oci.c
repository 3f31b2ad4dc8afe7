/* archive_oci: the plan of an OCI image layout (skopeo oci-archive:, docker save >= 25):
 * index.json's manifests and indexes (nested up to INDEX_DEPTH), each checked against its
 * descriptor, with every config and layer they name, tagged as their annotations say. */
#include <stdio.h>
#include <string.h>

#include "import.h"
#include "ref.h"

#define INDEX_DEPTH 4					 /* an index of indexes of … */
#define ANN_REF_NAME "org.opencontainers.image.ref.name" /* skopeo: the tag only */
#define ANN_IMAGE_NAME "io.containerd.image.name"	 /* docker save >= 25: the reference */

/* The blob DIGEST of an OCI layout; -1 with err set when the digest is not one we store. */
static int blob_find(struct import *im, const char *digest, struct entry **out)
{
	char name[32 + DIGEST_HEX_LEN];

	if (!digest || digest_check(digest) != 0)
		return import_fail(im, "invalid or unsupported digest \"%.80s\"",
				   digest ? digest : "");
	snprintf(name, sizeof(name), "blobs/sha256/%s", digest_hex(digest));
	*out = import_entry(im, name);
	return 0;
}

/* A descriptor's digest and size; its blob (NULL when absent). */
static int descriptor(struct import *im, json_t *desc, const char *what, const char **digest,
		      struct entry **e)
{
	json_t *size = json_object_get(desc, "size");

	*digest = json_string_value(json_object_get(desc, "digest"));
	if (!json_is_object(desc) || !json_is_integer(size) || !*digest)
		return import_fail(im, "%s: a descriptor without digest or size", what);
	if (blob_find(im, *digest, e) != 0)
		return -1;
	if (*e && (*e)->size != json_integer_value(size))
		return import_fail(im, "%s: blob %s has %lld bytes, its descriptor says %lld", what,
				   *digest, (*e)->size, (long long)json_integer_value(size));
	return 0;
}

/* Layers of foreign (non-distributable) media types may be left out of an archive. */
static int may_be_absent(json_t *desc)
{
	const char *mt = json_string_value(json_object_get(desc, "mediaType"));

	return mt && (strstr(mt, "nondistributable") != NULL || strstr(mt, "foreign"));
}

/* An image manifest: its config and every layer must be in the archive. */
static int plan_image(struct import *im, const char *digest, json_t *doc)
{
	json_t *layers = json_object_get(doc, "layers"), *desc;
	const char *bd;
	struct entry *e;
	size_t i;

	if (descriptor(im, json_object_get(doc, "config"), digest, &bd, &e) != 0)
		return -1;
	if (!e)
		return import_fail(im, "manifest %s: config %s not in the archive", digest, bd);
	e->keep = 1;
	if (!json_is_array(layers))
		return import_fail(im, "manifest %s: no layers", digest);
	json_array_foreach(layers, i, desc)
	{
		if (descriptor(im, desc, digest, &bd, &e) != 0)
			return -1;
		if (!e && !may_be_absent(desc))
			return import_fail(im, "manifest %s: layer %s not in the archive", digest,
					   bd);
		if (e)
			e->keep = 1;
	}
	return 0;
}

static int plan_manifest(struct import *im, json_t *desc, const char *what, int depth,
			 int optional);

/* An index: the images of it the archive holds (skopeo copy without --all keeps one). */
static int plan_index(struct import *im, const char *digest, json_t *doc, int depth)
{
	json_t *child;
	size_t i, held = 0;
	int r;

	if (depth >= INDEX_DEPTH)
		return import_fail(im, "index %s: nested more than %d deep", digest, INDEX_DEPTH);
	json_array_foreach(json_object_get(doc, "manifests"), i, child)
	{
		r = plan_manifest(im, child, digest, depth + 1, 1);
		if (r < 0)
			return -1;
		held += r == 0;
	}
	if (held == 0)
		return import_fail(im, "index %s: none of its manifests is in the archive", digest);
	return 0;
}

/* The manifest or index DESC names, checked, and everything it names. 0, or 1 when it is not in
 * the archive and OPTIONAL; -1 with err set. */
static int plan_manifest(struct import *im, json_t *desc, const char *what, int depth, int optional)
{
	const char *digest, *type;
	json_t *doc = NULL, *mt;
	struct entry *e;
	char *data = NULL;
	size_t len;
	int rc = -1;

	if (descriptor(im, desc, what, &digest, &e) != 0)
		return -1;
	if (!e && optional) {
		log_info("import_skip", "file=\"%s\" manifest=%s reason=\"not in the archive\"",
			 im->file, digest);
		return 1;
	}
	if (!e)
		return import_fail(im, "%s: manifest %s not in the archive", what, digest);
	if (import_planned(im, digest))
		return 0;
	if (import_entry_read(im, e, &data, &len) != 0 ||
	    !(doc = import_json_parse(im, e->name, data, len)))
		goto out;
	if (!json_is_object(doc)) {
		import_fail(im, "manifest %s: not a JSON object", digest);
		goto out;
	}
	mt = json_object_get(desc, "mediaType");
	if (!json_is_string(mt))
		mt = json_object_get(doc, "mediaType");
	if (json_is_array(json_object_get(doc, "manifests"))) {
		type = json_is_string(mt) ? json_string_value(mt) : MT_OCI_INDEX;
		rc = plan_index(im, digest, doc, depth);
	} else {
		type = json_is_string(mt) ? json_string_value(mt) : MT_OCI_MANIFEST;
		rc = plan_image(im, digest, doc);
	}
	if (rc == 0) {
		rc = import_add_manifest(im, digest, type, data, len);
		data = NULL;
	}
out:
	json_decref(doc);
	free(data);
	return rc;
}

/* An index.json entry's name: docker save (>= 25) gives the reference, skopeo only the tag,
 * whose repository then comes from --name. */
static int tag_oci(struct import *im, json_t *desc)
{
	json_t *ann = json_object_get(desc, "annotations");
	const char *digest = json_string_value(json_object_get(desc, "digest"));
	const char *full = json_string_value(json_object_get(ann, ANN_IMAGE_NAME));
	const char *name = json_string_value(json_object_get(ann, ANN_REF_NAME));
	struct image_ref ref;

	if (full)
		return import_add_tag_named(im, full, digest);
	if (!name)
		return import_add_untagged(im, digest);
	if (strchr(name, '/') || strchr(name, ':'))
		return import_add_tag_named(im, name, digest);
	if (!ref_tag_valid(name))
		return import_fail(im, "image %s: \"%.200s\" is not a valid tag", digest, name);
	if (!im->name)
		return import_fail(im,
				   "image %s is named only \"%s\", a tag: give its repository with "
				   "--name REPO",
				   digest, name);
	ref = *im->name;
	snprintf(ref.tag, sizeof(ref.tag), "%s", name);
	return import_add_tag(im, &ref, digest);
}

int archive_oci_plan(struct import *im, const struct entry *layout, const struct entry *index)
{
	json_t *lay = import_entry_json(im, layout), *idx = NULL, *desc;
	size_t i;
	int rc = -1;

	if (!lay)
		return -1;
	if (!json_is_string(json_object_get(lay, "imageLayoutVersion"))) {
		import_fail(im, "oci-layout: no imageLayoutVersion");
		goto out;
	}
	idx = import_entry_json(im, index);
	if (!idx)
		goto out;
	if (json_array_size(json_object_get(idx, "manifests")) == 0) {
		import_fail(im, "index.json: no manifests");
		goto out;
	}
	json_array_foreach(json_object_get(idx, "manifests"), i, desc)
	{
		if (plan_manifest(im, desc, "index.json", 0, 0) != 0 || tag_oci(im, desc) != 0)
			goto out;
	}
	rc = 0;
out:
	json_decref(idx);
	json_decref(lay);
	return rc;
}
