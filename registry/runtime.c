/* runtime: prewarmed means runnable. A layer in the store is not yet an image Docker can start
 * (Mesos' Docker containerizer pulls an absent image while the task is staged, unpacking every
 * layer), so once an image is complete in the store the cache asks the node's dockerd for it:
 *
 *   GET  /images/NAME/json                       present at the store's digest? (RepoDigests)
 *   POST /images/create?fromImage=…&tag=…        else pull it, following the progress stream
 *
 * over the unix socket runtime.docker_socket (libcurl's CURLOPT_UNIX_SOCKET_PATH, through
 * fetch). dockerd pulls through its registry mirror, which is this cache, so the bytes come
 * from the store at local speed. The names are dockerapi.c's.
 *
 * Rules:
 * - Checking comes first, always: a restarted cache re-pulls nothing dockerd already holds.
 * - An image is wanted at a digest (a tag's resolved manifest or index). A new digest for the
 *   same reference (the tag moved and the cache revalidated it) is pulled again; one arriving
 *   while a transfer runs waits for it to end, then starts over.
 * - At most runtime.parallel transfers at once; the rest wait in a queue, in order.
 * - A failure never touches the store side. It is retried with exponential backoff (2 s
 *   doubling to 60 s, ±25% jitter) for as long as the image is wanted: the socket is local and
 *   a refused connect costs nothing, and dockerd coming back should be noticed soon.
 * - One log line per episode: an unreachable socket is logged once until dockerd answers again,
 *   an image's failure once until its error changes or it succeeds.
 * - Bounded: RUNTIME_MAX_IMAGES images, one transfer each, a progress line at most
 *   DOCKERAPI_LINE_MAX, error bodies cut at ERROR_BODY_MAX, inspect answers at INSPECT_MAX_BODY.
 * - A settled image wanted again after RECHECK_S is checked again (someone may have removed it
 *   from Docker); it stays "present" while that check runs. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "backoff.h"
#include "registry.h"

#define RUNTIME_MAX_IMAGES 1024
#define RETRY_MIN_S 2.0
#define RETRY_MAX_S 60.0
#define RECHECK_S 30.0
#define INSPECT_MAX_BODY (1024 * 1024)
#define ERROR_BODY_MAX 4096
#define CONNECT_TIMEOUT_MS 5000L
#define INSPECT_TIMEOUT_MS 30000L
#define PULL_TIMEOUT_MS (3600L * 1000) /* a pull through the local cache; an hour is plenty */
#define PULL_LOW_SPEED_S 300L	       /* dockerd writes progress while it downloads and unpacks */
#define WHY_MAX 1600		       /* a message being made; kept cut to the image's error[] */

/* What the runtime step is doing for one image. Changed by rt_set() alone. */
enum rt_state {
	RT_IDLE,     /* nothing to do: settled (in Docker when confirmed is digest) */
	RT_QUEUED,   /* in rt->queue, waiting for one of runtime.parallel slots */
	RT_CHECKING, /* GET /images/NAME/json in flight */
	RT_PULLING,  /* POST /images/create in flight, its progress stream being read */
	RT_WAITING,  /* the last attempt failed (error says why); queued again at retry_at */
	RT_STATES
};
static const char *const rt_state_names[RT_STATES] = {"idle", "queued", "checking", "pulling",
						      "waiting"};
/* The transitions rt_set() allows, one bit per target state. */
static const unsigned rt_allowed[RT_STATES] = {
    [RT_IDLE] = 1u << RT_QUEUED,
    [RT_QUEUED] = 1u << RT_CHECKING,
    [RT_CHECKING] = 1u << RT_IDLE | 1u << RT_PULLING | 1u << RT_WAITING | 1u << RT_QUEUED,
    [RT_PULLING] = 1u << RT_IDLE | 1u << RT_WAITING | 1u << RT_QUEUED,
    [RT_WAITING] = 1u << RT_QUEUED,
};

static const char *const report_names[] = {"present", "pulling", "absent", "failed", "off"};

struct rt_xfer;

struct rt_image {
	TAILQ_ENTRY(rt_image) all;   /* rt->images */
	TAILQ_ENTRY(rt_image) queue; /* rt->queue, while RT_QUEUED */
	struct runtime *rt;
	struct image_ref ref;
	char refname[REF_HOST_MAX + REF_NAME_MAX + REF_TAG_MAX + REF_DIGEST_MAX + 8]; /* for logs */
	struct dockerapi_names names;
	char digest[DIGEST_STR_SIZE];	 /* the store's: what Docker should hold */
	char confirmed[DIGEST_STR_SIZE]; /* what Docker was last seen holding; "" when not */
	enum rt_state state;
	char error[512]; /* why the last attempt failed; "" after a success */
	int attempts;	 /* failed in a row */
	int again;	 /* a new digest came while a transfer ran: start over when it ends */
	ev_tstamp retry_at, checked_at, pull_started;
	struct rt_xfer *x; /* the transfer in flight, or NULL */
};

/* One request to dockerd; made by xfer_start() and freed by xfer_free() alone. */
struct rt_xfer {
	struct rt_image *img;
	struct fetch *f;
	long status;		      /* of the pull's response, once its headers are in */
	char errbody[ERROR_BODY_MAX]; /* the start of a non-2xx pull answer */
	size_t errlen;
	struct dockerapi_stream stream; /* the 2xx pull answer */
};

struct runtime {
	struct registry *r;
	const char *socket;
	int parallel, running;
	size_t nimages;
	TAILQ_HEAD(, rt_image) images;
	TAILQ_HEAD(, rt_image) queue;
	ev_timer retry;
	int down; /* the socket could not be reached: logged once, until dockerd answers again */
	ev_tstamp down_since;
	int full_logged; /* RUNTIME_MAX_IMAGES reached, said once */
};

static void rt_set(struct rt_image *e, enum rt_state to)
{
	assert(rt_allowed[e->state] & (1u << to));
	log_debug("runtime_state", "image=%s from=%s to=%s", e->refname, rt_state_names[e->state],
		  rt_state_names[to]);
	e->state = to;
}

static enum runtime_report image_report(const struct rt_image *e)
{
	if (e->state == RT_PULLING)
		return RUNTIME_PULLING;
	if (e->state == RT_WAITING)
		return RUNTIME_FAILED;
	if (e->confirmed[0] && strcmp(e->confirmed, e->digest) == 0)
		return RUNTIME_PRESENT; /* also while a re-check runs */
	if (e->state == RT_QUEUED || e->state == RT_CHECKING)
		return RUNTIME_PULLING;
	return RUNTIME_ABSENT;
}

static void pump(struct runtime *rt);

static void enqueue(struct rt_image *e)
{
	rt_set(e, RT_QUEUED);
	TAILQ_INSERT_TAIL(&e->rt->queue, e, queue);
	pump(e->rt);
}

/* The earliest retry among the failed images, or none. */
static void arm_retry(struct runtime *rt)
{
	struct ev_loop *loop = rt->r->loop;
	ev_tstamp next = 0;
	struct rt_image *e;

	for (e = TAILQ_FIRST(&rt->images); e; e = TAILQ_NEXT(e, all))
		if (e->state == RT_WAITING && (!next || e->retry_at < next))
			next = e->retry_at;
	ev_timer_stop(loop, &rt->retry);
	if (next) {
		ev_timer_set(&rt->retry, next > ev_now(loop) ? next - ev_now(loop) : 0, 0);
		ev_timer_start(loop, &rt->retry);
	}
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct runtime *rt = w->data;
	struct rt_image *e;

	(void)revents;
	for (e = TAILQ_FIRST(&rt->images); e; e = TAILQ_NEXT(e, all))
		if (e->state == RT_WAITING && e->retry_at <= ev_now(loop))
			enqueue(e);
	arm_retry(rt);
}

/* --- transfers --- */

/* The one destructor: the fetch is fetch's (it frees it after on_done, or on fetch_cancel). A
 * done hook may have started the image's next transfer already (settle: a newer digest), so
 * the image's pointer is cleared only when it is still this one. */
static void xfer_free(struct rt_xfer *x)
{
	if (x->img->x == x)
		x->img->x = NULL;
	x->img->rt->running--;
	free(x);
}

/* dockerd answered something: an outage, if there was one, is over. */
static void reachable(struct runtime *rt)
{
	if (!rt->down)
		return;
	rt->down = 0;
	log_info("runtime_reachable", "socket=%s down_s=%.1f", rt->socket,
		 ev_now(rt->r->loop) - rt->down_since);
}

/* Settles an image after a transfer: again when a new digest came meanwhile. */
static void settle(struct rt_image *e, enum rt_state to)
{
	if (e->again) {
		e->again = 0;
		e->attempts = 0;
		enqueue(e);
		return;
	}
	rt_set(e, to);
	if (to == RT_WAITING)
		arm_retry(e->rt);
}

static void image_present(struct rt_image *e, int pulled, const char *pulled_digest)
{
	ev_tstamp now = ev_now(e->rt->r->loop);

	if (pulled)
		metrics_add(e->rt->r->stats.runtime_pulls, 1, "ok");
	if (pulled || e->attempts || strcmp(e->confirmed, e->digest) != 0)
		log_info("runtime_present",
			 "image=%s digest=%s pulled=%d seconds=%.1f attempts=%d docker_digest=%s",
			 e->refname, e->digest, pulled, pulled ? now - e->pull_started : 0.0,
			 e->attempts + 1, pulled_digest && pulled_digest[0] ? pulled_digest : "-");
	snprintf(e->confirmed, sizeof(e->confirmed), "%s", e->digest);
	e->checked_at = now;
	e->attempts = 0;
	e->error[0] = '\0';
	settle(e, RT_IDLE);
}

/* kind: the errors metric's label ("unreachable", "status", "stream", "cut", "internal"). */
static void image_failed(struct rt_image *e, const char *kind, int pull, int quiet, const char *why)
{
	static const struct backoff bo = {RETRY_MIN_S, RETRY_MAX_S, 0.25, NULL, NULL};
	ev_tstamp now = ev_now(e->rt->r->loop);
	int same = strncmp(e->error, why, sizeof(e->error) - 1) == 0;
	size_t n;

	metrics_add(e->rt->r->stats.runtime_errors, 1, kind);
	if (pull)
		metrics_add(e->rt->r->stats.runtime_pulls, 1, "failed");
	e->attempts++;
	e->retry_at = now + backoff_delay(&bo, (unsigned)e->attempts);
	e->checked_at = now;
	if (!quiet && (e->attempts == 1 || !same))
		log_warn("runtime_failed",
			 "image=%s digest=%s attempt=%d retry_in_s=%.0f error=\"%s\"", e->refname,
			 e->digest, e->attempts, e->retry_at - now, why);
	else
		log_debug("runtime_failed", "image=%s attempt=%d retry_in_s=%.0f error=\"%s\"",
			  e->refname, e->attempts, e->retry_at - now, why);
	n = strnlen(why, sizeof(e->error) - 1);
	memcpy(e->error, why, n);
	e->error[n] = '\0';
	settle(e, RT_WAITING);
}

/* No connection: the socket is absent, refused or forbidden (errno says which). Said once per
 * outage; each image's failure is then quiet. */
static void image_unreachable(struct rt_image *e, struct fetch *f, int pull)
{
	struct runtime *rt = e->rt;
	const char *os = strerror(fetch_os_errno(f));
	char why[WHY_MAX];

	snprintf(why, sizeof(why), "docker socket %s: %s", rt->socket, os);
	if (!rt->down) {
		rt->down = 1;
		rt->down_since = ev_now(rt->r->loop);
		log_warn("runtime_unreachable", "socket=%s error=\"%s\"", rt->socket, os);
	}
	image_failed(e, "unreachable", pull, 1, why);
}

static int xfer_start(struct rt_image *e, int pull);

static void pull_done(struct fetch *f, int ok, const char *err, void *arg)
{
	struct rt_xfer *x = arg;
	struct rt_image *e = x->img;
	struct runtime *rt = e->rt;
	long status = fetch_status(f);
	char why[WHY_MAX], msg[512];

	if (status || x->status)
		reachable(rt);
	if (x->stream.failed) {
		image_failed(e, "stream", 1, 0, x->stream.error);
	} else if (!ok && !status && !x->status && fetch_os_errno(f)) {
		image_unreachable(e, f, 1);
	} else if (!ok) {
		snprintf(why, sizeof(why), "dockerd cut the pull short: %s", err ? err : "?");
		image_failed(e, "cut", 1, 0, why);
	} else if (status < 200 || status > 299) {
		dockerapi_message(x->errbody, x->errlen, msg, sizeof(msg));
		snprintf(why, sizeof(why), "dockerd answered %ld to POST /images/create: %s",
			 status, msg);
		image_failed(e, "status", 1, 0, why);
	} else if (dockerapi_stream_end(&x->stream) < 0) {
		image_failed(e, "stream", 1, 0, x->stream.error);
	} else {
		image_present(e, 1, x->stream.digest);
	}
	xfer_free(x);
	pump(rt);
}

static int pull_response(struct fetch *f, long status, void *arg)
{
	struct rt_xfer *x = arg;

	(void)f;
	x->status = status;
	return 0;
}

static int pull_data(struct fetch *f, const char *buf, size_t len, void *arg)
{
	struct rt_xfer *x = arg;
	size_t room = sizeof(x->errbody) - x->errlen;

	(void)f;
	if (x->status >= 200 && x->status <= 299)
		return dockerapi_stream_feed(&x->stream, buf, len);
	/* an error answer: its start says why, the rest is dropped */
	memcpy(x->errbody + x->errlen, buf, len < room ? len : room);
	x->errlen += len < room ? len : room;
	return 0;
}

/* The inspect answered (or not): present, absent (pull it, in the same slot), or a failure. */
static void inspect_done(struct fetch *f, int ok, const char *err, void *arg)
{
	struct rt_xfer *x = arg;
	struct rt_image *e = x->img;
	struct runtime *rt = e->rt;
	long status = fetch_status(f);
	const char *body;
	char why[WHY_MAX], msg[512];
	size_t len;
	int has = 0, pull = 0;

	if (status)
		reachable(rt);
	body = fetch_body(f, &len);
	if (ok && status == 200)
		has = e->ref.digest[0] ? 1 : dockerapi_inspect_has(body, len, e->digest);
	if (!ok && !status && fetch_os_errno(f)) {
		image_unreachable(e, f, 0);
	} else if (!ok) {
		snprintf(why, sizeof(why), "dockerd: GET /images/%s/json: %s", e->names.name,
			 err ? err : "?");
		image_failed(e, "cut", 0, 0, why);
	} else if (status == 200 && has < 0) {
		snprintf(why, sizeof(why), "dockerd's answer to GET /images/%s/json is no image",
			 e->names.name);
		image_failed(e, "status", 0, 0, why);
	} else if (status == 200 && has) {
		image_present(e, 0, NULL);
	} else if (status == 200 || status == 404) {
		pull = 1;
	} else {
		dockerapi_message(body, len, msg, sizeof(msg));
		snprintf(why, sizeof(why), "dockerd answered %ld to GET /images/%s/json: %s",
			 status, e->names.name, msg);
		image_failed(e, "status", 0, 0, why);
	}
	xfer_free(x);
	if (pull && e->again) { /* a newer digest came: check that one instead */
		e->again = 0;
		e->attempts = 0;
		enqueue(e);
	} else if (pull) {
		rt_set(e, RT_PULLING);
		e->pull_started = ev_now(rt->r->loop);
		log_info("runtime_pull", "image=%s digest=%s from_image=%s tag=%s", e->refname,
			 e->digest, e->names.image, e->names.tag[0] ? e->names.tag : "-");
		if (xfer_start(e, 1) < 0)
			image_failed(e, "internal", 1, 0, "cannot start a request to dockerd");
	}
	pump(rt);
}

static int xfer_start(struct rt_image *e, int pull)
{
	static const struct fetch_hooks inspect_hooks = {.on_done = inspect_done};
	static const struct fetch_hooks pull_hooks = {
	    .on_response = pull_response, .on_data = pull_data, .on_done = pull_done};
	struct runtime *rt = e->rt;
	char url[DOCKERAPI_URL_MAX];
	struct fetch_req req = {.url = url,
				.unix_socket = rt->socket,
				.connect_timeout_ms = CONNECT_TIMEOUT_MS,
				.timeout_ms = INSPECT_TIMEOUT_MS,
				.max_body = INSPECT_MAX_BODY};
	struct rt_xfer *x;

	if ((pull ? dockerapi_create_url(&e->names, url, sizeof(url))
		  : dockerapi_inspect_url(&e->names, url, sizeof(url))) < 0)
		return -1;
	if (pull) {
		req.method = "POST";
		req.timeout_ms = PULL_TIMEOUT_MS;
		req.low_speed_time_s = PULL_LOW_SPEED_S;
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return -1;
	x->img = e;
	dockerapi_stream_init(&x->stream);
	x->f = fetch_start(rt->r->fl, &req, pull ? &pull_hooks : &inspect_hooks, x);
	if (!x->f) {
		free(x);
		return -1;
	}
	e->x = x;
	rt->running++;
	return 0;
}

/* Starts checks while fewer than runtime.parallel transfers run. */
static void pump(struct runtime *rt)
{
	struct rt_image *e;

	while (!rt->r->stopping && rt->running < rt->parallel && (e = TAILQ_FIRST(&rt->queue))) {
		TAILQ_REMOVE(&rt->queue, e, queue);
		rt_set(e, RT_CHECKING);
		if (xfer_start(e, 0) < 0)
			image_failed(e, "internal", 0, 0, "cannot start a request to dockerd");
	}
}

/* --- images --- */

static int same_ref(const struct image_ref *a, const struct image_ref *b)
{
	return strcmp(a->registry, b->registry) == 0 && strcmp(a->repo, b->repo) == 0 &&
	       strcmp(a->tag, b->tag) == 0 && strcmp(a->digest, b->digest) == 0;
}

static struct rt_image *image_find(const struct runtime *rt, const struct image_ref *ref)
{
	struct rt_image *e;

	for (e = TAILQ_FIRST(&rt->images); e; e = TAILQ_NEXT(e, all))
		if (same_ref(&e->ref, ref))
			return e;
	return NULL;
}

static struct rt_image *image_track(struct runtime *rt, const struct image_ref *ref)
{
	struct rt_image *e;

	if (rt->nimages >= RUNTIME_MAX_IMAGES) {
		if (!rt->full_logged)
			log_error("runtime_full",
				  "images=%d error=\"no more images are put into "
				  "Docker until the cache restarts\"",
				  RUNTIME_MAX_IMAGES);
		rt->full_logged = 1;
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->rt = rt;
	e->ref = *ref;
	ref_format(ref, e->refname, sizeof(e->refname));
	if (dockerapi_names(ref, &e->names) < 0) {
		log_error("runtime_want", "image=%s error=\"no Docker name for it\"", e->refname);
		free(e);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&rt->images, e, all);
	rt->nimages++;
	return e;
}

void runtime_want(struct runtime *rt, const struct image_ref *ref, const char *digest)
{
	struct rt_image *e;

	if (!rt || rt->r->stopping || digest_check(digest) != 0)
		return;
	e = image_find(rt, ref);
	if (!e && !(e = image_track(rt, ref)))
		return;
	if (strcmp(e->digest, digest) == 0) {
		if (e->state == RT_IDLE && ev_now(rt->r->loop) - e->checked_at >= RECHECK_S)
			enqueue(e);
		return;
	}
	snprintf(e->digest, sizeof(e->digest), "%s", digest);
	e->attempts = 0;
	if (e->x)
		e->again = 1;
	else if (e->state == RT_IDLE || e->state == RT_WAITING)
		enqueue(e); /* a queued one keeps its place, with the new digest */
}

enum runtime_report runtime_report(const struct runtime *rt, const struct image_ref *ref,
				   const char **error)
{
	const struct rt_image *e = rt ? image_find(rt, ref) : NULL;
	enum runtime_report s = !rt ? RUNTIME_OFF : e ? image_report(e) : RUNTIME_ABSENT;

	*error = s == RUNTIME_FAILED ? e->error : NULL;
	return s;
}

const char *runtime_report_name(enum runtime_report s)
{
	return report_names[s];
}

void runtime_counts(const struct runtime *rt, int counts[RUNTIME_REPORTS])
{
	const struct rt_image *e;

	memset(counts, 0, RUNTIME_REPORTS * sizeof(*counts));
	if (!rt)
		return;
	for (e = TAILQ_FIRST(&rt->images); e; e = TAILQ_NEXT(e, all))
		counts[image_report(e)]++;
}

struct runtime *runtime_new(struct registry *r)
{
	struct runtime *rt;

	if (!r->conf->docker_socket)
		return NULL;
	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return NULL;
	rt->r = r;
	rt->socket = r->conf->docker_socket;
	rt->parallel = r->conf->runtime_parallel;
	TAILQ_INIT(&rt->images);
	TAILQ_INIT(&rt->queue);
	ev_timer_init(&rt->retry, retry_cb, 0, 0);
	rt->retry.data = rt;
	log_info("runtime", "docker_socket=%s parallel=%d", rt->socket, rt->parallel);
	return rt;
}

/* Order: the timer, then each image's transfer (fetch_cancel: no hook runs after it; the fetch
 * itself is reaped by fetch_loop_free, which must come after), then the image. */
void runtime_free(struct runtime *rt)
{
	struct rt_image *e;

	if (!rt)
		return;
	ev_timer_stop(rt->r->loop, &rt->retry);
	while ((e = TAILQ_FIRST(&rt->images))) {
		TAILQ_REMOVE(&rt->images, e, all);
		if (e->x) {
			fetch_cancel(e->x->f);
			xfer_free(e->x);
		}
		free(e);
	}
	free(rt);
}
