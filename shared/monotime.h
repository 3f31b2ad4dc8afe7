/* monotime: CLOCK_MONOTONIC in seconds, for stamps and intervals that must not jump with the
 * wall clock (the memo's freshness, progress timing). */
#ifndef MS_MONOTIME_H
#define MS_MONOTIME_H

double monotime_s(void);

#endif
