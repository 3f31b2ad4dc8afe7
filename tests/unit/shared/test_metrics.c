/* metrics: each type, labels and their order, escaping, the series cap, names, histogram buckets,
 * numbers, and a realistic exposition checked by promtool when it is installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "metrics.h"

/* What every registry renders first: its own counter of dropped series. */
#define DROPPED(n)                                                                                 \
	"# HELP metrics_dropped_series_total Label sets not recorded: the family's series cap "    \
	"was reached or memory ran out.\n"                                                         \
	"# TYPE metrics_dropped_series_total counter\n"                                            \
	"metrics_dropped_series_total " #n "\n"

static const char *const no_labels[] = {NULL};
static const char *const method_code[] = {"method", "code", NULL};

/* Renders m, checks the length it reports, and compares with want. */
static void assert_render(const struct metrics *m, const char *want)
{
	size_t len = 0;
	char *out = metrics_render(m, &len);

	assert_non_null(out);
	assert_int_equal(len, strlen(out));
	assert_string_equal(out, want);
	free(out);
}

/* Does the rendering of m hold LINE as a whole line? */
static int has_line(const struct metrics *m, const char *line)
{
	char *out = metrics_render(m, NULL), *p;
	size_t n = strlen(line);
	int found = 0;

	assert_non_null(out);
	for (p = out; !found && p && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		found = strncmp(p, line, n) == 0 && p[n] == '\n';
	free(out);
	return found;
}

static void test_empty(void **state)
{
	struct metrics *m = metrics_new();

	(void)state;
	assert_non_null(m);
	assert_render(m, DROPPED(0));
	metrics_free(m);
	metrics_free(NULL);
}

static void test_counter(void **state)
{
	struct metrics *m = metrics_new();
	struct metric_family *f = metrics_counter(m, "ms_requests_total", "Requests served.", NULL);

	(void)state;
	assert_non_null(f);
	assert_render(m, DROPPED(0) "# HELP ms_requests_total Requests served.\n"
				    "# TYPE ms_requests_total counter\n"
				    "ms_requests_total 0\n");
	metrics_add(f, 1);
	metrics_add(f, 2.5);
	metrics_add(f, -1);  /* a counter never goes down */
	metrics_add(f, NAN); /* nor turns into NaN */
	metrics_set(f, 100); /* set is for gauges */
	metrics_observe(f, 100);
	assert_render(m, DROPPED(0) "# HELP ms_requests_total Requests served.\n"
				    "# TYPE ms_requests_total counter\n"
				    "ms_requests_total 3.5\n");
	metrics_free(m);
}

static double twice(void *arg)
{
	return 2 * *(double *)arg;
}

static void test_gauge(void **state)
{
	struct metrics *m = metrics_new();
	struct metric_family *g = metrics_gauge(m, "ms_conns", NULL, no_labels);
	struct metric_family *q = metrics_gauge(m, "ms_queue_bytes", "Queued.", NULL);
	struct metric_family *l =
	    metrics_gauge(m, "ms_temp", "T.", (const char *const[]){"room", NULL});
	double x = 21;

	(void)state;
	metrics_set(g, 5);
	metrics_add(g, -7);
	metrics_gauge_fn(q, twice, &x);
	metrics_set(q, 1000);		/* the function wins */
	metrics_gauge_fn(l, twice, &x); /* labelled: ignored */
	metrics_set(l, -0.5, "b");
	metrics_observe(l, 3, "b");
	assert_render(m, DROPPED(0) "# TYPE ms_conns gauge\n"
				    "ms_conns -2\n"
				    "# HELP ms_queue_bytes Queued.\n"
				    "# TYPE ms_queue_bytes gauge\n"
				    "ms_queue_bytes 42\n"
				    "# HELP ms_temp T.\n"
				    "# TYPE ms_temp gauge\n"
				    "ms_temp{room=\"b\"} -0.5\n");
	x = 0.25;
	assert_true(has_line(m, "ms_queue_bytes 0.5"));
	metrics_free(m);
}

static void test_labels_sorted(void **state)
{
	struct metrics *m = metrics_new();
	struct metric_family *f = metrics_counter(m, "ms_http_total", "H.", method_code);
	struct metric_family *p =
	    metrics_counter(m, "ms_pair_total", "P.", (const char *const[]){"a", "b", NULL});

	(void)state;
	metrics_add(f, 1, "PUT", "201");
	metrics_add(f, 1, "GET", "404");
	metrics_add(f, 1, "GET", "200");
	metrics_add(f, 2, "GET", "200");
	metrics_add(f, 1, "GE", "500");
	metrics_add(f, 1, NULL, "200"); /* NULL is "" */
	metrics_add(p, 1, "ab", "");	/* not the same series as ("a", "b") */
	metrics_add(p, 10, "a", "b");
	assert_render(m, DROPPED(0) "# HELP ms_http_total H.\n"
				    "# TYPE ms_http_total counter\n"
				    "ms_http_total{method=\"\",code=\"200\"} 1\n"
				    "ms_http_total{method=\"GE\",code=\"500\"} 1\n"
				    "ms_http_total{method=\"GET\",code=\"200\"} 3\n"
				    "ms_http_total{method=\"GET\",code=\"404\"} 1\n"
				    "ms_http_total{method=\"PUT\",code=\"201\"} 1\n"
				    "# HELP ms_pair_total P.\n"
				    "# TYPE ms_pair_total counter\n"
				    "ms_pair_total{a=\"a\",b=\"b\"} 10\n"
				    "ms_pair_total{a=\"ab\",b=\"\"} 1\n");
	metrics_free(m);
}

static void test_escaping(void **state)
{
	struct metrics *m = metrics_new();
	struct metric_family *f =
	    metrics_gauge(m, "ms_esc", "Back\\slash, \"quote\"\nand newline.", method_code);

	(void)state;
	metrics_set(f, 1, "a\\b", "say \"hi\"\n");
	assert_render(m, DROPPED(0) "# HELP ms_esc Back\\\\slash, \"quote\"\\nand newline.\n"
				    "# TYPE ms_esc gauge\n"
				    "ms_esc{method=\"a\\\\b\",code=\"say \\\"hi\\\"\\n\"} 1\n");
	metrics_free(m);
}

static void test_series_cap(void **state)
{
	struct metrics *m = metrics_new();
	struct metric_family *f =
	    metrics_counter(m, "ms_by_user_total", "U.", (const char *const[]){"user", NULL});
	char v[64];
	char *out;
	size_t lines = 0;

	(void)state;
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < METRICS_MAX_SERIES + 5; i++) {
			snprintf(v, sizeof(v), "u%d", i);
			metrics_add(f, 1, v);
		}
	}
	/* The first METRICS_MAX_SERIES label sets are kept (and found again); the rest dropped. */
	assert_true(has_line(m, "metrics_dropped_series_total 10"));
	assert_true(has_line(m, "ms_by_user_total{user=\"u0\"} 2"));
	snprintf(v, sizeof(v), "ms_by_user_total{user=\"u%d\"} 2", METRICS_MAX_SERIES - 1);
	assert_true(has_line(m, v));
	snprintf(v, sizeof(v), "ms_by_user_total{user=\"u%d\"} 1", METRICS_MAX_SERIES);
	assert_false(has_line(m, v));
	out = metrics_render(m, NULL);
	assert_non_null(out);
	for (char *p = strstr(out, "\nms_by_user_total{"); p;
	     p = strstr(p + 1, "\nms_by_user_total{"))
		lines++;
	assert_int_equal(lines, METRICS_MAX_SERIES);
	free(out);
	metrics_free(m);
}

static void test_invalid_names(void **state)
{
	static const char *const bad_metric[] = {"",	"1abc",	       "a-b", "a b",
						 "a.b", "caf\xc3\xa9", "a\n", "{x}"};
	static const char *const bad_label[] = {"", "1x", "a:b", "a-b", "__reserved", "x y"};
	static const double up[] = {1, 2};
	struct metrics *m = metrics_new();
	const char *labels[] = {NULL, NULL};

	(void)state;
	for (size_t i = 0; i < sizeof(bad_metric) / sizeof(bad_metric[0]); i++) {
		if (metrics_counter(m, bad_metric[i], "x", NULL))
			fail_msg("accepted metric name \"%s\"", bad_metric[i]);
	}
	for (size_t i = 0; i < sizeof(bad_label) / sizeof(bad_label[0]); i++) {
		labels[0] = bad_label[i];
		if (metrics_gauge(m, "ms_ok", "x", labels))
			fail_msg("accepted label name \"%s\"", bad_label[i]);
	}
	assert_null(metrics_counter(NULL, "ms_x_total", "x", NULL));
	assert_null(metrics_counter(m, NULL, "x", NULL));
	assert_null(metrics_gauge(m, "ms_dup", "x", (const char *const[]){"a", "b", "a", NULL}));
	assert_null(metrics_histogram(m, "ms_h", "x", (const char *const[]){"le", NULL}, up, 2));
	assert_null(metrics_counter(m, "metrics_dropped_series_total", "x", NULL));
	/* Good names, including the edge cases of the grammar. */
	assert_non_null(
	    metrics_counter(m, "_a:b_c:9_total", "x", (const char *const[]){"_x9", NULL}));
	assert_non_null(metrics_gauge(m, ":colon", "x", (const char *const[]){"le", NULL}));
	assert_non_null(metrics_gauge(m, "ms_same", "x", NULL));
	assert_null(metrics_gauge(m, "ms_same", "x", NULL));
	assert_null(metrics_counter(m, "ms_same", "x", NULL));
	/* A histogram also takes NAME_bucket, NAME_sum and NAME_count, in either order. */
	assert_non_null(metrics_histogram(m, "ms_lat", "x", NULL, up, 2));
	assert_null(metrics_gauge(m, "ms_lat_count", "x", NULL));
	assert_null(metrics_counter(m, "ms_lat_sum", "x", NULL));
	assert_null(metrics_gauge(m, "ms_lat_bucket", "x", NULL));
	assert_non_null(metrics_gauge(m, "ms_lat_max", "x", NULL));
	assert_non_null(metrics_gauge(m, "ms_req_count", "x", NULL));
	assert_null(metrics_histogram(m, "ms_req", "x", NULL, up, 2));
	metrics_free(m);
}

static void test_too_many_labels(void **state)
{
	static const char *const names[] = {"l0",  "l1",  "l2",	 "l3",	"l4",  "l5",
					    "l6",  "l7",  "l8",	 "l9",	"l10", "l11",
					    "l12", "l13", "l14", "l15", "l16", NULL};
	const char *some[METRICS_MAX_LABELS + 1];
	struct metrics *m = metrics_new();

	(void)state;
	assert_true(sizeof(names) / sizeof(names[0]) > METRICS_MAX_LABELS + 1);
	assert_null(metrics_gauge(m, "ms_wide", "x", names));
	memcpy(some, names, sizeof(some[0]) * METRICS_MAX_LABELS);
	some[METRICS_MAX_LABELS] = NULL;
	assert_non_null(metrics_gauge(m, "ms_wide", "x", some));
	metrics_free(m);
}

static void test_histogram(void **state)
{
	static const double b[] = {0.25, 0.5, 1};
	static const double obs[] = {0.125, 0.25, 0.375, 1, 2, 100, -3};
	struct metrics *m = metrics_new();
	struct metric_family *h = metrics_histogram(m, "ms_lat_seconds", "L.", NULL, b, 3);
	struct metric_family *hl =
	    metrics_histogram(m, "ms_size_bytes", "S.", (const char *const[]){"op", NULL}, b, 1);

	(void)state;
	assert_non_null(h);
	assert_non_null(hl);
	for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
		metrics_observe(h, obs[i]);
	metrics_observe(h, NAN); /* ignored */
	metrics_add(h, 1);	 /* wrong type: ignored */
	metrics_observe(hl, 7, "put");
	metrics_observe(hl, 0.25, "get");
	/* le is inclusive: 0.25 lands in le="0.25"; -3 in the first bucket too. */
	assert_render(m, DROPPED(0) "# HELP ms_lat_seconds L.\n"
				    "# TYPE ms_lat_seconds histogram\n"
				    "ms_lat_seconds_bucket{le=\"0.25\"} 3\n"
				    "ms_lat_seconds_bucket{le=\"0.5\"} 4\n"
				    "ms_lat_seconds_bucket{le=\"1\"} 5\n"
				    "ms_lat_seconds_bucket{le=\"+Inf\"} 7\n"
				    "ms_lat_seconds_sum 100.75\n"
				    "ms_lat_seconds_count 7\n"
				    "# HELP ms_size_bytes S.\n"
				    "# TYPE ms_size_bytes histogram\n"
				    "ms_size_bytes_bucket{op=\"get\",le=\"0.25\"} 1\n"
				    "ms_size_bytes_bucket{op=\"get\",le=\"+Inf\"} 1\n"
				    "ms_size_bytes_sum{op=\"get\"} 0.25\n"
				    "ms_size_bytes_count{op=\"get\"} 1\n"
				    "ms_size_bytes_bucket{op=\"put\",le=\"0.25\"} 0\n"
				    "ms_size_bytes_bucket{op=\"put\",le=\"+Inf\"} 1\n"
				    "ms_size_bytes_sum{op=\"put\"} 7\n"
				    "ms_size_bytes_count{op=\"put\"} 1\n");
	metrics_free(m);
}

static void test_histogram_buckets_many(void **state)
{
	double b[20];
	struct metrics *m = metrics_new();
	struct metric_family *h;
	char line[96];

	(void)state;
	for (int i = 0; i < 20; i++)
		b[i] = i + 1;
	h = metrics_histogram(m, "ms_n", "N.", NULL, b, 20);
	/* Observing 0.5, 1.5, ..., 24.5: bucket le=k holds every value up to k, +Inf all 25. */
	for (int i = 0; i < 25; i++)
		metrics_observe(h, i + 0.5);
	for (int k = 1; k <= 20; k++) {
		snprintf(line, sizeof(line), "ms_n_bucket{le=\"%d\"} %d", k, k);
		assert_true(has_line(m, line));
	}
	assert_true(has_line(m, "ms_n_bucket{le=\"+Inf\"} 25"));
	assert_true(has_line(m, "ms_n_sum 312.5"));
	assert_true(has_line(m, "ms_n_count 25"));
	metrics_free(m);
}

static void test_histogram_bad_buckets(void **state)
{
	static const double same[] = {1, 1}, down[] = {2, 1}, nan[] = {1, NAN},
			    inf[] = {1, INFINITY}, ninf[] = {-INFINITY, 1};
	struct metrics *m = metrics_new();
	struct metric_family *h;

	(void)state;
	assert_null(metrics_histogram(m, "ms_h", "x", NULL, same, 2));
	assert_null(metrics_histogram(m, "ms_h", "x", NULL, down, 2));
	assert_null(metrics_histogram(m, "ms_h", "x", NULL, nan, 2));
	assert_null(metrics_histogram(m, "ms_h", "x", NULL, inf, 2));
	assert_null(metrics_histogram(m, "ms_h", "x", NULL, ninf, 2));
	assert_null(metrics_histogram(m, "ms_h", "x", NULL, NULL, 2));
	/* No bounds at all: just +Inf. */
	h = metrics_histogram(m, "ms_h", "x", NULL, NULL, 0);
	assert_non_null(h);
	metrics_observe(h, 1e9);
	assert_true(has_line(m, "ms_h_bucket{le=\"+Inf\"} 1"));
	assert_true(has_line(m, "ms_h_sum 1000000000"));
	metrics_free(m);
}

static void test_numbers(void **state)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
	    {0, "0"},
	    {-0.0, "0"},
	    {42, "42"},
	    {-17, "-17"},
	    {0.1, "0.1"},
	    {1.0 / 3, "0.3333333333333333"},
	    {0.1 + 0.2, "0.30000000000000004"},
	    {123456789.125, "123456789.125"},
	    {9007199254740991.0, "9007199254740991"},
	    {9007199254740992.0, "9007199254740992"},
	    {1e20, "1e+20"},
	    {-1.5e-300, "-1.5e-300"},
	    {1.7976931348623157e308, "1.7976931348623157e+308"},
	    {INFINITY, "+Inf"},
	    {-INFINITY, "-Inf"},
	    {NAN, "NaN"},
	};
	struct metrics *m = metrics_new();
	struct metric_family *g = metrics_gauge(m, "ms_v", "V.", NULL);
	char line[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		metrics_set(g, cases[i].v);
		snprintf(line, sizeof(line), "ms_v %s", cases[i].want);
		if (!has_line(m, line))
			fail_msg("%.17g not rendered as \"%s\"", cases[i].v, cases[i].want);
	}
	metrics_free(m);
}

static void test_null_family(void **state)
{
	(void)state;
	metrics_add(NULL, 1);
	metrics_set(NULL, 1);
	metrics_observe(NULL, 1);
	metrics_gauge_fn(NULL, twice, NULL);
	assert_null(metrics_render(NULL, NULL));
}

/* Runs `promtool check metrics` on text; 1 when it is not installed. */
static int promtool_ok(const char *text, size_t len, int *ran)
{
	FILE *p;
	int st;

	*ran = system("command -v promtool >/dev/null 2>&1") == 0;
	if (!*ran)
		return 1;
	p = popen("promtool check metrics", "w");
	assert_non_null(p);
	assert_int_equal(fwrite(text, 1, len, p), len);
	st = pclose(p);
	return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static double uptime(void *arg)
{
	(void)arg;
	return 1234.5;
}

/* What the registry would expose, built the way its main would build it. */
static struct metrics *realistic(void)
{
	static const double lat[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
	static const double size[] = {1024, 65536, 1048576, 16777216, 268435456};
	struct metrics *m = metrics_new();
	struct metric_family *req =
	    metrics_counter(m, "microscale_http_requests_total",
			    "HTTP requests by method and status code.", method_code);
	struct metric_family *dur =
	    metrics_histogram(m, "microscale_http_request_duration_seconds",
			      "Time from the request's first byte to "
			      "the response's last.",
			      (const char *const[]){"method", NULL}, lat, 11);
	struct metric_family *blob = metrics_histogram(m, "microscale_blob_size_bytes",
						       "Sizes of blobs served.", NULL, size, 5);
	struct metric_family *store =
	    metrics_gauge(m, "microscale_store_bytes", "Bytes held in the store.", NULL);
	struct metric_family *pulls = metrics_gauge(m, "microscale_pulls_in_flight",
						    "Upstream pulls in progress by registry.",
						    (const char *const[]){"registry", NULL});
	struct metric_family *up =
	    metrics_gauge(m, "microscale_uptime_seconds", "Seconds since start-up.", NULL);

	assert_non_null(req);
	assert_non_null(dur);
	assert_non_null(blob);
	assert_non_null(store);
	assert_non_null(pulls);
	assert_non_null(up);
	metrics_add(req, 120, "GET", "200");
	metrics_add(req, 3, "GET", "404");
	metrics_add(req, 1, "HEAD", "200");
	metrics_add(req, 2, "PUT", "201");
	metrics_add(req, 1, "GET\"\\\n", "400"); /* a hostile method, escaped */
	for (int i = 0; i < 50; i++)
		metrics_observe(dur, i * 0.013, i % 3 ? "GET" : "HEAD");
	metrics_observe(blob, 3.5e6);
	metrics_observe(blob, 512);
	metrics_set(store, 7.5e9);
	metrics_set(pulls, 2, "docker.io");
	metrics_set(pulls, 0, "ghcr.io");
	metrics_gauge_fn(up, uptime, NULL);
	return m;
}

static void test_realistic_promtool(void **state)
{
	struct metrics *m = realistic();
	size_t len;
	char *out = metrics_render(m, &len);
	int ran;

	(void)state;
	assert_non_null(out);
	assert_non_null(strstr(out,
			       "\nmicrosc"
			       "ale_http_requests_total{method=\"GET\\\"\\\\\\n\",code=\"400\"} "
			       "1\n"));
	assert_non_null(strstr(out, "\nmicroscale_http_request_duration_seconds_bucket"
				    "{method=\"HEAD\",le=\"+Inf\"} 17\n"));
	assert_non_null(strstr(out, "\nmicroscale_uptime_seconds 1234.5\n"));
	assert_non_null(strstr(out, "\nmicroscale_store_bytes 7500000000\n"));
	assert_true(promtool_ok(out, len, &ran));
	if (!ran)
		print_message("promtool not installed: output not validated\n");
	free(out);
	metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_counter),
	    cmocka_unit_test(test_gauge),
	    cmocka_unit_test(test_labels_sorted),
	    cmocka_unit_test(test_escaping),
	    cmocka_unit_test(test_series_cap),
	    cmocka_unit_test(test_invalid_names),
	    cmocka_unit_test(test_too_many_labels),
	    cmocka_unit_test(test_histogram),
	    cmocka_unit_test(test_histogram_buckets_many),
	    cmocka_unit_test(test_histogram_bad_buckets),
	    cmocka_unit_test(test_numbers),
	    cmocka_unit_test(test_null_family),
	    cmocka_unit_test(test_realistic_promtool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
