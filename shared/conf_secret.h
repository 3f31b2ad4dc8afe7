/* conf_secret: secrets in a config: a file's first line, and "user:password" for Basic or digest
 * auth, read the same way by both daemons. Secrets never appear in an error message. */
#ifndef MS_CONF_SECRET_H
#define MS_CONF_SECRET_H

#include "conf.h"

/* The longest first line a secret file may have, its line ending included (a DC/OS token is a
 * JWT of a few KiB). */
#define CONF_SECRET_MAX 8192

/* The secret in FILE: its first line without the line ending and the blanks around it, into
 * *out (malloc'd; give it back with conf_secret_free). A missing, unreadable or empty file, an
 * empty first line or one of CONF_SECRET_MAX bytes or more is -1 with c->err "FILE: KEY: reason"
 * naming FILE. WHAT (e.g. "the Marathon token") goes into the warning logged when others than
 * FILE's owner may read it. */
int conf_secret_read(struct conf *c, const char *key, const char *file, const char *what,
		     char **out);
/* NAME below obj names a secret file (PREFIX.NAME in messages) and conf_secret_read reads it.
 * Absent or "": *out stays NULL and 0. */
int conf_secret_file(struct conf *c, json_t *obj, const char *prefix, const char *name,
		     const char *what, char **out);
/* "user:password" into *out from user (non-empty, without ':', where libcurl and ZooKeeper
 * split) and pass (non-empty); -1 with c->err naming KEY otherwise. */
int conf_secret_pair(struct conf *c, const char *key, const char *user, const char *pass,
		     char **out);
/* "username" with "password" or "password_file" below obj (PREFIX names them) into *out as
 * "user:password". None of them (or all ""): *out stays NULL and 0. One without the other,
 * password and password_file both, or a ':' in username: -1 naming the key. */
int conf_secret_userpwd(struct conf *c, json_t *obj, const char *prefix, const char *what,
			char **out);
/* Overwrites s and frees it; NULL does nothing. */
void conf_secret_free(char *s);

#endif
