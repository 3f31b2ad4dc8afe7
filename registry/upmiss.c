/* upmiss: misses remembered for a moment. An upstream that said a manifest, blob or repository
 * is not there (404, or 401/403, which Docker Hub answers for a repository that does not exist)
 * is not asked again for the same URL and Accept until the entry expires, so that clients
 * polling for a tag that is not there, or retrying a pull that cannot work, cost no upstream
 * request each. The TTL is short (seconds): a tag pushed meanwhile is seen that much later.
 *
 * Bounded: at most MAX entries, the oldest dropped first. Entries sit in one list in the order
 * they were (last) put; every upstream's entries live equally long, so that is also the order
 * they expire in, and the expired ones are dropped from the front on each put. A small hash
 * finds one. */
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "registry.h"
#include "strhash.h"

#define UPMISS_BUCKETS 256

struct miss {
	TAILQ_ENTRY(miss) order; /* oldest first */
	LIST_ENTRY(miss) bucket;
	double until;
	long status;
	char key[]; /* "URL\nAccept" */
};

struct upmiss {
	TAILQ_HEAD(, miss) order;
	LIST_HEAD(, miss) buckets[UPMISS_BUCKETS];
	unsigned n, max;
};

static unsigned hash(const char *s)
{
	return strhash(s) % UPMISS_BUCKETS;
}

struct upmiss *upmiss_new(unsigned max)
{
	struct upmiss *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	TAILQ_INIT(&m->order);
	for (unsigned i = 0; i < UPMISS_BUCKETS; i++)
		LIST_INIT(&m->buckets[i]);
	m->max = max > 0 ? max : 1;
	return m;
}

static void drop(struct upmiss *m, struct miss *e)
{
	TAILQ_REMOVE(&m->order, e, order);
	LIST_REMOVE(e, bucket);
	m->n--;
	free(e);
}

void upmiss_free(struct upmiss *m)
{
	struct miss *e;

	if (!m)
		return;
	while ((e = TAILQ_FIRST(&m->order)))
		drop(m, e);
	free(m);
}

static struct miss *find(struct upmiss *m, const char *key)
{
	struct miss *e;

	LIST_FOREACH (e, &m->buckets[hash(key)], bucket) {
		if (strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

long upmiss_get(struct upmiss *m, const char *key, double now)
{
	struct miss *e = find(m, key);

	if (!e)
		return 0;
	if (e->until > now)
		return e->status;
	drop(m, e);
	return 0;
}

void upmiss_put(struct upmiss *m, const char *key, long status, double now, double ttl)
{
	struct miss *e = find(m, key), *old;
	size_t len = strlen(key) + 1;

	if (e)
		drop(m, e);
	while ((old = TAILQ_FIRST(&m->order)) && (old->until <= now || m->n >= m->max))
		drop(m, old);
	if (!(e = malloc(sizeof(*e) + len)))
		return; /* only a request more, later */
	memcpy(e->key, key, len);
	e->status = status;
	e->until = now + ttl;
	TAILQ_INSERT_TAIL(&m->order, e, order);
	LIST_INSERT_HEAD(&m->buckets[hash(key)], e, bucket);
	m->n++;
}

unsigned upmiss_count(const struct upmiss *m)
{
	return m->n;
}
