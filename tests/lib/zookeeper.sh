# A real ZooKeeper ensemble for tests: Debian's zookeeper (3.8), N servers on free loopback ports,
# each its own data dir, config and log under $T/zk/<i>/. Sourced after tests/lib/common.sh.
#   zk_start N        starts servers 1..N as one ensemble; waits until they serve as a quorum;
#                     sets ZK_SERVERS ("127.0.0.1:P1,127.0.0.1:P2,…") and ZK_N
#   zk_server_start I starts server I again (after zk_server_stop/kill), keeping its data
#   zk_server_stop I  TERM (then KILL);  zk_server_kill I  KILL at once
#   zk_mode I         "leader", "follower", "standalone" or "down" (the srvr command)
#   zk_cli ARGS…      zkCli.sh against the ensemble (e.g. zk_cli ls /microscale/scaler)
# shellcheck shell=bash

ZK_CP=/etc/zookeeper/conf:/usr/share/java/zookeeper.jar
ZK_PIDS=()

# _zk_config I: server I's config. tickTime 500 ms lets a session be as short as 1 s (2 ticks)
# and as long as 10 s (20 ticks); the four-letter commands answer readiness checks.
_zk_config() {
	local i=$1 d=$T/zk/$1 k
	mkdir -p "$d/data" && echo "$i" >"$d/data/myid" || return 1
	{
		printf 'tickTime=500\ninitLimit=20\nsyncLimit=10\ndataDir=%s/data\n' "$d"
		printf 'clientPort=%s\nclientPortAddress=127.0.0.1\n' "${ZK_CLIENT[i]}"
		printf 'admin.enableServer=false\n4lw.commands.whitelist=srvr,ruok\n'
		printf 'maxSessionTimeout=20000\n'
		for ((k = 1; k <= ZK_N; k++)); do
			printf 'server.%d=127.0.0.1:%s:%s\n' "$k" "${ZK_PEER[k]}" "${ZK_ELECT[k]}"
		done
	} >"$d/zoo.cfg"
}

zk_server_start() {
	local i=$1
	spawn "$T/zk/$i/server.log" java -Xmx96m -Dzookeeper.log.dir="$T/zk/$i" -cp "$ZK_CP" \
		org.apache.zookeeper.server.quorum.QuorumPeerMain "$T/zk/$i/zoo.cfg"
	ZK_PIDS[i]=$SPAWNED
}

zk_server_stop() { stop_pid "${ZK_PIDS[$1]}"; }
zk_server_kill() {
	kill -KILL "${ZK_PIDS[$1]}" 2>/dev/null
	wait "${ZK_PIDS[$1]}" 2>/dev/null
}

zk_mode() {
	local out
	out=$( (exec 3<>"/dev/tcp/127.0.0.1/${ZK_CLIENT[$1]}" && echo srvr >&3 && timeout 2 cat <&3) \
		2>/dev/null) || { echo down; return; }
	sed -n 's/^Mode: //p' <<<"$out" | grep . || echo down
}

# _zk_quorum: every server serves, one of them as the leader.
_zk_quorum() {
	local i modes=""
	for ((i = 1; i <= ZK_N; i++)); do modes+=" $(zk_mode "$i")"; done
	[[ $modes != *down* ]] && [[ $modes == *leader* || $modes == *standalone* ]]
}

zk_start() {
	local i
	ZK_N=$1 ZK_CLIENT=() ZK_PEER=() ZK_ELECT=() ZK_SERVERS=""
	for ((i = 1; i <= ZK_N; i++)); do
		ZK_CLIENT[i]=$(free_port) ZK_PEER[i]=$(free_port) ZK_ELECT[i]=$(free_port)
		ZK_SERVERS+=${ZK_SERVERS:+,}127.0.0.1:${ZK_CLIENT[i]}
	done
	for ((i = 1; i <= ZK_N; i++)); do
		_zk_config "$i" && zk_server_start "$i" || return 1
	done
	if ! wait_for 60 _zk_quorum; then
		echo "zk_start: no quorum after 60 s; the servers' logs end:" >&2
		for ((i = 1; i <= ZK_N; i++)); do tail -5 "$T/zk/$i/server.log" >&2; done
		return 1
	fi
	export ZK_SERVERS ZK_N
}

zk_cli() {
	/usr/share/zookeeper/bin/zkCli.sh -server "$ZK_SERVERS" "$@" 2>/dev/null | grep -v '^$' |
		grep -vE '^(Connecting|WATCHER|WatchedEvent|JLine|Welcome)'
}
