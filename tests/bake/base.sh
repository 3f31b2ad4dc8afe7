#!/bin/bash
# tests/bake/base.sh [--print-key | --print-path]: makes sure the base root file system of the docker source
# (packer/microscale.pkr.hcl, docker.node) is in the cache, and prints its path: a Debian 12
# root file system made by debootstrap from Debian's package archive, as a tarball to
# `docker import`. What a node's cloud image brings and provision.sh does not install: systemd
# as init, D-Bus, the NSS module for DynamicUser names, sudo (the template's provisioners run
# `sudo env …`), ca-certificates; and skopeo and Docker, so that the booted node can pull
# through its cache itself.
#
# The cache is /var/cache/microscale-bake/base-<key>.tar (MS_BAKE_CACHE=DIR to choose), keyed by
# everything that makes it: the suite, the mirror, the variant, the package list and this file.
# A second run finds it and does not debootstrap again. Writing goes to base-<key>.tar.tmp.<pid>,
# renamed when complete, so a reader sees no tarball or a whole one; a build whose builder died
# is removed.
set -euo pipefail

SUITE=${MS_BAKE_SUITE:-bookworm}
MIRROR=${MS_BAKE_MIRROR:-http://deb.debian.org/debian}
VARIANT=minbase
# debootstrap resolves no virtual package: skopeo's container-network-stack is named.
PACKAGES=systemd,systemd-sysv,dbus,libnss-systemd,libpam-systemd,sudo,ca-certificates,procps,iproute2,skopeo,containernetworking-plugins,docker.io
CACHE=${MS_BAKE_CACHE:-/var/cache/microscale-bake}

KEY=$(printf '%s\n' "$SUITE" "$MIRROR" "$VARIANT" "$PACKAGES" | cat - "${BASH_SOURCE[0]}" |
	sha256sum | cut -c1-16)
OUT=$CACHE/base-$KEY.tar
case ${1:-} in
--print-key) echo "$KEY"; exit 0 ;;
--print-path) echo "$OUT"; exit 0 ;;
esac
if [ -s "$OUT" ]; then
	echo "$OUT"
	exit 0
fi

# remove PATH: what debootstrap mounted under PATH (proc, sys) first, deepest first, then PATH,
# never crossing into another file system.
remove() {
	awk -v p="$1" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
	rm -rf --one-file-system "$1"
}

mkdir -p "$CACHE"
for d in "$CACHE"/base-*.tmp.*; do
	[ -e "$d" ] || continue
	pid=${d##*.tmp.}
	pid=${pid%.dir}
	kill -0 "$pid" 2>/dev/null || remove "$d"
done
command -v debootstrap >/dev/null || { echo "base: debootstrap is missing (make deps)" >&2; exit 1; }
tmp=$OUT.tmp.$$
trap 'remove "$tmp.dir"; rm -f "$tmp"' EXIT
start=$SECONDS
echo "base: debootstrap $SUITE ($VARIANT) from $MIRROR into $tmp.dir" >&2
# The proxies of the tests (tests/lib/common.sh) would swallow the archive's traffic.
env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY \
	debootstrap --variant="$VARIANT" --include="$PACKAGES" "$SUITE" "$tmp.dir" "$MIRROR" \
	>"$CACHE/base-$KEY.log" 2>&1 || {
	echo "base: debootstrap failed; the end of $CACHE/base-$KEY.log:" >&2
	tail -20 "$CACHE/base-$KEY.log" >&2
	exit 1
}
# What a node's image does not carry: the machine id (every boot makes its own), apt's lists and
# downloaded packages (provision.sh runs apt-get update), the hostname of this machine.
: >"$tmp.dir/etc/machine-id"
rm -f "$tmp.dir/var/lib/dbus/machine-id" "$tmp.dir/etc/hostname"
rm -rf "$tmp.dir"/var/lib/apt/lists/* "$tmp.dir"/var/cache/apt/archives/*.deb
tar -C "$tmp.dir" --numeric-owner --xattrs -cf "$tmp" .
mv "$tmp" "$OUT"
echo "base: $OUT in $((SECONDS - start))s" >&2
echo "$OUT"
