#!/bin/bash
# One client's Accept must not change what any other client gets for a tag (issue #15, item 4).
# The upstream (hostile.py --downconvert) does what Docker Hub does: a tag that names a manifest
# list, asked for without index types, is answered with the list's linux/amd64 manifest. The cache
# must always ask the upstream with every manifest and index type, record the tag as the list,
# and answer a client that takes no index type as Docker's registry would: the linux/amd64
# manifest by digest, or 404 MANIFEST_UNKNOWN when there is none it takes. Each row below is a
# tag, the order clients ask in, and what each must get; then the same with the upstream down,
# and with a narrow and wide clients joined to one fetch.
# shellcheck source-path=SCRIPTDIR/../lib
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/cache.sh"
. "$MS_ROOT/tests/lib/hostile.sh"

OCI_MF=application/vnd.oci.image.manifest.v1+json
OCI_IX=application/vnd.oci.image.index.v1+json
D_MF=application/vnd.docker.distribution.manifest.v2+json
D_LIST=application/vnd.docker.distribution.manifest.list.v2+json
WIDE="$OCI_MF, $OCI_IX, $D_MF, $D_LIST" # what docker, containerd and skopeo send
NARROW=$D_MF                           # a client that knows no index
M=$T/upstream
mkdir -p "$M/tags"

# put JSON TYPE: a manifest file in the upstream's directory; prints its hex.
put() {
	local h
	printf '%s' "$1" >"$T/put" && h=$(sha256sum <"$T/put" | cut -c1-64) &&
		mv "$T/put" "$M/$h" && echo "$2" >"$M/$h.type" && echo "$h"
}
image() { # ARCH: a Docker v2 manifest of an image for ARCH (fake config, no layers)
	local c
	c=$(printf '%s' "$1" | sha256sum | cut -c1-64)
	put "{\"schemaVersion\":2,\"mediaType\":\"$D_MF\",\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"size\":2,\"digest\":\"sha256:$c\"},\"layers\":[]}" "$D_MF"
}
entry() { # HEX ARCH: a manifest list entry
	echo "{\"mediaType\":\"$D_MF\",\"size\":$(stat -c %s "$M/$1"),\"digest\":\"sha256:$1\",\"platform\":{\"architecture\":\"$2\",\"os\":\"linux\"}}"
}
list() { # ENTRY…
	local IFS=,
	put "{\"schemaVersion\":2,\"mediaType\":\"$D_LIST\",\"manifests\":[$*]}" "$D_LIST"
}
tag() { echo "sha256:$2" >"$M/tags/$1"; }

AMD=$(image amd64) && ARM=$(image arm64) || exit 1
LIST=$(list "$(entry "$ARM" arm64)" "$(entry "$AMD" amd64)") || exit 1
ARMONLY=$(list "$(entry "$ARM" arm64)") || exit 1
SINGLE=$(put "{\"schemaVersion\":2,\"mediaType\":\"$OCI_MF\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":2,\"digest\":\"sha256:$(printf oci | sha256sum | cut -c1-64)\"},\"layers\":[]}" "$OCI_MF") || exit 1
# A list over the memo's 16 KiB (sent from its file, read whole to pick from): 200 arm64 entries
# before the amd64 one.
# shellcheck disable=SC2046 # each entry is one word (no blanks in them)
BIGLIST=$(list $(for i in $(seq 200); do entry "$ARM" arm64; done) "$(entry "$AMD" amd64)") || exit 1
for t in narrow-first wide-first stale joined; do tag "$t" "$LIST"; done
tag biglist "$BIGLIST"
tag armonly "$ARMONLY"
tag single "$SINGLE"

hostile_start "$M" --downconvert --verbose || exit 1
# The rows run with tags fresh for 5 minutes: what a first client left is what the next gets. The
# rest runs with tags due at once: every GET of a tag asks the upstream (or finds it down).
echo '{"tag_ttl_s": 300}' >"$T/fresh.json"
echo '{"tag_ttl_s": 0}' >"$T/due.json"
cache_start -c "$T/fresh.json" --upstream "$HOSTILE_URL" || exit 1

# get REPO REF ACCEPT [CURL ARGS…]: prints "STATUS DIGEST TYPE"; the body is in $T/body.
get() {
	local repo=$1 ref=$2 accept=$3 code
	shift 3
	code=$(curl -s -D "$T/h" -o "$T/body" -w '%{http_code}' -H "Accept: $accept" "$@" \
		"$CACHE_URL/v2/$repo/manifests/$ref")
	echo "$code $(hdr Docker-Content-Digest) $(hdr Content-Type)"
}
hdr() { tr -d '\r' <"$T/h" | awk -v n="$1" 'tolower($1) == tolower(n) ":" { print $2 }'; }
error_code() { jq -r '.errors[0].code' "$T/body" 2>/dev/null; }

# --- rows: TAG, then each client in order: ACCEPT and what it must get ------------------------
check_eq "narrow first: the narrow client gets the amd64 manifest" \
	"200 sha256:$AMD $D_MF" "$(get ok/app narrow-first "$NARROW")"
check "... whole" cmp -s "$T/body" "$M/$AMD"
check_eq "... and a client that takes lists still gets the list" \
	"200 sha256:$LIST $D_LIST" "$(get ok/app narrow-first "$WIDE")"
check "... whole" cmp -s "$T/body" "$M/$LIST"

check_eq "wide first: the list" "200 sha256:$LIST $D_LIST" "$(get ok/app wide-first "$WIDE")"
check_eq "... then the narrow client gets the amd64 manifest" \
	"200 sha256:$AMD $D_MF" "$(get ok/app wide-first "$NARROW")"
check_eq "... and a HEAD from it says the same" "200 sha256:$AMD $D_MF" \
	"$(get ok/app wide-first "$NARROW" -I)"
check_eq "... and the list is still the tag's for everyone else" \
	"200 sha256:$LIST $D_LIST" "$(get ok/app wide-first "$WIDE")"

check_eq "a large list: the whole list for a wide client" "200 sha256:$BIGLIST $D_LIST" \
	"$(get ok/app biglist "$WIDE")"
check "... every byte of it" cmp -s "$T/body" "$M/$BIGLIST"
check_eq "... and its amd64 manifest for the narrow one" "200 sha256:$AMD $D_MF" \
	"$(get ok/app biglist "$NARROW")"

check_eq "a list without linux/amd64, asked narrowly: 404" "404" \
	"$(get ok/app armonly "$NARROW" | cut -d' ' -f1)"
check_eq "... MANIFEST_UNKNOWN" MANIFEST_UNKNOWN "$(error_code)"
check_eq "... and the list for a wide client" "200 sha256:$ARMONLY $D_LIST" \
	"$(get ok/app armonly "$WIDE")"

check_eq "a tag naming an OCI manifest, asked for Docker's type only: 404" "404" \
	"$(get ok/app single "$NARROW" | cut -d' ' -f1)"
check_eq "... MANIFEST_UNKNOWN" MANIFEST_UNKNOWN "$(error_code)"
check_eq "... and the manifest for a client that takes it" "200 sha256:$SINGLE $OCI_MF" \
	"$(get ok/app single "$WIDE")"

check_eq "a list by digest comes as stored, whatever the Accept" \
	"200 sha256:$LIST $D_LIST" "$(get ok/app "sha256:$LIST" "$NARROW")"
check_eq "Accept: */* (curl's) takes what the tag names" "200 sha256:$LIST $D_LIST" \
	"$(curl -s -D "$T/h" -o "$T/body" -w '%{http_code}' "$CACHE_URL/v2/ok/app/manifests/wide-first" &&
		echo " $(hdr Docker-Content-Digest) $(hdr Content-Type)")"

# --- the upstream down: what is stored answers (stale-if-error), per client --------------------
cache_stop
cache_start -c "$T/due.json" --upstream "$HOSTILE_URL" || exit 1
check_eq "stale: the narrow client first, upstream up" "200 sha256:$AMD $D_MF" \
	"$(get ok/app stale "$NARROW")"
stop_pid "$HOSTILE_PID"
check_eq "... upstream down: a wide client gets the list" "200 sha256:$LIST $D_LIST" \
	"$(get ok/app stale "$WIDE")"
check_eq "... and the narrow one the amd64 manifest" "200 sha256:$AMD $D_MF" \
	"$(get ok/app stale "$NARROW")"
check "... both from the store (manifest_stale logged)" grep -q 'event=manifest_stale.*tag=stale' \
	"$CACHE_LOG"

# --- joined: a narrow and wide clients on one cold fetch ----------------------------------------
hostile_start "$M" --downconvert --verbose || exit 1
cache_stop
cache_start -c "$T/due.json" --upstream "$HOSTILE_URL" || exit 1
misses() {
	curl -s "$CACHE_URL/metrics" |
		awk '/^microscale_cache_requests_total\{kind="manifest",result="miss"\}/ { print $2 }'
}
misses_reach() { [ "$(misses)" -ge "$1" ]; }
before=$(misses)
before=${before:-0}
curl -s -D "$T/jh.narrow" -o /dev/null -H "Accept: $NARROW" \
	"$CACHE_URL/v2/gated/app/manifests/joined" &
pids=($!)
upstream_got() { [ "$(hostile_count GET /v2/gated/app/manifests/joined)" -ge 1 ]; }
check "joined: the narrow client's fetch reaches the upstream" wait_for 20 upstream_got
for i in 1 2 3; do
	curl -s -D "$T/jh.$i" -o /dev/null -H "Accept: $WIDE" \
		"$CACHE_URL/v2/gated/app/manifests/joined" &
	pids+=($!)
done
check "... three wide clients join it" wait_for 20 misses_reach $((before + 4))
touch "$M/gate"
wait "${pids[@]}"
jhdr() { tr -d '\r' <"$1" | awk 'tolower($1) == "docker-content-digest:" { print $2 }'; }
check_eq "... the narrow client gets the amd64 manifest" "sha256:$AMD" "$(jhdr "$T/jh.narrow")"
for i in 1 2 3; do
	check_eq "... wide client $i gets the list" "sha256:$LIST" "$(jhdr "$T/jh.$i")"
done
check_eq "... from one upstream GET of the tag" 1 \
	"$(hostile_count GET /v2/gated/app/manifests/joined)"

# --- what the upstream was asked, in all of the above ----------------------------------------
narrow_asks=$(awk '$2 ~ /\/manifests\// && !/vnd.docker.distribution.manifest.list.v2\+json/' \
	"$HOSTILE_LOG" | wc -l)
check_eq "every manifest request upstream named the index types" 0 "$narrow_asks"

cache_stop
check_eq "cache exits 0 on SIGTERM" 0 "$?"
check "no sanitizer report" sanitizer_clean "$CACHE_LOG"
