/* runtime: the runtime step against a scripted dockerd on a unix socket, on the test's own loop.
 * Each connection the fake accepts takes the next raw HTTP answer and is then closed; requests
 * are recorded by their request line. What must happen:
 *   absent (404) → pull → present; present at the digest → no pull; at another digest → pull;
 *   dockerd's 500 (inspect or pull), an error line, a cut stream, a stream with no final status
 *   → failed with that reason, retried later; no socket, a refused socket → failed, one outage;
 *   dockerd back → present on the retry; a new digest while a check runs → checked again;
 *   runtime.parallel bounds the connections; a settled image is re-checked after RECHECK_S and
 *   stays present meanwhile; a digest reference is asked for by digest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "runtime.c"

#define D1 "sha256:38657c9484e7df7c81cf7c5be097dc0c6f24754cd9ade1138048daf35688330a"
#define D2 "sha256:1111111111111111111111111111111111111111111111111111111111111111"

#define A_404                                                                                      \
	"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\n"        \
	"Content-Length: 30\r\n\r\n{\"message\":\"no such image: x\"}"
#define A_INSPECT(d)                                                                               \
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"           \
	"{\"Id\":\"sha256:3bdb\",\"RepoTags\":[\"web:1\"],\"RepoDigests\":[\"web@" d "\"]}"
#define A_STREAM(lines)                                                                            \
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" lines
#define OK_LINES                                                                                   \
	"{\"status\":\"Pulling from library/web\",\"id\":\"1\"}\r\n"                               \
	"{\"status\":\"Digest: " D1 "\"}\r\n"                                                      \
	"{\"status\":\"Status: Downloaded newer image for web:1\"}\r\n"
#define A_500(msg)                                                                                 \
	"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"                 \
	"Connection: close\r\n\r\n{\"message\":\"" msg "\"}"

#define FAKE_MAX 16

struct fake_conn {
	int fd;
	ev_io io;
	char head[2048];
	size_t len;
	struct fake *fk;
};

struct fake {
	struct ev_loop *loop;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd;
	ev_io accept_io;
	const char *answers[FAKE_MAX];
	int nanswers, next;
	char reqs[FAKE_MAX][512];
	int nreqs;
	int open, max_open;
	struct fake_conn conns[FAKE_MAX];
};

struct fixture {
	struct ev_loop *loop;
	char dir[64];
	struct registry_conf conf;
	struct registry r;
	struct runtime *rt;
	struct fake fk;
	ev_timer tick;
};

static void conn_close(struct fake_conn *c)
{
	ev_io_stop(c->fk->loop, &c->io);
	close(c->fd);
	c->fd = -1;
	c->fk->open--;
}

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fake_conn *c = w->data;
	struct fake *fk = c->fk;
	ssize_t n = read(c->fd, c->head + c->len, sizeof(c->head) - 1 - c->len);
	const char *a;

	(void)loop;
	(void)revents;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)n;
	c->head[c->len] = '\0';
	if (!strstr(c->head, "\r\n\r\n"))
		return;
	if (fk->nreqs < FAKE_MAX)
		snprintf(fk->reqs[fk->nreqs++], sizeof(fk->reqs[0]), "%.*s",
			 (int)strcspn(c->head, "\r\n"), c->head);
	a = fk->next < fk->nanswers ? fk->answers[fk->next++] : A_500("no answer scripted");
	assert_int_equal(write(c->fd, a, strlen(a)), (ssize_t)strlen(a));
	conn_close(c);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fake *fk = w->data;
	int fd = accept(fk->lfd, NULL, NULL), i;

	(void)revents;
	if (fd < 0)
		return;
	for (i = 0; i < FAKE_MAX && fk->conns[i].fd >= 0; i++)
		;
	assert_true(i < FAKE_MAX);
	fk->conns[i] = (struct fake_conn){.fd = fd, .fk = fk};
	ev_io_init(&fk->conns[i].io, conn_cb, fd, EV_READ);
	fk->conns[i].io.data = &fk->conns[i];
	ev_io_start(loop, &fk->conns[i].io);
	if (++fk->open > fk->max_open)
		fk->max_open = fk->open;
}

/* Listens (listen = 0: binds only, so connects are refused). */
static void fake_start(struct fake *fk, int listening)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	memcpy(sa.sun_path, fk->path, strlen(fk->path) + 1);
	fk->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fk->lfd >= 0);
	assert_int_equal(bind(fk->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (!listening)
		return;
	assert_int_equal(listen(fk->lfd, 16), 0);
	ev_io_init(&fk->accept_io, accept_cb, fk->lfd, EV_READ);
	fk->accept_io.data = fk;
	ev_io_start(fk->loop, &fk->accept_io);
}

static void fake_stop(struct fake *fk)
{
	int i;

	for (i = 0; i < FAKE_MAX; i++)
		if (fk->conns[i].fd >= 0)
			conn_close(&fk->conns[i]);
	if (fk->lfd >= 0) {
		ev_io_stop(fk->loop, &fk->accept_io);
		close(fk->lfd);
		unlink(fk->path);
	}
	fk->lfd = -1;
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int i;

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ms-test-runtime.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	f->loop = ev_loop_new(EVFLAG_AUTO);
	f->fk.loop = f->loop;
	f->fk.lfd = -1;
	for (i = 0; i < FAKE_MAX; i++)
		f->fk.conns[i].fd = -1;
	snprintf(f->fk.path, sizeof(f->fk.path), "%s/docker.sock", f->dir);
	f->conf.docker_socket = f->fk.path;
	f->conf.runtime_parallel = 2;
	f->r.loop = f->loop;
	f->r.conf = &f->conf;
	f->r.fl = fetch_loop_new(f->loop);
	f->rt = runtime_new(&f->r);
	/* wakes the loop now and then, so that run_until sees its deadline */
	ev_timer_init(&f->tick, tick_cb, 0.02, 0.02);
	ev_timer_start(f->loop, &f->tick);
	*state = f;
	return f->r.fl && f->rt ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	runtime_free(f->rt);
	fetch_loop_free(f->r.fl);
	fake_stop(&f->fk);
	ev_timer_stop(f->loop, &f->tick);
	ev_loop_destroy(f->loop);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void answers(struct fixture *f, int n, ...)
{
	va_list ap;
	int i;

	va_start(ap, n);
	for (i = 0; i < n; i++)
		f->fk.answers[f->fk.nanswers++] = va_arg(ap, const char *);
	va_end(ap);
}

static struct image_ref ref_of(const char *s)
{
	struct image_ref ref;
	char why[128];

	assert_int_equal(ref_parse(s, &ref, why, sizeof(why)), 0);
	return ref;
}

/* Runs the loop until every image has settled (idle or waiting, nothing running or queued), or
 * SECONDS passed. */
static int settled(struct runtime *rt)
{
	struct rt_image *e;

	for (e = TAILQ_FIRST(&rt->images); e; e = TAILQ_NEXT(e, all))
		if (e->state != RT_IDLE && e->state != RT_WAITING)
			return 0;
	return rt->running == 0;
}

static void run_until_settled(struct fixture *f, double seconds)
{
	ev_tstamp end = ev_time() + seconds;

	while (!settled(f->rt) && ev_time() < end)
		ev_run(f->loop, EVRUN_ONCE);
	assert_true(settled(f->rt));
}

static enum runtime_report report(struct fixture *f, const char *refstr, const char **err)
{
	struct image_ref ref = ref_of(refstr);
	const char *e;

	return runtime_report(f->rt, &ref, err ? err : &e);
}

static void want(struct fixture *f, const char *refstr, const char *digest)
{
	struct image_ref ref = ref_of(refstr);

	runtime_want(f->rt, &ref, digest);
}

static void test_off_and_untracked(void **state)
{
	struct fixture *f = *state;
	struct image_ref ref = ref_of("web:1");
	const char *err = "x";

	assert_int_equal(runtime_report(NULL, &ref, &err), RUNTIME_OFF);
	assert_null(err);
	assert_string_equal(runtime_report_name(RUNTIME_OFF), "off");
	assert_int_equal(report(f, "web:1", &err), RUNTIME_ABSENT);
	assert_null(err);
	runtime_want(NULL, &ref, D1); /* off: nothing, no crash */
	want(f, "web:1", "sha256:nope");
	assert_int_equal(f->rt->nimages, 0);
}

static void test_absent_is_pulled(void **state)
{
	struct fixture *f = *state;
	int counts[RUNTIME_REPORTS];

	fake_start(&f->fk, 1);
	answers(f, 2, A_404, A_STREAM(OK_LINES));
	want(f, "web:1", D1);
	assert_int_equal(report(f, "web:1", NULL), RUNTIME_PULLING);
	run_until_settled(f, 10);
	assert_int_equal(report(f, "web:1", NULL), RUNTIME_PRESENT);
	assert_int_equal(f->fk.nreqs, 2);
	assert_string_equal(f->fk.reqs[0], "GET /images/docker.io/library/web:1/json HTTP/1.1");
	assert_string_equal(
	    f->fk.reqs[1],
	    "POST /images/create?fromImage=docker.io%2Flibrary%2Fweb&tag=1 HTTP/1.1");
	runtime_counts(f->rt, counts);
	assert_int_equal(counts[RUNTIME_PRESENT], 1);
	assert_int_equal(counts[RUNTIME_FAILED], 0);
	/* wanted again at once: nothing to do */
	want(f, "web:1", D1);
	run_until_settled(f, 1);
	assert_int_equal(f->fk.nreqs, 2);
}

static void test_present_is_not_pulled(void **state)
{
	struct fixture *f = *state;

	fake_start(&f->fk, 1);
	answers(f, 1, A_INSPECT(D1));
	want(f, "web:1", D1);
	run_until_settled(f, 10);
	assert_int_equal(report(f, "web:1", NULL), RUNTIME_PRESENT);
	assert_int_equal(f->fk.nreqs, 1);
}

/* The tag moved: Docker holds the old digest, so the new one is pulled. */
static void test_other_digest_is_pulled(void **state)
{
	struct fixture *f = *state;

	fake_start(&f->fk, 1);
	answers(f, 2, A_INSPECT(D2), A_STREAM(OK_LINES));
	want(f, "web:1", D1);
	run_until_settled(f, 10);
	assert_int_equal(report(f, "web:1", NULL), RUNTIME_PRESENT);
	assert_int_equal(f->fk.nreqs, 2);
	assert_non_null(strstr(f->fk.reqs[1], "POST /images/create?"));
	/* and when the store's digest moves, again */
	answers(f, 2, A_INSPECT(D1), A_STREAM(OK_LINES));
	want(f, "web:1", D2);
	assert_int_equal(report(f, "web:1", NULL), RUNTIME_PULLING);
	run_until_settled(f, 10);
	assert_int_equal(report(f, "web:1", NULL), RUNTIME_PRESENT);
	assert_int_equal(f->fk.nreqs, 4);
	assert_string_equal(f->rt->images.tqh_first->confirmed, D2);
}

struct failure_case {
	const char *inspect, *pull;
	const char *error; /* its start */
};

static void test_failures(void **state)
{
	static const struct failure_case cases[] = {
	    {A_404, A_500("boom"), "dockerd answered 500 to POST /images/create: boom"},
	    {A_404,
	     A_STREAM("{\"status\":\"Pulling fs layer\",\"id\":\"a\"}\r\n"
		      "{\"errorDetail\":{\"message\":\"manifest unknown\"},\"error\":\"manifest "
		      "unknown\"}\r\n"),
	     "manifest unknown"},
	    {A_404,
	     "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n{\"status\":\"Pulling fs layer\"}\r\n",
	     "dockerd cut the pull short: "},
	    {A_404, A_STREAM("{\"status\":\"Pulling fs layer\",\"id\":\"a\"}\r\n"),
	     "the progress stream ended before the pull completed"},
	    {A_404, A_STREAM("<html>\r\n"), "dockerd sent a progress line that is not a JSON"},
	    {A_500("disk on fire"), NULL,
	     "dockerd answered 500 to GET /images/docker.io/library/web5:1/json: disk on fire"},
	    {"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n[]", NULL,
	     "dockerd's answer to GET /images/docker.io/library/web6:1/json is no image"},
	};
	struct fixture *f = *state;
	struct rt_image *e;
	const char *err;
	size_t i;

	fake_start(&f->fk, 1);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char ref[32];

		snprintf(ref, sizeof(ref), "web%zu:1", i);
		f->fk.nanswers = f->fk.next = 0;
		answers(f, cases[i].pull ? 2 : 1, cases[i].inspect, cases[i].pull);
		want(f, ref, D1);
		run_until_settled(f, 10);
		assert_int_equal(report(f, ref, &err), RUNTIME_FAILED);
		if (strncmp(err, cases[i].error, strlen(cases[i].error)) != 0)
			fail_msg("case %zu: error \"%s\", want \"%s…\"", i, err, cases[i].error);
		/* its retry must not take the next case's answers */
		for (e = TAILQ_FIRST(&f->rt->images); e; e = TAILQ_NEXT(e, all))
			e->retry_at = ev_now(f->loop) + 3600;
		arm_retry(f->rt);
	}
	/* dockerd answered every time: no outage */
	assert_false(f->rt->down);
	/* the image's name in the message is dockerd's, with a tag */
	assert_non_null(strstr(f->fk.reqs[0], "/images/docker.io/library/web0:1/json"));
}

static void test_no_socket_then_back(void **state)
{
	struct fixture *f = *state;
	struct rt_image *e;
	const char *err;
	char want_err[256];

	want(f, "web:1", D1);
	run_until_settled(f, 10);
	assert_int_equal(report(f, "web:1", &err), RUNTIME_FAILED);
	snprintf(want_err, sizeof(want_err), "docker socket %s: No such file or directory",
		 f->fk.path);
	assert_string_equal(err, want_err);
	assert_true(f->rt->down);
	e = TAILQ_FIRST(&f->rt->images);
	assert_int_equal(e->attempts, 1);
	/* dockerd comes back: the retry (2 s ± 25%) finds it */
	fake_start(&f->fk, 1);
	answers(f, 2, A_404, A_STREAM(OK_LINES));
	while (e->state == RT_WAITING && ev_time() < e->retry_at + 5)
		ev_run(f->loop, EVRUN_ONCE);
	run_until_settled(f, 10);
	assert_int_equal(report(f, "web:1", &err), RUNTIME_PRESENT);
	assert_null(err);
	assert_int_equal(e->attempts, 0);
	assert_false(f->rt->down);
	assert_string_equal(e->error, "");
}

static void test_refused(void **state)
{
	struct fixture *f = *state;
	const char *err;

	fake_start(&f->fk, 0); /* bound, never listening: connect is refused */
	want(f, "web:1", D1);
	run_until_settled(f, 10);
	assert_int_equal(report(f, "web:1", &err), RUNTIME_FAILED);
	assert_non_null(strstr(err, ": Connection refused"));
}

/* A new digest while the check runs: when it ends, the image is checked again for the new one. */
static void test_moved_while_running(void **state)
{
	struct fixture *f = *state;

	fake_start(&f->fk, 1);
	answers(f, 2, A_INSPECT(D1), A_INSPECT(D2));
	want(f, "web:1", D1);
	assert_non_null(TAILQ_FIRST(&f->rt->images)->x);
	want(f, "web:1", D2);
	assert_true(TAILQ_FIRST(&f->rt->images)->again);
	run_until_settled(f, 10);
	assert_int_equal(report(f, "web:1", NULL), RUNTIME_PRESENT);
	assert_string_equal(TAILQ_FIRST(&f->rt->images)->confirmed, D2);
	assert_int_equal(f->fk.nreqs, 2);
	assert_non_null(strstr(f->fk.reqs[1], "GET /images/"));
}

/* The same when the check fails, or finds the new digest present: the next check starts from
 * inside the first one's hook, and it is that one the image keeps (and runtime_free cancels). */
static void test_moved_while_failing(void **state)
{
	struct fixture *f = *state;
	struct rt_image *e;

	fake_start(&f->fk, 1);
	answers(f, 3, A_500("busy"), A_INSPECT(D2), A_INSPECT(D2));
	want(f, "web:1", D1);
	want(f, "web:1", D2);
	run_until_settled(f, 10);
	e = TAILQ_FIRST(&f->rt->images);
	assert_int_equal(report(f, "web:1", NULL), RUNTIME_PRESENT);
	assert_string_equal(e->confirmed, D2);
	assert_int_equal(e->attempts, 0);
	assert_int_equal(f->fk.nreqs, 2);
	assert_int_equal(f->rt->running, 0);
	assert_null(e->x);
	want(f, "web2:1", D1);
	want(f, "web2:1", D2);
	e = TAILQ_NEXT(e, all);
	while (!(e->state == RT_CHECKING && strcmp(e->confirmed, D2) == 0) && f->fk.nreqs < 4)
		ev_run(f->loop, EVRUN_ONCE);
	assert_int_equal(e->state, RT_CHECKING);
	assert_non_null(e->x);
	assert_int_equal(f->rt->running, 1);
	assert_int_equal(report(f, "web2:1", NULL), RUNTIME_PRESENT);
	/* teardown frees it in flight */
}

static void test_parallel_bound(void **state)
{
	struct fixture *f = *state;
	char ref[16];
	int i;

	f->rt->parallel = 1;
	fake_start(&f->fk, 1);
	for (i = 0; i < 5; i++) {
		answers(f, 1, A_INSPECT(D1));
		snprintf(ref, sizeof(ref), "w%d:1", i);
		want(f, ref, D1);
	}
	assert_int_equal(f->rt->running, 1);
	run_until_settled(f, 10);
	assert_int_equal(f->fk.nreqs, 5);
	assert_int_equal(f->fk.max_open, 1);
	for (i = 0; i < 5; i++) {
		snprintf(ref, sizeof(ref), "w%d:1", i);
		assert_int_equal(report(f, ref, NULL), RUNTIME_PRESENT);
	}
}

/* Wanted again after RECHECK_S: checked again, present meanwhile; gone from Docker → pulled. */
static void test_recheck(void **state)
{
	struct fixture *f = *state;
	struct rt_image *e;

	fake_start(&f->fk, 1);
	answers(f, 3, A_INSPECT(D1), A_404, A_STREAM(OK_LINES));
	want(f, "web:1", D1);
	run_until_settled(f, 10);
	e = TAILQ_FIRST(&f->rt->images);
	e->checked_at -= RECHECK_S + 1;
	want(f, "web:1", D1);
	assert_int_equal(e->state, RT_CHECKING);
	assert_int_equal(report(f, "web:1", NULL), RUNTIME_PRESENT);
	run_until_settled(f, 10);
	assert_int_equal(report(f, "web:1", NULL), RUNTIME_PRESENT);
	assert_int_equal(f->fk.nreqs, 3);
	assert_non_null(strstr(f->fk.reqs[2], "POST /images/create?"));
}

static void test_digest_reference(void **state)
{
	struct fixture *f = *state;

	fake_start(&f->fk, 1);
	answers(f, 2, A_404, A_STREAM(OK_LINES));
	want(f, "library/web@" D1, D1);
	run_until_settled(f, 10);
	assert_int_equal(report(f, "library/web@" D1, NULL), RUNTIME_PRESENT);
	assert_string_equal(f->fk.reqs[0],
			    "GET /images/docker.io/library/web@" D1 "/json HTTP/1.1");
	assert_string_equal(f->fk.reqs[1],
			    "POST /images/create?fromImage=docker.io%2Flibrary%2Fweb%40sha256%3A"
			    "38657c9484e7df7c81cf7c5be097dc0c6f24754cd9ade1138048daf35688330a "
			    "HTTP/1.1");
}

/* Freed with transfers in flight: nothing leaks, no hook runs afterwards. */
static void test_free_in_flight(void **state)
{
	struct fixture *f = *state;

	fake_start(&f->fk, 1);
	want(f, "web:1", D1);
	want(f, "web2:1", D1);
	assert_int_equal(f->rt->running, 2);
	runtime_free(f->rt);
	f->rt = NULL;
	ev_run(f->loop, EVRUN_NOWAIT);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_off_and_untracked),
	    T(test_absent_is_pulled),
	    T(test_present_is_not_pulled),
	    T(test_other_digest_is_pulled),
	    T(test_failures),
	    T(test_no_socket_then_back),
	    T(test_refused),
	    T(test_moved_while_running),
	    T(test_moved_while_failing),
	    T(test_parallel_bound),
	    T(test_recheck),
	    T(test_digest_reference),
	    T(test_free_in_flight),
	};
#undef T

	log_init("test_runtime", LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
