/* manifest: GET and HEAD of /v2/<name>/manifests/<tag|digest>. Digests are served from the store
 * and never revalidated. Tags are served from the store while younger than tag_ttl; older ones
 * are revalidated with a HEAD (same digest: keep; new digest: GET). When the upstream fails, a
 * cached tag is served anyway (stale-if-error). One upstream fetch per reference at a time. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ref.h"
#include "registry.h"

#define DEFAULT_ACCEPT                                                                         \
	"application/vnd.oci.image.index.v1+json, "                                            \
	"application/vnd.oci.image.manifest.v1+json, "                                         \
	"application/vnd.docker.distribution.manifest.list.v2+json, "                          \
	"application/vnd.docker.distribution.manifest.v2+json"

struct manifest_waiter {
	struct manifest_waiter *next;
	struct manifest_pull *mp;
	struct httpd_conn *conn;
};

struct manifest_pull {
	struct manifest_pull *next;
	struct registry *r;
	struct upstream *up;
	char repo[REF_NAME_MAX + 1];
	char reference[DIGEST_STR_SIZE + REF_TAG_MAX];
	char cached[DIGEST_STR_SIZE]; /* a tag's stored digest, "" when none */
	char *accept;
	struct upreq *u;
	struct manifest_waiter *waiters;
};

static int is_digest(const char *reference)
{
	return strchr(reference, ':') != NULL;
}

/* Does the client's Accept list take this media type? No Accept at all takes anything. */
static int accepts(const char *accept, const char *mediatype)
{
	size_t mlen = strlen(mediatype);
	const char *p = accept;

	if (!accept || !*accept)
		return 1;
	while (*p) {
		size_t len;

		while (*p == ' ' || *p == ',')
			p++;
		len = strcspn(p, ",;");
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if ((len == mlen && strncasecmp(p, mediatype, mlen) == 0) ||
		    (len == 3 && strncmp(p, "*/*", 3) == 0))
			return 1;
		p += strcspn(p, ",");
	}
	return 0;
}

static void respond(struct httpd_conn *conn, const char *digest, const char *data, size_t len,
		    const char *mediatype)
{
	httpd_add_header(conn, "Docker-Distribution-API-Version", "registry/2.0");
	httpd_add_header(conn, "Content-Type", "%s", mediatype);
	httpd_add_header(conn, "Docker-Content-Digest", "%s", digest);
	httpd_add_header(conn, "ETag", "\"%s\"", digest);
	httpd_respond(conn, 200, data, len);
}

/* Answers from the store; -1 (nothing sent) when absent or not acceptable to the client. */
static int respond_stored(struct registry *r, struct httpd_conn *conn, const char *digest,
			  const char *accept)
{
	char type[MEDIA_TYPE_MAX], *data;
	size_t len;

	if (store_manifest_get(&r->store, digest, &data, &len, type) < 0)
		return -1;
	if (!accepts(accept, type)) {
		free(data);
		return -1;
	}
	respond(conn, digest, data, len, type);
	free(data);
	return 0;
}

static void waiter_release(struct httpd_conn *conn, void *arg)
{
	struct manifest_waiter *w = arg, **pp;

	(void)conn;
	for (pp = &w->mp->waiters; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	free(w);
}

/* Hands every waiter to fn, then frees the pull (the one destructor). */
static void mp_finish(struct manifest_pull *mp,
		      void (*fn)(struct manifest_pull *, struct httpd_conn *, void *), void *arg)
{
	struct manifest_pull **pp;
	struct manifest_waiter *w;

	while ((w = mp->waiters)) {
		mp->waiters = w->next;
		httpd_set_release(w->conn, NULL, NULL);
		fn(mp, w->conn, arg);
		free(w);
	}
	for (pp = &mp->r->manifest_pulls; *pp; pp = &(*pp)->next)
		if (*pp == mp) {
			*pp = mp->next;
			break;
		}
	if (mp->u)
		upreq_cancel(mp->u);
	free(mp->accept);
	free(mp);
}

static void answer_cached(struct manifest_pull *mp, struct httpd_conn *conn, void *arg)
{
	(void)arg;
	if (respond_stored(mp->r, conn, mp->cached, NULL) < 0)
		api_error(conn, 404, "MANIFEST_UNKNOWN", "cached manifest %s unreadable", mp->cached);
}

struct answer {
	const char *digest, *data, *type;
	size_t len;
	long status;
	const char *retry_after, *err;
};

static void answer_fetched(struct manifest_pull *mp, struct httpd_conn *conn, void *arg)
{
	struct answer *a = arg;

	(void)mp;
	respond(conn, a->digest, a->data, a->len, a->type);
}

static void answer_error(struct manifest_pull *mp, struct httpd_conn *conn, void *arg)
{
	struct answer *a = arg;

	(void)mp;
	api_upstream_error(conn, a->status, a->retry_after, "MANIFEST_UNKNOWN", a->err);
}

/* The upstream failed: a cached tag still answers (stale-if-error), else the error goes out. */
static void mp_fail(struct manifest_pull *mp, struct upreq *u, long status, const char *err)
{
	struct answer a = {.status = status, .err = err};

	a.retry_after = u ? upreq_header(u, "Retry-After") : NULL;
	if (mp->cached[0] && status != 404) {
		log_warn("manifest_stale", "registry=%s repo=%s tag=%s digest=%s status=%ld "
			 "error=\"%s\"", upstream_host(mp->up), mp->repo, mp->reference, mp->cached,
			 status, err ? err : "");
		mp_finish(mp, answer_cached, NULL);
		return;
	}
	log_info("manifest_miss", "registry=%s repo=%s reference=%s status=%ld error=\"%s\"",
		 upstream_host(mp->up), mp->repo, mp->reference, status, err ? err : "");
	mp_finish(mp, answer_error, &a);
}

static void mp_get(struct manifest_pull *mp);

/* The stored media type: the upstream's Content-Type, or, when that says nothing useful, the
 * manifest's own mediaType (OCI allows it to be absent: then its shape decides). */
static void media_type(struct upreq *u, const char *data, size_t len, char out[MEDIA_TYPE_MAX])
{
	const char *ct = upreq_header(u, "Content-Type");
	size_t n = ct ? strcspn(ct, "; ") : 0;
	json_t *doc, *mt;

	if (n > 0 && n < MEDIA_TYPE_MAX && strncmp(ct, "application/vnd.", 16) == 0) {
		memcpy(out, ct, n);
		out[n] = '\0';
		return;
	}
	doc = json_loadb(data, len, 0, NULL);
	mt = json_object_get(doc, "mediaType");
	if (json_is_string(mt) && json_string_length(mt) < MEDIA_TYPE_MAX)
		snprintf(out, MEDIA_TYPE_MAX, "%s", json_string_value(mt));
	else if (json_object_get(doc, "manifests"))
		snprintf(out, MEDIA_TYPE_MAX, "application/vnd.oci.image.index.v1+json");
	else
		snprintf(out, MEDIA_TYPE_MAX, "application/vnd.oci.image.manifest.v1+json");
	json_decref(doc);
}

/* Checks what the upstream sent against the digest asked for and the one it announced. */
static int verify(struct manifest_pull *mp, struct upreq *u, const char *digest)
{
	const char *announced = upreq_header(u, "Docker-Content-Digest");

	if (is_digest(mp->reference) && strcmp(digest, mp->reference) != 0)
		return -1;
	if (announced && digest_check(announced) == 0 && strcmp(announced, digest) != 0)
		return -1;
	return 0;
}

static void get_done(struct upreq *u, int ok, const char *err, void *arg)
{
	struct manifest_pull *mp = arg;
	struct answer a = {.status = ok ? upreq_status(u) : 0};
	char digest[DIGEST_STR_SIZE], type[MEDIA_TYPE_MAX], why[256];

	mp->u = NULL;
	if (a.status != 200) {
		mp_fail(mp, u, a.status, err);
		return;
	}
	a.data = upreq_body(u, &a.len);
	media_type(u, a.data, a.len, type);
	if (digest_buffer(a.data, a.len, digest) < 0 || verify(mp, u, digest) < 0) {
		log_warn("digest_mismatch", "registry=%s repo=%s reference=%s got=%s",
			 upstream_host(mp->up), mp->repo, mp->reference, digest);
		mp_fail(mp, u, 502, "manifest digest mismatch");
		return;
	}
	if (store_manifest_put(&mp->r->store, digest, a.data, a.len, type, why, sizeof(why)) < 0)
		log_error("manifest_store", "digest=%s error=\"%s\"", digest, why);
	else if (!is_digest(mp->reference))
		store_tag_put(&mp->r->store, upstream_host(mp->up), mp->repo, mp->reference, digest,
			      time(NULL));
	log_info("manifest_fetched", "registry=%s repo=%s reference=%s digest=%s type=%s bytes=%zu",
		 upstream_host(mp->up), mp->repo, mp->reference, digest, type, a.len);
	a.digest = digest;
	a.type = type;
	mp_finish(mp, answer_fetched, &a);
}

static void head_done(struct upreq *u, int ok, const char *err, void *arg)
{
	struct manifest_pull *mp = arg;
	long status = ok ? upreq_status(u) : 0;
	const char *digest = upreq_header(u, "Docker-Content-Digest");

	mp->u = NULL;
	if (status == 200 && digest && strcmp(digest, mp->cached) == 0) {
		store_tag_put(&mp->r->store, upstream_host(mp->up), mp->repo, mp->reference,
			      mp->cached, time(NULL));
		mp_finish(mp, answer_cached, NULL);
	} else if (status == 200) {
		mp_get(mp); /* the tag moved (or the upstream did not say): fetch it */
	} else {
		mp_fail(mp, u, status, err);
	}
}

static void mp_request(struct manifest_pull *mp, const char *method,
		       void (*done)(struct upreq *, int, const char *, void *))
{
	struct upreq_hooks hooks = {.on_done = done};
	char path[32 + sizeof(mp->reference)];

	snprintf(path, sizeof(path), "manifests/%s", mp->reference);
	mp->u = upreq_start(mp->r, mp->up, method, mp->repo, path, mp->accept, MANIFEST_MAX_BYTES,
			    &hooks, mp);
	if (!mp->u)
		mp_fail(mp, NULL, 0, "cannot start upstream request");
}

static void mp_get(struct manifest_pull *mp)
{
	mp_request(mp, "GET", get_done);
}

static struct manifest_pull *mp_find(struct registry *r, const struct manifest_ask *ask)
{
	struct manifest_pull *mp;

	for (mp = r->manifest_pulls; mp; mp = mp->next)
		if (mp->up == ask->up && strcmp(mp->repo, ask->repo) == 0 &&
		    strcmp(mp->reference, ask->reference) == 0)
			return mp;
	return NULL;
}

static struct manifest_pull *mp_new(struct registry *r, const struct manifest_ask *ask,
				    const char *cached)
{
	struct manifest_pull *mp = calloc(1, sizeof(*mp));

	if (!mp || !(mp->accept = strdup(ask->accept ? ask->accept : DEFAULT_ACCEPT))) {
		free(mp);
		return NULL;
	}
	mp->r = r;
	mp->up = ask->up;
	snprintf(mp->repo, sizeof(mp->repo), "%s", ask->repo);
	snprintf(mp->reference, sizeof(mp->reference), "%s", ask->reference);
	snprintf(mp->cached, sizeof(mp->cached), "%s", cached ? cached : "");
	mp->next = r->manifest_pulls;
	r->manifest_pulls = mp;
	return mp;
}

static void mp_wait(struct manifest_pull *mp, struct httpd_conn *conn)
{
	struct manifest_waiter *w = calloc(1, sizeof(*w));

	if (!w) {
		api_error(conn, 500, "UNKNOWN", "out of memory");
		return;
	}
	w->mp = mp;
	w->conn = conn;
	w->next = mp->waiters;
	mp->waiters = w;
	httpd_set_release(conn, waiter_release, w);
}

/* A tag we hold: fresh, or stale and to be revalidated. Returns -1 when not held (or not in a
 * media type this client takes). */
static int serve_tag(struct registry *r, struct httpd_conn *conn, const struct manifest_ask *ask,
		     char cached[DIGEST_STR_SIZE])
{
	time_t fetched;
	char type[MEDIA_TYPE_MAX], *data;
	size_t len;

	if (store_tag_get(&r->store, upstream_host(ask->up), ask->repo, ask->reference, cached,
			  &fetched) < 0)
		return -1;
	if (store_manifest_get(&r->store, cached, &data, &len, type) < 0) {
		cached[0] = '\0';
		return -1;
	}
	if (!accepts(ask->accept, type)) {
		free(data);
		cached[0] = '\0';
		return -1;
	}
	if (time(NULL) - fetched < r->conf->tag_ttl_s) {
		respond(conn, cached, data, len, type);
		free(data);
		return 0;
	}
	free(data);
	return 1;
}

void manifest_serve(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req,
		    const struct manifest_ask *ask)
{
	char cached[DIGEST_STR_SIZE] = "";
	struct manifest_pull *mp;
	int held = -1;

	(void)req;
	if (is_digest(ask->reference)) {
		if (respond_stored(r, conn, ask->reference, ask->accept) == 0)
			return;
	} else if ((held = serve_tag(r, conn, ask, cached)) == 0) {
		return;
	}
	mp = mp_find(r, ask);
	if (mp) {
		mp_wait(mp, conn);
		return;
	}
	mp = mp_new(r, ask, cached);
	if (!mp) {
		api_error(conn, 500, "UNKNOWN", "out of memory");
		return;
	}
	mp_wait(mp, conn);
	if (held == 1)
		mp_request(mp, "HEAD", head_done);
	else
		mp_get(mp);
}

void manifest_pulls_abort_all(struct registry *r)
{
	struct answer a = {.status = 0, .err = "shutting down"};

	while (r->manifest_pulls)
		mp_finish(r->manifest_pulls, answer_error, &a);
}
