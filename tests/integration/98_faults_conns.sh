# Many connections, slowloris, and no file descriptors left. Scenario, as data:
#   A. cache: http.max_connections 1100, header_timeout_s 2, idle_timeout_s 3; a manifest cached.
#      clients (one python process, tests/lib/connhold.py): 1,000 idle connections and 20
#      slowloris ones (a request head one byte a second, reconnecting when cut).
#      the cache must: answer a normal client's manifest GET in < 50 ms (median of 5), keep its
#      RSS bounded (< 64 MiB more than before the load, and <= 8 KiB per connection held), close
#      every idle connection after idle_timeout_s (3 s, give or take 1 s) and every slowloris
#      one after header_timeout_s.
#   B. cache: started under `ulimit -n 128`; clients: 200 idle connections, more than fit.
#      the cache must: log the accept error with its retry ("http_accept … retry_s=0.1"), not
#      spin (< 0.3 s of CPU over 2 s while saturated), log once per episode (not once per
#      retry), and serve again once they close.
#   C. cache: http.max_connections 1100, idle_timeout_s 60; clients: 1,000 keep-alive
#      connections that have each had one request answered (GET /v2/), then stay idle.
#      the cache must: hold each in <= 8 KiB of RSS, (VmRSS held - VmRSS before) / 1,000: an idle
#      connection keeps no request buffer.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"
. "$MS_ROOT/tests/lib/faults.sh"

IDLE=1000
SLOW=20
PER_CONN_KIB=8 # parts A and C: resident memory per idle connection, at most
FD_LIMIT=128 # part B: the cache's descriptors
OVER=200     # part B: idle connections, more than fit in FD_LIMIT
[ "$(ulimit -n)" -ge 4096 ] || ulimit -n 4096 || { echo "# skip: cannot raise ulimit -n"; exit 0; }

fixtures_upstream_start || exit 1
cat >"$T/cache.json" <<'EOF'
{"http": {"max_connections": 1100, "header_timeout_s": 2, "idle_timeout_s": 3}}
EOF
cache_start -c "$T/cache.json" --upstream "$UPSTREAM_URL" || exit 1
mf="/v2/$FIX_OCI_REPO/manifests/$FIX_OCI_DIGEST"
check_eq "the manifest is cached first" 200 "$(cache_curl "$mf" -H "Accept: $FIX_ACCEPT")"

# hold ARGS…: connhold.py in the background against the cache; returns once all are connected.
hold() {
	rm -f "$T/held" "$T/held.json"
	python3 "$MS_ROOT/tests/lib/connhold.py" --port "$CACHE_PORT" --ready "$T/held" \
		--out "$T/held.json" "$@" &
	HOLD_PID=$!
	MS_PIDS+=("$HOLD_PID")
	wait_for 30 test -s "$T/held"
}
# per_conn_kib RSS0 RSS1 N: (RSS1 - RSS0) / N, KiB to one decimal. not_more A B: A <= B.
per_conn_kib() {
	awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f\n", (b - a) / n }'
}
not_more() {
	awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'
}
# median_ms CMD…: CMD prints seconds (curl's %{time_total}); runs it 5 times, prints the median
# in milliseconds.
median_ms() {
	local i
	for ((i = 0; i < 5; i++)); do "$@"; echo; done |
		sort -g | awk '{ v[NR] = $1 } END { printf "%.1f\n", v[3] * 1000 }'
}
get_manifest_s() {
	curl -s -o /dev/null -w '%{time_total}' -H "Accept: $FIX_ACCEPT" "$CACHE_URL$mf"
}

# --- A: 1,000 idle + 20 slowloris ---------------------------------------------------------------
rss0=$(rss_kib "$CACHE_PID")
quiet_ms=$(median_ms get_manifest_s)
hold --idle "$IDLE" --slow "$SLOW" --seconds 6 || exit 1
t_held=$(date +%s.%N)
conns=$(find "/proc/$CACHE_PID/fd" -mindepth 1 2>/dev/null | wc -l)
loaded_ms=$(median_ms get_manifest_s)
t_measured=$(date +%s.%N)
rss1=$(rss_kib "$CACHE_PID")
echo "# manifest GET, median of 5: ${quiet_ms} ms quiet, ${loaded_ms} ms with $IDLE idle + $SLOW slowloris (measured $(awk -v a="$t_held" -v b="$t_measured" 'BEGIN { printf "%.2f", b - a }') s after they connected; the cache had $conns fds open)"
check "a normal client still gets the manifest in < 50 ms (median ${loaded_ms} ms)" fewer "$loaded_ms" 50
wait "$HOLD_PID"
rss2=$(rss_kib "$CACHE_PID")
hwm=$(hwm_kib "$CACHE_PID")
echo "# cache VmRSS: ${rss0} KiB before, ${rss1} KiB with the connections held, ${rss2} KiB after; VmHWM ${hwm} KiB"
check "RSS bounded under the load ($rss1 KiB, $(((rss1 - rss0) / 1024)) MiB more than before; bound 64 MiB more)" test $((rss1 - rss0)) -lt 65536
per_conn=$(per_conn_kib "$rss0" "$rss1" $((IDLE + SLOW)))
check "... and <= $PER_CONN_KIB KiB per connection held ($per_conn KiB, $((IDLE + SLOW)) held)" \
	not_more "$per_conn" "$PER_CONN_KIB"
res=$(cat "$T/held.json")
jq -c '{idle_connected, idle_closed, slow_closed, refused, data,
	idle_close_s: (.idle_close_s | sort | {min: .[0], median: .[length / 2 | floor], max: .[-1]}),
	slow_close_s: (.slow_close_s | sort | {min: .[0], max: .[-1]})}' <<<"$res" | sed 's/^/# /'
check_eq "all $IDLE idle connections were accepted" "$IDLE" "$(jq .idle_connected <<<"$res")"
check_eq "... and closed by the cache within the 6 s" "$IDLE" "$(jq .idle_closed <<<"$res")"
held() { jq -e "$1" >/dev/null <<<"$res"; }
check "... on time: after 3 s of silence, none before 2.9 s or after 4 s" \
	held '.idle_close_s | length > 0 and min >= 2.9 and max <= 4'
check "slowloris connections are cut by the head timeout (2 s from their first byte, +1 s)" \
	held '.slow_closed >= 20 and (.slow_close_s | min >= 1.9 and max <= 3)'
check "no connection refused" held '.refused == 0'
check_eq "the cache still answers" 200 "$(cache_curl /v2/)"
cache_stop
check_eq "cache exits 0 on SIGTERM" 0 "$?"

# --- B: file descriptors exhausted ---------------------------------------------------------------
CACHE_PORT=$(free_port)
CACHE=127.0.0.1:$CACHE_PORT
CACHE_URL=http://$CACHE
CACHE_LOG=$T/cache.fd.log
echo '{"http": {"idle_timeout_s": 30}}' >"$T/cache.fd.json"
spawn "$CACHE_LOG" bash -c 'ulimit -n "$0" && exec "$@"' "$FD_LIMIT" \
	"$MS_BUILD/microscale-registry" -d -c "$T/cache.fd.json" --listen "$CACHE" --root "$CACHE_ROOT" --upstream "$UPSTREAM_URL"
CACHE_PID=$SPAWNED
wait_port "$CACHE_PORT" "$CACHE_PID" || { tail -20 "$CACHE_LOG" >&2; exit 1; }
check_eq "the limit applies to the cache" "$FD_LIMIT" \
	"$(awk '/^Max open files/ { print $4 }' "/proc/$CACHE_PID/limits")"
fds0=$(find "/proc/$CACHE_PID/fd" -mindepth 1 | wc -l)
hold --idle "$OVER" --seconds 4 || exit 1
check "the accept error is logged with its retry" \
	wait_for 5 grep -q 'event=http_accept error="Too many open files" retry_s=0.1' "$CACHE_LOG"
fds1=$(find "/proc/$CACHE_PID/fd" -mindepth 1 | wc -l)
n0=$(grep -c 'event=http_accept' "$CACHE_LOG")
cpu=$(cpu_seconds_over "$CACHE_PID" 2)
n1=$(grep -c 'event=http_accept' "$CACHE_LOG")
echo "# fds: $fds0 at rest, $fds1 saturated (limit $FD_LIMIT); CPU ${cpu}s over 2 s saturated; $((n1 - n0)) http_accept lines in those 2 s"
check "no busy loop while out of descriptors (${cpu}s of CPU over 2 s < 0.3)" fewer "$cpu" 0.3
check_eq "... and no log flood: one line per episode, none while it lasts" 0 "$((n1 - n0))"
check "still alive" kill -0 "$CACHE_PID"
wait "$HOLD_PID"
serves() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$CACHE_URL/v2/")" = 200 ]; }
check "service resumes once the connections close (GET /v2/ 200)" wait_for 10 serves
check_eq "... and serves the cached manifest" 200 "$(cache_curl "$mf" -H "Accept: $FIX_ACCEPT")"
cache_stop
check_eq "cache exits 0 on SIGTERM" 0 "$?"

# --- C: 1,000 idle keep-alive connections, each after one request --------------------------------
echo '{"http": {"max_connections": 1100, "idle_timeout_s": 60}}' >"$T/cache.ka.json"
cache_start -c "$T/cache.ka.json" --upstream "$UPSTREAM_URL" || exit 1
check_eq "GET /v2/ answers" 200 "$(cache_curl /v2/)"
rss0=$(rss_kib "$CACHE_PID")
hold --idle "$IDLE" --request /v2/ --seconds 2 || exit 1
rss1=$(rss_kib "$CACHE_PID")
conns=$(find "/proc/$CACHE_PID/fd" -mindepth 1 2>/dev/null | wc -l)
wait "$HOLD_PID"
res=$(cat "$T/held.json")
per_conn=$(per_conn_kib "$rss0" "$rss1" "$IDLE")
echo "# cache VmRSS: ${rss0} KiB before, ${rss1} KiB with $IDLE keep-alive connections held after a request each ($conns fds open): $per_conn KiB per connection"
check_eq "all $IDLE connections were answered and held (held, failed)" "$IDLE 0" \
	"$(jq -r '"\(.idle_connected) \(.refused)"' <<<"$res")"
check "... and all open while measured ($conns fds)" test "$conns" -ge "$IDLE"
check "an idle keep-alive connection holds <= $PER_CONN_KIB KiB ($per_conn KiB)" \
	not_more "$per_conn" "$PER_CONN_KIB"
cache_stop
check_eq "cache exits 0 on SIGTERM" 0 "$?"
