/* fuzz_constraints: an app's Marathon "constraints" (scaler/constraint.c), compiled and then
 * matched against an agent. The input is "CONSTRAINTS\nATTRIBUTES\nHOSTNAME": two JSON
 * documents and a name. Beyond not crashing or leaking (regcomp/regexec on hostile expressions):
 * a list that parses matches deterministically, and none at all rules no agent out. */
#include "fuzz.h"

#include "scaler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *attrs_text, *host;
	struct constraints cs;
	json_t *list, *attrs;
	char err[200];

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	attrs_text = strchr(text, '\n');
	host = attrs_text ? strchr(attrs_text + 1, '\n') : NULL;
	if (!host) {
		free(text);
		return 0;
	}
	*attrs_text++ = '\0';
	*host++ = '\0';
	list = json_loads(text, JSON_DECODE_ANY, NULL);
	attrs = json_loads(attrs_text, 0, NULL);
	if (constraints_parse(list, &cs, err, sizeof(err)) == 0) {
		int first = constraints_allow(&cs, host, attrs);

		FUZZ_ASSERT(first == 0 || first == 1);
		FUZZ_ASSERT(constraints_allow(&cs, host, attrs) == first);
		FUZZ_ASSERT(cs.n > 0 || first == 1);
		constraints_free(&cs);
	} else {
		FUZZ_ASSERT(cs.n == 0 && !cs.c && err[0] != '\0');
	}
	json_decref(list);
	json_decref(attrs);
	free(text);
	return 0;
}
