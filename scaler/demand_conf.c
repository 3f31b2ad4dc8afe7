/* demand_conf: an app's "demand" object. Every source is listed once in the table below; "type"
 * picks one and the source parses its own keys. Only this file names the sources and none of
 * them calls it, so the calls go one way: demand_conf.c -> demand_*.c -> demand.c. */
#include <stdio.h>
#include <string.h>

#include "scaler.h"

static const struct demand_source *const sources[] = {
    &demand_random_source,
    &demand_static_source,
    &demand_http_source,
    &demand_remainder_source,
};
#define NSOURCES (sizeof(sources) / sizeof(sources[0]))

const char *demand_conf_sources(void)
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
		return conf_fail(c, key, "missing (one of %s)", demand_conf_sources());
	out->src = source_find(type);
	if (!out->src)
		return conf_fail(c, key, "unknown source \"%s\" (one of %s)", type,
				 demand_conf_sources());
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
