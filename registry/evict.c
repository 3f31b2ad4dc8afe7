/* evict: keeps the store within store.max_bytes. Everything the store keeps counts: blobs,
 * manifests, tags and tag lists, each file as its size rounded up to a whole BLOCK (what a file
 * system allocates for it, so that the budget is what du says). The daemon records when each was
 * last used (not atime, which mounts often disable): a blob when it is served, a small file when
 * the store reads it or puts it in place. Past the budget, or past EVICT_MAX_FILES files (the
 * index's memory is bounded too), the least recently used go first, down to 90% of it.
 *
 * Never evicted: what is pinned and blobs being served. Pinned is what the owner's pins callback
 * names (the blobs and manifests of pinned images), and the tags that name a pinned manifest. A
 * blob being written is not in the index until it is stored. An unpinned blob larger than the
 * whole budget is served while it streams, then dropped. A tag whose manifest was evicted is not
 * a problem for its readers: the manifest is missing, so the tag is fetched again.
 *
 * evict knows nothing above the store: pins come from whoever owns it, and the small files'
 * comings and goings through the store's watch. */
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/statvfs.h>

#include "registry.h"

#define BLOCK 4096LL
#define EVICT_MAX_FILES 131072 /* at 200-260 bytes an entry: about 32 MiB of index at most */

struct evict_entry {
	TAILQ_ENTRY(evict_entry) lru; /* least recently used first */
	enum store_kind kind;
	const char *name;   /* what the store calls it (stored after the entry) */
	const char *target; /* a tag: the manifest it names, or NULL (stored after the name) */
	long long bytes;    /* what it counts: its size rounded up to BLOCK */
	ev_tstamp last_access;
	unsigned in_use;
	int pinned; /* scratch, during one eviction run */
};

struct evict {
	struct registry *r;
	void *tree; /* tsearch: (kind, name) -> entry */
	TAILQ_HEAD(, evict_entry) lru;
	size_t count;
	long long used, budget;
	evict_pins_fn pins; /* the owner's; NULL: nothing is pinned */
	void *pins_arg;
};

static const char *const kind_names[STORE_KINDS] = {
    [STORE_BLOB] = "blob",
    [STORE_MANIFEST] = "manifest",
    [STORE_TAG] = "tag",
    [STORE_TAGLIST] = "taglist",
};

static long long charge(long long size)
{
	return size <= BLOCK ? BLOCK : (size + BLOCK - 1) / BLOCK * BLOCK;
}

static int by_name(const void *a, const void *b)
{
	const struct evict_entry *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return strcmp(x->name, y->name);
}

static struct evict_entry *entry_find(struct evict *ev, enum store_kind kind, const char *name)
{
	struct evict_entry key = {.kind = kind, .name = name};
	void *found = tfind(&key, &ev->tree, by_name);

	return found ? *(struct evict_entry **)found : NULL;
}

static void entry_touch(struct evict *ev, struct evict_entry *e, ev_tstamp when)
{
	e->last_access = when;
	TAILQ_REMOVE(&ev->lru, e, lru);
	TAILQ_INSERT_TAIL(&ev->lru, e, lru);
}

/* A new entry goes last: the most recently used. TARGET: a tag's manifest, or NULL / "". */
static struct evict_entry *entry_new(struct evict *ev, enum store_kind kind, const char *name,
				     const char *target, long long size, ev_tstamp when)
{
	size_t nlen = strlen(name) + 1, tlen = target && target[0] ? strlen(target) + 1 : 0;
	struct evict_entry *e = calloc(1, sizeof(*e) + nlen + tlen);
	char *names;

	if (!e)
		return NULL;
	names = (char *)(e + 1);
	e->kind = kind;
	e->name = memcpy(names, name, nlen);
	e->target = tlen ? memcpy(names + nlen, target, tlen) : NULL;
	e->bytes = charge(size);
	e->last_access = when;
	if (!tsearch(e, &ev->tree, by_name)) {
		free(e);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&ev->lru, e, lru);
	ev->count++;
	ev->used += e->bytes;
	return e;
}

static void entry_remove(struct evict *ev, struct evict_entry *e)
{
	tdelete(e, &ev->tree, by_name);
	TAILQ_REMOVE(&ev->lru, e, lru);
	ev->count--;
	ev->used -= e->bytes;
	free(e);
}

static int same_target(const struct evict_entry *e, const char *target)
{
	const char *t = target && target[0] ? target : NULL;

	return !e->target == !t && (!t || strcmp(e->target, t) == 0);
}

/* KIND NAME is stored, SIZE bytes (naming TARGET): a new entry, or the old one brought up to
 * date and made the most recently used. */
static struct evict_entry *entry_put(struct evict *ev, enum store_kind kind, const char *name,
				     const char *target, long long size, ev_tstamp when)
{
	struct evict_entry *e = entry_find(ev, kind, name);

	if (e && !same_target(e, target)) { /* a tag that moved (only blobs are ever in use) */
		entry_remove(ev, e);
		e = NULL;
	}
	if (!e)
		return entry_new(ev, kind, name, target, size, when);
	ev->used += charge(size) - e->bytes;
	e->bytes = charge(size);
	entry_touch(ev, e, when);
	return e;
}

/* The start-up scan: what is stored, last used when it was stored (the file's mtime). What is
 * not a regular file is not the store's: it is not counted, and quarantined when next read. */
static int scan_one(void *arg, const struct store_object *o)
{
	if (o->foreign)
		return 0;
	return entry_put(arg, o->kind, o->name, o->digest, o->size, (ev_tstamp)o->mtime) ? 0 : -1;
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
	int kind;

	for (kind = 0; kind < STORE_KINDS; kind++)
		if (store_each(&ev->r->store, kind, scan_one, ev) != 0)
			return -1; /* out of memory: an unindexed file would never be evicted */
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

static void run(struct evict *ev);

static int over(const struct evict *ev)
{
	return ev->used > ev->budget || ev->count > EVICT_MAX_FILES;
}

/* The store's watch: a small file stored, or read. */
static void watch_stored(void *arg, enum store_kind kind, const char *name, const char *digest,
			 long long bytes)
{
	struct evict *ev = arg;

	if (!entry_put(ev, kind, name, digest, bytes, ev_now(ev->r->loop)))
		log_warn("evict_index", "kind=%s name=%s error=\"out of memory\"", kind_names[kind],
			 name);
	if (over(ev))
		run(ev);
}

static void watch_used(void *arg, enum store_kind kind, const char *name)
{
	struct evict *ev = arg;
	struct evict_entry *e = entry_find(ev, kind, name);

	if (e)
		entry_touch(ev, e, ev_now(ev->r->loop));
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
	r->store.watch = (struct store_watch){watch_stored, watch_used, ev};
	log_info("store_budget", "files=%zu bytes=%lld budget=%lld", ev->count, ev->used,
		 ev->budget);
	return ev;
}

void evict_on_pins(struct evict *ev, evict_pins_fn fn, void *arg)
{
	ev->pins = fn;
	ev->pins_arg = arg;
}

/* Only after the last response that serves a stored blob ended (httpd_free): each holds its
 * entry until then. The store's watch goes first: writes still on their way (store_sync) end
 * after this. */
void evict_free(struct evict *ev)
{
	struct evict_entry *e;

	if (!ev)
		return;
	memset(&ev->r->store.watch, 0, sizeof(ev->r->store.watch));
	while ((e = TAILQ_FIRST(&ev->lru)))
		entry_remove(ev, e);
	free(ev);
}

struct mark {
	struct evict *ev;
	long long bytes; /* held by the files marked */
};

static void mark(struct mark *m, struct evict_entry *e)
{
	if (e && !e->pinned) {
		e->pinned = 1;
		m->bytes += e->bytes;
	}
}

/* The owner names digests: the blob or the manifest of that name (or both) stay. */
static void keep_cb(void *arg, const char *digest)
{
	struct mark *m = arg;

	mark(m, entry_find(m->ev, STORE_BLOB, digest));
	mark(m, entry_find(m->ev, STORE_MANIFEST, digest));
}

/* Marks every pinned file; returns the bytes they hold. The tags that name a pinned manifest
 * stay with it: a pinned image is pulled by its tag, with the upstream down too. */
static long long mark_pinned(struct evict *ev)
{
	struct mark m = {ev, 0};
	struct evict_entry *e, *manifest;

	TAILQ_FOREACH (e, &ev->lru, lru) {
		e->pinned = 0;
	}
	if (!ev->pins)
		return 0;
	ev->pins(ev->pins_arg, keep_cb, &m);
	TAILQ_FOREACH (e, &ev->lru, lru) {
		manifest = e->target ? entry_find(ev, STORE_MANIFEST, e->target) : NULL;
		if (manifest && manifest->pinned)
			mark(&m, e);
	}
	return m.bytes;
}

static void evict_entry_now(struct evict *ev, struct evict_entry *e)
{
	int digest = e->kind == STORE_BLOB || e->kind == STORE_MANIFEST;

	log_info("evicted", "%s=%s kind=%s bytes=%lld idle_s=%.0f", digest ? "digest" : "name",
		 e->name, kind_names[e->kind], e->bytes, ev_now(ev->r->loop) - e->last_access);
	if (store_remove(&ev->r->store, e->kind, e->name) == 0)
		metrics_add(ev->r->stats.evicted, (double)e->bytes);
	entry_remove(ev, e);
}

/* Oldest first, down to 90% of the budget (and of EVICT_MAX_FILES), skipping pinned files and
 * blobs being served. */
static void run(struct evict *ev)
{
	long long target = ev->budget / 10 * 9, pinned = mark_pinned(ev);
	size_t files = EVICT_MAX_FILES / 10 * 9;
	struct evict_entry *e, *next;

	if (pinned > ev->budget)
		log_error("store_over_budget",
			  "pinned_bytes=%lld budget=%lld "
			  "action=\"keeping pinned images; raise store.max_bytes\"",
			  pinned, ev->budget);
	for (e = TAILQ_FIRST(&ev->lru); e && (ev->used > target || ev->count > files); e = next) {
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
	e = entry_put(ev, STORE_BLOB, digest, NULL, size, ev_now(ev->r->loop));
	if (e && e->bytes > ev->budget && !e->in_use) {
		mark_pinned(ev);
		if (!e->pinned) {
			log_warn("blob_over_budget", "digest=%s bytes=%lld budget=%lld action=drop",
				 digest, size, ev->budget);
			entry_remove(ev, e);
			return -1;
		}
	}
	if (over(ev))
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
	struct evict_entry *e = ev ? entry_find(ev, STORE_BLOB, digest) : NULL;

	if (!e)
		return;
	entry_touch(ev, e, ev_now(ev->r->loop));
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
