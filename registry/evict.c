/* evict: keeps the store within store.max_bytes. The daemon records when each blob was last
 * served (not atime, which mounts often disable); past the budget the least recently used blobs
 * go first, down to 90% of it. Never evicted: pinned blobs (what the owner's pins callback names:
 * the blobs of pinned images) and blobs being served. A blob being written is not in the index
 * until it is stored. An unpinned blob larger than the whole budget is served while it streams,
 * then dropped. evict knows nothing above the store: pins come from whoever owns it. */
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/statvfs.h>

#include "registry.h"

struct evict_entry {
	TAILQ_ENTRY(evict_entry) lru; /* least recently used first */
	char digest[DIGEST_STR_SIZE];
	long long size;
	ev_tstamp last_access;
	unsigned in_use;
	int pinned; /* scratch, during one eviction run */
};

struct evict {
	struct registry *r;
	void *tree; /* tsearch: digest -> entry */
	TAILQ_HEAD(, evict_entry) lru;
	size_t count;
	long long used, budget;
	evict_pins_fn pins; /* the owner's; NULL: nothing is pinned */
	void *pins_arg;
};

static int by_digest(const void *a, const void *b)
{
	return strcmp(((const struct evict_entry *)a)->digest,
		      ((const struct evict_entry *)b)->digest);
}

static struct evict_entry *entry_find(struct evict *ev, const char *digest)
{
	struct evict_entry key;
	void *found;

	snprintf(key.digest, sizeof(key.digest), "%s", digest);
	found = tfind(&key, &ev->tree, by_digest);
	return found ? *(struct evict_entry **)found : NULL;
}

/* A new entry goes last: the most recently used. */
static struct evict_entry *entry_add(struct evict *ev, const char *digest, long long size,
				     ev_tstamp when)
{
	struct evict_entry *e = entry_find(ev, digest);

	if (e)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	snprintf(e->digest, sizeof(e->digest), "%s", digest);
	e->size = size;
	e->last_access = when;
	if (!tsearch(e, &ev->tree, by_digest)) {
		free(e);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&ev->lru, e, lru);
	ev->count++;
	ev->used += size;
	return e;
}

static void entry_remove(struct evict *ev, struct evict_entry *e)
{
	tdelete(e, &ev->tree, by_digest);
	TAILQ_REMOVE(&ev->lru, e, lru);
	ev->count--;
	ev->used -= e->size;
	free(e);
}

/* The start-up scan: what is stored, last used when it was stored (the file's mtime). */
static int scan_one(void *arg, const struct store_object *o)
{
	return entry_add(arg, o->digest, o->size, (ev_tstamp)o->mtime) ? 0 : -1;
}

static int by_last_access(const void *a, const void *b)
{
	ev_tstamp x = (*(struct evict_entry *const *)a)->last_access;
	ev_tstamp y = (*(struct evict_entry *const *)b)->last_access;

	return x < y ? -1 : x > y;
}

/* The scan comes in directory order: put it in LRU order once, so that every run after only
 * walks the list from its head. */
static int scan(struct evict *ev)
{
	struct evict_entry **v, *e;
	size_t n = 0, i;

	if (store_each(&ev->r->store, STORE_BLOB, scan_one, ev) != 0)
		return -1; /* out of memory: an unindexed blob would never be evicted */
	if (ev->count == 0)
		return 0;
	v = calloc(ev->count, sizeof(*v));
	if (!v)
		return -1;
	TAILQ_FOREACH (e, &ev->lru, lru) {
		v[n++] = e;
	}
	qsort(v, n, sizeof(*v), by_last_access);
	TAILQ_INIT(&ev->lru);
	for (i = 0; i < n; i++)
		TAILQ_INSERT_TAIL(&ev->lru, v[i], lru);
	free(v);
	return 0;
}

struct evict *evict_new(struct registry *r)
{
	struct evict *ev = calloc(1, sizeof(*ev));
	struct statvfs vfs;

	if (!ev)
		return NULL;
	ev->r = r;
	TAILQ_INIT(&ev->lru);
	if (scan(ev) < 0) {
		evict_free(ev);
		return NULL;
	}
	ev->budget = r->conf->store_max_bytes;
	if (ev->budget == 0 && statvfs(r->conf->root, &vfs) == 0)
		ev->budget =
		    (long long)((double)vfs.f_bavail * (double)vfs.f_frsize * 0.8) + ev->used;
	log_info("store_budget", "blobs=%zu bytes=%lld budget=%lld", ev->count, ev->used,
		 ev->budget);
	return ev;
}

void evict_on_pins(struct evict *ev, evict_pins_fn fn, void *arg)
{
	ev->pins = fn;
	ev->pins_arg = arg;
}

/* Only after the last response that serves a stored blob ended (httpd_free): each holds its
 * entry until then. */
void evict_free(struct evict *ev)
{
	struct evict_entry *e;

	if (!ev)
		return;
	while ((e = TAILQ_FIRST(&ev->lru)))
		entry_remove(ev, e);
	free(ev);
}

struct mark {
	struct evict *ev;
	long long bytes; /* held by the blobs marked */
};

static void keep_cb(void *arg, const char *digest)
{
	struct mark *m = arg;
	struct evict_entry *e = entry_find(m->ev, digest);

	if (e && !e->pinned) {
		e->pinned = 1;
		m->bytes += e->size;
	}
}

/* Marks every pinned blob; returns the bytes they hold. */
static long long mark_pinned(struct evict *ev)
{
	struct mark m = {ev, 0};
	struct evict_entry *e;

	TAILQ_FOREACH (e, &ev->lru, lru) {
		e->pinned = 0;
	}
	if (ev->pins)
		ev->pins(ev->pins_arg, keep_cb, &m);
	return m.bytes;
}

static void evict_entry_now(struct evict *ev, struct evict_entry *e)
{
	log_info("evicted", "digest=%s bytes=%lld idle_s=%.0f", e->digest, e->size,
		 ev_now(ev->r->loop) - e->last_access);
	if (store_blob_remove(&ev->r->store, e->digest) == 0)
		metrics_add(ev->r->stats.evicted, (double)e->size);
	entry_remove(ev, e);
}

/* Oldest first, down to 90% of the budget, skipping pinned blobs and blobs being served. */
static void run(struct evict *ev)
{
	long long target = ev->budget / 10 * 9, pinned = mark_pinned(ev);
	struct evict_entry *e, *next;

	if (pinned > ev->budget)
		log_error("store_over_budget",
			  "pinned_bytes=%lld budget=%lld "
			  "action=\"keeping pinned images; raise store.max_bytes\"",
			  pinned, ev->budget);
	for (e = TAILQ_FIRST(&ev->lru); e && ev->used > target; e = next) {
		next = TAILQ_NEXT(e, lru);
		if (!e->pinned && !e->in_use)
			evict_entry_now(ev, e);
	}
}

/* A blob was stored. Returns 0, or -1 when it is unpinned and larger than the whole budget:
 * then the caller drops it once its current readers have it open. */
int evict_stored(struct evict *ev, const char *digest, long long size)
{
	struct evict_entry *e;

	if (!ev)
		return 0;
	e = entry_add(ev, digest, size, ev_now(ev->r->loop));
	if (size > ev->budget && e && !e->in_use) {
		mark_pinned(ev);
		if (!e->pinned) {
			log_warn("blob_over_budget", "digest=%s bytes=%lld budget=%lld action=drop",
				 digest, size, ev->budget);
			entry_remove(ev, e);
			return -1;
		}
	}
	if (ev->used > ev->budget)
		run(ev);
	return 0;
}

static void release_cb(struct httpd_conn *conn, void *arg)
{
	struct evict_entry *e = arg;

	(void)conn;
	e->in_use--;
}

/* A client is being served this stored blob: it is the most recently used now, and in use
 * until the response ends. */
void evict_serving(struct evict *ev, struct httpd_conn *conn, const char *digest)
{
	struct evict_entry *e = ev ? entry_find(ev, digest) : NULL;

	if (!e)
		return;
	e->last_access = ev_now(ev->r->loop);
	TAILQ_REMOVE(&ev->lru, e, lru);
	TAILQ_INSERT_TAIL(&ev->lru, e, lru);
	e->in_use++;
	httpd_set_release(conn, release_cb, e);
}

long long evict_used(const struct evict *ev)
{
	return ev ? ev->used : 0;
}

long long evict_budget(const struct evict *ev)
{
	return ev ? ev->budget : 0;
}
