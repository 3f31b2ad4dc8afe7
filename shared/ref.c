/* ref: repository names, tags, registry hosts and whole image references, checked by hand
 * against the Distribution grammar and normalised the Docker way. These strings become file names
 * in the store, so nothing else may pass. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "ref.h"
#include "digest.h"

#define HOST_MAX 253 /* a DNS name, without the port */
#define LABEL_MAX 63

static int is_lower_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

static int is_alnum(char ch)
{
	return is_lower_alnum(ch) || (ch >= 'A' && ch <= 'Z');
}

static int is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* Length of the separator at s ("." | "_" | "__" | "-"+), 0 when there is none. */
static size_t name_separator_len(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0)
		return 0;
	if (s[0] == '.')
		return 1;
	if (s[0] == '_')
		return len > 1 && s[1] == '_' ? 2 : 1;
	while (i < len && s[i] == '-')
		i++;
	return i;
}

/* [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*: returns the component's length, 0 when invalid. */
static size_t name_component_len(const char *s, size_t len)
{
	size_t i = 0, sep;

	for (;;) {
		if (i >= len || !is_lower_alnum(s[i]))
			return 0;
		while (i < len && is_lower_alnum(s[i]))
			i++;
		sep = name_separator_len(s + i, len - i);
		if (sep == 0)
			return i;
		i += sep;
	}
}

int ref_name_valid(const char *name, size_t len)
{
	size_t i = 0, n;

	if (!name || len == 0 || len > REF_NAME_MAX)
		return 0;
	for (;;) {
		n = name_component_len(name + i, len - i);
		if (n == 0)
			return 0;
		i += n;
		if (i == len)
			return 1;
		if (name[i] != '/')
			return 0;
		i++;
	}
}

int ref_tag_valid(const char *tag)
{
	size_t i;

	if (!tag || !(is_alnum(tag[0]) || tag[0] == '_'))
		return 0;
	for (i = 1; tag[i] != '\0'; i++) {
		if (i >= REF_TAG_MAX)
			return 0;
		if (!(is_alnum(tag[i]) || tag[i] == '_' || tag[i] == '.' || tag[i] == '-'))
			return 0;
	}
	return 1;
}

/* ":PORT": at most five digits, no sign, a value in 1..65535. */
static int port_valid(const char *s)
{
	long port = 0;
	size_t i;

	if (s[0] != ':')
		return 0;
	for (i = 1; is_digit(s[i]); i++) {
		if (i > 5)
			return 0;
		port = port * 10 + (s[i] - '0');
	}
	return i > 1 && s[i] == '\0' && port >= 1 && port <= 65535;
}

/* DNS labels of [A-Za-z0-9-], not starting or ending with '-', joined by single dots. */
static int dns_name_valid(const char *s, size_t len)
{
	size_t start = 0, i;

	if (len == 0 || len > HOST_MAX)
		return 0;
	for (i = 0; i <= len; i++) {
		if (i < len && s[i] != '.') {
			if (!is_alnum(s[i]) && s[i] != '-')
				return 0;
			continue;
		}
		if (i == start || i - start > LABEL_MAX || s[start] == '-' || s[i - 1] == '-')
			return 0;
		start = i + 1;
	}
	return 1;
}

/* "[v6-address]" as inet_pton understands it (no zone index: "%" cannot be in a file name we
 * want, nor in a URL without escaping). */
static int ipv6_literal_valid(const char *s, size_t len)
{
	char buf[INET6_ADDRSTRLEN];
	struct in6_addr addr;

	if (len < 3 || s[0] != '[' || s[len - 1] != ']' || len - 2 >= sizeof(buf))
		return 0;
	memcpy(buf, s + 1, len - 2);
	buf[len - 2] = '\0';
	return inet_pton(AF_INET6, buf, &addr) == 1;
}

int ref_host_valid(const char *host)
{
	const char *port;
	size_t len;

	if (!host)
		return 0;
	if (host[0] == '[') {
		port = strchr(host, ']');
		if (!port)
			return 0;
		port++;
		len = (size_t)(port - host);
		if (!ipv6_literal_valid(host, len))
			return 0;
	} else {
		port = strchr(host, ':');
		len = port ? (size_t)(port - host) : strlen(host);
		port = host + len;
		if (!dns_name_valid(host, len))
			return 0;
	}
	return *port == '\0' || port_valid(port);
}

/* The first component names a registry when it looks like a host: it has a '.' or a ':' (a
 * port), or is "localhost". Docker's rule; "library/busybox" stays on Docker Hub. */
static int is_registry_component(const char *s, size_t len)
{
	return memchr(s, '.', len) || memchr(s, ':', len) ||
	       (len == 9 && strncmp(s, "localhost", 9) == 0);
}

static int ref_fail(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return -1;
}

/* Splits "name[:tag][@digest]" off the end: the digest at '@', the tag at a ':' after the last
 * '/' (a ':' before it is a registry port). */
static int split_tag_digest(char *s, struct image_ref *out, char *err, size_t errlen)
{
	char *at = strchr(s, '@'), *slash, *colon;

	if (at) {
		*at = '\0';
		if (strlen(at + 1) > REF_DIGEST_MAX || digest_check(at + 1) != 0)
			return ref_fail(err, errlen, "invalid or unsupported digest");
		strcpy(out->digest, at + 1);
	}
	slash = strrchr(s, '/');
	colon = strrchr(slash ? slash : s, ':');
	if (colon) {
		*colon = '\0';
		if (!ref_tag_valid(colon + 1))
			return ref_fail(err, errlen, "invalid tag");
		strcpy(out->tag, colon + 1);
	} else if (!at) {
		strcpy(out->tag, "latest");
	}
	return 0;
}

static int split_registry(const char *s, struct image_ref *out, char *err, size_t errlen)
{
	const char *slash = strchr(s, '/');
	const char *name = s, *prefix;
	size_t hlen;

	if (slash && is_registry_component(s, (size_t)(slash - s))) {
		hlen = (size_t)(slash - s);
		if (hlen > REF_HOST_MAX)
			return ref_fail(err, errlen, "registry host too long");
		memcpy(out->registry, s, hlen);
		out->registry[hlen] = '\0';
		if (!ref_host_valid(out->registry))
			return ref_fail(err, errlen, "invalid registry host");
		name = slash + 1;
	} else {
		strcpy(out->registry, "docker.io");
	}
	if (strcmp(out->registry, "index.docker.io") == 0 ||
	    strcmp(out->registry, "registry-1.docker.io") == 0)
		strcpy(out->registry, "docker.io");
	/* Docker Hub's official images live under library/. */
	prefix = strcmp(out->registry, "docker.io") == 0 && !strchr(name, '/') ? "library/" : "";
	if (strlen(prefix) + strlen(name) > REF_NAME_MAX)
		return ref_fail(err, errlen, "repository name too long");
	strcpy(out->repo, prefix);
	strcat(out->repo, name);
	if (!ref_name_valid(out->repo, strlen(out->repo)))
		return ref_fail(err, errlen, "invalid repository name");
	return 0;
}

int ref_parse(const char *s, struct image_ref *out, char *err, size_t errlen)
{
	char buf[REF_HOST_MAX + REF_NAME_MAX + REF_TAG_MAX + REF_DIGEST_MAX + 4];

	memset(out, 0, sizeof(*out));
	if (!s || !*s)
		return ref_fail(err, errlen, "empty reference");
	if (strlen(s) >= sizeof(buf))
		return ref_fail(err, errlen, "reference too long");
	strcpy(buf, s);
	if (split_tag_digest(buf, out, err, errlen) < 0)
		return -1;
	return split_registry(buf, out, err, errlen);
}

int ref_format(const struct image_ref *r, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/%s%s%s%s%s", r->registry, r->repo, r->tag[0] ? ":" : "",
			 r->tag, r->digest[0] ? "@" : "", r->digest);

	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

const char *ref_reference(const struct image_ref *r)
{
	return r->digest[0] ? r->digest : r->tag;
}
