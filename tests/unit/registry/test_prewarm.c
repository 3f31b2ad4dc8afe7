/* prewarm: which images are tracked, retried, given up and forgotten. The upstream side is
 * stubbed (manifest_resolve answers as the test says, image_walk calls every image complete), and
 * each image's timer is fired by hand. What must hold:
 *   - an image asked for through the API that is never had is tried request_attempts times,
 *     then given up (failed, given_up, last_error says so), held for FORGET_S (asking again
 *     starts nothing), then forgotten; asked for after that, it starts afresh;
 *   - asking again for a failing image does not hasten its retry;
 *   - at most max_requested such images are tracked; past it, EAGAIN, unless a ready, unpinned
 *     one can make room (the least recently asked for first); a pinned or failing one cannot;
 *   - listed images count for nothing, are never dropped and never given up; nor is an image
 *     that was complete once;
 *   - an image that left the list and was never asked for is forgotten, at once when idle, or
 *     when its job ends;
 *   - a moved tag restarts the image named by it, found through the index. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prewarm.c"

#define D1 "sha256:38657c9484e7df7c81cf7c5be097dc0c6f24754cd9ade1138048daf35688330a"
#define D2 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define HELD_MAX 16

/* --- the upstream side, stubbed --- */

enum answer { ANSWER_FAIL, ANSWER_OK, ANSWER_HOLD };
static enum answer answer;
static int nresolves;
static struct {
	manifest_done_fn done;
	void *arg;
} held[HELD_MAX];
static int nheld;

void manifest_resolve(struct registry *r, const struct manifest_ask *ask, manifest_done_fn done,
		      void *arg)
{
	(void)r, (void)ask;
	nresolves++;
	if (answer == ANSWER_FAIL) {
		done(arg, NULL, "upstream answered 404");
	} else if (answer == ANSWER_OK) {
		done(arg, D1, NULL);
	} else {
		assert_true(nheld < HELD_MAX);
		held[nheld].done = done;
		held[nheld++].arg = arg;
	}
}

void transfer_fetch(struct registry *r, const struct blob_ask *ask, transfer_done_fn done,
		    void *arg)
{
	(void)r, (void)ask;
	done(arg, "not in this test");
}

struct upstream *upstream_find(struct registry *r, const char *host)
{
	(void)host;
	return (struct upstream *)r; /* any non-NULL pointer: every registry has one */
}

int image_walk(struct store *s, const char *digest, const char *const *platforms,
	       struct image_walk *w)
{
	(void)s, (void)digest, (void)platforms;
	memset(w, 0, sizeof(*w));
	w->complete = 1;
	return 0;
}

void image_walk_free(struct image_walk *w)
{
	(void)w;
}

const char *const *image_platforms(char *const *configured, const char *own, const char *one[2])
{
	(void)own, (void)one;
	return (const char *const *)configured;
}

int image_platform_valid(const char *platform)
{
	return strchr(platform, '/') != NULL;
}

/* --- the fixture --- */

struct fixture {
	struct registry r;
	struct registry_conf conf;
	struct prewarm *pw;
	char list[64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	log_init("test_prewarm", LOG_ERROR);
	f->conf.prewarm_parallel = 4;
	f->conf.prewarm_interval_s = 300;
	f->conf.prewarm_max_requested = 4;
	f->conf.prewarm_request_attempts = 3;
	f->r.conf = &f->conf;
	f->r.loop = ev_loop_new(0);
	f->pw = prewarm_new(&f->r, 0);
	snprintf(f->list, sizeof(f->list), "/tmp/ms-test-prewarm.%d.list", (int)getpid());
	answer = ANSWER_FAIL;
	nresolves = nheld = 0;
	*state = f;
	return f->r.loop && f->pw ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	prewarm_free(f->pw);
	ev_loop_destroy(f->r.loop);
	unlink(f->list);
	free(f);
	return 0;
}

static struct image_ref ref_of(const char *s)
{
	struct image_ref ref;
	char why[128];

	assert_int_equal(ref_parse(s, &ref, why, sizeof(why)), 0);
	return ref;
}

static struct prewarm_image *request(struct fixture *f, const char *s, int pin)
{
	struct image_ref ref = ref_of(s);

	return prewarm_request(f->pw, &ref, pin);
}

static struct prewarm_image *find(struct fixture *f, const char *s)
{
	struct image_ref ref = ref_of(s);

	return prewarm_find(f->pw, &ref);
}

/* IMG's timer runs out now; it must have been armed. */
static void fire(struct fixture *f, struct prewarm_image *img)
{
	assert_true(ev_is_active(&img->timer));
	ev_timer_stop(f->r.loop, &img->timer);
	timer_cb(f->r.loop, &img->timer, EV_TIMER);
}

static void write_list(struct fixture *f, const char *text)
{
	FILE *fp = fopen(f->list, "w");
	char err[256];

	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(prewarm_load(f->pw, f->list, err, sizeof(err)), 0);
}

/* --- the tests --- */

static void test_given_up_then_forgotten(void **state)
{
	struct fixture *f = *state;
	struct prewarm_image *img = request(f, "library/nope:1", 0);

	assert_non_null(img);
	assert_int_equal(nresolves, 1);
	assert_int_equal(img->state, PREWARM_FAILED);
	assert_true(ev_timer_remaining(f->r.loop, &img->timer) <= RETRY_MIN_S);
	fire(f, img);
	assert_int_equal(nresolves, 2);
	assert_false(img->gave_up);
	fire(f, img);
	assert_int_equal(nresolves, 3);
	assert_true(img->gave_up);
	assert_int_equal(img->state, PREWARM_FAILED);
	assert_non_null(strstr(img->error, "gave up after 3 attempts: upstream answered 404"));
	assert_true(ev_timer_remaining(f->r.loop, &img->timer) > FORGET_S - 1);

	/* Held: asking again, or the interval, starts nothing. */
	assert_ptr_equal(request(f, "library/nope:1", 0), img);
	prewarm_all(f->pw);
	assert_int_equal(nresolves, 3);
	assert_int_equal(f->pw->table.nrequested, 1);

	fire(f, img); /* forgotten */
	assert_null(find(f, "library/nope:1"));
	assert_int_equal(f->pw->table.nrequested, 0);
	assert_int_equal(f->pw->table.ntracked, 0);

	img = request(f, "library/nope:1", 0); /* afresh */
	assert_non_null(img);
	assert_int_equal(nresolves, 4);
	assert_int_equal(img->attempts, 1);
	assert_false(img->gave_up);
}

static void test_bound(void **state)
{
	struct fixture *f = *state;
	char name[64];
	int i;

	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "library/nope-%d:1", i);
		assert_non_null(request(f, name, 0));
	}
	errno = 0;
	assert_null(request(f, "library/nope-4:1", 0));
	assert_int_equal(errno, EAGAIN);
	assert_null(find(f, "library/nope-4:1"));
	/* tracked already: no new place, and its retry is not hastened */
	assert_non_null(request(f, "library/nope-0:1", 0));
	assert_int_equal(f->pw->table.nrequested, 4);
	assert_int_equal(nresolves, 4);
}

static void test_listed_count_for_nothing(void **state)
{
	struct fixture *f = *state;
	struct prewarm_image *img;
	int i;

	write_list(f, "library/l-0:1\nlibrary/l-1:1\nlibrary/l-2:1\nlibrary/l-3:1\n"
		      "library/l-4:1\nlibrary/l-5:1\n");
	assert_int_equal(f->pw->table.ntracked, 6);
	assert_int_equal(f->pw->table.nrequested, 0);
	assert_non_null(request(f, "library/l-0:1", 1)); /* listed and asked for: still free */
	assert_int_equal(f->pw->table.nrequested, 0);
	for (i = 0; i < 4; i++) {
		char name[64];

		snprintf(name, sizeof(name), "library/nope-%d:1", i);
		assert_non_null(request(f, name, 0));
	}
	assert_null(request(f, "library/nope-4:1", 0));
	assert_int_equal(f->pw->table.ntracked, 10); /* no listed image made room */

	img = find(f, "library/l-1:1"); /* failing for ever, never given up */
	for (i = 0; i < 20; i++)
		fire(f, img);
	assert_false(img->gave_up);
	assert_int_equal(img->attempts, 21);
	assert_true(ev_timer_remaining(f->r.loop, &img->timer) <= RETRY_MAX_S);
}

static void test_ready_makes_room(void **state)
{
	struct fixture *f = *state;

	answer = ANSWER_OK;
	assert_non_null(request(f, "library/a:1", 0));
	assert_non_null(request(f, "library/b:1", 0));
	assert_non_null(request(f, "library/pinned:1", 1));
	assert_int_equal(find(f, "library/a:1")->state, PREWARM_READY);
	assert_non_null(request(f, "library/a:1", 0)); /* asked again: b is now the oldest */
	answer = ANSWER_FAIL;
	assert_non_null(request(f, "library/nope-0:1", 0)); /* the 4th place */
	assert_non_null(request(f, "library/nope-1:1", 0)); /* b makes room */
	assert_null(find(f, "library/b:1"));
	assert_non_null(find(f, "library/a:1"));
	assert_non_null(request(f, "library/nope-2:1", 0)); /* then a */
	assert_null(find(f, "library/a:1"));
	errno = 0;
	assert_null(request(f, "library/nope-3:1", 0)); /* pinned and failing ones stay */
	assert_int_equal(errno, EAGAIN);
	assert_non_null(find(f, "library/pinned:1"));
	assert_int_equal(f->pw->table.nrequested, 4);
}

static void test_had_once_never_given_up(void **state)
{
	struct fixture *f = *state;
	struct prewarm_image *img;
	int i;

	answer = ANSWER_OK;
	img = request(f, "library/real:1", 0);
	assert_int_equal(img->state, PREWARM_READY);
	answer = ANSWER_FAIL; /* the upstream goes down */
	prewarm_all(f->pw);
	for (i = 0; i < 10; i++)
		fire(f, img);
	assert_false(img->gave_up);
	assert_int_equal(img->attempts, 11);
	assert_true(img->droppable); /* had: dropping it would only stop its retries */
	answer = ANSWER_OK;
	fire(f, img);
	assert_int_equal(img->state, PREWARM_READY);
	assert_int_equal(img->attempts, 0);
}

/* Answers the held resolve of IMG. */
static void answer_held(struct prewarm_image *img, const char *digest, const char *err)
{
	for (int i = 0; i < nheld; i++) {
		if (held[i].arg == img) {
			held[i].done(held[i].arg, digest, err);
			return;
		}
	}
	fail_msg("no resolve held for %s", img->name);
}

static void test_left_the_list(void **state)
{
	struct fixture *f = *state;

	answer = ANSWER_OK;
	write_list(f, "library/idle:1\n");
	assert_int_equal(find(f, "library/idle:1")->state, PREWARM_READY);
	answer = ANSWER_HOLD;
	write_list(f, "library/busy:1\nlibrary/stays:1\n");
	assert_null(find(f, "library/idle:1")); /* idle: forgotten at once */
	assert_int_equal(nheld, 2);
	write_list(f, "library/stays:1\n");
	assert_non_null(find(f, "library/busy:1")); /* its job runs: kept until it ends */
	answer_held(find(f, "library/busy:1"), NULL, "upstream answered 404");
	assert_null(find(f, "library/busy:1"));
	answer_held(find(f, "library/stays:1"), D1, NULL);
	assert_int_equal(find(f, "library/stays:1")->state, PREWARM_READY);
	assert_int_equal(f->pw->table.ntracked, 1);
}

static void test_tag_moved(void **state)
{
	struct fixture *f = *state;
	struct image_ref moved = ref_of("library/web:1");

	answer = ANSWER_OK;
	assert_non_null(request(f, "library/web:1", 0));
	assert_int_equal(nresolves, 1);
	prewarm_tag_moved(f->pw, &moved, D1); /* the same digest: nothing */
	assert_int_equal(nresolves, 1);
	prewarm_tag_moved(f->pw, &moved, D2);
	assert_int_equal(nresolves, 2);
	moved = ref_of("library/other:1");
	prewarm_tag_moved(f->pw, &moved, D2); /* untracked */
	assert_int_equal(nresolves, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_given_up_then_forgotten, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bound, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_listed_count_for_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ready_makes_room, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_had_once_never_given_up, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_left_the_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tag_moved, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
