/* manifest: GET and HEAD of /v2/<name>/manifests/<tag|digest>. Digests are served from the store
 * and never revalidated. Tags are served from the store while younger than tag_ttl; older ones
 * are revalidated with a HEAD (same digest: keep; new digest: GET). When the upstream fails, a
 * cached tag is served anyway (stale-if-error). One upstream fetch per reference at a time.
 *
 * A fetched manifest is verified, handed to the clients waiting, then stored; a tag is written
 * only once the manifest it names is durable (a tag must never name what a crash could lose).
 * Internal waiters (prewarm), who go on to read the store, hear when both are.
 *
 * What a tag names never depends on who asked: the upstream is always asked with every manifest
 * and index type (a narrower Accept would let it answer with one platform's manifest instead of
 * the index), so one fetch serves every client whatever its Accept. Each client is then answered
 * by its own: a tag naming an index that a client does not take (it accepts no index type) gets
 * the index's linux/amd64 manifest by digest, as Docker's registry does, or 404 when there is
 * none the client takes; the tag stays the index.
 *
 * Memory per client does not grow with a manifest's size: one of at most MEMO_MAX_BYTES is
 * copied into its response; a larger one goes out from its store file with sendfile (a fetched
 * one once it is stored), never a copy per client. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "ref.h"
#include "registry.h"

#define DEFAULT_ACCEPT                                                                             \
	"application/vnd.oci.image.index.v1+json, "                                                \
	"application/vnd.oci.image.manifest.v1+json, "                                             \
	"application/vnd.docker.distribution.manifest.list.v2+json, "                              \
	"application/vnd.docker.distribution.manifest.v2+json"

/* The platform a client that takes no index gets from one (Docker's registry's default). */
#define DEFAULT_PLATFORM "linux/amd64"

/* Someone waiting for a manifest: an HTTP client, or an internal caller (prewarm). */
struct manifest_waiter {
	LIST_ENTRY(manifest_waiter) link; /* mp->waiters */
	struct manifest_pull *mp;
	struct httpd_conn *conn;
	manifest_done_fn done;
	void *arg;
	/* A client's own: what it takes, and where an index's manifest for it is looked up. */
	char *accept; /* its Accept, or NULL: anything */
	struct upstream *up;
	char repo[REF_NAME_MAX + 1];
	int by_tag;   /* it named a tag: an index it does not take is answered by its child */
	int on_child; /* it waits for that child now (counted in the metrics already) */
};

/* How a manifest request ended, for every waiter: a digest now in the store (with the manifest
 * when it is at hand: just fetched, or read to see that it is there), or the upstream's
 * failure. */
struct outcome {
	const char *digest;
	struct store_manifest *m; /* NULL: read it from the store */
	long status;
	const char *retry_after, *err;
	int unstored; /* fetched, but the store failed (err): clients still waiting get a 500 */
};

struct manifest_pull {
	LIST_ENTRY(manifest_pull) link; /* r->manifest_pulls */
	struct registry *r;
	struct upstream *up;
	char repo[REF_NAME_MAX + 1];
	char reference[DIGEST_STR_SIZE + REF_TAG_MAX];
	char cached[DIGEST_STR_SIZE]; /* a tag's stored digest, "" when none */
	struct upreq *u;
	int storing;		      /* fetched and verified; being stored (and its tag) */
	char digest[DIGEST_STR_SIZE]; /* what was fetched, once it is */
	LIST_HEAD(, manifest_waiter) waiters;
};

static void manifest_start(struct registry *r, const struct manifest_ask *ask,
			   struct manifest_waiter *w);

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

static int accepts_cb(void *accept, const char *mediatype)
{
	return accepts(accept, mediatype);
}

static int is_index(const char *mediatype)
{
	return strcmp(mediatype, "application/vnd.oci.image.index.v1+json") == 0 ||
	       strcmp(mediatype, "application/vnd.docker.distribution.manifest.list.v2+json") == 0;
}

/* The one constructor: a client's waiter (conn) or an internal caller's (done). */
static struct manifest_waiter *waiter_new(const struct manifest_ask *ask, struct httpd_conn *conn)
{
	struct manifest_waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	if (conn && ask->accept && !(w->accept = strdup(ask->accept))) {
		free(w);
		return NULL;
	}
	w->conn = conn;
	w->up = ask->up;
	snprintf(w->repo, sizeof(w->repo), "%s", ask->repo);
	w->by_tag = !is_digest(ask->reference);
	return w;
}

/* The one destructor; the waiter is off every list by now. NULL-safe. */
static void waiter_free(struct manifest_waiter *w)
{
	if (!w)
		return;
	free(w->accept);
	free(w);
}

/* Sends M: its bytes from memory (at most MEMO_MAX_BYTES), or from its file (taken). */
static void respond(struct httpd_conn *conn, const char *digest, struct store_manifest *m)
{
	httpd_add_header(conn, "Content-Type", "%s", m->type);
	httpd_add_header(conn, "Docker-Content-Digest", "%s", digest);
	httpd_add_header(conn, "ETag", "\"%s\"", digest);
	if (m->data) {
		httpd_respond(conn, 200, m->data, m->len);
		return;
	}
	httpd_respond_file(conn, 200, m->fd, m->body_at, (off_t)m->len, m->body_at + (off_t)m->len);
	m->fd = -1;
}

/* A tag names the index M, which w's client does not take: it gets the index's manifest for
 * the default platform, by digest, from the store or fetched through the cache. Takes w. */
static void answer_child(struct registry *r, struct manifest_waiter *w, const char *digest,
			 const struct store_manifest *m)
{
	char child[DIGEST_STR_SIZE], type[MEDIA_TYPE_MAX], *data = NULL;
	struct manifest_ask ask = {
	    .up = w->up, .repo = w->repo, .reference = child, .accept = w->accept};
	size_t len = m->len;
	int rc;

	/* A large index is read whole for the moment it is parsed: one at a time, freed at once. */
	if (!m->data && store_manifest_get(&r->store, digest, &data, &len, type) < 0) {
		api_error(w->conn, 404, API_MANIFEST_UNKNOWN, "manifest %s unreadable", digest);
		waiter_free(w);
		return;
	}
	rc = image_index_child(m->data ? m->data : data, len, DEFAULT_PLATFORM, accepts_cb,
			       w->accept, child);
	free(data);
	if (rc < 0) {
		api_error(w->conn, 404, API_MANIFEST_UNKNOWN,
			  "index %s has no %s manifest of a type the client accepts", digest,
			  DEFAULT_PLATFORM);
		waiter_free(w);
		return;
	}
	w->by_tag = 0;
	w->on_child = 1;
	manifest_start(r, &ask, w);
}

/* Answers w's client with the manifest DIGEST (M, or read from the store) as its Accept takes
 * it. Takes w. */
static void answer_client(struct registry *r, struct manifest_waiter *w, const char *digest,
			  struct store_manifest *m)
{
	struct store_manifest own = {.fd = -1};

	if (!m) {
		if (store_manifest_open(&r->store, digest, MEMO_MAX_BYTES, &own) < 0) {
			api_error(w->conn, 404, API_MANIFEST_UNKNOWN, "manifest %s unreadable",
				  digest);
			waiter_free(w);
			return;
		}
		m = &own;
	}
	/* A digest names exactly these bytes: nothing else could be the answer to it. */
	if (!w->by_tag || accepts(w->accept, m->type)) {
		respond(w->conn, digest, m);
		waiter_free(w);
	} else if (is_index(m->type)) {
		answer_child(r, w, digest, m);
	} else {
		api_error(w->conn, 404, API_MANIFEST_UNKNOWN,
			  "manifest %s is %s, which the client does not accept", digest, m->type);
		waiter_free(w);
	}
	store_manifest_close(&own);
}

static void waiter_release(struct httpd_conn *conn, void *arg)
{
	struct manifest_waiter *w = arg;

	(void)conn;
	LIST_REMOVE(w, link);
	waiter_free(w);
}

/* Hands w the outcome. Takes w. */
static void deliver(struct registry *r, struct manifest_waiter *w, const struct outcome *o)
{
	if (w->done) {
		w->done(w->arg, o->digest, o->digest ? NULL : o->err ? o->err : "upstream failed");
		waiter_free(w);
	} else if (o->unstored) {
		api_error(w->conn, 500, API_MANIFEST_UNKNOWN, "manifest not stored: %s", o->err);
		waiter_free(w);
	} else if (!o->digest) {
		api_error_upstream(w->conn, o->status, o->retry_after, API_MANIFEST_UNKNOWN,
				   o->err);
		waiter_free(w);
	} else {
		answer_client(r, w, o->digest, o->m);
	}
}

static void waiter_deliver(struct manifest_waiter *w, const struct outcome *o)
{
	LIST_REMOVE(w, link);
	if (w->conn)
		httpd_set_release(w->conn, NULL, NULL);
	deliver(w->mp->r, w, o);
}

/* The clients waiting get the verified bytes now: the disk need not hold them up (a large
 * manifest does: its clients get it from its file, once it is stored). */
static void answer_clients(struct manifest_pull *mp, const struct outcome *o)
{
	struct manifest_waiter *w, *next;

	for (w = LIST_FIRST(&mp->waiters); w; w = next) {
		next = LIST_NEXT(w, link);
		if (w->conn)
			waiter_deliver(w, o);
	}
}

/* Hands the outcome to every waiter, then frees the pull (the one destructor). */
static void mp_finish(struct manifest_pull *mp, const struct outcome *o)
{
	struct manifest_waiter *w;

	while ((w = LIST_FIRST(&mp->waiters)))
		waiter_deliver(w, o);
	LIST_REMOVE(mp, link);
	if (mp->u)
		upreq_cancel(mp->u);
	free(mp);
}

/* The upstream failed: a cached tag still answers (stale-if-error), else the error goes out. */
static void mp_fail(struct manifest_pull *mp, struct upreq *u, long status, const char *err)
{
	struct outcome o = {.status = status, .err = err};

	o.retry_after = u ? upreq_header(u, "Retry-After") : NULL;
	if (status != 404)
		metrics_add(mp->r->stats.upstream_errors, 1, status ? "status" : "unreachable");
	if (mp->cached[0] && status != 404) {
		log_warn("manifest_stale",
			 "registry=%s repo=%s tag=%s digest=%s status=%ld "
			 "error=\"%s\"",
			 upstream_host(mp->up), mp->repo, mp->reference, mp->cached, status,
			 err ? err : "");
		mp_finish(mp, &(struct outcome){.digest = mp->cached});
		return;
	}
	log_info("manifest_miss", "registry=%s repo=%s reference=%s status=%ld error=\"%s\"",
		 upstream_host(mp->up), mp->repo, mp->reference, status, err ? err : "");
	mp_finish(mp, &o);
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

/* The reference a tag pull stands for. */
static void tag_ref(const struct manifest_pull *mp, struct image_ref *ref)
{
	size_t n = strnlen(mp->reference, sizeof(ref->tag) - 1); /* a tag: at most REF_TAG_MAX */

	snprintf(ref->registry, sizeof(ref->registry), "%s", upstream_host(mp->up));
	snprintf(ref->repo, sizeof(ref->repo), "%s", mp->repo);
	memcpy(ref->tag, mp->reference, n);
	ref->tag[n] = '\0';
}

/* The manifest is stored (and a tag's new digest, when tag_written), or could not be: the
 * waiters left read it from the store; then whoever revalidated, a moved tag now names another
 * image, and the owner may have more to do about it (prewarm it again, …). */
static void mp_stored(struct manifest_pull *mp, int tag_written)
{
	struct registry *r = mp->r;
	char digest[DIGEST_STR_SIZE];
	struct image_ref moved = {0};

	if (tag_written && mp->cached[0] && strcmp(mp->cached, mp->digest) != 0)
		tag_ref(mp, &moved);
	memcpy(digest, mp->digest, sizeof(digest));
	mp_finish(mp, &(struct outcome){.digest = digest});
	if (moved.repo[0] && r->on_tag_moved) /* after the waiters had it (mp is gone) */
		r->on_tag_moved(r->on_tag_moved_arg, &moved, digest);
}

static void tag_stored(void *arg, int err)
{
	mp_stored(arg, err == 0);
}

/* Only now, with the manifest durable, may the tag name it. Clients of a large manifest, held
 * until now, get it from its file. */
static void manifest_stored(void *arg, int err)
{
	struct manifest_pull *mp = arg;

	if (err == 0)
		answer_clients(mp, &(struct outcome){.digest = mp->digest});
	else
		answer_clients(mp, &(struct outcome){.err = strerror(err), .unstored = 1});
	if (err == 0 && !is_digest(mp->reference) &&
	    store_tag_put(&mp->r->store, upstream_host(mp->up), mp->repo, mp->reference, mp->digest,
			  time(NULL), tag_stored, mp) == 0)
		return;
	mp_stored(mp, 0);
}

static void get_done(struct upreq *u, int ok, const char *err, void *arg)
{
	struct manifest_pull *mp = arg;
	long status = ok ? upreq_status(u) : 0;
	struct store_manifest m = {.fd = -1};
	const char *data;
	char why[256];

	mp->u = NULL;
	if (status != 200) {
		mp_fail(mp, u, status, err);
		return;
	}
	data = upreq_body(u, &m.len);
	media_type(u, data, m.len, m.type);
	if (digest_buffer(data, m.len, mp->digest) < 0 || verify(mp, u, mp->digest) < 0) {
		metrics_add(mp->r->stats.mismatches, 1);
		log_warn("digest_mismatch", "registry=%s repo=%s reference=%s got=%s",
			 upstream_host(mp->up), mp->repo, mp->reference, mp->digest);
		mp_fail(mp, u, 502, "manifest digest mismatch");
		return;
	}
	log_info("manifest_fetched", "registry=%s repo=%s reference=%s digest=%s type=%s bytes=%zu",
		 upstream_host(mp->up), mp->repo, mp->reference, mp->digest, m.type, m.len);
	if (m.len <= MEMO_MAX_BYTES) {
		m.data = (char *)data; /* the fetch's, lent for the answers: not freed here */
		answer_clients(mp, &(struct outcome){.digest = mp->digest, .m = &m});
	}
	mp->storing = 1;
	if (store_manifest_put(&mp->r->store, mp->digest, data, m.len, m.type, manifest_stored, mp,
			       why, sizeof(why)) < 0) {
		log_error("manifest_store", "digest=%s error=\"%s\"", mp->digest, why);
		answer_clients(mp, &(struct outcome){.err = why, .unstored = 1});
		mp_stored(mp, 0);
	}
}

static void head_done(struct upreq *u, int ok, const char *err, void *arg)
{
	struct manifest_pull *mp = arg;
	long status = ok ? upreq_status(u) : 0;
	const char *digest = upreq_header(u, "Docker-Content-Digest");

	mp->u = NULL;
	if (status == 200 && digest && strcmp(digest, mp->cached) == 0) {
		store_tag_put(&mp->r->store, upstream_host(mp->up), mp->repo, mp->reference,
			      mp->cached, time(NULL), NULL, NULL); /* written behind */
		mp_finish(mp, &(struct outcome){.digest = mp->cached});
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
	mp->u = upreq_start(mp->r, mp->up, method, mp->repo, path, DEFAULT_ACCEPT,
			    MANIFEST_MAX_BYTES, &hooks, mp);
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

	LIST_FOREACH (mp, &r->manifest_pulls, link)
		if (mp->up == ask->up && strcmp(mp->repo, ask->repo) == 0 &&
		    strcmp(mp->reference, ask->reference) == 0)
			return mp;
	return NULL;
}

static struct manifest_pull *mp_new(struct registry *r, const struct manifest_ask *ask,
				    const char *cached)
{
	struct manifest_pull *mp = calloc(1, sizeof(*mp));

	if (!mp)
		return NULL;
	mp->r = r;
	mp->up = ask->up;
	snprintf(mp->repo, sizeof(mp->repo), "%s", ask->repo);
	snprintf(mp->reference, sizeof(mp->reference), "%s", ask->reference);
	snprintf(mp->cached, sizeof(mp->cached), "%s", cached ? cached : "");
	LIST_INIT(&mp->waiters);
	LIST_INSERT_HEAD(&r->manifest_pulls, mp, link);
	return mp;
}

/* What the store can answer now: 0 with the digest in cached and the manifest in *m (the
 * caller closes it); 1 when a tag is held but due for revalidation (cached set, kept for
 * stale-if-error); -1 when nothing usable is held. Whether the client takes it is for the
 * answer to decide: what is held does not depend on it. */
static int lookup(struct registry *r, const struct manifest_ask *ask, char cached[DIGEST_STR_SIZE],
		  struct store_manifest *m)
{
	time_t fetched = 0;
	int tag = !is_digest(ask->reference);

	*m = (struct store_manifest){.fd = -1};
	if (!tag)
		snprintf(cached, DIGEST_STR_SIZE, "%s", ask->reference);
	else if (store_tag_get(&r->store, upstream_host(ask->up), ask->repo, ask->reference, cached,
			       &fetched) < 0)
		return -1;
	if (store_manifest_open(&r->store, cached, MEMO_MAX_BYTES, m) < 0) {
		cached[0] = '\0';
		return -1;
	}
	if (tag && time(NULL) - fetched >= r->conf->tag_ttl_s) {
		store_manifest_close(m);
		return 1;
	}
	return 0;
}

/* Answers w from the store, or attaches it to the one upstream request for this reference.
 * Takes w. */
static void manifest_start(struct registry *r, const struct manifest_ask *ask,
			   struct manifest_waiter *w)
{
	char cached[DIGEST_STR_SIZE] = "";
	struct store_manifest m;
	int held = lookup(r, ask, cached, &m), fresh = 0;
	struct manifest_pull *mp = held == 0 ? NULL : mp_find(r, ask);

	if (w->conn && !w->on_child)
		metrics_add(r->stats.cache, 1, "manifest", held == 0 ? "hit" : "miss");
	if (held == 0) {
		deliver(r, w, &(struct outcome){.digest = cached, .m = &m});
		store_manifest_close(&m);
		return;
	}
	if (!mp) {
		mp = mp_new(r, ask, held == 1 ? cached : NULL);
		fresh = 1;
	}
	if (!mp) {
		deliver(r, w, &(struct outcome){.status = 0, .err = "out of memory"});
		return;
	}
	w->mp = mp;
	LIST_INSERT_HEAD(&mp->waiters, w, link);
	if (w->conn)
		httpd_set_release(w->conn, waiter_release, w);
	if (fresh && held == 1)
		mp_request(mp, "HEAD", head_done);
	else if (fresh)
		mp_get(mp);
}

void manifest_serve(struct registry *r, struct httpd_conn *conn, const struct manifest_ask *ask)
{
	struct manifest_waiter *w = waiter_new(ask, conn);

	if (!w) {
		api_error(conn, 500, API_MANIFEST_UNKNOWN, "out of memory");
		return;
	}
	manifest_start(r, ask, w);
}

void manifest_resolve(struct registry *r, const struct manifest_ask *ask, manifest_done_fn done,
		      void *arg)
{
	struct manifest_waiter *w = waiter_new(ask, NULL);

	if (!w) {
		done(arg, NULL, "out of memory");
		return;
	}
	w->done = done;
	w->arg = arg;
	manifest_start(r, ask, w);
}

/* Pulls whose manifest is being stored are left to finish (syncq_drain completes them). The
 * list is searched again after each: a waiter's callback may change it. */
void manifest_pulls_abort_all(struct registry *r)
{
	struct manifest_pull *mp;

	for (;;) {
		LIST_FOREACH (mp, &r->manifest_pulls, link)
			if (!mp->storing)
				break;
		if (!mp)
			return;
		mp_finish(mp, &(struct outcome){.err = "shutting down"});
	}
}
