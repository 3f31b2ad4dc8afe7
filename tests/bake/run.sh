#!/bin/bash
# tests/bake/run.sh [--cached-only]: a real `packer build -only=docker.node` of packer/ on this
# machine, and the node it bakes booted under a real systemd (systemd-nspawn --boot), twice.
# Prints "ok - …" / "not ok - …" lines (tests/run.sh counts them), "# skip: …" when it cannot
# run here, and ends with "bake: N passed, N failed, N skipped".
#
#  1. The base: a Debian 12 root file system from Debian's archive (tests/bake/base.sh, cached
#     in /var/cache/microscale-bake keyed by what makes it). --cached-only: skip when it is not
#     cached yet, rather than debootstrap (make test uses it; make bake-test makes it).
#  2. The bake, on the host's network: the test upstream (docker-registry with the fixture
#     images) on loopback, a dockerd of our own (its data root and socket under the state dir,
#     no bridge, no iptables) holding the base, a snapshot of the working tree with a tarball in
#     images/, and packer with the template's variables: provision.sh runs unchanged in the
#     container (apt, build, install, configs, wiring, prewarm, import), the file system is
#     exported as a tarball.
#  3. The boot (tests/bake/boot.sh, in a network namespace of ours): the tarball unpacked and
#     booted, the units checked from outside and inside; then unpacked again and booted again.
#
# Everything it makes is named after it and removed at the end, and at the start what an earlier
# run that died left: the state dir /tmp/mscl-bake-<pid>/ (dockerd's data, the node's root file
# systems, the logs), the network namespace mscl-bake-<pid>, the machines mscl-bake-<pid>-<n>,
# and every process tagged MSCL_BAKE=/tmp/mscl-bake-<pid> or living under that directory.
# MS_KEEP=1 keeps the state dir.
# shellcheck source-path=SCRIPTDIR/../lib
set -u
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/clients.sh"
. "$MS_ROOT/tests/bake/lib.sh"

cached_only=0
[ "${1:-}" = --cached-only ] && cached_only=1

skip() {
	echo "# skip: $*"
	BAKE_SKIPPED=$((BAKE_SKIPPED + 1))
	bake_summary
	exit 0
}

# --- can it run here? ---------------------------------------------------------------------------

[ "$(id -u)" = 0 ] || skip "the bake needs root (dockerd, systemd-nspawn, network namespaces)"
for t in packer dockerd docker docker-registry skopeo systemd-nspawn nsenter ip; do
	command -v "$t" >/dev/null || skip "$t is not installed (make deps)"
done
if ! ip netns add "mscl-bake-probe-$$" 2>/dev/null; then
	skip "cannot create a network namespace here"
fi
ip netns del "mscl-bake-probe-$$"
if [ "$cached_only" = 1 ] && [ ! -s "$("$MS_ROOT/tests/bake/base.sh" --print-path)" ]; then
	skip "the base root file system is not cached yet (make bake-test makes it, ~1 min)"
fi

# --- state -------------------------------------------------------------------------------------

bake_sweep
rmdir "$T"
T=/tmp/mscl-bake-$$
mkdir -p "$T/out" "$T/home" "$T/tmp"
export MSCL_BAKE=$T
# Runs first: packer's container, dockerd and the machines go before $T does.
trap 'dockerd_stop; bake_teardown "$T"; ms_cleanup' EXIT

# --- the base ----------------------------------------------------------------------------------

start=$SECONDS
base=$("$MS_ROOT/tests/bake/base.sh" 2>"$T/base.log") || {
	not_ok "the base root file system (tests/bake/base.sh): $(tail -3 "$T/base.log" | tr '\n' ' ')"
	bake_summary
	exit 1
}
ok "the base root file system: $base ($((SECONDS - start))s)"

# --- the bake ----------------------------------------------------------------------------------

fixtures_upstream_start "$T/upstream" || exit 1
BAKE_UPSTREAM_PORT=$UPSTREAM_PORT
BAKE_MARATHON_PORT=$(free_port)
# The tree as it is now (tracked and new files, not build/), so that a concurrent edit cannot
# change it under the bake, with a docker-archive tarball in images/ for the bake to import.
# MS_BAKE_SRC=REV (e.g. HEAD): the tree of that commit instead, with packer/ as it is now.
mkdir -p "$T/src/images"
git -C "$MS_ROOT" ls-files -z --cached --others --exclude-standard |
	tar -C "$MS_ROOT" --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$T/src" -xf - ||
	exit 1
if [ -n "${MS_BAKE_SRC:-}" ]; then
	echo "# the tree of $MS_BAKE_SRC ($(git -C "$MS_ROOT" rev-parse --short "$MS_BAKE_SRC")), packer/ of the working tree"
	mv "$T/src/packer" "$T/packer.now" && rm -rf "$T/src" && mkdir -p "$T/src/images" &&
		git -C "$MS_ROOT" archive "$MS_BAKE_SRC" | tar -C "$T/src" -xf - &&
		rm -rf "$T/src/packer" && mv "$T/packer.now" "$T/src/packer" || exit 1
fi
skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$UPSTREAM_PORT/$FIX_SHARED_A" \
	"docker-archive:$T/src/images/shared-a.tar:docker.io/$FIX_SHARED_A" || exit 1

dockerd_start "$UPSTREAM_URL" || exit 1
image=microscale-base:$("$MS_ROOT/tests/bake/base.sh" --print-key)
start=$SECONDS
$DOCKER import "$base" "$image" >"$T/import.log" 2>&1
check_eq "docker import of the base into our dockerd ($((SECONDS - start))s)" 1 \
	"$($DOCKER image ls -q "$image" | wc -l)"
$DOCKER image inspect "$image" >/dev/null 2>&1 || {
	sed 's/^/# import: /' "$T/import.log" | tail -3
	bake_summary
	exit 1
}

# The scaler's app: a priority image, so the node's cache has it ready before anyone asks.
apps='[{"id": "/bake/web", "priority": 1, "min": 0, "max": 4, "demand": {"type": "static", "instances": 3}}]'
start=$SECONDS
env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy -u NO_PROXY -u no_proxy \
	HOME="$T/home" TMPDIR="$T/tmp" PACKER_TMP_DIR="$T/tmp" CHECKPOINT_DISABLE=1 \
	DOCKER_HOST="unix://$T/docker.sock" DOCKER_CONFIG="$T/docker/cli" \
	packer build -only=docker.node -color=false \
	-var "docker_image=$image" -var "docker_export_path=$T/out/node.tar" \
	-var "upstream_url=$UPSTREAM_URL" \
	-var "priority_images=[\"$FIX_OCI\", \"$FIX_DOCKER\"]" \
	-var "marathon_url=http://127.0.0.1:$BAKE_MARATHON_PORT" -var capacity=4 \
	-var "scaler_apps=$apps" -var enable_scaler=true \
	"$T/src/packer/" >"$T/packer.log" 2>&1
rc=$?
BAKE_SECONDS=$((SECONDS - start))
check_eq "packer build -only=docker.node exits 0 (${BAKE_SECONDS}s)" 0 "$rc"
[ "$rc" = 0 ] || { grep -E 'provision:|Error|error' "$T/packer.log" | tail -15 | sed 's/^/# /'; }
check "the node's root file system was exported" test -s "$T/out/node.tar"
for step in 'packages: installing' 'build: make' 'install: make install' 'config: /etc/microscale/registry.json written' \
	'wire-runtimes: /etc/docker/daemon.json' 'units: systemd is not running here' \
	'prewarm: the priority list' 'prewarm: importing /tmp/microscale/images/shared-a.tar' 'provision: done'; do
	check "provision.sh in the container: $step" grep -qF "$step" "$T/packer.log"
done
grep -E '^ *docker.node: provision: (packages|build|prewarm)' "$T/packer.log" | head -5 | sed 's/^ */# /'
dockerd_stop
upstream_stop
[ -s "$T/out/node.tar" ] || { bake_summary; exit 1; }

# What the image must not keep, and what it must hold.
tar -tvf "$T/out/node.tar" >"$T/out/node.list"
check_eq "the image's /etc/machine-id is there and empty" 0 \
	"$(awk '$6 == "etc/machine-id" { print $3 }' "$T/out/node.list")"
check_eq "the image's /tmp holds only packer's empty mount point" "tmp/packer-files/" \
	"$(awk '$6 ~ /^tmp\/./ { print $6 }' "$T/out/node.list" | tr '\n' ' ' | sed 's/ $//')"
check "the image holds no /tmp/microscale, no /.dockerenv" \
	bash -c "! grep -qE ' (tmp/microscale|\.dockerenv)(/|\$)' '$T/out/node.list'"
check "the image holds no cloud-init instance record" \
	bash -c "! grep -qE ' var/lib/cloud/(instance|instances)/' '$T/out/node.list'"
check "the image's store holds the prewarmed blobs" \
	grep -qE " var/lib/microscale/blobs/sha256/../${FIX_OCI_CONFIG#sha256:}\$" "$T/out/node.list"
check "the image's store has nothing in tmp/" \
	bash -c "! grep -qE ' var/lib/microscale/tmp/.' '$T/out/node.list'"
check "both units enabled in the image" grep -qE \
	' etc/systemd/system/multi-user\.target\.wants/microscale-scaler\.service -> ' "$T/out/node.list"
echo "# image: $(du -h "$T/out/node.tar" | cut -f1), bake ${BAKE_SECONDS}s"

# --- the boot ----------------------------------------------------------------------------------

NS=mscl-bake-$$
ip netns add "$NS" && ip -n "$NS" link set lo up || exit 1
export BAKE_UPSTREAM_PORT BAKE_MARATHON_PORT NS FIX_OCI FIX_DOCKER FIX_SHARED_A FIX_SHARED_B FIX_INDEX
# nsenter --net only (ip netns exec would remount /sys, hiding the cgroups nspawn needs).
nsenter --net="/run/netns/$NS" bash "$MS_ROOT/tests/bake/boot.sh" "$T" | tee "$T/boot.out"
bake_count_file "$T/boot.out"
bake_summary
