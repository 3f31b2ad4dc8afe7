/* Shared by the demand source tests: an app_conf whose demand is parsed from JSON text. */
#ifndef TEST_DEMAND_HELPER_H
#define TEST_DEMAND_HELPER_H

#include <string.h>

#include "scaler.h"

struct test_app {
	struct conf c;
	struct app_conf app;
	char id[32];
};

/* Parses DEMAND_JSON as app "/t"'s demand with bounds min..max. 0, or -1 with t->c.err set. */
static inline int test_app_parse(struct test_app *t, const char *demand_json, long long min,
				 long long max)
{
	json_t *obj;
	int rc;

	memset(t, 0, sizeof(*t));
	snprintf(t->id, sizeof(t->id), "/t");
	t->c.file = "t.json";
	t->app.id = t->id;
	t->app.priority = 1;
	t->app.min = min;
	t->app.max = max;
	obj = json_loads(demand_json, 0, NULL);
	if (!obj)
		return -1;
	rc = demand_conf_parse(&t->c, obj, "apps[0].demand", min, max, &t->app.demand);
	json_decref(obj);
	return rc;
}

static inline void test_app_free(struct test_app *t)
{
	demand_conf_free(&t->app.demand);
}

#endif
