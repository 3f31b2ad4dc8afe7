/* demand: the demand source interface. Each app has one source, named by its "demand.type";
 * a source is one file defining a struct demand_source, listed once in the table below. A source
 * reads in poll (each tick) or later, asynchronously; either way the reading goes through
 * demand_set, which logs when a source starts or stops failing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"

static const struct demand_source *const sources[] = {
    &demand_random_source,
    &demand_static_source,
    &demand_http_source,
    &demand_remainder_source,
};
#define NSOURCES (sizeof(sources) / sizeof(sources[0]))

const char *demand_source_names(void)
{
	static char names[256];

	if (names[0] == '\0') {
		for (size_t i = 0; i < NSOURCES; i++) {
			size_t n = strlen(names);

			snprintf(names + n, sizeof(names) - n, "%s%s", i ? ", " : "",
				 sources[i]->type);
		}
	}
	return names;
}

static const struct demand_source *source_find(const char *type)
{
	for (size_t i = 0; i < NSOURCES; i++) {
		if (strcmp(sources[i]->type, type) == 0)
			return sources[i];
	}
	return NULL;
}

/* "type" and the source's own keys; anything else is an unknown key. */
static int check_keys(struct conf *c, json_t *obj, const char *prefix,
		      const struct demand_source *src)
{
	const char *keys[32];
	size_t n = 0;

	keys[n++] = "type";
	for (const char *const *k = src->keys; k && *k && n < 31; k++)
		keys[n++] = *k;
	keys[n] = NULL;
	return conf_known_keys(c, obj, prefix, keys);
}

int demand_conf_parse(struct conf *c, json_t *obj, const char *prefix, long long min, long long max,
		      struct demand_conf *out)
{
	const char *type = NULL;
	char key[256];

	out->src = NULL;
	out->params = NULL;
	snprintf(key, sizeof(key), "%s.type", prefix);
	if (conf_string(c, obj, prefix, "type", &type) != 0)
		return -1;
	if (!type)
		return conf_fail(c, key, "missing (one of %s)", demand_source_names());
	out->src = source_find(type);
	if (!out->src)
		return conf_fail(c, key, "unknown source \"%s\" (one of %s)", type,
				 demand_source_names());
	if (check_keys(c, obj, prefix, out->src) != 0)
		return -1;
	if (!out->src->parse)
		return 0;
	return out->src->parse(c, obj, prefix, min, max, &out->params);
}

void demand_conf_free(struct demand_conf *dc)
{
	if (dc->src && dc->src->free_params && dc->params)
		dc->src->free_params(dc->params);
	dc->params = NULL;
	dc->src = NULL;
}

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
