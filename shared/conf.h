/* conf: a JSON config file (jansson) read through typed getters that name the key on error. */
#ifndef MS_CONF_H
#define MS_CONF_H

#include <jansson.h>
#include <stddef.h>

/* Where the config came from, and the first error found in it. */
struct conf {
	const char *file; /* for messages; "(defaults)" when no file was given */
	json_t *root;     /* an object */
	char err[512];    /* "FILE: KEY: REASON" */
};

/* Loads FILE (NULL: an empty object). Returns -1 with c->err set. */
int conf_load(struct conf *c, const char *file);
void conf_free(struct conf *c);
/* Looks up a dotted path ("store.max_bytes") below obj. NULL when absent. */
json_t *conf_lookup(json_t *obj, const char *path);

/* Each getter leaves *out unchanged when the key is absent and returns 0; returns -1 with c->err
 * set ("FILE: KEY: expected a string", "…: must be between 1 and 65535") when present but wrong. */
int conf_string(struct conf *c, json_t *obj, const char *key, const char **out);
int conf_int(struct conf *c, json_t *obj, const char *key, long long min, long long max,
	     long long *out);
int conf_bool(struct conf *c, json_t *obj, const char *key, int *out);
/* An object, or NULL when absent. */
int conf_object(struct conf *c, json_t *obj, const char *key, json_t **out);
int conf_array(struct conf *c, json_t *obj, const char *key, json_t **out);
/* Fails with "FILE: KEY: unknown key" for any member of obj not in the NULL-ended list. */
int conf_known_keys(struct conf *c, json_t *obj, const char *prefix, const char *const *keys);
/* Sets c->err to "FILE: KEY: REASON" and returns -1. */
int conf_fail(struct conf *c, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
