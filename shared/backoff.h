/* backoff: how long to wait before the next try, doubling per failure up to a cap, with jitter. */
#ifndef MS_BACKOFF_H
#define MS_BACKOFF_H

/* The delay after failure n (1 for the first) is base_s * 2^(n-1), at most cap_s, and then up to
 * jitter of it (0..1) is taken off at random, so that clients that failed together do not all come
 * back together, and no delay is ever longer than the cap. */
struct backoff {
	double base_s; /* the delay after the first failure */
	double cap_s;  /* the longest delay */
	double jitter; /* the most of a delay taken off at random, as a fraction: 0.25 */
	/* A number in [0, 1]; NULL: rand(). Tests pass their own. */
	double (*random)(void *arg);
	void *arg;
};

/* The delay in seconds after the n-th failure in a row (n = 0 counts as 1). */
double backoff_delay(const struct backoff *b, unsigned n);

#endif
