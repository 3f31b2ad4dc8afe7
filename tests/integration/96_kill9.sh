# kill -9 at random moments during 10 concurrent cold pulls of the big blob, several rounds, on
# one store: after each restart `verify` finds nothing wrong, start-up left no temp file, and the
# pulls then succeed with the right bytes.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"

ROUNDS=4
fixtures_upstream_start || exit 1
want=$(fixtures_blob_path "$FIX_BIG_LAYER")
stored=$T/cache/blobs/sha256/${FIX_BIG_LAYER:7:2}/${FIX_BIG_LAYER#sha256:}

# pull_all: 10 concurrent GETs of the big blob; prints how many got it whole and right.
pull_all() {
	local i pids=() good=0
	for ((i = 0; i < 10; i++)); do
		curl -s -o "$T/pull$i" "$CACHE_URL/v2/$FIX_BIG_REPO/blobs/$FIX_BIG_LAYER" &
		pids+=($!)
	done
	for ((i = 0; i < 10; i++)); do
		wait "${pids[$i]}" && cmp -s "$T/pull$i" "$want" && good=$((good + 1))
		rm -f "$T/pull$i"
	done
	echo "$good"
}

for ((round = 1; round <= ROUNDS; round++)); do
	rm -f "$stored" # cold again
	cache_start --upstream "$UPSTREAM_URL" || exit 1
	clients=()
	for ((i = 0; i < 10; i++)); do
		curl -s -o /dev/null "$CACHE_URL/v2/$FIX_BIG_REPO/blobs/$FIX_BIG_LAYER" &
		clients+=($!)
	done
	# The fault: a random moment within the first ~0.6 s of the transfer.
	sleep "0.$((RANDOM % 6))$((RANDOM % 10))"
	kill -KILL "$CACHE_PID"
	wait "$CACHE_PID" 2>/dev/null
	wait "${clients[@]}" # cut off
	cache_start --upstream "$UPSTREAM_URL" || exit 1
	check_eq "round $round: no temp file after start-up" "" "$(ls "$CACHE_ROOT/tmp")"
	check "round $round: verify finds nothing wrong" "$MS_BUILD/microscale-registry" verify --root "$CACHE_ROOT"
	check_eq "round $round: 10 pulls then succeed" 10 "$(pull_all)"
	cache_stop
done
check "verify after all rounds" "$MS_BUILD/microscale-registry" verify --root "$CACHE_ROOT"
check_eq "nothing was quarantined" "" "$(ls "$CACHE_ROOT/quarantine" 2>/dev/null)"

# verify itself: a corrupted blob is found, moved aside, and reported with exit 1.
printf 'x' | dd of="$stored" bs=1 seek=1000 conv=notrunc status=none
"$MS_BUILD/microscale-registry" verify --root "$CACHE_ROOT" >"$T/verify.out" 2>&1
check_eq "verify exits 1 on a corrupted blob" 1 "$?"
check "... moves it aside" test ! -e "$stored"
check "... into quarantine" test -n "$(ls "$CACHE_ROOT/quarantine")"
check "... and says so" grep -q '1 bad' "$T/verify.out"
