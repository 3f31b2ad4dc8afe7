# Many clients, one fetch: 20 concurrent cold pulls of the big image through the cache. The
# upstream must serve each blob exactly once and every client must get correct bytes.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"

CLIENTS=20
fixtures_upstream_start || exit 1
cache_start --upstream "$UPSTREAM_URL" || exit 1

pids=()
for ((i = 0; i < CLIENTS; i++)); do
	cache_copy "$FIX_BIG" "dir:$T/out$i" >"$T/copy$i.log" 2>&1 &
	pids+=($!)
done
good=0
for ((i = 0; i < CLIENTS; i++)); do
	wait "${pids[$i]}" && [ "$(sha256sum <"$T/out$i/${FIX_BIG_LAYER#sha256:}" | cut -d' ' -f1)" = "${FIX_BIG_LAYER#sha256:}" ] &&
		good=$((good + 1))
	rm -rf "$T/out$i"
done
check_eq "$CLIENTS concurrent skopeo copies got the verified big layer" "$CLIENTS" "$good"
check_eq "upstream served the big layer once" 1 "$(upstream_count_gets "blobs/$FIX_BIG_LAYER")"
check_eq "upstream served the config once" 1 "$(upstream_count_gets "blobs/$FIX_BIG_CONFIG")"
check_eq "upstream served the manifest by tag once" 1 "$(upstream_count_gets "manifests/$FIX_BIG_TAG")"

# The same with plain HTTP clients that start while the transfer is under way, some with ranges.
cache_stop
rm -rf "$CACHE_ROOT"
upstream_sync
mark=$(upstream_mark)
cache_start --upstream "$UPSTREAM_URL" || exit 1
url="$CACHE_URL/v2/$FIX_BIG_REPO/blobs/$FIX_BIG_LAYER"
want=$(fixtures_blob_path "$FIX_BIG_LAYER")
pids=()
for ((i = 0; i < 8; i++)); do
	curl -sf -o "$T/c$i" "$url" &
	pids+=($!)
done
curl -sf -o "$T/range" -H 'Range: bytes=1000-1999' "$url" &
pids+=($!)
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
check_eq "8 curl clients and a ranged one all succeeded" 0 "$fails"
same=0
for ((i = 0; i < 8; i++)); do cmp -s "$T/c$i" "$want" && same=$((same + 1)); rm -f "$T/c$i"; done
check_eq "every curl client got identical bytes" 8 "$same"
check "the ranged client got bytes 1000-1999" cmp -s "$T/range" <(tail -c +1001 "$want" | head -c 1000)
check_eq "upstream served the layer once more, for the new store" 1 \
	"$(upstream_requests_since "$mark" | grep -c "blobs/$FIX_BIG_LAYER")"
cache_stop
check_eq "cache exits 0 on SIGTERM" 0 "$?"
