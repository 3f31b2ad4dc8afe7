#!/bin/bash
# Memory with many slow readers of a large manifest (issue #15, item 2). A manifest over the
# memo's 16 KiB is sent from its store file with sendfile, never copied per response, so what a
# reader costs does not depend on the manifest's size: N clients that ask for a 4 MiB manifest
# and then stop reading keep the cache within the README's bound, and its memory comes back when
# they leave. Both ways a large manifest reaches clients are covered: warm (from the store) and
# cold (N clients joined to the one upstream fetch, held back by the upstream until all have
# joined). Small manifests still come from memory.
# shellcheck source-path=SCRIPTDIR/../lib
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/cache.sh"
. "$MS_ROOT/tests/lib/hostile.sh"

# ASan keeps freed memory in a quarantine of up to 256 MB, resident and so counted as the
# daemon's: off here, so that what is measured (against the sanitizer build too) is what is live.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0

READERS=${READERS:-200}
PER_READER_KIB=64 # what the README allows a connection (about 50 KiB), rounded up
SLACK_KIB=16384	  # the daemon's own noise: allocator arenas, the upstream buffer, the memo
MT=application/vnd.oci.image.manifest.v1+json
ACCEPT="$MT, application/vnd.oci.image.index.v1+json"
M=$T/upstream
mkdir -p "$M/tags"

# put_manifest FILE TAG: FILE into the upstream's directory as a manifest that TAG names;
# prints its hex.
put_manifest() {
	local h
	h=$(sha256sum <"$1" | cut -c1-64) && cp "$1" "$M/$h" && echo "$MT" >"$M/$h.type" &&
		echo "sha256:$h" >"$M/tags/$2" && echo "$h"
}

# A 4 MiB manifest (just under MANIFEST_MAX_BYTES), and a small one.
python3 - "$T/big.json" "$T/small.json" <<'PY'
import json, os, sys
cfg = {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
       "digest": "sha256:" + "4" * 64}
big = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "config": cfg, "layers": [], "annotations": {"pad": os.urandom(2_000_000).hex()}}
small = dict(big, annotations={"pad": "small"})
for path, doc in zip(sys.argv[1:], (big, small)):
    with open(path, "w") as f:
        json.dump(doc, f)
PY
BIG=$(put_manifest "$T/big.json" big) || exit 1
put_manifest "$T/small.json" small >/dev/null || exit 1
BIG_SIZE=$(stat -c %s "$T/big.json")

hostile_start "$M" || exit 1
cache_start --upstream "$HOSTILE_URL" || exit 1

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$CACHE_PID/status"; }
# rss_below KIB: the cache's resident memory is under KIB (polled: freeing takes a moment).
rss_below() { [ "$(rss_kib)" -lt "$1" ]; }
misses() {
	curl -s "$CACHE_URL/metrics" |
		awk '/^microscale_cache_requests_total\{kind="manifest",result="miss"\}/ { print $2 }'
}
misses_reach() { [ "$(misses)" -ge "$1" ]; }

# readers PATH: $READERS slow readers of PATH in the background (SLOW_PID); they hold their
# connections once each has read the status line and a little more.
readers() {
	rm -f "$T/ready"
	spawn "$T/slowread.out" python3 "$MS_ROOT/tests/lib/slowread.py" --port "$CACHE_PORT" \
		--path "$1" --n "$READERS" --accept "$ACCEPT" --ready "$T/ready"
	SLOW_PID=$SPAWNED
}
readers_answered() {
	wait_for 90 test -s "$T/ready" && jq -r '.status["200"] // 0' "$T/ready"
}
readers_stop() {
	kill -TERM "$SLOW_PID" 2>/dev/null
	wait "$SLOW_PID" 2>/dev/null
}

# --- what a client gets ----------------------------------------------------------------------
code=$(curl -s -D "$T/h" -o "$T/got" -w '%{http_code}' -H "Accept: $ACCEPT" \
	"$CACHE_URL/v2/ok/app/manifests/big")
check_eq "a 4 MiB manifest comes back" 200 "$code"
check "... every byte of it" cmp -s "$T/got" "$T/big.json"
check "... under its digest" grep -qi "^Docker-Content-Digest: sha256:$BIG" "$T/h"
check "... with its media type" grep -qi "^Content-Type: $MT" "$T/h"
code=$(curl -s -D "$T/h" -o "$T/got" -w '%{http_code}' -H "Accept: $ACCEPT" \
	"$CACHE_URL/v2/ok/app/manifests/big")
check "again, from the store: every byte" cmp -s "$T/got" "$T/big.json"
code=$(curl -s -I -o /dev/null -w '%{http_code}' -H "Accept: $ACCEPT" \
	"$CACHE_URL/v2/ok/app/manifests/sha256:$BIG")
check_eq "a HEAD by digest answers" 200 "$code"
len=$(curl -s -I -H "Accept: $ACCEPT" "$CACHE_URL/v2/ok/app/manifests/sha256:$BIG" |
	tr -d '\r' | awk 'tolower($1) == "content-length:" { print $2 }')
check_eq "... with the manifest's length" "$BIG_SIZE" "$len"
for i in 1 2; do
	curl -s -o "$T/got" -H "Accept: $ACCEPT" "$CACHE_URL/v2/ok/app/manifests/small"
done
check "a small manifest comes back whole (from memory)" cmp -s "$T/got" "$T/small.json"

# --- warm: slow readers of a stored 4 MiB manifest -------------------------------------------
# Both phases are measured against the memory of the cache before the first reader came.
base=$(rss_kib)
bound=$((base + READERS * PER_READER_KIB + SLACK_KIB))
readers "/v2/ok/app/manifests/big"
check_eq "$READERS slow readers get their answer (stored)" "$READERS" "$(readers_answered)"
held=$(rss_kib)
echo "# warm: RSS ${base} KiB before, ${held} KiB with $READERS readers of a $BIG_SIZE-byte manifest"
check "... and the cache's memory stays within the bound ($held KiB < $bound KiB)" \
	test "$held" -lt "$bound"
readers_stop
check "... and comes back once they leave (under $((base + SLACK_KIB)) KiB)" \
	wait_for 20 rss_below $((base + SLACK_KIB))
echo "# warm: RSS $(rss_kib) KiB after they left"

# --- cold: slow readers joined to the one upstream fetch -------------------------------------
before=$(misses)
readers "/v2/gated/app/manifests/big"
check "$READERS readers wait for one upstream fetch" wait_for 60 misses_reach $((before + READERS))
check_eq "... which the upstream had once" 1 "$(hostile_count GET /v2/gated/app/manifests/big)"
touch "$M/gate"
check_eq "... and then get their answer" "$READERS" "$(readers_answered)"
held=$(rss_kib)
echo "# cold: RSS ${held} KiB with $READERS readers joined to the fetch"
check "... and the cache's memory stays within the bound ($held KiB < $bound KiB)" \
	test "$held" -lt "$bound"
readers_stop
check "... and comes back once they leave (under $((base + SLACK_KIB)) KiB)" \
	wait_for 20 rss_below $((base + SLACK_KIB))
code=$(curl -s -o "$T/got" -w '%{http_code}' -H "Accept: $ACCEPT" \
	"$CACHE_URL/v2/gated/app/manifests/big")
check "the fetched manifest is whole for the next client" cmp -s "$T/got" "$T/big.json"
echo "# cold: RSS $(rss_kib) KiB after they left"

cache_stop
check_eq "cache exits 0 on SIGTERM" 0 "$?"
check "no sanitizer report" sanitizer_clean "$CACHE_LOG"
