/* fuzz_token: the token endpoint's answer, {"token"|"access_token": …, "expires_in": …}
 * (registry/upstream.c's parse_token, reached by including the file). The token server is
 * whatever URL the upstream's WWW-Authenticate realm names. A token it accepts is cached and sent
 * upstream as "Authorization: Bearer TOKEN"; beyond not crashing or leaking, it must be
 * non-empty as stored (a "\u0000" would cut it), hold no control byte (a CR/LF would inject
 * headers into every later upstream request), and expire a finite time after now. */
#include <math.h>

#include "fuzz.h"
#include "upstream.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ev_loop *loop;
	struct upstream_conf uc = {.host = "docker.io", .url = "https://registry-1.docker.io"};
	struct registry_conf rc = {.retries = 3};
	struct registry r = {.conf = &rc};
	struct upstream up = {.conf = &uc};
	struct upreq u = {.r = &r, .up = &up, .scope = "repository:library/busybox:pull"};
	struct token *t;
	ev_tstamp now;

	if (!loop)
		loop = ev_loop_new(EVFLAG_AUTO);
	r.loop = loop;
	now = ev_now(loop);
	TAILQ_INIT(&up.tokens);
	if (parse_token(&u, (const char *)data, size) == 0) {
		t = TAILQ_FIRST(&up.tokens);
		FUZZ_ASSERT(t && up.ntokens == 1);
		FUZZ_ASSERT(t->value[0] != '\0' && strcmp(t->scope, u.scope) == 0);
		for (const char *p = t->value; *p != '\0'; p++)
			FUZZ_ASSERT((unsigned char)*p >= 0x20 && *p != 0x7f);
		FUZZ_ASSERT(isfinite(t->expires) && t->expires > now);
		FUZZ_ASSERT(token_lookup(&up, u.scope, now) == t->value);
	} else {
		FUZZ_ASSERT(TAILQ_EMPTY(&up.tokens));
	}
	while ((t = TAILQ_FIRST(&up.tokens))) {
		TAILQ_REMOVE(&up.tokens, t, link);
		token_free(t);
	}
	return 0;
}
