/* history: the dashboard's rings. Samples come out oldest first, as many as were put in until
 * the ring is full, then the newest nsamples; unknown values are null; the newest sample alone
 * has the same values; decisions come out newest first, the last ndecisions of them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "scaler.h"

static char *dump(json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	json_decref(v);
	assert_non_null(s);
	return s;
}

static void push(struct history *h, int k)
{
	struct history_point p[2] = {
	    {.demand = k, .target = k + 1, .requested = k + 2, .running = k + 3, .held = k % 2},
	    {.demand = DEMAND_UNKNOWN, .target = 0, .requested = 0, .running = 0, .held = 0}};

	history_sample(h, 1000.0 + k, k == 2 ? -1 : 10, p);
}

static void test_samples_fill_then_wrap(void **state)
{
	struct history *h = history_new(2, 3, 4);
	char *s;

	(void)state;
	assert_non_null(h);
	s = dump(history_last_json(h));
	assert_string_equal(s, "null");
	free(s);
	s = dump(history_samples_json(h));
	assert_string_equal(s,
			    "{\"t_ms\":[],\"capacity\":[],\"apps\":[{\"demand\":[],\"target\":[],"
			    "\"requested\":[],\"running\":[],\"held\":[]},{\"demand\":[],"
			    "\"target\":[],\"requested\":[],\"running\":[],\"held\":[]}]}");
	free(s);
	push(h, 1);
	push(h, 2);
	assert_int_equal(history_count(h), 2);
	s = dump(history_samples_json(h));
	assert_string_equal(s,
			    "{\"t_ms\":[1001000,1002000],\"capacity\":[10,null],\"apps\":[{"
			    "\"demand\":[1,2],\"target\":[2,3],\"requested\":[3,4],\"running\":[4,"
			    "5],\"held\":[1,0]},{\"demand\":[null,null],\"target\":[0,0],"
			    "\"requested\":[0,0],\"running\":[0,0],\"held\":[0,0]}]}");
	free(s);
	for (int k = 3; k <= 7; k++)
		push(h, k);
	assert_int_equal(history_count(h), 3); /* bounded: the newest three */
	s = dump(history_samples_json(h));
	assert_string_equal(s, "{\"t_ms\":[1005000,1006000,1007000],\"capacity\":[10,10,10],"
			       "\"apps\":[{\"demand\":[5,6,7],\"target\":[6,7,8],\"requested\":[7,"
			       "8,9],\"running\":[8,9,10],\"held\":[1,0,1]},{\"demand\":[null,null,"
			       "null],\"target\":[0,0,0],\"requested\":[0,0,0],\"running\":[0,0,0],"
			       "\"held\":[0,0,0]}]}");
	free(s);
	s = dump(history_last_json(h));
	assert_string_equal(s, "{\"t_ms\":1007000,\"capacity\":10,\"apps\":[[7,8,9,10,1],[null,0,0,"
			       "0,0]]}");
	free(s);
	history_free(h);
}

static void test_values_clamped(void **state)
{
	struct history *h = history_new(1, 2, 1);
	struct history_point p = {.demand = 1LL << 40, .target = SCALER_INSTANCES_MAX};
	char *s;

	(void)state;
	history_sample(h, 0.0005, SCALER_INSTANCES_MAX, &p);
	s = dump(history_last_json(h));
	assert_string_equal(s, "{\"t_ms\":1,\"capacity\":1000000,\"apps\":[[2147483647,1000000,0,0,"
			       "0]]}");
	free(s);
	history_free(h);
	assert_null(history_new(1, 0, 1));
	assert_null(history_new(1, 1, 0));
}

static struct history_decision decision(const char *app, const char *action, long long to)
{
	struct history_decision d = {
	    .t = 2.5, .app = app, .want = to, .from = 1, .to = to, .latency_ms = -1};

	strcpy(d.demand, "3");
	strcpy(d.action, action);
	strcpy(d.reason, "image not ready in http://a:5000 (pulling, layers 1/3)");
	return d;
}

static void test_decisions_newest_first(void **state)
{
	struct history *h = history_new(1, 1, 2);
	struct history_decision d = decision("/a", "hold", 3);
	char *s;

	(void)state;
	s = dump(history_decisions_json(h));
	assert_string_equal(s, "[]");
	free(s);
	d.gated = 1;
	history_decision(h, &d);
	d = decision("/b", "up", 4);
	strcpy(d.sent, "yes");
	d.latency_ms = 1.5;
	strcpy(d.reason, "image ready in every cache");
	history_decision(h, &d);
	d = decision("/c", "down", 0);
	strcpy(d.sent, "no dry_run=1");
	strcpy(d.reason, "scale-downs are never gated");
	history_decision(h, &d);
	s = dump(history_decisions_json(h)); /* bounded: the last two, newest first */
	assert_string_equal(
	    s,
	    "[{\"t_ms\":2500,\"app\":\"/c\",\"demand\":\"3\",\"want\":0,\"from\":1,\"to\":0,"
	    "\"action\":\"down\",\"gated\":false,\"reason\":\"scale-downs are never gated\","
	    "\"sent\":\"no dry_run=1\"},{\"t_ms\":2500,\"app\":\"/b\",\"demand\":\"3\",\"want\":"
	    "4,\"from\":1,\"to\":4,\"action\":\"up\",\"gated\":false,\"reason\":\"image ready in "
	    "every cache\",\"sent\":\"yes\",\"latency_ms\":1.5}]");
	free(s);
	/* a reason cut inside a UTF-8 sequence does not lose the decision */
	d = decision("/a", "hold", 3);
	strcpy(d.reason, "caf\xc3");
	s = dump(history_decision_json(&d));
	assert_non_null(strstr(s, "\"reason\":\"?\""));
	free(s);
	history_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_samples_fill_then_wrap),
	    cmocka_unit_test(test_values_clamped),
	    cmocka_unit_test(test_decisions_newest_first),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
