/* conf: a JSON config file read through typed getters that name the file and key on error. */
#include "conf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int conf_fail(struct conf *c, const char *key, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(c->err, sizeof(c->err), "%s: %s: ", c->file, key);
	if (n >= 0 && (size_t)n < sizeof(c->err)) {
		va_start(ap, fmt);
		vsnprintf(c->err + n, sizeof(c->err) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int conf_load(struct conf *c, const char *file)
{
	json_error_t jerr;

	c->err[0] = '\0';
	c->file = file != NULL ? file : "(defaults)";
	c->root = NULL;
	if (file == NULL) {
		c->root = json_object();
		if (c->root == NULL) {
			snprintf(c->err, sizeof(c->err), "%s: out of memory", c->file);
			return -1;
		}
		return 0;
	}
	/* A key given twice is almost always a mistake; jansson would silently keep the last. */
	c->root = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
	if (c->root == NULL) {
		if (jerr.line > 0)
			snprintf(c->err, sizeof(c->err), "%s:%d:%d: %s", file, jerr.line,
				 jerr.column, jerr.text);
		else
			snprintf(c->err, sizeof(c->err), "%s: %s", file, jerr.text);
		return -1;
	}
	if (!json_is_object(c->root)) {
		snprintf(c->err, sizeof(c->err), "%s: the top level must be an object", file);
		json_decref(c->root);
		c->root = NULL;
		return -1;
	}
	return 0;
}

void conf_free(struct conf *c)
{
	json_decref(c->root);
	c->root = NULL;
}

/* Keys may contain dots themselves ("docker.io"), so each dot is only a candidate split: try the
 * shortest member name first and back off when the rest does not resolve. */
json_t *conf_lookup(json_t *obj, const char *path)
{
	const char *dot = path;
	json_t *v;
	size_t n;

	if (!json_is_object(obj))
		return NULL;
	for (;;) {
		dot = strchr(dot, '.');
		n = dot != NULL ? (size_t)(dot - path) : strlen(path);
		v = json_object_getn(obj, path, n);
		if (dot == NULL)
			return v;
		if (v != NULL && (v = conf_lookup(v, dot + 1)) != NULL)
			return v;
		dot++;
	}
}

int conf_string(struct conf *c, json_t *obj, const char *key, const char **out)
{
	json_t *v = conf_lookup(obj, key);

	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return conf_fail(c, key, "expected a string");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return conf_fail(c, key, "must not contain a NUL character");
	*out = json_string_value(v);
	return 0;
}

int conf_int(struct conf *c, json_t *obj, const char *key, long long min, long long max,
	     long long *out)
{
	json_t *v = conf_lookup(obj, key);
	long long n;

	if (v == NULL)
		return 0;
	if (!json_is_integer(v))
		return conf_fail(c, key, "expected an integer");
	n = json_integer_value(v);
	if (n < min || n > max)
		return conf_fail(c, key, "must be between %lld and %lld", min, max);
	*out = n;
	return 0;
}

int conf_bool(struct conf *c, json_t *obj, const char *key, int *out)
{
	json_t *v = conf_lookup(obj, key);

	if (v == NULL)
		return 0;
	if (!json_is_boolean(v))
		return conf_fail(c, key, "expected true or false");
	*out = json_is_true(v);
	return 0;
}

int conf_object(struct conf *c, json_t *obj, const char *key, json_t **out)
{
	json_t *v = conf_lookup(obj, key);

	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_object(v))
		return conf_fail(c, key, "expected an object");
	*out = v;
	return 0;
}

int conf_array(struct conf *c, json_t *obj, const char *key, json_t **out)
{
	json_t *v = conf_lookup(obj, key);

	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_array(v))
		return conf_fail(c, key, "expected an array");
	*out = v;
	return 0;
}

static int conf_key_listed(const char *key, const char *const *keys)
{
	for (; *keys != NULL; keys++) {
		if (strcmp(key, *keys) == 0)
			return 1;
	}
	return 0;
}

int conf_known_keys(struct conf *c, json_t *obj, const char *prefix, const char *const *keys)
{
	const char *key;
	char path[256];

	for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
		key = json_object_iter_key(it);
		if (conf_key_listed(key, keys))
			continue;
		if (prefix != NULL && prefix[0] != '\0')
			snprintf(path, sizeof(path), "%s.%s", prefix, key);
		else
			snprintf(path, sizeof(path), "%s", key);
		return conf_fail(c, path, "unknown key");
	}
	return 0;
}
