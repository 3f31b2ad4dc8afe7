# Real clients through the cache (skopeo): every fixture image, digests equal to the upstream's,
# warm pulls served without the upstream, the tag index and stale-if-error.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"

fixtures_upstream_start || exit 1
# tag_ttl_s 0: every tag request revalidates upstream, so stale-if-error is exercised below.
echo '{"tag_ttl_s": 0}' >"$T/cache.json"
cache_start -c "$T/cache.json" --upstream "$UPSTREAM_URL" || exit 1

# manifest_digest REGISTRY IMAGE: the digest skopeo computes from the raw manifest.
manifest_digest() {
	skopeo inspect --raw --tls-verify=false "docker://$1/$2" | sha256sum | sed 's/^/sha256:/; s/ .*//'
}

for p in $FIX_IMAGES; do
	ref=${p}
	image=${!ref}
	want=$(eval echo "\$${p}_DIGEST")
	check_eq "$image: manifest digest through the cache" "$want" "$(manifest_digest "$CACHE" "$image")"
	rm -rf "$T/out"
	check "$image: skopeo copy --all through the cache" cache_copy "$image" "dir:$T/out" --all
	if [ -d "$T/out" ]; then
		ok=1
		for f in "$T"/out/*; do
			case $(basename "$f") in manifest.json | version | *.manifest.json) continue ;; esac
			[ "sha256:$(sha256sum <"$f" | cut -d' ' -f1)" = "sha256:$(basename "$f")" ] || ok=0
		done
		check_eq "$image: every blob copied matches its digest" 1 "$ok"
	fi
done

# A second copy is served from the store: the upstream sees no blob GET, and the tag is
# revalidated with a HEAD, not fetched again.
upstream_sync
mark=$(upstream_mark)
rm -rf "$T/out"
check "warm copy of $FIX_OCI" cache_copy "$FIX_OCI" "dir:$T/out"
check_eq "warm copy fetched no blob upstream" "" "$(upstream_requests_since "$mark" | grep blobs)"
check_eq "warm copy revalidated the tag with HEAD only" "HEAD" \
	"$(upstream_requests_since "$mark" | grep "manifests/$FIX_OCI_TAG " | cut -d' ' -f1 | sort -u | tr '\n' ' ' | sed 's/ $//')"

# By digest, the store answers without the upstream.
check_eq "manifest by digest" "200" "$(cache_curl "/v2/$FIX_OCI_REPO/manifests/$FIX_OCI_DIGEST" -H "Accept: $FIX_ACCEPT")"
check_eq "HEAD manifest carries Docker-Content-Digest" "$FIX_OCI_DIGEST" \
	"$(curl -sI -H "Accept: $FIX_ACCEPT" "$CACHE_URL/v2/$FIX_OCI_REPO/manifests/$FIX_OCI_TAG" | tr -d '\r' | sed -n 's/^Docker-Content-Digest: //p')"
check_eq "HEAD manifest Content-Type is the stored media type" "$FIX_OCI_MEDIATYPE" \
	"$(curl -sI -H "Accept: $FIX_ACCEPT" "$CACHE_URL/v2/$FIX_OCI_REPO/manifests/$FIX_OCI_TAG" | tr -d '\r' | sed -n 's/^Content-Type: //p')"
check_eq "tags/list passes through" '{"name":"library/oci-small","tags":["1"]}' \
	"$(curl -s "$CACHE_URL/v2/$FIX_OCI_REPO/tags/list")"

# Ranges on a stored blob.
layer=${FIX_OCI_LAYERS%% *}
size=$(fixtures_blob_size "$layer")
check_eq "Range 0-9 -> 206" 206 "$(cache_curl "/v2/$FIX_OCI_REPO/blobs/$layer" -H 'Range: bytes=0-9')"
check_eq "Range 0-9 -> 10 bytes" 10 "$(stat -c %s "$T/body")"
check_eq "Range suffix -5 bytes are the blob's last 5" "$(tail -c 5 "$(fixtures_blob_path "$layer")" | od -An -tx1)" \
	"$(curl -s -H 'Range: bytes=-5' "$CACHE_URL/v2/$FIX_OCI_REPO/blobs/$layer" | od -An -tx1)"
check_eq "Range past the end -> 416" 416 "$(cache_curl "/v2/$FIX_OCI_REPO/blobs/$layer" -H "Range: bytes=$size-")"
check_eq "HEAD blob -> Content-Length" "$size" \
	"$(curl -sI "$CACHE_URL/v2/$FIX_OCI_REPO/blobs/$layer" | tr -d '\r' | sed -n 's/^Content-Length: //p')"

# Upstream gone: everything pulled before still pulls, tags too; an unknown image fails fast.
upstream_stop
rm -rf "$T/out"
check "upstream down: cached tag still copies" cache_copy "$FIX_DOCKER" "dir:$T/out"
rm -rf "$T/out"
check "upstream down: multi-arch list still copies" cache_copy "$FIX_LIST" "dir:$T/out" --all
check_eq "upstream down: tags/list from the kept answer" '{"name":"library/oci-small","tags":["1"]}' \
	"$(curl -s "$CACHE_URL/v2/$FIX_OCI_REPO/tags/list")"
start=$(date +%s%N)
code=$(cache_curl "/v2/library/never-pulled/manifests/1")
check_eq "upstream down: uncached manifest -> 503" 503 "$code"
check "upstream down: error names the cause" grep -q 'upstream unreachable' "$T/body"
check "upstream down: uncached fails fast (< 5 s)" test $((($(date +%s%N) - start) / 1000000)) -lt 5000
check "cache logged serving a stale tag" grep -q 'event=manifest_stale' "$CACHE_LOG"
cache_stop
check_eq "SIGTERM exits 0" 0 "$?"
check_eq "no temp files left" "" "$(ls "$CACHE_ROOT/tmp")"
