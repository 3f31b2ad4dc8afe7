/* dockerapi: what Docker calls an image (Docker Hub, other registries, digests), the URLs and
 * their escaping, inspect answers, error messages, and the progress stream of a pull: a real
 * dockerd 20.10 stream, fed whole, byte by byte and in odd pieces; error lines; lines that are
 * not JSON; the line-length bound exactly at and one past it; streams that end too soon. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

#define D1 "sha256:38657c9484e7df7c81cf7c5be097dc0c6f24754cd9ade1138048daf35688330a"
#define D2 "sha256:1111111111111111111111111111111111111111111111111111111111111111"

/* What dockerd 20.10.24 sent for POST /images/create?fromImage=docker.io/library/demo-web&tag=1
 * (a few progress lines left out), line ends and all. */
static const char real_stream[] =
    "{\"status\":\"Pulling from library/demo-web\",\"id\":\"1\"}\r\n"
    "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"46a23b2ff531\"}\r\n"
    "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":231,\"total\":232},"
    "\"progress\":\"[=================================================\\u003e ]     231B/232B\","
    "\"id\":\"78a3d5df4eba\"}\r\n"
    "{\"status\":\"Verifying Checksum\",\"progressDetail\":{},\"id\":\"78a3d5df4eba\"}\r\n"
    "{\"status\":\"Download complete\",\"progressDetail\":{},\"id\":\"78a3d5df4eba\"}\r\n"
    "{\"status\":\"Extracting\",\"progressDetail\":{\"current\":32768,\"total\":1028062},"
    "\"progress\":\"[=\\u003e       ]  32.77kB/1.028MB\",\"id\":\"46a23b2ff531\"}\r\n"
    "{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"46a23b2ff531\"}\r\n"
    "{\"status\":\"Digest: " D1 "\"}\r\n"
    "{\"status\":\"Status: Downloaded newer image for demo-web:1\"}\r\n";

static void names_of(const char *refstr, struct dockerapi_names *n)
{
	struct image_ref ref;
	char why[128];

	assert_int_equal(ref_parse(refstr, &ref, why, sizeof(why)), 0);
	assert_int_equal(dockerapi_names(&ref, n), 0);
}

/* Docker Hub images by their Docker Hub name, so that registry-mirrors (this cache) apply. */
static void test_names_docker_hub(void **state)
{
	struct dockerapi_names n;

	(void)state;
	names_of("busybox", &n);
	assert_string_equal(n.image, "docker.io/library/busybox");
	assert_string_equal(n.tag, "latest");
	assert_string_equal(n.name, "docker.io/library/busybox:latest");
	names_of("library/demo-web:1", &n);
	assert_string_equal(n.image, "docker.io/library/demo-web");
	assert_string_equal(n.tag, "1");
	names_of("index.docker.io/org/app:v2.0_rc-1", &n);
	assert_string_equal(n.image, "docker.io/org/app");
	assert_string_equal(n.tag, "v2.0_rc-1");
	assert_string_equal(n.name, "docker.io/org/app:v2.0_rc-1");
}

static void test_names_other_registries(void **state)
{
	struct dockerapi_names n;

	(void)state;
	names_of("ghcr.io/org/app:1.2", &n);
	assert_string_equal(n.image, "ghcr.io/org/app");
	assert_string_equal(n.tag, "1.2");
	names_of("127.0.0.1:5001/team/api:v1", &n);
	assert_string_equal(n.image, "127.0.0.1:5001/team/api");
	assert_string_equal(n.name, "127.0.0.1:5001/team/api:v1");
	names_of("localhost/x", &n);
	assert_string_equal(n.image, "localhost/x");
	assert_string_equal(n.tag, "latest");
}

/* A digest reference: repo@digest, no tag parameter, also when the reference had a tag too. */
static void test_names_digest(void **state)
{
	struct dockerapi_names n;
	char url[DOCKERAPI_URL_MAX];

	(void)state;
	names_of("library/web@" D1, &n);
	assert_string_equal(n.image, "docker.io/library/web@" D1);
	assert_string_equal(n.tag, "");
	assert_string_equal(n.name, "docker.io/library/web@" D1);
	names_of("ghcr.io/o/a:1@" D1, &n);
	assert_string_equal(n.image, "ghcr.io/o/a@" D1);
	assert_string_equal(n.tag, "");
	assert_int_equal(dockerapi_create_url(&n, url, sizeof(url)), 0);
	assert_string_equal(url,
			    "http://localhost/images/create?fromImage=ghcr.io%2Fo%2Fa%40sha256%3A"
			    "38657c9484e7df7c81cf7c5be097dc0c6f24754cd9ade1138048daf35688330a");
}

static void test_names_bad(void **state)
{
	struct image_ref ref;
	struct dockerapi_names n;

	(void)state;
	memset(&ref, 0, sizeof(ref));
	strcpy(ref.registry, "docker.io");
	assert_int_equal(dockerapi_names(&ref, &n), -1); /* no repository */
	strcpy(ref.repo, "library/x");
	assert_int_equal(dockerapi_names(&ref, &n), -1); /* neither tag nor digest */
}

static void test_urls(void **state)
{
	struct dockerapi_names n;
	char url[DOCKERAPI_URL_MAX], small[40];

	(void)state;
	names_of("library/demo-web:1", &n);
	assert_int_equal(dockerapi_create_url(&n, url, sizeof(url)), 0);
	assert_string_equal(
	    url, "http://localhost/images/create?fromImage=docker.io%2Flibrary%2Fdemo-web&tag=1");
	assert_int_equal(dockerapi_inspect_url(&n, url, sizeof(url)), 0);
	assert_string_equal(url, "http://localhost/images/docker.io/library/demo-web:1/json");
	names_of("127.0.0.1:5001/team/api:V1.x", &n);
	assert_int_equal(dockerapi_create_url(&n, url, sizeof(url)), 0);
	assert_string_equal(
	    url, "http://localhost/images/create?fromImage=127.0.0.1%3A5001%2Fteam%2Fapi&tag=V1.x");
	assert_int_equal(dockerapi_create_url(&n, small, sizeof(small)), -1);
	assert_int_equal(dockerapi_inspect_url(&n, small, sizeof(small)), -1);
}

static void test_escape(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(dockerapi_escape("aZ09-._~", out, sizeof(out)), 0);
	assert_string_equal(out, "aZ09-._~");
	assert_int_equal(dockerapi_escape("a/b:c@d", out, sizeof(out)), 0);
	assert_string_equal(out, "a%2Fb%3Ac%40d");
	assert_int_equal(dockerapi_escape("& =\xff", out, sizeof(out)), 0);
	assert_string_equal(out, "%26%20%3D%FF");
	/* exactly full (15 characters and the NUL), then one too many, escaped or not */
	assert_int_equal(dockerapi_escape("aaaaaaaaaaaa%", out, sizeof(out)), 0);
	assert_int_equal(dockerapi_escape("aaaaaaaaaaaaa%", out, sizeof(out)), -1);
	assert_int_equal(dockerapi_escape("aaaaaaaaaaaaaaa", out, sizeof(out)), 0);
	assert_int_equal(dockerapi_escape("aaaaaaaaaaaaaaaa", out, sizeof(out)), -1);
	assert_int_equal(dockerapi_escape("", out, 1), 0);
	assert_string_equal(out, "");
	assert_int_equal(dockerapi_escape("", out, 0), -1);
}

static int has(const char *json, const char *digest)
{
	return dockerapi_inspect_has(json, strlen(json), digest);
}

static void test_inspect(void **state)
{
	(void)state;
	/* what dockerd answered for demo-web:1 (shortened) */
	assert_int_equal(has("{\"Id\":\"sha256:3bdb\",\"RepoTags\":[\"demo-web:1\"],"
			     "\"RepoDigests\":[\"demo-web@" D1 "\"]}",
			     D1),
			 1);
	/* any of the names: the digest is the content */
	assert_int_equal(has("{\"RepoDigests\":[\"a@" D2 "\",\"127.0.0.1:5000/b@" D1 "\"]}", D1),
			 1);
	assert_int_equal(has("{\"RepoDigests\":[\"demo-web@" D2 "\"]}", D1), 0);
	assert_int_equal(has("{\"RepoDigests\":[]}", D1), 0);
	assert_int_equal(has("{\"RepoDigests\":null}", D1), 0);
	assert_int_equal(has("{\"Id\":\"sha256:3bdb\"}", D1), 0); /* loaded, never pulled */
	assert_int_equal(has("{\"RepoDigests\":[\"x@" D1 "0\", 5, \"" D1 "\"]}", D1), 0);
	assert_int_equal(has("[\"x@" D1 "\"]", D1), -1);
	assert_int_equal(has("not json", D1), -1);
	assert_int_equal(has("", D1), -1);
}

static void test_message(void **state)
{
	char out[64];
	const char *b;

	(void)state;
	b = "{\"message\":\"no such image: docker.io/library/x:1: No such image: x:1\"}";
	dockerapi_message(b, strlen(b), out, sizeof(out));
	assert_string_equal(out, "no such image: docker.io/library/x:1: No such image: x:1");
	b = "{\"message\":\"Get \\\"https://registry-1.docker.io/v2/\\\": proxyconnect\\n\"}";
	dockerapi_message(b, strlen(b), out, sizeof(out));
	assert_string_equal(out, "Get 'https://registry-1.docker.io/v2/': proxyconnect");
	b = "<html>502 Bad Gateway</html>\r\n";
	dockerapi_message(b, strlen(b), out, sizeof(out));
	assert_string_equal(out, "<html>502 Bad Gateway</html>");
	dockerapi_message("", 0, out, sizeof(out));
	assert_string_equal(out, "(no message)");
	b = "{\"message\":\"a very long message that does not fit into the buffer at all, no\"}";
	dockerapi_message(b, strlen(b), out, sizeof(out));
	assert_int_equal(strlen(out), sizeof(out) - 1);
}

static void test_stream_real_whole(void **state)
{
	struct dockerapi_stream *s = malloc(sizeof(*s));

	(void)state;
	assert_non_null(s);
	dockerapi_stream_init(s);
	assert_int_equal(dockerapi_stream_feed(s, real_stream, strlen(real_stream)), 0);
	assert_int_equal(dockerapi_stream_end(s), 0);
	assert_string_equal(s->digest, D1);
	assert_true(s->complete);
	assert_int_equal(s->lines, 9);
	free(s);
}

/* Split anywhere: every piece size from 1 byte up gives the same outcome. */
static void test_stream_real_pieces(void **state)
{
	struct dockerapi_stream *s = malloc(sizeof(*s));
	size_t len = strlen(real_stream), piece, off;

	(void)state;
	assert_non_null(s);
	for (piece = 1; piece <= 97; piece += 3) {
		dockerapi_stream_init(s);
		for (off = 0; off < len; off += piece)
			assert_int_equal(
			    dockerapi_stream_feed(s, real_stream + off,
						  len - off < piece ? len - off : piece),
			    0);
		assert_int_equal(dockerapi_stream_end(s), 0);
		assert_string_equal(s->digest, D1);
		assert_int_equal(s->lines, 9);
	}
	free(s);
}

/* "Image is up to date", plain \n line ends, blank lines, no newline after the last line. */
static void test_stream_up_to_date(void **state)
{
	static const char text[] =
	    "\n{\"status\":\"Pulling from library/demo-web\",\"id\":\"docker.io/"
	    "library/demo-web@" D1 "\"}\n\r\n  \n"
	    "{\"status\":\"Digest: " D1 "\"}\n"
	    "{\"status\":\"Status: Image is up to date for demo-web@" D1 "\"}";
	struct dockerapi_stream *s = malloc(sizeof(*s));

	(void)state;
	assert_non_null(s);
	dockerapi_stream_init(s);
	assert_int_equal(dockerapi_stream_feed(s, text, strlen(text)), 0);
	assert_false(s->complete); /* the last line is not read until the end */
	assert_int_equal(dockerapi_stream_end(s), 0);
	assert_true(s->complete);
	assert_string_equal(s->digest, D1);
	assert_int_equal(s->lines, 3);
	free(s);
}

struct error_case {
	const char *text;
	const char *error;
};

static void test_stream_errors(void **state)
{
	static const struct error_case cases[] = {
	    {"{\"status\":\"Pulling fs layer\",\"id\":\"a\"}\r\n"
	     "{\"errorDetail\":{\"message\":\"unexpected EOF\"},\"error\":\"unexpected EOF\"}\r\n",
	     "unexpected EOF"},
	    {"{\"errorDetail\":{\"code\":1,\"message\":\"manifest for x:1 not found\"}}\n",
	     "manifest for x:1 not found"},
	    {"{\"error\":\"Get \\\"http://x/v2/\\\": dial tcp: refused\"}\n",
	     "Get 'http://x/v2/': dial tcp: refused"},
	    {"{\"error\":\"\"}\n", "dockerd reported an error"},
	    {"{\"errorDetail\":{}}\n", "dockerd reported an error"},
	    {"{\"status\":\"Pulling\"}\nnot json at all\n",
	     "dockerd sent a progress line that is not a JSON object"},
	    {"[\"status\"]\n", "dockerd sent a progress line that is not a JSON object"},
	    {"{\"status\":\"Pulling\"\n", "dockerd sent a progress line that is not a JSON object"},
	};
	struct dockerapi_stream *s = malloc(sizeof(*s));
	size_t i;

	(void)state;
	assert_non_null(s);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dockerapi_stream_init(s);
		assert_int_equal(dockerapi_stream_feed(s, cases[i].text, strlen(cases[i].text)),
				 -1);
		assert_true(s->failed);
		assert_string_equal(s->error, cases[i].error);
		/* nothing more is read, and the end says the same */
		assert_int_equal(dockerapi_stream_feed(s, "{\"status\":\"Status: ok\"}\n", 24), -1);
		assert_int_equal(dockerapi_stream_end(s), -1);
		assert_string_equal(s->error, cases[i].error);
	}
	/* an error in the last line, without a newline, shows at the end */
	dockerapi_stream_init(s);
	assert_int_equal(dockerapi_stream_feed(s, "{\"error\":\"context canceled\"}", 28), 0);
	assert_int_equal(dockerapi_stream_end(s), -1);
	assert_string_equal(s->error, "context canceled");
	free(s);
}

/* Clean ends that are not a completed pull. */
static void test_stream_incomplete(void **state)
{
	static const char *const texts[] = {
	    "",
	    "{\"status\":\"Pulling from library/x\",\"id\":\"1\"}\r\n",
	    "{\"status\":\"Digest: " D1 "\"}\r\n",
	    "{\"status\":\"Downloading\",\"id\":\"Status: \"}\r\n",
	};
	struct dockerapi_stream *s = malloc(sizeof(*s));
	size_t i;

	(void)state;
	assert_non_null(s);
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		dockerapi_stream_init(s);
		assert_int_equal(dockerapi_stream_feed(s, texts[i], strlen(texts[i])), 0);
		assert_int_equal(dockerapi_stream_end(s), -1);
		assert_string_equal(s->error,
				    "the progress stream ended before the pull completed");
	}
	/* a Digest line with a malformed digest is not taken */
	dockerapi_stream_init(s);
	assert_int_equal(dockerapi_stream_feed(s, "{\"status\":\"Digest: sha256:xyz\"}\n", 32), 0);
	assert_string_equal(s->digest, "");
	free(s);
}

/* A line of exactly DOCKERAPI_LINE_MAX bytes (newline not counted) is read; one more is not. */
static void test_stream_line_bound(void **state)
{
	static const char head[] = "{\"status\":\"Status: x\"";
	struct dockerapi_stream *s = malloc(sizeof(*s));
	char *line = malloc(DOCKERAPI_LINE_MAX + 3);
	size_t n;

	(void)state;
	assert_non_null(s);
	assert_non_null(line);
	for (n = DOCKERAPI_LINE_MAX; n <= DOCKERAPI_LINE_MAX + 1; n++) {
		memset(line, ' ', n);
		memcpy(line, head, strlen(head));
		line[n - 1] = '}';
		line[n] = '\n';
		dockerapi_stream_init(s);
		/* in two pieces, so the bound is kept across reads */
		assert_int_equal(dockerapi_stream_feed(s, line, 100) |
				     dockerapi_stream_feed(s, line + 100, n + 1 - 100),
				 n == DOCKERAPI_LINE_MAX ? 0 : -1);
		if (n == DOCKERAPI_LINE_MAX) {
			assert_int_equal(dockerapi_stream_end(s), 0);
		} else {
			assert_string_equal(s->error,
					    "dockerd sent a progress line over 16384 bytes");
		}
	}
	/* a line that never ends is cut off at the bound too */
	dockerapi_stream_init(s);
	memset(line, 'x', DOCKERAPI_LINE_MAX + 1);
	assert_int_equal(dockerapi_stream_feed(s, line, DOCKERAPI_LINE_MAX), 0);
	assert_int_equal(dockerapi_stream_feed(s, line, 1), -1);
	free(line);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names_docker_hub),
	    cmocka_unit_test(test_names_other_registries),
	    cmocka_unit_test(test_names_digest),
	    cmocka_unit_test(test_names_bad),
	    cmocka_unit_test(test_urls),
	    cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_inspect),
	    cmocka_unit_test(test_message),
	    cmocka_unit_test(test_stream_real_whole),
	    cmocka_unit_test(test_stream_real_pieces),
	    cmocka_unit_test(test_stream_up_to_date),
	    cmocka_unit_test(test_stream_errors),
	    cmocka_unit_test(test_stream_incomplete),
	    cmocka_unit_test(test_stream_line_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
