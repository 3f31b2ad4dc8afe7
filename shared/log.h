/* log: one line per event, key=value pairs, to stderr. Never pass a secret. */
#ifndef MS_LOG_H
#define MS_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the program name and the lowest level written. */
void log_init(const char *prog, enum log_level level);
/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int log_level_parse(const char *name, enum log_level *level);
int log_enabled(enum log_level level);
/* Writes "ts=… level=… prog=… event=EVENT " followed by the formatted pairs. */
void log_event(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* IN as a quoted value may carry it: '"' and '\\' get a backslash, so that a peer's string
 * (a request path) cannot close the quotes and write fields of its own. Cut to fit OUT; returns
 * OUT. */
const char *log_quote(char *out, size_t outlen, const char *in);

#define log_debug(...) log_event(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_event(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_event(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_event(LOG_ERROR, __VA_ARGS__)

#endif
