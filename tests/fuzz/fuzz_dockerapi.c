/* fuzz_dockerapi: what dockerd sends the runtime step (registry/dockerapi.c): the progress stream
 * of POST /images/create, fed in pieces whose sizes the input's first byte picks, and the same
 * bytes as an inspect answer and as an error body. Beyond not crashing or leaking: a failed
 * stream says why and stays failed, a completed one had no error, a digest taken from it is a
 * valid one, and a message is one line without double quotes. */
#include "fuzz.h"

#include "registry.h"

static void check_message(const char *body, size_t len)
{
	char out[96];
	size_t i;

	dockerapi_message(body, len, out, sizeof(out));
	FUZZ_ASSERT(out[0] != '\0' && strlen(out) < sizeof(out));
	for (i = 0; out[i]; i++)
		FUZZ_ASSERT(out[i] != '"' && (unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dockerapi_stream s; /* 16 KiB: not on the stack */
	const char *buf = (const char *)data + (size > 0);
	size_t len = size > 0 ? size - 1 : 0, piece = size > 0 ? (size_t)data[0] % 64 + 1 : 1;
	size_t off;
	int rc = 0, end;

	dockerapi_stream_init(&s);
	for (off = 0; off < len; off += piece) {
		rc = dockerapi_stream_feed(&s, buf + off, len - off < piece ? len - off : piece);
		FUZZ_ASSERT(rc == 0 || rc == -1);
		FUZZ_ASSERT((rc == -1) == (s.failed != 0));
		FUZZ_ASSERT(s.len <= sizeof(s.line));
		if (rc < 0)
			break;
	}
	end = dockerapi_stream_end(&s);
	FUZZ_ASSERT(rc == 0 || end == -1);
	FUZZ_ASSERT(end == -1 ? s.failed && s.error[0] != '\0' && !strchr(s.error, '"')
			      : s.complete && !s.failed);
	FUZZ_ASSERT(s.digest[0] == '\0' || digest_check(s.digest) == 0);
	end = dockerapi_inspect_has(
	    buf, len, "sha256:38657c9484e7df7c81cf7c5be097dc0c6f24754cd9ade1138048daf35688330a");
	FUZZ_ASSERT(end >= -1 && end <= 1);
	check_message(buf, len);
	return 0;
}
