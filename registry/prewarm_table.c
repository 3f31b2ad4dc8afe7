/* prewarm_table: which images prewarm tracks, found by name in O(1), and how many of them the
 * control API may add. The rules:
 *
 *   - Every listed image is tracked, however many (the list file bounds them: 4096), and never
 *     dropped to make room.
 *   - Images asked for through the API and not listed count against prewarm.max_requested. Past
 *     it, a new one takes the place of the least recently asked for that is droppable (it was
 *     complete once, is not pinned, and no job runs for it: forgetting it only stops its
 *     re-warming, its content stays in the store); when none is, it is refused (EAGAIN).
 *   - An image neither listed nor asked for (dropped from the list on SIGHUP) is forgotten as
 *     soon as no job runs for it.
 *
 * The counts and the droppable queue are derived from each image's flags in one place,
 * prewarm_table_review(), which its owner calls after every change of them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "strhash.h"

/* The index holds at most the list's 4096 images and max_requested more, so a fixed number of
 * buckets keeps chains short; a chain is at worst as long as the table, itself bounded. */
#define NBUCKETS 1024

static size_t bucket_of(const char *name)
{
	return strhash(name) & (NBUCKETS - 1);
}

int prewarm_table_init(struct prewarm_table *t, struct ev_loop *loop, struct prewarm *owner,
		       int max_requested, prewarm_timer_fn timer_cb)
{
	memset(t, 0, sizeof(*t));
	t->buckets = calloc(NBUCKETS, sizeof(*t->buckets));
	if (!t->buckets)
		return -1;
	t->loop = loop;
	t->owner = owner;
	t->max_requested = max_requested;
	t->timer_cb = timer_cb;
	LIST_INIT(&t->all);
	TAILQ_INIT(&t->idle);
	return 0;
}

/* Unlinks IMG from everything and frees it; no job may run for it. */
void prewarm_table_forget(struct prewarm_table *t, struct prewarm_image *img)
{
	ev_timer_stop(t->loop, &img->timer);
	if (img->droppable)
		TAILQ_REMOVE(&t->idle, img, idle);
	if (img->counted)
		t->nrequested--;
	LIST_REMOVE(img, link);
	LIST_REMOVE(img, bucket);
	t->ntracked--;
	free(img);
}

/* After the jobs were aborted: every image goes. */
void prewarm_table_clear(struct prewarm_table *t)
{
	struct prewarm_image *img;

	while ((img = LIST_FIRST(&t->all)))
		prewarm_table_forget(t, img);
	free(t->buckets);
	t->buckets = NULL;
}

struct prewarm_image *prewarm_table_find(struct prewarm_table *t, const struct image_ref *ref)
{
	char name[sizeof(((struct prewarm_image *)0)->name)];
	struct prewarm_image *img;

	if (ref_format(ref, name, sizeof(name)) < 0)
		return NULL;
	LIST_FOREACH (img, &t->buckets[bucket_of(name)], bucket)
		if (strcmp(img->name, name) == 0)
			return img;
	return NULL;
}

/* REF's image, tracked from now on when it was not; NULL (ENOMEM) when it cannot be. */
struct prewarm_image *prewarm_table_get(struct prewarm_table *t, const struct image_ref *ref)
{
	struct prewarm_image *img = prewarm_table_find(t, ref);

	if (img)
		return img;
	img = calloc(1, sizeof(*img));
	if (!img || ref_format(ref, img->name, sizeof(img->name)) < 0) {
		free(img);
		errno = ENOMEM;
		return NULL;
	}
	img->pw = t->owner;
	img->ref = *ref;
	ev_timer_init(&img->timer, t->timer_cb, 0, 0);
	img->timer.data = img;
	LIST_INSERT_HEAD(&t->all, img, link);
	LIST_INSERT_HEAD(&t->buckets[bucket_of(img->name)], img, bucket);
	t->ntracked++;
	return img;
}

struct prewarm_image *prewarm_table_claim(struct prewarm_table *t, const struct image_ref *ref)
{
	struct prewarm_image *img = prewarm_table_find(t, ref);

	if (img && (img->counted || img->listed)) /* it has its place already */
		return img;
	if (t->nrequested >= (size_t)t->max_requested) {
		struct prewarm_image *oldest = TAILQ_FIRST(&t->idle); /* never IMG: not counted */

		if (!oldest) {
			errno = EAGAIN;
			return NULL;
		}
		log_info("prewarm_dropped", "image=%s reason=\"room for %s\"", oldest->name,
			 img ? img->name : "a new request");
		prewarm_table_forget(t, oldest);
	}
	return img ? img : prewarm_table_get(t, ref);
}

void prewarm_table_touch(struct prewarm_table *t, struct prewarm_image *img)
{
	if (!img->droppable)
		return;
	TAILQ_REMOVE(&t->idle, img, idle);
	TAILQ_INSERT_TAIL(&t->idle, img, idle);
}

void prewarm_table_review(struct prewarm_table *t, struct prewarm_image *img)
{
	int counted = img->requested && !img->listed;
	int droppable = counted && !img->api_pinned && !img->busy && img->was_ready;

	if (!img->listed && !img->requested && !img->busy) {
		prewarm_table_forget(t, img);
		return;
	}
	if (counted && !img->counted)
		t->nrequested++;
	else if (!counted && img->counted)
		t->nrequested--;
	img->counted = counted;
	if (droppable && !img->droppable)
		TAILQ_INSERT_TAIL(&t->idle, img, idle);
	else if (!droppable && img->droppable)
		TAILQ_REMOVE(&t->idle, img, idle);
	img->droppable = droppable;
}

struct prewarm_image *prewarm_table_first(struct prewarm_table *t)
{
	return LIST_FIRST(&t->all);
}
