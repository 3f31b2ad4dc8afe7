/* httpd_buf: the buffers a request borrows while it is under way (struct httpd_buf, in
 * httpd_internal.h), and the server's bounded pool of spare ones. A leaf: httpd.c decides when
 * a connection takes one and gives it back.
 *
 * A spare is kept rather than freed so that a warm keep-alive GET, which takes a buffer with its
 * first byte and gives it back with its last, costs no malloc; no more than HTTPD_SPARE_BUFS are
 * kept, so the pool never holds more than the busiest moment needed, up to that bound. Under
 * AddressSanitizer a spare is poisoned: a pointer kept into a request after its response (the
 * API promises nothing past it) is reported, not quietly read from another request.
 *
 * Buffers are mapped, not malloc'd: at some 49 KiB each they sit below glibc's mmap threshold, so
 * after a burst of a thousand connections the freed ones would stay in the heap (tens of MiB
 * that never went back); a mapping goes back to the kernel when it is unmapped. The pool keeps
 * the syscalls off the warm path. */
#include <sanitizer/asan_interface.h>
#include <stddef.h>
#include <sys/mman.h>

#include "httpd_internal.h"

/* Everything after the pool's link. */
static void *payload(struct httpd_buf *b)
{
	return &b->headers;
}

/* Rounded up to AddressSanitizer's 8-byte granule, so that poisoning a spare covers its last
 * bytes too (a mapping has no redzone after it, as a malloc'd block has). */
static size_t buf_size(const struct httpd_buf_pool *p)
{
	return (offsetof(struct httpd_buf, arena) + p->arena_size + 7) & ~(size_t)7;
}

static struct httpd_buf *buf_map(const struct httpd_buf_pool *p)
{
	void *b =
	    mmap(NULL, buf_size(p), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return b == MAP_FAILED ? NULL : b;
}

static void buf_unmap(const struct httpd_buf_pool *p, struct httpd_buf *b)
{
	munmap(b, buf_size(p));
}

static size_t payload_size(const struct httpd_buf_pool *p)
{
	return buf_size(p) - offsetof(struct httpd_buf, headers);
}

void httpd_buf_pool_init(struct httpd_buf_pool *p, size_t arena_size)
{
	SLIST_INIT(&p->spares);
	p->nspares = 0;
	p->arena_size = arena_size;
}

struct httpd_buf *httpd_buf_get(struct httpd_buf_pool *p)
{
	struct httpd_buf *b = SLIST_FIRST(&p->spares);

	if (!b)
		return buf_map(p);
	SLIST_REMOVE_HEAD(&p->spares, spare);
	p->nspares--;
	ASAN_UNPOISON_MEMORY_REGION(payload(b), payload_size(p));
	return b;
}

void httpd_buf_put(struct httpd_buf_pool *p, struct httpd_buf *b)
{
	if (p->nspares >= HTTPD_SPARE_BUFS) {
		buf_unmap(p, b);
		return;
	}
	ASAN_POISON_MEMORY_REGION(payload(b), payload_size(p));
	SLIST_INSERT_HEAD(&p->spares, b, spare);
	p->nspares++;
}

void httpd_buf_pool_free(struct httpd_buf_pool *p)
{
	struct httpd_buf *b;

	while ((b = SLIST_FIRST(&p->spares))) {
		SLIST_REMOVE_HEAD(&p->spares, spare);
		ASAN_UNPOISON_MEMORY_REGION(payload(b), payload_size(p));
		buf_unmap(p, b);
	}
	p->nspares = 0;
}
