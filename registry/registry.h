/* microscale-registry: every module of the cache and its prototypes, grouped by the file that
 * defines them, so that this header reads as a map of the program. */
#ifndef MS_REGISTRY_H
#define MS_REGISTRY_H

#include <limits.h>
#include <stddef.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>

#include "conf.h"
#include "digest.h"
#include "fetch.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "monotime.h"
#include "ref.h"
#include "syncq.h"

#define MEDIA_TYPE_MAX 128
#define MANIFEST_MAX_BYTES (4 * 1024 * 1024)

/* config.c: the JSON config and the command-line flags that override it */
struct upstream_conf {
	char *host;    /* "docker.io", "ghcr.io", "127.0.0.1:5001" */
	char *url;     /* base URL, no trailing slash */
	char *userpwd; /* "user:password" (from the config or a credentials file), or NULL */
	int insecure_tls;
	char *ca_file; /* CA bundle for this upstream's TLS, or NULL: the system's */
	/* Token realms beyond the upstream's own host that may get userpwd (realm.c), URLs,
	 * NULL-terminated; docker.io's default is Docker Hub's auth host. NULL: none. */
	char **auth_realms;
	int max_concurrent; /* requests to it at once (upgate.c) */
	int max_queued;	    /* waiting for one of those; more are answered 429 at once */
	long miss_ttl_s;    /* how long a miss is remembered (upmiss.c); 0: not at all */
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
	int retries;	    /* attempts after the first, for 429 and 5xx */
	char *prewarm_list; /* file of priority images, or NULL */
	long prewarm_interval_s;
	int prewarm_parallel;	      /* blobs at once */
	int prewarm_max_requested;    /* images asked for through the API, tracked at once */
	int prewarm_request_attempts; /* failures before an image never had is given up */
	char **platforms;	      /* NULL-terminated; wanted from image indexes */
	long long store_max_bytes;    /* 0: 80% of the free space at start */
	char *admin_token;	      /* opens the control API to non-loopback peers */
	char *docker_socket;	      /* runtime.docker_socket, or NULL: the runtime step is off */
	int runtime_parallel;	      /* runtime.parallel: requests to dockerd at once */
};

/* Fills rc from the defaults, then c (may hold an empty object). -1 with c->err set. */
int registry_conf_load(struct registry_conf *rc, struct conf *c);
/* --prewarm FILE */
int registry_conf_set_prewarm(struct registry_conf *rc, const char *file);
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
struct memo;
struct store_sync;
/* What the store keeps. A NAME says which one: a blob's or manifest's digest; a tag's or tag
 * list's path under ROOT/tags/ or ROOT/taglists/ ("docker.io/library/x/_tags/1"). */
enum store_kind { STORE_BLOB, STORE_MANIFEST, STORE_TAG, STORE_TAGLIST };
#define STORE_KINDS 4
/* Whoever keeps the budget (evict.c) hears of the small files through this: stored once a file
 * is durable under its name (DIGEST: the manifest it is or a tag names, "" for a tag list; BYTES:
 * its size), used when one is read. Blobs are told by their transfer instead. */
struct store_watch {
	void (*stored)(void *arg, enum store_kind kind, const char *name, const char *digest,
		       long long bytes);
	void (*used)(void *arg, enum store_kind kind, const char *name);
	void *arg;
};
struct store {
	char *root;
	int rootfd;	   /* ROOT (O_PATH): store files are resolved beneath it, through no link */
	struct memo *memo; /* manifests and tags read last (memo.c); NULL until one is */
	/* writes behind, off the loop (store_sync.c); NULL (the offline tools): a write is done
	 * when it returns */
	struct store_sync *sync;
	struct store_watch watch; /* zeroed: nobody is told */
};
/* How a write ended: err 0 (durable under its name) or an errno. */
typedef void (*store_done_fn)(void *arg, int err);
struct store_tmp {
	int fd;
	char path[PATH_MAX];
	struct digest_ctx *dg;
	long long written; /* bytes taken (and hashed) */
	long long on_disk; /* of which in the file, readable by streaming clients */
	long long flushed; /* write-back started up to here */
	char *pending;	   /* the rest, waiting to be written in one go */
	size_t pending_len;
};

/* Opens (creating it) the store at ROOT; store_open, for the daemon starting, also clears
 * ROOT/tmp, store_attach (the offline tools, which may run beside a daemon) leaves it. A store
 * directory that is a link refuses either. -1 with err set. */
int store_open(struct store *s, const char *root, char *err, size_t errlen);
int store_attach(struct store *s, const char *root, char *err, size_t errlen);
void store_close(struct store *s);
/* Opens a verified blob read-only; -1 (errno ENOENT) when absent. *size is its length. What is
 * at a store path and not a regular file (a symbolic link, a FIFO, …) is moved to quarantine and
 * counts as absent: no store file is opened through a link or in a way that could block. */
int store_blob_open(struct store *s, const char *digest, off_t *size);
/* Reads exactly LEN bytes from a store file; -1 with errno (EIO when it is shorter). */
int store_read_exact(int fd, char *buf, size_t len);
/* Removes a stored blob (readers holding it open keep reading). */
int store_blob_remove(struct store *s, const char *digest);
/* Removes what KIND and NAME name (see enum store_kind), and the directories it leaves empty. */
int store_remove(struct store *s, enum store_kind kind, const char *name);
/* Whether a verified blob is stored; its size in *size when size is not NULL. */
int store_blob_exists(struct store *s, const char *digest, long long *size);
/* Everything stored, so that no one else needs to know where it is. */
struct store_object {
	enum store_kind kind;
	const char *name;	      /* its NAME (points into digest or path) */
	char digest[DIGEST_STR_SIZE]; /* a blob's or manifest's name, which its bytes should hash
				       * to; the manifest a tag names ("" when unreadable); "" for
				       * a tag list */
	char path[PATH_MAX];	      /* to read it (a manifest: "<media type>\n" first) */
	long long size;		      /* of the file */
	time_t mtime;		      /* when it was stored */
	int foreign; /* not a regular file (a link, a FIFO, …): not the store's */
};
/* Non-zero stops the walk; store_each then returns it. */
typedef int (*store_each_fn)(void *arg, const struct store_object *o);
/* Calls fn for each object of KIND, in no order; 0 when it saw them all. */
int store_each(struct store *s, enum store_kind kind, store_each_fn fn, void *arg);
/* Moves O aside (never served again, kept for a post-mortem) to DST. -1 with errno. */
int store_quarantine(struct store *s, const struct store_object *o, char dst[PATH_MAX]);
int store_tmp_begin(struct store *s, struct store_tmp *t);
/* Appends and hashes; -1 with errno (ENOSPC, …). Bytes reach the file in batches. */
int store_tmp_write(struct store_tmp *t, const void *buf, size_t len);
/* Writes out what is still buffered. */
int store_tmp_flush(struct store_tmp *t);
/* Checks digest and size (size < 0: unchecked). On a mismatch the temp file is removed and err
 * says why. */
int store_tmp_verify(struct store_tmp *t, const char *digest, long long size, char *err,
		     size_t errlen);
/* After store_tmp_verify, for the offline tools: fsyncs, renames into place, fsyncs the
 * directory. On failure the temp file is removed and err says why. */
int store_tmp_commit_blob(struct store *s, struct store_tmp *t, const char *digest, char *err,
			  size_t errlen);
/* The daemon's way, once t->fd is fsynced (off the loop): renames the blob into place and opens
 * its directory into *dirfd, for the caller to fsync (off the loop) and close; *dirfd is -1 when
 * the blob was there already. t is finished either way; on failure err says why. */
int store_tmp_rename_blob(struct store *s, struct store_tmp *t, const char *digest, int *dirfd,
			  char *err, size_t errlen);
void store_tmp_abort(struct store_tmp *t);
/* Manifests by digest, with their media type. get: 0, or -1 when absent; *data is malloc'd. */
int store_manifest_get(struct store *s, const char *digest, char **data, size_t *len,
		       char mediatype[MEDIA_TYPE_MAX]);
/* A stored manifest to answer with, without a copy of a large one per response. */
struct store_manifest {
	char type[MEDIA_TYPE_MAX];
	size_t len;    /* of the manifest's bytes */
	char *data;    /* the bytes (malloc'd), or NULL: they are in fd */
	int fd;	       /* -1, or the open store file: the bytes are [body_at, body_at + len) */
	off_t body_at; /* past the media type's line */
};
/* A manifest whose file holds at most COPY_MAX bytes comes as store_manifest_get gives it (from
 * the memo when it is there); a larger one as its open file, to send with sendfile. A large one
 * is not re-hashed here, as a blob is not: it was verified before it was stored, and `verify`
 * re-hashes it. 0, or -1 (errno) when absent or unreadable. */
int store_manifest_open(struct store *s, const char *digest, size_t copy_max,
			struct store_manifest *m);
/* Frees the bytes and closes the file still held (a taker of fd sets it to -1). */
void store_manifest_close(struct store_manifest *m);
/* A media type the store can keep: 1 to MEDIA_TYPE_MAX - 1 visible ASCII bytes, no blank. */
int store_media_type_valid(const char *mt);
/* The puts: -1 (err or errno says why) when nothing was written, and done is not called; else
 * done(arg, 0 or errno) once the file is durable under its name (NULL: nobody to tell). With
 * s->sync, done runs from the loop after the put returned; without, before it returns. */
int store_manifest_put(struct store *s, const char *digest, const char *data, size_t len,
		       const char *mediatype, store_done_fn done, void *arg, char *err,
		       size_t errlen);
/* Tags: (registry, repository, tag) -> digest and when it was fetched. */
int store_tag_get(struct store *s, const char *registry, const char *repo, const char *tag,
		  char digest[DIGEST_STR_SIZE], time_t *fetched_at);
int store_tag_put(struct store *s, const char *registry, const char *repo, const char *tag,
		  const char *digest, time_t fetched_at, store_done_fn done, void *arg);
/* One tags/list answer per (registry, repository): its body and its Link header's value ("":
 * none; a Link holds no newline). get: *body is malloc'd and NUL-terminated. */
#define STORE_LINK_MAX 1024
int store_taglist_get(struct store *s, const char *registry, const char *repo,
		      char link[STORE_LINK_MAX], char **body, size_t *len);
int store_taglist_put(struct store *s, const char *registry, const char *repo, const char *link,
		      const char *body, size_t len);

/* store_sync.c: the store's small files fsynced on the syncq, renamed in the order they came */
struct store_sync *store_sync_new(struct store *s, struct syncq *q);
/* Only after the syncq is drained (syncq_free): no write is left then. */
void store_sync_free(struct store_sync *ss);
/* Takes fd, the complete temp file TMP, which becomes DST (whose directory exists) once synced;
 * TMP NULL: DST is in place already (fd -1), to be fsynced in its turn. MEMO (MEMO_LEN bytes, or
 * NULL) goes into the store's memo once DST is visible. -1 (errno): nothing was taken. */
int store_sync_install(struct store_sync *ss, int fd, const char *tmp, const char *dst,
		       const char *memo, size_t memo_len, store_done_fn done, void *arg);

/* memo.c: small store files read last, in memory, by path; a stamp per value for freshness.
 * memo_get's answer is valid until the next memo_put. No value over MEMO_MAX_BYTES is kept. */
#define MEMO_MAX_BYTES (16 * 1024)
const char *memo_get(struct memo *m, const char *key, size_t *len, double *stamp);
void memo_put(struct memo **mp, const char *key, const char *value, size_t len, double stamp);
/* KEY's file is gone (evicted): its value must not answer for it. */
void memo_drop(struct memo *m, const char *key);
void memo_free(struct memo *m);

/* stats.c: metric families, counted where the events happen (all NULL-safe) */
struct stats {
	struct metrics *m;
	struct metric_family *requests, *cache, *bytes, *in_flight, *upstream_errors;
	struct metric_family *fetch_seconds, *prewarm, *store_bytes, *store_budget, *evicted;
	struct metric_family *mismatches, *upstream_spared;
	struct metric_family *runtime_pulls, *runtime_errors, *runtime_images;
};

/* The daemon: one of these per process, reached from every callback. */
struct upstream;
struct transfer;
struct manifest_pull;

struct registry {
	struct ev_loop *loop;
	const struct registry_conf *conf;
	struct store store;
	struct fetch_loop *fl;
	struct httpd *httpd;
	struct upstream *upstreams;
	size_t nupstreams;
	LIST_HEAD(, transfer) transfers;	   /* in flight, one per digest */
	LIST_HEAD(, manifest_pull) manifest_pulls; /* in flight, one per registry/repo/reference */
	struct prewarm *prewarm;
	struct runtime *runtime; /* NULL: runtime.docker_socket is not set */
	struct evict *evict;
	struct syncq *syncq; /* fsyncs off the loop */
	struct stats stats;
	int stopping; /* shutting down: start nothing new */
	/* A tag's digest changed when it was revalidated, by whoever asked (manifest.c calls it,
	 * main.c sets it); NULL: nobody to tell. */
	void (*on_tag_moved)(void *arg, const struct image_ref *ref, const char *digest);
	void *on_tag_moved_arg;
};

/* realm.c: where an upstream's credentials may go when a 401 names a token realm */
/* 1 when REALM may get the credentials of the upstream at UPSTREAM_URL (ALLOWED: its
 * auth_realms, NULL-terminated, or NULL); else 0 and why not in WHY (no secret in it). */
int realm_allowed(const char *upstream_url, char *const *allowed, const char *realm, char *why,
		  size_t whylen);
/* Whether ENTRY can be an auth_realms entry of the upstream at UPSTREAM_URL; -1 and WHY. */
int realm_entry_check(const char *upstream_url, const char *entry, char *why, size_t whylen);
/* REALM with service= and scope= added (and any user:password@ dropped), malloc'd; NULL when
 * REALM is not an http:// or https:// URL or out of memory. */
char *realm_token_url(const char *realm, const char *service, const char *scope);

/* upgate.c: requests to one upstream at once, a bounded queue, its Retry-After */
struct upgate_wait {
	TAILQ_ENTRY(upgate_wait) link;
	void (*granted)(struct upgate_wait *w); /* a slot is now w's: it must upgate_leave later */
	int queued;
};
struct upgate {
	unsigned max_active, max_queued;
	unsigned active, queued;
	TAILQ_HEAD(, upgate_wait) waiting; /* first come, first served */
	double closed_until;		   /* the upstream's Retry-After runs until then */
};
enum upgate_answer {
	UPGATE_GO,     /* a slot is taken: go, and upgate_leave when done */
	UPGATE_QUEUED, /* w->granted will be called (from upgate_leave) */
	UPGATE_FULL,   /* the queue is full: refuse the request */
};
void upgate_init(struct upgate *g, unsigned max_active, unsigned max_queued);
/* ADMITTED: w was let in before (a retry): it may wait whatever the queue's length. */
enum upgate_answer upgate_enter(struct upgate *g, struct upgate_wait *w, int admitted);
/* w leaves the queue, if it is in it. */
void upgate_cancel(struct upgate *g, struct upgate_wait *w);
/* Gives a slot up; the first waiter gets it (its granted runs before this returns). */
void upgate_leave(struct upgate *g);
/* The upstream said Retry-After: nothing goes to it until UNTIL (the latest such time wins). */
void upgate_close(struct upgate *g, double until);
/* Seconds the upstream's Retry-After still runs at NOW; 0 when it does not. */
double upgate_closed_for(const struct upgate *g, double now);

/* upmiss.c: misses remembered briefly, by upstream URL and Accept */
struct upmiss;
/* At most MAX entries. NULL when out of memory. */
struct upmiss *upmiss_new(unsigned max);
void upmiss_free(struct upmiss *m);
/* The status remembered for KEY (404, 401, 403), or 0 when none is (any longer). */
long upmiss_get(struct upmiss *m, const char *key, double now);
/* Remembers KEY's STATUS until NOW + TTL. */
void upmiss_put(struct upmiss *m, const char *key, long status, double now, double ttl);
unsigned upmiss_count(const struct upmiss *m);

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

/* api_error.c: OCI error responses. The codes are the OCI distribution spec's (v1.1, "Error
 * Codes") and only those: a client or a conformance check sees nothing it does not know. What
 * the spec has no code for says what it is in its status and message (a 5xx while fetching a
 * blob is BLOB_UNKNOWN with that status; a bad request head, an unsatisfiable range or an
 * unknown endpoint is UNSUPPORTED, "an invalid set of parameters"). */
enum api_code {
	API_BLOB_UNKNOWN,
	API_BLOB_UPLOAD_INVALID,
	API_BLOB_UPLOAD_UNKNOWN,
	API_DIGEST_INVALID,
	API_MANIFEST_BLOB_UNKNOWN,
	API_MANIFEST_INVALID,
	API_MANIFEST_UNKNOWN,
	API_NAME_INVALID,
	API_NAME_UNKNOWN,
	API_SIZE_INVALID,
	API_UNAUTHORIZED,
	API_DENIED,
	API_UNSUPPORTED,
	API_TOOMANYREQUESTS,
};
const char *api_code_name(enum api_code code);
void api_error(struct httpd_conn *conn, int status, enum api_code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Maps a failed upstream answer (status 0: none at all) to the client's error; unknown_code is
 * the code of a miss (API_BLOB_UNKNOWN, API_MANIFEST_UNKNOWN, API_NAME_UNKNOWN), and of any
 * other failure to get the thing asked for. */
void api_error_upstream(struct httpd_conn *conn, long status, const char *retry_after,
			enum api_code unknown_code, const char *err);

/* blob.c: everything HTTP about a blob: from the store (sendfile, Range), or streamed to a
 * client attached as a reader of the transfer in flight; its error answers */
struct blob_ask {
	struct upstream *up;
	const char *repo;
	const char *digest;
	const char *range; /* the request's Range header, or NULL */
};
void blob_serve(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req,
		const struct blob_ask *ask);

/* transfer.c: one upstream transfer per blob into a temp file; it speaks no HTTP. Each reader
 * says which bytes it reads (the whole blob, or a range's first bytes); of those it may read all
 * but its last while the digest is unverified, its last once the blob is verified. */
struct transfer_end {
	int ok;			 /* verified and stored, its name durable */
	const char *err;	 /* else why, or NULL when the upstream's status says it all */
	long status;		 /* the upstream's (0: no answer; 502: digest mismatch; 200 and not
				  * ok: the bytes were good but could not be stored) */
	const char *retry_after; /* the upstream's Retry-After, or NULL */
};
struct transfer_reader_ops {
	/* A 200 with a length came (at once for a reader joining later): the temp file PATH will
	 * hold SIZE bytes. A reader that reads some says so with transfer_read(), here or later;
	 * until then it is told nothing more but the end. NULL: the reader wants the end only. */
	void (*on_start)(void *arg, const char *path, long long size);
	/* Bytes before AVAIL may be read; AVAIL == SIZE once the digest is verified. */
	void (*on_avail)(void *arg, long long avail);
	/* The end: the reader is off the transfer already and may free itself. */
	void (*on_end)(void *arg, const struct transfer_end *end);
};
/* The caller's, set up with ops and arg; the transfer links it while joined. */
struct transfer_reader {
	TAILQ_ENTRY(transfer_reader) link;
	const struct transfer_reader_ops *ops;
	void *arg;
	struct transfer *t; /* while joined */
	int started;	    /* on_start was called */
	long long end;	    /* it reads the bytes before this (transfer_read); 0: none yet */
};
/* Joins the transfer of ask->digest, starting one when none runs; -1 when none can start. The
 * reader's on_start may run (and the reader leave) before this returns. */
int transfer_join(struct registry *r, const struct blob_ask *ask, struct transfer_reader *rd);
/* Once started, the reader reads the bytes before END (at most SIZE); returns how many of them
 * may be read now, and on_avail tells it as that grows. The byte at END - 1 is released only
 * once the whole blob's digest is verified. */
long long transfer_read(struct transfer_reader *rd, long long end);
/* A reader that stops before the end (its client went away); no callback follows. */
void transfer_leave(struct transfer_reader *rd);
/* For internal callers: done(arg, NULL) once the blob is stored (at once when it already is),
 * or done(arg, why) when the transfer failed. */
typedef void (*transfer_done_fn)(void *arg, const char *err);
void transfer_fetch(struct registry *r, const struct blob_ask *ask, transfer_done_fn done,
		    void *arg);
/* At shutdown: every transfer not yet verified fails ("shutting down"). */
void transfer_abort_all(struct registry *r);

/* manifest.c: manifests by tag or digest, revalidated tags, one upstream fetch per reference */
struct manifest_ask {
	struct upstream *up;
	const char *repo;
	const char *reference; /* tag or digest */
	const char *accept;    /* the client's Accept header, or NULL */
};
void manifest_serve(struct registry *r, struct httpd_conn *conn, const struct manifest_ask *ask);
/* The same path for internal callers: done gets the digest of the manifest, now in the store,
 * or NULL and why not. done may run before manifest_resolve returns. */
typedef void (*manifest_done_fn)(void *arg, const char *digest, const char *err);
void manifest_resolve(struct registry *r, const struct manifest_ask *ask, manifest_done_fn done,
		      void *arg);
void manifest_pulls_abort_all(struct registry *r);

/* image.c: an image's parts, from the store alone */
#define IMAGE_PLATFORM_MAX 64
struct image_blob {
	char digest[DIGEST_STR_SIZE];
	long long size;
	int is_layer; /* else the config */
	int present;
};
#define IMAGE_WALK_MANIFESTS 16
struct image_walk {
	char missing_manifest[DIGEST_STR_SIZE]; /* a manifest needed first, "" when none */
	char manifests[IMAGE_WALK_MANIFESTS][DIGEST_STR_SIZE]; /* those read (the first ones) */
	size_t nmanifests;
	char error[256];
	struct image_blob *blobs;
	size_t nblobs;
	int layers_present, layers_total;
	long long bytes_present, bytes_total;
	int complete;
};
/* Walks the manifest DIGEST (an index: only the wanted platforms, NULL-terminated). -1 with
 * w->error when the image cannot be made sense of; else w says what is there. */
int image_walk(struct store *s, const char *digest, const char *const *platforms,
	       struct image_walk *w);
void image_walk_free(struct image_walk *w);
/* The platforms an image is wanted for: OWN (its platform=; "" or NULL: none) alone, else the
 * CONFIGURED ones (NULL-terminated). ONE is the caller's storage for the first case. */
const char *const *image_platforms(char *const *configured, const char *own, const char *one[2]);
const char *image_node_platform(void);
/* The first manifest of the index DATA for PLATFORM ("linux/amd64") whose media type TAKES(arg,
 * type) accepts, into DIGEST: 0, or -1 when DATA is no index or none of its manifests fits. */
int image_index_child(const char *data, size_t len, const char *platform,
		      int (*takes)(void *arg, const char *mediatype), void *arg,
		      char digest[DIGEST_STR_SIZE]);
int image_platform_valid(const char *platform);

/* prewarm_list.c: the priority image list file */
struct prewarm_entry {
	struct image_ref ref;
	char platform[IMAGE_PLATFORM_MAX]; /* "" unless the line says platform= */
};
/* -1 with "FILE:LINE: reason" in err. *out is malloc'd. */
int prewarm_list_read(const char *file, struct prewarm_entry **out, size_t *n, char *err,
		      size_t errlen);

/* prewarm_table.c: the tracked images by name, and the bound on those the API adds */
/* The owner's callback for an image's timer; w->data is the image. */
typedef void (*prewarm_timer_fn)(struct ev_loop *loop, ev_timer *w, int revents);
struct prewarm_table {
	struct ev_loop *loop;
	struct prewarm *owner; /* each image's pw */
	LIST_HEAD(, prewarm_image) all;
	LIST_HEAD(prewarm_bucket, prewarm_image) * buckets;
	TAILQ_HEAD(, prewarm_image) idle; /* droppable, least recently asked for first */
	size_t ntracked, nrequested;	  /* nrequested: those counted */
	int max_requested;
	prewarm_timer_fn timer_cb;
};
int prewarm_table_init(struct prewarm_table *t, struct ev_loop *loop, struct prewarm *owner,
		       int max_requested, prewarm_timer_fn timer_cb);
/* Forgets every image (no job may run). */
void prewarm_table_clear(struct prewarm_table *t);
struct prewarm_image *prewarm_table_find(struct prewarm_table *t, const struct image_ref *ref);
struct prewarm_image *prewarm_table_first(struct prewarm_table *t);
/* REF's image, added when untracked, with no bound (the list's); NULL with errno ENOMEM. */
struct prewarm_image *prewarm_table_get(struct prewarm_table *t, const struct image_ref *ref);
/* REF's image for a request through the API: when it would newly count against max_requested
 * and the table is full, the oldest droppable image makes room; NULL with errno EAGAIN when
 * none can, ENOMEM. The caller sets requested and then reviews it. */
struct prewarm_image *prewarm_table_claim(struct prewarm_table *t, const struct image_ref *ref);
/* IMG was asked for again: the last to be dropped. */
void prewarm_table_touch(struct prewarm_table *t, struct prewarm_image *img);
/* After any change of IMG's listed, requested, api_pinned, busy or was_ready: the counts and the
 * droppable queue follow, and an image neither listed nor requested with no job is forgotten
 * (IMG is then freed: the caller must not touch it again). */
void prewarm_table_review(struct prewarm_table *t, struct prewarm_image *img);
/* Unlinks and frees IMG, for which no job may run. */
void prewarm_table_forget(struct prewarm_table *t, struct prewarm_image *img);

/* prewarm.c: tracked images and the jobs that keep them warm */
enum prewarm_state { PREWARM_QUEUED, PREWARM_PULLING, PREWARM_READY, PREWARM_FAILED };
struct prewarm;
struct prewarm_image {
	LIST_ENTRY(prewarm_image) link; /* every tracked image: prewarm_images(), prewarm_next() */
	LIST_ENTRY(prewarm_image) bucket; /* its bucket of the index by name */
	TAILQ_ENTRY(prewarm_image) idle;  /* on the droppable queue while droppable */
	struct prewarm *pw;
	struct image_ref ref;
	char name[REF_HOST_MAX + REF_NAME_MAX + REF_TAG_MAX + REF_DIGEST_MAX + 8];
	char platform[IMAGE_PLATFORM_MAX]; /* "" : the configured platforms */
	int listed, requested, api_pinned, pinned;
	enum prewarm_state state;
	char digest[DIGEST_STR_SIZE]; /* what its reference resolved to last */
	int layers_present, layers_total;
	long long bytes_present, bytes_total;
	char error[256];
	char blob_error[256];
	int attempts;	/* failures in a row */
	int was_ready;	/* it was complete once: it exists, and is never given up */
	int gave_up;	/* requested, never had, out of attempts: failed until forgotten */
	int counted;	/* requested, not listed: counts against prewarm.max_requested */
	int droppable;	/* on the table's idle queue */
	ev_timer timer; /* the next retry; once given up, when it is forgotten */
	int busy, resolved, pending;
};
/* once: --prewarm-once (no interval; the loop stops when every listed image settled). */
struct prewarm *prewarm_new(struct registry *r, int once);
/* Called whenever a tracked image is (again) complete in the store: after each job that ends
 * ready, and when an image already ready is asked for again. The owner decides what follows. */
typedef void (*prewarm_ready_fn)(void *arg, const struct prewarm_image *img);
void prewarm_on_ready(struct prewarm *pw, prewarm_ready_fn fn, void *arg);
void prewarm_free(struct prewarm *pw);
int prewarm_load(struct prewarm *pw, const char *file, char *err, size_t errlen);
void prewarm_all(struct prewarm *pw);
/* Tracks (and pins, when pin) an image and starts its job unless it is ready, running or given
 * up. NULL with errno EAGAIN when prewarm.max_requested images asked for through the API are
 * tracked and none can make room, ENOMEM when out of memory. */
struct prewarm_image *prewarm_request(struct prewarm *pw, const struct image_ref *ref, int pin);
struct prewarm_image *prewarm_find(struct prewarm *pw, const struct image_ref *ref);
/* REF's tag now names DIGEST (revalidated for a client, say): the tracked images under that tag
 * are warmed again, so that they and what follows them (the runtime) catch up. */
void prewarm_tag_moved(struct prewarm *pw, const struct image_ref *ref, const char *digest);
/* The tracked images, in no order: the first, then the one after IMG (NULL at the end). */
struct prewarm_image *prewarm_images(struct prewarm *pw);
struct prewarm_image *prewarm_next(const struct prewarm_image *img);
/* fn(arg, digest) for every blob and manifest of every pinned image, as far as the store knows
 * them. */
void prewarm_pinned_blobs(struct prewarm *pw, void (*fn)(void *arg, const char *digest), void *arg);
/* 0 when every listed image became ready (for --prewarm-once). */
int prewarm_status(const struct prewarm *pw);
const char *prewarm_state_name(enum prewarm_state s);

/* dockerapi.c: the Docker Engine API's names, URLs and answers, as pure code */
#define DOCKERAPI_LINE_MAX 16384 /* one line of the progress stream, at most */
#define DOCKERAPI_URL_MAX 2048
struct dockerapi_names {
	/* fromImage: "docker.io/library/web", "ghcr.io/org/app", "docker.io/library/x@sha256:…" */
	char image[REF_HOST_MAX + REF_NAME_MAX + REF_DIGEST_MAX + 4];
	char tag[REF_TAG_MAX + 1]; /* the tag parameter; "" for a digest reference */
	/* what Docker calls it: "docker.io/library/web:1", or image for a digest */
	char name[REF_HOST_MAX + REF_NAME_MAX + REF_DIGEST_MAX + REF_TAG_MAX + 6];
};
struct dockerapi_stream {
	char line[DOCKERAPI_LINE_MAX]; /* the line being read */
	size_t len;
	long lines;		      /* non-empty lines read */
	int complete;		      /* a final "Status: …" line came */
	int failed;		      /* error says why; nothing more is read */
	char digest[DIGEST_STR_SIZE]; /* from "Digest: sha256:…", "" until then */
	char error[512];
};
/* -1 when REF has neither tag nor digest or a name does not fit. */
int dockerapi_names(const struct image_ref *ref, struct dockerapi_names *out);
/* Percent-encodes all but RFC 3986's unreserved characters; -1 when out is too small. */
int dockerapi_escape(const char *in, char *out, size_t outlen);
/* "http://localhost/images/create?fromImage=…[&tag=…]" (the host is only the Host header). */
int dockerapi_create_url(const struct dockerapi_names *n, char *out, size_t outlen);
/* "http://localhost/images/NAME/json" */
int dockerapi_inspect_url(const struct dockerapi_names *n, char *out, size_t outlen);
/* An inspect answer: 1 when its RepoDigests hold DIGEST (under any name), 0 when not, -1 when it
 * is not an image's JSON. */
int dockerapi_inspect_has(const char *body, size_t len, const char *digest);
/* The "message" of dockerd's error answer (or the body's start), one line without quotes. */
void dockerapi_message(const char *body, size_t len, char *out, size_t outlen);
void dockerapi_stream_init(struct dockerapi_stream *s);
/* The stream's next bytes, split anywhere. 0: go on; -1: it failed (s->error: dockerd's error
 * line, a line that is not a JSON object, or one over DOCKERAPI_LINE_MAX). */
int dockerapi_stream_feed(struct dockerapi_stream *s, const char *buf, size_t len);
/* The body ended: 0 when the pull completed, else -1 and s->error. */
int dockerapi_stream_end(struct dockerapi_stream *s);

/* runtime.c: the last step of prewarm, each complete image asked of the node's dockerd */
enum runtime_report {
	RUNTIME_PRESENT, /* dockerd holds it at the store's digest */
	RUNTIME_PULLING, /* being checked or pulled */
	RUNTIME_ABSENT,	 /* not put into Docker (not complete in the store, or never asked for) */
	RUNTIME_FAILED,	 /* the last attempt failed; retried with backoff */
	RUNTIME_OFF,	 /* runtime.docker_socket is not set */
};
#define RUNTIME_REPORTS RUNTIME_OFF /* the states an image can be in when the runtime is on */
struct runtime;
/* NULL when r->conf->docker_socket is not set (the runtime is off) or out of memory. */
struct runtime *runtime_new(struct registry *r);
/* Cancels the transfers (before fetch_loop_free) and frees everything. NULL-safe. */
void runtime_free(struct runtime *rt);
/* REF is complete in the store as DIGEST (a tag's resolved manifest or index): have dockerd
 * hold it. Idempotent; a new DIGEST for the same REF (a moved tag) is pulled again. NULL-safe. */
void runtime_want(struct runtime *rt, const struct image_ref *ref, const char *digest);
/* For ready: REF's state (RUNTIME_OFF when rt is NULL) and, when failed, why in *error. */
enum runtime_report runtime_report(const struct runtime *rt, const struct image_ref *ref,
				   const char **error);
const char *runtime_report_name(enum runtime_report s);
/* Images per state, for the metrics. */
void runtime_counts(const struct runtime *rt, int counts[RUNTIME_REPORTS]);

/* evict.c: the disk budget: least recently used first, never pinned or in use */
struct evict;
/* DIGEST must stay. */
typedef void (*evict_keep_fn)(void *keep_arg, const char *digest);
/* The owner's answer to "which blobs are pinned": keep(keep_arg, digest) for each of them. */
typedef void (*evict_pins_fn)(void *arg, evict_keep_fn keep, void *keep_arg);
/* Scans the store; the budget is store.max_bytes or 80% of the free space. */
struct evict *evict_new(struct registry *r);
/* Until it is set, nothing is pinned. */
void evict_on_pins(struct evict *ev, evict_pins_fn fn, void *arg);
void evict_free(struct evict *ev);
/* A blob was stored: -1 when it must be dropped (unpinned and over the whole budget). */
int evict_stored(struct evict *ev, const char *digest, long long size);
/* Call before answering with a stored blob: records the access and holds it until done. */
void evict_serving(struct evict *ev, struct httpd_conn *conn, const char *digest);
long long evict_used(const struct evict *ev);
long long evict_budget(const struct evict *ev);

/* tags.c: tags/list, passed upstream, served from the last answer when the upstream fails */
void tags_serve(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req,
		struct upstream *up, const char *repo);

/* verify.c: `microscale-registry verify`: re-hash the store, quarantine what does not match */
int verify_main(int argc, char **argv);

/* control.c: /_microscale/v1/ready, /images, /prewarm */
void control_handle(struct registry *r, struct httpd_conn *conn, const struct httpd_req *req);

/* stats.c */
int stats_init(struct registry *r);
void stats_free(struct registry *r);
/* GET /metrics */
void stats_serve(struct registry *r, struct httpd_conn *conn);

/* api.c: routing and validation of every request */
void api_handle(struct httpd_conn *conn, const struct httpd_req *req, void *arg);

/* archive_common.c, archive_import.c, archive_export.c (the import's internals: import.h):
 * "microscale-registry import" loads docker-archive and OCI-archive tarballs into the store (all
 * verified before anything becomes visible); "microscale-registry export" writes cached images
 * as a docker-archive. */
struct archive_progress {
	const char *verb; /* "import", "export" */
	const char *file;
	long long total; /* bytes expected, 0 when unknown */
	long long done;
	int tty;      /* stderr is a terminal: one line, redrawn */
	double shown; /* when progress was last drawn or logged (CLOCK_MONOTONIC seconds) */
};
/* The options every offline command takes: -c/--config FILE, --root DIR (and -h/--help). */
struct archive_opts {
	const char *config; /* NULL: the defaults */
	const char *root;   /* NULL: the config's root */
};
#define ARCHIVE_OPTS_MAX 4 /* options of a command's own */
struct option;
/* getopt_long over the shared options and the command's own (EXTRA, ended by a zeroed one, and
 * SHORTOPTS): the shared ones go into *o; returns the next other option ('h' for --help, '?'
 * for an unknown one, optarg set), or -1 at the end. */
int archive_getopt(int argc, char **argv, const char *shortopts, const struct option *extra,
		   struct archive_opts *o);
/* Loads the config FILE (NULL: the defaults), sets up logging and opens the store of ROOT (NULL:
 * the config's root). An existing store's ROOT/tmp is left alone: a daemon may be writing in
 * it. -1 with err set. */
int archive_store_open(struct store *s, const char *config, const char *root, char *err,
		       size_t errlen);
void archive_progress_start(struct archive_progress *p, const char *verb, const char *file,
			    long long total);
void archive_progress_update(struct archive_progress *p, long long done);
/* Clears the terminal line; the caller logs the outcome. */
void archive_progress_end(struct archive_progress *p);
/* SIGINT, SIGTERM and SIGHUP then only set a flag, which archive_interrupted() returns (the
 * signal number), so that a long import or export stops between blocks and cleans up. */
void archive_catch_signals(void);
int archive_interrupted(void);
/* argv[0] is "import" / "export". Return the exit status: 0, 1 (failed), 2 (usage). */
int archive_import_main(int argc, char **argv);
int archive_export_main(int argc, char **argv);

#endif
