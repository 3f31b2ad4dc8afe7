#!/bin/bash
# Nothing the cache makes durable is fsynced on its event loop: a cold pull (blobs, manifest, tag)
# and a tags/list through a cache under strace must show no fsync or fdatasync system call from
# any of its threads: every one goes through io_uring (shared/syncq.c), and the syncq says so.
# shellcheck source-path=SCRIPTDIR/../lib
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"

command -v strace >/dev/null || { echo "# skip: strace is not installed (make deps installs it)"; exit 0; }
fixtures_upstream_start || exit 1
CACHE_ROOT=$T/cache
CACHE_PORT=$(free_port)
CACHE=127.0.0.1:$CACHE_PORT CACHE_URL=http://127.0.0.1:$CACHE_PORT
CACHE_LOG=$T/cache.log
spawn "$CACHE_LOG" strace -f -qq -e trace=fsync,fdatasync,io_uring_enter -o "$T/strace" \
	"$MS_BUILD/microscale-registry" -d --listen "$CACHE" --root "$CACHE_ROOT" \
	--upstream "$UPSTREAM_URL" --log-level debug
wait_port "$CACHE_PORT" "$SPAWNED" || exit 1
# The daemon is strace's child: a signal to strace would only detach it, so stop the daemon.
CACHE_PID=$(pgrep -P "$SPAWNED" -f microscale-registry)
[ -n "$CACHE_PID" ] || { echo "not ok - the traced daemon is running"; exit 1; }
MS_PIDS+=("$CACHE_PID")

check "a cold pull through the cache" cache_copy "$FIX_OCI" "dir:$T/out"
check_eq "tags/list through the cache" 200 "$(cache_curl "/v2/library/oci-small/tags/list")"
check "the blobs, manifest and tag are stored" \
	[ -n "$(find "$CACHE_ROOT/manifests" -type f)" ] && [ -n "$(find "$CACHE_ROOT/tags" -type f)" ]
kill -TERM "$CACHE_PID"
check "SIGTERM stops the traced daemon" wait_for 10 bash -c "! kill -0 $CACHE_PID 2>/dev/null"
wait_for 10 bash -c "! kill -0 $SPAWNED 2>/dev/null" # strace, done writing its trace
if grep -q 'io_uring_enter' "$T/strace"; then
	check_eq "no fsync or fdatasync system call: all went through io_uring" "" \
		"$(grep -E 'fsync\(|fdatasync\(' "$T/strace" | head -3)"
else
	echo "# skip: no io_uring here (the syncq falls back to a blocking fsync, and logs it)"
fi
