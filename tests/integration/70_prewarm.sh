# Prewarm: listed images are on disk before anyone asks; the readiness API says so from disk;
# POST prewarm warms an unlisted image; a multi-arch entry fetches only its platform; a client
# pulling during prewarm shares the transfers; --prewarm-once; the control API's peer check.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"

fixtures_upstream_start || exit 1
api() { curl -s "$CACHE_URL/_microscale/v1/$1"; }
ready() { api "ready?ref=$1" | jq -r .ready; }
is_ready() { [ "$(ready "$1")" = true ]; }
# wait_ready REF: polls the readiness API (never the store) until it says ready.
wait_ready() { wait_for 30 is_ready "$1"; }
blob_stored() { test -e "$CACHE_ROOT/blobs/sha256/${1:7:2}/${1#sha256:}"; }

cat >"$T/priority.list" <<EOF
# priority images
$FIX_OCI
library/docker-small:1   # a comment after the reference
$FIX_INDEX platform=linux/arm64
EOF
cat >"$T/bad.list" <<EOF
busybox
Not/A/Valid:Ref
EOF
msg=$("$MS_BUILD/microscale-registry" -n --prewarm "$T/bad.list" 2>&1)
check_eq "-n with a bad list exits 1" 1 "$?"
check "-n names the file and line" grep -q "bad.list:2: invalid repository name" <<<"$msg"

# Readiness before: nothing on disk, and asking does not fetch.
cache_start --upstream "$UPSTREAM_URL" || exit 1
check_eq "ready is false before" false "$(ready "$FIX_OCI")"
check_eq "ready never contacted the upstream" 0 "$(upstream_count_gets manifests)"
check_eq "malformed ref -> 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' "$CACHE_URL/_microscale/v1/ready?ref=Bad:Ref:x")"
check_eq "missing ref -> 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' "$CACHE_URL/_microscale/v1/ready")"

# POST prewarm warms an unlisted image (202, idempotent).
code=$(curl -s -o "$T/post" -w '%{http_code}' -H 'Content-Type: application/json' -d "{\"ref\":\"$FIX_SHARED_A\",\"pin\":false}" "$CACHE_URL/_microscale/v1/prewarm")
check_eq "POST prewarm -> 202" 202 "$code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "{\"ref\":\"$FIX_SHARED_A\"}" "$CACHE_URL/_microscale/v1/prewarm")
check_eq "POST prewarm again -> 202" 202 "$code"
check "POSTed image becomes ready" wait_ready "$FIX_SHARED_A"
check_eq "its manifest was fetched once" 1 "$(upstream_count_gets "$FIX_SHARED_A_REPO/manifests/")"
check_eq "bad POST body -> 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d '{"ref":5}' "$CACHE_URL/_microscale/v1/prewarm")"
check_eq "unknown registry -> 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d '{"ref":"ghcr.io/x/y:1"}' "$CACHE_URL/_microscale/v1/prewarm")"
check_eq "GET on prewarm -> 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' "$CACHE_URL/_microscale/v1/prewarm")"
cache_stop

# A client pulling the big image while it is being prewarmed joins the running transfers.
rm -rf "$CACHE_ROOT"
upstream_sync
mark=$(upstream_mark)
echo "$FIX_BIG" >"$T/big.list"
cache_start --upstream "$UPSTREAM_URL" --prewarm "$T/big.list" || exit 1
check "client pull during prewarm" cache_copy "$FIX_BIG" "dir:$T/out"
check "big image ready" wait_ready "$FIX_BIG"
check_eq "the big layer was fetched once" 1 "$(upstream_requests_since "$mark" | grep -c "GET .*blobs/$FIX_BIG_LAYER")"
cache_stop

# The list at start-up: every image on disk, then the upstream goes away and they still pull.
rm -rf "$CACHE_ROOT" "$T/out"
upstream_sync
mark=$(upstream_mark)
cache_start --upstream "$UPSTREAM_URL" --prewarm "$T/priority.list" || exit 1
for ref in "$FIX_OCI" "$FIX_DOCKER" "$FIX_INDEX"; do
	check "listed $ref becomes ready" wait_ready "$ref"
done
images=$(api images)
check_eq "images lists the three, pinned" "true true true" "$(jq -r '[.images[].pinned] | map(tostring) | join(" ")' <<<"$images")"
check_eq "multi-arch entry keeps its platform" '["linux/arm64"]' "$(jq -c ".images[] | select(.ref == \"docker.io/$FIX_INDEX\") | .platforms" <<<"$images")"
for l in $FIX_INDEX_ARM64_LAYERS; do check "arm64 layer stored" blob_stored "$l"; done
for l in $FIX_INDEX_AMD64_LAYERS; do check "amd64 layer not stored" bash -c "! test -e '$CACHE_ROOT/blobs/sha256/${l:7:2}/${l#sha256:}'"; done
check_eq "upstream never served an amd64 layer" 0 "$(upstream_requests_since "$mark" | grep -cE "blobs/(${FIX_INDEX_AMD64_LAYERS// /|})")"
upstream_sync
after=$(upstream_mark)
upstream_stop
for ref in "$FIX_OCI" "$FIX_DOCKER"; do
	rm -rf "$T/out"
	check "upstream down: prewarmed $ref pulls" cache_copy "$ref" "dir:$T/out"
done
rm -rf "$T/out"
check "upstream down: prewarmed arm64 image pulls" cache_copy "$FIX_INDEX" "dir:$T/out" --override-arch arm64
check_eq "the upstream saw no request after the prewarm" "" "$(upstream_requests_since "$after")"

# SIGHUP re-reads the list; a list that went bad is refused and the old one kept.
cp "$T/bad.list" "$T/priority.list"
kill -HUP "$CACHE_PID"
check "a bad list on SIGHUP is logged and the old one kept" wait_for 5 grep -q 'kept=previous' "$CACHE_LOG"
check_eq "images still pinned after the bad reload" 3 "$(api images | jq '[.images[] | select(.pinned)] | length')"
cache_stop
check_eq "cache exits 0 on SIGTERM" 0 "$?"

# --prewarm-once: exit 0 when everything is complete, non-zero when an image cannot be had.
fixtures_upstream_start "$T/up2" >/dev/null || exit 1
rm -rf "$CACHE_ROOT"
printf '%s\n' "$FIX_OCI" "$FIX_SHARED_B" >"$T/once.list"
"$MS_BUILD/microscale-registry" --root "$CACHE_ROOT" --upstream "$UPSTREAM_URL" --prewarm "$T/once.list" --prewarm-once 2>"$T/once.log"
check_eq "--prewarm-once exits 0 when complete" 0 "$?"
check "--prewarm-once printed progress" grep -q 'event=prewarm_progress image=docker.io/library/' "$T/once.log"
printf '%s\n' "$FIX_OCI" "library/does-not-exist:1" >"$T/once.list"
echo '{"fetch": {"retries": 0}}' >"$T/once.json"
timeout 120 "$MS_BUILD/microscale-registry" -c "$T/once.json" --root "$CACHE_ROOT" --upstream "$UPSTREAM_URL" --prewarm "$T/once.list" --prewarm-once 2>"$T/once2.log"
rc=$?
check "--prewarm-once exits non-zero when an image is missing" test "$rc" -ne 0 -a "$rc" -ne 124
