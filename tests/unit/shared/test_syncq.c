/* syncq: fsyncs complete from the loop, never inside syncq_fsync, and drain runs the rest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "syncq.h"

struct done {
	int calls, err;
};

static void on_done(void *arg, int err)
{
	struct done *d = arg;

	d->calls++;
	d->err = err;
}

static int temp_file(void)
{
	char path[] = "/tmp/ms-test-syncq.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, "data", 4), 4);
	return fd;
}

static void test_fsync_completes_from_the_loop(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct syncq *q = syncq_new(loop);
	struct done d[3] = {{0, -1}, {0, -1}, {0, -1}};
	int fd = temp_file(), i;

	(void)state;
	assert_non_null(q);
	for (i = 0; i < 3; i++)
		assert_int_equal(syncq_fsync(q, fd, on_done, &d[i]), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(d[i].calls, 0); /* never before syncq_fsync returns */
	while (d[0].calls + d[1].calls + d[2].calls < 3)
		ev_run(loop, EVRUN_ONCE);
	for (i = 0; i < 3; i++) {
		assert_int_equal(d[i].calls, 1);
		assert_int_equal(d[i].err, 0);
	}
	syncq_free(q);
	ev_loop_destroy(loop);
	close(fd);
}

static void test_bad_fd_reports_the_error(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct syncq *q = syncq_new(loop);
	struct done d = {0, 0};

	(void)state;
	assert_int_equal(syncq_fsync(q, 987654, on_done, &d), 0);
	while (!d.calls)
		ev_run(loop, EVRUN_ONCE);
	assert_int_equal(d.err, EBADF);
	syncq_free(q);
	ev_loop_destroy(loop);
}

static void test_free_drains(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct syncq *q = syncq_new(loop);
	struct done d = {0, -1};
	int fd = temp_file();

	(void)state;
	assert_int_equal(syncq_fsync(q, fd, on_done, &d), 0);
	syncq_free(q); /* waits, and runs the callback */
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.err, 0);
	ev_loop_destroy(loop);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fsync_completes_from_the_loop),
	    cmocka_unit_test(test_bad_fd_reports_the_error),
	    cmocka_unit_test(test_free_drains),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
