/* microscale-scaler: every module of the microscaling daemon and its prototypes, grouped by the
 * file that defines them, so that this header reads as a map of the program.
 *
 * One tick (scaler.c): each app's demand source gives a reading (demand*.c); the allocation
 * shares the capacity by priority (alloc.c); apps that would rise ask the gate whether their
 * image is complete in every cache (gate.c); the plan orders the calls, scale-downs before the
 * scale-ups that use the room they free (plan.c); the Marathon client sends them (marathon.c). */
#ifndef MS_SCALER_H
#define MS_SCALER_H

#include <ev.h>
#include <jansson.h>
#include <regex.h>
#include <stddef.h>

#include "conf.h"
#include "fetch.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"

#define SCALER_INSTANCES_MAX 1000000LL
#define DEMAND_UNKNOWN (-1LL) /* no reading (yet, or the last one failed): the app stays put */

/* config.c: the JSON config */
struct demand_source;

/* What an app's "demand" object says: its source and the settings that source parsed. */
struct demand_conf {
	const struct demand_source *src;
	void *params; /* owned; freed by src->free_params */
};

struct app_conf {
	char *id;     /* "/prod/web": absolute, Marathon's id grammar */
	int priority; /* 1 is served first */
	long long min, max;
	long long max_delta;	    /* most change per tick; 0: unlimited */
	long long down_cooldown_ms; /* a scale-down waits this long after a scale-up */
	char *image;		    /* overrides Marathon's container.docker.image; or NULL */
	struct demand_conf demand;
};

struct marathon_conf {
	char *url;     /* no trailing slash */
	char *userpwd; /* "user:password" for Basic auth, or NULL; never logged */
	char *token;   /* DC/OS token from token_file, or NULL; never logged */
	int force;     /* a 409 is retried at once with ?force=true */
	int events;    /* follow GET /v2/events (on by default) */
	long timeout_ms;
	long resync_ms;	     /* every app is read again at least this often */
	long backoff_max_ms; /* cap of the backoff after 5xx, timeouts, refused connections */
};

struct mesos_conf {
	char *url;	 /* no trailing slash; NULL: no master */
	char *userpwd;	 /* "user:password" for Basic auth, or NULL; never logged */
	char *cache_url; /* an agent's cache: "{hostname}" is replaced */
	long refresh_ms;
};

struct zk_conf {
	char *servers; /* "host:port,…"; NULL: no election, this scaler acts alone */
	char *path;    /* the election's node */
	long session_timeout_ms;
	char *auth;	/* "user:password" for digest auth, or NULL; never logged */
	long settle_ms; /* a new leader waits this before it acts */
};

struct scaler_conf {
	struct marathon_conf marathon;
	struct mesos_conf mesos;
	struct zk_conf zk;
	long long gate_grace_ms; /* a cache silent this long is left out of the gate */
	int require_runtime; /* gate.require_runtime: 1, 0, or -1 (when the cache reports one) */
	char *cache_token;   /* the caches' admin token, or NULL; never logged */
	char **caches;	     /* base URLs, no trailing slash */
	size_t ncaches;
	long long capacity;	    /* fixed; 0 when it comes from the fleet: */
	double task_cpus, task_mem; /* one task's resources */
	long interval_ms;
	char *listen;
	enum log_level log_level;
	struct app_conf *apps;
	size_t napps;
};

/* Fills sc from the defaults, then c. -1 with c->err set ("FILE: KEY: reason"). sc is always
 * safe to pass to scaler_conf_free afterwards. */
int scaler_conf_load(struct scaler_conf *sc, struct conf *c);
void scaler_conf_free(struct scaler_conf *sc);
/* demand.c: the demand source interface and one app's reading at run time (struct demand). A
 * source is one file that defines a struct demand_source and is listed in demand_conf.c's table;
 * the calls go one way: demand_conf.c -> the sources -> demand.c. */
struct demand;

/* What a source may use at run time. */
struct demand_env {
	struct ev_loop *loop;
	struct fetch_loop *fl;
	long interval_ms;
	long long capacity;
	/* An asynchronous reading arrived (between ticks): the scaler decides again. */
	void (*changed)(void *arg);
	void *arg;
};

struct demand_source {
	const char *type;
	const char *const *keys; /* its keys besides "type", NULL-ended */
	/* Checks obj (the "demand" object, its keys already known) and keeps the settings in
	 * *params; -1 with c->err naming PREFIX.KEY. min/max: the app's bounds. */
	int (*parse)(struct conf *c, json_t *obj, const char *prefix, long long min, long long max,
		     void **params);
	void (*free_params)(void *params);
	/* Run time. start sets d->state (and may set d->fill); stop undoes it. Both optional. */
	int (*start)(struct demand *d);
	void (*stop)(struct demand *d);
	/* Once per tick: sets d->value now, or starts a reading that will (demand_set). */
	void (*poll)(struct demand *d);
};

struct demand {
	const struct app_conf *app;
	const struct demand_env *env;
	long long value;      /* instances wanted; DEMAND_UNKNOWN when there is no reading */
	int fill;	      /* takes whatever capacity is left (the remainder source) */
	ev_tstamp changed_at; /* when value last changed */
	char err[256];	      /* why the last reading failed, "" when it did not */
	void *state;	      /* the source's */
};

struct demand *demand_new(const struct app_conf *app, const struct demand_env *env);
void demand_free(struct demand *d);
void demand_poll(struct demand *d);
/* For sources: records a reading (or DEMAND_UNKNOWN with a reason, logged when it changes). */
void demand_set(struct demand *d, long long value, const char *err);

/* demand_conf.c: an app's "demand" object, through the table of sources */
/* Parses an app's "demand" object (PREFIX names it in errors). */
int demand_conf_parse(struct conf *c, json_t *obj, const char *prefix, long long min, long long max,
		      struct demand_conf *out);
void demand_conf_free(struct demand_conf *dc);
/* "random, static, http, remainder": for messages. */
const char *demand_conf_sources(void);

/* demand_random.c, demand_static.c, demand_http.c, demand_remainder.c */
extern const struct demand_source demand_random_source;
extern const struct demand_source demand_static_source;
extern const struct demand_source demand_http_source;
extern const struct demand_source demand_remainder_source;
/* demand_http.c: RFC 6901 JSON pointer ("" is the document). NULL when it does not resolve. */
json_t *demand_http_pointer_get(json_t *doc, const char *pointer);
/* Reads a reading from a body: a bare number, or the number at pointer (NULL: bare). -1 with
 * err set. */
int demand_http_value(const char *body, size_t len, const char *pointer, double per_instance,
		      long long *out, char *err, size_t errlen);

/* alloc.c: the allocation, a pure function. Rules, strongest first: the sum of targets never
 * exceeds capacity; min and max; max_delta; the down cooldown. Capacity is served by priority
 * (1 first); within a priority, apps share equally, "fill" apps last; a fill app does not rise
 * while a demand of its priority or a more urgent one is unknown (the rest is not known yet). */
struct alloc_app {
	/* in */
	int priority;
	long long min, max, max_delta; /* max_delta 0: unlimited */
	long long demand;	       /* DEMAND_UNKNOWN: stay at cur */
	int fill;		       /* wants whatever is left */
	long long cur;		       /* instances requested now */
	int cooldown;		       /* a scale-down would come too soon after a scale-up */
	int hold_up;		       /* may not rise (the gate holds it) */
	int absent;		       /* not in Marathon (or not read yet): gets nothing */
	/* out */
	long long want;	  /* what it asks for on its own: demand within its bounds (gate aside) */
	long long target; /* what it gets */
	long long ceil;	  /* internal: the most it may get (want, or cur while the gate holds) */
};
void alloc_run(struct alloc_app *apps, size_t n, long long capacity);

/* plan.c: from the allocation to the calls. Scale-downs go out at once; a scale-up goes out only
 * when the room it needs is free now, counting every app at the most it may hold (instances
 * requested, tasks still alive, a PUT in flight), so the sum never exceeds capacity, not even
 * between two calls. */
enum plan_why {
	PLAN_STEADY,  /* at its target */
	PLAN_SEND,    /* a PUT goes out */
	PLAN_GATED,   /* the image is not ready in every cache */
	PLAN_ROOM,    /* waits for room that scale-downs in progress will free */
	PLAN_BUSY,    /* a call of this app is in flight, or it was changed this tick */
	PLAN_UNKNOWN, /* some app's state is not known yet: no scale-up may go out */
	PLAN_MISSING, /* not in Marathon: never PUT (Marathon would create it) */
};
struct plan_app {
	int known;	 /* read from Marathon */
	int missing;	 /* Marathon answered 404 */
	int can_put;	 /* no call in flight, not locked, not backing off */
	long long occ;	 /* room it may hold now: marathon_occupancy() */
	long long tasks; /* running + staged */
	/* out */
	int gated;	   /* the gate holds its rise */
	long long held_to; /* when gated: the target it would have had */
	int action;	   /* -1 down, +1 up, 0 none */
	long long to;	   /* the PUT's instances when action != 0 */
	enum plan_why why;
};
/* 1: app i may rise now; 0: hold it (and the gate starts whatever it needs to learn more). */
typedef int (*plan_gate_fn)(size_t i, void *arg);
/* a[i] and p[i] describe app i; a[i].absent and hold_up are set here. */
void plan_decide(struct alloc_app *a, struct plan_app *p, size_t n, long long capacity,
		 plan_gate_fn gate, void *arg);
void plan_order(const struct alloc_app *a, struct plan_app *p, size_t n, long long capacity);
const char *plan_why_name(enum plan_why why);

/* marathon.c: the Marathon client. One call per app at a time; apps' calls run concurrently.
 * Reads at start, after each change, while a deployment runs and every resync_ms. 5xx, timeouts
 * and refused connections back off (capped, with jitter) every call; 401/403 too, logged as a
 * credentials error; 409 holds the app until the next tick (or retries with ?force=true). */
enum mapp_state {
	MAPP_UNKNOWN, /* not read yet */
	MAPP_KNOWN,
	MAPP_MISSING, /* 404 */
};
struct marathon_app {
	enum mapp_state state;
	long long instances; /* requested: as read, or as set by our last accepted PUT */
	long long running, staged;
	int deploying;	       /* deployments in progress, as last read (or started by our PUT) */
	char *image;	       /* container.docker.image, or NULL */
	json_t *constraints;   /* the app's "constraints" (owned), or NULL */
	long long inflight_to; /* a PUT in flight to this, or -1 */
	long long uncertain;   /* a PUT that may have landed: counted until the next read, or -1 */
	int stale;	       /* must be read before the next PUT */
	int locked;	       /* the last PUT was answered 409 */
	int force_next;	       /* the next PUT carries ?force=true */
	unsigned put_tick;     /* the tick of the last PUT */
	ev_tstamp last_up;     /* when a scale-up was last accepted (0: never) */
	ev_tstamp read_at;     /* last successful read (0: never) */
	ev_tstamp hold_until;  /* no PUT before this (after a 4xx) */
};
struct marathon;
struct marathon *marathon_new(struct ev_loop *loop, struct fetch_loop *fl,
			      const struct marathon_conf *conf, const struct app_conf *apps,
			      size_t napps, struct metrics *metrics, void (*changed)(void *arg),
			      void *arg);
/* Cancels every call (no callbacks) and frees m. */
void marathon_free(struct marathon *m);
/* Once per tick: starts the reads that are due. */
void marathon_tick(struct marathon *m, unsigned tick);
/* The same between ticks (after an answer): the read after a change goes out at once. */
void marathon_read_due(struct marathon *m);
const struct marathon_app *marathon_app(const struct marathon *m, size_t i);
int marathon_can_put(const struct marathon *m, size_t i);
/* The most room app i may hold now: the max of its instances, its tasks alive, a PUT in flight,
 * a PUT that got no answer, and (after an accepted scale-down) its instances before, until the
 * next read. */
long long marathon_occupancy(const struct marathon *m, size_t i);
/* PUT {"instances": N}. 0: sent; -1: not sent (busy, backing off, or out of memory). */
int marathon_scale(struct marathon *m, size_t i, long long instances);
/* "ok", "backoff", "auth_failed", "unreachable". */
const char *marathon_health(const struct marathon *m);
/* {"url", "health", "failures", "backoff_ms", "calls"}. */
json_t *marathon_status_json(const struct marathon *m);
/* Reads {"app": {...}} into a; -1 when the body is not an app. */
int marathon_parse_app(const char *body, size_t len, struct marathon_app *a);
/* An event from Marathon's event bus: the apps it names are read again at once. 1 when it named
 * one of ours. */
int marathon_event(struct marathon *m, const char *type, json_t *data);
/* Every app is read again before the next PUT (a new leader's first step). */
void marathon_resync(struct marathon *m);
/* Whether the event stream is attached: while it is, a deployment is polled less often. */
void marathon_events_attached(struct marathon *m, int attached);
/* "Authorization: token=…" when a token is configured, else NULL. */
const char *marathon_auth_header(const struct marathon *m);

/* events.c: Marathon's event stream (GET /v2/events, server-sent events) */
struct events;
typedef void (*events_fn)(const char *type, json_t *data, void *arg);
typedef void (*events_state_fn)(int attached, void *arg);
/* Opens the stream (loop NULL: only events_feed works, for tests) and keeps it open. */
struct events *events_new(struct ev_loop *loop, struct fetch_loop *fl,
			  const struct marathon_conf *conf, const char *auth_header,
			  events_fn on_event, events_state_fn on_state, void *arg);
void events_free(struct events *e);
/* Feeds stream bytes to the parser; complete events go to on_event. */
int events_feed(struct events *e, const char *buf, size_t len);
json_t *events_status_json(const struct events *e);

/* constraint.c: which agents an app's Marathon constraints let run its tasks (pure) */
enum constraint_op {
	CONSTRAINT_LIKE,   /* the field matches the expression, whole */
	CONSTRAINT_UNLIKE, /* it does not */
	CONSTRAINT_EQUAL,  /* CLUSTER or IS with a value */
	CONSTRAINT_SPREAD, /* UNIQUE, GROUP_BY, MAX_PER, CLUSTER alone: rules no agent out */
};
struct constraint {
	char *field; /* "hostname" or an attribute */
	enum constraint_op op;
	char *value;
	regex_t re;
	int compiled;
};
struct constraints {
	struct constraint *c;
	size_t n;
};
/* Marathon's [[field, op, value?], …] (NULL or null: none). -1 with err set. */
int constraints_parse(json_t *list, struct constraints *out, char *err, size_t errlen);
void constraints_free(struct constraints *cs);
/* 1 when an agent with this hostname and attributes (an object, or NULL) may run the app. */
int constraints_allow(const struct constraints *cs, const char *hostname, json_t *attributes);

/* mesos.c: the fleet, read from the Mesos master's /master/slaves every refresh_ms */
struct agent {
	char *id, *hostname;
	json_t *attributes; /* an object, owned */
	double cpus, mem;   /* its resources in all */
	int active;
};
struct fleet {
	struct agent *agents;
	size_t n;
};
typedef void (*mesos_fleet_fn)(const struct fleet *fleet, void *arg);
/* Reads at once, then every refresh_ms; changed gets each fleet that differs from the last. */
struct mesos *mesos_new(struct ev_loop *loop, struct fetch_loop *fl, const struct mesos_conf *conf,
			mesos_fleet_fn changed, void *arg);
void mesos_free(struct mesos *m);
/* The last fleet read, or NULL before the first good read. */
const struct fleet *mesos_fleet(const struct mesos *m);
json_t *mesos_status_json(const struct mesos *m);
/* Parses a /master/slaves answer; agents without a valid id or plain hostname are skipped (and
 * counted). -1 with err set when the answer is no list of agents. */
int mesos_parse_slaves(const char *body, size_t len, struct fleet *out, size_t *skipped, char *err,
		       size_t errlen);
void fleet_free(struct fleet *f);
/* How many tasks of task_cpus and task_mem (0: not counted) the active agents hold. */
long long fleet_capacity(const struct fleet *f, double task_cpus, double task_mem);
/* The agent's cache URL from the template. -1 when it does not fit. */
int fleet_cache_url(const char *tmpl, const struct agent *a, char *out, size_t outlen);

/* gate.c: readiness of each app's image in the cache of every agent that may run it; prewarm
 * requests; caches that do not answer left out after a grace; held time. */
struct gate;
struct gate_opts {
	double recheck_s;    /* how often a held app's caches are asked again */
	double grace_s;	     /* a silent cache is left out after this */
	int dry_run;	     /* no prewarm requests */
	int require_runtime; /* ready needs "runtime": "present": 1, 0, or -1 when the cache has one
			      */
	const char *token;   /* the caches' admin token, or NULL (copied) */
};
/* One cache to gate on. */
struct gate_cache_spec {
	const char *url;
	const char
	    *hostname; /* its agent's, for constraints; NULL: a static cache, never ruled out */
	json_t *attributes; /* its agent's, or NULL */
};
enum gate_agent_state { GATE_AGENT_READY, GATE_AGENT_NOT_READY, GATE_AGENT_UNREACHABLE };
#define GATE_AGENT_STATES 3
struct gate *gate_new(struct ev_loop *loop, struct fetch_loop *fl, const struct gate_opts *opts,
		      const struct app_conf *apps, size_t napps, void (*changed)(void *arg),
		      void *arg);
void gate_free(struct gate *g);
/* Replaces the set of caches (the same URL keeps what it said). Until the first call every rise
 * waits. -1 on out of memory, the old set kept. */
int gate_set_caches(struct gate *g, const struct gate_cache_spec *caches, size_t n);
/* On every decision, for every app: its image (NULL: none) and Marathon constraints (NULL:
 * none). A cache that joined after the first list is asked about it at once (and prewarms it). */
void gate_track(struct gate *g, size_t app, const char *image, json_t *constraints);
/* 1 when the image is ready in every counted cache as far as is known, else 0 and *why says
 * why; a check (and, when not ready, a prewarm request) goes out as needed. */
int gate_ready(struct gate *g, size_t app, const char **why);
/* After each decision: whether app's rise is held now (for the held-time accounting). */
void gate_note(struct gate *g, size_t app, int held);
/* Seconds app's current hold has lasted (0 when not held), and all its holds together. */
double gate_held_s(const struct gate *g, size_t app);
double gate_held_total_s(const struct gate *g, size_t app);
/* The caches that may run app, by state. */
void gate_agent_counts(const struct gate *g, size_t app, size_t counts[GATE_AGENT_STATES]);
const char *gate_agent_state_name(enum gate_agent_state st);
json_t *gate_status_json(const struct gate *g, size_t app);
/* The caches one by one (the dashboard's matrix): how many, and cache k as gate_status_json's
 * "caches" list has it for app (NULL when k or app is out of range). */
size_t gate_ncaches(const struct gate *g);
json_t *gate_cache_json(const struct gate *g, size_t k, size_t app);

/* leader.c: one scaler of many acts, elected through ZooKeeper */
struct leader;
typedef void (*leader_fn)(void *arg);
/* Joins the election at once; changed runs whenever the state changes. identity: our node's
 * data (JSON). */
struct leader *leader_new(struct ev_loop *loop, const struct zk_conf *conf, const char *identity,
			  leader_fn changed, void *arg);
void leader_free(struct leader *l);
/* 1 while this scaler leads, its lease holds and the hand-over has settled. */
int leader_may_act(const struct leader *l);
/* {"state", "acting", "node", "servers", "leader": {host, listen, pid} | null, "lease_s", …} */
json_t *leader_status_json(const struct leader *l);

/* history.c: the recent past the dashboard draws, bounded (pure): a ring of samples (the
 * capacity and, per app, demand, target, requested, running, held) and a ring of the last
 * decisions. */
struct history_point {
	long long demand; /* DEMAND_UNKNOWN: no reading */
	long long target, requested, running;
	int held; /* the gate held its rise at some moment since the sample before */
};
/* The facts of one decision log line. */
struct history_decision {
	double t;	 /* when, seconds since the epoch */
	const char *app; /* the app's id (the config's, which outlives the history) */
	char demand[24]; /* "12", "unknown", "rest" */
	long long want, from, to;
	char action[8]; /* "up", "down", "hold" */
	int gated;
	char reason[256];
	char sent[16];	   /* "yes", "no", "no dry_run=1"; "" for a hold */
	double latency_ms; /* demand change to PUT; < 0: none */
};
struct history;
/* NULL on out of memory (or a size of 0). */
struct history *history_new(size_t napps, size_t nsamples, size_t ndecisions);
void history_free(struct history *h);
/* apps: napps points. The oldest sample goes when the ring is full. */
void history_sample(struct history *h, double t, long long capacity,
		    const struct history_point *apps);
void history_decision(struct history *h, const struct history_decision *d);
size_t history_count(const struct history *h);
/* Oldest first: {"t_ms": […], "capacity": […], "apps": [{"demand", "target", "requested",
 * "running", "held"}: […] per app]}; an unknown demand or capacity is null. */
json_t *history_samples_json(const struct history *h);
/* The newest sample: {"t_ms", "capacity", "apps": [[demand, target, requested, running, held],
 * …]}; JSON null when there is none. */
json_t *history_last_json(const struct history *h);
/* The decisions kept, newest first. */
json_t *history_decisions_json(const struct history *h);
json_t *history_decision_json(const struct history_decision *d);

/* sse.c: one server-sent event as text (pure) */
/* "event: TYPE\n" ("retry: MS\n" when retry_ms > 0), one "data: " line per line of data (CR and
 * LF both end one), then the blank line; NUL-terminated, its length in *out_len. NULL when type
 * is not one plain word, or out of memory. */
char *sse_frame(const char *type, const char *data, size_t len, long retry_ms, size_t *out_len);
/* The same with data as compact JSON. */
char *sse_event(const char *type, const json_t *data, long retry_ms, size_t *out_len);

/* cachestats.c: what each agent's cache says of itself in its /metrics (hit ratio, bytes from
 * upstream, bytes served from its store), read every CACHESTATS_PERIOD_S while someone looks,
 * one read per cache at a time, bounded in size and time. */
#define CACHESTATS_PERIOD_S 5.0
#define CACHESTATS_MAX 64
struct cachestats_values {
	double hits, misses;   /* manifest and blob requests answered from the store, or not */
	double bytes_upstream; /* blob bytes fetched from its upstream */
	double bytes_local;    /* blob bytes served from its store */
	int found;	       /* which of the families were there: 1 requests, 2 bytes */
};
struct cachestats;
struct cachestats *cachestats_new(struct ev_loop *loop, struct fetch_loop *fl);
/* Cancels every read, then frees. */
void cachestats_free(struct cachestats *cs);
/* The caches to follow (the first CACHESTATS_MAX; a URL kept keeps what it said). -1 on out of
 * memory, the old list kept. */
int cachestats_track(struct cachestats *cs, const char *const *urls, size_t n);
/* Starts the reads that are due. */
void cachestats_poll(struct cachestats *cs);
/* The cache at url: {"hit_ratio" (null: no request yet), "hits", "misses", "bytes_upstream",
 * "bytes_local", "age_s"} once read, {"error"} when the last read failed, or null when none
 * has come back yet. */
json_t *cachestats_json(const struct cachestats *cs, const char *url);
/* Reads the families from a Prometheus text exposition. 0, or -1 when it holds neither. */
int cachestats_parse(const char *text, size_t len, struct cachestats_values *out);

/* dash.c: the dashboard: GET / (the page, compiled in from scaler/dashboard.html) and GET /events
 * (server-sent events: a snapshot, a tick a second, each decision), a bounded number of streams
 * each with a bounded queue */
#define DASH_SAMPLE_S 1.0
#define DASH_HISTORY 600 /* samples: 10 minutes */
#define DASH_DECISIONS 50
#define DASH_STREAMS_MAX 128
#define DASH_APPS_MAX 64
#define DASH_AGENTS_MAX 64
#define DASH_QUEUE_SLACK (64 * 1024) /* a stream may fall behind its snapshot by this much */
struct scaler;
struct dash;
/* Starts sampling s at once. NULL on out of memory. */
struct dash *dash_new(const struct scaler *s);
/* After httpd_free (which ends the streams). */
void dash_free(struct dash *d);
/* GET / and GET /events; 1 when it answered, 0 when the path is not the dashboard's. */
int dash_handle(struct dash *d, struct httpd_conn *conn, const struct httpd_req *req);
/* A decision that got a log line at info. */
void dash_decision(struct dash *d, const struct history_decision *dec);
/* {"streams", "streams_max", "queued_bytes", "dropped", "refused", "samples"} */
json_t *dash_status_json(const struct dash *d);
/* dashboard.html, made into an array by the Makefile (build/scaler/dashboard_page.c) */
extern const unsigned char dash_page[];
extern const size_t dash_page_len;

/* scaler.c: the daemon: the tick, the decision, its log line, the metrics */
#define SCALER_LATENCY_RING 1024
/* What was last decided for one app, for the log, /status and /metrics. */
struct scaler_app {
	long long demand; /* the reading it was decided on */
	long long want, target, from, to;
	int action; /* -1, 0, +1 */
	enum plan_why why;
	char gate_why[256];	 /* why the gate holds it, or "" */
	char last_logged[320];	 /* the last decision logged at info, to log a repeat at debug */
	ev_tstamp served_demand; /* changed_at of the last demand a PUT answered */
	double held_exported;	 /* gate held seconds already added to the counter */
};
struct scaler {
	struct ev_loop *loop;
	const struct scaler_conf *conf;
	int dry_run;
	struct fetch_loop *fl;
	struct httpd *httpd;
	struct metrics *metrics;
	struct marathon *marathon;
	struct events *events; /* Marathon's event stream, or NULL */
	struct mesos *mesos;   /* the fleet, or NULL without a master */
	struct leader *leader; /* the election, or NULL: this scaler acts alone */
	struct dash *dash;     /* the dashboard's history and streams */
	int acting;	       /* it acted at the last check (alone, or leading) */
	struct gate *gate;
	long long capacity; /* now: fixed, or from the fleet; -1 until the fleet is read */
	struct demand_env env;
	struct demand **demands;
	struct scaler_app *apps;
	struct alloc_app *alloc;
	struct plan_app *plan;
	size_t *by_priority; /* app indices, most urgent priority first */
	ev_timer tick, kick;
	unsigned tick_no;
	ev_tstamp started;
	struct metric_family *m_capacity, *m_demand, *m_desired, *m_target, *m_requested,
	    *m_running, *m_held, *m_held_s, *m_held_total, *m_decisions, *m_latency, *m_agents,
	    *m_fleet, *m_leader;
	double *latencies; /* demand change to PUT, seconds: a ring of SCALER_LATENCY_RING for
			    * /status's median (status.c) */
	size_t nlat, lat_next;
};
int scaler_start(struct scaler *s);
void scaler_stop(struct scaler *s);
/* Decides and acts once, from what is known now. */
void scaler_decide(struct scaler *s);
/* Decides again soon (on the next loop turn), once however often it is called. */
void scaler_kick(void *arg);

/* status.c: GET /metrics (Prometheus text) and GET /status (JSON) */
void status_handle(struct httpd_conn *conn, const struct httpd_req *req, void *arg);
json_t *status_json(const struct scaler *s);

#endif
