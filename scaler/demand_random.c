/* demand_random: the classic microscaling demo, a seeded random walk within the app's min..max.
 * {"type": "random", "seed": 42, "step": 2, "period_ms": 2000}: every period the demand moves by
 * a whole number drawn evenly from -step..step. The same seed gives the same walk (splitmix64,
 * not rand(), so it is the same on every libc); the walk counts ticks, not wall time. */
#include <stdint.h>
#include <stdlib.h>

#include "scaler.h"

static const char *const keys[] = {"seed", "step", "period_ms", NULL};

struct random_params {
	long long seed, step, period_ms, min, max;
};

struct random_state {
	uint64_t rng;
	long long value;
	long long ticks; /* since the last move */
	int started;
};

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A number in 0..n-1 (n >= 1); the bias of a plain modulo is negligible for such small n. */
static long long draw(uint64_t *s, long long n)
{
	return (long long)(splitmix64(s) % (uint64_t)n);
}

static int parse(struct conf *c, json_t *obj, const char *prefix, long long min, long long max,
		 void **params)
{
	struct random_params *p = calloc(1, sizeof(*p));

	if (!p)
		return conf_fail(c, prefix, "out of memory");
	*params = p;
	p->seed = 1;
	p->step = 1;
	p->period_ms = 2000;
	p->min = min;
	p->max = max;
	if (conf_int(c, obj, prefix, "seed", 0, INT64_MAX, &p->seed) != 0 ||
	    conf_int(c, obj, prefix, "step", 1, SCALER_INSTANCES_MAX, &p->step) != 0 ||
	    conf_int(c, obj, prefix, "period_ms", 1, 86400000LL, &p->period_ms) != 0)
		return -1;
	return 0;
}

static int start(struct demand *d)
{
	struct random_state *st = calloc(1, sizeof(*st));

	if (!st)
		return -1;
	d->state = st;
	return 0;
}

static void stop(struct demand *d)
{
	free(d->state);
	d->state = NULL;
}

static void poll_random(struct demand *d)
{
	const struct random_params *p = d->app->demand.params;
	struct random_state *st = d->state;
	long long period = (p->period_ms + d->env->interval_ms - 1) / d->env->interval_ms;

	if (!st->started) {
		st->started = 1;
		st->rng = (uint64_t)p->seed;
		st->value = p->min + draw(&st->rng, p->max - p->min + 1);
	} else if (++st->ticks >= period) {
		st->ticks = 0;
		st->value += draw(&st->rng, 2 * p->step + 1) - p->step;
		if (st->value < p->min)
			st->value = p->min;
		if (st->value > p->max)
			st->value = p->max;
	}
	demand_set(d, st->value, NULL);
}

const struct demand_source demand_random_source = {
    .type = "random",
    .keys = keys,
    .parse = parse,
    .free_params = free,
    .start = start,
    .stop = stop,
    .poll = poll_random,
};
