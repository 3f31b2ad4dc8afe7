/* fuzz_scaler_conf: the scaler's JSON config file (shared/conf.c's conf_load, then
 * scaler/config.c's scaler_conf_load with every demand source's parser), from a memory file.
 * Beyond not crashing or leaking: a refused config names the file in its error and is still safe
 * to free, an accepted one keeps the promises the scaler relies on (a capacity, apps with
 * absolute ids, min <= max, the sum of mins within the capacity, a demand source each, credentials
 * that are a user and a password or none, never both those and a token). */
#include "fuzz.h"

#include "scaler.h"

static void check(const struct scaler_conf *sc)
{
	long long mins = 0;

	FUZZ_ASSERT(sc->capacity >= 1 && sc->capacity <= SCALER_INSTANCES_MAX);
	FUZZ_ASSERT(sc->marathon.url && sc->listen);
	FUZZ_ASSERT(fuzz_userpwd_ok(sc->marathon.userpwd) && fuzz_userpwd_ok(sc->mesos.userpwd));
	FUZZ_ASSERT(fuzz_userpwd_ok(sc->zk.auth) && !(sc->marathon.userpwd && sc->marathon.token));
	FUZZ_ASSERT(sc->interval_ms >= 10 && sc->interval_ms <= 60000);
	FUZZ_ASSERT(sc->napps >= 1 && sc->apps);
	for (size_t i = 0; i < sc->ncaches; i++)
		FUZZ_ASSERT(strncmp(sc->caches[i], "http", 4) == 0);
	for (size_t i = 0; i < sc->napps; i++) {
		const struct app_conf *a = &sc->apps[i];

		/* safe in a URL path: no "." or ".." segment, no empty one */
		FUZZ_ASSERT(a->id && a->id[0] == '/' && !strstr(a->id, "//"));
		FUZZ_ASSERT(!strstr(a->id, "/.") && a->id[strlen(a->id) - 1] != '/');
		FUZZ_ASSERT(!strpbrk(a->id, "?#% "));
		FUZZ_ASSERT(a->priority >= 1);
		FUZZ_ASSERT(a->min >= 0 && a->min <= a->max && a->max <= SCALER_INSTANCES_MAX);
		FUZZ_ASSERT(!a->image || a->image[0] != '\0');
		FUZZ_ASSERT(a->demand.src);
		mins += a->min;
		for (size_t k = 0; k < i; k++)
			FUZZ_ASSERT(strcmp(sc->apps[k].id, a->id) != 0);
	}
	FUZZ_ASSERT(mins <= sc->capacity);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scaler_conf sc;
	struct conf c;
	const char *file;

	if (fuzz_input_names_device(data, size))
		return 0;
	file = fuzz_file(data, size);
	if (conf_load(&c, file) != 0) {
		FUZZ_ASSERT(!c.root && strncmp(c.err, file, strlen(file)) == 0);
		return 0;
	}
	if (scaler_conf_load(&sc, &c) == 0)
		check(&sc);
	else
		FUZZ_ASSERT(strncmp(c.err, file, strlen(file)) == 0 && c.err[strlen(file)] == ':');
	scaler_conf_free(&sc);
	conf_free(&c);
	return 0;
}
