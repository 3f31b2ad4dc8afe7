/* conf: a JSON config file (jansson) read through typed getters that name the key on error. */
#ifndef MS_CONF_H
#define MS_CONF_H

#include <jansson.h>
#include <stddef.h>

/* Where the config came from, and the first error found in it. */
struct conf {
	const char *file; /* for messages; "(defaults)" when no file was given */
	json_t *root;	  /* an object */
	char err[512];	  /* "FILE: KEY: REASON" */
};

/* Loads FILE (NULL: an empty object). Returns -1 with c->err set. */
int conf_load(struct conf *c, const char *file);
void conf_free(struct conf *c);
/* Looks up a dotted path ("store.max_bytes") below obj. NULL when absent. */
json_t *conf_lookup(json_t *obj, const char *path);

/* The getters look NAME up below obj (a dotted path: "store.max_bytes"). Absent: *out is left
 * unchanged (object/array: NULL) and they return 0. Present but wrong: -1 with c->err naming
 * "PREFIX.NAME" (or NAME when prefix is NULL), e.g. "FILE: apps[2].min: must be between 0 and 10".
 * Strings point into the JSON document. */
#define CONF_KEY_MAX 256
int conf_string(struct conf *c, json_t *obj, const char *prefix, const char *name,
		const char **out);
int conf_int(struct conf *c, json_t *obj, const char *prefix, const char *name, long long min,
	     long long max, long long *out);
int conf_number(struct conf *c, json_t *obj, const char *prefix, const char *name, double min,
		double max, double *out);
int conf_bool(struct conf *c, json_t *obj, const char *prefix, const char *name, int *out);
int conf_object(struct conf *c, json_t *obj, const char *prefix, const char *name, json_t **out);
int conf_array(struct conf *c, json_t *obj, const char *prefix, const char *name, json_t **out);
/* The key an error names: "PREFIX.NAME", or NAME alone; returns out. */
const char *conf_key(char out[CONF_KEY_MAX], const char *prefix, const char *name);
/* An http:// or https:// base URL without user:password@, copied without trailing slashes into
 * *out (freed first). */
int conf_url(struct conf *c, json_t *obj, const char *prefix, const char *name, char **out);
/* The same check for a URL from elsewhere (a flag): 0 and a malloc'd copy, or -1. */
int conf_url_dup(const char *url, char **out);
/* Logs a warning naming FILE when it holds WHAT (a secret) and others than its owner may read
 * it: worth telling the operator, not worth refusing to start. */
void conf_check_private(const char *file, const char *what);
/* Fails with "FILE: KEY: unknown key" for any member of obj not in the NULL-ended list. */
int conf_known_keys(struct conf *c, json_t *obj, const char *prefix, const char *const *keys);
/* Sets c->err to "FILE: KEY: REASON" and returns -1. */
int conf_fail(struct conf *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
