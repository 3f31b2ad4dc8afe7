/* syncq: fsync(2) without blocking the event loop. Requests go to io_uring and complete through
 * an eventfd the loop watches; where io_uring is unavailable (an old kernel, a seccomp policy)
 * the fsync runs at once, blocking, and the callback still comes from the loop. */
#ifndef MS_SYNCQ_H
#define MS_SYNCQ_H

#include <ev.h>

struct syncq;

struct syncq *syncq_new(struct ev_loop *loop);
/* Waits for every request still running and runs its callback, then frees the queue. */
void syncq_free(struct syncq *q);
/* fsyncs fd (which must stay open until done runs); done(arg, 0) or done(arg, errno) runs later
 * from the loop, never before syncq_fsync returns. -1 (errno) when it could not be queued. */
int syncq_fsync(struct syncq *q, int fd, void (*done)(void *arg, int err), void *arg);
/* Runs the callbacks of every request still running, waiting for them. */
void syncq_drain(struct syncq *q);

#endif
