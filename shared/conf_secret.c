/* conf_secret: secret files and user:password pairs, for the registry's upstreams and the
 * scaler's Marathon, Mesos, ZooKeeper and caches. The rules, the same in both daemons:
 *   - a secret file's secret is its first line, without the blanks around it; a file that is
 *     missing, empty, has an empty or over-long first line is an error at load, so that a bad
 *     file stops the start-up rather than the first request;
 *   - an absent key and "" are the same: not set (a config may list every key with "");
 *   - a username needs a password (or password_file) and the other way round, and may not hold
 *     ':' (libcurl and ZooKeeper split user:password at the first one).
 * The buffers that held a secret are wiped before they are freed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_secret.h"

/* The first line of f into line, whole: a cut-off line would be a wrong secret that fails much
 * later and less clearly. */
static int first_line(struct conf *c, const char *key, const char *file, FILE *f,
		      char line[CONF_SECRET_MAX])
{
	if (!fgets(line, CONF_SECRET_MAX, f))
		return ferror(f) ? conf_fail(c, key, "cannot read %s: %s", file, strerror(errno))
				 : conf_fail(c, key, "%s is empty", file);
	if (!strchr(line, '\n') && !feof(f))
		return conf_fail(c, key, "%s: the first line is too long", file);
	return 0;
}

/* The line without its ending and the blanks around it, copied into *out. */
static int take_trimmed(struct conf *c, const char *key, const char *file, const char *line,
			char **out)
{
	const char *s = line + strspn(line, " \t");
	size_t n = strcspn(s, "\r\n");

	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0)
		return conf_fail(c, key, "%s: the first line is empty", file);
	*out = strndup(s, n);
	return *out ? 0 : conf_fail(c, key, "out of memory");
}

int conf_secret_read(struct conf *c, const char *key, const char *file, const char *what,
		     char **out)
{
	char line[CONF_SECRET_MAX];
	FILE *f;
	int rc;

	f = fopen(file, "re");
	if (!f)
		return conf_fail(c, key, "cannot read %s: %s", file, strerror(errno));
	conf_check_private(file, what);
	rc = first_line(c, key, file, f, line);
	fclose(f);
	if (rc == 0)
		rc = take_trimmed(c, key, file, line, out);
	explicit_bzero(line, sizeof(line));
	return rc;
}

/* A string key, NULL when absent or "". */
static int get_set(struct conf *c, json_t *obj, const char *prefix, const char *name,
		   const char **out)
{
	*out = NULL;
	if (conf_string(c, obj, prefix, name, out) != 0)
		return -1;
	if (*out && (*out)[0] == '\0')
		*out = NULL;
	return 0;
}

int conf_secret_file(struct conf *c, json_t *obj, const char *prefix, const char *name,
		     const char *what, char **out)
{
	char key[CONF_KEY_MAX];
	const char *file;

	if (get_set(c, obj, prefix, name, &file) != 0)
		return -1;
	if (!file)
		return 0;
	return conf_secret_read(c, conf_key(key, prefix, name), file, what, out);
}

int conf_secret_pair(struct conf *c, const char *key, const char *user, const char *pass,
		     char **out)
{
	size_t len;

	if (user[0] == '\0')
		return conf_fail(c, key, "the user name is empty");
	if (strchr(user, ':'))
		return conf_fail(c, key, "the user name must not contain ':'");
	if (pass[0] == '\0')
		return conf_fail(c, key, "the password is empty");
	len = strlen(user) + 1 + strlen(pass) + 1;
	*out = malloc(len);
	if (!*out)
		return conf_fail(c, key, "out of memory");
	snprintf(*out, len, "%s:%s", user, pass);
	return 0;
}

int conf_secret_userpwd(struct conf *c, json_t *obj, const char *prefix, const char *what,
			char **out)
{
	const char *user, *pass, *file;
	char key[CONF_KEY_MAX], *from_file = NULL;
	int rc;

	if (get_set(c, obj, prefix, "username", &user) != 0 ||
	    get_set(c, obj, prefix, "password", &pass) != 0 ||
	    get_set(c, obj, prefix, "password_file", &file) != 0)
		return -1;
	if (pass)
		conf_check_private(c->file, what);
	if (pass && file)
		return conf_fail(c, conf_key(key, prefix, "password_file"),
				 "not allowed together with password");
	if (!user && (pass || file))
		return conf_fail(c, conf_key(key, prefix, pass ? "password" : "password_file"),
				 "needs a username");
	if (!user)
		return 0;
	if (!pass && !file)
		return conf_fail(c, conf_key(key, prefix, "username"),
				 "needs a password or password_file");
	if (file && conf_secret_read(c, conf_key(key, prefix, "password_file"), file, what,
				     &from_file) != 0)
		return -1;
	rc = conf_secret_pair(c, conf_key(key, prefix, "username"), user, file ? from_file : pass,
			      out);
	conf_secret_free(from_file);
	return rc;
}

void conf_secret_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}
