/* demand_http: a number read over HTTP each tick.
 * {"type": "http", "url": "http://127.0.0.1:9000/queue", "json_pointer": "/depth",
 *  "per_instance": 50, "timeout_ms": 1000}
 * The body is a number ("42\n"), or JSON with the number at json_pointer (RFC 6901). The demand is
 * ceil(value / per_instance). One request at a time: a tick that finds the last one still out
 * skips. A failed reading (refused, timeout, non-2xx, not a number) leaves the demand unknown,
 * which holds the app where it is. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"

#define BODY_MAX (64 * 1024)

static const char *const keys[] = {"url", "json_pointer", "per_instance", "timeout_ms", NULL};

struct http_params {
	char *url;
	char *pointer; /* NULL: the body is a bare number */
	double per_instance;
	long long timeout_ms;
};

struct http_state {
	struct fetch *f;
};

static void free_params(void *params)
{
	struct http_params *p = params;

	free(p->url);
	free(p->pointer);
	free(p);
}

static int parse(struct conf *c, json_t *obj, const char *prefix, long long min, long long max,
		 void **params)
{
	struct http_params *p = calloc(1, sizeof(*p));
	const char *ptr = NULL;
	char key[256];

	(void)min;
	(void)max;
	if (!p)
		return conf_fail(c, prefix, "out of memory");
	*params = p;
	p->per_instance = 1;
	p->timeout_ms = 1000;
	if (conf_url(c, obj, prefix, "url", &p->url) != 0 ||
	    conf_string(c, obj, prefix, "json_pointer", &ptr) != 0 ||
	    conf_number(c, obj, prefix, "per_instance", 1e-9, 1e15, &p->per_instance) != 0 ||
	    conf_int(c, obj, prefix, "timeout_ms", 10, 600000, &p->timeout_ms) != 0)
		return -1;
	if (!p->url) {
		snprintf(key, sizeof(key), "%s.url", prefix);
		return conf_fail(c, key, "missing");
	}
	if (ptr && ptr[0] != '\0' && ptr[0] != '/') {
		snprintf(key, sizeof(key), "%s.json_pointer", prefix);
		return conf_fail(c, key, "must be empty or start with '/' (RFC 6901)");
	}
	if (ptr && !(p->pointer = strdup(ptr)))
		return conf_fail(c, prefix, "out of memory");
	return 0;
}

/* One reference token of a pointer, unescaped (~1 is '/', ~0 is '~'). -1 when malformed. */
static int pointer_token(const char **pp, char *out, size_t outlen)
{
	const char *p = *pp;
	size_t n = 0;

	for (; *p != '\0' && *p != '/'; p++) {
		char ch = *p;

		if (ch == '~') {
			if (p[1] != '0' && p[1] != '1')
				return -1;
			ch = p[1] == '0' ? '~' : '/';
			p++;
		}
		if (n + 1 >= outlen)
			return -1;
		out[n++] = ch;
	}
	out[n] = '\0';
	*pp = p;
	return 0;
}

/* An array index: "0", or digits without a leading zero. */
static int array_index(const char *tok, size_t *out)
{
	char *end;
	unsigned long long v;

	if (tok[0] < '0' || tok[0] > '9' || (tok[0] == '0' && tok[1] != '\0'))
		return -1;
	errno = 0;
	v = strtoull(tok, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = (size_t)v;
	return 0;
}

json_t *demand_http_pointer_get(json_t *doc, const char *pointer)
{
	char tok[256];
	const char *p = pointer;
	size_t idx;

	while (doc && *p != '\0') {
		if (*p != '/')
			return NULL;
		p++;
		if (pointer_token(&p, tok, sizeof(tok)) < 0)
			return NULL;
		if (json_is_object(doc))
			doc = json_object_get(doc, tok);
		else if (json_is_array(doc) && array_index(tok, &idx) == 0)
			doc = json_array_get(doc, idx);
		else
			return NULL;
	}
	return doc;
}

static int to_instances(double v, double per_instance, long long *out, char *err, size_t errlen)
{
	double n;

	if (!isfinite(v) || v < 0) {
		snprintf(err, errlen, "the value %g is not a finite number >= 0", v);
		return -1;
	}
	/* ceil without libm (not linked); past the largest count the cap applies anyway. */
	n = v / per_instance;
	if (n >= (double)SCALER_INSTANCES_MAX) {
		*out = SCALER_INSTANCES_MAX;
		return 0;
	}
	*out = (long long)n;
	if ((double)*out < n)
		(*out)++;
	return 0;
}

int demand_http_value(const char *body, size_t len, const char *pointer, double per_instance,
		      long long *out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *doc, *v;
	char buf[64], *end;
	double num;
	int rc;

	if (!pointer) {
		while (len > 0 && strchr(" \t\r\n", body[len - 1]))
			len--;
		while (len > 0 && strchr(" \t\r\n", body[0]))
			body++, len--;
		if (len == 0 || len >= sizeof(buf) || memchr(body, '\0', len)) {
			snprintf(err, errlen, "the body is not a number");
			return -1;
		}
		memcpy(buf, body, len);
		buf[len] = '\0';
		errno = 0;
		num = strtod(buf, &end);
		if (errno != 0 || *end != '\0' || end == buf) {
			snprintf(err, errlen, "the body is not a number");
			return -1;
		}
		return to_instances(num, per_instance, out, err, errlen);
	}
	doc = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
	if (!doc) {
		snprintf(err, errlen, "the body is not JSON: %s", jerr.text);
		return -1;
	}
	v = demand_http_pointer_get(doc, pointer);
	if (!v) {
		snprintf(err, errlen, "nothing at json_pointer %s", pointer);
		rc = -1;
	} else if (!json_is_number(v)) {
		snprintf(err, errlen, "the value at json_pointer %s is not a number", pointer);
		rc = -1;
	} else {
		rc = to_instances(json_number_value(v), per_instance, out, err, errlen);
	}
	json_decref(doc);
	return rc;
}

static void on_done(struct fetch *f, int ok, const char *ferr, void *arg)
{
	struct demand *d = arg;
	const struct http_params *p = d->app->demand.params;
	struct http_state *st = d->state;
	char err[256];
	long long value = DEMAND_UNKNOWN;
	const char *body;
	size_t len;

	st->f = NULL;
	err[0] = '\0';
	if (!ok)
		snprintf(err, sizeof(err), "%s: %s", p->url, ferr ? ferr : "failed");
	else if (fetch_status(f) < 200 || fetch_status(f) > 299)
		snprintf(err, sizeof(err), "%s answered %ld", p->url, fetch_status(f));
	else {
		body = fetch_body(f, &len);
		demand_http_value(body, len, p->pointer, p->per_instance, &value, err, sizeof(err));
	}
	demand_set(d, value, err);
	if (d->env->changed)
		d->env->changed(d->env->arg);
}

static int start(struct demand *d)
{
	d->state = calloc(1, sizeof(struct http_state));
	return d->state ? 0 : -1;
}

static void stop(struct demand *d)
{
	struct http_state *st = d->state;

	if (st->f)
		fetch_cancel(st->f);
	free(st);
	d->state = NULL;
}

static void poll_http(struct demand *d)
{
	static const struct fetch_hooks hooks = {.on_done = on_done};
	static const char *const headers[] = {"Accept: application/json, text/plain", NULL};
	const struct http_params *p = d->app->demand.params;
	struct http_state *st = d->state;
	struct fetch_req req = {
	    .url = p->url,
	    .headers = headers,
	    .timeout_ms = (long)p->timeout_ms,
	    .connect_timeout_ms = (long)p->timeout_ms,
	    .max_body = BODY_MAX,
	};

	if (st->f)
		return; /* the last reading is still out */
	st->f = fetch_start(d->env->fl, &req, &hooks, d);
	if (!st->f)
		demand_set(d, DEMAND_UNKNOWN, "cannot start the request");
}

const struct demand_source demand_http_source = {
    .type = "http",
    .keys = keys,
    .parse = parse,
    .free_params = free_params,
    .start = start,
    .stop = stop,
    .poll = poll_http,
};
