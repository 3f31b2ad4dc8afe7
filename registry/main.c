/* microscale-registry: flags, config, the one libev loop, signals. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "registry.h"

struct flags {
	const char *config;
	const char *listen, *root, *upstream, *log_level, *prewarm;
	int foreground, check_only, prewarm_once;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: microscale-registry [-c FILE] [-d] [-n] [--listen ADDR:PORT] "
		"[--root DIR] [--upstream URL]\n"
		"                           [--log-level debug|info|warn|error] "
		"[--prewarm FILE] [--prewarm-once]\n"
		"       microscale-registry import [--root DIR | -c FILE] [--name REPO] FILE…\n"
		"       microscale-registry export [--root DIR | -c FILE] -o FILE REF…\n"
		"       microscale-registry verify [--root DIR | -c FILE]\n");
}

/* Returns 0, 1 (--help: exit 0) or -1 (usage error). */
static int parse_flags(int argc, char **argv, struct flags *f)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"listen", required_argument, NULL, 'L'},
					     {"root", required_argument, NULL, 'R'},
					     {"upstream", required_argument, NULL, 'U'},
					     {"log-level", required_argument, NULL, 'l'},
					     {"help", no_argument, NULL, 'h'},
					     {"prewarm", required_argument, NULL, 'P'},
					     {"prewarm-once", no_argument, NULL, 'O'},
					     {NULL, 0, NULL, 0}};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:dnh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			f->config = optarg;
			break;
		case 'd':
			f->foreground = 1;
			break;
		case 'n':
			f->check_only = 1;
			break;
		case 'L':
			f->listen = optarg;
			break;
		case 'R':
			f->root = optarg;
			break;
		case 'U':
			f->upstream = optarg;
			break;
		case 'l':
			f->log_level = optarg;
			break;
		case 'P':
			f->prewarm = optarg;
			break;
		case 'O':
			f->prewarm_once = f->foreground = 1;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "microscale-registry: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	return 0;
}

/* Flags override the file; their errors read like the file's ("--root: …"). */
static int apply_flags(struct registry_conf *rc, struct conf *c, const struct flags *f)
{
	char *dup;

	if (f->log_level && log_level_parse(f->log_level, &rc->log_level) < 0)
		return conf_fail(c, "--log-level", "expected debug, info, warn or error");
	if (f->upstream && registry_conf_set_upstream(rc, f->upstream) < 0)
		return conf_fail(c, "--upstream", "expected an http:// or https:// URL");
	if (f->prewarm && registry_conf_set_prewarm(rc, f->prewarm) < 0)
		return conf_fail(c, "--prewarm", "out of memory");
	if (f->prewarm_once && !rc->prewarm_list)
		return conf_fail(c, "--prewarm-once",
				 "needs a list: --prewarm FILE or prewarm.list");
	if (f->listen) {
		if (!(dup = strdup(f->listen)))
			return conf_fail(c, "--listen", "out of memory");
		free(rc->listen);
		rc->listen = dup;
	}
	if (f->root) {
		if (!(dup = strdup(f->root)))
			return conf_fail(c, "--root", "out of memory");
		free(rc->root);
		rc->root = dup;
	}
	return 0;
}

/* -n checks the prewarm list too: a bad line is a configuration error. */
static int check_prewarm_list(const struct registry_conf *rc)
{
	struct prewarm_entry *v;
	char err[512];
	size_t n;

	if (!rc->prewarm_list)
		return 0;
	if (prewarm_list_read(rc->prewarm_list, &v, &n, err, sizeof(err)) < 0) {
		fprintf(stderr, "microscale-registry: %s\n", err);
		return -1;
	}
	free(v);
	return 0;
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct registry *r = w->data;

	(void)revents;
	log_info("shutdown", "signal=%d in_flight=%u connections=%u", w->signum,
		 fetch_loop_active(r->fl), r->httpd ? httpd_conn_count(r->httpd) : 0);
	r->stopping = 1;
	if (r->httpd)
		httpd_shutdown(r->httpd);
	transfer_abort_all(r);
	manifest_pulls_abort_all(r);
	ev_break(loop, EVBREAK_ALL);
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct registry *r = w->data;
	char err[512];

	(void)loop;
	(void)revents;
	if (!r->conf->prewarm_list)
		log_info("sighup", "prewarm_list=none");
	else if (prewarm_load(r->prewarm, r->conf->prewarm_list, err, sizeof(err)) < 0)
		log_error("prewarm_list", "error=\"%s\" kept=previous", err);
}

/* An image complete in the store goes on to the node's Docker (when the runtime is on). */
static void on_image_ready(void *arg, const struct prewarm_image *img)
{
	struct registry *r = arg;

	runtime_want(r->runtime, &img->ref, img->digest);
}

/* A tag moved when revalidated for someone else: prewarm catches up (and so the runtime). */
static void on_tag_moved(void *arg, const struct image_ref *ref, const char *digest)
{
	struct registry *r = arg;

	if (r->prewarm)
		prewarm_tag_moved(r->prewarm, ref, digest);
}

/* Eviction asks which blobs are pinned; prewarm tracks the pinned images. */
static void pinned_blobs(void *arg, evict_keep_fn keep, void *keep_arg)
{
	prewarm_pinned_blobs(arg, keep, keep_arg);
}

/* --prewarm-once serves nobody: it fills the store and stops. */
static int start_http(struct registry *r)
{
	char err[512];

	r->httpd = httpd_new(r->loop, &r->conf->http, api_handle, r);
	if (!r->httpd)
		return -1;
	if (httpd_listen(r->httpd, r->conf->listen, err, sizeof(err)) < 0) {
		log_error("listen", "error=\"%s\"", err);
		return -1;
	}
	log_info("listening", "listen=%s port=%d root=%s upstreams=%zu", r->conf->listen,
		 httpd_port(r->httpd), r->conf->root, r->nupstreams);
	return 0;
}

static int start(struct registry *r, int once)
{
	char err[512];

	if (store_open(&r->store, r->conf->root, err, sizeof(err)) < 0) {
		log_error("store_open", "root=%s error=\"%s\"", r->conf->root, err);
		return -1;
	}
	r->fl = fetch_loop_new(r->loop);
	r->syncq = syncq_new(r->loop);
	r->store.sync = r->syncq ? store_sync_new(&r->store, r->syncq) : NULL;
	r->on_tag_moved = on_tag_moved;
	r->on_tag_moved_arg = r;
	r->prewarm = prewarm_new(r, once);
	r->evict = evict_new(r);
	if (!r->fl || !r->syncq || !r->store.sync || !r->prewarm || !r->evict ||
	    upstreams_init(r) < 0) {
		log_error("start", "error=\"out of memory\"");
		return -1;
	}
	evict_on_pins(r->evict, pinned_blobs, r->prewarm);
	if (!once && (start_http(r) < 0 || stats_init(r) < 0))
		return -1;
	/* Not with --prewarm-once: dockerd pulls through this cache, which then serves nobody. */
	if (!once && r->conf->docker_socket) {
		if (!(r->runtime = runtime_new(r))) {
			log_error("start", "error=\"out of memory\"");
			return -1;
		}
		prewarm_on_ready(r->prewarm, on_image_ready, r);
	} else if (r->conf->docker_socket) {
		log_info("runtime", "docker_socket=%s skipped=\"--prewarm-once serves no mirror\"",
			 r->conf->docker_socket);
	}
	if (r->conf->prewarm_list &&
	    prewarm_load(r->prewarm, r->conf->prewarm_list, err, sizeof(err)) < 0) {
		log_error("prewarm_list", "error=\"%s\"", err);
		return -1;
	}
	return 0;
}

/* Undoes start() in reverse; safe on a partial start. */
static void stop(struct registry *r)
{
	if (r->httpd)
		httpd_free(r->httpd);
	evict_free(r->evict); /* after httpd_free: responses hold entries until they end */
	prewarm_free(r->prewarm);
	runtime_free(r->runtime); /* before fetch_loop_free: it cancels its transfers */
	syncq_free(r->syncq);
	store_sync_free(r->store.sync); /* after syncq_free: every write has finished */
	if (r->fl)
		fetch_loop_free(r->fl);
	upstreams_free(r);
	stats_free(r);
	store_close(&r->store);
}

/* Goes to the background before the loop, the io_uring ring and the curl multi handle exist:
 * none of them is whole in a forked child (an epoll set, a ring and their threads belong to the
 * process that made them). The parent stays until the child says how its start went, so that
 * its exit status still tells whether the daemon came up: 1 in the parent, with that status in
 * *status; 0 in the child, with the pipe to report on in *ready; -1 when it cannot fork. The
 * working directory is kept: relative paths of the flags and the config mean what they did. */
static int detach(int *ready, int *status)
{
	int p[2];
	char st = 1;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		log_error("daemon", "error=\"cannot go to the background: %s\"", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		close(p[1]);
		while (read(p[0], &st, 1) < 0 && errno == EINTR)
			; /* EOF without a byte: the child died starting */
		close(p[0]);
		*status = st;
		return 1;
	}
	close(p[0]);
	setsid(); /* cannot fail: a fresh child leads no process group */
	*ready = p[1];
	return 0;
}

/* The child's start went as STATUS says: the parent exits with it. */
static void detach_report(int ready, int status)
{
	char st = (char)status;

	if (ready < 0)
		return;
	if (write(ready, &st, 1) != 1)
		log_warn("daemon", "error=\"cannot tell the parent: %s\"", strerror(errno));
	close(ready);
}

static int run(const struct registry_conf *rc, const struct flags *f)
{
	struct registry r = {.conf = rc};
	ev_signal sigterm, sigint, sighup;
	int ready = -1, status = 1, d = f->foreground ? 0 : detach(&ready, &status);

	if (d != 0)
		return d > 0 ? status : 1;
	r.loop = EV_DEFAULT;
	status = start(&r, f->prewarm_once) == 0 ? 0 : 1;
	detach_report(ready, status);
	if (status == 0) {
		ev_signal_init(&sigterm, on_stop_signal, SIGTERM);
		ev_signal_init(&sigint, on_stop_signal, SIGINT);
		ev_signal_init(&sighup, on_hup, SIGHUP);
		sigterm.data = sigint.data = sighup.data = &r;
		ev_signal_start(r.loop, &sigterm);
		ev_signal_start(r.loop, &sigint);
		ev_signal_start(r.loop, &sighup);
		ev_run(r.loop, 0);
		ev_signal_stop(r.loop, &sigterm);
		ev_signal_stop(r.loop, &sigint);
		ev_signal_stop(r.loop, &sighup);
		if (f->prewarm_once)
			status = prewarm_status(r.prewarm);
	}
	r.stopping = 1;
	if (r.syncq) /* blobs and manifests already verified are stored, not lost */
		syncq_drain(r.syncq);
	transfer_abort_all(&r);
	manifest_pulls_abort_all(&r);
	stop(&r);
	return status;
}

int main(int argc, char **argv)
{
	struct flags f = {0};
	struct registry_conf rc;
	struct conf c;
	int status;

	log_init("microscale-registry", LOG_INFO); /* until the config says otherwise */
	if (argc > 1 && strcmp(argv[1], "import") == 0)
		return archive_import_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "export") == 0)
		return archive_export_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "verify") == 0)
		return verify_main(argc - 1, argv + 1);
	status = parse_flags(argc, argv, &f);
	if (status != 0)
		return status > 0 ? 0 : 2;
	if (conf_load(&c, f.config) < 0 || registry_conf_load(&rc, &c) < 0) {
		fprintf(stderr, "microscale-registry: %s\n", c.err);
		conf_free(&c);
		return 1;
	}
	if (apply_flags(&rc, &c, &f) < 0) {
		fprintf(stderr, "microscale-registry: %s\n", c.err);
		registry_conf_free(&rc);
		conf_free(&c);
		return 1;
	}
	if (f.check_only && check_prewarm_list(&rc) < 0) {
		registry_conf_free(&rc);
		conf_free(&c);
		return 1;
	}
	if (f.check_only) {
		printf("configuration OK\n");
		registry_conf_free(&rc);
		conf_free(&c);
		return 0;
	}
	log_init("microscale-registry", rc.log_level);
	/* Writes go out with MSG_NOSIGNAL, but sendfile(2) to a closed socket still raises it. */
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	curl_global_init(CURL_GLOBAL_DEFAULT);
	status = run(&rc, &f);
	curl_global_cleanup();
	registry_conf_free(&rc);
	conf_free(&c);
	return status;
}
