/* fuzz_http_head: request heads as a client sends them, through the real server: shared/httpd.c
 * (included, to attach a socketpair as if accepted), httpd_parse.c with http-parser, and
 * registry/api.c's routing and validation of /v2/ paths, names, tags, digests and ?ns= (included
 * too; with no upstream configured nothing goes further than validation). The input is written
 * to the client end of a socketpair and the private loop runs until nothing moves; pipelined
 * requests are answered in turn. Beyond not crashing or leaking, what the client receives must
 * be well-framed HTTP/1.1: a status line, "Name: value" header lines, a Content-Length whose
 * body follows exactly (none after a HEAD), and nothing after "Connection: close". */
#include <sys/socket.h>

#include "fuzz.h"
#include "api.c"
#include "httpd.c" /* shared/, through -Ishared */
#include "httpd_range.h"

#define OUT_MAX (4 * 1024 * 1024)
#define REQS_MAX 1024

static struct ev_loop *loop;
static struct httpd *server;
static struct registry_conf rconf;
static struct registry reg;

static struct {
	int is_head[REQS_MAX]; /* of each request the handler saw, in order */
	size_t n;
} seen;

static void exercise(const struct httpd_req *req)
{
	char buf[2048];
	off_t start, end;

	(void)httpd_req_header(req, "Host");
	(void)httpd_req_header_all(req, "Accept", buf, sizeof(buf));
	(void)httpd_query_param(req, "ns", buf, sizeof(buf));
	(void)httpd_query_param(req, "n", buf, 8);
	(void)httpd_query_param(req, "last", buf, sizeof(buf));
	(void)httpd_range_parse(httpd_req_header(req, "Range"), 1000, &start, &end);
}

static void handler(struct httpd_conn *conn, const struct httpd_req *req, void *arg)
{
	const char *echo = httpd_req_header(req, "X-Echo");

	(void)arg;
	if (seen.n < REQS_MAX)
		seen.is_head[seen.n] = req->is_head;
	seen.n++;
	exercise(req);
	if (echo) /* a peer's value in a response header: never a second header */
		httpd_add_header(conn, "X-Echo", "%s", echo);
	if (strcmp(req->path, "/metrics") == 0 || strncmp(req->path, "/_microscale/", 13) == 0) {
		httpd_respond(conn, 200, "ok\n", 3);
		return;
	}
	api_handle(conn, req, &reg);
	if (conn->state == CONN_HANDLING) /* routed to an upstream: none is configured */
		httpd_respond(conn, 204, NULL, 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct httpd_opts o;

	(void)argc;
	(void)argv;
	log_init("fuzz", LOG_DEBUG); /* hostile bytes go through the log formatting too */
	loop = ev_loop_new(EVFLAG_AUTO);
	httpd_opts_default(&o);
	o.max_head_bytes = 4096;
	o.max_body_bytes = 1024;
	o.max_conns = 4;
	server = httpd_new(loop, &o, handler, NULL);
	if (!loop || !server)
		abort();
	rconf.retries = 0;
	reg.loop = loop;
	reg.conf = &rconf;
	return 0;
}

/* Reads what the server sent so far; the bytes moved. */
static size_t drain(int fd, char *out, size_t *len)
{
	size_t moved = 0;
	char tmp[65536];
	ssize_t n;

	while ((n = read(fd, tmp, sizeof(tmp))) > 0) {
		size_t keep = *len + (size_t)n <= OUT_MAX ? (size_t)n : OUT_MAX - *len;

		memcpy(out + *len, tmp, keep);
		*len += keep;
		moved += (size_t)n;
	}
	return moved;
}

static const char *find_crlf2(const char *s, size_t len)
{
	return memmem(s, len, "\r\n\r\n", 4);
}

/* The responses in OUT, one after the other. */
static void check_framing(const char *out, size_t len)
{
	size_t pos = 0, i = 0;
	int closed = 0;

	while (pos < len) {
		const char *head = out + pos, *end = find_crlf2(head, len - pos), *line;
		long long clen = -1;
		int has_body;

		FUZZ_ASSERT(!closed); /* nothing after Connection: close */
		FUZZ_ASSERT(end);
		FUZZ_ASSERT(len - pos >= 13 && memcmp(head, "HTTP/1.1 ", 9) == 0);
		FUZZ_ASSERT(head[9] >= '1' && head[9] <= '5' && head[12] == ' ');
		for (line = memmem(head, (size_t)(end + 2 - head), "\r\n", 2) + 2;
		     line < end + 2;) {
			const char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
			size_t nlen =
			    strspn(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					 "0123456789-");

			FUZZ_ASSERT(eol && nlen > 0 && line[nlen] == ':' && line[nlen + 1] == ' ');
			FUZZ_ASSERT(!memchr(line, '\r', (size_t)(eol - line)));
			FUZZ_ASSERT(!memchr(line, '\n', (size_t)(eol - line)));
			if (nlen == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
				FUZZ_ASSERT(clen < 0);
				clen = strtoll(line + 16, NULL, 10);
			}
			if (nlen == 10 && strncasecmp(line, "Connection", 10) == 0 &&
			    strncmp(line + 12, "close", 5) == 0)
				closed = 1;
			line = eol + 2;
		}
		FUZZ_ASSERT(clen >= 0);
		/* httpd's own errors (400, 431) always carry their body */
		has_body = i < seen.n && i < REQS_MAX ? !seen.is_head[i] : 1;
		pos = (size_t)(end + 4 - out);
		if (has_body) {
			FUZZ_ASSERT((long long)(len - pos) >= clen);
			pos += (size_t)clen;
		}
		i++;
	}
	FUZZ_ASSERT(i <= seen.n + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *out;
	struct sockaddr_storage peer = {0};
	struct sockaddr_in *in = (struct sockaddr_in *)&peer;
	size_t written = 0, outlen = 0, last_in = (size_t)-1, last_seen = 0;
	int sv[2], idle = 0;
	enum conn_state last_state = CONN_CLOSED;

	if (!out && !(out = malloc(OUT_MAX + 1)))
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(0x7f000001);
	seen.n = 0;
	if (!conn_new(server, sv[0], &peer))
		abort();
	/* Runs the loop until nothing moves: no byte written or read, no request handled, no
	 * change in the connection. */
	for (int turn = 0; turn < 100000 && idle < 3; turn++) {
		size_t moved = 0;
		ssize_t n;

		if (written < size) {
			n = write(sv[1], data + written, size - written);
			if (n > 0)
				written += (size_t)n, moved += (size_t)n;
		}
		ev_run(loop, EVRUN_NOWAIT);
		moved += drain(sv[1], out, &outlen);
		if (!LIST_EMPTY(&server->conns)) {
			moved += LIST_FIRST(&server->conns)->state != last_state ||
				 LIST_FIRST(&server->conns)->in_len != last_in;
			last_state = LIST_FIRST(&server->conns)->state;
			last_in = LIST_FIRST(&server->conns)->in_len;
		}
		moved += seen.n != last_seen;
		last_seen = seen.n;
		idle = moved == 0 && written == size ? idle + 1 : 0;
	}
	while (!LIST_EMPTY(&server->conns))
		httpd_close(LIST_FIRST(&server->conns));
	reap_cb(loop, &server->reaper, 0);
	drain(sv[1], out, &outlen);
	close(sv[1]);
	out[outlen] = '\0';
	if (outlen < OUT_MAX)
		check_framing(out, outlen);
	return 0;
}
