# Upstream flapping. Scenario, as data:
#   upstream: Debian's docker-registry holding the fixtures; killed in the middle of a cold
#     transfer of the 100 MiB layer and left down for 3 s; then stopped and started again every
#     second (same port, same config) for FLAPS cycles, then up for good.
#   clients: while it is down, one client asks every 0.3 s for a manifest the cache does not have;
#     while it flaps, 5 clients pull through the cache in a loop, each pull retried until it
#     succeeds: 3 skopeo copies of small fixture images (tag_ttl_s is 1 s, so cached tags are
#     checked against the flapping upstream again and again) and 2 curls of the big layer, which
#     is larger than the cache's disk budget (store.max_bytes 50 MB) and so is fetched cold from
#     the upstream every time.
#   the cache must: stay idle while the upstream is down (no busy loop: < 0.5 s of CPU over
#     3 s), never store a corrupt blob (`verify` exits 0, nothing quarantined), never hand out
#     wrong bytes (skopeo checks every digest; the big layer is compared), never fail a pull of
#     an image it already stored (stale-if-error), serve every pull in the end, and exit 0 on
#     SIGTERM.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"
. "$MS_ROOT/tests/lib/faults.sh"

FLAPS=5            # stop/start cycles, 1 s down and 1 s up each
PULL_DEADLINE=30   # seconds a client may take to get one image, retries included

fixtures_upstream_start || exit 1
echo "library/multi-docker:1" >"$T/prewarm.list"
cat >"$T/cache.json" <<EOF
{"tag_ttl_s": 1,
 "fetch": {"connect_timeout_ms": 1000, "low_speed_time_s": 2, "retries": 1},
 "prewarm": {"list": "$T/prewarm.list", "interval_s": 300},
 "store": {"max_bytes": 50000000}}
EOF

# upstream_down / upstream_up: the same registry, same config and port, stopped or started.
upstream_down() {
	upstream_stop
}
upstream_up() {
	docker-registry serve "$T/upstream/config.yml" >>"$UPSTREAM_LOG" 2>&1 &
	UPSTREAM_PID=$!
	MS_PIDS+=("$UPSTREAM_PID")
	_upstream_wait_ready
}

# --- down for 3 s, after cutting a cold transfer -----------------------------------------------
# The prewarm job starts with the cache; it is cut off too and must back off, not spin.
upstream_down
cache_start -c "$T/cache.json" --upstream "$UPSTREAM_URL" || exit 1
upstream_up || exit 1
big_url="$CACHE_URL/v2/$FIX_BIG_REPO/blobs/$FIX_BIG_LAYER"
curl -s -o "$T/big.cut" "$big_url" &
cut_pid=$!
wait_for 10 test -s "$T/big.cut"
upstream_down
wait "$cut_pid"
check "a transfer cut by the upstream's death fails for its client" test "$(stat -c %s "$T/big.cut")" -lt "$FIX_BIG_LAYER_SIZE"
# One client keeps asking for something uncached meanwhile (each answer a quick error).
(
	end=$((SECONDS + 4))
	while [ $SECONDS -lt $end ]; do
		curl -s -o /dev/null --max-time 2 -H "Accept: $FIX_ACCEPT" \
			"$CACHE_URL/v2/$FIX_SHARED_B_REPO/manifests/$FIX_SHARED_B_TAG"
		sleep 0.3
	done
) &
asker=$!
sleep 0.5 # let the cut transfer's retries and the prewarm's first failures pass
cpu=$(cpu_seconds_over "$CACHE_PID" 3)
echo "# cache CPU while the upstream is down: ${cpu}s over 3 s"
check "no busy loop while the upstream is down (${cpu}s of CPU over 3 s < 0.5)" fewer "$cpu" 0.5
wait "$asker"
code=$(cache_curl "/v2/$FIX_SHARED_B_REPO/manifests/$FIX_SHARED_B_TAG" -H "Accept: $FIX_ACCEPT")
check_eq "an uncached manifest while the upstream is down: 503" 503 "$code"
check "... saying why" grep -q 'upstream unreachable' "$T/body"

# --- flapping ---------------------------------------------------------------------------------
# client NAME CMD…: until $T/stop exists, pulls with CMD again and again, each pull retried
# until it succeeds; then one last pull, retried for at most PULL_DEADLINE s once the upstream
# is back for good. Writes "NAME pulls=N tries=N late_failures=N last=ok|failed" to
# $T/client.NAME (late failures: failed tries after the first pull that succeeded).
client() {
	local name=$1 pulls=0 tries=0 late=0 last=failed end
	shift
	while [ ! -e "$T/stop" ]; do
		tries=$((tries + 1))
		if "$@" >>"$T/client.$name.err" 2>&1; then
			pulls=$((pulls + 1))
		else
			[ "$pulls" -gt 0 ] && late=$((late + 1))
			sleep 0.2
		fi
	done
	end=$((SECONDS + PULL_DEADLINE))
	while [ $SECONDS -lt $end ]; do
		tries=$((tries + 1))
		if "$@" >>"$T/client.$name.err" 2>&1; then
			pulls=$((pulls + 1)) last=ok
			break
		fi
		[ "$pulls" -gt 0 ] && late=$((late + 1))
		sleep 0.2
	done
	echo "$name pulls=$pulls tries=$tries late_failures=$late last=$last" >"$T/client.$name"
}
# pull IMAGE: one skopeo copy through the cache into a fresh directory (skopeo checks digests).
pull() {
	local d=$T/out.${1//[\/:]/_}
	rm -rf "$d" && cache_copy "$1" "dir:$d"
}
# pull_big N: the big layer with curl, compared with the upstream's bytes. It is larger than the
# cache's disk budget, so the cache streams it and drops it: every pull is a cold fetch.
pull_big() {
	curl -sf -o "$T/big.$1" "$big_url" && cmp -s "$T/big.$1" "$(fixtures_blob_path "$FIX_BIG_LAYER")"
}

before_big=$(upstream_count_gets "$FIX_BIG_LAYER")
pids=()
client oci pull "$FIX_OCI" &
pids+=($!)
client docker pull "$FIX_DOCKER" &
pids+=($!)
client index pull "$FIX_INDEX" &
pids+=($!)
client big1 pull_big 1 &
pids+=($!)
client big2 pull_big 2 &
pids+=($!)
flap_start=$SECONDS
for ((i = 0; i < FLAPS; i++)); do
	upstream_up || { echo "# the upstream did not come back" >&2; break; }
	sleep 1
	upstream_down
	sleep 1
done
touch "$T/stop"
upstream_up || exit 1
echo "# flapped $FLAPS times in $((SECONDS - flap_start)) s"
wait "${pids[@]}"
echo "# clients done $((SECONDS - flap_start)) s after the flapping began"
results=$(cat "$T"/client.* 2>/dev/null | grep ' pulls=')
echo "$results" | sed 's/^/# /'
check_eq "every client's last pull succeeds once the upstream is back" 5 "$(grep -c ' last=ok$' <<<"$results")"
check "every client got at least 2 pulls through" awk '{ sub("pulls=", "", $2); if ($2 + 0 < 2) exit 1 }' <<<"$results"
check "some pulls needed retries (the flapping reached the clients)" \
	awk '{ sub("pulls=", "", $2); sub("tries=", "", $3); if ($3 + 0 > $2 + 0) found = 1 } END { exit !found }' <<<"$results"
# Once an image is in the store, the flapping upstream must not fail its pulls: digests never
# ask the upstream, and a tag it cannot confirm is served from the store (stale-if-error).
check_eq "skopeo pulls of a stored image never fail while the upstream flaps" \
	"docker late_failures=0 index late_failures=0 oci late_failures=0" \
	"$(grep -E '^(docker|index|oci) ' <<<"$results" | awk '{ print $1, $4 }' | paste -sd ' ')"
big_fetches=$(($(upstream_count_gets "$FIX_BIG_LAYER" '.') - before_big))
echo "# upstream GETs of the big layer during the flapping: $big_fetches"
check "the big layer was fetched cold again and again ($big_fetches GETs)" test "$big_fetches" -ge 4
check "the big layer arrives whole and right" pull_big final
check "the cache is still alive" kill -0 "$CACHE_PID"
check "verify while it runs: nothing wrong" "$MS_BUILD/microscale-registry" verify --root "$CACHE_ROOT"
cache_stop
check_eq "cache exits 0 on SIGTERM" 0 "$?"
"$MS_BUILD/microscale-registry" verify --root "$CACHE_ROOT" >"$T/verify.out" 2>&1
check_eq "verify after the run: exit 0" 0 "$?"
sed 's/^/# /' "$T/verify.out"
check_eq "nothing quarantined" "" "$(ls "$CACHE_ROOT/quarantine" 2>/dev/null)"
check_eq "no temp file left" "" "$(ls "$CACHE_ROOT/tmp" 2>/dev/null)"
echo "# upstream failures seen by the cache: $(grep -c 'level=\(warn\|error\)' "$CACHE_LOG") warn/error lines"
