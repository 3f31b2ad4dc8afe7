/* fetch: libcurl's multi socket API on libev. curl tells us which sockets to watch (sock_cb)
 * and when to wake it (timer_cb); we tell curl what happened (socket_action) and then collect
 * finished transfers (collect_done). */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "fetch.h"
#include "log.h"

#define FETCH_MAX_HEADERS_BYTES 65536
#define FETCH_DEFAULT_MAX_BODY (1024 * 1024)
#define FETCH_BUFFER_SIZE (256L * 1024)

struct fetch_loop {
	struct ev_loop *loop;
	CURLM *multi;
	ev_timer timer;
	ev_check deferred; /* removes cancelled transfers outside libcurl's callbacks */
	int in_curl;	   /* inside curl_multi_socket_action: no handle may be removed now */
	unsigned active;
	LIST_HEAD(, fetch) all;	      /* running */
	LIST_HEAD(, fetch) cancelled; /* waiting for reap_cancelled */
};

struct fetch_sock {
	struct fetch_loop *fl;
	curl_socket_t fd;
	ev_io io;
};

struct fetch {
	struct fetch_loop *fl;
	LIST_ENTRY(fetch) link; /* in all, then maybe in cancelled */
	CURL *easy;
	struct curl_slist *headers;
	struct fetch_hooks hooks;
	void *arg;
	long status;
	int responded; /* on_response has run */
	int aborted;   /* a hook asked to stop */
	int cancelled; /* fetch_cancel: silent from now on */
	char *hdrs;    /* "Name: value\0" lines of the latest response */
	size_t hdrs_len;
	char *body;
	size_t body_len, max_body;
	int body_overflow;
	ev_tstamp started;
	char errbuf[CURL_ERROR_SIZE];
};

/* The one destructor: the handle must already be out of the multi handle. */
static void fetch_free(struct fetch *f)
{
	curl_easy_cleanup(f->easy);
	curl_slist_free_all(f->headers);
	free(f->hdrs);
	free(f->body);
	free(f);
}

static void detach(struct fetch *f)
{
	curl_multi_remove_handle(f->fl->multi, f->easy);
	f->fl->active--;
}

static int report_response(struct fetch *f)
{
	if (f->responded)
		return 0;
	f->responded = 1;
	curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &f->status);
	if (f->hooks.on_response && f->hooks.on_response(f, f->status, f->arg) < 0) {
		f->aborted = 1;
		return -1;
	}
	return 0;
}

static void finish(struct fetch *f, CURLcode rc)
{
	const char *err = NULL;
	int ok;

	LIST_REMOVE(f, link);
	detach(f);
	if (rc == CURLE_OK && report_response(f) < 0)
		rc = CURLE_ABORTED_BY_CALLBACK;
	ok = rc == CURLE_OK && !f->body_overflow;
	if (f->body_overflow)
		err = "body too large";
	else if (f->aborted)
		err = "aborted";
	else if (rc != CURLE_OK)
		err = f->errbuf[0] ? f->errbuf : curl_easy_strerror(rc);
	if (!f->cancelled && f->hooks.on_done)
		f->hooks.on_done(f, ok, err, f->arg);
	fetch_free(f);
}

static void collect_done(struct fetch_loop *fl)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(fl->multi, &left))) {
		struct fetch *f;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&f);
		if (!f->cancelled) /* a cancelled one is reaped, not finished */
			finish(f, msg->data.result);
	}
}

static void reap_cancelled(struct fetch_loop *fl)
{
	struct fetch *f;

	while ((f = LIST_FIRST(&fl->cancelled))) {
		LIST_REMOVE(f, link);
		detach(f);
		fetch_free(f);
	}
}

static void socket_action(struct fetch_loop *fl, curl_socket_t fd, int events)
{
	int running;

	fl->in_curl++;
	curl_multi_socket_action(fl->multi, fd, events, &running);
	fl->in_curl--;
	reap_cancelled(fl);
	collect_done(fl);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fetch_sock *s = w->data;
	int events =
	    (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);

	(void)loop;
	socket_action(s->fl, s->fd, events);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	socket_action(w->data, CURL_SOCKET_TIMEOUT, 0);
}

static void deferred_cb(struct ev_loop *loop, ev_check *w, int revents)
{
	(void)revents;
	ev_check_stop(loop, w);
	reap_cancelled(w->data);
}

/* CURLMOPT_TIMERFUNCTION: never call back into curl from here; a zero timeout fires on the next
 * loop turn. Sub-millisecond precision matters: rounding down to 0 s would spin. */
static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct fetch_loop *fl = userp;

	(void)multi;
	ev_timer_stop(fl->loop, &fl->timer);
	if (timeout_ms >= 0) {
		ev_timer_set(&fl->timer, (double)timeout_ms / 1000.0, 0);
		ev_timer_start(fl->loop, &fl->timer);
	}
	return 0;
}

/* CURLMOPT_SOCKETFUNCTION: add, change or remove the ev_io watcher of one of curl's sockets. */
static int curl_sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *sockp)
{
	struct fetch_loop *fl = userp;
	struct fetch_sock *s = sockp;
	int events = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			ev_io_stop(fl->loop, &s->io);
			free(s);
			curl_multi_assign(fl->multi, fd, NULL);
		}
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		s->fl = fl;
		s->fd = fd;
		ev_init(&s->io, io_cb);
		s->io.data = s;
		curl_multi_assign(fl->multi, fd, s);
	}
	ev_io_stop(fl->loop, &s->io);
	ev_io_set(&s->io, fd, events);
	ev_io_start(fl->loop, &s->io);
	return 0;
}

struct fetch_loop *fetch_loop_new(struct ev_loop *loop)
{
	struct fetch_loop *fl = calloc(1, sizeof(*fl));

	if (!fl)
		return NULL;
	fl->loop = loop;
	LIST_INIT(&fl->all);
	LIST_INIT(&fl->cancelled);
	fl->multi = curl_multi_init();
	if (!fl->multi) {
		free(fl);
		return NULL;
	}
	ev_timer_init(&fl->timer, timer_cb, 0, 0);
	fl->timer.data = fl;
	ev_check_init(&fl->deferred, deferred_cb);
	fl->deferred.data = fl;
	curl_multi_setopt(fl->multi, CURLMOPT_SOCKETFUNCTION, curl_sock_cb);
	curl_multi_setopt(fl->multi, CURLMOPT_SOCKETDATA, fl);
	curl_multi_setopt(fl->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
	curl_multi_setopt(fl->multi, CURLMOPT_TIMERDATA, fl);
	return fl;
}

void fetch_loop_free(struct fetch_loop *fl)
{
	if (!fl)
		return;
	while (!LIST_EMPTY(&fl->all))
		fetch_cancel(LIST_FIRST(&fl->all));
	reap_cancelled(fl);
	ev_timer_stop(fl->loop, &fl->timer);
	ev_check_stop(fl->loop, &fl->deferred);
	curl_multi_cleanup(fl->multi);
	free(fl);
}

unsigned fetch_loop_active(const struct fetch_loop *fl)
{
	return fl->active;
}

static size_t header_cb(char *buf, size_t size, size_t n, void *userp)
{
	struct fetch *f = userp;
	size_t len = size * n, keep = len;
	char *grown;

	while (keep > 0 && (buf[keep - 1] == '\r' || buf[keep - 1] == '\n'))
		keep--;
	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0)
		f->hdrs_len = 0; /* a new response (after a redirect or a 100): forget the last */
	else if (keep == 0)
		return len;
	if (f->hdrs_len + keep + 1 > FETCH_MAX_HEADERS_BYTES)
		return 0; /* aborts: nobody needs headers this large */
	grown = realloc(f->hdrs, f->hdrs_len + keep + 1);
	if (!grown)
		return 0;
	f->hdrs = grown;
	memcpy(f->hdrs + f->hdrs_len, buf, keep);
	f->hdrs[f->hdrs_len + keep] = '\0';
	f->hdrs_len += keep + 1;
	return len;
}

static int collect(struct fetch *f, const char *buf, size_t len)
{
	char *grown;

	if (f->body_len + len > f->max_body) {
		f->body_overflow = 1;
		return -1;
	}
	grown = realloc(f->body, f->body_len + len + 1);
	if (!grown)
		return -1;
	f->body = grown;
	memcpy(f->body + f->body_len, buf, len);
	f->body_len += len;
	f->body[f->body_len] = '\0';
	return 0;
}

static size_t write_cb(char *buf, size_t size, size_t n, void *userp)
{
	struct fetch *f = userp;
	size_t len = size * n;

	if (f->cancelled || report_response(f) < 0)
		return 0;
	if (f->hooks.on_data) {
		if (f->hooks.on_data(f, buf, len, f->arg) < 0) {
			f->aborted = 1;
			return 0;
		}
		return len;
	}
	return collect(f, buf, len) < 0 ? 0 : len;
}

static int set_method(struct fetch *f, const struct fetch_req *req)
{
	CURL *e = f->easy;
	const char *m = req->method ? req->method : "GET";

	if (strcmp(m, "GET") == 0)
		return 0;
	if (strcmp(m, "HEAD") == 0)
		return curl_easy_setopt(e, CURLOPT_NOBODY, 1L) == CURLE_OK ? 0 : -1;
	if (curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)req->body_len) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "") != CURLE_OK)
		return -1;
	return 0;
}

static int set_options(struct fetch *f, const struct fetch_req *req)
{
	CURL *e = f->easy;
	const char *const *h;
	int bad = 0;

	for (h = req->headers; h && *h; h++) {
		struct curl_slist *l = curl_slist_append(f->headers, *h);

		if (!l)
			return -1;
		f->headers = l;
	}
	bad |= curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, f) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->errbuf) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, req->follow_redirects ? 1L : 0L) !=
	       CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "microscale/1.0") != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->headers) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, f) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, f) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
				req->connect_timeout_ms ? req->connect_timeout_ms : 10000L) !=
	       CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
				req->low_speed_time_s ? req->low_speed_time_s : 30L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
	/* Blobs are large: 16 KiB reads cost four system calls each on the way to the client. */
	bad |= curl_easy_setopt(e, CURLOPT_BUFFERSIZE, FETCH_BUFFER_SIZE) != CURLE_OK;
	if (req->userpwd) {
		bad |= curl_easy_setopt(e, CURLOPT_USERPWD, req->userpwd) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) != CURLE_OK;
	}
	if (req->ca_file)
		bad |= curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file) != CURLE_OK;
	if (req->unix_socket)
		bad |= curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, req->unix_socket) != CURLE_OK;
	if (req->insecure) {
		bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK;
	}
	return bad || set_method(f, req) < 0 ? -1 : 0;
}

struct fetch *fetch_start(struct fetch_loop *fl, const struct fetch_req *req,
			  const struct fetch_hooks *hooks, void *arg)
{
	struct fetch *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->fl = fl;
	f->hooks = *hooks;
	f->arg = arg;
	f->max_body = req->max_body ? req->max_body : FETCH_DEFAULT_MAX_BODY;
	f->started = ev_now(fl->loop);
	f->easy = curl_easy_init();
	if (!f->easy || set_options(f, req) < 0 ||
	    curl_multi_add_handle(fl->multi, f->easy) != CURLM_OK) {
		log_error("fetch_start", "url=\"%s\" error=\"cannot set up transfer\"", req->url);
		if (!f->easy)
			free(f);
		else
			fetch_free(f);
		return NULL;
	}
	fl->active++;
	LIST_INSERT_HEAD(&fl->all, f, link);
	return f;
}

void fetch_cancel(struct fetch *f)
{
	struct fetch_loop *fl = f->fl;

	if (f->cancelled)
		return;
	f->cancelled = 1;
	LIST_REMOVE(f, link);
	LIST_INSERT_HEAD(&fl->cancelled, f, link);
	/* curl forbids removing a handle from inside its callbacks: do it once they return. */
	if (fl->in_curl)
		return;
	ev_check_start(fl->loop, &fl->deferred);
}

long fetch_status(const struct fetch *f)
{
	return f->status;
}

const char *fetch_header(const struct fetch *f, const char *name)
{
	size_t nlen = strlen(name), off = 0;

	while (off < f->hdrs_len) {
		const char *line = f->hdrs + off;

		if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
			line += nlen + 1;
			while (*line == ' ' || *line == '\t')
				line++;
			return line;
		}
		off += strlen(line) + 1;
	}
	return NULL;
}

const char *fetch_body(const struct fetch *f, size_t *len)
{
	*len = f->body_len;
	return f->body ? f->body : "";
}

double fetch_elapsed(const struct fetch *f)
{
	return ev_now(f->fl->loop) - f->started;
}

int fetch_os_errno(const struct fetch *f)
{
	long err = 0;

	if (curl_easy_getinfo(f->easy, CURLINFO_OS_ERRNO, &err) != CURLE_OK)
		return 0;
	return (int)err;
}
