/* upgate: what may go to one upstream now. Two rules, so that misses cannot fan out (a thousand
 * clients asking for tags that do not exist must not become a thousand upstream requests at once,
 * nor spend a rate-limited allowance):
 *   - at most max_active requests at once; the next ones wait in a FIFO of at most max_queued,
 *     and a request that finds the queue full is refused at once (the caller answers 429);
 *   - while the upstream's Retry-After runs (upgate_close), nothing is asked of it: the caller
 *     answers 429 with the time that is left.
 * A slot is handed straight from the request that leaves to the first waiter, so a waiter
 * cannot be overtaken by a newcomer. Pure bookkeeping: time comes in as an argument, and a
 * waiter hears of its slot through its own callback. */
#include <assert.h>

#include "registry.h"

void upgate_init(struct upgate *g, unsigned max_active, unsigned max_queued)
{
	g->max_active = max_active > 0 ? max_active : 1;
	g->max_queued = max_queued;
	g->active = g->queued = 0;
	g->closed_until = 0;
	TAILQ_INIT(&g->waiting);
}

enum upgate_answer upgate_enter(struct upgate *g, struct upgate_wait *w, int admitted)
{
	if (g->active < g->max_active && TAILQ_EMPTY(&g->waiting)) {
		g->active++;
		return UPGATE_GO;
	}
	/* One already let in (a retry) waits whatever the queue's length: it was counted once. */
	if (!admitted && g->queued >= g->max_queued)
		return UPGATE_FULL;
	w->queued = 1;
	TAILQ_INSERT_TAIL(&g->waiting, w, link);
	g->queued++;
	return UPGATE_QUEUED;
}

void upgate_cancel(struct upgate *g, struct upgate_wait *w)
{
	if (!w->queued)
		return;
	TAILQ_REMOVE(&g->waiting, w, link);
	w->queued = 0;
	g->queued--;
}

void upgate_leave(struct upgate *g)
{
	struct upgate_wait *w = TAILQ_FIRST(&g->waiting);

	assert(g->active > 0); /* only a holder leaves */
	if (!w) {
		g->active--;
		return;
	}
	upgate_cancel(g, w); /* the slot passes to w: active stays */
	w->granted(w);
}

void upgate_close(struct upgate *g, double until)
{
	if (until > g->closed_until)
		g->closed_until = until;
}

double upgate_closed_for(const struct upgate *g, double now)
{
	return g->closed_until > now ? g->closed_until - now : 0;
}
