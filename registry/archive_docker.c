/* archive_docker: the plan of a docker-archive (docker save, skopeo docker-archive:): each
 * manifest.json item becomes a Docker v2 schema 2 manifest of its config and layers, every
 * layer checked against the config's rootfs.diff_ids (a layer's name need not be a digest, so
 * that is what catches a tampered one), tagged as RepoTags says. */
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import.h"

/* The uncompressed digest of a layer: its digest, or that of its gunzipped bytes. */
static int layer_diff_id(struct import *im, const struct entry *e, char out[DIGEST_STR_SIZE])
{
	struct archive *a;
	struct archive_entry *ae;
	struct digest_ctx *dg;
	la_ssize_t n = -1;
	int rc = -1;

	if (!e->gzip) {
		memcpy(out, e->digest, DIGEST_STR_SIZE);
		return 0;
	}
	a = archive_read_new();
	dg = digest_new();
	if (!a || !dg) {
		import_fail(im, "out of memory");
		goto out;
	}
	archive_read_support_filter_gzip(a);
	archive_read_support_format_raw(a);
	if (archive_read_open_filename(a, e->tmp, READ_BLOCK) == ARCHIVE_OK &&
	    archive_read_next_header(a, &ae) == ARCHIVE_OK) {
		while ((n = archive_read_data(a, im->buf, COPY_BUF)) > 0) {
			if (digest_update(dg, im->buf, (size_t)n) != 0)
				break;
		}
	}
	if (n == 0 && digest_final(dg, out) == 0)
		rc = 0;
	else
		import_fail(im, "%s: cannot decompress: %s", e->name,
			    archive_error_string(a) ? archive_error_string(a) : "digest error");
out:
	digest_free(dg);
	if (a)
		archive_read_free(a);
	return rc;
}

/* docker-archive: descriptors of the layers manifest.json lists, appended to MLAYERS, each
 * layer checked against the config's diff_id. */
static int docker_layers(struct import *im, json_t *layers, json_t *diff_ids, json_t *mlayers)
{
	char got[DIGEST_STR_SIZE];
	const char *want;
	struct entry *le;
	json_t *v;
	size_t i;

	json_array_foreach(layers, i, v)
	{
		le = import_entry_path(im, json_string_value(v));
		if (!le)
			return import_fail(im, "%s: named by manifest.json, not in the archive",
					   json_is_string(v) ? json_string_value(v)
							     : "(not a string)");
		want = json_string_value(json_array_get(diff_ids, i));
		if (layer_diff_id(im, le, got) != 0)
			return -1;
		if (!want || strcmp(want, got) != 0)
			return import_fail(
			    im, "%s: layer %zu is %s uncompressed, the config's diff_id says %s",
			    le->name, i + 1, got, want ? want : "(none)");
		if (json_array_append_new(
			mlayers, json_pack("{s:s, s:I, s:s}", "mediaType",
					   le->gzip ? MT_DOCKER_LAYER_GZIP : MT_DOCKER_LAYER,
					   "size", (json_int_t)le->size, "digest", le->digest)) !=
		    0)
			return import_fail(im, "out of memory");
		le->keep = 1;
	}
	return 0;
}

static int docker_tags(struct import *im, json_t *tags, size_t idx, const char *digest)
{
	json_t *v;
	size_t i;

	if (json_array_size(tags) == 0) /* null when saved by image id */
		return import_add_untagged(im, digest);
	json_array_foreach(tags, i, v)
	{
		if (!json_is_string(v))
			return import_fail(
			    im, "manifest.json: image %zu: RepoTags holds a non-string", idx);
		if (import_add_tag_named(im, json_string_value(v), digest) != 0)
			return -1;
	}
	return 0;
}

/* docker-archive: a Docker v2 schema 2 manifest for one manifest.json item: its config and
 * layers as blobs, with their digests and sizes. */
static int plan_docker_image(struct import *im, json_t *item, size_t idx)
{
	json_t *layers = json_object_get(item, "Layers"), *cfg = NULL, *diff_ids, *m = NULL;
	const char *cfgname = json_string_value(json_object_get(item, "Config"));
	char digest[DIGEST_STR_SIZE], *data = NULL;
	struct entry *ce;
	int rc = -1;

	if (!cfgname || !json_is_array(layers))
		return import_fail(im, "manifest.json: image %zu: no Config or no Layers", idx);
	ce = import_entry_path(im, cfgname);
	if (!ce)
		return import_fail(im, "%s: named by manifest.json, not in the archive", cfgname);
	cfg = import_entry_json(im, ce);
	if (!cfg)
		return -1;
	diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
	if (!json_is_array(diff_ids) || json_array_size(diff_ids) != json_array_size(layers)) {
		import_fail(im, "%s: rootfs.diff_ids does not list the %zu layers of manifest.json",
			    cfgname, json_array_size(layers));
		goto out;
	}
	m = json_pack("{s:i, s:s, s:{s:s, s:I, s:s}, s:[]}", "schemaVersion", 2, "mediaType",
		      MT_DOCKER_MANIFEST, "config", "mediaType", MT_DOCKER_CONFIG, "size",
		      (json_int_t)ce->size, "digest", ce->digest, "layers");
	if (!m) {
		import_fail(im, "out of memory");
		goto out;
	}
	ce->keep = 1;
	if (docker_layers(im, layers, diff_ids, json_object_get(m, "layers")) != 0)
		goto out;
	data = json_dumps(m, JSON_COMPACT);
	if (!data || digest_buffer(data, strlen(data), digest) != 0) {
		import_fail(im, "out of memory");
		goto out;
	}
	rc = import_add_manifest(im, digest, MT_DOCKER_MANIFEST, data, strlen(data));
	data = NULL;
	if (rc == 0)
		rc = docker_tags(im, json_object_get(item, "RepoTags"), idx, digest);
out:
	free(data);
	json_decref(m);
	json_decref(cfg);
	return rc;
}

int archive_docker_plan(struct import *im, const struct entry *mf)
{
	json_t *doc = import_entry_json(im, mf), *item;
	size_t i;
	int rc = 0;

	if (!doc)
		return -1;
	if (!json_is_array(doc) || json_array_size(doc) == 0)
		rc = import_fail(im, "manifest.json: expected a non-empty array");
	json_array_foreach(doc, i, item)
	{
		if (rc == 0)
			rc = plan_docker_image(im, item, i);
	}
	json_decref(doc);
	return rc;
}
