/* gate: an app may rise only when its image is complete in every cache. Each cache is asked
 * GET /_microscale/v1/ready?ref=IMAGE; one that says not ready gets POST /_microscale/v1/prewarm
 * {"ref": IMAGE, "pin": false} (again at most every PREWARM_RESEND_S) and is asked again each
 * tick while the app is held. A ready answer is trusted for READY_TTL_S and refreshed in the
 * background after half of it, so a steady app rises without waiting for a round trip.
 * Scale-downs never ask. The gate also keeps how long each app has been held. */
#include "scaler.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READY_TTL_S 5.0
#define PREWARM_RESEND_S 30.0
#define CHECK_BODY_MAX (64 * 1024)
#define CHECK_TIMEOUT_MS 2000

enum gc_state {
	GC_UNKNOWN,   /* not asked yet (or the image changed) */
	GC_READY,     /* the cache said ready */
	GC_NOT_READY, /* the cache said not ready: prewarm asked */
	GC_ERROR,     /* no usable answer */
};

struct gate_app;

/* One app's image in one cache. */
struct gate_cache {
	struct gate_app *ga;
	size_t k; /* which cache */
	enum gc_state st;
	ev_tstamp checked_at;
	ev_tstamp prewarmed_at;
	struct fetch *check, *prewarm;
	long long present, total;
	char cstate[32]; /* the cache's word for it ("pulling", "failed", …), or "" */
	char why[256];
};

struct gate_app {
	struct gate *g;
	size_t i;
	char *image;
	struct gate_cache *c;
	int held;
	ev_tstamp held_since;
	double held_total;
};

struct gate {
	struct ev_loop *loop;
	struct fetch_loop *fl;
	char *const *caches;
	size_t ncaches, napps;
	const struct app_conf *conf;
	struct gate_app *apps;
	double recheck_s;
	int dry_run;
	void (*changed)(void *arg);
	void *arg;
};

static const char *const gc_names[] = {"unknown", "ready", "not_ready", "error"};

struct gate *gate_new(struct ev_loop *loop, struct fetch_loop *fl, char *const *caches,
		      size_t ncaches, const struct app_conf *apps, size_t napps, double recheck_s,
		      int dry_run, void (*changed)(void *arg), void *arg)
{
	struct gate *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	*g = (struct gate){.loop = loop,
			   .fl = fl,
			   .caches = caches,
			   .ncaches = ncaches,
			   .conf = apps,
			   .napps = napps,
			   .recheck_s = recheck_s,
			   .dry_run = dry_run,
			   .changed = changed,
			   .arg = arg};
	g->apps = calloc(napps, sizeof(*g->apps));
	if (g->apps == NULL)
		goto fail;
	for (size_t i = 0; i < napps; i++) {
		struct gate_app *ga = &g->apps[i];

		ga->g = g;
		ga->i = i;
		if (ncaches == 0)
			continue;
		ga->c = calloc(ncaches, sizeof(*ga->c));
		if (ga->c == NULL)
			goto fail;
		for (size_t k = 0; k < ncaches; k++) {
			ga->c[k].ga = ga;
			ga->c[k].k = k;
		}
	}
	return g;
fail:
	gate_free(g);
	return NULL;
}

/* Forgets what is known of one app's image: its calls are cancelled, its states unknown. */
static void app_reset(struct gate_app *ga)
{
	for (size_t k = 0; ga->c != NULL && k < ga->g->ncaches; k++) {
		struct gate_cache *gc = &ga->c[k];

		if (gc->check != NULL)
			fetch_cancel(gc->check);
		if (gc->prewarm != NULL)
			fetch_cancel(gc->prewarm);
		memset(gc, 0, sizeof(*gc));
		gc->ga = ga;
		gc->k = k;
	}
	free(ga->image);
	ga->image = NULL;
}

void gate_free(struct gate *g)
{
	if (g == NULL)
		return;
	for (size_t i = 0; g->apps != NULL && i < g->napps; i++) {
		app_reset(&g->apps[i]);
		free(g->apps[i].c);
	}
	free(g->apps);
	free(g);
}

static void prewarm_done(struct fetch *f, int ok, const char *err, void *arg)
{
	struct gate_cache *gc = arg;
	struct gate *g = gc->ga->g;
	long status = ok ? fetch_status(f) : 0;

	gc->prewarm = NULL;
	if (ok && status >= 200 && status <= 299)
		log_info("gate_prewarm", "app=%s cache=%s ref=%s status=%ld", g->conf[gc->ga->i].id,
			 g->caches[gc->k], gc->ga->image, status);
	else
		log_warn("gate_prewarm_failed", "app=%s cache=%s ref=%s status=%ld error=\"%s\"",
			 g->conf[gc->ga->i].id, g->caches[gc->k], gc->ga->image, status,
			 ok ? "unexpected status" : err);
}

static void prewarm(struct gate_cache *gc)
{
	static const struct fetch_hooks hooks = {.on_done = prewarm_done};
	static const char *const headers[] = {"Content-Type: application/json", NULL};
	struct gate *g = gc->ga->g;
	struct fetch_req req = {.method = "POST",
				.headers = headers,
				.timeout_ms = CHECK_TIMEOUT_MS,
				.max_body = CHECK_BODY_MAX};
	ev_tstamp now = ev_now(g->loop);
	json_t *doc;
	char url[2048], *body;

	if (gc->prewarm != NULL ||
	    (gc->prewarmed_at > 0 && now - gc->prewarmed_at < PREWARM_RESEND_S))
		return;
	gc->prewarmed_at = now;
	if (g->dry_run) {
		log_info("gate_prewarm", "app=%s cache=%s ref=%s dry_run=1 sent=0",
			 g->conf[gc->ga->i].id, g->caches[gc->k], gc->ga->image);
		return;
	}
	doc = json_pack("{s:s, s:b}", "ref", gc->ga->image, "pin", 0);
	body = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	snprintf(url, sizeof(url), "%s/_microscale/v1/prewarm", g->caches[gc->k]);
	if (body != NULL) {
		req.url = url;
		req.body = body;
		req.body_len = strlen(body);
		gc->prewarm = fetch_start(g->fl, &req, &hooks, gc);
	}
	if (gc->prewarm == NULL)
		log_error("gate_prewarm_failed", "cache=%s error=\"cannot start a request\"",
			  g->caches[gc->k]);
	free(body);
}

/* Reads {"ready": true|false, "layers_present": N, "layers_total": N, …}. */
static enum gc_state parse_ready(struct gate_cache *gc, struct fetch *f)
{
	size_t len;
	const char *body = fetch_body(f, &len);
	json_t *doc = json_loadb(body, len, 0, NULL), *ready = json_object_get(doc, "ready");
	json_t *p = json_object_get(doc, "layers_present"),
	       *t = json_object_get(doc, "layers_total");
	json_t *cs = json_object_get(doc, "state");
	enum gc_state st = GC_ERROR;

	if (json_is_boolean(ready))
		st = json_is_true(ready) ? GC_READY : GC_NOT_READY;
	gc->present = json_is_integer(p) ? json_integer_value(p) : -1;
	gc->total = json_is_integer(t) ? json_integer_value(t) : -1;
	snprintf(gc->cstate, sizeof(gc->cstate), "%s",
		 json_is_string(cs) ? json_string_value(cs) : "");
	json_decref(doc);
	return st;
}

static void check_done(struct fetch *f, int ok, const char *err, void *arg)
{
	struct gate_cache *gc = arg;
	struct gate_app *ga = gc->ga;
	struct gate *g = ga->g;
	const char *cache = g->caches[gc->k];
	long status = ok ? fetch_status(f) : 0;
	enum gc_state was = gc->st;

	gc->check = NULL;
	gc->checked_at = ev_now(g->loop);
	if (!ok) {
		gc->st = GC_ERROR;
		snprintf(gc->why, sizeof(gc->why), "cache %s unreachable: %s", cache,
			 err ? err : "failed");
	} else if (status != 200) {
		gc->st = GC_ERROR;
		snprintf(gc->why, sizeof(gc->why), "cache %s answered %ld", cache, status);
	} else if ((gc->st = parse_ready(gc, f)) == GC_ERROR) {
		snprintf(gc->why, sizeof(gc->why), "cache %s gave no \"ready\"", cache);
	} else if (gc->st == GC_NOT_READY) {
		snprintf(gc->why, sizeof(gc->why), "image not ready in %s (%s%slayers %lld/%lld)",
			 cache, gc->cstate, gc->cstate[0] ? ", " : "", gc->present, gc->total);
	} else {
		gc->why[0] = '\0';
	}
	log_event(gc->st != was ? LOG_INFO : LOG_DEBUG, "gate_check",
		  "app=%s cache=%s ref=%s state=%s status=%ld layers=%lld/%lld", g->conf[ga->i].id,
		  cache, ga->image, gc_names[gc->st], status, gc->present, gc->total);
	if (gc->st == GC_NOT_READY)
		prewarm(gc);
	if (g->changed != NULL)
		g->changed(g->arg);
}

static void check(struct gate_cache *gc)
{
	static const struct fetch_hooks hooks = {.on_done = check_done};
	static const char *const headers[] = {"Accept: application/json", NULL};
	struct gate *g = gc->ga->g;
	struct fetch_req req = {.headers = headers,
				.timeout_ms = CHECK_TIMEOUT_MS,
				.connect_timeout_ms = CHECK_TIMEOUT_MS,
				.max_body = CHECK_BODY_MAX};
	char url[4096], *ref = curl_easy_escape(NULL, gc->ga->image, 0);
	int n = -1;

	if (ref != NULL)
		n = snprintf(url, sizeof(url), "%s/_microscale/v1/ready?ref=%s", g->caches[gc->k],
			     ref);
	curl_free(ref);
	if (n > 0 && (size_t)n < sizeof(url)) {
		req.url = url;
		gc->check = fetch_start(g->fl, &req, &hooks, gc);
	}
	if (gc->check == NULL) {
		gc->st = GC_ERROR;
		gc->checked_at = ev_now(g->loop);
		snprintf(gc->why, sizeof(gc->why), "cannot ask cache %s", g->caches[gc->k]);
	}
}

int gate_ready(struct gate *g, size_t app, const char *image, const char **why)
{
	struct gate_app *ga = &g->apps[app];
	ev_tstamp now = ev_now(g->loop);
	int ready = 1;

	*why = NULL;
	if (g->ncaches == 0 || image == NULL) {
		*why = g->ncaches == 0 ? "no caches configured" : "no image";
		return 1;
	}
	if (ga->image == NULL || strcmp(ga->image, image) != 0) {
		app_reset(ga);
		if ((ga->image = strdup(image)) == NULL) {
			*why = "out of memory";
			return 0;
		}
	}
	for (size_t k = 0; k < g->ncaches; k++) {
		struct gate_cache *gc = &ga->c[k];
		double age = now - gc->checked_at;
		int fresh = gc->st == GC_READY && age < READY_TTL_S;

		if (gc->check == NULL &&
		    (fresh ? age >= READY_TTL_S / 2 : gc->st == GC_UNKNOWN || age >= g->recheck_s))
			check(gc);
		if (fresh)
			continue;
		if (ready)
			*why = gc->why[0] != '\0' ? gc->why : "checking the caches";
		ready = 0;
	}
	return ready;
}

void gate_note(struct gate *g, size_t app, int held)
{
	struct gate_app *ga = &g->apps[app];
	ev_tstamp now = ev_now(g->loop);

	if (held && !ga->held) {
		ga->held = 1;
		ga->held_since = now;
	} else if (!held && ga->held) {
		ga->held = 0;
		ga->held_total += now - ga->held_since;
		log_info("gate_released", "app=%s ref=%s held_s=%.3f", g->conf[app].id,
			 ga->image ? ga->image : "-", now - ga->held_since);
	}
}

double gate_held_s(const struct gate *g, size_t app)
{
	const struct gate_app *ga = &g->apps[app];

	return ga->held ? ev_now(g->loop) - ga->held_since : 0;
}

double gate_held_total_s(const struct gate *g, size_t app)
{
	return g->apps[app].held_total + gate_held_s(g, app);
}

json_t *gate_status_json(const struct gate *g, size_t app)
{
	const struct gate_app *ga = &g->apps[app];
	json_t *caches = json_array(), *out;

	for (size_t k = 0; caches != NULL && k < g->ncaches; k++) {
		const struct gate_cache *gc = &ga->c[k];

		json_array_append_new(caches, json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "url",
							g->caches[k], "state", gc_names[gc->st],
							"cache_state", gc->cstate, "layers_present",
							(json_int_t)gc->present, "layers_total",
							(json_int_t)gc->total, "why", gc->why));
	}
	out = json_pack("{s:s?, s:b, s:f, s:f, s:o}", "image", ga->image, "held", ga->held,
			"held_seconds", gate_held_s(g, app), "held_seconds_total",
			gate_held_total_s(g, app), "caches", caches);
	return out;
}
