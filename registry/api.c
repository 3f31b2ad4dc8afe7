/* api: routes /v2/… requests after validating every part of them (name, reference, digest,
 * ns) against the Distribution grammar, so that nothing malformed reaches the store or an
 * upstream. Pull side only: every write method is refused. */
#include <stdio.h>
#include <string.h>

#include "ref.h"
#include "registry.h"

#define ACCEPT_MAX 2048

enum route_kind { ROUTE_MANIFEST, ROUTE_BLOB, ROUTE_TAGS };

struct route {
	enum route_kind kind;
	char name[REF_NAME_MAX + 2];
	char reference[160];
};

/* "/v2/<name>/manifests/<ref>", "/v2/<name>/blobs/<digest>", "/v2/<name>/tags/list". Returns
 * -1 for a path that is none of these, -2 for a name too long, -3 for a reference too long. */
static int route_parse(const char *path, struct route *rt)
{
	const char *rest = path + 4, *ref, *kind;
	size_t name_len, kind_len;

	ref = strrchr(rest, '/');
	if (!ref || ref == rest)
		return -1;
	for (kind = ref - 1; kind > rest && kind[-1] != '/'; kind--)
		;
	if (kind == rest)
		return -1;
	kind_len = (size_t)(ref - kind);
	name_len = (size_t)(kind - 1 - rest);
	if (kind_len == 9 && strncmp(kind, "manifests", 9) == 0)
		rt->kind = ROUTE_MANIFEST;
	else if (kind_len == 5 && strncmp(kind, "blobs", 5) == 0)
		rt->kind = ROUTE_BLOB;
	else if (kind_len == 4 && strncmp(kind, "tags", 4) == 0 && strcmp(ref, "/list") == 0)
		rt->kind = ROUTE_TAGS;
	else
		return -1;
	if (name_len >= sizeof(rt->name))
		return -2;
	if (strlen(ref + 1) >= sizeof(rt->reference))
		return -3;
	memcpy(rt->name, rest, name_len);
	rt->name[name_len] = '\0';
	snprintf(rt->reference, sizeof(rt->reference), "%s", ref + 1);
	return 0;
}

/* Sends the error and returns -1 when the digest is not one we can serve. One that cannot be a
 * digest names nothing that can exist: it is answered as a miss (MISS_CODE) would be. */
static int check_digest(struct httpd_conn *conn, const char *digest, enum api_code miss_code)
{
	int rc = digest_check(digest);

	if (rc == -1)
		api_error(conn, 404, miss_code, "no such digest \"%.80s\"", digest);
	else if (rc == -2)
		api_error(conn, 400, API_UNSUPPORTED, "digest algorithm not supported: \"%.80s\"",
			  digest);
	return rc == 0 ? 0 : -1;
}

/* Which upstream: ?ns=<host> (containerd adds it), else docker.io. Docker's other names for
 * Docker Hub are the same registry. */
static struct upstream *pick_upstream(struct registry *r, struct httpd_conn *conn,
				      const struct httpd_req *req)
{
	char ns[256];
	struct upstream *up;
	int rc = httpd_query_param(req, "ns", ns, sizeof(ns));

	if (rc == -1)
		return upstream_find(r, NULL);
	if (rc == -2 || !ref_host_valid(ns)) {
		api_error(conn, 400, API_NAME_INVALID, "invalid ns");
		return NULL;
	}
	if (strcmp(ns, "index.docker.io") == 0 || strcmp(ns, "registry-1.docker.io") == 0)
		snprintf(ns, sizeof(ns), "docker.io");
	up = upstream_find(r, ns);
	if (!up)
		api_error(conn, 404, API_NAME_UNKNOWN, "no upstream configured for registry %s",
			  ns);
	return up;
}

static void route_dispatch(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req,
			   const struct route *rt)
{
	char accept[ACCEPT_MAX];
	struct upstream *up = pick_upstream(r, conn, req);
	struct manifest_ask mask = {up, rt->name, rt->reference, NULL};
	struct blob_ask bask = {up, rt->name, rt->reference, httpd_req_header(req, "Range")};

	if (!up)
		return;
	switch (rt->kind) {
	case ROUTE_MANIFEST:
		if (httpd_req_header_all(req, "Accept", accept, sizeof(accept)) == 0)
			mask.accept = accept;
		manifest_serve(r, conn, &mask);
		break;
	case ROUTE_BLOB:
		blob_serve(r, conn, req, &bask);
		break;
	case ROUTE_TAGS:
		tags_serve(r, conn, req, up, rt->name);
		break;
	}
}

static void handle_v2(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req)
{
	struct route rt;
	enum api_code miss;
	int rc = route_parse(req->path, &rt);

	if (rc == -1) {
		api_error(conn, 404, API_UNSUPPORTED, "no such endpoint");
		return;
	}
	/* A reference that cannot exist (too long, not a tag) is a miss, as the spec's clients
	 * and conformance checks expect of a registry that does not have it. */
	miss = rt.kind == ROUTE_MANIFEST ? API_MANIFEST_UNKNOWN
	       : rt.kind == ROUTE_BLOB	 ? API_BLOB_UNKNOWN
					 : API_NAME_UNKNOWN;
	if (rc == -3) {
		api_error(conn, 404, miss, "no such reference: too long");
		return;
	}
	if (rc == -2 || !ref_name_valid(rt.name, strlen(rt.name))) {
		api_error(conn, 400, API_NAME_INVALID, "invalid repository name");
		return;
	}
	if (rt.kind == ROUTE_BLOB || strchr(rt.reference, ':')) {
		if (check_digest(conn, rt.reference, miss) < 0)
			return;
	} else if (rt.kind == ROUTE_MANIFEST && !ref_tag_valid(rt.reference)) {
		api_error(conn, 404, miss, "no such tag \"%.80s\"", rt.reference);
		return;
	}
	route_dispatch(r, conn, req, &rt);
}

void api_handle(struct httpd_conn *conn, const struct httpd_req *req, void *arg)
{
	struct registry *r = arg;

	/* On every answer, errors too: clients probe it to know they speak to a v2 registry. */
	httpd_add_header(conn, "Docker-Distribution-API-Version", "registry/2.0");
	if (strcmp(req->path, "/metrics") == 0 &&
	    (strcmp(req->method, "GET") == 0 || req->is_head)) {
		stats_serve(r, conn);
		return;
	}
	if (strncmp(req->path, "/_microscale/v1/", 16) == 0) {
		control_handle(r, conn, req);
		return;
	}
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		httpd_add_header(conn, "Allow", "GET, HEAD");
		api_error(conn, 405, API_UNSUPPORTED, "%s: this registry is a read-only cache",
			  req->method);
		return;
	}
	if (strcmp(req->path, "/v2/") == 0 || strcmp(req->path, "/v2") == 0) {
		httpd_add_header(conn, "Content-Type", "application/json");
		httpd_respond(conn, 200, "{}", 2);
		return;
	}
	if (strncmp(req->path, "/v2/", 4) == 0) {
		handle_v2(r, conn, req);
		return;
	}
	api_error(conn, 404, API_UNSUPPORTED, "no such endpoint");
}
