#!/bin/bash
# Without -d the cache detaches (before its loop, io_uring ring and curl handle exist): the
# command returns 0 once the daemon is up, or 1 when its start failed; the daemon, in a session
# of its own, serves a pull and stops cleanly on SIGTERM.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"

fixtures_upstream_start || exit 1
CACHE_PORT=$(free_port)
CACHE=127.0.0.1:$CACHE_PORT
CACHE_LOG=$T/daemon.log
"$MS_BUILD/microscale-registry" --listen "$CACHE" --root "$T/cache" --upstream "$UPSTREAM_URL" \
	>"$CACHE_LOG" 2>&1
check_eq "the command returns 0 once the daemon is up" 0 $?
pid=$(pgrep -f -- "--listen $CACHE --root $T/cache")
check "the daemon runs in the background" [ -n "$pid" ]
[ -n "$pid" ] || exit 1
MS_PIDS+=("$pid")
check_eq "the daemon leads its own session" "$pid" "$(ps -o sid= -p "$pid" | tr -d ' ')"
check "it listens at once: the parent waited for its start" \
	bash -c "exec 3<>/dev/tcp/127.0.0.1/$CACHE_PORT"

rm -rf "$T/out"
check "skopeo copy of $FIX_OCI through the daemonised cache" cache_copy "$FIX_OCI" "dir:$T/out"
check "its manifest is stored" [ -n "$(find "$T/cache/manifests" -type f)" ]
check "its tag is stored" [ -n "$(find "$T/cache/tags" -type f)" ]

kill -TERM "$pid"
check "SIGTERM stops it" wait_for 10 bash -c "! kill -0 $pid 2>/dev/null"
check "it logged its shutdown" grep -q 'shutdown.*signal=15' "$CACHE_LOG"
check_eq "no sanitizer report, no error logged" "" \
	"$(grep -E 'Sanitizer|runtime error|level=error' "$CACHE_LOG")"

# A start that fails in the child (its port is taken) is the command's exit status.
"$MS_BUILD/microscale-registry" --listen "127.0.0.1:$UPSTREAM_PORT" --root "$T/cache2" \
	>"$T/fail.log" 2>&1
check_eq "a failed start returns 1" 1 $?
check "and says why" grep -q 'listen' "$T/fail.log"
