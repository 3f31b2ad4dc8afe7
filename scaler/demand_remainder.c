/* demand_remainder: whatever capacity is left once every other app of the same or a higher
 * priority has what it wants. {"type": "remainder"} */

#include "scaler.h"

static int start(struct demand *d)
{
	d->fill = 1;
	return 0;
}

/* The allocation gives fill apps the rest; the reading says "as much as the bounds allow". */
static void poll_remainder(struct demand *d)
{
	demand_set(d, d->app->max, NULL);
}

const struct demand_source demand_remainder_source = {
    .type = "remainder",
    .start = start,
    .poll = poll_remainder,
};
