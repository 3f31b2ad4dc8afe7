/* log: one line per event, "ts=… level=… prog=… event=… k=v …", to stderr. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* A line fits in PIPE_BUF (4096 on Linux), so one write(2) to a pipe (journald, a test harness)
 * is atomic and lines from several processes never interleave. Longer lines are cut. */
#define LOG_LINE_MAX 4096

static const char *log_prog = "microscale";
static enum log_level log_min = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *prog, enum log_level level)
{
	if (prog)
		log_prog = prog;
	log_min = level;
}

int log_level_parse(const char *name, enum log_level *level)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (name && strcmp(name, level_names[i]) == 0) {
			*level = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int log_enabled(enum log_level level)
{
	return level >= log_min;
}

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf. */
static void log_timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || !gmtime_r(&ts.tv_sec, &tm) ||
	    (n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
		snprintf(buf, len, "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(buf + n, len - n, ".%03dZ", (int)(ts.tv_nsec / 1000000) % 1000);
}

/* A value that came from a peer may hold a newline; it must not start a forged log line. */
static void log_sanitize(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = '?';
	}
}

const char *log_quote(char *out, size_t outlen, const char *in)
{
	size_t o = 0;

	for (; in && *in && o + 1 < outlen; in++) {
		if (*in == '"' || *in == '\\') {
			if (o + 2 >= outlen)
				break;
			out[o++] = '\\';
		}
		out[o++] = *in;
	}
	if (outlen)
		out[o] = '\0';
	return out;
}

static void log_write(const char *buf, size_t len)
{
	ssize_t n;

	do {
		n = write(STDERR_FILENO, buf, len);
	} while (n < 0 && errno == EINTR);
	/* Nothing useful can be done when stderr is gone. */
}

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	char ts[64];
	va_list ap;
	int saved = errno; /* callers log and then still look at errno */
	int n, m;

	if (!log_enabled(level) || level > LOG_ERROR)
		return;
	log_timestamp(ts, sizeof(ts));
	n = snprintf(line, LOG_LINE_MAX, "ts=%s level=%s prog=%s event=%s", ts, level_names[level],
		     log_prog, event);
	if (n < 0)
		goto out;
	/* snprintf reports what it wanted to write; keep what fits and leave room for '\n'. */
	if (n > LOG_LINE_MAX - 1)
		n = LOG_LINE_MAX - 1;
	if (n < LOG_LINE_MAX - 1 && fmt && fmt[0] != '\0') {
		line[n++] = ' ';
		va_start(ap, fmt);
		m = vsnprintf(line + n, (size_t)(LOG_LINE_MAX - n), fmt, ap);
		va_end(ap);
		if (m < 0)
			m = 0;
		if (m > LOG_LINE_MAX - 1 - n)
			m = LOG_LINE_MAX - 1 - n;
		n += m;
	}
	log_sanitize(line, (size_t)n);
	line[n++] = '\n';
	log_write(line, (size_t)n);
out:
	errno = saved;
}
