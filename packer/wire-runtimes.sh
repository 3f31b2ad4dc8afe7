#!/bin/sh
# wire-runtimes.sh [--root DIR] [--config FILE] [--mirror URL]: points Docker and containerd at
# the node-local microscale cache, without clobbering what is already there.
#
#  - DIR/etc/docker/daemon.json gets URL (default http://127.0.0.1:5000) in "registry-mirrors":
#    every other key and mirror is kept, the URL is not added twice, the file is created when
#    absent. jq does the merge (never sed on JSON); the new file is written beside the old one and
#    renamed over it, so a crash leaves one or the other, never half of each.
#  - DIR/etc/containerd/certs.d/<registry>/hosts.toml for docker.io and every other registry in
#    the "upstreams" of the registry config (default DIR/etc/microscale/registry.json): the
#    registry's real URL as `server`, the cache as a pull+resolve mirror in front of it. Files we
#    write carry the marker line below; a hosts.toml without it is someone else's and is left
#    alone, and ours are rewritten or, when their registry left the config, removed.
#
# Docker reads registry-mirrors again on SIGHUP, so a running docker is reloaded (not with
# --root). containerd reads hosts.toml at each pull; only its CRI plugin needs config_path set
# (see the README), which this script reports but does not edit.
set -eu

MARKER="# microscale: written by wire-runtimes.sh; delete this line to keep your own edits"
root=
config=
mirror=http://127.0.0.1:5000

die() {
	echo "wire-runtimes: $*" >&2
	exit 1
}
say() { echo "wire-runtimes: $*"; }

while [ $# -gt 0 ]; do
	case $1 in
	--root) [ $# -ge 2 ] || die "--root needs a directory"; root=${2%/}; shift 2 ;;
	--config) [ $# -ge 2 ] || die "--config needs a file"; config=$2; shift 2 ;;
	--mirror) [ $# -ge 2 ] || die "--mirror needs a URL"; mirror=$2; shift 2 ;;
	-h | --help) sed -n '2,18s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) die "unknown argument: $1 (try --help)" ;;
	esac
done
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
config=${config:-$root/etc/microscale/registry.json}

# write_atomic FILE MODE: stdin to FILE.tmp.PID, then renamed over FILE.
write_atomic() {
	tmp=$1.tmp.$$
	if ! { cat >"$tmp" && chmod "$2" "$tmp" && mv -f "$tmp" "$1"; }; then
		rm -f "$tmp"
		die "cannot write $1"
	fi
}

# --- Docker -------------------------------------------------------------------------------------

# shellcheck disable=SC2016 # $m is jq's
HAS_MIRROR='(.["registry-mirrors"] // []) | any(.[]; . == $m)'
# shellcheck disable=SC2016
ADD_MIRROR='.["registry-mirrors"] = ((.["registry-mirrors"] // []) + [$m])'

wire_docker() {
	dir=$root/etc/docker
	file=$dir/daemon.json
	mkdir -p "$dir"
	if [ ! -s "$file" ]; then
		jq -n --arg m "$mirror" "$ADD_MIRROR" | write_atomic "$file" 0644
		say "$file: created with registry-mirrors [$mirror]"
		return 0
	fi
	jq -e 'type == "object"' "$file" >/dev/null 2>&1 ||
		die "$file: not a JSON object; left as it is (fix it, then run again)"
	jq -e '(.["registry-mirrors"] // []) | type == "array"' "$file" >/dev/null ||
		die "$file: registry-mirrors is not an array; left as it is"
	if jq -e --arg m "$mirror" "$HAS_MIRROR" "$file" >/dev/null; then
		say "$file: already has $mirror"
		return 0
	fi
	mode=$(stat -c %a "$file")
	jq --arg m "$mirror" "$ADD_MIRROR" "$file" | write_atomic "$file" "$mode"
	say "$file: added $mirror to registry-mirrors"
	if [ -z "$root" ] && command -v systemctl >/dev/null && systemctl is-active -q docker 2>/dev/null; then
		systemctl reload docker && say "docker reloaded"
	fi
}

# --- containerd ---------------------------------------------------------------------------------

# server_of HOST: the registry's own URL (docker.io's API is not served on docker.io itself).
server_of() {
	case $1 in
	docker.io) echo https://registry-1.docker.io ;;
	*) echo "https://$1" ;;
	esac
}

is_ours() { [ -f "$1" ] && head -n 1 "$1" | grep -qxF "$MARKER"; }

# hosts_toml HOST: what we want in HOST's hosts.toml.
hosts_toml() {
	cat <<EOF
$MARKER
# Pulls for $1 go to the node-local cache first; a 404 from it falls through to server.
server = "$(server_of "$1")"

[host."$mirror"]
  capabilities = ["pull", "resolve"]
EOF
}

wire_host() {
	dir=$root/etc/containerd/certs.d/$1
	file=$dir/hosts.toml
	if [ -e "$file" ] && ! is_ours "$file"; then
		say "$file: not written by microscale, kept as it is"
		return 0
	fi
	if is_ours "$file" && hosts_toml "$1" | cmp -s - "$file"; then
		say "$file: up to date"
		return 0
	fi
	mkdir -p "$dir"
	hosts_toml "$1" | write_atomic "$file" 0644
	say "$file: written"
}

wire_containerd() {
	[ -f "$config" ] || die "$config: no registry config (run make install first, or give --config)"
	hosts=$(jq -r '(.upstreams // {}) | keys[]' "$config") || die "$config: cannot read upstreams"
	hosts=$(printf 'docker.io\n%s\n' "$hosts" | grep -v '^$' | sort -u)
	for h in $hosts; do
		case $h in
		*/* | .* | *..*) die "$config: upstreams: '$h' is not a registry host" ;;
		esac
		wire_host "$h"
	done
	# Ours for a registry that left the config: remove it, or containerd keeps asking the cache.
	for file in "$root"/etc/containerd/certs.d/*/hosts.toml; do
		is_ours "$file" || continue
		h=$(basename "$(dirname "$file")")
		echo "$hosts" | grep -qxF "$h" && continue
		rm -f "$file"
		rmdir "$(dirname "$file")" 2>/dev/null || true
		say "$file: removed ($h is no longer an upstream)"
	done
	ctoml=$root/etc/containerd/config.toml
	if [ -f "$ctoml" ] && ! grep -q 'config_path *= *"/etc/containerd/certs.d"' "$ctoml"; then
		say "note: $ctoml has no config_path = \"/etc/containerd/certs.d\"; CRI pulls need it (ctr: --hosts-dir)"
	fi
}

wire_docker
wire_containerd
