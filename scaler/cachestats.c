/* cachestats: each agent's cache as its own /metrics tells it, for the dashboard:
 *   microscale_cache_requests_total{kind, result="hit"|"miss"}  the hit ratio (all kinds)
 *   microscale_bytes_total{source="upstream"}                  bytes fetched from its upstream
 *   microscale_bytes_total{source="store"}                     bytes served from its store
 * Off the scaler's path: nothing here is asked while no dashboard is open (the owner calls
 * cachestats_poll only then), each cache is read at most every CACHESTATS_PERIOD_S with one
 * read at a time, an answer is at most BODY_MAX bytes and READ_TIMEOUT_MS long, and at most
 * CACHESTATS_MAX caches are followed. The /metrics of a cache needs no token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"

#define BODY_MAX (512 * 1024)
#define READ_TIMEOUT_MS 2000

struct cs_entry {
	struct cachestats *cs;
	char *url;
	struct fetch *f; /* the read in flight, or NULL */
	ev_tstamp asked_at, read_at;
	int have; /* values hold a good read */
	struct cachestats_values v;
	char err[160]; /* why the last read failed, "" when it did not */
	int keep;
};

struct cachestats {
	struct ev_loop *loop;
	struct fetch_loop *fl;
	struct cs_entry **e;
	size_t n;
};

/* --- the parser (pure) --- */

/* The value of label KEY in "{a="x",b="y"}" (escapes \" \\ \n as the format has them) into
 * out; 0, or -1 when absent. */
static int label_value(const char *labels, size_t len, const char *key, char *out, size_t outlen)
{
	size_t klen = strlen(key), i = 0;

	while (i < len) {
		size_t name = i, o = 0;
		int match;

		while (i < len && labels[i] != '=')
			i++;
		if (i + 1 >= len || labels[i + 1] != '"')
			return -1;
		match = i - name == klen && memcmp(labels + name, key, klen) == 0;
		for (i += 2; i < len && labels[i] != '"'; i++) {
			if (labels[i] == '\\' && i + 1 < len)
				i++;
			if (match && o + 1 < outlen)
				out[o++] = labels[i];
		}
		if (match) {
			out[o] = '\0';
			return 0;
		}
		i += 2; /* past '"' and ',' */
	}
	return -1;
}

/* One sample line: "name{labels} value". 0 and the parts, or -1 for anything else. */
static int sample_line(const char *line, size_t len, size_t *name_len, const char **labels,
		       size_t *labels_len, double *value)
{
	size_t i = 0;
	char num[64], *end;

	while (i < len && line[i] != '{' && line[i] != ' ')
		i++;
	*name_len = i;
	*labels = "";
	*labels_len = 0;
	if (i < len && line[i] == '{') {
		const char *close = memchr(line + i, '}', len - i);

		if (!close)
			return -1;
		*labels = line + i + 1;
		*labels_len = (size_t)(close - line) - i - 1;
		i = (size_t)(close - line) + 1;
	}
	while (i < len && line[i] == ' ')
		i++;
	if (i == len || len - i >= sizeof(num))
		return -1;
	memcpy(num, line + i, len - i);
	num[len - i] = '\0';
	*value = strtod(num, &end);
	return end != num && (*end == '\0' || *end == ' ') ? 0 : -1;
}

static int is_name(const char *line, size_t len, const char *name)
{
	return len == strlen(name) && memcmp(line, name, len) == 0;
}

static void count_line(const char *line, size_t len, struct cachestats_values *v)
{
	size_t nlen, llen;
	const char *labels;
	double value;
	char lv[32];

	if (len == 0 || line[0] == '#' || sample_line(line, len, &nlen, &labels, &llen, &value) < 0)
		return;
	if (is_name(line, nlen, "microscale_cache_requests_total") &&
	    label_value(labels, llen, "result", lv, sizeof(lv)) == 0) {
		v->found |= 1;
		if (strcmp(lv, "hit") == 0)
			v->hits += value;
		else if (strcmp(lv, "miss") == 0)
			v->misses += value;
	} else if (is_name(line, nlen, "microscale_bytes_total") &&
		   label_value(labels, llen, "source", lv, sizeof(lv)) == 0) {
		v->found |= 2;
		if (strcmp(lv, "upstream") == 0)
			v->bytes_upstream += value;
		else if (strcmp(lv, "store") == 0)
			v->bytes_local += value;
	}
}

int cachestats_parse(const char *text, size_t len, struct cachestats_values *out)
{
	const char *p = text, *end = text + len;

	memset(out, 0, sizeof(*out));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);

		count_line(p, l > 0 && p[l - 1] == '\r' ? l - 1 : l, out);
		p += l + 1;
	}
	/* A fresh cache has the families' HELP lines but no sample yet: that is "no request". */
	if (out->found == 0 && memmem(text, len, "# TYPE microscale_bytes_total", 29))
		out->found = 2;
	return out->found ? 0 : -1;
}

/* --- reading the caches --- */

static void entry_free(struct cs_entry *e)
{
	if (!e)
		return;
	if (e->f)
		fetch_cancel(e->f);
	free(e->url);
	free(e);
}

struct cachestats *cachestats_new(struct ev_loop *loop, struct fetch_loop *fl)
{
	struct cachestats *cs = calloc(1, sizeof(*cs));

	if (cs) {
		cs->loop = loop;
		cs->fl = fl;
	}
	return cs;
}

void cachestats_free(struct cachestats *cs)
{
	if (!cs)
		return;
	for (size_t i = 0; i < cs->n; i++)
		entry_free(cs->e[i]);
	free(cs->e);
	free(cs);
}

static struct cs_entry *entry_find(const struct cachestats *cs, const char *url)
{
	for (size_t i = 0; i < cs->n; i++) {
		if (strcmp(cs->e[i]->url, url) == 0)
			return cs->e[i];
	}
	return NULL;
}

static struct cs_entry *entry_new(struct cachestats *cs, const char *url)
{
	struct cs_entry *e = calloc(1, sizeof(*e));

	if (!e || !(e->url = strdup(url))) {
		free(e);
		return NULL;
	}
	e->cs = cs;
	return e;
}

int cachestats_track(struct cachestats *cs, const char *const *urls, size_t n)
{
	struct cs_entry **next;
	size_t k = 0;

	if (n > CACHESTATS_MAX)
		n = CACHESTATS_MAX;
	if (!(next = calloc(n ? n : 1, sizeof(*next))))
		return -1;
	for (size_t i = 0; i < cs->n; i++)
		cs->e[i]->keep = 0;
	for (size_t i = 0; i < n; i++) {
		struct cs_entry *e = entry_find(cs, urls[i]);

		if (e && e->keep)
			continue; /* listed twice */
		if (!e && !(e = entry_new(cs, urls[i]))) {
			for (size_t j = 0; j < k; j++) /* the new ones only: the old are in cs->e */
				if (entry_find(cs, next[j]->url) != next[j])
					entry_free(next[j]);
			free(next);
			return -1;
		}
		e->keep = 1;
		next[k++] = e;
	}
	for (size_t i = 0; i < cs->n; i++) {
		if (!cs->e[i]->keep)
			entry_free(cs->e[i]);
	}
	free(cs->e);
	cs->e = next;
	cs->n = k;
	return 0;
}

static void read_done(struct fetch *f, int ok, const char *err, void *arg)
{
	struct cs_entry *e = arg;
	long status = ok ? fetch_status(f) : 0;
	size_t len = 0;
	const char *body = ok ? fetch_body(f, &len) : NULL;
	struct cachestats_values v;

	e->f = NULL;
	if (!ok)
		snprintf(e->err, sizeof(e->err), "%s", err ? err : "no answer");
	else if (status != 200)
		snprintf(e->err, sizeof(e->err), "/metrics answered %ld", status);
	else if (cachestats_parse(body, len, &v) < 0)
		snprintf(e->err, sizeof(e->err), "no microscale metrics in /metrics");
	else {
		e->err[0] = '\0';
		e->v = v;
		e->have = 1;
		e->read_at = ev_now(e->cs->loop);
	}
	log_debug("cachestats_read", "cache=%s status=%ld error=\"%s\"", e->url, status, e->err);
}

static void read_one(struct cs_entry *e)
{
	static const struct fetch_hooks hooks = {.on_done = read_done};
	char url[1100];
	struct fetch_req req = {.url = url,
				.timeout_ms = READ_TIMEOUT_MS,
				.connect_timeout_ms = READ_TIMEOUT_MS,
				.max_body = BODY_MAX};
	int n = snprintf(url, sizeof(url), "%s/metrics", e->url);

	e->asked_at = ev_now(e->cs->loop);
	if (n > 0 && (size_t)n < sizeof(url))
		e->f = fetch_start(e->cs->fl, &req, &hooks, e);
	if (!e->f)
		snprintf(e->err, sizeof(e->err), "cannot start a request");
}

void cachestats_poll(struct cachestats *cs)
{
	ev_tstamp now = ev_now(cs->loop);

	for (size_t i = 0; i < cs->n; i++) {
		struct cs_entry *e = cs->e[i];

		if (!e->f && (e->asked_at == 0 || now - e->asked_at >= CACHESTATS_PERIOD_S))
			read_one(e);
	}
}

json_t *cachestats_json(const struct cachestats *cs, const char *url)
{
	const struct cs_entry *e = entry_find(cs, url);
	const struct cachestats_values *v;
	double asked;
	json_t *o;

	if (!e || (!e->have && e->err[0] == '\0'))
		return json_null();
	if (!e->have)
		return json_pack("{s:s}", "error", e->err);
	v = &e->v;
	asked = v->hits + v->misses;
	o = json_pack("{s:o, s:I, s:I, s:I, s:I, s:f}", "hit_ratio",
		      asked > 0 ? json_real(v->hits / asked) : json_null(), "hits",
		      (json_int_t)v->hits, "misses", (json_int_t)v->misses, "bytes_upstream",
		      (json_int_t)v->bytes_upstream, "bytes_local", (json_int_t)v->bytes_local,
		      "age_s", ev_now(cs->loop) - e->read_at);
	if (o && e->err[0] != '\0') /* the last read failed: these are older */
		json_object_set_new(o, "error", json_string(e->err));
	return o;
}
