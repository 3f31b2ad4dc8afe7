/* mesos: the fleet, as the Mesos master knows it. GET {url}/master/slaves at start and every
 * refresh_ms (HTTP Basic when configured); each agent gives its id, hostname, whether it is
 * active, its attributes and its resources. A read that differs from the last one is handed to
 * the owner's callback, and each change of an agent is one log line. When the master does not
 * answer, the last fleet stands (its caches' own answers say whether they are still there): one
 * warning when that starts, one line when it ends.
 *
 * A hostile master must not make the scaler build URLs of its choosing: a hostname is used only
 * when it is a plain host name or address, and the list and each field are bounded. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"

#define SLAVES_BODY_MAX (16 * 1024 * 1024)
#define AGENTS_MAX 10000
#define AGENT_ID_MAX 256
#define HOSTNAME_MAX 253

struct mesos {
	struct ev_loop *loop;
	struct fetch_loop *fl;
	const struct mesos_conf *conf;
	mesos_fleet_fn changed;
	void *arg;
	ev_timer refresh;
	struct fetch *f;
	struct fleet fleet;
	int have_fleet;	   /* a read has succeeded */
	int failing;	   /* the last read failed (logged once per episode) */
	size_t skipped;	   /* agents of the last read left out as malformed */
	ev_tstamp read_at; /* the last good read */
	char last_error[320];
};

void fleet_free(struct fleet *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->agents[i].id);
		free(f->agents[i].hostname);
		json_decref(f->agents[i].attributes);
	}
	free(f->agents);
	memset(f, 0, sizeof(*f));
}

/* A host name or an IPv4/IPv6 address: letters, digits, '.', '-', ':', '_'; "[…]" around IPv6. */
static int plain_host(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > HOSTNAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		int alnum =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

		if (!alnum && c != '.' && c != '-' && c != ':' && c != '_' &&
		    !((c == '[' && i == 0) || (c == ']' && i == n - 1)))
			return 0;
	}
	return 1;
}

static int printable(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e || s[i] == '"')
			return 0;
	}
	return 1;
}

static double resource(json_t *res, const char *name)
{
	json_t *v = json_object_get(res, name);
	double d = json_is_number(v) ? json_number_value(v) : 0;

	return isfinite(d) && d > 0 ? d : 0;
}

/* One element of "slaves"; 0 when it was taken, 1 when it is malformed, -1 on out of memory. */
static int parse_agent(json_t *v, struct agent *a)
{
	json_t *id = json_object_get(v, "id"), *host = json_object_get(v, "hostname");
	json_t *active = json_object_get(v, "active"), *attrs = json_object_get(v, "attributes");
	json_t *res = json_object_get(v, "resources");

	if (!json_is_string(id) || !json_is_string(host) ||
	    !printable(json_string_value(id), AGENT_ID_MAX) ||
	    !plain_host(json_string_value(host)) || (active && !json_is_boolean(active)))
		return 1;
	memset(a, 0, sizeof(*a));
	a->active = !active || json_is_true(active);
	a->cpus = resource(res, "cpus");
	a->mem = resource(res, "mem");
	a->attributes = json_is_object(attrs) ? json_deep_copy(attrs) : json_object();
	a->id = strdup(json_string_value(id));
	a->hostname = strdup(json_string_value(host));
	return a->id && a->hostname && a->attributes ? 0 : -1;
}

int mesos_parse_slaves(const char *body, size_t len, struct fleet *out, size_t *skipped, char *err,
		       size_t errlen)
{
	json_t *doc = json_loadb(body, len, 0, NULL), *list = json_object_get(doc, "slaves"), *v;
	size_t i;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	*skipped = 0;
	if (!json_is_array(list)) {
		snprintf(err, errlen, "no \"slaves\" list");
		goto out;
	}
	if (json_array_size(list) > AGENTS_MAX) {
		snprintf(err, errlen, "more than %d agents", AGENTS_MAX);
		goto out;
	}
	out->agents = calloc(json_array_size(list) + 1, sizeof(*out->agents));
	if (!out->agents)
		goto oom;
	json_array_foreach(list, i, v)
	{
		int r = parse_agent(v, &out->agents[out->n]);

		if (r < 0) {
			out->n++; /* so that fleet_free frees what it took */
			goto oom;
		}
		if (r > 0) {
			(*skipped)++;
			continue;
		}
		out->n++;
		for (size_t k = 0; k + 1 < out->n; k++) {
			if (strcmp(out->agents[k].id, out->agents[out->n - 1].id) == 0) {
				snprintf(err, errlen, "agent %s listed twice", out->agents[k].id);
				goto fail;
			}
		}
	}
	rc = 0;
	goto out;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	fleet_free(out);
out:
	json_decref(doc);
	return rc;
}

long long fleet_capacity(const struct fleet *f, double task_cpus, double task_mem)
{
	long long total = 0;

	for (size_t i = 0; i < f->n; i++) {
		const struct agent *a = &f->agents[i];
		double by_cpus = task_cpus > 0 ? floor(a->cpus / task_cpus) : INFINITY;
		double by_mem = task_mem > 0 ? floor(a->mem / task_mem) : INFINITY;
		double fit = by_cpus < by_mem ? by_cpus : by_mem;

		if (!a->active || !isfinite(fit))
			continue;
		total += fit > (double)SCALER_INSTANCES_MAX ? SCALER_INSTANCES_MAX : (long long)fit;
		if (total > SCALER_INSTANCES_MAX)
			total = SCALER_INSTANCES_MAX;
	}
	return total;
}

int fleet_cache_url(const char *tmpl, const struct agent *a, char *out, size_t outlen)
{
	const char *mark = strstr(tmpl, "{hostname}");
	int n;

	if (!mark)
		n = snprintf(out, outlen, "%s", tmpl);
	else
		n = snprintf(out, outlen, "%.*s%s%s", (int)(mark - tmpl), tmpl, a->hostname,
			     mark + strlen("{hostname}"));
	return n > 0 && (size_t)n < outlen ? 0 : -1;
}

/* --- what changed --- */

static const struct agent *find_agent(const struct fleet *f, const char *id)
{
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->agents[i].id, id) == 0)
			return &f->agents[i];
	}
	return NULL;
}

static int same_agent(const struct agent *a, const struct agent *b)
{
	return strcmp(a->hostname, b->hostname) == 0 && a->active == b->active &&
	       a->cpus == b->cpus && a->mem == b->mem && json_equal(a->attributes, b->attributes);
}

/* Logs each agent that joined, changed or went; returns whether anything did. */
static int log_changes(const struct fleet *was, const struct fleet *now)
{
	int changed = was->n != now->n;

	for (size_t i = 0; i < now->n; i++) {
		const struct agent *a = &now->agents[i], *b = find_agent(was, a->id);

		if (b && same_agent(a, b))
			continue;
		changed = 1;
		log_info(!b ? "fleet_agent_joined" : "fleet_agent_changed",
			 "agent=%s hostname=%s active=%d cpus=%g mem=%g", a->id, a->hostname,
			 a->active, a->cpus, a->mem);
	}
	for (size_t i = 0; i < was->n; i++) {
		if (!find_agent(now, was->agents[i].id)) {
			changed = 1;
			log_info("fleet_agent_gone", "agent=%s hostname=%s", was->agents[i].id,
				 was->agents[i].hostname);
		}
	}
	return changed;
}

/* --- the client --- */

static void read_failed(struct mesos *m, const char *what)
{
	snprintf(m->last_error, sizeof(m->last_error), "%s", what);
	if (!m->failing)
		log_warn("mesos_unreachable",
			 "url=%s error=\"%s\" agents_kept=%zu reason=\"the last fleet stands\"",
			 m->conf->url, what, m->fleet.n);
	m->failing = 1;
}

static void on_slaves(struct fetch *f, int ok, const char *err, void *arg)
{
	struct mesos *m = arg;
	long status = ok ? fetch_status(f) : 0;
	struct fleet next;
	size_t len, skipped;
	const char *body = fetch_body(f, &len);
	char why[300];
	int changed;

	m->f = NULL;
	if (!ok || status != 200) {
		snprintf(why, sizeof(why), "GET /master/slaves answered %ld", status);
		read_failed(m, ok ? why : err ? err : "failed");
		return;
	}
	if (mesos_parse_slaves(body, len, &next, &skipped, why, sizeof(why)) < 0) {
		read_failed(m, why);
		return;
	}
	if (m->failing)
		log_info("mesos_recovered", "url=%s agents=%zu", m->conf->url, next.n);
	if (skipped > 0 && skipped != m->skipped)
		log_warn("fleet_agents_skipped",
			 "count=%zu reason=\"no valid id or hostname, or a malformed field\"",
			 skipped);
	m->failing = 0;
	m->last_error[0] = '\0';
	m->skipped = skipped;
	m->read_at = ev_now(m->loop);
	changed = log_changes(&m->fleet, &next) || !m->have_fleet;
	fleet_free(&m->fleet);
	m->fleet = next;
	m->have_fleet = 1;
	if (changed && m->changed)
		m->changed(&m->fleet, m->arg);
}

static void on_refresh(struct ev_loop *loop, ev_timer *w, int revents)
{
	static const struct fetch_hooks hooks = {.on_done = on_slaves};
	static const char *const headers[] = {"Accept: application/json", NULL};
	struct mesos *m = w->data;
	long timeout = m->conf->refresh_ms < 10000 ? m->conf->refresh_ms : 10000;
	struct fetch_req req = {.headers = headers,
				.userpwd = m->conf->userpwd,
				.timeout_ms = timeout < 1000 ? 1000 : timeout,
				.connect_timeout_ms = timeout < 1000 ? 1000 : timeout,
				.max_body = SLAVES_BODY_MAX};
	char url[2048];

	(void)loop;
	(void)revents;
	if (m->f)
		return;
	snprintf(url, sizeof(url), "%s/master/slaves", m->conf->url);
	req.url = url;
	if (!(m->f = fetch_start(m->fl, &req, &hooks, m)))
		read_failed(m, "cannot start a request");
}

struct mesos *mesos_new(struct ev_loop *loop, struct fetch_loop *fl, const struct mesos_conf *conf,
			mesos_fleet_fn changed, void *arg)
{
	struct mesos *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	*m = (struct mesos){.loop = loop, .fl = fl, .conf = conf, .changed = changed, .arg = arg};
	ev_timer_init(&m->refresh, on_refresh, 0, (double)conf->refresh_ms / 1000.0);
	m->refresh.data = m;
	ev_timer_start(loop, &m->refresh);
	return m;
}

/* The timer and the read out go first (their callbacks point at m), then the fleet. */
void mesos_free(struct mesos *m)
{
	if (!m)
		return;
	ev_timer_stop(m->loop, &m->refresh);
	if (m->f)
		fetch_cancel(m->f);
	fleet_free(&m->fleet);
	free(m);
}

const struct fleet *mesos_fleet(const struct mesos *m)
{
	return m->have_fleet ? &m->fleet : NULL;
}

json_t *mesos_status_json(const struct mesos *m)
{
	json_t *agents = json_array();

	for (size_t i = 0; agents && i < m->fleet.n; i++) {
		const struct agent *a = &m->fleet.agents[i];

		json_array_append_new(agents, json_pack("{s:s, s:s, s:b, s:f, s:f, s:O}", "id",
							a->id, "hostname", a->hostname, "active",
							a->active, "cpus", a->cpus, "mem", a->mem,
							"attributes", a->attributes));
	}
	return json_pack("{s:s, s:s, s:s, s:f, s:I, s:o}", "url", m->conf->url, "health",
			 m->failing	 ? "unreachable"
			 : m->have_fleet ? "ok"
					 : "unknown",
			 "last_error", m->last_error, "read_age_s",
			 m->have_fleet ? ev_now(m->loop) - m->read_at : -1.0, "skipped",
			 (json_int_t)m->skipped, "agents", agents);
}
