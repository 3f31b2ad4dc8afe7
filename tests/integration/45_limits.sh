# Bounded resources: the connection limit (503, then service again), the idle timeout, and a slow
# client that must not make the cache's memory grow (it reads from disk while the upstream
# transfer runs at full speed for everyone else).
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"

fixtures_upstream_start || exit 1
echo '{"http": {"max_connections": 4, "idle_timeout_s": 1}}' >"$T/cache.json"
cache_start -c "$T/cache.json" --upstream "$UPSTREAM_URL" || exit 1

# hold N SECONDS: N idle connections held open for SECONDS (in the background); returns once
# they are connected. The kernel queues them ahead of any later one, and the daemon accepts in
# that order.
hold() {
	rm -f "$T/held"
	python3 - "$CACHE_PORT" "$1" "$2" "$T/held" <<'PY' &
import socket, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
open(sys.argv[4], "w").write("connected\n")
time.sleep(secs)
PY
	HOLD_PID=$!
	wait_for 10 test -s "$T/held"
}

# The idle timeout (1 s) closes a connection that sends nothing.
idle=$(python3 - "$CACHE_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
print("closed by the server" if s.recv(1) == b"" else "got data")
PY
)
check_eq "the idle timeout closes a silent connection" "closed by the server" "$idle"

hold 4 3
code=$(curl -s -o "$T/busy" -w '%{http_code}' "$CACHE_URL/v2/")
check_eq "a fifth connection gets 503" 503 "$code"
check_eq "... in OCI error JSON" TOOMANYREQUESTS "$(jq -r '.errors[0].code' "$T/busy")"
check "... and the limit is logged" grep -q 'event=http_conn_limit max_connections=4' "$CACHE_LOG"
kill "$HOLD_PID" 2>/dev/null
wait "$HOLD_PID" 2>/dev/null
check_eq "service again once they close" 200 "$(wait_for 5 curl -sf -o /dev/null -w '%{http_code}' "$CACHE_URL/v2/")"

# A slow client (1 MiB/s) on the cold big blob, and a fast one: the fast one finishes, the
# cache's resident memory stays small, then the slow one is dropped.
url="$CACHE_URL/v2/$FIX_BIG_REPO/blobs/$FIX_BIG_LAYER"
curl -s --limit-rate 1M -o /dev/null "$url" &
slow=$!
check "a fast client gets the whole blob while a slow one reads" \
	bash -c "curl -sf '$url' | cmp -s - '$(fixtures_blob_path "$FIX_BIG_LAYER")'"
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$CACHE_PID/status")
check "cache RSS stays small with a slow client ($rss KiB)" test "$rss" -lt 65536
kill "$slow" 2>/dev/null
wait "$slow" 2>/dev/null
check_eq "the cache still answers" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$CACHE_URL/v2/")"
cache_stop
check_eq "cache exits 0 on SIGTERM" 0 "$?"
