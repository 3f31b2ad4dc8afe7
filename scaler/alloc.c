/* alloc: shares a fixed capacity between apps by priority. Pure: no I/O, no clock.
 *
 * Each app first works out what it wants on its own (its demand within min..max, at most
 * max_delta away from now, not below now during its down cooldown, not above now while the gate
 * holds it) and the least it may be left with (its floor: min, or what max_delta and the cooldown
 * keep). Every app gets its floor; then each priority level in turn, 1 first, shares what is left
 * up to what its apps want, equal steps for each, fill apps ("remainder") after the others.
 *
 * Rules, strongest first: the sum of targets never exceeds capacity (the config guarantees the
 * mins fit); min and max; max_delta; the cooldown. Floors give way (all of them, to min) only when
 * they do not fit together, which happens only when Marathon holds more than the capacity
 * already (someone scaled by hand): priority alone then brings it back within. */
#include <limits.h>

#include "scaler.h"

static long long clampll(long long v, long long lo, long long hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static long long minll(long long a, long long b)
{
	return a < b ? a : b;
}

static long long maxll(long long a, long long b)
{
	return a > b ? a : b;
}

/* What the app asks for on its own, and its floor (returned). unknown_prio: the most urgent
 * priority with a demand not known yet; what is left after it is not known either, so a fill app
 * of that priority or below does not rise meanwhile. */
static long long app_want(struct alloc_app *a, int unknown_prio)
{
	long long w, cur_in = clampll(a->cur, a->min, a->max), floor;

	if (a->fill)
		w = a->max;
	else if (a->demand == DEMAND_UNKNOWN)
		w = a->cur;
	else
		w = a->demand;
	w = clampll(w, a->min, a->max);
	if (a->max_delta > 0)
		w = clampll(clampll(w, a->cur - a->max_delta, a->cur + a->max_delta), a->min,
			    a->max);
	if (a->cooldown && w < a->cur)
		w = minll(a->cur, a->max);
	a->want = w;
	if (a->fill && a->priority >= unknown_prio && w > a->cur)
		w = maxll(a->cur, minll(a->min, w));
	if (a->hold_up && w > a->cur)
		w = a->cur;
	a->ceil = w;

	floor = a->min;
	if (a->cooldown)
		floor = maxll(floor, cur_in);
	else if (a->max_delta > 0)
		floor = maxll(floor, cur_in - a->max_delta);
	return minll(floor, a->ceil);
}

/* Floors that do not fit together all give way, to min: priority alone decides then. */
static long long drop_floors(struct alloc_app *apps, size_t n)
{
	long long used = 0;

	for (size_t i = 0; i < n; i++) {
		if (apps[i].absent)
			continue;
		apps[i].target = minll(apps[i].min, apps[i].ceil);
		used += apps[i].target;
	}
	return used;
}

/* Raises the apps of one priority (fill ones or not) toward what they want, in equal steps,
 * from *pool. A last step too small to go round goes to the first apps in config order. */
static void share(struct alloc_app *apps, size_t n, int prio, int fill, long long *pool)
{
	while (*pool > 0) {
		long long hungry = 0, step = 0;

		for (size_t i = 0; i < n; i++) {
			struct alloc_app *a = &apps[i];

			if (a->absent || a->priority != prio || !a->fill != !fill ||
			    a->target >= a->ceil)
				continue;
			if (hungry == 0 || a->ceil - a->target < step)
				step = a->ceil - a->target;
			hungry++;
		}
		if (hungry == 0)
			return;
		if (*pool / hungry < step)
			step = *pool / hungry;
		if (step == 0)
			step = 1; /* fewer units than apps: one each while they last */
		for (size_t i = 0; i<n && * pool> 0; i++) {
			struct alloc_app *a = &apps[i];

			if (a->absent || a->priority != prio || !a->fill != !fill ||
			    a->target >= a->ceil)
				continue;
			a->target += step;
			*pool -= step;
		}
	}
}

void alloc_run(struct alloc_app *apps, size_t n, long long capacity)
{
	long long used = 0, pool;
	int max_prio = 0, unknown_prio = INT_MAX;

	for (size_t i = 0; i < n; i++) {
		if (!apps[i].absent && !apps[i].fill && apps[i].demand == DEMAND_UNKNOWN &&
		    apps[i].priority < unknown_prio)
			unknown_prio = apps[i].priority;
	}
	for (size_t i = 0; i < n; i++) {
		struct alloc_app *a = &apps[i];

		if (a->absent) {
			a->want = a->target = a->ceil = 0;
			continue;
		}
		a->target = app_want(a, unknown_prio);
		used += a->target;
		if (a->priority > max_prio)
			max_prio = a->priority;
	}
	if (used > capacity)
		used = drop_floors(apps, n);
	pool = capacity - used;
	for (int p = 1; p <= max_prio && pool > 0; p++) {
		share(apps, n, p, 0, &pool);
		share(apps, n, p, 1, &pool);
	}
}
