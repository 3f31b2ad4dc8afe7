/* blob: GET and HEAD of /v2/<name>/blobs/<digest>: from the store with sendfile, else from the
 * upstream (HEAD asks the upstream with HEAD and never fetches the body). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpd_range.h"
#include "registry.h"

long long blob_respond_fd(struct httpd_conn *conn, const char *digest, int fd, off_t size,
			  off_t avail_end, const char *range)
{
	off_t start = 0, end = size - 1;
	int status = 200;

	httpd_add_header(conn, "Docker-Content-Digest", "%s", digest);
	httpd_add_header(conn, "Accept-Ranges", "bytes");
	if (range) {
		switch (httpd_range_parse(range, size, &start, &end)) {
		case HTTPD_RANGE_NONE:
			start = 0;
			end = size - 1;
			break;
		case HTTPD_RANGE_OK:
			status = 206;
			httpd_add_header(conn, "Content-Range", "bytes %lld-%lld/%lld",
					 (long long)start, (long long)end, (long long)size);
			break;
		default:
			close(fd);
			httpd_add_header(conn, "Content-Range", "bytes */%lld", (long long)size);
			api_error(conn, 416, "RANGE_INVALID", "range \"%.64s\" not satisfiable",
				  range);
			return 0;
		}
	}
	httpd_add_header(conn, "Content-Type", "application/octet-stream");
	httpd_add_header(conn, "ETag", "\"%s\"", digest);
	httpd_add_header(conn, "Cache-Control", "max-age=31536000");
	httpd_respond_file(conn, status, fd, start, end - start + 1, avail_end);
	return httpd_request(conn)->is_head ? 0 : (long long)(end - start + 1);
}

int blob_serve_stored(struct registry *r, struct httpd_conn *conn, const char *digest,
		      const char *range)
{
	off_t size;
	int fd = store_blob_open(&r->store, digest, &size);

	if (fd < 0)
		return -1;
	evict_serving(r->evict, conn, digest);
	metrics_add(r->stats.bytes, (double)blob_respond_fd(conn, digest, fd, size, size, range),
		    "store");
	return 0;
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
		api_error_upstream(bh->conn, status, upreq_header(u, "Retry-After"), "BLOB_UNKNOWN",
				   err);
	}
	free(bh);
}

static void head_upstream(struct registry *r, struct httpd_conn *conn, const struct blob_ask *ask)
{
	static const struct upreq_hooks hooks = {.on_done = head_done};
	struct blob_head *bh = calloc(1, sizeof(*bh));
	char path[16 + DIGEST_STR_SIZE];

	if (!bh) {
		api_error(conn, 500, "UNKNOWN", "out of memory");
		return;
	}
	bh->conn = conn;
	snprintf(bh->digest, sizeof(bh->digest), "%s", ask->digest);
	snprintf(path, sizeof(path), "blobs/%s", ask->digest);
	bh->u = upreq_start(r, ask->up, "HEAD", ask->repo, path, NULL, 0, &hooks, bh);
	if (!bh->u) {
		free(bh);
		api_error(conn, 500, "UNKNOWN", "cannot start upstream request");
		return;
	}
	httpd_set_release(conn, head_release, bh);
}

void blob_serve(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req,
		const struct blob_ask *ask)
{
	int hit = blob_serve_stored(r, conn, ask->digest, ask->range) == 0;

	metrics_add(r->stats.cache, 1, "blob", hit ? "hit" : "miss");
	if (hit)
		return;
	if (req->is_head)
		head_upstream(r, conn, ask);
	else
		pull_blob_attach(r, conn, ask);
}
