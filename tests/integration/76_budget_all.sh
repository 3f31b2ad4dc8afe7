#!/bin/bash
# Everything stored counts in store.max_bytes (README "Keeping the disk in budget"): manifests,
# tags and tag lists are evicted like blobs, and tags/list keeps one answer per repository
# whatever n and last are asked.
#   1. hostile.py serves 40 distinct 256 KiB manifests (10 MiB) to a cache with a 1 MB budget:
#      what the store holds stays within the budget (counted as du counts it: allocated
#      blocks), the oldest manifests are evicted and logged, and a tag whose manifest went is
#      fetched again and answered right.
#   2. The registry upstream answers 150 distinct tags/list?n=&last= queries: one tag list file
#      is kept; with the upstream down, the whole list and a page cut from it still answer.
# shellcheck source-path=SCRIPTDIR/../lib
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/cache.sh"
. "$MS_ROOT/tests/lib/hostile.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"

BUDGET=1000000
N=40
M=$T/manifests
mkdir -p "$M/tags"

# new_manifest I: a 256 KiB OCI manifest (padded with an annotation) in $M; its hex printed.
new_manifest() {
	local h
	python3 - "$1" >"$T/new" <<'EOF' || return 1
import json, sys
pad = "x" * (256 * 1024 - 300)
print(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                             "digest": "sha256:" + "0" * 64, "size": 2},
                  "layers": [], "annotations": {"n": sys.argv[1], "pad": pad}}), end="")
EOF
	h=$(sha256sum <"$T/new" | cut -c1-64) && mv "$T/new" "$M/$h" && echo "$h"
}
# allocated DIR: the bytes the files below DIR take on disk (what du counts, directories aside).
allocated() { find "$1" -type f -printf '%b\n' | awk '{ b += $1 * 512 } END { print b + 0 }'; }
stored() { test -e "$CACHE_ROOT/manifests/sha256/${1:0:2}/$1"; }

hostile_start "$M" || exit 1
echo "{\"store\": {\"max_bytes\": $BUDGET}}" >"$T/cache.json"
cache_start -c "$T/cache.json" --upstream "$HOSTILE_URL" || exit 1

for ((i = 0; i < N; i++)); do
	H[i]=$(new_manifest "$i") || exit 1
done
echo "sha256:${H[0]}" >"$M/tags/first"
check_eq "a tag of the first manifest" 200 "$(cache_curl /v2/ok/x/manifests/first)"
fails=0
for ((i = 1; i < N; i++)); do
	[ "$(cache_curl "/v2/ok/x/manifests/sha256:${H[i]}")" = 200 ] || fails=$((fails + 1))
done
check_eq "$((N - 1)) more manifests answered" 0 "$fails"
used=$(allocated "$CACHE_ROOT")
check "the store holds $used bytes, within the budget of $BUDGET" test "$used" -le "$BUDGET"
check "the first manifest was evicted" bash -c "! test -e '$CACHE_ROOT/manifests/sha256/${H[0]:0:2}/${H[0]}'"
check "the newest manifest is kept" stored "${H[N - 1]}"
check "the eviction was logged" grep -q "event=evicted digest=sha256:${H[0]} kind=manifest" "$CACHE_LOG"
check_eq "the tag of an evicted manifest answers again" 200 "$(cache_curl /v2/ok/x/manifests/first -D "$T/hdr")"
check_eq "with the right manifest" "sha256:${H[0]}" \
	"$(tr -d '\r' <"$T/hdr" | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')"
check_eq "fetched again from the upstream" 2 "$(hostile_count GET /v2/ok/x/manifests/first)"
check_eq "the metrics count what the store holds" "$(allocated "$CACHE_ROOT")" \
	"$(curl -s "$CACHE_URL/metrics" | awk '$1 == "microscale_store_bytes" { printf "%d", $2 }')"
cache_stop
check_eq "cache exits 0 on SIGTERM" 0 "$?"
# A start over the same store counts the same.
cache_start -c "$T/cache.json" --upstream "$HOSTILE_URL" || exit 1
check "the start-up scan counts manifests and tags" grep -qE "event=store_budget files=[1-9][0-9]* bytes=$(allocated "$CACHE_ROOT") " "$CACHE_LOG"
cache_stop
stop_pid "$HOSTILE_PID"

# --- tags/list: one answer kept per repository ---------------------------------------------------
CACHE_ROOT=$T/cache2
fixtures_upstream_start || exit 1
cache_start --upstream "$UPSTREAM_URL" || exit 1
fails=0
for ((i = 1; i <= 150; i++)); do
	[ "$(cache_curl "/v2/$FIX_OCI_REPO/tags/list?n=$i&last=a$i")" = 200 ] || fails=$((fails + 1))
done
check_eq "150 distinct queries answered" 0 "$fails"
check_eq "the whole list answered" 200 "$(cache_curl "/v2/$FIX_OCI_REPO/tags/list")"
check_eq "one tag list kept, whatever was asked" 1 "$(find "$CACHE_ROOT/taglists" -type f | wc -l)"
upstream_stop
check_eq "upstream down: the whole list from the kept answer" '{"name":"library/oci-small","tags":["1"]}' \
	"$(curl -s "$CACHE_URL/v2/$FIX_OCI_REPO/tags/list")"
check_eq "upstream down: a page cut from the kept answer" '{"name":"library/oci-small","tags":["1"]}' \
	"$(curl -s "$CACHE_URL/v2/$FIX_OCI_REPO/tags/list?n=5")"
check_eq "upstream down: a page past the end is empty" '{"name":"library/oci-small","tags":[]}' \
	"$(curl -s "$CACHE_URL/v2/$FIX_OCI_REPO/tags/list?n=5&last=1")"
cache_stop
check_eq "cache exits 0 on SIGTERM" 0 "$?"
check "no sanitizer report" sanitizer_clean "$T"/cache.*.log
