/* store_internal.h: what store.c lends the other store files (store_tmp.c: blob temp files;
 * store_small.c: manifests, tags and tag lists). Not for anything outside the store. */
#ifndef STORE_INTERNAL_H
#define STORE_INTERNAL_H

#include <limits.h>
#include <stddef.h>
#include <sys/stat.h>

#include "registry.h"

/* A small file to put in place: HEAD then BODY become PATH, a KIND whose DIGEST is the manifest
 * it is or names ("" for a tag list). MEMO: HEAD is the whole content, to keep in the memo once
 * it is visible. */
struct store_put {
	enum store_kind kind;
	const char *digest;
	char path[PATH_MAX];
	const char *head, *body;
	size_t headlen, bodylen;
	int memo;
	store_done_fn done;
	void *arg;
};

/* Paths: ROOT/<formatted>; ROOT/<kind>/sha256/<2 hex>/<hex>; a valid registry and repository;
 * the name of the file of KIND at PATH (a digest, registry/repo/tag, registry/repo). -1
 * (ENAMETOOLONG, EINVAL) when a path cannot be made. */
int store_path(const struct store *s, char out[PATH_MAX], const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int store_object_path(const struct store *s, const char *kind, const char *digest,
		      char out[PATH_MAX]);
int store_repo_ok(const char *registry, const char *repo);
const char *store_name_of(const struct store *s, enum store_kind kind, const char *path);

/* Writing: FN on FILE's directory; a directory opened for fsync; every byte of BUF; a temp file
 * in ROOT/tmp; a temp file renamed into place (SYNCED: it was fsynced already) and, installed,
 * its directory fsynced too; a small file written atomically (behind the daemon's store_sync).
 * A put with a watcher tells it once durable; unwatch undoes that for a put never started. */
int store_with_parent(const char *file, int (*fn)(const char *dir));
int store_open_dir(const char *dir);
int store_write_all(int fd, const void *buf, size_t len);
int store_tmpfile_create(const struct store *s, char path[PATH_MAX]);
int store_tmpfile_rename(const struct store *s, int fd, const char *tmp, const char *dst,
			 int synced);
int store_tmpfile_install(const struct store *s, int fd, const char *tmp, const char *dst);
int store_write_atomic(struct store *s, struct store_put *p);
int store_put_watched(struct store *s, struct store_put *p, long long bytes);
void store_put_unwatch(struct store_put *p);

/* Reading: a regular file opened without following a link or blocking (anything else at PATH
 * is quarantined, and it is absent: -1, ENOENT); whether one is there; a file of at most MAX
 * bytes read whole. */
int store_open_file(const struct store *s, const char *path, struct stat *st);
int store_object_present(const struct store *s, const char *path, struct stat *st);
int store_read_small(const struct store *s, const char *path, size_t max, char **data, size_t *len);
/* The same of a file open as FD (taken: closed whatever happens), whose stat is ST. */
int store_read_whole(int fd, const struct stat *st, size_t max, char **data, size_t *len);

/* A file of KIND was read: the budget's watcher counts it as used now. */
void store_tell_used(struct store *s, enum store_kind kind, const char *name);

#endif
