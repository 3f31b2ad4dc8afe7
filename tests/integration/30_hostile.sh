#!/bin/bash
# The cache in front of a hostile upstream (tests/lib/hostile.py). Each fault is a row of data:
# what the upstream does (the repository prefix), what the client must see, what the store must
# hold afterwards, how many GETs the upstream must have had and what the cache must log. Then:
# single flight under a slow upstream, a stalled transfer that must not block anyone else, and
# kill -9 in the middle of a fetch followed by a restart on the same store.
# shellcheck source-path=SCRIPTDIR/../lib
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/cache.sh"
. "$MS_ROOT/tests/lib/hostile.sh"

LOW_SPEED_S=2
SIZE=262144 # 256 KiB: half of it is a real partial transfer; 4 s at slow/'s 64 KiB/s
B=$T/blobs
mkdir -p "$B"

# new_blob [BYTES]: a fresh random blob in $B; prints its hex. Every scenario gets its own,
# since the store is content-addressed: a blob stored by one row would be served to the next.
new_blob() {
	local h
	head -c "${1:-$SIZE}" /dev/urandom >"$T/new" && h=$(sha256sum <"$T/new" | cut -c1-64) &&
		mv "$T/new" "$B/$h" && echo "$h"
}
sha() { sha256sum <"$1" | cut -c1-64; }
log_has() { grep -F "$1" "$CACHE_LOG" | grep -qE "$2"; } # HEX ERE: a cache log line has both
stored_path() { echo "$CACHE_ROOT/blobs/sha256/${1:0:2}/$1"; }
# The verified blob is in place. The client may have its last byte a moment before the rename
# (the byte is released once the digest is verified), so callers poll this.
stored_ok() { [ "$(sha "$(stored_path "$1")" 2>/dev/null)" = "$1" ]; }
tmp_empty() { [ -z "$(ls -A "$CACHE_ROOT/tmp")" ]; }
upath() { echo "/v2/$1/blobs/sha256:$2"; } # REPO HEX: the path the upstream sees
upstream_got() { [ "$(hostile_count GET "$1")" -ge 1 ]; }

# fetch REPO HEX [CURL ARGS…]: GET through the cache; body in $T/body. Sets CODE, GOT (bytes),
# RC (curl's exit status) and SECS (curl's total time).
fetch() {
	local repo=$1 hex=$2 out
	shift 2
	out=$(curl -s -o "$T/body" --max-time 30 -w '%{http_code} %{size_download} %{time_total}' \
		"$@" "$CACHE_URL/v2/$repo/blobs/sha256:$hex")
	RC=$?
	read -r CODE GOT SECS <<<"$out"
}
secs_between() { awk -v s="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(s >= lo && s <= hi) }'; }
oci_error_code() { jq -er '.errors | if type == "array" and length > 0 and (.[0].message | type) == "string" then .[0].code else error("not OCI") end' "$1" 2>/dev/null; }

hostile_start "$B" || exit 1
cat >"$T/cache.json" <<EOF
{"fetch": {"low_speed_time_s": $LOW_SPEED_S, "retries": 2, "connect_timeout_ms": 1000}}
EOF
cache_start -c "$T/cache.json" --upstream "$HOSTILE_URL" || exit 1
LOGS=("$CACHE_LOG")

# --- faults, one row each -----------------------------------------------------------------
# CLIENT: ok    200, every byte, curl exits 0, bytes hash to the digest
#         cut   curl reports an error or gets fewer bytes: never a complete body
#         error an error status (5xx) with an OCI error body saying BLOB_UNKNOWN (the spec has no
#               code for a failed upstream: the 5xx says it is for now)
# STORED: yes   the verified blob is in the store;  no: nothing under blobs/ for it
# GETS:   GETs of the blob path the upstream logged (retries and auth rounds included)
# SECS:   the client's answer took between LO and HI seconds (err429: Retry-After is 1 s;
#         stall: cut off by low_speed_time_s, not by the client's own 30 s limit. libcurl
#         measures "speed" as the average over the last 5 s, so after a burst the stall is
#         noticed only once that window has passed: about LOW_SPEED_S + 6 s in all.)
# LOG:    an ERE a cache log line naming this blob must match
SCENARIOS=(
	# PREFIX    CLIENT STORED GETS LO HI  LOG
	"wrong      cut    no     1    0  5   event=blob_pull_failed .*digest mismatch"
	"truncate   cut    no     1    0  5   event=blob_pull_failed "
	"stall      cut    no     1    1  $((LOW_SPEED_S + 8)) event=blob_pull_failed "
	"err429     ok     yes    2    0.9 6  event=upstream_retry .*status=429 .*delay_s=1\.00"
	"err503     ok     yes    3    0  8   event=upstream_retry .*status=503 attempt=2 "
	"always503  error  no     3    0  8   event=blob_pull_failed .*status=503"
	"auth       ok     yes    2    0  5   event=blob_stored "
	"redirect   ok     yes    2    0  5   event=blob_stored "
)
for row in "${SCENARIOS[@]}"; do
	read -r prefix client stored gets lo hi logre <<<"$row"
	hex=$(new_blob) || exit 1
	repo=$prefix/x
	fetch "$repo" "$hex"
	case $client in
	ok)
		check_eq "$prefix: client gets 200, all bytes, clean end" "200 $SIZE 0" "$CODE $GOT $RC"
		check_eq "$prefix: client's bytes hash to the digest" "$hex" "$(sha "$T/body")"
		;;
	cut)
		check "$prefix: client never gets a complete body (status $CODE, $GOT bytes, curl $RC)" \
			test "$RC" -ne 0 -o "$GOT" -lt "$SIZE"
		;;
	error)
		check "$prefix: client gets an error status (got $CODE)" test "${CODE:0:1}" = 5
		check_eq "$prefix: error body is OCI JSON saying BLOB_UNKNOWN" BLOB_UNKNOWN \
			"$(oci_error_code "$T/body")"
		;;
	esac
	check "$prefix: answer took ${lo}..${hi} s (took $SECS s)" secs_between "$SECS" "$lo" "$hi"
	if [ "$stored" = yes ]; then
		check "$prefix: the verified blob is stored" wait_for 5 stored_ok "$hex"
	else
		check_eq "$prefix: nothing stored" "" "$(find "$CACHE_ROOT/blobs" -name "$hex*")"
	fi
	check "$prefix: no temp file left in tmp/" wait_for 5 tmp_empty
	check_eq "$prefix: upstream saw $gets GET(s)" "$gets" "$(hostile_count GET "$(upath "$repo" "$hex")")"
	check "$prefix: cache log matches /$logre/" log_has "$hex" "$logre"
	case $prefix in
	auth)
		check "auth: the cache fetched a token" grep -q '^GET /token?' "$HOSTILE_LOG"
		check_eq "auth: the retry carried the Bearer token" "auth=bearer" \
			"$(grep "^GET $(upath "$repo" "$hex") " "$HOSTILE_LOG" | tail -1 | cut -d' ' -f4)"
		;;
	redirect)
		check_eq "redirect: the redirect target was fetched once" 1 \
			"$(hostile_count GET "/storage/$hex" storage)"
		check_eq "redirect: no Authorization arrived at /storage/" "" \
			"$(grep '^GET /storage/' "$HOSTILE_LOG" | grep -v ' auth=none$')"
		;;
	esac
done

# --- slow upstream, two clients: one upstream GET, both get every byte ---------------------
hex=$(new_blob)
curl -s -o "$T/c1" --max-time 30 "$CACHE_URL$(upath slow/x "$hex")" &
c1=$!
check "slow: first client's fetch reached the upstream" wait_for 10 upstream_got "$(upath slow/x "$hex")"
check "slow: the first transfer is still running when the second client asks" kill -0 "$c1"
curl -s -o "$T/c2" --max-time 30 "$CACHE_URL$(upath slow/y "$hex")" &
c2=$!
wait "$c1"
check_eq "slow: first client ends cleanly" 0 "$?"
wait "$c2"
check_eq "slow: second client ends cleanly" 0 "$?"
check_eq "slow: first client's bytes are true" "$hex" "$(sha "$T/c1")"
check_eq "slow: second client's bytes are true" "$hex" "$(sha "$T/c2")"
check_eq "slow: the upstream served the blob once" 1 \
	"$(($(hostile_count GET "$(upath slow/x "$hex")") + $(hostile_count GET "$(upath slow/y "$hex")")))"

# --- a stalled transfer does not block the daemon ---------------------------------------------
hs=$(new_blob)
ho=$(new_blob)
curl -s -o "$T/stalled" --max-time 30 "$CACHE_URL$(upath stall/z "$hs")" &
cs=$!
check "stall: the stalled client has its first bytes" wait_for 10 test -s "$T/stalled"
fetch ok/z "$ho" --max-time 10
check_eq "stall: meanwhile an ok/ blob is served whole" "200 $SIZE 0" "$CODE $GOT $RC"
check_eq "stall: and its bytes are true" "$ho" "$(sha "$T/body")"
check "stall: the stalled client was still waiting then" kill -0 "$cs"
wait "$cs"
check "stall: the stalled client is then cut off (curl $?)" test "$?" -ne 0

# --- after every fault, the daemon still serves -------------------------------------------------
hex=$(new_blob)
fetch ok/after "$hex"
check_eq "after the faults: an ok/ blob serves" "200 $SIZE 0 $hex" "$CODE $GOT $RC $(sha "$T/body")"
check_eq "after the faults: GET /v2/ answers" 200 "$(cache_curl /v2/)"
cache_stop
check_eq "SIGTERM exits 0 after the faults" 0 "$?"

# --- kill -9 in the middle of a fetch, then a restart on the same store -----------------------
cache_start -c "$T/cache.json" --upstream "$HOSTILE_URL" || exit 1
LOGS+=("$CACHE_LOG")
hex=$(new_blob $((2 * SIZE))) # 8 s at 64 KiB/s: long enough to be killed in the middle
curl -s -o "$T/killed" --max-time 30 "$CACHE_URL$(upath slow/k "$hex")" &
ck=$!
check "kill -9: the client is receiving the blob" wait_for 10 test -s "$T/killed"
check "kill -9: a temp file is being written" test -n "$(ls -A "$CACHE_ROOT/tmp")"
kill -KILL "$CACHE_PID"
wait "$CACHE_PID" 2>/dev/null
wait "$ck"
check "kill -9: the client sees its transfer cut (curl $?)" test "$?" -ne 0
check_eq "kill -9: no partial blob in the store" "" "$(find "$CACHE_ROOT/blobs" -name "$hex*")"
check "kill -9: the temp file is left behind (what start-up must clean)" \
	test -n "$(ls -A "$CACHE_ROOT/tmp")"
cache_start -c "$T/cache.json" --upstream "$HOSTILE_URL" || exit 1
LOGS+=("$CACHE_LOG")
check "restart: tmp/ is empty after start-up" tmp_empty
check_eq "restart: still no partial blob in the store" "" "$(find "$CACHE_ROOT/blobs" -name "$hex*")"
fetch ok/k "$hex"
check_eq "restart: the blob then pulls whole" "200 $((2 * SIZE)) 0 $hex" "$CODE $GOT $RC $(sha "$T/body")"
check "restart: and is stored verified" wait_for 5 stored_ok "$hex"
cache_stop
check_eq "SIGTERM exits 0 after the restart" 0 "$?"
check "no sanitizer report in any cache log" sanitizer_clean "${LOGS[@]}"
