/* upstream: requests to an upstream, with the fetch layer stubbed (fetch_* below: the test
 * answers for the upstream) on a real loop. What must hold:
 *   - at most max_concurrent fetches at once; max_queued more wait, first come first served; the
 *     next is answered 429 (Retry-After: 1) at once; a slot freed (an answer, a cancel) goes to
 *     the first waiter; a cancelled waiter leaves the queue;
 *   - a 404 is remembered for miss_ttl_s by URL and Accept: the same request again is answered
 *     404 without a fetch, another Accept or a 200 is asked again;
 *   - a 429 with Retry-After closes the upstream: every request meanwhile is answered 429 with
 *     what is left of it, and no fetch; a retry that waited for that Retry-After goes out;
 *   - the configured credentials go with a token request to the upstream's own realm and to a
 *     listed one, not to another host (the token is asked for anonymously there); an auth
 *     round holds the request's slot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "upstream.c"

#define FETCHES 32
#define RESULTS 8

/* --- the fetch layer, stubbed: the test answers for the upstream --- */

struct fetch {
	struct fetch_hooks hooks;
	void *arg;
	char url[1024];
	char userpwd[64]; /* "" when none was given */
	char auth[256];	  /* the Authorization header, "" when none */
	long status;
	char header[64], value[512]; /* one response header */
	const char *body;
	int done, cancelled;
};

static struct fetch fetches[FETCHES];
static int nfetches;

struct fetch *fetch_start(struct fetch_loop *fl, const struct fetch_req *req,
			  const struct fetch_hooks *hooks, void *arg)
{
	struct fetch *f = &fetches[nfetches++];

	(void)fl;
	assert_true(nfetches <= FETCHES);
	memset(f, 0, sizeof(*f));
	f->hooks = *hooks;
	f->arg = arg;
	snprintf(f->url, sizeof(f->url), "%s", req->url);
	snprintf(f->userpwd, sizeof(f->userpwd), "%s", req->userpwd ? req->userpwd : "");
	for (const char *const *h = req->headers; h && *h; h++)
		if (strncmp(*h, "Authorization: ", 15) == 0)
			snprintf(f->auth, sizeof(f->auth), "%s", *h + 15);
	return f;
}

void fetch_cancel(struct fetch *f)
{
	f->cancelled = 1;
}

long fetch_status(const struct fetch *f)
{
	return f->status;
}

const char *fetch_header(const struct fetch *f, const char *name)
{
	return f->header[0] && strcasecmp(name, f->header) == 0 ? f->value : NULL;
}

const char *fetch_body(const struct fetch *f, size_t *len)
{
	*len = f->body ? strlen(f->body) : 0;
	return f->body ? f->body : "";
}

/* The upstream answers fetch I with STATUS (and the header NAME: VALUE, NAME may be NULL). */
static void answer_fetch(int i, long status, const char *name, const char *value, const char *body)
{
	struct fetch *f = &fetches[i];

	assert_true(i < nfetches);
	assert_false(f->done || f->cancelled);
	f->status = status;
	snprintf(f->header, sizeof(f->header), "%s", name ? name : "");
	snprintf(f->value, sizeof(f->value), "%s", value ? value : "");
	f->body = body;
	if (f->hooks.on_response)
		assert_int_equal(f->hooks.on_response(f, status, f->arg), 0);
	f->done = 1;
	f->hooks.on_done(f, 1, NULL, f->arg);
}

/* --- the callers --- */

struct result {
	int done, ok;
	long status;
	char retry_after[512];
};

static void done(struct upreq *u, int ok, const char *err, void *arg)
{
	struct result *r = arg;
	const char *ra = upreq_header(u, "Retry-After");

	(void)err;
	assert_false(r->done);
	r->done = 1;
	r->ok = ok;
	r->status = ok ? upreq_status(u) : 0;
	snprintf(r->retry_after, sizeof(r->retry_after), "%s", ra ? ra : "");
}

struct fixture {
	struct registry_conf rc;
	struct upstream_conf uc;
	struct registry r;
	struct result res[RESULTS];
	struct upreq *u[RESULTS];
};

static int setup(void **state)
{
	static char *listed[] = {"http://auth.test/token", NULL};
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->uc = (struct upstream_conf){.host = "up.test",
				       .url = "http://up.test:5000",
				       .userpwd = "bot:pw",
				       .auth_realms = listed,
				       .max_concurrent = 2,
				       .max_queued = 2,
				       .miss_ttl_s = 60};
	f->rc.upstreams = &f->uc;
	f->rc.nupstreams = 1;
	f->r.conf = &f->rc;
	f->r.loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(f->r.loop);
	assert_int_equal(upstreams_init(&f->r), 0);
	nfetches = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(f->r.upstreams[0].gate.active, 0);
	assert_int_equal(f->r.upstreams[0].gate.queued, 0);
	upstreams_free(&f->r);
	ev_loop_destroy(f->r.loop);
	free(f);
	return 0;
}

static void start(struct fixture *f, int i, const char *repo, const char *path, const char *accept)
{
	static const struct upreq_hooks hooks = {.on_done = done};

	f->u[i] = upreq_start(&f->r, &f->r.upstreams[0], "GET", repo, path, accept, 0, &hooks,
			      &f->res[i]);
	assert_non_null(f->u[i]);
}

/* Runs what is due now (the zero timers that start attempts). */
static void spin(struct fixture *f)
{
	for (int i = 0; i < 20; i++)
		ev_run(f->r.loop, EVRUN_NOWAIT);
}

static void test_cap_and_queue(void **state)
{
	struct fixture *f = *state;
	char path[32];

	for (int i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "manifests/t%d", i);
		start(f, i, "repo", path, NULL);
		spin(f); /* one by one: zero timers due together fire in no set order */
	}
	assert_int_equal(nfetches, 2); /* the cap */
	assert_string_equal(fetches[0].url, "http://up.test:5000/v2/repo/manifests/t0");
	assert_string_equal(fetches[1].url, "http://up.test:5000/v2/repo/manifests/t1");
	/* t2 and t3 wait; t4 found the queue full */
	assert_false(f->res[2].done || f->res[3].done);
	assert_true(f->res[4].done && f->res[4].ok);
	assert_int_equal(f->res[4].status, 429);
	assert_string_equal(f->res[4].retry_after, "1");
	answer_fetch(0, 404, NULL, NULL, NULL);
	assert_int_equal(f->res[0].status, 404);
	spin(f);
	assert_int_equal(nfetches, 3);
	assert_string_equal(fetches[2].url, "http://up.test:5000/v2/repo/manifests/t2");
	/* a waiter that goes away gives up its place; a request cancelled gives up its slot */
	upreq_cancel(f->u[3]);
	assert_int_equal(f->r.upstreams[0].gate.queued, 0);
	start(f, 5, "repo", "manifests/t5", NULL);
	spin(f);
	assert_int_equal(nfetches, 3);
	upreq_cancel(f->u[1]);
	assert_true(fetches[1].cancelled);
	spin(f);
	assert_int_equal(nfetches, 4);
	assert_string_equal(fetches[3].url, "http://up.test:5000/v2/repo/manifests/t5");
	answer_fetch(2, 200, NULL, NULL, "{}");
	answer_fetch(3, 404, NULL, NULL, NULL);
	assert_int_equal(f->res[2].status, 200);
	assert_int_equal(f->res[5].status, 404);
}

static void test_miss_remembered(void **state)
{
	struct fixture *f = *state;

	start(f, 0, "repo", "manifests/gone", "application/vnd.oci.image.index.v1+json");
	spin(f);
	answer_fetch(0, 404, NULL, NULL, NULL);
	start(f, 1, "repo", "manifests/gone", "application/vnd.oci.image.index.v1+json");
	spin(f);
	assert_int_equal(nfetches, 1); /* not asked again */
	assert_true(f->res[1].done && f->res[1].ok);
	assert_int_equal(f->res[1].status, 404);
	start(f, 2, "repo", "manifests/gone", "application/json"); /* another Accept */
	spin(f);
	assert_int_equal(nfetches, 2);
	answer_fetch(1, 200, NULL, NULL, "{}");
	start(f, 3, "repo", "manifests/gone", "application/json"); /* a 200 is not a miss */
	spin(f);
	assert_int_equal(nfetches, 3);
	answer_fetch(2, 404, NULL, NULL, NULL);
	assert_int_equal(upmiss_count(f->r.upstreams[0].misses), 2);
}

static void test_retry_after_closes(void **state)
{
	struct fixture *f = *state;

	f->rc.retries = 0;
	start(f, 0, "repo", "manifests/a", NULL);
	spin(f);
	answer_fetch(0, 429, "Retry-After", "120", NULL);
	assert_int_equal(f->res[0].status, 429);
	assert_string_equal(f->res[0].retry_after, "120");
	start(f, 1, "other", "blobs/sha256:00", NULL);
	start(f, 2, "repo", "manifests/b", NULL);
	spin(f);
	assert_int_equal(nfetches, 1); /* nobody asked it */
	for (int i = 1; i <= 2; i++) {
		assert_true(f->res[i].done && f->res[i].ok);
		assert_int_equal(f->res[i].status, 429);
		assert_true(strcmp(f->res[i].retry_after, "120") == 0 ||
			    strcmp(f->res[i].retry_after, "119") == 0);
	}
}

static void test_retry_waits_its_retry_after(void **state)
{
	struct fixture *f = *state;

	f->rc.retries = 1;
	start(f, 0, "repo", "manifests/a", NULL);
	spin(f);
	answer_fetch(0, 429, "Retry-After", "1", NULL);
	assert_false(f->res[0].done); /* it waits to retry, holding no slot */
	assert_int_equal(f->r.upstreams[0].gate.active, 0);
	start(f, 1, "repo", "manifests/b", NULL);
	spin(f);
	assert_int_equal(f->res[1].status, 429); /* the upstream is closed for the others */
	while (nfetches < 2)			 /* about a second */
		ev_run(f->r.loop, EVRUN_ONCE);
	assert_string_equal(fetches[1].url, "http://up.test:5000/v2/repo/manifests/a");
	answer_fetch(1, 200, NULL, NULL, "{}");
	assert_int_equal(f->res[0].status, 200);
}

static const char *token_body = "{\"token\": \"tok-1\", \"expires_in\": 300}";

/* A request for REPO that the upstream answers 401 naming REALM: returns the token fetch. */
static struct fetch *token_round(struct fixture *f, int i, const char *repo, const char *realm)
{
	char challenge[256];

	start(f, i, repo, "manifests/x", NULL);
	spin(f);
	snprintf(challenge, sizeof(challenge), "Bearer realm=\"%s\",service=\"svc\"", realm);
	answer_fetch(nfetches - 1, 401, "WWW-Authenticate", challenge, NULL);
	assert_int_equal(f->r.upstreams[0].gate.active, 1); /* the auth round keeps the slot */
	return &fetches[nfetches - 1];
}

static void test_token_realms(void **state)
{
	struct fixture *f = *state;
	struct fetch *t;
	char want[256];

	t = token_round(f, 0, "own", "http://up.test:5000/token");
	assert_string_equal(t->url,
			    "http://up.test:5000/token?service=svc&scope=repository%3aown%3apull");
	assert_string_equal(t->userpwd, "bot:pw");
	answer_fetch(nfetches - 1, 200, NULL, NULL, token_body);
	assert_string_equal(fetches[nfetches - 1].auth, "Bearer tok-1"); /* the retry */
	answer_fetch(nfetches - 1, 404, NULL, NULL, NULL);
	assert_int_equal(f->res[0].status, 404);

	t = token_round(f, 1, "listed", "http://auth.test/token");
	assert_string_equal(t->userpwd, "bot:pw");
	answer_fetch(nfetches - 1, 200, NULL, NULL, token_body);
	answer_fetch(nfetches - 1, 404, NULL, NULL, NULL);

	const char *elsewhere[] = {"http://up.test:5001/token", "http://evil.test/token",
				   "http://auth.test:81/token", "http://auth.test/tokens"};
	for (int i = 0; i < 4; i++) {
		char repo[] = "other0";

		repo[5] = (char)('0' + i);
		t = token_round(f, 2 + i, repo, elsewhere[i]);
		snprintf(want, sizeof(want), "%s?service=svc&scope=repository%%3a%s%%3apull",
			 elsewhere[i], repo);
		assert_string_equal(t->url, want);
		assert_string_equal(t->userpwd, ""); /* asked anonymously */
		answer_fetch(nfetches - 1, 200, NULL, NULL, token_body);
		answer_fetch(nfetches - 1, 404, NULL, NULL, NULL);
		assert_int_equal(f->res[2 + i].status, 404);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_cap_and_queue, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_miss_remembered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retry_after_closes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retry_waits_its_retry_after, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_realms, setup, teardown),
	};

	log_init("test_upstream", LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
