/* transfer: one upstream transfer per blob, its readers told what they may read. The upstream is
 * stubbed here (upreq_* below, driven by the test); the store and the syncq are real. What must
 * hold: readers joining before the 200 and mid-body read the same one transfer; no reader sees
 * the last byte of what it reads (the whole blob, or a range) before the digest is verified; a
 * mismatch stores nothing and tells every reader it failed, ranged ones too; a range is complete
 * only once the whole blob is verified, and its reader may leave then, before the blob is
 * stored; an internal fetch hears only the end, and only once the blob's name is durable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "transfer.c"

#define BLOB_SIZE (300 * 1024 + 7)
#define PIECE 8192
#define STUBS 4

/* --- the upstream, stubbed: the test answers for it --- */

struct upreq {
	const struct upreq_hooks *hooks;
	void *arg;
	long status;
	char length[32]; /* Content-Length, "" when absent */
	const char *retry_after;
	int cancelled;
};

static struct upreq stubs[STUBS];
static int nstubs;
static int nstored; /* evict_stored calls */

struct upreq *upreq_start(struct registry *r, struct upstream *up, const char *method,
			  const char *repo, const char *path, const char *accept, size_t max_body,
			  const struct upreq_hooks *hooks, void *arg)
{
	struct upreq *u = &stubs[nstubs++];

	(void)r, (void)up, (void)repo, (void)accept, (void)max_body;
	assert_true(nstubs <= STUBS);
	assert_string_equal(method, "GET");
	assert_true(strncmp(path, "blobs/sha256:", 13) == 0);
	memset(u, 0, sizeof(*u));
	u->hooks = hooks;
	u->arg = arg;
	return u;
}

void upreq_cancel(struct upreq *u)
{
	u->cancelled = 1;
}

long upreq_status(const struct upreq *u)
{
	return u->status;
}

const char *upreq_header(const struct upreq *u, const char *name)
{
	if (strcasecmp(name, "Content-Length") == 0)
		return u->length[0] ? u->length : NULL;
	if (strcasecmp(name, "Retry-After") == 0)
		return u->retry_after;
	return NULL;
}

const char *upstream_host(const struct upstream *up)
{
	(void)up;
	return "stub.test";
}

int evict_stored(struct evict *ev, const char *digest, long long size)
{
	(void)ev, (void)digest;
	assert_int_equal(size, BLOB_SIZE);
	nstored++;
	return 0;
}

/* The upstream answers STATUS, with a Content-Length unless length < 0. */
static void respond(struct upreq *u, long status, long long length)
{
	u->status = status;
	if (length >= 0)
		snprintf(u->length, sizeof(u->length), "%lld", length);
	assert_int_equal(u->hooks->on_response(u, status, u->arg), 0);
}

static void feed(struct upreq *u, const char *buf, size_t len)
{
	for (size_t off = 0; off < len; off += PIECE)
		assert_int_equal(
		    u->hooks->on_data(u, buf + off, len - off < PIECE ? len - off : PIECE, u->arg),
		    0);
}

/* --- the fixture: a store, a loop, a syncq, one blob and its digest --- */

struct fixture {
	char dir[64];
	struct registry r;
	char *blob;
	char digest[DIGEST_STR_SIZE];
	struct blob_ask ask;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct digest_ctx *dg = digest_new();
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/ms-test-transfer.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(store_open(&f->r.store, f->dir, err, sizeof(err)), 0);
	f->r.loop = ev_loop_new(EVFLAG_AUTO);
	f->r.syncq = syncq_new(f->r.loop);
	assert_non_null(f->r.syncq);
	f->blob = malloc(BLOB_SIZE);
	assert_non_null(f->blob);
	for (size_t i = 0; i < BLOB_SIZE; i++)
		f->blob[i] = (char)(i * 131 + i / 977);
	assert_int_equal(digest_update(dg, f->blob, BLOB_SIZE), 0);
	assert_int_equal(digest_final(dg, f->digest), 0);
	digest_free(dg);
	f->ask = (struct blob_ask){.repo = "library/x", .digest = f->digest};
	nstubs = nstored = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	assert_true(LIST_EMPTY(&f->r.transfers));
	syncq_free(f->r.syncq);
	ev_loop_destroy(f->r.loop);
	store_close(&f->r.store);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f->blob);
	free(f);
	return 0;
}

/* Files left in ROOT/tmp: none once a transfer ended, whichever way. */
static int tmp_files(const struct fixture *f)
{
	char path[128];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/tmp", f->dir);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void run_until_idle(struct fixture *f)
{
	while (!LIST_EMPTY(&f->r.transfers))
		ev_run(f->r.loop, EVRUN_ONCE);
}

/* --- readers that record what they were told --- */

struct reader {
	struct transfer_reader rd;
	const char *blob; /* what the bytes must be */
	int fd;		  /* the temp file, from on_start */
	int starts, ends;
	long long size, avail;
	long long range_end; /* > 0: a range ending there, left once it is released */
	long long want;	     /* the end it reads: range_end or the blob's, whichever is first */
	int silent;	     /* says nothing of what it reads */
	int saw_last_unverified;
	struct transfer_end end; /* its err and retry_after are gone after on_end: see err */
	char err[256];
};

/* What is released is what the upstream sent, and the last byte it reads waits for the digest.
 * A range complete leaves, as httpd's release does. */
static void r_avail(void *arg, long long avail)
{
	struct reader *rd = arg;
	char *got = malloc((size_t)avail + 1);

	assert_non_null(got);
	assert_true(avail >= rd->avail);
	rd->avail = avail;
	if (avail >= rd->want && rd->rd.t->state < TRANSFER_SYNCING)
		rd->saw_last_unverified = 1;
	assert_int_equal(pread(rd->fd, got, (size_t)avail, 0), avail);
	assert_memory_equal(got, rd->blob, (size_t)avail);
	free(got);
	if (rd->range_end > 0 && avail >= rd->want)
		transfer_leave(&rd->rd);
}

static void r_start(void *arg, const char *path, long long size)
{
	struct reader *rd = arg;
	long long avail;

	rd->starts++;
	rd->fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(rd->fd >= 0);
	rd->size = size;
	if (rd->silent)
		return;
	avail = transfer_read(&rd->rd, rd->range_end > 0 ? rd->range_end : size);
	rd->want = rd->rd.end; /* at most the blob's end */
	r_avail(rd, avail);
}

static void r_end(void *arg, const struct transfer_end *end)
{
	struct reader *rd = arg;

	assert_null(rd->rd.t);
	rd->ends++;
	rd->end = *end;
	snprintf(rd->err, sizeof(rd->err), "%s", end->err ? end->err : "");
}

static const struct transfer_reader_ops reader_ops = {r_start, r_avail, r_end};

static void reader_init(struct reader *rd, const char *blob)
{
	memset(rd, 0, sizeof(*rd));
	rd->rd.ops = &reader_ops;
	rd->rd.arg = rd;
	rd->blob = blob;
	rd->fd = -1;
}

static void reader_close(struct reader *rd)
{
	if (rd->fd >= 0)
		close(rd->fd);
}

/* An internal caller: done once. */
struct done {
	int calls;
	char err[256];
};

static void fetched(void *arg, const char *err)
{
	struct done *d = arg;

	d->calls++;
	snprintf(d->err, sizeof(d->err), "%s", err ? err : "");
}

/* --- the tests --- */

static void test_readers_early_and_late(void **state)
{
	struct fixture *f = *state;
	struct reader early, mid, syncing;
	const long long half = BLOB_SIZE / 2;

	reader_init(&early, f->blob);
	reader_init(&mid, f->blob);
	reader_init(&syncing, f->blob);
	assert_int_equal(transfer_join(&f->r, &f->ask, &early.rd), 0);
	assert_int_equal(nstubs, 1);
	assert_int_equal(early.starts, 0); /* no 200 yet */
	respond(&stubs[0], 200, BLOB_SIZE);
	assert_int_equal(early.starts, 1);
	assert_int_equal(early.avail, 0);
	feed(&stubs[0], f->blob, (size_t)half);
	assert_int_equal(early.avail, half);

	assert_int_equal(transfer_join(&f->r, &f->ask, &mid.rd), 0);
	assert_int_equal(nstubs, 1); /* the same one transfer */
	assert_int_equal(mid.starts, 1);
	assert_int_equal(mid.avail, half);
	feed(&stubs[0], f->blob + half, (size_t)(BLOB_SIZE - half));
	assert_int_equal(early.avail, BLOB_SIZE - 1); /* the last byte waits for the digest */
	assert_int_equal(mid.avail, BLOB_SIZE - 1);

	stubs[0].hooks->on_done(&stubs[0], 1, NULL, stubs[0].arg);
	assert_int_equal(early.avail, BLOB_SIZE); /* verified: released at once */
	assert_int_equal(mid.avail, BLOB_SIZE);
	assert_int_equal(early.ends, 0); /* but stored only once durable */
	assert_int_equal(transfer_join(&f->r, &f->ask, &syncing.rd), 0);
	assert_int_equal(syncing.starts, 1);
	assert_int_equal(syncing.avail, BLOB_SIZE);

	run_until_idle(f);
	for (int i = 0; i < 3; i++) {
		struct reader *rd = (struct reader *[]){&early, &mid, &syncing}[i];

		assert_int_equal(rd->ends, 1);
		assert_int_equal(rd->end.ok, 1);
		assert_int_equal(rd->saw_last_unverified, 0);
		reader_close(rd);
	}
	assert_int_equal(nstored, 1);
	assert_true(store_blob_exists(&f->r.store, f->digest, NULL));
	assert_int_equal(tmp_files(f), 0);
}

static void test_mismatch_cuts_every_reader(void **state)
{
	struct fixture *f = *state;
	struct reader streaming;
	struct done fetch = {0};
	char *wrong = malloc(BLOB_SIZE);

	assert_non_null(wrong);
	memcpy(wrong, f->blob, BLOB_SIZE);
	wrong[BLOB_SIZE - 1] ^= 1; /* only the last byte differs */
	reader_init(&streaming, wrong);
	assert_int_equal(transfer_join(&f->r, &f->ask, &streaming.rd), 0);
	transfer_fetch(&f->r, &f->ask, fetched, &fetch);
	assert_int_equal(nstubs, 1);
	respond(&stubs[0], 200, BLOB_SIZE);
	feed(&stubs[0], wrong, BLOB_SIZE);
	stubs[0].hooks->on_done(&stubs[0], 1, NULL, stubs[0].arg);

	assert_int_equal(streaming.ends, 1); /* at once: nothing to sync */
	assert_int_equal(streaming.end.ok, 0);
	assert_int_equal(streaming.end.status, 502);
	assert_non_null(strstr(streaming.err, "digest mismatch"));
	assert_int_equal(streaming.avail, BLOB_SIZE - 1); /* never the last byte */
	assert_int_equal(fetch.calls, 1);
	assert_non_null(strstr(fetch.err, "digest mismatch"));
	assert_false(store_blob_exists(&f->r.store, f->digest, NULL));
	assert_int_equal(nstored, 0);
	assert_int_equal(tmp_files(f), 0);
	reader_close(&streaming);
	free(wrong);
}

/* A range ends before the blob does: its last byte waits for the digest of the whole blob all
 * the same, then the reader leaves and the transfer goes on for the others. A range asked for
 * past the blob's end reads to the end, and its last byte is the blob's. */
static void test_ranged_reader(void **state)
{
	struct fixture *f = *state;
	struct reader ranged, late, whole, past;

	reader_init(&ranged, f->blob);
	reader_init(&late, f->blob);
	reader_init(&whole, f->blob);
	reader_init(&past, f->blob);
	ranged.range_end = 100;
	late.range_end = 3 * PIECE;
	past.range_end = BLOB_SIZE + 10;
	assert_int_equal(transfer_join(&f->r, &f->ask, &ranged.rd), 0);
	assert_int_equal(transfer_join(&f->r, &f->ask, &whole.rd), 0);
	assert_int_equal(transfer_join(&f->r, &f->ask, &past.rd), 0);
	respond(&stubs[0], 200, BLOB_SIZE);
	assert_int_equal(ranged.avail, 0);
	feed(&stubs[0], f->blob, 4 * PIECE);
	assert_int_equal(ranged.avail, 99); /* all of the range on disk but its last byte */
	assert_non_null(ranged.rd.t);
	assert_int_equal(whole.avail, 4 * PIECE);
	assert_int_equal(past.want, BLOB_SIZE);

	/* Joining a range that is all on disk: all of it but its last byte, at once. */
	assert_int_equal(transfer_join(&f->r, &f->ask, &late.rd), 0);
	assert_int_equal(late.starts, 1);
	assert_int_equal(late.avail, 3 * PIECE - 1);
	assert_non_null(late.rd.t);

	feed(&stubs[0], f->blob + 4 * PIECE, BLOB_SIZE - 4 * PIECE);
	assert_int_equal(ranged.avail, 99); /* the whole blob is in, unverified */
	assert_int_equal(late.avail, 3 * PIECE - 1);
	assert_int_equal(past.avail, BLOB_SIZE - 1);
	stubs[0].hooks->on_done(&stubs[0], 1, NULL, stubs[0].arg);
	assert_null(ranged.rd.t); /* verified: complete, and left inside on_avail */
	assert_null(late.rd.t);
	assert_int_equal(ranged.avail, BLOB_SIZE);
	run_until_idle(f);
	assert_int_equal(ranged.ends, 0); /* gone: told nothing more */
	assert_int_equal(late.ends, 0);
	assert_int_equal(whole.ends, 1);
	assert_int_equal(whole.end.ok, 1);
	assert_int_equal(whole.avail, BLOB_SIZE);
	assert_null(past.rd.t); /* as complete as the whole blob, and as late */
	assert_int_equal(past.avail, BLOB_SIZE);
	for (int i = 0; i < 4; i++) {
		struct reader *rd = (struct reader *[]){&ranged, &late, &whole, &past}[i];

		assert_int_equal(rd->saw_last_unverified, 0);
		reader_close(rd);
	}
}

/* The upstream lies: ranged readers, early and late, never get the last byte of their range,
 * and hear that the transfer failed, whether the lie lies inside their range or past it. */
static void test_mismatch_cuts_ranged_readers(void **state)
{
	struct fixture *f = *state;
	struct reader before, inside, late;
	char *wrong = malloc(BLOB_SIZE);

	assert_non_null(wrong);
	memcpy(wrong, f->blob, BLOB_SIZE);
	wrong[BLOB_SIZE / 2] ^= 1;
	reader_init(&before, wrong);
	reader_init(&inside, wrong);
	reader_init(&late, wrong);
	before.range_end = 100;		       /* ends before the wrong byte */
	inside.range_end = BLOB_SIZE / 2 + 10; /* holds it */
	late.range_end = PIECE;		       /* joins once it is all on disk */
	assert_int_equal(transfer_join(&f->r, &f->ask, &before.rd), 0);
	assert_int_equal(transfer_join(&f->r, &f->ask, &inside.rd), 0);
	respond(&stubs[0], 200, BLOB_SIZE);
	feed(&stubs[0], wrong, BLOB_SIZE - PIECE);
	assert_int_equal(transfer_join(&f->r, &f->ask, &late.rd), 0);
	feed(&stubs[0], wrong + BLOB_SIZE - PIECE, PIECE);
	stubs[0].hooks->on_done(&stubs[0], 1, NULL, stubs[0].arg);

	for (int i = 0; i < 3; i++) {
		struct reader *rd = (struct reader *[]){&before, &inside, &late}[i];

		assert_int_equal(rd->ends, 1);
		assert_int_equal(rd->end.ok, 0);
		assert_int_equal(rd->end.status, 502);
		assert_int_equal(rd->avail, rd->range_end - 1); /* never its last byte */
		assert_int_equal(rd->saw_last_unverified, 0);
		reader_close(rd);
	}
	assert_false(store_blob_exists(&f->r.store, f->digest, NULL));
	assert_int_equal(tmp_files(f), 0);
	free(wrong);
}

/* A reader reads nothing until it says what it reads (as blob.c's does not after a 416), and
 * transfer_read means nothing before on_start or after the end. */
static void test_reads_only_what_it_says(void **state)
{
	struct fixture *f = *state;
	struct reader silent, whole;

	reader_init(&silent, f->blob);
	reader_init(&whole, f->blob);
	silent.silent = 1;
	assert_int_equal(transfer_read(&silent.rd, 10), 0); /* not joined */
	assert_int_equal(transfer_join(&f->r, &f->ask, &silent.rd), 0);
	assert_int_equal(transfer_join(&f->r, &f->ask, &whole.rd), 0);
	assert_int_equal(transfer_read(&silent.rd, 10), 0); /* no 200 yet */
	respond(&stubs[0], 200, BLOB_SIZE);
	feed(&stubs[0], f->blob, BLOB_SIZE);
	stubs[0].hooks->on_done(&stubs[0], 1, NULL, stubs[0].arg);
	run_until_idle(f);
	assert_int_equal(silent.starts, 1);
	assert_int_equal(silent.rd.end, 0);
	assert_int_equal(silent.avail, 0); /* never told: on_avail would have raised it */
	assert_int_equal(silent.ends, 1);
	assert_int_equal(silent.end.ok, 1);
	assert_int_equal(whole.avail, BLOB_SIZE);
	assert_int_equal(transfer_read(&silent.rd, 10), 0); /* ended */
	reader_close(&silent);
	reader_close(&whole);
}

/* Without a Content-Length nobody streams; everyone hears the end. A failure reaches every
 * internal caller; a stored blob answers at once without any transfer. */
static void test_fetch(void **state)
{
	struct fixture *f = *state;
	struct done a = {0}, b = {0}, c = {0};
	struct reader rd;

	transfer_fetch(&f->r, &f->ask, fetched, &a);
	transfer_fetch(&f->r, &f->ask, fetched, &b);
	assert_int_equal(nstubs, 1);
	stubs[0].retry_after = "7";
	respond(&stubs[0], 429, 10);
	stubs[0].hooks->on_done(&stubs[0], 1, NULL, stubs[0].arg);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_string_equal(a.err, "upstream failed");

	reader_init(&rd, f->blob);
	transfer_fetch(&f->r, &f->ask, fetched, &c);
	assert_int_equal(transfer_join(&f->r, &f->ask, &rd.rd), 0);
	respond(&stubs[1], 200, -1);
	feed(&stubs[1], f->blob, BLOB_SIZE);
	assert_int_equal(rd.starts, 0); /* no length: nothing to stream from */
	stubs[1].hooks->on_done(&stubs[1], 1, NULL, stubs[1].arg);
	assert_int_equal(c.calls, 0); /* not before its name is durable */
	run_until_idle(f);
	assert_int_equal(c.calls, 1);
	assert_string_equal(c.err, "");
	assert_int_equal(rd.ends, 1);
	assert_int_equal(rd.end.ok, 1);

	memset(&a, 0, sizeof(a));
	transfer_fetch(&f->r, &f->ask, fetched, &a);
	assert_int_equal(a.calls, 1); /* stored: at once */
	assert_string_equal(a.err, "");
	assert_int_equal(nstubs, 2);
}

/* Shutdown: a transfer still receiving fails; a verified one is left to finish its syncs. */
static void test_abort_all(void **state)
{
	struct fixture *f = *state;
	struct blob_ask other = f->ask;
	struct done receiving = {0}, verified = {0};

	other.digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
	transfer_fetch(&f->r, &other, fetched, &receiving);
	transfer_fetch(&f->r, &f->ask, fetched, &verified);
	respond(&stubs[0], 200, 100);
	feed(&stubs[0], f->blob, 50);
	respond(&stubs[1], 200, BLOB_SIZE);
	feed(&stubs[1], f->blob, BLOB_SIZE);
	stubs[1].hooks->on_done(&stubs[1], 1, NULL, stubs[1].arg);

	transfer_abort_all(&f->r);
	assert_int_equal(stubs[0].cancelled, 1);
	assert_int_equal(receiving.calls, 1);
	assert_string_equal(receiving.err, "shutting down");
	assert_int_equal(verified.calls, 0);
	syncq_drain(f->r.syncq);
	assert_int_equal(verified.calls, 1);
	assert_string_equal(verified.err, "");
	assert_true(store_blob_exists(&f->r.store, f->digest, NULL));
	assert_int_equal(tmp_files(f), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_readers_early_and_late),
	    T(test_mismatch_cuts_every_reader),
	    T(test_ranged_reader),
	    T(test_mismatch_cuts_ranged_readers),
	    T(test_reads_only_what_it_says),
	    T(test_fetch),
	    T(test_abort_all),
	};

	log_init("test_transfer", LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
