/* import.h: what the files of "microscale-registry import" share, and only they: the import
 * being made (archive_import.c reads the tar and commits, import.c holds the members and the
 * plan, archive_docker.c and archive_oci.c plan), grouped by the file that defines it. */
#ifndef MS_IMPORT_H
#define MS_IMPORT_H

#include <jansson.h>

#include "registry.h"

#define ENTRIES_MAX 65536     /* files and links in one archive */
#define ARCHIVE_PATH_MAX 1024 /* of one archive member */
#define COPY_BUF (1024 * 1024)
#define READ_BLOCK (64 * 1024)

#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar"
#define MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"

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

/* import.c: the members, their JSON, the plan */
/* Sets the reason (the first one stays); returns -1. */
int import_fail(struct import *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Removes every temp file left (all of them after a failure), frees the rest. */
void import_free(struct import *im);
/* Joins DIR ("" for the top) and PATH and resolves "." and ".." lexically into OUT ("a/b"); a
 * leading "/" means the archive's top. -1 when it climbs above the top, is empty or too long. */
int import_path_clean(const char *dir, const char *path, char *out, size_t outlen);
/* A new member NAME (at most ENTRIES_MAX); NULL with the reason set. */
struct entry *import_entry_add(struct import *im, const char *name);
/* Sorts the members by name for import_entry; of several with one name only the last stays. */
void import_entries_index(struct import *im);
/* The file NAME is, following links; NULL when absent. */
struct entry *import_entry(struct import *im, const char *name);
/* The same for a path as manifest.json gives it. */
struct entry *import_entry_path(struct import *im, const char *path);
/* A staged file of at most JSON_MAX bytes, into a malloc'd, NUL-terminated buffer. */
int import_entry_read(struct import *im, const struct entry *e, char **data, size_t *len);
json_t *import_json_parse(struct import *im, const char *what, const char *data, size_t len);
json_t *import_entry_json(struct import *im, const struct entry *e);
/* Takes DATA. A manifest planned twice (two tags of one image) is kept once. */
int import_add_manifest(struct import *im, const char *digest, const char *type, char *data,
			size_t len);
int import_planned(const struct import *im, const char *digest);
int import_add_tag(struct import *im, const struct image_ref *ref, const char *digest);
/* A reference as the archive names it ("busybox:latest", "ghcr.io/org/app:1.2"). */
int import_add_tag_named(struct import *im, const char *name, const char *digest);
/* An image the archive does not name: --name names it, or it is stored by digest only. */
int import_add_untagged(struct import *im, const char *digest);

/* archive_docker.c: manifest.json */
int archive_docker_plan(struct import *im, const struct entry *mf);

/* archive_oci.c: oci-layout and index.json */
int archive_oci_plan(struct import *im, const struct entry *layout, const struct entry *index);

#endif
