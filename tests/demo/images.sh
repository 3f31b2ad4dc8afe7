# The demo's images, built offline once per version of this file and of tests/lib/fixtures.sh
# (whose layer and image builders they use) and kept in $DEMO_IMAGES: a docker-registry storage
# directory and images.env. Sourced after tests/lib/common.sh, upstream.sh and fixtures.sh.
#   library/demo-web:1    priority 1 service, small (on images/demo.list)
#   library/demo-batch:1  priority 2 batch, small   (on images/demo.list)
#   library/demo-big:1    one incompressible layer of 100 MiB, NOT on the list
# All three really run (the cluster's agents run them in Docker): a first layer with the static
# busybox (the same layer in all three), then a text layer and a data layer; the Cmd serves the
# image's files over HTTP on $PORT0 (Marathon sets it; 8080 without it) with busybox's httpd,
# and exits on SIGTERM.
# shellcheck shell=bash

DEMO_IMAGES=${MS_DEMO_IMAGES:-/tmp/ms-demo-images-$(cat "${BASH_SOURCE[0]}" \
	"$MS_ROOT/tests/lib/fixtures.sh" | sha256sum | cut -c1-12)}

# demo_images_ready: builds $DEMO_IMAGES unless it is there; sources its images.env
# (DEMO_WEB, DEMO_BATCH, DEMO_BIG: references; DEMO_*_BYTES: compressed sizes).
demo_images_ready() {
	fixtures_image_set "$DEMO_IMAGES" _demo_build
}

# demo_upstream_start DIR: an upstream (upstream_start) serving the demo images.
demo_upstream_start() {
	fixtures_image_set_serve "$DEMO_IMAGES" "$1"
}

_demo_build() {
	_demo_layouts "$1" && _demo_push "$1"
}

# One OCI layout per image, under $1/oci/<name>. Each: the busybox layer, a text layer and a data
# layer; the big one's data: 100 MiB + 1 KiB of AES-CTR bytes (incompressible, the same on every
# build), gzip -1 since -6 would only spend time failing to shrink them.
_demo_layouts() {
	_demo_image "$1" demo-web 262144 -6 &&
		_demo_image "$1" demo-batch 524288 -6 &&
		_demo_image "$1" demo-big $((100 * 1024 * 1024 + 1024)) -1
}

# What every demo image runs: busybox's httpd in the foreground on $PORT0, serving / (so
# GET /hello answers the image's greeting). The shell stays process 1 to exit on SIGTERM, as an
# app should: a process 1 without a handler ignores it, and every `docker stop` (a task's kill)
# would wait its 10 s for SIGKILL. When process 1 exits, the kernel ends the httpd with it.
# shellcheck disable=SC2016 # ${PORT0} is for the container's shell, not this one
DEMO_CMD='["/bin/busybox","sh","-c","trap \"exit 0\" TERM; /bin/busybox httpd -f -p ${PORT0:-8080} -h / & wait"]'

# _demo_image BASE NAME DATA_BYTES GZIP_LEVEL
_demo_image() {
	local l=$1/oci/$2 bb a b m
	_fix_layout_init "$l" || return 1
	bb=$(_fix_layer_busybox "$l" "$1/work") || return 1
	a=$(_fix_layer "$l" "$1/work" "$2" "" amd64) || return 1
	b=$(_fix_layer "$l" "$1/work" "$2-data" "$3" amd64 "$4") || return 1
	m=$(_fix_image_cmd "$l" amd64 "$DEMO_CMD" "$bb" "$a" "$b") || return 1
	_fix_layout_ref "$l" "$FIX_MT_OCI_MANIFEST" "$m"
}

# Pushes every layout as library/<name>:1 and writes images.env from what the upstream serves.
_demo_push() {
	local b=$1 name var bytes
	for name in demo-web demo-batch demo-big; do
		skopeo copy --quiet --dest-tls-verify=false "oci:$b/oci/$name:latest" \
			"docker://127.0.0.1:$UPSTREAM_PORT/library/$name:1" ||
			{ echo "demo: pushing $name failed" >&2; return 1; }
		bytes=$(_demo_image_bytes "$name") || return 1
		var=$(tr 'a-z-' 'A-Z_' <<<"$name")
		printf '%s=library/%s:1\n%s_BYTES=%s\n' "$var" "$name" "$var" "$bytes"
	done >"$b/images.env"
}

# _demo_image_bytes NAME: the sum of the config's and layers' sizes, as the upstream lists them.
_demo_image_bytes() {
	curl -sf --max-time 10 -H "Accept: $FIX_ACCEPT" \
		"$UPSTREAM_URL/v2/library/$1/manifests/1" | jq -e '.config.size + ([.layers[].size] | add)'
}
