/* upstream: requests to a configured upstream registry. A 401 with a Bearer challenge fetches a
 * token (cached per scope until it expires) and retries; a Basic challenge retries with the
 * configured credentials; 429 and 5xx are retried with backoff, honouring Retry-After. The
 * caller sees only the final answer. Tokens and passwords never reach the log. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "backoff.h"
#include "ref.h"
#include "registry.h"

#define TOKEN_CACHE_MAX 256
#define TOKEN_MAX_BYTES 65536
#define RETRY_AFTER_MAX_S 30.0 /* a longer wait goes back to the client instead */

struct token {
	TAILQ_ENTRY(token) link; /* newest first */
	char *scope;
	char *value;
	ev_tstamp expires;
};

struct upstream {
	const struct upstream_conf *conf;
	TAILQ_HEAD(token_list, token) tokens;
	unsigned ntokens;
};

struct upreq {
	struct registry *r;
	struct upstream *up;
	char method[8];
	char *url;
	char scope[REF_NAME_MAX + 32];
	char *accept;
	size_t max_body;
	struct upreq_hooks hooks;
	void *arg;
	struct fetch *f; /* the request, or the token request */
	int attempt;	 /* retries made after 429/5xx */
	int auth_tried;	 /* a second 401 is final */
	int use_basic;
	int redo; /* this answer is being retried: swallow its body */
	double retry_delay;
	ev_timer retry;
};

int upstreams_init(struct registry *r)
{
	size_t i;

	r->nupstreams = r->conf->nupstreams;
	r->upstreams = calloc(r->nupstreams, sizeof(*r->upstreams));
	if (!r->upstreams)
		return -1;
	for (i = 0; i < r->nupstreams; i++) {
		r->upstreams[i].conf = &r->conf->upstreams[i];
		TAILQ_INIT(&r->upstreams[i].tokens);
	}
	return 0;
}

static void token_free(struct token *t)
{
	free(t->scope);
	free(t->value);
	free(t);
}

void upstreams_free(struct registry *r)
{
	struct token_list *list;
	struct token *t;

	for (size_t i = 0; i < r->nupstreams; i++) {
		list = &r->upstreams[i].tokens;
		while ((t = TAILQ_FIRST(list))) {
			TAILQ_REMOVE(list, t, link);
			token_free(t);
		}
	}
	free(r->upstreams);
	r->upstreams = NULL;
}

struct upstream *upstream_find(struct registry *r, const char *host)
{
	size_t i;

	if (!host)
		host = "docker.io";
	for (i = 0; i < r->nupstreams; i++)
		if (strcasecmp(r->upstreams[i].conf->host, host) ==
		    0) /* names are case-insensitive */
			return &r->upstreams[i];
	return NULL;
}

const char *upstream_host(const struct upstream *up)
{
	return up->conf->host;
}

static const char *token_lookup(struct upstream *up, const char *scope, ev_tstamp now)
{
	struct token *t;

	for (t = TAILQ_FIRST(&up->tokens); t; t = TAILQ_NEXT(t, link))
		if (strcmp(t->scope, scope) == 0 && t->expires > now)
			return t->value;
	return NULL;
}

/* Newest first; past the cap the oldest goes. */
static void token_store(struct upstream *up, const char *scope, const char *value, ev_tstamp exp)
{
	struct token *t = calloc(1, sizeof(*t));

	if (!t || !(t->scope = strdup(scope)) || !(t->value = strdup(value))) {
		if (t)
			token_free(t);
		return;
	}
	t->expires = exp;
	TAILQ_INSERT_HEAD(&up->tokens, t, link);
	if (++up->ntokens <= TOKEN_CACHE_MAX)
		return;
	t = TAILQ_LAST(&up->tokens, token_list);
	TAILQ_REMOVE(&up->tokens, t, link);
	token_free(t);
	up->ntokens--;
}

static void attempt(struct upreq *u);

static void upreq_free(struct upreq *u)
{
	ev_timer_stop(u->r->loop, &u->retry);
	free(u->url);
	free(u->accept);
	free(u);
}

static void finish(struct upreq *u, int ok, const char *err)
{
	u->hooks.on_done(u, ok, err, u->arg);
	upreq_free(u);
}

/* Backoff 0.5 s, 1 s, 2 s … capped at 8 s, with jitter; Retry-After (seconds) wins. */
static double retry_delay(struct upreq *u, const char *retry_after)
{
	static const struct backoff bo = {.base_s = 0.5, .cap_s = 8.0, .jitter = 0.25};

	if (retry_after && *retry_after >= '0' && *retry_after <= '9')
		return atof(retry_after);
	return backoff_delay(&bo, (unsigned)u->attempt + 1);
}

/* Decides whether this answer is final, or is to be retried (auth, 429, 5xx). */
static int wants_redo(struct upreq *u, long status)
{
	const char *ra;

	if (status == 401 && !u->auth_tried)
		return 1;
	if ((status == 429 || status >= 500) && u->attempt < u->r->conf->retries) {
		ra = fetch_header(u->f, "Retry-After");
		u->retry_delay = retry_delay(u, ra);
		return u->retry_delay <= RETRY_AFTER_MAX_S;
	}
	return 0;
}

static int on_response(struct fetch *f, long status, void *arg)
{
	struct upreq *u = arg;

	(void)f;
	u->redo = wants_redo(u, status);
	if (u->redo || !u->hooks.on_response)
		return 0;
	return u->hooks.on_response(u, status, u->arg);
}

static int on_data(struct fetch *f, const char *buf, size_t len, void *arg)
{
	struct upreq *u = arg;

	(void)f;
	if (u->redo)
		return 0;
	return u->hooks.on_data(u, buf, len, u->arg);
}

static void token_done(struct fetch *f, int ok, const char *err, void *arg);

static int start_token_request(struct upreq *u, const struct wwwauth *ch)
{
	struct fetch_req req = {.url = NULL, .follow_redirects = 1, .max_body = TOKEN_MAX_BYTES};
	static const struct fetch_hooks hooks = {.on_done = token_done};
	char *service = curl_easy_escape(NULL, ch->service, 0);
	char *scope = curl_easy_escape(NULL, ch->scope[0] ? ch->scope : u->scope, 0);
	char url[2048];
	int n = -1;

	if (service && scope)
		n = snprintf(url, sizeof(url), "%s%sservice=%s&scope=%s", ch->realm,
			     strchr(ch->realm, '?') ? "&" : "?", service, scope);
	curl_free(service);
	curl_free(scope);
	if (n < 0 || (size_t)n >= sizeof(url))
		return -1;
	req.url = url;
	req.userpwd = u->up->conf->userpwd;
	req.connect_timeout_ms = u->r->conf->connect_timeout_ms;
	req.timeout_ms = 30000;
	req.insecure = u->up->conf->insecure_tls;
	req.ca_file = u->up->conf->ca_file;
	u->f = fetch_start(u->r->fl, &req, &hooks, u);
	return u->f ? 0 : -1;
}

/* RFC 6750's b64token: it goes into a header, so a CR, LF or NUL must never get through. */
static int token_valid(const char *t, size_t len)
{
	size_t n =
	    strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/");

	if (len == 0 || len > TOKEN_MAX_BYTES || strlen(t) != len || n == 0)
		return 0;
	return strspn(t + n, "=") == len - n;
}

/* Reads {"token"|"access_token": …, "expires_in": …}; 60 s when no lifetime is given. */
static int parse_token(struct upreq *u, const char *body, size_t len)
{
	json_t *doc = json_loadb(body, len, 0, NULL);
	json_t *tok = json_object_get(doc, "token");
	json_t *exp = json_object_get(doc, "expires_in");
	double life = json_is_integer(exp) ? (double)json_integer_value(exp) : 60;

	if (!json_is_string(tok))
		tok = json_object_get(doc, "access_token");
	if (!json_is_string(tok) || !token_valid(json_string_value(tok), json_string_length(tok))) {
		json_decref(doc);
		return -1;
	}
	if (life < 1)
		life = 60;
	/* Renew a little early so a token never expires on the way. */
	token_store(u->up, u->scope, json_string_value(tok), ev_now(u->r->loop) + life * 0.9);
	json_decref(doc);
	return 0;
}

static void token_done(struct fetch *f, int ok, const char *err, void *arg)
{
	struct upreq *u = arg;
	size_t len;
	const char *body = fetch_body(f, &len);
	char msg[256];

	u->f = NULL;
	if (ok && fetch_status(f) == 200 && parse_token(u, body, len) == 0) {
		attempt(u);
		return;
	}
	snprintf(msg, sizeof(msg), "token request failed: %s",
		 ok ? (fetch_status(f) == 401 ? "credentials refused (401)" : "bad answer") : err);
	log_warn("upstream_auth", "registry=%s scope=\"%s\" status=%ld error=\"%s\"",
		 u->up->conf->host, u->scope, fetch_status(f), msg);
	finish(u, 0, msg);
}

/* After a 401: find how the upstream wants us to authenticate, and try again that way. */
static void redo_auth(struct upreq *u, struct fetch *f)
{
	const char *hdr = fetch_header(f, "WWW-Authenticate");
	struct wwwauth ch;

	u->auth_tried = 1;
	if (!hdr || wwwauth_parse(hdr, &ch) < 0) {
		finish(u, 0, "upstream answered 401 without a usable WWW-Authenticate challenge");
		return;
	}
	if (strcasecmp(ch.scheme, "Basic") == 0) {
		if (!u->up->conf->userpwd) {
			finish(u, 0, "upstream wants Basic auth and no credentials are configured");
			return;
		}
		u->use_basic = 1;
		attempt(u);
		return;
	}
	if (strcasecmp(ch.scheme, "Bearer") != 0 || start_token_request(u, &ch) < 0)
		finish(u, 0, "upstream auth challenge not understood");
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	attempt(w->data);
}

static void on_done(struct fetch *f, int ok, const char *err, void *arg)
{
	struct upreq *u = arg;

	if (!u->redo) {
		finish(u, ok, err);
		return;
	}
	u->redo = 0;
	if (fetch_status(f) == 401) {
		u->f = NULL;
		redo_auth(u, f);
		return;
	}
	log_info("upstream_retry", "registry=%s url=\"%s\" status=%ld attempt=%d delay_s=%.2f",
		 u->up->conf->host, u->url, fetch_status(f), u->attempt + 1, u->retry_delay);
	u->attempt++;
	u->f = NULL;
	ev_timer_set(&u->retry, u->retry_delay, 0);
	ev_timer_start(u->r->loop, &u->retry);
}

static void attempt(struct upreq *u)
{
	static const struct fetch_hooks hooks_stream = {on_response, on_data, on_done};
	static const struct fetch_hooks hooks_collect = {on_response, NULL, on_done};
	const char *token = token_lookup(u->up, u->scope, ev_now(u->r->loop));
	char accept[1024], auth[TOKEN_MAX_BYTES + 32];
	const char *headers[3] = {NULL, NULL, NULL};
	struct fetch_req req = {.method = u->method, .url = u->url, .follow_redirects = 1};
	int n = 0;

	if (u->accept &&
	    snprintf(accept, sizeof(accept), "Accept: %s", u->accept) < (int)sizeof(accept))
		headers[n++] = accept;
	if (token && !u->use_basic &&
	    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token) < (int)sizeof(auth))
		headers[n++] = auth;
	req.headers = headers;
	req.userpwd = u->use_basic ? u->up->conf->userpwd : NULL;
	req.connect_timeout_ms = u->r->conf->connect_timeout_ms;
	req.low_speed_time_s = u->r->conf->low_speed_time_s;
	req.max_body = u->max_body;
	req.insecure = u->up->conf->insecure_tls;
	req.ca_file = u->up->conf->ca_file;
	u->f = fetch_start(u->r->fl, &req, u->hooks.on_data ? &hooks_stream : &hooks_collect, u);
	if (!u->f)
		finish(u, 0, "cannot start upstream transfer");
}

struct upreq *upreq_start(struct registry *r, struct upstream *up, const char *method,
			  const char *repo, const char *path, const char *accept, size_t max_body,
			  const struct upreq_hooks *hooks, void *arg)
{
	struct upreq *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->r = r;
	u->up = up;
	snprintf(u->method, sizeof(u->method), "%s", method);
	snprintf(u->scope, sizeof(u->scope), "repository:%s:pull", repo);
	u->max_body = max_body;
	u->hooks = *hooks;
	u->arg = arg;
	ev_timer_init(&u->retry, retry_cb, 0, 0);
	u->retry.data = u;
	if (asprintf(&u->url, "%s/v2/%s/%s", up->conf->url, repo, path) < 0) {
		u->url = NULL;
		upreq_free(u);
		return NULL;
	}
	if (accept && !(u->accept = strdup(accept))) {
		upreq_free(u);
		return NULL;
	}
	/* The first attempt runs from the loop, so a failure to start still reaches on_done. */
	ev_timer_set(&u->retry, 0, 0);
	ev_timer_start(r->loop, &u->retry);
	return u;
}

void upreq_cancel(struct upreq *u)
{
	if (u->f)
		fetch_cancel(u->f);
	upreq_free(u);
}

long upreq_status(const struct upreq *u)
{
	return u->f ? fetch_status(u->f) : 0;
}

const char *upreq_header(const struct upreq *u, const char *name)
{
	return u->f ? fetch_header(u->f, name) : NULL;
}

const char *upreq_body(const struct upreq *u, size_t *len)
{
	if (!u->f) {
		*len = 0;
		return "";
	}
	return fetch_body(u->f, len);
}
