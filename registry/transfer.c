/* pull: exactly one upstream transfer per blob, however many clients ask. Bytes go to a temp
 * file while SHA-256 runs over them; every client attached to the pull streams from that file
 * up to what has been written -- less the last byte, which is released only once the digest
 * has been verified and the blob renamed into place. A failed or mismatched transfer stores
 * nothing and cuts every streaming client off before its last byte. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry.h"

/* Someone waiting on a pull: an HTTP client streaming the blob, or an internal caller
 * (prewarm) told when the blob is stored. */
struct blob_reader {
	struct blob_reader *next;
	struct blob_pull *p;
	struct httpd_conn *conn;
	blob_done_fn done;
	void *arg;
	char *range;
	int started; /* its response head has gone out: it streams from the temp file */
};

struct blob_pull {
	struct blob_pull *next;
	struct registry *r;
	char digest[DIGEST_STR_SIZE];
	char host[256];
	struct upreq *u;
	struct store_tmp tmp;
	int tmp_open;
	ev_tstamp started;
	long long size; /* from Content-Length; -1 unknown */
	int streaming;	/* a 200 arrived: readers may start */
	int verified;	/* every byte is in and the digest matched: syncing, then stored */
	ev_tstamp verified_at;
	char error[256];
	struct blob_reader *readers;
};

static void reader_free(struct blob_reader *rd)
{
	free(rd->range);
	free(rd);
}

static void reader_unlink(struct blob_reader *rd)
{
	struct blob_reader **pp;

	for (pp = &rd->p->readers; *pp; pp = &(*pp)->next)
		if (*pp == rd) {
			*pp = rd->next;
			return;
		}
}

/* The reader's response ended or its client went away. */
static void reader_release(struct httpd_conn *conn, void *arg)
{
	struct blob_reader *rd = arg;

	(void)conn;
	reader_unlink(rd);
	reader_free(rd);
}

/* Everything but the last byte, until the blob is verified. */
static off_t releasable(const struct blob_pull *p)
{
	if (p->verified)
		return p->size;
	return p->tmp.on_disk < p->size ? p->tmp.on_disk : p->size - 1;
}

static void reader_start(struct blob_reader *rd)
{
	struct blob_pull *p = rd->p;
	int fd = open(p->tmp.path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		api_error(rd->conn, 500, "UNKNOWN", "cannot open temp file: %s", strerror(errno));
		return;
	}
	rd->started = 1;
	blob_respond_fd(rd->conn, p->digest, fd, p->size, releasable(p), rd->range);
}

static void pull_unlink(struct blob_pull *p)
{
	struct blob_pull **pp;

	for (pp = &p->r->blob_pulls; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			return;
		}
}

static void reader_finish(struct blob_reader *rd, int ok, long status, const char *retry_after)
{
	struct blob_pull *p = rd->p;

	if (rd->done) {
		rd->done(rd->arg, ok ? NULL : p->error[0] ? p->error : "upstream failed");
		reader_free(rd);
		return;
	}
	httpd_set_release(rd->conn, NULL, NULL);
	if (rd->started && ok)
		httpd_file_avail(rd->conn, (off_t)p->size);
	else if (rd->started)
		httpd_close(rd->conn); /* cut short: no client takes this as complete */
	else if (!ok)
		api_error_upstream(rd->conn, status, retry_after, "BLOB_UNKNOWN",
				   p->error[0] ? p->error : NULL);
	else if (blob_serve_stored(p->r, rd->conn, p->digest, rd->range) < 0)
		api_error(rd->conn, 500, "UNKNOWN", "stored blob cannot be opened");
	reader_free(rd);
}

/* The one destructor: every reader still attached is finished first. */
static void pull_free(struct blob_pull *p, int ok, long status, const char *retry_after)
{
	struct blob_reader *rd;

	while ((rd = p->readers)) {
		p->readers = rd->next;
		reader_finish(rd, ok, status, retry_after);
	}
	if (p->tmp_open)
		store_tmp_abort(&p->tmp);
	pull_unlink(p);
	free(p);
}

static int on_response(struct upreq *u, long status, void *arg)
{
	struct blob_pull *p = arg;
	const char *len = upreq_header(u, "Content-Length");
	struct blob_reader *rd, *next;

	if (status != 200)
		return 0;
	p->size = len ? atoll(len) : -1;
	p->streaming = 1;
	if (p->size <= 0)
		return 0; /* no length to announce: readers get the blob once it is stored */
	for (rd = p->readers; rd; rd = next) {
		next = rd->next;
		if (rd->conn)
			reader_start(rd);
	}
	return 0;
}

static int on_data(struct upreq *u, const char *buf, size_t len, void *arg)
{
	struct blob_pull *p = arg;
	struct blob_reader *rd, *next;

	(void)u;
	if (!p->streaming)
		return 0; /* an error body: not ours to store */
	if (p->size >= 0 && p->tmp.written + (long long)len > p->size) {
		snprintf(p->error, sizeof(p->error), "upstream sent more than Content-Length");
		return -1;
	}
	metrics_add(p->r->stats.bytes, (double)len, "upstream");
	if (store_tmp_write(&p->tmp, buf, len) < 0) {
		snprintf(p->error, sizeof(p->error), "writing temp file: %s", strerror(errno));
		return -1;
	}
	/* A reader whose range is complete now finishes and unlinks itself: keep next first. */
	for (rd = p->size > 0 ? p->readers : NULL; rd; rd = next) {
		next = rd->next;
		if (rd->started)
			httpd_file_avail(rd->conn, releasable(p));
	}
	return 0;
}

/* Durable: rename into place, serve whoever waited for the stored blob, and free the pull. */
static void pull_synced(void *arg, int err)
{
	struct blob_pull *p = arg;
	struct registry *r = p->r;
	char why[256], digest[DIGEST_STR_SIZE];
	int keep = 1;

	snprintf(digest, sizeof(digest), "%s", p->digest);
	p->tmp.synced = err == 0;
	p->tmp_open = 0;
	if (store_tmp_commit_blob(&r->store, &p->tmp, digest, why, sizeof(why)) < 0) {
		log_error("blob_store", "digest=%s error=\"%s\"", digest, why);
	} else {
		log_info("blob_stored", "digest=%s bytes=%lld fetch_s=%.3f sync_s=%.3f", digest,
			 p->tmp.written, p->verified_at - p->started,
			 ev_now(r->loop) - p->verified_at);
		metrics_observe(r->stats.fetch_seconds, p->verified_at - p->started);
		keep = evict_stored(r->evict, digest, p->tmp.written) == 0;
	}
	pull_free(p, 1, 200, NULL);
	/* Too big for the budget: every reader has it open by now, so it can go. */
	if (!keep)
		store_blob_remove(&r->store, digest);
}

/* Verified: release the last byte to streaming clients at once, then make the blob durable off
 * the loop (a 1 GiB fsync must not stall every other client); the pull stays findable, so new
 * clients join and read the verified temp file meanwhile. */
static void pull_commit(struct blob_pull *p)
{
	struct blob_reader *rd, *next;

	p->verified = 1;
	p->verified_at = ev_now(p->r->loop);
	for (rd = p->readers; rd; rd = next) {
		next = rd->next;
		if (rd->started)
			httpd_file_avail(rd->conn, (off_t)p->size);
	}
	if (syncq_fsync(p->r->syncq, p->tmp.fd, pull_synced, p) < 0)
		pull_synced(p, errno); /* commit then fsyncs itself */
}

static void on_done(struct upreq *u, int ok, const char *err, void *arg)
{
	struct blob_pull *p = arg;
	long status = ok ? upreq_status(u) : 0;

	p->u = NULL;
	if (ok && status == 200) {
		if (p->size < 0)
			p->size = p->tmp.written;
		if (store_tmp_verify(&p->tmp, p->digest, p->size, p->error, sizeof(p->error)) ==
		    0) {
			pull_commit(p);
			return;
		}
		p->tmp_open = 0;
		metrics_add(p->r->stats.mismatches, 1);
		metrics_add(p->r->stats.upstream_errors, 1, "digest_mismatch");
		log_warn("digest_mismatch", "digest=%s registry=%s error=\"%s\"", p->digest,
			 p->host, p->error);
		status = 502;
	} else {
		metrics_add(p->r->stats.upstream_errors, 1,
			    p->error[0] ? "transfer"
			    : status	? "status"
					: "unreachable");
		if (!p->error[0] && err)
			snprintf(p->error, sizeof(p->error), "%s", err);
	}
	log_warn("blob_pull_failed", "digest=%s registry=%s status=%ld bytes=%lld error=\"%s\"",
		 p->digest, p->host, status, p->tmp.written, p->error);
	pull_free(p, 0, status, upreq_header(u, "Retry-After"));
}

static struct blob_pull *pull_start(struct registry *r, const struct blob_ask *ask)
{
	static const struct upreq_hooks hooks = {on_response, on_data, on_done};
	struct blob_pull *p = calloc(1, sizeof(*p));
	char path[16 + DIGEST_STR_SIZE];

	if (!p)
		return NULL;
	p->r = r;
	p->size = -1;
	p->started = ev_now(r->loop);
	snprintf(p->digest, sizeof(p->digest), "%s", ask->digest);
	snprintf(p->host, sizeof(p->host), "%s", upstream_host(ask->up));
	if (store_tmp_begin(&r->store, &p->tmp) < 0) {
		log_error("blob_pull", "digest=%s error=\"temp file: %s\"", p->digest,
			  strerror(errno));
		free(p);
		return NULL;
	}
	p->tmp_open = 1;
	snprintf(path, sizeof(path), "blobs/%s", ask->digest);
	p->u = upreq_start(r, ask->up, "GET", ask->repo, path, NULL, 0, &hooks, p);
	if (!p->u) {
		store_tmp_abort(&p->tmp);
		free(p);
		return NULL;
	}
	p->next = r->blob_pulls;
	r->blob_pulls = p;
	log_info("blob_pull", "digest=%s registry=%s repo=%s", p->digest, p->host, ask->repo);
	return p;
}

static struct blob_pull *pull_find(struct registry *r, const char *digest)
{
	struct blob_pull *p;

	for (p = r->blob_pulls; p; p = p->next)
		if (strcmp(p->digest, digest) == 0)
			return p;
	return NULL;
}

/* Joins the pull of this blob, starting it when none runs. */
static int pull_join(struct registry *r, const struct blob_ask *ask, struct blob_reader *rd)
{
	struct blob_pull *p = pull_find(r, ask->digest);

	if (!p)
		p = pull_start(r, ask);
	if (!p)
		return -1;
	rd->p = p;
	rd->next = p->readers;
	p->readers = rd;
	return 0;
}

void pull_blob_attach(struct registry *r, struct httpd_conn *conn, const struct blob_ask *ask)
{
	struct blob_reader *rd = calloc(1, sizeof(*rd));

	if (!rd || (ask->range && !(rd->range = strdup(ask->range))) || pull_join(r, ask, rd) < 0) {
		if (rd)
			reader_free(rd);
		api_error(conn, 500, "UNKNOWN", "cannot start blob transfer");
		return;
	}
	rd->conn = conn;
	httpd_set_release(conn, reader_release, rd);
	if (rd->p->streaming && rd->p->size > 0)
		reader_start(rd);
}

void pull_blob_fetch(struct registry *r, const struct blob_ask *ask, blob_done_fn done, void *arg)
{
	struct blob_reader *rd;

	if (store_blob_exists(&r->store, ask->digest, NULL)) {
		done(arg, NULL);
		return;
	}
	rd = calloc(1, sizeof(*rd));
	if (!rd || pull_join(r, ask, rd) < 0) {
		free(rd);
		done(arg, "cannot start blob transfer");
		return;
	}
	rd->done = done;
	rd->arg = arg;
}

/* Pulls whose blob is verified and syncing are left to finish (syncq_drain completes them). */
void pulls_abort_all(struct registry *r)
{
	struct blob_pull **pp = &r->blob_pulls;

	while (*pp) {
		struct blob_pull *p = *pp;

		if (p->verified) {
			pp = &p->next;
			continue;
		}
		if (p->u)
			upreq_cancel(p->u);
		snprintf(p->error, sizeof(p->error), "shutting down");
		pull_free(p, 0, 0, NULL);
	}
}
