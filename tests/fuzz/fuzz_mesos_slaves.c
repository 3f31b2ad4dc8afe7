/* fuzz_mesos_slaves: the Mesos master's answer to GET /master/slaves (scaler/mesos.c's
 * mesos_parse_slaves), then what the scaler builds from it: the capacity its resources hold and
 * each active agent's cache URL. A hostile master must not bend that URL: every agent kept has a
 * plain hostname, so the URL is the template's scheme and port around it with no '/', '?', '#'
 * or '@' of the master's. The first byte picks the task size, as a config would. */
#include "fuzz.h"

#include "scaler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char tmpl[] = "http://{hostname}:5000";
	double cpus = size > 0 ? (double)(data[0] % 8) / 4.0 : 0.5;
	struct fleet f;
	size_t skipped;
	char err[300], url[1024];
	long long cap;

	if (size == 0)
		return 0;
	if (mesos_parse_slaves((const char *)data + 1, size - 1, &f, &skipped, err, sizeof(err)) !=
	    0)
		return 0;
	cap = fleet_capacity(&f, cpus, 128);
	FUZZ_ASSERT(cap >= 0 && cap <= SCALER_INSTANCES_MAX);
	for (size_t i = 0; i < f.n; i++) {
		FUZZ_ASSERT(f.agents[i].cpus >= 0 && f.agents[i].mem >= 0);
		FUZZ_ASSERT(json_is_object(f.agents[i].attributes));
		if (fleet_cache_url(tmpl, &f.agents[i], url, sizeof(url)) != 0)
			continue;
		FUZZ_ASSERT(strncmp(url, "http://", 7) == 0);
		FUZZ_ASSERT(!strpbrk(url + 7, "/?#@ "));
		FUZZ_ASSERT(strlen(url) > 12 && strcmp(url + strlen(url) - 5, ":5000") == 0);
	}
	fleet_free(&f);
	return 0;
}
