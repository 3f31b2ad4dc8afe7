#!/bin/sh
# Installs the Debian packages that build, test, bench and demo need -- only those missing.
set -eu
PKGS="build-essential pkg-config libev-dev libcurl4-openssl-dev libjansson-dev libssl-dev
libarchive-dev libhttp-parser-dev liburing-dev libcmocka-dev docker-registry skopeo containerd docker.io
nginx-light wrk curl python3 jq iproute2 procps prometheus clang libclang-rt-14-dev valgrind openssl bsdutils packer systemd
busybox-static util-linux libzookeeper-st-dev zookeeper chromium debootstrap systemd-container strace"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
if [ "$(id -u)" != 0 ]; then
	echo "deps: need root to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Wait on the dpkg lock rather than failing when another apt runs.
apt_get() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }
apt_get update -q
# shellcheck disable=SC2086
apt_get install -y -q --no-install-recommends $missing
