/* config: the registry's settings, from the defaults, then the JSON config, then flags.
 *
 *   {"listen": "127.0.0.1:5000", "root": "/var/lib/microscale", "log_level": "info",
 *    "tag_ttl_s": 60,
 *    "upstreams": {"docker.io": {"url": "https://registry-1.docker.io",
 *                                "credentials_file": "/etc/microscale/hub",
 *                                "auth_realms": ["https://auth.docker.io/token"],
 *                                "max_concurrent": 32, "max_queued": 1024,
 *                                "miss_ttl_s": 5}},
 *    "http": {"max_connections": 1024, "header_timeout_s": 10, …},
 *    "fetch": {"connect_timeout_ms": 10000, "low_speed_time_s": 30, "retries": 3},
 *    "runtime": {"docker_socket": "/var/run/docker.sock", "parallel": 2}}
 *
 * Every error names the file, the key and the reason. Passwords never appear in a message. */
#include <limits.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf_secret.h"
#include "registry.h"
#include "ref.h"

#define DOCKER_HUB "docker.io"
#define DOCKER_HUB_URL "https://registry-1.docker.io"
#define DOCKER_HUB_AUTH "https://auth.docker.io/token" /* where Docker Hub's tokens come from */
#define UPSTREAM_MAX_CONCURRENT 32
#define UPSTREAM_MAX_QUEUED 1024
#define UPSTREAM_MISS_TTL_S 5
#define AUTH_REALMS_MAX 16
#define KEY_PATH_MAX 320 /* "upstreams." + host[:port] + "." + member */

static const char *const top_keys[] = {
    "listen", "root",  "log_level", "tag_ttl_s",   "upstreams", "runtime",
    "http",   "fetch", "prewarm",   "admin_token", "store",	NULL,
};
static const char *const prewarm_keys[] = {
    "list", "interval_s", "parallel", "platforms", "max_requested", "request_attempts", NULL,
};
static const char *const store_keys[] = {"max_bytes", NULL};
static const char *const runtime_keys[] = {"docker_socket", "parallel", NULL};
static const char *const upstream_keys[] = {
    "url",     "username",    "password",	"password_file", "credentials_file", "insecure_tls",
    "ca_file", "auth_realms", "max_concurrent", "max_queued",	 "miss_ttl_s",	     NULL,
};
static const char *const http_keys[] = {
    "max_connections", "max_header_bytes", "header_timeout_s",
    "idle_timeout_s",  "send_timeout_s",   NULL,
};
static const char *const fetch_keys[] = {
    "connect_timeout_ms",
    "low_speed_time_s",
    "retries",
    NULL,
};

/* --- helpers --- */

/* Replaces *dst by a copy of src. */
static int set_str(char **dst, const char *src)
{
	char *p = strdup(src);

	if (!p)
		return -1;
	free(*dst);
	*dst = p;
	return 0;
}

static struct upstream_conf *uconf_find(struct registry_conf *rc, const char *host)
{
	for (size_t i = 0; i < rc->nupstreams; i++) {
		if (strcasecmp(rc->upstreams[i].host, host) == 0)
			return &rc->upstreams[i];
	}
	return NULL;
}

static void realms_free(char **list)
{
	for (size_t i = 0; list && list[i]; i++)
		free(list[i]);
	free(list);
}

/* Docker Hub's tokens come from another host than its registry: without that host on the list,
 * its credentials (and its pull allowance for them) would never be used. */
static int hub_realms(struct upstream_conf *u)
{
	if (strcmp(u->host, DOCKER_HUB) != 0)
		return 0;
	u->auth_realms = calloc(2, sizeof(*u->auth_realms));
	if (!u->auth_realms || !(u->auth_realms[0] = strdup(DOCKER_HUB_AUTH)))
		return -1;
	return 0;
}

static struct upstream_conf *uconf_add(struct registry_conf *rc, const char *host)
{
	struct upstream_conf *u;

	u = realloc(rc->upstreams, (rc->nupstreams + 1) * sizeof(*u));
	if (!u)
		return NULL;
	rc->upstreams = u;
	u += rc->nupstreams;
	memset(u, 0, sizeof(*u));
	u->host = strdup(host);
	if (!u->host)
		return NULL;
	/* Host names are case-insensitive: one spelling, so that "Docker.IO" is Docker Hub and
	 * the store's paths never split a registry in two. */
	for (char *p = u->host; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	rc->nupstreams++;
	u->max_concurrent = UPSTREAM_MAX_CONCURRENT;
	u->max_queued = UPSTREAM_MAX_QUEUED;
	u->miss_ttl_s = UPSTREAM_MISS_TTL_S;
	return hub_realms(u) == 0 ? u : NULL;
}

static void uconf_free(struct upstream_conf *u)
{
	free(u->host);
	free(u->url);
	conf_secret_free(u->userpwd);
	free(u->ca_file);
	realms_free(u->auth_realms);
}

/* "PREFIX.NAME". A valid host keeps it well inside KEY_PATH_MAX; an invalid one is only
 * named in a message, where a cut-off name does no harm. */
static char *member_key(char out[KEY_PATH_MAX], const char *prefix, const char *name)
{
	if (snprintf(out, KEY_PATH_MAX, "%s.%s", prefix, name) >= KEY_PATH_MAX)
		out[KEY_PATH_MAX - 1] = '\0';
	return out;
}

/* --- upstreams --- */

/* username with password or password_file (shared/conf_secret.c), or a credentials_file whose
 * first line is user:password. */
static int upstream_auth(struct conf *c, json_t *v, const char *prefix, struct upstream_conf *u)
{
	char key[KEY_PATH_MAX], *line = NULL, *colon;
	const char *file = NULL;
	int rc;

	member_key(key, prefix, "credentials_file");
	if (conf_secret_userpwd(c, v, prefix, "an upstream password", &u->userpwd) != 0 ||
	    conf_string(c, v, prefix, "credentials_file", &file) != 0)
		return -1;
	if (!file || file[0] == '\0')
		return 0;
	if (u->userpwd)
		return conf_fail(c, key, "not allowed together with username and password");
	if (conf_secret_read(c, key, file, "upstream credentials", &line) != 0)
		return -1;
	colon = strchr(line, ':');
	if (!colon) {
		rc = conf_fail(c, key, "%s: expected user:password on the first line", file);
	} else {
		*colon = '\0';
		rc = conf_secret_pair(c, key, line, colon + 1, &u->userpwd);
		*colon = ':'; /* so that all of it is wiped */
	}
	conf_secret_free(line);
	return rc;
}

static int upstream_url(struct conf *c, const char *prefix, struct upstream_conf *u)
{
	char key[KEY_PATH_MAX], def[KEY_PATH_MAX];
	const char *url = NULL;

	/* Without a url, a registry is served at its own name; Docker Hub is the exception. */
	if (strcasecmp(u->host, DOCKER_HUB) == 0)
		snprintf(def, sizeof(def), "%s", DOCKER_HUB_URL);
	else
		snprintf(def, sizeof(def), "https://%s", u->host);
	member_key(key, prefix, "url");
	if (conf_string(c, c->root, NULL, key, &url) != 0)
		return -1;
	if (conf_url_dup(url ? url : def, &u->url) != 0)
		return conf_fail(c, key, "expected an http:// or https:// URL");
	return 0;
}

/* ca_file: read at load, so that a wrong path stops the start-up, not the first pull. */
static int upstream_ca(struct conf *c, const char *prefix, struct upstream_conf *u)
{
	char key[KEY_PATH_MAX];
	const char *ca = NULL;

	member_key(key, prefix, "ca_file");
	if (conf_string(c, c->root, NULL, key, &ca) != 0)
		return -1;
	if (!ca)
		return 0;
	if (access(ca, R_OK) != 0)
		return conf_fail(c, key, "cannot read %s: %s", ca, strerror(errno));
	if (set_str(&u->ca_file, ca) != 0)
		return conf_fail(c, key, "out of memory");
	return 0;
}

/* auth_realms: URLs whose realms may get the credentials too; checked against the url (read
 * before), so that an https:// upstream cannot list a plain http:// realm. */
static int upstream_realms(struct conf *c, const char *prefix, struct upstream_conf *u)
{
	char key[KEY_PATH_MAX], why[128];
	json_t *list;
	size_t i, n;

	member_key(key, prefix, "auth_realms");
	if (conf_array(c, c->root, NULL, key, &list) != 0)
		return -1;
	if (!list)
		return 0;
	n = json_array_size(list);
	if (n > AUTH_REALMS_MAX)
		return conf_fail(c, key, "at most %d realms", AUTH_REALMS_MAX);
	realms_free(u->auth_realms);
	u->auth_realms = calloc(n + 1, sizeof(*u->auth_realms));
	if (!u->auth_realms)
		return conf_fail(c, key, "out of memory");
	for (i = 0; i < n; i++) {
		const char *v = json_string_value(json_array_get(list, i));

		if (!v || realm_entry_check(u->url, v, why, sizeof(why)) < 0)
			return conf_fail(c, key, "entry %zu: %s", i,
					 v ? why : "expected a URL string");
		if (!(u->auth_realms[i] = strdup(v)))
			return conf_fail(c, key, "out of memory");
	}
	return 0;
}

/* What the upstream is asked at once, how many may wait, how long a miss is remembered. */
static int upstream_limits(struct conf *c, const char *prefix, struct upstream_conf *u)
{
	long long conc = u->max_concurrent, queued = u->max_queued, ttl = u->miss_ttl_s;
	char key[3][KEY_PATH_MAX];

	if (conf_int(c, c->root, NULL, member_key(key[0], prefix, "max_concurrent"), 1, 1024,
		     &conc) != 0 ||
	    conf_int(c, c->root, NULL, member_key(key[1], prefix, "max_queued"), 0, 100000,
		     &queued) != 0 ||
	    conf_int(c, c->root, NULL, member_key(key[2], prefix, "miss_ttl_s"), 0, 3600, &ttl) !=
		0)
		return -1;
	u->max_concurrent = (int)conc;
	u->max_queued = (int)queued;
	u->miss_ttl_s = (long)ttl;
	return 0;
}

static int load_upstream(struct registry_conf *rc, struct conf *c, const char *host, json_t *v)
{
	char prefix[KEY_PATH_MAX], key[KEY_PATH_MAX];
	struct upstream_conf *u;

	member_key(prefix, "upstreams", host);
	if (!ref_host_valid(host))
		return conf_fail(c, prefix, "not a valid registry host[:port]");
	if (!json_is_object(v))
		return conf_fail(c, prefix, "expected an object");
	if (uconf_find(rc, host))
		return conf_fail(c, prefix, "configured twice");
	if (conf_known_keys(c, v, prefix, upstream_keys) != 0)
		return -1;
	u = uconf_add(rc, host);
	if (!u)
		return conf_fail(c, prefix, "out of memory");
	member_key(key, prefix, "insecure_tls");
	if (upstream_url(c, prefix, u) != 0 ||
	    conf_bool(c, c->root, NULL, key, &u->insecure_tls) != 0 ||
	    upstream_ca(c, prefix, u) != 0 || upstream_realms(c, prefix, u) != 0 ||
	    upstream_limits(c, prefix, u) != 0)
		return -1;
	return upstream_auth(c, v, prefix, u);
}

static int load_upstreams(struct registry_conf *rc, struct conf *c)
{
	json_t *ups;

	if (conf_object(c, c->root, NULL, "upstreams", &ups) != 0)
		return -1;
	for (void *it = json_object_iter(ups); it; it = json_object_iter_next(ups, it)) {
		if (load_upstream(rc, c, json_object_iter_key(it), json_object_iter_value(it)) != 0)
			return -1;
	}
	/* Docker Hub is always there; a configured "docker.io" replaces the default one. */
	if (uconf_find(rc, DOCKER_HUB))
		return 0;
	if (registry_conf_set_upstream(rc, DOCKER_HUB_URL) != 0)
		return conf_fail(c, "upstreams", "out of memory");
	return 0;
}

/* --- top level, http, fetch --- */

/* A non-empty string at KEY replaces *dst. */
static int load_nonempty(struct conf *c, const char *key, char **dst)
{
	const char *s = NULL;

	if (conf_string(c, c->root, NULL, key, &s) != 0)
		return -1;
	if (!s)
		return 0;
	if (s[0] == '\0')
		return conf_fail(c, key, "must not be empty");
	if (set_str(dst, s) != 0)
		return conf_fail(c, key, "out of memory");
	return 0;
}

static int load_top(struct registry_conf *rc, struct conf *c)
{
	const char *level = NULL;
	long long ttl = rc->tag_ttl_s;

	if (conf_known_keys(c, c->root, NULL, top_keys) != 0 ||
	    load_nonempty(c, "listen", &rc->listen) != 0 ||
	    load_nonempty(c, "root", &rc->root) != 0 ||
	    conf_string(c, c->root, NULL, "log_level", &level) != 0 ||
	    conf_int(c, c->root, NULL, "tag_ttl_s", 0, 86400LL * 365, &ttl) != 0)
		return -1;
	if (level && log_level_parse(level, &rc->log_level) != 0)
		return conf_fail(c, "log_level", "must be one of debug, info, warn, error");
	rc->tag_ttl_s = (long)ttl;
	return 0;
}

/* Whole seconds into a double, left alone when absent. */
static int load_seconds(struct conf *c, const char *key, double *out)
{
	long long s = -1;

	if (conf_int(c, c->root, NULL, key, 1, 3600, &s) != 0)
		return -1;
	if (s >= 0)
		*out = (double)s;
	return 0;
}

static int load_http(struct registry_conf *rc, struct conf *c)
{
	long long conns = rc->http.max_conns, head = (long long)rc->http.max_head_bytes;
	json_t *o;

	if (conf_object(c, c->root, NULL, "http", &o) != 0)
		return -1;
	if (!o)
		return 0;
	if (conf_known_keys(c, o, "http", http_keys) != 0 ||
	    conf_int(c, c->root, NULL, "http.max_connections", 1, 100000, &conns) != 0 ||
	    conf_int(c, c->root, NULL, "http.max_header_bytes", 1024, 1048576, &head) != 0 ||
	    load_seconds(c, "http.header_timeout_s", &rc->http.head_timeout_s) != 0 ||
	    load_seconds(c, "http.idle_timeout_s", &rc->http.idle_timeout_s) != 0 ||
	    load_seconds(c, "http.send_timeout_s", &rc->http.send_timeout_s) != 0)
		return -1;
	rc->http.max_conns = (unsigned)conns;
	rc->http.max_head_bytes = (size_t)head;
	return 0;
}

static int load_fetch(struct registry_conf *rc, struct conf *c)
{
	long long connect = rc->connect_timeout_ms, low = rc->low_speed_time_s;
	long long retries = rc->retries;
	json_t *o;

	if (conf_object(c, c->root, NULL, "fetch", &o) != 0)
		return -1;
	if (!o)
		return 0;
	if (conf_known_keys(c, o, "fetch", fetch_keys) != 0 ||
	    conf_int(c, c->root, NULL, "fetch.connect_timeout_ms", 100, 600000, &connect) != 0 ||
	    conf_int(c, c->root, NULL, "fetch.low_speed_time_s", 1, 3600, &low) != 0 ||
	    conf_int(c, c->root, NULL, "fetch.retries", 0, 10, &retries) != 0)
		return -1;
	rc->connect_timeout_ms = (long)connect;
	rc->low_speed_time_s = (long)low;
	rc->retries = (int)retries;
	return 0;
}

/* prewarm.platforms: ["linux/amd64", "linux/arm64/v8"]; default this node's. */
static int load_platforms(struct registry_conf *rc, struct conf *c, json_t *o)
{
	json_t *list;
	size_t i, n;

	if (conf_array(c, o, NULL, "platforms", &list) != 0)
		return -1;
	n = list ? json_array_size(list) : 1;
	if (n == 0 || n > 16)
		return conf_fail(c, "prewarm.platforms", "expected 1 to 16 platforms");
	rc->platforms = calloc(n + 1, sizeof(*rc->platforms));
	if (!rc->platforms)
		return conf_fail(c, "prewarm.platforms", "out of memory");
	for (i = 0; i < n; i++) {
		const char *v =
		    list ? json_string_value(json_array_get(list, i)) : image_node_platform();

		if (!v || !image_platform_valid(v))
			return conf_fail(c, "prewarm.platforms",
					 "entry %zu: expected os/arch[/variant]", i);
		if (!(rc->platforms[i] = strdup(v)))
			return conf_fail(c, "prewarm.platforms", "out of memory");
	}
	return 0;
}

static int load_prewarm(struct registry_conf *rc, struct conf *c)
{
	long long interval = rc->prewarm_interval_s, parallel = rc->prewarm_parallel;
	long long requested = rc->prewarm_max_requested, attempts = rc->prewarm_request_attempts;
	const char *list = NULL;
	json_t *o;

	if (conf_object(c, c->root, NULL, "prewarm", &o) != 0 ||
	    (o && conf_known_keys(c, o, "prewarm", prewarm_keys) != 0) ||
	    conf_string(c, c->root, NULL, "prewarm.list", &list) != 0 ||
	    conf_int(c, c->root, NULL, "prewarm.interval_s", 10, 86400 * 7, &interval) != 0 ||
	    conf_int(c, c->root, NULL, "prewarm.parallel", 1, 64, &parallel) != 0 ||
	    conf_int(c, c->root, NULL, "prewarm.max_requested", 1, 65536, &requested) != 0 ||
	    conf_int(c, c->root, NULL, "prewarm.request_attempts", 1, 100, &attempts) != 0 ||
	    load_platforms(rc, c, o) != 0)
		return -1;
	if (list && set_str(&rc->prewarm_list, list) != 0)
		return conf_fail(c, "prewarm.list", "out of memory");
	rc->prewarm_interval_s = (long)interval;
	rc->prewarm_parallel = (int)parallel;
	rc->prewarm_max_requested = (int)requested;
	rc->prewarm_request_attempts = (int)attempts;
	return 0;
}

/* store.max_bytes (0 or absent: 80% of the file system's free space at start) and the admin
 * token that opens the control API to peers other than loopback. */
static int load_store(struct registry_conf *rc, struct conf *c)
{
	long long max = 0;
	const char *token = NULL;
	json_t *o;

	if (conf_object(c, c->root, NULL, "store", &o) != 0 ||
	    (o && conf_known_keys(c, o, "store", store_keys) != 0) ||
	    conf_int(c, c->root, NULL, "store.max_bytes", 0, LLONG_MAX, &max) != 0 ||
	    conf_string(c, c->root, NULL, "admin_token", &token) != 0)
		return -1;
	if (token)
		conf_check_private(c->file, "the admin token");
	if (token && strlen(token) < 16)
		return conf_fail(c, "admin_token", "too short: use at least 16 characters");
	if (token && set_str(&rc->admin_token, token) != 0)
		return conf_fail(c, "admin_token", "out of memory");
	rc->store_max_bytes = max;
	return 0;
}

/* runtime.docker_socket: off when absent. Only its form is checked here: dockerd may well start
 * after the cache (the unit orders the cache first), and a socket that is not there yet is the
 * runtime's to report, not a reason to refuse to start. */
static int load_runtime(struct registry_conf *rc, struct conf *c)
{
	long long parallel = rc->runtime_parallel;
	const char *sock = NULL;
	json_t *o;

	if (conf_object(c, c->root, NULL, "runtime", &o) != 0 ||
	    (o && conf_known_keys(c, o, "runtime", runtime_keys) != 0) ||
	    conf_string(c, c->root, NULL, "runtime.docker_socket", &sock) != 0 ||
	    conf_int(c, c->root, NULL, "runtime.parallel", 1, 16, &parallel) != 0)
		return -1;
	rc->runtime_parallel = (int)parallel;
	if (!sock)
		return 0;
	if (sock[0] != '/')
		return conf_fail(c, "runtime.docker_socket", "must be an absolute path");
	/* sockaddr_un.sun_path holds 108 bytes with the NUL */
	if (strlen(sock) > 107)
		return conf_fail(c, "runtime.docker_socket",
				 "longer than 107 bytes, the limit of a unix socket path");
	if (set_str(&rc->docker_socket, sock) != 0)
		return conf_fail(c, "runtime.docker_socket", "out of memory");
	return 0;
}

static int load_defaults(struct registry_conf *rc)
{
	memset(rc, 0, sizeof(*rc));
	rc->log_level = LOG_INFO;
	rc->tag_ttl_s = 60;
	httpd_opts_default(&rc->http);
	rc->connect_timeout_ms = 10000;
	rc->low_speed_time_s = 30;
	rc->retries = 3;
	rc->prewarm_interval_s = 300;
	rc->prewarm_parallel = 4;
	rc->prewarm_max_requested = 256;
	rc->prewarm_request_attempts = 5;
	rc->runtime_parallel = 2;
	rc->listen = strdup("127.0.0.1:5000");
	rc->root = strdup("/var/lib/microscale");
	return rc->listen && rc->root ? 0 : -1;
}

/* --- the interface --- */

int registry_conf_load(struct registry_conf *rc, struct conf *c)
{
	if (load_defaults(rc) != 0) {
		conf_fail(c, "(defaults)", "out of memory");
		goto fail;
	}
	if (load_top(rc, c) != 0 || load_http(rc, c) != 0 || load_fetch(rc, c) != 0 ||
	    load_upstreams(rc, c) != 0 || load_prewarm(rc, c) != 0 || load_store(rc, c) != 0 ||
	    load_runtime(rc, c) != 0)
		goto fail;
	return 0;
fail:
	registry_conf_free(rc);
	return -1;
}

int registry_conf_set_prewarm(struct registry_conf *rc, const char *file)
{
	return set_str(&rc->prewarm_list, file);
}

int registry_conf_set_upstream(struct registry_conf *rc, const char *url)
{
	struct upstream_conf *u = uconf_find(rc, DOCKER_HUB);
	char *copy;

	if (conf_url_dup(url, &copy) != 0)
		return -1;
	if (!u)
		u = uconf_add(rc, DOCKER_HUB);
	if (!u) {
		free(copy);
		return -1;
	}
	free(u->url);
	u->url = copy;
	return 0;
}

/* Frees what load allocated and zeroes rc, so a second call does nothing. */
void registry_conf_free(struct registry_conf *rc)
{
	for (size_t i = 0; i < rc->nupstreams; i++)
		uconf_free(&rc->upstreams[i]);
	free(rc->upstreams);
	for (size_t i = 0; rc->platforms && rc->platforms[i]; i++)
		free(rc->platforms[i]);
	free(rc->platforms);
	free(rc->prewarm_list);
	conf_secret_free(rc->admin_token);
	free(rc->docker_socket);
	free(rc->listen);
	free(rc->root);
	memset(rc, 0, sizeof(*rc));
}
