# /metrics in the Prometheus text format (checked by promtool), counting what happened; and
# chaining: two node caches behind one tier cache behind the upstream -- the tier fetches each
# blob once, however many nodes pull.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"

fixtures_upstream_start || exit 1

# The tier: a cache in front of the upstream.
CACHE_ROOT=$T/tier
cache_start --upstream "$UPSTREAM_URL" || exit 1
TIER_URL=$CACHE_URL TIER_PID=$CACHE_PID TIER_LOG=$CACHE_LOG
# Two nodes: caches whose upstream is the tier.
CACHE_ROOT=$T/node1
cache_start --upstream "$TIER_URL" || exit 1
NODE1=$CACHE NODE1_PID=$CACHE_PID NODE1_URL=$CACHE_URL
CACHE_ROOT=$T/node2
cache_start --upstream "$TIER_URL" || exit 1
NODE2=$CACHE NODE2_PID=$CACHE_PID

pids=()
for n in "$NODE1" "$NODE2"; do
	for img in "$FIX_OCI" "$FIX_LIST" "$FIX_BIG"; do
		skopeo copy -q --all --src-tls-verify=false "docker://$n/$img" "dir:$T/out-$n-${img//[:\/]/_}" &
		pids+=($!)
	done
done
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
check_eq "both nodes pulled every image through the tier" 0 "$fails"
once=1
for blob in $FIX_OCI_LAYERS $FIX_LIST_AMD64_LAYERS $FIX_LIST_ARM64_LAYERS "$FIX_BIG_LAYER"; do
	[ "$(upstream_count_gets "blobs/$blob")" = 1 ] || once=0
done
check_eq "the upstream served each blob once, to the tier" 1 "$once"
check_eq "the big layer is identical on both nodes" \
	"$(sha256sum <"$T/node1/blobs/sha256/${FIX_BIG_LAYER:7:2}/${FIX_BIG_LAYER#sha256:}" | cut -d' ' -f1)" \
	"$(sha256sum <"$T/node2/blobs/sha256/${FIX_BIG_LAYER:7:2}/${FIX_BIG_LAYER#sha256:}" | cut -d' ' -f1)"

# Metrics of node 1, after a warm pull too.
rm -rf "$T/warm"
cache_copy_node1() { skopeo copy -q --src-tls-verify=false "docker://$NODE1/$FIX_OCI" "dir:$T/warm"; }
check "a warm pull from node 1" cache_copy_node1
curl -s "$NODE1_URL/metrics" >"$T/metrics"
check "promtool accepts /metrics" promtool check metrics <"$T/metrics"
metric() { awk -v m="$1" '$1 == m { print $2 }' "$T/metrics"; }
check "blob hits counted" test "$(metric 'microscale_cache_requests_total{kind="blob",result="hit"}')" -ge 2
check "blob misses counted" test "$(metric 'microscale_cache_requests_total{kind="blob",result="miss"}')" -ge 4
check "manifest requests counted" test -n "$(metric 'microscale_cache_requests_total{kind="manifest",result="miss"}')"
check "bytes from the upstream counted" test "$(metric 'microscale_bytes_total{source="upstream"}')" -ge "$FIX_BIG_LAYER_SIZE"
check "store bytes reported" test "$(metric microscale_store_bytes)" -ge "$FIX_BIG_LAYER_SIZE"
check "requests by method and status" test "$(metric 'microscale_http_requests_total{method="GET",status="200"}')" -ge 5
check "fetch duration histogram" test "$(metric microscale_blob_fetch_duration_seconds_count)" -ge 4
check_eq "no digest mismatch" 0 "$(metric microscale_digest_mismatches_total)"

# A HEAD of a stored blob sends no body: it counts no bytes served from the store.
store_bytes() { curl -s "$NODE1_URL/metrics" | awk '$1 == "microscale_bytes_total{source=\"store\"}" { print $2 }'; }
before=$(store_bytes)
check "HEAD of the big stored layer" curl -sfI -o /dev/null "$NODE1_URL/v2/${FIX_BIG%%:*}/blobs/$FIX_BIG_LAYER"
check_eq "the HEAD counted no store bytes" "$before" "$(store_bytes)"

for p in "$NODE1_PID" "$NODE2_PID" "$TIER_PID"; do
	kill -TERM "$p"
	wait "$p"
	check_eq "cache $p exits 0 on SIGTERM" 0 "$?"
done
