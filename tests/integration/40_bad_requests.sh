#!/bin/bash
# Requests a registry client would never send, against a cache in front of the fixtures
# upstream: bad names, traversal, bad digests and tags, write methods, oversized and malformed
# heads, bad ranges, unknown ?ns=, a slowloris, pipelining and a client that walks away mid-blob.
# Every refusal must be an OCI error ({"errors":[{"code","message"}]}) with the right code, must
# not reach the upstream, and the daemon must keep serving everyone else.
# shellcheck source-path=SCRIPTDIR/../lib
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"
. "$MS_ROOT/tests/lib/hostile.sh"

MAX_HEAD=4096
HEAD_TIMEOUT_S=1
fixtures_upstream_start || exit 1
cat >"$T/cache.json" <<EOF
{"http": {"max_header_bytes": $MAX_HEAD, "header_timeout_s": $HEAD_TIMEOUT_S}}
EOF
cache_start -c "$T/cache.json" --upstream "$UPSTREAM_URL" || exit 1

rep() { printf "%${2}s" "" | tr ' ' "$1"; } # CHAR N: CHAR repeated N times
Z64=$(rep 0 64)
sha() { sha256sum <"$1" | cut -c1-64; }
# The code of an OCI error body, or nothing when the body is not {"errors":[{code,message}…]};
# a code the OCI distribution spec (v1.1) does not define comes back as "not-in-spec:CODE", so
# that every check of a code below also checks it is one a client knows.
SPEC_CODES=" BLOB_UNKNOWN BLOB_UPLOAD_INVALID BLOB_UPLOAD_UNKNOWN DIGEST_INVALID MANIFEST_BLOB_UNKNOWN MANIFEST_INVALID MANIFEST_UNKNOWN NAME_INVALID NAME_UNKNOWN SIZE_INVALID UNAUTHORIZED DENIED UNSUPPORTED TOOMANYREQUESTS "
oci_error_code() {
	local code
	code=$(jq -er '.errors | if type == "array" and length > 0 and (.[0].code | type) == "string"
		and (.[0].message | type) == "string" then .[0].code else error("not OCI") end' \
		"$1" 2>/dev/null) || return 1
	case "$SPEC_CODES" in *" $code "*) echo "$code" ;; *) echo "not-in-spec:$code" ;; esac
}
hdr() { tr -d '\r' <"$T/hdr" | sed -n "s/^$1: //Ip" | head -1; }
# raw DATA [rawhttp.py ARGS…]: sends DATA (Python escapes) on a fresh connection; the answer's
# head goes to $T/hdr, its body to $T/body, rawhttp.py's exit status to $T/raw.rc (0: the daemon
# closed the connection). Prints the status codes of every response received.
raw() {
	python3 "$MS_ROOT/tests/lib/rawhttp.py" "$CACHE_PORT" "$@" >"$T/raw"
	echo $? >"$T/raw.rc"
	python3 - "$T/raw" "$T/hdr" "$T/body" <<'EOF'
import re, sys
data = open(sys.argv[1], "rb").read()
head, _, body = data.partition(b"\r\n\r\n")
open(sys.argv[2], "wb").write(head)
m = re.search(rb"(?i)content-length: *(\d+)", head)
open(sys.argv[3], "wb").write(body[:int(m[1])] if m else body)
print(" ".join(c.decode() for c in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)))
EOF
}
matches() { [[ $1 =~ ^($2)$ ]]; } # STRING ERE: the whole string matches
alive() { [ "$(cache_curl /v2/ --max-time 5)" = 200 ]; }

# --- refusals, one row each ------------------------------------------------------------------
# STATUS CODE (an ERE for the OCI error code) METHOD PATH [HEADER]; paths go out as written
# (curl --path-as-is), so "..", "//" and %-escapes reach the daemon untouched.
BAD=(
	# names
	"400 NAME_INVALID GET /v2/Library/x/manifests/1"
	"400 NAME_INVALID GET /v2/a//b/manifests/1"
	"400 NAME_INVALID GET /v2/-a/manifests/1"
	"400 NAME_INVALID GET /v2/a-/manifests/1"
	"400 NAME_INVALID GET /v2/a__-b/manifests/1"
	"400 NAME_INVALID GET /v2/$(rep a 256)/manifests/1"
	"400 NAME_INVALID GET /v2/$(rep a 300)/blobs/sha256:$Z64"
	"400 NAME_INVALID GET /v2/%2e%2e/x/manifests/1"
	"400 NAME_INVALID GET /v2/library/%2e%2e/blobs/sha256:$Z64"
	"400 NAME_INVALID GET /v2/library/%2Fetc/manifests/1"
	# traversal
	"400 NAME_INVALID GET /v2/library/../x/blobs/sha256:$Z64"
	"400 NAME_INVALID GET /v2/../x/manifests/1"
	"404 UNSUPPORTED GET /v2/../../etc/passwd"
	"404 UNSUPPORTED GET /v2/library/x/blobs/../../x"
	"404 MANIFEST_UNKNOWN GET /v2/library/x/manifests/.."
	# digests
	"404 BLOB_UNKNOWN GET /v2/library/x/blobs/sha256:short"
	"404 BLOB_UNKNOWN GET /v2/library/x/blobs/sha256:$(rep A 64)"
	"404 BLOB_UNKNOWN GET /v2/library/x/blobs/sha256:${Z64}0"
	"404 BLOB_UNKNOWN GET /v2/library/x/blobs/sha256:"
	"404 BLOB_UNKNOWN GET /v2/library/x/blobs/${Z64}"
	"404 MANIFEST_UNKNOWN GET /v2/library/x/manifests/sha256:short"
	"404 BLOB_UNKNOWN GET /v2/library/x/blobs/sha256:$(rep 0 200)"
	"400 UNSUPPORTED GET /v2/library/x/blobs/md5:abc"
	"400 UNSUPPORTED GET /v2/library/x/blobs/sha512:$(rep 0 128)"
	"400 UNSUPPORTED GET /v2/library/x/manifests/sha512:$(rep 0 128)"
	# tags
	"404 MANIFEST_UNKNOWN GET /v2/library/x/manifests/$(rep t 129)"
	"404 MANIFEST_UNKNOWN GET /v2/library/x/manifests/$(rep t 200)"
	"404 MANIFEST_UNKNOWN GET /v2/library/x/manifests/.x"
	"404 MANIFEST_UNKNOWN GET /v2/library/x/manifests/-x"
	# unknown endpoints
	"404 UNSUPPORTED GET /"
	"404 UNSUPPORTED GET /v3/"
	"404 UNSUPPORTED GET /v2/_catalog"
	"404 UNSUPPORTED GET /v2/library/x/foo/1"
	"404 UNSUPPORTED GET /v2/library/x/tags/other"
	# HEAD: the same status, no body (CODE is ignored)
	"400 - HEAD /v2/Library/x/manifests/1"
	"404 - HEAD /v2/library/x/blobs/sha256:short"
	# writes
	"405 UNSUPPORTED POST /v2/library/x/blobs/uploads/"
	"405 UNSUPPORTED PUT /v2/library/x/blobs/uploads/some-id?digest=sha256:$Z64"
	"405 UNSUPPORTED PATCH /v2/library/x/blobs/uploads/some-id"
	"405 UNSUPPORTED DELETE /v2/library/x/blobs/uploads/some-id"
	"405 UNSUPPORTED DELETE /v2/library/x/blobs/sha256:$Z64"
	"405 UNSUPPORTED PUT /v2/library/x/manifests/1"
	"405 UNSUPPORTED POST /v2/library/x/manifests/1"
	"405 UNSUPPORTED DELETE /v2/library/x/manifests/1"
	# which upstream: ?ns=
	"404 NAME_UNKNOWN GET /v2/library/oci-small/manifests/1?ns=quay.io"
	"404 NAME_UNKNOWN GET /v2/library/oci-small/blobs/sha256:$Z64?ns=ghcr.io"
	"400 NAME_INVALID GET /v2/library/oci-small/manifests/1?ns=../x"
	"400 NAME_INVALID GET /v2/library/oci-small/manifests/1?ns="
	"400 NAME_INVALID GET /v2/library/oci-small/manifests/1?ns=%2e%2e%2fx"
	"400 NAME_INVALID GET /v2/library/oci-small/manifests/1?ns=a%00b"
	"400 NAME_INVALID GET /v2/library/oci-small/manifests/1?ns=%zz"
	"400 NAME_INVALID GET /v2/library/oci-small/manifests/1?ns=$(rep a 300).io"
	# heads
	"431 UNSUPPORTED GET /v2/ X-Big: $(rep a $((MAX_HEAD + 100)))"
)
mark=$(upstream_mark)
for row in "${BAD[@]}"; do
	read -r status code method path header <<<"$row"
	label="$method $path"
	[ ${#path} -gt 80 ] && label="$method ${path:0:60}… (${#path} chars)"
	[ -n "$header" ] && label+=" [${header:0:12}… ${#header} B]"
	args=(-X "$method")
	[ "$method" = GET ] && args=()
	[ "$method" = HEAD ] && args=(-I)
	[ -n "$header" ] && args+=(-H "$header")
	read -r got bytes < <(curl -s --path-as-is -o "$T/body" -D "$T/hdr" --max-time 10 \
		-w '%{http_code} %{size_download}' "${args[@]}" "$CACHE_URL$path")
	check_eq "$label: status" "$status" "$got"
	if [ "$method" = HEAD ]; then
		check_eq "$label: no body" 0 "$bytes"
		continue
	fi
	ecode=$(oci_error_code "$T/body")
	check "$label: OCI error with code /$code/ (got '$ecode')" matches "$ecode" "$code"
	[ "$status" = 405 ] && check_eq "$label: Allow header" "GET, HEAD" "$(hdr Allow)"
done
check_eq "no refusal reached the upstream" "" "$(upstream_requests_since "$mark")"
check "still answers GET /v2/ after the refusals" alive

# The edges of the same rules are accepted (they reach the upstream, which knows nothing).
mark=$(upstream_mark)
check_eq "a 128-character tag is valid: the upstream is asked (404)" 404 \
	"$(cache_curl "/v2/library/oci-small/manifests/$(rep t 128)")"
check_eq "... and the code says MANIFEST_UNKNOWN" MANIFEST_UNKNOWN "$(oci_error_code "$T/body")"
check_eq "a header just under max_header_bytes is fine" 200 \
	"$(cache_curl /v2/ -H "X-Big: $(rep a $((MAX_HEAD - 512)))")"
check_eq "?ns=docker.io is the default upstream" 200 \
	"$(cache_curl "/v2/$FIX_OCI_REPO/manifests/$FIX_OCI_TAG?ns=docker.io" -H "Accept: $FIX_ACCEPT")"
check_eq "the upstream saw exactly the two valid requests" \
	"GET /v2/library/oci-small/manifests/$(rep t 128) 404
GET /v2/library/oci-small/manifests/1 200" "$(upstream_requests_since "$mark" | cut -d' ' -f1-3)"

# The limit is on the head as sent: exactly max_header_bytes passes, one byte more is refused.
# ("GET /v2/ HTTP/1.1\r\n" 19 + "Host: a\r\n" 9 + "Connection: close\r\n" 19 + "X-Pad: " 7
# + pad + "\r\n\r\n" 4 = 58 + pad bytes.)
for over in 0 1; do
	want=$([ "$over" = 1 ] && echo 431 || echo 200)
	check_eq "a request head of max_header_bytes + $over bytes -> $want" "$want" \
		"$(raw "GET /v2/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Pad: $(rep a $((MAX_HEAD - 58 + over)))\r\n\r\n")"
done

# Too many header fields, each small: the head is under max_header_bytes but over the count.
many=()
for i in $(seq 1 80); do many+=(-H "X-H$i: v"); done
check_eq "80 header fields -> 431" 431 "$(cache_curl /v2/ "${many[@]}")"
check_eq "80 header fields: OCI error" UNSUPPORTED "$(oci_error_code "$T/body")"

# A write with a body larger than the daemon reads: refused at once, connection closed.
head -c 200000 /dev/zero >"$T/big-body"
check_eq "PUT with a 200 KB body -> 405" 405 \
	"$(cache_curl /v2/library/x/manifests/1 -X PUT --data-binary @"$T/big-body")"
check_eq "PUT with a 200 KB body: OCI error" UNSUPPORTED "$(oci_error_code "$T/body")"
check "still answers GET /v2/ after the heads" alive

# --- malformed request lines, raw ---------------------------------------------------------------
RAW=(
	# WHAT                DATA (Python escapes)
	'garbage              GARBAGE\r\n\r\n'
	'extra-token          GET /v2/ HTTP/1.1 extra\r\nHost: a\r\n\r\n'
	'header-no-colon      GET /v2/ HTTP/1.1\r\nno colon here\r\n\r\n'
	'absolute-form        GET http://example.com/v2/ HTTP/1.1\r\nHost: a\r\n\r\n'
	'nul-in-target        GET /v2/\x00 HTTP/1.1\r\nHost: a\r\n\r\n'
	'negative-length      GET /v2/ HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n'
	'two-lengths          GET /v2/ HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'
	# RFC 9112: what a server must reject and http-parser lets through (shared/httpd_strict.c)
	'http-0.9             GET /v2/\r\n'
	'no-version           GET /v2/ FTP/1.1\r\nHost: a\r\n\r\n'
	'bare-lf              GET /v2/ HTTP/1.1\nHost: a\n\n'
	'bare-lf-in-head      GET /v2/ HTTP/1.1\r\nHost: a\nX: b\r\n\r\n'
	'obs-fold             GET /v2/ HTTP/1.1\r\nHost: a\r\nX-A: b\r\n  folded\r\n\r\n'
	'space-before-colon   GET /v2/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n'
	'tab-before-colon     GET /v2/ HTTP/1.1\r\nHost\t: a\r\n\r\n'
)
for row in "${RAW[@]}"; do
	read -r what data <<<"$row"
	codes=$(raw "$data")
	check_eq "raw $what: one 400 answer" 400 "$codes"
	check_eq "raw $what: OCI error UNSUPPORTED" UNSUPPORTED "$(oci_error_code "$T/body")"
	check_eq "raw $what: connection closed after it" 0 "$(cat "$T/raw.rc")"
done
check "still answers GET /v2/ after the raw garbage" alive
for v in 9.9 2.0 1.2 0.9; do
	check_eq "raw HTTP/$v request line: 505" 505 "$(raw "GET /v2/ HTTP/$v\r\nHost: a\r\n\r\n")"
	check_eq "raw HTTP/$v: connection closed after it" 0 "$(cat "$T/raw.rc")"
done
check_eq "HTTP/1.0 is answered" 200 "$(raw 'GET /v2/ HTTP/1.0\r\nHost: a\r\n\r\n' | sed 's/.* //')"
check_eq "empty lines before the request line are ignored" 200 \
	"$(raw '\r\nGET /v2/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')"
# A quote in the path cannot end the logged value and forge a field of its own.
raw 'GET /v2/x"outcome="forged HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' >/dev/null
check "a quote in a logged path is escaped" grep -qF 'path="/v2/x\"outcome=\"forged"' "$CACHE_LOG"
check "no log line reads as outcome=\"forged\"" bash -c "! grep -q ' outcome=\"forged' '$CACHE_LOG'"
check_eq "Expect: 100-continue gets 100 Continue, then the answer" "100 200" \
	"$(raw 'GET /v2/ HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}')"

# --- pipelining ------------------------------------------------------------------------------------
check_eq "two pipelined GET /v2/ in one write: two 200s" "200 200" \
	"$(raw 'GET /v2/ HTTP/1.1\r\nHost: a\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')"
check_eq "pipelined: the daemon closed after 'Connection: close'" 0 "$(cat "$T/raw.rc")"
check_eq "pipelined, a bad request in the middle: 200 400 200" "200 400 200" \
	"$(raw 'GET /v2/ HTTP/1.1\r\nHost: a\r\n\r\nGET /v2/Bad/manifests/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')"

# --- bad ranges on a stored blob -------------------------------------------------------------
layer=${FIX_OCI_LAYERS##* }
size=$(fixtures_blob_size "$layer")
bpath=/v2/$FIX_OCI_REPO/blobs/$layer
check_eq "range setup: the blob is pulled and stored" 200 "$(cache_curl "$bpath")"
RANGES=(
	# RANGE       STATUS  what the answer is
	"bytes=abc    416     unsatisfiable"
	"bytes=5-2    416     unsatisfiable"
	"bytes=--1    416     unsatisfiable"
	"bytes=0-1,3-4 200    whole"
	"items=0-1    200     whole"
)
for row in "${RANGES[@]}"; do
	read -r range status what <<<"$row"
	check_eq "Range: $range -> $status" "$status" \
		"$(curl -s -o "$T/body" -D "$T/hdr" -w '%{http_code}' -H "Range: $range" "$CACHE_URL$bpath")"
	case $what in
	unsatisfiable)
		check_eq "Range: $range: Content-Range: bytes */SIZE" "bytes */$size" "$(hdr Content-Range)"
		check_eq "Range: $range: OCI error" UNSUPPORTED "$(oci_error_code "$T/body")"
		;;
	whole)
		check_eq "Range: $range: the whole blob" "$layer" "sha256:$(sha "$T/body")"
		;;
	esac
done

# --- slowloris ------------------------------------------------------------------------------------
# Half a request head and then nothing; and one that dribbles a byte every 0.2 s (each byte must
# not restart the head timer). Both are dropped after header_timeout_s; others are served.
rm -f "$T/sl.ready" "$T/dr.ready"
python3 "$MS_ROOT/tests/lib/rawhttp.py" "$CACHE_PORT" 'GET /v2/ HTTP/1.1\r\nHost: a\r\n' \
	--ready "$T/sl.ready" --elapsed "$T/sl.elapsed" --timeout 15 >"$T/sl.out" &
sl=$!
python3 "$MS_ROOT/tests/lib/rawhttp.py" "$CACHE_PORT" 'GET /v2/ HTTP/1.1\r\nHost: a\r\nX-A: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n' \
	--dribble 0.2 --ready "$T/dr.ready" --elapsed "$T/dr.elapsed" --timeout 30 >"$T/dr.out" &
dr=$!
check "slowloris: both half requests are in" wait_for 5 test -e "$T/sl.ready" -a -e "$T/dr.ready"
check "slowloris: meanwhile GET /v2/ is served" alive
check_eq "slowloris: meanwhile a blob is served whole" "200 $layer" \
	"$(cache_curl "$bpath" --max-time 5) sha256:$(sha "$T/body")"
wait "$sl"
check_eq "slowloris: the silent one is disconnected by the daemon" 0 "$?"
check "slowloris: after header_timeout_s (took $(cat "$T/sl.elapsed") s)" \
	awk -v s="$(cat "$T/sl.elapsed")" -v t="$HEAD_TIMEOUT_S" 'BEGIN { exit !(s >= t - 0.1 && s < t + 2) }'
wait "$dr"
check_eq "slowloris: the dribbler is disconnected by the daemon" 0 "$?"
check "slowloris: the dribbler too, after header_timeout_s (took $(cat "$T/dr.elapsed") s)" \
	awk -v s="$(cat "$T/dr.elapsed")" -v t="$HEAD_TIMEOUT_S" 'BEGIN { exit !(s >= t - 0.1 && s < t + 2) }'

# --- clients that walk away mid-blob ----------------------------------------------------------
big=/v2/$FIX_BIG_REPO/blobs/$FIX_BIG_LAYER
mark=$(upstream_mark)
# While the cache is still pulling: one client reads 1 MiB and hangs up, another reads it all.
(curl -s --max-time 60 "$CACHE_URL$big" | head -c 1048576 >"$T/quitter") &
q1=$!
check "mid-pull quitter: the pull has begun" wait_for 10 test -s "$T/quitter"
curl -s -o "$T/big1" --max-time 60 -w '%{http_code}' "$CACHE_URL$big" >"$T/big1.code" &
b1=$!
wait "$q1"
check_eq "mid-pull quitter read 1 MiB and left" 1048576 "$(stat -c %s "$T/quitter")"
wait "$b1"
check_eq "mid-pull: the other client got 200" 200 "$(cat "$T/big1.code")"
check_eq "mid-pull: the other client got the true blob" "$FIX_BIG_LAYER" "sha256:$(sha "$T/big1")"
check_eq "mid-pull: the upstream served the big blob once" 1 "$(upstream_count_gets "$FIX_BIG_LAYER")"
# From the store (sendfile): the same.
(curl -s --max-time 60 "$CACHE_URL$big" | head -c 1048576 >"$T/quitter2") &
q2=$!
curl -s -o "$T/big2" --max-time 60 "$CACHE_URL$big" &
b2=$!
wait "$q2"
wait "$b2"
check_eq "stored: the other client got the true blob" "$FIX_BIG_LAYER" "sha256:$(sha "$T/big2")"
check_eq "stored: nothing more was asked upstream" "" \
	"$(upstream_requests_since "$mark" | grep -F "$FIX_BIG_LAYER" | sed 1d)"
cuts() { [ "$(grep -F "$big" "$CACHE_LOG" | grep -c 'event=http_request .*outcome=cut')" -ge 2 ]; }
check "the daemon logged both quitters' transfers as cut" wait_for 5 cuts

check "the daemon still answers GET /v2/ at the end" alive
cache_stop
check_eq "SIGTERM exits 0" 0 "$?"
check "no sanitizer report in the cache log" sanitizer_clean "$CACHE_LOG"
