/* dash: the dashboard on the scaler's own listen address.
 *
 *   GET /        the page: scaler/dashboard.html (its script and style inline), compiled into
 *                the binary; its Content-Security-Policy lets it fetch nothing but from here
 *   GET /events  server-sent events the page draws from:
 *                  snapshot  once, on connecting: the apps, the history (history.c), the state
 *                            and the last decisions, newest first
 *                  tick      every DASH_SAMPLE_S: the newest sample and the state
 *                  decision  each decision that has a log line at info, when it is made
 *
 * The state: per app what was last decided (demand, want, target, requested, running, held and
 * why); the gate as a matrix apps x agents, each cell ready, warming (layers present / total),
 * unreachable, excluded (constraints), unknown (not asked yet) or error, with the image's state
 * in the node's Docker; each agent's cache as its /metrics says (cachestats.c, read only while
 * a stream is open); and whether this scaler acts (alone, or as the elected leader).
 *
 * Bounds: a sample a second into rings of DASH_HISTORY; the first DASH_APPS_MAX apps and
 * DASH_AGENTS_MAX agents are shown, the rest counted; at most DASH_STREAMS_MAX streams (then
 * 503); each stream may queue its snapshot plus DASH_QUEUE_SLACK, past that it is dropped. An
 * event is formatted once and written to every stream. The page and the stream only read: the
 * stream takes nothing from the client, and the router (status.c) answers only GET and HEAD. */
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "scaler.h"

#define RETRY_MS 2000 /* a browser reconnects this long after the stream drops */
#define PAGE_CSP                                                                                   \
	"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "              \
	"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "                 \
	"frame-ancestors 'none'"

struct dash_stream {
	struct dash *d;
	struct httpd_conn *conn;
	LIST_ENTRY(dash_stream) link;
};

struct dash {
	const struct scaler *s;
	ev_timer sample;
	size_t napps; /* shown: the first DASH_APPS_MAX */
	struct history *hist;
	struct history_point *points; /* [napps]: one sample being made */
	double *held_seen;	      /* [napps]: each app's held seconds at the sample before */
	struct cachestats *cs;
	LIST_HEAD(, dash_stream) streams;
	unsigned nstreams;
	unsigned long long dropped, refused;
	int refusing; /* at the cap: warned once until a stream goes */
};

/* A string jansson refuses (cut inside a UTF-8 sequence) becomes "?". */
static json_t *text(const char *s)
{
	json_t *v = json_string(s);

	return v ? v : json_string("?");
}

/* --- the state --- */

static json_t *app_state(const struct scaler *s, size_t i)
{
	const struct scaler_app *sa = &s->apps[i];
	const struct marathon_app *mp = marathon_app(s->marathon, i);
	double held_s = gate_held_s(s->gate, i);

	return json_pack("{s:o, s:b, s:I, s:I, s:I, s:I, s:I, s:b, s:f, s:s, s:I, s:o}", "demand",
			 sa->demand == DEMAND_UNKNOWN ? json_null()
						      : json_integer((json_int_t)sa->demand),
			 "fill", s->demands[i]->fill, "want", (json_int_t)sa->want, "target",
			 (json_int_t)sa->target, "requested", (json_int_t)mp->instances, "running",
			 (json_int_t)mp->running, "staged", (json_int_t)mp->staged, "held",
			 held_s > 0 || s->plan[i].gated, "held_s", held_s, "action",
			 sa->action > 0	  ? "up"
			 : sa->action < 0 ? "down"
					  : "none",
			 "to", (json_int_t)sa->to, "why",
			 text(sa->why == PLAN_GATED ? sa->gate_why : plan_why_name(sa->why)));
}

static int is(const char *a, const char *b)
{
	return a && strcmp(a, b) == 0;
}

/* One cell of the matrix from the gate's view of one cache for one app. */
static json_t *cell(json_t *gc)
{
	const char *agent = json_string_value(json_object_get(gc, "agent"));
	const char *st = json_string_value(json_object_get(gc, "state"));
	const char *word = is(agent, "ready")	      ? "ready"
			   : is(agent, "excluded")    ? "excluded"
			   : is(agent, "unreachable") ? "unreachable"
			   : is(st, "unknown")	      ? "unknown"
			   : is(st, "error")	      ? "error"
						      : "warming";

	return json_pack("{s:s, s:O?, s:O?, s:O?, s:O?}", "s", word, "p",
			 json_object_get(gc, "layers_present"), "n",
			 json_object_get(gc, "layers_total"), "rt", json_object_get(gc, "runtime"),
			 "cs", json_object_get(gc, "cache_state"));
}

/* The agents (the gate's caches, the first DASH_AGENTS_MAX) with their caches' own numbers,
 * and the matrix; the caches' numbers are asked for here, so only while someone looks. */
static void gate_state(struct dash *d, json_t *state)
{
	const struct scaler *s = d->s;
	size_t nc = d->napps > 0 ? gate_ncaches(s->gate) : 0;
	size_t shown = nc < DASH_AGENTS_MAX ? nc : DASH_AGENTS_MAX;
	json_t *agents = json_array(), *gate = json_array(), *col[DASH_AGENTS_MAX];
	const char *urls[DASH_AGENTS_MAX];

	for (size_t k = 0; k < shown; k++) {
		col[k] = gate_cache_json(s->gate, k, 0);
		urls[k] = json_string_value(json_object_get(col[k], "url"));
		if (!urls[k])
			urls[k] = "";
	}
	cachestats_track(d->cs, urls, shown);
	cachestats_poll(d->cs);
	for (size_t k = 0; agents && k < shown; k++)
		json_array_append_new(agents, json_pack("{s:s, s:O?, s:o}", "url", urls[k], "host",
							json_object_get(col[k], "hostname"),
							"cache", cachestats_json(d->cs, urls[k])));
	for (size_t k = 0; k < shown; k++)
		json_decref(col[k]);
	for (size_t i = 0; gate && i < d->napps; i++) {
		json_t *row = json_array();

		for (size_t k = 0; row && k < shown; k++) {
			json_t *gc = gate_cache_json(s->gate, k, i);

			json_array_append_new(row, cell(gc));
			json_decref(gc);
		}
		json_array_append_new(gate, row);
	}
	json_object_set_new(state, "agents", agents);
	json_object_set_new(state, "agents_more", json_integer((json_int_t)(nc - shown)));
	json_object_set_new(state, "gate", gate);
}

static json_t *state_json(struct dash *d)
{
	const struct scaler *s = d->s;
	json_t *apps = json_array(), *st;

	for (size_t i = 0; apps && i < d->napps; i++)
		json_array_append_new(apps, app_state(s, i));
	st = json_pack("{s:b, s:o, s:I, s:b, s:s, s:o}", "acting", s->acting, "leader",
		       s->leader ? leader_status_json(s->leader)
				 : json_pack("{s:s, s:b}", "state", "off", "acting", 1),
		       "capacity", (json_int_t)s->capacity, "dry_run", s->dry_run, "marathon",
		       marathon_health(s->marathon), "apps", apps);
	if (st)
		gate_state(d, st);
	return st;
}

static json_t *snapshot_json(struct dash *d)
{
	const struct scaler_conf *c = d->s->conf;
	json_t *apps = json_array();

	for (size_t i = 0; apps && i < d->napps; i++)
		json_array_append_new(
		    apps,
		    json_pack("{s:o, s:i, s:I, s:I, s:s}", "id", text(c->apps[i].id), "priority",
			      c->apps[i].priority, "min", (json_int_t)c->apps[i].min, "max",
			      (json_int_t)c->apps[i].max, "source", c->apps[i].demand.src->type));
	return json_pack("{s:i, s:I, s:f, s:i, s:o, s:I, s:o, s:o, s:o}", "v", 1, "t_ms",
			 (json_int_t)(ev_now(d->s->loop) * 1000), "sample_s", DASH_SAMPLE_S,
			 "history_n", DASH_HISTORY, "apps", apps, "apps_more",
			 (json_int_t)(c->napps - d->napps), "history",
			 history_samples_json(d->hist), "decisions",
			 history_decisions_json(d->hist), "state", state_json(d));
}

/* --- the streams --- */

static void broadcast(struct dash *d, const char *ev, size_t len)
{
	struct dash_stream *st, *next;

	for (st = LIST_FIRST(&d->streams); st; st = next) {
		next = LIST_NEXT(st, link);
		if (httpd_stream_write(st->conn, ev, len) < 0)
			d->dropped++; /* its release has run: st is gone */
	}
}

/* Formats doc (taken) once, as event TYPE, for every stream. */
static void send_all(struct dash *d, const char *type, json_t *doc)
{
	size_t len;
	char *ev = doc ? sse_event(type, doc, 0, &len) : NULL;

	json_decref(doc);
	if (!ev) {
		log_error("dash_event", "type=%s error=\"out of memory\"", type);
		return;
	}
	broadcast(d, ev, len);
	free(ev);
}

/* The connection has ended (the peer went, it was dropped, or the server stops). */
static void stream_gone(struct httpd_conn *conn, void *arg)
{
	struct dash_stream *st = arg;

	(void)conn;
	LIST_REMOVE(st, link);
	st->d->nstreams--;
	st->d->refusing = 0;
	free(st);
}

static void refuse(struct dash *d, struct httpd_conn *conn)
{
	static const char body[] = "too many dashboards open: try again later\n";

	d->refused++;
	if (!d->refusing)
		log_warn("dash_streams_full", "streams=%u max=%d", d->nstreams, DASH_STREAMS_MAX);
	d->refusing = 1;
	httpd_add_header(conn, "Retry-After", "5");
	httpd_respond(conn, 503, body, sizeof(body) - 1);
}

static void events_open(struct dash *d, struct httpd_conn *conn)
{
	struct dash_stream *st;
	size_t len = 0;
	json_t *doc;
	char *ev;

	if (d->nstreams >= DASH_STREAMS_MAX) {
		refuse(d, conn);
		return;
	}
	doc = snapshot_json(d);
	ev = doc ? sse_event("snapshot", doc, RETRY_MS, &len) : NULL;
	json_decref(doc);
	st = calloc(1, sizeof(*st));
	if (!ev || !st) {
		httpd_respond(conn, 500, "out of memory\n", 14);
		goto out;
	}
	httpd_add_header(conn, "Content-Type", "text/event-stream");
	httpd_add_header(conn, "Cache-Control", "no-store");
	if (httpd_respond_stream(conn, 200, len + DASH_QUEUE_SLACK) < 0)
		goto out; /* HEAD, or gone already */
	*st = (struct dash_stream){.d = d, .conn = conn};
	LIST_INSERT_HEAD(&d->streams, st, link);
	d->nstreams++;
	httpd_set_release(conn, stream_gone, st);
	st = NULL;
	httpd_stream_write(conn, ev, len); /* on failure the release has run */
out:
	free(st);
	free(ev);
}

static void page(struct httpd_conn *conn)
{
	httpd_add_header(conn, "Content-Type", "text/html; charset=utf-8");
	httpd_add_header(conn, "Content-Security-Policy", "%s", PAGE_CSP);
	httpd_add_header(conn, "X-Content-Type-Options", "nosniff");
	httpd_add_header(conn, "Referrer-Policy", "no-referrer");
	httpd_add_header(conn, "Cache-Control", "no-cache");
	httpd_respond(conn, 200, (const char *)dash_page, dash_page_len);
}

int dash_handle(struct dash *d, struct httpd_conn *conn, const struct httpd_req *req)
{
	if (strcmp(req->path, "/") == 0)
		page(conn);
	else if (strcmp(req->path, "/events") == 0)
		events_open(d, conn);
	else
		return 0;
	return 1;
}

/* --- sampling --- */

/* Held at the moment, or at some moment since the sample before (a hold shorter than a
 * sample still shows). */
static int held_since_last(struct dash *d, size_t i)
{
	const struct scaler *s = d->s;
	double total = gate_held_total_s(s->gate, i);
	int held = s->plan[i].gated || gate_held_s(s->gate, i) > 0 || total > d->held_seen[i];

	d->held_seen[i] = total;
	return held;
}

static void on_sample(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dash *d = w->data;
	const struct scaler *s = d->s;

	(void)revents;
	for (size_t i = 0; i < d->napps; i++) {
		const struct marathon_app *mp = marathon_app(s->marathon, i);

		d->points[i] = (struct history_point){.demand = s->apps[i].demand,
						      .target = s->apps[i].target,
						      .requested = mp->instances,
						      .running = mp->running,
						      .held = held_since_last(d, i)};
	}
	history_sample(d->hist, ev_now(loop), s->capacity, d->points);
	if (d->nstreams > 0)
		send_all(d, "tick",
			 json_pack("{s:I, s:o, s:o}", "t_ms", (json_int_t)(ev_now(loop) * 1000),
				   "sample", history_last_json(d->hist), "state", state_json(d)));
}

void dash_decision(struct dash *d, const struct history_decision *dec)
{
	if (!d)
		return;
	history_decision(d->hist, dec);
	if (d->nstreams > 0)
		send_all(d, "decision", history_decision_json(dec));
}

/* --- life --- */

struct dash *dash_new(const struct scaler *s)
{
	struct dash *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->s = s;
	d->napps = s->conf->napps < DASH_APPS_MAX ? s->conf->napps : DASH_APPS_MAX;
	LIST_INIT(&d->streams);
	d->hist = history_new(d->napps, DASH_HISTORY, DASH_DECISIONS);
	d->points = calloc(d->napps ? d->napps : 1, sizeof(*d->points));
	d->held_seen = calloc(d->napps ? d->napps : 1, sizeof(*d->held_seen));
	d->cs = cachestats_new(s->loop, s->fl);
	if (!d->hist || !d->points || !d->held_seen || !d->cs) {
		dash_free(d);
		return NULL;
	}
	ev_timer_init(&d->sample, on_sample, DASH_SAMPLE_S, DASH_SAMPLE_S);
	d->sample.data = d;
	ev_timer_start(s->loop, &d->sample);
	return d;
}

/* The streams are gone by now (httpd_free ends them first); then the timer, the reads of the
 * caches, the rings. */
void dash_free(struct dash *d)
{
	if (!d)
		return;
	while (!LIST_EMPTY(&d->streams))
		httpd_close(LIST_FIRST(&d->streams)->conn);
	ev_timer_stop(d->s->loop, &d->sample);
	cachestats_free(d->cs);
	history_free(d->hist);
	free(d->points);
	free(d->held_seen);
	free(d);
}

json_t *dash_status_json(const struct dash *d)
{
	size_t queued = 0;
	const struct dash_stream *st;

	for (st = LIST_FIRST(&d->streams); st; st = LIST_NEXT(st, link))
		queued += httpd_stream_queued(st->conn);
	return json_pack("{s:i, s:i, s:I, s:I, s:I, s:I}", "streams", (int)d->nstreams,
			 "streams_max", DASH_STREAMS_MAX, "queued_bytes", (json_int_t)queued,
			 "dropped", (json_int_t)d->dropped, "refused", (json_int_t)d->refused,
			 "samples", (json_int_t)history_count(d->hist));
}
