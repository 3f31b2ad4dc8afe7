/* fetch: an HTTP client on libcurl's multi socket API, driven by the process's libev loop
 * (the shape of curl's evhiperfifo example). One struct fetch per transfer. */
#ifndef MS_FETCH_H
#define MS_FETCH_H

#include <ev.h>
#include <stddef.h>

struct fetch_loop;
struct fetch;

struct fetch_loop *fetch_loop_new(struct ev_loop *loop);
/* Cancels every transfer (no callbacks) and frees the loop. */
void fetch_loop_free(struct fetch_loop *fl);
unsigned fetch_loop_active(const struct fetch_loop *fl);

struct fetch_req {
	const char *method; /* "GET" (default), "HEAD", "PUT", "POST" */
	const char *url;
	const char *const *headers; /* "Name: value", NULL-terminated; may be NULL */
	const char *body;	    /* request body for PUT/POST */
	size_t body_len;
	const char *userpwd;	 /* "user:password" for Basic auth, or NULL */
	long connect_timeout_ms; /* 0: 10 s */
	long timeout_ms;	 /* whole transfer; 0: none (low-speed limit still applies) */
	long low_speed_time_s;	 /* abort when under 1 byte/s for this long; 0: 30 s */
	int follow_redirects;	 /* Authorization is never sent to another host */
	size_t max_body;	 /* without on_data: collect at most this (0: 1 MiB) */
	int insecure;		 /* skip TLS verification (never the default) */
	const char *ca_file;	 /* CA bundle to verify the server with, or NULL: the system's */
	const char *unix_socket; /* connect through this AF_UNIX socket; NULL: TCP */
};

struct fetch_hooks {
	/* Once, when the final response's headers are in (before any body). Return -1 to abort. */
	int (*on_response)(struct fetch *f, long status, void *arg);
	/* Body bytes of the final response. Return -1 to abort. NULL: collect into memory. */
	int (*on_data)(struct fetch *f, const char *buf, size_t len, void *arg);
	/* Once, at the end. ok: the transfer completed (any status); else err says why. The fetch
	 * is freed when this returns. */
	void (*on_done)(struct fetch *f, int ok, const char *err, void *arg);
};

/* Starts a transfer; NULL when it could not be started (hooks are not called then). */
struct fetch *fetch_start(struct fetch_loop *fl, const struct fetch_req *req,
			  const struct fetch_hooks *hooks, void *arg);
/* Stops a transfer; no hook runs after this. Safe from inside any hook but on_done. */
void fetch_cancel(struct fetch *f);

long fetch_status(const struct fetch *f);
/* A header of the final response (case-insensitive name), or NULL. */
const char *fetch_header(const struct fetch *f, const char *name);
/* The collected body (when on_data is NULL). Truncated transfers fail with err "body too large". */
const char *fetch_body(const struct fetch *f, size_t *len);
/* Seconds the transfer took so far. */
double fetch_elapsed(const struct fetch *f);
/* The errno of the last failed connect (ENOENT, ECONNREFUSED, EACCES, …), 0 when none: lets a
 * caller say why a connection could not be made, not only that it could not. */
int fetch_os_errno(const struct fetch *f);

#endif
