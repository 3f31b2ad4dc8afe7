#!/bin/bash
# The appliance: the Packer template validates offline; the systemd units pass systemd-analyze
# verify without a warning; packer/provision.sh, run against a scratch root, installs the
# binaries, units, configs, docs and runtime wiring, keeps an existing daemon.json's keys and a
# hosts.toml it did not write, prewarms a priority image from a local upstream and imports a
# tarball into the root's store, fails loudly on a bad variable or an unreachable upstream, and
# run a second time changes nothing.
# shellcheck source-path=SCRIPTDIR/../lib
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"

PROVISION=$MS_ROOT/packer/provision.sh
R=$T/root # the scratch root
STORE=$R/var/lib/microscale
# packer keeps state in $HOME and would phone home for version checks.
export HOME=$T/home CHECKPOINT_DISABLE=1
mkdir -p "$HOME"

fails() { ! "$@" >/dev/null 2>&1; }
blob_stored() { test -s "$1/blobs/sha256/${2:7:2}/${2#sha256:}"; }
# snapshot DIR: every file with its sha256 and mode, every symlink with its target.
snapshot() {
	(cd "$1" && find . -type f -printf '%m ' -exec sha256sum {} \; | sort -k3 &&
		find . -type l -printf '%p -> %l\n' | sort)
}
# provision LOG [VAR=VALUE…]: provision.sh into $R (DESTDIR) with the test's variables (the local
# upstream, the plain build the tree already has), VAR=VALUE overriding them; output in LOG, and
# its tail on stdout when it fails. Returns provision.sh's status.
provision() {
	local log=$1 rc
	shift
	env DESTDIR="$R" MICROSCALE_BUILD=build MICROSCALE_UPSTREAM_URL="$UPSTREAM_URL" \
		MICROSCALE_UPSTREAMS='{"quay.io": {"url": "http://127.0.0.1:9"}, "ghcr.io": {"url": "http://127.0.0.1:9"}}' \
		MICROSCALE_PRIORITY_IMAGES="$FIX_OCI, $FIX_DOCKER" MICROSCALE_MARATHON_URL=http://marathon.test:8080 \
		MICROSCALE_CAPACITY=42 MICROSCALE_IMAGES_DIR="$T/images" "$@" \
		"$PROVISION" >"$log" 2>&1
	rc=$?
	[ "$rc" = 0 ] || tail -5 "$log" | sed 's/^/# /'
	return "$rc"
}

# --- Packer -------------------------------------------------------------------------------------

if command -v packer >/dev/null; then
	echo "# $(packer version | head -1)"
	check "packer validate packer/" packer validate "$MS_ROOT/packer/"
	check "packer validate -only=qemu.node with variables" packer validate -only=qemu.node \
		-var 'priority_images=["busybox","redis:7"]' -var capacity=20 "$MS_ROOT/packer/"
	check "packer validate refuses a bad variable" fails packer validate -var capacity=many "$MS_ROOT/packer/"
else
	echo "# skip: packer is not installed (make deps installs Debian's packer); not validated"
fi

# --- Provision into a scratch root --------------------------------------------------------------

# shellcheck disable=SC2119 # no directory: a private one
fixtures_upstream_start || exit 1
# A tarball in images/ is imported at bake time (docker-archive, as `docker save` writes).
mkdir -p "$T/images"
skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$UPSTREAM_PORT/$FIX_SHARED_A" \
	"docker-archive:$T/images/shared-a.tar:docker.io/$FIX_SHARED_A" || exit 1
# What the node had before: Docker's config with a key and a mirror of its own, and a containerd
# hosts.toml for ghcr.io written by someone else.
mkdir -p "$R/etc/docker" "$R/etc/containerd/certs.d/ghcr.io"
echo '{"log-level":"warn","registry-mirrors":["http://mirror.example:5000"]}' >"$R/etc/docker/daemon.json"
printf 'server = "https://ghcr.io"\n# hand-made\n' >"$R/etc/containerd/certs.d/ghcr.io/hosts.toml"
cp "$R/etc/containerd/certs.d/ghcr.io/hosts.toml" "$T/ghcr.before"

provision "$T/p1.log"
check_eq "provision.sh into a scratch root exits 0" 0 "$?"
for f in usr/bin/microscale-registry usr/bin/microscale-scaler usr/lib/microscale/wire-runtimes.sh; do
	check "installed $f (executable)" test -x "$R/$f"
done
for f in usr/lib/systemd/system/microscale-registry.service usr/lib/systemd/system/microscale-scaler.service \
	etc/microscale/registry.json etc/microscale/scaler.json etc/microscale/images.list \
	usr/share/doc/microscale/README.md etc/docker/daemon.json \
	etc/containerd/certs.d/docker.io/hosts.toml etc/containerd/certs.d/quay.io/hosts.toml; do
	check "installed $f" test -s "$R/$f"
done
if command -v systemctl >/dev/null; then
	check_eq "registry unit enabled (on disk)" /usr/lib/systemd/system/microscale-registry.service \
		"$(readlink "$R/etc/systemd/system/multi-user.target.wants/microscale-registry.service")"
	check "scaler unit not enabled by default" \
		test ! -e "$R/etc/systemd/system/multi-user.target.wants/microscale-scaler.service"
fi

# Configs: from the variables, accepted by the daemons themselves.
check_eq "registry.json: docker.io's upstream from MICROSCALE_UPSTREAM_URL" "$UPSTREAM_URL" \
	"$(jq -r '.upstreams["docker.io"].url' "$R/etc/microscale/registry.json")"
check_eq "registry.json: the store is /var/lib/microscale (the unit's StateDirectory)" \
	/var/lib/microscale "$(jq -r .root "$R/etc/microscale/registry.json")"
check_eq "scaler.json: Marathon and capacity from the variables" "http://marathon.test:8080 42" \
	"$(jq -r '"\(.marathon.url) \(.capacity)"' "$R/etc/microscale/scaler.json")"
check_eq "images.list: the priority images" "$FIX_OCI $FIX_DOCKER" \
	"$(grep -v '^#' "$R/etc/microscale/images.list" | tr '\n' ' ' | sed 's/ $//')"
check_eq "microscale-registry -n accepts the installed config" "configuration OK" \
	"$("$R/usr/bin/microscale-registry" -n -c "$R/etc/microscale/registry.json" --prewarm "$R/etc/microscale/images.list" 2>&1)"
check_eq "microscale-scaler -n accepts the installed config" "configuration OK" \
	"$("$R/usr/bin/microscale-scaler" -n -c "$R/etc/microscale/scaler.json" 2>&1)"

# Runtime wiring: merged into Docker's config, containerd pointed at the cache, nothing clobbered.
daemon=$R/etc/docker/daemon.json
check_eq "daemon.json keeps its log-level" warn "$(jq -r '.["log-level"]' "$daemon")"
check_eq "daemon.json: the old mirror kept, the cache added once" \
	'["http://mirror.example:5000","http://127.0.0.1:5000"]' "$(jq -c '.["registry-mirrors"]' "$daemon")"
hosts=$R/etc/containerd/certs.d/docker.io/hosts.toml
check "docker.io hosts.toml: server is the real registry" grep -qx 'server = "https://registry-1.docker.io"' "$hosts"
check "docker.io hosts.toml: the cache as a pull+resolve host" \
	grep -qzF "$(printf '[host."http://127.0.0.1:5000"]\n  capabilities = ["pull", "resolve"]')" "$hosts"
check "quay.io hosts.toml: server https://quay.io" grep -qx 'server = "https://quay.io"' \
	"$R/etc/containerd/certs.d/quay.io/hosts.toml"
check "ghcr.io hosts.toml written by someone else: kept" cmp -s "$T/ghcr.before" "$R/etc/containerd/certs.d/ghcr.io/hosts.toml"
check "provision said it kept it" grep -q 'ghcr.io/hosts.toml: not written by microscale, kept' "$T/p1.log"

# The bake-time prewarm: the priority images and the imported tarball are in the root's store.
for d in "$FIX_OCI_CONFIG" $FIX_OCI_LAYERS "$FIX_DOCKER_CONFIG" $FIX_DOCKER_LAYERS; do
	check "prewarmed blob ${d:7:12} in the root's store" blob_stored "$STORE" "$d"
done
check "prewarmed manifest stored" test -s "$STORE/manifests/sha256/${FIX_OCI_DIGEST:7:2}/${FIX_OCI_DIGEST#sha256:}"
check "imported tarball tagged in the root's store" test -s "$STORE/tags/docker.io/$FIX_SHARED_A_REPO/_tags/$FIX_SHARED_A_TAG"
check "nothing left in the store's tmp/" test -z "$(ls -A "$STORE/tmp" 2>/dev/null)"

# Units: systemd-analyze verify on the installed ones, not a line of warning. ExecStart must name
# an existing binary, so the copies verified point into the scratch root.
if command -v systemd-analyze >/dev/null; then
	echo "# $(systemd-analyze --version | head -1)"
	mkdir -p "$T/units"
	for u in microscale-registry microscale-scaler; do
		sed "s|=/usr/bin/|=$R/usr/bin/|" "$R/usr/lib/systemd/system/$u.service" >"$T/units/$u.service"
	done
	out=$(cd "$T" && systemd-analyze verify --man=no "$T/units/microscale-registry.service" "$T/units/microscale-scaler.service" 2>&1)
	check_eq "systemd-analyze verify: both units, exit 0" 0 "$?"
	check_eq "systemd-analyze verify: no warnings" "" "$out"
	# The check can fail: a unit with a bad value is reported.
	sed 's/^Restart=on-failure/Restart=sometimes/' "$T/units/microscale-scaler.service" >"$T/units/bad.service"
	check "systemd-analyze verify reports a bad unit" test -n "$(cd "$T" && systemd-analyze verify --man=no "$T/units/bad.service" 2>&1)"
	for u in microscale-registry microscale-scaler; do
		level=$(systemd-analyze security --offline=yes "$T/units/$u.service" 2>/dev/null |
			sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
		check "$u.service exposure level $level below 2.0" awk -v l="${level:-10}" 'BEGIN { exit !(l < 2.0) }'
	done
	grep -h '^\(ExecStart\|ExecReload\|DynamicUser\|StateDirectory\|SystemCallFilter\)=' \
		"$R/usr/lib/systemd/system/microscale-registry.service" | sed 's/^/# /'
else
	not_ok "systemd-analyze is missing (make deps installs Debian's systemd)"
fi

# --- Idempotent -------------------------------------------------------------------------------

snapshot "$R" >"$T/before"
provision "$T/p2.log"
check_eq "provision.sh a second time exits 0" 0 "$?"
snapshot "$R" >"$T/after"
check "the second run changed no file" cmp -s "$T/before" "$T/after"
diff "$T/before" "$T/after" | head | sed 's/^/# /'
check "it said so" grep -q 'images.list unchanged' "$T/p2.log"
check "the tarball was not imported again" grep -q 'shared-a.tar imported already' "$T/p2.log"
check_eq "daemon.json: still one cache mirror" 1 "$(jq '[.["registry-mirrors"][] | select(. == "http://127.0.0.1:5000")] | length' "$daemon")"

# --- Fails loudly -------------------------------------------------------------------------------

provision "$T/p3.log" MICROSCALE_CAPACITY=many
check_eq "a bad variable: provision exits 1" 1 "$?"
check "it names the variable" grep -q 'FAILED: MICROSCALE_CAPACITY must be a JSON number' "$T/p3.log"
check "and writes no config" cmp -s <(snapshot "$R") "$T/after"
# Into another root, with the upstream gone: the prewarm cannot have its image, the bake fails.
provision "$T/p4.log" DESTDIR="$T/root2" MICROSCALE_UPSTREAM_URL=http://127.0.0.1:9 MICROSCALE_IMAGES_DIR="$T/none"
check_eq "an unreachable upstream: provision exits 1" 1 "$?"
check "it says the prewarm failed" grep -q 'FAILED: prewarm' "$T/p4.log"
