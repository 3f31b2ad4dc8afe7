/* control: the readiness and control API under /_microscale/v1/, in JSON. Readiness is answered
 * from what is on disk and never waits on an upstream; "runtime" adds what the runtime step
 * (runtime.c) last learnt of the node's Docker, without asking dockerd on the way. Only loopback
 * peers, or clients that present the admin token (Authorization: Bearer TOKEN), get an answer;
 * others get 403. */
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "registry.h"

#define PREFIX "/_microscale/v1/"

static int allowed(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req)
{
	const char *auth = httpd_req_header(req, "Authorization");
	const char *token = r->conf->admin_token;

	if (httpd_peer_is_loopback(conn))
		return 1;
	/* Auth schemes are case-insensitive (RFC 9110 section 11.1). */
	if (!token || !auth || strncasecmp(auth, "Bearer ", 7) != 0 ||
	    strlen(auth + 7) != strlen(token))
		return 0;
	return CRYPTO_memcmp(auth + 7, token, strlen(token)) == 0; /* no timing oracle */
}

static void respond_json(struct httpd_conn *conn, int status, json_t *doc)
{
	char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;

	json_decref(doc);
	if (!body) {
		api_error(conn, 500, "UNKNOWN", "out of memory");
		return;
	}
	httpd_add_header(conn, "Content-Type", "application/json");
	httpd_add_header(conn, "Cache-Control", "no-store");
	httpd_respond(conn, status, body, strlen(body));
	free(body);
}

/* The digest the store holds for a reference: its own digest, or the tag's last known one. */
static int digest_on_disk(struct registry *r, const struct image_ref *ref,
			  char digest[DIGEST_STR_SIZE])
{
	time_t fetched;

	if (ref->digest[0]) {
		snprintf(digest, DIGEST_STR_SIZE, "%s", ref->digest);
		return 0;
	}
	return store_tag_get(&r->store, ref->registry, ref->repo, ref->tag, digest, &fetched);
}

static json_t *platforms_json(const char *const *platforms)
{
	json_t *list = json_array();

	for (; platforms && *platforms; platforms++)
		json_array_append_new(list, json_string(*platforms));
	return list;
}

/* What the store holds of an image, with what the prewarm job knows when it tracks it. */
static json_t *image_json(struct registry *r, const struct image_ref *ref,
			  struct prewarm_image *img)
{
	char name[sizeof(img->name)], digest[DIGEST_STR_SIZE] = "";
	const char *one[2];
	const char *const *platforms =
	    image_platforms(r->conf->platforms, img ? img->platform : NULL, one);
	struct image_walk w = {0};
	int walked = digest_on_disk(r, ref, digest) == 0 &&
		     image_walk(&r->store, digest, platforms, &w) == 0;
	const char *runtime_error;
	enum runtime_report runtime = runtime_report(r->runtime, ref, &runtime_error);
	json_t *doc;

	ref_format(ref, name, sizeof(name));
	doc = json_pack("{s:b,s:s,s:s?,s:o,s:s,s:i,s:i,s:I,s:I,s:b,s:s?,s:s,s:s?}", "ready",
			walked && w.complete, "ref", name, "digest", digest[0] ? digest : NULL,
			"platforms", platforms_json(platforms), "state",
			img		       ? prewarm_state_name(img->state)
			: walked && w.complete ? "ready"
					       : "untracked",
			"layers_present", w.layers_present, "layers_total", w.layers_total,
			"bytes_present", (json_int_t)w.bytes_present, "bytes_total",
			(json_int_t)w.bytes_total, "pinned", img && img->pinned, "last_error",
			img && img->error[0] ? img->error : NULL, "runtime",
			runtime_report_name(runtime), "runtime_error", runtime_error);
	image_walk_free(&w);
	return doc;
}

static void get_ready(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req)
{
	char refstr[600], why[128];
	struct image_ref ref;

	if (httpd_query_param(req, "ref", refstr, sizeof(refstr)) != 0 ||
	    ref_parse(refstr, &ref, why, sizeof(why)) < 0) {
		api_error(conn, 400, "NAME_INVALID", "ref: %s",
			  httpd_query_param(req, "ref", refstr, sizeof(refstr)) == -1 ? "missing"
										      : why);
		return;
	}
	respond_json(conn, 200, image_json(r, &ref, prewarm_find(r->prewarm, &ref)));
}

static void get_images(struct registry *r, struct httpd_conn *conn)
{
	json_t *list = json_array();
	struct prewarm_image *img;

	for (img = prewarm_images(r->prewarm); img; img = SLIST_NEXT(img, link))
		json_array_append_new(list, image_json(r, &img->ref, img));
	respond_json(conn, 200, json_pack("{s:o}", "images", list));
}

static void post_prewarm(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req)
{
	json_t *doc = req->body ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
	const char *refstr = json_string_value(json_object_get(doc, "ref"));
	json_t *pin = json_object_get(doc, "pin");
	struct image_ref ref;
	struct prewarm_image *img = NULL;
	char why[128] = "expected {\"ref\": \"…\", \"pin\": false}";

	if (!refstr || (pin && !json_is_boolean(pin)) ||
	    ref_parse(refstr, &ref, why, sizeof(why)) < 0) {
		api_error(conn, 400, "NAME_INVALID", "%s", why);
	} else if (!upstream_find(r, ref.registry)) {
		api_error(conn, 404, "NAME_UNKNOWN", "no upstream configured for registry %s",
			  ref.registry);
	} else if (!(img = prewarm_request(r->prewarm, &ref, json_is_true(pin)))) {
		api_error(conn, 500, "UNKNOWN", "out of memory");
	} else {
		respond_json(conn, 202, image_json(r, &ref, img));
	}
	json_decref(doc);
}

void control_handle(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req)
{
	const char *what = req->path + strlen(PREFIX);
	int get = strcmp(req->method, "GET") == 0 || req->is_head;

	if (!allowed(r, conn, req)) {
		api_error(conn, 403, "DENIED",
			  "the control API answers loopback or the admin token");
	} else if (strcmp(what, "ready") == 0 && get) {
		get_ready(r, conn, req);
	} else if (strcmp(what, "images") == 0 && get) {
		get_images(r, conn);
	} else if (strcmp(what, "prewarm") == 0 && strcmp(req->method, "POST") == 0) {
		post_prewarm(r, conn, req);
	} else if (strcmp(what, "ready") == 0 || strcmp(what, "images") == 0 ||
		   strcmp(what, "prewarm") == 0) {
		httpd_add_header(conn, "Allow",
				 strcmp(what, "prewarm") == 0 ? "POST" : "GET, HEAD");
		api_error(conn, 405, "UNSUPPORTED", "method not allowed");
	} else {
		api_error(conn, 404, "NOT_FOUND", "no such endpoint");
	}
}
