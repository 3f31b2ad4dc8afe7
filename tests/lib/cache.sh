# The microscale cache under test. Sourced after tests/lib/common.sh.
# shellcheck shell=bash

# cache_start [FLAGS…]: starts microscale-registry in the foreground on a free loopback port with
# its store in $T/cache (flags may add -c FILE, --upstream URL, …); waits until it answers.
# Sets CACHE_PORT, CACHE (host:port), CACHE_URL, CACHE_PID, CACHE_LOG, CACHE_ROOT.
cache_start() {
	CACHE_ROOT=${CACHE_ROOT:-$T/cache}
	CACHE_PORT=$(free_port)
	CACHE=127.0.0.1:$CACHE_PORT
	CACHE_URL=http://$CACHE
	CACHE_LOG=$T/cache.$CACHE_PORT.log
	spawn "$CACHE_LOG" "$MS_BUILD/microscale-registry" -d --listen "$CACHE" --root "$CACHE_ROOT" "$@"
	CACHE_PID=$SPAWNED
	wait_port "$CACHE_PORT" "$CACHE_PID" || { tail -20 "$CACHE_LOG" >&2; return 1; }
}

# cache_start_on_tmpfs SIZE [FLAGS…]: cache_start with the store on a tmpfs of SIZE mounted at
# $T/small (a disk that fills up); stops the cache and unmounts it on exit.
cache_start_on_tmpfs() {
	local size=$1
	shift
	mkdir -p "$T/small" && mount -t tmpfs -o size="$size" tmpfs "$T/small" || return 1
	trap 'cache_stop >/dev/null 2>&1; umount "$T/small"; ms_cleanup' EXIT
	CACHE_ROOT=$T/small/cache
	cache_start "$@"
}

# cache_stop: SIGTERM; returns the daemon's exit status.
cache_stop() {
	local i
	kill -TERM "$CACHE_PID" 2>/dev/null
	for ((i = 0; i < 200; i++)); do
		kill -0 "$CACHE_PID" 2>/dev/null || break
		sleep 0.05
	done
	wait "$CACHE_PID"
}

# cache_copy IMAGE DEST [FLAGS…]: skopeo copy of REPO:TAG (or REPO@DIGEST) through the cache.
cache_copy() {
	local image=$1 dest=$2
	shift 2
	skopeo copy -q --src-tls-verify=false "$@" "docker://$CACHE/$image" "$dest"
}

# cache_curl PATH [CURL FLAGS…]: prints "STATUS" then the body to stdout.
cache_curl() {
	local path=$1
	shift
	curl -s -o "$T/body" -w '%{http_code}' "$@" "$CACHE_URL$path"
}
