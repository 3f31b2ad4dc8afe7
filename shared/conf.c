/* conf: a JSON config file read through typed getters that name the file and key on error. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"
#include "log.h"

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
	c->file = file ? file : "(defaults)";
	c->root = NULL;
	if (!file) {
		c->root = json_object();
		if (!c->root) {
			snprintf(c->err, sizeof(c->err), "%s: out of memory", c->file);
			return -1;
		}
		return 0;
	}
	/* A key given twice is almost always a mistake; jansson would silently keep the last. */
	c->root = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
	if (!c->root) {
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
		n = dot ? (size_t)(dot - path) : strlen(path);
		v = json_object_getn(obj, path, n);
		if (!dot)
			return v;
		if (v && (v = conf_lookup(v, dot + 1)))
			return v;
		dot++;
	}
}

const char *conf_key(char out[CONF_KEY_MAX], const char *prefix, const char *name)
{
	if (!prefix || !*prefix)
		snprintf(out, CONF_KEY_MAX, "%s", name);
	else if (snprintf(out, CONF_KEY_MAX, "%s.%s", prefix, name) >= CONF_KEY_MAX)
		out[CONF_KEY_MAX - 1] = '\0';
	return out;
}

int conf_string(struct conf *c, json_t *obj, const char *prefix, const char *name, const char **out)
{
	json_t *v = conf_lookup(obj, name);
	char key[CONF_KEY_MAX];

	if (!v)
		return 0;
	if (!json_is_string(v))
		return conf_fail(c, conf_key(key, prefix, name), "expected a string");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return conf_fail(c, conf_key(key, prefix, name),
				 "must not contain a NUL character");
	*out = json_string_value(v);
	return 0;
}

int conf_int(struct conf *c, json_t *obj, const char *prefix, const char *name, long long min,
	     long long max, long long *out)
{
	json_t *v = conf_lookup(obj, name);
	char key[CONF_KEY_MAX];
	long long n;

	if (!v)
		return 0;
	if (!json_is_integer(v))
		return conf_fail(c, conf_key(key, prefix, name), "expected an integer");
	n = json_integer_value(v);
	if (n < min || n > max)
		return conf_fail(c, conf_key(key, prefix, name), "must be between %lld and %lld",
				 min, max);
	*out = n;
	return 0;
}

int conf_number(struct conf *c, json_t *obj, const char *prefix, const char *name, double min,
		double max, double *out)
{
	json_t *v = conf_lookup(obj, name);
	char key[CONF_KEY_MAX];
	double n;

	if (!v)
		return 0;
	if (!json_is_number(v))
		return conf_fail(c, conf_key(key, prefix, name), "expected a number");
	n = json_number_value(v);
	if (!(n >= min && n <= max))
		return conf_fail(c, conf_key(key, prefix, name), "must be between %g and %g", min,
				 max);
	*out = n;
	return 0;
}

int conf_bool(struct conf *c, json_t *obj, const char *prefix, const char *name, int *out)
{
	json_t *v = conf_lookup(obj, name);
	char key[CONF_KEY_MAX];

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return conf_fail(c, conf_key(key, prefix, name), "expected true or false");
	*out = json_is_true(v);
	return 0;
}

static int conf_typed(struct conf *c, json_t *obj, const char *prefix, const char *name,
		      json_t **out, json_type type, const char *what)
{
	json_t *v = conf_lookup(obj, name);
	char key[CONF_KEY_MAX];

	*out = NULL;
	if (!v)
		return 0;
	if (json_typeof(v) != type)
		return conf_fail(c, conf_key(key, prefix, name), "expected %s", what);
	*out = v;
	return 0;
}

int conf_object(struct conf *c, json_t *obj, const char *prefix, const char *name, json_t **out)
{
	return conf_typed(c, obj, prefix, name, out, JSON_OBJECT, "an object");
}

int conf_array(struct conf *c, json_t *obj, const char *prefix, const char *name, json_t **out)
{
	return conf_typed(c, obj, prefix, name, out, JSON_ARRAY, "an array");
}

int conf_url_dup(const char *url, char **out)
{
	size_t scheme, len;

	if (strncmp(url, "http://", 7) == 0)
		scheme = 7;
	else if (strncmp(url, "https://", 8) == 0)
		scheme = 8;
	else
		return -1;
	for (len = 0; url[len] != '\0'; len++)
		if ((unsigned char)url[len] <= ' ' || url[len] == 0x7f)
			return -1;
	while (len > scheme && url[len - 1] == '/')
		len--;
	if (len == scheme || url[scheme] == '/')
		return -1;
	/* user:password@host would end up in logs; credentials have keys of their own. */
	if (memchr(url + scheme, '@', strcspn(url + scheme, "/")))
		return -1;
	*out = strndup(url, len);
	return *out ? 0 : -1;
}

int conf_url(struct conf *c, json_t *obj, const char *prefix, const char *name, char **out)
{
	const char *url = NULL;
	char key[CONF_KEY_MAX], *copy;

	if (conf_string(c, obj, prefix, name, &url) != 0)
		return -1;
	if (!url)
		return 0;
	if (conf_url_dup(url, &copy) != 0)
		return conf_fail(c, conf_key(key, prefix, name),
				 "expected an http:// or https:// URL");
	free(*out);
	*out = copy;
	return 0;
}

static int conf_key_listed(const char *key, const char *const *keys)
{
	for (; *keys; keys++) {
		if (strcmp(key, *keys) == 0)
			return 1;
	}
	return 0;
}

int conf_known_keys(struct conf *c, json_t *obj, const char *prefix, const char *const *keys)
{
	const char *key;
	char path[256];

	for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
		key = json_object_iter_key(it);
		if (conf_key_listed(key, keys))
			continue;
		if (prefix && prefix[0] != '\0')
			snprintf(path, sizeof(path), "%s.%s", prefix, key);
		else
			snprintf(path, sizeof(path), "%s", key);
		return conf_fail(c, path, "unknown key");
	}
	return 0;
}

void conf_check_private(const char *file, const char *what)
{
	struct stat st;

	if (file && stat(file, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
		log_warn("secret_file_exposed",
			 "file=%s mode=%03o holds=\"%s\" fix=\"chmod 600 %s\"", file,
			 (unsigned)(st.st_mode & 0777), what, file);
}
