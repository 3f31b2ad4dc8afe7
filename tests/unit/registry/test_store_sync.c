/* store_sync: with a syncq, a manifest or tag put returns before anything is fsynced, the file
 * appears under its name only once it is synced, done comes from the loop, two writes of one tag
 * leave the later, and a failed write leaves no litter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry.h"

#define ABC_DIGEST "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define EMPTY_DIGEST "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MT "application/vnd.oci.image.manifest.v1+json"

struct fixture {
	char dir[64];
	struct ev_loop *loop;
	struct syncq *q;
	struct store s;
	char err[256];
};

struct done {
	int calls, err;
};

static void on_done(void *arg, int err)
{
	struct done *d = arg;

	d->calls++;
	d->err = err;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	log_init("test", LOG_ERROR);
	snprintf(f->dir, sizeof(f->dir), "/tmp/ms-test-store-sync.XXXXXX");
	if (!mkdtemp(f->dir) || store_open(&f->s, f->dir, f->err, sizeof(f->err)) != 0)
		return -1;
	f->loop = ev_loop_new(EVFLAG_AUTO);
	f->q = f->loop ? syncq_new(f->loop) : NULL;
	f->s.sync = f->q ? store_sync_new(&f->s, f->q) : NULL;
	if (!f->s.sync)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	syncq_free(f->q);
	store_sync_free(f->s.sync);
	store_close(&f->s);
	ev_loop_destroy(f->loop);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void run_until(struct fixture *f, const struct done *d, int calls)
{
	for (int i = 0; i < 1000 && d->calls < calls; i++)
		ev_run(f->loop, EVRUN_ONCE);
	assert_int_equal(d->calls, calls);
}

static int tmp_count(const struct fixture *f)
{
	char cmd[160];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A '%s/tmp' | wc -l", f->dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

static void test_manifest_then_tag(void **state)
{
	struct fixture *f = *state;
	const char *m = "{\"schemaVersion\":2}";
	char digest[DIGEST_STR_SIZE], type[MEDIA_TYPE_MAX], got[DIGEST_STR_SIZE], *data;
	struct done d = {0};
	size_t len;
	time_t at;

	assert_int_equal(digest_buffer(m, strlen(m), digest), 0);
	assert_int_equal(store_manifest_put(&f->s, digest, m, strlen(m), MT, on_done, &d, f->err,
					    sizeof(f->err)),
			 0);
	/* not before the loop ran the fsync: nothing is under its name yet */
	assert_int_equal(d.calls, 0);
	assert_int_equal(store_manifest_get(&f->s, digest, &data, &len, type), -1);
	run_until(f, &d, 1);
	assert_int_equal(d.err, 0);
	assert_int_equal(store_manifest_get(&f->s, digest, &data, &len, type), 0);
	assert_memory_equal(data, m, len);
	free(data);

	/* stored already: done still comes, from the loop */
	assert_int_equal(store_manifest_put(&f->s, digest, m, strlen(m), MT, on_done, &d, f->err,
					    sizeof(f->err)),
			 0);
	assert_int_equal(d.calls, 1);
	run_until(f, &d, 2);

	assert_int_equal(store_tag_put(&f->s, "docker.io", "x", "t", digest, 5, on_done, &d), 0);
	assert_int_equal(store_tag_get(&f->s, "docker.io", "x", "t", got, &at), -1);
	run_until(f, &d, 3);
	assert_int_equal(store_tag_get(&f->s, "docker.io", "x", "t", got, &at), 0);
	assert_string_equal(got, digest);
	assert_int_equal(tmp_count(f), 0);
}

static void test_later_write_wins(void **state)
{
	struct fixture *f = *state;
	struct done d = {0};
	char got[DIGEST_STR_SIZE];
	time_t at;

	assert_int_equal(store_tag_put(&f->s, "docker.io", "x", "t", ABC_DIGEST, 5, NULL, NULL), 0);
	assert_int_equal(store_tag_put(&f->s, "docker.io", "x", "t", EMPTY_DIGEST, 6, on_done, &d),
			 0);
	run_until(f, &d, 1);
	assert_int_equal(store_tag_get(&f->s, "docker.io", "x", "t", got, &at), 0);
	assert_string_equal(got, EMPTY_DIGEST);
	assert_int_equal((long)at, 6);
	assert_int_equal(tmp_count(f), 0);
}

static void test_refused_put_calls_nobody(void **state)
{
	struct fixture *f = *state;
	struct done d = {0};

	assert_int_equal(
	    store_manifest_put(&f->s, ABC_DIGEST, "xy", 2, MT, on_done, &d, f->err, sizeof(f->err)),
	    -1);
	assert_int_equal(store_tag_put(&f->s, "docker.io", "../x", "t", ABC_DIGEST, 5, on_done, &d),
			 -1);
	syncq_drain(f->q);
	assert_int_equal(d.calls, 0);
	assert_int_equal(tmp_count(f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_manifest_then_tag, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_later_write_wins, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_put_calls_nobody, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
