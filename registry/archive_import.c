/* archive_import: "microscale-registry import FILE…": docker-archive and OCI image-layout
 * tarballs (plain or compressed: libarchive recognises the filter) into the store.
 *
 * An archive is read once, in its own order. Every regular file goes to a temp file in ROOT/tmp
 * and is hashed on the way: a layer may be gigabytes, and docker-archive's manifest.json usually
 * comes after the layers it names, so nothing can be decided before the end. Then:
 *   plan   - manifest.json, or oci-layout and index.json, say which files are images. Every image
 *            named must be complete; every blob must be what its name or descriptor says; every
 *            docker-archive layer what its config's rootfs.diff_ids say (a docker-archive layer
 *            name need not be a digest, so that is what catches a tampered one).
 *   commit - only once the whole archive passed: blobs, then manifests, then tags. A tag is what
 *            makes an image visible, so tags go last.
 * A truncated or tampered archive fails before the commit and its temp files are removed: the
 * store is as it was. Files no image uses (VERSION, legacy layer json, …) are dropped. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ref.h"
#include "registry.h"

#define ENTRIES_MAX 65536	       /* files and links in one archive */
#define ARCHIVE_PATH_MAX 1024	       /* of one archive member */
#define JSON_MAX MANIFEST_MAX_BYTES    /* manifest.json, index.json, a config, a manifest */
#define PENDING_MAX (64 * 1024 * 1024) /* manifests held in memory until the commit */
#define LINK_HOPS 8
#define INDEX_DEPTH 4 /* an index of indexes of … */
#define COPY_BUF (1024 * 1024)
#define READ_BLOCK (64 * 1024)

#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar"
#define MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define ANN_REF_NAME "org.opencontainers.image.ref.name" /* skopeo: the tag only */
#define ANN_IMAGE_NAME "io.containerd.image.name"	 /* docker save >= 25: the reference */

/* One archive member that may be looked up by name. */
struct entry {
	char *name;   /* cleaned: "blobs/sha256/…", "abc/layer.tar" */
	char *target; /* a link's cleaned target; NULL for a file */
	char *tmp;    /* a file's temp file, until committed or removed */
	char digest[DIGEST_STR_SIZE];
	long long size;
	int gzip;   /* starts with the gzip magic bytes */
	int keep;   /* a blob some image uses: committed */
	size_t seq; /* of two members with one name, the later one counts, as tar extracts */
};

struct manifest_out {
	char digest[DIGEST_STR_SIZE];
	char type[MEDIA_TYPE_MAX];
	char *data;
	size_t len;
};

struct tag_out {
	struct image_ref ref;
	char digest[DIGEST_STR_SIZE];
};

/* One archive being imported: made in import_file, freed by import_free. */
struct import {
	const char *file;
	struct store *s;
	const struct image_ref *name; /* --name, or NULL */
	struct entry *entries;
	size_t nentries, capentries;
	struct manifest_out *manifests; /* in commit order: an index after its children */
	size_t nmanifests, capmanifests, manifest_bytes;
	struct tag_out *tags;
	size_t ntags, captags;
	char *buf; /* COPY_BUF bytes */
	long long bytes;
	struct archive_progress progress;
	char err[512];
};

static int import_fail(struct import *im, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int import_fail(struct import *im, const char *fmt, ...)
{
	va_list ap;

	if (im->err[0] != '\0')
		return -1; /* the first reason is the one to report */
	va_start(ap, fmt);
	vsnprintf(im->err, sizeof(im->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* ARR with room for one more element of SIZE bytes (reallocated when full), or NULL (ARR is
 * then unchanged). */
static void *grow(void *arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *q;

	if (n < *cap)
		return arr;
	ncap = *cap ? *cap * 2 : 16;
	q = realloc(arr, ncap * size);
	if (q)
		*cap = ncap;
	return q;
}

/* --- names --- */

/* Joins DIR ("" for the top) and PATH and resolves "." and ".." lexically into OUT ("a/b"); a
 * leading "/" means the archive's top. -1 when it climbs above the top, is empty or too long. */
static int path_clean(const char *dir, const char *path, char *out, size_t outlen)
{
	char buf[2 * ARCHIVE_PATH_MAX + 2], *tok, *save = NULL, *slash;
	size_t n = 0, len;
	int w;

	w = snprintf(buf, sizeof(buf), "%s/%s", path[0] == '/' ? "" : dir, path);
	if (w < 0 || (size_t)w >= sizeof(buf) || outlen == 0)
		return -1;
	out[0] = '\0';
	for (tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (strcmp(tok, ".") == 0)
			continue;
		if (strcmp(tok, "..") == 0) {
			if (n == 0)
				return -1;
			slash = strrchr(out, '/');
			n = slash ? (size_t)(slash - out) : 0;
			out[n] = '\0';
			continue;
		}
		len = strlen(tok);
		if (n + 1 + len + 1 > outlen)
			return -1;
		if (n > 0)
			out[n++] = '/';
		memcpy(out + n, tok, len + 1);
		n += len;
	}
	return n > 0 ? 0 : -1;
}

/* "blobs/sha256/<hex>", "<hex>.json" (a docker config) and "<hex>.tar" (a skopeo layer) are
 * named by their digest: 1 with it in OUT. */
static int name_digest(const char *name, char out[DIGEST_STR_SIZE])
{
	const char *hex = name;

	if (strncmp(name, "blobs/sha256/", 13) == 0) {
		hex = name + 13;
		if (strlen(hex) != DIGEST_HEX_LEN)
			return 0;
	} else if (strlen(name) <= DIGEST_HEX_LEN || (strcmp(name + DIGEST_HEX_LEN, ".json") != 0 &&
						      strcmp(name + DIGEST_HEX_LEN, ".tar") != 0)) {
		return 0;
	}
	snprintf(out, DIGEST_STR_SIZE, "sha256:%.64s", hex);
	return digest_check(out) == 0;
}

/* --- staging: the archive into temp files --- */

static struct entry *entry_add(struct import *im, const char *name)
{
	struct entry *e;

	if (im->nentries >= ENTRIES_MAX) {
		import_fail(im, "more than %d members", ENTRIES_MAX);
		return NULL;
	}
	e = grow(im->entries, &im->capentries, im->nentries, sizeof(*e));
	if (!e)
		goto oom;
	im->entries = e;
	e = &im->entries[im->nentries];
	memset(e, 0, sizeof(*e));
	e->seq = im->nentries;
	e->name = strdup(name);
	if (!e->name)
		goto oom;
	im->nentries++;
	return e;
oom:
	import_fail(im, "out of memory");
	return NULL;
}

/* Streams the member's data into a temp file, hashing it; the file stays in ROOT/tmp. */
static int stage_file(struct import *im, struct archive *a, struct entry *e)
{
	unsigned char head[2];
	size_t headlen = 0;
	struct store_tmp t;
	la_ssize_t n;
	int rc = -1;

	if (store_tmp_begin(im->s, &t) != 0)
		return import_fail(im, "cannot create a temp file in %s/tmp: %s", im->s->root,
				   strerror(errno));
	while ((n = archive_read_data(a, im->buf, COPY_BUF)) > 0) {
		if (archive_interrupted()) {
			import_fail(im, "interrupted by signal %d", archive_interrupted());
			goto out;
		}
		for (la_ssize_t i = 0; i < n && headlen < sizeof(head); i++)
			head[headlen++] = (unsigned char)im->buf[i];
		if (store_tmp_write(&t, im->buf, (size_t)n) != 0) {
			import_fail(im, "writing to %s/tmp: %s", im->s->root, strerror(errno));
			goto out;
		}
		im->bytes += n;
		archive_progress_update(&im->progress, archive_filter_bytes(a, -1));
	}
	if (n < 0) {
		import_fail(im, "%s: %s", e->name, archive_error_string(a));
		goto out;
	}
	if (store_tmp_flush(&t) != 0 || digest_final(t.dg, e->digest) != 0) {
		import_fail(im, "writing to %s/tmp: %s", im->s->root, strerror(errno));
		goto out;
	}
	e->size = t.written;
	e->gzip = headlen == 2 && head[0] == 0x1f && head[1] == 0x8b;
	e->tmp = strdup(t.path);
	if (!e->tmp) {
		import_fail(im, "out of memory");
		goto out;
	}
	t.path[0] = '\0'; /* so that store_tmp_abort closes the file but leaves it */
	rc = 0;
out:
	store_tmp_abort(&t);
	return rc;
}

/* A regular file is staged, a symbolic or hard link remembered; anything else is skipped. */
static int stage_entry(struct import *im, struct archive *a, struct archive_entry *ae)
{
	char name[ARCHIVE_PATH_MAX], target[ARCHIVE_PATH_MAX], want[DIGEST_STR_SIZE], *slash;
	const char *path = archive_entry_pathname(ae), *hard = archive_entry_hardlink(ae);
	mode_t type = archive_entry_filetype(ae);
	struct entry *e;

	if (!path || path_clean("", path, name, sizeof(name)) != 0)
		return 0; /* "./", or a name nothing could look up */
	if (hard) {
		if (path_clean("", hard, target, sizeof(target)) != 0)
			return 0;
	} else if (type == AE_IFLNK) {
		slash = strrchr(name, '/');
		if (slash)
			*slash = '\0';
		if (!archive_entry_symlink(ae) ||
		    path_clean(slash ? name : "", archive_entry_symlink(ae), target,
			       sizeof(target)) != 0)
			return 0;
		if (slash)
			*slash = '/';
	} else if (type != AE_IFREG) {
		return 0;
	}
	e = entry_add(im, name);
	if (!e)
		return -1;
	if (hard || type == AE_IFLNK) {
		e->target = strdup(target);
		return e->target ? 0 : import_fail(im, "out of memory");
	}
	if (stage_file(im, a, e) != 0)
		return -1;
	if (name_digest(e->name, want) && strcmp(want, e->digest) != 0)
		return import_fail(im, "%s: digest mismatch: the name says %s, the content is %s",
				   e->name, want, e->digest);
	return 0;
}

static int stage_archive(struct import *im)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ae;
	int r, rc = -1;

	if (!a)
		return import_fail(im, "out of memory");
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, im->file, READ_BLOCK) != ARCHIVE_OK) {
		if (archive_errno(a) > 0)
			import_fail(im, "cannot open: %s", strerror(archive_errno(a)));
		else
			import_fail(im, "%s", archive_error_string(a));
		goto out;
	}
	while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		if (archive_interrupted()) {
			import_fail(im, "interrupted by signal %d", archive_interrupted());
			goto out;
		}
		if (stage_entry(im, a, ae) != 0)
			goto out;
	}
	if (r != ARCHIVE_EOF) {
		import_fail(im, "%s", archive_error_string(a));
		goto out;
	}
	rc = 0;
out:
	archive_read_free(a);
	return rc;
}

/* --- looking members up --- */

static int entry_cmp(const void *pa, const void *pb)
{
	const struct entry *a = pa, *b = pb;
	int c = strcmp(a->name, b->name);

	if (c != 0)
		return c;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int entry_name_cmp(const void *pa, const void *pb)
{
	const struct entry *a = pa, *b = pb;

	return strcmp(a->name, b->name);
}

static void entry_free(struct entry *e)
{
	if (e->tmp)
		unlink(e->tmp);
	free(e->tmp);
	free(e->target);
	free(e->name);
}

/* Sorts the members by name for entry_find; of several with one name only the last stays. */
static void entries_index(struct import *im)
{
	size_t i, n = 0;

	if (im->nentries == 0)
		return;
	qsort(im->entries, im->nentries, sizeof(*im->entries), entry_cmp);
	for (i = 0; i < im->nentries; i++) {
		if (i + 1 < im->nentries &&
		    strcmp(im->entries[i].name, im->entries[i + 1].name) == 0) {
			entry_free(&im->entries[i]);
			continue;
		}
		im->entries[n++] = im->entries[i];
	}
	im->nentries = n;
}

/* The file NAME is, following links. NULL when absent. */
static struct entry *entry_find(struct import *im, const char *name)
{
	struct entry key, *e;

	if (im->nentries == 0) /* bsearch wants an array, even an empty one */
		return NULL;
	for (int hops = 0; hops <= LINK_HOPS; hops++) {
		key.name = (char *)name;
		e = bsearch(&key, im->entries, im->nentries, sizeof(*e), entry_name_cmp);
		if (!e || !e->target)
			return e;
		name = e->target;
	}
	return NULL;
}

/* A path as manifest.json gives it. */
static struct entry *entry_find_path(struct import *im, const char *path)
{
	char name[ARCHIVE_PATH_MAX];

	if (!path || path_clean("", path, name, sizeof(name)) != 0)
		return NULL;
	return entry_find(im, name);
}

/* The blob DIGEST of an OCI layout; -1 with err set when the digest is not one we store. */
static int blob_find(struct import *im, const char *digest, struct entry **out)
{
	char name[32 + DIGEST_HEX_LEN];

	if (!digest || digest_check(digest) != 0)
		return import_fail(im, "invalid or unsupported digest \"%.80s\"",
				   digest ? digest : "");
	snprintf(name, sizeof(name), "blobs/sha256/%s", digest_hex(digest));
	*out = entry_find(im, name);
	return 0;
}

/* A staged file of at most JSON_MAX bytes, into a malloc'd, NUL-terminated buffer. */
static int entry_read(struct import *im, const struct entry *e, char **data, size_t *len)
{
	char *buf;
	int fd;

	if (e->size > JSON_MAX)
		return import_fail(im, "%s: %lld bytes, more than the %d a JSON document may have",
				   e->name, e->size, JSON_MAX);
	buf = malloc((size_t)e->size + 1);
	if (!buf)
		return import_fail(im, "out of memory");
	fd = open(e->tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || store_read_exact(fd, buf, (size_t)e->size) != 0) {
		import_fail(im, "%s: reading it back: %s", e->name, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(buf);
		return -1;
	}
	close(fd);
	buf[e->size] = '\0';
	*data = buf;
	*len = (size_t)e->size;
	return 0;
}

static json_t *json_parse(struct import *im, const char *what, const char *data, size_t len)
{
	json_error_t jerr;
	json_t *doc = json_loadb(data, len, 0, &jerr);

	if (!doc)
		import_fail(im, "%s: invalid JSON: %s (line %d)", what, jerr.text, jerr.line);
	return doc;
}

static json_t *entry_json(struct import *im, const struct entry *e)
{
	json_t *doc;
	char *data;
	size_t len;

	if (entry_read(im, e, &data, &len) != 0)
		return NULL;
	doc = json_parse(im, e->name, data, len);
	free(data);
	return doc;
}

/* --- the plan: what will be committed --- */

/* Takes DATA. A manifest planned twice (two tags of one image) is kept once. */
static int add_manifest(struct import *im, const char *digest, const char *type, char *data,
			size_t len)
{
	struct manifest_out *m;

	for (size_t i = 0; i < im->nmanifests; i++) {
		if (strcmp(im->manifests[i].digest, digest) == 0) {
			free(data);
			return 0;
		}
	}
	if (strlen(type) >= MEDIA_TYPE_MAX) {
		free(data);
		return import_fail(im, "manifest %s: media type too long", digest);
	}
	if (im->manifest_bytes + len > PENDING_MAX) {
		free(data);
		return import_fail(im, "more than %d bytes of manifests", PENDING_MAX);
	}
	m = grow(im->manifests, &im->capmanifests, im->nmanifests, sizeof(*m));
	if (!m) {
		free(data);
		return import_fail(im, "out of memory");
	}
	im->manifests = m;
	m = &im->manifests[im->nmanifests++];
	snprintf(m->digest, sizeof(m->digest), "%s", digest);
	snprintf(m->type, sizeof(m->type), "%s", type);
	m->data = data;
	m->len = len;
	im->manifest_bytes += len;
	return 0;
}

static int manifest_planned(const struct import *im, const char *digest)
{
	for (size_t i = 0; i < im->nmanifests; i++) {
		if (strcmp(im->manifests[i].digest, digest) == 0)
			return 1;
	}
	return 0;
}

static int add_tag(struct import *im, const struct image_ref *ref, const char *digest)
{
	struct tag_out *t;

	if (ref->tag[0] == '\0')
		return 0; /* "name@digest": nothing to tag */
	for (size_t i = 0; i < im->ntags; i++) {
		t = &im->tags[i];
		if (strcmp(t->ref.registry, ref->registry) != 0 ||
		    strcmp(t->ref.repo, ref->repo) != 0 || strcmp(t->ref.tag, ref->tag) != 0)
			continue;
		if (strcmp(t->digest, digest) == 0)
			return 0;
		return import_fail(im, "%s/%s:%s names two different images (%s and %s)",
				   ref->registry, ref->repo, ref->tag, t->digest, digest);
	}
	t = grow(im->tags, &im->captags, im->ntags, sizeof(*t));
	if (!t)
		return import_fail(im, "out of memory");
	im->tags = t;
	t = &im->tags[im->ntags++];
	t->ref = *ref;
	t->ref.digest[0] = '\0';
	snprintf(t->digest, sizeof(t->digest), "%s", digest);
	return 0;
}

/* A reference as the archive names it ("busybox:latest", "ghcr.io/org/app:1.2"). */
static int add_tag_named(struct import *im, const char *name, const char *digest)
{
	struct image_ref ref;
	char why[128];

	if (ref_parse(name, &ref, why, sizeof(why)) != 0)
		return import_fail(im, "image %s is named \"%.200s\": %s", digest, name, why);
	return add_tag(im, &ref, digest);
}

/* An image the archive does not name: --name names it, or it is stored by digest only. */
static int add_untagged(struct import *im, const char *digest)
{
	if (im->name)
		return add_tag(im, im->name, digest);
	log_warn("import_untagged", "file=\"%s\" digest=%s hint=\"name it with --name REPO[:TAG]\"",
		 im->file, digest);
	return 0;
}

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
		le = entry_find_path(im, json_string_value(v));
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
		return add_untagged(im, digest);
	json_array_foreach(tags, i, v)
	{
		if (!json_is_string(v))
			return import_fail(
			    im, "manifest.json: image %zu: RepoTags holds a non-string", idx);
		if (add_tag_named(im, json_string_value(v), digest) != 0)
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
	ce = entry_find_path(im, cfgname);
	if (!ce)
		return import_fail(im, "%s: named by manifest.json, not in the archive", cfgname);
	cfg = entry_json(im, ce);
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
	rc = add_manifest(im, digest, MT_DOCKER_MANIFEST, data, strlen(data));
	data = NULL;
	if (rc == 0)
		rc = docker_tags(im, json_object_get(item, "RepoTags"), idx, digest);
out:
	free(data);
	json_decref(m);
	json_decref(cfg);
	return rc;
}

static int plan_docker(struct import *im, const struct entry *mf)
{
	json_t *doc = entry_json(im, mf), *item;
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
	if (manifest_planned(im, digest))
		return 0;
	if (entry_read(im, e, &data, &len) != 0 || !(doc = json_parse(im, e->name, data, len)))
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
		rc = add_manifest(im, digest, type, data, len);
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
		return add_tag_named(im, full, digest);
	if (!name)
		return add_untagged(im, digest);
	if (strchr(name, '/') || strchr(name, ':'))
		return add_tag_named(im, name, digest);
	if (!ref_tag_valid(name))
		return import_fail(im, "image %s: \"%.200s\" is not a valid tag", digest, name);
	if (!im->name)
		return import_fail(im,
				   "image %s is named only \"%s\", a tag: give its repository with "
				   "--name REPO",
				   digest, name);
	ref = *im->name;
	snprintf(ref.tag, sizeof(ref.tag), "%s", name);
	return add_tag(im, &ref, digest);
}

static int plan_oci(struct import *im, const struct entry *layout, const struct entry *index)
{
	json_t *lay = entry_json(im, layout), *idx = NULL, *desc;
	size_t i;
	int rc = -1;

	if (!lay)
		return -1;
	if (!json_is_string(json_object_get(lay, "imageLayoutVersion"))) {
		import_fail(im, "oci-layout: no imageLayoutVersion");
		goto out;
	}
	idx = entry_json(im, index);
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

/* docker save >= 25 writes an OCI layout and a manifest.json: the layout keeps the original
 * digests, so it wins. */
static int plan(struct import *im)
{
	struct entry *layout = entry_find(im, "oci-layout"), *index = entry_find(im, "index.json");
	struct entry *mf = entry_find(im, "manifest.json");

	if (layout && index)
		return plan_oci(im, layout, index);
	if (mf)
		return plan_docker(im, mf);
	return import_fail(
	    im, "neither a docker-archive (no manifest.json) nor an OCI image layout (no "
		"oci-layout and index.json)");
}

/* --- the commit --- */

/* The temp file was hashed as it was written and its digest checked by the plan;
 * store_tmp_commit_blob needs it open only to fsync it before the rename. */
static int commit_blob(struct import *im, struct entry *e)
{
	struct store_tmp t;
	char why[256];

	memset(&t, 0, sizeof(t));
	t.fd = open(e->tmp, O_RDONLY | O_CLOEXEC);
	if (t.fd < 0)
		return import_fail(im, "%s: %s", e->tmp, strerror(errno));
	snprintf(t.path, sizeof(t.path), "%s", e->tmp);
	free(e->tmp);
	e->tmp = NULL; /* renamed into place or removed by the commit */
	if (store_tmp_commit_blob(im->s, &t, e->digest, why, sizeof(why)) != 0)
		return import_fail(im, "%s", why);
	return 0;
}

static int commit(struct import *im)
{
	char why[256], ref[REF_HOST_MAX + REF_NAME_MAX + REF_TAG_MAX + 4];
	time_t now = time(NULL);
	size_t i;

	for (i = 0; i < im->nentries; i++) {
		if (im->entries[i].keep && im->entries[i].tmp &&
		    commit_blob(im, &im->entries[i]) != 0)
			return -1;
	}
	for (i = 0; i < im->nmanifests; i++) {
		struct manifest_out *m = &im->manifests[i];

		if (store_manifest_put(im->s, m->digest, m->data, m->len, m->type, why,
				       sizeof(why)) != 0)
			return import_fail(im, "manifest %s: %s", m->digest, why);
	}
	for (i = 0; i < im->ntags; i++) {
		struct tag_out *t = &im->tags[i];

		if (ref_format(&t->ref, ref, sizeof(ref)) != 0)
			snprintf(ref, sizeof(ref), "%s", t->ref.repo);
		if (store_tag_put(im->s, t->ref.registry, t->ref.repo, t->ref.tag, t->digest,
				  now) != 0)
			return import_fail(im, "tag %s: %s", ref, strerror(errno));
		log_info("imported", "file=\"%s\" image=%s digest=%s", im->file, ref, t->digest);
	}
	return 0;
}

/* Removes every temp file left (all of them after a failure), frees the rest. */
static void import_free(struct import *im)
{
	for (size_t i = 0; i < im->nentries; i++)
		entry_free(&im->entries[i]);
	for (size_t i = 0; i < im->nmanifests; i++)
		free(im->manifests[i].data);
	free(im->entries);
	free(im->manifests);
	free(im->tags);
	free(im->buf);
}

static int import_file(struct store *s, const char *file, const struct image_ref *name)
{
	struct import im = {.file = file, .s = s, .name = name};
	struct stat st;
	int rc = -1;

	archive_progress_start(&im.progress, "import", file,
			       stat(file, &st) == 0 ? (long long)st.st_size : 0);
	im.buf = malloc(COPY_BUF);
	if (!im.buf)
		import_fail(&im, "out of memory");
	else if (stage_archive(&im) == 0) {
		entries_index(&im);
		if (plan(&im) == 0 && commit(&im) == 0)
			rc = 0;
	}
	archive_progress_end(&im.progress);
	if (rc == 0)
		log_info("import_done", "file=\"%s\" bytes=%lld members=%zu manifests=%zu tags=%zu",
			 file, im.bytes, im.nentries, im.nmanifests, im.ntags);
	else
		fprintf(stderr, "microscale-registry import: %s: %s\n", file, im.err);
	import_free(&im);
	return rc;
}

static void import_usage(FILE *out)
{
	fprintf(out, "usage: microscale-registry import [--root DIR | -c FILE] [--name REPO[:TAG]] "
		     "FILE...\n");
}

static void import_help(void)
{
	import_usage(stdout);
	printf(
	    "\nLoads docker-archive (docker save, skopeo docker-archive:) and OCI image layout\n"
	    "(skopeo oci-archive:) tarballs, plain or compressed, into the store, checking every\n"
	    "digest; an archive is imported whole or not at all. Images are tagged as the archive\n"
	    "names them (manifest.json RepoTags, index.json annotations), under docker.io unless\n"
	    "the name says otherwise.\n\n"
	    "  --root DIR        the store (default: the config's root)\n"
	    "  -c FILE           the daemon's config\n"
	    "  --name REPO[:TAG] the repository of images named by a tag only (skopeo's\n"
	    "                    oci-archive:FILE:TAG), and the name of untagged ones (TAG,\n"
	    "                    default latest)\n");
}

int archive_import_main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"root", required_argument, NULL, 'R'},
					     {"name", required_argument, NULL, 'N'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *config = NULL, *root = NULL, *name = NULL;
	struct image_ref ref;
	struct store s = {0};
	char err[512] = "";
	int ch, failed = 0;

	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'R':
			root = optarg;
			break;
		case 'N':
			name = optarg;
			break;
		case 'h':
			import_help();
			return 0;
		default:
			import_usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		import_usage(stderr);
		return 2;
	}
	if (name && ref_parse(name, &ref, err, sizeof(err)) == 0 && ref.digest[0])
		snprintf(err, sizeof(err), "expected REPO[:TAG], not a digest");
	if (name && (ref.digest[0] || err[0])) {
		fprintf(stderr, "microscale-registry import: --name %s: %s\n", name, err);
		return 2;
	}
	if (archive_store_open(&s, config, root, err, sizeof(err)) != 0) {
		fprintf(stderr, "microscale-registry import: %s\n", err);
		return 1;
	}
	archive_catch_signals();
	for (int i = optind; i < argc && !archive_interrupted(); i++) {
		if (import_file(&s, argv[i], name ? &ref : NULL) != 0)
			failed = 1;
	}
	store_close(&s);
	return failed || archive_interrupted() ? 1 : 0;
}
