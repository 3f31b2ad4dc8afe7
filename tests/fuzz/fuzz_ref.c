/* fuzz_ref: image names, tags, registry hosts, digests and whole references (shared/ref.c,
 * shared/digest.c). These strings become file names in the store and URLs upstream, so beyond
 * not crashing every accepted string must hold only what the grammar allows (no "..", no "/"
 * where it could climb, no control bytes), and a parsed reference must print and parse back to
 * itself. */
#include <string.h>

#include "fuzz.h"
#include "digest.h"
#include "ref.h"

static int only(const char *s, const char *set)
{
	return s[strspn(s, set)] == '\0';
}

#define LOWER_ALNUM "abcdefghijklmnopqrstuvwxyz0123456789"
#define ALNUM LOWER_ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

static void check_name(const char *s, size_t len)
{
	if (!ref_name_valid(s, len))
		return;
	FUZZ_ASSERT(len > 0 && len <= REF_NAME_MAX);
	for (size_t i = 0; i < len; i++)
		FUZZ_ASSERT(s[i] != '\0' && strchr(LOWER_ALNUM "._-/", s[i]) != NULL);
	FUZZ_ASSERT(s[0] != '/' && s[len - 1] != '/' && s[0] != '.');
	FUZZ_ASSERT(!memmem(s, len, "//", 2) && !memmem(s, len, "..", 2) &&
		    !memmem(s, len, "/.", 2));
}

static void check_tag(const char *s)
{
	if (!ref_tag_valid(s))
		return;
	FUZZ_ASSERT(strlen(s) >= 1 && strlen(s) <= REF_TAG_MAX);
	FUZZ_ASSERT(only(s, ALNUM "._-") && s[0] != '.' && s[0] != '-');
}

static void check_host(const char *s)
{
	if (!ref_host_valid(s))
		return;
	FUZZ_ASSERT(s[0] != '\0' && strlen(s) <= REF_HOST_MAX + 8);
	FUZZ_ASSERT(only(s, ALNUM ".-:[]"));
	FUZZ_ASSERT(!strstr(s, "..") || s[0] == '[');
}

static void check_digest(const char *s)
{
	int rc = digest_check(s);

	FUZZ_ASSERT(rc == 0 || rc == -1 || rc == -2);
	if (rc == 0) {
		FUZZ_ASSERT(strlen(s) == DIGEST_STR_SIZE - 1 && strncmp(s, "sha256:", 7) == 0);
		FUZZ_ASSERT(only(digest_hex(s), "0123456789abcdef"));
	}
	if (rc == -2)
		FUZZ_ASSERT(strchr(s, ':') != NULL && !strchr(s, '/') && strlen(s) <= 256);
}

static void check_ref(const char *s)
{
	struct image_ref r, again;
	char err[128], out[REF_HOST_MAX + REF_NAME_MAX + REF_TAG_MAX + REF_DIGEST_MAX + 8];
	char err2[128];

	if (ref_parse(s, &r, err, sizeof(err)) != 0) {
		FUZZ_ASSERT(err[0] != '\0');
		return;
	}
	FUZZ_ASSERT(ref_host_valid(r.registry));
	FUZZ_ASSERT(ref_name_valid(r.repo, strlen(r.repo)));
	FUZZ_ASSERT(r.tag[0] != '\0' || r.digest[0] != '\0');
	FUZZ_ASSERT(r.tag[0] == '\0' || ref_tag_valid(r.tag));
	FUZZ_ASSERT(r.digest[0] == '\0' || digest_check(r.digest) == 0);
	FUZZ_ASSERT(strcmp(ref_reference(&r), r.digest[0] ? r.digest : r.tag) == 0);
	FUZZ_ASSERT(ref_format(&r, out, sizeof(out)) == 0);
	/* The canonical form parses back to the same reference. */
	FUZZ_ASSERT(ref_parse(out, &again, err2, sizeof(err2)) == 0);
	FUZZ_ASSERT(strcmp(r.registry, again.registry) == 0 && strcmp(r.repo, again.repo) == 0 &&
		    strcmp(r.tag, again.tag) == 0 && strcmp(r.digest, again.digest) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *exact = malloc(size ? size : 1), *s = fuzz_strdup(data, size);

	if (!exact)
		abort();
	/* ref_name_valid takes a length: give it exactly those bytes, no NUL after them, so an
	 * over-read shows. */
	memcpy(exact, data, size);
	check_name(exact, size);
	check_name(s, strlen(s));
	check_tag(s);
	check_host(s);
	check_digest(s);
	check_ref(s);
	free(exact);
	free(s);
	return 0;
}
