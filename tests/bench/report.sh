# The bench's table and its verdict on the issue's targets, from $RESULTS_TSV. Sourced by
# tests/bench/run.sh after tests/bench/lib.sh.
# shellcheck shell=bash

MEDIANS_TSV=$T/medians.tsv # STEP <tab> MEASURE <tab> CONTENDER <tab> MEDIAN <tab> UNIT <tab> ROUNDS

# The median of each figure over the rounds, by step, in the order the figures were first recorded.
bench_medians() {
	awk -F'\t' -v OFS='\t' '
		{ k = $1 FS $2 FS $3; if (!(k in n)) { order[++keys] = k; unit[k] = $5 }
		  v[k, ++n[k]] = $4 }
		END {
			for (i = 1; i <= keys; i++) {
				k = order[i]; m = n[k]
				for (a = 1; a <= m; a++) s[a] = v[k, a] + 0
				for (a = 2; a <= m; a++) for (b = a; b > 1 && s[b] < s[b-1]; b--) {
					t = s[b]; s[b] = s[b-1]; s[b-1] = t }
				med = m % 2 ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2
				print k, med, unit[k], m
			}
		}' "$RESULTS_TSV" | sort -s -t"$(printf '\t')" -k1,1n >"$MEDIANS_TSV"
}

# median STEP MEASURE CONTENDER: one figure of the table.
median() {
	awk -F'\t' -v s="$1" -v m="$2" -v c="$3" '$1 == s && $2 == m && $3 == c { print $4 }' \
		"$MEDIANS_TSV"
}

# The markdown table: every median and its ratio to microscale's for the same measure.
bench_table() {
	echo "| step | measure | contender | median | unit | ÷ microscale | rounds |"
	echo "| ---: | --- | --- | ---: | --- | ---: | ---: |"
	awk -F'\t' '
		NR == FNR { if ($3 == "microscale") base[$1 FS $2] = $4; next }
		{ b = base[$1 FS $2]
		  r = (b != "" && b != 0) ? sprintf("%.2f", $4 / b) : "-"
		  v = ($4 == int($4)) ? sprintf("%d", $4) : sprintf("%.3f", $4)
		  printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, v, $5, r, $6 }' \
		"$MEDIANS_TSV" "$MEDIANS_TSV"
}

# target WHAT VALUE OP LIMIT: one line "met" or "MISSED", VALUE compared with LIMIT by OP
# (<=, >=, <, ==).
target() {
	local verdict
	verdict=$(awk -v v="$2" -v op="$3" -v l="$4" 'BEGIN {
		ok = (op == "<=") ? v <= l : (op == ">=") ? v >= l : (op == "<") ? v < l : v == l
		print ok ? "met" : "MISSED" }')
	printf -- '- %s: %s (%s %s %s)\n' "$verdict" "$1" "$(printf '%.3g' "$2")" "$3" "$4"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b ? a / b : 0 }'; }

# The issue's targets, each with the figure that decides it.
bench_targets() {
	local how n
	for how in digest tag; do
		n="manifest by $how: req/s"
		target "manifest by $how, microscale / nginx req/s" \
			"$(ratio "$(median 1 "$n" microscale)" "$(median 1 "$n" nginx)")" ">=" 0.5
		target "manifest by $how, microscale / peer req/s" \
			"$(ratio "$(median 1 "$n" microscale)" "$(median 1 "$n" peer)")" ">=" 20
		target "manifest by $how, microscale p99 ms" \
			"$(median 1 "manifest by $how: p99" microscale)" "<" 2
	done
	for n in 1 16; do
		target "blob at $n client(s), microscale / nginx MB/s" \
			"$(ratio "$(median 2 "blob, $n client(s): MB/s" microscale)" \
				"$(median 2 "blob, $n client(s): MB/s" nginx)")" ">=" 0.9
	done
	target "cold pull, microscale / direct time" \
		"$(ratio "$(median 3 "cold skopeo pull: s" microscale)" \
			"$(median 3 "cold skopeo pull: s" direct)")" "<=" 1.1
	# Every round must fetch once, so the worst round decides, not the median.
	target "herd, microscale's upstream GETs (most in any round)" "$(awk -F'\t' \
		'$1 == 4 && $2 ~ /upstream GETs/ && $3 == "microscale" && $4 > m { m = $4 } END { print m + 0 }' \
		"$RESULTS_TSV")" "==" 1
	target "herd, microscale 20 GETs / 1 GET wall time" \
		"$(ratio "$(median 4 "20 cold GETs at once: s" microscale)" \
			"$(median 4 "1 cold GET: s" microscale)")" "<=" 1.3
	target "peak RSS after load, microscale / peer" \
		"$(ratio "$(median 5 "peak RSS after load" microscale)" \
			"$(median 5 "peak RSS after load" peer)")" "<=" 0.25
	target "time to capacity, no node cache / microscale prewarmed" \
		"$(ratio "$(median 7 "1 -> 10 instances running: s" "no node cache")" \
			"$(median 7 "1 -> 10 instances running: s" microscale)")" ">=" 10
}

# bench_report FILE: the table and the targets, on stdout and (with the machine) into FILE.
bench_report() {
	local out=$1 table targets
	bench_medians
	table=$(bench_table) && targets=$(bench_targets) || bench_fail "making the table"
	printf '\n%s\n\nTargets (issue 6):\n%s\n' "$table" "$targets"
	{
		echo "# microscale bench results"
		echo
		echo "\`$BENCH_COMMAND\` on $(date -u '+%Y-%m-%d %H:%M UTC'): $(nproc) cores," \
			"$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
			"Linux $(uname -r), $(free -g | awk '/^Mem:/ { print $2 }') GiB."
		echo "$BENCH_SETUP"
		echo "Medians over the rounds (contenders take turns within a round). ÷ microscale: the"
		echo "contender's median over microscale's; for req/s and MB/s below 1 is slower, for s, ms"
		echo "and KiB above 1 is slower or bigger. Reproduce: \`$BENCH_COMMAND\`."
		echo
		echo "$table"
		echo
		echo "Targets (issue 6):"
		echo
		echo "$targets"
	} >"$out"
}
