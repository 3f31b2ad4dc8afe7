/* realm: where an upstream's credentials may go when a 401 names a token realm, and the URL of
 * the token request. The realm comes from the upstream's answer, so it is the upstream (or
 * whoever sits between) that picks where the configured Authorization: Basic would be sent. The
 * rules, in order:
 *   - a realm that is not an http:// or https:// URL gets nothing (and no request at all);
 *   - an https:// upstream never sends credentials over plain http://, listed or not;
 *   - the upstream's own scheme, host and port get them (an https:// realm on an http://
 *     upstream's host:port too: that only adds TLS);
 *   - so does a realm matching an entry of the upstream's auth_realms: the same scheme, host and
 *     port, and a path at or below the entry's (by whole segments: "/token" covers "/token" and
 *     "/token/x", not "/tokens").
 * Everything else is asked anonymously. URLs are parsed by libcurl (curl_url), which fetches
 * them too: what is compared is what curl would connect to. */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "registry.h"

/* The parts of a URL the rules compare. */
struct origin {
	char scheme[8];
	char host[256];
	long port;
	char path[512];
};

static int get_part(CURLU *h, CURLUPart part, unsigned flags, char *out, size_t len)
{
	char *s = NULL;
	int rc = -1;

	if (curl_url_get(h, part, &s, flags) == CURLUE_OK && strlen(s) < len) {
		memcpy(out, s, strlen(s) + 1);
		rc = 0;
	}
	curl_free(s);
	return rc;
}

/* Parses an absolute http:// or https:// URL. A fresh handle each time: curl_url_set on a used
 * one would resolve a relative realm against the last URL. */
static int origin_parse(const char *url, struct origin *o)
{
	CURLU *h = curl_url();
	char port[8];
	int rc = -1;

	memset(o, 0, sizeof(*o));
	if (!h || curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	if (get_part(h, CURLUPART_SCHEME, 0, o->scheme, sizeof(o->scheme)) < 0 ||
	    (strcmp(o->scheme, "http") != 0 && strcmp(o->scheme, "https") != 0) ||
	    get_part(h, CURLUPART_HOST, 0, o->host, sizeof(o->host)) < 0 ||
	    get_part(h, CURLUPART_PORT, CURLU_DEFAULT_PORT, port, sizeof(port)) < 0 ||
	    get_part(h, CURLUPART_PATH, 0, o->path, sizeof(o->path)) < 0)
		goto out;
	o->port = strtol(port, NULL, 10);
	rc = 0;
out:
	curl_url_cleanup(h);
	return rc;
}

static int same_server(const struct origin *a, const struct origin *b)
{
	return strcmp(a->scheme, b->scheme) == 0 && strcasecmp(a->host, b->host) == 0 &&
	       a->port == b->port;
}

/* PATH is PREFIX or below it, by whole segments. */
static int path_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	while (n > 0 && prefix[n - 1] == '/')
		n--;
	return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static int listed(const struct origin *realm, char *const *allowed)
{
	struct origin entry;

	for (; allowed && *allowed; allowed++) {
		if (origin_parse(*allowed, &entry) == 0 && same_server(realm, &entry) &&
		    path_under(realm->path, entry.path))
			return 1;
	}
	return 0;
}

static int refuse(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return 0;
}

int realm_allowed(const char *upstream_url, char *const *allowed, const char *realm, char *why,
		  size_t whylen)
{
	struct origin up, r;

	if (origin_parse(upstream_url, &up) < 0 || origin_parse(realm, &r) < 0)
		return refuse(why, whylen, "the realm is not an http:// or https:// URL");
	if (strcmp(up.scheme, "https") == 0 && strcmp(r.scheme, "http") == 0)
		return refuse(why, whylen, "plain http:// realm %s:%ld for an https:// upstream",
			      r.host, r.port);
	if (strcasecmp(up.host, r.host) == 0 && up.port == r.port &&
	    (strcmp(r.scheme, "https") == 0 || strcmp(up.scheme, r.scheme) == 0))
		return 1;
	if (listed(&r, allowed))
		return 1;
	return refuse(why, whylen, "realm %s://%s:%ld is not the upstream's and not in auth_realms",
		      r.scheme, r.host, r.port);
}

int realm_entry_check(const char *upstream_url, const char *entry, char *why, size_t whylen)
{
	struct origin up, e;

	if (origin_parse(upstream_url, &up) < 0 || origin_parse(entry, &e) < 0) {
		refuse(why, whylen, "expected an http:// or https:// URL");
		return -1;
	}
	if (strcmp(up.scheme, "https") == 0 && strcmp(e.scheme, "http") == 0) {
		refuse(why, whylen, "a plain http:// realm for an https:// upstream");
		return -1;
	}
	return 0;
}

/* Appends "NAME=VALUE" to the query, VALUE percent-encoded by curl. */
static int append_param(CURLU *h, const char *name, const char *value)
{
	char buf[1024];

	if ((size_t)snprintf(buf, sizeof(buf), "%s=%s", name, value) >= sizeof(buf))
		return -1;
	return curl_url_set(h, CURLUPART_QUERY, buf, CURLU_APPENDQUERY | CURLU_URLENCODE) ==
		       CURLUE_OK
		   ? 0
		   : -1;
}

char *realm_token_url(const char *realm, const char *service, const char *scope)
{
	CURLU *h = curl_url();
	char *url = NULL, *s = NULL;
	struct origin o;

	if (!h || origin_parse(realm, &o) < 0 ||
	    curl_url_set(h, CURLUPART_URL, realm, 0) != CURLUE_OK)
		goto out;
	/* Only our own credentials, if any, go with the request: none the realm brought along. */
	if (curl_url_set(h, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
	    curl_url_set(h, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
	    curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK ||
	    append_param(h, "service", service) < 0 || append_param(h, "scope", scope) < 0 ||
	    curl_url_get(h, CURLUPART_URL, &s, 0) != CURLUE_OK)
		goto out;
	url = strdup(s);
out:
	curl_free(s);
	curl_url_cleanup(h);
	return url;
}
