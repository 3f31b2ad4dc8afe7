#!/bin/bash
# make demo, as CI runs it: DEMO_SECONDS=20, stdout not a terminal. Scenario:
#   tests/demo/run.sh starts an upstream, the cache (prewarming images/demo.list), the Marathon
#   emulator with its pull-time model, a demand server and the scaler; /demo/big's demand jumps
#   at 6 s to an image the cache does not have.
# It must: exit 0; print plain lines (no screen redraws) and the summary; leave no process behind;
# and the summary must show /demo/big held by the gate, then scaled up (first scale-up after
# the jump, instances above 0, tasks running), with the cache serving more than it fetched.
# shellcheck source-path=SCRIPTDIR/../lib
. "$(dirname "$0")/../lib/common.sh"

# Processes as "PID COMMAND LINE", to compare before and after.
procs() { ps -eo pid=,args= | sed 's/^ *//' | sort; }
procs >"$T/before"
start=$SECONDS
DEMO_SECONDS=20 "$MS_ROOT/tests/demo/run.sh" "$MS_BUILD" >"$T/out" 2>"$T/err" </dev/null
rc=$?
took=$((SECONDS - start))
procs >"$T/after"
sed 's/^/# /' "$T/out" "$T/err"

check_eq "the demo exits 0" 0 "$rc"
check "it finished within 60 s, setup included (took $took s)" test "$took" -lt 60
no_escapes() { ! grep -q $'\033' "$T/out"; }
check "no terminal: no screen redraws (no escape sequences)" no_escapes
check "no terminal: one plain line a second (>= 15)" test "$(grep -c '^t=[0-9]*s ' "$T/out")" -ge 15
check "both priority images were prewarmed before the story began" \
	grep -q 'library/demo-batch:1 ready .* ready=true' "$T/out"
check "the summary is printed" grep -q '^== microscale demo summary (20 s, capacity 10) ==$' "$T/out"
check "it counts the scale calls" grep -qE '^scale calls \(PUT to Marathon\): [1-9][0-9]* \(' "$T/out"

# Nothing the demo started may survive it: a new process naming its work dir or image dir.
work=$(sed -n 's/^demo: work dir \([^ ]*\) .*/\1/p' "$T/out")
check "the demo named its work dir" test -n "$work"
left=$(comm -13 "$T/before" "$T/after" | grep -F -e "$work" -e /tmp/ms-demo-images || true)
check_eq "no process left behind" "" "$left"
check "the demo checked that itself" grep -q '^demo: stopped every process it started (none left)$' "$T/out"

jtrue() { jq -en "$1" >/dev/null; } # jq's verdict on a comparison
# field APP KEY: a key=value of the summary's line for APP.
field() { sed -n "s|^app=$1 .*\\b$2=\\([^ ]*\\).*|\\1|p" "$T/out"; }
held=$(field /demo/big gate_held_s)
check "the gate held /demo/big (held $held s)" jtrue "${held:-0} > 0"
after=$(field /demo/big first_scale_up_after_jump_s)
check "then /demo/big scaled up after the jump (after $after s)" jtrue "${after:-null} > 0"
check_eq "... from 0 to 4 instances, all running" "0->4 4" \
	"$(field /demo/big instances) $(field /demo/big running)"
check "the view saw /demo/big held with 0 instances" \
	grep -qE '/demo/big demand=4 requested=0 [^|]* gate="held' "$T/out"
check "... and later running 4" grep -q '/demo/big demand=4 requested=4 running=4' "$T/out"
cache=$(grep '^cache: ' "$T/out" | tail -1)
up=$(sed -n 's/.*from upstream \([0-9.]*\) MB.*/\1/p' <<<"$cache")
local_mb=$(sed -n 's/.*served locally \([0-9.]*\) MB.*/\1/p' <<<"$cache")
check "the cache fetched the big image once (>= 100 MB from upstream: $up MB)" jtrue "${up:-0} >= 100"
check "and served more than that locally ($local_mb MB)" jtrue "${local_mb:-0} > ${up:-0}"
