/* tags: GET /v2/<name>/tags/list, passed upstream (with n and last); the last answer is kept and
 * served when the upstream cannot answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"
#include "registry.h"

#define TAGLIST_MAX_BYTES (4 * 1024 * 1024)

struct tags_req {
	struct registry *r;
	struct httpd_conn *conn;
	struct upreq *u;
	char host[256];
	char repo[REF_NAME_MAX + 1];
	char key[REF_TAG_MAX + 32]; /* file name of the kept answer for this query */
};

static void respond(struct httpd_conn *conn, const char *data, size_t len, const char *link)
{
	httpd_add_header(conn, "Content-Type", "application/json");
	if (link)
		httpd_add_header(conn, "Link", "%s", link);
	httpd_respond(conn, 200, data, len);
}

static void tags_release(struct httpd_conn *conn, void *arg)
{
	struct tags_req *t = arg;

	(void)conn;
	upreq_cancel(t->u);
	free(t);
}

static void tags_done(struct upreq *u, int ok, const char *err, void *arg)
{
	struct tags_req *t = arg;
	long status = ok ? upreq_status(u) : 0;
	size_t len;
	const char *body = upreq_body(u, &len);
	char *kept;

	httpd_set_release(t->conn, NULL, NULL);
	if (status == 200) {
		store_taglist_put(&t->r->store, t->host, t->repo, t->key, body, len);
		respond(t->conn, body, len, upreq_header(u, "Link"));
	} else if (status != 404 && status != 429 &&
		   store_taglist_get(&t->r->store, t->host, t->repo, t->key, &kept, &len) == 0) {
		log_warn("tags_stale", "registry=%s repo=%s status=%ld error=\"%s\"", t->host,
			 t->repo, status, err ? err : "");
		respond(t->conn, kept, len, NULL);
		free(kept);
	} else {
		api_error_upstream(t->conn, status, upreq_header(u, "Retry-After"), "NAME_UNKNOWN",
				   err);
	}
	free(t);
}

/* n must be a number and last a tag: both go into a file name and an upstream URL. */
static int query_key(const struct httpd_req *req, char *path, size_t plen, char *key, size_t klen)
{
	char n[8] = "", last[REF_TAG_MAX + 1] = "";
	int rc_n = httpd_query_param(req, "n", n, sizeof(n));
	int rc_last = httpd_query_param(req, "last", last, sizeof(last));
	int has_n = rc_n == 0, has_last = rc_last == 0;

	if (rc_n == -2 || rc_last == -2)
		return -1;
	if (has_n && (n[0] == '\0' || strspn(n, "0123456789") != strlen(n)))
		return -1;
	if (has_last && !ref_tag_valid(last))
		return -1;
	if (has_n && has_last)
		snprintf(path, plen, "tags/list?n=%s&last=%s", n, last);
	else if (has_n)
		snprintf(path, plen, "tags/list?n=%s", n);
	else if (has_last)
		snprintf(path, plen, "tags/list?last=%s", last);
	else
		snprintf(path, plen, "tags/list");
	snprintf(key, klen, "list.n%s.last%s", n, last);
	return 0;
}

void tags_serve(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req,
		struct upstream *up, const char *repo)
{
	static const struct upreq_hooks hooks = {.on_done = tags_done};
	struct tags_req *t;
	char path[REF_TAG_MAX + 64];

	t = calloc(1, sizeof(*t));
	if (!t) {
		api_error(conn, 500, "UNKNOWN", "out of memory");
		return;
	}
	if (query_key(req, path, sizeof(path), t->key, sizeof(t->key)) < 0) {
		free(t);
		api_error(conn, 400, "PAGINATION_NUMBER_INVALID", "n must be a number, last a tag");
		return;
	}
	t->r = r;
	t->conn = conn;
	snprintf(t->host, sizeof(t->host), "%s", upstream_host(up));
	snprintf(t->repo, sizeof(t->repo), "%s", repo);
	t->u =
	    upreq_start(r, up, "GET", repo, path, "application/json", TAGLIST_MAX_BYTES, &hooks, t);
	if (!t->u) {
		free(t);
		api_error(conn, 500, "UNKNOWN", "cannot start upstream request");
		return;
	}
	httpd_set_release(conn, tags_release, t);
}
