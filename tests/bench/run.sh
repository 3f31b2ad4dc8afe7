#!/bin/bash
# make bench: microscale side by side, in one run and on the same files, with what a user would
# deploy instead: Debian's docker-registry as a pull-through proxy ("peer") and nginx serving
# microscale's own blob files with sendfile (the raw limit of this machine). Steps 1-7 (the
# "registry" steps) run on loopback; step 8 ("cluster") on a cluster of its own.
#   1 warm manifest GETs by digest and by tag, wrk at 32 connections: req/s, p50, p99
#   2 warm blob throughput, 1 and 16 clients reading the big layer to /dev/null: MB/s
#   3 cold pull of the big image with skopeo: direct from the upstream, through microscale,
#     through the peer, each with an empty store
#   4 herd: 20 cold GETs of the big layer at once through a HERD_MBPS link: wall time and the
#     upstream's GET count
#   5 peak RSS (VmHWM): idle, after steps 1-2, during the herd
#   6 the scaler: demand change to Marathon PUT, median and p99 (Marathon emulator)
#   7 time to capacity: 1 -> 10 instances with the emulator's pull-time model; no node cache,
#     microscale cold + gate, microscale prewarmed + gate
#   8 time to capacity on a cluster (tests/cluster/: agents with a real dockerd each, real
#     pulls, real containers): 0 -> 2 tasks per agent of a fresh BENCH_CL_MIB image; remote,
#     a central docker-registry proxy cold and warm, microscale store / cold / runtime
#     (tests/bench/steps_cluster.sh)
# Contenders take turns within each of ROUNDS rounds; the table gives medians and the ratio to
# microscale, and goes to tests/bench/RESULTS.md with the machine and the date.
#
# Usage: tests/bench/run.sh [BUILD_DIR]   (make bench builds and installs what it needs first)
#   BENCH_QUICK=1   every step at a tiny size, one round (make test runs this; it checks that
#                   the steps ran, never how fast); its table goes to BUILD_DIR/RESULTS-quick.md
#   BENCH_STEPS     "registry cluster" (default), or either alone: a run of one replaces only
#                   its own section of BENCH_RESULTS and keeps the other
#   ROUNDS (3), BENCH_BIG_MIB (200), WRK_SECONDS (5), DEMAND_CHANGES (40), LINK_MBPS (20, the
#   remote link of steps 7 and 8), HERD_MBPS (100, the link of step 4), START_S (1, the
#   emulator's deployment time), BENCH_RESULTS (the file the table goes to)
#   BENCH_BASELINE  a git revision (or a build directory holding microscale-registry): steps
#                   1-5 gain the contender "baseline", that build, so a change is compared
#                   old against new in the same run; the targets then include "no slower"
#   step 8: BENCH_CL_MIB (100), BENCH_CL_AGENTS (3, every set-up), BENCH_CL_SCALE ("2 4 6": the
#   agent counts of the warm proxy and microscale runtime), LAN_MBPS (125, a host's 1 Gb/s LAN
#   link, the proxy's and the tier's)
set -u
MS_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if ! MS_BUILD=$(cd "${1:-build}" 2>/dev/null && pwd); then
	echo "bench: no build in ${1:-build} (make bench builds it)" >&2
	exit 1
fi
export MS_ROOT MS_BUILD
# shellcheck source-path=SCRIPTDIR/../lib
. "$MS_ROOT/tests/lib/common.sh"
. "$MS_ROOT/tests/lib/upstream.sh"
. "$MS_ROOT/tests/lib/fixtures.sh"
. "$MS_ROOT/tests/lib/cache.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/lib/scaler.sh"
. "$MS_ROOT/tests/lib/cluster.sh"

if [ -n "${BENCH_QUICK:-}" ]; then
	: "${ROUNDS:=1}" "${BENCH_BIG_MIB:=4}" "${WRK_SECONDS:=1}" "${DEMAND_CHANGES:=4}"
	: "${BENCH_CL_MIB:=2}" "${BENCH_CL_SCALE:=2}"
	: "${BENCH_RESULTS:=$MS_BUILD/RESULTS-quick.md}"
fi
ROUNDS=${ROUNDS:-3} BENCH_BIG_MIB=${BENCH_BIG_MIB:-200} WRK_SECONDS=${WRK_SECONDS:-5}
DEMAND_CHANGES=${DEMAND_CHANGES:-40} LINK_MBPS=${LINK_MBPS:-20} HERD_MBPS=${HERD_MBPS:-100}
START_S=${START_S:-1} BENCH_STEPS=${BENCH_STEPS:-registry cluster}
BENCH_CL_MIB=${BENCH_CL_MIB:-100} BENCH_CL_AGENTS=${BENCH_CL_AGENTS:-3}
BENCH_CL_SCALE=${BENCH_CL_SCALE:-2 4 6} LAN_MBPS=${LAN_MBPS:-125}
CL_BYTES=$((BENCH_CL_MIB * 1048576))
BENCH_RESULTS=${BENCH_RESULTS:-$MS_ROOT/tests/bench/RESULTS.md}
BENCH_COMMAND="make bench${BENCH_QUICK:+ BENCH_QUICK=1}"
[ "$BENCH_STEPS" = "registry cluster" ] || BENCH_COMMAND+=" BENCH_STEPS=\"$BENCH_STEPS\""

# shellcheck source-path=SCRIPTDIR
. "$MS_ROOT/tests/bench/images.sh"
. "$MS_ROOT/tests/bench/lib.sh"
. "$MS_ROOT/tests/bench/steps_registry.sh"
. "$MS_ROOT/tests/bench/steps_scaler.sh"
. "$MS_ROOT/tests/bench/steps_cluster.sh"
. "$MS_ROOT/tests/bench/report.sh"

step() { echo "bench: $*" >&2; }
# runs WHAT: "registry" or "cluster" is among BENCH_STEPS.
runs() { [[ " $BENCH_STEPS " == *" $1 "* ]]; }

for s in $BENCH_STEPS; do
	case $s in registry | cluster) ;; *) bench_fail "BENCH_STEPS: no step set '$s' (registry, cluster)" ;; esac
done
for c in wrk nginx docker-registry skopeo jq curl python3; do
	command -v "$c" >/dev/null || bench_fail "$c is missing (make bench installs it: make deps)"
done
for b in microscale-registry microscale-scaler; do
	[ -x "$MS_BUILD/$b" ] || bench_fail "$MS_BUILD/$b is not built (make bench builds it)"
done
if runs cluster; then
	[ "$(id -u)" = 0 ] || bench_fail "step 8 (the cluster) needs root; BENCH_STEPS=registry runs without"
	for c in dockerd docker ip nsenter; do
		command -v "$c" >/dev/null || bench_fail "$c is missing (make deps)"
	done
fi

fixtures_ready && bench_images_ready || bench_fail "building the bench image"
[ -z "${BENCH_BASELINE:-}" ] || bench_baseline_build "$BENCH_BASELINE" ||
	bench_fail "building the baseline $BENCH_BASELINE"

# Steps 1-7, on loopback.
run_registry() {
	bench_upstream_start "$T/upstream" || bench_fail "starting the upstream"
	upstream_remote_start "$HERD_MBPS" || bench_fail "starting the herd's link"
	HERD_URL=$REMOTE_URL
	upstream_remote_start "$LINK_MBPS" || bench_fail "starting the slow link"
	LINK_WAIT_S=$(awk -v b="$BENCH_BIG_BYTES" -v r="$LINK_MBPS" 'BEGIN { print int(b / r / 1e6) + 1 }')
	BENCH_SETUP="bench/big:1: one layer of $BENCH_BIG_LAYER_SIZE bytes; $ROUNDS round(s), wrk\
 ${WRK_SECONDS} s, $DEMAND_CHANGES demand changes, remote link $LINK_MBPS MB/s (herd:\
 $HERD_MBPS MB/s), container start ${START_S} s; build $(basename "$MS_BUILD"); peer:\
 docker-registry $(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null), nginx\
 $(dpkg-query -W -f='${Version}' nginx-light 2>/dev/null) (1 worker)."
	step "$BENCH_SETUP"

	# The warm contenders: fresh, their idle peak taken, then filled by one pull of the image.
	ms_start "$T/ms-warm" "$UPSTREAM_URL" || bench_fail "starting microscale"
	MS_W=$ADDR MS_W_PID=$PID
	peer_start "$T/peer-warm" "$UPSTREAM_URL" || bench_fail "starting the peer"
	PEER_W=$ADDR PEER_W_PID=$PID
	if [ -n "$BASE_BUILD" ]; then
		MS_BUILD=$BASE_BUILD ms_start "$T/base-warm" "$UPSTREAM_URL" || bench_fail "starting the baseline"
		BASE_W=$ADDR BASE_W_PID=$PID
	fi
	sleep 1
	for c in $MS_CONTENDERS peer; do
		record 5 "peak RSS idle" $c "$(hwm_kib "$(contender_pid $c)")" KiB
		skopeo_pull "$(contender_addr $c)" || bench_fail "filling the warm $c"
	done
	curl -sf -H "Accept: $FIX_ACCEPT" -o "$T/manifest" "$UPSTREAM_URL/v2/$BENCH_BIG_REPO/manifests/1" &&
		nginx_add_manifest "$T/nginx" "$BENCH_BIG_REPO" "$BENCH_BIG_DIGEST" "$T/manifest" &&
		nginx_add_manifest "$T/nginx" "$BENCH_BIG_REPO" 1 "$T/manifest" &&
		nginx_start "$T/nginx" "$T/ms-warm" || bench_fail "starting nginx"
	NGINX_W=$ADDR NGINX_W_PID=$PID

	step "1/8 warm manifests (wrk, 32 connections)"
	step_manifests
	step "2/8 warm blobs (1 and 16 clients)"
	step_blobs
	for c in $MS_CONTENDERS peer; do
		record 5 "peak RSS after load" $c "$(hwm_kib "$(contender_pid $c)")" KiB
	done
	step "3/8 cold pull (skopeo)"
	step_cold_pull
	step "4/8 herd (20 cold GETs at once)"
	step_herd
	step "6/8 scaler: demand change to PUT"
	demand_start || bench_fail "starting the demand server"
	step_scaler_latency
	step "7/8 time to capacity (1 -> 10 instances)"
	step_time_to_capacity
	# Done with the warm contenders: nothing of steps 1-7 runs beside step 8.
	stop_pid "$MS_W_PID"; stop_pid "$PEER_W_PID"; stop_pid "$NGINX_W_PID"
	[ -z "$BASE_BUILD" ] || stop_pid "$BASE_W_PID"
}

# Step 8, on a cluster of its own.
run_cluster() {
	BENCH_CL_SETUP="A fresh image per set-up and round (one layer: $BENCH_CL_MIB MiB of random\
 bytes and busybox, gzip -1), 0 -> 2 tasks per agent; $ROUNDS round(s); uplink $LINK_MBPS MB/s,\
 shared; the central proxy's and the tier's LAN link $LAN_MBPS MB/s each; $BENCH_CL_AGENTS\
 agents, and the warm proxy and microscale runtime at ${BENCH_CL_SCALE// /, } agents; dockerd\
 $(dockerd --version | awk '{ print $3 }' | tr -d ,), docker-registry\
 $(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null); build $(basename "$MS_BUILD")."
	step "$BENCH_CL_SETUP"
	step "8/8 time to capacity on a cluster"
	step_cluster
}

if runs registry; then run_registry; fi
if runs cluster; then run_cluster; fi
bench_report "$BENCH_RESULTS"
echo "bench: table written to $BENCH_RESULTS"
# The last word is what missed: a target missed is never only somewhere in the tables.
missed=$(grep -E '^- MISSED' "$BENCH_RESULTS")
if [ -n "$missed" ]; then
	echo "bench: $(grep -c . <<<"$missed") target(s) missed:"
	echo "$missed"
else
	echo "bench: every target met"
fi
