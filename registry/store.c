/* store: the cache on disk.
 *
 *   ROOT/blobs/sha256/<2 hex>/<64 hex>        blob bytes
 *   ROOT/manifests/sha256/<2 hex>/<64 hex>    "<media type>\n" then the manifest bytes
 *   ROOT/tags/<registry>/<repo>/_tags/<tag>   "sha256:<hex> <fetched_at>\n"
 *   ROOT/taglists/<registry>/<repo>/_list     the last tags/list answer without n or last:
 *                                             its Link header on the first line, then its body
 *   ROOT/tmp/                                 files being written
 *   ROOT/quarantine/<name>.<unix time>        what failed verify or was not a regular file,
 *                                             kept for a post-mortem
 *
 * Every visible file is complete and verified: it is written in ROOT/tmp, fsynced, renamed into
 * place and its directory fsynced (in the daemon, off the event loop: store_sync.c for
 * manifests, tags and tag lists; transfer.c for blobs). A crash leaves at most litter in ROOT/tmp,
 * which store_open() clears. "_tags" and "_list" cannot collide with a repository component, which
 * never starts with '_'. (Stores written before kept one file per query in
 * ROOT/taglists/<registry>/<repo>/_lists/: those count as tag lists too, and are evicted.)
 *
 * Only the store writes here, so anything else found at a store path was put there from outside:
 * no store file is opened through a symbolic link (O_NOFOLLOW) or in a way that could block on
 * a FIFO (O_NONBLOCK), one that is not a regular file is moved to quarantine and counts as
 * absent (fetched again), and a store directory that is a link refuses the start.
 *
 * This file holds the layout, the paths, how a file is written, opened and quarantined, the
 * blobs and the walk; store_tmp.c the temp file a blob is fetched into; store_small.c the
 * manifests, tags and tag lists. store_internal.h is what this file lends them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ref.h"
#include "registry.h"
#include "store_internal.h"

#define WALK_DEPTH 64 /* directories below tags/ and taglists/: a repository has fewer parts */
#define OPEN_FLAGS (O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)

static const char *const store_dirs[] = {
    "blobs/sha256", "manifests/sha256", "tags", "taglists", "tmp", NULL,
};
static const char *const kind_dirs[STORE_KINDS] = {
    [STORE_BLOB] = "blobs",
    [STORE_MANIFEST] = "manifests",
    [STORE_TAG] = "tags",
    [STORE_TAGLIST] = "taglists",
};

/* --- paths --- */

/* ROOT/<formatted>. -1 (ENAMETOOLONG) when it does not fit. */
int store_path(const struct store *s, char out[PATH_MAX], const char *fmt, ...)
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
int store_object_path(const struct store *s, const char *kind, const char *digest,
		      char out[PATH_MAX])
{
	const char *hex = digest_hex(digest);

	return store_path(s, out, "%s/sha256/%.2s/%s", kind, hex, hex);
}

/* Registry, repository and tag reach file names. Callers validate them with ref.h already;
 * checking again here is cheap and keeps a path traversal out whatever the caller did. */
int store_repo_ok(const char *registry, const char *repo)
{
	return registry && repo && ref_host_valid(registry) && ref_name_valid(repo, strlen(repo)) &&
	       !strstr(repo, "..") && repo[0] != '/';
}

/* A tag's or tag list's NAME, its path below its kind's directory: relative, visible ASCII, no
 * empty component and none that starts with '.' (so neither "." nor ".."). */
static int rel_ok(const char *name)
{
	size_t i;

	if (!name || strlen(name) >= PATH_MAX - 64)
		return 0;
	for (i = 0; name[i] != '\0'; i++) {
		if (name[i] <= ' ' || name[i] == 0x7f)
			return 0;
		if ((i == 0 || name[i - 1] == '/') && (name[i] == '/' || name[i] == '.'))
			return 0;
	}
	return i > 0 && name[i - 1] != '/';
}

/* NAME of the file PATH of KIND (a tag's or tag list's: PATH below ROOT/KIND/). */
const char *store_name_of(const struct store *s, enum store_kind kind, const char *path)
{
	return path + strlen(s->root) + 1 + strlen(kind_dirs[kind]) + 1;
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

/* FILE's directory made, and reachable without a link (below, with the quarantine). */
static int make_parent(const struct store *s, const char *file);

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
int store_with_parent(const char *file, int (*fn)(const char *dir))
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

int store_open_dir(const char *dir)
{
	return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* A rename is durable only once the directory holding the new name is on disk too. */
static int fsync_dir(const char *dir)
{
	int fd = store_open_dir(dir);
	int rc, saved;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int store_write_all(int fd, const void *buf, size_t len)
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
int store_tmpfile_create(const struct store *s, char path[PATH_MAX])
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
int store_tmpfile_rename(const struct store *s, int fd, const char *tmp, const char *dst,
			 int synced)
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
	if (make_parent(s, dst) != 0 || rename(tmp, dst) != 0) {
		saved = errno;
		goto fail;
	}
	return 0;
fail:
	unlink(tmp);
	errno = saved;
	return -1;
}

/* store_tmpfile_rename, then DST's directory fsynced. DST stays if only that last fsync failed: its
 * content is complete, just maybe not yet durable. */
int store_tmpfile_install(const struct store *s, int fd, const char *tmp, const char *dst)
{
	if (store_tmpfile_rename(s, fd, tmp, dst, 0) != 0)
		return -1;
	return store_with_parent(dst, fsync_dir);
}

/* A put on its way, for the watcher to hear of once it is durable (then the writer). */
struct put_note {
	struct store *s;
	enum store_kind kind;
	long long bytes;
	char digest[DIGEST_STR_SIZE];
	store_done_fn done;
	void *arg;
	char name[]; /* NAME */
};

static void put_noted(void *arg, int err)
{
	struct put_note *n = arg;
	const struct store_watch *w = &n->s->watch;

	if (err == 0 && w->stored)
		w->stored(w->arg, n->kind, n->name, n->digest, n->bytes);
	if (n->done)
		n->done(n->arg, err);
	free(n);
}

/* With a watcher, P's done goes through a note that tells it first. -1 (ENOMEM): no note, and
 * nothing may be written that the budget would not hear of. */
int store_put_watched(struct store *s, struct store_put *p, long long bytes)
{
	const char *name =
	    p->kind == STORE_MANIFEST ? p->digest : store_name_of(s, p->kind, p->path);
	struct put_note *n;

	if (!s->watch.stored)
		return 0;
	n = malloc(sizeof(*n) + strlen(name) + 1);
	if (!n) {
		errno = ENOMEM;
		return -1;
	}
	n->s = s;
	n->kind = p->kind;
	n->bytes = bytes;
	snprintf(n->digest, sizeof(n->digest), "%s", p->digest);
	n->done = p->done;
	n->arg = p->arg;
	strcpy(n->name, name); /* sized for it above */
	p->done = put_noted;
	p->arg = n;
	return 0;
}

void store_put_unwatch(struct store_put *p)
{
	if (p->done == put_noted)
		free(p->arg); /* the note: its put never started */
}

/* Writes P atomically. The daemon's store writes behind (store_sync.c): the bytes go to a temp
 * file now, the fsyncs and the rename happen off the loop and done reports the end. The offline
 * tools' store has no store_sync: there it all happens before this returns (and done, when
 * given, is called before, too). -1 (errno) when nothing was started; done is then not called. */
int store_write_atomic(struct store *s, struct store_put *p)
{
	char tmp[PATH_MAX];
	int fd, saved;

	if (store_put_watched(s, p, (long long)(p->headlen + p->bodylen)) != 0)
		return -1;
	fd = store_tmpfile_create(s, tmp);
	if (fd < 0)
		goto fail;
	if (store_write_all(fd, p->head, p->headlen) != 0 ||
	    store_write_all(fd, p->body, p->bodylen) != 0 ||
	    (s->sync && (make_parent(s, p->path) != 0 ||
			 store_sync_install(s->sync, fd, tmp, p->path, p->memo ? p->head : NULL,
					    p->headlen, p->done, p->arg) != 0))) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		goto fail;
	}
	if (s->sync)
		return 0;
	if (store_tmpfile_install(s, fd, tmp, p->path) != 0)
		goto fail;
	if (p->memo)
		memo_put(&s->memo, p->path, p->head, p->headlen, monotime_s());
	if (p->done)
		p->done(p->arg, 0);
	return 0;
fail:
	saved = errno;
	store_put_unwatch(p);
	errno = saved;
	return -1;
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

/* Renames PATH to ROOT/quarantine/BASE.<unix time>[.<n>] (into TO), never over an earlier one
 * (RENAME_NOREPLACE): each is kept for its post-mortem. */
static int quarantine_rename(const struct store *s, const char *path, const char *base,
			     char to[PATH_MAX])
{
	long long now = (long long)time(NULL);
	struct stat st;
	int n, rc;

	if (store_path(s, to, "quarantine") != 0 || (mkdir(to, 0755) != 0 && errno != EEXIST) ||
	    lstat(to, &st) != 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) { /* a link, say: nothing goes through it */
		errno = ENOTDIR;
		return -1;
	}
	for (n = 0; n < 100; n++) {
		rc = n == 0 ? store_path(s, to, "quarantine/%s.%lld", base, now)
			    : store_path(s, to, "quarantine/%s.%lld.%d", base, now, n);
		if (rc != 0)
			return -1;
		rc = renameat2(AT_FDCWD, path, AT_FDCWD, to, RENAME_NOREPLACE);
		if (rc == 0 || errno != EEXIST)
			return rc;
	}
	return -1;
}

/* Moves PATH, found at a store path but not what the store puts there (WHY), to quarantine, or
 * removes it when that fails: either way it is never read again. DST (may be NULL) gets where
 * it went. */
static int quarantine_path(const struct store *s, const char *path, const char *why,
			   char dst[PATH_MAX])
{
	const char *base = strrchr(path, '/');
	char to[PATH_MAX];
	int saved;

	base = base ? base + 1 : path;
	if (quarantine_rename(s, path, base, to) == 0) {
		log_warn("store_quarantined", "file=%s moved_to=%s reason=\"%s\"", path, to, why);
		if (dst)
			snprintf(dst, PATH_MAX, "%s", to);
		return 0;
	}
	saved = errno;
	log_warn("store_quarantined", "file=%s moved_to=none reason=\"%s\" error=\"%s\"", path, why,
		 strerror(saved));
	if (remove(path) != 0 && errno != ENOENT)
		log_error("store_foreign", "file=%s error=\"cannot remove: %s\"", path,
			  strerror(errno));
	errno = saved;
	return -1;
}

/* Opens PATH, a file under ROOT, with FLAGS through no symbolic link at all: openat2 resolves it
 * beneath ROOT and refuses a link anywhere on the way (ELOOP), where O_NOFOLLOW alone checks
 * only the last component. Without openat2 (before Linux 5.6, or a filter that refuses it), the
 * last component is all that is checked. */
static int open_beneath(const struct store *s, const char *path, int flags)
{
	size_t n = strlen(s->root);
	struct open_how how = {.flags = (unsigned long long)(flags | O_NOFOLLOW),
			       .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
	long fd;

	if (s->rootfd < 0 || strncmp(path, s->root, n) != 0 || path[n] != '/')
		return open(path, flags | O_NOFOLLOW);
	fd = syscall(SYS_openat2, s->rootfd, path + n + 1, &how, sizeof(how));
	if (fd < 0 && (errno == ENOSYS || errno == EPERM))
		return open(path, flags | O_NOFOLLOW);
	return (int)fd;
}

/* PATH could not be reached without a link: the first component below ROOT that is one was put
 * there from outside. It is quarantined (the link itself moves; nothing is done through it), so
 * that the store's own directory or file can take its place. */
static void quarantine_first_link(const struct store *s, const char *path)
{
	char at[PATH_MAX];
	struct stat st;
	size_t i = strlen(s->root);

	if (snprintf(at, sizeof(at), "%s", path) >= (int)sizeof(at))
		return;
	while (at[i] == '/') {
		char *end = strchr(at + i + 1, '/');

		if (end)
			*end = '\0';
		if (lstat(at, &st) != 0)
			return;
		if (S_ISLNK(st.st_mode)) {
			quarantine_path(s, at, "a symbolic link", NULL);
			return;
		}
		if (!end)
			return;
		*end = '/';
		i = (size_t)(end - at);
	}
}

/* mkdir -p of FILE's directory, which must then be reachable from ROOT through no link: a link
 * planted on the way is quarantined and the directory made again, once. The rename that follows
 * then puts the file in the store, not where a link points. */
static int make_parent(const struct store *s, const char *file)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(file, '/');
	int fd, tries;

	if (!slash || (size_t)(slash - file) >= sizeof(dir)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(dir, file, (size_t)(slash - file));
	dir[slash - file] = '\0';
	for (tries = 0; tries < 2; tries++) {
		if (mkdirs(dir) != 0)
			return -1;
		fd = open_beneath(s, dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (errno != ELOOP)
			return -1;
		quarantine_first_link(s, dir);
	}
	errno = ELOOP;
	return -1;
}

/* Opens the store file PATH to read it: never through a symbolic link, never blocking (on a
 * FIFO with no writer, or a device), and only a regular file, whose stat goes into *st. Anything
 * else there was not put by the store: it is quarantined and the file counts as absent
 * (ENOENT), so that the caller fetches the real one instead of failing for ever. */
int store_open_file(const struct store *s, const char *path, struct stat *st)
{
	int fd = open_beneath(s, path, OPEN_FLAGS);

	if (fd < 0 && errno == ELOOP) { /* a link, at the end or on the way */
		quarantine_first_link(s, path);
		errno = ENOENT;
		return -1;
	}
	if (fd < 0 && errno != ENXIO) /* ENXIO: a socket */
		return -1;
	if (fd >= 0 && fstat(fd, st) != 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	if (fd >= 0 && S_ISREG(st->st_mode))
		return fd;
	if (fd >= 0)
		close(fd);
	quarantine_path(s, path, "not a regular file", NULL);
	errno = ENOENT;
	return -1;
}

/* Whether the store's own file is at PATH: a regular file (a link is not, whatever it points
 * at). Something else there is quarantined, so that a rename can put the real one in place. */
int store_object_present(const struct store *s, const char *path, struct stat *st)
{
	int fd = open_beneath(s, path, O_PATH | O_CLOEXEC), rc;

	if (fd < 0) {
		if (errno == ELOOP)
			quarantine_first_link(s, path);
		return 0;
	}
	rc = fstat(fd, st);
	close(fd);
	if (rc != 0)
		return 0;
	if (S_ISREG(st->st_mode))
		return 1;
	quarantine_path(s, path, "not a regular file", NULL);
	return 0;
}

/* Reads a whole regular file of at most MAX bytes into a malloc'd, NUL-terminated buffer.
 * -1 with errno: ENOENT when absent (or not a regular file: see store_open_file), EFBIG when
 * larger than MAX. */
int store_read_whole(int fd, const struct stat *st, size_t max, char **data, size_t *len)
{
	char *buf = NULL;
	int saved;

	if (st->st_size < 0 || (uintmax_t)st->st_size > max) {
		errno = EFBIG;
		goto fail;
	}
	buf = malloc((size_t)st->st_size + 1);
	if (!buf || store_read_exact(fd, buf, (size_t)st->st_size) != 0)
		goto fail;
	close(fd);
	buf[st->st_size] = '\0';
	*data = buf;
	*len = (size_t)st->st_size;
	return 0;
fail:
	saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	return -1;
}

int store_read_small(const struct store *s, const char *path, size_t max, char **data, size_t *len)
{
	struct stat st;
	int fd = store_open_file(s, path, &st);

	return fd < 0 ? -1 : store_read_whole(fd, &st, max, data, len);
}

/* Removes every entry of ROOT/tmp: temp files left by a crash. Only in the directory itself
 * (O_NOFOLLOW): never in one a link points at. */
static int tmp_clear(const struct store *s)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	if (store_path(s, path, "tmp") != 0 ||
	    (fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return -1;
	}
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

/* ROOT/DIR, each of its components made when missing and checked to be a directory, not a link
 * to one: through ROOT/tmp -> /etc, say, start-up would clear /etc, and through ROOT/blobs ->
 * /var the store would serve and write files there. (ROOT itself may be a link.) */
static int own_dir(const struct store *s, const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct stat st;
	size_t at = strlen(s->root) + 1, len;

	if (store_path(s, path, "%s", dir) != 0) {
		snprintf(err, errlen, "%s/%s: %s", s->root, dir, strerror(errno));
		return -1;
	}
	len = strlen(path);
	for (; at <= len; at++) { /* at: the end of the next component */
		at += strcspn(path + at, "/");
		path[at] = '\0';
		if ((mkdir(path, 0755) != 0 && errno != EEXIST) || lstat(path, &st) != 0) {
			snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
			return -1;
		}
		if (!S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "%s is %s: refusing to use it", path,
				 S_ISLNK(st.st_mode) ? "a symbolic link, not a directory"
						     : "not a directory");
			return -1;
		}
		if (at < len)
			path[at] = '/';
	}
	return 0;
}

/* The one constructor: CLEAR_TMP for the daemon starting up, not for an offline tool that may
 * run beside a daemon on the same root. */
static int store_init(struct store *s, const char *root, int clear_tmp, char *err, size_t errlen)
{
	s->memo = NULL;
	s->rootfd = -1;
	s->sync = NULL; /* the daemon sets it once its syncq is up */
	memset(&s->watch, 0, sizeof(s->watch));
	s->root = strdup(root);
	if (!s->root) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (mkdirs(root) != 0) {
		snprintf(err, errlen, "cannot create %s: %s", root, strerror(errno));
		goto fail;
	}
	for (const char *const *d = store_dirs; *d; d++) {
		if (own_dir(s, *d, err, errlen) != 0)
			goto fail;
	}
	if (clear_tmp && tmp_clear(s) != 0) {
		snprintf(err, errlen, "cannot clear %s/tmp: %s", root, strerror(errno));
		goto fail;
	}
	s->rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->rootfd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", root, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	store_close(s);
	return -1;
}

int store_open(struct store *s, const char *root, char *err, size_t errlen)
{
	return store_init(s, root, 1, err, errlen);
}

int store_attach(struct store *s, const char *root, char *err, size_t errlen)
{
	return store_init(s, root, 0, err, errlen);
}

void store_close(struct store *s)
{
	if (s->rootfd >= 0)
		close(s->rootfd);
	s->rootfd = -1;
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
	if (store_object_path(s, "blobs", digest, path) != 0)
		return -1;
	fd = store_open_file(s, path, &st);
	if (fd < 0)
		return -1;
	*size = st.st_size;
	return fd;
}

int store_blob_remove(struct store *s, const char *digest)
{
	return store_remove(s, STORE_BLOB, digest);
}

int store_blob_exists(struct store *s, const char *digest, long long *size)
{
	char path[PATH_MAX];
	struct stat st;

	if (digest_check(digest) != 0 || store_object_path(s, "blobs", digest, path) != 0 ||
	    !store_object_present(s, path, &st))
		return 0;
	if (size)
		*size = st.st_size;
	return 1;
}

/* --- every object --- */

/* The path of KIND and NAME; -1 (EINVAL) for a name the store never makes. */
static int named_path(const struct store *s, enum store_kind kind, const char *name,
		      char out[PATH_MAX])
{
	if (kind == STORE_BLOB || kind == STORE_MANIFEST) {
		if (digest_check(name) == 0)
			return store_object_path(s, kind_dirs[kind], name, out);
	} else if (rel_ok(name)) {
		return store_path(s, out, "%s/%s", kind_dirs[kind], name);
	}
	errno = EINVAL;
	return -1;
}

/* Removes the directories PATH leaves empty, up to (not including) its kind's directory or a
 * <2 hex> one. A write into one of them may be on its way (store_sync renames later): it then
 * fails, is logged, and its file is fetched again when next asked for. */
static void prune_dirs(const struct store *s, enum store_kind kind, char path[PATH_MAX])
{
	size_t stop = strlen(s->root) + 1 + strlen(kind_dirs[kind]);
	char *slash;

	if (kind == STORE_BLOB || kind == STORE_MANIFEST)
		return;
	while ((slash = strrchr(path, '/')) && (size_t)(slash - path) > stop) {
		*slash = '\0';
		if (rmdir(path) != 0)
			return;
	}
}

int store_remove(struct store *s, enum store_kind kind, const char *name)
{
	char path[PATH_MAX];
	int rc;

	if (named_path(s, kind, name, path) != 0)
		return -1;
	rc = unlink(path);
	if (rc == 0 && kind != STORE_BLOB)
		memo_drop(s->memo, path);
	if (rc == 0)
		prune_dirs(s, kind, path);
	return rc;
}

/* The digest the tag FILE (in directory DFD) names into o->digest; "" when it names none. */
static void tag_target(struct store_object *o, int dfd, const char *file)
{
	char line[DIGEST_STR_SIZE];
	int fd = openat(dfd, file, OPEN_FLAGS);
	ssize_t n = fd >= 0 ? read(fd, line, sizeof(line) - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return;
	line[n] = '\0';
	line[strcspn(line, " \n")] = '\0';
	if (digest_check(line) == 0)
		memcpy(o->digest, line, sizeof(line));
}

/* The store object FILE in directory DFD (at o->path): its size and mtime, whether it is a
 * regular file (a link is not: it is looked at, not followed), and for a tag the digest it
 * names. */
static int object_stat(struct store_object *o, int dfd, const char *file)
{
	struct stat st;

	if (fstatat(dfd, file, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return -1;
	o->foreign = !S_ISREG(st.st_mode);
	o->size = st.st_size;
	o->mtime = st.st_mtime;
	if (o->kind == STORE_TAG || o->kind == STORE_TAGLIST)
		o->digest[0] = '\0';
	if (o->kind == STORE_TAG && !o->foreign)
		tag_target(o, dfd, file);
	return 0;
}

/* One <2 hex> directory: only <64 hex> names are the store's; anything else in there is left
 * alone. */
static int each_in_dir(struct store_object *o, DIR *d, store_each_fn fn, void *arg)
{
	size_t dirlen = strlen(o->path);
	struct dirent *de;
	int rc = 0;

	while (rc == 0 && (de = readdir(d))) {
		if (strlen(de->d_name) != DIGEST_HEX_LEN)
			continue;
		snprintf(o->digest, sizeof(o->digest), "sha256:%.64s", de->d_name);
		if (digest_check(o->digest) != 0 || dirlen + 1 + DIGEST_HEX_LEN >= PATH_MAX ||
		    object_stat(o, dirfd(d), de->d_name) != 0)
			continue;
		snprintf(o->path + dirlen, PATH_MAX - dirlen, "/%s", de->d_name);
		rc = fn(arg, o);
		o->path[dirlen] = '\0';
	}
	return rc;
}

static int each_object(struct store *s, struct store_object *o, store_each_fn fn, void *arg)
{
	int i, rc = 0;
	DIR *d;

	o->name = o->digest;
	for (i = 0; i < 256 && rc == 0; i++) {
		if (store_path(s, o->path, "%s/sha256/%02x", kind_dirs[o->kind], i) != 0 ||
		    !(d = opendir(o->path)))
			continue;
		rc = each_in_dir(o, d, fn, arg);
		closedir(d);
	}
	return rc;
}

/* Below ROOT/tags/ and ROOT/taglists/ every file is one, at any depth (a repository has several
 * parts); directories are entered without following links (O_NOFOLLOW), DEPTH of them at most. */
static int each_below(struct store_object *o, int dfd, int depth, store_each_fn fn, void *arg)
{
	size_t dirlen = strlen(o->path);
	struct dirent *de;
	int rc = 0, sub;
	DIR *d = fdopendir(dfd);

	if (!d) {
		close(dfd);
		return 0;
	}
	while (rc == 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.' || dirlen + 1 + strlen(de->d_name) >= PATH_MAX)
			continue;
		snprintf(o->path + dirlen, PATH_MAX - dirlen, "/%s", de->d_name);
		sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0 && depth < WALK_DEPTH)
			rc = each_below(o, sub, depth + 1, fn, arg);
		else if (sub >= 0)
			close(sub);
		else if (errno == ENOTDIR || errno == ELOOP)
			rc = object_stat(o, dirfd(d), de->d_name) == 0 ? fn(arg, o) : 0;
		o->path[dirlen] = '\0';
	}
	closedir(d);
	return rc;
}

int store_each(struct store *s, enum store_kind kind, store_each_fn fn, void *arg)
{
	struct store_object o = {.kind = kind};
	int dfd;

	if (kind == STORE_BLOB || kind == STORE_MANIFEST)
		return each_object(s, &o, fn, arg);
	if (store_path(s, o.path, "%s", kind_dirs[kind]) != 0)
		return 0;
	o.name = o.path + strlen(o.path) + 1;
	dfd = open(o.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return dfd < 0 ? 0 : each_below(&o, dfd, 0, fn, arg);
}

int store_quarantine(struct store *s, const struct store_object *o, char dst[PATH_MAX])
{
	return quarantine_path(s, o->path, "verify found it bad", dst);
}

/* A file of KIND was read: the watcher counts it as used now. */
void store_tell_used(struct store *s, enum store_kind kind, const char *name)
{
	if (s->watch.used)
		s->watch.used(s->watch.arg, kind, name);
}
