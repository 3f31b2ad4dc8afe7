# Real pulling clients through the cache: containerd's ctr with a hosts.toml mirror (it adds
# ?ns=docker.io) and dockerd with registry-mirrors; image digests equal to the upstream's.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"
. "$MS_ROOT/tests/lib/clients.sh"
clients_need_root || exit 0

fixtures_upstream_start || exit 1
cache_start --upstream "$UPSTREAM_URL" || exit 1
containerd_start || exit 1
containerd_mirror docker.io "$CACHE_URL"

# ctr: the digest it records for the image is the manifest (or index) digest it resolved.
for p in FIX_OCI FIX_INDEX FIX_SHARED_A FIX_SHARED_B; do
	image=${!p}
	want=$(eval echo "\$${p}_DIGEST")
	check "ctr pull docker.io/$image through the cache" ctr_pull "docker.io/$image" >/dev/null
	check_eq "ctr: $image digest" "$want" \
		"$($CTR image ls | awk -v r="docker.io/$image" '$1 == r { print $3 }')"
done
check "ctr requests carried ?ns=docker.io" grep -q 'query="ns=docker.io"' "$CACHE_LOG"
check "ctr used the store for the shared layer (fetched upstream once)" \
	test "$(upstream_count_gets "blobs/$FIX_SHARED_LAYER")" = 1

# dockerd: RepoDigests holds the digest it pulled by.
dockerd_start "$CACHE_URL" || exit 1
for p in FIX_DOCKER FIX_LIST FIX_BIG; do
	image=${!p}
	want=$(eval echo "\$${p}_DIGEST")
	check "docker pull $image through the mirror" docker_pull "docker.io/$image" >/dev/null
	name=${image%%:*}
	check_eq "docker: $image digest" "${name#library/}@$want" \
		"$($DOCKER image inspect --format '{{index .RepoDigests 0}}' "$image" 2>/dev/null)"
done
check "dockerd never fell back past the mirror" bash -c "! grep -q 'proxyconnect' '$T/dockerd.log'"
dockerd_stop
containerd_stop
cache_stop
check_eq "cache exits 0 on SIGTERM" 0 "$?"
