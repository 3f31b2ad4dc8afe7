/* constraint: which agents Marathon's constraints let run an app: LIKE and UNLIKE as whole-value
 * expressions on hostname and attributes (text and scalar), CLUSTER/IS as equality, the spreading
 * operators ruling no agent out, and each malformed constraint refused with a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "scaler.h"

/* Parses TEXT (a JSON list); asserts that it parses. */
static void parse(const char *text, struct constraints *cs)
{
	json_t *list = json_loads(text, 0, NULL);
	char err[200] = "";

	assert_non_null(list);
	if (constraints_parse(list, cs, err, sizeof(err)) < 0)
		fail_msg("%s: %s", text, err);
	json_decref(list);
}

static int allows(const char *text, const char *host, const char *attrs)
{
	struct constraints cs;
	json_t *a = attrs ? json_loads(attrs, 0, NULL) : NULL;
	int r;

	parse(text, &cs);
	r = constraints_allow(&cs, host, a);
	constraints_free(&cs);
	json_decref(a);
	return r;
}

static void test_like_unlike_hostname(void **state)
{
	(void)state;
	assert_true(allows("[[\"hostname\", \"LIKE\", \"10.0.0.(11|12)\"]]", "10.0.0.11", NULL));
	assert_false(allows("[[\"hostname\", \"LIKE\", \"10.0.0.(11|12)\"]]", "10.0.0.13", NULL));
	/* the whole value: a match inside it is not enough */
	assert_false(allows("[[\"hostname\", \"LIKE\", \"agent\"]]", "agent-1", NULL));
	assert_false(allows("[[\"hostname\", \"UNLIKE\", \"agent-[12]\"]]", "agent-2", NULL));
	assert_true(allows("[[\"hostname\", \"LIKE\", \"a[]+x]\\\\.b\"]]", "a+.b", NULL));
	assert_true(allows("[[\"hostname\", \"UNLIKE\", \"agent-[12]\"]]", "agent-3", NULL));
}

static void test_attributes(void **state)
{
	const char *r1 = "{\"rack\": \"r1\", \"gen\": 3}";

	(void)state;
	assert_true(allows("[[\"rack\", \"LIKE\", \"r1\"]]", "h", r1));
	assert_false(allows("[[\"rack\", \"LIKE\", \"r2\"]]", "h", r1));
	assert_true(allows("[[\"gen\", \"LIKE\", \"[3-5]\"]]", "h", r1)); /* a scalar attribute */
	/* without the attribute: LIKE rules the agent out, UNLIKE lets it in */
	assert_false(allows("[[\"zone\", \"LIKE\", \".*\"]]", "h", r1));
	assert_true(allows("[[\"zone\", \"UNLIKE\", \"a\"]]", "h", r1));
	assert_true(allows("[[\"rack\", \"CLUSTER\", \"r1\"]]", "h", r1));
	assert_false(allows("[[\"rack\", \"IS\", \"r2\"]]", "h", r1));
	/* every constraint must hold */
	assert_false(
	    allows("[[\"rack\", \"LIKE\", \"r1\"], [\"hostname\", \"LIKE\", \"x\"]]", "h", r1));
}

static void test_spreading_rules_no_agent_out(void **state)
{
	(void)state;
	assert_true(allows("[[\"hostname\", \"UNIQUE\"]]", "h", NULL));
	assert_true(allows("[[\"rack\", \"GROUP_BY\", \"2\"]]", "h", NULL));
	assert_true(allows("[[\"hostname\", \"MAX_PER\", \"1\"]]", "h", NULL));
	assert_true(allows("[[\"rack\", \"CLUSTER\"]]", "h", NULL));
	assert_true(allows("[]", "h", NULL));
}

static void test_bad(void **state)
{
	static const char *const bad[][2] = {
	    {"{}", "expected a list of at most 64 constraints"},
	    {"[[\"hostname\"]]",
	     "constraint 0: expected [field, operator] or [field, operator, value]"},
	    {"[[\"hostname\", \"NEAR\", \"x\"]]", "constraint 0: unknown operator NEAR"},
	    {"[[\"hostname\", \"LIKE\"]]", "constraint 0: LIKE needs a value"},
	    {"[[\"hostname\", \"LIKE\", \"(\"]]", "constraint 0: (: not a regular expression"},
	    /* what makes glibc's regcomp balloon: refused before it is compiled */
	    {"[[\"h\", \"LIKE\", \"K++++\"]]",
	     "constraint 0: K++++: too complex (at most 256 characters and 16 quantifiers, counts "
	     "up to 16, no quantifier on a quantifier)"},
	    {"[[\"h\", \"LIKE\", \"(a{16}){3}\"]]", NULL},
	    {"[[\"h\", \"LIKE\", \"a{17}\"]]", "too complex"},
	    {"[[\"h\", \"LIKE\", \"a*{2}\"]]", "too complex"},
	    {"[[\"h\", \"LIKE\", \"((((((((((a))))))))))\"]]", "too complex"},
	    {"[[\"h\", \"LIKE\", \"[a-z\"]]", "too complex"},
	    {"[[\"hostname\", \"UNIQUE\"], [1, \"LIKE\", \"x\"]]",
	     "constraint 1: expected [field, operator] or [field, operator, value]"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *list = json_loads(bad[i][0], 0, NULL);
		struct constraints cs;
		char err[200] = "";

		if (!bad[i][1]) { /* within the bounds */
			assert_int_equal(constraints_parse(list, &cs, err, sizeof(err)), 0);
			constraints_free(&cs);
			json_decref(list);
			continue;
		}
		assert_int_equal(constraints_parse(list, &cs, err, sizeof(err)), -1);
		if (!strstr(err, bad[i][1]))
			fail_msg("%s: got \"%s\", want \"%s\"", bad[i][0], err, bad[i][1]);
		assert_int_equal(cs.n, 0);
		json_decref(list);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_like_unlike_hostname),
	    cmocka_unit_test(test_attributes),
	    cmocka_unit_test(test_spreading_rules_no_agent_out),
	    cmocka_unit_test(test_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
