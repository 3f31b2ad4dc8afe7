# The demo's live view and summary (tests/demo/run.sh): jq -L tests/demo 'include "demo"; …'.
# The inputs are run.sh's _demo_jq variables: the last answers of the scaler ($status: /status),
# the Marathon emulator ($emu: /_emu/apps, $requests, $tasks: /_emu/tasks), every agent's cache
# ($agents, with $ARGS.named.metrics_I and images_I) and of the cluster's $tier (its URL, "" when
# there is none; $ARGS.named.metrics_tier), the story's $events, $start (epoch seconds) and $refs
# (the three images). `state` makes of them what the view shows; `summary` reads the scaler's
# parsed log ($log), the emulator's $history and every task seen ($alltasks) besides.

def d1: (. * 10 | round) as $d | "\($d / 10 | floor).\($d % 10)"; # one decimal, always shown
def mb: . / 1e6 | d1 + " MB";
def r2: . * 100 | round / 100;
def num: if . == null or (type == "number" and . < 0) then "?" else tostring end;
def pad($n): tostring | " " * ($n - length) + .;   # right-aligned in $n columns
def rpad($n): tostring | . + " " * ($n - length);  # left-aligned
def median: sort | if length == 0 then null else .[length / 2 | floor] end;
def rel: if . == null then null else . - $start | d1 end; # epoch -> "seconds into the story"
def s: if . == null then "-" else "\(.) s" end;

# --- the caches' own answers ---------------------------------------------------------------

# Prometheus text -> [{name, labels, v}].
def prom: [splits("\n") | select(length > 0 and (startswith("#") | not)) |
	capture("^(?<name>[a-zA-Z_:]+)(?<labels>\\{[^}]*\\})? (?<v>\\S+)") | .v |= tonumber];
# A cache's traffic: bytes it fetched from its upstream, bytes it served from its store.
def traffic: prom as $p |
	def sum(f): [$p[] | select(f) | .v] | add // 0;
	def is($name; $l): .name == $name and ((.labels // "") | contains($l));
	{upstream: sum(is("microscale_bytes_total"; "source=\"upstream\"")),
	 local: sum(is("microscale_bytes_total"; "source=\"store\"")),
	 hits: sum(is("microscale_cache_requests_total"; "result=\"hit\"")),
	 misses: sum(.name == "microscale_cache_requests_total" and
		((.labels // "") | contains("result=\"hit\"") | not))};
# An image in a cache's /_microscale/v1/images: ready, or layers present/total and the cache's
# word for it (pulling, failed…), or "-" when the cache does not track it. (A layer counts once
# it is complete: the bytes of one on its way show in the cache's traffic instead.)
def image_word($images; $ref):
	[$images[]? | select(.ref == $ref or .ref == "docker.io/" + $ref)][0] |
	if . == null then "-" elif .ready then "ready"
	else "\(.layers_present)/\(.layers_total) \(.state)" end;

# --- the state of one second -----------------------------------------------------------------

# An agent as the gate sees it: not yet in the scaler's fleet, left out (no answer for the
# grace), silent (within the grace), or counted.
def gate_of($st; $a):
	[$st.apps[]?.gate.caches[]? | select(.url == $a.cache)] as $c |
	if $st == null then "?"
	elif ([$st.mesos.agents[]? | select(.hostname == $a.addr and .active)] | length) == 0
	then "not in the fleet yet"
	elif $c == [] then "not asked yet"
	elif any($c[]; .left_out) then "left out"
	elif any($c[]; .agent == "unreachable") then "no answer (grace)"
	else "counted" end;

def state:
	$status[0] as $st | (($emu[0].apps // []) | map({(.id): .}) | add // {}) as $emu_apps |
	($tasks[0] // []) as $ts | [($requests[0] // [])[] | select(.method == "PUT")] as $puts |
	{capacity: $st.capacity,
	 fleet: ([$st.mesos.agents[]? | select(.active)] | length),
	 puts: ($puts | length), conflicts: ([$puts[] | select(.status == 409)] | length),
	 events: $events,
	 apps: [$st.apps[]? | {id, priority, target, gate: .gate,
		demand: (if .source == "remainder" then "rest" else .demand end),
		requested: $emu_apps[.id].instances, running: $emu_apps[.id].tasksRunning,
		staged: $emu_apps[.id].tasksStaged}],
	 agents: [$agents[] | . as $a |
		($ARGS.named["images_\($a.i)"][0].images // []) as $img |
		{i, addr, up,
		 running: ([$ts[] | select(.host == $a.addr and .state == "TASK_RUNNING")] | length),
		 staging: ([$ts[] | select(.host == $a.addr and .state == "TASK_STAGING")] | length),
		 images: ($refs | map_values(if $a.up then image_word($img; .) else "unreachable" end)),
		 gate: gate_of($st; $a),
		 traffic: ($ARGS.named["metrics_\($a.i)"] // "" | traffic)}],
	 tier: (if $tier == "" then null else {url: $tier, traffic: ($ARGS.named.metrics_tier // "" | traffic)} end)};
# What the agents' caches fetch from: the tier, or the uplink itself.
def upstream_name: if $tier == "" then "the uplink" else "the tier" end;
# What went over the uplink: the tier's fetches, or every cache's.
def uplink_bytes: if .tier != null then .tier.traffic.upstream else [.agents[].traffic.upstream] | add end;

# An app's gate in words: open (saying so if an agent is left out), or held for how long and on
# how many of the agents that may run it the image is ready.
def gate_word:
	.gate as $g | ([$g.caches[]? | select(.left_out)] | length) as $out |
	if $g.image == null then "-"
	elif $g.held then "held \($g.held_seconds | d1) s, image ready on \($g.agents.ready) of " +
		"\($g.agents.ready + $g.agents.not_ready + $g.agents.unreachable) agents" +
		(if $out > 0 then " (\($out) left out)" else "" end)
	else "open" + (if $out > 0 then " (\($out) agent left out)" else "" end) end;

def event($name): [.events[] | select(.event == $name)][0];

# The story so far, one line ($at: when its three steps are due, in seconds).
def story($at):
	def step($t; $what; $e; $done): "\($t) s \($what)" + (if $e == null then "" else " [\($done)]" end);
	"story: " + ([step($at[0]; "/demo/big's demand jumps"; event("jump"); "done"),
		step($at[1]; "an agent joins"; event("join_start");
			if event("join") == null then "starting" else "agent \(event("join").agent) up" end),
		step($at[2]; "a cache is killed"; event("kill"); "agent \(event("kill").agent)")] |
		join("   "));

# The terminal view ($f: seconds so far, of $n).
def screen($f; $n; $at):
	"microscale demo on cluster \($k)   t=\($f)/\($n) s   (Ctrl-C stops it)",
	story($at),
	"capacity \(.capacity | num) tasks (\(.fleet) active agents, 4 tasks of 0.5 cpus / 256 MB each)" +
		"   scale calls (PUT) \(.puts), answered 409: \(.conflicts)",
	"",
	"app" + " " * 15 + "prio demand target requested running staged  gate",
	(.apps[] | (.id | rpad(18)) + (.priority | num | pad(4)) + (.demand | num | pad(7)) +
		(.target | num | pad(7)) + (.requested | num | pad(10)) + (.running | num | pad(8)) +
		(.staged | num | pad(7)) + "  " + gate_word),
	"",
	"agent address      running staging  web         batch       big          gate                  " +
		(if $tier == "" then "from uplink" else "  from tier" end) + "  served locally",
	(.agents[] | (.i | rpad(6)) + (.addr | rpad(13)) + (.running | pad(7)) + (.staging | pad(8)) +
		"  " + (.images.web | rpad(12)) + (.images.batch | rpad(12)) + (.images.big | rpad(13)) +
		(.gate | rpad(20)) + (.traffic.upstream | mb | pad(13)) + (.traffic.local | mb | pad(16))),
	(if .tier == null then "no tier: every agent's cache fetches over the uplink"
	 else "tier \(.tier.url | sub("^http://"; "")): fetched \(.tier.traffic.upstream | mb) over the" +
		" uplink; the agents' caches fetched \([.agents[].traffic.upstream] | add | mb) from it" end),
	"over the uplink: \(uplink_bytes | mb); the agents' caches served their dockerds" +
		" \([.agents[].traffic.local] | add | mb)";

# The same as one plain line, for a log or CI.
def line($f):
	def w: gsub(" MB"; "MB") | gsub(" "; ",");
	"t=\($f)s capacity=\(.capacity | num) puts=\(.puts) conflicts=\(.conflicts) | " +
	([.apps[] | "\(.id) demand=\(.demand | num) target=\(.target | num) " +
		"requested=\(.requested | num) running=\(.running | num) staged=\(.staged | num) " +
		"gate=\"\(gate_word)\""] | join(" | ")) + " | " +
	([.agents[] | "agent\(.i)=\(.addr) tasks=\(.running)+\(.staging) web=\(.images.web | w) " +
		"batch=\(.images.batch | w) big=\(.images.big | w) gate=\(.gate | gsub(" \\(grace\\)"; "") | gsub(" "; "_")) " +
		"upstream=\(.traffic.upstream | mb | w) local=\(.traffic.local | mb | w)"] | join(" | ")) +
	" | uplink=\(uplink_bytes | mb | w)";

# --- the scaler's log ------------------------------------------------------------------------

# One log line "ts=… level=… event=… k=v k=\"v w\" …" -> {ts, event, …, t: epoch seconds}.
def logline:
	[scan("([a-z_]+)=(\"[^\"]*\"|[^ ]*)") |
	 {(.[0]): (.[1] | if startswith("\"") then .[1:-1] else . end)}] | add |
	.t = ((.ts[0:19] + "Z" | fromdateiso8601) + (.ts[20:23] | tonumber) / 1000);

# --- the summary ---------------------------------------------------------------------------

# The demand steps of app $id and when each was served. A step is a scale call the scaler sent
# for a new demand (its log's latency_ms goes back to the moment the demand changed); for a
# remainder app, whose share changes with the others' demand, every call it sent. A step is
# reached when the emulator first shows as many of the app's tasks running (in their containers)
# as it asked for, before the app's next call; superseded when that call came first; unfinished
# when the run ended first.
def steps($id; $rest; $log; $h):
	[$log[] | select(.event == "decision" and .app == $id and .sent == "yes" and
		(.action == "up" or .action == "down"))] as $d |
	[range(0; $d | length) as $i | $d[$i] as $x | ($d[$i + 1].t // null) as $next |
	 select($x.latency_ms != null or $rest) |
	 ($x.to | tonumber) as $n |
	 ([$h[] | select(.t >= $x.t and (.apps[$id].tasksRunning // 0) == $n) | .t][0]) as $at |
	 {t0: ($x.t - (($x.latency_ms // "0") | tonumber) / 1000), put: $x.t, n: $n, action: $x.action,
	  outcome: (if $at != null and ($next == null or $at <= $next) then "reached"
		elif $next != null then "superseded" else "unfinished" end)} |
	 if .outcome == "reached" then .running_s = ($at - .t0 | r2) | .at = $at else . end];

# Tasks merged over every sample (a task leaves /_emu/tasks once its container is gone).
def task_rows: reduce $alltasks[] as $t ({}; .[$t.id] = ((.[$t.id] // {}) * $t)) | [.[]];

def app_line($a; $log; $h; $tasks):
	$a.id as $id | steps($id; $a.source == "remainder"; $log; $h) as $st |
	def times($action): [$st[] | select(.outcome == "reached" and .action == $action) | .running_s];
	times("up") as $up | times("down") as $down |
	[$h[] | .apps[$id].instances // 0] as $n |
	[$tasks[] | select(.appId == $id)] as $t |
	[$t[] | .phases | select(.pull_start != null and .pull_end != null) | .pull_end - .pull_start] as $pulls |
	"app=\($id) steps=\($st | length) up=\($up | length)" +
	" up_to_running_median_s=\($up | median // "-") up_to_running_max_s=\($up | max // "-")" +
	" down=\($down | length) down_done_median_s=\($down | median // "-")" +
	" superseded=\([$st[] | select(.outcome == "superseded")] | length)" +
	" unfinished=\([$st[] | select(.outcome == "unfinished")] | length)" +
	" instances=\($n[0] // 0)->\($n[-1] // 0) max=\($n | max // 0)" +
	" running=\($h[-1].apps[$id].tasksRunning // 0)" +
	" tasks_started=\([$t[] | select(.phases.running != null)] | length)" +
	" pulled=\($pulls | length) pull_median_s=\($pulls | median | if . == null then "-" else r2 end)" +
	" failed=\([$t[] | select(.state == "TASK_FAILED")] | length)" +
	" gate_held_s=\($a.gate.held_seconds_total | r2)";

# /demo/big: its jump, the gate's hold while each cache warmed the image, the scale-up.
def big_lines($log; $h):
	event("jump") as $j | "/demo/big" as $id |
	if $j == null then "gate: /demo/big's demand never jumped (the run ended first)" else
	([steps($id; false; $log; $h)[] | select(.t0 >= $j.t - 0.5)][0]) as $up |
	([$log[] | select(.event == "gate_released" and .app == $id)][0]) as $rel |
	[$log[] | select(.event == "gate_check" and .app == $id and .state == "ready") |
	 {cache, t}] | group_by(.cache) | map(.[0]) | sort_by(.t) as $ready |
	"gate: /demo/big's demand jumped to \($j.demand) at \($j.t | rel) s; the gate held it " +
	(if $rel == null then "to the end" else "\($rel.held_s | tonumber | d1) s" end) +
	" while every agent's cache warmed \($refs.big) (\($big_bytes | mb) each, from " +
	(if $tier == "" then "one \($mbps) MB/s uplink they share)" else "the tier, in front of" +
		" the \($mbps) MB/s uplink)" end),
	"  its image ready in: " + ([$ready[] | "\(.cache | sub("^http://"; "") | sub(":5000$"; "")) at \(.t | rel) s"] |
		join(", ") | if . == "" then "none" else . end),
	(if $rel == null then "  the gate never released it"
	 else "  the gate released it at \($rel.t | rel) s; " end) +
	if $up == null then "no scale-up went out before the end"
	else (if $rel != null and $up.put - $rel.t > 0.5 then "it waited \($up.put - $rel.t | d1) s for" +
		" room (the other apps giving way first), then " else "" end) +
	"the scale-up to \($up.n) went out at \($up.put | rel) s; \($up.n) tasks running in their" +
		" containers at " + (if $up.running_s != null then "\($up.at | rel) s," +
		" \($up.running_s) s after the jump" else "- (not by the end)" end) end end;

# The agent that joined: when Mesos, the scaler and the gate learnt of it, the capacity it added.
def join_lines($log; $tasks):
	event("join_start") as $s | event("join") as $j |
	if $j == null then "join: no agent joined (the run ended first)" else
	("http://\($j.addr):5000") as $c |
	([$log[] | select(.event == "fleet_agent_joined" and .hostname == $j.addr)][0]) as $seen |
	[$log[] | select(.event == "gate_prewarm" and .cache == $c)] as $pw |
	[.events[] | select(.event == "ready" and .agent == $j.agent)] as $rd |
	([$log[] | select(.event == "capacity" and .t >= ($seen.t // 1e18) - 0.5)][0]) as $cap |
	[$log[] | select(.event == "gate_check" and .cache == $c)] as $checks |
	[$log[] | select(.event == "decision" and .action == "hold" and (.reason | contains($c)))] as $held |
	"join: agent \($j.agent) (\($j.addr)) asked for at \($s.t | rel) s, up at \($j.t | rel) s;" +
	" the scaler saw it at \($seen.t | rel | s)" +
	(if $cap != null then ", capacity \($cap.was) -> \($cap.capacity)" else "" end),
	([$refs | keys[]] - [$rd[].image]) as $missing |
	"  the scaler had its cache prewarm the images of \([$pw[].app] | unique | join(", ")) at once;" +
	(if $missing == [] then " all three ready in it at \([$rd[].t] | max | rel | s)"
	 else " not ready in it by the end: \($missing | join(", "))" end),
	"  the gate counted that cache from its first answer at \($checks[0].t | rel | s), holding the" +
	" rise of \([$held[].app] | unique | if . == [] then "no app" else join(", ") end) until it" +
	" said ready; first task placed on the agent at" +
	" \([$tasks[] | select(.host == $j.addr) | .phases.staged] | min | rel | s)"
	end;

# The cache that was killed: when the gate left it out, what it held meanwhile, its agent after.
def kill_lines($log; $tasks):
	event("kill") as $k |
	if $k == null then "kill: no cache was killed (the run ended first)" else
	("http://\($k.addr):5000") as $c |
	([$log[] | select(.event == "gate_cache_unreachable" and .cache == $c)][0]) as $out |
	[$log[] | select(.event == "decision" and .action == "hold" and .t >= $k.t and
		.t <= ($out.t // 1e18) and (.reason | test("unreachable")))] as $held |
	[$tasks[] | select(.host == $k.addr and .phases.staged >= $k.t)] as $since |
	[.agents[] | select(.i == $k.agent)][0] as $a |
	"kill: agent \($k.agent)'s cache (\($c)) killed at \($k.t | rel) s; " +
	(if $out == null then "the gate never left it out"
	 else "the gate left it out at \($out.t | rel) s (silent \($out.silent_s | tonumber | d1) s," +
		" grace \($grace / 1000) s)" end) +
	"; until then it held the rise of: " +
	([$held[].app] | unique | if . == [] then "none" else join(", ") end),
	"  agent \($k.agent) went on without it: its dockerd had \($k.images_in_docker) of the 3" +
	" images; \($a.running) tasks running there at the end, \($since | length) placed there" +
	" since the kill (\([$since[] | select(.state == "TASK_FAILED")] | length) failed)"
	end;

def agent_line($a; $tasks):
	event("kill") as $k |
	"agent \($a.i) \($a.addr): from \(upstream_name) \($a.traffic.upstream | mb), served locally " +
	"\($a.traffic.local | mb) (\($a.traffic.hits) hits, \($a.traffic.misses) misses);" +
	" \($a.running) tasks running at the end" +
	(if $k != null and $k.agent == $a.i then " (its cache killed at \($k.t | rel) s: its counters" +
		" as of its last answer)" else "" end);

def summary:
	state as $v | $status[0] as $st | $log[0] as $log | $history[0] as $h | task_rows as $tasks |
	[$requests[0][] | select(.method == "PUT")] as $puts |
	[$log[] | select(.event == "capacity") | .capacity] as $caps |
	"",
	"== microscale demo summary (\($secs) s\($how); cluster \($k): \($n0) agents" +
		(if $v | event("join") then ", then \($n0 + 1)" else "" end) +
		"; capacity \($caps | join(" -> "))) ==",
	"scale calls (PUT to Marathon): \($puts | length) (" +
		([$puts | group_by(.status)[] | "\(.[0].status): \(length)"] | join(", ")) + "); " +
		"answered 409: \($v.conflicts) = " +
		"\(if $puts == [] then 0 else $v.conflicts * 100 / ($puts | length) end | d1)% (required: under 5%)",
	($st.apps[] | app_line(.; $log; $h; $tasks)),
	"(steps: the scaler's calls for a new demand (for priority2: for its new share); up_to_running:",
	" from the demand step until that many of the app's tasks run in real containers; down_done:",
	" until that few do; superseded: the next call came first; pulled: tasks whose agent's",
	" dockerd had to pull the image, through that agent's cache)",
	($v | big_lines($log; $h)),
	($v | join_lines($log; $tasks)),
	($v | kill_lines($log; $tasks)),
	($v.agents[] as $a | $v | agent_line($a; $tasks)),
	(if $v.tier == null then "no tier: every agent's cache fetched over the uplink itself"
	 else "tier \($v.tier.url): fetched \($v.tier.traffic.upstream | mb) over the uplink; the" +
		" agents' caches fetched \([$v.agents[].traffic.upstream] | add | mb) from it" end),
	"over the uplink, all told: \($v | uplink_bytes | mb); served by the agents' caches to their" +
		" dockerds: \([$v.agents[].traffic.local] | add | mb)";
