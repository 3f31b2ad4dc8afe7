/* demand: one app's reading at run time. A source (its struct demand_source, picked by
 * demand_conf.c) starts, stops and polls through the pointers in that struct, so this file names
 * none of them; it reads in poll (each tick) or later, asynchronously, and either way the reading
 * goes through demand_set, which logs when a source starts or stops failing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"

struct demand *demand_new(const struct app_conf *app, const struct demand_env *env)
{
	struct demand *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->app = app;
	d->env = env;
	d->value = DEMAND_UNKNOWN;
	if (app->demand.src->start && app->demand.src->start(d) < 0) {
		free(d);
		return NULL;
	}
	return d;
}

void demand_free(struct demand *d)
{
	if (!d)
		return;
	if (d->app->demand.src->stop)
		d->app->demand.src->stop(d);
	free(d);
}

void demand_poll(struct demand *d)
{
	d->app->demand.src->poll(d);
}

void demand_set(struct demand *d, long long value, const char *err)
{
	int was_failing = d->err[0] != '\0';

	if (err && err[0] != '\0') {
		if (!was_failing || strcmp(d->err, err) != 0)
			log_warn("demand_failed", "app=%s source=%s error=\"%s\"", d->app->id,
				 d->app->demand.src->type, err);
		snprintf(d->err, sizeof(d->err), "%s", err);
		value = DEMAND_UNKNOWN;
	} else {
		if (was_failing)
			log_info("demand_recovered", "app=%s source=%s value=%lld", d->app->id,
				 d->app->demand.src->type, value);
		d->err[0] = '\0';
	}
	if (value != d->value) {
		d->value = value;
		d->changed_at = d->env && d->env->loop ? ev_now(d->env->loop) : 0;
	}
}
