/* A scripted HTTP server on the test's own loop (shared/httpd), for the scaler's clients: each
 * request takes the next queued answer (or the default one) and is recorded. */
#ifndef TEST_FAKE_SERVER_H
#define TEST_FAKE_SERVER_H

#include <stdio.h>
#include <string.h>

#include "scaler.h"

#define FAKE_MAX 64

struct fake_answer {
	int status;
	char body[512];
	char hname[64], hvalue[128]; /* one extra header, or "" */
};

struct fake_request {
	char method[8], path[256], query[256], auth[256], body[256];
};

struct fake {
	struct ev_loop *loop;
	struct httpd *h;
	int port;
	struct fake_answer queue[FAKE_MAX], dflt;
	int nqueue, qnext;
	struct fake_request req[FAKE_MAX];
	int nreq;
	char url[64];
};

static inline void fake_copy(char *dst, size_t len, const char *src, size_t n)
{
	if (n >= len)
		n = len - 1;
	memcpy(dst, src ? src : "", src ? n : 0);
	dst[src ? n : 0] = '\0';
}

static inline void fake_handle(struct httpd_conn *conn, const struct httpd_req *req, void *arg)
{
	struct fake *f = arg;
	const struct fake_answer *a = f->qnext < f->nqueue ? &f->queue[f->qnext++] : &f->dflt;
	const char *auth = httpd_req_header(req, "Authorization");

	if (f->nreq < FAKE_MAX) {
		struct fake_request *r = &f->req[f->nreq++];

		fake_copy(r->method, sizeof(r->method), req->method, strlen(req->method));
		fake_copy(r->path, sizeof(r->path), req->path, strlen(req->path));
		fake_copy(r->query, sizeof(r->query), req->query, strlen(req->query));
		fake_copy(r->auth, sizeof(r->auth), auth, auth ? strlen(auth) : 0);
		fake_copy(r->body, sizeof(r->body), req->body, req->body ? req->body_len : 0);
	}
	if (a->hname[0] != '\0')
		httpd_add_header(conn, a->hname, "%s", a->hvalue);
	httpd_respond(conn, a->status, a->body, strlen(a->body));
}

static inline int fake_start(struct fake *f, struct ev_loop *loop)
{
	struct httpd_opts o;
	char err[256];

	memset(f, 0, sizeof(*f));
	f->loop = loop;
	f->dflt.status = 200;
	httpd_opts_default(&o);
	f->h = httpd_new(loop, &o, fake_handle, f);
	if (!f->h || httpd_listen(f->h, "127.0.0.1:0", err, sizeof(err)) < 0)
		return -1;
	f->port = httpd_port(f->h);
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", f->port);
	return 0;
}

static inline void fake_stop(struct fake *f)
{
	if (f->h)
		httpd_free(f->h);
	f->h = NULL;
}

static inline void fake_push(struct fake *f, int status, const char *body)
{
	struct fake_answer *a = &f->queue[f->nqueue++];

	memset(a, 0, sizeof(*a));
	a->status = status;
	snprintf(a->body, sizeof(a->body), "%s", body);
}

static inline void fake_default(struct fake *f, int status, const char *body)
{
	f->dflt.status = status;
	snprintf(f->dflt.body, sizeof(f->dflt.body), "%s", body);
}

/* Runs the loop until *flag >= want or seconds pass; returns *flag >= want. */
static inline void fake_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	*(int *)w->data = 1;
}

static inline int run_until(struct ev_loop *loop, const int *flag, int want, double seconds)
{
	ev_timer t;
	int expired = 0;

	ev_timer_init(&t, fake_timeout_cb, seconds, 0);
	t.data = &expired;
	ev_timer_start(loop, &t);
	while (*flag < want && !expired)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &t);
	return *flag >= want;
}

/* Runs the loop for about SECONDS. */
static inline void run_for(struct ev_loop *loop, double seconds)
{
	int never = 0;

	run_until(loop, &never, 1, seconds);
}

#endif
