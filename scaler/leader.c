/* leader: one scaler of many acts, elected through ZooKeeper with the standard recipe. Each
 * scaler creates an ephemeral sequential node PATH/lock-GUID-NNNNNNNNNN holding who it is
 * ({"host", "listen", "pid"}) and watches only the node just before its own; the lowest leads.
 * The GUID finds our node again after a connection loss that hid the create's answer.
 *
 * Safety before liveness: the servers expire a session SESSION_TIMEOUT after they last heard
 * from it, and only then may another scaler lead. So a leader acts only while its lease holds:
 * a request answered by the servers proves the session alive when it was sent, and the lease
 * runs 2/3 of the timeout from that moment. A heartbeat every third of the timeout renews it;
 * a leader cut off (or stopped, or paused) stops acting at least a third of the timeout before
 * anyone else may start, however late it learns why. A new leader also waits SETTLE before it
 * acts, so that a call its predecessor sent at the end of its lease has landed or failed.
 *
 * The single-threaded client library runs on the loop: zookeeper_interest says which socket,
 * events and timeout it wants; zookeeper_process does the work and calls the completions and
 * the watcher. An expired session is closed and a new one joins from scratch (off the
 * client's own callbacks). The library resolves the servers' names when a session starts.
 * Requests made inside the library's callbacks (the election's steps) are sent by the rearm
 * that follows every zookeeper_process; only those made from our own timers rearm at once. */
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

#include "scaler.h"

#define RESTART_S 1.0
#define AUTH_RETRY_S 30.0
#define NODE_PREFIX "lock-"

enum leader_state {
	LS_CONNECTING, /* no session yet */
	LS_JOINING,    /* connected; our node is being made or looked for */
	LS_FOLLOWING,  /* our node waits behind another */
	LS_LEADING,    /* ours is the lowest */
	LS_FAILED,     /* refused (credentials, ACL) or expired: a new session follows */
};

static const char *const state_names[] = {"connecting", "joining", "following", "leading",
					  "failed"};

struct leader {
	struct ev_loop *loop;
	const struct zk_conf *conf;
	leader_fn changed;
	void *arg;
	zhandle_t *zh;
	ev_io io;
	ev_timer tmo;	    /* the client library's own timeout */
	ev_timer heartbeat; /* renews the lease */
	ev_timer restart;   /* a new session, off the library's callbacks */
	enum leader_state st;
	int connected; /* the session has a server now (a leader between servers does not act) */
	char guid[33];
	char *identity;	      /* our node's data */
	char node[512];	      /* our node's name under path, "" until known */
	char leader_id[512];  /* the leader's node data, "" when unknown */
	ev_tstamp lease_from; /* the send time of the last request the servers answered */
	ev_tstamp hb_sent;    /* the heartbeat out, or 0 */
	ev_tstamp leading_since;
	char last_error[256];
};

static double timeout_s(const struct leader *l)
{
	return (double)l->conf->session_timeout_ms / 1000.0;
}

static void set_state(struct leader *l, enum leader_state st, const char *why)
{
	if (l->st == st)
		return;
	log_event(st == LS_FAILED ? LOG_WARN : LOG_INFO, "leader_state",
		  "from=%s to=%s node=%s reason=\"%s\"", state_names[l->st], state_names[st],
		  l->node[0] ? l->node : "-", why);
	if (st == LS_LEADING)
		l->leading_since = ev_now(l->loop);
	l->st = st;
	if (l->changed)
		l->changed(l->arg);
}

static void failed(struct leader *l, const char *what, int rc)
{
	snprintf(l->last_error, sizeof(l->last_error), "%s: %s", what, zerror(rc));
	log_error("zookeeper_failed", "what=\"%s\" error=\"%s\"%s", what, zerror(rc),
		  rc == ZNOAUTH || rc == ZAUTHFAILED
		      ? " hint=\"ZooKeeper refused our identity: check zookeeper.username and "
			"zookeeper.password\""
		      : "");
}

/* --- the loop --- */

static void rearm(struct leader *l)
{
	int fd = -1, interest = 0, ev = 0, rc;
	struct timeval tv = {1, 0};

	if (!l->zh)
		return;
	rc = zookeeper_interest(l->zh, &fd, &interest, &tv);
	ev_io_stop(l->loop, &l->io);
	if ((rc == ZOK || rc == ZCONNECTIONLOSS) && fd >= 0) {
		ev = (interest & ZOOKEEPER_READ ? EV_READ : 0) |
		     (interest & ZOOKEEPER_WRITE ? EV_WRITE : 0);
		if (ev != 0) {
			ev_io_set(&l->io, fd, ev);
			ev_io_start(l->loop, &l->io);
		}
	}
	ev_timer_stop(l->loop, &l->tmo);
	if (rc == ZINVALIDSTATE)
		return; /* expired or refused: the watcher has asked for a new session */
	ev_timer_set(&l->tmo, (double)tv.tv_sec + (double)tv.tv_usec / 1e6, 0);
	ev_timer_start(l->loop, &l->tmo);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct leader *l = w->data;

	(void)loop;
	zookeeper_process(l->zh, (revents & EV_READ ? ZOOKEEPER_READ : 0) |
				     (revents & EV_WRITE ? ZOOKEEPER_WRITE : 0));
	rearm(l);
}

static void on_tmo(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct leader *l = w->data;

	(void)loop;
	(void)revents;
	zookeeper_process(l->zh, 0);
	rearm(l);
}

/* --- the election --- */

static void evaluate(struct leader *l);

static void renewed(struct leader *l, ev_tstamp sent)
{
	if (sent > l->lease_from)
		l->lease_from = sent;
}

static void leader_data_done(int rc, const char *value, int len, const struct Stat *stat,
			     const void *data)
{
	struct leader *l = (struct leader *)data;

	(void)stat;
	if (rc == ZOK && value && len >= 0)
		snprintf(l->leader_id, sizeof(l->leader_id), "%.*s", len, value);
}

static void predecessor_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh;
	(void)state;
	(void)path;
	if (type == ZOO_DELETED_EVENT)
		evaluate(ctx); /* the one before us went: we may lead now */
}

static void predecessor_done(int rc, const struct Stat *stat, const void *data)
{
	(void)stat;
	if (rc == ZNONODE)
		evaluate((struct leader *)data); /* it went before the watch was set */
	else if (rc != ZOK && rc != ZCLOSING)
		failed((struct leader *)data, "watching the node before ours", rc);
}

/* The sequence number ends every node's name. */
static int by_sequence(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	size_t lx = strlen(x), ly = strlen(y);

	return strcmp(lx >= 10 ? x + lx - 10 : x, ly >= 10 ? y + ly - 10 : y);
}

static void join(struct leader *l);

static void children_done(int rc, const struct String_vector *v, const void *data)
{
	struct leader *l = (struct leader *)data;
	char path[1024];
	int mine = -1;

	if (rc != ZOK) {
		if (rc != ZCLOSING && rc != ZCONNECTIONLOSS)
			failed(l, "listing the candidates", rc);
		return;
	}
	qsort(v->data, (size_t)v->count, sizeof(v->data[0]), by_sequence);
	for (int i = 0; i < v->count; i++) {
		if (strstr(v->data[i], l->guid)) {
			mine = i;
			snprintf(l->node, sizeof(l->node), "%s", v->data[i]);
		}
	}
	if (mine < 0) {
		l->node[0] = '\0';
		join(l); /* ours is gone (or was never made): again */
		return;
	}
	snprintf(path, sizeof(path), "%s/%s", l->conf->path, v->data[0]);
	zoo_aget(l->zh, path, 0, leader_data_done, l);
	if (mine == 0) {
		set_state(l, LS_LEADING, "ours is the lowest node");
		return;
	}
	set_state(l, LS_FOLLOWING, "another node is lower");
	snprintf(path, sizeof(path), "%s/%s", l->conf->path, v->data[mine - 1]);
	rc = zoo_awexists(l->zh, path, predecessor_watch, l, predecessor_done, l);
	if (rc != ZOK)
		failed(l, "watching the node before ours", rc);
}

static void evaluate(struct leader *l)
{
	int rc = zoo_aget_children(l->zh, l->conf->path, 0, children_done, l);

	if (rc != ZOK)
		failed(l, "listing the candidates", rc);
}

static void created(int rc, const char *value, const void *data)
{
	struct leader *l = (struct leader *)data;

	if (rc == ZOK) {
		log_info("leader_candidate", "node=%s", value);
		evaluate(l);
	} else if (rc == ZCONNECTIONLOSS) {
		evaluate(l); /* it may have been made: the GUID will tell */
	} else if (rc != ZCLOSING) {
		failed(l, "creating our node", rc);
		set_state(l, LS_FAILED, l->last_error);
	}
}

static void parent_made(int rc, const char *value, const void *data)
{
	(void)value;
	if (rc != ZOK && rc != ZNODEEXISTS && rc != ZCLOSING)
		failed((struct leader *)data, "creating the election path", rc);
}

static struct ACL_vector *acl(const struct leader *l)
{
	return l->conf->auth ? &ZOO_CREATOR_ALL_ACL : &ZOO_OPEN_ACL_UNSAFE;
}

/* The path's parents (each may exist already), then our node: requests on one session are
 * answered in order, so they need not wait for each other. */
static void join(struct leader *l)
{
	char path[1024];
	int rc;

	set_state(l, LS_JOINING, "connected");
	for (const char *p = strchr(l->conf->path + 1, '/');; p = strchr(p + 1, '/')) {
		size_t n = p ? (size_t)(p - l->conf->path) : strlen(l->conf->path);

		snprintf(path, sizeof(path), "%.*s", (int)n, l->conf->path);
		zoo_acreate(l->zh, path, NULL, -1, acl(l), 0, parent_made, l);
		if (!p)
			break;
	}
	snprintf(path, sizeof(path), "%s/" NODE_PREFIX "%s-", l->conf->path, l->guid);
	rc = zoo_acreate(l->zh, path, l->identity, (int)strlen(l->identity), acl(l),
			 ZOO_EPHEMERAL_SEQUENTIAL, created, l);
	if (rc != ZOK)
		failed(l, "creating our node", rc);
}

/* --- the session --- */

static void heartbeat_done(int rc, const struct Stat *stat, const void *data)
{
	struct leader *l = (struct leader *)data;

	(void)stat;
	if (rc == ZOK || rc == ZNONODE)
		renewed(l, l->hb_sent);
	l->hb_sent = 0;
}

static void on_heartbeat(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct leader *l = w->data;

	(void)loop;
	(void)revents;
	if (!l->zh || l->hb_sent > 0 || !l->connected)
		return;
	l->hb_sent = ev_now(l->loop);
	if (zoo_aexists(l->zh, l->conf->path, 0, heartbeat_done, l) != ZOK)
		l->hb_sent = 0;
	rearm(l);
}

static void on_session(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct leader *l = ctx;

	(void)zh;
	(void)path;
	if (type != ZOO_SESSION_EVENT)
		return;
	if (state == ZOO_CONNECTED_STATE) {
		l->connected = 1;
		renewed(l, ev_now(l->loop));
		log_info("zookeeper_connected", "servers=%s timeout_ms=%d", l->conf->servers,
			 zoo_recv_timeout(l->zh));
		if (l->node[0] == '\0')
			join(l);
		else
			evaluate(l);
	} else if (state == ZOO_CONNECTING_STATE) {
		/* The session (and our node) may well live on: the state stays, but nothing is done
		 * until a server answers again. */
		l->connected = 0;
		log_warn("zookeeper_disconnected", "state=%s reason=\"looking for another server\"",
			 state_names[l->st]);
		if (l->changed)
			l->changed(l->arg);
	} else if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE) {
		if (state == ZOO_AUTH_FAILED_STATE)
			failed(l, "authenticating", ZAUTHFAILED);
		set_state(l, LS_FAILED,
			  state == ZOO_EXPIRED_SESSION_STATE ? "session expired" : "auth failed");
		ev_timer_set(&l->restart, state == ZOO_AUTH_FAILED_STATE ? AUTH_RETRY_S : 0, 0);
		ev_timer_start(l->loop, &l->restart);
	}
}

static void close_session(struct leader *l)
{
	ev_io_stop(l->loop, &l->io);
	ev_timer_stop(l->loop, &l->tmo);
	l->connected = 0;
	if (l->zh)
		zookeeper_close(l->zh); /* pending completions run with ZCLOSING */
	l->zh = NULL;
	l->node[0] = l->leader_id[0] = '\0';
	l->hb_sent = 0;
}

static void auth_done(int rc, const void *data)
{
	if (rc != ZOK && rc != ZCLOSING)
		failed((struct leader *)data, "authenticating", rc);
}

static void zk_log(const char *message)
{
	log_warn("zookeeper_client", "message=\"%.300s\"", message);
}

static int open_session(struct leader *l)
{
	l->zh = zookeeper_init2(l->conf->servers, on_session, (int)l->conf->session_timeout_ms,
				NULL, l, 0, zk_log);
	if (!l->zh) {
		snprintf(l->last_error, sizeof(l->last_error), "zookeeper_init: %s",
			 strerror(errno));
		log_error("zookeeper_failed", "what=init servers=%s error=\"%s\"", l->conf->servers,
			  strerror(errno));
		return -1;
	}
	if (l->conf->auth)
		zoo_add_auth(l->zh, "digest", l->conf->auth, (int)strlen(l->conf->auth), auth_done,
			     l);
	rearm(l);
	return 0;
}

static void on_restart(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct leader *l = w->data;

	(void)loop;
	(void)revents;
	close_session(l);
	set_state(l, LS_CONNECTING, "a new session");
	if (open_session(l) < 0) {
		ev_timer_set(&l->restart, RESTART_S, 0);
		ev_timer_start(l->loop, &l->restart);
	}
}

/* --- the owner's view --- */

int leader_may_act(const struct leader *l)
{
	ev_tstamp now = ev_now(l->loop);
	double t = timeout_s(l), settle = l->conf->settle_ms / 1000.0;

	return l->st == LS_LEADING && l->connected && now < l->lease_from + t * 2 / 3 &&
	       now >= l->leading_since + settle;
}

struct leader *leader_new(struct ev_loop *loop, const struct zk_conf *conf, const char *identity,
			  leader_fn changed, void *arg)
{
	struct leader *l = calloc(1, sizeof(*l));
	unsigned char rnd[16];

	if (!l)
		return NULL;
	*l = (struct leader){.loop = loop, .conf = conf, .changed = changed, .arg = arg};
	if (!(l->identity = strdup(identity)) || RAND_bytes(rnd, sizeof(rnd)) != 1) {
		leader_free(l);
		return NULL;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(l->guid + 2 * i, 3, "%02x", rnd[i]);
	zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
	ev_io_init(&l->io, on_io, 0, 0);
	ev_timer_init(&l->tmo, on_tmo, 0, 0);
	ev_timer_init(&l->heartbeat, on_heartbeat, 0, timeout_s(l) / 3);
	ev_timer_init(&l->restart, on_restart, 0, 0);
	l->io.data = l->tmo.data = l->heartbeat.data = l->restart.data = l;
	ev_timer_start(loop, &l->heartbeat);
	if (open_session(l) < 0) {
		ev_timer_set(&l->restart, RESTART_S, 0);
		ev_timer_start(loop, &l->restart);
	}
	return l;
}

/* The timers go first, then the session (its completions see ZCLOSING), then l. */
void leader_free(struct leader *l)
{
	if (!l)
		return;
	ev_timer_stop(l->loop, &l->heartbeat);
	ev_timer_stop(l->loop, &l->restart);
	l->changed = NULL;
	close_session(l);
	free(l->identity);
	free(l);
}

json_t *leader_status_json(const struct leader *l)
{
	json_t *who = l->leader_id[0] ? json_loads(l->leader_id, 0, NULL) : NULL;
	double lease = l->lease_from + timeout_s(l) * 2 / 3 - ev_now(l->loop);

	return json_pack("{s:s, s:b, s:b, s:s, s:s, s:o, s:f, s:s}", "state", state_names[l->st],
			 "connected", l->connected, "acting", leader_may_act(l), "node", l->node,
			 "servers", l->conf->servers, "leader", who ? who : json_null(), "lease_s",
			 lease > 0 ? lease : 0, "last_error", l->last_error);
}
