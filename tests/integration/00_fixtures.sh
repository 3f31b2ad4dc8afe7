#!/bin/bash
# The test fixtures and the upstream helpers themselves: every other integration test trusts that
# the upstream serves the images described in $FIXTURES/images.env and that upstream_count_gets
# counts what it served. Checked here with skopeo, an independent client.
# shellcheck source-path=SCRIPTDIR/../lib
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"

fixtures_ready || { echo "setup: fixtures_ready failed" >&2; exit 1; }
start=$SECONDS
fixtures_upstream_start "$T/upstream" || { echo "setup: fixtures_upstream_start failed" >&2; exit 1; }
echo "# fixtures in $FIXTURES, upstream $UPSTREAM_URL ready in $((SECONDS - start))s"
REG=127.0.0.1:$UPSTREAM_PORT

# raw REF: the manifest as the upstream serves it, into $T/raw.json.
raw() { skopeo inspect --raw --tls-verify=false "docker://$REG/$1" >"$T/raw.json"; }
sha_of() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
# platform_config REF ARCH: the config of REF's image for linux/ARCH.
platform_arch() {
	skopeo inspect --config --raw --tls-verify=false --override-os linux --override-arch "$2" \
		"docker://$REG/$1" | jq -r .architecture
}

# --- every image: served with the intended media type and the recorded digest ---------------
declare -A want_mt=(
	[FIX_OCI]=$FIX_MT_OCI_MANIFEST [FIX_DOCKER]=$FIX_MT_DOCKER_MANIFEST
	[FIX_INDEX]=$FIX_MT_OCI_INDEX [FIX_LIST]=$FIX_MT_DOCKER_LIST
	[FIX_SHARED_A]=$FIX_MT_OCI_MANIFEST [FIX_SHARED_B]=$FIX_MT_OCI_MANIFEST
	[FIX_BIG]=$FIX_MT_OCI_MANIFEST
)
# shellcheck disable=SC2153 # FIX_IMAGES comes from images.env
for p in $FIX_IMAGES; do
	ref=${!p} digest_var=${p}_DIGEST
	if ! raw "$ref"; then
		not_ok "$p ($ref): skopeo inspect --raw failed"
		continue
	fi
	check_eq "$p ($ref) media type" "${want_mt[$p]}" "$(jq -r .mediaType "$T/raw.json")"
	check_eq "$p ($ref) digest matches images.env" "${!digest_var}" "$(sha_of "$T/raw.json")"
done

# --- multi-arch: both platforms, each image of the right kind and architecture --------------
for p in FIX_INDEX FIX_LIST; do
	ref=${!p}
	raw "$ref" || { not_ok "$p: inspect failed"; continue; }
	check_eq "$p lists linux/amd64 and linux/arm64" "linux/amd64 linux/arm64" \
		"$(jq -r '[.manifests[].platform | "\(.os)/\(.architecture)"] | sort | join(" ")' \
			"$T/raw.json")"
	want=$FIX_MT_OCI_MANIFEST
	[ "$p" = FIX_LIST ] && want=$FIX_MT_DOCKER_MANIFEST
	check_eq "$p children are $want" "$want" \
		"$(jq -r '[.manifests[].mediaType] | unique | join(" ")' "$T/raw.json")"
	for arch in amd64 arm64; do
		check_eq "$p $arch image config says $arch" "$arch" "$(platform_arch "$ref" "$arch")"
	done
done

# --- the big layer and the shared layer ------------------------------------------------------
raw "$FIX_BIG" && size=$(jq -r '.layers[0].size' "$T/raw.json") || size=0
check "big layer is >= 100 MiB ($size bytes)" test "$size" -ge $((100 * 1024 * 1024))
check_eq "FIX_BIG_LAYER_SIZE matches the manifest" "$size" "$FIX_BIG_LAYER_SIZE"
for p in FIX_SHARED_A FIX_SHARED_B; do
	raw "${!p}" && layers=$(jq -r '.layers[].digest' "$T/raw.json") || layers=
	check "$p contains FIX_SHARED_LAYER" grep -qx "$FIX_SHARED_LAYER" <<<"$layers"
done
check "the shared images differ otherwise" test "$FIX_SHARED_A_LAYERS" != "$FIX_SHARED_B_LAYERS"

# --- a pull: each blob served exactly once, and layers that unpack into their diff_ids --------
mark=$(upstream_mark) || { echo "setup: upstream_mark failed" >&2; exit 1; }
check_eq "no request since the mark" "" "$(upstream_requests_since "$mark")"
check "skopeo copy $FIX_OCI to a dir" \
	skopeo copy --quiet --src-tls-verify=false "docker://$REG/$FIX_OCI" "dir:$T/oci-small"
for d in $FIX_OCI_CONFIG $FIX_OCI_LAYERS; do
	check_eq "upstream served $d once" 1 "$(upstream_count_gets "/blobs/$d")"
	check_eq "upstream served all $(fixtures_blob_size "$d") bytes of $d" \
		"$(fixtures_blob_size "$d")" "$(upstream_bytes_served "/blobs/$d")"
done
check_eq "skopeo made no HEAD of a blob" 0 "$(upstream_count_heads "/v2/$FIX_OCI_REPO/blobs/")"
check "requests since the mark include the manifest GET" \
	grep -q "^GET /v2/$FIX_OCI_REPO/manifests/$FIX_OCI_TAG 200 " \
	<<<"$(upstream_requests_since "$mark")"
cfg=$T/oci-small/${FIX_OCI_CONFIG#sha256:}
read -r first _ <<<"$FIX_OCI_LAYERS"
diffids=
for d in $FIX_OCI_LAYERS; do
	diffids+="sha256:$(gzip -dc "$T/oci-small/${d#sha256:}" | sha256sum | cut -d' ' -f1) "
done
check_eq "config diff_ids are the uncompressed layers' digests" "${diffids% }" \
	"$(jq -r '.rootfs.diff_ids | join(" ")' "$cfg" 2>/dev/null)"
check_eq "config is linux/amd64" "linux/amd64" "$(jq -r '"\(.os)/\(.architecture)"' "$cfg" 2>/dev/null)"
check "layer holds /hello" \
	grep -qx hello <<<"$(tar -tzf "$T/oci-small/${first#sha256:}")"

# --- the upstream helpers count HEADs apart, and show partial transfers as such -------------
blob=/v2/$FIX_BIG_REPO/blobs/$FIX_BIG_LAYER
curl -sf -I -o /dev/null "$UPSTREAM_URL$blob"
check_eq "one HEAD of the big blob counted" 1 "$(upstream_count_heads "$FIX_BIG_LAYER")"
check_eq "a HEAD is not a GET" 0 "$(upstream_count_gets "$FIX_BIG_LAYER")"
curl -s "$UPSTREAM_URL$blob" | head -c 65536 >/dev/null
served=$(upstream_bytes_served "$FIX_BIG_LAYER")
check_eq "an aborted GET is still one GET" 1 "$(upstream_count_gets "$FIX_BIG_LAYER")"
check "an aborted GET shows fewer bytes than the blob ($served)" \
	test "$served" -lt "$FIX_BIG_LAYER_SIZE"

# --- the cache: a second fixtures_ready reuses it --------------------------------------------
before=$(stat -c %Y "$FIXTURES/images.env")
fixtures_ready
check_eq "fixtures_ready reuses the cache" "$before" "$(stat -c %Y "$FIXTURES/images.env")"

upstream_stop
check "upstream stopped" test ! -e "/proc/$UPSTREAM_PID"
