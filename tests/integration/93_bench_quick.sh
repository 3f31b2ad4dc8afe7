#!/bin/bash
# make bench's quick mode, so the benchmark never rots: BENCH_QUICK=1 runs every step at a tiny
# size (4 MiB layer, one round, wrk 1 s). Checks that each step ran and produced its figures for
# every contender, and that the table and the target verdicts were written; never how fast.
# shellcheck source-path=SCRIPTDIR/../lib
. "$(dirname "$0")/../lib/common.sh"

out=$T/RESULTS.md
start=$SECONDS
BENCH_QUICK=1 BENCH_RESULTS=$out "$MS_ROOT/tests/bench/run.sh" "$MS_BUILD" >"$T/out" 2>&1
rc=$?
took=$((SECONDS - start))
sed 's/^/# /' "$T/out"

check_eq "make bench BENCH_QUICK=1 exits 0" 0 "$rc"
check "it finished within 120 s, image build included (took $took s)" test "$took" -lt 120
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
check_eq "a verdict for each of the 13 targets" 13 "$(grep -cE '^- (met|MISSED): ' "$out")"
