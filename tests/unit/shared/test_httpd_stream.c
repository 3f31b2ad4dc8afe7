/* httpd's streamed responses, through a real socket on the loop: the head has no length and
 * says close; writes reach the client in order; a client that reads nothing is dropped once the
 * queue would pass its bound (and the queue never passes it); a client that goes away ends the
 * stream (the release runs once); HEAD gets the head alone; httpd_shutdown ends streams; a write
 * to a connection that does not stream is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"
#include "log.h"

#define QUEUE_MAX (64 * 1024)

static struct ev_loop *loop;
static struct httpd *server;
static struct httpd_conn *streaming; /* the connection streaming now, or NULL */
static int released, handled, stream_rc;

static void on_release(struct httpd_conn *conn, void *arg)
{
	(void)arg;
	assert_ptr_equal(conn, streaming);
	streaming = NULL;
	released++;
}

static void handler(struct httpd_conn *conn, const struct httpd_req *req, void *arg)
{
	(void)arg;
	handled++;
	if (strcmp(req->path, "/plain") == 0) {
		assert_int_equal(httpd_stream_write(conn, "x", 1), -1); /* not a stream */
		httpd_respond(conn, 200, "ok", 2);
		return;
	}
	httpd_add_header(conn, "Content-Type", "text/event-stream");
	stream_rc = httpd_respond_stream(conn, 200, QUEUE_MAX);
	if (stream_rc == 0) {
		streaming = conn;
		httpd_set_release(conn, on_release, NULL);
	}
}

/* Runs the loop until *flag changes from before, or about 5 s pass. */
static void spin_until(const int *flag, int before)
{
	for (int i = 0; i < 5000 && *flag == before; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		if (*flag == before)
			poll(NULL, 0, 1);
	}
	assert_int_not_equal(*flag, before);
}

static int client(const char *request, int rcvbuf)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)httpd_port(server))};
	int fd = socket(AF_INET, SOCK_STREAM, 0), before = handled;

	assert_true(fd >= 0);
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	spin_until(&handled, before);
	return fd;
}

/* Reads what has arrived (the loop runs meanwhile) until it holds want, or EOF. */
static size_t read_until(int fd, char *buf, size_t cap, const char *want)
{
	size_t len = 0;

	for (int i = 0; i < 5000 && len + 1 < cap; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		ev_run(loop, EVRUN_NOWAIT);
		if (poll(&p, 1, 1) <= 0)
			continue;
		n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (want && strstr(buf, want))
			break;
	}
	buf[len] = '\0';
	return len;
}

static int setup(void **state)
{
	struct httpd_opts o;
	char err[128];

	(void)state;
	loop = ev_loop_new(EVFLAG_AUTO);
	httpd_opts_default(&o);
	server = httpd_new(loop, &o, handler, NULL);
	assert_non_null(server);
	assert_int_equal(httpd_listen(server, "127.0.0.1:0", err, sizeof(err)), 0);
	released = handled = 0;
	streaming = NULL;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	httpd_free(server);
	ev_loop_destroy(loop);
	return 0;
}

static void test_stream_in_order(void **state)
{
	char buf[4096];
	int fd = client("GET /s HTTP/1.1\r\nHost: x\r\n\r\n", 0);

	(void)state;
	assert_int_equal(stream_rc, 0);
	assert_non_null(streaming);
	assert_int_equal(httpd_stream_write(streaming, "data: 1\n\n", 9), 0);
	assert_int_equal(httpd_stream_write(streaming, "data: 2\n\n", 9), 0);
	read_until(fd, buf, sizeof(buf), "data: 2\n\n");
	assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(buf, "Connection: close\r\n"));
	assert_non_null(strstr(buf, "Content-Type: text/event-stream\r\n"));
	assert_null(strstr(buf, "Content-Length"));
	assert_non_null(strstr(buf, "\r\n\r\ndata: 1\n\ndata: 2\n\n"));
	assert_int_equal(released, 0);
	/* the client goes: the stream ends, the release runs once */
	close(fd);
	spin_until(&released, 0);
	assert_int_equal(released, 1);
	assert_null(streaming);
}

static void test_slow_reader_dropped(void **state)
{
	static char chunk[8192];
	int fd = client("GET /s HTTP/1.1\r\n\r\n", 4096), writes = 0;
	size_t most = 0;

	(void)state;
	memset(chunk, 'x', sizeof(chunk));
	/* the client reads nothing: the socket fills, then the queue, then the drop */
	while (streaming && writes < 100000) {
		struct httpd_conn *c = streaming;

		if (httpd_stream_write(c, chunk, sizeof(chunk)) == 0) {
			size_t q = httpd_stream_queued(c);

			most = q > most ? q : most;
		}
		writes++;
		ev_run(loop, EVRUN_NOWAIT);
	}
	assert_null(streaming);
	assert_int_equal(released, 1);
	assert_true(most <= QUEUE_MAX + 256); /* the bound, plus what is left of the head */
	assert_true(most > QUEUE_MAX / 2);    /* it did queue before it dropped */
	close(fd);
}

static void test_head_and_plain(void **state)
{
	char buf[4096];
	int fd = client("HEAD /s HTTP/1.1\r\n\r\n", 0);
	size_t len;

	(void)state;
	assert_int_equal(stream_rc, -1);
	assert_null(streaming);
	len = read_until(fd, buf, sizeof(buf), NULL); /* to EOF: the connection closes */
	assert_true(len > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
	assert_true(strcmp(buf + len - 4, "\r\n\r\n") == 0);
	close(fd);
	fd = client("GET /plain HTTP/1.1\r\n\r\n", 0);
	read_until(fd, buf, sizeof(buf), "ok");
	assert_non_null(strstr(buf, "Content-Length: 2\r\n"));
	close(fd);
}

static void test_shutdown_ends_streams(void **state)
{
	char buf[4096];
	int fd = client("GET /s HTTP/1.1\r\n\r\n", 0);

	(void)state;
	assert_non_null(streaming);
	httpd_shutdown(server);
	assert_int_equal(released, 1);
	assert_null(streaming);
	read_until(fd, buf, sizeof(buf), NULL); /* the head, then EOF */
	assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_stream_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slow_reader_dropped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_head_and_plain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shutdown_ends_streams, setup, teardown),
	};

	log_init("test", LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
