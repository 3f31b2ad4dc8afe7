/* tags: GET /v2/<name>/tags/list, passed upstream (with n and last). One answer is kept per
 * repository, the whole list (asked without n and last): the store does not grow with the
 * queries asked. When the upstream cannot answer, the kept list answers: as it came (with its
 * Link) for the same query, or, for a page, cut from it the way the upstream would (tags after
 * last in order, n of them, a Link to the next page) when the kept list is complete (it came
 * with no Link). */
#include <jansson.h>
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
	char n[8];		    /* "" when not asked */
	char last[REF_TAG_MAX + 1]; /* "" when not asked */
};

static void respond(struct httpd_conn *conn, const char *data, size_t len, const char *link)
{
	httpd_add_header(conn, "Content-Type", "application/json");
	if (link && link[0])
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

static int paged(const struct tags_req *t)
{
	return t->n[0] || t->last[0];
}

/* The tags of the array ALL after t->last, t->n of them at most, into a new array; *more when
 * some were left out. */
static json_t *cut(const struct tags_req *t, json_t *all, int *more)
{
	long n = t->n[0] ? strtol(t->n, NULL, 10) : -1; /* digits only, checked at the request */
	json_t *tags = json_array(), *tag;
	size_t i;

	*more = 0;
	json_array_foreach(all, i, tag)
	{
		if (!json_is_string(tag) ||
		    (t->last[0] && strcmp(json_string_value(tag), t->last) <= 0))
			continue;
		if (n >= 0 && (long)json_array_size(tags) >= n) {
			*more = 1;
			break;
		}
		json_array_append(tags, tag);
	}
	return tags;
}

/* The page t asks for, from the complete list BODY; NULL when BODY is not a tag list. *link
 * gets the next page's Link ("" when this is the last). */
static char *page(const struct tags_req *t, const char *body, size_t len, char *link,
		  size_t linklen, size_t *outlen)
{
	json_t *doc = json_loadb(body, len, 0, NULL), *all = json_object_get(doc, "tags"), *tags;
	char *out = NULL;
	int more;

	link[0] = '\0';
	if (json_is_array(all) && (tags = cut(t, all, &more))) {
		json_object_set_new(doc, "tags", tags);
		out = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (more && json_array_size(tags) > 0)
			snprintf(
			    link, linklen, "</v2/%s/tags/list?n=%s&last=%s>; rel=\"next\"", t->repo,
			    t->n,
			    json_string_value(json_array_get(tags, json_array_size(tags) - 1)));
	}
	json_decref(doc);
	*outlen = out ? strlen(out) : 0;
	return out;
}

/* The upstream failed: the kept list answers, if it can answer this query. 0 when it did. */
static int respond_kept(struct tags_req *t)
{
	char link[STORE_LINK_MAX], next[STORE_LINK_MAX], *kept, *out;
	size_t len, outlen;

	if (store_taglist_get(&t->r->store, t->host, t->repo, link, &kept, &len) != 0)
		return -1;
	if (!paged(t)) {
		respond(t->conn, kept, len, link);
		free(kept);
		return 0;
	}
	out = link[0] ? NULL : page(t, kept, len, next, sizeof(next), &outlen);
	free(kept);
	if (!out)
		return -1; /* kept is one page itself: it cannot say what another holds */
	respond(t->conn, out, outlen, next);
	free(out);
	return 0;
}

static void tags_done(struct upreq *u, int ok, const char *err, void *arg)
{
	struct tags_req *t = arg;
	long status = ok ? upreq_status(u) : 0;
	const char *link = upreq_header(u, "Link");
	size_t len;
	const char *body = upreq_body(u, &len);

	httpd_set_release(t->conn, NULL, NULL);
	if (status == 200) {
		if (!paged(t))
			store_taglist_put(&t->r->store, t->host, t->repo, link ? link : "", body,
					  len);
		respond(t->conn, body, len, link);
	} else if (status != 404 && status != 429 && respond_kept(t) == 0) {
		log_warn("tags_stale", "registry=%s repo=%s status=%ld error=\"%s\"", t->host,
			 t->repo, status, err ? err : "");
	} else {
		api_error_upstream(t->conn, status, upreq_header(u, "Retry-After"),
				   API_NAME_UNKNOWN, err);
	}
	free(t);
}

/* n must be a number and last a tag: both go into an upstream URL (and a Link). */
static int query(const struct httpd_req *req, struct tags_req *t, char *path, size_t plen)
{
	int rc_n = httpd_query_param(req, "n", t->n, sizeof(t->n));
	int rc_last = httpd_query_param(req, "last", t->last, sizeof(t->last));

	if (rc_n == -2 || rc_last == -2)
		return -1;
	if (rc_n != 0)
		t->n[0] = '\0';
	if (rc_last != 0)
		t->last[0] = '\0';
	if (rc_n == 0 && (t->n[0] == '\0' || strspn(t->n, "0123456789") != strlen(t->n)))
		return -1;
	if (rc_last == 0 && !ref_tag_valid(t->last))
		return -1;
	if (t->n[0] && t->last[0])
		snprintf(path, plen, "tags/list?n=%s&last=%s", t->n, t->last);
	else if (t->n[0])
		snprintf(path, plen, "tags/list?n=%s", t->n);
	else if (t->last[0])
		snprintf(path, plen, "tags/list?last=%s", t->last);
	else
		snprintf(path, plen, "tags/list");
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
		api_error(conn, 500, API_NAME_UNKNOWN, "out of memory");
		return;
	}
	if (query(req, t, path, sizeof(path)) < 0) {
		free(t);
		api_error(conn, 400, API_UNSUPPORTED, "n must be a number, last a tag");
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
		api_error(conn, 500, API_NAME_UNKNOWN, "cannot start upstream request");
		return;
	}
	httpd_set_release(conn, tags_release, t);
}
