# The bench's image, built offline once per size and per version of this file and of
# tests/lib/fixtures.sh (whose layer and image builders it uses), kept in $BENCH_IMAGES: a
# docker-registry storage directory and images.env. Sourced after tests/lib/common.sh,
# upstream.sh and fixtures.sh; BENCH_BIG_MIB must be set.
#   bench/big:1   one layer of BENCH_BIG_MIB MiB of incompressible bytes (gzip -1: -6 would only
#                 spend time failing to shrink them) and its config
# shellcheck shell=bash

BENCH_IMAGES=/tmp/ms-bench-images-$(cat "${BASH_SOURCE[0]}" "$MS_ROOT/tests/lib/fixtures.sh" |
	sha256sum | cut -c1-12)-$BENCH_BIG_MIB

# bench_images_ready: builds $BENCH_IMAGES unless it is there; sources its images.env:
# BENCH_BIG (reference), BENCH_BIG_REPO, BENCH_BIG_DIGEST (manifest), BENCH_BIG_LAYER (digest),
# BENCH_BIG_LAYER_SIZE and BENCH_BIG_BYTES (config + layer, what a pull moves).
bench_images_ready() {
	fixtures_image_set "$BENCH_IMAGES" _bench_build
}

# bench_upstream_start DIR: an upstream (upstream_start) serving the bench image.
bench_upstream_start() {
	fixtures_image_set_serve "$BENCH_IMAGES" "$1"
}

_bench_build() {
	local l=$1/oci/big a m
	_fix_layout_init "$l" &&
		a=$(_fix_layer "$l" "$1/work" bench-big $((BENCH_BIG_MIB * 1048576 + 1024)) amd64 -1) &&
		m=$(_fix_image "$l" amd64 "$a") && _fix_layout_ref "$l" "$FIX_MT_OCI_MANIFEST" "$m" &&
		skopeo copy --quiet --dest-tls-verify=false "oci:$l:latest" \
			"docker://127.0.0.1:$UPSTREAM_PORT/bench/big:1" &&
		_bench_env "$1" >"$1/images.env"
}

# _bench_env TMP: images.env from what the upstream serves; the manifest goes through a file,
# since $(…) would drop a trailing newline and so change the digest.
_bench_env() {
	local f=$1/work/manifest
	curl -sf --max-time 10 -H "Accept: $FIX_ACCEPT" -o "$f" \
		"$UPSTREAM_URL/v2/bench/big/manifests/1" || return 1
	echo "BENCH_BIG=bench/big:1"
	echo "BENCH_BIG_REPO=bench/big"
	echo "BENCH_BIG_DIGEST=sha256:$(sha256sum "$f" | cut -d' ' -f1)"
	jq -r '"BENCH_BIG_LAYER=\(.layers[0].digest)",
		"BENCH_BIG_LAYER_SIZE=\(.layers[0].size)",
		"BENCH_BIG_BYTES=\(.config.size + .layers[0].size)"' "$f"
}
