/* syncq: io_uring fsync requests, completed through an eventfd watched by the loop. */
#include <errno.h>
#include <liburing.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <unistd.h>

#include "log.h"
#include "syncq.h"

#define SYNCQ_DEPTH 64

struct sync_req {
	STAILQ_ENTRY(sync_req) link; /* in the fallback's list of finished requests */
	void (*done)(void *arg, int err);
	void *arg;
	int err;
};

struct syncq {
	struct ev_loop *loop;
	struct io_uring ring;
	int async; /* io_uring is up */
	int efd;   /* signalled on every completion */
	ev_io efd_io;
	ev_timer later; /* the fallback delivers its callbacks from here, on the next loop turn */
	STAILQ_HEAD(, sync_req) finished; /* in the order they were asked for */
	unsigned pending;
};

static void complete(struct syncq *q, struct sync_req *r, int err)
{
	q->pending--;
	r->done(r->arg, err);
	free(r);
}

static void reap(struct syncq *q, int wait)
{
	struct io_uring_cqe *cqe;

	while (q->pending > 0) {
		int rc =
		    wait ? io_uring_wait_cqe(&q->ring, &cqe) : io_uring_peek_cqe(&q->ring, &cqe);
		struct sync_req *r;
		int res;

		if (rc < 0)
			return;
		r = io_uring_cqe_get_data(cqe);
		res = cqe->res;
		io_uring_cqe_seen(&q->ring, cqe);
		if (r) /* NULL: a request turned into a no-op when its submit failed */
			complete(q, r, res < 0 ? -res : 0);
	}
}

static void efd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct syncq *q = w->data;
	uint64_t n;

	(void)loop;
	(void)revents;
	if (read(q->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("syncq_eventfd", "error=\"%s\"", strerror(errno));
	reap(q, 0);
}

static void later_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct syncq *q = w->data;
	struct sync_req *r;

	(void)revents;
	ev_timer_stop(loop, w);
	while ((r = STAILQ_FIRST(&q->finished))) {
		STAILQ_REMOVE_HEAD(&q->finished, link);
		complete(q, r, r->err);
	}
}

static int ring_up(struct syncq *q)
{
	if (io_uring_queue_init(SYNCQ_DEPTH, &q->ring, 0) < 0)
		return -1;
	q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->efd < 0 || io_uring_register_eventfd(&q->ring, q->efd) < 0) {
		if (q->efd >= 0)
			close(q->efd);
		io_uring_queue_exit(&q->ring);
		return -1;
	}
	ev_io_init(&q->efd_io, efd_cb, q->efd, EV_READ);
	q->efd_io.data = q;
	ev_io_start(q->loop, &q->efd_io);
	return 0;
}

struct syncq *syncq_new(struct ev_loop *loop)
{
	struct syncq *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->loop = loop;
	q->efd = -1;
	STAILQ_INIT(&q->finished);
	ev_timer_init(&q->later, later_cb, 0, 0);
	q->later.data = q;
	q->async = ring_up(q) == 0;
	if (!q->async)
		log_warn("syncq", "io_uring=unavailable fsync=blocking");
	return q;
}

/* Without io_uring: fsync now, report from the loop so callers see one behaviour. */
static void fsync_now(struct syncq *q, struct sync_req *r, int fd)
{
	r->err = fsync(fd) == 0 ? 0 : errno;
	STAILQ_INSERT_TAIL(&q->finished, r, link);
	ev_timer_start(q->loop, &q->later);
}

int syncq_fsync(struct syncq *q, int fd, void (*done)(void *arg, int err), void *arg)
{
	struct sync_req *r = calloc(1, sizeof(*r));
	struct io_uring_sqe *sqe;

	if (!r)
		return -1;
	r->done = done;
	r->arg = arg;
	q->pending++;
	sqe = q->async ? io_uring_get_sqe(&q->ring) : NULL;
	if (!sqe) { /* no io_uring, or the ring is full: block rather than fail */
		fsync_now(q, r, fd);
		return 0;
	}
	io_uring_prep_fsync(sqe, fd, 0);
	io_uring_sqe_set_data(sqe, r);
	if (io_uring_submit(&q->ring) < 0) {
		/* not submitted: the sqe goes with the next submit; do this one by hand */
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data(sqe, NULL);
		fsync_now(q, r, fd);
	}
	return 0;
}

void syncq_drain(struct syncq *q)
{
	if (q->async)
		reap(q, 1);
	later_cb(q->loop, &q->later, 0);
}

void syncq_free(struct syncq *q)
{
	if (!q)
		return;
	syncq_drain(q);
	if (q->async) {
		ev_io_stop(q->loop, &q->efd_io);
		io_uring_queue_exit(&q->ring);
		close(q->efd);
	}
	free(q);
}
