# The control API's bounds (#15 item 5), as a local attacker or a web page on the node would try
# them:
#   - a page's requests: a text/plain POST (no CORS preflight), a foreign Origin, Sec-Fetch-Site
#     cross-site or same-site, a rebound DNS name in Host: all refused, nothing tracked;
#   - a body that is chunked or over 4 KiB: 413;
#   - thousands of POST prewarm of images that do not exist: at most prewarm.max_requested (256)
#     are tracked, the rest get 429 TOOMANYREQUESTS; each tracked one is tried
#     prewarm.request_attempts times and given up ("failed", given_up, last_error), so the
#     upstream hears at most 256 x attempts requests for them; memory stays flat and the daemon
#     goes quiet;
#   - what still works: a JSON POST (202, ready), a page of the cache's own origin, the admin
#     token with any Host, the listed image (never counted, never dropped); a ready, unpinned
#     requested image is what makes room first.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"
# Freed memory would wait in AddressSanitizer's quarantine (256 MiB) and read as growth.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}:quarantine_size_mb=1"

FLOOD=5000
MAX=256     # prewarm.max_requested's default
ATTEMPTS=5  # prewarm.request_attempts's default: given up after 2+4+8+16 s of backoff

fixtures_upstream_start || exit 1
token=0123456789abcdef-test-token
echo "$FIX_DOCKER" >"$T/priority.list"
cat >"$T/cache.json" <<EOF
{"admin_token": "$token"}
EOF
chmod 600 "$T/cache.json"
cache_start -c "$T/cache.json" --upstream "$UPSTREAM_URL" --prewarm "$T/priority.list" || exit 1

api() { curl -s --max-time 30 "$CACHE_URL/_microscale/v1/$1"; }
field() { api "ready?ref=$1" | jq -r ".$2"; }
is_ready() { [ "$(field "$1" ready)" = true ]; }
# post REF [CURL FLAGS…]: POST prewarm with a JSON body; prints the status.
post() {
	local ref=$1
	shift
	curl -s -o "$T/post" -w '%{http_code}' "$@" --data-binary "{\"ref\":\"$ref\"}" \
		"$CACHE_URL/_microscale/v1/prewarm"
}
json=(-H 'Content-Type: application/json')
code_of_body() { jq -r '.errors[0].code' "$T/post"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$CACHE_PID/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$CACHE_PID/stat"; }
nope_gets() { upstream_requests_since "$1" | grep -c 'GET /v2/library/nope-'; }
tracked_requested() { api images | jq '[.images[] | select(.ref | test("nope-"))] | length'; }
all_given_up() {
	[ "$(api images | jq '[.images[] | select(.ref | test("nope-"))] | all(.given_up)')" = true ]
}
# within SECONDS CMD…: polls CMD until it succeeds, for SECONDS of wall time (each try of CMD
# may take long on a daemon that is struggling).
within() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.2
	done
}

check "the listed image becomes ready" wait_for 30 is_ready "$FIX_DOCKER"

# What a page in a browser on the node can send, and what it gets.
check_eq "text/plain POST -> 415" 415 "$(post library/page-a:1 -H 'Content-Type: text/plain')"
check_eq "... UNSUPPORTED" UNSUPPORTED "$(code_of_body)"
check_eq "form POST (curl's default) -> 415" 415 "$(post library/page-b:1)"
check_eq "foreign Origin -> 403" 403 "$(post library/page-c:1 "${json[@]}" -H 'Origin: http://evil.example')"
check_eq "... DENIED" DENIED "$(code_of_body)"
check_eq "Origin: null -> 403" 403 "$(post library/page-d:1 "${json[@]}" -H 'Origin: null')"
check_eq "Sec-Fetch-Site: cross-site -> 403" 403 "$(post library/page-e:1 "${json[@]}" -H 'Sec-Fetch-Site: cross-site')"
check_eq "Sec-Fetch-Site: same-site -> 403" 403 "$(post library/page-f:1 "${json[@]}" -H 'Sec-Fetch-Site: same-site')"
check_eq "a rebound name in Host -> 403" 403 \
	"$(post library/page-g:1 "${json[@]}" -H "Host: evil.example:$CACHE_PORT" -H "Origin: http://evil.example:$CACHE_PORT")"
check_eq "GET images with a foreign Origin -> 403" 403 \
	"$(curl -s -o /dev/null -w '%{http_code}' -H 'Origin: http://evil.example' "$CACHE_URL/_microscale/v1/images")"
check_eq "none of them is tracked" 0 "$(api images | jq '[.images[] | select(.ref | test("page-"))] | length')"
check_eq "chunked body -> 413" 413 "$(post library/page-h:1 "${json[@]}" -H 'Transfer-Encoding: chunked')"
big=$(printf '{"ref":"busybox","pad":"%05000d"}' 0)
check_eq "a 5 KB body -> 413" 413 "$(curl -s -o "$T/post" -w '%{http_code}' "${json[@]}" --data-binary "$big" "$CACHE_URL/_microscale/v1/prewarm")"

# What keeps working.
check_eq "JSON POST -> 202" 202 "$(post "$FIX_OCI" -H 'Content-Type: application/json; charset=utf-8')"
check "the POSTed image becomes ready" wait_for 30 is_ready "$FIX_OCI"
check_eq "a page of the cache's own origin -> 202" 202 \
	"$(post "$FIX_OCI" "${json[@]}" -H "Origin: http://$CACHE" -H 'Sec-Fetch-Site: same-origin')"
check_eq "the admin token with any Host -> 200" 200 \
	"$(curl -s -o /dev/null -w '%{http_code}' -H "Host: node7.example:$CACHE_PORT" -H "Authorization: Bearer $token" "$CACHE_URL/_microscale/v1/images")"

# The flood: FLOOD images that do not exist, over one keep-alive connection.
cat >"$T/flood.py" <<'EOF'
import http.client, json, sys
port, first, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
codes = {}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for i in range(first, first + n):
    body = json.dumps({"ref": f"library/nope-{i}:1"})
    c.request("POST", "/_microscale/v1/prewarm", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    codes[r.status] = codes.get(r.status, 0) + 1
print(" ".join(f"{k}={v}" for k, v in sorted(codes.items())))
EOF
upstream_sync
mark=$(upstream_mark)
rss0=$(rss_kib)
codes=$(python3 "$T/flood.py" "$CACHE_PORT" 0 "$FLOOD")
echo "# $FLOOD POSTs answered: $codes"
check_eq "the first $MAX are taken, the rest get 429" "202=$MAX 429=$((FLOOD - MAX))" "$codes"
check_eq "429 says TOOMANYREQUESTS" TOOMANYREQUESTS "$(post library/nope-x:1 "${json[@]}" >/dev/null; code_of_body)"
check_eq "tracked: $MAX requested" "$MAX" "$(tracked_requested)"
check "the ready, unpinned requested image made room" grep -q "event=prewarm_dropped image=docker.io/$FIX_OCI" "$CACHE_LOG"
check_eq "the listed image is still tracked, pinned" true "$(api images | jq --arg r "docker.io/$FIX_DOCKER" '.images[] | select(.ref == $r) | .pinned')"

check "every requested image is given up" within 90 all_given_up
ref=library/nope-1:1
check_eq "... its state is failed" failed "$(field "$ref" state)"
check_eq "... given_up" true "$(field "$ref" given_up)"
check "... last_error says so, and why" grep -q "gave up after $ATTEMPTS attempts: ." <<<"$(field "$ref" last_error)"
check "... logged once each" test "$(grep -c 'event=prewarm_gave_up' "$CACHE_LOG")" -eq "$MAX"
upstream_sync
gets=$(nope_gets "$mark")
echo "# upstream GETs for the flood's images: $gets (bound: $MAX x $ATTEMPTS)"
check "the upstream heard at most $MAX x $ATTEMPTS of them" test "$gets" -le $((MAX * ATTEMPTS))
rss1=$(rss_kib)
echo "# cache VmRSS: ${rss0} KiB before the flood, ${rss1} KiB after"
check "RSS grew by less than 16 MiB" test $((rss1 - rss0)) -lt 16384

# Given up, held: asking again starts nothing, and the daemon is quiet.
upstream_sync
after=$(upstream_mark)
codes=$(python3 "$T/flood.py" "$CACHE_PORT" 0 "$MAX")
check_eq "asking again for the given-up images: 202, nothing started" "202=$MAX" "$codes"
codes=$(python3 "$T/flood.py" "$CACHE_PORT" "$FLOOD" 1000)
check_eq "new ones while the table holds them: 429" "429=1000" "$codes"
t0=$(cpu_ticks)
sleep 3 # a window to measure, not to wait for anything
t1=$(cpu_ticks)
upstream_sync
echo "# cache CPU over 3 s after the give-up: $((t1 - t0)) ticks"
check "the daemon is quiet: under 0.15 s of CPU in 3 s" test $((t1 - t0)) -lt 15
check_eq "no upstream request since the give-up" 0 "$(nope_gets "$after")"
check "the daemon is alive" kill -0 "$CACHE_PID"
cache_stop
check_eq "cache exits 0" 0 "$?"
