/* backoff: the one doubling-with-jitter rule behind every retry (Marathon calls, upstream
 * requests, prewarm and runtime retries). */
#include <stdlib.h>

#include "backoff.h"

static double unit_rand(const struct backoff *b)
{
	double r = b->random ? b->random(b->arg) : (double)rand() / (double)RAND_MAX;

	return r < 0 ? 0 : r > 1 ? 1 : r;
}

double backoff_delay(const struct backoff *b, unsigned n)
{
	double d = b->base_s;

	if (!(d > 0) || !(b->cap_s > 0))
		return 0;
	/* Doubling stops at the cap, so a long run of failures costs a few steps, not n. */
	for (unsigned k = 1; k < n && d < b->cap_s; k++)
		d *= 2;
	if (d > b->cap_s)
		d = b->cap_s;
	return d * (1 - b->jitter * unit_rand(b));
}
