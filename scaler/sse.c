/* sse: one server-sent event (the HTML living standard's text/event-stream) as text. A line
 * break inside the data cannot end the event early or start a field of its own: every line of
 * the data gets its own "data: " prefix, and a browser joins them again with "\n". The type is
 * ours, never a peer's, and must be one plain word. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"

static int plain_word(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return 0;
	}
	return 1;
}

char *sse_frame(const char *type, const char *data, size_t len, long retry_ms, size_t *out_len)
{
	size_t lines = 1, cap, o;
	char *out;
	int n;

	if (!plain_word(type))
		return NULL;
	for (size_t i = 0; i < len; i++)
		lines += data[i] == '\n' || data[i] == '\r';
	/* "event: " type "\n", "retry: " up to 20 digits "\n", "data: " "\n" per line, "\n", NUL */
	cap = 8 + strlen(type) + 28 + lines * 7 + len + 2;
	if (!(out = malloc(cap)))
		return NULL;
	n = snprintf(out, cap, "event: %s\n", type);
	if (retry_ms > 0)
		n += snprintf(out + n, cap - (size_t)n, "retry: %ld\n", retry_ms);
	o = (size_t)n;
	memcpy(out + o, "data: ", 6);
	o += 6;
	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n' && data[i] != '\r') {
			out[o++] = data[i];
			continue;
		}
		if (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
			i++; /* CRLF is one line end */
		memcpy(out + o, "\ndata: ", 7);
		o += 7;
	}
	memcpy(out + o, "\n\n", 3);
	o += 2;
	*out_len = o;
	return out;
}

char *sse_event(const char *type, const json_t *data, long retry_ms, size_t *out_len)
{
	/* Six significant digits: seconds and ratios, never the times (those are integer ms). */
	char *text = json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(6) | JSON_ENCODE_ANY);
	char *ev;

	if (!text)
		return NULL;
	ev = sse_frame(type, text, strlen(text), retry_ms, out_len);
	free(text);
	return ev;
}
