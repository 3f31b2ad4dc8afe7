/* store_tmp: the temp file a blob is fetched into, under SHA-256 as it is written; write-back
 * every WRITEBACK_CHUNK so the page cache never holds a whole blob dirty; verified against the
 * digest and size, then installed (renamed into place, its directory fsynced) or thrown away.
 * The daemon's transfer.c does the fsyncs off the loop (store_tmp_rename_blob), the offline
 * tools commit in one call (store_tmp_commit_blob). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ref.h"
#include "registry.h"
#include "store_internal.h"

#define WRITEBACK_CHUNK (8LL << 20)
#define TMP_BUFFER (256 * 1024)
#define SHORT_PIECE (16 * 1024)

int store_tmp_begin(struct store *s, struct store_tmp *t)
{
	int saved;

	memset(t, 0, sizeof(*t));
	t->fd = -1;
	t->dg = digest_new();
	t->pending = malloc(TMP_BUFFER);
	if (!t->dg || !t->pending) {
		store_tmp_abort(t);
		errno = ENOMEM;
		return -1;
	}
	t->fd = store_tmpfile_create(s, t->path);
	if (t->fd < 0) {
		saved = errno;
		store_tmp_abort(t);
		errno = saved;
		return -1;
	}
	return 0;
}

/* Starts write-back of every full WRITEBACK_CHUNK as it completes, without waiting for it, so
 * that the fsync at commit finds little left to do. */
static void start_writeback(struct store_tmp *t)
{
	long long end = t->on_disk - t->on_disk % WRITEBACK_CHUNK;

	if (end > t->flushed) {
		sync_file_range(t->fd, t->flushed, end - t->flushed, SYNC_FILE_RANGE_WRITE);
		t->flushed = end;
	}
}

int store_tmp_flush(struct store_tmp *t)
{
	if (t->pending_len == 0)
		return 0;
	if (store_write_all(t->fd, t->pending, t->pending_len) != 0)
		return -1;
	t->on_disk += (long long)t->pending_len;
	t->pending_len = 0;
	start_writeback(t);
	return 0;
}

/* libcurl hands data over in pieces of at most 16 KiB; writing each at once would cost a write
 * and, downstream, a sendfile per client for every piece. So pieces collect in a buffer, which
 * goes out when full -- or at once when a piece comes in short, a sign that the sender paused
 * and a streaming client would otherwise wait. */
int store_tmp_write(struct store_tmp *t, const void *buf, size_t len)
{
	if (digest_update(t->dg, buf, len) != 0) {
		errno = EIO;
		return -1;
	}
	t->written += (long long)len;
	if (t->pending_len + len > TMP_BUFFER && store_tmp_flush(t) != 0)
		return -1;
	if (len >= TMP_BUFFER) {
		if (store_write_all(t->fd, buf, len) != 0)
			return -1;
		t->on_disk += (long long)len;
		start_writeback(t);
		return 0;
	}
	memcpy(t->pending + t->pending_len, buf, len);
	t->pending_len += len;
	return len < SHORT_PIECE ? store_tmp_flush(t) : 0;
}

/* The bytes written match what the manifest promised; err says how they do not. */
static int tmp_check(struct store_tmp *t, const char *digest, long long size, char *err,
		     size_t errlen)
{
	char got[DIGEST_STR_SIZE];

	if (digest_check(digest) != 0) {
		snprintf(err, errlen, "invalid digest");
		return -1;
	}
	if (size >= 0 && t->written != size) {
		snprintf(err, errlen, "size mismatch: expected %lld, got %lld", size, t->written);
		return -1;
	}
	if (digest_final(t->dg, got) != 0) {
		snprintf(err, errlen, "cannot compute the digest");
		return -1;
	}
	if (strcmp(got, digest) != 0) {
		snprintf(err, errlen, "digest mismatch: expected %s, got %s", digest, got);
		return -1;
	}
	return 0;
}

int store_tmp_verify(struct store_tmp *t, const char *digest, long long size, char *err,
		     size_t errlen)
{
	if (store_tmp_flush(t) != 0)
		snprintf(err, errlen, "writing temp file: %s", strerror(errno));
	else if (tmp_check(t, digest, size, err, errlen) == 0)
		return 0;
	store_tmp_abort(t);
	return -1;
}

/* Puts a verified blob in place: fsynced, renamed and its directory fsynced here (dirfd NULL);
 * or, its bytes fsynced by the caller, renamed, with the directory opened into *dirfd. */
static int blob_install(struct store *s, struct store_tmp *t, const char *digest, int *dirfd,
			char *err, size_t errlen)
{
	char dst[PATH_MAX];
	struct stat st;
	int fd = t->fd, rc, saved;

	if (store_object_path(s, "blobs", digest, dst) != 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		store_tmp_abort(t);
		return -1;
	}
	if (store_object_present(s, dst, &st)) {
		store_tmp_abort(t); /* content-addressed: what is there is the same */
		return 0;
	}
	/* store_tmpfile_rename owns fd and the temp file from here on: it renames or removes it. */
	t->fd = -1;
	if (!dirfd)
		rc = store_tmpfile_install(s, fd, t->path, dst);
	else if ((rc = store_tmpfile_rename(s, fd, t->path, dst, 1)) == 0 &&
		 (*dirfd = store_with_parent(dst, store_open_dir)) < 0) {
		saved = errno;
		unlink(dst); /* visible means durable, and its name cannot be made so */
		errno = saved;
		rc = -1;
	}
	t->path[0] = '\0';
	if (rc != 0)
		snprintf(err, errlen, "cannot store %s: %s", digest, strerror(errno));
	store_tmp_abort(t);
	return rc;
}

int store_tmp_commit_blob(struct store *s, struct store_tmp *t, const char *digest, char *err,
			  size_t errlen)
{
	return blob_install(s, t, digest, NULL, err, errlen);
}

int store_tmp_rename_blob(struct store *s, struct store_tmp *t, const char *digest, int *dirfd,
			  char *err, size_t errlen)
{
	*dirfd = -1;
	return blob_install(s, t, digest, dirfd, err, errlen);
}

void store_tmp_abort(struct store_tmp *t)
{
	if (t->fd >= 0)
		close(t->fd);
	if (t->path[0] != '\0')
		unlink(t->path);
	digest_free(t->dg);
	free(t->pending);
	t->fd = -1;
	t->path[0] = '\0';
	t->dg = NULL;
	t->pending = NULL;
}
