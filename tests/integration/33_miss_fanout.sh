# Misses do not fan out (issue #15 item 7). The upstream (tests/lib/miss_upstream.py) has nothing
# and holds every answer until the test opens its gate, so that what the cache has in flight at
# once can be counted on the upstream's side. The cache: max_concurrent 8, max_queued 600,
# miss_ttl_s 60. Scenarios:
#   1,000 clients at once, each for a tag or blob that does not exist (500 + 500, all distinct):
#     8 reach the upstream, 600 wait, the other 392 are answered 429 with a Retry-After at once;
#     the gate opens: the 608 get their 404, the upstream saw 608 requests, never more than 8
#     at once.
#   The 608 misses again, within the TTL: all 404, no upstream request.
#   A 429 with Retry-After: 120 from the upstream: the client gets it; then 200 clients for
#     other tags and blobs get 429 with a Retry-After of at most 120 s, and the upstream sees
#     none of them.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/cache.sh"

CAP=8
QUEUE=600
CLIENTS=1000

pf=$T/miss.port
spawn "$T/miss.out" python3 "$MS_ROOT/tests/lib/miss_upstream.py" --port-file "$pf" --retry-after 120
miss_pid=$SPAWNED
wait_for 10 test -s "$pf" && wait_port "$(cat "$pf")" "$miss_pid" 5 || exit 1
MISS_URL=http://127.0.0.1:$(cat "$pf")

# stat NAME: one of the upstream's counters.
stat() {
	curl -s "$MISS_URL/_stats" | python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"
}

# paths FILE PREFIX N: N tag paths and N blob paths under PREFIX, all distinct.
paths() {
	local i
	for ((i = 0; i < $3; i++)); do
		echo "/v2/miss/$2/manifests/t$i"
		printf '/v2/miss/%s/blobs/sha256:%064x\n' "$2" "$i"
	done >"$1"
}

# burst PATHS OUT: every path at once; returns when all are answered.
burst() {
	python3 "$MS_ROOT/tests/lib/burst.py" --port "$CACHE_PORT" --paths "$1" --out "$2"
}

# count OUT STATUS: answers with that status.
count() {
	awk -v s="$2" '$1 == s { n++ } END { print n + 0 }' "$1"
}

# The burst is in: the queue's overflow has been answered, or the upstream is asked more than
# the cap at once (an unbounded cache: no need to wait longer).
burst_in() {
	[ "$(count "$T/a.out" 429)" -ge $((CLIENTS - CAP - QUEUE)) ] || [ "$(stat inflight)" -gt "$CAP" ]
}

cat >"$T/registry.json" <<EOF
{"upstreams": {"docker.io": {"url": "$MISS_URL", "max_concurrent": $CAP, "max_queued": $QUEUE,
   "miss_ttl_s": 60}},
 "http": {"max_connections": 1100}}
EOF
cache_start -c "$T/registry.json" || exit 1

paths "$T/a.paths" a $((CLIENTS / 2))
: >"$T/a.out"
burst "$T/a.paths" "$T/a.out" &
burst_pid=$!
wait_for 60 burst_in
held=$(stat inflight)
early=$(wc -l <"$T/a.out")
check_eq "$CLIENTS misses at once: $CAP held at the upstream" "$CAP" "$held"
check_eq "... $((CLIENTS - CAP - QUEUE)) beyond the queue answered at once" \
	$((CLIENTS - CAP - QUEUE)) "$early"
check_eq "... each of them 429" $((CLIENTS - CAP - QUEUE)) "$(count "$T/a.out" 429)"
check_eq "... with a Retry-After" 0 "$(awk '$1 == 429 && $2 !~ /^[0-9]+$/' "$T/a.out" | wc -l)"
curl -s -X POST "$MISS_URL/_open" >/dev/null
wait "$burst_pid"
check_eq "the gate opened: the $((CAP + QUEUE)) let in got their 404" $((CAP + QUEUE)) \
	"$(count "$T/a.out" 404)"
check_eq "... and every client an answer" "$CLIENTS" "$(wc -l <"$T/a.out")"
check_eq "the upstream was asked once per miss let in" $((CAP + QUEUE)) "$(stat requests)"
max=$(stat max_inflight)
echo "# $CLIENTS misses at once: the upstream saw $(stat requests) requests, at most $max at once"
check "... never more than $CAP at once (it saw $max)" [ "$max" -le "$CAP" ]

awk '$1 == 404 { print $3 }' "$T/a.out" >"$T/b.paths"
before=$(stat requests)
burst "$T/b.paths" "$T/b.out"
check_eq "the same misses again within miss_ttl_s: 404" $((CAP + QUEUE)) "$(count "$T/b.out" 404)"
check_eq "... without asking the upstream" 0 $(($(stat requests) - before))

before=$(stat requests)
check_eq "the upstream's 429 goes to the client" 429 \
	"$(curl -s -o /dev/null -w '%{http_code}' "$CACHE_URL/v2/limited/x/manifests/t")"
check_eq "... once asked" 1 $(($(stat requests) - before))
check "... and its Retry-After closes the upstream (logged)" \
	grep -q 'event=upstream_rate_limited registry=docker.io retry_after_s=120' "$CACHE_LOG"
paths "$T/c.paths" c 100
before=$(stat requests)
burst "$T/c.paths" "$T/c.out"
check_eq "while it runs, 200 other misses: 429 at once" 200 "$(count "$T/c.out" 429)"
check_eq "... with what is left of the Retry-After (1 to 120 s)" 0 \
	"$(awk '!($2 ~ /^[0-9]+$/ && $2 >= 1 && $2 <= 120)' "$T/c.out" | wc -l)"
check_eq "... without asking the upstream" 0 $(($(stat requests) - before))
check "the full queue was logged" grep -q "event=upstream_queue_full registry=docker.io active=$CAP queued=$QUEUE" "$CACHE_LOG"
# spared REASON: microscale_upstream_spared_total{reason="REASON"} from the cache's /metrics.
spared() { curl -fsS "$CACHE_URL/metrics" | awk -v k="microscale_upstream_spared_total{reason=\"$1\"}" '$1 == k { printf "%.0f\n", $2 }'; }
check_eq "the metrics count the misses answered from memory" $((CAP + QUEUE)) "$(spared miss)"
check_eq "... the requests refused with the queue full" $((CLIENTS - CAP - QUEUE)) "$(spared queue_full)"
check_eq "... and those answered while the Retry-After ran" 200 "$(spared rate_limited)"
cache_stop
check_eq "cache exits 0 on SIGTERM" 0 "$?"
