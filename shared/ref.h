/* ref: repository names, tags and references per the Distribution spec grammar. */
#ifndef MS_REF_H
#define MS_REF_H

#include <stddef.h>

#define REF_NAME_MAX 255
#define REF_TAG_MAX 128

/* path-component ("/" path-component)*, each [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*, total <= 255. */
int ref_name_valid(const char *name, size_t len);
/* [A-Za-z0-9_][A-Za-z0-9._-]{0,127} */
int ref_tag_valid(const char *tag);
/* A registry host as used in "?ns=" and references: host[:port], DNS labels or an IP literal. */
int ref_host_valid(const char *host);

/* An image reference, normalised the way Docker does it: "busybox" is
 * docker.io/library/busybox:latest; "ghcr.io/org/app:1.2" keeps its registry. */
#define REF_HOST_MAX 255
#define REF_DIGEST_MAX 71 /* "sha256:" and 64 hex digits: the only kind we serve */
struct image_ref {
	char registry[REF_HOST_MAX + 1]; /* "docker.io", "ghcr.io", "127.0.0.1:5001" */
	char repo[REF_NAME_MAX + 1];	 /* "library/busybox" */
	char tag[REF_TAG_MAX + 1];	 /* "latest"; "" when only a digest was given */
	char digest[REF_DIGEST_MAX + 1]; /* "sha256:…" or "" */
};

/* Parses and normalises S. -1 with a reason in err when S is not a valid reference. */
int ref_parse(const char *s, struct image_ref *out, char *err, size_t errlen);
/* "registry/repo:tag", "registry/repo@digest" or both: the canonical form. */
int ref_format(const struct image_ref *r, char *out, size_t outlen);
/* The reference to resolve upstream: the digest when there is one, else the tag. */
const char *ref_reference(const struct image_ref *r);

#endif
