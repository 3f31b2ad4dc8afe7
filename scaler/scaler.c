/* scaler: the daemon's core. A tick every interval_ms reads the demand sources, starts the
 * Marathon reads that are due and decides; an answer that arrives between ticks (a reading, a
 * Marathon call, a cache's readiness) decides again at once, so a scale-up that waited for room
 * or for the gate goes out as soon as it may. Deciding is cheap and idempotent: it works only
 * from what is known now (demand readings, Marathon's state, the gate's answers).
 *
 * The fleet (mesos.c) gives the gate its caches and, with capacity from the fleet, the
 * capacity; until the master has been read once, nothing moves. Marathon's event stream
 * (events.c) makes the Marathon client read an app the moment it changes.
 *
 * Each decision that changes an app is one log line: app, demand, from, to, sent or held, and
 * why. A hold is logged when it starts or its reason changes, not on every tick. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scaler.h"

static int acting(struct scaler *s);

static double seconds(long ms)
{
	return (double)ms / 1000.0;
}

/* --- metrics --- */

static int families_init(struct scaler *s)
{
	static const char *const by_app[] = {"app", NULL};
	static const char *const by_action[] = {"app", "action", NULL};
	static const char *const by_state[] = {"app", "state", NULL};
	static const char *const by_active[] = {"state", NULL};
	static const double lat[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
				     0.5,   1,	   2.5,	 5,	10,   30};
	struct metrics *m = s->metrics = metrics_new();

	if (!m)
		return -1;
	s->m_capacity = metrics_gauge(m, "microscale_scaler_capacity",
				      "Instances shared between the apps", NULL);
	s->m_demand = metrics_gauge(m, "microscale_scaler_demand",
				    "The demand source's reading (-1: none)", by_app);
	s->m_desired = metrics_gauge(
	    m, "microscale_scaler_desired",
	    "What the app asks for on its own: demand within min, max and max_delta", by_app);
	s->m_target = metrics_gauge(m, "microscale_scaler_target",
				    "What the allocation gives the app", by_app);
	s->m_requested = metrics_gauge(m, "microscale_scaler_requested",
				       "Instances Marathon has been asked for", by_app);
	s->m_running = metrics_gauge(m, "microscale_scaler_running",
				     "Tasks running, as Marathon last said", by_app);
	s->m_held = metrics_gauge(m, "microscale_scaler_gate_held",
				  "1 while the gate holds the app's scale-up", by_app);
	s->m_held_s = metrics_gauge(m, "microscale_scaler_gate_held_seconds",
				    "How long the current hold has lasted", by_app);
	s->m_held_total = metrics_counter(m, "microscale_scaler_gate_held_seconds_total",
					  "Seconds held by the gate, all holds together", by_app);
	s->m_decisions = metrics_counter(m, "microscale_scaler_decisions_total",
					 "Scale calls decided (up, down)", by_action);
	s->m_latency = metrics_histogram(m, "microscale_scaler_demand_to_put_seconds",
					 "From a change of an app's demand to its PUT", NULL, lat,
					 sizeof(lat) / sizeof(lat[0]));
	s->m_agents =
	    metrics_gauge(m, "microscale_scaler_gate_agents",
			  "Agents that may run the app, by the state of its image in their "
			  "cache (ready, not_ready, unreachable)",
			  by_state);
	s->m_fleet = metrics_gauge(m, "microscale_scaler_fleet_agents",
				   "Agents the Mesos master lists (active, inactive)", by_active);
	s->m_leader =
	    metrics_gauge(m, "microscale_scaler_leader",
			  "1 while this scaler acts (alone, or as the elected leader)", NULL);
	if (!s->m_capacity || !s->m_demand || !s->m_desired || !s->m_target || !s->m_requested ||
	    !s->m_running || !s->m_held || !s->m_held_s || !s->m_held_total || !s->m_decisions ||
	    !s->m_latency || !s->m_agents || !s->m_fleet || !s->m_leader)
		return -1;
	metrics_set(s->m_leader, 1);
	metrics_set(s->m_capacity, (double)s->capacity);
	return 0;
}

static void metrics_update(struct scaler *s, size_t i)
{
	const char *id = s->conf->apps[i].id;
	const struct marathon_app *mp = marathon_app(s->marathon, i);
	struct scaler_app *sa = &s->apps[i];
	double total = gate_held_total_s(s->gate, i);
	size_t agents[GATE_AGENT_STATES];

	metrics_set(s->m_demand, (double)sa->demand, id);
	metrics_set(s->m_desired, (double)sa->want, id);
	metrics_set(s->m_target, (double)sa->target, id);
	metrics_set(s->m_requested, (double)mp->instances, id);
	metrics_set(s->m_running, (double)mp->running, id);
	metrics_set(s->m_held, gate_held_s(s->gate, i) > 0 ? 1 : 0, id);
	metrics_set(s->m_held_s, gate_held_s(s->gate, i), id);
	if (total > sa->held_exported) {
		metrics_add(s->m_held_total, total - sa->held_exported, id);
		sa->held_exported = total;
	}
	gate_agent_counts(s->gate, i, agents);
	for (int st = 0; st < GATE_AGENT_STATES; st++)
		metrics_set(s->m_agents, (double)agents[st], id, gate_agent_state_name(st));
}

static void latency_note(struct scaler *s, double v)
{
	metrics_observe(s->m_latency, v);
	s->latencies[s->lat_next] = v;
	s->lat_next = (s->lat_next + 1) % SCALER_LATENCY_RING;
	if (s->nlat < SCALER_LATENCY_RING)
		s->nlat++;
}

/* --- deciding --- */

static const char *image_of(const struct scaler *s, size_t i)
{
	return s->conf->apps[i].image ? s->conf->apps[i].image
				      : marathon_app(s->marathon, i)->image;
}

static int gate_cb(size_t i, void *arg)
{
	struct scaler *s = arg;
	const char *why = NULL;
	int ready = gate_ready(s->gate, i, &why);

	snprintf(s->apps[i].gate_why, sizeof(s->apps[i].gate_why), "%s",
		 why	 ? why
		 : ready ? "image ready in every cache"
			 : "image not ready");
	return ready;
}

static void inputs(struct scaler *s, size_t i, ev_tstamp now)
{
	const struct app_conf *ac = &s->conf->apps[i];
	const struct marathon_app *mp = marathon_app(s->marathon, i);
	struct alloc_app *a = &s->alloc[i];
	struct plan_app *p = &s->plan[i];

	a->priority = ac->priority;
	a->min = ac->min;
	a->max = ac->max;
	a->max_delta = ac->max_delta;
	a->demand = s->demands[i]->value;
	a->fill = s->demands[i]->fill;
	a->cur = mp->inflight_to >= 0 ? mp->inflight_to : mp->instances;
	a->cooldown = ac->down_cooldown_ms > 0 && mp->last_up > 0 &&
		      now - mp->last_up < seconds((long)ac->down_cooldown_ms);
	p->known = mp->state == MAPP_KNOWN;
	p->missing = mp->state == MAPP_MISSING;
	p->can_put = marathon_can_put(s->marathon, i);
	p->occ = marathon_occupancy(s->marathon, i);
	p->tasks = mp->running + mp->staged;
	s->apps[i].gate_why[0] = '\0';
	gate_track(s->gate, i, image_of(s, i), mp->constraints);
}

/* Why an app that should change does not, in words for the log. */
static const char *hold_reason(const struct scaler *s, size_t i)
{
	const struct plan_app *p = &s->plan[i];

	if (p->why == PLAN_GATED)
		return s->apps[i].gate_why;
	if (p->why == PLAN_BUSY && strcmp(marathon_health(s->marathon), "ok") != 0)
		return marathon_health(s->marathon);
	if (p->why == PLAN_BUSY && marathon_app(s->marathon, i)->deploying > 0)
		return "a deployment of the app is running";
	return plan_why_name(p->why);
}

static void demand_text(const struct demand *d, char *out, size_t len)
{
	if (d->value == DEMAND_UNKNOWN)
		snprintf(out, len, "unknown");
	else if (d->fill)
		snprintf(out, len, "rest");
	else
		snprintf(out, len, "%lld", d->value);
}

/* The decision's facts, once, for its log line and for the dashboard (at info only). */
static void log_decision(struct scaler *s, size_t i, enum log_level level, int sent, double latency)
{
	const struct scaler_app *sa = &s->apps[i];
	const struct plan_app *p = &s->plan[i];
	struct history_decision d = {.t = ev_now(s->loop),
				     .app = s->conf->apps[i].id,
				     .want = sa->want,
				     .from = sa->from,
				     .to = sa->to,
				     .gated = p->action == 0 && p->gated,
				     .latency_ms = latency >= 0 ? latency * 1000.0 : -1};
	char lat[48] = "";

	demand_text(s->demands[i], d.demand, sizeof(d.demand));
	snprintf(d.action, sizeof(d.action), "%s",
		 p->action > 0	 ? "up"
		 : p->action < 0 ? "down"
				 : "hold");
	snprintf(d.reason, sizeof(d.reason), "%s",
		 p->action > 0	 ? sa->gate_why
		 : p->action < 0 ? "scale-downs are never gated"
				 : hold_reason(s, i));
	if (p->action != 0)
		snprintf(d.sent, sizeof(d.sent), "%s",
			 s->dry_run ? "no dry_run=1"
			 : sent	    ? "yes"
				    : "no");
	if (latency >= 0)
		snprintf(lat, sizeof(lat), " latency_ms=%.3f", d.latency_ms);
	if (p->action != 0)
		log_event(level, "decision",
			  "app=%s demand=%s want=%lld from=%lld to=%lld action=%s gated=no "
			  "reason=\"%s\" sent=%s%s",
			  d.app, d.demand, d.want, d.from, d.to, d.action, d.reason, d.sent, lat);
	else
		log_event(level, "decision",
			  "app=%s demand=%s want=%lld from=%lld to=%lld action=hold gated=%s "
			  "reason=\"%s\"",
			  d.app, d.demand, d.want, d.from, d.to, d.gated ? "yes" : "no", d.reason);
	if (level == LOG_INFO)
		dash_decision(s->dash, &d);
}

/* Sends (or, in a dry run, only logs) app i's call, and logs the decision. The same decision
 * again (a PUT retried after a 409, a hold that lasts, a dry run's every tick) is logged at
 * info once, then at debug; waiting for the answer to our own PUT is no decision at all. */
static void act(struct scaler *s, size_t i, ev_tstamp now)
{
	struct scaler_app *sa = &s->apps[i];
	const struct plan_app *p = &s->plan[i];
	const struct demand *d = s->demands[i];
	double latency = -1;
	char sig[sizeof(sa->last_logged)];
	int sent = 0;

	if (p->action != 0) {
		if (!s->dry_run && (sent = marathon_scale(s->marathon, i, p->to) == 0))
			metrics_add(s->m_decisions, 1, s->conf->apps[i].id,
				    p->action > 0 ? "up" : "down");
		if ((sent || s->dry_run) && d->changed_at > sa->served_demand) {
			latency = now - d->changed_at;
			sa->served_demand = d->changed_at;
			if (sent)
				latency_note(s, latency);
		}
	} else if (sa->to == sa->from || p->why == PLAN_MISSING || p->why == PLAN_UNKNOWN) {
		sa->last_logged[0] = '\0';
		return;
	} else if (p->why == PLAN_BUSY && marathon_app(s->marathon, i)->inflight_to >= 0) {
		return;
	}
	snprintf(sig, sizeof(sig), "%d %lld %lld %d %s", p->action, sa->from, sa->to, (int)p->why,
		 p->action != 0 ? "" : hold_reason(s, i));
	log_decision(s, i, strcmp(sig, sa->last_logged) == 0 ? LOG_DEBUG : LOG_INFO, sent, latency);
	memcpy(sa->last_logged, sig, sizeof(sig));
}

void scaler_decide(struct scaler *s)
{
	ev_tstamp now = ev_now(s->loop);
	size_t n = s->conf->napps;

	if (s->capacity < 0 || !acting(s))
		return; /* the fleet has not been read, or another scaler leads: neither up nor down
			 */
	for (size_t i = 0; i < n; i++)
		inputs(s, i, now);
	plan_decide(s->alloc, s->plan, n, s->capacity, gate_cb, s);
	for (size_t i = 0; i < n; i++) {
		struct scaler_app *sa = &s->apps[i];

		sa->demand = s->demands[i]->value;
		sa->want = s->alloc[i].want;
		sa->target = s->alloc[i].target;
		sa->from = s->alloc[i].cur;
		/* what it was going to, or would go to: the room it waits for, the gate's hold */
		sa->to = s->plan[i].gated	  ? s->plan[i].held_to
			 : s->plan[i].action != 0 ? s->plan[i].to
						  : sa->target;
		sa->action = s->plan[i].action;
		sa->why = s->plan[i].why;
		gate_note(s->gate, i, s->plan[i].gated);
	}
	/* Downs before ups: plan_order has made sure the ups fit even if the downs fail. Downs
	 * from the least urgent priority up, so that when the room shrinks priority 2 gives way
	 * before priority 1 is touched; ups from the most urgent. */
	for (size_t k = n; k-- > 0;) {
		if (s->plan[s->by_priority[k]].action < 0)
			act(s, s->by_priority[k], now);
	}
	for (size_t k = 0; k < n; k++) {
		if (s->plan[s->by_priority[k]].action >= 0)
			act(s, s->by_priority[k], now);
	}
	for (size_t i = 0; i < n; i++)
		metrics_update(s, i);
}

/* --- the fleet --- */

/* The gate's caches: the static list, then the cache of every active agent. */
static int set_caches(struct scaler *s, const struct fleet *fleet)
{
	const struct scaler_conf *c = s->conf;
	size_t n = c->ncaches + (fleet ? fleet->n : 0), k = 0;
	struct gate_cache_spec *spec = calloc(n ? n : 1, sizeof(*spec));
	char(*urls)[1024] = calloc(n ? n : 1, sizeof(*urls));
	int rc = -1;

	if (!spec || !urls)
		goto out;
	for (size_t i = 0; i < c->ncaches; i++)
		spec[k++] = (struct gate_cache_spec){.url = c->caches[i]};
	for (size_t i = 0; fleet && i < fleet->n; i++) {
		const struct agent *a = &fleet->agents[i];

		if (!a->active)
			continue;
		if (fleet_cache_url(c->mesos.cache_url, a, urls[k], sizeof(urls[k])) < 0) {
			log_warn("fleet_agent_skipped", "agent=%s reason=\"cache URL too long\"",
				 a->id);
			continue;
		}
		spec[k] = (struct gate_cache_spec){
		    .url = urls[k], .hostname = a->hostname, .attributes = a->attributes};
		k++;
	}
	rc = gate_set_caches(s->gate, spec, k);
out:
	if (rc < 0)
		log_error("fleet", "error=\"out of memory: the gate keeps its caches\"");
	free(spec);
	free(urls);
	return rc;
}

static void set_capacity(struct scaler *s, long long capacity)
{
	if (capacity != s->capacity)
		log_info("capacity", "capacity=%lld was=%lld", capacity, s->capacity);
	s->capacity = capacity;
	metrics_set(s->m_capacity, (double)capacity);
}

static void on_fleet(const struct fleet *fleet, void *arg)
{
	struct scaler *s = arg;
	size_t active = 0;

	for (size_t i = 0; i < fleet->n; i++)
		active += fleet->agents[i].active != 0;
	metrics_set(s->m_fleet, (double)active, "active");
	metrics_set(s->m_fleet, (double)(fleet->n - active), "inactive");
	set_caches(s, fleet);
	if (s->conf->capacity == 0)
		set_capacity(s, fleet_capacity(fleet, s->conf->task_cpus, s->conf->task_mem));
	scaler_kick(s);
}

/* --- Marathon's events --- */

static void on_event(const char *type, json_t *data, void *arg)
{
	struct scaler *s = arg;

	if (marathon_event(s->marathon, type, data))
		scaler_kick(s);
}

static void on_events_state(int attached, void *arg)
{
	struct scaler *s = arg;

	marathon_events_attached(s->marathon, attached);
}

/* --- the loop --- */

/* --- leading --- */

/* Whether this scaler acts now: alone, or as the leader whose lease holds. A scaler that starts
 * to act reads every app again before it writes; one that stops says so. */
static int acting(struct scaler *s)
{
	int now = !s->leader || leader_may_act(s->leader);

	if (now != s->acting) {
		log_event(now ? LOG_INFO : LOG_WARN, now ? "leader_acting" : "leader_stopped",
			  "reason=\"%s\"",
			  now ? "elected, lease held, hand-over settled: reading every app first"
			      : "no longer the leader, or its lease lapsed");
		if (now)
			marathon_resync(s->marathon);
		s->acting = now;
		metrics_set(s->m_leader, now);
	}
	return now;
}

static void on_leader(void *arg)
{
	struct scaler *s = arg;

	acting(s);
	scaler_kick(s);
}

static void on_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct scaler *s = w->data;

	(void)loop;
	(void)revents;
	if (!acting(s))
		return;
	marathon_read_due(s->marathon);
	scaler_decide(s);
}

void scaler_kick(void *arg)
{
	struct scaler *s = arg;

	if (!ev_is_active(&s->kick)) {
		ev_timer_set(&s->kick, 0, 0);
		ev_timer_start(s->loop, &s->kick);
	}
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct scaler *s = w->data;

	(void)loop;
	(void)revents;
	s->tick_no++;
	if (!acting(s))
		return; /* only the leader reads demand, asks the caches and calls Marathon */
	for (size_t i = 0; i < s->conf->napps; i++)
		demand_poll(s->demands[i]);
	marathon_tick(s->marathon, s->tick_no);
	scaler_decide(s);
}

/* The apps by priority, most urgent first, in config order within a priority. */
static void sort_by_priority(struct scaler *s)
{
	const struct app_conf *a = s->conf->apps;
	size_t n = s->conf->napps;

	for (size_t i = 0; i < n; i++) {
		size_t k = i;

		for (; k > 0 && a[s->by_priority[k - 1]].priority > a[i].priority; k--)
			s->by_priority[k] = s->by_priority[k - 1];
		s->by_priority[k] = i;
	}
}

static int start_parts(struct scaler *s)
{
	const struct scaler_conf *c = s->conf;
	size_t n = c->napps;
	struct gate_opts gopts = {.recheck_s = seconds(c->interval_ms),
				  .grace_s = seconds((long)c->gate_grace_ms),
				  .dry_run = s->dry_run,
				  .require_runtime = c->require_runtime,
				  .token = c->cache_token};

	s->capacity = c->capacity > 0 ? c->capacity : -1;
	s->fl = fetch_loop_new(s->loop);
	s->demands = calloc(n, sizeof(*s->demands));
	s->apps = calloc(n, sizeof(*s->apps));
	s->alloc = calloc(n, sizeof(*s->alloc));
	s->plan = calloc(n, sizeof(*s->plan));
	s->latencies = calloc(SCALER_LATENCY_RING, sizeof(*s->latencies));
	s->by_priority = calloc(n, sizeof(*s->by_priority));
	if (!s->fl || !s->demands || !s->apps || !s->alloc || !s->plan || !s->latencies ||
	    !s->by_priority || families_init(s) < 0)
		return -1;
	sort_by_priority(s);
	s->env = (struct demand_env){.loop = s->loop,
				     .fl = s->fl,
				     .interval_ms = c->interval_ms,
				     .capacity = c->capacity,
				     .changed = scaler_kick,
				     .arg = s};
	for (size_t i = 0; i < n; i++) {
		if (!(s->demands[i] = demand_new(&c->apps[i], &s->env)))
			return -1;
		s->apps[i].demand = DEMAND_UNKNOWN;
	}
	s->marathon =
	    marathon_new(s->loop, s->fl, &c->marathon, c->apps, n, s->metrics, scaler_kick, s);
	s->gate = gate_new(s->loop, s->fl, &gopts, c->apps, n, scaler_kick, s);
	if (!s->marathon || !s->gate)
		return -1;
	if (c->marathon.events) {
		s->events =
		    events_new(s->loop, s->fl, &c->marathon, marathon_auth_header(s->marathon),
			       on_event, on_events_state, s);
		if (!s->events)
			return -1;
	}
	if (!c->mesos.url)
		return set_caches(s, NULL);
	s->mesos = mesos_new(s->loop, s->fl, &c->mesos, on_fleet, s);
	return s->mesos ? 0 : -1;
}

/* Joins the election once listening: the node says who leads and where to look. */
static int start_leader(struct scaler *s)
{
	char host[256] = "?", *id;
	json_t *doc;

	gethostname(host, sizeof(host) - 1);
	doc = json_pack("{s:s, s:s, s:i, s:i}", "host", host, "listen", s->conf->listen, "port",
			httpd_port(s->httpd), "pid", (int)getpid());
	id = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	s->acting = 0; /* until elected */
	metrics_set(s->m_leader, 0);
	if (id)
		s->leader = leader_new(s->loop, &s->conf->zk, id, on_leader, s);
	free(id);
	if (!s->leader) {
		log_error("start", "error=\"out of memory\"");
		return -1;
	}
	log_info("leader_election",
		 "servers=%s path=%s session_timeout_ms=%ld settle_ms=%ld auth=%s",
		 s->conf->zk.servers, s->conf->zk.path, s->conf->zk.session_timeout_ms,
		 s->conf->zk.settle_ms, s->conf->zk.auth ? "digest" : "none");
	acting(s);
	return 0;
}

int scaler_start(struct scaler *s)
{
	struct httpd_opts opts;
	char err[512];

	s->started = ev_now(s->loop);
	ev_timer_init(&s->tick, on_tick, 0, seconds(s->conf->interval_ms));
	ev_timer_init(&s->kick, on_kick, 0, 0);
	s->tick.data = s->kick.data = s;
	if (start_parts(s) < 0 || !(s->dash = dash_new(s))) {
		log_error("start", "error=\"out of memory\"");
		return -1;
	}
	httpd_opts_default(&opts);
	s->httpd = httpd_new(s->loop, &opts, status_handle, s);
	if (!s->httpd || httpd_listen(s->httpd, s->conf->listen, err, sizeof(err)) < 0) {
		log_error("listen", "listen=%s error=\"%s\"", s->conf->listen,
			  s->httpd ? err : "out of memory");
		return -1;
	}
	log_info("listening",
		 "listen=%s port=%d marathon=%s mesos=%s apps=%zu capacity=%s caches=%zu "
		 "interval_ms=%ld force=%d events=%d dry_run=%d auth=%s",
		 s->conf->listen, httpd_port(s->httpd), s->conf->marathon.url,
		 s->conf->mesos.url ? s->conf->mesos.url : "-", s->conf->napps,
		 s->conf->capacity > 0 ? "fixed" : "fleet", s->conf->ncaches, s->conf->interval_ms,
		 s->conf->marathon.force, s->conf->marathon.events, s->dry_run,
		 s->conf->marathon.token     ? "token"
		 : s->conf->marathon.userpwd ? "basic"
					     : "none");
	if (s->conf->ncaches == 0 && !s->conf->mesos.url)
		log_warn("gate_off", "reason=\"no caches configured: scale-ups are not gated\"");
	if (s->conf->zk.servers && start_leader(s) < 0)
		return -1;
	ev_timer_start(s->loop, &s->tick);
	return 0;
}

/* Undoes scaler_start in reverse; safe on a partial start. The users of the fetch loop cancel
 * their transfers before it goes. */
void scaler_stop(struct scaler *s)
{
	ev_timer_stop(s->loop, &s->tick);
	ev_timer_stop(s->loop, &s->kick);
	if (s->httpd)
		httpd_free(s->httpd);
	dash_free(s->dash); /* its streams ended with httpd */
	leader_free(s->leader);
	mesos_free(s->mesos);
	events_free(s->events);
	gate_free(s->gate);
	marathon_free(s->marathon);
	for (size_t i = 0; s->demands && i < s->conf->napps; i++)
		demand_free(s->demands[i]);
	if (s->fl)
		fetch_loop_free(s->fl);
	metrics_free(s->metrics);
	free(s->demands);
	free(s->apps);
	free(s->alloc);
	free(s->plan);
	free(s->latencies);
	free(s->by_priority);
}
