/* import: one archive being imported, as its phases share it: the members by name (links
 * followed, never out of the archive) and their JSON, and the plan the Docker and OCI planners
 * fill (manifests in commit order, tags). The first failure is the one reported. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "import.h"
#include "ref.h"

#define JSON_MAX MANIFEST_MAX_BYTES    /* manifest.json, index.json, a config, a manifest */
#define PENDING_MAX (64 * 1024 * 1024) /* manifests held in memory until the commit */
#define LINK_HOPS 8

int import_fail(struct import *im, const char *fmt, ...)
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

/* Joins DIR ("" for the top) and PATH and resolves "." and ".." lexically into OUT ("a/b"); a
 * leading "/" means the archive's top. -1 when it climbs above the top, is empty or too long. */
int import_path_clean(const char *dir, const char *path, char *out, size_t outlen)
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

struct entry *import_entry_add(struct import *im, const char *name)
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

/* Sorts the members by name for import_entry; of several with one name only the last stays. */
void import_entries_index(struct import *im)
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
struct entry *import_entry(struct import *im, const char *name)
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
struct entry *import_entry_path(struct import *im, const char *path)
{
	char name[ARCHIVE_PATH_MAX];

	if (!path || import_path_clean("", path, name, sizeof(name)) != 0)
		return NULL;
	return import_entry(im, name);
}

/* A staged file of at most JSON_MAX bytes, into a malloc'd, NUL-terminated buffer. */
int import_entry_read(struct import *im, const struct entry *e, char **data, size_t *len)
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

json_t *import_json_parse(struct import *im, const char *what, const char *data, size_t len)
{
	json_error_t jerr;
	json_t *doc = json_loadb(data, len, 0, &jerr);

	if (!doc)
		import_fail(im, "%s: invalid JSON: %s (line %d)", what, jerr.text, jerr.line);
	return doc;
}

json_t *import_entry_json(struct import *im, const struct entry *e)
{
	json_t *doc;
	char *data;
	size_t len;

	if (import_entry_read(im, e, &data, &len) != 0)
		return NULL;
	doc = import_json_parse(im, e->name, data, len);
	free(data);
	return doc;
}

/* Takes DATA. A manifest planned twice (two tags of one image) is kept once. */
int import_add_manifest(struct import *im, const char *digest, const char *type, char *data,
			size_t len)
{
	struct manifest_out *m;

	for (size_t i = 0; i < im->nmanifests; i++) {
		if (strcmp(im->manifests[i].digest, digest) == 0) {
			free(data);
			return 0;
		}
	}
	if (!store_media_type_valid(type)) { /* else the commit would fail after the blobs */
		free(data);
		return import_fail(im, "manifest %s: media type \"%.80s\" cannot be stored", digest,
				   type);
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

int import_planned(const struct import *im, const char *digest)
{
	for (size_t i = 0; i < im->nmanifests; i++) {
		if (strcmp(im->manifests[i].digest, digest) == 0)
			return 1;
	}
	return 0;
}

int import_add_tag(struct import *im, const struct image_ref *ref, const char *digest)
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
int import_add_tag_named(struct import *im, const char *name, const char *digest)
{
	struct image_ref ref;
	char why[128];

	if (ref_parse(name, &ref, why, sizeof(why)) != 0)
		return import_fail(im, "image %s is named \"%.200s\": %s", digest, name, why);
	return import_add_tag(im, &ref, digest);
}

/* An image the archive does not name: --name names it, or it is stored by digest only. */
int import_add_untagged(struct import *im, const char *digest)
{
	if (im->name)
		return import_add_tag(im, im->name, digest);
	log_warn("import_untagged", "file=\"%s\" digest=%s hint=\"name it with --name REPO[:TAG]\"",
		 im->file, digest);
	return 0;
}

/* Removes every temp file left (all of them after a failure), frees the rest. */
void import_free(struct import *im)
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
