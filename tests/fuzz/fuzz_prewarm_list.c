/* fuzz_prewarm_list: the priority image list, one reference per line with optional
 * platform=os/arch[/variant] (registry/prewarm_list.c's prewarm_list_read, on a memory file).
 * Beyond not crashing or leaking: a refused list names the file and line, an accepted one holds
 * only valid references and platforms. */
#include "fuzz.h"

#include "registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *file = fuzz_file(data, size);
	struct prewarm_entry *v = (struct prewarm_entry *)1;
	size_t n = 99;
	char err[512];

	err[0] = '\0';
	if (prewarm_list_read(file, &v, &n, err, sizeof(err)) != 0) {
		FUZZ_ASSERT(!v && n == 0);
		FUZZ_ASSERT(strncmp(err, file, strlen(file)) == 0 && err[strlen(file)] == ':');
		return 0;
	}
	FUZZ_ASSERT(n <= 4096 && (n == 0) == (!v));
	for (size_t i = 0; i < n; i++) {
		const struct image_ref *r = &v[i].ref;

		FUZZ_ASSERT(ref_host_valid(r->registry) &&
			    ref_name_valid(r->repo, strlen(r->repo)));
		FUZZ_ASSERT(r->tag[0] != '\0' || r->digest[0] != '\0');
		FUZZ_ASSERT(v[i].platform[0] == '\0' || image_platform_valid(v[i].platform));
	}
	free(v);
	return 0;
}
