/* control: the readiness and control API under /_microscale/v1/, in JSON. Readiness is answered
 * from what is on disk and never waits on an upstream; "runtime" adds what the runtime step
 * (runtime.c) last learnt of the node's Docker, without asking dockerd on the way. Only loopback
 * peers, or clients that present the admin token (Authorization: Bearer TOKEN), get an answer;
 * others get 403.
 *
 * A browser on the node is a loopback peer too, acting for whatever page it shows: a page may
 * send a "simple" request anywhere (a text/plain POST goes out without a CORS preflight), and
 * DNS rebinding can make a page's own name point at loopback. So the API refuses (403) what a
 * browser marks as sent from another site (Sec-Fetch-Site) or from another origin (Origin); a
 * peer let in for being on loopback must name the cache by an address or "localhost", which no
 * page can rebind; and a POST must say application/json (415 otherwise), which a page can send
 * only after a preflight that this API never answers with CORS headers. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "registry.h"

#define PREFIX "/_microscale/v1/"
#define BODY_MAX 4096 /* {"ref": "…", "pin": false}: a reference is under 720 bytes */

/* Whether HOST[:PORT] names the cache in a way DNS cannot rebind: an IP literal, or localhost
 * (which browsers resolve to loopback themselves, RFC 6761). */
static int host_is_local(const char *host)
{
	char name[64], buf[sizeof(struct in6_addr)];
	const char *end;
	size_t len;

	if (host[0] == '[') {
		end = strchr(host, ']');
		host++;
	} else {
		end = strrchr(host, ':');
		end = end ? end : host + strlen(host);
	}
	len = end ? (size_t)(end - host) : 0;
	if (len == 0 || len >= sizeof(name))
		return 0;
	memcpy(name, host, len);
	name[len] = '\0';
	return strcasecmp(name, "localhost") == 0 || inet_pton(AF_INET, name, buf) == 1 ||
	       inet_pton(AF_INET6, name, buf) == 1;
}

/* A browser's request on behalf of a page of another origin. Requests from other programs carry
 * neither header (or, from a page of the cache's own origin, say so). */
static int cross_origin(const struct httpd_req *req)
{
	const char *site = httpd_req_header(req, "Sec-Fetch-Site");
	const char *origin = httpd_req_header(req, "Origin");
	const char *host = httpd_req_header(req, "Host");

	if (site && (strcasecmp(site, "cross-site") == 0 || strcasecmp(site, "same-site") == 0))
		return 1;
	if (!origin)
		return 0;
	return !host || strncasecmp(origin, "http://", 7) != 0 || strcasecmp(origin + 7, host) != 0;
}

static int allowed(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req)
{
	const char *auth = httpd_req_header(req, "Authorization");
	const char *token = r->conf->admin_token;
	const char *host = httpd_req_header(req, "Host");

	if (httpd_peer_is_loopback(conn) && (!host || host_is_local(host)))
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
		api_error(conn, 500, API_UNSUPPORTED, "out of memory");
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
	doc = json_pack("{s:b,s:s,s:s?,s:o,s:s,s:i,s:i,s:I,s:I,s:b,s:b,s:s?,s:s,s:s?}", "ready",
			walked && w.complete, "ref", name, "digest", digest[0] ? digest : NULL,
			"platforms", platforms_json(platforms), "state",
			img		       ? prewarm_state_name(img->state)
			: walked && w.complete ? "ready"
					       : "untracked",
			"layers_present", w.layers_present, "layers_total", w.layers_total,
			"bytes_present", (json_int_t)w.bytes_present, "bytes_total",
			(json_int_t)w.bytes_total, "pinned", img && img->pinned, "given_up",
			img && img->gave_up, "last_error", img && img->error[0] ? img->error : NULL,
			"runtime", runtime_report_name(runtime), "runtime_error", runtime_error);
	image_walk_free(&w);
	return doc;
}

static void get_ready(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req)
{
	char refstr[600], why[128];
	struct image_ref ref;

	if (httpd_query_param(req, "ref", refstr, sizeof(refstr)) != 0 ||
	    ref_parse(refstr, &ref, why, sizeof(why)) < 0) {
		api_error(conn, 400, API_NAME_INVALID, "ref: %s",
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

	for (img = prewarm_images(r->prewarm); img; img = prewarm_next(img))
		json_array_append_new(list, image_json(r, &img->ref, img));
	respond_json(conn, 200, json_pack("{s:o}", "images", list));
}

/* "application/json", in any case, with or without parameters ("; charset=utf-8"). */
static int is_json(const char *type)
{
	static const char json[] = "application/json";

	if (!type || strncasecmp(type, json, sizeof(json) - 1) != 0)
		return 0;
	type += sizeof(json) - 1;
	type += strspn(type, " \t");
	return *type == '\0' || *type == ';';
}

/* 0 when the request's body may be parsed; else the refusal has been answered. */
static int body_acceptable(struct httpd_conn *conn, const struct httpd_req *req)
{
	const char *length = httpd_req_header(req, "Content-Length");
	/* httpd leaves a chunked body, or one past its own limit, unread */
	int unread = !req->body && (httpd_req_header(req, "Transfer-Encoding") ||
				    (length && strcmp(length, "0") != 0));

	if (!is_json(httpd_req_header(req, "Content-Type"))) {
		api_error(conn, 415, API_UNSUPPORTED,
			  "the body must be Content-Type: application/json");
		return -1;
	}
	if (unread || req->body_len > BODY_MAX) {
		api_error(conn, 413, API_SIZE_INVALID, "a body of at most %d bytes, with a length",
			  BODY_MAX);
		return -1;
	}
	return 0;
}

static void post_prewarm(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req)
{
	json_t *doc, *pin;
	const char *refstr;
	struct image_ref ref;
	struct prewarm_image *img = NULL;
	char why[128] = "expected {\"ref\": \"…\", \"pin\": false}";

	if (body_acceptable(conn, req) < 0)
		return;
	doc = req->body ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
	refstr = json_string_value(json_object_get(doc, "ref"));
	pin = json_object_get(doc, "pin");
	if (!refstr || (pin && !json_is_boolean(pin)) ||
	    ref_parse(refstr, &ref, why, sizeof(why)) < 0) {
		api_error(conn, 400, API_NAME_INVALID, "%s", why);
	} else if (!upstream_find(r, ref.registry)) {
		api_error(conn, 404, API_NAME_UNKNOWN, "no upstream configured for registry %s",
			  ref.registry);
	} else if (!(img = prewarm_request(r->prewarm, &ref, json_is_true(pin)))) {
		if (errno == EAGAIN)
			api_error(conn, 429, API_TOOMANYREQUESTS,
				  "%d images asked for through this API are tracked already "
				  "(prewarm.max_requested); try again later",
				  r->conf->prewarm_max_requested);
		else
			api_error(conn, 500, API_UNSUPPORTED, "out of memory");
	} else {
		respond_json(conn, 202, image_json(r, &ref, img));
	}
	json_decref(doc);
}

void control_handle(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req)
{
	const char *what = req->path + strlen(PREFIX);
	int get = strcmp(req->method, "GET") == 0 || req->is_head;

	if (cross_origin(req)) {
		api_error(conn, 403, API_DENIED,
			  "the control API refuses requests a browser sends from another origin");
	} else if (!allowed(r, conn, req)) {
		api_error(conn, 403, API_DENIED,
			  "the control API answers loopback (named by address or localhost) or "
			  "the admin token");
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
		api_error(conn, 405, API_UNSUPPORTED, "method not allowed");
	} else {
		api_error(conn, 404, API_UNSUPPORTED, "no such endpoint");
	}
}
