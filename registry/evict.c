/* evict: keeps the store within store.max_bytes. The daemon records when each blob was last
 * served (not atime, which mounts often disable); past the budget the least recently used blobs
 * go first, down to 90% of it. Never evicted: blobs of pinned images (every listed image is
 * pinned) and blobs being served. A blob being written is not in the index until it is stored.
 * An unpinned blob larger than the whole budget is served while it streams, then dropped. */
#include <dirent.h>
#include <errno.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "registry.h"

struct evict_entry {
	struct evict_entry *prev, *next;
	char digest[DIGEST_STR_SIZE];
	long long size;
	ev_tstamp last_access;
	unsigned in_use;
	int pinned; /* scratch, during one eviction run */
};

struct evict {
	struct registry *r;
	void *tree; /* tsearch: digest -> entry */
	struct evict_entry *all;
	size_t count;
	long long used, budget, evicted;
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
	e->next = ev->all;
	if (ev->all)
		ev->all->prev = e;
	ev->all = e;
	ev->count++;
	ev->used += size;
	return e;
}

static void entry_remove(struct evict *ev, struct evict_entry *e)
{
	tdelete(e, &ev->tree, by_digest);
	if (e->prev)
		e->prev->next = e->next;
	else
		ev->all = e->next;
	if (e->next)
		e->next->prev = e->prev;
	ev->count--;
	ev->used -= e->size;
	free(e);
}

/* The start-up scan: what is stored, last used when it was stored (the file's mtime). */
static void scan_dir(struct evict *ev, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[PATH_MAX + 256], digest[DIGEST_STR_SIZE];
	struct stat st;

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || strlen(de->d_name) != DIGEST_HEX_LEN)
			continue;
		memcpy(digest, "sha256:", 7);
		memcpy(digest + 7, de->d_name, DIGEST_HEX_LEN + 1);
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (digest_check(digest) == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode))
			entry_add(ev, digest, st.st_size, (ev_tstamp)st.st_mtime);
	}
	closedir(d);
}

static void scan(struct evict *ev)
{
	char dir[PATH_MAX];
	int i;

	for (i = 0; i < 256; i++) {
		snprintf(dir, sizeof(dir), "%s/blobs/sha256/%02x", ev->r->conf->root, i);
		scan_dir(ev, dir);
	}
}

struct evict *evict_new(struct registry *r)
{
	struct evict *ev = calloc(1, sizeof(*ev));
	struct statvfs vfs;

	if (!ev)
		return NULL;
	ev->r = r;
	scan(ev);
	ev->budget = r->conf->store_max_bytes;
	if (ev->budget == 0 && statvfs(r->conf->root, &vfs) == 0)
		ev->budget =
		    (long long)((double)vfs.f_bavail * (double)vfs.f_frsize * 0.8) + ev->used;
	log_info("store_budget", "blobs=%zu bytes=%lld budget=%lld", ev->count, ev->used,
		 ev->budget);
	return ev;
}

void evict_free(struct evict *ev)
{
	if (!ev)
		return;
	while (ev->all)
		entry_remove(ev, ev->all);
	free(ev);
}

/* Marks every blob of every pinned image; returns the bytes they hold. */
static long long mark_pinned(struct evict *ev)
{
	struct prewarm_image *img;
	struct evict_entry *e;
	long long pinned = 0;
	size_t i;

	for (e = ev->all; e; e = e->next)
		e->pinned = 0;
	for (img = prewarm_images(ev->r->prewarm); img; img = img->next) {
		struct image_walk w;
		const char *one[2] = {img->platform, NULL};

		if (!img->pinned || !img->digest[0])
			continue;
		if (image_walk(&ev->r->store, img->digest,
			       img->platform[0] ? one : (const char *const *)ev->r->conf->platforms,
			       &w) == 0)
			for (i = 0; i < w.nblobs; i++)
				if ((e = entry_find(ev, w.blobs[i].digest)) && !e->pinned) {
					e->pinned = 1;
					pinned += e->size;
				}
		image_walk_free(&w);
	}
	return pinned;
}

static int by_last_access(const void *a, const void *b)
{
	ev_tstamp x = (*(struct evict_entry *const *)a)->last_access;
	ev_tstamp y = (*(struct evict_entry *const *)b)->last_access;

	return x < y ? -1 : x > y;
}

static void evict_entry_now(struct evict *ev, struct evict_entry *e)
{
	log_info("evicted", "digest=%s bytes=%lld idle_s=%.0f", e->digest, e->size,
		 ev_now(ev->r->loop) - e->last_access);
	if (store_blob_remove(&ev->r->store, e->digest) == 0) {
		ev->evicted += e->size;
		metrics_add(ev->r->stats.evicted, (double)e->size);
	}
	entry_remove(ev, e);
}

/* Oldest first, down to 90% of the budget, skipping pinned blobs and blobs being served. */
static void run(struct evict *ev)
{
	long long target = ev->budget / 10 * 9, pinned = mark_pinned(ev);
	struct evict_entry **v = calloc(ev->count ? ev->count : 1, sizeof(*v)), *e;
	size_t n = 0, i;

	if (pinned > ev->budget)
		log_error("store_over_budget",
			  "pinned_bytes=%lld budget=%lld "
			  "action=\"keeping pinned images; raise store.max_bytes\"",
			  pinned, ev->budget);
	if (!v)
		return;
	for (e = ev->all; e; e = e->next)
		if (!e->pinned && !e->in_use)
			v[n++] = e;
	qsort(v, n, sizeof(*v), by_last_access);
	for (i = 0; i < n && ev->used > target; i++)
		evict_entry_now(ev, v[i]);
	free(v);
}

/* A blob was stored. Returns 0, or -1 when it is unpinned and larger than the whole budget:
 * then the caller drops it once its current readers have it open. */
int evict_stored(struct evict *ev, const char *digest, long long size)
{
	struct evict_entry *e;

	if (!ev)
		return 0;
	e = entry_add(ev, digest, size, ev_now(ev->r->loop));
	if (size > ev->budget && e) {
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

/* A client is being served this stored blob: it is recently used, and in use until the
 * response ends. */
void evict_serving(struct evict *ev, struct httpd_conn *conn, const char *digest)
{
	struct evict_entry *e = ev ? entry_find(ev, digest) : NULL;

	if (!e)
		return;
	e->last_access = ev_now(ev->r->loop);
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
