/* history: what the dashboard draws of the recent past, in two rings fixed at creation, so that
 * however long the scaler runs it keeps the same memory:
 *   samples    nsamples of (time, capacity, and per app demand, target, requested, running,
 *              held); the oldest goes when a new one comes. Values are kept as 32-bit numbers
 *              (instances are at most SCALER_INSTANCES_MAX; a larger demand is kept as INT32_MAX)
 *   decisions  the last ndecisions decisions, as their log lines state them
 * Pure: the caller says when (t) and what; nothing here reads a clock or does I/O. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"

#define UNKNOWN32 INT32_MIN /* DEMAND_UNKNOWN, or capacity not known (-1) */

struct point32 {
	int32_t demand, target, requested, running;
	uint8_t held;
};

struct history {
	size_t napps;
	size_t nsamples, first, count; /* the ring of samples: count from first, wrapping */
	double *t;
	int32_t *capacity;
	struct point32 *points; /* [nsamples][napps] */
	size_t ndecisions, dnext, dcount;
	struct history_decision *decisions;
};

struct history *history_new(size_t napps, size_t nsamples, size_t ndecisions)
{
	struct history *h = calloc(1, sizeof(*h));

	if (!h || nsamples == 0 || ndecisions == 0)
		goto fail;
	h->napps = napps;
	h->nsamples = nsamples;
	h->ndecisions = ndecisions;
	h->t = calloc(nsamples, sizeof(*h->t));
	h->capacity = calloc(nsamples, sizeof(*h->capacity));
	h->points = calloc(nsamples * (napps ? napps : 1), sizeof(*h->points));
	h->decisions = calloc(ndecisions, sizeof(*h->decisions));
	if (!h->t || !h->capacity || !h->points || !h->decisions)
		goto fail;
	return h;
fail:
	history_free(h);
	return NULL;
}

void history_free(struct history *h)
{
	if (!h)
		return;
	free(h->t);
	free(h->capacity);
	free(h->points);
	free(h->decisions);
	free(h);
}

static int32_t clamp32(long long v)
{
	return v > INT32_MAX ? INT32_MAX : v < 0 ? UNKNOWN32 : (int32_t)v;
}

void history_sample(struct history *h, double t, long long capacity,
		    const struct history_point *apps)
{
	size_t slot = (h->first + h->count) % h->nsamples;
	struct point32 *row = &h->points[slot * h->napps];

	if (h->count == h->nsamples)
		h->first = (h->first + 1) % h->nsamples;
	else
		h->count++;
	h->t[slot] = t;
	h->capacity[slot] = clamp32(capacity);
	for (size_t i = 0; i < h->napps; i++)
		row[i] = (struct point32){.demand = clamp32(apps[i].demand),
					  .target = clamp32(apps[i].target),
					  .requested = clamp32(apps[i].requested),
					  .running = clamp32(apps[i].running),
					  .held = apps[i].held != 0};
}

size_t history_count(const struct history *h)
{
	return h->count;
}

static json_t *num32(int32_t v)
{
	return v == UNKNOWN32 ? json_null() : json_integer(v);
}

static json_t *t_ms(double t)
{
	return json_integer((json_int_t)(t * 1000.0 + 0.5));
}

/* The k-th oldest sample's slot. */
static size_t slot_of(const struct history *h, size_t k)
{
	return (h->first + k) % h->nsamples;
}

static json_t *app_series(const struct history *h, size_t app)
{
	json_t *d = json_array(), *tg = json_array(), *rq = json_array(), *rn = json_array(),
	       *hd = json_array();

	for (size_t k = 0; d && tg && rq && rn && hd && k < h->count; k++) {
		const struct point32 *p = &h->points[slot_of(h, k) * h->napps + app];

		json_array_append_new(d, num32(p->demand));
		json_array_append_new(tg, num32(p->target));
		json_array_append_new(rq, num32(p->requested));
		json_array_append_new(rn, num32(p->running));
		json_array_append_new(hd, json_integer(p->held));
	}
	return json_pack("{s:o, s:o, s:o, s:o, s:o}", "demand", d, "target", tg, "requested", rq,
			 "running", rn, "held", hd);
}

json_t *history_samples_json(const struct history *h)
{
	json_t *t = json_array(), *cap = json_array(), *apps = json_array();

	for (size_t k = 0; t && cap && k < h->count; k++) {
		json_array_append_new(t, t_ms(h->t[slot_of(h, k)]));
		json_array_append_new(cap, num32(h->capacity[slot_of(h, k)]));
	}
	for (size_t i = 0; apps && i < h->napps; i++)
		json_array_append_new(apps, app_series(h, i));
	return json_pack("{s:o, s:o, s:o}", "t_ms", t, "capacity", cap, "apps", apps);
}

json_t *history_last_json(const struct history *h)
{
	size_t slot;
	json_t *apps;

	if (h->count == 0)
		return json_null();
	slot = slot_of(h, h->count - 1);
	apps = json_array();
	for (size_t i = 0; apps && i < h->napps; i++) {
		const struct point32 *p = &h->points[slot * h->napps + i];

		json_array_append_new(apps, json_pack("[o, o, o, o, i]", num32(p->demand),
						      num32(p->target), num32(p->requested),
						      num32(p->running), p->held));
	}
	return json_pack("{s:o, s:o, s:o}", "t_ms", t_ms(h->t[slot]), "capacity",
			 num32(h->capacity[slot]), "apps", apps);
}

void history_decision(struct history *h, const struct history_decision *d)
{
	h->decisions[h->dnext] = *d;
	h->dnext = (h->dnext + 1) % h->ndecisions;
	if (h->dcount < h->ndecisions)
		h->dcount++;
}

/* A string that jansson refuses (cut inside a UTF-8 sequence) becomes "?" rather than losing
 * the whole decision. */
static json_t *text(const char *s)
{
	json_t *v = json_string(s);

	return v ? v : json_string("?");
}

json_t *history_decision_json(const struct history_decision *d)
{
	json_t *o =
	    json_pack("{s:o, s:o, s:o, s:I, s:I, s:I, s:s, s:b, s:o}", "t_ms", t_ms(d->t), "app",
		      text(d->app), "demand", text(d->demand), "want", (json_int_t)d->want, "from",
		      (json_int_t)d->from, "to", (json_int_t)d->to, "action", d->action, "gated",
		      d->gated, "reason", text(d->reason));

	if (o && d->sent[0] != '\0')
		json_object_set_new(o, "sent", text(d->sent));
	if (o && d->latency_ms >= 0)
		json_object_set_new(o, "latency_ms", json_real(d->latency_ms));
	return o;
}

json_t *history_decisions_json(const struct history *h)
{
	json_t *a = json_array();

	for (size_t k = 1; a && k <= h->dcount; k++)
		json_array_append_new(
		    a, history_decision_json(
			   &h->decisions[(h->dnext + h->ndecisions - k) % h->ndecisions]));
	return a;
}
