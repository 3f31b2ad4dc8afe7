#!/bin/bash
# Ranged GETs of a blob still being fetched (README "How it behaves": every byte but the last
# until the digest is verified, ranges too). The upstream is tests/lib/hostile.py behind
# tests/lib/slowlink.py, so that a 2 MiB blob takes about a second to arrive and a second client
# can join its transfer. Each row of data: whether the ranged client asks alone (its request
# starts the transfer) or joins a transfer a full GET started; whether the upstream tells the
# truth (ok/) or lies (wrong/: one byte flipped in the middle of the blob, so the digest fails
# once the whole blob is in); the Range asked; the bytes it names. A lying upstream must leave
# every client, ranged or not, without a complete answer (curl fails or gets fewer bytes than
# the range); an honest one gives the ranged client exactly its bytes, with a 206.
# shellcheck source-path=SCRIPTDIR/../lib
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/cache.sh"
. "$MS_ROOT/tests/lib/hostile.sh"

SIZE=2097152 # 2 MiB: about a second through the 2 MB/s link, time for a second client to join
MID=$((SIZE / 2)) # the byte wrong/ flips
B=$T/blobs
mkdir -p "$B"

# new_blob: a fresh random blob in $B, its hex printed; one per row (the store is
# content-addressed: a blob one row stored would be served to the next from the store).
new_blob() {
	local h
	head -c "$SIZE" /dev/urandom >"$T/new" && h=$(sha256sum <"$T/new" | cut -c1-64) &&
		mv "$T/new" "$B/$h" && echo "$h"
}
upath() { echo "/v2/$1/blobs/sha256:$2"; } # REPO HEX: the path the upstream sees
stored_path() { echo "$CACHE_ROOT/blobs/sha256/${1:0:2}/$1"; }
stored_ok() { [ "$(sha256sum <"$(stored_path "$1")" 2>/dev/null | cut -c1-64)" = "$1" ]; }
tmp_empty() { [ -z "$(ls -A "$CACHE_ROOT/tmp")" ]; }
log_has() { grep -F "$1" "$CACHE_LOG" | grep -qE "$2"; } # HEX ERE: a cache log line has both
# slice HEX FIRST LAST: those bytes of the true blob.
slice() { tail -c +$(($2 + 1)) "$B/$1" | head -c $(($3 - $2 + 1)); }

# ranged REPO HEX RANGE: GET with Range through the cache; body in $T/range, headers in
# $T/range.hdr. Sets CODE, GOT (bytes), RC (curl's exit status).
ranged() {
	local out
	out=$(curl -s -o "$T/range" -D "$T/range.hdr" --max-time 30 -H "Range: bytes=$3" \
		-w '%{http_code} %{size_download}' "$CACHE_URL$(upath "$1" "$2")")
	RC=$?
	read -r CODE GOT <<<"$out"
}
# header NAME: that header's value in $T/range.hdr.
header() { tr -d '\r' <"$T/range.hdr" | awk -v h="$1:" 'tolower($1) == tolower(h) { sub(/^[^:]*: */, ""); print }'; }

hostile_start "$B" || exit 1
rm -f "$T/link.port"
spawn "$T/link.log" python3 "$MS_ROOT/tests/lib/slowlink.py" --target "127.0.0.1:$HOSTILE_PORT" \
	--mbps 2 --port-file "$T/link.port"
LINK_PID=$SPAWNED
wait_for 10 test -s "$T/link.port" && wait_port "$(cat "$T/link.port")" "$LINK_PID" 5 || exit 1
cache_start --upstream "http://127.0.0.1:$(cat "$T/link.port")" || exit 1

# HOW:   alone  the ranged GET is the blob's only client: it starts the transfer
#        joins  a full GET starts the transfer; the ranged GET comes once it streams
# MODE:  ok     the upstream's bytes are true
#        wrong  one byte flipped at MID: the digest fails once the blob is in
# RANGE, FIRST, LAST: the Range header's bytes= value and the bytes it names
SCENARIOS=(
	# HOW  MODE   RANGE                 FIRST             LAST
	"alone wrong  0-99                  0                 99"
	"alone wrong  $((MID - 8))-$((MID + 8)) $((MID - 8)) $((MID + 8))"
	"joins wrong  100-4195              100               4195"
	"joins wrong  -100                  $((SIZE - 100))   $((SIZE - 1))"
	"alone ok     0-99                  0                 99"
	"alone ok     -100                  $((SIZE - 100))   $((SIZE - 1))"
	"joins ok     1000-1999             1000              1999"
	"joins ok     $MID-                 $MID              $((SIZE - 1))"
)
for row in "${SCENARIOS[@]}"; do
	read -r how mode range first last <<<"$row"
	name="$how $mode bytes=$range"
	len=$((last - first + 1))
	hex=$(new_blob) || exit 1
	repo=$mode/x
	full=
	if [ "$how" = joins ]; then
		rm -f "$T/full"
		curl -s -o "$T/full" --max-time 30 "$CACHE_URL$(upath "$repo" "$hex")" &
		full=$!
		check "$name: the full GET streams" wait_for 10 test -s "$T/full"
		check "$name: its transfer still runs when the ranged GET comes" kill -0 "$full"
	fi
	ranged "$repo" "$hex" "$range"
	if [ "$mode" = wrong ]; then
		check "$name: no complete 206 (status $CODE, $GOT of $len bytes, curl $RC)" \
			test "$RC" -ne 0 -o "$GOT" -lt "$len"
		check_eq "$name: nothing stored" "" "$(find "$CACHE_ROOT/blobs" -name "$hex*")"
		check "$name: the cache logs the mismatch" \
			wait_for 5 log_has "$hex" "event=blob_pull_failed .*digest mismatch"
	else
		check_eq "$name: 206, every byte of the range, clean end" "206 $len 0" "$CODE $GOT $RC"
		check_eq "$name: Content-Range" "bytes $first-$last/$SIZE" "$(header Content-Range)"
		check "$name: the bytes are the blob's" cmp -s "$T/range" <(slice "$hex" "$first" "$last")
		check "$name: the verified blob is stored" wait_for 5 stored_ok "$hex"
	fi
	if [ -n "$full" ]; then
		wait "$full"
		frc=$?
		fgot=$(stat -c %s "$T/full")
		if [ "$mode" = wrong ]; then
			check "$name: the full GET is cut too ($fgot bytes, curl $frc)" \
				test "$frc" -ne 0 -o "$fgot" -lt "$SIZE"
		else
			check_eq "$name: the full GET gets the blob" "0 $hex" \
				"$frc $(sha256sum <"$T/full" | cut -c1-64)"
		fi
	fi
	check_eq "$name: one upstream GET" 1 "$(hostile_count GET "$(upath "$repo" "$hex")")"
	check "$name: no temp file left" wait_for 5 tmp_empty
done

# --- a big range streams while the blob arrives: only its last byte waits for the digest ------
hex=$(new_blob) || exit 1
last=$((SIZE - 2))
rm -f "$T/big"
curl -s -o "$T/big" -w '%{http_code} %{size_download}' --max-time 30 -H "Range: bytes=0-$last" \
	"$CACHE_URL$(upath ok/big "$hex")" >"$T/big.out" &
big=$!
check "big range: its first bytes come while the blob arrives" wait_for 10 test -s "$T/big"
check "big range: ... before the blob is stored" test ! -e "$(stored_path "$hex")"
wait "$big"
rc=$?
check_eq "big range: then 206 and every byte of it, clean end" "206 $((last + 1)) 0" \
	"$(cat "$T/big.out") $rc"
check "big range: the bytes are the blob's" cmp -s "$T/big" <(slice "$hex" 0 "$last")

check_eq "GET /v2/ still answers" 200 "$(cache_curl /v2/)"
cache_stop
check_eq "SIGTERM exits 0" 0 "$?"
check "no sanitizer report in the cache log" sanitizer_clean "$CACHE_LOG"
