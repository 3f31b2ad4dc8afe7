/* digest: "sha256:<hex>" strings and streaming SHA-256 (openssl EVP). */
#ifndef MS_DIGEST_H
#define MS_DIGEST_H

#include <stddef.h>

#define DIGEST_HEX_LEN 64
/* "sha256:" + 64 hex digits + NUL */
#define DIGEST_STR_SIZE (7 + DIGEST_HEX_LEN + 1)

/* Validates against the OCI digest grammar. Returns 0 for a valid sha256 digest (lower-case hex,
 * exactly 64 digits); -1 when malformed; -2 when well-formed but of an algorithm we do not support
 * (sha512, …). The caller turns -1 into DIGEST_INVALID and -2 into UNSUPPORTED. */
int digest_check(const char *s);
/* The 64 hex digits of a digest that digest_check() accepted. */
const char *digest_hex(const char *digest);

struct digest_ctx;
struct digest_ctx *digest_new(void);
void digest_free(struct digest_ctx *ctx);
int digest_reset(struct digest_ctx *ctx);
int digest_update(struct digest_ctx *ctx, const void *buf, size_t len);
/* Writes "sha256:<hex>" into out. */
int digest_final(struct digest_ctx *ctx, char out[DIGEST_STR_SIZE]);
/* One-shot digest of a buffer. */
int digest_buffer(const void *buf, size_t len, char out[DIGEST_STR_SIZE]);

#endif
