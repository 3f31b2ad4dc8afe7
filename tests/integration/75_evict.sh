# The disk budget: past store.max_bytes the least recently used blobs go first; blobs of pinned
# (listed) images stay; a blob bigger than the whole budget is served, then dropped.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"

fixtures_upstream_start || exit 1
stored() { test -e "$CACHE_ROOT/blobs/sha256/${1:7:2}/${1#sha256:}"; }
ready() { curl -s "$CACHE_URL/_microscale/v1/ready?ref=$1" | jq -r .ready; }
is_ready() { [ "$(ready "$1")" = true ]; }
# wait_ready REF: polls the readiness API (never the store) until it says ready.
wait_ready() { wait_for 30 is_ready "$1"; }
oci_big=${FIX_OCI_LAYERS#* }       # the 256 KiB layer of each small image
docker_big=${FIX_DOCKER_LAYERS#* }

# 600 000 bytes: the pinned image and one more small image fit (each ~283 KB as the budget counts
# it: its blobs, manifest and tag, in whole 4 KiB blocks), a third does not.
echo '{"store": {"max_bytes": 600000}}' >"$T/cache.json"
echo "$FIX_OCI" >"$T/list"
cache_start -c "$T/cache.json" --upstream "$UPSTREAM_URL" --prewarm "$T/list" || exit 1
check "pinned image prewarmed" wait_ready "$FIX_OCI"
check "docker-small pulls" cache_copy "$FIX_DOCKER" "dir:$T/d1"
check "docker-small's layer stored" stored "$docker_big"
check "shared-a pulls (over budget now)" cache_copy "$FIX_SHARED_A" "dir:$T/d2"
check "least recently used (docker-small's layer) evicted" bash -c "! test -e '$CACHE_ROOT/blobs/sha256/${docker_big:7:2}/${docker_big#sha256:}'"
check "the most recent image kept" stored "${FIX_SHARED_A_LAYERS#* }"
check "the pinned image's layer kept" stored "$oci_big"
check_eq "the pinned image is still ready" true "$(ready "$FIX_OCI")"
check "eviction was logged" grep -q "event=evicted digest=$docker_big" "$CACHE_LOG"

# Bigger than the whole budget and not pinned: the client gets it, the store does not keep it.
rm -rf "$T/out"
check "big image pulls through a small budget" cache_copy "$FIX_BIG" "dir:$T/out"
check_eq "its layer arrived whole" "${FIX_BIG_LAYER#sha256:}" "$(sha256sum <"$T/out/${FIX_BIG_LAYER#sha256:}" | cut -d' ' -f1)"
check "its layer was not kept" bash -c "! test -e '$CACHE_ROOT/blobs/sha256/${FIX_BIG_LAYER:7:2}/${FIX_BIG_LAYER#sha256:}'"
check "dropping it was logged" grep -q "event=blob_over_budget digest=$FIX_BIG_LAYER" "$CACHE_LOG"
check_eq "the pinned image is still ready" true "$(ready "$FIX_OCI")"

# An evicted image pulls again (from the upstream).
rm -rf "$T/d1"
check "evicted image pulls again" cache_copy "$FIX_DOCKER" "dir:$T/d1"
cache_stop
check_eq "cache exits 0 on SIGTERM" 0 "$?"

# Pinned content alone over the budget: kept, and said loudly.
echo '{"store": {"max_bytes": 100000}}' >"$T/tiny.json"
cache_start -c "$T/tiny.json" --upstream "$UPSTREAM_URL" --prewarm "$T/list" || exit 1
rm -rf "$T/d3"
check "another pull with pinned content over budget" cache_copy "$FIX_SHARED_B" "dir:$T/d3"
check "pinned content over budget is logged as an error" grep -q 'level=error.*event=store_over_budget' "$CACHE_LOG"
check "the pinned image's layer is kept anyway" stored "$oci_big"
cache_stop
