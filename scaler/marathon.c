/* marathon: the Marathon client. GET /v2/apps/{id} reads an app (instances, tasks, deployments,
 * image); PUT /v2/apps/{id} {"instances": N} scales it. Each app has at most one call out at a
 * time (a PUT replaces a read still out); different apps' calls run concurrently on the loop.
 *
 * Failures: 5xx, timeouts and refused connections put every call on hold for a backoff that
 * doubles per failure (0.2 s up to backoff_max_ms, with jitter); calls that were already out when
 * a failure came count with it, not after it, so a burst of failures is one step. 401/403 back
 * off the same way and say that the credentials are wrong. 409 (a deployment holds the app)
 * leaves the app alone until the next tick, or retries at once with ?force=true when
 * marathon.force is set. A PUT that got no answer may have landed: its instances count against
 * the capacity until the app has been read again. 404 marks the app missing; it is never PUT
 * (Marathon would create it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "scaler.h"

#define BACKOFF_BASE_S 0.2
#define TRANSITION_POLL_S 0.2 /* re-read an app whose deployment runs this often */
/* …and this often while the event stream tells when it ends */
#define TRANSITION_POLL_EVENTS_S 2.0
#define HOLD_4XX_S 10.0 /* a PUT refused for another reason is not retried before this */
#define APP_BODY_MAX (16 * 1024 * 1024)

struct mapp {
	struct marathon *m;
	size_t i;
	struct marathon_app pub;
	struct fetch *f;      /* the call out, or NULL */
	int put;	      /* it is a PUT */
	long long put_from;   /* instances before it */
	ev_tstamp sent_at;    /* when it went out */
	int need_read;	      /* read at the next chance (after a change, a 409, a resync) */
	int missing_reported; /* the 404 was logged */
};

struct marathon {
	struct ev_loop *loop;
	struct fetch_loop *fl;
	const struct marathon_conf *conf;
	const struct app_conf *apps;
	size_t napps;
	struct mapp *a;
	char *auth_header; /* "Authorization: token=…", or NULL */
	unsigned tick;
	unsigned failures; /* consecutive */
	int auth_failed;   /* the last failure was 401/403 */
	int events;	   /* the event stream is attached */
	ev_tstamp fail_at; /* the last failure that counted */
	ev_tstamp backoff_until;
	char last_error[256];
	void (*changed)(void *arg);
	void *arg;
	struct metric_family *m_calls, *m_seconds;
};

static void app_image_set(struct marathon_app *a, const char *image)
{
	if (!image || (a->image && strcmp(a->image, image) == 0)) {
		if (!image) {
			free(a->image);
			a->image = NULL;
		}
		return;
	}
	free(a->image);
	a->image = strdup(image); /* NULL on out of memory: the app then has no image to gate */
}

/* The gate compares them with what it compiled last: an unchanged list keeps its object. */
static void app_constraints_set(struct marathon_app *a, json_t *list)
{
	if (!json_is_array(list) || json_array_size(list) == 0)
		list = NULL;
	if (list && json_equal(list, a->constraints))
		return;
	json_decref(a->constraints);
	a->constraints = list ? json_deep_copy(list) : NULL;
}

/* A count from Marathon, kept within what the scaler can add up without overflow. */
static long long int_member(json_t *obj, const char *name)
{
	json_t *v = json_object_get(obj, name);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return 0;
	return json_integer_value(v) > SCALER_INSTANCES_MAX ? SCALER_INSTANCES_MAX
							    : json_integer_value(v);
}

int marathon_parse_app(const char *body, size_t len, struct marathon_app *a)
{
	json_t *doc = json_loadb(body, len, 0, NULL);
	json_t *app = json_object_get(doc, "app"), *inst, *deps, *image;

	inst = json_object_get(app, "instances");
	if (!json_is_object(app) || !json_is_integer(inst) || json_integer_value(inst) < 0 ||
	    json_integer_value(inst) > SCALER_INSTANCES_MAX) {
		json_decref(doc);
		return -1;
	}
	a->instances = json_integer_value(inst);
	a->running = int_member(app, "tasksRunning");
	a->staged = int_member(app, "tasksStaged");
	deps = json_object_get(app, "deployments");
	a->deploying = json_is_array(deps) ? (int)json_array_size(deps) : 0;
	image = conf_lookup(app, "container.docker.image");
	app_image_set(a, json_is_string(image) && json_string_length(image) > 0
			     ? json_string_value(image)
			     : NULL);
	app_constraints_set(a, json_object_get(app, "constraints"));
	json_decref(doc);
	return 0;
}

static struct metric_family *calls_family(struct metrics *mx, int seconds)
{
	static const char *const by_status[] = {"method", "status", NULL};
	static const char *const by_method[] = {"method", NULL};
	static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
					 0.25,	0.5,	1,     2.5,  5,	    10};

	if (!mx)
		return NULL;
	if (!seconds)
		return metrics_counter(mx, "microscale_scaler_marathon_calls_total",
				       "Marathon API calls by method and status (error: no answer)",
				       by_status);
	return metrics_histogram(mx, "microscale_scaler_marathon_call_seconds",
				 "Marathon API call latency", by_method, buckets,
				 sizeof(buckets) / sizeof(buckets[0]));
}

struct marathon *marathon_new(struct ev_loop *loop, struct fetch_loop *fl,
			      const struct marathon_conf *conf, const struct app_conf *apps,
			      size_t napps, struct metrics *metrics, void (*changed)(void *arg),
			      void *arg)
{
	struct marathon *m = calloc(1, sizeof(*m));
	size_t len;

	if (!m)
		return NULL;
	m->loop = loop;
	m->fl = fl;
	m->conf = conf;
	m->apps = apps;
	m->napps = napps;
	m->changed = changed;
	m->arg = arg;
	m->a = calloc(napps, sizeof(*m->a));
	if (!m->a)
		goto fail;
	for (size_t i = 0; i < napps; i++) {
		m->a[i].m = m;
		m->a[i].i = i;
		m->a[i].pub.inflight_to = m->a[i].pub.uncertain = -1;
		m->a[i].pub.stale = 1;
	}
	if (conf->token) {
		len = strlen(conf->token) + sizeof("Authorization: token=");
		if (!(m->auth_header = malloc(len)))
			goto fail;
		snprintf(m->auth_header, len, "Authorization: token=%s", conf->token);
	}
	m->m_calls = calls_family(metrics, 0);
	m->m_seconds = calls_family(metrics, 1);
	return m;
fail:
	marathon_free(m);
	return NULL;
}

/* Calls are cancelled first (their hooks point into m->a), then the apps, then m. */
void marathon_free(struct marathon *m)
{
	if (!m)
		return;
	for (size_t i = 0; m->a && i < m->napps; i++) {
		if (m->a[i].f)
			fetch_cancel(m->a[i].f);
		free(m->a[i].pub.image);
		json_decref(m->a[i].pub.constraints);
	}
	if (m->auth_header) {
		explicit_bzero(m->auth_header, strlen(m->auth_header));
		free(m->auth_header);
	}
	free(m->a);
	free(m);
}

const struct marathon_app *marathon_app(const struct marathon *m, size_t i)
{
	return &m->a[i].pub;
}

static int backing_off(const struct marathon *m)
{
	return m->failures > 0 && ev_now(m->loop) < m->backoff_until;
}

int marathon_can_put(const struct marathon *m, size_t i)
{
	const struct mapp *a = &m->a[i];

	return a->pub.state == MAPP_KNOWN && !a->pub.stale && (!a->f || !a->put) &&
	       (a->pub.deploying == 0 || m->conf->force) && !backing_off(m) &&
	       ev_now(m->loop) >= a->pub.hold_until && a->pub.put_tick != m->tick;
}

long long marathon_occupancy(const struct marathon *m, size_t i)
{
	const struct marathon_app *p = &m->a[i].pub;
	long long occ = p->instances;

	if (p->state != MAPP_KNOWN)
		return 0;
	if (p->running + p->staged > occ)
		occ = p->running + p->staged;
	if (p->inflight_to > occ)
		occ = p->inflight_to;
	if (p->uncertain > occ)
		occ = p->uncertain;
	return occ;
}

const char *marathon_health(const struct marathon *m)
{
	if (m->failures == 0)
		return "ok";
	return m->auth_failed ? "auth_failed" : backing_off(m) ? "backoff" : "failing";
}

/* --- calls --- */

static void on_done(struct fetch *f, int ok, const char *err, void *arg);

/* "URL/v2/apps/ID[?force=true]" */
static int app_url(const struct marathon *m, size_t i, int force, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/v2/apps%s%s", m->conf->url, m->apps[i].id,
			 force ? "?force=true" : "");

	return n > 0 && (size_t)n < outlen ? 0 : -1;
}

static int start_call(struct marathon *m, size_t i, const char *method, const char *body, int force)
{
	static const struct fetch_hooks hooks = {.on_done = on_done};
	const char *headers[4] = {"Accept: application/json", NULL, NULL, NULL};
	struct mapp *a = &m->a[i];
	struct fetch_req req = {.method = method, .headers = headers};
	char url[2048];
	size_t h = 1;

	if (app_url(m, i, force, url, sizeof(url)) < 0)
		return -1;
	if (body) {
		headers[h++] = "Content-Type: application/json";
		req.body = body;
		req.body_len = strlen(body);
	}
	if (m->auth_header)
		headers[h++] = m->auth_header;
	req.url = url;
	req.userpwd = m->conf->userpwd;
	req.timeout_ms = m->conf->timeout_ms;
	req.connect_timeout_ms = m->conf->timeout_ms < 10000 ? m->conf->timeout_ms : 10000;
	req.max_body = APP_BODY_MAX;
	a->f = fetch_start(m->fl, &req, &hooks, a);
	if (!a->f)
		return -1;
	a->put = body != NULL;
	a->sent_at = ev_now(m->loop);
	return 0;
}

void marathon_tick(struct marathon *m, unsigned tick)
{
	m->tick = tick;
	marathon_read_due(m);
}

void marathon_read_due(struct marathon *m)
{
	ev_tstamp now = ev_now(m->loop);
	double poll_s = m->events ? TRANSITION_POLL_EVENTS_S : TRANSITION_POLL_S;

	if (backing_off(m))
		return;
	for (size_t i = 0; i < m->napps; i++) {
		struct mapp *a = &m->a[i];
		const struct marathon_app *p = &a->pub;
		int moving = p->deploying > 0 || p->running + p->staged != p->instances;

		if (a->f || now < p->hold_until)
			continue;
		if (p->stale || a->need_read || p->state == MAPP_UNKNOWN ||
		    now - p->read_at >= (double)m->conf->resync_ms / 1000.0 ||
		    (p->state == MAPP_KNOWN && moving && now - p->read_at >= poll_s)) {
			if (start_call(m, i, "GET", NULL, 0) < 0)
				log_error("marathon_call",
					  "app=%s error=\"cannot start a request\"", m->apps[i].id);
		}
	}
}

int marathon_scale(struct marathon *m, size_t i, long long instances)
{
	struct mapp *a = &m->a[i];
	char body[64];
	/* Marathon refuses a PUT while a deployment runs: with force, say so at once. */
	int force = a->pub.force_next || (a->pub.deploying > 0 && m->conf->force);

	if (!marathon_can_put(m, i))
		return -1;
	if (a->f) {
		/* A read still out: the PUT's answer and the read after it say more. */
		fetch_cancel(a->f);
		a->f = NULL;
	}
	snprintf(body, sizeof(body), "{\"instances\":%lld}", instances);
	if (start_call(m, i, "PUT", body, force) < 0) {
		log_error("marathon_call", "app=%s error=\"cannot start a request\"",
			  m->apps[i].id);
		return -1;
	}
	a->put_from = a->pub.instances;
	a->pub.inflight_to = instances;
	a->pub.put_tick = m->tick;
	a->pub.force_next = 0;
	return 0;
}

/* Counts a failed call; one that was sent before the last counted failure adds nothing. */
static void failure(struct marathon *m, struct mapp *a, int auth, const char *what)
{
	ev_tstamp now = ev_now(m->loop);
	struct backoff bo = {.base_s = BACKOFF_BASE_S,
			     .cap_s = (double)m->conf->backoff_max_ms / 1000.0,
			     .jitter = 0.5};
	double delay;

	m->auth_failed = auth;
	snprintf(m->last_error, sizeof(m->last_error), "%s", what);
	if (m->failures > 0 && a->sent_at < m->fail_at)
		return;
	m->failures++;
	m->fail_at = now;
	delay = backoff_delay(&bo, m->failures);
	m->backoff_until = now + delay;
	log_warn("marathon_backoff", "failures=%u delay_ms=%.0f", m->failures, delay * 1000.0);
}

static void success(struct marathon *m)
{
	if (m->failures > 0)
		log_info("marathon_recovered", "after_failures=%u", m->failures);
	m->failures = 0;
	m->auth_failed = 0;
	m->last_error[0] = '\0';
}

/* Marathon's {"message": …}, cut to fit a log line; "" when there is none. */
static void answer_message(struct fetch *f, char *out, size_t outlen)
{
	size_t len;
	const char *body = fetch_body(f, &len);
	json_t *doc = json_loadb(body, len, 0, NULL);
	json_t *msg = json_object_get(doc, "message");

	snprintf(out, outlen, "%s", json_is_string(msg) ? json_string_value(msg) : "");
	for (char *p = out; *p != '\0'; p++) {
		if (*p == '"')
			*p = '\'';
	}
	json_decref(doc);
}

static void auth_failed(struct marathon *m, struct mapp *a, struct fetch *f, long status)
{
	char msg[256], what[400];

	answer_message(f, msg, sizeof(msg));
	log_error("marathon_auth_failed",
		  "app=%s status=%ld message=\"%s\" hint=\"Marathon refused the credentials: check "
		  "marathon.username and marathon.password, or marathon.token_file\"",
		  m->apps[a->i].id, status, msg);
	snprintf(what, sizeof(what), "%ld %s", status, msg);
	failure(m, a, 1, what);
}

static void read_done(struct marathon *m, struct mapp *a, struct fetch *f, long status)
{
	const char *id = m->apps[a->i].id, *body;
	struct marathon_app *p = &a->pub;
	enum mapp_state was = p->state;
	char what[300];
	size_t len;

	if (status == 404) {
		success(m);
		p->state = MAPP_MISSING;
		p->instances = p->running = p->staged = p->deploying = 0;
		p->read_at = ev_now(m->loop);
		p->stale = a->need_read = 0;
		if (!a->missing_reported)
			log_warn(
			    "marathon_app_missing",
			    "app=%s reason=\"Marathon has no such app; it is never scaled (a PUT "
			    "would create it)\"",
			    id);
		a->missing_reported = 1;
		return;
	}
	body = fetch_body(f, &len);
	if (status != 200 || marathon_parse_app(body, len, p) < 0) {
		snprintf(what, sizeof(what), "GET %s: %s %ld", id,
			 status == 200 ? "unexpected body" : "status", status);
		log_warn("marathon_read_failed", "app=%s status=%ld", id, status);
		if (status >= 500 || status == 200)
			failure(m, a, 0, what);
		else
			p->hold_until = ev_now(m->loop) + HOLD_4XX_S;
		return;
	}
	success(m);
	a->missing_reported = 0;
	p->state = MAPP_KNOWN;
	p->read_at = ev_now(m->loop);
	p->stale = a->need_read = 0;
	p->uncertain = -1;
	if (p->deploying == 0)
		p->locked = 0;
	log_event(was != MAPP_KNOWN ? LOG_INFO : LOG_DEBUG, "marathon_app",
		  "app=%s instances=%lld running=%lld staged=%lld deployments=%d image=%s", id,
		  p->instances, p->running, p->staged, p->deploying, p->image ? p->image : "-");
}

static void put_done(struct marathon *m, struct mapp *a, struct fetch *f, long status)
{
	const char *id = m->apps[a->i].id, *dep = fetch_header(f, "Marathon-Deployment-Id");
	struct marathon_app *p = &a->pub;
	long long to = p->inflight_to;
	char msg[256], what[300];

	p->inflight_to = -1;
	a->need_read = status != 409; /* a locked app is read while its deployment runs anyway */
	if (status == 200 || status == 201) {
		success(m);
		p->instances = to;
		p->locked = 0;
		p->deploying = dep ? 1 : p->deploying; /* until a read says it ended */
		if (to > a->put_from)
			p->last_up = ev_now(m->loop);
		/* The tasks last read may predate the last rise: until a read says how many are
		 * left, the instances before this scale-down still count. */
		if (to < a->put_from && a->put_from > p->uncertain)
			p->uncertain = a->put_from;
		log_event(status == 201 ? LOG_WARN : LOG_INFO, "marathon_scaled",
			  "app=%s from=%lld to=%lld status=%ld deployment=%s ms=%.0f%s", id,
			  a->put_from, to, status, dep ? dep : "-", fetch_elapsed(f) * 1000.0,
			  status == 201 ? " warning=\"Marathon created the app\"" : "");
		return;
	}
	if (status == 409) {
		answer_message(f, msg, sizeof(msg));
		p->locked = 1;
		p->force_next = m->conf->force;
		/* Without force: not again before the next tick. With it: at once. */
		p->put_tick = m->conf->force ? 0 : m->tick;
		log_info("marathon_locked", "app=%s to=%lld retry=%s message=\"%s\"", id, to,
			 m->conf->force ? "force" : "next_tick", msg);
		return;
	}
	if (status == 404) {
		p->state = MAPP_MISSING;
		return;
	}
	answer_message(f, msg, sizeof(msg));
	log_error("marathon_put_failed", "app=%s to=%lld status=%ld message=\"%s\"", id, to, status,
		  msg);
	if (status >= 500) {
		/* It may have been applied: count it until a read says. */
		p->uncertain = to > p->uncertain ? to : p->uncertain;
		p->stale = 1;
		snprintf(what, sizeof(what), "PUT %s: status %ld", id, status);
		failure(m, a, 0, what);
	} else {
		p->hold_until = ev_now(m->loop) + HOLD_4XX_S;
	}
}

static void count_call(struct marathon *m, const char *method, long status, double seconds)
{
	char st[24];

	if (status > 0)
		snprintf(st, sizeof(st), "%ld", status);
	else
		snprintf(st, sizeof(st), "error");
	metrics_add(m->m_calls, 1, method, st);
	metrics_observe(m->m_seconds, seconds, method);
}

static void on_done(struct fetch *f, int ok, const char *err, void *arg)
{
	struct mapp *a = arg;
	struct marathon *m = a->m;
	long status = ok ? fetch_status(f) : 0;
	const char *method = a->put ? "PUT" : "GET";
	char what[400];

	a->f = NULL;
	count_call(m, method, status, fetch_elapsed(f));
	if (!ok) {
		log_warn("marathon_call_failed", "app=%s method=%s error=\"%s\"", m->apps[a->i].id,
			 method, err ? err : "failed");
		if (a->put) {
			a->pub.uncertain = a->pub.inflight_to > a->pub.uncertain
					       ? a->pub.inflight_to
					       : a->pub.uncertain;
			a->pub.inflight_to = -1;
			a->pub.stale = 1;
		}
		snprintf(what, sizeof(what), "%s %s: %s", method, m->apps[a->i].id,
			 err ? err : "failed");
		failure(m, a, 0, what);
	} else if (status == 401 || status == 403) {
		if (a->put) {
			a->pub.inflight_to = -1;
			a->pub.stale = 1;
		}
		auth_failed(m, a, f, status);
	} else if (a->put) {
		put_done(m, a, f, status);
	} else {
		read_done(m, a, f, status);
	}
	if (m->changed)
		m->changed(m->arg);
}

json_t *marathon_status_json(const struct marathon *m)
{
	double left = m->backoff_until - ev_now(m->loop);

	return json_pack("{s:s, s:s, s:I, s:I, s:s}", "url", m->conf->url, "health",
			 marathon_health(m), "failures", (json_int_t)m->failures, "backoff_ms",
			 (json_int_t)(backing_off(m) && left > 0 ? left * 1000.0 : 0), "last_error",
			 m->last_error);
}

/* --- events --- */

static int mark_app(struct marathon *m, json_t *id)
{
	const char *s = json_string_value(id);
	char norm[1024];

	if (!s)
		return 0;
	/* Marathon names apps with a leading slash; a path without one is taken as absolute. */
	snprintf(norm, sizeof(norm), "%s%s", s[0] == '/' ? "" : "/", s);
	for (size_t i = 0; i < m->napps; i++) {
		if (strcmp(m->apps[i].id, norm) == 0) {
			m->a[i].need_read = 1;
			return 1;
		}
	}
	return 0;
}

/* A deployment plan names its apps in its steps' actions and in its target. */
static int mark_plan(struct marathon *m, json_t *plan)
{
	json_t *steps = json_object_get(plan, "steps"), *step, *action, *app;
	json_t *apps = conf_lookup(plan, "target.apps");
	size_t i, k;
	int ours = 0;

	json_array_foreach(steps, i, step)
	{
		json_array_foreach(json_object_get(step, "actions"), k, action) ours |=
		    mark_app(m, json_object_get(action, "app"));
	}
	json_array_foreach(apps, i, app) ours |= mark_app(m, json_object_get(app, "id"));
	return ours;
}

int marathon_event(struct marathon *m, const char *type, json_t *data)
{
	int ours = 0;

	if (strcmp(type, "status_update_event") == 0)
		ours = mark_app(m, json_object_get(data, "appId"));
	else if (strncmp(type, "deployment_", 11) == 0)
		ours = mark_plan(m, json_object_get(data, "plan"));
	if (ours)
		log_debug("marathon_event", "event=%s", type);
	return ours;
}

void marathon_events_attached(struct marathon *m, int attached)
{
	m->events = attached;
}

const char *marathon_auth_header(const struct marathon *m)
{
	return m->auth_header;
}

void marathon_resync(struct marathon *m)
{
	for (size_t i = 0; i < m->napps; i++)
		m->a[i].pub.stale = 1;
}
