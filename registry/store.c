/* store: the cache on disk.
 *
 *   ROOT/blobs/sha256/<2 hex>/<64 hex>        blob bytes
 *   ROOT/manifests/sha256/<2 hex>/<64 hex>    "<media type>\n" then the manifest bytes
 *   ROOT/tags/<registry>/<repo>/_tags/<tag>   "sha256:<hex> <fetched_at>\n"
 *   ROOT/taglists/<registry>/<repo>/_lists/<key>  the last tags/list answer
 *   ROOT/tmp/                                 files being written
 *   ROOT/quarantine/<64 hex>.<unix time>      objects that failed verify, kept for a post-mortem
 *
 * Every visible file is complete and verified: it is written in ROOT/tmp, fsynced, renamed into
 * place and its directory fsynced (in the daemon, off the event loop: store_sync.c for
 * manifests, tags and tag lists; transfer.c for blobs). A crash leaves at most litter in ROOT/tmp,
 * which store_open() clears. "_tags" and "_lists" cannot collide with a repository component, which
 * never starts with '_'. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "registry.h"
#include "ref.h"

#define TAG_FILE_MAX 128
/* A tag read from disk is trusted from memory this long: another process (import) that moves
 * the tag is seen within it, and a hot tag costs one read a second, not one per GET. */
#define TAG_MEMO_S 1.0
#define TAGLIST_MAX (8 * 1024 * 1024)
#define KEY_MAX 200
#define WRITEBACK_CHUNK (8LL << 20)
#define TMP_BUFFER (256 * 1024)
#define SHORT_PIECE (16 * 1024)

static const char *const store_dirs[] = {
    "blobs/sha256", "manifests/sha256", "tags", "taglists", "tmp", NULL,
};

/* --- paths --- */

static int store_path(const struct store *s, char out[PATH_MAX], const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ROOT/<formatted>. -1 (ENAMETOOLONG) when it does not fit. */
static int store_path(const struct store *s, char out[PATH_MAX], const char *fmt, ...)
{
	va_list ap;
	int n, m;

	n = snprintf(out, PATH_MAX, "%s/", s->root);
	if (n < 0 || n >= PATH_MAX)
		goto toolong;
	va_start(ap, fmt);
	m = vsnprintf(out + n, (size_t)(PATH_MAX - n), fmt, ap);
	va_end(ap);
	if (m < 0 || m >= PATH_MAX - n)
		goto toolong;
	return 0;
toolong:
	errno = ENAMETOOLONG;
	return -1;
}

/* ROOT/KIND/sha256/<2 hex>/<64 hex>; only for a digest that digest_check() accepted. */
static int object_path(const struct store *s, const char *kind, const char *digest,
		       char out[PATH_MAX])
{
	const char *hex = digest_hex(digest);

	return store_path(s, out, "%s/sha256/%.2s/%s", kind, hex, hex);
}

/* Registry, repository and tag reach file names. Callers validate them with ref.h already;
 * checking again here is cheap and keeps a path traversal out whatever the caller did. */
static int repo_ok(const char *registry, const char *repo)
{
	return registry && repo && ref_host_valid(registry) && ref_name_valid(repo, strlen(repo)) &&
	       !strstr(repo, "..") && repo[0] != '/';
}

/* A file name: visible ASCII but '/', not starting with '.' (so neither "." nor ".."). */
static int key_ok(const char *key)
{
	size_t i;

	if (!key || key[0] == '.' || key[0] == '\0')
		return 0;
	for (i = 0; key[i] != '\0'; i++) {
		if (i >= KEY_MAX || key[i] <= ' ' || key[i] == '/' || key[i] == 0x7f)
			return 0;
	}
	return 1;
}

int store_media_type_valid(const char *mt)
{
	size_t i;

	for (i = 0; mt[i] != '\0'; i++) {
		if (i >= MEDIA_TYPE_MAX - 1 || mt[i] <= ' ' || mt[i] == 0x7f)
			return 0;
	}
	return i > 0;
}

/* --- files --- */

/* mkdir -p PATH. */
static int mkdirs(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* Runs fn on the directory part of FILE (mkdirs, or fsync of the directory). */
static int with_parent(const char *file, int (*fn)(const char *dir))
{
	char dir[PATH_MAX];
	const char *slash = strrchr(file, '/');
	size_t n;

	if (!slash || slash == file) {
		errno = EINVAL;
		return -1;
	}
	n = (size_t)(slash - file);
	memcpy(dir, file, n);
	dir[n] = '\0';
	return fn(dir);
}

static int open_dir(const char *dir)
{
	return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* A rename is durable only once the directory holding the new name is on disk too. */
static int fsync_dir(const char *dir)
{
	int fd = open_dir(dir);
	int rc, saved;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A new, empty, uniquely named file in ROOT/tmp (O_EXCL, O_CLOEXEC). Returns its fd. */
static int tmp_create(const struct store *s, char path[PATH_MAX])
{
	int fd;

	if (store_path(s, path, "tmp/XXXXXX") != 0)
		return -1;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* mkostemp makes 0600; cached content is public, and operators may read it. */
	(void)fchmod(fd, 0644);
	return fd;
}

/* Fsyncs (unless synced) and closes fd, renames TMP to DST (creating DST's directories). fd is
 * closed and TMP is gone in every case. */
static int tmp_rename(int fd, const char *tmp, const char *dst, int synced)
{
	int rc, saved;

	rc = synced ? 0 : fsync(fd);
	saved = errno;
	if (close(fd) != 0 && rc == 0) { /* Linux releases fd even when close fails */
		rc = -1;
		saved = errno;
	}
	if (rc != 0)
		goto fail;
	if (with_parent(dst, mkdirs) != 0 || rename(tmp, dst) != 0) {
		saved = errno;
		goto fail;
	}
	return 0;
fail:
	unlink(tmp);
	errno = saved;
	return -1;
}

/* tmp_rename, then DST's directory fsynced. DST stays if only that last fsync failed: its
 * content is complete, just maybe not yet durable. */
static int tmp_install(int fd, const char *tmp, const char *dst)
{
	if (tmp_rename(fd, tmp, dst, 0) != 0)
		return -1;
	return with_parent(dst, fsync_dir);
}

/* Writes HEAD then BODY to DST atomically. The daemon's store writes behind (store_sync.c): the
 * bytes go to a temp file now, the fsyncs and the rename happen off the loop and done reports
 * the end. The offline tools' store has no store_sync: there it all happens before this returns
 * (and done, when given, is called before, too). MEMO: HEAD is DST's whole content, to keep in
 * the memo once it is visible. -1 (errno) when nothing was started; done is then not called. */
static int write_atomic(struct store *s, const char *dst, const void *head, size_t headlen,
			const void *body, size_t bodylen, int memo, store_done_fn done, void *arg)
{
	char tmp[PATH_MAX];
	int fd, saved;

	fd = tmp_create(s, tmp);
	if (fd < 0)
		return -1;
	if (write_all(fd, head, headlen) != 0 || write_all(fd, body, bodylen) != 0 ||
	    (s->sync && (with_parent(dst, mkdirs) != 0 ||
			 store_sync_install(s->sync, fd, tmp, dst, memo ? head : NULL, headlen,
					    done, arg) != 0))) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		return -1;
	}
	if (s->sync)
		return 0;
	if (tmp_install(fd, tmp, dst) != 0)
		return -1;
	if (memo)
		memo_put(&s->memo, dst, head, headlen, monotime_s());
	if (done)
		done(arg, 0);
	return 0;
}

int store_read_exact(int fd, char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = read(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			errno = EIO; /* the file shrank under us */
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads a whole regular file of at most MAX bytes into a malloc'd, NUL-terminated buffer.
 * -1 with errno: ENOENT when absent, EFBIG when larger than MAX. */
static int read_small(const char *path, size_t max, char **data, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	int fd, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0)
		goto fail;
	if (!S_ISREG(st.st_mode) || st.st_size < 0 || (uintmax_t)st.st_size > max) {
		errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf || store_read_exact(fd, buf, (size_t)st.st_size) != 0)
		goto fail;
	close(fd);
	buf[st.st_size] = '\0';
	*data = buf;
	*len = (size_t)st.st_size;
	return 0;
fail:
	saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	return -1;
}

/* Removes every entry of ROOT/tmp: temp files left by a crash. */
static int tmp_clear(const struct store *s)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (store_path(s, path, "tmp") != 0 || !(d = opendir(path)))
		return -1;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) != 0 && errno != ENOENT)
			rc = -1;
	}
	closedir(d);
	return rc;
}

/* --- open and close --- */

int store_open(struct store *s, const char *root, char *err, size_t errlen)
{
	char path[PATH_MAX];

	s->memo = NULL;
	s->sync = NULL; /* the daemon sets it once its syncq is up */
	s->root = strdup(root);
	if (!s->root) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (const char *const *d = store_dirs; *d; d++) {
		if (store_path(s, path, "%s", *d) != 0 || mkdirs(path) != 0) {
			snprintf(err, errlen, "cannot create %s/%s: %s", root, *d, strerror(errno));
			goto fail;
		}
	}
	if (tmp_clear(s) != 0) {
		snprintf(err, errlen, "cannot clear %s/tmp: %s", root, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	store_close(s);
	return -1;
}

void store_close(struct store *s)
{
	free(s->root);
	s->root = NULL;
	memo_free(s->memo);
	s->memo = NULL;
}

/* --- blobs --- */

int store_blob_open(struct store *s, const char *digest, off_t *size)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	if (digest_check(digest) != 0) {
		errno = EINVAL;
		return -1;
	}
	if (object_path(s, "blobs", digest, path) != 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EIO;
		return -1;
	}
	*size = st.st_size;
	return fd;
}

int store_blob_remove(struct store *s, const char *digest)
{
	char path[PATH_MAX];

	if (digest_check(digest) != 0 || object_path(s, "blobs", digest, path) != 0)
		return -1;
	return unlink(path);
}

int store_blob_exists(struct store *s, const char *digest, long long *size)
{
	char path[PATH_MAX];
	struct stat st;

	if (digest_check(digest) != 0 || object_path(s, "blobs", digest, path) != 0 ||
	    stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return 0;
	if (size)
		*size = st.st_size;
	return 1;
}

/* --- every object --- */

static const char *const kind_dirs[] = {[STORE_BLOB] = "blobs", [STORE_MANIFEST] = "manifests"};

/* One <2 hex> directory: only <64 hex> regular files are the store's; anything else in there is
 * left alone. */
static int each_in_dir(struct store_object *o, DIR *d, store_each_fn fn, void *arg)
{
	size_t dirlen = strlen(o->path);
	struct dirent *de;
	struct stat st;
	int rc = 0;

	while (rc == 0 && (de = readdir(d))) {
		if (strlen(de->d_name) != DIGEST_HEX_LEN)
			continue;
		snprintf(o->digest, sizeof(o->digest), "sha256:%.64s", de->d_name);
		if (digest_check(o->digest) != 0 || dirlen + 1 + DIGEST_HEX_LEN >= PATH_MAX ||
		    fstatat(dirfd(d), de->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
			continue;
		snprintf(o->path + dirlen, PATH_MAX - dirlen, "/%s", de->d_name);
		o->size = st.st_size;
		o->mtime = st.st_mtime;
		rc = fn(arg, o);
		o->path[dirlen] = '\0';
	}
	return rc;
}

int store_each(struct store *s, enum store_kind kind, store_each_fn fn, void *arg)
{
	struct store_object o = {.kind = kind};
	int i, rc = 0;
	DIR *d;

	for (i = 0; i < 256 && rc == 0; i++) {
		if (store_path(s, o.path, "%s/sha256/%02x", kind_dirs[kind], i) != 0 ||
		    !(d = opendir(o.path)))
			continue;
		rc = each_in_dir(&o, d, fn, arg);
		closedir(d);
	}
	return rc;
}

int store_quarantine(struct store *s, const struct store_object *o, char dst[PATH_MAX])
{
	if (store_path(s, dst, "quarantine") != 0 || (mkdir(dst, 0755) != 0 && errno != EEXIST) ||
	    store_path(s, dst, "quarantine/%s.%lld", digest_hex(o->digest),
		       (long long)time(NULL)) != 0)
		return -1;
	return rename(o->path, dst);
}

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
	t->fd = tmp_create(s, t->path);
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
	if (write_all(t->fd, t->pending, t->pending_len) != 0)
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
		if (write_all(t->fd, buf, len) != 0)
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
	int fd = t->fd, rc, saved;

	if (object_path(s, "blobs", digest, dst) != 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		store_tmp_abort(t);
		return -1;
	}
	if (access(dst, F_OK) == 0) {
		store_tmp_abort(t); /* content-addressed: what is there is the same */
		return 0;
	}
	/* tmp_rename owns fd and the temp file from here on: it renames or removes it. */
	t->fd = -1;
	if (!dirfd)
		rc = tmp_install(fd, t->path, dst);
	else if ((rc = tmp_rename(fd, t->path, dst, 1)) == 0 &&
		 (*dirfd = with_parent(dst, open_dir)) < 0) {
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

/* --- manifests --- */

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

int store_manifest_get(struct store *s, const char *digest, char **data, size_t *len,
		       char mediatype[MEDIA_TYPE_MAX])
{
	char path[PATH_MAX];
	const char *memo;
	char *buf;
	size_t n, body_at;
	double stamp;
	int saved;

	if (digest_check(digest) != 0) {
		errno = EINVAL;
		return -1;
	}
	if (object_path(s, "manifests", digest, path) != 0)
		return -1;
	/* Immutable under its digest and verified before it was kept: any memo is good. */
	memo = memo_get(s->memo, path, &n, &stamp);
	if (memo)
		return manifest_body(memo, n, data, len, mediatype);
	if (read_small(path, MANIFEST_MAX_BYTES + MEDIA_TYPE_MAX, &buf, &n) != 0)
		return -1;
	if (manifest_parse(path, digest, buf, n, mediatype, &body_at) != 0) {
		saved = errno;
		free(buf);
		errno = saved;
		return -1;
	}
	memo_put(&s->memo, path, buf, n, 0);
	memmove(buf, buf + body_at, n - body_at + 1); /* with its NUL */
	*data = buf;
	*len = n - body_at;
	return 0;
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
 * means durable, so behind a store_sync it waits its turn. */
static int manifest_present(struct store *s, const char *path, store_done_fn done, void *arg)
{
	if (s->sync)
		return store_sync_install(s->sync, -1, NULL, path, NULL, 0, done, arg);
	if (done)
		done(arg, 0);
	return 0;
}

int store_manifest_put(struct store *s, const char *digest, const char *data, size_t len,
		       const char *mediatype, store_done_fn done, void *arg, char *err,
		       size_t errlen)
{
	char path[PATH_MAX], head[MEDIA_TYPE_MAX + 1];
	int rc;

	if (manifest_verify(digest, data, len, mediatype, err, errlen) != 0)
		return -1;
	if (object_path(s, "manifests", digest, path) != 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	snprintf(head, sizeof(head), "%s\n", mediatype);
	if (access(path, F_OK) == 0)
		rc = manifest_present(s, path, done, arg);
	else
		rc = write_atomic(s, path, head, strlen(head), data, len, 0, done, arg);
	if (rc != 0)
		snprintf(err, errlen, "cannot store %s: %s", digest, strerror(errno));
	return rc;
}

/* --- tags and tag lists --- */

static int tag_path(const struct store *s, const char *registry, const char *repo, const char *tag,
		    char out[PATH_MAX])
{
	if (!repo_ok(registry, repo) || !ref_tag_valid(tag)) {
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
		if (read_small(path, TAG_FILE_MAX, &buf, &len) != 0)
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
	memcpy(digest, d, DIGEST_STR_SIZE);
	*fetched_at = (time_t)ts;
	return 0;
}

int store_tag_put(struct store *s, const char *registry, const char *repo, const char *tag,
		  const char *digest, time_t fetched_at, store_done_fn done, void *arg)
{
	char path[PATH_MAX], line[TAG_FILE_MAX];
	int n;

	if (digest_check(digest) != 0) {
		errno = EINVAL;
		return -1;
	}
	if (tag_path(s, registry, repo, tag, path) != 0)
		return -1;
	n = snprintf(line, sizeof(line), "%s %lld\n", digest, (long long)fetched_at);
	return write_atomic(s, path, line, (size_t)n, "", 0, 1, done, arg);
}

static int taglist_path(const struct store *s, const char *registry, const char *repo,
			const char *key, char out[PATH_MAX])
{
	if (!repo_ok(registry, repo) || !key_ok(key)) {
		errno = EINVAL;
		return -1;
	}
	return store_path(s, out, "taglists/%s/%s/_lists/%s", registry, repo, key);
}

int store_taglist_get(struct store *s, const char *registry, const char *repo, const char *key,
		      char **data, size_t *len)
{
	char path[PATH_MAX];

	if (taglist_path(s, registry, repo, key, path) != 0)
		return -1;
	return read_small(path, TAGLIST_MAX, data, len);
}

int store_taglist_put(struct store *s, const char *registry, const char *repo, const char *key,
		      const char *data, size_t len)
{
	char path[PATH_MAX];

	if (taglist_path(s, registry, repo, key, path) != 0)
		return -1;
	if (len > TAGLIST_MAX) {
		errno = EFBIG;
		return -1;
	}
	return write_atomic(s, path, data, len, "", 0, 0, NULL, NULL);
}
