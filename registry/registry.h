/* microscale-registry: every module of the cache and its prototypes, grouped by the file that
 * defines them, so that this header reads as a map of the program. */
#ifndef MS_REGISTRY_H
#define MS_REGISTRY_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "conf.h"
#include "digest.h"
#include "fetch.h"
#include "httpd.h"
#include "log.h"

#define MEDIA_TYPE_MAX 128
#define MANIFEST_MAX_BYTES (4 * 1024 * 1024)

/* config.c: the JSON config and the command-line flags that override it */
struct upstream_conf {
	char *host;    /* "docker.io", "ghcr.io", "127.0.0.1:5001" */
	char *url;     /* base URL, no trailing slash */
	char *userpwd; /* "user:password" (from the config or a credentials file), or NULL */
	int insecure_tls;
};

struct registry_conf {
	char *listen;
	char *root;
	enum log_level log_level;
	long tag_ttl_s;
	struct upstream_conf *upstreams;
	size_t nupstreams;
	struct httpd_opts http;
	long connect_timeout_ms;
	long low_speed_time_s;
	int retries; /* attempts after the first, for 429 and 5xx */
};

/* Fills rc from the defaults, then c (may hold an empty object). -1 with c->err set. */
int registry_conf_load(struct registry_conf *rc, struct conf *c);
/* --upstream URL: the URL of the default registry (docker.io). */
int registry_conf_set_upstream(struct registry_conf *rc, const char *url);
void registry_conf_free(struct registry_conf *rc);

/* wwwauth.c: WWW-Authenticate challenges */
struct wwwauth {
	char scheme[16]; /* "Bearer", "Basic" */
	char realm[512];
	char service[256];
	char scope[512];
};
/* Parses the first challenge of a WWW-Authenticate value. -1 when malformed. */
int wwwauth_parse(const char *value, struct wwwauth *out);

/* store.c: content-addressed blobs and manifests, tags, all written verify-then-rename */
struct store {
	char *root;
};
struct store_tmp {
	int fd;
	char path[PATH_MAX];
	struct digest_ctx *dg;
	long long written;  /* bytes taken (and hashed) */
	long long on_disk;  /* of which in the file, readable by streaming clients */
	long long flushed;  /* write-back started up to here */
	char *pending;      /* the rest, waiting to be written in one go */
	size_t pending_len;
};

int store_open(struct store *s, const char *root, char *err, size_t errlen);
void store_close(struct store *s);
/* Opens a verified blob read-only; -1 (errno ENOENT) when absent. *size is its length. */
int store_blob_open(struct store *s, const char *digest, off_t *size);
int store_tmp_begin(struct store *s, struct store_tmp *t);
/* Appends and hashes; -1 with errno (ENOSPC, …). Bytes reach the file in batches. */
int store_tmp_write(struct store_tmp *t, const void *buf, size_t len);
/* Writes out what is still buffered. */
int store_tmp_flush(struct store_tmp *t);
/* Checks digest and size (size < 0: unchecked). On a mismatch the temp file is removed and err
 * says why. */
int store_tmp_verify(struct store_tmp *t, const char *digest, long long size, char *err,
		     size_t errlen);
/* After store_tmp_verify: fsyncs, renames into place, fsyncs the directory. On failure the temp
 * file is removed and err says why. */
int store_tmp_commit_blob(struct store *s, struct store_tmp *t, const char *digest, char *err,
			  size_t errlen);
void store_tmp_abort(struct store_tmp *t);
/* Manifests by digest, with their media type. get: 0, or -1 when absent; *data is malloc'd. */
int store_manifest_get(struct store *s, const char *digest, char **data, size_t *len,
		       char mediatype[MEDIA_TYPE_MAX]);
int store_manifest_put(struct store *s, const char *digest, const char *data, size_t len,
		       const char *mediatype, char *err, size_t errlen);
/* Tags: (registry, repository, tag) -> digest and when it was fetched. */
int store_tag_get(struct store *s, const char *registry, const char *repo, const char *tag,
		  char digest[DIGEST_STR_SIZE], time_t *fetched_at);
int store_tag_put(struct store *s, const char *registry, const char *repo, const char *tag,
		  const char *digest, time_t fetched_at);
/* The last tags/list answer per (registry, repository, query key); *data is malloc'd. */
int store_taglist_get(struct store *s, const char *registry, const char *repo, const char *key,
		      char **data, size_t *len);
int store_taglist_put(struct store *s, const char *registry, const char *repo, const char *key,
		      const char *data, size_t len);

/* The daemon: one of these per process, reached from every callback. */
struct upstream;
struct blob_pull;
struct manifest_pull;

struct registry {
	struct ev_loop *loop;
	const struct registry_conf *conf;
	struct store store;
	struct fetch_loop *fl;
	struct httpd *httpd;
	struct upstream *upstreams;
	size_t nupstreams;
	struct blob_pull *blob_pulls;         /* in flight, one per digest */
	struct manifest_pull *manifest_pulls; /* in flight, one per registry/repo/reference */
};

/* upstream.c: per-registry upstreams and requests to them, with the token dance and retries
 * folded in: a caller sees only the final answer. */
struct upreq;
struct upreq_hooks {
	/* The final response's status (after auth and retries). Return -1 to abort. */
	int (*on_response)(struct upreq *u, long status, void *arg);
	/* Its body; NULL collects it (bounded by max_body) for upreq_body() in on_done. */
	int (*on_data)(struct upreq *u, const char *buf, size_t len, void *arg);
	/* Once; the upreq is freed when this returns. */
	void (*on_done)(struct upreq *u, int ok, const char *err, void *arg);
};

int upstreams_init(struct registry *r);
void upstreams_free(struct registry *r);
/* The upstream for a registry host ("docker.io" when host is NULL), or NULL. */
struct upstream *upstream_find(struct registry *r, const char *host);
const char *upstream_host(const struct upstream *up);
/* METHOD BASE/v2/REPO/PATH (PATH like "blobs/sha256:…", "manifests/latest", "tags/list?n=1"). */
struct upreq *upreq_start(struct registry *r, struct upstream *up, const char *method,
			  const char *repo, const char *path, const char *accept, size_t max_body,
			  const struct upreq_hooks *hooks, void *arg);
void upreq_cancel(struct upreq *u);
long upreq_status(const struct upreq *u);
const char *upreq_header(const struct upreq *u, const char *name);
const char *upreq_body(const struct upreq *u, size_t *len);

/* errors.c: OCI error responses */
void api_error(struct httpd_conn *conn, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Maps a failed upstream answer (status 0: none at all) to the client's error; unknown_code is
 * the code of a miss (BLOB_UNKNOWN, MANIFEST_UNKNOWN, NAME_UNKNOWN). */
void api_upstream_error(struct httpd_conn *conn, long status, const char *retry_after,
			const char *unknown_code, const char *err);

/* blob.c: serving blobs, from the store or from an upstream pull in flight */
struct blob_ask {
	struct upstream *up;
	const char *repo;
	const char *digest;
	const char *range; /* the request's Range header, or NULL */
};
void blob_serve(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req,
		const struct blob_ask *ask);
/* Answers with bytes of fd (which it takes), a blob of SIZE bytes of which those before
 * avail_end can be read now; honours a Range header (206, or 416). */
void blob_respond_fd(struct httpd_conn *conn, const char *digest, int fd, off_t size,
		     off_t avail_end, const char *range);
/* Answers from a stored blob; returns -1 (nothing sent) when it is not stored. */
int blob_serve_stored(struct registry *r, struct httpd_conn *conn, const char *digest,
		      const char *range);

/* pull.c: one upstream transfer per blob; clients attach and stream from the temp file */
void pull_blob_attach(struct registry *r, struct httpd_conn *conn, const struct blob_ask *ask);
void pulls_abort_all(struct registry *r);

/* manifest.c: manifests by tag or digest, revalidated tags, one upstream fetch per reference */
struct manifest_ask {
	struct upstream *up;
	const char *repo;
	const char *reference; /* tag or digest */
	const char *accept;    /* the client's Accept header, or NULL */
};
void manifest_serve(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req,
		    const struct manifest_ask *ask);
void manifest_pulls_abort_all(struct registry *r);

/* tags.c: tags/list, passed upstream, served from the last answer when the upstream fails */
void tags_serve(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req,
		struct upstream *up, const char *repo);

/* api.c: routing and validation of every request */
void api_handle(struct httpd_conn *conn, const struct httpd_req *req, void *arg);

#endif
