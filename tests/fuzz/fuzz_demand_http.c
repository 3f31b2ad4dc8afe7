/* fuzz_demand_http: the body of the "http" demand source's answer (scaler/demand_http.c's
 * demand_http_value): a bare number, or JSON with the number at a JSON pointer (RFC 6901). Input:
 * one byte choosing the pointer and per_instance, then the body. Beyond not crashing or leaking,
 * an accepted reading is a count in 0..SCALER_INSTANCES_MAX, and a refused one says why. */
#include "fuzz.h"

#include "scaler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const pointers[] = {
	    NULL,    "",   "/depth",	 "/queue/depth", "/a~1b/0",
	    "/m~0n", "/0", "/items/1/n", "/-",		 "/a/b/c/d/e/f/g/h",
	};
	static const double per[] = {1, 50, 1e-9, 0.5, 1e15, 3};
	const char *pointer;
	char err[256];
	long long out = -7;
	int rc;

	if (size < 1)
		return 0;
	pointer = pointers[data[0] % (sizeof(pointers) / sizeof(pointers[0]))];
	err[0] = '\0';
	rc = demand_http_value((const char *)data + 1, size - 1, pointer,
			       per[(data[0] >> 4) % (sizeof(per) / sizeof(per[0]))], &out, err,
			       sizeof(err));
	if (rc == 0)
		FUZZ_ASSERT(out >= 0 && out <= SCALER_INSTANCES_MAX);
	else
		FUZZ_ASSERT(rc == -1 && err[0] != '\0');
	return 0;
}
