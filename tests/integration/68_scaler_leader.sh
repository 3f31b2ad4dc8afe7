#!/bin/bash
# Leader election through a real ZooKeeper (Debian's, 3 servers on loopback). Scenario: three
# scalers with one config (digest credentials, session 3 s, Marathon timeout 1 s so a new
# leader need not wait for calls of its predecessor) share /z/a and /z/b (random demands that
# move every 300 ms) in the Marathon emulator, capacity 10.
#   - exactly one acts; the others follow and say who leads (/status, /metrics);
#   - kill -9 of the leader, three times (restarted as a follower each time): another acts about
#     the session timeout later (the bound, twice that plus a second, leaves room for a loaded
#     machine; the times and their median are printed, and the README reports them);
#   - the leader stopped (SIGSTOP) for longer than the session: another takes over, and the
#     stopped one, resumed, sends nothing more and follows;
#   - over all of it: no two scalers' PUTs interleaved, the capacity never exceeded;
#   - one ZooKeeper server of three killed: the same scaler leads on; all three killed: none acts
#     (each says so once), and once they are back one leads again;
#   - wrong credentials: a clear error, and it never acts.
. "$(dirname "$0")/../lib/common.sh"
. "$MS_ROOT/tests/lib/marathon.sh"
. "$MS_ROOT/tests/lib/scaler.sh"
. "$MS_ROOT/tests/lib/zookeeper.sh"

zk_start 3 || { not_ok "a ZooKeeper ensemble of 3 is up"; exit 1; }
ok "a ZooKeeper ensemble of 3 is up: $ZK_SERVERS"
echo '[{"id": "/z/a", "instances": 1}, {"id": "/z/b", "instances": 1}]' >"$T/apps.json"
marathon_start --deploy-seconds 0.1 --apps "$T/apps.json" || exit 1

declare -a PORT PID
conf() { # N PASSWORD: scaler N's config
	jq -n --arg m "$MARATHON_URL" --arg zk "$ZK_SERVERS" --arg pw "$2" \
		--arg l "127.0.0.1:${PORT[$1]}" --argjson seed "$1" '{
		marathon: {url: $m, timeout_ms: 1000}, capacity: 10, interval_ms: 100, listen: $l,
		zookeeper: {servers: $zk, session_timeout_ms: 3000, username: "ms", password: $pw},
		apps: [{id: "/z/a", priority: 1, max: 10,
			demand: {type: "random", seed: $seed, step: 3, period_ms: 300}},
		       {id: "/z/b", priority: 2, demand: {type: "remainder"}}]}' >"$T/s$1.json"
	chmod 600 "$T/s$1.json"
}
start() { # N [PASSWORD]
	[ -n "${PORT[$1]:-}" ] || PORT[$1]=$(free_port)
	conf "$1" "${2:-pw-Right-7f3a}"
	"$SCALER_BIN" -d -c "$T/s$1.json" >>"$T/s$1.log" 2>&1 &
	PID[$1]=$!
	MS_PIDS+=("$!")
	wait_port "${PORT[$1]}" "${PID[$1]}" 10
}
acting() { curl -fsS --max-time 2 "http://127.0.0.1:${PORT[$1]}/status" | jq -r .leader.acting; }
# who_acts: the scalers (of 1..3) that act now, space-separated
who_acts() {
	local n out=""
	for n in 1 2 3; do [ "$(acting "$n" 2>/dev/null)" = true ] && out+="$n "; done
	echo "${out% }"
}
one_acts() { [ "$(who_acts | wc -w)" = 1 ]; }
for n in 1 2 3; do start "$n" || exit 1; done
check "exactly one of three scalers acts" wait_for 15 one_acts
leader=$(who_acts)
check_eq "the others follow and say who leads (its listen address)" \
	"127.0.0.1:${PORT[$leader]} 127.0.0.1:${PORT[$leader]}" \
	"$(for n in 1 2 3; do [ "$n" = "$leader" ] || curl -fsS "http://127.0.0.1:${PORT[$n]}/status" |
		jq -r .leader.leader.listen; done | tr '\n' ' ' | sed 's/ $//')"
metric() { curl -fsS "http://127.0.0.1:${PORT[$1]}/metrics" | awk '$1 == "microscale_scaler_leader" {print $2}'; }
check_eq "/metrics: microscale_scaler_leader 1 on the leader, 0 on the others" "1 0 0" \
	"$(metric "$leader") $(for n in 1 2 3; do [ "$n" = "$leader" ] || metric "$n"; done | tr '\n' ' ' | sed 's/ $//')"
check "the leader scales" wait_for 10 sh -c "grep -q event=marathon_scaled '$T/s$leader.log'"

# --- kill -9 of the leader ---------------------------------------------------------------------
ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }
failovers=()
for round in 1 2 3; do
	old=$leader
	t0=$(ms)
	kill -KILL "${PID[$old]}"
	wait "${PID[$old]}" 2>/dev/null
	other_acts() { local w; w=$(who_acts); [ -n "$w" ] && [ "$w" != "$old" ]; }
	wait_for 15 other_acts
	took=$(($(ms) - t0))
	leader=$(who_acts)
	failovers+=("$took")
	check "kill -9 #$round: scaler $leader acts after ${took} ms (session 3000)" test "$took" -le 7000
	start "$old" || exit 1 # it comes back as a follower
done
median=$(printf '%s\n' "${failovers[@]}" | sort -n | sed -n 2p)
echo "# fail-over after kill -9 (ms): ${failovers[*]}; median $median"
ok "fail-over median over 3 kills: $median ms"

# --- SIGSTOP for longer than the session -------------------------------------------------------
old=$leader
kill -STOP "${PID[$old]}"
stopped_at=$(date +%s.%N)
others_act() { local w; w=$(who_acts 2>/dev/null); [ -n "$w" ] && [ "$w" != "$old" ]; }
check "the leader stopped: another acts" wait_for 15 others_act
leader=$(who_acts)
new_t=$(date -d "$(grep event=leader_acting "$T/s$leader.log" | tail -1 | sed 's/^ts=\([^ ]*\).*/\1/')" +%s.%N)
kill -CONT "${PID[$old]}"
check "resumed, the old leader says it stopped acting" \
	wait_for 5 sh -c "grep event=leader_stopped '$T/s$old.log' | tail -1 | grep -q ."
check "... and follows" wait_for 10 sh -c "[ \"\$(curl -fsS http://127.0.0.1:${PORT[$old]}/status | jq -r .leader.state)\" = following ]"
last_old=$(grep event=marathon_scaled "$T/s$old.log" | tail -1 | sed 's/^ts=\([^ ]*\).*/\1/')
check "its last PUT came before it was stopped, so before the new leader started" \
	jtrue "$(date -d "$last_old" +%s.%N) <= $stopped_at and $stopped_at < $new_t"

# --- ZooKeeper servers go ----------------------------------------------------------------------
zk_follower=""
for i in 1 2 3; do [ "$(zk_mode "$i")" = follower ] && zk_follower=$i && break; done
zk_server_kill "$zk_follower"
sleep 4 # an observation window, longer than the session: the leader must not change in it
check_eq "one ZooKeeper server of three killed: scaler $leader still acts, alone" "$leader" "$(who_acts)"
none_acts() { [ -z "$(who_acts)" ]; }
stops=$(grep -c event=leader_stopped "$T/s$leader.log")
for i in 1 2 3; do [ "$i" = "$zk_follower" ] || zk_server_kill "$i"; done
check "all three killed: no scaler acts" wait_for 5 none_acts
sleep 2 # an observation window: the outage must be logged once, not once a tick
check_eq "the leader said so once" 1 "$(($(grep -c event=leader_stopped "$T/s$leader.log") - stops))"
for i in 1 2 3; do zk_server_start "$i"; done
check "they are back: one scaler acts again" wait_for 40 one_acts

# --- over all of it ----------------------------------------------------------------------------
# Every accepted PUT, in time order, tagged with its scaler: the scaler changes only at a
# fail-over (there were five: three kills, the stop, the outage).
switches=$(for n in 1 2 3; do sed -n "s/^ts=\([^ ]*\) .*event=marathon_scaled .*/\1 $n/p" "$T/s$n.log"; done |
	sort | awk '{ if (NR > 1 && $2 != prev) n++; prev = $2 } END { print n + 0 }')
check "no two scalers' PUTs interleaved: the PUTs change hands only at fail-overs ($switches <= 5)" \
	test "$switches" -le 5
check "the capacity (10) was never exceeded" test "$(marathon_max_sum "/z/a /z/b")" -le 10

# --- wrong credentials -------------------------------------------------------------------------
start 4 pw-Wrong-9c1e || exit 1
check "wrong credentials: a clear error" wait_for 10 sh -c "grep -q 'event=zookeeper_failed .*hint=\"ZooKeeper refused our identity' '$T/s4.log'"
check_eq "... and it never acts" false "$(acting 4)"
check "no password in any log" sh -c "! grep -lE 'pw-Right|pw-Wrong' '$T'/s*.log"
