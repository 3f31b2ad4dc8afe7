/* fuzz_marathon_events: Marathon's event stream as the scaler reads it (scaler/events.c's parser,
 * then marathon.c's marathon_event on every event it yields). The input is fed in pieces whose
 * sizes the input itself picks, since a stream arrives split anywhere. Beyond not crashing or
 * leaking: an event marks only apps the scaler manages, and it never reads more than it was fed. */
#include "fuzz.h"

#include "marathon.c"

static struct marathon fm;
static struct mapp fa[2];
static struct app_conf fapps[2] = {{.id = "/a"}, {.id = "/g/b"}};
static unsigned events_seen;

static void on_event(const char *type, json_t *doc, void *arg)
{
	(void)arg;
	FUZZ_ASSERT(type && doc);
	events_seen++;
	marathon_event(&fm, type, doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct marathon_conf conf = {.url = "http://fuzz"};
	struct events *e = events_new(NULL, NULL, &conf, NULL, on_event, NULL, NULL);
	size_t at = 0;

	if (!e)
		return 0;
	memset(fa, 0, sizeof(fa));
	fm = (struct marathon){.apps = fapps, .napps = 2, .a = fa};
	events_seen = 0;
	while (at < size) {
		size_t piece = 1 + data[at] % 64;

		if (piece > size - at)
			piece = size - at;
		FUZZ_ASSERT(events_feed(e, (const char *)data + at, piece) == 0);
		at += piece;
	}
	FUZZ_ASSERT(events_seen <= size / 2 + 1); /* an event takes at least "\n\n" */
	events_free(e);
	return 0;
}
