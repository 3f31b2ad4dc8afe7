/* store_sync: the store's small files (manifests, tags, tag lists) made durable without an fsync
 * on the event loop. store.c writes a file's bytes to ROOT/tmp at once (a few KiB) and hands the
 * temp file over; here it is fsynced on the syncq, renamed into place and its directory fsynced,
 * and only then is the writer told. So the durability rule of the store holds: what is under its
 * final name is complete and synced, and done(arg, 0) means the name is durable too.
 *
 * Renames happen in the order the writes were handed over, whatever order their fsyncs finish
 * in: two writes of one tag leave the later one in place. A write that depends on another (a tag
 * on its manifest) is started from the first one's done, which comes after its directory fsync.
 * A content-addressed file that is there already is fsynced in its turn all the same, so that
 * done means durable for it too. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "registry.h"

/* One file on its way: its temp file's fsync, then (at the head of the queue) the rename, then
 * its directory's fsync. */
struct sync_write {
	TAILQ_ENTRY(sync_write) link; /* in ss->queue until renamed */
	struct store_sync *ss;
	int fd;	    /* the temp file (or the file in place), then the directory */
	int synced; /* the first fsync finished, with err */
	int err;
	int in_place; /* no temp file: dst is there already */
	char tmp[PATH_MAX], dst[PATH_MAX];
	char *memo; /* dst's content to keep in the store's memo once it is visible, or NULL */
	size_t memo_len;
	store_done_fn done;
	void *arg;
};

struct store_sync {
	struct store *s;
	struct syncq *q;
	TAILQ_HEAD(, sync_write) queue;
};

struct store_sync *store_sync_new(struct store *s, struct syncq *q)
{
	struct store_sync *ss = calloc(1, sizeof(*ss));

	if (!ss)
		return NULL;
	ss->s = s;
	ss->q = q;
	TAILQ_INIT(&ss->queue);
	return ss;
}

/* The one destructor of a write: tells its writer, then frees it. */
static void write_finish(struct sync_write *w, int err)
{
	if (err != 0)
		log_error("store_write", "file=%s error=\"%s\"", w->dst, strerror(err));
	if (w->done)
		w->done(w->arg, err);
	free(w->memo);
	free(w);
}

static void dir_synced(void *arg, int err)
{
	struct sync_write *w = arg;

	close(w->fd);
	write_finish(w, err);
}

/* Renames W into place (unless it is there already) and starts its directory's fsync. */
static void install(struct sync_write *w)
{
	char dir[PATH_MAX];
	char *slash;
	int err = w->err;

	if (err == 0 && close(w->fd) != 0) /* Linux releases fd even when close fails */
		err = errno;
	else if (err != 0)
		close(w->fd);
	w->fd = -1;
	if (err == 0 && !w->in_place && rename(w->tmp, w->dst) != 0)
		err = errno;
	if (err != 0) {
		if (!w->in_place)
			unlink(w->tmp);
		write_finish(w, err);
		return;
	}
	if (w->memo)
		memo_put(&w->ss->s->memo, w->dst, w->memo, w->memo_len, monotime_s());
	snprintf(dir, sizeof(dir), "%s", w->dst);
	slash = strrchr(dir, '/');
	*slash = '\0'; /* dst is a path under ROOT: it has one */
	w->fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->fd < 0) {
		write_finish(w, errno);
		return;
	}
	if (syncq_fsync(w->ss->q, w->fd, dir_synced, w) < 0) /* out of memory: do it here */
		dir_synced(w, fsync(w->fd) == 0 ? 0 : errno);
}

/* Installs, in order, every write at the head of the queue whose file is synced. */
static void advance(struct store_sync *ss)
{
	struct sync_write *w;

	while ((w = TAILQ_FIRST(&ss->queue)) && w->synced) {
		TAILQ_REMOVE(&ss->queue, w, link);
		install(w);
	}
}

static void file_synced(void *arg, int err)
{
	struct sync_write *w = arg;

	w->synced = 1;
	w->err = err;
	advance(w->ss);
}

int store_sync_install(struct store_sync *ss, int fd, const char *tmp, const char *dst,
		       const char *memo, size_t memo_len, store_done_fn done, void *arg)
{
	struct sync_write *w = calloc(1, sizeof(*w));

	if (w && memo && !(w->memo = malloc(memo_len + 1))) {
		free(w);
		w = NULL;
	}
	if (!w) {
		errno = ENOMEM;
		return -1;
	}
	w->ss = ss;
	w->in_place = !tmp;
	/* in place: the store checked it is a regular file; never block on what replaced it */
	w->fd = w->in_place ? open(dst, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) : fd;
	snprintf(w->tmp, sizeof(w->tmp), "%s", tmp ? tmp : "");
	snprintf(w->dst, sizeof(w->dst), "%s", dst);
	if (memo) {
		memcpy(w->memo, memo, memo_len);
		w->memo[memo_len] = '\0';
		w->memo_len = memo_len;
	}
	w->done = done;
	w->arg = arg;
	if (w->fd < 0 || syncq_fsync(ss->q, w->fd, file_synced, w) < 0) {
		int saved = errno;

		if (w->fd >= 0 && w->in_place)
			close(w->fd);
		free(w->memo);
		free(w);
		errno = saved;
		return -1;
	}
	TAILQ_INSERT_TAIL(&ss->queue, w, link);
	return 0;
}

/* Only once the syncq is drained: every write has then finished. */
void store_sync_free(struct store_sync *ss)
{
	free(ss);
}
