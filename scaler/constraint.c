/* constraint: Marathon's placement constraints, as far as they decide which agents may run an
 * app's tasks at all (the gate counts only those agents). An app's "constraints" is a list of
 * [field, operator, value]; field is "hostname" or an agent attribute.
 *   LIKE value    the field matches the regular expression value as a whole; an agent without
 *                 the attribute is ruled out
 *   UNLIKE value  the field does not match it; an agent without the attribute may run it
 *   CLUSTER / IS value  the field equals value (CLUSTER without a value: any one agent, so none
 *                 is ruled out beforehand)
 *   UNIQUE, GROUP_BY, MAX_PER  spread the tasks over agents; they rule no agent out
 * Marathon's expressions are Java's; POSIX extended ones cover what placement rules use
 * (alternation, classes, repetition). An operator Marathon does not have is an error. Pure.
 *
 * Anyone who may define an app writes these expressions, and glibc's regcomp builds automata
 * that grow with stacked and counted repetition ("K++++…" took 2 GB while fuzzing): an
 * expression is compiled only within REGEX_* bounds, and a quantifier on a quantifier is refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"

#define CONSTRAINTS_MAX 64
#define CONSTRAINT_VALUE_MAX 1024
#define REGEX_LEN_MAX 256
#define REGEX_QUANTIFIERS_MAX 16
#define REGEX_COUNT_MAX 16 /* the largest bound in {m,n} */
#define REGEX_DEPTH_MAX 8

static const char *const spread_ops[] = {"UNIQUE", "GROUP_BY", "MAX_PER", NULL};

static int is_spread_op(const char *op)
{
	for (const char *const *p = spread_ops; *p; p++) {
		if (strcmp(op, *p) == 0)
			return 1;
	}
	return 0;
}

static int is_quantifier(char c)
{
	return c == '*' || c == '+' || c == '?' || c == '{';
}

/* Skips "{m}", "{m,}" or "{m,n}" at p; NULL when a bound is missing or over REGEX_COUNT_MAX. */
static const char *skip_count(const char *p)
{
	int n = 0, digits = 0;

	for (p++; *p != '}'; p++) {
		if (*p == ',') {
			n = digits = 0;
			continue;
		}
		if (*p < '0' || *p > '9' || (n = n * 10 + (*p - '0')) > REGEX_COUNT_MAX)
			return NULL;
		digits++;
	}
	return p;
}

/* Within the bounds regcomp can be trusted with. */
static int regex_bounded(const char *re)
{
	int quantifiers = 0, depth = 0, after_quantifier = 0;

	if (strlen(re) > REGEX_LEN_MAX)
		return 0;
	for (const char *p = re; *p != '\0'; p++) {
		int q = is_quantifier(*p);

		if (q && (after_quantifier || ++quantifiers > REGEX_QUANTIFIERS_MAX))
			return 0;
		if (*p == '{' && !(p = skip_count(p)))
			return 0;
		after_quantifier = q;
		if (*p == '\\' && p[1] != '\0') {
			p++;
		} else if (*p == '[') { /* a bracket expression: its characters are literal */
			p += p[1] == '^' ? 2 : 1;
			p += *p == ']';
			while (*p != '\0' && *p != ']')
				p++;
			if (*p == '\0')
				return 0;
		} else if (*p == '(' && ++depth > REGEX_DEPTH_MAX) {
			return 0;
		} else if (*p == ')') {
			depth--;
		}
	}
	return 1;
}

static int parse_one(json_t *v, struct constraint *c, char *err, size_t errlen)
{
	json_t *field = json_array_get(v, 0), *op = json_array_get(v, 1),
	       *val = json_array_get(v, 2);
	const char *o;
	char re[CONSTRAINT_VALUE_MAX + 8];

	if (!json_is_array(v) || json_array_size(v) < 2 || json_array_size(v) > 3 ||
	    !json_is_string(field) || !json_is_string(op) || (val && !json_is_string(val))) {
		snprintf(err, errlen, "expected [field, operator] or [field, operator, value]");
		return -1;
	}
	o = json_string_value(op);
	if (val && json_string_length(val) > CONSTRAINT_VALUE_MAX) {
		snprintf(err, errlen, "value longer than %d bytes", CONSTRAINT_VALUE_MAX);
		return -1;
	}
	if (strcmp(o, "LIKE") == 0 || strcmp(o, "UNLIKE") == 0) {
		c->op = o[0] == 'L' ? CONSTRAINT_LIKE : CONSTRAINT_UNLIKE;
		if (!val) {
			snprintf(err, errlen, "%s needs a value", o);
			return -1;
		}
		if (!regex_bounded(json_string_value(val))) {
			snprintf(
			    err, errlen,
			    "%s: too complex (at most %d characters and %d quantifiers, counts "
			    "up to %d, no quantifier on a quantifier)",
			    json_string_value(val), REGEX_LEN_MAX, REGEX_QUANTIFIERS_MAX,
			    REGEX_COUNT_MAX);
			return -1;
		}
		snprintf(re, sizeof(re), "^(%s)$", json_string_value(val));
		if (regcomp(&c->re, re, REG_EXTENDED | REG_NOSUB) != 0) {
			snprintf(err, errlen, "%s: not a regular expression",
				 json_string_value(val));
			return -1;
		}
		c->compiled = 1;
	} else if ((strcmp(o, "CLUSTER") == 0 || strcmp(o, "IS") == 0) && val &&
		   json_string_length(val) > 0) {
		c->op = CONSTRAINT_EQUAL;
	} else if (is_spread_op(o) || strcmp(o, "CLUSTER") == 0) {
		c->op = CONSTRAINT_SPREAD;
	} else {
		snprintf(err, errlen, "unknown operator %s", o);
		return -1;
	}
	if (!(c->field = strdup(json_string_value(field))) ||
	    (val && !(c->value = strdup(json_string_value(val))))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int constraints_parse(json_t *list, struct constraints *out, char *err, size_t errlen)
{
	size_t i;
	json_t *v;

	memset(out, 0, sizeof(*out));
	if (!list || json_is_null(list))
		return 0;
	if (!json_is_array(list) || json_array_size(list) > CONSTRAINTS_MAX) {
		snprintf(err, errlen, "expected a list of at most %d constraints", CONSTRAINTS_MAX);
		return -1;
	}
	if (json_array_size(list) == 0)
		return 0;
	if (!(out->c = calloc(json_array_size(list), sizeof(*out->c)))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	json_array_foreach(list, i, v)
	{
		char why[192];

		out->n++;
		if (parse_one(v, &out->c[i], why, sizeof(why)) < 0) {
			snprintf(err, errlen, "constraint %zu: %s", i, why);
			constraints_free(out);
			return -1;
		}
	}
	return 0;
}

void constraints_free(struct constraints *cs)
{
	for (size_t i = 0; i < cs->n; i++) {
		if (cs->c[i].compiled)
			regfree(&cs->c[i].re);
		free(cs->c[i].field);
		free(cs->c[i].value);
	}
	free(cs->c);
	memset(cs, 0, sizeof(*cs));
}

/* The agent's value for field as text (Mesos gives scalar attributes as numbers); 0 when the
 * agent has no such attribute. */
static int field_text(const char *field, const char *hostname, json_t *attributes, char *out,
		      size_t outlen)
{
	json_t *v;

	if (strcmp(field, "hostname") == 0) {
		snprintf(out, outlen, "%s", hostname ? hostname : "");
		return hostname != NULL;
	}
	v = json_object_get(attributes, field);
	if (json_is_string(v))
		snprintf(out, outlen, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, outlen, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(out, outlen, "%g", json_real_value(v));
	else
		return 0;
	return 1;
}

int constraints_allow(const struct constraints *cs, const char *hostname, json_t *attributes)
{
	char text[1024];

	for (size_t i = 0; i < cs->n; i++) {
		const struct constraint *c = &cs->c[i];
		int has = field_text(c->field, hostname, attributes, text, sizeof(text));

		switch (c->op) {
		case CONSTRAINT_LIKE:
			if (!has || regexec(&c->re, text, 0, NULL, 0) != 0)
				return 0;
			break;
		case CONSTRAINT_UNLIKE:
			if (has && regexec(&c->re, text, 0, NULL, 0) == 0)
				return 0;
			break;
		case CONSTRAINT_EQUAL:
			if (!has || strcmp(text, c->value) != 0)
				return 0;
			break;
		case CONSTRAINT_SPREAD:
			break;
		}
	}
	return 1;
}
