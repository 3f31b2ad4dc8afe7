/* errors: every error answer in the OCI format {"errors":[{"code","message","detail"}]}. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

const char *api_code_name(enum api_code code)
{
	static const char *const names[] = {
	    [API_BLOB_UNKNOWN] = "BLOB_UNKNOWN",
	    [API_BLOB_UPLOAD_INVALID] = "BLOB_UPLOAD_INVALID",
	    [API_BLOB_UPLOAD_UNKNOWN] = "BLOB_UPLOAD_UNKNOWN",
	    [API_DIGEST_INVALID] = "DIGEST_INVALID",
	    [API_MANIFEST_BLOB_UNKNOWN] = "MANIFEST_BLOB_UNKNOWN",
	    [API_MANIFEST_INVALID] = "MANIFEST_INVALID",
	    [API_MANIFEST_UNKNOWN] = "MANIFEST_UNKNOWN",
	    [API_NAME_INVALID] = "NAME_INVALID",
	    [API_NAME_UNKNOWN] = "NAME_UNKNOWN",
	    [API_SIZE_INVALID] = "SIZE_INVALID",
	    [API_UNAUTHORIZED] = "UNAUTHORIZED",
	    [API_DENIED] = "DENIED",
	    [API_UNSUPPORTED] = "UNSUPPORTED",
	    [API_TOOMANYREQUESTS] = "TOOMANYREQUESTS",
	};

	return (unsigned)code < sizeof(names) / sizeof(names[0]) ? names[code] : "UNSUPPORTED";
}

void api_error(struct httpd_conn *conn, int status, enum api_code code, const char *fmt, ...)
{
	char msg[512];
	json_t *doc;
	char *body;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	doc = json_pack("{s:[{s:s,s:s,s:o}]}", "errors", "code", api_code_name(code), "message",
			msg, "detail", json_object());
	body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	httpd_add_header(conn, "Content-Type", "application/json");
	if (!body) {
		httpd_respond(conn, 500, "", 0);
		return;
	}
	httpd_respond(conn, status, body, strlen(body));
	free(body);
}

/* A miss stays a 404 (so containerd tries its next host), and so does a refusal (Docker Hub
 * answers 401 for repositories that do not exist); 429 keeps its Retry-After; no answer at all is
 * 503; anything else the upstream says is a 502. The spec has no code for an upstream that
 * failed: to the client the thing asked for is unknown, and the 5xx says for now. */
void api_error_upstream(struct httpd_conn *conn, long status, const char *retry_after,
			enum api_code unknown_code, const char *err)
{
	if (status == 404 || status == 401 || status == 403) {
		api_error(conn, 404, unknown_code, "upstream answered %ld", status);
	} else if (status == 429) {
		if (retry_after)
			httpd_add_header(conn, "Retry-After", "%s", retry_after);
		api_error(conn, 429, API_TOOMANYREQUESTS, "upstream rate limit reached");
	} else if (status == 0) {
		api_error(conn, 503, unknown_code, "upstream unreachable: %s",
			  err ? err : "no answer");
	} else {
		api_error(conn, 502, unknown_code, "upstream failed: status %ld%s%s", status,
			  err ? ": " : "", err ? err : "");
	}
}
