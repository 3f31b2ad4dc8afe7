/* archive_common: what "import", "export" and "verify" share: their --config and --root
 * options, finding and opening the store from them and the config, and showing how far a long
 * transfer has got. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "registry.h"

#define PROGRESS_TTY_S 0.1 /* a terminal line is redrawn at most this often */
#define PROGRESS_LOG_S 5.0 /* and a log line is written at most this often */
#define MIB (1024.0 * 1024.0)

static volatile sig_atomic_t interrupted;

/* store_open() clears ROOT/tmp, which is right for the daemon starting up but would pull the
 * temp files from under a daemon running on the same root now. So an existing store (its tmp/
 * is there) is used as it is; only a new one goes through store_open() to be created. */
static int open_root(struct store *s, const char *root, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	struct stat st;
	int n = snprintf(tmp, sizeof(tmp), "%s/tmp", root);

	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", root);
		return -1;
	}
	if (lstat(tmp, &st) != 0 || !S_ISDIR(st.st_mode)) /* a link: store_open refuses it */
		return store_open(s, root, err, errlen);
	return store_attach(s, root, err, errlen);
}

int archive_store_open(struct store *s, const char *config, const char *root, char *err,
		       size_t errlen)
{
	struct registry_conf rc;
	struct conf c;
	int rc_open;

	if (conf_load(&c, config) < 0 || registry_conf_load(&rc, &c) < 0) {
		snprintf(err, errlen, "%s", c.err);
		conf_free(&c);
		return -1;
	}
	log_init("microscale-registry", rc.log_level);
	rc_open = open_root(s, root ? root : rc.root, err, errlen);
	registry_conf_free(&rc);
	conf_free(&c);
	return rc_open;
}

int archive_getopt(int argc, char **argv, const char *shortopts, const struct option *extra,
		   struct archive_opts *o)
{
	static const struct option shared[] = {{"config", required_argument, NULL, 'c'},
					       {"root", required_argument, NULL, 'R'},
					       {"help", no_argument, NULL, 'h'}};
	struct option all[ARCHIVE_OPTS_MAX + 4];
	char shorts[32];
	size_t n = sizeof(shared) / sizeof(shared[0]);
	int ch;

	memcpy(all, shared, sizeof(shared));
	for (size_t i = 0; extra && extra[i].name && i < ARCHIVE_OPTS_MAX; i++)
		all[n++] = extra[i];
	memset(&all[n], 0, sizeof(all[n]));
	snprintf(shorts, sizeof(shorts), "c:h%s", shortopts);
	while ((ch = getopt_long(argc, argv, shorts, all, NULL)) == 'c' || ch == 'R') {
		if (ch == 'c')
			o->config = optarg;
		else
			o->root = optarg;
	}
	return ch;
}

static void progress_draw(const struct archive_progress *p)
{
	if (p->total > 0)
		fprintf(stderr, "\r%s %s: %.1f / %.1f MiB (%d%%)\033[K", p->verb, p->file,
			(double)p->done / MIB, (double)p->total / MIB,
			(int)(p->done * 100 / p->total));
	else
		fprintf(stderr, "\r%s %s: %.1f MiB\033[K", p->verb, p->file, (double)p->done / MIB);
	fflush(stderr);
}

void archive_progress_start(struct archive_progress *p, const char *verb, const char *file,
			    long long total)
{
	p->verb = verb;
	p->file = file;
	p->total = total;
	p->done = 0;
	p->tty = isatty(STDERR_FILENO);
	p->shown = monotime_s();
	if (p->tty) /* at once, so a run quicker than one redraw still shows its line */
		progress_draw(p);
}

void archive_progress_update(struct archive_progress *p, long long done)
{
	double t;

	p->done = done;
	t = monotime_s();
	if (t - p->shown < (p->tty ? PROGRESS_TTY_S : PROGRESS_LOG_S))
		return;
	p->shown = t;
	if (p->tty)
		progress_draw(p);
	else
		log_info("progress", "op=%s file=\"%s\" bytes=%lld total=%lld", p->verb, p->file,
			 p->done, p->total);
}

void archive_progress_end(struct archive_progress *p)
{
	if (p->tty) {
		fprintf(stderr, "\r\033[K");
		fflush(stderr);
	}
}

static void on_signal(int sig)
{
	interrupted = sig;
}

void archive_catch_signals(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

int archive_interrupted(void)
{
	return interrupted;
}
