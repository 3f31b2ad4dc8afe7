/* stats: the cache's metrics and GET /metrics (Prometheus text format). Families are made once
 * at start-up; the code that sees an event counts it through r->stats. */
#include <stdlib.h>
#include <string.h>

#include "registry.h"

static const char *const l_method_status[] = {"method", "status", NULL};
static const char *const l_kind_result[] = {"kind", "result", NULL};
static const char *const l_source[] = {"source", NULL};
static const char *const l_kind[] = {"kind", NULL};
static const char *const l_state[] = {"state", NULL};
static const char *const l_result[] = {"result", NULL};
static const char *const l_reason[] = {"reason", NULL};
static const double fetch_buckets[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

static double in_flight(void *arg)
{
	return (double)fetch_loop_active(((struct registry *)arg)->fl);
}

static void on_request(const struct httpd_req *req, int status, long long bytes, void *arg)
{
	struct registry *r = arg;
	char code[8];

	(void)bytes;
	snprintf(code, sizeof(code), "%d", status);
	metrics_add(r->stats.requests, 1, req->method ? req->method : "-", code);
}

int stats_init(struct registry *r)
{
	struct stats *s = &r->stats;
	struct metrics *m = s->m = metrics_new();

	if (!m)
		return -1;
	s->requests =
	    metrics_counter(m, "microscale_http_requests_total",
			    "HTTP requests answered, by method and status", l_method_status);
	s->cache = metrics_counter(
	    m, "microscale_cache_requests_total",
	    "Manifest and blob requests, answered from the store (hit) or not", l_kind_result);
	s->bytes = metrics_counter(m, "microscale_bytes_total",
				   "Blob bytes served from the store, and fetched from upstreams",
				   l_source);
	s->in_flight = metrics_gauge(m, "microscale_upstream_fetches_in_flight",
				     "Upstream transfers running now", NULL);
	s->upstream_errors = metrics_counter(m, "microscale_upstream_errors_total",
					     "Failed upstream fetches, by kind", l_kind);
	s->upstream_spared = metrics_counter(m, "microscale_upstream_spared_total",
					     "Upstream requests answered without asking it: a miss "
					     "remembered (miss), its Retry-After "
					     "running (rate_limited), its queue full (queue_full)",
					     l_reason);
	s->fetch_seconds =
	    metrics_histogram(m, "microscale_blob_fetch_duration_seconds",
			      "Time to fetch and verify a blob from an upstream", NULL,
			      fetch_buckets, sizeof(fetch_buckets) / sizeof(fetch_buckets[0]));
	s->prewarm =
	    metrics_gauge(m, "microscale_prewarm_images", "Tracked images, by state", l_state);
	s->store_bytes = metrics_gauge(
	    m, "microscale_store_bytes",
	    "Bytes stored (blobs, manifests, tags, tag lists; in 4 KiB blocks)", NULL);
	s->store_budget = metrics_gauge(m, "microscale_store_budget_bytes",
					"store.max_bytes, or 80% of the free space at start", NULL);
	s->evicted = metrics_counter(m, "microscale_evicted_bytes_total",
				     "Bytes of blobs evicted to keep within the budget", NULL);
	s->mismatches = metrics_counter(m, "microscale_digest_mismatches_total",
					"Upstream content whose digest was wrong", NULL);
	s->runtime_pulls =
	    metrics_counter(m, "microscale_runtime_pulls_total",
			    "Pulls asked of the node's dockerd, by result", l_result);
	s->runtime_errors =
	    metrics_counter(m, "microscale_runtime_errors_total",
			    "Failed requests to the node's dockerd, by kind", l_kind);
	s->runtime_images = metrics_gauge(m, "microscale_runtime_images",
					  "Images put into the node's Docker, by state", l_state);
	if (!s->requests || !s->cache || !s->bytes || !s->in_flight || !s->upstream_errors ||
	    !s->fetch_seconds || !s->prewarm || !s->store_bytes || !s->store_budget ||
	    !s->evicted || !s->mismatches || !s->runtime_pulls || !s->runtime_errors ||
	    !s->runtime_images)
		return -1;
	metrics_gauge_fn(s->in_flight, in_flight, r);
	httpd_set_observer(r->httpd, on_request, r);
	return 0;
}

void stats_free(struct registry *r)
{
	metrics_free(r->stats.m);
	memset(&r->stats, 0, sizeof(r->stats));
}

/* Values that are read rather than counted are brought up to date just before rendering. */
static void refresh(struct registry *r)
{
	static const char *const states[] = {"queued", "pulling", "ready", "failed"};
	int count[4] = {0}, rt[RUNTIME_REPORTS];
	struct prewarm_image *img;
	size_t i;

	for (img = prewarm_images(r->prewarm); img; img = prewarm_next(img))
		count[img->state]++;
	for (i = 0; i < 4; i++)
		metrics_set(r->stats.prewarm, count[i], states[i]);
	if (r->runtime) {
		runtime_counts(r->runtime, rt);
		for (i = 0; i < RUNTIME_REPORTS; i++)
			metrics_set(r->stats.runtime_images, rt[i], runtime_report_name(i));
	}
	metrics_set(r->stats.store_bytes, (double)evict_used(r->evict));
	metrics_set(r->stats.store_budget, (double)evict_budget(r->evict));
}

void stats_serve(struct registry *r, struct httpd_conn *conn)
{
	size_t len;
	char *text;

	refresh(r);
	text = metrics_render(r->stats.m, &len);
	if (!text) {
		api_error(conn, 500, API_UNSUPPORTED, "out of memory");
		return;
	}
	httpd_add_header(conn, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	httpd_respond(conn, 200, text, len);
	free(text);
}
