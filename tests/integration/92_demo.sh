#!/bin/bash
# make demo, as CI runs it: DEMO_SECONDS=30, stdin closed, stdout not a terminal. Scenario:
#   tests/demo/run.sh starts a cluster of its own (3 agents, the tier, the 20 MB/s uplink; beside
#   tests/run.sh's shared one, if that runs), has every agent's cache prewarm images/demo.list,
#   creates the three apps in Marathon and starts the scaler. At 7 s /demo/big's demand jumps to
#   an image no cache has (~106 MB); at 10 s a 4th agent joins; at 20 s an agent's cache is killed.
# It must: exit 0 within 90 s, setup included; print its cluster first, then plain lines (no
# screen redraws) and the summary; and the summary must show /demo/big held by the gate, then
# scaled to 4 tasks running in real containers, the 4th agent seen by the scaler and the
# capacity grown with it, the killed cache left out by the gate after the grace, and fewer than
# 5% of the PUTs answered 409. Nothing may be left behind: no process, and nothing of its
# cluster (namespace, link, mount, cgroup, state dir). Every agent's cache fetched the big image
# from the tier, the tier once over the uplink.
# shellcheck source-path=SCRIPTDIR/../lib
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/cluster.sh"

# Processes as "PID COMMAND LINE", to compare before and after.
procs() { ps -eo pid=,args= | sed 's/^ *//' | sort; }
procs >"$T/before"
start=$SECONDS
DEMO_SECONDS=30 "$MS_ROOT/tests/demo/run.sh" "$MS_BUILD" >"$T/out" 2>"$T/err" </dev/null
rc=$?
took=$((SECONDS - start))
procs >"$T/after"
sed 's/^/# /' "$T/out" "$T/err"

check_eq "the demo exits 0" 0 "$rc"
check "it finished within 90 s, cluster start and teardown included (took $took s)" test "$took" -lt 90
k=$(sed -n 's/^demo: cluster \([0-9]*\) (.*/\1/p' "$T/out" | head -1)
check "it printed the cluster it started first" \
	sh -c "grep -m1 -n '^demo: cluster $k ' '$T/out' | grep -q '^[123]:' && grep -q '^demo:   agent 3: ' '$T/out'"
if [ -n "${MS_CLUSTER_ENV:-}" ] && [ -f "$MS_CLUSTER_ENV" ]; then
	check "beside the shared cluster ($(dirname "$MS_CLUSTER_ENV")), one of its own" \
		test "/tmp/mscl-$k" != "$(dirname "$MS_CLUSTER_ENV")"
fi
for i in 1 2 3; do
	check "agent $i's cache had images/demo.list ready before the story began" \
		sh -c "grep -q '^demo:   agent $i docker.io/library/demo-web:1 ready .* ready=true' '$T/out' &&
			grep -q '^demo:   agent $i docker.io/library/demo-batch:1 ready .* ready=true' '$T/out'"
done
no_escapes() { ! grep -q $'\033' "$T/out"; }
check "the dashboard's address is said first" sh -c "head -1 '$T/out' | grep -q '^demo: dashboard: http://127.0.0.1:[0-9]*/'"
check "no terminal: no screen redraws (no escape sequences)" no_escapes
# A frame the machine is too busy to draw on time is skipped (the clock is not stretched).
check "no terminal: one plain line a second (>= 20 of 30)" test "$(grep -c '^t=[0-9]*s ' "$T/out")" -ge 20
check "the summary is printed" grep -qE '^== microscale demo summary \(30 s; cluster [0-9]+: 3 agents, then 4; capacity 12 -> 16\) ==$' "$T/out"

# --- the story, from the plain lines and the summary ---------------------------------------
jtrue() { jq -en "$1" >/dev/null; } # jq's verdict on a comparison
# field APP KEY: a key=value of the summary's line for APP.
field() { sed -n "s|^app=$1 .*\\b$2=\\([^ ]*\\).*|\\1|p" "$T/out"; }
check "the view saw /demo/big held by the gate with 0 instances" \
	grep -qE '/demo/big demand=4 target=0 requested=0 [^|]* gate="held' "$T/out"
check "... and later 4 requested, 4 running" grep -q '/demo/big demand=4 target=4 requested=4 running=4 ' "$T/out"
held=$(field /demo/big gate_held_s)
check "the summary: the gate held /demo/big (held $held s)" jtrue "${held:-0} > 0"
check_eq "... then it went from 0 to 4 instances, all running" "0->4 4" \
	"$(field /demo/big instances) $(field /demo/big running)"
check "... its 4 tasks started in real containers" jtrue "$(field /demo/big tasks_started) >= 4"
up=$(field /demo/big up_to_running_median_s)
check "... the time from its demand step to its tasks running is given ($up s), longer than the hold" \
	jtrue "${up:-0} > ${held:-0}"
check "the summary says where the big image became ready" grep -qE '^  its image ready in: 10\.231\.' "$T/out"
for app in /demo/priority1 /demo/priority2; do
	check "$app: steps timed to running in real containers ($(field $app up) up, median $(field $app up_to_running_median_s) s)" \
		jtrue "$(field $app up) > 0 and $(field $app up_to_running_median_s) > 0"
done

check "the 4th agent joined: the scaler saw it, the capacity grew" \
	grep -qE '^join: agent 4 \(10\.231\.[0-9]+\.14\) .* the scaler saw it at [0-9.]+ s, capacity 12 -> 16$' "$T/out"
check "... its cache was asked to prewarm all three apps' images and had them" \
	grep -qE '^  the scaler had its cache prewarm the images of /demo/big, /demo/priority1, /demo/priority2 at once; all three ready in it at' "$T/out"
check "... the gate counted it" grep -qE '^  the gate counted that cache from its first answer at [0-9.]+ s' "$T/out"
check "... and the view shows it counted, with 16 of capacity" \
	grep -qE '^t=[0-9]+s capacity=16 .*agent4=10\.231\.[0-9]+\.14 tasks=[0-9]+\+[0-9]+ web=ready batch=ready big=ready gate=counted ' "$T/out"
victim=$(sed -n "s/^kill: agent \\([0-9]\\)'s cache .*/\\1/p" "$T/out")
check "a cache was killed (agent ${victim:-?})" test -n "$victim"
check "... the gate left it out after the grace" \
	grep -qE "^kill: agent $victim's cache .* killed at [0-9.]+ s; the gate left it out at [0-9.]+ s \\(silent 3\\.[0-9] s, grace 3 s\\)" "$T/out"
check "... and the view said so" grep -qE "agent$victim=[0-9.]+ tasks=[0-9+]+ web=unreachable batch=unreachable big=unreachable gate=left_out " "$T/out"
check "... its agent's tasks ran on without it" grep -qE "^  agent $victim went on without it: .*; [1-9][0-9]* tasks running there at the end" "$T/out"

puts=$(sed -n 's/^scale calls (PUT to Marathon): \([0-9]*\) .*/\1/p' "$T/out")
conflicts=$(sed -n 's/^scale calls .* answered 409: \([0-9]*\) = .*/\1/p' "$T/out")
check "it counts the scale calls ($puts)" jtrue "${puts:-0} > 0"
check "fewer than 5% of them were answered 409 ($conflicts)" jtrue "${conflicts:-1} * 20 < ${puts:-0}"
# mbs I: what agent I's cache fetched from the tier, in MB.
mbs() { sed -n "s/^agent $1 10\\.231\\.[0-9]*\\.1$1: from the tier \\([0-9.]*\\) MB, served locally [0-9.]* MB.*/\\1/p" "$T/out"; }
for i in 1 2 3 4; do
	check "agent $i's cache fetched the big image from the tier ($(mbs $i) MB), its traffic summed up" \
		jtrue "$(mbs $i) >= 105"
done
uplink=$(sed -n 's/^tier http:.*: fetched \([0-9.]*\) MB over the uplink; .*/\1/p' "$T/out")
check "the tier fetched it once over the uplink ($uplink MB: >= 105, < 2 x 105)" \
	jtrue "${uplink:-0} >= 105 and ${uplink:-0} < 210"

# --- nothing left behind -----------------------------------------------------------------------
work=$(sed -n 's/^demo: work dir \([^ ]*\) .*/\1/p' "$T/out")
check "the demo named its work dir" test -n "$work"
left=$(comm -13 "$T/before" "$T/after" | grep -F -e "$work" -e "/tmp/mscl-$k/" || true)
check_eq "no process left behind" "" "$left"
check "the demo checked that itself" grep -q '^demo: stopped every process it started (none left)$' "$T/out"
check "... and that its cluster is gone" grep -q "^demo: cluster $k removed: " "$T/out"
check_eq "nothing of cluster $k is left (namespaces, links, processes, mounts, cgroups)" "" \
	"$(cluster_leftovers "$k")"
