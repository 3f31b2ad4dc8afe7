/* status: the scaler's own HTTP endpoints on "listen": GET /metrics (Prometheus text format),
 * GET /status (JSON: the same, per app, with the reasons), and the dashboard's GET / and GET
 * /events (dash.c). Only GET and HEAD: nothing here changes anything. */
#include <stdlib.h>
#include <string.h>

#include "scaler.h"

static const char *state_name(enum mapp_state st)
{
	return st == MAPP_KNOWN ? "known" : st == MAPP_MISSING ? "missing" : "unknown";
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of the ring scaler.c fills (demand change to PUT, seconds), or -1 when empty. */
static double latency_median(const struct scaler *s)
{
	double v[SCALER_LATENCY_RING];

	if (s->nlat == 0)
		return -1;
	memcpy(v, s->latencies, s->nlat * sizeof(v[0]));
	qsort(v, s->nlat, sizeof(v[0]), cmp_double);
	return s->nlat % 2 ? v[s->nlat / 2] : (v[s->nlat / 2 - 1] + v[s->nlat / 2]) / 2;
}

static json_t *app_json(const struct scaler *s, size_t i)
{
	const struct app_conf *ac = &s->conf->apps[i];
	const struct scaler_app *sa = &s->apps[i];
	const struct marathon_app *mp = marathon_app(s->marathon, i);
	const struct demand *d = s->demands[i];
	json_t *o;

	o = json_pack("{s:s, s:i, s:I, s:I, s:s, s:I, s:s?, s:I, s:I, s:I, s:I}", "id", ac->id,
		      "priority", ac->priority, "min", (json_int_t)ac->min, "max",
		      (json_int_t)ac->max, "source", ac->demand.src->type, "demand",
		      (json_int_t)sa->demand, "demand_error", d->err[0] ? d->err : NULL, "desired",
		      (json_int_t)sa->want, "target", (json_int_t)sa->target, "requested",
		      (json_int_t)mp->instances, "occupancy",
		      (json_int_t)marathon_occupancy(s->marathon, i));
	if (!o)
		return NULL;
	json_object_set_new(o, "marathon",
			    json_pack("{s:s, s:I, s:I, s:I, s:i, s:s?, s:b}", "state",
				      state_name(mp->state), "instances", (json_int_t)mp->instances,
				      "running", (json_int_t)mp->running, "staged",
				      (json_int_t)mp->staged, "deployments", mp->deploying, "image",
				      mp->image, "locked", mp->locked));
	json_object_set_new(
	    o, "decision",
	    json_pack("{s:s, s:I, s:I, s:s}", "action",
		      sa->action > 0   ? "up"
		      : sa->action < 0 ? "down"
				       : "none",
		      "from", (json_int_t)sa->from, "to", (json_int_t)sa->to, "why",
		      sa->why == PLAN_GATED ? sa->gate_why : plan_why_name(sa->why)));
	json_object_set_new(o, "gate", gate_status_json(s->gate, i));
	return o;
}

json_t *status_json(const struct scaler *s)
{
	json_t *apps = json_array(), *o;
	double median = latency_median(s);

	for (size_t i = 0; apps && i < s->conf->napps; i++)
		json_array_append_new(apps, app_json(s, i));
	o = json_pack("{s:I, s:s, s:b, s:f, s:I, s:o, s:o}", "capacity", (json_int_t)s->capacity,
		      "capacity_from", s->conf->capacity > 0 ? "config" : "fleet", "dry_run",
		      s->dry_run, "uptime_s", ev_now(s->loop) - s->started, "ticks",
		      (json_int_t)s->tick_no, "marathon", marathon_status_json(s->marathon), "apps",
		      apps);
	if (o && s->events)
		json_object_set_new(o, "events", events_status_json(s->events));
	if (o && s->mesos)
		json_object_set_new(o, "mesos", mesos_status_json(s->mesos));
	if (o)
		json_object_set_new(o, "leader",
				    s->leader
					? leader_status_json(s->leader)
					: json_pack("{s:s, s:b}", "state", "off", "acting", 1));
	if (o && s->dash)
		json_object_set_new(o, "dashboard", dash_status_json(s->dash));
	if (o && median >= 0)
		json_object_set_new(o, "demand_to_put_median_ms", json_real(median * 1000.0));
	return o;
}

void status_handle(struct httpd_conn *conn, const struct httpd_req *req, void *arg)
{
	struct scaler *s = arg;
	char *body = NULL;
	size_t len = 0;
	json_t *doc;

	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		httpd_add_header(conn, "Allow", "GET, HEAD");
		httpd_respond(conn, 405, "method not allowed\n", 19);
		return;
	}
	if (dash_handle(s->dash, conn, req))
		return;
	if (strcmp(req->path, "/metrics") == 0) {
		body = metrics_render(s->metrics, &len);
		httpd_add_header(conn, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	} else if (strcmp(req->path, "/status") == 0) {
		doc = status_json(s);
		body = doc ? json_dumps(doc, JSON_INDENT(1)) : NULL;
		json_decref(doc);
		len = body ? strlen(body) : 0;
		httpd_add_header(conn, "Content-Type", "application/json");
	} else {
		httpd_respond(conn, 404, "not found: try /, /metrics or /status\n", 38);
		return;
	}
	if (!body) {
		httpd_respond(conn, 500, "out of memory\n", 14);
		return;
	}
	httpd_respond(conn, 200, body, len);
	free(body);
}
