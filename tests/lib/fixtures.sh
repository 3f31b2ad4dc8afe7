# Test images, built offline once and shared by every test script and run: hand-made OCI image
# layouts pushed with skopeo into a docker-registry storage directory, which each test copies
# and serves with its own upstream (fixtures_upstream_start). Sourced after tests/lib/common.sh
# and tests/lib/upstream.sh.
#
# $FIXTURES/ holds: images.env (what each image is, see _fix_write_env), storage/ (the filled
# docker-registry root), oci/<name>/ (the OCI layouts the images were pushed from, except big)
# and build-registry.log (the build upstream's log, for when a build needs explaining).
# shellcheck shell=bash

# The cache is keyed by this file's content: editing how images are made rebuilds them, and two
# checkouts with different fixtures never read each other's cache.
FIXTURES=${MS_FIXTURES:-/tmp/ms-fixtures-$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)}

# Every image the build pushes: "PREFIX REPO:TAG HOW" (HOW: how skopeo copies the OCI layout
# of the same name in lower case). PREFIX names the variables in $FIXTURES/images.env.
_FIX_IMAGES=(
	"FIX_OCI library/oci-small:1 oci"         # OCI image manifest, 2 layers
	"FIX_DOCKER library/docker-small:1 v2s2"  # Docker v2 schema 2 manifest, 2 layers
	"FIX_INDEX library/multi-oci:1 all"       # OCI image index: linux/amd64 + linux/arm64
	"FIX_LIST library/multi-docker:1 all-v2s2" # Docker manifest list: linux/amd64 + linux/arm64
	"FIX_SHARED_A library/shared-a:1 oci"     # shares its first layer with shared-b
	"FIX_SHARED_B library/shared-b:1 oci"
	"FIX_BIG library/big:1 oci"               # one incompressible layer of >= 100 MiB
)

FIX_MT_OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
FIX_MT_OCI_INDEX=application/vnd.oci.image.index.v1+json
FIX_MT_DOCKER_MANIFEST=application/vnd.docker.distribution.manifest.v2+json
FIX_MT_DOCKER_LIST=application/vnd.docker.distribution.manifest.list.v2+json
# Accept header that makes the registry return any manifest as stored (no schema 1 fallback).
FIX_ACCEPT="$FIX_MT_OCI_MANIFEST,$FIX_MT_OCI_INDEX,$FIX_MT_DOCKER_MANIFEST,$FIX_MT_DOCKER_LIST"

# fixtures_ready: makes sure $FIXTURES holds the images (building them if not), then exports
# FIXTURES and every variable of $FIXTURES/images.env.
fixtures_ready() {
	if [ ! -f "$FIXTURES/images.env" ]; then
		_fix_prune_stale_builds
		_fix_build || return 1
	fi
	set -a
	# shellcheck source=/dev/null
	. "$FIXTURES/images.env" || { set +a; return 1; }
	set +a
	export FIXTURES
}

# fixtures_upstream_start [DIR]: an upstream (see upstream_start) on a private copy of the
# fixture storage, so a test may push, break or fill it without touching the cache.
fixtures_upstream_start() {
	local dir=${1:-$T/upstream}
	fixtures_ready || return 1
	mkdir -p "$dir" || return 1
	cp -a --reflink=auto "$FIXTURES/storage" "$dir/storage" || return 1
	upstream_start "$dir"
}

# fixtures_image_set DIR BUILD_FN: makes sure DIR holds an image set (storage/, images.env) and
# sources DIR/images.env. When DIR/images.env is missing, BUILD_FN TMP builds one: with an
# upstream already serving TMP (its UPSTREAM_* local to this call), it makes OCI layouts under
# TMP/oci (scratch space: TMP/work), pushes them, and writes TMP/images.env. TMP is
# DIR.build.<pid>, renamed into place only when complete, so a reader sees no set or a whole one;
# builds whose builder died are removed. For image sets of their own (the demo's, the bench's)
# made with the builders below.
fixtures_image_set() {
	local dir=$1 fn=$2 tmp=$1.build.$$ d rc
	# shellcheck disable=SC2034 # the build's own upstream leaves the caller's alone
	local UPSTREAM_PORT UPSTREAM_URL UPSTREAM_PID UPSTREAM_LOG
	if [ ! -f "$dir/images.env" ]; then
		for d in "$dir".build.*; do
			[ -d "$d" ] && ! kill -0 "${d##*.}" 2>/dev/null && rm -rf "$d"
		done
		echo "fixtures: building $dir (once)" >&2
		rm -rf "$tmp" && mkdir -p "$tmp/work" || return 1
		upstream_start "$tmp" && "$fn" "$tmp"
		rc=$?
		upstream_stop
		if [ $rc -ne 0 ]; then
			echo "fixtures: building $dir failed; kept in $tmp" >&2
			return 1
		fi
		rm -rf "$tmp/work" "$tmp/oci" "$tmp/config.yml"
		mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp" # a concurrent build won
	fi
	# shellcheck source=/dev/null
	. "$dir/images.env"
}

# fixtures_image_set_serve DIR UPSTREAM_DIR: an upstream (upstream_start) in UPSTREAM_DIR on hard
# links of DIR/storage: a registry that is only pulled from never rewrites a file.
fixtures_image_set_serve() {
	mkdir -p "$2" && cp -al "$1/storage" "$2/storage" && upstream_start "$2"
}

# fixtures_blob_path DIGEST: where the cached storage keeps that blob's bytes.
fixtures_blob_path() {
	local hex=${1#sha256:}
	echo "$FIXTURES/storage/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
}

# fixtures_blob_size DIGEST
fixtures_blob_size() {
	stat -c %s "$(fixtures_blob_path "$1")"
}

# A build that was killed leaves $FIXTURES.build.<pid>; remove those whose builder is gone.
_fix_prune_stale_builds() {
	local d pid
	for d in "$FIXTURES".build.*; do
		[ -d "$d" ] || continue
		pid=${d##*.}
		kill -0 "$pid" 2>/dev/null || rm -rf "$d"
	done
}

# Builds into $FIXTURES.build.<pid> and renames it into place only when complete, so a reader
# sees either no cache or a whole one. A concurrent builder that finished first wins; ours is
# then thrown away.
_fix_build() {
	local tmp=$FIXTURES.build.$$ start=$SECONDS
	# Declared local so that the build's own upstream leaves the caller's UPSTREAM_* alone.
	# shellcheck disable=SC2034 # set and read by upstream_start/upstream_stop
	local UPSTREAM_PORT UPSTREAM_URL UPSTREAM_PID UPSTREAM_LOG
	echo "# fixtures: building $FIXTURES" >&2
	rm -rf "$tmp"
	mkdir -p "$tmp/oci" "$tmp/work" || return 1
	if ! _fix_make_layouts "$tmp" || ! upstream_start "$tmp" ||
		! _fix_push_all "$tmp" || ! _fix_write_env "$tmp"; then
		upstream_stop
		echo "fixtures: build failed, kept in $tmp.failed" >&2
		rm -rf "$tmp.failed"
		mv "$tmp" "$tmp.failed"
		return 1
	fi
	upstream_stop
	# The big layout's 100 MiB are in storage/ already; the other layouts stay for tests that
	# want an image as files (oci:$FIXTURES/oci/<name>:latest).
	rm -rf "$tmp/work" "$tmp/config.yml" "$tmp/oci/big"
	mv "$tmp/registry.log" "$tmp/build-registry.log"
	if ! mv -T "$tmp" "$FIXTURES" 2>/dev/null; then
		rm -rf "$tmp"
		[ -f "$FIXTURES/images.env" ] || return 1
	fi
	echo "# fixtures: built in $((SECONDS - start))s" >&2
}

# --- OCI layouts -------------------------------------------------------------------------------

# One OCI layout per image, under $1/oci/<name>, each with the single ref "latest".
_fix_make_layouts() {
	local b=$1 l m a s1 s2
	# Layer files are per image (and per architecture), so that counting one blob's GETs can
	# never be confused by another image; only shared-a/shared-b share a layer on purpose.
	_fix_simple "$b" oci-small amd64 || return 1
	_fix_simple "$b" docker-small amd64 || return 1
	_fix_multi "$b" multi-oci || return 1
	_fix_multi "$b" multi-docker || return 1

	l=$b/oci/shared-a
	_fix_layout_init "$l" || return 1
	s1=$(_fix_layer "$l" "$b/work" shared-base "" amd64) || return 1
	s2=$(_fix_layer "$l" "$b/work" shared-a 65536 amd64) || return 1
	m=$(_fix_image "$l" amd64 "$s1" "$s2") || return 1
	_fix_layout_ref "$l" "$FIX_MT_OCI_MANIFEST" "$m" || return 1
	l=$b/oci/shared-b
	_fix_layout_init "$l" || return 1
	# Same name and content, so the same bytes and digest as shared-a's first layer.
	s1=$(_fix_layer "$l" "$b/work" shared-base "" amd64) || return 1
	s2=$(_fix_layer "$l" "$b/work" shared-b 65536 amd64) || return 1
	m=$(_fix_image "$l" amd64 "$s1" "$s2") || return 1
	_fix_layout_ref "$l" "$FIX_MT_OCI_MANIFEST" "$m" || return 1

	l=$b/oci/big
	_fix_layout_init "$l" || return 1
	# 100 MiB + 1 KiB of random data stays above 100 MiB through tar and gzip.
	a=$(_fix_layer "$l" "$b/work" big $((100 * 1024 * 1024 + 1024)) amd64 -1) || return 1
	m=$(_fix_image "$l" amd64 "$a") || return 1
	_fix_layout_ref "$l" "$FIX_MT_OCI_MANIFEST" "$m"
}

# _fix_simple BASE NAME ARCH: a two-layer image: a small text layer and a 256 KiB data layer.
_fix_simple() {
	local l=$1/oci/$2 a b m
	_fix_layout_init "$l" || return 1
	a=$(_fix_layer "$l" "$1/work" "$2" "" "$3") || return 1
	b=$(_fix_layer "$l" "$1/work" "$2-data" 262144 "$3") || return 1
	m=$(_fix_image "$l" "$3" "$a" "$b") || return 1
	_fix_layout_ref "$l" "$FIX_MT_OCI_MANIFEST" "$m"
}

# _fix_multi BASE NAME: an OCI index of two two-layer images, linux/amd64 and linux/arm64.
_fix_multi() {
	local l=$1/oci/$2 arch a b m idx entries=()
	_fix_layout_init "$l" || return 1
	for arch in amd64 arm64; do
		a=$(_fix_layer "$l" "$1/work" "$2-$arch" "" "$arch") || return 1
		b=$(_fix_layer "$l" "$1/work" "$2-$arch-data" 131072 "$arch") || return 1
		m=$(_fix_image "$l" "$arch" "$a" "$b") || return 1
		entries+=("$(jq -c --arg a "$arch" --arg mt "$FIX_MT_OCI_MANIFEST" \
			'{mediaType: $mt, digest: .digest, size: .size,
			  platform: {architecture: $a, os: "linux"}}' <<<"$m")") || return 1
	done
	idx=$(printf '%s\n' "${entries[@]}" | jq -cs --arg mt "$FIX_MT_OCI_INDEX" \
		'{schemaVersion: 2, mediaType: $mt, manifests: .}') || return 1
	m=$(_fix_put_json "$l" "$idx") || return 1
	_fix_layout_ref "$l" "$FIX_MT_OCI_INDEX" "$m"
}

_fix_layout_init() {
	mkdir -p "$1/blobs/sha256" && echo '{"imageLayoutVersion":"1.0.0"}' >"$1/oci-layout"
}

# _fix_layout_ref LAYOUT MEDIATYPE DESCRIPTOR: index.json naming DESCRIPTOR "latest".
_fix_layout_ref() {
	jq -c --arg mt "$2" '{schemaVersion: 2, manifests: [{mediaType: $mt, digest: .digest,
		size: .size, annotations: {"org.opencontainers.image.ref.name": "latest"}}]}' \
		<<<"$3" >"$1/index.json"
}

# _fix_put_blob LAYOUT FILE: moves FILE into the layout as a blob; prints its descriptor
# {"digest","size"}.
_fix_put_blob() {
	local l=$1 f=$2 d s
	d=$(sha256sum "$f" | cut -d' ' -f1) && s=$(stat -c %s "$f") || return 1
	mv "$f" "$l/blobs/sha256/$d" || return 1
	printf '{"digest":"sha256:%s","size":%s}\n' "$d" "$s"
}

# _fix_put_json LAYOUT JSON: stores JSON, byte for byte, as a blob; prints its descriptor.
_fix_put_json() {
	printf '%s' "$2" >"$1/json.tmp" && _fix_put_blob "$1" "$1/json.tmp"
}

# _fix_layer LAYOUT WORK NAME DATA_BYTES ARCH [GZIP_LEVEL]: a gzip tar layer holding hello,
# etc/fixture/NAME and, when DATA_BYTES is set, data/NAME.bin of that many pseudo-random bytes
# (AES-CTR keyed by NAME: same bytes every build, and gzip cannot shrink them). Prints the blob
# descriptor plus "diffid" (sha256 of the uncompressed tar) for the image config.
_fix_layer() {
	local l=$1 w=$2/$3 name=$3 bytes=$4 arch=$5 level=${6:--6} key top=(hello etc)
	rm -rf "$w" && mkdir -p "$w/root/etc/fixture" || return 1
	printf 'hello from microscale fixture %s (%s)\n' "$name" "$arch" >"$w/root/hello"
	printf 'name=%s\narch=%s\n' "$name" "$arch" >"$w/root/etc/fixture/$name"
	if [ -n "$bytes" ]; then
		mkdir -p "$w/root/data" || return 1
		top+=(data)
		key=$(printf '%s' "$name" | md5sum | cut -c1-32)
		# openssl stops with a write error once head has enough; only head's status matters.
		openssl enc -aes-128-ctr -K "$key" -iv 00000000000000000000000000000000 -nosalt \
			</dev/zero 2>/dev/null | head -c "$bytes" >"$w/root/data/$name.bin" || return 1
	fi
	_fix_tar_layer "$l" "$w" "$level" "${top[@]}"
}

# _fix_layer_busybox LAYOUT WORK: a layer holding the static busybox of busybox-static as
# /bin/busybox (and /bin/sh linked to it), so that an image with it runs for real: its Cmd can be
# ["/bin/busybox", "httpd", …]. The same bytes in every image that has it: one shared layer.
_fix_layer_busybox() {
	local w=$2/busybox
	# ldd fails on a static binary ("not a dynamic executable"); a dynamic one would not run
	# in an image that holds nothing else.
	if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
		echo "fixtures: /bin/busybox is not a static binary (install busybox-static: make deps)" >&2
		return 1
	fi
	rm -rf "$w" && mkdir -p "$w/root/bin" && cp /bin/busybox "$w/root/bin/busybox" &&
		ln -s busybox "$w/root/bin/sh" || return 1
	_fix_tar_layer "$1" "$w" -9 bin
}

# _fix_tar_layer LAYOUT DIR GZIP_LEVEL ENTRY…: the ENTRYs of DIR/root as a gzip tar layer of
# LAYOUT; removes DIR. Prints the blob descriptor plus "diffid" (sha256 of the uncompressed tar).
_fix_tar_layer() {
	local l=$1 w=$2 level=$3 desc diffid
	shift 3
	# Fixed owner, modes, times and order: the same tar bytes on every machine. ustar has no
	# atime/ctime records; directories are entries of their own, as docker and containerd expect.
	tar -C "$w/root" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
		--mode='u+rwX,go+rX,go-w' --format=ustar -cf "$w/layer.tar" "$@" || return 1
	diffid=sha256:$(sha256sum "$w/layer.tar" | cut -d' ' -f1) || return 1
	gzip -n "$level" -c "$w/layer.tar" >"$w/layer.tgz" || return 1
	desc=$(_fix_put_blob "$l" "$w/layer.tgz") || return 1
	rm -rf "$w"
	jq -c --arg id "$diffid" '. + {diffid: $id}' <<<"$desc"
}

# _fix_image LAYOUT ARCH LAYER…: writes a config and an OCI manifest for the layers (as printed
# by _fix_layer); prints the manifest's descriptor.
_fix_image() {
	_fix_image_cmd "$1" "$2" '["/hello"]' "${@:3}"
}

# _fix_image_cmd LAYOUT ARCH CMD_JSON LAYER…: _fix_image with CMD_JSON (an array) as the
# config's Cmd, for images that really run.
_fix_image_cmd() {
	local l=$1 arch=$2 cmd=$3 layers cfg mf c
	shift 3
	layers=$(printf '%s\n' "$@" | jq -cs .) || return 1
	# A complete image config, so docker and containerd can unpack and even "run" the image.
	cfg=$(jq -c --arg a "$arch" --argjson cmd "$cmd" '{
		created: "1970-01-01T00:00:00Z", architecture: $a, os: "linux",
		config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
			Cmd: $cmd},
		rootfs: {type: "layers", diff_ids: map(.diffid)},
		history: [range(length) | {created: "1970-01-01T00:00:00Z",
			created_by: "microscale test fixture layer \(. + 1)"}]}' <<<"$layers") || return 1
	c=$(_fix_put_json "$l" "$cfg") || return 1
	mf=$(jq -c --argjson c "$c" --arg mt "$FIX_MT_OCI_MANIFEST" '{schemaVersion: 2,
		mediaType: $mt,
		config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c.digest,
			size: $c.size},
		layers: map({mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
			digest: .digest, size: .size})}' <<<"$layers") || return 1
	_fix_put_json "$l" "$mf"
}

# --- pushing and recording ---------------------------------------------------------------------

_fix_push_all() {
	local b=$1 e prefix ref how name flags
	for e in "${_FIX_IMAGES[@]}"; do
		read -r prefix ref how <<<"$e"
		name=${ref#*/}
		name=${name%:*}
		case $how in
		oci) flags=() ;;
		v2s2) flags=(--format v2s2) ;;
		all) flags=(--all) ;;
		# skopeo 1.9 converts an OCI index to a Docker manifest list (and each image to v2s2).
		all-v2s2) flags=(--all --format v2s2) ;;
		esac
		skopeo copy --quiet --dest-tls-verify=false "${flags[@]}" \
			"oci:$b/oci/$name:latest" "docker://127.0.0.1:$UPSTREAM_PORT/$ref" >&2 ||
			{ echo "fixtures: pushing $ref failed" >&2; return 1; }
	done
}

# images.env: for each PREFIX, what the upstream really serves (read back from it, not
# predicted, since skopeo rewrites manifests when it converts formats):
#   PREFIX=REPO:TAG  PREFIX_REPO  PREFIX_TAG  PREFIX_DIGEST (manifest or index/list digest)
#   PREFIX_MEDIATYPE
# for an image manifest also:   PREFIX_CONFIG (digest)  PREFIX_LAYERS (digests, space-separated)
# for an index/manifest list:   PREFIX_<ARCH>_DIGEST / _CONFIG / _LAYERS for amd64 and arm64
# and FIX_SHARED_LAYER, FIX_BIG_LAYER, FIX_BIG_LAYER_SIZE, FIX_IMAGES (all prefixes).
_fix_write_env() {
	local b=$1 e prefix ref how repo tag mf mt d arch sub derived prefixes=()
	{
		echo "# microscale test fixtures, made by tests/lib/fixtures.sh; sourced by tests."
		for e in "${_FIX_IMAGES[@]}"; do
			read -r prefix ref how <<<"$e"
			prefixes+=("$prefix")
			repo=${ref%:*} tag=${ref##*:}
			_fix_get_manifest "$repo" "$tag" "$b/manifest.tmp" || return 1
			mf=$(cat "$b/manifest.tmp") || return 1
			mt=$(jq -r .mediaType <<<"$mf") || return 1
			d=sha256:$(sha256sum "$b/manifest.tmp" | cut -d' ' -f1)
			echo "$prefix=$ref"
			echo "${prefix}_REPO=$repo"
			echo "${prefix}_TAG=$tag"
			echo "${prefix}_DIGEST=$d"
			echo "${prefix}_MEDIATYPE=$mt"
			case $mt in
			"$FIX_MT_OCI_INDEX" | "$FIX_MT_DOCKER_LIST")
				for arch in amd64 arm64; do
					d=$(jq -r --arg a "$arch" \
						'.manifests[] | select(.platform.architecture == $a) | .digest' <<<"$mf")
					_fix_get_manifest "$repo" "$d" "$b/manifest.tmp" || return 1
					sub=$(cat "$b/manifest.tmp") || return 1
					_fix_env_image "${prefix}_${arch^^}" "$sub" "$d"
				done
				;;
			*) _fix_env_image "$prefix" "$mf" ;;
			esac
		done
		echo "FIX_IMAGES=\"${prefixes[*]}\""
	} >"$b/images.env.tmp" || return 1
	# shellcheck source=/dev/null
	derived=$(. "$b/images.env.tmp" && _fix_env_derived "$b") || return 1
	echo "$derived" >>"$b/images.env.tmp" || return 1
	rm -f "$b/manifest.tmp"
	mv "$b/images.env.tmp" "$b/images.env"
}

# _fix_env_image PREFIX MANIFEST [DIGEST]
_fix_env_image() {
	[ -n "${3:-}" ] && echo "${1}_DIGEST=$3"
	echo "${1}_CONFIG=$(jq -r .config.digest <<<"$2")"
	echo "${1}_LAYERS=\"$(jq -r '[.layers[].digest] | join(" ")' <<<"$2")\""
}

# Names for the blobs tests care about most, checked rather than assumed.
_fix_env_derived() {
	local a b
	read -r a _ <<<"$FIX_SHARED_A_LAYERS"
	read -r b _ <<<"$FIX_SHARED_B_LAYERS"
	[ "$a" = "$b" ] || { echo "fixtures: shared-a/b do not share a layer" >&2; return 1; }
	echo "FIX_SHARED_LAYER=$a"
	echo "FIX_BIG_LAYER=$FIX_BIG_LAYERS"
	local hex=${FIX_BIG_LAYERS#sha256:}
	echo "FIX_BIG_LAYER_SIZE=$(stat -c %s "$1/storage/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data")"
}

# _fix_get_manifest REPO REF FILE: the manifest bytes exactly as the upstream serves them, kept
# in a file because $(…) would drop trailing newlines and so change the digest.
_fix_get_manifest() {
	curl -sf --max-time 10 -H "Accept: $FIX_ACCEPT" -o "$3" "$UPSTREAM_URL/v2/$1/manifests/$2"
}
