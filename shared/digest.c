/* digest: OCI digest strings, and streaming SHA-256 through openssl's EVP interface. */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"

/* Longer than any digest we could be sent for real; bounds the scan of a hostile string. */
#define DIGEST_INPUT_MAX 256

struct digest_ctx {
	EVP_MD_CTX *md;
};

static int is_lower_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

static int is_lower_hex(char ch)
{
	return (ch >= 'a' && ch <= 'f') || (ch >= '0' && ch <= '9');
}

static int is_encoded_char(char ch)
{
	return is_lower_alnum(ch) || (ch >= 'A' && ch <= 'Z') || ch == '=' || ch == '_' ||
	       ch == '-';
}

/* algorithm := component (separator component)*; component := [a-z0-9]+; separator := [+._-].
 * Returns the length of the algorithm, or 0 when s does not start with one. */
static size_t digest_algorithm_len(const char *s)
{
	size_t i = 0;

	for (;;) {
		if (!is_lower_alnum(s[i]))
			return 0;
		while (is_lower_alnum(s[i]))
			i++;
		if (s[i] != '+' && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return i;
		i++;
	}
}

static int all_lower_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (!is_lower_hex(s[i]))
			return 0;
	}
	return 1;
}

int digest_check(const char *s)
{
	size_t alg, len, enc;

	if (!s)
		return -1;
	len = strnlen(s, DIGEST_INPUT_MAX + 1);
	if (len > DIGEST_INPUT_MAX)
		return -1;
	alg = digest_algorithm_len(s);
	if (alg == 0 || s[alg] != ':')
		return -1;
	enc = len - alg - 1;
	if (enc == 0)
		return -1;
	for (size_t i = alg + 1; i < len; i++) {
		if (!is_encoded_char(s[i]))
			return -1;
	}
	if (alg == 6 && memcmp(s, "sha256", 6) == 0)
		return enc == DIGEST_HEX_LEN && all_lower_hex(s + 7, enc) ? 0 : -1;
	if (alg == 6 && memcmp(s, "sha512", 6) == 0)
		return enc == 128 && all_lower_hex(s + 7, enc) ? -2 : -1;
	return -2;
}

const char *digest_hex(const char *digest)
{
	const char *colon = strchr(digest, ':');

	return colon ? colon + 1 : digest;
}

struct digest_ctx *digest_new(void)
{
	struct digest_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return NULL;
	ctx->md = EVP_MD_CTX_new();
	if (!ctx->md || digest_reset(ctx) != 0) {
		digest_free(ctx);
		return NULL;
	}
	return ctx;
}

void digest_free(struct digest_ctx *ctx)
{
	if (!ctx)
		return;
	EVP_MD_CTX_free(ctx->md);
	free(ctx);
}

int digest_reset(struct digest_ctx *ctx)
{
	return EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

int digest_update(struct digest_ctx *ctx, const void *buf, size_t len)
{
	return EVP_DigestUpdate(ctx->md, buf, len) == 1 ? 0 : -1;
}

int digest_final(struct digest_ctx *ctx, char out[DIGEST_STR_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(ctx->md, md, &n) != 1 || n * 2 != DIGEST_HEX_LEN)
		return -1;
	memcpy(out, "sha256:", 7);
	for (unsigned int i = 0; i < n; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[7 + 2 * i + 1] = hex[md[i] & 0xf];
	}
	out[DIGEST_STR_SIZE - 1] = '\0';
	return 0;
}

int digest_buffer(const void *buf, size_t len, char out[DIGEST_STR_SIZE])
{
	struct digest_ctx *ctx = digest_new();
	int rc = -1;

	if (!ctx)
		return -1;
	if (digest_update(ctx, buf, len) == 0 && digest_final(ctx, out) == 0)
		rc = 0;
	digest_free(ctx);
	return rc;
}
