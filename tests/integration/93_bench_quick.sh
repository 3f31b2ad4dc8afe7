#!/bin/bash
# make bench's quick mode, so the benchmark never rots: BENCH_QUICK=1 runs every step at a tiny
# size (4 MiB layer, one round, wrk 1 s; step 8 on a cluster of its own with a 2 MiB image, at 3
# agents and then 2). Checks that each step ran and produced its figures for every contender and
# set-up, that the tables and the target verdicts were written, and that the bench's cluster is
# gone afterwards; never how fast.
# shellcheck source-path=SCRIPTDIR/../lib
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/cluster.sh"

out=$T/RESULTS.md
start=$SECONDS
BENCH_QUICK=1 BENCH_RESULTS=$out "$MS_ROOT/tests/bench/run.sh" "$MS_BUILD" >"$T/out" 2>&1
rc=$?
took=$((SECONDS - start))
sed 's/^/# /' "$T/out"

check_eq "make bench BENCH_QUICK=1 exits 0" 0 "$rc"
check "it finished within 240 s, image build and cluster included (took $took s)" test "$took" -lt 240
check "the table was written" grep -q '^| step | measure | contender | median |' "$out"
check "the machine is named" grep -qE 'cores, .*Linux ' "$out"

# has_row STEP MEASURE CONTENDER: the table has that figure, a number.
has_row() {
	grep -qE "^\| $1 \| $2 \| $3 \| [0-9.]+ \|" "$out"
}
for c in microscale peer nginx; do
	for m in 'manifest by digest: req/s' 'manifest by tag: p99' 'blob, 1 client\(s\): MB/s' \
		'blob, 16 client\(s\): MB/s'; do
		check "step 1/2: $m for $c" has_row '[12]' "$m" "$c"
	done
done
for c in direct microscale peer; do
	check "step 3: cold pull for $c" has_row 3 'cold skopeo pull: s' "$c"
done
for c in microscale peer; do
	check "step 4: herd wall time for $c" has_row 4 '20 cold GETs at once: s' "$c"
	check "step 5: RSS after load for $c" has_row 5 'peak RSS after load' "$c"
done
check "step 4: microscale fetched the herd's blob once" \
	grep -qE '^\| 4 \| 20 cold GETs at once: upstream GETs \| microscale \| 1 \|' "$out"
check "step 6: demand change to PUT, p99" has_row 6 'demand change -> PUT received: p99' microscale
for c in 'no node cache' 'microscale cold' microscale; do
	check "step 7: time to capacity, $c" has_row 7 '1 -> 10 instances running: s' "$c"
done
# Step 8: | set-up (3 agents) | time to capacity | ÷ runtime | uplink MB | ÷ image | staged | rounds |
for c in remote 'central proxy cold' 'central proxy warm' 'microscale store' 'microscale cold' \
	'microscale runtime'; do
	check "step 8: $c at 3 agents: time to capacity, uplink bytes, staged task-seconds" \
		grep -qE "^\| $c \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| 1 \|\$" "$out"
	check "step 8: $c: its phases" grep -qE "^\| $c \| 3 \|( [0-9.]+ \|){9}\$" "$out"
done
for c in 'central proxy warm' 'microscale runtime'; do
	check "step 8: $c at 2 and 3 agents" grep -qE "^\| $c \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|\$" "$out"
done
check "step 8: microscale carried the image over the uplink once" \
	grep -qE '^\| microscale runtime \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| 1\.00 \|' "$out"
check_eq "a verdict for each of the 13 + 9 targets" 22 "$(grep -cE '^- (met|MISSED): ' "$out")"
k=$(sed -n 's/^# cluster: cluster \([0-9]*\) in .*/\1/p' "$T/out" | head -1)
check_eq "the bench's cluster (${k:-?}) is gone" "" \
	"$([ -n "$k" ] && cluster_leftovers "$k" || echo 'no cluster index in its output')"
