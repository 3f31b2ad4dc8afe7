/* metrics: a registry of families, each a small chained hash table of series keyed by their label
 * values, and a writer for the Prometheus text format 0.0.4. Updates happen on every request, so a
 * lookup hashes the values once and compares in place; sorting is left to metrics_render. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "metrics.h"

#define DROPPED_NAME "metrics_dropped_series_total"
#define TABLE_MIN 8
#define NUM_MAX 32 /* "-1.7976931348623157e+308" and the like */

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

static const char *const type_names[] = {"counter", "gauge", "histogram"};

/* One label set. A single allocation: the struct, the per-bucket counts (histograms only; bucket i
 * counts observations in (bounds[i-1], bounds[i]], the last one those above every bound) and then
 * the key, the label values one after another, each with its NUL. */
struct series {
	SLIST_ENTRY(series) chain; /* in its slot of the family's table */
	uint64_t hash;
	double value; /* counter, gauge; the sum for a histogram */
	uint64_t count;
	char *key;     /* the label values, each with its NUL, after the buckets */
	size_t keylen; /* including every NUL */
	uint64_t buckets[];
};

SLIST_HEAD(series_chain, series);

struct metric_family {
	STAILQ_ENTRY(metric_family) link; /* in creation order */
	struct metrics *m;
	enum metric_type type;
	char *name;
	char *help; /* NULL: no # HELP line */
	size_t nlabels;
	char **labels;
	size_t nbounds; /* finite bounds; the series hold nbounds + 1 buckets */
	double *bounds;
	double (*fn)(void *arg);
	void *fn_arg;
	struct series_chain *table; /* tsize chains */
	size_t tsize;		    /* a power of two */
	size_t nseries;
};

struct metrics {
	STAILQ_HEAD(, metric_family) families;
	struct metric_family *dropped;
};

/* ---- names ------------------------------------------------------------------------------- */

static int is_alpha_(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static int is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* [a-zA-Z_][a-zA-Z0-9_]*, or with colon also allowed anywhere: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static int name_valid(const char *s, int colon)
{
	if (!s || *s == '\0' || is_digit(*s))
		return 0;
	for (; *s != '\0'; s++) {
		if (!is_alpha_(*s) && !is_digit(*s) && !(colon && *s == ':'))
			return 0;
	}
	return 1;
}

/* Label names beginning with "__" are reserved for Prometheus itself; "le" is the histogram's. */
static int label_names_valid(const char *const *names, size_t n, enum metric_type type)
{
	for (size_t i = 0; i < n; i++) {
		if (!name_valid(names[i], 0) || strncmp(names[i], "__", 2) == 0)
			return 0;
		if (type == METRIC_HISTOGRAM && strcmp(names[i], "le") == 0)
			return 0;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(names[i], names[j]) == 0)
				return 0;
		}
	}
	return 1;
}

/* Does NAME equal f's name or, for a histogram, one of the names its samples use? */
static int family_uses_name(const struct metric_family *f, const char *name)
{
	static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
	size_t n = strlen(f->name);

	if (strcmp(f->name, name) == 0)
		return 1;
	if (f->type != METRIC_HISTOGRAM || strncmp(f->name, name, n) != 0)
		return 0;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (strcmp(name + n, suffixes[i]) == 0)
			return 1;
	}
	return 0;
}

/* Would a new family f clash with an existing one (either way round)? */
static int name_taken(const struct metrics *m, const struct metric_family *f)
{
	const struct metric_family *o;

	for (o = STAILQ_FIRST(&m->families); o; o = STAILQ_NEXT(o, link)) {
		if (family_uses_name(o, f->name) || family_uses_name(f, o->name))
			return 1;
	}
	return 0;
}

/* ---- series ------------------------------------------------------------------------------ */

/* FNV-1a over each value and its NUL, so ("ab","") and ("a","b") differ. */
static uint64_t key_hash(const char *const *vals, size_t n)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < n; i++) {
		const unsigned char *p = (const unsigned char *)vals[i];

		do {
			h = (h ^ *p) * 1099511628211ULL;
		} while (*p++ != '\0');
	}
	return h;
}

static size_t family_nbuckets(const struct metric_family *f)
{
	return f->type == METRIC_HISTOGRAM ? f->nbounds + 1 : 0;
}

static int key_equal(const char *key, const char *const *vals, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(vals[i]);

		if (memcmp(key, vals[i], len + 1) != 0)
			return 0;
		key += len + 1;
	}
	return 1;
}

static struct series *series_new(const struct metric_family *f, const char *const *vals,
				 uint64_t hash)
{
	size_t nb = family_nbuckets(f), keylen = 0, off = 0;
	struct series *s;

	for (size_t i = 0; i < f->nlabels; i++)
		keylen += strlen(vals[i]) + 1;
	s = calloc(1, sizeof(*s) + nb * sizeof(s->buckets[0]) + keylen);
	if (!s)
		return NULL;
	s->hash = hash;
	s->key = (char *)(s->buckets + nb);
	s->keylen = keylen;
	for (size_t i = 0; i < f->nlabels; i++) {
		size_t len = strlen(vals[i]) + 1;

		memcpy(s->key + off, vals[i], len);
		off += len;
	}
	return s;
}

/* Doubles the table once it holds more series than slots; on out of memory the chains just grow. */
static void table_grow(struct metric_family *f)
{
	size_t nsize = f->tsize * 2;
	struct series_chain *nt;
	struct series *s;

	if (f->nseries <= f->tsize || !(nt = calloc(nsize, sizeof(*nt))))
		return;
	for (size_t i = 0; i < f->tsize; i++) {
		while ((s = SLIST_FIRST(&f->table[i]))) {
			SLIST_REMOVE_HEAD(&f->table[i], chain);
			SLIST_INSERT_HEAD(&nt[s->hash & (nsize - 1)], s, chain);
		}
	}
	free(f->table);
	f->table = nt;
	f->tsize = nsize;
}

/* The series for vals, created on first use; NULL (and counted) past the cap or out of memory. */
static struct series *series_get(struct metric_family *f, const char *const *vals)
{
	uint64_t h = key_hash(vals, f->nlabels);
	struct series_chain *slot = &f->table[h & (f->tsize - 1)];
	struct series *s;

	for (s = SLIST_FIRST(slot); s; s = SLIST_NEXT(s, chain)) {
		if (s->hash == h && key_equal(s->key, vals, f->nlabels))
			return s;
	}
	if (f->nseries >= METRICS_MAX_SERIES || !(s = series_new(f, vals, h))) {
		if (f != f->m->dropped)
			metrics_add(f->m->dropped, 1);
		return NULL;
	}
	SLIST_INSERT_HEAD(slot, s, chain);
	f->nseries++;
	table_grow(f);
	return s;
}

/* Collects the label values that follow v and finds their series. */
static struct series *series_va(struct metric_family *f, va_list ap)
{
	const char *vals[METRICS_MAX_LABELS];

	for (size_t i = 0; i < f->nlabels; i++) {
		vals[i] = va_arg(ap, const char *);
		if (!vals[i])
			vals[i] = "";
	}
	return series_get(f, vals);
}

/* ---- families ---------------------------------------------------------------------------- */

/* Frees the series, then the table, then the strings and the family itself. */
static void family_free(struct metric_family *f)
{
	struct series *s;

	for (size_t i = 0; f->table && i < f->tsize; i++) {
		while ((s = SLIST_FIRST(&f->table[i]))) {
			SLIST_REMOVE_HEAD(&f->table[i], chain);
			free(s);
		}
	}
	free(f->table);
	for (size_t i = 0; f->labels && i < f->nlabels; i++)
		free(f->labels[i]);
	free(f->labels);
	free(f->bounds);
	free(f->help);
	free(f->name);
	free(f);
}

static size_t label_count(const char *const *names)
{
	size_t n = 0;

	while (names && names[n] && n <= METRICS_MAX_LABELS)
		n++;
	return n;
}

static int family_copy_labels(struct metric_family *f, const char *const *names)
{
	f->labels = calloc(f->nlabels ? f->nlabels : 1, sizeof(*f->labels));
	if (!f->labels)
		return -1;
	for (size_t i = 0; i < f->nlabels; i++) {
		if (!(f->labels[i] = strdup(names[i])))
			return -1;
	}
	return 0;
}

static int family_copy_bounds(struct metric_family *f, const double *bounds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* +Inf is added here, and nothing lies at or below -Inf. */
		if (!isfinite(bounds[i]))
			return -1;
		if (i > 0 && !(bounds[i] > bounds[i - 1]))
			return -1;
	}
	f->bounds = calloc(n ? n : 1, sizeof(*f->bounds));
	if (!f->bounds)
		return -1;
	if (n > 0)
		memcpy(f->bounds, bounds, n * sizeof(*bounds));
	f->nbounds = n;
	return 0;
}

/* The part every type shares; the family is appended to m only once it is complete. */
static struct metric_family *family_new(struct metrics *m, enum metric_type type, const char *name,
					const char *help, const char *const *label_names)
{
	size_t n = label_count(label_names);
	struct metric_family *f;

	if (!m || !name_valid(name, 1) || n > METRICS_MAX_LABELS ||
	    !label_names_valid(label_names, n, type) || !(f = calloc(1, sizeof(*f))))
		return NULL;
	f->m = m;
	f->type = type;
	f->nlabels = n;
	f->tsize = TABLE_MIN;
	f->name = strdup(name);
	f->help = help ? strdup(help) : NULL;
	f->table = calloc(f->tsize, sizeof(*f->table));
	if (!f->name || (help && !f->help) || !f->table ||
	    family_copy_labels(f, label_names) != 0 || name_taken(m, f)) {
		family_free(f);
		return NULL;
	}
	return f;
}

/* Registers f; an unlabelled family gets its one series now so that it renders as 0. */
static struct metric_family *family_add(struct metrics *m, struct metric_family *f)
{
	if (f->nlabels == 0 && !series_get(f, NULL)) {
		family_free(f);
		return NULL;
	}
	STAILQ_INSERT_TAIL(&m->families, f, link);
	return f;
}

struct metric_family *metrics_counter(struct metrics *m, const char *name, const char *help,
				      const char *const *label_names)
{
	struct metric_family *f = family_new(m, METRIC_COUNTER, name, help, label_names);

	return f ? family_add(m, f) : NULL;
}

struct metric_family *metrics_gauge(struct metrics *m, const char *name, const char *help,
				    const char *const *label_names)
{
	struct metric_family *f = family_new(m, METRIC_GAUGE, name, help, label_names);

	return f ? family_add(m, f) : NULL;
}

struct metric_family *metrics_histogram(struct metrics *m, const char *name, const char *help,
					const char *const *label_names, const double *buckets,
					size_t nbuckets)
{
	struct metric_family *f;

	if (nbuckets > 0 && !buckets)
		return NULL;
	f = family_new(m, METRIC_HISTOGRAM, name, help, label_names);
	if (!f)
		return NULL;
	if (family_copy_bounds(f, buckets, nbuckets) != 0) {
		family_free(f);
		return NULL;
	}
	return family_add(m, f);
}

struct metrics *metrics_new(void)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	STAILQ_INIT(&m->families);
	m->dropped = metrics_counter(m, DROPPED_NAME,
				     "Label sets not recorded: the family's series cap was reached "
				     "or memory ran out.",
				     NULL);
	if (!m->dropped) {
		free(m);
		return NULL;
	}
	return m;
}

void metrics_free(struct metrics *m)
{
	struct metric_family *f;

	if (!m)
		return;
	while ((f = STAILQ_FIRST(&m->families))) {
		STAILQ_REMOVE_HEAD(&m->families, link);
		family_free(f);
	}
	free(m);
}

/* ---- updates ----------------------------------------------------------------------------- */

void metrics_add(struct metric_family *f, double v, ...)
{
	struct series *s;
	va_list ap;

	if (!f || f->type == METRIC_HISTOGRAM)
		return;
	if (f->type == METRIC_COUNTER && !(v >= 0))
		return;
	va_start(ap, v);
	s = series_va(f, ap);
	va_end(ap);
	if (s)
		s->value += v;
}

void metrics_set(struct metric_family *f, double v, ...)
{
	struct series *s;
	va_list ap;

	if (!f || f->type != METRIC_GAUGE)
		return;
	va_start(ap, v);
	s = series_va(f, ap);
	va_end(ap);
	if (s)
		s->value = v;
}

/* The first bucket whose bound is >= v (Prometheus' "le" is inclusive); nbounds for +Inf. */
static size_t bucket_index(const struct metric_family *f, double v)
{
	size_t lo = 0, hi = f->nbounds;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v <= f->bounds[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

void metrics_observe(struct metric_family *f, double v, ...)
{
	struct series *s;
	va_list ap;

	if (!f || f->type != METRIC_HISTOGRAM || isnan(v))
		return;
	va_start(ap, v);
	s = series_va(f, ap);
	va_end(ap);
	if (!s)
		return;
	s->buckets[bucket_index(f, v)]++;
	s->value += v;
	s->count++;
}

void metrics_gauge_fn(struct metric_family *f, double (*fn)(void *arg), void *arg)
{
	if (!f || f->type != METRIC_GAUGE || f->nlabels != 0)
		return;
	f->fn = fn;
	f->fn_arg = arg;
}

/* ---- rendering --------------------------------------------------------------------------- */

/* A growing output buffer; after the first failed allocation every write is a no-op. */
struct buf {
	char *p;
	size_t len, cap;
	int oom;
};

static int buf_reserve(struct buf *b, size_t extra)
{
	size_t ncap = b->cap ? b->cap : 4096;
	char *np;

	if (b->oom)
		return -1;
	if (b->len + extra + 1 <= b->cap)
		return 0;
	while (ncap < b->len + extra + 1)
		ncap *= 2;
	if (!(np = realloc(b->p, ncap))) {
		b->oom = 1;
		return -1;
	}
	b->p = np;
	b->cap = ncap;
	return 0;
}

static void buf_put(struct buf *b, const char *s, size_t n)
{
	if (buf_reserve(b, n) != 0)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

/* Writes s with backslash and newline escaped, and the double quote too when quote is set (label
 * values escape all three, HELP text only the first two). */
static void buf_escaped(struct buf *b, const char *s, int quote)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			buf_puts(b, "\\\\");
		else if (*s == '\n')
			buf_puts(b, "\\n");
		else if (*s == '"' && quote)
			buf_puts(b, "\\\"");
		else
			buf_put(b, s, 1);
	}
}

/* Integral values without a decimal point; others in the shortest of %.15g, %.16g and %.17g that
 * reads back as the same double (so 0.1 is "0.1", not "0.10000000000000001"). */
static void format_number(char *out, size_t len, double v)
{
	if (isnan(v)) {
		snprintf(out, len, "NaN");
	} else if (isinf(v)) {
		snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
	} else if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(int64_t)v) {
		snprintf(out, len, "%lld", (long long)v);
	} else {
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(out, len, "%.*g", prec, v);
			if (strtod(out, NULL) == v)
				break;
		}
	}
}

static void buf_number(struct buf *b, double v)
{
	char num[NUM_MAX];

	format_number(num, sizeof(num), v);
	buf_puts(b, num);
}

static void render_header(struct buf *b, const struct metric_family *f)
{
	if (f->help) {
		buf_puts(b, "# HELP ");
		buf_puts(b, f->name);
		buf_puts(b, " ");
		buf_escaped(b, f->help, 0);
		buf_puts(b, "\n");
	}
	buf_puts(b, "# TYPE ");
	buf_puts(b, f->name);
	buf_puts(b, " ");
	buf_puts(b, type_names[f->type]);
	buf_puts(b, "\n");
}

/* NAME{a="x",b="y",le="0.5"} with the suffix and the le label when given; no braces when empty. */
static void render_name(struct buf *b, const struct metric_family *f, const char *suffix,
			const char *key, const char *le)
{
	buf_puts(b, f->name);
	buf_puts(b, suffix);
	if (f->nlabels == 0 && !le)
		return;
	buf_puts(b, "{");
	for (size_t i = 0; i < f->nlabels; i++) {
		if (i > 0)
			buf_puts(b, ",");
		buf_puts(b, f->labels[i]);
		buf_puts(b, "=\"");
		buf_escaped(b, key, 1);
		buf_puts(b, "\"");
		key += strlen(key) + 1;
	}
	if (le) {
		buf_puts(b, f->nlabels > 0 ? ",le=\"" : "le=\"");
		buf_puts(b, le);
		buf_puts(b, "\"");
	}
	buf_puts(b, "}");
}

static void render_sample(struct buf *b, const struct metric_family *f, const char *suffix,
			  const char *key, const char *le, double v)
{
	render_name(b, f, suffix, key, le);
	buf_puts(b, " ");
	buf_number(b, v);
	buf_puts(b, "\n");
}

static void render_histogram(struct buf *b, const struct metric_family *f, struct series *s)
{
	char le[NUM_MAX];
	uint64_t cum = 0;

	for (size_t i = 0; i <= f->nbounds; i++) {
		cum += s->buckets[i];
		format_number(le, sizeof(le), i < f->nbounds ? f->bounds[i] : HUGE_VAL);
		render_sample(b, f, "_bucket", s->key, le, (double)cum);
	}
	render_sample(b, f, "_sum", s->key, NULL, s->value);
	render_sample(b, f, "_count", s->key, NULL, (double)s->count);
}

static void render_series(struct buf *b, const struct metric_family *f, struct series *s)
{
	if (f->type == METRIC_HISTOGRAM)
		render_histogram(b, f, s);
	else
		render_sample(b, f, "", s->key, NULL, f->fn ? f->fn(f->fn_arg) : s->value);
}

/* Orders two keys of one family label by label, as strcmp orders each value. Both hold the same
 * number of NULs and NUL sorts first, so memcmp over the shorter length decides. */
static int series_cmp(const void *a, const void *b)
{
	const struct series *x = *(const struct series *const *)a;
	const struct series *y = *(const struct series *const *)b;

	return memcmp(x->key, y->key, x->keylen < y->keylen ? x->keylen : y->keylen);
}

/* The family's series sorted by key, or NULL (out of memory). */
static struct series **family_sorted(const struct metric_family *f)
{
	struct series **v = calloc(f->nseries ? f->nseries : 1, sizeof(*v));
	size_t n = 0;

	if (!v)
		return NULL;
	struct series *s;

	for (size_t i = 0; i < f->tsize; i++) {
		for (s = SLIST_FIRST(&f->table[i]); s; s = SLIST_NEXT(s, chain))
			v[n++] = s;
	}
	qsort(v, n, sizeof(*v), series_cmp);
	return v;
}

static void render_family(struct buf *b, const struct metric_family *f)
{
	struct series **v = family_sorted(f);

	if (!v) {
		b->oom = 1;
		return;
	}
	render_header(b, f);
	for (size_t i = 0; i < f->nseries; i++)
		render_series(b, f, v[i]);
	free(v);
}

char *metrics_render(const struct metrics *m, size_t *len)
{
	const struct metric_family *f;
	struct buf b = {0};

	if (!m || buf_reserve(&b, 0) != 0)
		return NULL;
	for (f = STAILQ_FIRST(&m->families); f; f = STAILQ_NEXT(f, link))
		render_family(&b, f);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.p;
}
