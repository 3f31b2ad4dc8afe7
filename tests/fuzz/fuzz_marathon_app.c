/* fuzz_marathon_app: Marathon's answer to GET /v2/apps/{id}, {"app": {"instances", "tasksRunning",
 * "tasksStaged", "deployments", "container": {"docker": {"image"}}}} (scaler/marathon.c's
 * marathon_parse_app, included to reach the app's private state). Beyond not crashing or leaking,
 * what it reads feeds the capacity arithmetic: marathon_occupancy() and the plan's tasks
 * (running + staged, scaler.c) must be computable without overflow, so the parsed counts are
 * checked the way the scaler uses them. A second answer reuses the app, as a re-read does. */
#include "fuzz.h"

#include "marathon.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct marathon m = {.napps = 1};
	struct mapp a = {.m = &m, .pub = {.inflight_to = -1, .uncertain = -1}};
	struct marathon_app *p = &a.pub;
	size_t half = size / 2;
	long long occ, tasks;

	m.a = &a;
	/* The input is read whole, then its second half as the next answer about the same app. */
	for (int round = 0; round < 2; round++) {
		const char *body = (const char *)data + (round ? half : 0);
		size_t len = round ? size - half : size;

		if (marathon_parse_app(body, len, p) != 0)
			continue;
		p->state = MAPP_KNOWN;
		FUZZ_ASSERT(p->instances >= 0 && p->running >= 0 && p->staged >= 0);
		FUZZ_ASSERT(p->deploying >= 0);
		occ = marathon_occupancy(&m, 0);
		tasks = p->running + p->staged;
		FUZZ_ASSERT(occ >= p->instances && occ >= tasks);
	}
	free(p->image);
	return 0;
}
