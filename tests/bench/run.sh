#!/bin/bash
# make bench: microscale side by side with the peers a user would pick instead, in one run.
#  - pull of the big image (one 100 MiB layer) with skopeo: cold and warm, through microscale,
#    through Debian's docker-registry in proxy mode, and straight from the upstream;
#  - warm blob GETs with curl: microscale vs the proxy vs nginx serving the same files (the raw
#    limit of the machine).
# Each figure is the median of RUNS runs; the ratios are what to read (machines are noisy).
set -u
build=${1:-build}
root=$(cd "$(dirname "$0")/../.." && pwd)
export MS_ROOT=$root MS_BUILD=$root/$build
. "$root/tests/lib/common.sh"
. "$root/tests/lib/upstream.sh"
. "$root/tests/lib/fixtures.sh"
. "$root/tests/lib/cache.sh"
RUNS=${RUNS:-5}

fixtures_upstream_start || exit 1
UP=${UPSTREAM_URL#http://}

# median_ms VAR CMD…: runs CMD $RUNS times (each after `prepare`, untimed) and sets VAR to the
# median in ms. No command substitution: prepare may start daemons that must outlive it.
median_ms() {
	local var=$1 i t0 t1 times=()
	shift
	for ((i = 0; i < RUNS; i++)); do
		prepare
		t0=$(date +%s%N)
		"$@" >"$T/run.log" 2>&1 || { echo "FAILED: $* ($(tail -1 "$T/run.log"))" >&2; return 1; }
		t1=$(date +%s%N)
		times+=($(((t1 - t0) / 1000000)))
	done
	printf -v "$var" '%s' "$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"
}

# copy_big VAR, get_blob VAR: VAR names the variable holding host:port, read at run time since a
# cold run restarts the daemon on a new port.
copy_big() { skopeo copy -q --src-tls-verify=false "docker://${!1}/$FIX_BIG" "dir:$T/out"; }
get_blob() { curl -sf -o /dev/null "http://${!1}/v2/$FIX_BIG_REPO/blobs/$FIX_BIG_LAYER"; }

# docker-registry as a pull-through proxy of the same upstream.
proxy_start() {
	local port
	port=$(free_port)
	PROXY=127.0.0.1:$port
	mkdir -p "$T/proxy"
	rm -rf "$T/proxy/storage"
	cat >"$T/proxy/config.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $T/proxy/storage}, delete: {enabled: true}}
http: {addr: $PROXY, secret: bench}
proxy: {remoteurl: $UPSTREAM_URL}
EOF
	spawn "$T/proxy/log" docker-registry serve "$T/proxy/config.yml"
	PROXY_PID=$SPAWNED
	wait_port "$port" "$PROXY_PID"
}

# nginx serving microscale's own store files at the registry's blob URL: the raw limit.
nginx_start() {
	local port
	port=$(free_port)
	NGINX=127.0.0.1:$port
	mkdir -p "$T/nginx"
	cat >"$T/nginx/nginx.conf" <<EOF
daemon off;
user root; # the store lives under a private (0700) test dir
worker_processes 1;
pid $T/nginx/pid;
error_log $T/nginx/error.log;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $T/nginx;
  server {
    listen $NGINX;
    location ~ "^/v2/.+/blobs/sha256:(([0-9a-f]{2})[0-9a-f]{62})\$" {
      default_type application/octet-stream;
      alias $CACHE_ROOT/blobs/sha256/\$2/\$1;
    }
  }
}
EOF
	spawn "$T/nginx/out" nginx -c "$T/nginx/nginx.conf"
	wait_port "$port" "$SPAWNED"
}

ms_cold() { cache_stop >/dev/null 2>&1; rm -rf "$CACHE_ROOT" "$T/out"; cache_start --upstream "$UPSTREAM_URL" --log-level warn; }
proxy_cold() { stop_pid "$PROXY_PID"; rm -rf "$T/out"; proxy_start; }
just_out() { rm -rf "$T/out"; }

cache_start --upstream "$UPSTREAM_URL" --log-level warn || exit 1
proxy_start || exit 1

prepare() { just_out; }
median_ms direct copy_big UP
prepare() { ms_cold; }
median_ms ms_c copy_big CACHE
prepare() { proxy_cold; }
median_ms px_c copy_big PROXY
prepare() { just_out; }
median_ms ms_w copy_big CACHE
median_ms px_w copy_big PROXY

nginx_start || exit 1
RUNS=$((RUNS * 2))
median_ms ms_g get_blob CACHE
median_ms px_g get_blob PROXY
median_ms ng_g get_blob NGINX
rss=$(awk '/VmHWM/ { print $2 }' "/proc/$CACHE_PID/status")

# Prewarm throughput: --prewarm-once of every fixture image into an empty store, against plain
# curl fetching the same blobs from the same upstream, 4 at a time as prewarm does.
printf '%s\n' "$FIX_OCI" "$FIX_DOCKER" "$FIX_SHARED_A" "$FIX_SHARED_B" "$FIX_BIG" >"$T/prewarm.list"
# "REPO DIGEST" per blob (the upstream serves a blob only under a repository that holds it).
pairs=$(for p in FIX_OCI FIX_DOCKER FIX_SHARED_A FIX_SHARED_B FIX_BIG; do
	repo=${p}_REPO
	for b in $(eval "echo \$${p}_CONFIG \$${p}_LAYERS"); do echo "${!repo} $b"; done
done | sort -u -k2,2)
bytes=0
for b in $(awk '{ print $2 }' <<<"$pairs"); do bytes=$((bytes + $(fixtures_blob_size "$b"))); done
prewarm_once() { "$MS_BUILD/microscale-registry" --root "$T/pw" --upstream "$UPSTREAM_URL" --log-level warn --prewarm "$T/prewarm.list" --prewarm-once; }
# The baseline downloads to files on the same disk and syncs them, as the store must.
curl_blobs() {
	mkdir -p "$T/pw" &&
		xargs -P 4 -n 2 sh -c 'curl -sf -o "$1/${3#sha256:}" "$0/v2/$2/blobs/$3"' "$UPSTREAM_URL" "$T/pw" <<<"$pairs" &&
		sync -f "$T/pw"
}
prepare() { rm -rf "$T/pw"; }
median_ms pw_ms prewarm_once
median_ms curl_ms curl_blobs

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mib=$(awk -v s="$FIX_BIG_LAYER_SIZE" 'BEGIN { printf "%.0f", s / 1048576 }')
cat <<EOF

microscale bench: $FIX_BIG ($mib MiB layer), medians in ms
| what | microscale | docker-registry proxy | direct upstream / nginx | microscale vs proxy |
| --- | ---: | ---: | ---: | ---: |
| skopeo copy, cold cache | $ms_c | $px_c | $direct (direct) | $(ratio "$px_c" "$ms_c")x |
| skopeo copy, warm cache | $ms_w | $px_w | $direct (direct) | $(ratio "$px_w" "$ms_w")x |
| curl GET of the layer, warm | $ms_g | $px_g | $ng_g (nginx) | $(ratio "$px_g" "$ms_g")x |
cold through microscale / direct from upstream: $(ratio "$ms_c" "$direct")
warm microscale GET / nginx GET: $(ratio "$ms_g" "$ng_g")
microscale peak RSS: $rss KiB
prewarm of 5 images ($((bytes / 1048576)) MiB): --prewarm-once $pw_ms ms vs curl of the same blobs to disk (then sync) $curl_ms ms ($(ratio "$pw_ms" "$curl_ms")x)
EOF
