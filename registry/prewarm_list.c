/* prewarm_list: the priority image list, one reference per line:
 *
 *   # comment
 *   busybox
 *   library/redis:7
 *   ghcr.io/org/app:1.2   platform=linux/arm64
 *   name@sha256:…
 *
 * Errors name the file, the line number and the reason. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

#define LIST_LINE_MAX 1024
#define LIST_MAX_ENTRIES 4096

static int list_fail(char *err, size_t errlen, const char *file, int line, const char *why)
{
	snprintf(err, errlen, "%s:%d: %s", file, line, why);
	return -1;
}

/* One line: a reference and optional key=value options. 0 and *empty set for blank lines. */
static int parse_line(char *line, struct prewarm_entry *e, int *empty, char *why, size_t whylen)
{
	char *save = NULL, *word, *opt;

	line[strcspn(line, "#\r\n")] = '\0';
	word = strtok_r(line, " \t", &save);
	*empty = !word;
	if (*empty)
		return 0;
	memset(e, 0, sizeof(*e));
	if (ref_parse(word, &e->ref, why, whylen) < 0)
		return -1;
	while ((opt = strtok_r(NULL, " \t", &save))) {
		if (strncmp(opt, "platform=", 9) != 0) {
			snprintf(why, whylen, "unknown option \"%.64s\"", opt);
			return -1;
		}
		if (!image_platform_valid(opt + 9)) {
			snprintf(why, whylen, "platform must be os/arch[/variant]");
			return -1;
		}
		snprintf(e->platform, sizeof(e->platform), "%s", opt + 9);
	}
	return 0;
}

int prewarm_list_read(const char *file, struct prewarm_entry **out, size_t *n, char *err,
		      size_t errlen)
{
	FILE *f = fopen(file, "re");
	char line[LIST_LINE_MAX + 2], why[256];
	struct prewarm_entry e, *v = NULL, *grown;
	int lineno = 0, empty, rc = 0;

	*out = NULL;
	*n = 0;
	if (!f) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f))
			rc = list_fail(err, errlen, file, lineno, "line too long");
		else if (parse_line(line, &e, &empty, why, sizeof(why)) < 0)
			rc = list_fail(err, errlen, file, lineno, why);
		else if (!empty && *n == LIST_MAX_ENTRIES)
			rc = list_fail(err, errlen, file, lineno, "too many images");
		else if (!empty && !(grown = realloc(v, (*n + 1) * sizeof(*v))))
			rc = list_fail(err, errlen, file, lineno, "out of memory");
		else if (!empty)
			(v = grown)[(*n)++] = e;
	}
	if (rc == 0 && ferror(f))
		rc = list_fail(err, errlen, file, lineno, "read error");
	fclose(f);
	if (rc < 0) {
		free(v);
		*n = 0;
		return -1;
	}
	*out = v;
	return 0;
}
