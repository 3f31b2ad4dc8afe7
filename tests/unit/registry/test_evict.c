/* evict: the disk budget over a real store of BLOBS blobs of BLOB bytes (one block each),
 * budget BUDGET (ten of them). What must happen:
 *   past the budget the least recently used go first (a blob served is used), down to 90%;
 *   pinned blobs are never evicted, nor blobs being served; when pinned alone exceed the
 *   budget nothing pinned goes; an unpinned blob bigger than the whole budget is dropped (not
 *   indexed), a pinned one kept; the scan at start finds what is stored, oldest mtime first;
 *   manifests, tags and tag lists count too (a file is charged whole blocks), are evicted by
 *   the same rule (a manifest read is used), and a pinned manifest keeps the tags naming it;
 *   one tag list per repository, whatever was asked; what is not a regular file is not counted.
 * Responses are played by a fake httpd_conn: evict only hooks their release. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evict.c"

#define BLOB 4096 /* BLOCK: what one small file costs */
#define BLOBS 12
#define BUDGET (10 * BLOB)

/* The one thing evict asks of a response: to be told when it ends. */
struct httpd_conn {
	void (*release)(struct httpd_conn *, void *);
	void *arg;
};

void httpd_set_release(struct httpd_conn *conn, void (*fn)(struct httpd_conn *, void *), void *arg)
{
	conn->release = fn;
	conn->arg = arg;
}

static void conn_end(struct httpd_conn *conn)
{
	conn->release(conn, conn->arg);
	conn->release = NULL;
}

struct fixture {
	char dir[64];
	struct registry_conf conf;
	struct registry r;
	struct evict *ev;
	char digests[BLOBS][DIGEST_STR_SIZE];
	int pinned[BLOBS]; /* what the pins callback names */
	int pins_calls;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ms-test-evict.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	f->conf.root = f->dir;
	f->conf.store_max_bytes = BUDGET;
	f->r.conf = &f->conf;
	f->r.loop = ev_loop_new(EVFLAG_AUTO);
	if (!f->r.loop || store_open(&f->r.store, f->dir, err, sizeof(err)) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	evict_free(f->ev);
	store_close(&f->r.store);
	ev_loop_destroy(f->r.loop);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static const char *at_root(struct fixture *f, const char *rel)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	return path;
}

/* Blob I: SIZE bytes of one letter, in the store. */
static void put(struct fixture *f, int i, long long size)
{
	struct store_tmp t;
	char err[256], *buf = malloc((size_t)size);

	assert_non_null(buf);
	memset(buf, 'a' + i, (size_t)size);
	assert_int_equal(digest_buffer(buf, (size_t)size, f->digests[i]), 0);
	assert_int_equal(store_tmp_begin(&f->r.store, &t), 0);
	assert_int_equal(store_tmp_write(&t, buf, (size_t)size), 0);
	assert_int_equal(store_tmp_verify(&t, f->digests[i], size, err, sizeof(err)), 0);
	assert_int_equal(store_tmp_commit_blob(&f->r.store, &t, f->digests[i], err, sizeof(err)),
			 0);
	free(buf);
}

/* Stored, and told to evict: what the transfer does. */
static int stored(struct fixture *f, int i, long long size)
{
	put(f, i, size);
	return evict_stored(f->ev, f->digests[i], size);
}

static int present(struct fixture *f, int i)
{
	return store_blob_exists(&f->r.store, f->digests[i], NULL);
}

static void pins(void *arg, evict_keep_fn keep, void *keep_arg)
{
	struct fixture *f = arg;
	int i;

	f->pins_calls++;
	for (i = 0; i < BLOBS; i++)
		if (f->pinned[i])
			keep(keep_arg, f->digests[i]);
}

static void start(struct fixture *f)
{
	f->ev = evict_new(&f->r);
	assert_non_null(f->ev);
	evict_on_pins(f->ev, pins, f);
}

/* Blobs 0..N-1, oldest first: used exactly up to the budget when N is 10. */
static void fill(struct fixture *f, int n)
{
	int i;

	for (i = 0; i < n; i++)
		assert_int_equal(stored(f, i, BLOB), 0);
}

static void test_within_budget_nothing_goes(void **state)
{
	struct fixture *f = *state;
	int i;

	start(f);
	fill(f, 10);
	assert_int_equal(evict_used(f->ev), BUDGET);
	assert_int_equal(evict_budget(f->ev), BUDGET);
	for (i = 0; i < 10; i++)
		assert_true(present(f, i));
	assert_int_equal(f->pins_calls, 0); /* no run, no walk of the pins */
}

static void test_lru_down_to_90_percent(void **state)
{
	struct fixture *f = *state;
	struct httpd_conn conn = {0};
	int i;

	start(f);
	fill(f, 10);
	evict_serving(f->ev, &conn, f->digests[0]); /* the oldest is used again */
	conn_end(&conn);
	assert_int_equal(stored(f, 10, BLOB), 0); /* 11 > 10 blocks: down to 9 */
	assert_int_equal(evict_used(f->ev), BUDGET / 10 * 9);
	assert_true(present(f, 0));
	assert_false(present(f, 1));
	assert_false(present(f, 2));
	for (i = 3; i <= 10; i++)
		assert_true(present(f, i));
	assert_int_equal(f->ev->count, 9);
	assert_null(entry_find(f->ev, STORE_BLOB, f->digests[1]));
}

static void test_pinned_never_evicted(void **state)
{
	struct fixture *f = *state;

	start(f);
	f->pinned[0] = f->pinned[1] = 1;
	fill(f, 10);
	assert_int_equal(stored(f, 10, BLOB), 0);
	assert_true(present(f, 0));
	assert_true(present(f, 1));
	assert_false(present(f, 2));
	assert_false(present(f, 3));
	assert_true(present(f, 4));
	assert_int_equal(evict_used(f->ev), BUDGET / 10 * 9);
}

static void test_pinned_over_budget_kept(void **state)
{
	struct fixture *f = *state;
	int i;

	start(f);
	for (i = 0; i < BLOBS; i++)
		f->pinned[i] = 1;
	fill(f, BLOBS);
	for (i = 0; i < BLOBS; i++)
		assert_true(present(f, i));
	assert_int_equal(evict_used(f->ev), BLOBS * BLOB);
}

static void test_served_never_evicted(void **state)
{
	struct fixture *f = *state;
	struct httpd_conn conn[10] = {0};
	int i;

	start(f);
	fill(f, 10);
	/* 0 is served first and still streaming; 1..9 are served after and done: 0 is the least
	 * recently used, but in use. */
	for (i = 0; i < 10; i++)
		evict_serving(f->ev, &conn[i], f->digests[i]);
	for (i = 1; i < 10; i++)
		conn_end(&conn[i]);
	assert_int_equal(stored(f, 10, BLOB), 0);
	assert_true(present(f, 0));
	assert_false(present(f, 1));
	assert_false(present(f, 2));
	assert_true(present(f, 3));
	conn_end(&conn[0]);
	assert_int_equal(entry_find(f->ev, STORE_BLOB, f->digests[0])->in_use, 0);
}

static void test_bigger_than_budget(void **state)
{
	struct fixture *f = *state;

	start(f);
	fill(f, 5);
	/* Unpinned: dropped, and nothing else is evicted for it. */
	assert_int_equal(stored(f, 5, BUDGET + BLOB), -1);
	assert_null(entry_find(f->ev, STORE_BLOB, f->digests[5]));
	assert_int_equal(evict_used(f->ev), 5 * BLOB);
	/* Pinned: kept, whatever else has to go. */
	f->pinned[6] = 1;
	assert_int_equal(stored(f, 6, BUDGET + BLOB), 0);
	assert_true(present(f, 6));
	assert_int_equal(evict_used(f->ev), BUDGET + BLOB);
	assert_false(present(f, 0));
	assert_false(present(f, 4));
}

struct find {
	const char *digest;
	time_t when;
	int found;
};

static int touch_one(void *arg, const struct store_object *o)
{
	struct find *fd = arg;
	struct timespec ts[2] = {{fd->when, 0}, {fd->when, 0}};

	if (strcmp(o->digest, fd->digest) != 0)
		return 0;
	assert_int_equal(utimensat(AT_FDCWD, o->path, ts, 0), 0);
	fd->found = 1;
	return 1; /* found: the walk stops */
}

static void set_mtime(struct fixture *f, int i, time_t when)
{
	struct find fd = {f->digests[i], when, 0};

	assert_int_equal(store_each(&f->r.store, STORE_BLOB, touch_one, &fd), 1);
	assert_true(fd.found);
}

static void test_scan_at_start(void **state)
{
	struct fixture *f = *state;
	const time_t when[4] = {3000, 1000, 4000, 2000};
	const int order[4] = {1, 3, 0, 2};
	struct evict_entry *e;
	int i;

	for (i = 0; i < 4; i++) {
		put(f, i, BLOB * (i + 1));
		set_mtime(f, i, when[i]);
	}
	start(f);
	assert_int_equal(f->ev->count, 4);
	assert_int_equal(evict_used(f->ev), BLOB * (1 + 2 + 3 + 4));
	i = 0;
	TAILQ_FOREACH (e, &f->ev->lru, lru) {
		assert_string_equal(e->name, f->digests[order[i]]);
		assert_true(e->last_access == (ev_tstamp)when[order[i]]);
		i++;
	}
	/* 12 blocks > 10 (1.5 blocks count as 2): the oldest by mtime go first, down to 9: 1 (2
	 * blocks), then 3 (4). */
	assert_int_equal(stored(f, 4, BLOB + BLOB / 2), 0);
	assert_false(present(f, 1));
	assert_false(present(f, 3));
	assert_true(present(f, 0));
	assert_true(present(f, 2));
	assert_true(present(f, 4));
}

#define MANIFEST_TYPE "application/vnd.oci.image.manifest.v1+json"

/* Manifest I: a body of about one block ("<media type>\n" and it fit in one), in the store. */
static void manifest(struct fixture *f, int i, char digest[DIGEST_STR_SIZE])
{
	char body[BLOB - 64], err[256];

	memset(body, ' ', sizeof(body));
	snprintf(body, sizeof(body), "{\"n\":%d}", i);
	body[strlen(body)] = ' ';
	assert_int_equal(digest_buffer(body, sizeof(body), digest), 0);
	assert_int_equal(store_manifest_put(&f->r.store, digest, body, sizeof(body), MANIFEST_TYPE,
					    NULL, NULL, err, sizeof(err)),
			 0);
}

static int manifest_present(struct fixture *f, const char *digest)
{
	char type[MEDIA_TYPE_MAX], *data;
	size_t len;

	if (store_manifest_get(&f->r.store, digest, &data, &len, type) != 0)
		return 0;
	free(data);
	return 1;
}

static int tag_present(struct fixture *f, const char *tag)
{
	char digest[DIGEST_STR_SIZE];
	time_t at;

	return store_tag_get(&f->r.store, "docker.io", "library/x", tag, digest, &at) == 0;
}

static void test_manifests_count_and_go(void **state)
{
	struct fixture *f = *state;
	char m[12][DIGEST_STR_SIZE];
	int i;

	start(f);
	for (i = 0; i < 10; i++)
		manifest(f, i, m[i]);
	assert_int_equal(evict_used(f->ev), BUDGET);
	assert_true(manifest_present(f, m[0])); /* read: the most recently used now */
	manifest(f, 10, m[10]);			/* 11 > 10 blocks: down to 9 */
	assert_int_equal(evict_used(f->ev), BUDGET / 10 * 9);
	assert_true(manifest_present(f, m[0]));
	assert_false(manifest_present(f, m[1])); /* gone from the disk and from the memo */
	assert_false(manifest_present(f, m[2]));
	assert_true(manifest_present(f, m[3]));
	/* Stored again (a pull of what is there): used, and counted once. */
	manifest(f, 3, m[3]);
	assert_int_equal(evict_used(f->ev), BUDGET / 10 * 9);
}

static void pin_manifest(void *arg, evict_keep_fn keep, void *keep_arg)
{
	keep(keep_arg, arg);
}

static void test_pinned_manifest_keeps_its_tags(void **state)
{
	struct fixture *f = *state;
	char pinned[DIGEST_STR_SIZE], other[DIGEST_STR_SIZE], m[DIGEST_STR_SIZE];
	int i;

	start(f);
	evict_on_pins(f->ev, pin_manifest, pinned);
	manifest(f, 0, pinned);
	manifest(f, 1, other);
	assert_int_equal(
	    store_tag_put(&f->r.store, "docker.io", "library/x", "pinned", pinned, 1, NULL, NULL),
	    0);
	assert_int_equal(
	    store_tag_put(&f->r.store, "docker.io", "library/x", "other", other, 1, NULL, NULL), 0);
	assert_int_equal(evict_used(f->ev), 4 * BLOB);
	for (i = 2; i < 9; i++) /* the oldest four are pushed past the budget */
		manifest(f, i, m);
	assert_true(manifest_present(f, pinned));
	assert_true(tag_present(f, "pinned"));
	assert_false(manifest_present(f, other));
	assert_false(tag_present(f, "other"));
	/* The pinned tag is still in its file (and its directories with it). */
	assert_int_equal(access(at_root(f, "tags/docker.io/library/x/_tags/pinned"), F_OK), 0);
}

static void test_one_taglist_per_repository(void **state)
{
	struct fixture *f = *state;
	char link[STORE_LINK_MAX], *body;
	size_t len;
	int i;

	start(f);
	for (i = 0; i < 100; i++) /* a hundred answers: one file */
		assert_int_equal(
		    store_taglist_put(&f->r.store, "docker.io", "library/x", "", "{}", 2), 0);
	assert_int_equal(f->ev->count, 1);
	assert_int_equal(evict_used(f->ev), BLOB);
	assert_int_equal(store_taglist_put(&f->r.store, "docker.io", "library/x",
					   "</v2/library/x/tags/list?n=1&last=a>; rel=\"next\"",
					   "{\"tags\":[]}", 11),
			 0);
	assert_int_equal(
	    store_taglist_get(&f->r.store, "docker.io", "library/x", link, &body, &len), 0);
	assert_string_equal(link, "</v2/library/x/tags/list?n=1&last=a>; rel=\"next\"");
	assert_int_equal(len, 11);
	free(body);
	for (i = 0; i < 10; i++) /* ten blobs push it out */
		assert_int_equal(stored(f, i, BLOB), 0);
	assert_int_equal(
	    store_taglist_get(&f->r.store, "docker.io", "library/x", link, &body, &len), -1);
	assert_int_equal(access(at_root(f, "taglists/docker.io"), F_OK), -1);
}

static void test_foreign_files_not_counted(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX];

	put(f, 0, BLOB);
	snprintf(path, sizeof(path), "%s", at_root(f, "blobs/sha256/00"));
	assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
	snprintf(path, sizeof(path), "%s/blobs/sha256/00/%064d", f->dir, 0);
	assert_int_equal(symlink("/etc/hostname", path), 0);
	start(f);
	assert_int_equal(f->ev->count, 1);
	assert_int_equal(evict_used(f->ev), BLOB);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_within_budget_nothing_goes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lru_down_to_90_percent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pinned_never_evicted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pinned_over_budget_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_served_never_evicted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bigger_than_budget, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scan_at_start, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_manifests_count_and_go, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pinned_manifest_keeps_its_tags, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_one_taglist_per_repository, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_foreign_files_not_counted, setup, teardown),
	};

	log_init("test_evict", LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
