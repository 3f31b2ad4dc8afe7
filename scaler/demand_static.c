/* demand_static: a fixed number of instances. {"type": "static", "instances": N} */
#include <stdio.h>
#include <stdlib.h>

#include "scaler.h"

static const char *const keys[] = {"instances", NULL};

static int parse(struct conf *c, json_t *obj, const char *prefix, long long min, long long max,
		 void **params)
{
	long long *n;
	char key[256];

	(void)min;
	(void)max;
	if (!json_object_get(obj, "instances")) {
		snprintf(key, sizeof(key), "%s.instances", prefix);
		return conf_fail(c, key, "missing");
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return conf_fail(c, prefix, "out of memory");
	*params = n;
	return conf_int(c, obj, prefix, "instances", 0, SCALER_INSTANCES_MAX, n);
}

static void poll_static(struct demand *d)
{
	demand_set(d, *(const long long *)d->app->demand.params, NULL);
}

const struct demand_source demand_static_source = {
    .type = "static",
    .keys = keys,
    .parse = parse,
    .free_params = free,
    .poll = poll_static,
};
