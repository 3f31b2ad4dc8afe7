/* gate: an app may rise only when its image is complete in the cache of every agent that may
 * run it. The caches come from the owner (the static list, and the Mesos master's active agents)
 * and may change at any time; an app's constraints leave out the agents it cannot run on.
 *
 * Each cache is asked GET /_microscale/v1/ready?ref=IMAGE about an app's image when the app would
 * rise; a cache that joins later (an agent added to the fleet) is asked about every app's image
 * at once, so it warms what the apps run before it holds anyone back. One
 * that says not ready gets POST /_microscale/v1/prewarm {"ref": IMAGE, "pin": false} (again at
 * most every PREWARM_RESEND_S) and is asked again on every decision while the app is held. A
 * ready answer is trusted for READY_TTL_S and refreshed in the background after half of it, so
 * a steady app rises without waiting for a round trip.
 *
 * A cache that gives no answer for grace_s (from its last answer, or from when it joined) is left
 * out: one warning when that starts, one line when it ends, and it is asked again every
 * recheck so that it counts again from its first answer. One dead node never holds the fleet.
 * The gate also keeps how long each app has been held. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"

#define READY_TTL_S 5.0
#define PREWARM_RESEND_S 30.0
#define LEFT_OUT_RECHECK_S 1.0
#define CHECK_BODY_MAX (64 * 1024)
#define CHECK_TIMEOUT_MS 2000
#define GATE_CACHES_MAX 10016 /* the Mesos master's agents and the static list */

enum gc_state {
	GC_UNKNOWN,   /* not asked yet (or the image changed) */
	GC_READY,     /* the cache said ready */
	GC_NOT_READY, /* the cache said not ready: prewarm asked */
	GC_ERROR,     /* no usable answer */
};

struct gate_node;

/* One app's image in one cache. */
struct gate_cache {
	struct gate_node *node;
	size_t app;
	enum gc_state st;
	ev_tstamp checked_at;
	ev_tstamp prewarmed_at;
	struct fetch *check, *prewarm;
	long long present, total;
	char cstate[32];  /* the cache's word for it ("pulling", "failed", …), or "" */
	char runtime[16]; /* the image in the node's Docker: "present", "pulling", …, or "" */
	char why[256];
};

/* One cache: the agent it serves, whether it answers, and every app's image in it. */
struct gate_node {
	struct gate *g;
	char *url;
	char *hostname;		/* the agent's, for constraints; NULL for a static cache */
	json_t *attributes;	/* the agent's, or NULL */
	ev_tstamp silent_since; /* 0 while it answers; else since when it has not */
	int failed;		/* its last call got no answer */
	int left_out;		/* silent for the grace: not counted (warned once) */
	int keep;		/* gate_set_caches: in the new list */
	int joined;		/* came after the first list: warms every app's image at once */
	struct gate_cache *c;	/* [napps] */
};

struct gate_app {
	char *image;
	json_t *constraints_json; /* as Marathon last gave them, or NULL */
	struct constraints cons;
	char cons_err[160]; /* why they could not be used ("" when they could) */
	int held;
	ev_tstamp held_since;
	double held_total;
};

struct gate {
	struct ev_loop *loop;
	struct fetch_loop *fl;
	struct gate_opts opts;
	char *auth_header; /* "Authorization: Bearer …", or NULL; never logged */
	struct gate_node **nodes;
	size_t nnodes;
	int have_caches; /* the owner has said which caches there are */
	const struct app_conf *conf;
	size_t napps;
	struct gate_app *apps;
	void (*changed)(void *arg);
	void *arg;
};

static const char *const gc_names[] = {"unknown", "ready", "not_ready", "error"};
static const char *const agent_state_names[GATE_AGENT_STATES] = {"ready", "not_ready",
								 "unreachable"};

const char *gate_agent_state_name(enum gate_agent_state st)
{
	return agent_state_names[st];
}

/* --- caches --- */

static void cache_cancel(struct gate_cache *gc)
{
	if (gc->check)
		fetch_cancel(gc->check);
	if (gc->prewarm)
		fetch_cancel(gc->prewarm);
	gc->check = gc->prewarm = NULL;
}

/* Forgets what one cache said of one app's image. */
static void cache_reset(struct gate_cache *gc)
{
	struct gate_node *node = gc->node;
	size_t app = gc->app;

	cache_cancel(gc);
	memset(gc, 0, sizeof(*gc));
	gc->node = node;
	gc->app = app;
}

/* Calls are cancelled first (their hooks point at the node's caches), then the node. */
static void node_free(struct gate_node *node)
{
	if (!node)
		return;
	for (size_t i = 0; node->c && i < node->g->napps; i++)
		cache_cancel(&node->c[i]);
	free(node->c);
	free(node->url);
	free(node->hostname);
	json_decref(node->attributes);
	free(node);
}

static struct gate_node *node_new(struct gate *g, const struct gate_cache_spec *spec)
{
	struct gate_node *node = calloc(1, sizeof(*node));

	if (!node)
		return NULL;
	node->g = g;
	node->joined = g->have_caches;
	node->silent_since = ev_now(g->loop); /* it counts from its first answer */
	node->url = strdup(spec->url);
	node->hostname = spec->hostname ? strdup(spec->hostname) : NULL;
	node->attributes = spec->attributes ? json_incref(spec->attributes) : NULL;
	node->c = calloc(g->napps ? g->napps : 1, sizeof(*node->c));
	if (!node->url || !node->c || (spec->hostname && !node->hostname)) {
		node_free(node);
		return NULL;
	}
	for (size_t i = 0; i < g->napps; i++) {
		node->c[i].node = node;
		node->c[i].app = i;
	}
	return node;
}

static struct gate_node *node_find(const struct gate *g, const char *url)
{
	for (size_t i = 0; i < g->nnodes; i++) {
		if (strcmp(g->nodes[i]->url, url) == 0)
			return g->nodes[i];
	}
	return NULL;
}

/* The agent behind a known cache may have changed its attributes: they are taken as given. */
static void node_update(struct gate_node *node, const struct gate_cache_spec *spec)
{
	if (spec->attributes && !json_equal(spec->attributes, node->attributes)) {
		json_decref(node->attributes);
		node->attributes = json_incref(spec->attributes);
	}
	node->keep = 1;
}

int gate_set_caches(struct gate *g, const struct gate_cache_spec *caches, size_t n)
{
	struct gate_node **next;
	size_t kept = 0;

	if (n > GATE_CACHES_MAX)
		n = GATE_CACHES_MAX;
	if (!(next = calloc(n ? n : 1, sizeof(*next))))
		return -1;
	for (size_t i = 0; i < g->nnodes; i++)
		g->nodes[i]->keep = 0;
	for (size_t i = 0; i < n; i++) {
		struct gate_node *node = node_find(g, caches[i].url);

		if (node && node->keep)
			continue; /* listed twice */
		if (node) {
			node_update(node, &caches[i]);
		} else if (!(node = node_new(g, &caches[i]))) {
			free(next);
			return -1;
		} else {
			log_info("gate_cache_added", "cache=%s", node->url);
		}
		node->keep = 1;
		next[kept++] = node;
	}
	for (size_t i = 0; i < g->nnodes; i++) {
		if (!g->nodes[i]->keep) {
			log_info("gate_cache_removed", "cache=%s", g->nodes[i]->url);
			node_free(g->nodes[i]);
		}
	}
	free(g->nodes);
	g->nodes = next;
	g->nnodes = kept;
	g->have_caches = 1;
	return 0;
}

/* --- reachability --- */

static void node_answered(struct gate_node *node)
{
	struct gate *g = node->g;

	if (node->left_out)
		log_info("gate_cache_back", "cache=%s silent_s=%.3f", node->url,
			 ev_now(g->loop) - node->silent_since);
	node->silent_since = 0;
	node->failed = node->left_out = 0;
}

static void node_silent(struct gate_node *node)
{
	node->failed = 1;
	if (node->silent_since == 0)
		node->silent_since = ev_now(node->g->loop);
}

/* Whether the node counts now; leaving it out is logged once. */
static int node_counts(struct gate_node *node, ev_tstamp now)
{
	double grace = node->g->opts.grace_s;

	if (node->left_out || node->silent_since == 0 || now - node->silent_since < grace)
		return !node->left_out;
	node->left_out = 1;
	log_warn(
	    "gate_cache_unreachable",
	    "cache=%s silent_s=%.3f reason=\"no answer for gate.unreachable_grace_ms: left out "
	    "of the gate until it answers\"",
	    node->url, now - node->silent_since);
	return 0;
}

/* --- calls --- */

static void prewarm_done(struct fetch *f, int ok, const char *err, void *arg)
{
	struct gate_cache *gc = arg;
	struct gate *g = gc->node->g;
	long status = ok ? fetch_status(f) : 0;
	const char *image = g->apps[gc->app].image;

	gc->prewarm = NULL;
	if (ok)
		node_answered(gc->node);
	if (ok && status >= 200 && status <= 299)
		log_info("gate_prewarm", "app=%s cache=%s ref=%s status=%ld", g->conf[gc->app].id,
			 gc->node->url, image, status);
	else
		log_warn("gate_prewarm_failed", "app=%s cache=%s ref=%s status=%ld error=\"%s\"",
			 g->conf[gc->app].id, gc->node->url, image, status,
			 ok ? "unexpected status" : err);
}

/* The headers of a call to a cache: Accept or Content-Type, and the admin token. */
static void cache_headers(const struct gate *g, const char *first, const char *headers[3])
{
	headers[0] = first;
	headers[1] = g->auth_header;
	headers[2] = NULL;
}

static void prewarm(struct gate_cache *gc)
{
	static const struct fetch_hooks hooks = {.on_done = prewarm_done};
	struct gate *g = gc->node->g;
	const char *image = g->apps[gc->app].image, *headers[3];
	struct fetch_req req = {.method = "POST",
				.headers = headers,
				.timeout_ms = CHECK_TIMEOUT_MS,
				.max_body = CHECK_BODY_MAX};
	ev_tstamp now = ev_now(g->loop);
	json_t *doc;
	char url[2048], *body;

	if (gc->prewarm || (gc->prewarmed_at > 0 && now - gc->prewarmed_at < PREWARM_RESEND_S))
		return;
	gc->prewarmed_at = now;
	if (g->opts.dry_run) {
		log_info("gate_prewarm", "app=%s cache=%s ref=%s dry_run=1 sent=0",
			 g->conf[gc->app].id, gc->node->url, image);
		return;
	}
	cache_headers(g, "Content-Type: application/json", headers);
	doc = json_pack("{s:s, s:b}", "ref", image, "pin", 0);
	body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	snprintf(url, sizeof(url), "%s/_microscale/v1/prewarm", gc->node->url);
	if (body) {
		req.url = url;
		req.body = body;
		req.body_len = strlen(body);
		gc->prewarm = fetch_start(g->fl, &req, &hooks, gc);
	}
	if (!gc->prewarm)
		log_error("gate_prewarm_failed", "cache=%s error=\"cannot start a request\"",
			  gc->node->url);
	free(body);
}

/* Whether "ready" also needs the image in the node's Docker: as configured, or (by default)
 * whenever the cache reports a runtime at all. */
static int runtime_required(const struct gate *g, const char *runtime)
{
	if (g->opts.require_runtime >= 0)
		return g->opts.require_runtime;
	return runtime[0] != '\0' && strcmp(runtime, "off") != 0;
}

/* Reads {"ready": true|false, "layers_present": N, "layers_total": N, "runtime": …}. */
static enum gc_state parse_ready(struct gate_cache *gc, struct fetch *f)
{
	size_t len;
	const char *body = fetch_body(f, &len);
	json_t *doc = json_loadb(body, len, 0, NULL), *ready = json_object_get(doc, "ready");
	json_t *p = json_object_get(doc, "layers_present"),
	       *t = json_object_get(doc, "layers_total");
	json_t *cs = json_object_get(doc, "state"), *rt = json_object_get(doc, "runtime");
	enum gc_state st = GC_ERROR;

	if (json_is_boolean(ready))
		st = json_is_true(ready) ? GC_READY : GC_NOT_READY;
	gc->present = json_is_integer(p) ? json_integer_value(p) : -1;
	gc->total = json_is_integer(t) ? json_integer_value(t) : -1;
	snprintf(gc->cstate, sizeof(gc->cstate), "%s",
		 json_is_string(cs) ? json_string_value(cs) : "");
	snprintf(gc->runtime, sizeof(gc->runtime), "%s",
		 json_is_string(rt) ? json_string_value(rt) : "");
	if (st == GC_READY && runtime_required(gc->node->g, gc->runtime) &&
	    strcmp(gc->runtime, "present") != 0)
		st = GC_NOT_READY; /* on disk, but a task would still wait for docker pull */
	json_decref(doc);
	return st;
}

/* What one answer says, in gc->st and gc->why. */
static void read_answer(struct gate_cache *gc, struct fetch *f, int ok, const char *err)
{
	const char *cache = gc->node->url;
	long status = ok ? fetch_status(f) : 0;

	if (!ok) {
		gc->st = GC_ERROR;
		snprintf(gc->why, sizeof(gc->why), "cache %s unreachable: %s", cache,
			 err ? err : "failed");
	} else if (status != 200) {
		gc->st = GC_ERROR;
		snprintf(gc->why, sizeof(gc->why), "cache %s answered %ld", cache, status);
	} else if ((gc->st = parse_ready(gc, f)) == GC_ERROR) {
		snprintf(gc->why, sizeof(gc->why), "cache %s gave no \"ready\"", cache);
	} else if (gc->st == GC_NOT_READY && gc->total > 0 && gc->present == gc->total &&
		   runtime_required(gc->node->g, gc->runtime)) {
		snprintf(gc->why, sizeof(gc->why), "image in %s but not in its node's Docker (%s)",
			 cache, gc->runtime);
	} else if (gc->st == GC_NOT_READY) {
		snprintf(gc->why, sizeof(gc->why), "image not ready in %s (%s%slayers %lld/%lld)",
			 cache, gc->cstate, gc->cstate[0] ? ", " : "", gc->present, gc->total);
	} else {
		gc->why[0] = '\0';
	}
}

static void check_done(struct fetch *f, int ok, const char *err, void *arg)
{
	struct gate_cache *gc = arg;
	struct gate *g = gc->node->g;
	enum gc_state was = gc->st;

	gc->check = NULL;
	gc->checked_at = ev_now(g->loop);
	if (ok)
		node_answered(gc->node);
	else
		node_silent(gc->node);
	read_answer(gc, f, ok, err);
	log_event(gc->st != was ? LOG_INFO : LOG_DEBUG, "gate_check",
		  "app=%s cache=%s ref=%s state=%s status=%ld layers=%lld/%lld",
		  g->conf[gc->app].id, gc->node->url, g->apps[gc->app].image, gc_names[gc->st],
		  ok ? fetch_status(f) : 0, gc->present, gc->total);
	if (gc->st == GC_NOT_READY)
		prewarm(gc);
	if (g->changed)
		g->changed(g->arg);
}

static void check(struct gate_cache *gc)
{
	static const struct fetch_hooks hooks = {.on_done = check_done};
	struct gate *g = gc->node->g;
	const char *headers[3];
	struct fetch_req req = {.headers = headers,
				.timeout_ms = CHECK_TIMEOUT_MS,
				.connect_timeout_ms = CHECK_TIMEOUT_MS,
				.max_body = CHECK_BODY_MAX};
	char url[4096], *ref = curl_easy_escape(NULL, g->apps[gc->app].image, 0);
	int n = -1;

	cache_headers(g, "Accept: application/json", headers);
	if (ref)
		n = snprintf(url, sizeof(url), "%s/_microscale/v1/ready?ref=%s", gc->node->url,
			     ref);
	curl_free(ref);
	if (n > 0 && (size_t)n < sizeof(url)) {
		req.url = url;
		gc->check = fetch_start(g->fl, &req, &hooks, gc);
	}
	if (!gc->check) {
		gc->st = GC_ERROR;
		gc->checked_at = ev_now(g->loop);
		snprintf(gc->why, sizeof(gc->why), "cannot ask cache %s", gc->node->url);
	}
}

/* --- apps --- */

struct gate *gate_new(struct ev_loop *loop, struct fetch_loop *fl, const struct gate_opts *opts,
		      const struct app_conf *apps, size_t napps, void (*changed)(void *arg),
		      void *arg)
{
	struct gate *g = calloc(1, sizeof(*g));
	size_t len;

	if (!g)
		return NULL;
	*g = (struct gate){.loop = loop,
			   .fl = fl,
			   .opts = *opts,
			   .conf = apps,
			   .napps = napps,
			   .changed = changed,
			   .arg = arg};
	g->opts.token = NULL; /* kept only in the header */
	if (!(g->apps = calloc(napps ? napps : 1, sizeof(*g->apps))))
		goto fail;
	if (opts->token) {
		len = strlen(opts->token) + sizeof("Authorization: Bearer ");
		if (!(g->auth_header = malloc(len)))
			goto fail;
		snprintf(g->auth_header, len, "Authorization: Bearer %s", opts->token);
	}
	return g;
fail:
	gate_free(g);
	return NULL;
}

/* The caches go first (their calls point into them), then the apps, then g. */
void gate_free(struct gate *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->nnodes; i++)
		node_free(g->nodes[i]);
	free(g->nodes);
	for (size_t i = 0; g->apps && i < g->napps; i++) {
		free(g->apps[i].image);
		json_decref(g->apps[i].constraints_json);
		constraints_free(&g->apps[i].cons);
	}
	free(g->apps);
	if (g->auth_header) {
		explicit_bzero(g->auth_header, strlen(g->auth_header));
		free(g->auth_header);
	}
	free(g);
}

/* A new image: every cache is asked about it afresh. */
static int app_image(struct gate *g, size_t app, const char *image)
{
	struct gate_app *ga = &g->apps[app];

	if (!image ? !ga->image : ga->image && strcmp(ga->image, image) == 0)
		return 0;
	for (size_t k = 0; k < g->nnodes; k++)
		cache_reset(&g->nodes[k]->c[app]);
	free(ga->image);
	ga->image = image ? strdup(image) : NULL;
	return image && !ga->image ? -1 : 0;
}

/* New constraints are compiled once; ones that cannot be used rule no agent out (logged). */
static void app_constraints(struct gate *g, size_t app, json_t *constraints)
{
	struct gate_app *ga = &g->apps[app];

	if (json_equal(constraints, ga->constraints_json) ||
	    (!constraints && !ga->constraints_json))
		return;
	json_decref(ga->constraints_json);
	ga->constraints_json = constraints ? json_deep_copy(constraints) : NULL;
	constraints_free(&ga->cons);
	ga->cons_err[0] = '\0';
	if (constraints_parse(constraints, &ga->cons, ga->cons_err, sizeof(ga->cons_err)) < 0)
		log_warn("gate_constraints_ignored", "app=%s error=\"%s\"", g->conf[app].id,
			 ga->cons_err);
}

static int node_may_run(const struct gate_node *node, const struct gate_app *ga)
{
	return !node->hostname || constraints_allow(&ga->cons, node->hostname, node->attributes);
}

void gate_track(struct gate *g, size_t app, const char *image, json_t *constraints)
{
	struct gate_app *ga = &g->apps[app];
	ev_tstamp now = ev_now(g->loop);

	app_constraints(g, app, constraints);
	if (app_image(g, app, image) < 0 || !ga->image)
		return;
	for (size_t k = 0; k < g->nnodes; k++) {
		struct gate_cache *gc = &g->nodes[k]->c[app];

		if (gc->node->joined && gc->st == GC_UNKNOWN && !gc->check &&
		    node_may_run(gc->node, ga) && node_counts(gc->node, now))
			check(gc);
	}
}

/* Whether one counted cache holds app's rise; a check goes out as needed. */
static int cache_ready(struct gate_cache *gc, ev_tstamp now, double recheck_s)
{
	double age = now - gc->checked_at;
	int fresh = gc->st == GC_READY && age < READY_TTL_S;

	if (!gc->check &&
	    (fresh ? age >= READY_TTL_S / 2 : gc->st == GC_UNKNOWN || age >= recheck_s))
		check(gc);
	return fresh;
}

int gate_ready(struct gate *g, size_t app, const char **why)
{
	struct gate_app *ga = &g->apps[app];
	ev_tstamp now = ev_now(g->loop);
	size_t counted = 0, left_out = 0;
	int ready = 1;

	*why = NULL;
	if (!g->have_caches) {
		*why = "waiting for the fleet from the Mesos master";
		return 0;
	}
	if (!ga->image) {
		*why = "no image";
		return 1;
	}
	for (size_t k = 0; k < g->nnodes; k++) {
		struct gate_cache *gc = &g->nodes[k]->c[app];

		if (!node_may_run(gc->node, ga))
			continue;
		if (!node_counts(gc->node, now)) {
			left_out++;
			if (!gc->check && now - gc->checked_at >= LEFT_OUT_RECHECK_S)
				check(gc);
			continue;
		}
		counted++;
		if (cache_ready(gc, now, g->opts.recheck_s))
			continue;
		if (ready)
			*why = gc->why[0] != '\0' ? gc->why : "checking the caches";
		ready = 0;
	}
	if (ready && counted == 0)
		*why = g->nnodes == 0 ? "no caches configured"
		       : left_out > 0 ? "every cache that may run it is left out as unreachable"
				      : "no agent may run it (constraints)";
	return ready;
}

/* --- accounting and status --- */

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

/* What one cache is for one app, as the metrics count it; -1 when the app may not run there. */
static int agent_state(const struct gate *g, const struct gate_node *node, size_t app)
{
	const struct gate_cache *gc = &node->c[app];

	if (!node_may_run(node, &g->apps[app]))
		return -1;
	if (node->left_out || node->failed)
		return GATE_AGENT_UNREACHABLE;
	return gc->st == GC_READY ? GATE_AGENT_READY : GATE_AGENT_NOT_READY;
}

void gate_agent_counts(const struct gate *g, size_t app, size_t counts[GATE_AGENT_STATES])
{
	memset(counts, 0, GATE_AGENT_STATES * sizeof(counts[0]));
	for (size_t k = 0; k < g->nnodes; k++) {
		int st = agent_state(g, g->nodes[k], app);

		if (st >= 0)
			counts[st]++;
	}
}

static json_t *cache_json(const struct gate *g, const struct gate_node *node, size_t app)
{
	const struct gate_cache *gc = &node->c[app];
	int st = agent_state(g, node, app);

	return json_pack("{s:s, s:s?, s:s, s:s, s:s, s:I, s:I, s:s, s:b, s:s}", "url", node->url,
			 "hostname", node->hostname, "agent",
			 st < 0 ? "excluded" : agent_state_names[st], "state", gc_names[gc->st],
			 "cache_state", gc->cstate, "layers_present", (json_int_t)gc->present,
			 "layers_total", (json_int_t)gc->total, "runtime", gc->runtime, "left_out",
			 node->left_out, "why", gc->why);
}

size_t gate_ncaches(const struct gate *g)
{
	return g->nnodes;
}

json_t *gate_cache_json(const struct gate *g, size_t k, size_t app)
{
	return k < g->nnodes && app < g->napps ? cache_json(g, g->nodes[k], app) : NULL;
}

json_t *gate_status_json(const struct gate *g, size_t app)
{
	const struct gate_app *ga = &g->apps[app];
	json_t *caches = json_array(), *counts = json_object();
	size_t n[GATE_AGENT_STATES];

	for (size_t k = 0; caches && k < g->nnodes; k++)
		json_array_append_new(caches, cache_json(g, g->nodes[k], app));
	gate_agent_counts(g, app, n);
	for (int st = 0; counts && st < GATE_AGENT_STATES; st++)
		json_object_set_new(counts, agent_state_names[st], json_integer((json_int_t)n[st]));
	return json_pack("{s:s?, s:b, s:f, s:f, s:O?, s:s?, s:o, s:o}", "image", ga->image, "held",
			 ga->held, "held_seconds", gate_held_s(g, app), "held_seconds_total",
			 gate_held_total_s(g, app), "constraints", ga->constraints_json,
			 "constraints_error", ga->cons_err[0] ? ga->cons_err : NULL, "agents",
			 counts, "caches", caches);
}
