#!/bin/bash
# Self-test of tests/lib/hostile.py, the misbehaving upstream the other scenarios rely on:
# each mode, driven with curl, must misbehave exactly as documented.
# shellcheck source-path=SCRIPTDIR/../lib
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MS_ROOT/tests/lib/common.sh"

B=$T/blobs
mkdir -p "$B/tags"
# A 128 KiB blob: big enough that "half the bytes" and ~64 KiB/s are measurable.
head -c 131072 /dev/urandom >"$T/blob"
H=$(sha256sum <"$T/blob" | cut -c1-64)
cp "$T/blob" "$B/$H"
printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}' >"$T/man"
M=$(sha256sum <"$T/man" | cut -c1-64)
cp "$T/man" "$B/$M"
echo application/vnd.docker.distribution.manifest.v2+json >"$B/$M.type"
echo "sha256:$M" >"$B/tags/1"

# start_hostile NAME [ARGS…]: sets PORT and HPID; the port file appears once it listens.
start_hostile() {
	local name=$1 i
	shift
	spawn "$T/$name.out" python3 "$MS_ROOT/tests/lib/hostile.py" --dir "$B" \
		--port-file "$T/$name.port" --log "$T/$name.log" "$@"
	HPID=$SPAWNED
	for ((i = 0; i < 200; i++)); do
		[ -s "$T/$name.port" ] && break
		kill -0 "$HPID" 2>/dev/null || break
		sleep 0.05
	done
	if ! PORT=$(cat "$T/$name.port" 2>/dev/null) || ! wait_port "$PORT" "$HPID" 5; then
		not_ok "hostile.py $name started"
		cat "$T/$name.out"
		exit 1
	fi
}
start_hostile h
P=$PORT HP=$HPID
blob() { echo "http://127.0.0.1:$P/v2/$1/x/blobs/sha256:${2:-$H}"; }
sha() { sha256sum <"$1" | cut -c1-64; }
# fetch URL [CURL ARGS…]: body to $T/out, headers to $T/hdr; prints "CODE SIZE RC".
fetch() {
	local url=$1 rc
	shift
	out=$(curl -s -o "$T/out" -D "$T/hdr" -w '%{http_code} %{size_download}' "$@" "$url")
	rc=$?
	echo "$out $rc"
}
hdr() { grep -i "^$1:" "$T/hdr" | head -1 | cut -d' ' -f2- | tr -d '\r'; }

# /v2/ ping
check_eq "ping answers 200" "200 2 0" "$(fetch "http://127.0.0.1:$P/v2/")"
check_eq "ping names the API version" "registry/2.0" "$(hdr Docker-Distribution-API-Version)"

# ok/
check_eq "ok/ serves the whole blob" "200 131072 0" "$(fetch "$(blob ok/a)")"
check_eq "ok/ bytes hash to the digest" "$H" "$(sha "$T/out")"
check_eq "ok/ sends Docker-Content-Digest" "sha256:$H" "$(hdr Docker-Content-Digest)"
check_eq "HEAD has no body" "200 0 0" "$(fetch "$(blob ok/a)" -I)"
check_eq "HEAD gives Content-Length" "131072" "$(hdr Content-Length)"
check_eq "unknown blob is 404" "404" "$(fetch "$(blob ok/a 0000000000000000000000000000000000000000000000000000000000000000)" | cut -d' ' -f1)"
check "unknown blob says BLOB_UNKNOWN" grep -q '"BLOB_UNKNOWN"' "$T/out"

# wrong/, truncate/, stall/, slow/
check_eq "wrong/ keeps the length" "200 131072 0" "$(fetch "$(blob wrong/a)")"
check "wrong/ bytes do not match the digest" test "$(sha "$T/out")" != "$H"
check_eq "wrong/ differs in exactly one byte" "1" "$(cmp -l "$T/out" "$T/blob" | wc -l)"
check_eq "truncate/ stops at half: curl error 18" "200 65536 18" "$(fetch "$(blob truncate/a)")"
check_eq "stall/ sends half, then nothing: curl times out (28)" "200 65536 28" \
	"$(fetch "$(blob stall/a)" --max-time 2)"
start=$(date +%s%N)
check_eq "slow/ serves the whole blob" "200 131072 0" "$(fetch "$(blob slow/a)")"
ms=$((($(date +%s%N) - start) / 1000000))
check "slow/ takes about 2 s for 128 KiB (took ${ms} ms)" test "$ms" -ge 1500 -a "$ms" -lt 6000
check_eq "slow/ bytes are true" "$H" "$(sha "$T/out")"

# err429/, err503/, always503/
check_eq "err429/ first request is 429" "429" "$(fetch "$(blob err429/a)" | cut -d' ' -f1)"
check_eq "err429/ says Retry-After: 1" "1" "$(hdr Retry-After)"
check "err429/ body is TOOMANYREQUESTS" grep -q '"code": *"TOOMANYREQUESTS"' "$T/out"
check_eq "err429/ second request is ok" "200 131072 0" "$(fetch "$(blob err429/a)")"
check_eq "err429/ counts per path" "429" "$(fetch "$(blob err429/b)" | cut -d' ' -f1)"
codes=$(for i in 1 2 3; do fetch "$(blob err503/a)" | cut -d' ' -f1; done | tr '\n' ' ')
check_eq "err503/ fails twice, then serves" "503 503 200 " "$codes"
codes=$(for i in 1 2 3; do fetch "$(blob always503/a)" | cut -d' ' -f1; done | tr '\n' ' ')
check_eq "always503/ always fails" "503 503 503 " "$codes"

# auth/: challenge, token, retry with the token
check_eq "auth/ without a token is 401" "401" "$(fetch "$(blob auth/a)" | cut -d' ' -f1)"
check_eq "auth/ challenge names realm, service, scope" \
	"Bearer realm=\"http://127.0.0.1:$P/token\",service=\"hostile\",scope=\"repository:auth/a/x:pull\"" \
	"$(hdr WWW-Authenticate)"
check_eq "token endpoint answers" "200" \
	"$(fetch "http://127.0.0.1:$P/token?service=hostile&scope=repository:auth/a:pull" | cut -d' ' -f1)"
tok=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' <"$T/out")
check_eq "token is good-token" "good-token" "$tok"
check_eq "auth/ with the token serves" "200 131072 0" "$(fetch "$(blob auth/a)" -H "Authorization: Bearer $tok")"
check_eq "auth/ with a bad token is 401" "401" \
	"$(fetch "$(blob auth/a)" -H "Authorization: Bearer bad" | cut -d' ' -f1)"

# redirect/: 307 to localhost (another host name); Authorization must not follow it
check_eq "redirect/ answers 307" "307" \
	"$(fetch "$(blob redirect/a)" -H "Authorization: Bearer good-token" | cut -d' ' -f1)"
check_eq "redirect/ points at localhost/storage" "http://localhost:$P/storage/$H" "$(hdr Location)"
check_eq "redirect/ followed gives the true bytes" "200 131072 0" \
	"$(fetch "$(blob redirect/a)" -L -H "Authorization: Bearer good-token")"
check_eq "a careful client sends no Authorization to /storage" "storage auth=none" \
	"$(grep "^GET /storage/$H " "$T/h.log" | tail -1 | cut -d' ' -f3-)"
fetch "$(blob redirect/a)" -L --location-trusted -H "Authorization: Bearer good-token" >/dev/null
check_eq "a leaking client is seen at /storage" "storage auth=bearer" \
	"$(grep "^GET /storage/$H " "$T/h.log" | tail -1 | cut -d' ' -f3-)"

# manifests, by digest and by tag
man() { echo "http://127.0.0.1:$P/v2/$1/x/manifests/$2"; }
check_eq "manifest by digest" "200 $(stat -c%s "$T/man") 0" "$(fetch "$(man ok/a "sha256:$M")")"
check_eq "manifest Content-Type from the .type sidecar" \
	"application/vnd.docker.distribution.manifest.v2+json" "$(hdr Content-Type)"
check_eq "manifest by tag" "$M" "$(fetch "$(man ok/a 1)" >/dev/null && sha "$T/out")"
fetch "$(man wrong/a 1)" >/dev/null
check "wrong/ manifest is corrupted" test "$(sha "$T/out")" != "$M"
check_eq "unknown manifest is 404" "404" "$(fetch "$(man ok/a nosuchtag)" | cut -d' ' -f1)"
check "unknown manifest says MANIFEST_UNKNOWN" grep -q '"MANIFEST_UNKNOWN"' "$T/out"
fetch "$(man ok/a "sha256:$H")" >/dev/null
check_eq "manifest without a sidecar is OCI" "application/vnd.oci.image.manifest.v1+json" "$(hdr Content-Type)"

# the request log
check "log has one line per request: method, path, mode" \
	grep -qx "GET /v2/wrong/a/x/blobs/sha256:$H wrong auth=none" "$T/h.log"

# --basic: the token endpoint itself needs Basic credentials
start_hostile basic --basic user:pass
check_eq "--basic: token without credentials is 401" "401" \
	"$(fetch "http://127.0.0.1:$PORT/token?service=hostile" | cut -d' ' -f1)"
check_eq "--basic: token with wrong credentials is 401" "401" \
	"$(fetch "http://127.0.0.1:$PORT/token?service=hostile" -u user:nope | cut -d' ' -f1)"
check_eq "--basic: token with credentials" "200" \
	"$(fetch "http://127.0.0.1:$PORT/token?service=hostile" -u user:pass | cut -d' ' -f1)"

# SIGTERM ends it promptly even while a response is stalled
curl -s -o /dev/null --max-time 30 "$(blob stall/b)" &
cpid=$!
for ((i = 0; i < 100; i++)); do
	grep -q "^GET /v2/stall/b/" "$T/h.log" && break
	sleep 0.05
done
kill -TERM "$HP"
for ((i = 0; i < 60; i++)); do
	kill -0 "$HP" 2>/dev/null || break
	sleep 0.05
done
check "SIGTERM during a stall exits within 3 s" test "$i" -lt 60
wait "$HP"
check_eq "exit status after SIGTERM is 0" "0" "$?"
wait "$cpid"
check_eq "the stalled client sees the connection end (curl 18)" "18" "$?"
