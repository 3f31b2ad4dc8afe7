/* dockerapi: the few pieces of the Docker Engine API the runtime step speaks, as pure code (no
 * I/O, no loop): what Docker calls an image, the URLs, and the answers.
 *
 * Names. registry-mirrors apply to Docker Hub only, so a docker.io image must be asked for by its
 * Docker Hub name for dockerd to pull it through this cache: "docker.io/library/web" (Docker's
 * normalised form; "library/web" and "web" mean the same to it). Any other registry's image is
 * "host[:port]/repo", which dockerd pulls from that registry itself. A digest reference is
 * fromImage=repo@sha256:… with no tag parameter (dockerd then ignores any tag).
 *
 * The progress stream of POST /images/create is JSON lines (dockerd ends each with "\r\n"):
 *   {"status":"Pulling fs layer","progressDetail":{},"id":"46a23b2ff531"}
 *   {"status":"Digest: sha256:…"}
 *   {"status":"Status: Downloaded newer image for web:1"}   (or "Image is up to date for …")
 * and on failure after the 200 went out, a line with "error" and "errorDetail":
 *   {"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}
 * A pull completed when the body ended after a "Status: " line and no error line. Errors before
 * the stream started are an HTTP status with {"message": "…"}. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "registry.h"

int dockerapi_names(const struct image_ref *ref, struct dockerapi_names *out)
{
	int n;

	memset(out, 0, sizeof(*out));
	if (!ref->repo[0] || (!ref->tag[0] && !ref->digest[0]))
		return -1;
	if (ref->digest[0])
		n = snprintf(out->image, sizeof(out->image), "%s/%s@%s", ref->registry, ref->repo,
			     ref->digest);
	else
		n = snprintf(out->image, sizeof(out->image), "%s/%s", ref->registry, ref->repo);
	if (n < 0 || (size_t)n >= sizeof(out->image))
		return -1;
	if (!ref->digest[0])
		snprintf(out->tag, sizeof(out->tag), "%s", ref->tag);
	n = snprintf(out->name, sizeof(out->name), "%s%s%s", out->image, out->tag[0] ? ":" : "",
		     out->tag);
	return n < 0 || (size_t)n >= sizeof(out->name) ? -1 : 0;
}

/* Percent-encodes everything but RFC 3986's unreserved characters. -1 when out is too small. */
int dockerapi_escape(const char *in, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *in; in++) {
		unsigned char c = (unsigned char)*in;
		int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';

		if (o + (plain ? 1 : 3) >= outlen)
			return -1;
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (outlen == 0)
		return -1;
	out[o] = '\0';
	return 0;
}

int dockerapi_create_url(const struct dockerapi_names *n, char *out, size_t outlen)
{
	char image[3 * sizeof(n->image)], tag[3 * sizeof(n->tag)];
	int len;

	if (dockerapi_escape(n->image, image, sizeof(image)) < 0 ||
	    dockerapi_escape(n->tag, tag, sizeof(tag)) < 0)
		return -1;
	len = snprintf(out, outlen, "http://localhost/images/create?fromImage=%s%s%s", image,
		       tag[0] ? "&tag=" : "", tag);
	return len < 0 || (size_t)len >= outlen ? -1 : 0;
}

/* A valid reference holds only [A-Za-z0-9._/:@-]: nothing in it needs escaping in a path, and
 * dockerd's router takes the slashes of "/images/{name:.*}/json" as they are. */
int dockerapi_inspect_url(const struct dockerapi_names *n, char *out, size_t outlen)
{
	int len = snprintf(out, outlen, "http://localhost/images/%s/json", n->name);

	return len < 0 || (size_t)len >= outlen ? -1 : 0;
}

/* A message fit for a key="value" log line and a JSON string: one line, no double quotes. */
static void copy_message(char *out, size_t outlen, const char *msg, size_t len)
{
	size_t i, o = 0;

	if (outlen == 0)
		return;
	for (i = 0; i < len && o + 1 < outlen; i++) {
		unsigned char c = (unsigned char)msg[i];

		out[o++] = c == '"' ? '\'' : c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

int dockerapi_inspect_has(const char *body, size_t len, const char *digest)
{
	json_t *doc = json_loadb(body, len, 0, NULL), *list;
	size_t i, dlen = strlen(digest);
	int found = 0;

	if (!json_is_object(doc)) {
		json_decref(doc);
		return -1;
	}
	list = json_object_get(doc, "RepoDigests");
	for (i = 0; i < json_array_size(list); i++) {
		const char *s = json_string_value(json_array_get(list, i));
		const char *at = s ? strrchr(s, '@') : NULL;

		if (at && strlen(at + 1) == dlen && strcmp(at + 1, digest) == 0)
			found = 1;
	}
	json_decref(doc);
	return found;
}

void dockerapi_message(const char *body, size_t len, char *out, size_t outlen)
{
	json_t *doc = json_loadb(body, len, 0, NULL);
	const char *msg = json_string_value(json_object_get(doc, "message"));

	if (msg)
		copy_message(out, outlen, msg, strlen(msg));
	else /* not dockerd's JSON: the start of whatever it is */
		copy_message(out, outlen, body, len < 200 ? len : 200);
	if (!out[0])
		snprintf(out, outlen, "(no message)");
	json_decref(doc);
}

void dockerapi_stream_init(struct dockerapi_stream *s)
{
	memset(s, 0, sizeof(*s));
}

static int stream_fail(struct dockerapi_stream *s, const char *msg)
{
	copy_message(s->error, sizeof(s->error), msg, strlen(msg));
	if (!s->error[0]) /* a message of blanks alone says nothing */
		snprintf(s->error, sizeof(s->error), "dockerd reported an error with no message");
	s->failed = 1;
	return -1;
}

/* One line of the stream (no newline): an error ends it; status lines are remembered. */
static int stream_line(struct dockerapi_stream *s, const char *line, size_t len)
{
	json_t *doc, *err;
	const char *status, *msg;
	int rc = 0;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	while (len > 0 && (*line == ' ' || *line == '\t' || *line == '\r')) {
		line++;
		len--;
	}
	if (len == 0)
		return 0;
	s->lines++;
	doc = json_loadb(line, len, 0, NULL);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return stream_fail(s, "dockerd sent a progress line that is not a JSON object");
	}
	err = json_object_get(doc, "errorDetail");
	msg = json_string_value(json_object_get(err, "message"));
	if (!msg)
		msg = json_string_value(json_object_get(doc, "error"));
	if (msg || json_object_get(doc, "error") || err) {
		rc = stream_fail(s, msg && msg[0] ? msg : "dockerd reported an error");
	} else if ((status = json_string_value(json_object_get(doc, "status")))) {
		if (strncmp(status, "Digest: ", 8) == 0 && digest_check(status + 8) == 0)
			snprintf(s->digest, sizeof(s->digest), "%s", status + 8);
		else if (strncmp(status, "Status: ", 8) == 0)
			s->complete = 1;
	}
	json_decref(doc);
	return rc;
}

int dockerapi_stream_feed(struct dockerapi_stream *s, const char *buf, size_t len)
{
	while (len > 0 && !s->failed) {
		const char *nl = memchr(buf, '\n', len);
		size_t take = nl ? (size_t)(nl - buf) : len;

		if (s->len + take > sizeof(s->line)) {
			char msg[64];

			snprintf(msg, sizeof(msg), "dockerd sent a progress line over %d bytes",
				 DOCKERAPI_LINE_MAX);
			return stream_fail(s, msg);
		}
		memcpy(s->line + s->len, buf, take);
		s->len += take;
		buf += take;
		len -= take;
		if (!nl)
			break;
		buf++; /* the newline */
		len--;
		if (stream_line(s, s->line, s->len) < 0)
			return -1;
		s->len = 0;
	}
	return s->failed ? -1 : 0;
}

int dockerapi_stream_end(struct dockerapi_stream *s)
{
	if (s->failed)
		return -1;
	if (s->len > 0 && stream_line(s, s->line, s->len) < 0) /* a last line without newline */
		return -1;
	s->len = 0;
	if (!s->complete)
		return stream_fail(s, "the progress stream ended before the pull completed");
	return 0;
}
