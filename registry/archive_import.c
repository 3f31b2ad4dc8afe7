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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "import.h"
#include "ref.h"

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

	if (!path || import_path_clean("", path, name, sizeof(name)) != 0)
		return 0; /* "./", or a name nothing could look up */
	if (hard) {
		if (import_path_clean("", hard, target, sizeof(target)) != 0)
			return 0;
	} else if (type == AE_IFLNK) {
		slash = strrchr(name, '/');
		if (slash)
			*slash = '\0';
		if (!archive_entry_symlink(ae) ||
		    import_path_clean(slash ? name : "", archive_entry_symlink(ae), target,
				      sizeof(target)) != 0)
			return 0;
		if (slash)
			*slash = '/';
	} else if (type != AE_IFREG) {
		return 0;
	}
	e = import_entry_add(im, name);
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

/* docker save >= 25 writes an OCI layout and a manifest.json: the layout keeps the original
 * digests, so it wins. */
static int plan(struct import *im)
{
	struct entry *layout = import_entry(im, "oci-layout"),
		     *index = import_entry(im, "index.json");
	struct entry *mf = import_entry(im, "manifest.json");

	if (layout && index)
		return archive_oci_plan(im, layout, index);
	if (mf)
		return archive_docker_plan(im, mf);
	return import_fail(
	    im, "neither a docker-archive (no manifest.json) nor an OCI image layout (no "
		"oci-layout and index.json)");
}

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

		if (store_manifest_put(im->s, m->digest, m->data, m->len, m->type, NULL, NULL, why,
				       sizeof(why)) != 0)
			return import_fail(im, "manifest %s: %s", m->digest, why);
	}
	for (i = 0; i < im->ntags; i++) {
		struct tag_out *t = &im->tags[i];

		if (ref_format(&t->ref, ref, sizeof(ref)) != 0)
			snprintf(ref, sizeof(ref), "%s", t->ref.repo);
		if (store_tag_put(im->s, t->ref.registry, t->ref.repo, t->ref.tag, t->digest, now,
				  NULL, NULL) != 0)
			return import_fail(im, "tag %s: %s", ref, strerror(errno));
		log_info("imported", "file=\"%s\" image=%s digest=%s", im->file, ref, t->digest);
	}
	return 0;
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
		import_entries_index(&im);
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
	static const struct option opts[] = {{"name", required_argument, NULL, 'N'},
					     {NULL, 0, NULL, 0}};
	struct archive_opts o = {0};
	const char *name = NULL;
	struct image_ref ref;
	struct store s = {0};
	char err[512] = "";
	int ch, failed = 0;

	while ((ch = archive_getopt(argc, argv, "", opts, &o)) != -1) {
		switch (ch) {
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
	if (archive_store_open(&s, o.config, o.root, err, sizeof(err)) != 0) {
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
