#!/bin/sh
# provision.sh [--root DIR]: makes this Debian 12 machine (or the tree under DIR) a microscale
# node: installs the packages it needs, builds and installs microscale, writes its configs,
# points Docker and containerd at the cache, enables the cache's unit, and prewarms the priority
# images so that the node boots warm. Packer runs it at bake time (packer/microscale.pkr.hcl);
# it can be run by hand on any node, as root, and run again: it is idempotent, and it stops at
# the first step that fails, saying which.
#
# --root DIR (or DESTDIR=DIR): install into DIR instead of /, for tests and chroot bakes. apt is
# not run (the packages must be there), units are enabled on disk only (systemctl --root), and
# the prewarm fills DIR/var/lib/microscale.
#
# The configs come from these variables (the template's variables set them):
#   MICROSCALE_UPSTREAM_URL    docker.io's upstream (https://registry-1.docker.io; a tier cache)
#   MICROSCALE_UPSTREAMS       other registries, a JSON object as in registry.json's "upstreams"
#                              ({"ghcr.io": {"url": "https://ghcr.io"}}; default {})
#   MICROSCALE_PRIORITY_LIST   the priority list file (default: images/priority.list)
#   MICROSCALE_PRIORITY_IMAGES priority images, comma-separated (replaces the file when set):
#                              "redis:7,ghcr.io/org/app:1.2 platform=linux/arm64"
#   MICROSCALE_STORE_MAX_BYTES the cache's disk budget (default: the daemon's)
#   MICROSCALE_MARATHON_URL    Marathon (http://127.0.0.1:8080)
#   MICROSCALE_CAPACITY        instances the scaler shares (10)
#   MICROSCALE_APPS            the scaler's apps, a JSON array (default: the two demo apps)
#   MICROSCALE_ENABLE_SCALER   1 to enable the scaler's unit too (default 0: run one scaler per
#                              set of apps, not one per node, unless MICROSCALE_ZOOKEEPER is set)
#   MICROSCALE_ZOOKEEPER       ZooKeeper servers (host:port,…): the scalers of every node elect
#                              one leader there, so enabling the scaler everywhere is safe
#   MICROSCALE_PREWARM         0 to skip the prewarm and the import (default 1)
#   MICROSCALE_IMAGES_DIR      docker-save / OCI tarballs (*.tar, *.tar.gz) to import (images/)
#   MICROSCALE_BUILD           the build directory under the tree (build/node: never a build
#                              that came with the uploaded tree)
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${DESTDIR:-}
while [ $# -gt 0 ]; do
	case $1 in
	--root) [ $# -ge 2 ] || { echo "provision: --root needs a directory" >&2; exit 1; }; ROOT=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -eu/{/^set/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	*) echo "provision: unknown argument: $1 (try --help)" >&2; exit 1 ;;
	esac
done
ROOT=${ROOT%/}
if [ -n "$ROOT" ]; then
	mkdir -p "$ROOT"
	ROOT=$(cd "$ROOT" && pwd)
fi

UPSTREAM_URL=${MICROSCALE_UPSTREAM_URL:-https://registry-1.docker.io}
UPSTREAMS=${MICROSCALE_UPSTREAMS:-'{}'}
PRIORITY_LIST=${MICROSCALE_PRIORITY_LIST:-$SRC/images/priority.list}
PRIORITY_IMAGES=${MICROSCALE_PRIORITY_IMAGES:-}
STORE_MAX_BYTES=${MICROSCALE_STORE_MAX_BYTES:-}
MARATHON_URL=${MICROSCALE_MARATHON_URL:-http://127.0.0.1:8080}
CAPACITY=${MICROSCALE_CAPACITY:-10}
APPS=${MICROSCALE_APPS:-'[{"id": "/demo/priority1", "priority": 1, "min": 1, "max": 10,
  "demand": {"type": "random", "seed": 42, "step": 2}},
 {"id": "/demo/priority2", "priority": 2, "min": 0, "max": 10, "demand": {"type": "remainder"}}]'}
ENABLE_SCALER=${MICROSCALE_ENABLE_SCALER:-0}
ZOOKEEPER=${MICROSCALE_ZOOKEEPER:-}
PREWARM=${MICROSCALE_PREWARM:-1}
IMAGES_DIR=${MICROSCALE_IMAGES_DIR:-$SRC/images}
BUILD=${MICROSCALE_BUILD:-build/node}

ETC=$ROOT/etc/microscale
STORE=$ROOT/var/lib/microscale
REGISTRY=$ROOT/usr/bin/microscale-registry
SCALER=$ROOT/usr/bin/microscale-scaler
# What building and running microscale needs (the -dev packages bring the libraries).
PACKAGES="build-essential pkg-config libev-dev libcurl4-openssl-dev libjansson-dev libssl-dev
libarchive-dev libhttp-parser-dev liburing-dev libzookeeper-st-dev jq ca-certificates"

step() { echo "provision: $*"; }
die() {
	echo "provision: FAILED: $*" >&2
	exit 1
}
have_systemd() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }

# --- packages -----------------------------------------------------------------------------------

install_packages() {
	if [ -n "$ROOT" ]; then
		for t in make cc jq; do
			command -v "$t" >/dev/null || die "$t is needed (apt is not run with --root)"
		done
		step "packages: not installed with --root (make, cc and jq are here)"
		return 0
	fi
	missing=""
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing="$missing $p"
	done
	if [ -z "$missing" ]; then
		step "packages: all present"
		return 0
	fi
	step "packages: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -q || die "apt-get update"
	# shellcheck disable=SC2086
	apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing ||
		die "apt-get install$missing"
}

# --- build and install --------------------------------------------------------------------------

build_and_install() {
	step "build: make BUILD=$BUILD in $SRC"
	make -C "$SRC" -s BUILD="$BUILD" -j"$(nproc)" all >/dev/null || die "make (run it in $SRC to see why)"
	step "install: make install PREFIX=/usr DESTDIR=$ROOT"
	make -C "$SRC" -s BUILD="$BUILD" PREFIX=/usr DESTDIR="$ROOT" install >/dev/null || die "make install"
}

# --- configs ------------------------------------------------------------------------------------

# put FILE: stdin becomes FILE (0644) when it differs, through a temp file and a rename; an
# unchanged file is not touched.
put() {
	tmp=$1.tmp.$$
	cat >"$tmp" || { rm -f "$tmp"; die "cannot write $1"; }
	if cmp -s "$tmp" "$1"; then
		rm -f "$tmp"
		step "config: $1 unchanged"
		return 0
	fi
	if ! { chmod 0644 "$tmp" && mv -f "$tmp" "$1"; }; then
		rm -f "$tmp"
		die "cannot write $1"
	fi
	step "config: $1 written"
}

# json_arg NAME VALUE KIND: dies unless VALUE is JSON of jq type KIND.
json_arg() {
	printf '%s' "$2" | jq -e --arg k "$3" 'type == $k' >/dev/null 2>&1 ||
		die "$1 must be a JSON $3, got: $2"
}

write_configs() {
	json_arg MICROSCALE_UPSTREAMS "$UPSTREAMS" object
	json_arg MICROSCALE_APPS "$APPS" array
	json_arg MICROSCALE_CAPACITY "$CAPACITY" number
	[ -z "$STORE_MAX_BYTES" ] || json_arg MICROSCALE_STORE_MAX_BYTES "$STORE_MAX_BYTES" number
	mkdir -p "$ETC"

	# The priority list rides beside the configs; the unit passes it with --prewarm.
	if [ -n "$PRIORITY_IMAGES" ]; then
		{
			echo "# microscale priority images (from MICROSCALE_PRIORITY_IMAGES at provisioning)"
			echo "$PRIORITY_IMAGES" | tr ',' '\n' | sed 's/^[[:space:]]*//; s/[[:space:]]*$//; /^$/d'
		} | put "$ETC/images.list"
	else
		[ -r "$PRIORITY_LIST" ] || die "MICROSCALE_PRIORITY_LIST: cannot read $PRIORITY_LIST"
		put "$ETC/images.list" <"$PRIORITY_LIST"
	fi

	jq -n --arg up "$UPSTREAM_URL" --argjson extra "$UPSTREAMS" --arg max "$STORE_MAX_BYTES" '{
		listen: "127.0.0.1:5000",
		root: "/var/lib/microscale",
		log_level: "info",
		upstreams: ({"docker.io": {url: $up}} + $extra)
	} + (if $max == "" then {} else {store: {max_bytes: ($max | tonumber)}} end)' |
		put "$ETC/registry.json"

	jq -n --arg url "$MARATHON_URL" --argjson cap "$CAPACITY" --argjson apps "$APPS" \
		--arg zk "$ZOOKEEPER" '{
		marathon: {url: $url},
		caches: ["http://127.0.0.1:5000"],
		capacity: $cap,
		listen: "127.0.0.1:9101",
		log_level: "info",
		apps: $apps
	} + (if $zk == "" then {} else {zookeeper: {servers: $zk}} end)' | put "$ETC/scaler.json"

	# The daemons judge their configs themselves: a bad variable stops the bake here.
	"$REGISTRY" -n -c "$ETC/registry.json" --prewarm "$ETC/images.list" >/dev/null ||
		die "$ETC/registry.json or images.list refused (above)"
	"$SCALER" -n -c "$ETC/scaler.json" >/dev/null || die "$ETC/scaler.json refused (above)"
	step "config: both daemons accept their configs"
}

# --- runtimes and units -------------------------------------------------------------------------

wire_runtimes() {
	"$ROOT/usr/lib/microscale/wire-runtimes.sh" ${ROOT:+--root "$ROOT"} ||
		die "wiring Docker and containerd"
}

UNITS=microscale-registry.service
enable_units() {
	if [ "$ENABLE_SCALER" = 1 ]; then
		UNITS="$UNITS microscale-scaler.service"
	fi
	if ! command -v systemctl >/dev/null; then
		step "units: systemctl not found; enable $UNITS by hand"
		return 0
	fi
	if have_systemd; then
		systemctl daemon-reload || die "systemctl daemon-reload"
		# shellcheck disable=SC2086
		systemctl enable $UNITS || die "systemctl enable $UNITS"
	else
		# Without a running systemd (a scratch root, a chroot, a container) enabling is only
		# symlinks, which systemctl makes offline.
		step "units: systemd is not running here; enabling on disk only"
		# shellcheck disable=SC2086
		systemctl --root="${ROOT:-/}" enable $UNITS || die "systemctl --root enable $UNITS"
	fi
}

# --- prewarm ------------------------------------------------------------------------------------

# The store must be the daemon's alone while we write it (a daemon starting up clears the
# store's tmp/): a running registry is stopped for the prewarm and started again after.
WAS_ACTIVE=0
stop_registry() {
	have_systemd && systemctl -q is-active microscale-registry.service || return 0
	WAS_ACTIVE=1
	step "prewarm: stopping microscale-registry while the store is filled"
	systemctl stop microscale-registry.service || die "systemctl stop microscale-registry"
}

start_registry() {
	if [ "$WAS_ACTIVE" = 1 ]; then
		systemctl start microscale-registry.service || die "systemctl start microscale-registry"
		step "units: microscale-registry started again"
	elif have_systemd; then
		step "units: start the cache with: systemctl start microscale-registry"
	fi
}

# Each tarball once: importing it again would only refresh its tags' timestamps. What was
# imported is recorded (by content) beside the store, not in it.
IMPORTED=$ROOT/var/lib/microscale-provision/imported.sha256
import_tarballs() {
	for f in "$IMAGES_DIR"/*.tar "$IMAGES_DIR"/*.tar.gz; do
		[ -f "$f" ] || continue
		sum=$(sha256sum <"$f" | cut -d' ' -f1) || die "cannot read $f"
		if grep -qs "^$sum " "$IMPORTED"; then
			step "prewarm: $f imported already"
			continue
		fi
		step "prewarm: importing $f"
		"$REGISTRY" import --root "$STORE" "$f" || die "import of $f (above)"
		mkdir -p "${IMPORTED%/*}"
		echo "$sum $(basename "$f")" >>"$IMPORTED"
	done
}

prewarm() {
	if [ "$PREWARM" = 0 ]; then
		step "prewarm: skipped (MICROSCALE_PREWARM=0)"
		return 0
	fi
	stop_registry
	mkdir -p "$STORE"
	if grep -qv '^[[:space:]]*\(#.*\)\{0,1\}$' "$ETC/images.list"; then
		step "prewarm: the priority list, from $UPSTREAM_URL into $STORE"
		"$REGISTRY" -c "$ETC/registry.json" --root "$STORE" --prewarm "$ETC/images.list" \
			--prewarm-once || die "prewarm: an image of $ETC/images.list could not be had (above)"
	else
		step "prewarm: $ETC/images.list names no image"
	fi
	import_tarballs
	# A store that the unit has used already belongs to its dynamic user (systemd moved it to
	# /var/lib/private): what root just wrote must be that user's too. A fresh store is handed
	# over by systemd itself at the first start.
	if [ -L "$STORE" ]; then
		chown -R --reference="$STORE/." "$STORE/." || die "chown of $STORE"
	fi
	start_registry
}

[ -n "$ROOT" ] || [ "$(id -u)" = 0 ] || die "run as root (or with --root DIR)"
step "source $SRC, root ${ROOT:-/}"
install_packages
build_and_install
write_configs
wire_runtimes
enable_units
prewarm
step "done"
