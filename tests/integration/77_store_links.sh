#!/bin/bash
# The store is never followed out of itself (README "Reliability"): what sits at a store path and
# is not a regular file the store wrote -- a symbolic link, a FIFO, a directory -- is moved to
# ROOT/quarantine/ and fetched again, never followed, waited on or answered with a 500; a store
# directory that is a link refuses the start; export never writes through a planted FILE.tmp.
#   what is planted                      what must happen
#   blob path -> link to a secret file   the client gets the blob, not the secret; link quarantined
#   FIFO at a blob path                  the blob is served, and other requests after it
#   directory at a blob path             200 with the blob (was a 500 for ever)
#   blobs/sha256/<2 hex> -> elsewhere    the blob fetched and stored in the store; nothing read
#                                        or written through the link; the link quarantined
#   link at a manifest path              the manifest by digest answers right
#   FIFO at a blob path, then verify     verify ends, counts it bad and quarantines it
#   ROOT/tmp -> another directory        the daemon exits non-zero naming ROOT/tmp; nothing deleted
#   OUT.tmp -> a file, then export       export fails; the file is untouched
# shellcheck source-path=SCRIPTDIR/../lib
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/cache.sh"
. "$MS_ROOT/tests/lib/hostile.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"

MS=$MS_BUILD/microscale-registry
fixtures_upstream_start || exit 1
blob_path() { echo "$CACHE_ROOT/blobs/sha256/${1:7:2}/${1#sha256:}"; }
manifest_path() { echo "$CACHE_ROOT/manifests/sha256/${1:7:2}/${1#sha256:}"; }
# get_blob DIGEST: GET through the cache into $T/got (at most 20 s: a blocked loop fails it).
get_blob() { curl -s -m 20 -o "$T/got" -w '%{http_code}' "$CACHE_URL/v2/$FIX_OCI_REPO/blobs/$1"; }
got_is() { [ "sha256:$(sha256sum <"$T/got" | cut -c1-64)" = "$1" ]; }
quarantined() { compgen -G "$CACHE_ROOT/quarantine/${1#sha256:}.*" >/dev/null; }

cache_start --upstream "$UPSTREAM_URL" || exit 1
check "the image pulls" cache_copy "$FIX_OCI" "dir:$T/img"
read -r L1 L2 <<<"$FIX_OCI_LAYERS"

# A link to a secret in place of a blob.
echo "TOPSECRET" >"$T/secret"
ln -sf "$T/secret" "$(blob_path "$L1")"
check_eq "a blob replaced by a link: 200" 200 "$(get_blob "$L1")"
check "the client got the blob" got_is "$L1"
check "and not the secret" bash -c "! grep -q TOPSECRET '$T/got'"
check "the link was quarantined" quarantined "$L1"
check "a regular file is in place again" test -f "$(blob_path "$L1")" -a ! -L "$(blob_path "$L1")"
check_eq "the secret is untouched" TOPSECRET "$(cat "$T/secret")"
check "the quarantine was logged" grep -q "event=store_quarantined file=$(blob_path "$L1")" "$CACHE_LOG"

# A FIFO in place of a blob: the loop must not wait on it (the code before blocked in open(2),
# and every client with it).
rm -f "$(blob_path "$L2")" && mkfifo "$(blob_path "$L2")"
check_eq "a blob replaced by a FIFO: 200" 200 "$(get_blob "$L2")"
check_eq "then /v2/ answers" 200 "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$CACHE_URL/v2/")"
# A daemon stuck opening the FIFO is let go by a writer, so that the test ends.
[ -p "$(blob_path "$L2")" ] && timeout 5 bash -c "exec 3>'$(blob_path "$L2")'"
check "the client got the blob" got_is "$L2"
check "the FIFO was quarantined" quarantined "$L2"

# A directory in place of a blob (the config): fetched again, not a 500 for ever.
rm -f "$(blob_path "$FIX_OCI_CONFIG")" && mkdir "$(blob_path "$FIX_OCI_CONFIG")"
check_eq "a blob replaced by a directory: 200" 200 "$(get_blob "$FIX_OCI_CONFIG")"
check "the client got the blob" got_is "$FIX_OCI_CONFIG"
check "a regular file is in place again" test -f "$(blob_path "$FIX_OCI_CONFIG")"

# A link in place of a directory on the way (blobs/sha256/<2 hex> -> elsewhere): O_NOFOLLOW
# alone checks only the last component. The blob is neither read from where the link points
# nor written there.
dir=$(dirname "$(blob_path "$L1")")
mkdir -p "$T/elsewhere" && echo "TOPSECRET" >"$T/elsewhere/${L1#sha256:}"
rm -rf "$dir" && ln -s "$T/elsewhere" "$dir"
check_eq "a blob behind a linked directory: 200" 200 "$(get_blob "$L1")"
check "the client got the blob" got_is "$L1"
check "the directory link was quarantined" bash -c "compgen -G '$CACHE_ROOT/quarantine/${L1:7:2}.*' >/dev/null"
check "a real directory is in place again" test -d "$dir" -a ! -L "$dir"
check "the blob is stored there" test -f "$(blob_path "$L1")"
check_eq "nothing was written where the link pointed" "${L1#sha256:}" "$(ls "$T/elsewhere")"
check_eq "... and the file there is untouched" TOPSECRET "$(cat "$T/elsewhere/${L1#sha256:}")"

cache_stop
check_eq "cache exits 0 on SIGTERM" 0 "$?"

# A link in place of a manifest (at start: no memo holds it yet).
printf 'application/vnd.oci.image.manifest.v1+json\n{}' >"$T/fake"
ln -sf "$T/fake" "$(manifest_path "$FIX_OCI_DIGEST")"
cache_start --upstream "$UPSTREAM_URL" || exit 1
check_eq "a manifest replaced by a link: 200" 200 \
	"$(cache_curl "/v2/$FIX_OCI_REPO/manifests/$FIX_OCI_DIGEST" -H "Accept: $FIX_ACCEPT")"
check_eq "with the manifest's own bytes" "$FIX_OCI_DIGEST" "sha256:$(sha256sum <"$T/body" | cut -c1-64)"
check "the link was quarantined" quarantined "$FIX_OCI_DIGEST"
cache_stop

# verify with a FIFO in the store: it must end, and count it.
rm -f "$(blob_path "$L1")" && mkfifo "$(blob_path "$L1")"
timeout 30 "$MS" verify --root "$CACHE_ROOT" >"$T/verify.out" 2>"$T/verify.err"
check_eq "verify with a FIFO in the store exits 1 (not 124: it did not hang)" 1 "$?"
check "verify counts it bad" grep -q ", 1 bad, 0 unreadable" "$T/verify.out"
check "verify quarantined it" bash -c "! test -p '$(blob_path "$L1")'"

# ROOT/tmp a link to a directory of someone else's files: start-up would clear it.
mkdir -p "$T/victim" && echo keep >"$T/victim/keep"
rm -rf "$CACHE_ROOT/tmp" && ln -s "$T/victim" "$CACHE_ROOT/tmp"
timeout 20 "$MS" -d --listen "127.0.0.1:$(free_port)" --root "$CACHE_ROOT" \
	--upstream "$UPSTREAM_URL" >"$T/refuse.log" 2>&1
rc=$?
check "a symlinked ROOT/tmp refuses the start (exit $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
check "the log names ROOT/tmp and why" grep -q "tmp is a symbolic link" "$T/refuse.log"
check_eq "the link's target keeps its files" keep "$(cat "$T/victim/keep" 2>/dev/null)"
"$MS" verify --root "$CACHE_ROOT" >"$T/verify2.out" 2>&1
check_eq "the offline tools refuse it too" 1 "$?"
check "saying why" grep -q "tmp is a symbolic link" "$T/verify2.out"
rm -f "$CACHE_ROOT/tmp" && mkdir "$CACHE_ROOT/tmp"

# export through a planted OUT.tmp link, of an image whole in the store.
for b in "$L1" "$L2" "$FIX_OCI_CONFIG"; do
	[ -f "$(blob_path "$b")" ] || { rm -rf "$(blob_path "$b")" && cp "$T/img/${b#sha256:}" "$(blob_path "$b")"; }
done
echo precious >"$T/precious"
ln -s "$T/precious" "$T/out.tar.tmp"
"$MS" export --root "$CACHE_ROOT" -o "$T/out.tar" "$FIX_OCI" >"$T/export.out" 2>&1
check_eq "export with a planted OUT.tmp fails" 1 "$?"
check_eq "the link's target is untouched" precious "$(head -c 64 "$T/precious" | tr -cd '[:print:]')"
check "no archive was written" test ! -e "$T/out.tar"
rm -f "$T/out.tar.tmp"
check "export without it works" "$MS" export --root "$CACHE_ROOT" -o "$T/out.tar" "$FIX_OCI"
check "no sanitizer report" sanitizer_clean "$T"/cache.*.log "$T/refuse.log" "$T/export.out"
