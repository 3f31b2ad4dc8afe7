/* transfer: exactly one upstream transfer per blob, however many readers ask. Bytes go to a temp
 * file while SHA-256 runs over them. The transfer speaks no HTTP: its readers (blob.c's clients,
 * prewarm) are told through their ops when the body starts, how much of the temp file they may
 * read, and how it ended.
 *
 * The safety rule lives here. Each reader says which bytes it reads: the whole blob, or the
 * bytes before the end of a range. Of those, every one but its last is released while the
 * digest is unverified, its last only once the whole blob is verified. A range is no exception:
 * its bytes are as unverified as any other until the digest of the whole blob is, so a range
 * complete before then would be wrong content taken as complete. A failed or mismatched
 * transfer stores nothing and tells every reader it failed, so that none takes wrong content as
 * complete (blob.c closes the connection of a response still short of its last byte).
 *
 * Why hold back one byte rather than answer ranges once the blob is stored: a range of a big
 * blob still streams while the blob arrives, at the cost of that one byte; and a range is
 * served the one way a whole blob is, with no second path to get wrong.
 *
 * Nothing of the commit fsyncs on the loop: verified, the temp file is fsynced on the syncq;
 * only then is it renamed into place (a visible blob is durable), and its directory is fsynced
 * on the syncq before the readers are told it is stored. Until then the transfer stays findable:
 * new readers join it and read the verified temp file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "registry.h"

enum transfer_state {
	TRANSFER_ASKING,    /* no 200 from the upstream yet */
	TRANSFER_RECEIVING, /* a 200 came: the body goes to the temp file */
	TRANSFER_SYNCING,   /* every byte is in and verified: the temp file is being fsynced */
	TRANSFER_RENAMED,   /* visible in the store: its directory is being fsynced */
};

struct transfer {
	LIST_ENTRY(transfer) link; /* r->transfers */
	struct registry *r;
	enum transfer_state state;
	char digest[DIGEST_STR_SIZE];
	char host[256];
	struct upreq *u;
	struct store_tmp tmp;
	int tmp_open;
	int dirfd; /* the blob's directory while it is fsynced, else -1 */
	ev_tstamp started, verified_at;
	long long size; /* from Content-Length; -1 unknown */
	char error[256];
	TAILQ_HEAD(, transfer_reader) readers;
};

/* Of the bytes before the reader's end, everything but its last until the blob is verified. */
static long long releasable(const struct transfer *t, const struct transfer_reader *rd)
{
	if (t->state >= TRANSFER_SYNCING)
		return t->size;
	return t->tmp.on_disk < rd->end ? t->tmp.on_disk : rd->end - 1;
}

/* Readers may read the temp file once its length is known, until it is renamed away. */
static int readable(const struct transfer *t)
{
	return (t->state == TRANSFER_RECEIVING || t->state == TRANSFER_SYNCING) && t->size > 0;
}

/* The reader may leave (and be freed) inside on_start: nothing touches it afterwards. */
static void reader_start(struct transfer *t, struct transfer_reader *rd)
{
	if (!rd->ops->on_start)
		return;
	rd->started = 1;
	rd->ops->on_start(rd->arg, t->tmp.path, t->size);
}

/* Readers that said what they read. One whose part is complete (the blob is verified, then)
 * may leave inside on_avail: keep next first. */
static void tell_avail(struct transfer *t)
{
	struct transfer_reader *rd, *next;

	for (rd = TAILQ_FIRST(&t->readers); rd; rd = next) {
		next = TAILQ_NEXT(rd, link);
		if (rd->end > 0 && rd->ops->on_avail)
			rd->ops->on_avail(rd->arg, releasable(t, rd));
	}
}

/* The one destructor. Its order: off r->transfers first, so that nobody joins a transfer that
 * is ending (a reader's on_end may well ask for the same blob again); the temp file and the
 * directory go; then each reader is taken off and told, and may free itself; then the transfer. */
static void transfer_free(struct transfer *t, const struct transfer_end *end)
{
	struct transfer_reader *rd;

	LIST_REMOVE(t, link);
	if (t->tmp_open)
		store_tmp_abort(&t->tmp);
	if (t->dirfd >= 0)
		close(t->dirfd);
	while ((rd = TAILQ_FIRST(&t->readers))) {
		TAILQ_REMOVE(&t->readers, rd, link);
		rd->t = NULL;
		rd->ops->on_end(rd->arg, end);
	}
	free(t);
}

/* The upstream's bytes were good, but the blob could not be stored: nothing of it stays. */
static void store_failed(struct transfer *t)
{
	struct transfer_end end = {.err = t->error, .status = 200};

	log_error("blob_store", "digest=%s error=\"%s\"", t->digest, t->error);
	transfer_free(t, &end);
}

static void stored(struct transfer *t)
{
	struct registry *r = t->r;
	struct transfer_end end = {.ok = 1, .status = 200};
	char digest[DIGEST_STR_SIZE];
	long long size = t->tmp.written;
	int keep;

	log_info("blob_stored", "digest=%s bytes=%lld fetch_s=%.3f sync_s=%.3f", t->digest, size,
		 t->verified_at - t->started, ev_now(r->loop) - t->verified_at);
	metrics_observe(r->stats.fetch_seconds, t->verified_at - t->started);
	snprintf(digest, sizeof(digest), "%s", t->digest);
	keep = evict_stored(r->evict, digest, size) == 0;
	transfer_free(t, &end);
	/* Too big for the budget: every reader has it open by now, so it can go. */
	if (!keep)
		store_blob_remove(&r->store, digest);
}

/* The name is durable too: the blob is stored. */
static void dir_synced(void *arg, int err)
{
	struct transfer *t = arg;

	close(t->dirfd);
	t->dirfd = -1;
	if (err == 0) {
		stored(t);
		return;
	}
	snprintf(t->error, sizeof(t->error), "fsync of the blob's directory: %s", strerror(err));
	store_blob_remove(&t->r->store, t->digest); /* stored means durable: it is not */
	store_failed(t);
}

/* The bytes are durable: only now does the blob get its name. */
static void data_synced(void *arg, int err)
{
	struct transfer *t = arg;

	if (err != 0) {
		snprintf(t->error, sizeof(t->error), "fsync: %s", strerror(err));
		store_failed(t);
		return;
	}
	t->tmp_open = 0; /* renamed or removed, whatever happens next */
	if (store_tmp_rename_blob(&t->r->store, &t->tmp, t->digest, &t->dirfd, t->error,
				  sizeof(t->error)) < 0) {
		store_failed(t);
		return;
	}
	t->state = TRANSFER_RENAMED;
	if (t->dirfd < 0) /* it was there already */
		stored(t);
	else if (syncq_fsync(t->r->syncq, t->dirfd, dir_synced, t) < 0)
		dir_synced(t, errno);
}

/* Verified: release the last byte to the readers at once, then make the blob durable off the
 * loop (a 1 GiB fsync must not stall every other client). */
static void transfer_verified(struct transfer *t)
{
	t->state = TRANSFER_SYNCING;
	t->verified_at = ev_now(t->r->loop);
	tell_avail(t);
	if (syncq_fsync(t->r->syncq, t->tmp.fd, data_synced, t) < 0)
		data_synced(t, errno);
}

static int on_response(struct upreq *u, long status, void *arg)
{
	struct transfer *t = arg;
	const char *len = upreq_header(u, "Content-Length");
	struct transfer_reader *rd, *next;

	if (status != 200)
		return 0;
	t->size = len ? atoll(len) : -1;
	t->state = TRANSFER_RECEIVING;
	if (!readable(t))
		return 0; /* no length to announce: readers get the blob once it is stored */
	for (rd = TAILQ_FIRST(&t->readers); rd; rd = next) {
		next = TAILQ_NEXT(rd, link);
		reader_start(t, rd);
	}
	return 0;
}

static int on_data(struct upreq *u, const char *buf, size_t len, void *arg)
{
	struct transfer *t = arg;

	(void)u;
	if (t->state != TRANSFER_RECEIVING)
		return 0; /* an error body: not ours to store */
	if (t->size >= 0 && t->tmp.written + (long long)len > t->size) {
		snprintf(t->error, sizeof(t->error), "upstream sent more than Content-Length");
		return -1;
	}
	metrics_add(t->r->stats.bytes, (double)len, "upstream");
	if (store_tmp_write(&t->tmp, buf, len) < 0) {
		snprintf(t->error, sizeof(t->error), "writing temp file: %s", strerror(errno));
		return -1;
	}
	if (t->size > 0)
		tell_avail(t);
	return 0;
}

/* The body is in: a mismatch stores nothing and returns 502 as the upstream's fault. */
static int transfer_check(struct transfer *t)
{
	if (t->size < 0)
		t->size = t->tmp.written;
	if (store_tmp_verify(&t->tmp, t->digest, t->size, t->error, sizeof(t->error)) == 0)
		return 0;
	t->tmp_open = 0;
	metrics_add(t->r->stats.mismatches, 1);
	metrics_add(t->r->stats.upstream_errors, 1, "digest_mismatch");
	log_warn("digest_mismatch", "digest=%s registry=%s error=\"%s\"", t->digest, t->host,
		 t->error);
	return -1;
}

static void on_done(struct upreq *u, int ok, const char *err, void *arg)
{
	struct transfer *t = arg;
	struct transfer_end end = {.status = ok ? upreq_status(u) : 0};

	t->u = NULL;
	if (ok && end.status == 200) {
		if (transfer_check(t) == 0) {
			transfer_verified(t);
			return;
		}
		end.status = 502;
	} else {
		metrics_add(t->r->stats.upstream_errors, 1,
			    t->error[0]	 ? "transfer"
			    : end.status ? "status"
					 : "unreachable");
		if (!t->error[0] && err)
			snprintf(t->error, sizeof(t->error), "%s", err);
	}
	log_warn("blob_pull_failed", "digest=%s registry=%s status=%ld bytes=%lld error=\"%s\"",
		 t->digest, t->host, end.status, t->tmp.written, t->error);
	end.err = t->error[0] ? t->error : NULL;
	end.retry_after = upreq_header(u, "Retry-After");
	transfer_free(t, &end);
}

static struct transfer *transfer_new(struct registry *r, const struct blob_ask *ask)
{
	static const struct upreq_hooks hooks = {on_response, on_data, on_done};
	struct transfer *t = calloc(1, sizeof(*t));
	char path[16 + DIGEST_STR_SIZE];

	if (!t)
		return NULL;
	t->r = r;
	t->size = -1;
	t->dirfd = -1;
	t->started = ev_now(r->loop);
	TAILQ_INIT(&t->readers);
	snprintf(t->digest, sizeof(t->digest), "%s", ask->digest);
	snprintf(t->host, sizeof(t->host), "%s", upstream_host(ask->up));
	if (store_tmp_begin(&r->store, &t->tmp) < 0) {
		log_error("blob_pull", "digest=%s error=\"temp file: %s\"", t->digest,
			  strerror(errno));
		free(t);
		return NULL;
	}
	t->tmp_open = 1;
	snprintf(path, sizeof(path), "blobs/%s", ask->digest);
	t->u = upreq_start(r, ask->up, "GET", ask->repo, path, NULL, 0, &hooks, t);
	if (!t->u) {
		store_tmp_abort(&t->tmp);
		free(t);
		return NULL;
	}
	LIST_INSERT_HEAD(&r->transfers, t, link);
	log_info("blob_pull", "digest=%s registry=%s repo=%s", t->digest, t->host, ask->repo);
	return t;
}

static struct transfer *transfer_find(struct registry *r, const char *digest)
{
	struct transfer *t;

	for (t = LIST_FIRST(&r->transfers); t; t = LIST_NEXT(t, link))
		if (strcmp(t->digest, digest) == 0)
			return t;
	return NULL;
}

int transfer_join(struct registry *r, const struct blob_ask *ask, struct transfer_reader *rd)
{
	struct transfer *t = transfer_find(r, ask->digest);

	if (!t && !(t = transfer_new(r, ask)))
		return -1;
	rd->t = t;
	rd->started = 0;
	rd->end = 0;
	TAILQ_INSERT_TAIL(&t->readers, rd, link);
	if (readable(t))
		reader_start(t, rd); /* the last use of rd: it may be gone after */
	return 0;
}

long long transfer_read(struct transfer_reader *rd, long long end)
{
	struct transfer *t = rd->t;

	if (!t || !rd->started || end <= 0)
		return 0;
	rd->end = end < t->size ? end : t->size;
	return releasable(t, rd);
}

void transfer_leave(struct transfer_reader *rd)
{
	if (!rd->t)
		return;
	TAILQ_REMOVE(&rd->t->readers, rd, link);
	rd->t = NULL;
}

/* An internal caller's reader: it wants only the end. */
struct fetch_reader {
	struct transfer_reader rd;
	transfer_done_fn done;
	void *arg;
};

static void fetch_end(void *arg, const struct transfer_end *end)
{
	struct fetch_reader *fr = arg;

	fr->done(fr->arg, end->ok ? NULL : end->err ? end->err : "upstream failed");
	free(fr);
}

void transfer_fetch(struct registry *r, const struct blob_ask *ask, transfer_done_fn done,
		    void *arg)
{
	static const struct transfer_reader_ops ops = {.on_end = fetch_end};
	struct fetch_reader *fr;

	/* One in flight is joined even when the blob is visible: stored means its name is durable.
	 */
	if (!transfer_find(r, ask->digest) && store_blob_exists(&r->store, ask->digest, NULL)) {
		done(arg, NULL);
		return;
	}
	fr = calloc(1, sizeof(*fr));
	if (!fr) {
		done(arg, "out of memory");
		return;
	}
	fr->rd.ops = &ops;
	fr->rd.arg = fr;
	fr->done = done;
	fr->arg = arg;
	if (transfer_join(r, ask, &fr->rd) < 0) {
		free(fr);
		done(arg, "cannot start blob transfer");
	}
}

/* Transfers whose blob is verified are left to finish (syncq_drain completes them). */
void transfer_abort_all(struct registry *r)
{
	struct transfer *t = LIST_FIRST(&r->transfers), *next;
	struct transfer_end end = {.err = "shutting down"};

	for (; t; t = next) {
		next = LIST_NEXT(t, link);
		if (t->state >= TRANSFER_SYNCING)
			continue;
		if (t->u)
			upreq_cancel(t->u);
		transfer_free(t, &end);
	}
}
