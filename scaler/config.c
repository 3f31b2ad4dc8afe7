/* config: the scaler's settings, from the defaults, then the JSON config.
 *
 *   {"marathon": {"url": "http://127.0.0.1:8080", "username": "", "password": "",
 *                 "token_file": "", "force": false, "timeout_ms": 5000, "resync_ms": 5000,
 *                 "backoff_max_ms": 5000, "events": true},
 *    "mesos": {"url": "http://127.0.0.1:5050", "username": "", "password": "",
 *              "cache_url": "http://{hostname}:5000", "refresh_ms": 5000},
 *    "zookeeper": {"servers": "zk1:2181,zk2:2181", "path": "/microscale/scaler",
 *                  "session_timeout_ms": 10000, "username": "", "password": ""},
 *    "gate": {"unreachable_grace_ms": 10000, "token_file": "", "require_runtime": true},
 *    "caches": ["http://127.0.0.1:5000"], "capacity": 10, "interval_ms": 100,
 *    "listen": "127.0.0.1:9101", "log_level": "info",
 *    "apps": [{"id": "/web", "priority": 1, "min": 1, "max": 20, "max_delta": 5,
 *              "down_cooldown_ms": 2000, "image": "library/web:1",
 *              "demand": {"type": "http", "url": "…", "json_pointer": "/depth",
 *                         "per_instance": 50}}]}
 *
 * "capacity" is a number, or {"task": {"cpus": 0.5, "mem": 256}}: as many such tasks as the
 * active agents' resources hold (needs "mesos"). Unknown keys are errors. Every error names the
 * file, the key (apps[2].demand.url) and the reason. Passwords and tokens never appear in a
 * message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_secret.h"
#include "scaler.h"

#define APPS_MAX 1000
#define PRIORITY_MAX 100

static const char *const top_keys[] = {
    "marathon",	   "mesos",  "zookeeper", "gate", "caches", "capacity",
    "interval_ms", "listen", "log_level", "apps", NULL,
};
static const char *const mesos_keys[] = {
    "url", "username", "password", "password_file", "cache_url", "refresh_ms", NULL,
};
static const char *const gate_keys[] = {"unreachable_grace_ms", "token_file", "require_runtime",
					NULL};
static const char *const task_keys[] = {"cpus", "mem", NULL};
static const char *const zk_keys[] = {
    "servers", "path", "session_timeout_ms", "username", "password", "password_file", NULL,
};
static const char *const marathon_keys[] = {
    "url",	  "username",  "password",	 "password_file", "token_file", "force",
    "timeout_ms", "resync_ms", "backoff_max_ms", "events",	  NULL,
};
static const char *const app_keys[] = {
    "id", "priority", "min", "max", "max_delta", "down_cooldown_ms", "image", "demand", NULL,
};

static int set_str(struct conf *c, const char *key, char **dst, const char *src)
{
	char *p = strdup(src);

	if (!p)
		return conf_fail(c, key, "out of memory");
	free(*dst);
	*dst = p;
	return 0;
}

/* --- marathon --- */

/* username with password or password_file, or a DC/OS token_file: one of the two. The conflict
 * is reported before any file is read. */
static int marathon_auth(struct conf *c, json_t *m, struct marathon_conf *mc)
{
	const char *file = NULL;

	if (conf_secret_userpwd(c, m, "marathon", "the Marathon password", &mc->userpwd) != 0 ||
	    conf_string(c, m, "marathon", "token_file", &file) != 0)
		return -1;
	if (!file || file[0] == '\0')
		return 0;
	if (mc->userpwd)
		return conf_fail(c, "marathon.token_file",
				 "not allowed together with username and password");
	return conf_secret_read(c, "marathon.token_file", file, "the Marathon token", &mc->token);
}

static int load_marathon(struct scaler_conf *sc, struct conf *c)
{
	struct marathon_conf *mc = &sc->marathon;
	long long timeout = mc->timeout_ms, resync = mc->resync_ms, cap = mc->backoff_max_ms;
	json_t *m;

	if (conf_object(c, c->root, NULL, "marathon", &m) != 0)
		return -1;
	if (!m)
		return 0;
	if (conf_known_keys(c, m, "marathon", marathon_keys) != 0 ||
	    conf_url(c, m, "marathon", "url", &mc->url) != 0 ||
	    conf_bool(c, m, "marathon", "force", &mc->force) != 0 ||
	    conf_bool(c, m, "marathon", "events", &mc->events) != 0 ||
	    conf_int(c, m, "marathon", "timeout_ms", 10, 600000, &timeout) != 0 ||
	    conf_int(c, m, "marathon", "resync_ms", 100, 3600000, &resync) != 0 ||
	    conf_int(c, m, "marathon", "backoff_max_ms", 100, 600000, &cap) != 0)
		return -1;
	mc->timeout_ms = (long)timeout;
	mc->resync_ms = (long)resync;
	mc->backoff_max_ms = (long)cap;
	return marathon_auth(c, m, mc);
}

/* --- mesos, gate --- */

static int load_mesos(struct scaler_conf *sc, struct conf *c)
{
	struct mesos_conf *mc = &sc->mesos;
	long long refresh = mc->refresh_ms;
	const char *tmpl = NULL;
	json_t *m;

	if (conf_object(c, c->root, NULL, "mesos", &m) != 0)
		return -1;
	if (!m)
		return 0;
	if (conf_known_keys(c, m, "mesos", mesos_keys) != 0 ||
	    conf_url(c, m, "mesos", "url", &mc->url) != 0 ||
	    conf_string(c, m, "mesos", "cache_url", &tmpl) != 0 ||
	    conf_int(c, m, "mesos", "refresh_ms", 100, 3600000, &refresh) != 0 ||
	    conf_secret_userpwd(c, m, "mesos", "the Mesos password", &mc->userpwd) != 0)
		return -1;
	if (!mc->url)
		return conf_fail(c, "mesos.url", "missing");
	mc->refresh_ms = (long)refresh;
	if (tmpl) {
		char *url;

		if (!strstr(tmpl, "{hostname}"))
			return conf_fail(c, "mesos.cache_url", "must contain {hostname}");
		if (conf_url_dup(tmpl, &url) != 0)
			return conf_fail(c, "mesos.cache_url",
					 "expected an http:// or https:// URL");
		free(mc->cache_url);
		mc->cache_url = url;
	}
	return 0;
}

static int load_gate(struct scaler_conf *sc, struct conf *c)
{
	json_t *g;

	if (conf_object(c, c->root, NULL, "gate", &g) != 0)
		return -1;
	if (!g)
		return 0;
	if (conf_known_keys(c, g, "gate", gate_keys) != 0 ||
	    conf_int(c, g, "gate", "unreachable_grace_ms", 0, 86400000LL, &sc->gate_grace_ms) !=
		0 ||
	    conf_bool(c, g, "gate", "require_runtime", &sc->require_runtime) != 0)
		return -1;
	return conf_secret_file(c, g, "gate", "token_file", "the caches' admin token",
				&sc->cache_token);
}

/* ZooKeeper's node path: absolute, no empty segment, no trailing slash. */
static int zk_path_ok(const char *p)
{
	size_t n = strlen(p);

	return n > 1 && n < 256 && p[0] == '/' && p[n - 1] != '/' && !strstr(p, "//") &&
	       !strpbrk(p, " \t\r\n");
}

/* A list of host:port, as the client library takes it. */
static int zk_servers_ok(const char *s)
{
	return s[0] != '\0' && strlen(s) < 1024 && !strpbrk(s, " \t\r\n/@") && strchr(s, ':');
}

static int load_zookeeper(struct scaler_conf *sc, struct conf *c)
{
	struct zk_conf *zc = &sc->zk;
	const char *servers = NULL, *path = "/microscale/scaler";
	long long timeout = zc->session_timeout_ms;
	json_t *z;

	if (conf_object(c, c->root, NULL, "zookeeper", &z) != 0)
		return -1;
	if (!z)
		return 0;
	if (conf_known_keys(c, z, "zookeeper", zk_keys) != 0 ||
	    conf_string(c, z, "zookeeper", "servers", &servers) != 0 ||
	    conf_string(c, z, "zookeeper", "path", &path) != 0 ||
	    conf_int(c, z, "zookeeper", "session_timeout_ms", 1000, 600000, &timeout) != 0 ||
	    conf_secret_userpwd(c, z, "zookeeper", "the ZooKeeper password", &zc->auth) != 0)
		return -1;
	if (!servers)
		return conf_fail(c, "zookeeper.servers", "missing");
	if (!zk_servers_ok(servers))
		return conf_fail(c, "zookeeper.servers", "expected host:port[,host:port…]");
	if (!zk_path_ok(path))
		return conf_fail(c, "zookeeper.path",
				 "expected an absolute path like /microscale/scaler");
	zc->session_timeout_ms = (long)timeout;
	if (set_str(c, "zookeeper.servers", &zc->servers, servers) != 0 ||
	    set_str(c, "zookeeper.path", &zc->path, path) != 0)
		return -1;
	/* A call the old leader sent at the end of its lease (a third of the timeout before anyone
	 * else may lead) lands or fails within marathon.timeout_ms. */
	zc->settle_ms = sc->marathon.timeout_ms - zc->session_timeout_ms / 3;
	if (zc->settle_ms < 0)
		zc->settle_ms = 0;
	return 0;
}

/* "capacity": a number, or {"task": {"cpus": C, "mem": M}} when the fleet tells. */
static int load_capacity(struct scaler_conf *sc, struct conf *c)
{
	json_t *v = conf_lookup(c->root, "capacity"), *task;

	if (!v)
		return conf_fail(c, "capacity", "missing");
	if (!json_is_object(v))
		return conf_int(c, c->root, NULL, "capacity", 1, SCALER_INSTANCES_MAX,
				&sc->capacity);
	if (conf_known_keys(c, v, "capacity", (const char *const[]){"task", NULL}) != 0 ||
	    conf_object(c, v, "capacity", "task", &task) != 0)
		return -1;
	if (!task)
		return conf_fail(c, "capacity", "expected a number or {\"task\": {…}}");
	if (conf_known_keys(c, task, "capacity.task", task_keys) != 0 ||
	    conf_number(c, task, "capacity.task", "cpus", 0, 1e6, &sc->task_cpus) != 0 ||
	    conf_number(c, task, "capacity.task", "mem", 0, 1e12, &sc->task_mem) != 0)
		return -1;
	if (sc->task_cpus <= 0 && sc->task_mem <= 0)
		return conf_fail(c, "capacity.task", "needs cpus or mem above 0");
	if (!sc->mesos.url)
		return conf_fail(c, "capacity.task", "needs \"mesos\": the fleet's resources");
	sc->capacity = 0;
	return 0;
}

/* The most an app's min may be: the fixed capacity, or any when the fleet tells. */
static long long capacity_bound(const struct scaler_conf *sc)
{
	return sc->capacity > 0 ? sc->capacity : SCALER_INSTANCES_MAX;
}

/* --- caches --- */

static int load_caches(struct scaler_conf *sc, struct conf *c)
{
	json_t *arr, *v;
	char key[CONF_KEY_MAX];
	size_t i;

	if (conf_array(c, c->root, NULL, "caches", &arr) != 0)
		return -1;
	if (!arr || json_array_size(arr) == 0)
		return 0;
	sc->caches = calloc(json_array_size(arr), sizeof(*sc->caches));
	if (!sc->caches)
		return conf_fail(c, "caches", "out of memory");
	json_array_foreach(arr, i, v)
	{
		snprintf(key, sizeof(key), "caches[%zu]", i);
		if (!json_is_string(v) || conf_url_dup(json_string_value(v), &sc->caches[i]) != 0)
			return conf_fail(c, key, "expected an http:// or https:// URL");
		sc->ncaches++;
		for (size_t k = 0; k < i; k++) {
			if (strcmp(sc->caches[k], sc->caches[i]) == 0)
				return conf_fail(c, key, "listed twice");
		}
	}
	return 0;
}

/* --- apps --- */

/* Marathon's id grammar, absolute: "/" then segments of [a-z0-9.-], each starting and ending
 * with a letter or digit ("/prod/web"). Also what keeps an id safe in a URL path. */
static int app_id_valid(const char *id)
{
	size_t seg = 0;
	char prev = '/';

	if (id[0] != '/' || id[1] == '\0' || strlen(id) > 512)
		return 0;
	for (const char *p = id + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			if (seg == 0 || prev == '-' || prev == '.')
				return 0;
			if (*p == '\0')
				return 1;
			seg = 0;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			   ((*p == '-' || *p == '.') && seg > 0)) {
			seg++;
		} else {
			return 0;
		}
		prev = *p;
	}
}

static void app_free(struct app_conf *a)
{
	free(a->id);
	free(a->image);
	demand_conf_free(&a->demand);
}

static int load_app_bounds(struct scaler_conf *sc, struct conf *c, json_t *v, const char *prefix,
			   struct app_conf *a)
{
	long long prio = 1;
	char key[CONF_KEY_MAX];

	a->min = 0;
	a->max = capacity_bound(sc);
	if (conf_int(c, v, prefix, "priority", 1, PRIORITY_MAX, &prio) != 0 ||
	    conf_int(c, v, prefix, "min", 0, capacity_bound(sc), &a->min) != 0 ||
	    conf_int(c, v, prefix, "max", 0, SCALER_INSTANCES_MAX, &a->max) != 0 ||
	    conf_int(c, v, prefix, "max_delta", 0, SCALER_INSTANCES_MAX, &a->max_delta) != 0 ||
	    conf_int(c, v, prefix, "down_cooldown_ms", 0, 86400000LL, &a->down_cooldown_ms) != 0)
		return -1;
	a->priority = (int)prio;
	if (a->max < a->min)
		return conf_fail(c, conf_key(key, prefix, "max"), "must be at least min (%lld)",
				 a->min);
	return 0;
}

static int load_app(struct scaler_conf *sc, struct conf *c, size_t idx, json_t *v)
{
	struct app_conf *a = &sc->apps[idx];
	const char *id = NULL, *image = NULL;
	char prefix[64], key[CONF_KEY_MAX];
	json_t *demand;

	snprintf(prefix, sizeof(prefix), "apps[%zu]", idx);
	if (!json_is_object(v))
		return conf_fail(c, prefix, "expected an object");
	if (conf_known_keys(c, v, prefix, app_keys) != 0 ||
	    conf_string(c, v, prefix, "id", &id) != 0 ||
	    conf_string(c, v, prefix, "image", &image) != 0)
		return -1;
	if (!id)
		return conf_fail(c, conf_key(key, prefix, "id"), "missing");
	if (!app_id_valid(id))
		return conf_fail(c, conf_key(key, prefix, "id"),
				 "\"%s\" is not an absolute Marathon app id like /group/app", id);
	for (size_t k = 0; k < idx; k++) {
		if (strcmp(sc->apps[k].id, id) == 0)
			return conf_fail(c, conf_key(key, prefix, "id"), "%s is listed twice", id);
	}
	if (set_str(c, prefix, &a->id, id) != 0)
		return -1;
	if (image && image[0] == '\0')
		return conf_fail(c, conf_key(key, prefix, "image"), "must not be empty");
	if (image && set_str(c, prefix, &a->image, image) != 0)
		return -1;
	if (load_app_bounds(sc, c, v, prefix, a) != 0)
		return -1;
	demand = json_object_get(v, "demand");
	conf_key(key, prefix, "demand");
	if (!demand)
		return conf_fail(c, key, "missing");
	if (!json_is_object(demand))
		return conf_fail(c, key, "expected an object");
	return demand_conf_parse(c, demand, key, a->min, a->max, &a->demand);
}

static int load_apps(struct scaler_conf *sc, struct conf *c)
{
	long long mins = 0;
	json_t *arr, *v;
	size_t i;

	if (conf_array(c, c->root, NULL, "apps", &arr) != 0)
		return -1;
	if (!arr || json_array_size(arr) == 0)
		return conf_fail(c, "apps", "expected at least one app");
	if (json_array_size(arr) > APPS_MAX)
		return conf_fail(c, "apps", "at most %d apps", APPS_MAX);
	sc->apps = calloc(json_array_size(arr), sizeof(*sc->apps));
	if (!sc->apps)
		return conf_fail(c, "apps", "out of memory");
	json_array_foreach(arr, i, v)
	{
		sc->napps++;
		if (load_app(sc, c, i, v) != 0)
			return -1;
		mins += sc->apps[i].min;
	}
	if (sc->capacity > 0 && mins > sc->capacity)
		return conf_fail(c, "capacity", "the apps' min add up to %lld, more than %lld",
				 mins, sc->capacity);
	return 0;
}

/* --- the whole --- */

static int set_defaults(struct scaler_conf *sc, struct conf *c)
{
	memset(sc, 0, sizeof(*sc));
	sc->marathon.timeout_ms = 5000;
	sc->marathon.resync_ms = 5000;
	sc->marathon.backoff_max_ms = 5000;
	sc->marathon.events = 1;
	sc->interval_ms = 100;
	sc->log_level = LOG_INFO;
	sc->mesos.refresh_ms = 5000;
	sc->gate_grace_ms = 10000;
	sc->require_runtime = -1;
	sc->zk.session_timeout_ms = 10000;
	if (set_str(c, "marathon.url", &sc->marathon.url, "http://127.0.0.1:8080") != 0 ||
	    set_str(c, "mesos.cache_url", &sc->mesos.cache_url, "http://{hostname}:5000") != 0 ||
	    set_str(c, "listen", &sc->listen, "127.0.0.1:9101") != 0)
		return -1;
	return 0;
}

int scaler_conf_load(struct scaler_conf *sc, struct conf *c)
{
	const char *listen = NULL, *level = NULL;
	long long interval = 100;

	if (set_defaults(sc, c) != 0)
		return -1;
	if (conf_known_keys(c, c->root, NULL, top_keys) != 0 ||
	    conf_string(c, c->root, NULL, "listen", &listen) != 0 ||
	    conf_string(c, c->root, NULL, "log_level", &level) != 0 ||
	    conf_int(c, c->root, NULL, "interval_ms", 10, 60000, &interval) != 0)
		return -1;
	sc->interval_ms = (long)interval;
	if (level && log_level_parse(level, &sc->log_level) < 0)
		return conf_fail(c, "log_level", "expected debug, info, warn or error");
	if (listen && set_str(c, "listen", &sc->listen, listen) != 0)
		return -1;
	if (load_marathon(sc, c) != 0 || load_mesos(sc, c) != 0 || load_zookeeper(sc, c) != 0 ||
	    load_gate(sc, c) != 0 || load_capacity(sc, c) != 0 || load_caches(sc, c) != 0)
		return -1;
	return load_apps(sc, c);
}

void scaler_conf_free(struct scaler_conf *sc)
{
	free(sc->marathon.url);
	conf_secret_free(sc->marathon.userpwd);
	conf_secret_free(sc->marathon.token);
	free(sc->mesos.url);
	conf_secret_free(sc->mesos.userpwd);
	free(sc->mesos.cache_url);
	conf_secret_free(sc->cache_token);
	free(sc->zk.servers);
	free(sc->zk.path);
	conf_secret_free(sc->zk.auth);
	for (size_t i = 0; i < sc->ncaches; i++)
		free(sc->caches[i]);
	free(sc->caches);
	for (size_t i = 0; i < sc->napps; i++)
		app_free(&sc->apps[i]);
	free(sc->apps);
	free(sc->listen);
	memset(sc, 0, sizeof(*sc));
}
