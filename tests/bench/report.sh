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

# The markdown table of steps 1-7: every median and its ratio to microscale's for the same
# measure.
bench_table() {
	echo "| step | measure | contender | median | unit | ÷ microscale | rounds |"
	echo "| ---: | --- | --- | ---: | --- | ---: | ---: |"
	awk -F'\t' '
		$1 == 8 { next }
		NR == FNR { if ($3 == "microscale") base[$1 FS $2] = $4; next }
		{ b = base[$1 FS $2]
		  r = (b != "" && b != 0) ? sprintf("%.2f", $4 / b) : "-"
		  v = ($4 == int($4)) ? sprintf("%d", $4) : sprintf("%.3f", $4)
		  printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, v, $5, r, $6 }' \
		"$MEDIANS_TSV" "$MEDIANS_TSV"
}

# target WHAT VALUE OP LIMIT: one line "met" or "MISSED", VALUE compared with LIMIT by OP
# (<=, >=, <, >, ==, or ~=: within 1% of LIMIT); a miss says by how much. TARGET_MISSED is set
# when it was missed.
target() {
	local verdict note
	read -r verdict note < <(awk -v v="$2" -v op="$3" -v l="$4" 'BEGIN {
		ok = (op == "<=") ? v <= l : (op == ">=") ? v >= l : (op == "<") ? v < l : \
			(op == ">") ? v > l : (op == "~=") ? (v - l) ^ 2 <= (l / 100) ^ 2 : v == l
		if (ok) { print "met"; exit }
		if (l == 0) { print "MISSED"; exit }
		if (op == "<=" || op == "<") printf "MISSED %.0f%% over\n", (v / l - 1) * 100
		else if (op == ">=" || op == ">") printf "MISSED %.0f%% short\n", (1 - v / l) * 100
		else printf "MISSED %+.0f%% off\n", (v / l - 1) * 100 }')
	TARGET_MISSED=""
	[ "$verdict" = met ] || TARGET_MISSED=1
	printf -- '- %s: %s (%s %s %s%s)\n' "$verdict" "$1" "$(printf '%.3g' "$2")" "$3" "$4" \
		"${note:+; $note}"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b ? a / b : 0 }'; }

# Issue 6's targets (steps 1-7), each with the figure that decides it.
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
	bench_targets_baseline
}

# With BENCH_BASELINE: every figure of steps 1-5 that both builds have, this build against the
# baseline, within 10% (the rounds' noise on this shared machine): no step slower than before.
bench_targets_baseline() {
	local step measure base now unit
	while IFS=$'\t' read -r step measure base unit; do
		now=$(median "$step" "$measure" microscale)
		[ -n "$now" ] || continue
		case $unit in
		req/s | MB/s) target "step $step, $measure, this build / baseline" "$(ratio "$now" "$base")" ">=" 0.9 ;;
		*) target "step $step, $measure, this build / baseline" "$(ratio "$now" "$base")" "<=" 1.1 ;;
		esac
	done < <(awk -F'\t' -v OFS='\t' '$3 == "baseline" && $1 <= 5 { print $1, $2, $4, $5 }' "$MEDIANS_TSV")
}

# --- step 8: the cluster ------------------------------------------------------------------------

# cmed SETUP N WHAT: the median of WHAT for SETUP at N agents.
cmed() {
	median 8 "$2 agents: $3" "$1"
}

# The agent counts step 8 measured, ascending.
cl_counts() {
	awk -F'\t' '$1 == 8 { split($2, a, " "); print a[1] }' "$MEDIANS_TSV" | sort -nu
}

# The set-ups at BENCH_CL_AGENTS: time to capacity, its ratio to microscale runtime's, uplink
# bytes and their ratio to the image, task-seconds staged.
cluster_table() {
	local s n=$BENCH_CL_AGENTS base
	base=$(cmed "microscale runtime" "$n" "time to capacity")
	echo "| set-up ($n agents) | time to capacity, s | ÷ microscale runtime | uplink, MB | uplink ÷ image | staged, task-s | rounds |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
	for s in "${CL_SETUPS[@]}"; do
		awk -F'\t' -v s="$s" -v n="$n agents: " -v base="$base" '
			$1 == 8 && $3 == s && index($2, n) == 1 { m[substr($2, length(n) + 1)] = $4; r = $6 }
			END {
				t = m["time to capacity"]
				printf "| %s | %.2f | %s | %.1f | %.2f | %.1f | %d |\n", s, t,
					(base > 0 ? sprintf("%.1f", t / base) : "-"), m["uplink bytes"] / 1e6,
					m["uplink / image"], m["staged task-seconds"], r }' "$MEDIANS_TSV"
	done
}

# Time to capacity of the set-ups measured at more than one agent count, by count.
cluster_scale_table() {
	local counts s n line
	mapfile -t counts < <(cl_counts)
	line="| set-up | $(printf '%s agents | ' "${counts[@]}")${counts[-1]} ÷ ${counts[0]} |"
	echo "$line"
	echo "| --- |$(printf ' ---: |%.0s' "${counts[@]}") ---: |"
	for s in "${CL_SCALE_SETUPS[@]}"; do
		line="| $s |"
		for n in "${counts[@]}"; do line+=" $(printf '%.2f' "$(cmed "$s" "$n" "time to capacity")") |"; done
		echo "$line $(printf '%.2f' "$(_cl_growth "$s")") |"
	done
}

# _cl_growth SETUP: its time to capacity at the most agents over that at the fewest.
_cl_growth() {
	local counts
	mapfile -t counts < <(cl_counts)
	ratio "$(cmed "$1" "${counts[-1]}" "time to capacity")" "$(cmed "$1" "${counts[0]}" "time to capacity")"
}

# The critical task's phases (tests/bench/cluster_phases.py), medians, for every set-up and count.
cluster_phase_table() {
	local n s line p
	echo "| set-up | agents | $(printf '%s | ' "${CL_PHASE_NAMES[@]}")time to capacity |"
	echo "| --- | ---: |$(printf ' ---: |%.0s' "${CL_PHASE_NAMES[@]}") ---: |"
	for n in $(cl_counts); do
		for s in "${CL_SETUPS[@]}"; do
			[ -n "$(cmed "$s" "$n" "time to capacity")" ] || continue
			line="| $s | $n |"
			for p in "${CL_PHASE_NAMES[@]}"; do line+=" $(printf '%.2f' "$(cmed "$s" "$n" "phase $p")") |"; done
			echo "$line $(printf '%.2f' "$(cmed "$s" "$n" "time to capacity")") |"
		done
	done
}

# _cl_why N SETUP…: where the time of each SETUP at N agents goes (its phases over 0.05 s).
_cl_why() {
	local n=$1 s p v out
	shift
	for s in "$@"; do
		out=""
		for p in "${CL_PHASE_NAMES[@]}"; do
			v=$(cmed "$s" "$n" "phase $p")
			awk -v v="$v" 'BEGIN { exit !(v >= 0.05) }' && out+="${out:+, }$p $(printf '%.2f' "$v")"
		done
		printf '  - %s at %s agents, %.2f s: %s\n' "$s" "$n" "$(cmed "$s" "$n" "time to capacity")" "$out"
	done
}

# ctarget WHAT VALUE OP LIMIT SETUP…: target, and when it is missed where the time of each
# SETUP goes (at BENCH_CL_AGENTS agents, or CL_WHY_N).
ctarget() {
	target "$1" "$2" "$3" "$4"
	[ -z "$TARGET_MISSED" ] || _cl_why "${CL_WHY_N:-$BENCH_CL_AGENTS}" "${@:5}"
}

# Issue 13's targets (step 8), each with the figure that decides it.
bench_targets_cluster() {
	local n=$BENCH_CL_AGENTS s counts t="time to capacity"
	mapfile -t counts < <(cl_counts)
	ctarget "$n agents: time to capacity, remote / microscale runtime" \
		"$(ratio "$(cmed remote "$n" "$t")" "$(cmed "microscale runtime" "$n" "$t")")" ">=" 10 \
		remote "microscale runtime"
	ctarget "$n agents: time to capacity, central proxy warm / microscale runtime" \
		"$(ratio "$(cmed "central proxy warm" "$n" "$t")" "$(cmed "microscale runtime" "$n" "$t")")" \
		">=" 3 "central proxy warm" "microscale runtime"
	ctarget "$n agents: time to capacity, central proxy warm / microscale store" \
		"$(ratio "$(cmed "central proxy warm" "$n" "$t")" "$(cmed "microscale store" "$n" "$t")")" \
		">" 1 "central proxy warm" "microscale store"
	ctarget "$n agents: time to capacity, microscale cold / remote" \
		"$(ratio "$(cmed "microscale cold" "$n" "$t")" "$(cmed remote "$n" "$t")")" "<=" 1.1 \
		"microscale cold" remote
	# "Near 0": a task is staged while its container starts, whatever the set-up; so the floor
	# is microscale runtime's (containers started, nothing pulled), and cold may not park tasks
	# for much more than that.
	ctarget "$n agents: staged task-seconds, microscale cold / microscale runtime (the container starts alone)" \
		"$(ratio "$(cmed "microscale cold" "$n" "staged task-seconds")" \
			"$(cmed "microscale runtime" "$n" "staged task-seconds")")" "<=" 1.25 \
		"microscale cold" "microscale runtime"
	# Every round must carry the image once, so the worst round at any count decides.
	for s in "microscale store" "microscale cold" "microscale runtime"; do
		target "uplink bytes / image bytes, $s (most in any round)" "$(awk -F'\t' -v s="$s" '
			$1 == 8 && $3 == s && $2 ~ /uplink \/ image$/ && $4 > m { m = $4 } END { print m + 0 }' \
			"$RESULTS_TSV")" "~=" 1
	done
	CL_WHY_N=${counts[-1]} ctarget \
		"time to capacity, microscale runtime, ${counts[-1]} / ${counts[0]} agents" \
		"$(_cl_growth "microscale runtime")" "<=" 1.5 "microscale runtime"
	printf -- '- reported: time to capacity, central proxy warm, %s / %s agents: %.3g\n' \
		"${counts[-1]}" "${counts[0]}" "$(_cl_growth "central proxy warm")"
}

# --- the report --------------------------------------------------------------------------------

# bench_machine: the line that says when and on what.
bench_machine() {
	echo "\`$BENCH_COMMAND\` on $(date -u '+%Y-%m-%d %H:%M UTC'): $(nproc) cores," \
		"$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
		"Linux $(uname -r), $(free -g | awk '/^Mem:/ { print $2 }') GiB."
}

# _section_registry TABLE TARGETS / _section_cluster TABLES… TARGETS: a section's markdown.
REGISTRY_HEADING="## Steps 1-7: the cache on loopback"
_section_registry() {
	echo "$REGISTRY_HEADING"
	echo
	bench_machine
	echo "$BENCH_SETUP"
	echo "Medians over the rounds (contenders take turns within a round). ÷ microscale: the"
	echo "contender's median over microscale's; for req/s and MB/s below 1 is slower, for s, ms"
	echo "and KiB above 1 is slower or bigger. Reproduce: \`$BENCH_COMMAND\`."
	echo
	echo "$1"
	echo
	echo "Targets (issue 6):"
	echo
	echo "$2"
}
_section_cluster() {
	echo "## Step 8: time to capacity on a cluster"
	echo
	bench_machine
	echo "$BENCH_CL_SETUP"
	echo "From the demand step until every task is TASK_RUNNING in a real container; medians over"
	echo "the rounds (the set-ups take turns within a round). Uplink: what the remote registry"
	echo "served from the set-up's start (a prewarm or a proxy's fill included). Staged: the"
	echo "task-seconds tasks spent staged, holding capacity without running. Reproduce:"
	echo "\`$BENCH_COMMAND\`."
	echo
	echo "$1"
	echo
	echo "Time to capacity (s) by cluster size:"
	echo
	echo "$2"
	echo
	echo "Where the time goes: the phases of the task that ran last, in s, each column its own"
	echo "median (so they need not add up); the pull's from its agent's dockerd log (in microscale"
	echo "cold the pull is the cache's runtime pull, within demand -> PUT, while the gate holds the"
	echo "app):"
	echo
	echo "$3"
	echo
	echo "Targets (issue 13):"
	echo
	echo "$4"
}

# _kept FILE NAME: section NAME of an earlier report FILE, as it was (a report from before the
# sections: all of it but its title, as the registry section).
_kept() {
	[ -f "$1" ] || return 0
	if grep -q '^<!-- bench:' "$1"; then
		awk -v b="<!-- bench:$2 -->" -v e="<!-- /bench:$2 -->" \
			'$0 == e { on = 0 } on { print } $0 == b { on = 1 }' "$1"
	elif [ "$2" = registry ]; then
		printf '%s\n\n' "$REGISTRY_HEADING"
		sed '1{/^# /d}' "$1" | sed '/./,$!d'
	fi
}

# bench_report FILE: the tables and the targets on stdout and (with the machine) into FILE; the
# section of a step set that did not run is kept from FILE as it was.
bench_report() {
	local out=$1 reg="" cl="" table targets
	bench_medians
	if runs registry; then
		table=$(bench_table) && targets=$(bench_targets) || bench_fail "making the table"
		printf '\n%s\n\nTargets (issue 6):\n%s\n' "$table" "$targets"
		reg=$(_section_registry "$table" "$targets")
	else
		reg=$(_kept "$out" registry)
	fi
	if runs cluster; then
		local t1 t2 t3
		t1=$(cluster_table) && t2=$(cluster_scale_table) && t3=$(cluster_phase_table) &&
			targets=$(bench_targets_cluster) || bench_fail "making the cluster tables"
		printf '\n%s\n\n%s\n\n%s\n\nTargets (issue 13):\n%s\n' "$t1" "$t2" "$t3" "$targets"
		cl=$(_section_cluster "$t1" "$t2" "$t3" "$targets")
	else
		cl=$(_kept "$out" cluster)
	fi
	{
		echo "# microscale bench results"
		echo
		echo "<!-- bench:registry -->"
		echo "$reg"
		echo "<!-- /bench:registry -->"
		echo
		echo "<!-- bench:cluster -->"
		echo "$cl"
		echo "<!-- /bench:cluster -->"
	} >"$out.tmp" && mv "$out.tmp" "$out"
}
