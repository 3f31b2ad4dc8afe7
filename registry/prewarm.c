/* prewarm: the images the cache keeps warm. Every listed image (pinned) and every image asked
 * for through the control API is tracked (prewarm_table.c says which, and how many); a job
 * resolves its tag, fetches the manifest (of an index only the wanted platforms' manifests),
 * then its config and layers through the same one-fetch-per-blob pulls that clients use, at
 * most prewarm.parallel blobs at once. Jobs run at start, every interval (with jitter), on
 * SIGHUP and on request.
 *
 * Failures retry with backoff, each image on its own timer (libev keeps them in a heap), so a
 * failure costs that image alone, however many are tracked. Listed images, and images that were
 * complete once, are retried for ever. An image asked for through the API that was never had
 * is given up after prewarm.request_attempts failures in a row: it stays "failed" for FORGET_S,
 * holding its place in the table so that the same requests cannot start it over at once, and
 * is then forgotten. So what requests can make the daemon fetch is bounded: at most
 * max_requested images, request_attempts tries each, per FORGET_S and more. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "ref.h"
#include "registry.h"

#define RETRY_MIN_S 2.0
#define RETRY_MAX_S 300.0
#define ONCE_MAX_ATTEMPTS 3
#define FORGET_S 300.0 /* a given-up image is kept, failed, this long (the longest retry) */

struct blob_task {
	STAILQ_ENTRY(blob_task) link; /* pw->queue */
	struct prewarm_image *img;
	char digest[DIGEST_STR_SIZE];
};

struct prewarm {
	struct registry *r;
	struct prewarm_table table;
	STAILQ_HEAD(, blob_task) queue; /* blobs waiting for a transfer slot */
	int in_flight;
	int once;   /* --prewarm-once: stop the loop when every listed image has settled */
	int status; /* for --prewarm-once: 0 when every listed image is ready */
	ev_timer interval;
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

/* In --prewarm-once mode the loop ends when every listed image is ready or out of attempts.
 * The walk is that mode's alone: it serves nobody, so only the list's images are tracked, and
 * each settles a few times at most. */
static void check_once_done(struct prewarm *pw)
{
	struct prewarm_image *img;
	int status = 0;

	if (!pw->once)
		return;
	LIST_FOREACH (img, &pw->table.all, link) {
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

static void arm_timer(struct prewarm_image *img, double after_s)
{
	ev_timer_stop(img->pw->r->loop, &img->timer);
	ev_timer_set(&img->timer, after_s, 0);
	ev_timer_start(img->pw->r->loop, &img->timer);
}

/* Only what the API asked for and nobody ever had: the list's images are the operator's, and an
 * image that was complete once exists (an upstream outage must not unpin it). */
static int gives_up(const struct prewarm_image *img)
{
	return img->requested && !img->listed && !img->was_ready &&
	       img->attempts >= img->pw->r->conf->prewarm_request_attempts;
}

/* The job ended in failure: retry after the backoff, or give up. IMG may be gone afterwards. */
static void image_fail(struct prewarm_image *img, const char *why)
{
	static const struct backoff bo = {RETRY_MIN_S, RETRY_MAX_S, 0.25, NULL, NULL};
	struct prewarm *pw = img->pw;
	double delay;

	img->busy = 0;
	img->attempts++;
	snprintf(img->error, sizeof(img->error), "%s", why);
	image_set_state(img, PREWARM_FAILED);
	if (gives_up(img)) {
		img->gave_up = 1;
		snprintf(img->error, sizeof(img->error), "gave up after %d attempts: %s",
			 img->attempts, why);
		log_warn("prewarm_gave_up", "image=%s attempts=%d forget_in_s=%.0f error=\"%s\"",
			 img->name, img->attempts, FORGET_S, why);
		arm_timer(img, FORGET_S);
	} else if (pw->once && img->attempts >= ONCE_MAX_ATTEMPTS) {
		log_warn("prewarm_failed", "image=%s attempt=%d retry=no error=\"%s\"", img->name,
			 img->attempts, why);
	} else {
		delay = backoff_delay(&bo, (unsigned)img->attempts);
		log_warn("prewarm_failed", "image=%s attempt=%d retry_in_s=%.0f error=\"%s\"",
			 img->name, img->attempts, delay, why);
		arm_timer(img, delay);
	}
	check_once_done(pw);
	prewarm_table_review(&pw->table, img);
}

/* IMG may be gone afterwards. */
static void image_ready(struct prewarm_image *img, const struct image_walk *w)
{
	struct prewarm *pw = img->pw;

	img->busy = 0;
	img->attempts = 0;
	img->was_ready = 1;
	img->error[0] = '\0';
	log_info("prewarm_ready", "image=%s digest=%s layers=%d bytes=%lld", img->name, img->digest,
		 w->layers_total, w->bytes_total);
	image_set_state(img, PREWARM_READY);
	if (pw->on_ready)
		pw->on_ready(pw->on_ready_arg, img);
	check_once_done(pw);
	prewarm_table_review(&pw->table, img);
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

/* One step: what the store has decides what to fetch next. IMG may be gone afterwards. */
static void image_advance(struct prewarm_image *img)
{
	struct prewarm *pw = img->pw;
	const char *one[2];
	struct image_walk w;
	size_t i;

	if (pw->r->stopping) {
		img->busy = 0;
		return;
	}
	if (img->blob_error[0]) {
		image_fail(img, img->blob_error);
		return;
	}
	if (image_walk(&pw->r->store, img->digest,
		       image_platforms(pw->r->conf->platforms, img->platform, one), &w) < 0) {
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
		pump(pw);
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

/* A job for IMG unless one runs. Its retry waits no longer; a given-up image (listed since, or
 * its tag seen to move) starts over. IMG is listed or requested, so it stays tracked. */
static void image_start(struct prewarm_image *img)
{
	if (img->busy)
		return;
	ev_timer_stop(img->pw->r->loop, &img->timer);
	if (img->gave_up) {
		img->gave_up = 0;
		img->attempts = 0;
	}
	img->busy = 1;
	img->resolved = 0;
	img->blob_error[0] = '\0';
	prewarm_table_review(&img->pw->table, img);
	if (img->state != PREWARM_READY)
		image_set_state(img, PREWARM_PULLING);
	fetch_manifest(img, ref_reference(&img->ref));
}

/* IMG's own timer: its retry is due, or, given up, its time to be forgotten. */
static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct prewarm_image *img = w->data;

	(void)loop;
	(void)revents;
	if (img->gave_up)
		prewarm_table_forget(&img->pw->table, img);
	else
		image_start(img);
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
	if (prewarm_table_init(&pw->table, r->loop, pw, r->conf->prewarm_max_requested, timer_cb) <
	    0) {
		free(pw);
		return NULL;
	}
	pw->r = r;
	pw->once = once;
	pw->status = 1;
	STAILQ_INIT(&pw->queue);
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
	struct blob_task *t;

	if (!pw)
		return;
	ev_timer_stop(pw->r->loop, &pw->interval);
	ev_timer_stop(pw->r->loop, &pw->done);
	while ((t = STAILQ_FIRST(&pw->queue))) {
		STAILQ_REMOVE_HEAD(&pw->queue, link);
		free(t);
	}
	prewarm_table_clear(&pw->table); /* stops each image's timer */
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
	return prewarm_table_first(&pw->table);
}

struct prewarm_image *prewarm_next(const struct prewarm_image *img)
{
	return LIST_NEXT(img, link);
}

/* What eviction must keep: each pinned image's config and layers, by what it resolved to last. */
void prewarm_pinned_blobs(struct prewarm *pw, void (*fn)(void *arg, const char *digest), void *arg)
{
	struct prewarm_image *img;
	const char *one[2];
	struct image_walk w;
	size_t i;

	LIST_FOREACH (img, &pw->table.all, link) {
		if (!img->pinned || !img->digest[0])
			continue;
		if (image_walk(&pw->r->store, img->digest,
			       image_platforms(pw->r->conf->platforms, img->platform, one),
			       &w) == 0)
			for (i = 0; i < w.nblobs + w.nmanifests; i++)
				fn(arg,
				   i < w.nblobs ? w.blobs[i].digest : w.manifests[i - w.nblobs]);
		image_walk_free(&w);
	}
}

struct prewarm_image *prewarm_find(struct prewarm *pw, const struct image_ref *ref)
{
	return prewarm_table_find(&pw->table, ref);
}

/* Only an image named by the tag alone follows it: one with a digest is that digest. */
void prewarm_tag_moved(struct prewarm *pw, const struct image_ref *ref, const char *digest)
{
	struct image_ref by_tag = *ref;
	struct prewarm_image *img;

	by_tag.digest[0] = '\0';
	img = prewarm_table_find(&pw->table, &by_tag);
	if (img && (img->listed || img->requested) && !img->busy &&
	    strcmp(img->digest, digest) != 0)
		image_start(img); /* a running job follows the tag itself */
}

struct prewarm_image *prewarm_request(struct prewarm *pw, const struct image_ref *ref, int pin)
{
	struct prewarm_image *img = prewarm_table_claim(&pw->table, ref);

	if (!img)
		return NULL;
	img->requested = 1;
	img->api_pinned |= pin;
	img->pinned = img->listed || img->api_pinned;
	prewarm_table_review(&pw->table, img);
	prewarm_table_touch(&pw->table, img);
	/* A retry pending (or, given up, the time it is forgotten) is not hastened: requests in a
	 * loop would otherwise make as many upstream requests, for a listed image too. */
	if (img->state != PREWARM_READY && !img->busy && !ev_is_active(&img->timer))
		image_start(img);
	else if (img->state == PREWARM_READY && !img->busy && pw->on_ready) /* asked again */
		pw->on_ready(pw->on_ready_arg, img);
	return img;
}

/* Every image wanted: the listed, and the requested that were not given up. */
void prewarm_all(struct prewarm *pw)
{
	struct prewarm_image *img, *next;

	for (img = LIST_FIRST(&pw->table.all); img; img = next) {
		next = LIST_NEXT(img, link);
		if (img->listed || (img->requested && !img->gave_up))
			image_start(img);
	}
}

/* (Re)reads the list: new entries are tracked and pinned, entries gone are unpinned (their
 * content becomes evictable), and every listed image is prewarmed now. On error nothing
 * changes. */
int prewarm_load(struct prewarm *pw, const char *file, char *err, size_t errlen)
{
	struct prewarm_image *img, *next;
	struct prewarm_entry *v;
	size_t n, i;

	if (prewarm_list_read(file, &v, &n, err, errlen) < 0)
		return -1;
	LIST_FOREACH (img, &pw->table.all, link)
		img->listed = 0;
	for (i = 0; i < n; i++) {
		img = prewarm_table_get(&pw->table, &v[i].ref);
		if (!img)
			continue;
		img->listed = 1;
		snprintf(img->platform, sizeof(img->platform), "%s", v[i].platform);
	}
	free(v);
	/* Then the counts: an image that left the list counts against the API's bound now, or,
	 * asked for by nobody, is forgotten. */
	for (img = LIST_FIRST(&pw->table.all); img; img = next) {
		next = LIST_NEXT(img, link);
		img->pinned = img->listed || img->api_pinned;
		prewarm_table_review(&pw->table, img);
	}
	log_info("prewarm_list", "file=%s images=%zu", file, n);
	prewarm_all(pw);
	check_once_done(pw);
	return 0;
}
