/* upstream: requests to a configured upstream registry. A 401 with a Bearer challenge fetches a
 * token (cached per scope until it expires) and retries; a Basic challenge retries with the
 * configured credentials; 429 and 5xx are retried with backoff, honouring Retry-After. The
 * caller sees only the final answer. Tokens and passwords never reach the log, and the
 * credentials go to a token realm only where realm.c allows.
 *
 * What the upstream is asked is bounded (upgate.c): at most max_concurrent requests at once per
 * upstream, each holding its slot from its first byte sent to its final answer (token requests
 * and auth rounds included, not the waits between retries), a bounded queue behind them, and
 * nothing at all while the upstream's Retry-After runs. A miss it answered is remembered for
 * miss_ttl_s (upmiss.c). Answers made here instead of by the upstream look like its own to the
 * caller: upreq_status() is 429 (with a Retry-After) or the miss's status.
 *
 * An upreq moves NEW -> RUNNING, or NEW -> QUEUED -> GRANTED -> RUNNING; RUNNING -> BACKOFF ->
 * RUNNING (or QUEUED again) for each retry; from any state it may end, and upreq_free gives back
 * what the state holds. */
#include <curl/curl.h>
#include <jansson.h>
#include <stddef.h>
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
#define RETRY_AFTER_MAX_S 30.0	 /* a longer wait goes back to the client instead */
#define RETRY_AFTER_CAP_S 3600.0 /* the longest an upstream can close itself for */
#define MISS_CACHE_MAX 4096	 /* misses remembered per upstream */

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
	struct upgate gate;
	struct upmiss *misses;
	int full_logged; /* the full queue was logged; again once one went straight in */
};

enum upreq_state {
	UPREQ_NEW,     /* the first attempt's timer runs: nothing asked, nothing held */
	UPREQ_QUEUED,  /* in the gate's queue, waiting for a slot */
	UPREQ_GRANTED, /* handed a slot: the timer starts the attempt from the loop */
	UPREQ_RUNNING, /* holds a slot: the request, or an auth round, is in flight */
	UPREQ_BACKOFF, /* waits to retry after 429/5xx, holding no slot */
};

struct upreq {
	struct registry *r;
	struct upstream *up;
	enum upreq_state state;
	struct upgate_wait wait;
	char method[8];
	char *url;
	char *miss_key; /* "URL\nAccept" for upmiss */
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
	int waited_retry_after; /* this retry waited for the upstream's Retry-After itself */
	ev_timer retry;
	long status;	      /* an answer made here (u->f is NULL then) */
	char retry_after[16]; /* its Retry-After, "" when none */
};

int upstreams_init(struct registry *r)
{
	size_t i;

	r->nupstreams = r->conf->nupstreams;
	r->upstreams = calloc(r->nupstreams, sizeof(*r->upstreams));
	if (!r->upstreams)
		return -1;
	for (i = 0; i < r->nupstreams; i++) {
		struct upstream *up = &r->upstreams[i];

		up->conf = &r->conf->upstreams[i];
		TAILQ_INIT(&up->tokens);
		upgate_init(&up->gate, (unsigned)up->conf->max_concurrent,
			    (unsigned)up->conf->max_queued);
		if (!(up->misses = upmiss_new(MISS_CACHE_MAX)))
			return -1;
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

	for (size_t i = 0; r->upstreams && i < r->nupstreams; i++) {
		list = &r->upstreams[i].tokens;
		while ((t = TAILQ_FIRST(list))) {
			TAILQ_REMOVE(list, t, link);
			token_free(t);
		}
		upmiss_free(r->upstreams[i].misses);
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

/* Gives back the slot or the place in the queue that the state holds. */
static void upreq_release(struct upreq *u)
{
	if (u->state == UPREQ_QUEUED)
		upgate_cancel(&u->up->gate, &u->wait);
	else if (u->state == UPREQ_GRANTED || u->state == UPREQ_RUNNING)
		upgate_leave(&u->up->gate); /* may hand the slot on: only starts a timer */
	u->state = UPREQ_NEW;
}

/* The one destructor: the timer, the gate's slot or place, then the memory. */
static void upreq_free(struct upreq *u)
{
	ev_timer_stop(u->r->loop, &u->retry);
	upreq_release(u);
	free(u->url);
	free(u->miss_key);
	free(u->accept);
	free(u);
}

static void finish(struct upreq *u, int ok, const char *err)
{
	u->hooks.on_done(u, ok, err, u->arg);
	upreq_free(u);
}

/* An answer made here, not by the upstream: it reaches the caller as the upstream's would. */
static void answer(struct upreq *u, long status, const char *retry_after)
{
	u->status = status;
	snprintf(u->retry_after, sizeof(u->retry_after), "%s", retry_after ? retry_after : "");
	if (u->hooks.on_response && u->hooks.on_response(u, status, u->arg) < 0) {
		finish(u, 0, "aborted");
		return;
	}
	finish(u, 1, NULL);
}

/* Seconds rounded up: a client told to wait 0 would come straight back. */
static long whole_seconds(double s)
{
	long n = (long)s;

	return n + (s > (double)n);
}

/* Answers from what the upstream said before, without asking it again: a miss remembered, or
 * its Retry-After still running (a retry that waited for that very Retry-After goes on: the
 * upstream asked for it). 1 when u is finished. */
static int answered_before(struct upreq *u)
{
	ev_tstamp now = ev_now(u->r->loop);
	long miss = u->miss_key ? upmiss_get(u->up->misses, u->miss_key, now) : 0;
	double closed = upgate_closed_for(&u->up->gate, now);
	char ra[16];

	if (miss) {
		log_debug("upstream_miss_remembered", "registry=%s url=\"%s\" status=%ld",
			  u->up->conf->host, u->url, miss);
		metrics_add(u->r->stats.upstream_spared, 1, "miss");
		answer(u, miss, NULL);
		return 1;
	}
	if (closed > 0 && !u->waited_retry_after) {
		snprintf(ra, sizeof(ra), "%ld", whole_seconds(closed));
		log_debug("upstream_closed", "registry=%s url=\"%s\" retry_after_s=%s",
			  u->up->conf->host, u->url, ra);
		metrics_add(u->r->stats.upstream_spared, 1, "rate_limited");
		answer(u, 429, ra);
		return 1;
	}
	return 0;
}

/* A 404, 401 or 403 to a GET or HEAD is a miss (Docker Hub answers 401 for a repository that
 * does not exist), remembered for miss_ttl_s. */
static void remember_miss(struct upreq *u, long status)
{
	long ttl = u->up->conf->miss_ttl_s;

	if (u->miss_key && ttl > 0 && (status == 404 || status == 401 || status == 403))
		upmiss_put(u->up->misses, u->miss_key, status, ev_now(u->r->loop), (double)ttl);
}

/* Retry-After as delay-seconds or an HTTP-date (RFC 9110 section 10.2.3), in seconds from now
 * and at most RETRY_AFTER_CAP_S; -1 when absent or not understood. */
static double retry_after_s(const char *v)
{
	time_t when;
	double s;

	if (!v)
		return -1;
	if (*v >= '0' && *v <= '9')
		s = strtod(v, NULL);
	else if ((when = curl_getdate(v, NULL)) == -1)
		return -1;
	else
		s = difftime(when, time(NULL));
	return s < 0 ? 0 : s > RETRY_AFTER_CAP_S ? RETRY_AFTER_CAP_S : s;
}

/* A 429 with a Retry-After closes the upstream to everyone until then. */
static void close_upstream(struct upreq *u, double ra)
{
	ev_tstamp now = ev_now(u->r->loop);

	if (ra <= 0)
		return;
	if (upgate_closed_for(&u->up->gate, now) == 0)
		log_warn("upstream_rate_limited", "registry=%s retry_after_s=%.0f",
			 u->up->conf->host, ra);
	upgate_close(&u->up->gate, now + ra);
}

/* Decides whether this answer is final, or is to be retried (auth, 429, 5xx). Backoff 0.5 s,
 * 1 s, 2 s … capped at 8 s, with jitter; a Retry-After wins. */
static int wants_redo(struct upreq *u, long status)
{
	static const struct backoff bo = {.base_s = 0.5, .cap_s = 8.0, .jitter = 0.25};
	double ra;

	if (status == 401 && !u->auth_tried)
		return 1;
	if (status != 429 && status < 500)
		return 0;
	ra = retry_after_s(fetch_header(u->f, "Retry-After"));
	if (status == 429)
		close_upstream(u, ra);
	if (u->attempt >= u->r->conf->retries)
		return 0;
	u->waited_retry_after = status == 429 && ra > 0;
	u->retry_delay = ra >= 0 ? ra : backoff_delay(&bo, (unsigned)u->attempt + 1);
	return u->retry_delay <= RETRY_AFTER_MAX_S;
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

/* The configured credentials when REALM may have them; else NULL (the token is asked for
 * anonymously), and the log says why they were withheld. */
static const char *token_credentials(struct upreq *u, const char *realm)
{
	const struct upstream_conf *c = u->up->conf;
	char why[384];

	if (!c->userpwd)
		return NULL;
	if (realm_allowed(c->url, c->auth_realms, realm, why, sizeof(why)))
		return c->userpwd;
	log_warn("upstream_auth_withheld", "registry=%s scope=\"%s\" reason=\"%s\"", c->host,
		 u->scope, why);
	return NULL;
}

static int start_token_request(struct upreq *u, const struct wwwauth *ch)
{
	struct fetch_req req = {.url = NULL, .follow_redirects = 1, .max_body = TOKEN_MAX_BYTES};
	static const struct fetch_hooks hooks = {.on_done = token_done};
	char *url = realm_token_url(ch->realm, ch->service, ch->scope[0] ? ch->scope : u->scope);

	if (!url)
		return -1;
	req.url = url;
	req.userpwd = token_credentials(u, ch->realm);
	req.connect_timeout_ms = u->r->conf->connect_timeout_ms;
	req.timeout_ms = 30000;
	req.insecure = u->up->conf->insecure_tls;
	req.ca_file = u->up->conf->ca_file;
	u->f = fetch_start(u->r->fl, &req, &hooks, u); /* curl keeps its own copy of the URL */
	free(url);
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

/* Through the gate: at once, or queued (granted() follows), or refused when the queue is
 * full. ADMITTED: a retry, which was let in once already. */
static void admit(struct upreq *u, int admitted)
{
	struct upstream *up = u->up;

	if (answered_before(u))
		return;
	switch (upgate_enter(&up->gate, &u->wait, admitted)) {
	case UPGATE_GO:
		up->full_logged = 0;
		u->state = UPREQ_RUNNING;
		attempt(u);
		break;
	case UPGATE_QUEUED:
		u->state = UPREQ_QUEUED;
		break;
	case UPGATE_FULL:
		if (!up->full_logged)
			log_warn("upstream_queue_full", "registry=%s active=%u queued=%u",
				 up->conf->host, up->gate.active, up->gate.queued);
		up->full_logged = 1;
		metrics_add(u->r->stats.upstream_spared, 1, "queue_full");
		answer(u, 429, "1");
		break;
	}
}

/* upgate_leave handed u a slot, from inside another request's end: start from the loop. */
static void granted(struct upgate_wait *w)
{
	struct upreq *u = (struct upreq *)((char *)w - offsetof(struct upreq, wait));

	u->state = UPREQ_GRANTED;
	ev_timer_set(&u->retry, 0, 0);
	ev_timer_start(u->r->loop, &u->retry);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct upreq *u = w->data;

	(void)loop;
	(void)revents;
	switch (u->state) {
	case UPREQ_NEW:
		admit(u, 0);
		break;
	case UPREQ_BACKOFF:
		u->state = UPREQ_NEW;
		admit(u, 1);
		break;
	case UPREQ_GRANTED:
		/* What it waited for may have been answered meanwhile (the same miss, a 429). */
		u->state = UPREQ_RUNNING;
		if (!answered_before(u))
			attempt(u);
		break;
	case UPREQ_QUEUED:
	case UPREQ_RUNNING:
		break; /* no timer runs then */
	}
}

static void on_done(struct fetch *f, int ok, const char *err, void *arg)
{
	struct upreq *u = arg;

	if (!u->redo) {
		if (ok)
			remember_miss(u, fetch_status(f));
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
	upreq_release(u); /* nobody else waits for the wait */
	u->state = UPREQ_BACKOFF;
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
	u->wait.granted = granted;
	ev_timer_init(&u->retry, timer_cb, 0, 0);
	u->retry.data = u;
	if (asprintf(&u->url, "%s/v2/%s/%s", up->conf->url, repo, path) < 0) {
		u->url = NULL;
		upreq_free(u);
		return NULL;
	}
	if ((accept && !(u->accept = strdup(accept))) ||
	    ((strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) &&
	     asprintf(&u->miss_key, "%s\n%s", u->url, accept ? accept : "") < 0)) {
		u->miss_key = NULL;
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
	return u->f ? fetch_status(u->f) : u->status;
}

const char *upreq_header(const struct upreq *u, const char *name)
{
	if (u->f)
		return fetch_header(u->f, name);
	if (strcasecmp(name, "Retry-After") == 0 && u->retry_after[0])
		return u->retry_after;
	return NULL;
}

const char *upreq_body(const struct upreq *u, size_t *len)
{
	if (!u->f) {
		*len = 0;
		return "";
	}
	return fetch_body(u->f, len);
}
