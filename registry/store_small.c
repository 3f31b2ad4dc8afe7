/* store_small: the small files of the store, read whole: manifests ("<media type>\n" then the
 * bytes, checked against their digest when read, unless the memo has them or they are too
 * large to copy, then sent from the file), tags ("<digest> <fetched-at>") and tag lists (the
 * Link header, then the body). Written through store_write_atomic (store.c), so behind the
 * daemon's store_sync; every read tells the budget the file was used. */
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ref.h"
#include "registry.h"
#include "store_internal.h"

#define TAG_FILE_MAX 128
/* A tag read from disk is trusted from memory this long: another process (import) that moves
 * the tag is seen within it, and a hot tag costs one read a second, not one per GET. */
#define TAG_MEMO_S 1.0
#define TAGLIST_MAX (8 * 1024 * 1024)

/* A manifest file is "MEDIATYPE\nBODY". Checks that BODY is what digest names and takes the
 * media type out; *body_at is where BODY starts. A corrupt file is removed. */
static int manifest_parse(const char *path, const char *digest, const char *buf, size_t len,
			  char mediatype[MEDIA_TYPE_MAX], size_t *body_at)
{
	char got[DIGEST_STR_SIZE];
	const char *nl = memchr(buf, '\n', len < MEDIA_TYPE_MAX ? len : MEDIA_TYPE_MAX);
	size_t mtlen;

	if (!nl)
		goto corrupt;
	mtlen = (size_t)(nl - buf);
	*body_at = mtlen + 1;
	if (digest_buffer(nl + 1, len - *body_at, got) != 0 || strcmp(got, digest) != 0)
		goto corrupt;
	memcpy(mediatype, buf, mtlen);
	mediatype[mtlen] = '\0';
	if (!store_media_type_valid(mediatype))
		goto corrupt;
	return 0;
corrupt:
	log_warn("store_corrupt", "path=%s", path);
	unlink(path);
	errno = EIO;
	return -1;
}

/* The body of a manifest file that passed manifest_parse (a memo of it) into a malloc'd copy. */
static int manifest_body(const char *file, size_t len, char **data, size_t *body_len,
			 char mediatype[MEDIA_TYPE_MAX])
{
	const char *nl = memchr(file, '\n', len);
	size_t mtlen = (size_t)(nl - file);

	*body_len = len - mtlen - 1;
	*data = malloc(*body_len + 1);
	if (!*data)
		return -1;
	memcpy(*data, nl + 1, *body_len + 1); /* with its NUL */
	memcpy(mediatype, file, mtlen);
	mediatype[mtlen] = '\0';
	return 0;
}

/* ROOT/manifests/… of DIGEST; -1 (EINVAL) for what cannot be a digest. */
static int manifest_path(const struct store *s, const char *digest, char path[PATH_MAX])
{
	if (digest_check(digest) != 0) {
		errno = EINVAL;
		return -1;
	}
	return store_object_path(s, "manifests", digest, path);
}

/* The manifest at PATH from the memo: 1 when it was there, 0 when not, -1 (ENOMEM). Immutable
 * under its digest and verified before it was kept: any memo is good. */
static int manifest_memo(struct store *s, const char *digest, const char *path, char **data,
			 size_t *len, char mediatype[MEDIA_TYPE_MAX])
{
	size_t n;
	double stamp;
	const char *memo = memo_get(s->memo, path, &n, &stamp);

	if (!memo)
		return 0;
	store_tell_used(s, STORE_MANIFEST, digest);
	return manifest_body(memo, n, data, len, mediatype) == 0 ? 1 : -1;
}

/* Reads the manifest file at PATH, open as FD (taken), checks it against DIGEST and keeps it in
 * the memo; its body into *data. */
static int manifest_read(struct store *s, const char *digest, const char *path, int fd,
			 const struct stat *st, char **data, size_t *len,
			 char mediatype[MEDIA_TYPE_MAX])
{
	char *buf;
	size_t n, body_at;
	int saved;

	if (store_read_whole(fd, st, MANIFEST_MAX_BYTES + MEDIA_TYPE_MAX, &buf, &n) != 0)
		return -1;
	if (manifest_parse(path, digest, buf, n, mediatype, &body_at) != 0) {
		saved = errno;
		free(buf);
		errno = saved;
		return -1;
	}
	memo_put(&s->memo, path, buf, n, 0);
	store_tell_used(s, STORE_MANIFEST, digest);
	memmove(buf, buf + body_at, n - body_at + 1); /* with its NUL */
	*data = buf;
	*len = n - body_at;
	return 0;
}

int store_manifest_get(struct store *s, const char *digest, char **data, size_t *len,
		       char mediatype[MEDIA_TYPE_MAX])
{
	char path[PATH_MAX];
	struct stat st;
	int rc, fd;

	if (manifest_path(s, digest, path) != 0)
		return -1;
	rc = manifest_memo(s, digest, path, data, len, mediatype);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if ((fd = store_open_file(s, path, &st)) < 0)
		return -1;
	return manifest_read(s, digest, path, fd, &st, data, len, mediatype);
}

/* The "<media type>\n" line of an open manifest file of SIZE bytes into m; a corrupt one is
 * removed, as manifest_parse does. */
static int manifest_head(int fd, const char *path, off_t size, struct store_manifest *m)
{
	char head[MEDIA_TYPE_MAX];
	ssize_t n = pread(fd, head, sizeof(head), 0);
	const char *nl = n > 0 ? memchr(head, '\n', (size_t)n) : NULL;

	if (n < 0)
		return -1;
	if (nl) {
		memcpy(m->type, head, (size_t)(nl - head));
		m->type[nl - head] = '\0';
		m->body_at = nl - head + 1;
		m->len = (size_t)(size - m->body_at);
	}
	if (!nl || !store_media_type_valid(m->type) || m->len > MANIFEST_MAX_BYTES) {
		log_warn("store_corrupt", "path=%s", path);
		unlink(path);
		errno = EIO;
		return -1;
	}
	return 0;
}

int store_manifest_open(struct store *s, const char *digest, size_t copy_max,
			struct store_manifest *m)
{
	char path[PATH_MAX];
	struct stat st;
	int rc, fd, saved;

	*m = (struct store_manifest){.fd = -1};
	if (manifest_path(s, digest, path) != 0)
		return -1;
	rc = manifest_memo(s, digest, path, &m->data, &m->len, m->type); /* small, read before */
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if ((fd = store_open_file(s, path, &st)) < 0)
		return -1;
	if ((uintmax_t)st.st_size <= copy_max) /* read (and memoized) the usual way */
		return manifest_read(s, digest, path, fd, &st, &m->data, &m->len, m->type);
	if (manifest_head(fd, path, st.st_size, m) != 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	store_tell_used(s, STORE_MANIFEST, digest);
	m->fd = fd;
	return 0;
}

void store_manifest_close(struct store_manifest *m)
{
	free(m->data);
	m->data = NULL;
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

/* The manifest is what its digest names, bounded, with a media type we can store. */
static int manifest_verify(const char *digest, const char *data, size_t len, const char *mediatype,
			   char *err, size_t errlen)
{
	char got[DIGEST_STR_SIZE];
	const char *why = NULL;

	if (digest_check(digest) != 0)
		why = "invalid digest";
	else if (!mediatype || !store_media_type_valid(mediatype))
		why = "invalid media type";
	else if (len > MANIFEST_MAX_BYTES)
		why = "manifest too large";
	else if (digest_buffer(data, len, got) != 0)
		why = "cannot compute the digest";
	if (why) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	if (strcmp(got, digest) != 0) {
		snprintf(err, errlen, "digest mismatch: expected %s, got %s", digest, got);
		return -1;
	}
	return 0;
}

/* A manifest already stored is the same (content-addressed): nothing to write, but done still
 * means durable, so behind a store_sync it waits its turn (and the watcher hears of it as
 * stored again: it is the most recently used now). */
static int manifest_present(struct store *s, struct store_put *p, long long bytes)
{
	if (store_put_watched(s, p, bytes) != 0)
		return -1;
	if (!s->sync) {
		if (p->done)
			p->done(p->arg, 0);
		return 0;
	}
	if (store_sync_install(s->sync, -1, NULL, p->path, NULL, 0, p->done, p->arg) == 0)
		return 0;
	store_put_unwatch(p);
	return -1;
}

int store_manifest_put(struct store *s, const char *digest, const char *data, size_t len,
		       const char *mediatype, store_done_fn done, void *arg, char *err,
		       size_t errlen)
{
	char head[MEDIA_TYPE_MAX + 1];
	struct store_put p = {.kind = STORE_MANIFEST,
			      .digest = digest,
			      .head = head,
			      .body = data,
			      .bodylen = len,
			      .done = done,
			      .arg = arg};
	struct stat st;
	int rc;

	if (manifest_verify(digest, data, len, mediatype, err, errlen) != 0)
		return -1;
	if (store_object_path(s, "manifests", digest, p.path) != 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	p.headlen = (size_t)snprintf(head, sizeof(head), "%s\n", mediatype);
	if (store_object_present(s, p.path, &st))
		rc = manifest_present(s, &p, st.st_size);
	else
		rc = store_write_atomic(s, &p);
	if (rc != 0)
		snprintf(err, errlen, "cannot store %s: %s", digest, strerror(errno));
	return rc;
}

/* --- tags and tag lists --- */

static int tag_path(const struct store *s, const char *registry, const char *repo, const char *tag,
		    char out[PATH_MAX])
{
	if (!store_repo_ok(registry, repo) || !ref_tag_valid(tag)) {
		errno = EINVAL;
		return -1;
	}
	return store_path(s, out, "tags/%s/%s/_tags/%s", registry, repo, tag);
}

int store_tag_get(struct store *s, const char *registry, const char *repo, const char *tag,
		  char digest[DIGEST_STR_SIZE], time_t *fetched_at)
{
	char path[PATH_MAX], d[DIGEST_STR_SIZE], nl;
	double now = monotime_s(), stamp;
	const char *memo;
	long long ts;
	char *buf;
	size_t len;
	int n;

	if (tag_path(s, registry, repo, tag, path) != 0)
		return -1;
	memo = memo_get(s->memo, path, &len, &stamp);
	if (memo && now - stamp < TAG_MEMO_S) {
		n = sscanf(memo, "%71s %lld%c", d, &ts, &nl);
	} else {
		if (store_read_small(s, path, TAG_FILE_MAX, &buf, &len) != 0)
			return -1;
		n = sscanf(buf, "%71s %lld%c", d, &ts, &nl);
		if (n == 3)
			memo_put(&s->memo, path, buf, len, now);
		free(buf);
	}
	if (n != 3 || nl != '\n' || digest_check(d) != 0) {
		errno = EIO;
		return -1;
	}
	store_tell_used(s, STORE_TAG, store_name_of(s, STORE_TAG, path));
	memcpy(digest, d, DIGEST_STR_SIZE);
	*fetched_at = (time_t)ts;
	return 0;
}

int store_tag_put(struct store *s, const char *registry, const char *repo, const char *tag,
		  const char *digest, time_t fetched_at, store_done_fn done, void *arg)
{
	char line[TAG_FILE_MAX];
	struct store_put p = {.kind = STORE_TAG,
			      .digest = digest,
			      .head = line,
			      .body = "",
			      .memo = 1,
			      .done = done,
			      .arg = arg};

	if (digest_check(digest) != 0) {
		errno = EINVAL;
		return -1;
	}
	if (tag_path(s, registry, repo, tag, p.path) != 0)
		return -1;
	p.headlen =
	    (size_t)snprintf(line, sizeof(line), "%s %lld\n", digest, (long long)fetched_at);
	return store_write_atomic(s, &p);
}

/* One answer per repository: what is kept for tags/list does not grow with the queries asked. */
static int taglist_path(const struct store *s, const char *registry, const char *repo,
			char out[PATH_MAX])
{
	if (!store_repo_ok(registry, repo)) {
		errno = EINVAL;
		return -1;
	}
	return store_path(s, out, "taglists/%s/%s/_list", registry, repo);
}

int store_taglist_get(struct store *s, const char *registry, const char *repo,
		      char link[STORE_LINK_MAX], char **body, size_t *len)
{
	char path[PATH_MAX], *buf, *nl;
	size_t n;

	if (taglist_path(s, registry, repo, path) != 0 ||
	    store_read_small(s, path, STORE_LINK_MAX + TAGLIST_MAX, &buf, &n) != 0)
		return -1;
	nl = memchr(buf, '\n', n < STORE_LINK_MAX ? n : STORE_LINK_MAX);
	if (!nl) {
		free(buf);
		errno = EIO;
		return -1;
	}
	memcpy(link, buf, (size_t)(nl - buf));
	link[nl - buf] = '\0';
	*len = n - (size_t)(nl + 1 - buf);
	memmove(buf, nl + 1, *len + 1); /* with its NUL */
	*body = buf;
	store_tell_used(s, STORE_TAGLIST, store_name_of(s, STORE_TAGLIST, path));
	return 0;
}

int store_taglist_put(struct store *s, const char *registry, const char *repo, const char *link,
		      const char *body, size_t len)
{
	char head[STORE_LINK_MAX + 1];
	struct store_put p = {
	    .kind = STORE_TAGLIST, .digest = "", .head = head, .body = body, .bodylen = len};

	if (taglist_path(s, registry, repo, p.path) != 0)
		return -1;
	if (len > TAGLIST_MAX || strlen(link) >= STORE_LINK_MAX || strchr(link, '\n')) {
		errno = len > TAGLIST_MAX ? EFBIG : EINVAL;
		return -1;
	}
	p.headlen = (size_t)snprintf(head, sizeof(head), "%s\n", link);
	return store_write_atomic(s, &p);
}
