#!/bin/bash
# The dashboard in a real browser: Debian's chromium, headless, driven over the DevTools protocol
# (tests/lib/cdp.py), against a scaler on the shared cluster (3 agents). Scenario, with two
# images no cache has seen:
#   /c67/web (priority 1, demand from a file: 0, later 3), /c67/batch (priority 2, demand 2).
#   - the page loads from the scaler alone, goes live, and shows every app on the chart (points
#     for each), the gate as a cell for every app and agent, and each agent's cache as read from
#     its /metrics;
#   - /c67/web's demand jumps to 3 with its image in no cache: the page shows the hold (a gated
#     decision, a shaded band on the chart), then the scale-up (an "up" decision, the cells of
#     /c67/web ready on the 3 agents, 3 running);
#   - screenshots, laptop and phone size, into $MS_BUILD/dashboard/ (kept; *.png is ignored);
#   - the scaler stopped: the page says "disconnected"; started again: it is live again, and
#     its chart is drawn from the new scaler's snapshot;
#   - the stream only reads: POST /events is 405, and it takes nothing from the client.
# The cluster is left as it was found: the apps are deleted.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/lib/scaler.sh"
. "$MS_ROOT/tests/lib/cluster.sh"

command -v chromium >/dev/null || { not_ok "chromium is installed (make deps)"; exit 1; }
SHOTS=$MS_BUILD/dashboard
mkdir -p "$SHOTS" || exit 1
cluster_up 3 || exit 1
read -r a1 a2 a3 _ <<<"$CLUSTER_AGENTS"
cache() { cluster_agent_var "$1" CACHE; }
web=$(cluster_new_image "c67-web-$$" 16000000) && batch=$(cluster_new_image "c67-batch-$$") || exit 1
cluster_marathon_app /c67/web "$web" || exit 1
cluster_marathon_app /c67/batch "$batch" || exit 1
restore() {
	curl -s -o /dev/null -X DELETE "$MARATHON_URL/v2/apps/c67/web?force=true"
	curl -s -o /dev/null -X DELETE "$MARATHON_URL/v2/apps/c67/batch?force=true"
}
trap 'restore; cluster_down; ms_cleanup' EXIT

demand_start || exit 1
demand_set web 0
scaler_port
cluster_scaler_conf "$T/scaler.json" "$SCALER_PORT" "
	.capacity = 8 | .apps = [
	{id: \"/c67/web\", priority: 1, demand: {type: \"http\", url: \"$DEMAND_URL/web\"}},
	{id: \"/c67/batch\", priority: 2, demand: {type: \"static\", instances: 2}}]"
scaler_start "$T/scaler.json" || exit 1
DASH=http://127.0.0.1:$SCALER_PORT/

# --- the browser ---------------------------------------------------------------------------------
CDP_PORT=$(free_port)
spawn "$T/chromium.log" chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync --no-proxy-server \
	--user-data-dir="$T/chromium" --remote-debugging-port="$CDP_PORT" about:blank
CHROMIUM_PID=$SPAWNED
cdp() { python3 "$MS_ROOT/tests/lib/cdp.py" "$CDP_PORT" "$@"; }
devtools() { kill -0 "$CHROMIUM_PID" 2>/dev/null && curl -fs -o /dev/null "http://127.0.0.1:$CDP_PORT/json/version"; }
check "chromium starts with its DevTools port" wait_for 30 devtools || { tail -5 "$T/chromium.log"; exit 1; }
tab=$(cdp new "$DASH") || exit 1
js() { cdp eval "$tab" "$1"; }
# page_wait NAME SECONDS EXPR: ok when EXPR becomes truthy in the page within SECONDS.
page_wait() {
	if out=$(cdp wait "$tab" "$3" "$2"); then ok "$1"; else not_ok "$1 (last: $out)"; fi
}

page_wait "the page goes live from the scaler's stream" 20 'document.body.dataset.conn === "live"'
check_eq "the page came from the scaler alone: one origin, no other request" '[]' \
	"$(js "JSON.stringify(performance.getEntriesByType('resource').map(e => e.name).filter(u => !u.startsWith('$DASH')))" | jq -r .)"
check_eq "the legend names both apps, by priority" '"P1/c67/web P2/c67/batch"' \
	"$(js '[...document.querySelectorAll("#legend [data-app]")].map(e => e.textContent).join(" ")')"
points() { # the apps whose running line has at least $1 points
	echo "[...document.querySelectorAll('#chart path[data-series=running]')].filter(p => +p.dataset.n >= $1).map(p => p.dataset.app).sort().join(' ') === '/c67/batch /c67/web'"
}
page_wait "the chart has points for every app" 20 "$(points 3)"
page_wait "the chart draws the capacity" 5 'document.querySelector("#chart path[data-series=capacity]").getAttribute("d").length > 10'
cells='document.querySelectorAll("#gate td.cell").length'
page_wait "the gate matrix has a cell for every app and agent (2 x 3)" 20 "$cells === 6"
for i in $a1 $a2 $a3; do
	page_wait "... agent $i's column for both apps" 5 \
		"document.querySelectorAll('#gate td.cell[data-agent=\"$(cache "$i")\"]').length === 2"
done
page_wait "every agent's cache shows its hit ratio from its /metrics" 20 \
	'[...document.querySelectorAll("#caches tr[data-agent]")].filter(r => /%|no requests/.test(r.textContent)).length === 3'
page_wait "/c67/batch rises to 2 (real tasks) and the table says so" 90 \
	'document.querySelector("#apps tr[data-app=\"/c67/batch\"] td[data-k=running]").textContent.startsWith("2")'

page_wait "/c67/web never wanted to rise: no cache has been asked about its image (?)" 5 \
	'[...document.querySelectorAll("#gate td.cell[data-app=\"/c67/web\"]")].every(c => c.dataset.state === "unknown")'

# --- a scale-up the gate holds ---------------------------------------------------------------------
demand_set web 3
page_wait "/c67/web's demand of 3 shows" 10 \
	'document.querySelector("#apps tr[data-app=\"/c67/web\"] td[data-k=demand]").textContent === "3"'
page_wait "the gate's hold shows: a gated hold of /c67/web in the decisions" 20 \
	'!!document.querySelector("#decisions li[data-app=\"/c67/web\"][data-action=hold][data-gated=yes]")'
page_wait "... and a shaded band on the chart" 10 '!!document.querySelector("#chart rect.held[data-app=\"/c67/web\"]")'
page_wait "then the scale-up: an up decision for /c67/web" 90 \
	'!!document.querySelector("#decisions li[data-app=\"/c67/web\"][data-action=up]")'
page_wait "... its cells ready on the 3 agents" 10 \
	'document.querySelectorAll("#gate td.cell[data-app=\"/c67/web\"][data-state=ready]").length === 3'
page_wait "... and 3 running" 90 \
	'document.querySelector("#apps tr[data-app=\"/c67/web\"] td[data-k=running]").textContent.startsWith("3")'
page_wait "... and on the chart: /c67/web's target and running lines at 3" 10 \
	'["target", "running"].every(k => document.querySelector(`#chart path[data-app="/c67/web"][data-series=${k}]`).dataset.last === "3")'
check "the same hold and scale-up in the scaler's log" sh -c \
	"grep -q 'event=decision app=/c67/web .*action=hold gated=yes' '$SCALER_LOG' && grep -q 'event=decision app=/c67/web .*action=up' '$SCALER_LOG'"
check "a laptop-size screenshot: $SHOTS/67_dashboard.png" cdp shot "$tab" "$SHOTS/67_dashboard.png" 1280 900
check "a phone-size screenshot: $SHOTS/67_dashboard-phone.png" cdp shot "$tab" "$SHOTS/67_dashboard-phone.png" 390 844 mobile
check_eq "on a phone the page needs no sideways scrolling" true \
	"$(js 'document.documentElement.scrollWidth <= window.innerWidth')"
cdp shot "$tab" /dev/null 1280 900 >/dev/null # back to laptop size

# --- read only ---------------------------------------------------------------------------------------
check_eq "POST /events is refused (405): the stream only reads" 405 \
	"$(curl -s -o /dev/null -w '%{http_code}' -X POST --data x "$DASH"events)"
check_eq "POST / too" 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST --data x "$DASH")"
check_eq "/status counts the page's stream" 1 "$(scaler_get /status | jq .dashboard.streams)"

# --- many dashboards: bounded, and capped ----------------------------------------------------------
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$SCALER_PID/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SCALER_PID/stat"; }
streams() { [ "$(scaler_get /status | jq .dashboard.streams)" = "$1" ]; }
clients=()
rss0=$(rss_kb) cpu0=$(cpu_ticks) t0=$(date +%s.%N)
for ((i = 0; i < 127; i++)); do
	curl -sN -o /dev/null "${DASH}events" &
	clients+=($!)
done
check "127 more streams open: 128, the most there may be" wait_for 30 streams 128
check_eq "the 129th is refused with 503" 503 \
	"$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${DASH}events")"
sleep 10 # a measurement window, not a synchronisation
rss1=$(rss_kb) cpu1=$(cpu_ticks) t1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
echo "# 128 streams (ASan build): RSS $((rss0 / 1024)) -> $((rss1 / 1024)) MB," \
	"CPU $(jq -n "($cpu1 - $cpu0) / $hz / ($t1 - $t0) * 100 | floor")% of a core over $(jq -n "$t1 - $t0 | floor") s"
check "... the scaler's memory grew by less than 64 MB" test $((rss1 - rss0)) -lt 65536
check_eq "... and nothing waits in their queues for long" true \
	"$(scaler_get /status | jq '.dashboard.queued_bytes < 128 * 65536')"
kill "${clients[@]}" 2>/dev/null
wait "${clients[@]}" 2>/dev/null
check "they close: each stream is released, the page's is left" wait_for 10 streams 1

# --- the stream drops, and comes back --------------------------------------------------------------
scaler_stop
page_wait "the scaler stopped: the page says disconnected" 15 \
	'document.body.dataset.conn === "down" && /disconnected/.test(document.getElementById("conn").textContent) && !document.getElementById("banner").hidden'
check "disconnected screenshot" cdp shot "$tab" "$SHOTS/67_dashboard-disconnected.png" 1280 900
scaler_start "$T/scaler.json" || exit 1
page_wait "the scaler back: the page reconnects by itself and is live" 20 'document.body.dataset.conn === "live"'
page_wait "... drawn from the new scaler's snapshot: points for every app again" 20 "$(points 2)"
check_eq "... the banner is gone" true "$(js 'document.getElementById("banner").hidden')"

cdp close "$tab"
stop_pid "$CHROMIUM_PID"
scaler_stop
check_eq "SIGTERM exits 0" 0 "$?"
check "no error in the scaler's log" sh -c "! grep -q 'level=error' '$SCALER_LOG'"
