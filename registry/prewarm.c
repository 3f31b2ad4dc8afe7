/* prewarm: the images the cache keeps warm. Every listed image (pinned) and every image asked
 * for through the control API is tracked; a job resolves its tag, fetches the manifest (of an
 * index only the wanted platforms' manifests), then its config and layers through the same
 * one-fetch-per-blob pulls that clients use, at most prewarm.parallel blobs at once. Jobs run
 * at start, every interval (with jitter), on SIGHUP and on request; failures retry with backoff. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "ref.h"
#include "registry.h"

#define RETRY_MIN_S 2.0
#define RETRY_MAX_S 300.0
#define ONCE_MAX_ATTEMPTS 3

struct blob_task {
	STAILQ_ENTRY(blob_task) link; /* pw->queue */
	struct prewarm_image *img;
	char digest[DIGEST_STR_SIZE];
};

struct prewarm {
	struct registry *r;
	SLIST_HEAD(, prewarm_image) images;
	STAILQ_HEAD(, blob_task) queue; /* blobs waiting for a transfer slot */
	int in_flight;
	int once;   /* --prewarm-once: stop the loop when every listed image has settled */
	int status; /* for --prewarm-once: 0 when every listed image is ready */
	ev_timer interval, retry;
	ev_timer done;		   /* --prewarm-once: breaks the loop on its next turn */
	prewarm_ready_fn on_ready; /* the owner's: an image is complete in the store */
	void *on_ready_arg;
};

static const char *const state_names[] = {"queued", "pulling", "ready", "failed"};

const char *prewarm_state_name(enum prewarm_state s)
{
	return state_names[s];
}

static void image_set_state(struct prewarm_image *img, enum prewarm_state s)
{
	if (img->state != s)
		log_info("prewarm_state", "image=%s from=%s to=%s", img->name,
			 state_names[img->state], state_names[s]);
	img->state = s;
}

static void image_start(struct prewarm_image *img);

/* In --prewarm-once mode the loop ends when every listed image is ready or out of attempts. */
static void check_once_done(struct prewarm *pw)
{
	struct prewarm_image *img;
	int status = 0;

	if (!pw->once)
		return;
	SLIST_FOREACH (img, &pw->images, link) {
		if (!img->listed)
			continue;
		if (img->state != PREWARM_READY &&
		    (img->state != PREWARM_FAILED || img->attempts < ONCE_MAX_ATTEMPTS))
			return;
		if (img->state != PREWARM_READY)
			status = 1;
	}
	pw->status = status;
	/* Not ev_break here: when every image was already on disk (or the list is empty) this runs
	 * while the list loads, before ev_run, which would cancel the break and run forever. */
	ev_timer_start(pw->r->loop, &pw->done);
}

static void done_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void arm_retry(struct prewarm *pw)
{
	ev_tstamp next = 0;
	struct prewarm_image *img;

	SLIST_FOREACH (img, &pw->images, link)
		if (img->state == PREWARM_FAILED && !img->busy && (!next || img->retry_at < next))
			next = img->retry_at;
	ev_timer_stop(pw->r->loop, &pw->retry);
	if (next) {
		ev_timer_set(&pw->retry,
			     next > ev_now(pw->r->loop) ? next - ev_now(pw->r->loop) : 0, 0);
		ev_timer_start(pw->r->loop, &pw->retry);
	}
}

static void image_fail(struct prewarm_image *img, const char *why)
{
	static const struct backoff bo = {RETRY_MIN_S, RETRY_MAX_S, 0.25, NULL, NULL};

	img->busy = 0;
	img->attempts++;
	snprintf(img->error, sizeof(img->error), "%s", why);
	img->retry_at = ev_now(img->pw->r->loop) + backoff_delay(&bo, (unsigned)img->attempts);
	log_warn("prewarm_failed", "image=%s attempt=%d retry_in_s=%.0f error=\"%s\"", img->name,
		 img->attempts, img->retry_at - ev_now(img->pw->r->loop), why);
	image_set_state(img, PREWARM_FAILED);
	arm_retry(img->pw);
	check_once_done(img->pw);
}

static void image_ready(struct prewarm_image *img, const struct image_walk *w)
{
	img->busy = 0;
	img->attempts = 0;
	img->error[0] = '\0';
	log_info("prewarm_ready", "image=%s digest=%s layers=%d bytes=%lld", img->name, img->digest,
		 w->layers_total, w->bytes_total);
	image_set_state(img, PREWARM_READY);
	if (img->pw->on_ready)
		img->pw->on_ready(img->pw->on_ready_arg, img);
	check_once_done(img->pw);
}

static void pump(struct prewarm *pw);
static void image_advance(struct prewarm_image *img);

static void blob_done(void *arg, const char *err)
{
	struct blob_task *t = arg;
	struct prewarm_image *img = t->img;
	struct prewarm *pw = img->pw;

	pw->in_flight--;
	img->pending--;
	if (err && !img->blob_error[0])
		snprintf(img->blob_error, sizeof(img->blob_error), "blob %s: %s", t->digest, err);
	free(t);
	if (img->pending == 0)
		image_advance(img);
	pump(pw);
}

/* Starts queued blob fetches while fewer than prewarm.parallel run. */
static void pump(struct prewarm *pw)
{
	struct blob_task *t;

	while (!pw->r->stopping && pw->in_flight < pw->r->conf->prewarm_parallel &&
	       (t = STAILQ_FIRST(&pw->queue))) {
		struct blob_ask ask = {.repo = t->img->ref.repo, .digest = t->digest};

		STAILQ_REMOVE_HEAD(&pw->queue, link);
		ask.up = upstream_find(pw->r, t->img->ref.registry);
		pw->in_flight++;
		if (ask.up)
			transfer_fetch(pw->r, &ask, blob_done, t);
		else
			blob_done(t, "no upstream configured for this registry");
	}
}

static int queue_blob(struct prewarm_image *img, const char *digest)
{
	struct blob_task *t = calloc(1, sizeof(*t));
	struct prewarm *pw = img->pw;

	if (!t)
		return -1;
	t->img = img;
	snprintf(t->digest, sizeof(t->digest), "%s", digest);
	STAILQ_INSERT_TAIL(&pw->queue, t, link);
	img->pending++;
	return 0;
}

static void manifest_done(void *arg, const char *digest, const char *err);

static void fetch_manifest(struct prewarm_image *img, const char *reference)
{
	struct manifest_ask ask = {.repo = img->ref.repo, .reference = reference};

	ask.up = upstream_find(img->pw->r, img->ref.registry);
	if (!ask.up) {
		image_fail(img, "no upstream configured for this registry");
		return;
	}
	manifest_resolve(img->pw->r, &ask, manifest_done, img);
}

/* One step: what the store has decides what to fetch next. */
static void image_advance(struct prewarm_image *img)
{
	const char *one[2];
	struct image_walk w;
	size_t i;

	if (img->pw->r->stopping) {
		img->busy = 0;
		return;
	}
	if (img->blob_error[0]) {
		image_fail(img, img->blob_error);
		return;
	}
	if (image_walk(&img->pw->r->store, img->digest,
		       image_platforms(img->pw->r->conf->platforms, img->platform, one), &w) < 0) {
		image_fail(img, w.error);
		image_walk_free(&w);
		return;
	}
	img->layers_present = w.layers_present;
	img->layers_total = w.layers_total;
	img->bytes_present = w.bytes_present;
	img->bytes_total = w.bytes_total;
	if (w.missing_manifest[0]) {
		fetch_manifest(img, w.missing_manifest);
	} else if (w.complete) {
		image_ready(img, &w);
	} else {
		log_info("prewarm_progress", "image=%s layers=%d/%d bytes=%lld/%lld", img->name,
			 w.layers_present, w.layers_total, w.bytes_present, w.bytes_total);
		image_set_state(img, PREWARM_PULLING);
		for (i = 0; i < w.nblobs; i++)
			if (!w.blobs[i].present && queue_blob(img, w.blobs[i].digest) < 0)
				snprintf(img->blob_error, sizeof(img->blob_error), "out of memory");
		if (img->pending == 0) /* nothing could be queued */
			image_fail(img, img->blob_error[0] ? img->blob_error : "nothing to fetch");
		pump(img->pw);
	}
	image_walk_free(&w);
}

static void manifest_done(void *arg, const char *digest, const char *err)
{
	struct prewarm_image *img = arg;

	if (!digest) {
		image_fail(img, err);
		return;
	}
	if (!img->resolved) { /* the image's own reference, not a platform's manifest */
		if (img->digest[0] && strcmp(img->digest, digest) != 0)
			log_info("prewarm_moved", "image=%s from=%s to=%s", img->name, img->digest,
				 digest);
		snprintf(img->digest, sizeof(img->digest), "%s", digest);
		img->resolved = 1;
	}
	image_advance(img);
}

static void image_start(struct prewarm_image *img)
{
	if (img->busy)
		return;
	img->busy = 1;
	img->resolved = 0;
	img->blob_error[0] = '\0';
	if (img->state != PREWARM_READY)
		image_set_state(img, PREWARM_PULLING);
	fetch_manifest(img, ref_reference(&img->ref));
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct prewarm *pw = w->data;
	struct prewarm_image *img;

	(void)revents;
	SLIST_FOREACH (img, &pw->images, link)
		if (img->state == PREWARM_FAILED && !img->busy && img->retry_at <= ev_now(loop) &&
		    !(pw->once && img->attempts >= ONCE_MAX_ATTEMPTS))
			image_start(img);
	arm_retry(pw);
}

/* Every interval, with up to 10% jitter either way so that a fleet of nodes started together
 * does not hit the upstream in step. */
static void arm_interval(struct prewarm *pw)
{
	double base = (double)pw->r->conf->prewarm_interval_s;

	ev_timer_stop(pw->r->loop, &pw->interval);
	ev_timer_set(&pw->interval, base * (0.9 + 0.2 * rand() / RAND_MAX), 0);
	ev_timer_start(pw->r->loop, &pw->interval);
}

static void interval_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct prewarm *pw = w->data;

	(void)loop;
	(void)revents;
	prewarm_all(pw);
	arm_interval(pw);
}

struct prewarm *prewarm_new(struct registry *r, int once)
{
	struct prewarm *pw = calloc(1, sizeof(*pw));

	if (!pw)
		return NULL;
	pw->r = r;
	pw->once = once;
	pw->status = 1;
	STAILQ_INIT(&pw->queue);
	SLIST_INIT(&pw->images);
	ev_timer_init(&pw->retry, retry_cb, 0, 0);
	pw->retry.data = pw;
	ev_timer_init(&pw->interval, interval_cb, 0, 0);
	pw->interval.data = pw;
	ev_timer_init(&pw->done, done_cb, 0, 0);
	if (!once)
		arm_interval(pw);
	return pw;
}

/* After the pulls were aborted (their callbacks have run): nothing is in flight any more. */
void prewarm_free(struct prewarm *pw)
{
	struct prewarm_image *img;
	struct blob_task *t;

	if (!pw)
		return;
	ev_timer_stop(pw->r->loop, &pw->retry);
	ev_timer_stop(pw->r->loop, &pw->interval);
	ev_timer_stop(pw->r->loop, &pw->done);
	while ((t = STAILQ_FIRST(&pw->queue))) {
		STAILQ_REMOVE_HEAD(&pw->queue, link);
		free(t);
	}
	while ((img = SLIST_FIRST(&pw->images))) {
		SLIST_REMOVE_HEAD(&pw->images, link);
		free(img);
	}
	free(pw);
}

void prewarm_on_ready(struct prewarm *pw, prewarm_ready_fn fn, void *arg)
{
	pw->on_ready = fn;
	pw->on_ready_arg = arg;
}

int prewarm_status(const struct prewarm *pw)
{
	return pw->status;
}

struct prewarm_image *prewarm_images(struct prewarm *pw)
{
	return SLIST_FIRST(&pw->images);
}

/* What eviction must keep: each pinned image's config and layers, by what it resolved to last. */
void prewarm_pinned_blobs(struct prewarm *pw, void (*fn)(void *arg, const char *digest), void *arg)
{
	struct prewarm_image *img;
	const char *one[2];
	struct image_walk w;
	size_t i;

	SLIST_FOREACH (img, &pw->images, link) {
		if (!img->pinned || !img->digest[0])
			continue;
		if (image_walk(&pw->r->store, img->digest,
			       image_platforms(pw->r->conf->platforms, img->platform, one),
			       &w) == 0)
			for (i = 0; i < w.nblobs; i++)
				fn(arg, w.blobs[i].digest);
		image_walk_free(&w);
	}
}

struct prewarm_image *prewarm_find(struct prewarm *pw, const struct image_ref *ref)
{
	struct prewarm_image *img;

	SLIST_FOREACH (img, &pw->images, link)
		if (strcmp(img->ref.registry, ref->registry) == 0 &&
		    strcmp(img->ref.repo, ref->repo) == 0 && strcmp(img->ref.tag, ref->tag) == 0 &&
		    strcmp(img->ref.digest, ref->digest) == 0)
			return img;
	return NULL;
}

void prewarm_tag_moved(struct prewarm *pw, const struct image_ref *ref, const char *digest)
{
	struct prewarm_image *img;

	SLIST_FOREACH (img, &pw->images, link)
		if (!img->ref.digest[0] && strcmp(img->ref.registry, ref->registry) == 0 &&
		    strcmp(img->ref.repo, ref->repo) == 0 && strcmp(img->ref.tag, ref->tag) == 0 &&
		    (img->listed || img->requested) && !img->busy &&
		    strcmp(img->digest, digest) != 0)
			image_start(img); /* a running job follows the tag itself */
}

static struct prewarm_image *image_track(struct prewarm *pw, const struct image_ref *ref,
					 const char *platform)
{
	struct prewarm_image *img = prewarm_find(pw, ref);

	if (img)
		return img;
	img = calloc(1, sizeof(*img));
	if (!img)
		return NULL;
	img->pw = pw;
	img->ref = *ref;
	ref_format(ref, img->name, sizeof(img->name));
	snprintf(img->platform, sizeof(img->platform), "%s", platform ? platform : "");
	SLIST_INSERT_HEAD(&pw->images, img, link);
	return img;
}

struct prewarm_image *prewarm_request(struct prewarm *pw, const struct image_ref *ref, int pin)
{
	struct prewarm_image *img = image_track(pw, ref, NULL);

	if (!img)
		return NULL;
	img->requested = 1;
	img->api_pinned |= pin;
	img->pinned = img->listed || img->api_pinned;
	if (img->state != PREWARM_READY && !img->busy)
		image_start(img);
	else if (img->state == PREWARM_READY && !img->busy && pw->on_ready) /* asked again */
		pw->on_ready(pw->on_ready_arg, img);
	return img;
}

void prewarm_all(struct prewarm *pw)
{
	struct prewarm_image *img;

	SLIST_FOREACH (img, &pw->images, link)
		if (img->listed || img->requested)
			image_start(img);
}

/* (Re)reads the list: new entries are tracked and pinned, entries gone are unpinned (their
 * content becomes evictable), and every listed image is prewarmed now. On error nothing
 * changes. */
int prewarm_load(struct prewarm *pw, const char *file, char *err, size_t errlen)
{
	struct prewarm_entry *v;
	struct prewarm_image *img;
	size_t n, i;

	if (prewarm_list_read(file, &v, &n, err, errlen) < 0)
		return -1;
	SLIST_FOREACH (img, &pw->images, link)
		img->listed = 0;
	for (i = 0; i < n; i++) {
		img = image_track(pw, &v[i].ref, v[i].platform);
		if (!img)
			continue;
		img->listed = 1;
		snprintf(img->platform, sizeof(img->platform), "%s", v[i].platform);
	}
	free(v);
	SLIST_FOREACH (img, &pw->images, link)
		img->pinned = img->listed || img->api_pinned;
	log_info("prewarm_list", "file=%s images=%zu", file, n);
	prewarm_all(pw);
	check_once_done(pw);
	return 0;
}
