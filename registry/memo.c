/* memo: small store files read last, kept in memory so that a warm manifest GET costs no
 * open/stat/read/close (and no re-hash). Keyed by the file's path; each value carries a stamp
 * (when it was read) that lets the caller decide whether it is still fresh: a manifest never
 * goes stale (immutable under its digest, verified before it is kept), a tag is read again after
 * a moment. Direct-mapped on a hash of the path: a collision replaces the older entry. Small
 * values only (MEMO_MAX_BYTES, in registry.h: a manifest larger than that is sent from its file
 * instead), so the memo stays under MEMO_SLOTS * MEMO_MAX_BYTES plus the keys. */
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "strhash.h"

#define MEMO_SLOTS 128

struct memo_slot {
	char *key;   /* NULL: empty */
	char *value; /* NUL-terminated after len bytes */
	size_t len;
	double stamp;
};

struct memo {
	struct memo_slot slot[MEMO_SLOTS];
};

static struct memo_slot *slot_of(struct memo *m, const char *key)
{
	return &m->slot[strhash(key) % MEMO_SLOTS];
}

const char *memo_get(struct memo *m, const char *key, size_t *len, double *stamp)
{
	struct memo_slot *s;

	if (!m)
		return NULL;
	s = slot_of(m, key);
	if (!s->key || strcmp(s->key, key) != 0)
		return NULL;
	*len = s->len;
	*stamp = s->stamp;
	return s->value;
}

void memo_put(struct memo **mp, const char *key, const char *value, size_t len, double stamp)
{
	struct memo_slot *s;
	char *k, *v;

	if (len > MEMO_MAX_BYTES)
		return;
	if (!*mp && !(*mp = calloc(1, sizeof(**mp))))
		return; /* no memo: every read goes to the disk, which is only slower */
	k = strdup(key);
	v = malloc(len + 1);
	if (!k || !v) {
		free(k);
		free(v);
		return;
	}
	memcpy(v, value, len);
	v[len] = '\0';
	s = slot_of(*mp, key);
	free(s->key);
	free(s->value);
	*s = (struct memo_slot){k, v, len, stamp};
}

void memo_drop(struct memo *m, const char *key)
{
	struct memo_slot *s = m ? slot_of(m, key) : NULL;

	if (!s || !s->key || strcmp(s->key, key) != 0)
		return;
	free(s->key);
	free(s->value);
	*s = (struct memo_slot){0};
}

void memo_free(struct memo *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < MEMO_SLOTS; i++) {
		free(m->slot[i].key);
		free(m->slot[i].value);
	}
	free(m);
}
