# The bench's plumbing: recording figures, timing, and starting the contenders. Sourced by
# tests/bench/run.sh after tests/lib/{common,upstream,fixtures,cache}.sh.
# shellcheck shell=bash

RESULTS_TSV=$T/results.tsv # STEP <tab> MEASURE <tab> CONTENDER <tab> VALUE <tab> UNIT, per round

# record STEP MEASURE CONTENDER VALUE UNIT: one figure of one round.
record() {
	printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS_TSV"
}

# bench_fail MESSAGE: says what broke and stops the bench (the EXIT trap stops the daemons).
bench_fail() {
	echo "bench: FAILED: $*" >&2
	exit 1
}

now_ns() { date +%s%N; }
# seconds_since T0_NS: seconds since T0 (from now_ns), with microseconds.
seconds_since() {
	awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.6f", (b - a) / 1e9 }'
}

# stats P…: reads numbers, one per line; prints the P-th percentiles (nearest rank), in order.
stats() {
	sort -g | awk -v ps="$*" '{ v[NR] = $1 } END {
		n = split(ps, p, " ")
		for (i = 1; i <= n; i++) {
			r = int(p[i] / 100 * NR + 0.999999)
			printf "%s%s", (i > 1 ? " " : ""), v[r < 1 ? 1 : r]
		}
		print ""
	}'
}

# hwm_kib PID: the process's peak resident set (VmHWM) in KiB.
hwm_kib() {
	awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"
}

# --- contenders: each start function sets ADDR (host:port) and PID --------------------------------

# The microscale builds that contend: this one, and "baseline" when BENCH_BASELINE names one.
MS_CONTENDERS=microscale BASE_BUILD=""

# bench_baseline_build REV|DIR: BASE_BUILD from a build directory as it is, or from git revision
# REV of this tree, exported and built (plain -O2, as make bench builds) under $T.
bench_baseline_build() {
	local src=$T/baseline
	if [ -x "$1/microscale-registry" ]; then
		BASE_BUILD=$(cd "$1" && pwd)
	else
		mkdir -p "$src" && git -C "$MS_ROOT" archive "$1" | tar -x -C "$src" &&
			make -C "$src" -j2 all >"$T/baseline-build.log" 2>&1 || return 1
		BASE_BUILD=$src/build
	fi
	MS_CONTENDERS="microscale baseline"
	step "baseline: $1 ($(basename "$BASE_BUILD")) against this build"
}

# ms_start ROOT UPSTREAM_URL [FLAGS…]: microscale with its store in ROOT.
ms_start() {
	local root=$1 up=$2
	shift 2
	CACHE_ROOT=$root cache_start --upstream "$up" --log-level warn "$@" || return 1
	ADDR=$CACHE PID=$CACHE_PID
}

# peer_start DIR UPSTREAM_URL: Debian's docker-registry as a pull-through proxy (distribution's
# proxy mode), storage in DIR.
peer_start() {
	local dir=$1 port
	port=$(free_port)
	mkdir -p "$dir" || return 1
	cat >"$dir/config.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $dir/storage}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port, secret: bench}
proxy: {remoteurl: $2}
EOF
	spawn "$dir/log" docker-registry serve "$dir/config.yml"
	ADDR=127.0.0.1:$port PID=$SPAWNED
	wait_port "$port" "$PID"
}

# nginx_start DIR STORE: nginx, one worker with sendfile (the raw limit of the machine), serving
# microscale's store STORE at the registry's blob URLs and DIR/www (the manifest files) as is.
nginx_start() {
	local dir=$1 store=$2 port
	port=$(free_port)
	mkdir -p "$dir/www" || return 1
	cat >"$dir/nginx.conf" <<EOF
daemon off;
user root; # the store lives under a private (0700) dir
worker_processes 1;
pid $dir/pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $dir;
  server {
    listen 127.0.0.1:$port;
    root $dir/www;
    location /v2/ { default_type $FIX_MT_OCI_MANIFEST; }
    location ~ "^/v2/.+/blobs/sha256:(([0-9a-f]{2})[0-9a-f]{62})\$" {
      default_type application/octet-stream;
      alias $store/blobs/sha256/\$2/\$1;
    }
  }
}
EOF
	spawn "$dir/out" nginx -c "$dir/nginx.conf"
	ADDR=127.0.0.1:$port PID=$SPAWNED
	wait_port "$port" "$PID"
}

# nginx_add_manifest DIR REPO REF FILE: nginx serves FILE at /v2/REPO/manifests/REF.
nginx_add_manifest() {
	mkdir -p "$1/www/v2/$2/manifests" && cp "$4" "$1/www/v2/$2/manifests/$3"
}

# --- clients -----------------------------------------------------------------------------------

# wrk_manifest URL: wrk at 32 connections for WRK_SECONDS; prints "REQ_PER_S P50_MS P99_MS".
# One wrk thread: on two cores a second one would take the core the server under test runs on.
# Fails when any answer was not 2xx/3xx or a socket failed: a fast error is no result.
wrk_manifest() {
	wrk -t1 -c32 -d"${WRK_SECONDS}s" --latency -H "Accept: $FIX_ACCEPT" "$1" >"$T/wrk.out" 2>&1 ||
		return 1
	if grep -qE 'Non-2xx|Socket errors' "$T/wrk.out"; then
		cat "$T/wrk.out" >&2
		return 1
	fi
	awk 'function ms(v) {
			if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0
			if (v ~ /m$/) return v * 60000; return v * 1000 }
		$1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
		$1 == "Requests/sec:" { rps = $2 }
		END { if (rps == "" || p99 == "") exit 1; printf "%.0f %.3f %.3f\n", rps, p50, p99 }' \
		"$T/wrk.out"
}

# get_blob ADDR: one GET of the big layer to /dev/null; fails unless every byte came.
get_blob() {
	local got
	got=$(curl -sf -o /dev/null -w '%{size_download}' \
		"http://$1/v2/$BENCH_BIG_REPO/blobs/$BENCH_BIG_LAYER") &&
		[ "$got" = "$BENCH_BIG_LAYER_SIZE" ]
}

# get_blobs ADDR N: N GETs of the big layer at once; fails if any did.
get_blobs() {
	local i pids=() rc=0
	for ((i = 0; i < $2; i++)); do
		get_blob "$1" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || rc=1; done
	return $rc
}

# skopeo_pull ADDR: skopeo copy of the big image into a fresh dir (what a runtime pulls; skopeo
# checks the digests).
skopeo_pull() {
	rm -rf "$T/pulled"
	skopeo copy -q --src-tls-verify=false "docker://$1/$BENCH_BIG" "dir:$T/pulled"
}
