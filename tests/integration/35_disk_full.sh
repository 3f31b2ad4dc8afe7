# Disk full: the store on a small tmpfs. A blob that does not fit fails cleanly (the client is cut
# off before its last byte, nothing half-written stays, no temp file is left) and the daemon keeps
# serving what fits.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"
[ "$(id -u)" = 0 ] || { echo "# skip: mounting a tmpfs needs root"; exit 0; }

fixtures_upstream_start || exit 1
cache_start_on_tmpfs 32m --upstream "$UPSTREAM_URL" || exit 1

url="$CACHE_URL/v2/$FIX_BIG_REPO/blobs/$FIX_BIG_LAYER"
curl -s -o "$T/big" "$url"
check "big blob on a full disk: the client gets an error" test $? -ne 0
check "the client got fewer bytes than the blob" test "$(stat -c %s "$T/big")" -lt "$FIX_BIG_LAYER_SIZE"
check "nothing stored for the big blob" test ! -e "$CACHE_ROOT/blobs/sha256/$(echo "${FIX_BIG_LAYER#sha256:}" | cut -c1-2)/${FIX_BIG_LAYER#sha256:}"
check_eq "no temp file left" "" "$(ls "$CACHE_ROOT/tmp")"
check "the cache logged the write error" grep -q 'No space left on device' "$CACHE_LOG"
rm -rf "$T/out"
check "a small image still pulls through" cache_copy "$FIX_OCI" "dir:$T/out"
cache_stop
check_eq "cache exits 0 on SIGTERM" 0 "$?"
