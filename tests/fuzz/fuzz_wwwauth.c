/* fuzz_wwwauth: the WWW-Authenticate value of an upstream's 401 (registry/wwwauth.c). Its realm
 * becomes a URL the cache fetches with its credentials, so beyond not crashing every field of an
 * accepted challenge must be terminated inside its buffer and hold no control byte but HTAB (no
 * CR/LF that could split the token request). */
#include <strings.h>

#include "fuzz.h"
#include "registry.h"

static void check_field(const char *f, size_t len)
{
	size_t n = strnlen(f, len);

	FUZZ_ASSERT(n < len);
	for (size_t i = 0; i < n; i++)
		FUZZ_ASSERT(((unsigned char)f[i] >= 0x20 || f[i] == '\t') && f[i] != 0x7f);
}

/* realm.c on what the challenge names: credentials never go over plain http:// for an https://
 * upstream, and the token URL built from it is one header-safe line. */
static void check_realm(const struct wwwauth *w)
{
	static char *listed[] = {"https://auth.docker.io/token", NULL};
	char why[384], *url;

	if (realm_allowed("https://registry-1.docker.io", listed, w->realm, why, sizeof(why)))
		FUZZ_ASSERT(strncasecmp(w->realm, "http://", 7) != 0);
	else
		FUZZ_ASSERT(why[0] != '\0');
	url = realm_token_url(w->realm, w->service, w->scope);
	for (size_t i = 0; url && url[i]; i++)
		FUZZ_ASSERT((unsigned char)url[i] > 0x20 && url[i] != 0x7f);
	free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strdup(data, size);
	struct wwwauth w;

	if (wwwauth_parse(s, &w) == 0) {
		check_field(w.scheme, sizeof(w.scheme));
		FUZZ_ASSERT(w.scheme[0] != '\0');
		check_field(w.realm, sizeof(w.realm));
		check_field(w.service, sizeof(w.service));
		check_field(w.scope, sizeof(w.scope));
		check_realm(&w);
	}
	FUZZ_ASSERT(wwwauth_parse(NULL, &w) == -1);
	free(s);
	return 0;
}
