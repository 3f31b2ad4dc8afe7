#!/bin/bash
# Runs every test against the build in $1: the cmocka unit binaries, then each integration
# script. Unit binaries report through cmocka; scripts print "ok - …" / "not ok - …" lines.
# Ends with the line "N passed, N failed".
set -u
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
export MS_BUILD="$root/$build" MS_ROOT="$root"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0 failed=0 skipped=0
log=$(mktemp -d /tmp/ms-test.XXXXXX)

# count FILE: adds its cmocka or "ok"/"not ok" lines to the totals; sets $counted. A "# skip:
# reason" line is a check that could not run here: counted as skipped, never as passed.
count() {
	local p f s
	p=$(grep -cE '^(\[       OK \]|ok )' "$1")
	f=$(grep -cE '^(\[  FAILED  \] [^0-9]|not ok )' "$1")
	s=$(grep -c '^# skip: ' "$1")
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	counted="$p passed, $f failed"
	[ "$s" = 0 ] || counted="$counted, $s skipped ($(sed -n 's/^# skip: //p' "$1" | head -1))"
}

for t in $(find "$MS_BUILD/tests/unit" -type f -name 'test_*' -perm -u+x | sort); do
	name=${t#"$MS_BUILD/"}
	out="$log/$(basename "$t").log"
	"$t" >"$out" 2>&1
	rc=$?
	count "$out"
	echo "== $name: $counted"
	if [ $rc -ne 0 ]; then
		grep -E '^\[  (FAILED|ERROR) \]|runtime error|AddressSanitizer' "$out" | head -20
		grep -qE '^\[  FAILED  \] [^0-9]' "$out" || { failed=$((failed + 1)); echo "not ok - $name exited $rc"; }
	fi
done

# One cluster (tests/cluster/) shared by every test that calls cluster_up (tests/lib/cluster.sh),
# started before the first of them and removed at the end: starting one per test would cost each
# a start and a stop. A test that changes the shared cluster undoes what it changed.
cluster_share() {
	[ -z "${MS_CLUSTER_ENV:-}" ] || return 0
	MS_CLUSTER_ENV=$("$root/tests/cluster/start.sh" --owner $$ --build "$MS_BUILD" \
		2>"$log/cluster.start.log" | tail -1)
	if [ -f "$MS_CLUSTER_ENV" ]; then
		export MS_CLUSTER_ENV
		trap 'cluster_unshare >/dev/null' EXIT # also when the run is cut short
	else
		echo "# no shared cluster (see $log/cluster.start.log): each test starts its own"
		MS_CLUSTER_ENV=none # not tried again; cluster_up finds it not alive
	fi
}

# Stops the shared cluster and checks that nothing of it is left (counted like a test).
cluster_unshare() {
	local st left
	[ -f "${MS_CLUSTER_ENV:-}" ] || return 0
	st=$(dirname "$MS_CLUSTER_ENV")
	"$root/tests/cluster/stop.sh" "$st" >"$log/cluster.stop.log" 2>&1
	left=$(MS_ROOT=$root bash -c '. "$MS_ROOT/tests/lib/common.sh"; . "$MS_ROOT/tests/lib/cluster.sh"; cluster_leftovers "${1##*-}"' _ "$st" 2>&1)
	MS_CLUSTER_ENV=""
	if [ -z "$left" ]; then
		passed=$((passed + 1))
		echo "ok - the shared cluster is gone after the tests: no namespace, link, process, mount"
	else
		failed=$((failed + 1))
		echo "not ok - the shared cluster left: $(echo "$left" | tr '\n' ';')"
	fi
}

only=${MS_TESTS:-}
for t in "$root"/tests/integration/*.sh; do
	[ -e "$t" ] || continue
	name=$(basename "$t" .sh)
	[ -n "$only" ] && ! echo " $only " | grep -q " $name " && continue
	grep -q '^[^#]*cluster_up' "$t" && cluster_share
	out="$log/$name.log"
	start=$(date +%s)
	bash "$t" >"$out" 2>&1
	rc=$?
	count "$out"
	echo "== $name ($(($(date +%s) - start))s): $counted"
	grep -E '^not ok ' "$out"
	if [ $rc -ne 0 ] && ! grep -q '^not ok ' "$out"; then
		failed=$((failed + 1))
		echo "not ok - $name exited $rc"; tail -20 "$out"
	fi
done
cluster_unshare
echo "logs: $log"
[ "$skipped" = 0 ] || echo "$skipped skipped (the == lines above say why)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
