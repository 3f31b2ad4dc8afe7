/* metrics: counters, gauges and histograms with labels, written in the Prometheus text format. */
#ifndef MS_METRICS_H
#define MS_METRICS_H

#include <stddef.h>

/* Series kept per family; label sets past this are dropped and counted in the registry's own
 * counter metrics_dropped_series_total, so a hostile label value cannot grow memory. */
#define METRICS_MAX_SERIES 1000
/* Label names per family (a lookup collects the values on the stack). */
#define METRICS_MAX_LABELS 16

/* Not thread-safe: one registry per event loop. */
struct metrics;
struct metric_family;

struct metrics *metrics_new(void);
/* Frees every family and series; the family pointers die with it. */
void metrics_free(struct metrics *m);

/* Families are created at start-up. label_names is NULL-terminated (NULL: no labels). NULL on bad
 * input: a metric name outside [a-zA-Z_:][a-zA-Z0-9_:]*, a label name outside
 * [a-zA-Z_][a-zA-Z0-9_]* or starting with "__" (reserved), a label named twice, more than
 * METRICS_MAX_LABELS labels, a name already taken (a histogram also takes NAME_bucket, NAME_sum and
 * NAME_count), or out of memory. Unlabelled families render 0 from the start; labelled ones only
 * HELP and TYPE until used. Counters are rendered under the name given: pass one ending in _total.
 * help may be NULL. */
struct metric_family *metrics_counter(struct metrics *m, const char *name, const char *help,
				      const char *const *label_names);
struct metric_family *metrics_gauge(struct metrics *m, const char *name, const char *help,
				    const char *const *label_names);
/* buckets: finite, strictly increasing upper bounds (nbuckets may be 0); +Inf is added here. A
 * histogram may not have a label named "le". */
struct metric_family *metrics_histogram(struct metrics *m, const char *name, const char *help,
					const char *const *label_names, const double *buckets,
					size_t nbuckets);

/* The label values follow v as const char * arguments, exactly as many as the family has label
 * names, in the same order (a NULL value counts as ""). A series is created on first use. Calls on
 * the wrong type of family or on a NULL family are ignored, and so are negative or NaN counter
 * increments and NaN observations (a gauge takes any value). */
void metrics_add(struct metric_family *f, double v, ...); /* counter += v (v >= 0); gauge += v */
void metrics_set(struct metric_family *f, double v, ...); /* gauge = v */
void metrics_observe(struct metric_family *f, double v, ...); /* histogram */
/* An unlabelled gauge whose value is fn(arg), called by metrics_render; ignored on any other
 * family. It replaces whatever metrics_set / metrics_add stored. */
void metrics_gauge_fn(struct metric_family *f, double (*fn)(void *arg), void *arg);

/* The whole exposition in text format 0.0.4: families in the order they were created, each with
 * # HELP and # TYPE, its series sorted by label values. Malloc'd and NUL-terminated, its length in
 * *len (len may be NULL); NULL on out of memory. */
char *metrics_render(const struct metrics *m, size_t *len);

#endif
