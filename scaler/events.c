/* events: Marathon's event bus, GET /v2/events as server-sent events, on the same libcurl/libev
 * client as every other call. Only the events that say an app changed are asked for
 * (deployment_info, deployment_success, deployment_failed, status_update_event); each complete
 * event goes to the owner's callback with its parsed data. The stream only makes the scaler
 * learn sooner: everything it tells is read again from /v2/apps, so a lost event costs latency,
 * never correctness.
 *
 * The stream is kept open; when it ends or fails it is opened again after a backoff (1 s doubling
 * to 30 s, reset once attached). A Marathon that runs with its event stream off answers 404 or
 * 503: the scaler polls as without it, and asks again every 30 s. Lines and events are bounded;
 * an event larger than EVENT_MAX is skipped whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"

#define LINE_MAX_BYTES (64 * 1024)
#define EVENT_MAX (1024 * 1024)
#define BACKOFF_MIN_S 1.0
#define BACKOFF_MAX_S 30.0
#define IDLE_LIMIT_S 600L /* an idle stream is re-opened after this: half-open connections end */

struct events {
	struct ev_loop *loop;
	struct fetch_loop *fl;
	const struct marathon_conf *conf;
	const char *auth_header;
	events_fn on_event;
	events_state_fn on_state;
	void *arg;
	struct fetch *f;
	ev_timer retry;
	double backoff_s;
	int attached;
	int off_logged; /* Marathon said the stream is off (logged once) */
	unsigned long received, skipped;
	/* the event being read */
	char type[64];
	char *line;
	size_t line_len;
	int line_overflow;
	char *data;
	size_t data_len;
	int data_overflow;
};

static void reset_event(struct events *e)
{
	e->type[0] = '\0';
	e->data_len = 0;
	e->data_overflow = 0;
}

static void dispatch(struct events *e)
{
	json_t *doc;

	if (e->data_overflow) {
		e->skipped++;
		log_warn("marathon_event_skipped", "event=%s reason=\"larger than %d bytes\"",
			 e->type[0] ? e->type : "message", EVENT_MAX);
	} else if (e->data_len > 0) {
		doc = json_loadb(e->data, e->data_len, 0, NULL);
		e->received++;
		if (doc && e->on_event)
			e->on_event(e->type[0] ? e->type : "message", doc, e->arg);
		json_decref(doc);
	}
	reset_event(e);
}

static void add_data(struct events *e, const char *v, size_t n)
{
	if (e->data_overflow || e->data_len + n + 1 > EVENT_MAX) {
		e->data_overflow = 1;
		return;
	}
	if (e->data_len > 0)
		e->data[e->data_len++] = '\n';
	memcpy(e->data + e->data_len, v, n);
	e->data_len += n;
}

/* One line of the stream, without its end (SSE: "field: value", ":" comments, "" dispatches). */
static void on_line(struct events *e, const char *l, size_t n)
{
	const char *colon = memchr(l, ':', n), *v;
	size_t flen = colon ? (size_t)(colon - l) : n, vlen;

	if (n == 0) {
		dispatch(e);
		return;
	}
	if (flen == 0)
		return; /* a comment */
	v = colon ? colon + 1 : l + n;
	vlen = n - (size_t)(v - l);
	if (vlen > 0 && *v == ' ') {
		v++;
		vlen--;
	}
	if (flen == 5 && memcmp(l, "event", 5) == 0)
		snprintf(e->type, sizeof(e->type), "%.*s", (int)vlen, v);
	else if (flen == 4 && memcmp(l, "data", 4) == 0)
		add_data(e, v, vlen);
}

int events_feed(struct events *e, const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = buf[i];

		if (c == '\n') {
			if (e->line_len > 0 && e->line[e->line_len - 1] == '\r')
				e->line_len--;
			if (e->line_overflow)
				e->data_overflow = 1; /* the event it belonged to is skipped */
			else
				on_line(e, e->line, e->line_len);
			e->line_len = 0;
			e->line_overflow = 0;
		} else if (e->line_len < LINE_MAX_BYTES) {
			e->line[e->line_len++] = c;
		} else {
			e->line_overflow = 1;
		}
	}
	return 0;
}

/* --- the connection --- */

static void set_attached(struct events *e, int attached)
{
	if (e->attached == attached)
		return;
	e->attached = attached;
	if (e->on_state)
		e->on_state(attached, e->arg);
}

static int on_response(struct fetch *f, long status, void *arg)
{
	struct events *e = arg;

	(void)f;
	if (status == 200) {
		log_info("marathon_events_attached", "url=%s/v2/events", e->conf->url);
		e->backoff_s = BACKOFF_MIN_S;
		e->off_logged = 0;
		e->line_len = 0;
		reset_event(e);
		set_attached(e, 1);
		return 0;
	}
	if ((status == 404 || status == 503) && !e->off_logged) {
		log_info("marathon_events_off",
			 "status=%ld reason=\"Marathon's event stream is off: polling\"", status);
		e->off_logged = 1;
	} else if (status != 404 && status != 503) {
		log_warn("marathon_events_refused", "status=%ld", status);
	}
	e->backoff_s = BACKOFF_MAX_S;
	return -1;
}

static int on_data(struct fetch *f, const char *buf, size_t len, void *arg)
{
	(void)f;
	return events_feed(arg, buf, len);
}

static void on_done(struct fetch *f, int ok, const char *err, void *arg)
{
	struct events *e = arg;

	(void)f;
	e->f = NULL;
	if (e->attached)
		log_warn("marathon_events_lost", "error=\"%s\" retry_s=%.1f",
			 ok ? "the stream ended" : (err ? err : "failed"), e->backoff_s);
	set_attached(e, 0);
	ev_timer_set(&e->retry, e->backoff_s, 0);
	ev_timer_start(e->loop, &e->retry);
	e->backoff_s = e->backoff_s * 2 < BACKOFF_MAX_S ? e->backoff_s * 2 : BACKOFF_MAX_S;
}

static void connect_stream(struct events *e)
{
	static const struct fetch_hooks hooks = {
	    .on_response = on_response, .on_data = on_data, .on_done = on_done};
	const char *headers[] = {"Accept: text/event-stream", e->auth_header, NULL};
	struct fetch_req req = {.headers = headers,
				.userpwd = e->conf->userpwd,
				.connect_timeout_ms = e->conf->timeout_ms,
				.low_speed_time_s = IDLE_LIMIT_S};
	char url[2048];

	snprintf(url, sizeof(url),
		 "%s/v2/events?event_type=deployment_info&event_type=deployment_success"
		 "&event_type=deployment_failed&event_type=status_update_event",
		 e->conf->url);
	req.url = url;
	if (!(e->f = fetch_start(e->fl, &req, &hooks, e))) {
		ev_timer_set(&e->retry, BACKOFF_MAX_S, 0);
		ev_timer_start(e->loop, &e->retry);
	}
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	connect_stream(w->data);
}

struct events *events_new(struct ev_loop *loop, struct fetch_loop *fl,
			  const struct marathon_conf *conf, const char *auth_header,
			  events_fn on_event, events_state_fn on_state, void *arg)
{
	struct events *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	*e = (struct events){.loop = loop,
			     .fl = fl,
			     .conf = conf,
			     .auth_header = auth_header,
			     .on_event = on_event,
			     .on_state = on_state,
			     .arg = arg,
			     .backoff_s = BACKOFF_MIN_S};
	e->line = malloc(LINE_MAX_BYTES);
	e->data = malloc(EVENT_MAX);
	if (!e->line || !e->data) {
		events_free(e);
		return NULL;
	}
	ev_timer_init(&e->retry, on_retry, 0, 0);
	e->retry.data = e;
	if (loop)
		connect_stream(e);
	return e;
}

/* The stream and the timer go first (their callbacks point at e), then the buffers. */
void events_free(struct events *e)
{
	if (!e)
		return;
	if (e->loop)
		ev_timer_stop(e->loop, &e->retry);
	if (e->f)
		fetch_cancel(e->f);
	free(e->line);
	free(e->data);
	free(e);
}

json_t *events_status_json(const struct events *e)
{
	return json_pack("{s:b, s:I, s:I}", "attached", e->attached, "received",
			 (json_int_t)e->received, "skipped", (json_int_t)e->skipped);
}
