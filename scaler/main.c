/* microscale-scaler: flags, config, the one libev loop, signals. */
#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scaler.h"

struct flags {
	const char *config, *log_level;
	int foreground, check_only, dry_run;
};

static void usage(FILE *out)
{
	fprintf(out, "usage: microscale-scaler [-c FILE] [-d] [-n] [--dry-run] "
		     "[--log-level debug|info|warn|error]\n");
}

/* Returns 0, 1 (--help: exit 0) or -1 (usage error). */
static int parse_flags(int argc, char **argv, struct flags *f)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"dry-run", no_argument, NULL, 'D'},
					     {"log-level", required_argument, NULL, 'l'},
					     {"check", no_argument, NULL, 'n'},
					     {"help", no_argument, NULL, 'h'},
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
		case 'D':
			f->dry_run = 1;
			break;
		case 'l':
			f->log_level = optarg;
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
		fprintf(stderr, "microscale-scaler: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	return 0;
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct scaler *s = w->data;

	(void)revents;
	log_info("shutdown", "signal=%d in_flight=%u", w->signum, fetch_loop_active(s->fl));
	ev_break(loop, EVBREAK_ALL);
}

static int run(const struct scaler_conf *sc, int foreground, int dry_run)
{
	struct scaler s = {.conf = sc, .loop = EV_DEFAULT, .dry_run = dry_run};
	ev_signal sigterm, sigint;
	int rc;

	rc = scaler_start(&s);
	if (rc == 0 && !foreground && daemon(0, 1) < 0) {
		log_error("daemon", "error=\"cannot go to the background\"");
		rc = -1;
	}
	if (rc == 0) {
		ev_signal_init(&sigterm, on_stop_signal, SIGTERM);
		ev_signal_init(&sigint, on_stop_signal, SIGINT);
		sigterm.data = sigint.data = &s;
		ev_signal_start(s.loop, &sigterm);
		ev_signal_start(s.loop, &sigint);
		ev_run(s.loop, 0);
		ev_signal_stop(s.loop, &sigterm);
		ev_signal_stop(s.loop, &sigint);
	}
	scaler_stop(&s);
	return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct flags f = {0};
	struct scaler_conf sc;
	struct conf c;
	int status;

	log_init("microscale-scaler", LOG_INFO); /* until the config says otherwise */
	status = parse_flags(argc, argv, &f);
	if (status != 0)
		return status > 0 ? 0 : 2;
	if (conf_load(&c, f.config) < 0) {
		fprintf(stderr, "microscale-scaler: %s\n", c.err);
		return 1;
	}
	status = scaler_conf_load(&sc, &c);
	if (status == 0 && f.log_level && log_level_parse(f.log_level, &sc.log_level) < 0)
		status = conf_fail(&c, "--log-level", "expected debug, info, warn or error");
	if (status < 0) {
		fprintf(stderr, "microscale-scaler: %s\n", c.err);
		scaler_conf_free(&sc);
		conf_free(&c);
		return 1;
	}
	if (f.check_only) {
		printf("configuration OK\n");
		scaler_conf_free(&sc);
		conf_free(&c);
		return 0;
	}
	log_init("microscale-scaler", sc.log_level);
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	curl_global_init(CURL_GLOBAL_DEFAULT);
	status = run(&sc, f.foreground, f.dry_run);
	curl_global_cleanup();
	scaler_conf_free(&sc);
	conf_free(&c);
	return status;
}
