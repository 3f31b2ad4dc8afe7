/* httpd.c's connections and the buffers they borrow, through a socketpair attached as if
 * accepted: a connection that has sent nothing, or whose last response is done, holds no buffer
 * (and its struct stays small); a request takes one with its first byte, keeps it while it is
 * handled, and the next request gets the same one back from the pool; a head that arrives a
 * byte at a time, pipelined requests (also one cut in two) and a request answered later are all
 * answered in order; a connection that goes away mid-head gives its buffer back; and however
 * many connections held one, the pool keeps no more than HTTPD_SPARE_BUFS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "httpd.c"

#define MAX_CONNS (HTTPD_SPARE_BUFS + 8)

static struct ev_loop *loop;
static struct httpd *server;
static int handled;
static char paths[256];		   /* the paths handled, in order */
static struct httpd_conn *later;   /* a request the handler left to be answered later */
static struct httpd_buf *buf_seen; /* the buffer the last request was handled in */

static void handler(struct httpd_conn *conn, const struct httpd_req *req, void *arg)
{
	(void)arg;
	handled++;
	buf_seen = conn->buf;
	strncat(paths, req->path, sizeof(paths) - strlen(paths) - 1);
	if (strcmp(req->path, "/later") == 0) {
		later = conn;
		return;
	}
	httpd_add_header(conn, "X-Path", "%s", req->path);
	httpd_respond(conn, 200, req->path, strlen(req->path));
}

static int setup(void **state)
{
	struct httpd_opts o;

	(void)state;
	loop = ev_loop_new(EVFLAG_AUTO);
	httpd_opts_default(&o);
	o.max_conns = MAX_CONNS;
	server = httpd_new(loop, &o, handler, NULL);
	assert_non_null(server);
	handled = 0;
	paths[0] = '\0';
	later = NULL;
	buf_seen = NULL;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	httpd_free(server);
	ev_loop_destroy(loop);
	return 0;
}

/* A connection as if accepted; *client gets the peer's end (non-blocking). */
static struct httpd_conn *attach(int *client)
{
	struct sockaddr_storage peer = {.ss_family = AF_UNIX};
	struct httpd_conn *c;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	c = conn_new(server, sv[0], &peer);
	assert_non_null(c);
	*client = sv[1];
	return c;
}

static void turns(int n)
{
	while (n-- > 0)
		ev_run(loop, EVRUN_NOWAIT);
}

static void put(int fd, const char *s)
{
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	turns(3);
}

/* What the server sent so far, NUL-terminated, appended to buf. */
static void take(int fd, char *buf, size_t cap)
{
	size_t len = strlen(buf);
	ssize_t n;

	while (len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
}

static void test_idle_holds_nothing(void **state)
{
	int fd;
	struct httpd_conn *c = attach(&fd);

	(void)state;
	turns(3);
	assert_null(c->buf);
	/* what an idle connection costs (the README's figure): no request buffer in it */
	assert_true(sizeof(struct httpd_conn) <= 1024);
	/* woken with nothing to read: it takes a buffer to read into, and gives it back */
	ev_feed_event(loop, &c->io, EV_READ);
	turns(1);
	assert_null(c->buf);
	assert_int_equal(c->state, CONN_READING);
	close(fd);
}

static void test_request_gives_back(void **state)
{
	char out[4096] = "";
	struct httpd_buf *first;
	int fd;
	struct httpd_conn *c = attach(&fd);

	(void)state;
	put(fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(handled, 1);
	assert_non_null(buf_seen); /* the request was parsed into a buffer */
	first = buf_seen;
	take(fd, out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(out, "X-Path: /a\r\n"));
	assert_non_null(strstr(out, "Connection: keep-alive\r\n"));
	assert_null(c->buf); /* done, nothing pipelined: idle again */
	assert_int_equal(server->pool.nspares, 1);
	put(fd, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(handled, 2);
	assert_ptr_equal(buf_seen, first); /* the spare again: no malloc */
	take(fd, out, sizeof(out));
	assert_non_null(strstr(out, "X-Path: /b\r\n"));
	assert_null(c->buf);
	close(fd);
}

static void test_byte_at_a_time(void **state)
{
	static const char req[] = "GET /slow HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
	char out[4096] = "", one[2] = "";
	int fd;
	struct httpd_conn *c = attach(&fd);

	(void)state;
	for (size_t i = 0; i < sizeof(req) - 1; i++) {
		one[0] = req[i];
		put(fd, one);
		if (i + 2 < sizeof(req)) { /* mid-head: the buffer stays, with what came so far */
			assert_int_equal(handled, 0);
			assert_non_null(c->buf);
		}
	}
	assert_int_equal(handled, 1);
	assert_string_equal(paths, "/slow");
	take(fd, out, sizeof(out));
	assert_non_null(strstr(out, "X-Path: /slow\r\n"));
	assert_null(c->buf);
	close(fd);
}

static void test_pipelined(void **state)
{
	char out[8192] = "";
	const char *p1, *p2, *p3;
	int fd;
	struct httpd_conn *c = attach(&fd);

	(void)state;
	put(fd, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\nGET /4 HT");
	turns(10);
	assert_string_equal(paths, "/1/2/3");
	assert_non_null(c->buf); /* the fourth is still arriving */
	put(fd, "TP/1.1\r\nHost: x\r\n\r\n");
	turns(3);
	assert_string_equal(paths, "/1/2/3/4");
	take(fd, out, sizeof(out));
	p1 = strstr(out, "X-Path: /1\r\n");
	p2 = strstr(out, "X-Path: /2\r\n");
	p3 = strstr(out, "X-Path: /3\r\n");
	assert_true(p1 && p2 && p3 && p1 < p2 && p2 < p3); /* answered in the order asked */
	assert_true(strstr(out, "X-Path: /4\r\n") > p3);
	assert_null(c->buf);
	assert_int_equal(server->pool.nspares, 1); /* one buffer served all four */
	close(fd);
}

static void test_answered_later(void **state)
{
	char out[4096] = "";
	int fd;
	struct httpd_conn *c = attach(&fd);

	(void)state;
	put(fd, "GET /later HTTP/1.1\r\nX-Keep: me\r\n\r\n");
	assert_ptr_equal(later, c);
	turns(3);
	assert_non_null(c->buf); /* the request is still being handled: its strings are valid */
	assert_string_equal(httpd_request(c)->path, "/later");
	assert_string_equal(httpd_req_header(httpd_request(c), "X-Keep"), "me");
	httpd_respond(c, 204, NULL, 0);
	take(fd, out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 204 No Content\r\n"));
	assert_null(c->buf);
	close(fd);
}

static void test_gone_mid_head(void **state)
{
	int fd;
	struct httpd_conn *c = attach(&fd);

	(void)state;
	put(fd, "GET /gone HTTP/1.1\r\nHo");
	assert_non_null(c->buf);
	close(fd);
	turns(3); /* EOF: closed, then freed by the reaper */
	assert_int_equal(httpd_conn_count(server), 0);
	assert_int_equal(server->pool.nspares, 1);
	assert_int_equal(handled, 0);
}

static void test_pool_bounded(void **state)
{
	char out[4096];
	int fd[MAX_CONNS];
	struct httpd_conn *c[MAX_CONNS];

	(void)state;
	for (int i = 0; i < MAX_CONNS; i++) { /* all mid-request at once: one buffer each */
		c[i] = attach(&fd[i]);
		put(fd[i], "GET /p HTTP/1.1\r\n");
		assert_non_null(c[i]->buf);
		for (int j = 0; j < i; j++)
			assert_ptr_not_equal(c[i]->buf, c[j]->buf);
	}
	for (int i = 0; i < MAX_CONNS; i++)
		put(fd[i], "\r\n");
	assert_int_equal(handled, MAX_CONNS);
	for (int i = 0; i < MAX_CONNS; i++) {
		out[0] = '\0';
		take(fd[i], out, sizeof(out));
		assert_non_null(strstr(out, "X-Path: /p\r\n"));
		assert_null(c[i]->buf);
	}
	assert_int_equal(server->pool.nspares, HTTPD_SPARE_BUFS); /* the rest were freed */
	for (int i = 0; i < MAX_CONNS; i++)
		close(fd[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_idle_holds_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_gives_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_byte_at_a_time, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_answered_later, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gone_mid_head, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pool_bounded, setup, teardown),
	};

	log_init("test", LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
