/* wwwauth: the first challenge of a WWW-Authenticate header (RFC 9110 section 11.6.1), e.g.
 *   Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="…"
 * The realm becomes a URL we fetch, so every field is bounded and control bytes are refused. */
#include <string.h>
#include <strings.h>

#include "registry.h"

/* tchar from RFC 9110 section 5.6.2. */
static int is_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch));
}

static int is_ctl(char ch)
{
	return ((unsigned char)ch < 0x20 && ch != '\t') || ch == 0x7f;
}

static const char *skip_ows(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static size_t token_len(const char *s)
{
	size_t n = 0;

	while (is_tchar(s[n]))
		n++;
	return n;
}

/* Appends ch to out (size len, NULL: discard). -1 when it would not fit with its NUL. */
static int put_char(char *out, size_t len, size_t *n, char ch)
{
	if (!out)
		return 0;
	if (*n + 1 >= len)
		return -1;
	out[(*n)++] = ch;
	out[*n] = '\0';
	return 0;
}

/* A quoted-string with backslash escapes. Returns the position after the closing quote. */
static const char *parse_quoted(const char *s, char *out, size_t len)
{
	size_t n = 0;

	for (s++; *s != '"'; s++) {
		if (*s == '\\')
			s++;
		if (*s == '\0' || is_ctl(*s) || put_char(out, len, &n, *s) != 0)
			return NULL;
	}
	return s + 1;
}

/* Unquoted values are tokens by the RFC; realms sent bare by some servers hold ':' and '/', so
 * take any visible character but the ones that end a value. */
static const char *parse_bare(const char *s, char *out, size_t len)
{
	size_t n = 0;

	for (; *s > ' ' && *s != 0x7f && *s != ',' && *s != '"'; s++) {
		if (put_char(out, len, &n, *s) != 0)
			return NULL;
	}
	return n > 0 || !out ? s : NULL;
}

/* Where the value of parameter NAME (length n) goes; NULL for parameters we ignore. */
static char *param_field(struct wwwauth *w, const char *name, size_t n, size_t *len)
{
	static const struct {
		const char *name;
		size_t off, len;
	} fields[] = {
	    {"realm", offsetof(struct wwwauth, realm), sizeof(w->realm)},
	    {"service", offsetof(struct wwwauth, service), sizeof(w->service)},
	    {"scope", offsetof(struct wwwauth, scope), sizeof(w->scope)},
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (strlen(fields[i].name) == n && strncasecmp(name, fields[i].name, n) == 0) {
			*len = fields[i].len;
			return (char *)w + fields[i].off;
		}
	}
	*len = 0;
	return NULL;
}

/* One "name=value" at s. Returns the position after it, s itself when s starts the next
 * challenge (a token not followed by '='), or NULL when malformed. */
static const char *parse_param(const char *s, struct wwwauth *w)
{
	size_t n = token_len(s), len;
	const char *p = skip_ows(s + n);
	char *out;

	if (n == 0)
		return NULL;
	if (*p != '=')
		return s;
	out = param_field(w, s, n, &len);
	p = skip_ows(p + 1);
	if (out)
		out[0] = '\0';
	if (*p == '"')
		return parse_quoted(p, out, len);
	return parse_bare(p, out, len);
}

static int parse_params(const char *s, struct wwwauth *w)
{
	const char *next;

	for (;;) {
		s = skip_ows(s);
		while (*s == ',')
			s = skip_ows(s + 1);
		if (*s == '\0')
			return 0;
		next = parse_param(s, w);
		if (!next)
			return -1;
		if (next == s)
			return 0; /* the next challenge begins */
		s = skip_ows(next);
		if (*s != ',' && *s != '\0')
			return -1;
	}
}

int wwwauth_parse(const char *value, struct wwwauth *out)
{
	const char *s;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (!value)
		return -1;
	s = skip_ows(value);
	n = token_len(s);
	if (n == 0 || n >= sizeof(out->scheme))
		return -1;
	memcpy(out->scheme, s, n);
	s += n;
	if (*s != '\0' && *s != ' ' && *s != '\t')
		return -1;
	return parse_params(s, out);
}
