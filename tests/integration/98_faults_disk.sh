# Disk full with several clients. Scenario, as data:
#   store: a 32 MiB tmpfs (tests run as root); upstream: the fixtures.
#   clients: ROUNDS rounds of CLIENTS concurrent GETs of the 100 MiB layer (it cannot fit).
#   the cache must: not retry a fetch that failed for want of space (at most one fetch per
#     client; clients that arrive together share one), cut every client off short of
#     the whole blob, keep no partial file and no temp file, log the cause ("No space left on
#     device") at most once per fetch it attempted (a cause, not a flood), keep serving what
#     fits, leave a store that `verify` passes, and exit 0 on SIGTERM.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"
[ "$(id -u)" = 0 ] || { echo "# skip: mounting a tmpfs needs root"; exit 0; }

ROUNDS=3
CLIENTS=5

fixtures_upstream_start || exit 1
cache_start_on_tmpfs 32m --upstream "$UPSTREAM_URL" || exit 1

url="$CACHE_URL/v2/$FIX_BIG_REPO/blobs/$FIX_BIG_LAYER"
hex=${FIX_BIG_LAYER#sha256:}
short=0
for ((round = 1; round <= ROUNDS; round++)); do
	pids=()
	for ((i = 0; i < CLIENTS; i++)); do
		curl -s --max-time 60 -o "$T/big.$i" "$url" &
		pids+=($!)
	done
	for ((i = 0; i < CLIENTS; i++)); do
		wait "${pids[$i]}"
		rc=$?
		size=$(stat -c %s "$T/big.$i" 2>/dev/null || echo 0)
		[ "$rc" -ne 0 ] && [ "$size" -lt "$FIX_BIG_LAYER_SIZE" ] && short=$((short + 1))
		rm -f "$T/big.$i"
	done
done
check_eq "every client is cut off short of the blob, with an error" $((ROUNDS * CLIENTS)) "$short"
check "nothing stored for the big blob" test ! -e "$CACHE_ROOT/blobs/sha256/${hex:0:2}/$hex"
check_eq "no temp file left" "" "$(ls "$CACHE_ROOT/tmp")"
fetches=$(upstream_count_gets "$FIX_BIG_LAYER" '.')
enospc=$(grep -c 'No space left on device' "$CACHE_LOG")
lines=$(wc -l <"$CACHE_LOG")
echo "# $((ROUNDS * CLIENTS)) clients in $ROUNDS rounds: $fetches upstream fetches, $enospc 'No space left' lines, $lines log lines in all"
grep 'No space left on device' "$CACHE_LOG" | head -5 | sed 's/^/# /'
# A client arriving after a failed fetch starts a new one, so a round may cost more than one.
check "no retry storm: at most one fetch per client ($fetches fetches)" test "$fetches" -le $((ROUNDS * CLIENTS))
check "the cause is logged ($enospc lines)" test "$enospc" -ge 1
check "... at most once per fetch attempted, not a flood ($enospc <= $fetches)" test "$enospc" -le "$fetches"
check "no flood of other lines either ($lines lines for $((ROUNDS * CLIENTS)) requests)" test "$lines" -le $((10 + ROUNDS * CLIENTS * 3))
rm -rf "$T/out"
check "a small image still pulls through" cache_copy "$FIX_OCI" "dir:$T/out"
check "verify finds nothing wrong" "$MS_BUILD/microscale-registry" verify --root "$CACHE_ROOT"
cache_stop
check_eq "cache exits 0 on SIGTERM" 0 "$?"
