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
	[ -f "$BENCH_IMAGES/images.env" ] || _bench_build || return 1
	# shellcheck source=/dev/null
	. "$BENCH_IMAGES/images.env"
}

# bench_upstream_start DIR: an upstream (upstream_start) serving the bench image. Hard links, not
# a copy: a registry that is only pulled from never rewrites a file.
bench_upstream_start() {
	mkdir -p "$1" && cp -al "$BENCH_IMAGES/storage" "$1/storage" && upstream_start "$1"
}

# Builds in $BENCH_IMAGES.build.<pid>, renamed into place only when complete.
_bench_build() {
	local tmp=$BENCH_IMAGES.build.$$ l a m d
	# shellcheck disable=SC2034 # the build's own upstream leaves the caller's alone
	local UPSTREAM_PORT UPSTREAM_URL UPSTREAM_PID UPSTREAM_LOG
	echo "bench: building bench/big:1 ($BENCH_BIG_MIB MiB layer) in $BENCH_IMAGES (once)" >&2
	for d in "$BENCH_IMAGES".build.*; do # leftovers of builds that were killed
		[ -d "$d" ] && ! kill -0 "${d##*.}" 2>/dev/null && rm -rf "$d"
	done
	l=$tmp/oci/big
	rm -rf "$tmp" && mkdir -p "$tmp/work" && _fix_layout_init "$l" || return 1
	a=$(_fix_layer "$l" "$tmp/work" bench-big $((BENCH_BIG_MIB * 1048576 + 1024)) amd64 -1) &&
		m=$(_fix_image "$l" amd64 "$a") && _fix_layout_ref "$l" "$FIX_MT_OCI_MANIFEST" "$m" &&
		upstream_start "$tmp" &&
		skopeo copy --quiet --dest-tls-verify=false "oci:$l:latest" \
			"docker://127.0.0.1:$UPSTREAM_PORT/bench/big:1" &&
		_bench_env >"$tmp/images.env"
	local rc=$?
	upstream_stop
	if [ $rc -ne 0 ]; then
		echo "bench: building the image failed; kept in $tmp" >&2
		return 1
	fi
	rm -rf "$tmp/work" "$tmp/oci" "$tmp/config.yml"
	mv -T "$tmp" "$BENCH_IMAGES" 2>/dev/null || rm -rf "$tmp" # a concurrent build won
}

# images.env from what the upstream serves; the manifest goes through a file, since $(…) would
# drop a trailing newline and so change the digest.
_bench_env() {
	local f=$BENCH_IMAGES.manifest.$$
	curl -sf --max-time 10 -H "Accept: $FIX_ACCEPT" -o "$f" \
		"$UPSTREAM_URL/v2/bench/big/manifests/1" || return 1
	echo "BENCH_BIG=bench/big:1"
	echo "BENCH_BIG_REPO=bench/big"
	echo "BENCH_BIG_DIGEST=sha256:$(sha256sum "$f" | cut -d' ' -f1)"
	jq -r '"BENCH_BIG_LAYER=\(.layers[0].digest)",
		"BENCH_BIG_LAYER_SIZE=\(.layers[0].size)",
		"BENCH_BIG_BYTES=\(.config.size + .layers[0].size)"' "$f"
	local rc=$?
	rm -f "$f"
	return $rc
}
