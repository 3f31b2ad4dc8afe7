/* fuzz_registry_conf: the cache's JSON config file (shared/conf.c's conf_load, then
 * registry/config.c's registry_conf_load), from a memory file. Beyond not crashing or leaking: a
 * refused config names the file in its error, an accepted one has what the daemon relies on
 * (a listen address and root, a docker.io upstream, every upstream a valid host with an http(s)
 * URL and credentials that are a user and a password or none, 1 to 16 valid platforms, limits
 * within their documented ranges). */
#include "fuzz.h"

#include "registry.h"

static void check(const struct registry_conf *rc)
{
	int hub = 0;

	FUZZ_ASSERT(rc->listen && rc->listen[0] != '\0');
	FUZZ_ASSERT(rc->root && rc->root[0] != '\0');
	for (size_t i = 0; i < rc->nupstreams; i++) {
		const struct upstream_conf *u = &rc->upstreams[i];

		hub |= strcmp(u->host, "docker.io") == 0;
		FUZZ_ASSERT(ref_host_valid(u->host) || strcmp(u->host, "docker.io") == 0);
		FUZZ_ASSERT(strncmp(u->url, "http://", 7) == 0 ||
			    strncmp(u->url, "https://", 8) == 0);
		FUZZ_ASSERT(u->url[strlen(u->url) - 1] != '/');
		FUZZ_ASSERT(fuzz_userpwd_ok(u->userpwd));
		for (size_t k = 0; k < i; k++)
			FUZZ_ASSERT(strcmp(rc->upstreams[k].host, u->host) != 0);
	}
	FUZZ_ASSERT(hub);
	FUZZ_ASSERT(rc->platforms && rc->platforms[0]);
	for (size_t i = 0; rc->platforms[i]; i++)
		FUZZ_ASSERT(i < 16 && image_platform_valid(rc->platforms[i]));
	FUZZ_ASSERT(rc->http.max_head_bytes >= 1024 && rc->http.max_head_bytes <= 1048576);
	FUZZ_ASSERT(rc->http.max_conns >= 1 && rc->http.max_conns <= 100000);
	FUZZ_ASSERT(rc->retries >= 0 && rc->retries <= 10);
	FUZZ_ASSERT(rc->tag_ttl_s >= 0 && rc->store_max_bytes >= 0);
	FUZZ_ASSERT(rc->prewarm_parallel >= 1 && rc->prewarm_parallel <= 64);
	FUZZ_ASSERT(!rc->admin_token || strlen(rc->admin_token) >= 16);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct registry_conf rc;
	struct conf c;
	const char *file;

	if (fuzz_input_names_device(data, size))
		return 0;
	file = fuzz_file(data, size);
	if (conf_load(&c, file) != 0) {
		FUZZ_ASSERT(!c.root && strncmp(c.err, file, strlen(file)) == 0);
		return 0;
	}
	if (registry_conf_load(&rc, &c) == 0) {
		check(&rc);
		registry_conf_free(&rc);
	} else {
		FUZZ_ASSERT(strncmp(c.err, file, strlen(file)) == 0 && c.err[strlen(file)] == ':');
		FUZZ_ASSERT(!rc.upstreams && !rc.listen); /* freed on failure */
	}
	conf_free(&c);
	return 0;
}
