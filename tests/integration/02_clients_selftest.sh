#!/bin/bash
# Self-test of tests/lib/clients.sh: a plain Debian docker-registry plays the mirror; ctr (through
# hosts.toml) and dockerd (through --registry-mirror) must pull docker.io/library/tiny:1 from it,
# and leave no process or mount behind under $T.
# shellcheck source-path=SCRIPTDIR/../lib
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/clients.sh"
clients_need_root || exit 0

# A one-layer OCI image, made by hand and reproducibly (sorted tar, mtime 0, gzip -n).
oci=$T/oci
mkdir -p "$oci/blobs/sha256" "$T/layer"
echo hello >"$T/layer/hello.txt"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$T/layer" -cf "$T/layer.tar" hello.txt
gzip -n -c "$T/layer.tar" >"$T/layer.tgz"
# put FILE: stores FILE in the layout, prints "sha256:HEX SIZE"
put() {
	local h
	h=$(sha256sum <"$1" | cut -c1-64)
	cp "$1" "$oci/blobs/sha256/$h"
	echo "sha256:$h $(stat -c%s "$1")"
}
read -r layer lsize < <(put "$T/layer.tgz")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
	"$(sha256sum <"$T/layer.tar" | cut -c1-64)" >"$T/config.json"
read -r config csize < <(put "$T/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}' \
	"$config" "$csize" "$layer" "$lsize" >"$T/manifest.json"
read -r manifest msize < <(put "$T/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"1"}}]}' \
	"$manifest" "$msize" >"$oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"

# The mirror: docker-registry with a minimal config.
RP=$(free_port)
mkdir -p "$T/registry"
printf 'version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
	"$T/registry" "$RP" >"$T/registry.yml"
spawn "$T/registry.log" docker-registry serve "$T/registry.yml"
wait_port "$RP" "$SPAWNED" || exit 1
check "skopeo pushes the image to docker-registry" skopeo copy -q --dest-tls-verify=false \
	"oci:$oci:1" "docker://127.0.0.1:$RP/library/tiny:1"
MIRROR=http://127.0.0.1:$RP
quiet() { "$@" >>"$T/pulls.out" 2>&1; } # ctr's progress bars stay out of the results
# uris METHOD: the request URIs docker-registry logged for METHOD, one a line
uris() { grep -o "http.request.method=$1 [^\"]*\"[^\"]*\" http.request.uri=\"[^\"]*\"" "$T/registry.log" | sed 's/.*uri="//; s/"$//'; }

# containerd + ctr through hosts.toml
check "containerd starts" containerd_start
containerd_mirror docker.io "$MIRROR"
check "ctr pulls docker.io/library/tiny:1 through the mirror" quiet ctr_pull docker.io/library/tiny:1
check_eq "ctr stored the manifest digest" "$manifest" \
	"$($CTR image ls | awk '$1 == "docker.io/library/tiny:1" { print $3 }')"
check "ctr resolved the tag with HEAD ?ns=docker.io" grep -qx "/v2/library/tiny/manifests/1?ns=docker.io" <(uris HEAD)
check "ctr fetched the layer with ?ns=docker.io" grep -qx "/v2/library/tiny/blobs/$layer?ns=docker.io" <(uris GET)
ctr_pull docker.io/library/nosuch:1 >"$T/nosuch.out" 2>&1
check "after a mirror 404 ctr tries only the dead server 127.0.0.1:9" \
	grep -q 'dial tcp 127.0.0.1:9: connect: connection refused' "$T/nosuch.out"

# dockerd with registry-mirrors (it uses the containerd above)
nget=$(uris GET | wc -l)
check "dockerd starts" dockerd_start "$MIRROR"
check "docker pulls docker.io/library/tiny:1 through the mirror" quiet docker_pull docker.io/library/tiny:1
check_eq "docker has the image (id = config digest)" "$config" "$($DOCKER image inspect -f '{{.Id}}' tiny:1)"
check "dockerd fetched the layer without ?ns=" grep -qx "/v2/library/tiny/blobs/$layer" <(uris GET | tail -n +$((nget + 1)))
check "dockerd data stays under \$T" test -d "$T/docker/data/vfs"
dockerd_stop
containerd_stop
leftovers() { # containerd, shims, dockerd, runc still naming $T
	local p
	for p in /proc/[0-9]*; do
		case $(cat "$p/comm" 2>/dev/null) in containerd* | dockerd | runc) ;; *) continue ;; esac
		tr '\0' ' ' <"$p/cmdline" | grep -qF "$T/" && echo "${p#/proc/}"
	done
}
check_eq "no daemon or shim names \$T after the stops" "" "$(leftovers)"
check_eq "nothing mounted under \$T after the stops" "" "$(awk -v t="$T/" 'index($5, t) == 1' /proc/self/mountinfo)"
