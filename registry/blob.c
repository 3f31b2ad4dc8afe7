/* blob: GET and HEAD of /v2/<name>/blobs/<digest>, and everything HTTP about a blob. A stored
 * blob goes out with sendfile (Range too). Else the client becomes a reader of the blob's one
 * transfer (transfer.c): it tells the transfer where its part (the whole blob or its range)
 * ends, and the transfer says how much of its temp file may be sent, never the part's last byte
 * before the whole blob is verified. When the transfer fails, a response under way is cut short
 * so that no client takes it as complete, ranged or not. HEAD asks the upstream with HEAD and
 * never fetches the body. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpd_range.h"
#include "registry.h"

/* The part of a blob a GET or HEAD answers: bytes start..end inclusive, with STATUS. */
struct part {
	off_t start, end;
	int status;
};

/* What of a blob of SIZE bytes the request gets: all of it (200), or the one range its Range
 * header asks for (206). Adds the headers every answer about the blob carries. Returns -1 when
 * it answered 416 instead. */
static int part_of(struct httpd_conn *conn, const char *digest, off_t size, const char *range,
		   struct part *p)
{
	p->start = 0;
	p->end = size - 1;
	p->status = 200;
	httpd_add_header(conn, "Docker-Content-Digest", "%s", digest);
	httpd_add_header(conn, "Accept-Ranges", "bytes");
	if (!range)
		return 0;
	switch (httpd_range_parse(range, size, &p->start, &p->end)) {
	case HTTPD_RANGE_NONE:
		p->start = 0;
		p->end = size - 1;
		return 0;
	case HTTPD_RANGE_OK:
		p->status = 206;
		httpd_add_header(conn, "Content-Range", "bytes %lld-%lld/%lld", (long long)p->start,
				 (long long)p->end, (long long)size);
		return 0;
	default:
		httpd_add_header(conn, "Content-Range", "bytes */%lld", (long long)size);
		api_error(conn, 416, API_UNSUPPORTED, "range \"%.64s\" not satisfiable", range);
		return -1;
	}
}

/* Answers with part P of fd (which it takes), of which the bytes before avail_end can be read
 * now. Returns the body bytes it will send (0 for a HEAD). */
static long long respond_part(struct httpd_conn *conn, const char *digest, int fd,
			      const struct part *p, off_t avail_end)
{
	/* Read now: a HEAD's response is complete inside httpd_respond_file, and then its
	 * request is gone. */
	int is_head = httpd_request(conn)->is_head;
	off_t len = p->end - p->start + 1;

	httpd_add_header(conn, "Content-Type", "application/octet-stream");
	httpd_add_header(conn, "ETag", "\"%s\"", digest);
	httpd_add_header(conn, "Cache-Control", "max-age=31536000");
	httpd_respond_file(conn, p->status, fd, p->start, len, avail_end);
	return is_head ? 0 : (long long)len;
}

/* Answers from a stored blob; returns -1 (nothing sent) when it is not stored. */
static int serve_stored(struct registry *r, struct httpd_conn *conn, const char *digest,
			const char *range)
{
	off_t size;
	int fd = store_blob_open(&r->store, digest, &size);
	struct part p;
	long long sent;

	if (fd < 0)
		return -1;
	evict_serving(r->evict, conn, digest);
	if (part_of(conn, digest, size, range, &p) < 0) {
		close(fd);
		return 0;
	}
	sent = respond_part(conn, digest, fd, &p, size);
	if (sent > 0)
		metrics_add(r->stats.bytes, (double)sent, "store");
	return 0;
}

/* A client reading a blob from its transfer. */
struct blob_client {
	struct transfer_reader rd;
	struct registry *r;
	struct httpd_conn *conn;
	char digest[DIGEST_STR_SIZE];
	char *range;
	long long size;	 /* > 0 once its response streams the temp file */
	long long avail; /* what the transfer released to it so far */
};

static void client_free(struct blob_client *bc)
{
	free(bc->range);
	free(bc);
}

/* Its response ended or its client went away: off the transfer. */
static void client_release(struct httpd_conn *conn, void *arg)
{
	struct blob_client *bc = arg;

	(void)conn;
	transfer_leave(&bc->rd);
	client_free(bc);
}

/* The client tells the transfer where its part ends, so that the part's last byte, a range's
 * as much as a whole blob's, waits for the digest. One that answered with an error instead
 * reads nothing, and hears only the end. */
static void client_start(void *arg, const char *path, long long size)
{
	struct blob_client *bc = arg;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct part p;

	if (fd < 0) {
		api_error(bc->conn, 500, API_BLOB_UNKNOWN, "cannot open temp file: %s",
			  strerror(errno));
		return;
	}
	if (part_of(bc->conn, bc->digest, size, bc->range, &p) < 0) {
		close(fd);
		return;
	}
	/* All set before the response starts: it may end, and bc be freed, inside respond_part. */
	bc->size = size;
	bc->avail = transfer_read(&bc->rd, (long long)p.end + 1);
	respond_part(bc->conn, bc->digest, fd, &p, (off_t)bc->avail);
}

/* Only for a client whose response streams. Its response may complete (and bc be freed)
 * inside httpd_file_avail, once the blob is verified. */
static void client_avail(void *arg, long long avail)
{
	struct blob_client *bc = arg;

	bc->avail = avail;
	httpd_file_avail(bc->conn, (off_t)avail);
}

/* A client that waited without a response (none started: no length yet, or none at all). */
static void client_answer(struct blob_client *bc, const struct transfer_end *end)
{
	if (end->ok && serve_stored(bc->r, bc->conn, bc->digest, bc->range) < 0)
		api_error(bc->conn, 500, API_BLOB_UNKNOWN, "stored blob cannot be opened");
	else if (!end->ok && end->status == 200)
		api_error(bc->conn, 500, API_BLOB_UNKNOWN, "blob not stored: %s", end->err);
	else if (!end->ok)
		api_error_upstream(bc->conn, end->status, end->retry_after, API_BLOB_UNKNOWN,
				   end->err);
}

static void client_end(void *arg, const struct transfer_end *end)
{
	struct blob_client *bc = arg;

	httpd_set_release(bc->conn, NULL, NULL);
	if (!bc->rd.started)
		client_answer(bc, end);
	else if (bc->size > 0 && bc->avail < bc->size)
		httpd_close(bc->conn); /* cut short: no client takes this as complete */
	client_free(bc);
}

static void client_attach(struct registry *r, struct httpd_conn *conn, const struct blob_ask *ask)
{
	static const struct transfer_reader_ops ops = {client_start, client_avail, client_end};
	struct blob_client *bc = calloc(1, sizeof(*bc));

	if (bc && (!ask->range || (bc->range = strdup(ask->range)))) {
		bc->rd.ops = &ops;
		bc->rd.arg = bc;
		bc->r = r;
		bc->conn = conn;
		snprintf(bc->digest, sizeof(bc->digest), "%s", ask->digest);
		/* Set first: the response may start, and even end, inside transfer_join. */
		httpd_set_release(conn, client_release, bc);
		if (transfer_join(r, ask, &bc->rd) == 0)
			return;
		httpd_set_release(conn, NULL, NULL);
	}
	if (bc)
		client_free(bc);
	api_error(conn, 500, API_BLOB_UNKNOWN, "cannot start blob transfer");
}

/* A HEAD for a blob we do not have: ask the upstream, with HEAD. */
struct blob_head {
	struct httpd_conn *conn;
	struct upreq *u;
	char digest[DIGEST_STR_SIZE];
};

static void head_release(struct httpd_conn *conn, void *arg)
{
	struct blob_head *bh = arg;

	(void)conn;
	upreq_cancel(bh->u);
	free(bh);
}

static void head_done(struct upreq *u, int ok, const char *err, void *arg)
{
	struct blob_head *bh = arg;
	long status = ok ? upreq_status(u) : 0;
	const char *len = upreq_header(u, "Content-Length");

	httpd_set_release(bh->conn, NULL, NULL);
	if (status == 200) {
		httpd_add_header(bh->conn, "Docker-Content-Digest", "%s", bh->digest);
		httpd_add_header(bh->conn, "Accept-Ranges", "bytes");
		httpd_add_header(bh->conn, "Content-Type", "application/octet-stream");
		httpd_respond_head(bh->conn, 200, len ? atoll(len) : 0);
	} else {
		api_error_upstream(bh->conn, status, upreq_header(u, "Retry-After"),
				   API_BLOB_UNKNOWN, err);
	}
	free(bh);
}

static void head_upstream(struct registry *r, struct httpd_conn *conn, const struct blob_ask *ask)
{
	static const struct upreq_hooks hooks = {.on_done = head_done};
	struct blob_head *bh = calloc(1, sizeof(*bh));
	char path[16 + DIGEST_STR_SIZE];

	if (!bh) {
		api_error(conn, 500, API_BLOB_UNKNOWN, "out of memory");
		return;
	}
	bh->conn = conn;
	snprintf(bh->digest, sizeof(bh->digest), "%s", ask->digest);
	snprintf(path, sizeof(path), "blobs/%s", ask->digest);
	bh->u = upreq_start(r, ask->up, "HEAD", ask->repo, path, NULL, 0, &hooks, bh);
	if (!bh->u) {
		free(bh);
		api_error(conn, 500, API_BLOB_UNKNOWN, "cannot start upstream request");
		return;
	}
	httpd_set_release(conn, head_release, bh);
}

void blob_serve(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req,
		const struct blob_ask *ask)
{
	int hit = serve_stored(r, conn, ask->digest, ask->range) == 0;

	metrics_add(r->stats.cache, 1, "blob", hit ? "hit" : "miss");
	if (hit)
		return;
	if (req->is_head)
		head_upstream(r, conn, ask);
	else
		client_attach(r, conn, ask);
}
