/* archive_export: "microscale-registry export -o FILE REF…": cached images as a docker-archive,
 * the layout `docker save` and skopeo write, which docker load, skopeo, podman and the Mesos
 * containerizer's local --docker_registry read:
 *
 *   <config hex>.json        the image config
 *   <layer hex>.tar          each layer blob as stored (gzip'd or not: docker load takes both)
 *   <v1 id>/VERSION, json, layer.tar -> ../<layer hex>.tar
 *                            the legacy v1 chain, for readers that start from "repositories"
 *   manifest.json            [{"Config", "RepoTags", "Layers"}]
 *   repositories             {"name": {"tag": "<top v1 id>"}}
 *
 * Every image and blob is looked up before anything is written; the archive goes to FILE.tmp,
 * is fsynced and renamed, so FILE is either complete or as it was. Of an index, this node's
 * platform is exported, else linux/amd64. */
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

#define COPY_BUF (1024 * 1024)
#define CONFIG_MAX MANIFEST_MAX_BYTES
#define MEMBER_NAME_MAX (DIGEST_HEX_LEN + 16) /* "<hex>/layer.tar" */

/* One image to export. */
struct ximage {
	struct image_walk w; /* its config, then its layers */
	json_t *tags;	     /* RepoTags: ["busybox:latest", …] */
};

/* One export: made in archive_export_main, freed by xport_free. */
struct xport {
	struct store *s;
	const char *out;
	struct ximage *images;
	size_t nimages, capimages;
	json_t *counted; /* blob digests in total */
	json_t *written; /* member names already in the archive */
	long long total;
	struct archive *a;
	char *buf;
	struct archive_progress progress;
	char err[512];
};

static int xport_fail(struct xport *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int xport_fail(struct xport *x, const char *fmt, ...)
{
	va_list ap;

	if (x->err[0] != '\0')
		return -1;
	va_start(ap, fmt);
	vsnprintf(x->err, sizeof(x->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* --- which images --- */

/* "busybox:latest" for docker.io/library/busybox:latest, as docker save names it. */
static void familiar_name(const struct image_ref *r, char *out, size_t len)
{
	const char *repo = r->repo;

	if (strcmp(r->registry, "docker.io") != 0) {
		snprintf(out, len, "%s/%s:%s", r->registry, repo, r->tag);
		return;
	}
	if (strncmp(repo, "library/", 8) == 0 && !strchr(repo + 8, '/'))
		repo += 8;
	snprintf(out, len, "%s:%s", repo, r->tag);
}

/* The image DIGEST stands for: of an index, this node's platform, else linux/amd64. */
static int walk(struct xport *x, const char *ref, const char *digest, struct image_walk *w)
{
	const char *node[] = {image_node_platform(), NULL}, *amd64[] = {"linux/amd64", NULL};
	size_t i, n;
	int rc;

	rc = image_walk(x->s, digest, node, w);
	if (rc != 0 && strcmp(node[0], amd64[0]) != 0) {
		image_walk_free(w);
		rc = image_walk(x->s, digest, amd64, w);
	}
	if (rc != 0)
		return xport_fail(x, "%s: %s", ref, w->error);
	if (w->missing_manifest[0] != '\0')
		return xport_fail(x, "%s: manifest %s is not in the store", ref,
				  w->missing_manifest);
	if (w->nblobs == 0 || w->blobs[0].is_layer)
		return xport_fail(x, "%s: an image without a config", ref);
	/* Two children of one platform (variants): the first is the image. */
	for (n = 1; n < w->nblobs && w->blobs[n].is_layer; n++)
		;
	w->nblobs = n;
	for (i = 0; i < w->nblobs; i++) {
		if (!w->blobs[i].present)
			return xport_fail(x, "%s: blob %s is not in the store", ref,
					  w->blobs[i].digest);
	}
	return 0;
}

static int same_image(const struct image_walk *a, const struct image_walk *b)
{
	if (a->nblobs != b->nblobs)
		return 0;
	for (size_t i = 0; i < a->nblobs; i++) {
		if (strcmp(a->blobs[i].digest, b->blobs[i].digest) != 0)
			return 0;
	}
	return 1;
}

/* Adds W (taken) with the tag NAME ("" for none), or NAME to the same image added before. */
static int add_image(struct xport *x, struct image_walk *w, const char *name)
{
	struct ximage *im = NULL;
	void *p;

	for (size_t i = 0; i < x->nimages && !im; i++) {
		if (same_image(&x->images[i].w, w))
			im = &x->images[i];
	}
	if (im) {
		image_walk_free(w);
	} else {
		if (x->nimages == x->capimages) {
			x->capimages = x->capimages ? x->capimages * 2 : 8;
			p = realloc(x->images, x->capimages * sizeof(*x->images));
			if (!p)
				return xport_fail(x, "out of memory");
			x->images = p;
		}
		im = &x->images[x->nimages++];
		im->w = *w;
		memset(w, 0, sizeof(*w));
		im->tags = json_array();
		for (size_t i = 0; i < im->w.nblobs; i++) {
			const struct image_blob *b = &im->w.blobs[i];

			if (!json_object_get(x->counted, b->digest)) {
				json_object_set_new(x->counted, b->digest, json_true());
				x->total += b->size;
			}
		}
	}
	if (!im->tags ||
	    (name[0] != '\0' && json_array_append_new(im->tags, json_string(name)) != 0))
		return xport_fail(x, "out of memory");
	return 0;
}

static int plan_ref(struct xport *x, const char *refstr)
{
	char digest[DIGEST_STR_SIZE], name[REF_HOST_MAX + REF_NAME_MAX + REF_TAG_MAX + 4] = "";
	char why[128];
	struct image_walk w;
	struct image_ref ref;
	time_t at;
	int rc;

	if (ref_parse(refstr, &ref, why, sizeof(why)) != 0)
		return xport_fail(x, "%s: %s", refstr, why);
	if (ref.digest[0] != '\0')
		snprintf(digest, sizeof(digest), "%s", ref.digest);
	else if (store_tag_get(x->s, ref.registry, ref.repo, ref.tag, digest, &at) != 0)
		return xport_fail(x, "%s: not in the store", refstr);
	if (ref.tag[0] != '\0')
		familiar_name(&ref, name, sizeof(name));
	memset(&w, 0, sizeof(w));
	rc = walk(x, refstr, digest, &w);
	if (rc == 0)
		rc = add_image(x, &w, name);
	image_walk_free(&w);
	return rc;
}

/* --- writing --- */

/* Was NAME written already? If not, it is now counted as written. */
static int already_written(struct xport *x, const char *name)
{
	if (json_object_get(x->written, name))
		return 1;
	json_object_set_new(x->written, name, json_true());
	return 0;
}

static int write_header(struct xport *x, const char *name, long long size, const char *symlink)
{
	struct archive_entry *ae = archive_entry_new();
	int rc;

	if (!ae)
		return xport_fail(x, "out of memory");
	archive_entry_set_pathname(ae, name);
	archive_entry_set_filetype(ae, symlink ? AE_IFLNK : AE_IFREG);
	archive_entry_set_perm(ae, symlink ? 0777 : 0644);
	archive_entry_set_size(ae, symlink ? 0 : size);
	if (symlink)
		archive_entry_set_symlink(ae, symlink);
	archive_entry_set_mtime(ae, 0, 0);
	rc = archive_write_header(x->a, ae);
	archive_entry_free(ae);
	if (rc != ARCHIVE_OK)
		return xport_fail(x, "%s: %s", x->out, archive_error_string(x->a));
	return 0;
}

static int write_bytes(struct xport *x, const char *name, const char *data, size_t len)
{
	if (write_header(x, name, (long long)len, NULL) != 0)
		return -1;
	if (len > 0 && archive_write_data(x->a, data, len) != (la_ssize_t)len)
		return xport_fail(x, "%s: %s", x->out, archive_error_string(x->a));
	return 0;
}

static int write_json(struct xport *x, const char *name, const json_t *doc)
{
	char *data = json_dumps(doc, JSON_COMPACT);
	int rc;

	if (!data)
		return xport_fail(x, "out of memory");
	rc = write_bytes(x, name, data, strlen(data));
	free(data);
	return rc;
}

/* A stored blob as the member NAME, streamed. */
static int write_blob(struct xport *x, const char *name, const struct image_blob *b)
{
	long long left;
	off_t size;
	size_t n;
	int fd, rc = -1;

	if (already_written(x, name))
		return 0;
	fd = store_blob_open(x->s, b->digest, &size);
	if (fd < 0)
		return xport_fail(x, "blob %s: %s", b->digest, strerror(errno));
	if (write_header(x, name, (long long)size, NULL) != 0)
		goto out;
	for (left = size; left > 0; left -= (long long)n) {
		if (archive_interrupted()) {
			xport_fail(x, "interrupted by signal %d", archive_interrupted());
			goto out;
		}
		n = left < COPY_BUF ? (size_t)left : COPY_BUF;
		if (store_read_exact(fd, x->buf, n) != 0) {
			xport_fail(x, "blob %s: %s", b->digest,
				   errno ? strerror(errno) : "short read");
			goto out;
		}
		if (archive_write_data(x->a, x->buf, n) != (la_ssize_t)n) {
			xport_fail(x, "%s: %s", x->out, archive_error_string(x->a));
			goto out;
		}
		archive_progress_update(&x->progress, x->progress.done + (long long)n);
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

/* The config as JSON, for the top layer's v1 json; NULL when it is not a JSON object. */
static json_t *config_json(struct xport *x, const struct image_blob *config)
{
	json_t *doc = NULL;
	off_t size;
	char *data;
	int fd = store_blob_open(x->s, config->digest, &size);

	if (fd < 0)
		return NULL;
	if (size <= CONFIG_MAX && (data = malloc((size_t)size + 1))) {
		if (store_read_exact(fd, data, (size_t)size) == 0)
			doc = json_loadb(data, (size_t)size, 0, NULL);
		free(data);
	}
	close(fd);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

/* A v1 layer id, chained like docker's: each depends on its parent, the top one on the config
 * too, so two images sharing a base share its ids but never their top. */
static void v1_id(const char *parent, const char *layer, const char *config,
		  char out[DIGEST_HEX_LEN + 1])
{
	char buf[3 * DIGEST_STR_SIZE + 4], d[DIGEST_STR_SIZE] = "";

	snprintf(buf, sizeof(buf), "%s %s %s", parent, layer, config ? config : "");
	if (digest_buffer(buf, strlen(buf), d) != 0)
		snprintf(d, sizeof(d), "sha256:%064d", 0);
	snprintf(out, DIGEST_HEX_LEN + 1, "%s", digest_hex(d));
}

/* <id>/VERSION, <id>/json and <id>/layer.tar -> ../LAYER. The top layer's json carries the
 * config (Env, Cmd, …), as v1 readers expect. */
static int write_v1_layer(struct xport *x, const char *id, const char *parent, const char *layer,
			  const struct image_blob *config)
{
	char name[MEMBER_NAME_MAX], target[MEMBER_NAME_MAX + 4];
	json_t *doc = config ? config_json(x, config) : NULL;
	int rc;

	snprintf(name, sizeof(name), "%s/json", id);
	if (already_written(x, name)) {
		json_decref(doc);
		return 0;
	}
	if (!doc)
		doc = json_object();
	json_object_del(doc, "rootfs");
	json_object_del(doc, "history");
	if (!doc || json_object_set_new(doc, "id", json_string(id)) != 0 ||
	    (parent[0] != '\0' && json_object_set_new(doc, "parent", json_string(parent)) != 0)) {
		json_decref(doc);
		return xport_fail(x, "out of memory");
	}
	rc = write_json(x, name, doc);
	json_decref(doc);
	snprintf(name, sizeof(name), "%s/VERSION", id);
	if (rc == 0)
		rc = write_bytes(x, name, "1.0", 3);
	snprintf(name, sizeof(name), "%s/layer.tar", id);
	snprintf(target, sizeof(target), "../%s", layer);
	if (rc == 0)
		rc = write_header(x, name, 0, target);
	return rc;
}

/* repositories: {"busybox": {"latest": "<top v1 id>"}}. */
static int add_repositories(struct xport *x, json_t *repos, json_t *tags, const char *top)
{
	char name[REF_HOST_MAX + REF_NAME_MAX + REF_TAG_MAX + 4], *colon;
	json_t *v, *repo;
	size_t i;

	json_array_foreach(tags, i, v)
	{
		snprintf(name, sizeof(name), "%s", json_string_value(v));
		colon = strrchr(name, ':');
		if (!colon || top[0] == '\0')
			continue;
		*colon = '\0';
		repo = json_object_get(repos, name);
		if (!repo && json_object_set_new(repos, name, repo = json_object()) != 0)
			return xport_fail(x, "out of memory");
		if (json_object_set_new(repo, colon + 1, json_string(top)) != 0)
			return xport_fail(x, "out of memory");
	}
	return 0;
}

static int write_image(struct xport *x, const struct ximage *im, json_t *manifest, json_t *repos)
{
	const struct image_blob *config = &im->w.blobs[0], *b;
	char cfgname[MEMBER_NAME_MAX], lname[MEMBER_NAME_MAX];
	char id[DIGEST_HEX_LEN + 1] = "", parent[DIGEST_HEX_LEN + 1] = "";
	json_t *layers = json_array(), *item;
	size_t i;

	if (!layers)
		return xport_fail(x, "out of memory");
	snprintf(cfgname, sizeof(cfgname), "%s.json", digest_hex(config->digest));
	if (write_blob(x, cfgname, config) != 0)
		goto fail;
	for (i = 1; i < im->w.nblobs; i++) {
		b = &im->w.blobs[i];
		snprintf(lname, sizeof(lname), "%s.tar", digest_hex(b->digest));
		v1_id(parent, b->digest, i + 1 == im->w.nblobs ? config->digest : NULL, id);
		if (write_blob(x, lname, b) != 0 ||
		    write_v1_layer(x, id, parent, lname, i + 1 == im->w.nblobs ? config : NULL) !=
			0 ||
		    json_array_append_new(layers, json_string(lname)) != 0)
			goto fail;
		memcpy(parent, id, sizeof(parent));
	}
	item =
	    json_pack("{s:s, s:O, s:o}", "Config", cfgname, "RepoTags", im->tags, "Layers", layers);
	if (!item || json_array_append_new(manifest, item) != 0)
		return xport_fail(x, "out of memory");
	return add_repositories(x, repos, im->tags, id);
fail:
	json_decref(layers);
	return -1;
}

static int write_members(struct xport *x)
{
	json_t *manifest = json_array(), *repos = json_object();
	int rc = -1;

	if (!manifest || !repos) {
		xport_fail(x, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < x->nimages; i++) {
		if (write_image(x, &x->images[i], manifest, repos) != 0)
			goto out;
	}
	if (write_json(x, "manifest.json", manifest) == 0 &&
	    write_json(x, "repositories", repos) == 0)
		rc = 0;
out:
	json_decref(manifest);
	json_decref(repos);
	return rc;
}

/* FILE.tmp, then fsync and rename: FILE is complete or untouched. FILE.tmp is made new
 * (O_EXCL, O_NOFOLLOW): one that is there already -- another export's, a crash's, or a symbolic
 * link planted to have this export overwrite what it points at -- is refused and left as it is. */
static int write_archive(struct xport *x)
{
	char tmp[PATH_MAX];
	int fd, rc = -1, n = snprintf(tmp, sizeof(tmp), "%s.tmp", x->out);

	if (n < 0 || (size_t)n >= sizeof(tmp))
		return xport_fail(x, "%s: name too long", x->out);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 && errno == EEXIST)
		return xport_fail(x, "%s exists (another export, or left behind): remove it first",
				  tmp);
	if (fd < 0)
		return xport_fail(x, "%s: %s", tmp, strerror(errno));
	x->a = archive_write_new();
	if (!x->a || archive_write_set_format_pax_restricted(x->a) != ARCHIVE_OK ||
	    archive_write_open_fd(x->a, fd) != ARCHIVE_OK) {
		xport_fail(x, "%s: %s", tmp, x->a ? archive_error_string(x->a) : "out of memory");
		goto out;
	}
	archive_progress_start(&x->progress, "export", x->out, x->total);
	if (write_members(x) != 0)
		goto out;
	if (archive_write_close(x->a) != ARCHIVE_OK) {
		xport_fail(x, "%s: %s", tmp, archive_error_string(x->a));
		goto out;
	}
	if (fsync(fd) != 0 || rename(tmp, x->out) != 0) {
		xport_fail(x, "%s: %s", x->out, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	archive_progress_end(&x->progress);
	if (x->a)
		archive_write_free(x->a);
	x->a = NULL;
	close(fd);
	if (rc != 0)
		unlink(tmp);
	return rc;
}

static void xport_free(struct xport *x)
{
	for (size_t i = 0; i < x->nimages; i++) {
		image_walk_free(&x->images[i].w);
		json_decref(x->images[i].tags);
	}
	free(x->images);
	json_decref(x->counted);
	json_decref(x->written);
	free(x->buf);
}

static void export_usage(FILE *out)
{
	fprintf(out, "usage: microscale-registry export [--root DIR | -c FILE] -o FILE REF...\n");
}

static int export_run(struct xport *x, int nrefs, char **refs)
{
	x->counted = json_object();
	x->written = json_object();
	x->buf = malloc(COPY_BUF);
	if (!x->counted || !x->written || !x->buf)
		return xport_fail(x, "out of memory");
	for (int i = 0; i < nrefs; i++) {
		if (plan_ref(x, refs[i]) != 0)
			return -1;
	}
	if (write_archive(x) != 0)
		return -1;
	log_info("export_done", "file=\"%s\" images=%zu bytes=%lld", x->out, x->nimages, x->total);
	return 0;
}

int archive_export_main(int argc, char **argv)
{
	static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
					     {NULL, 0, NULL, 0}};
	struct archive_opts o = {0};
	struct xport x = {0};
	struct store s = {0};
	int ch, rc;

	while ((ch = archive_getopt(argc, argv, "o:", opts, &o)) != -1) {
		switch (ch) {
		case 'o':
			x.out = optarg;
			break;
		case 'h':
			export_usage(stdout);
			return 0;
		default:
			export_usage(stderr);
			return 2;
		}
	}
	if (!x.out || optind >= argc) {
		export_usage(stderr);
		return 2;
	}
	if (archive_store_open(&s, o.config, o.root, x.err, sizeof(x.err)) != 0) {
		fprintf(stderr, "microscale-registry export: %s\n", x.err);
		return 1;
	}
	x.s = &s;
	archive_catch_signals();
	rc = export_run(&x, argc - optind, argv + optind);
	if (rc != 0)
		fprintf(stderr, "microscale-registry export: %s\n", x.err);
	xport_free(&x);
	store_close(&s);
	return rc == 0 ? 0 : 1;
}
