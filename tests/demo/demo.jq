# The demo's live view and summary (tests/demo/run.sh): jq -L tests/demo 'include "demo"; …'.
# Input of the view: {cache, puts, apps: [{id, priority, demand, target, gate, requested,
# running, staged}]} (see demo_state); the summary reads the daemons' last answers as $vars.

def mb: . / 1e6 * 10 | round / 10 | tostring + " MB";
def r2: . * 100 | round / 100;
def num: if . == null or . < 0 then "?" else tostring end;
def pad($n): tostring | " " * ($n - length) + .;   # right-aligned in $n columns
def rpad($n): tostring | . + " " * ($n - length);  # left-aligned
def median: sort | if length == 0 then null else .[length / 2 | floor] end;

# A gate in words: open, or held for how long and how far the cache has got with the image.
def gate: if .image == null then "-"
	elif .held then "held \(.held_seconds * 10 | round / 10) s, cache " +
		(.caches[0] | "\(.cache_state) \(.layers_present)/\(.layers_total)")
	else "open" end;
def ratio: if .hits + .misses == 0 then "-"
	else "\(.hits * 100 / (.hits + .misses) | round)%" end;

# The terminal view ($t: seconds so far, $n: of how many, $j: when /demo/big's demand jumps).
def screen($t; $n; $j):
	"microscale demo   t=\($t)/\($n) s   (Ctrl-C stops it)   /demo/big demand jumps at \($j) s\n",
	"app" + " " * 15 + "prio demand target requested running staged  gate",
	(.apps[] | (.id | rpad(18)) + (.priority | num | pad(4)) + (.demand | num | pad(7)) +
		(.target | num | pad(7)) + (.requested | num | pad(10)) + (.running | num | pad(8)) +
		(.staged | num | pad(7)) + "  " + (.gate | gate)),
	"\ncache: hit ratio \(.cache | ratio) (\(.cache.hits) hits, \(.cache.misses) misses)   " +
		"from upstream \(.cache.upstream_bytes | mb)   served locally \(.cache.local_bytes | mb)",
	"scale calls (PUT) so far: \(.puts)";

# The same as one plain line, for a log or CI.
def line($t):
	"t=\($t)s " + ([.apps[] | "\(.id) demand=\(.demand | num) requested=\(.requested | num) " +
		"running=\(.running | num) staged=\(.staged | num) gate=\"\(.gate | gate)\""] |
		join(" | ")) +
	" | cache hit=\(.cache | ratio) upstream=\(.cache.upstream_bytes | mb | sub(" "; ""))" +
	" local=\(.cache.local_bytes | mb | sub(" "; "")) puts=\(.puts)";

# The scale-ups of app $id among the accepted $puts, with the seconds until that many of its
# tasks ran ($h: the emulator's history; run_s null when a later change came first).
def scale_ups($id; $puts; $h):
	[$puts[] | select(.path == "/v2/apps" + $id and .status == 200)] as $ok |
	[range($ok | length) as $i | $ok[$i] |
	 {t, n: .body.instances, prev: (if $i == 0 then $h[0].apps[$id].instances // 0
		else $ok[$i - 1].body.instances end)} |
	 select(.n > .prev) | . as $u |
	 . + {run_s: ([$h[] | select(.t >= $u.t and (.apps[$id].tasksRunning // 0) >= $u.n) | .t][0] |
		if . == null then null else . - $u.t | r2 end)}];

# One summary line per app (input: the app from the scaler's /status).
def app_line($puts; $h; $surge):
	.id as $id | scale_ups($id; $puts; $h) as $u | [$h[] | .apps[$id].instances // 0] as $n |
	"app=\($id) puts=\([$puts[] | select(.path == "/v2/apps" + $id)] | length)" +
	" scale_ups=\($u | length) instances=\($n[0])->\($n[-1]) max=\($n | max)" +
	" running=\($h[-1].apps[$id].tasksRunning // 0)" +
	" gate_held_s=\(.gate.held_seconds_total | r2)" +
	" put_to_running_s=\([$u[].run_s | select(. != null)] | median // "-")" +
	(if $id == "/demo/big" and $surge != null then " first_scale_up_after_jump_s=" +
		([$u[].t | select(. >= $surge)][0] | if . == null then "never" else . - $surge | r2
		 | tostring end) else "" end);

# The summary, from the last answers of the scaler's /status, the emulator's requests and
# history, and the cache's counters. Globals (--arg): $surge, when /demo/big's demand jumped (null
# if it never did); $secs, $how: how long and how the run ended; $link (MB/s) and $big_bytes for
# what a pull without the cache would have cost.
def summary($status; $requests; $history; $cache):
	[$requests[] | select(.method == "PUT")] as $puts |
	"",
	"== microscale demo summary (\($secs) s\($how), capacity \($status.capacity)) ==",
	"scale calls (PUT to Marathon): \($puts | length) (" +
		([$puts | group_by(.status)[] | "\(.[0].status): \(length)"] | join(", ")) + ")",
	($status.apps[] | app_line($puts; $history; $surge)),
	"cache: pulled from upstream \($cache.upstream_bytes | mb), served locally " +
		"\($cache.local_bytes | mb), hit ratio \($cache | ratio) (\($cache.hits) hits, " +
		"\($cache.misses) misses)",
	"(gate_held_s: how long the gate held the app back while the cache warmed its image;",
	" put_to_running_s: the median time from a scale-up PUT until its tasks ran)",
	"without the cache, each /demo/big task would sit staged \($big_bytes / ($link * 1e6) | r2) s" +
		" on its node, pulling \($big_bytes | mb) at \($link) MB/s, holding capacity meanwhile";
