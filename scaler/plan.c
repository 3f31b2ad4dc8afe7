/* plan: from what each app wants to the Marathon calls, in an order that never lets the sum of
 * instances exceed the capacity, not even between two calls.
 *
 * Every app is counted at the most room it may hold now (its occupancy): the instances Marathon
 * has been asked for, the tasks still alive (a scale-down kills them only after it is accepted),
 * the instances of a PUT in flight or of one that failed without an answer. A scale-down goes out
 * at once and frees nothing until Marathon has taken it and its tasks are gone; a scale-up goes
 * out only when the room it needs beyond its own occupancy is free now. While any app's state is
 * unknown, nothing rises. Pure, like alloc: the gate is a callback. */

#include "scaler.h"

static long long maxll(long long a, long long b)
{
	return a > b ? a : b;
}

const char *plan_why_name(enum plan_why why)
{
	switch (why) {
	case PLAN_STEADY:
		return "steady";
	case PLAN_SEND:
		return "send";
	case PLAN_GATED:
		return "gated";
	case PLAN_ROOM:
		return "waiting_for_room";
	case PLAN_BUSY:
		return "busy";
	case PLAN_UNKNOWN:
		return "state_unknown";
	case PLAN_MISSING:
		return "app_missing";
	}
	return "?";
}

/* Allocates; an app that would rise but whose image is not ready is held at its instances and the
 * allocation runs again (its room goes back to the others). Each round holds one more app, so
 * this ends after at most n + 1 rounds. */
void plan_decide(struct alloc_app *a, struct plan_app *p, size_t n, long long capacity,
		 plan_gate_fn gate, void *arg)
{
	int again = 1;

	for (size_t i = 0; i < n; i++) {
		a[i].absent = !p[i].known || p[i].missing;
		a[i].hold_up = 0;
		p[i].gated = 0;
	}
	while (again) {
		again = 0;
		alloc_run(a, n, capacity);
		for (size_t i = 0; i < n; i++) {
			if (a[i].absent || a[i].hold_up || a[i].target <= a[i].cur)
				continue;
			if (gate && !gate(i, arg)) {
				a[i].hold_up = 1;
				p[i].gated = 1;
				p[i].held_to = a[i].target;
				again = 1;
			}
		}
	}
	plan_order(a, p, n, capacity);
}

/* The next scale-up to settle: by priority, then config order. */
static size_t next_riser(const struct alloc_app *a, const struct plan_app *p, size_t n,
			 const char *done)
{
	size_t best = n;

	for (size_t i = 0; i < n; i++) {
		if (done[i] || p[i].action != 1)
			continue;
		if (best == n || a[i].priority < a[best].priority)
			best = i;
	}
	return best;
}

void plan_order(const struct alloc_app *a, struct plan_app *p, size_t n, long long capacity)
{
	long long used = 0, pending = 0;
	int unknown = 0;
	char done[n > 0 ? n : 1];

	for (size_t i = 0; i < n; i++) {
		struct plan_app *x = &p[i];

		done[i] = 0;
		x->action = 0;
		x->to = a[i].cur;
		if (x->missing) {
			x->why = PLAN_MISSING;
			continue;
		}
		if (!x->known) {
			unknown = 1;
			x->why = PLAN_UNKNOWN;
			continue;
		}
		used += x->occ;
		pending += maxll(0, x->occ - a[i].target);
		if (a[i].target == a[i].cur) {
			x->why = x->gated ? PLAN_GATED : PLAN_STEADY;
		} else if (!x->can_put) {
			x->why = PLAN_BUSY;
		} else {
			/* Downs are final here; ups are candidates, settled below. */
			x->action = a[i].target < a[i].cur ? -1 : 1;
			x->to = a[i].target;
			x->why = PLAN_SEND;
		}
	}
	for (size_t i; (i = next_riser(a, p, n, done)) < n;) {
		struct plan_app *x = &p[i];
		long long full = maxll(a[i].target, x->tasks), need = full - x->occ;
		long long others = pending - maxll(0, x->occ - a[i].target), to;

		done[i] = 1;
		if (unknown) {
			x->action = 0, x->to = a[i].cur, x->why = PLAN_UNKNOWN;
			continue;
		}
		if (need <= capacity - used) {
			used += maxll(0, need);
			continue;
		}
		/* Not all of it fits now. When scale-downs will free more, wait for them and go up
		 * in one step; when nothing more will come free, take what fits. */
		to = a[i].target - (need - (capacity - used));
		if (others > 0 || to <= a[i].cur) {
			x->action = 0, x->to = a[i].cur, x->why = PLAN_ROOM;
			continue;
		}
		x->to = to;
		used += maxll(0, maxll(to, x->tasks) - x->occ);
	}
}
